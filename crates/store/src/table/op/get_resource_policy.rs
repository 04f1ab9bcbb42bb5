//! `GetResourcePolicy`: a table's or a stream's resource-based policy and its revision.

use serde_json::{Value, json};

use super::super::req::req_str;
use super::super::{DdbError, TableEngine, ready};
use super::resource_policy::{PolicyTarget, no_policy};
use crate::journal::Ticket;

pub(super) struct GetResourcePolicy<'a> {
    arn: &'a str,
}

impl<'a> GetResourcePolicy<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        Ok(GetResourcePolicy {
            arn: req_str(req, "ResourceArn")?,
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        let mut g = engine.state.write();
        let t = PolicyTarget::find(&mut g, self.arn)?;
        let p = t.policy().ok_or_else(|| no_policy(self.arn))?;
        Ok(ready(
            json!({"Policy": p.document, "RevisionId": p.revision}),
        ))
    }
}
