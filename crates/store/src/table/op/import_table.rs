//! `ImportTable`: create a table from data in an S3 bucket. The new table's definition is
//! checked as CreateTable checks it, and its name must be free; the import then runs and fails
//! as an import from a bucket that does not exist fails (no table is left), since kedge serves
//! no S3 (see `transfer.rs`).

use serde_json::{Map, Value, json};

use super::super::meta::{TableDef, table_arn};
use super::super::req::not_null;
use super::super::transfer::{Transfer, echoed};
use super::super::{DdbError, TableEngine};
use crate::journal::Ticket;

pub(super) struct ImportTable {
    def: TableDef,
    /// The members the import's description repeats.
    given: Map<String, Value>,
}

/// The members an import's description repeats, and their defaults.
const ECHOED: &[(&str, Option<&str>)] = &[
    ("ClientToken", None),
    ("S3BucketSource", None),
    ("InputFormat", None),
    ("InputFormatOptions", None),
    ("InputCompressionType", Some("NONE")),
    ("TableCreationParameters", None),
];

impl ImportTable {
    pub(super) fn parse(req: &Value) -> Result<Self, DdbError> {
        let params = req
            .get("TableCreationParameters")
            .filter(|v| !v.is_null())
            .ok_or_else(|| not_null("TableCreationParameters"))?;
        let def = TableDef::parse(params)?;
        let given = echoed(req, ECHOED);
        Ok(ImportTable { def, given })
    }

    pub(super) fn apply(mut self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.journal.check()?;
        let now_ms = engine.clock.now().as_millis();
        let mut g = engine.state.write();
        // The same request with the same client token is the same import.
        let token = self.given.get("ClientToken").and_then(Value::as_str);
        let same = |t: &Transfer| t.given == self.given;
        if let Some(answer) =
            engine.repeated_transfer(&g, (false, "ImportTableDescription"), token, now_ms, same)
        {
            return answer;
        }
        let name = self.def.name();
        if g.by_name.contains_key(name) {
            return Err(DdbError::in_use(format!("Table already exists: {name}")));
        }
        if !self.given.contains_key("ClientToken") {
            self.given
                .insert("ClientToken".into(), json!(engine.next_id()));
        }
        let arn = table_arn(name);
        let transfer = Transfer {
            arn: engine.transfer_arn(&arn, false, now_ms),
            export: false,
            table_arn: arn,
            table_id: None,
            started_ms: now_ms,
            ends_ms: engine.transition_end().unwrap_or(now_ms),
            given: self.given,
        };
        Ok(engine.start_transfer(&mut g, transfer, "ImportTableDescription"))
    }
}
