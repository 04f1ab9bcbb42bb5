//! `TagResource`: add (or replace) tags on a table, 50 at most.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::super::admin::tagged_mut;
use super::super::meta::parse_tags;
use super::super::req::vmsg;
use super::super::{DdbError, TableEngine};
use crate::journal::Ticket;

pub(super) struct TagResource<'a> {
    arn: &'a str,
    /// The table the ARN names.
    table: &'a str,
    tags: BTreeMap<String, String>,
}

impl<'a> TagResource<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        let (arn, table) = TableEngine::with_arn(req, "TagResource")?;
        let tags = parse_tags(req.get("Tags").unwrap_or(&Value::Null)).map_err(|_| {
            vmsg(vec![
                "Value null at 'tags' failed to satisfy constraint: Member must not be null".into(),
            ])
        })?;
        if tags.is_empty() {
            return Err(DdbError::validation(
                "Atleast one Tag needs to be provided as Input.",
            ));
        }
        Ok(TagResource { arn, table, tags })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.journal.check()?;
        let mut g = engine.state.write();
        let t = tagged_mut(&mut g, self.table, self.arn)?;
        // Counted before anything changes: a refused request leaves the tags as they were.
        let added = self
            .tags
            .keys()
            .filter(|k| !t.meta.tags.contains_key(*k))
            .count();
        if t.meta.tags.len() + added > 50 {
            return Err(DdbError::validation(
                "One or more parameter values were invalid: The number of tags exceeds the limit of 50",
            ));
        }
        t.meta.tags.extend(self.tags);
        let ticket = engine.submit(vec![TableEngine::table_record(&t.meta)]);
        Ok((json!({}), ticket))
    }
}
