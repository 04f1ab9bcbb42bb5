//! `UpdateContributorInsights`: turn CloudWatch Contributor Insights on (`ENABLE`, in
//! `ContributorInsightsMode` `ACCESSED_AND_THROTTLED_KEYS`, the default, or `THROTTLED_KEYS`)
//! or off (`DISABLE`) for a table or one of its global secondary indexes. The answer shows
//! `ENABLING` / `DISABLING`, which last the table status delay (none by default, so the
//! next DescribeContributorInsights shows `ENABLED` / `DISABLED`). Kept across restarts; not
//! kept by a restore (as DynamoDB does not restore CloudWatch settings) and gone with the
//! table or index.

use serde_json::{Map, Value, json};

use super::super::admin::not_found_table;
use super::super::meta::Insights;
use super::super::req::{opt_str, table_name};
use super::super::{DdbError, TableEngine, ready};
use super::describe_contributor_insights::insights_key;
use crate::journal::Ticket;

pub(super) struct UpdateContributorInsights<'a> {
    table: &'a str,
    index: Option<&'a str>,
    enable: bool,
    mode: Option<&'a str>,
}

impl<'a> UpdateContributorInsights<'a> {
    /// The action and mode are checked against their enums with the request's other
    /// constraints (`constraints.rs`) before this runs.
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        Ok(UpdateContributorInsights {
            table: table_name(req)?,
            index: opt_str(req, "IndexName"),
            enable: opt_str(req, "ContributorInsightsAction") == Some("ENABLE"),
            mode: opt_str(req, "ContributorInsightsMode"),
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.journal.check()?;
        let now = engine.clock.now().as_millis();
        let until = engine.transition_end().unwrap_or(now);
        let mut g = engine.state.write();
        let t = g
            .by_name
            .get_mut(self.table)
            .ok_or_else(|| not_found_table(self.table))?;
        let key = insights_key(t, self.index)?.to_string();
        let before = t.meta.insights.get(&key).cloned();
        let mode = match (self.mode, &before) {
            (Some(m), _) => m.to_string(),
            (None, Some(b)) if !self.enable => b.mode.clone(),
            _ => "ACCESSED_AND_THROTTLED_KEYS".to_string(),
        };
        let unchanged = before
            .as_ref()
            .is_some_and(|b| b.enabled == self.enable && b.mode == mode);
        let never = before.is_none() && !self.enable;
        let mut out = Map::new();
        out.insert("TableName".into(), json!(t.meta.name));
        if let Some(ix) = self.index {
            out.insert("IndexName".into(), json!(ix));
        }
        if unchanged || never {
            // Nothing to change: the current status (DISABLED for insights never enabled).
            let status = before.as_ref().map_or("DISABLED", |b| b.status(now));
            out.insert("ContributorInsightsStatus".into(), json!(status));
            out.insert("ContributorInsightsMode".into(), json!(mode));
            return Ok(ready(Value::Object(out)));
        }
        let ins = Insights {
            enabled: self.enable,
            mode,
            at_ms: now,
            until_ms: until,
        };
        out.insert(
            "ContributorInsightsStatus".into(),
            json!(if self.enable { "ENABLING" } else { "DISABLING" }),
        );
        out.insert("ContributorInsightsMode".into(), json!(ins.mode));
        t.meta.insights.insert(key, ins);
        let ticket = engine.submit(vec![TableEngine::table_record(&t.meta)]);
        Ok((Value::Object(out), ticket))
    }
}
