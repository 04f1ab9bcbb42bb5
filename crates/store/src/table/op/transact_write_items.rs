//! `TransactWriteItems`: up to 100 condition checks, puts, deletes and updates, all or
//! nothing.

use serde_json::Value;

use super::super::items::{Kind, ReturnValues, TxOptions, WriteReq};
use super::super::{DdbError, TableEngine};
use crate::journal::Ticket;

pub(super) struct TransactWriteItems {
    writes: Vec<WriteReq>,
    opts: TxOptions,
}

impl TransactWriteItems {
    pub(super) fn parse(req: &Value) -> Result<Self, DdbError> {
        let list = super::transact_items(req)?;
        let mut writes = Vec::with_capacity(list.len());
        for e in list {
            let obj = e
                .as_object()
                .ok_or_else(|| DdbError::serialization("TransactItems members must be objects"))?;
            let present: Vec<(&String, &Value)> =
                obj.iter().filter(|(_, v)| !v.is_null()).collect();
            if present.len() != 1 {
                return Err(DdbError::validation(
                    "TransactItems can only contain one of Check, Put, Update or Delete",
                ));
            }
            let (k, body) = present[0];
            let kind = match k.as_str() {
                "ConditionCheck" => Kind::Check,
                "Put" => Kind::Put,
                "Delete" => Kind::Delete,
                "Update" => Kind::Update,
                other => {
                    return Err(DdbError::serialization(format!(
                        "Unknown TransactItems member: {other}"
                    )));
                }
            };
            let mut w = WriteReq::parse(body, kind)?;
            // ReturnValues are not part of transactions; ALL_OLD on failure is.
            w.rv = ReturnValues::None;
            writes.push(w);
        }
        if super::super::items::transaction_payload(&writes)
            > super::super::items::MAX_TRANSACTION_PAYLOAD
        {
            return Err(DdbError::validation(
                "Transaction request payload size cannot exceed 4 MB",
            ));
        }
        Ok(TransactWriteItems {
            writes,
            opts: TxOptions::parse(req),
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        engine.transact_writes(&self.opts, &self.writes)
    }
}
