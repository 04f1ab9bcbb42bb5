//! `CreateTable`: create a table (its indexes, stream and throughput).
//!
//! `parse` reads and validates the whole request into a [`TableDef`]. An invalid request
//! still takes a table id from the engine (later ids depend on it), so its error is kept and
//! raised in `apply`, once the id and the creation time are taken.

use serde_json::Value;

use super::super::meta::{ResourcePolicy, TableDef, TableMeta};
use super::super::{DdbError, TableEngine};
use crate::journal::Ticket;

pub(super) struct CreateTable {
    /// The new table, or why the request is invalid.
    def: Result<TableDef, DdbError>,
    /// `ResourcePolicy`: the table's resource-based policy from the start.
    policy: Result<Option<String>, DdbError>,
}

impl CreateTable {
    pub(super) fn parse(req: &Value) -> Self {
        CreateTable {
            def: TableDef::parse(req),
            policy: match req.get("ResourcePolicy").filter(|v| !v.is_null()) {
                None => Ok(None),
                Some(v) => v
                    .as_str()
                    .ok_or_else(|| DdbError::serialization("ResourcePolicy must be a string"))
                    .and_then(|d| super::resource_policy::check_document(d).map(|()| d))
                    .map(|d| Some(d.to_owned())),
            },
        }
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        let (id, created) = engine.new_table_id();
        let mut meta = TableMeta::new(self.def?, id, created);
        // Its revision is the creation time in milliseconds, as a put's is the put's.
        meta.policy = self.policy?.map(|document| ResourcePolicy {
            document,
            revision: ((created * 1000.0).round() as u64).to_string(),
        });
        engine.create_table(meta)
    }
}
