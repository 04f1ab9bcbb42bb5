//! `DescribeEndpoints`: where to send requests. The request has no members.
//!
//! The gateway answers with the host a request came to; without one (a request from inside
//! the process) the endpoint is this machine.

use serde_json::Value;

use super::super::{DdbError, describe_endpoints, ready};
use crate::journal::Ticket;

pub(super) struct DescribeEndpoints;

impl DescribeEndpoints {
    pub(super) fn parse() -> Self {
        DescribeEndpoints
    }

    pub(super) fn apply(self) -> Result<(Value, Ticket), DdbError> {
        Ok(ready(describe_endpoints("localhost")))
    }
}
