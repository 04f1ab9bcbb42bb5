//! `ListTagsOfResource`: a table's tags, in key order.

use serde_json::{Value, json};

use super::super::admin::tagged;
use super::super::{DdbError, TableEngine, ready};
use crate::journal::Ticket;

pub(super) struct ListTagsOfResource<'a> {
    arn: &'a str,
    /// The table the ARN names.
    table: &'a str,
}

impl<'a> ListTagsOfResource<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        let (arn, table) = TableEngine::with_arn(req, "ListTagsOfResource")?;
        Ok(ListTagsOfResource { arn, table })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        let g = engine.state.read();
        let t = tagged(&g, self.table, self.arn)?;
        let tags: Vec<Value> = t
            .meta
            .tags
            .iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect();
        Ok(ready(json!({ "Tags": tags })))
    }
}
