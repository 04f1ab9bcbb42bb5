//! `RestoreTableFromBackup`: a new table from a backup, its definition changed by the
//! request's billing, throughput, index, encryption and maximum on-demand units overrides ([`Overrides`], which
//! `RestoreTableToPointInTime` takes too).

use serde_json::Value;

use super::super::backup::RestoreOverrides;
use super::super::meta::{Billing, IndexDef, KeySpec, UnitPair, max_units, validate_table_name};
use super::super::req::{opt_str, req_str};
use super::super::{DdbError, TableEngine};
use crate::journal::Ticket;

/// What a restore request changes in the restored table's definition.
pub(super) struct Overrides {
    billing: Option<Billing>,
    throughput: Option<(i64, i64)>,
    gsis: Option<Vec<IndexDef>>,
    lsis: Option<Vec<IndexDef>>,
    kms_key: Option<Option<String>>,
    on_demand: UnitPair,
}

impl Overrides {
    pub(super) fn parse(req: &Value) -> Result<Self, DdbError> {
        let billing = opt_str(req, "BillingModeOverride")
            .map(Billing::parse)
            .transpose()?;
        let throughput = req
            .get("ProvisionedThroughputOverride")
            .filter(|v| !v.is_null())
            .map(|pt| {
                let units = |f: &str| pt.get(f).and_then(Value::as_i64).unwrap_or(0);
                (units("ReadCapacityUnits"), units("WriteCapacityUnits"))
            });
        let indexes = |field: &str, global: bool| -> Result<Option<Vec<IndexDef>>, DdbError> {
            match req.get(field).and_then(Value::as_array) {
                None => Ok(None),
                Some(list) => list
                    .iter()
                    .map(|v| IndexDef::parse(v, global))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some),
            }
        };
        Ok(Overrides {
            billing,
            throughput,
            gsis: indexes("GlobalSecondaryIndexOverride", true)?,
            lsis: indexes("LocalSecondaryIndexOverride", false)?,
            kms_key: super::super::meta::sse_key(req.get("SSESpecificationOverride")),
            on_demand: max_units(req, "OnDemandThroughputOverride")?,
        })
    }

    /// The overrides with their indexes checked against the source's attribute definitions
    /// `defs` and the billing mode the restored table will have (`source_ppr`: the source's
    /// is per request).
    pub(super) fn resolve(
        self,
        defs: &[KeySpec],
        source_ppr: bool,
    ) -> Result<RestoreOverrides, DdbError> {
        let ppr = self
            .billing
            .map_or(source_ppr, |b| b == Billing::PayPerRequest);
        let resolve = |list: Option<Vec<IndexDef>>| {
            list.map(|l| {
                l.into_iter()
                    .map(|d| d.resolve(defs, ppr))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()
        };
        Ok(RestoreOverrides {
            billing: self.billing.map(|b| b.as_str().to_string()),
            throughput: self.throughput,
            gsis: resolve(self.gsis)?,
            lsis: resolve(self.lsis)?,
            kms_key: self.kms_key,
            on_demand: self.on_demand,
        })
    }
}

pub(super) struct RestoreTableFromBackup<'a> {
    arn: &'a str,
    target: &'a str,
    overrides: Overrides,
}

impl<'a> RestoreTableFromBackup<'a> {
    pub(super) fn parse(req: &'a Value) -> Result<Self, DdbError> {
        let target = req_str(req, "TargetTableName")?;
        validate_table_name(target, "targetTableName")?;
        let arn = super::backup_arn(req)?;
        Ok(RestoreTableFromBackup {
            arn,
            target,
            overrides: Overrides::parse(req)?,
        })
    }

    pub(super) fn apply(self, engine: &TableEngine) -> Result<(Value, Ticket), DdbError> {
        let (defs, ppr) = engine.backup_definitions(self.arn)?;
        let overrides = self.overrides.resolve(&defs, ppr)?;
        engine.restore_table_from_backup(self.arn, self.target, overrides)
    }
}
