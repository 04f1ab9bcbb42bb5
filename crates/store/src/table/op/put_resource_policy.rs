//! `PutResourcePolicy`: attach (or replace) a table's or a stream's resource-based policy.
//! Putting the document it already has changes nothing and answers its revision; any other
//! document gets a new, greater revision. `ExpectedRevisionId` makes the put conditional: on
//! the current revision, or with `NO_POLICY` on there being none.

use serde_json::{Value, json};

use super::super::meta::ResourcePolicy;
use super::super::req::{opt_str, req_str};
use super::super::{DdbError, TableEngine};
use super::resource_policy::{PolicyTarget, check_document, revision_mismatch};
use crate::journal::Ticket;

pub(super) struct PutResourcePolicy<'a> {
    arn: &'a str,
    policy: &'a str,
    expected: Option<&'a str>,
}

impl<'a> PutResourcePolicy<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        let arn = req_str(req, "ResourceArn")?;
        let policy = req_str(req, "Policy")?;
        check_document(policy)?;
        Ok(PutResourcePolicy {
            arn,
            policy,
            expected: opt_str(req, "ExpectedRevisionId"),
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.journal.check()?;
        let now_ms = engine.clock.now().as_millis();
        let mut g = engine.state.write();
        let mut t = PolicyTarget::find(&mut g, self.arn)?;
        let current = t.policy();
        match (self.expected, current) {
            (Some("NO_POLICY"), Some(p)) => {
                return Err(DdbError::new(
                    super::super::ErrorCode::PolicyNotFound,
                    format!(
                        "Resource-based policy not found for the provided ResourceArn: Requested policy update expecting none to be present for {}, but a policy exists with revision id {}.",
                        t.named(),
                        p.revision
                    ),
                ));
            }
            (Some(e), Some(p)) if e != p.revision => {
                return Err(revision_mismatch(e, &t.named(), &p.revision));
            }
            (Some(e), None) if e != "NO_POLICY" => {
                return Err(DdbError::new(
                    super::super::ErrorCode::PolicyNotFound,
                    format!(
                        "Resource-based policy not found for the provided ResourceArn: Requested update for policy with revision id {e}, but the {} has no policy.",
                        t.named()
                    ),
                ));
            }
            _ => {}
        }
        if let Some(p) = current
            && p.document == self.policy
        {
            return Ok(super::super::ready(json!({"RevisionId": p.revision})));
        }
        // Revisions are the put's time in milliseconds, greater than the one replaced.
        let after = current
            .and_then(|p| p.revision.parse::<u64>().ok())
            .map_or(0, |r| r + 1);
        let revision = now_ms.max(after).to_string();
        let record = t.set(Some(ResourcePolicy {
            document: self.policy.to_owned(),
            revision: revision.clone(),
        }));
        let ticket = engine.submit(vec![record]);
        Ok((json!({"RevisionId": revision}), ticket))
    }
}
