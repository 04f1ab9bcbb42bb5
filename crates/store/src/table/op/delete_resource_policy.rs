//! `DeleteResourcePolicy`: remove a table's or a stream's resource-based policy (at `ExpectedRevisionId`
//! when given); answers the revision removed.

use serde_json::{Value, json};

use super::super::req::{opt_str, req_str};
use super::super::{DdbError, TableEngine};
use super::resource_policy::{PolicyTarget, no_policy, revision_mismatch};
use crate::journal::Ticket;

pub(super) struct DeleteResourcePolicy<'a> {
    arn: &'a str,
    expected: Option<&'a str>,
}

impl<'a> DeleteResourcePolicy<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        Ok(DeleteResourcePolicy {
            arn: req_str(req, "ResourceArn")?,
            expected: opt_str(req, "ExpectedRevisionId"),
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.journal.check()?;
        let mut g = engine.state.write();
        let mut t = PolicyTarget::find(&mut g, self.arn)?;
        let p = t.policy().ok_or_else(|| no_policy(self.arn))?;
        if let Some(e) = self.expected
            && e != p.revision
        {
            return Err(revision_mismatch(e, &t.named(), &p.revision));
        }
        let revision = p.revision.clone();
        let record = t.set(None);
        let ticket = engine.submit(vec![record]);
        Ok((json!({"RevisionId": revision}), ticket))
    }
}
