//! `DescribeContributorInsights`: CloudWatch Contributor Insights on a table or one of its
//! global secondary indexes, as `UpdateContributorInsights` left them (`DISABLED`, with no
//! rules, when never enabled). There is no CloudWatch here: the settings are kept and
//! reported, no rule exists and nothing is counted.

use serde_json::{Map, Value, json};

use super::super::admin::any_table;
use super::super::meta::Insights;
use super::super::req::{opt_str, table_name};
use super::super::{DdbError, Table, TableEngine, ready};
use crate::journal::Ticket;

pub(super) struct DescribeContributorInsights<'a> {
    table: &'a str,
    index: Option<&'a str>,
}

impl<'a> DescribeContributorInsights<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        Ok(DescribeContributorInsights {
            table: table_name(req)?,
            index: opt_str(req, "IndexName"),
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        let g = engine.state.read();
        let t = any_table(&g, self.table)?;
        let key = insights_key(t, self.index)?;
        let now = engine.clock.now().as_millis();
        let mut out = Map::new();
        out.insert("TableName".into(), json!(t.meta.name));
        if let Some(ix) = self.index {
            out.insert("IndexName".into(), json!(ix));
        }
        match t.meta.insights.get(key) {
            None => {
                out.insert("ContributorInsightsStatus".into(), json!("DISABLED"));
            }
            Some(ins) => {
                if ins.enabled {
                    out.insert(
                        "ContributorInsightsRuleList".into(),
                        json!(rules(t, self.index, ins)),
                    );
                }
                out.insert("ContributorInsightsStatus".into(), json!(ins.status(now)));
                out.insert(
                    "LastUpdateDateTime".into(),
                    json!(ins.at_ms as f64 / 1000.0),
                );
                out.insert("ContributorInsightsMode".into(), json!(ins.mode));
            }
        }
        Ok(ready(Value::Object(out)))
    }
}

/// The key of `t.meta.insights` for the table (`index` `None`) or one of its global secondary
/// indexes; a name that is not one of them is `ResourceNotFoundException`.
pub(super) fn insights_key<'i>(t: &Table, index: Option<&'i str>) -> Result<&'i str, DdbError> {
    match index {
        None => Ok(""),
        Some(ix) if t.meta.indexes.iter().any(|m| m.global && m.name == ix) => Ok(ix),
        Some(ix) => Err(DdbError::not_found(format!(
            "Requested resource not found: Index: {ix} not found for table: {}",
            t.meta.name
        ))),
    }
}

/// The CloudWatch rules DynamoDB names for contributor insights (as the AWS CLI's example
/// shows them: `DynamoDBContributorInsights-PKC-<table>-<ms>`): most accessed (`C`) and most
/// throttled (`T`) partition keys (`PK`), and sort keys (`SK`) when the key schema has one;
/// only the throttled ones in `THROTTLED_KEYS` mode.
pub(super) fn rules(t: &Table, index: Option<&str>, ins: &Insights) -> Vec<String> {
    let sorted = match index {
        None => t.meta.range.is_some(),
        Some(ix) => t
            .meta
            .indexes
            .iter()
            .any(|m| m.name == ix && m.range.is_some()),
    };
    let accessed = ins.mode != "THROTTLED_KEYS";
    let mut kinds = Vec::new();
    if accessed {
        kinds.push("PKC");
        if sorted {
            kinds.push("SKC");
        }
    }
    kinds.push("PKT");
    if sorted {
        kinds.push("SKT");
    }
    kinds
        .into_iter()
        .map(|k| {
            format!(
                "DynamoDBContributorInsights-{k}-{}-{}",
                t.meta.name, ins.at_ms
            )
        })
        .collect()
}
