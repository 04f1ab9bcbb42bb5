//! `UntagResource`: remove tags from a table by key.

use serde_json::{Value, json};

use super::super::admin::tagged_mut;
use super::super::req::vmsg;
use super::super::{DdbError, TableEngine};
use crate::journal::Ticket;

pub(super) struct UntagResource<'a> {
    arn: &'a str,
    /// The table the ARN names.
    table: &'a str,
    keys: Vec<String>,
}

impl<'a> UntagResource<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        let (arn, table) = TableEngine::with_arn(req, "UntagResource")?;
        let keys: Vec<String> = req
            .get("TagKeys")
            .and_then(|v| v.as_array())
            .ok_or_else(|| {
                vmsg(vec![
                    "Value null at 'tagKeys' failed to satisfy constraint: Member must not be null"
                        .into(),
                ])
            })?
            .iter()
            .filter_map(|k| k.as_str().map(String::from))
            .collect();
        if keys.is_empty() {
            return Err(DdbError::validation(
                "Atleast one Tag Key needs to be provided as Input.",
            ));
        }
        Ok(UntagResource { arn, table, keys })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.journal.check()?;
        let mut g = engine.state.write();
        // Unlike TagResource and ListTagsOfResource, DynamoDB's answer here does not name
        // the ARN (dynalite's recorded answers).
        let t = tagged_mut(&mut g, self.table, self.arn)
            .map_err(|_| DdbError::not_found("Requested resource not found"))?;
        for k in self.keys {
            t.meta.tags.remove(&k);
        }
        let ticket = engine.submit(vec![TableEngine::table_record(&t.meta)]);
        Ok((json!({}), ticket))
    }
}
