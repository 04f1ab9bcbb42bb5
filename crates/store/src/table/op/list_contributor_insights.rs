//! `ListContributorInsights`: the contributor insights of every table (or of the table
//! `TableName` names) and its global secondary indexes that have them on or are turning them
//! on or off, a table before its indexes, tables by name; `MaxResults` (at most 100, the
//! default) a page, `NextToken` where the next page starts.

use serde_json::{Value, json};

use super::super::admin::any_table;
use super::super::req::opt_str;
use super::super::{DdbError, TableEngine, ready};
use crate::journal::Ticket;

pub(super) struct ListContributorInsights<'a> {
    table: Option<&'a str>,
    token: Option<&'a str>,
    max: usize,
}

/// The most summaries a page holds (`MaxResults`' upper bound, and its default here).
const PAGE: usize = 100;

impl<'a> ListContributorInsights<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        let max = req
            .get("MaxResults")
            .and_then(Value::as_i64)
            .filter(|m| *m > 0)
            .map_or(PAGE, |m| (m as usize).min(PAGE));
        Ok(ListContributorInsights {
            table: opt_str(req, "TableName"),
            token: opt_str(req, "NextToken"),
            max,
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        let g = engine.state.read();
        let now = engine.clock.now().as_millis();
        let tables: Vec<_> = match self.table {
            Some(name) => vec![any_table(&g, name)?],
            None => g.by_name.values().collect(),
        };
        let mut all = Vec::new();
        for t in tables {
            for (key, ins) in &t.meta.insights {
                // (An index's insights go when the index does: every key names the table or
                // one of its global indexes.)
                let status = ins.status(now);
                if status == "DISABLED" {
                    continue;
                }
                let mut s = json!({"TableName": t.meta.name, "ContributorInsightsStatus": status,
                    "ContributorInsightsMode": ins.mode});
                if !key.is_empty() {
                    s["IndexName"] = json!(key);
                }
                all.push(((t.meta.name.as_str(), key.as_str()), s));
            }
        }
        // A token names the summary its page starts at, `TABLE/INDEX` (a table name has no
        // `/`); the page starts there, or past where it was if it is gone.
        let start = match self.token {
            None => 0,
            Some(tok) => {
                let at = tok
                    .split_once('/')
                    .ok_or_else(|| DdbError::validation(format!("Invalid NextToken: {tok}")))?;
                all.iter().position(|(k, _)| *k >= at).unwrap_or(all.len())
            }
        };
        let page: Vec<Value> = all
            .iter()
            .skip(start)
            .take(self.max)
            .map(|(_, s)| s.clone())
            .collect();
        let mut out = json!({ "ContributorInsightsSummaries": page });
        if let Some(((table, index), _)) = all.get(start + self.max) {
            out["NextToken"] = json!(format!("{table}/{index}"));
        }
        Ok(ready(out))
    }
}
