//! `ListTables`: table names in order, up to `Limit` (100 by default) after
//! `ExclusiveStartTableName`.

use serde_json::{Value, json};

use super::super::req::{opt_i64, opt_str, vmsg};
use super::super::{DdbError, TableEngine, ready};
use crate::journal::Ticket;

pub(super) struct ListTables<'a> {
    /// 1 to 100.
    limit: usize,
    start: Option<&'a str>,
}

impl<'a> ListTables<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        let limit = opt_i64(req, "Limit")?.unwrap_or(100);
        if !(1..=100).contains(&limit) {
            return Err(vmsg(vec![format!(
                "Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value {} 100",
                if limit < 1 {
                    "greater than or equal to 1, less than or equal to"
                } else {
                    "less than or equal to"
                }
            )]));
        }
        Ok(ListTables {
            limit: limit as usize,
            start: opt_str(req, "ExclusiveStartTableName"),
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        let g = engine.state.read();
        let mut names: Vec<&String> = match self.start {
            Some(s) => g
                .by_name
                .range::<str, _>((std::ops::Bound::Excluded(s), std::ops::Bound::Unbounded))
                .map(|(k, _)| k)
                .collect(),
            None => g.by_name.keys().collect(),
        };
        let more = names.len() > self.limit;
        names.truncate(self.limit);
        let mut out = json!({ "TableNames": names });
        if more && let Some(last) = names.last() {
            out["LastEvaluatedTableName"] = json!(last);
        }
        Ok(ready(out))
    }
}
