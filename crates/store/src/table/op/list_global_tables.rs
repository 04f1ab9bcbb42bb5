//! `ListGlobalTables`: the global tables (version 2017.11.29) replicated across Regions.
//! kedge serves one Region and makes no global tables (`CreateGlobalTable` is an unknown
//! operation), so the list is empty; the request's members are checked as DynamoDB checks
//! them (`constraints.rs`).

use serde_json::{Value, json};

use super::super::ready;
use crate::journal::Ticket;

pub(super) struct ListGlobalTables;

impl ListGlobalTables {
    pub(super) fn parse() -> Self {
        ListGlobalTables
    }

    pub(super) fn apply(self) -> (Value, Ticket) {
        ready(json!({"GlobalTables": []}))
    }
}
