//! The member constraints DynamoDB's request framework checks after the type check and
//! before the operation runs: required members, name patterns and lengths, enum values and
//! numeric bounds. Unlike the operation's own validation, every violation is collected and
//! reported at once: `2 validation errors detected: Value null at 'tableName' failed to
//! satisfy constraint: Member must not be null; Value null at 'item' ...`. Members are named
//! in the wire's lowerCamelCase, nested ones with `.` (`provisionedThroughput.readCapacityUnits`,
//! `keyConditions.a.member.comparisonOperator`), as DynamoDB names them.
//!
//! Table-level operations (CreateTable, DescribeTable, UpdateTable, DeleteTable,
//! DescribeTimeToLive) first answer a missing or wrongly sized TableName with their own
//! message, as DynamoDB does.

use serde_json::Value;

use super::error::DdbError;
use super::req::camel;

const RETURN_CAPACITY: &[&str] = &["INDEXES", "TOTAL", "NONE"];
const RETURN_METRICS: &[&str] = &["SIZE", "NONE"];
const RETURN_VALUES: &[&str] = &["ALL_NEW", "UPDATED_OLD", "ALL_OLD", "NONE", "UPDATED_NEW"];
const SELECT: &[&str] = &[
    "SPECIFIC_ATTRIBUTES",
    "COUNT",
    "ALL_ATTRIBUTES",
    "ALL_PROJECTED_ATTRIBUTES",
];
const RETURN_ON_FAILURE: &[&str] = &["ALL_OLD", "NONE"];
const CONDITIONAL_OPERATOR: &[&str] = &["OR", "AND"];
const COMPARISON: &[&str] = &[
    "IN",
    "NULL",
    "BETWEEN",
    "LT",
    "NOT_CONTAINS",
    "EQ",
    "GT",
    "NOT_NULL",
    "NE",
    "LE",
    "BEGINS_WITH",
    "GE",
    "CONTAINS",
];
const BILLING: &[&str] = &["PROVISIONED", "PAY_PER_REQUEST"];
const TABLE_CLASS: &[&str] = &["STANDARD", "STANDARD_INFREQUENT_ACCESS"];
const SSE_TYPE: &[&str] = &["AES256", "KMS"];
const KEY_TYPE: &[&str] = &["HASH", "RANGE"];
const ATTR_TYPE: &[&str] = &["B", "N", "S"];
const PROJECTION_TYPE: &[&str] = &["ALL", "INCLUDE", "KEYS_ONLY"];
const STREAM_VIEW_TYPE: &[&str] = &["NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY"];
const SHARD_ITERATOR_TYPE: &[&str] = &[
    "TRIM_HORIZON",
    "LATEST",
    "AT_SEQUENCE_NUMBER",
    "AFTER_SEQUENCE_NUMBER",
];

/// Collects violations in the order they are found.
struct Check<'a> {
    req: &'a Value,
    errs: Vec<String>,
}

/// How Coral prints a value in a message: strings bare, lists as `[a, b]`, maps as `{k=v}`.
fn show(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(show).collect::<Vec<_>>().join(", ")),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{k}={}", show(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

fn len_of(v: &Value) -> Option<usize> {
    match v {
        Value::String(s) => Some(s.chars().count()),
        Value::Array(a) => Some(a.len()),
        Value::Object(m) => Some(m.len()),
        _ => None,
    }
}

impl<'a> Check<'a> {
    fn fail(&mut self, v: Option<&Value>, at: &str, what: String) {
        let shown = match v {
            None | Some(Value::Null) => "null".to_string(),
            Some(v) => format!("'{}'", show(v)),
        };
        self.errs.push(format!(
            "Value {shown} at '{at}' failed to satisfy constraint: {what}"
        ));
    }

    fn get(&self, field: &str) -> Option<&'a Value> {
        self.req.get(field).filter(|v| !v.is_null())
    }

    fn required(&mut self, v: Option<&Value>, at: &str) -> bool {
        if v.is_none_or(Value::is_null) {
            self.fail(None, at, "Member must not be null".into());
            false
        } else {
            true
        }
    }

    fn name(&mut self, v: Option<&Value>, at: &str) {
        let Some(s) = v.and_then(Value::as_str) else {
            return;
        };
        if s.is_empty()
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            self.fail(
                v,
                at,
                "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+".into(),
            );
        }
        self.length(v, at, 3, 255);
    }

    fn length(&mut self, v: Option<&Value>, at: &str, lo: usize, hi: usize) {
        let Some(n) = v.and_then(len_of) else {
            return;
        };
        if n < lo {
            self.fail(
                v,
                at,
                format!("Member must have length greater than or equal to {lo}"),
            );
        }
        if n > hi {
            self.fail(
                v,
                at,
                format!("Member must have length less than or equal to {hi}"),
            );
        }
    }

    fn one_of(&mut self, v: Option<&Value>, at: &str, set: &[&str]) {
        let Some(s) = v.and_then(Value::as_str) else {
            return;
        };
        if !set.contains(&s) {
            self.fail(
                v,
                at,
                format!("Member must satisfy enum value set: [{}]", set.join(", ")),
            );
        }
    }

    fn range(&mut self, v: Option<&Value>, at: &str, lo: i64, hi: Option<i64>) {
        let Some(n) = v.and_then(Value::as_i64) else {
            return;
        };
        if n < lo {
            self.fail(
                v,
                at,
                format!("Member must have value greater than or equal to {lo}"),
            );
        }
        if let Some(hi) = hi
            && n > hi
        {
            self.fail(
                v,
                at,
                format!("Member must have value less than or equal to {hi}"),
            );
        }
    }

    fn table_name(&mut self, required: bool) {
        let v = self.get("TableName");
        if required && !self.required(v, "tableName") {
            return;
        }
        // A table's ARN is checked as the name it holds.
        let named = v
            .and_then(Value::as_str)
            .map(super::meta::named_table)
            .filter(|n| v.and_then(Value::as_str) != Some(*n))
            .map(|n| Value::String(n.to_owned()));
        self.name(named.as_ref().or(v), "tableName");
    }

    /// A PartiQL statement (`Statement` of `v`) and its parameters.
    fn statement(&mut self, v: &Value, at: &str) {
        let st = v.get("Statement").filter(|v| !v.is_null());
        if self.required(st, at) {
            self.length(st, at, 1, 8192);
        }
        let params = v.get("Parameters").filter(|v| !v.is_null());
        let params_at = format!("{}parameters", at.trim_end_matches("statement"));
        self.length(params, &params_at, 1, usize::MAX);
    }

    /// Each member of `AttributeDefinitions` (CreateTable, UpdateTable): a name of 1 to 255
    /// characters and a type.
    fn attribute_definitions(&mut self, defs: Option<&Value>) {
        for (i, d) in defs
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let base = format!("attributeDefinitions.{}.member", i + 1);
            let n = d.get("AttributeName").filter(|v| !v.is_null());
            if self.required(n, &format!("{base}.attributeName")) {
                self.length(n, &format!("{base}.attributeName"), 1, 255);
            }
            let at = format!("{base}.attributeType");
            let t = d.get("AttributeType").filter(|v| !v.is_null());
            if self.required(t, &at) {
                self.one_of(t, &at, ATTR_TYPE);
            }
        }
    }

    /// `StreamSpecification` of CreateTable and UpdateTable.
    fn stream_spec(&mut self) {
        let Some(spec) = self.get("StreamSpecification") else {
            return;
        };
        let enabled = spec.get("StreamEnabled").filter(|v| !v.is_null());
        self.required(enabled, "streamSpecification.streamEnabled");
        let view = spec.get("StreamViewType").filter(|v| !v.is_null());
        self.one_of(view, "streamSpecification.streamViewType", STREAM_VIEW_TYPE);
    }

    /// A DynamoDB Streams ARN member.
    fn stream_arn(&mut self, field: &str, at: &str, required: bool) {
        let v = self.get(field);
        if !required || self.required(v, at) {
            self.length(v, at, 37, 1024);
        }
    }

    fn enums(&mut self, fields: &[(&str, &str, &[&str])]) {
        for (field, at, set) in fields {
            let v = self.get(field);
            self.one_of(v, at, set);
        }
    }

    /// CreateTable's and UpdateTable's `TableClass` and `SSESpecification.SSEType` enums.
    fn settings(&mut self) {
        self.enums(&[("TableClass", "tableClass", TABLE_CLASS)]);
        let sse_type = self
            .get("SSESpecification")
            .and_then(|s| s.get("SSEType"))
            .filter(|v| !v.is_null());
        self.one_of(sse_type, "sSESpecification.sSEType", SSE_TYPE);
    }

    fn throughput(&mut self, v: Option<&Value>, at: &str) {
        let Some(pt) = v else {
            return;
        };
        for (field, name) in [
            ("WriteCapacityUnits", "writeCapacityUnits"),
            ("ReadCapacityUnits", "readCapacityUnits"),
        ] {
            let x = pt.get(field).filter(|v| !v.is_null());
            let at = format!("{at}.{name}");
            if self.required(x, &at) {
                self.range(x, &at, 1, None);
            }
        }
    }

    /// A table's or an index's `KeySchema`: each element's name, and its key type against the
    /// enum (an index's too: DynamoDB answers `Value 'SORT' at
    /// 'globalSecondaryIndexes.1.member.keySchema.2.member.keyType' failed to satisfy
    /// constraint`, in moto's AWS-verified tests; a valid type in the wrong place is left to
    /// CreateTable's own checks, `The first KeySchemaElement is not a HASH key type`). A global
    /// index's may be longer than two (multi-attribute keys; their counts are checked with the
    /// index).
    fn key_schema(&mut self, v: Option<&Value>, at: &str, max: usize) {
        let Some(list) = v else {
            return;
        };
        self.length(v, at, 1, max);
        for (i, e) in list.as_array().into_iter().flatten().enumerate() {
            let base = format!("{at}.{}.member", i + 1);
            let name = e.get("AttributeName").filter(|v| !v.is_null());
            if self.required(name, &format!("{base}.attributeName")) {
                self.length(name, &format!("{base}.attributeName"), 1, 255);
            }
            let kt = e.get("KeyType").filter(|v| !v.is_null());
            if self.required(kt, &format!("{base}.keyType")) {
                self.one_of(kt, &format!("{base}.keyType"), KEY_TYPE);
            }
        }
    }

    /// The members of a secondary index definition `ix` (CreateTable's
    /// LocalSecondaryIndexes and GlobalSecondaryIndexes, UpdateTable's Create action), in
    /// the order DynamoDB lists them: the name, the key schema, the projection, then (for a
    /// global index) the throughput.
    fn index(&mut self, ix: &Value, base: &str, global: bool) {
        let at = format!("{base}.indexName");
        let name = ix.get("IndexName").filter(|v| !v.is_null());
        if self.required(name, &at) {
            self.name(name, &at);
        }
        let at = format!("{base}.keySchema");
        let ks = ix.get("KeySchema").filter(|v| !v.is_null());
        if self.required(ks, &at) {
            self.key_schema(ks, &at, if global { usize::MAX } else { 2 });
        }
        let at = format!("{base}.projection");
        let p = ix.get("Projection").filter(|v| !v.is_null());
        if self.required(p, &at) {
            let ty = p
                .and_then(|p| p.get("ProjectionType"))
                .filter(|v| !v.is_null());
            self.one_of(ty, &format!("{at}.projectionType"), PROJECTION_TYPE);
            let nk = p
                .and_then(|p| p.get("NonKeyAttributes"))
                .filter(|v| !v.is_null());
            self.length(nk, &format!("{at}.nonKeyAttributes"), 1, usize::MAX);
        }
        if global {
            let pt = ix.get("ProvisionedThroughput").filter(|v| !v.is_null());
            self.throughput(pt, &format!("{base}.provisionedThroughput"));
        }
    }

    fn conditions(&mut self, field: &str, at: &str) {
        let Some(m) = self.get(field).and_then(Value::as_object) else {
            return;
        };
        for (attr, c) in m {
            let op = c.get("ComparisonOperator").filter(|v| !v.is_null());
            let at = format!("{at}.{attr}.member.comparisonOperator");
            if self.required(op, &at) {
                self.one_of(op, &at, COMPARISON);
            }
        }
    }

    /// Query's and Scan's shared members. Scan's AttributesToGet is checked by its caller
    /// after the segments: of more than ten violations DynamoDB lists another ten for Scan.
    fn read_common(&mut self, filter: (&str, &str), attributes_to_get: bool) {
        self.table_name(true);
        let ix = self.get("IndexName");
        self.name(ix, "indexName");
        let limit = self.get("Limit");
        self.range(limit, "limit", 1, None);
        if attributes_to_get {
            self.attributes_to_get();
        }
        self.enums(&[
            ("Select", "select", SELECT),
            (
                "ConditionalOperator",
                "conditionalOperator",
                CONDITIONAL_OPERATOR,
            ),
            (
                "ReturnConsumedCapacity",
                "returnConsumedCapacity",
                RETURN_CAPACITY,
            ),
        ]);
        self.conditions(filter.0, filter.1);
    }

    /// RequestItems of the batch operations: a map from table name to a list of writes (at
    /// most `writes`, BatchWriteItem) or to keys to read (under `keys_at`, BatchGetItem).
    /// A bad table name or write count is one violation for the whole map, which DynamoDB
    /// prints with every constraint of the map's keys or values.
    fn attributes_to_get(&mut self) {
        let atg = self.get("AttributesToGet");
        self.length(atg, "attributesToGet", 1, usize::MAX);
    }

    fn request_items(&mut self, keys_at: Option<&str>, writes: Option<usize>) {
        let items = self.get("RequestItems");
        if !self.required(items, "requestItems") {
            return;
        }
        self.length(items, "requestItems", 1, usize::MAX);
        let Some(m) = items.and_then(Value::as_object) else {
            return;
        };
        if m.keys()
            .any(|t| super::meta::validate_table_name(t, "requestItems").is_err())
        {
            self.fail(
                items,
                "requestItems",
                "Map keys must satisfy constraint: [Member must have length less than or equal to 255, Member must have length greater than or equal to 3, Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+]".into(),
            );
        }
        if let Some(most) = writes
            && m.values()
                .any(|v| len_of(v).is_some_and(|n| n == 0 || n > most))
        {
            self.fail(
                items,
                "requestItems",
                format!("Map value must satisfy constraint: [Member must have length less than or equal to {most}, Member must have length greater than or equal to 1]"),
            );
        }
        for (table, spec) in m {
            if let Some(k) = keys_at {
                let keys = spec.get("Keys").filter(|v| !v.is_null());
                let at = format!("requestItems.{table}.member.{k}");
                if self.required(keys, &at) {
                    self.length(keys, &at, 1, 100);
                }
            }
            if writes.is_some() {
                // Each write's own required member (members are numbered from 1).
                for (i, w) in spec.as_array().into_iter().flatten().enumerate() {
                    for (request, member) in [("DeleteRequest", "Key"), ("PutRequest", "Item")] {
                        if let Some(r) = w.get(request).filter(|v| !v.is_null()) {
                            let at = format!(
                                "requestItems.{table}.member.{}.member.{}.{}",
                                i + 1,
                                camel(request),
                                camel(member)
                            );
                            self.required(r.get(member), &at);
                        }
                    }
                }
            }
        }
    }
}

/// Table-level operations' own answer to a missing or wrongly sized TableName.
fn table_op_name(req: &Value) -> Result<(), DdbError> {
    match req.get("TableName").and_then(Value::as_str) {
        None => Err(DdbError::validation(
            "The parameter 'TableName' is required but was not present in the request",
        )),
        Some(s) if !(3..=255).contains(&s.chars().count()) => Err(DdbError::validation(
            "TableName must be at least 3 characters long and at most 255 characters long",
        )),
        Some(_) => Ok(()),
    }
}

/// The legacy (non-expression) and expression parameters of an item read or write, and the
/// expressions that may use ExpressionAttributeValues, in the order DynamoDB names them.
struct Params {
    legacy: &'static [&'static str],
    expressions: &'static [&'static str],
    valued: &'static [&'static str],
}

fn params(op: &str) -> Option<Params> {
    Some(match op {
        "GetItem" | "BatchGetItem" => Params {
            legacy: &["AttributesToGet"],
            expressions: &["ProjectionExpression"],
            valued: &[],
        },
        "PutItem" | "DeleteItem" => Params {
            legacy: &["Expected", "ConditionalOperator"],
            expressions: &["ConditionExpression"],
            valued: &["ConditionExpression"],
        },
        "UpdateItem" => Params {
            legacy: &["AttributeUpdates", "Expected", "ConditionalOperator"],
            expressions: &["UpdateExpression", "ConditionExpression"],
            valued: &["UpdateExpression", "ConditionExpression"],
        },
        "Query" => Params {
            legacy: &[
                "AttributesToGet",
                "QueryFilter",
                "ConditionalOperator",
                "KeyConditions",
            ],
            expressions: &[
                "ProjectionExpression",
                "FilterExpression",
                "KeyConditionExpression",
            ],
            valued: &["FilterExpression", "KeyConditionExpression"],
        },
        "Scan" => Params {
            legacy: &["AttributesToGet", "ScanFilter", "ConditionalOperator"],
            expressions: &["ProjectionExpression", "FilterExpression"],
            valued: &["FilterExpression"],
        },
        _ => return None,
    })
}

/// DynamoDB's checks on mixing legacy and expression parameters, which come before the
/// contents of ExpressionAttributeNames/Values are looked at.
pub fn check_expression_params(op: &str, req: &Value) -> Result<(), DdbError> {
    let Some(p) = params(op) else {
        return Ok(());
    };
    if op == "BatchGetItem" {
        if let Some(m) = req.get("RequestItems").and_then(Value::as_object) {
            for spec in m.values() {
                mixing(&p, spec)?;
            }
        }
        return Ok(());
    }
    mixing(&p, req)
}

fn mixing(p: &Params, req: &Value) -> Result<(), DdbError> {
    let has = |f: &str| req.get(f).is_some_and(|v| !v.is_null());
    // KeyConditions only clashes with KeyConditionExpression: a Query may combine legacy key
    // conditions with a ProjectionExpression or FilterExpression.
    let legacy: Vec<&str> = p
        .legacy
        .iter()
        .copied()
        .filter(|f| has(f) && (*f != "KeyConditions" || has("KeyConditionExpression")))
        .collect();
    let exprs: Vec<&str> = p.expressions.iter().copied().filter(|f| has(f)).collect();
    if !legacy.is_empty() && !exprs.is_empty() {
        return Err(DdbError::validation(format!(
            "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {{{}}} Expression parameters: {{{}}}",
            legacy.join(", "),
            exprs.join(", ")
        )));
    }
    if exprs.is_empty() && has("ExpressionAttributeNames") {
        return Err(DdbError::validation(
            "ExpressionAttributeNames can only be specified when using expressions",
        ));
    }
    if !p.valued.is_empty() && !p.valued.iter().any(|f| has(f)) && has("ExpressionAttributeValues")
    {
        let null = match p.valued {
            [one] => format!("{one} is null"),
            many => format!("{} are null", many.join(" and ")),
        };
        return Err(DdbError::validation(format!(
            "ExpressionAttributeValues can only be specified when using expressions: {null}"
        )));
    }
    Ok(())
}

/// Check `op`'s member constraints on `req` (already type-checked by [`super::shape`]).
pub fn check(op: &str, req: &Value) -> Result<(), DdbError> {
    let mut c = Check {
        req,
        errs: Vec::new(),
    };
    match op {
        "GetItem" => {
            c.table_name(true);
            let key = c.get("Key");
            c.required(key, "key");
            let atg = c.get("AttributesToGet");
            c.length(atg, "attributesToGet", 1, usize::MAX);
            c.enums(&[(
                "ReturnConsumedCapacity",
                "returnConsumedCapacity",
                RETURN_CAPACITY,
            )]);
        }
        "PutItem" | "DeleteItem" | "UpdateItem" => {
            c.table_name(true);
            let (field, at) = if op == "PutItem" {
                ("Item", "item")
            } else {
                ("Key", "key")
            };
            let v = c.get(field);
            c.required(v, at);
            c.enums(&[
                (
                    "ReturnConsumedCapacity",
                    "returnConsumedCapacity",
                    RETURN_CAPACITY,
                ),
                (
                    "ReturnItemCollectionMetrics",
                    "returnItemCollectionMetrics",
                    RETURN_METRICS,
                ),
                ("ReturnValues", "returnValues", RETURN_VALUES),
                (
                    "ConditionalOperator",
                    "conditionalOperator",
                    CONDITIONAL_OPERATOR,
                ),
            ]);
        }
        "Query" => {
            c.read_common(("QueryFilter", "queryFilter"), true);
            c.conditions("KeyConditions", "keyConditions");
        }
        "Scan" => {
            c.read_common(("ScanFilter", "scanFilter"), false);
            let seg = c.get("Segment");
            c.range(seg, "segment", 0, Some(999_999));
            let total = c.get("TotalSegments");
            c.range(total, "totalSegments", 1, Some(1_000_000));
            c.attributes_to_get();
        }
        "BatchGetItem" => {
            c.request_items(Some("keys"), None);
            c.enums(&[(
                "ReturnConsumedCapacity",
                "returnConsumedCapacity",
                RETURN_CAPACITY,
            )]);
        }
        "BatchWriteItem" => {
            c.request_items(None, Some(25));
            c.enums(&[
                (
                    "ReturnConsumedCapacity",
                    "returnConsumedCapacity",
                    RETURN_CAPACITY,
                ),
                (
                    "ReturnItemCollectionMetrics",
                    "returnItemCollectionMetrics",
                    RETURN_METRICS,
                ),
            ]);
        }
        "CreateTable" => {
            table_op_name(req)?;
            c.table_name(true);
            let defs = c.get("AttributeDefinitions");
            if c.required(defs, "attributeDefinitions") {
                c.attribute_definitions(defs);
            }
            let ks = c.get("KeySchema");
            if c.required(ks, "keySchema") {
                c.key_schema(ks, "keySchema", 2);
            }
            let pt = c.get("ProvisionedThroughput");
            c.throughput(pt, "provisionedThroughput");
            c.enums(&[("BillingMode", "billingMode", BILLING)]);
            c.stream_spec();
            c.settings();
            for (field, at) in [
                ("LocalSecondaryIndexes", "localSecondaryIndexes"),
                ("GlobalSecondaryIndexes", "globalSecondaryIndexes"),
            ] {
                for (i, ix) in c
                    .get(field)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let base = format!("{at}.{}.member", i + 1);
                    c.index(ix, &base, field == "GlobalSecondaryIndexes");
                }
            }
        }
        "UpdateTable" => {
            table_op_name(req)?;
            c.table_name(true);
            let pt = c.get("ProvisionedThroughput");
            c.throughput(pt, "provisionedThroughput");
            c.enums(&[("BillingMode", "billingMode", BILLING)]);
            c.settings();
            let defs = c.get("AttributeDefinitions");
            c.attribute_definitions(defs);
            for (i, u) in c
                .get("GlobalSecondaryIndexUpdates")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let base = format!("globalSecondaryIndexUpdates.{}.member", i + 1);
                if let Some(up) = u.get("Update").filter(|v| !v.is_null()) {
                    let at = format!("{base}.update.indexName");
                    let name = up.get("IndexName").filter(|v| !v.is_null());
                    if c.required(name, &at) {
                        c.name(name, &at);
                    }
                    // The units to change: provisioned ones, unless the update changes the
                    // index's warm throughput or maximum on-demand units instead.
                    let at = format!("{base}.update.provisionedThroughput");
                    let pt = up.get("ProvisionedThroughput").filter(|v| !v.is_null());
                    let other = ["OnDemandThroughput", "WarmThroughput"]
                        .iter()
                        .any(|f| up.get(*f).is_some_and(|v| !v.is_null()));
                    if (pt.is_some() || !other) && c.required(pt, &at) {
                        c.throughput(pt, &at);
                    }
                }
                if let Some(cr) = u.get("Create").filter(|v| !v.is_null()) {
                    c.index(cr, &format!("{base}.create"), true);
                }
                if let Some(del) = u.get("Delete").filter(|v| !v.is_null()) {
                    let at = format!("{base}.delete.indexName");
                    let name = del.get("IndexName").filter(|v| !v.is_null());
                    if c.required(name, &at) {
                        c.name(name, &at);
                    }
                }
            }
            c.stream_spec();
        }
        "ListStreams" => {
            c.table_name(false);
            c.stream_arn("ExclusiveStartStreamArn", "exclusiveStartStreamArn", false);
            let limit = c.get("Limit");
            c.range(limit, "limit", 1, Some(100));
        }
        "DescribeStream" => {
            c.stream_arn("StreamArn", "streamArn", true);
            let limit = c.get("Limit");
            c.range(limit, "limit", 1, Some(100));
            let start = c.get("ExclusiveStartShardId");
            c.length(start, "exclusiveStartShardId", 28, 65);
            // ShardFilter: the children of one shard.
            if let Some(f) = c.get("ShardFilter").filter(|v| !v.is_null()) {
                let ty = f.get("Type").filter(|v| !v.is_null());
                if c.required(ty, "shardFilter.type") {
                    c.one_of(ty, "shardFilter.type", &["CHILD_SHARDS"]);
                }
                let id = f.get("ShardId").filter(|v| !v.is_null());
                if c.required(id, "shardFilter.shardId") {
                    c.length(id, "shardFilter.shardId", 28, 65);
                }
            }
        }
        "GetShardIterator" => {
            c.stream_arn("StreamArn", "streamArn", true);
            let shard = c.get("ShardId");
            if c.required(shard, "shardId") {
                c.length(shard, "shardId", 28, 65);
            }
            let ty = c.get("ShardIteratorType");
            if c.required(ty, "shardIteratorType") {
                c.one_of(ty, "shardIteratorType", SHARD_ITERATOR_TYPE);
            }
            let seq = c.get("SequenceNumber");
            c.length(seq, "sequenceNumber", 21, 40);
        }
        "GetRecords" => {
            let it = c.get("ShardIterator");
            if c.required(it, "shardIterator") {
                c.length(it, "shardIterator", 1, 2048);
            }
            let limit = c.get("Limit");
            c.range(limit, "limit", 1, Some(1000));
        }
        "DeleteTable" | "DescribeTable" | "DescribeTimeToLive" => {
            table_op_name(req)?;
            c.table_name(true);
        }
        "DescribeContributorInsights" | "UpdateContributorInsights" => {
            c.table_name(true);
            let ix = c.get("IndexName");
            c.name(ix, "indexName");
            if op == "UpdateContributorInsights" {
                let action = c.get("ContributorInsightsAction");
                if c.required(action, "contributorInsightsAction") {
                    c.one_of(action, "contributorInsightsAction", &["ENABLE", "DISABLE"]);
                }
                c.enums(&[(
                    "ContributorInsightsMode",
                    "contributorInsightsMode",
                    &["ACCESSED_AND_THROTTLED_KEYS", "THROTTLED_KEYS"],
                )]);
            }
        }
        "ListContributorInsights" => {
            c.table_name(false);
            let max = c.get("MaxResults");
            c.range(max, "maxResults", i64::MIN, Some(100));
        }
        "DescribeKinesisStreamingDestination" => c.table_name(true),
        "ExportTableToPointInTime" => {
            let arn = c.get("TableArn");
            if c.required(arn, "tableArn") {
                c.length(arn, "tableArn", 1, 1024);
            }
            let bucket = c.get("S3Bucket");
            if c.required(bucket, "s3Bucket") {
                c.length(bucket, "s3Bucket", 0, 255);
            }
            let prefix = c.get("S3Prefix");
            c.length(prefix, "s3Prefix", 0, 1024);
            let key = c.get("S3SseKmsKeyId");
            c.length(key, "s3SseKmsKeyId", 1, 2048);
            let token = c.get("ClientToken");
            c.length(token, "clientToken", 1, 36);
            c.enums(&[
                ("ExportFormat", "exportFormat", &["DYNAMODB_JSON", "ION"]),
                (
                    "ExportType",
                    "exportType",
                    &["FULL_EXPORT", "INCREMENTAL_EXPORT"],
                ),
                ("S3SseAlgorithm", "s3SseAlgorithm", &["AES256", "KMS"]),
            ]);
        }
        "ImportTable" => {
            let token = c.get("ClientToken");
            c.length(token, "clientToken", 1, 36);
            let source = c.get("S3BucketSource");
            if c.required(source, "s3BucketSource") {
                let bucket = source
                    .and_then(|s| s.get("S3Bucket"))
                    .filter(|v| !v.is_null());
                if c.required(bucket, "s3BucketSource.s3Bucket") {
                    c.length(bucket, "s3BucketSource.s3Bucket", 0, 255);
                }
                let prefix = source.and_then(|s| s.get("S3KeyPrefix"));
                c.length(prefix, "s3BucketSource.s3KeyPrefix", 0, 1024);
            }
            let format = c.get("InputFormat");
            if c.required(format, "inputFormat") {
                c.one_of(format, "inputFormat", &["DYNAMODB_JSON", "ION", "CSV"]);
            }
            c.enums(&[(
                "InputCompressionType",
                "inputCompressionType",
                &["GZIP", "ZSTD", "NONE"],
            )]);
            let params = c.get("TableCreationParameters");
            c.required(params, "tableCreationParameters");
        }
        "ListExports" | "ListImports" => {
            let arn = c.get("TableArn");
            c.length(arn, "tableArn", 1, 1024);
            if op == "ListExports" {
                let max = c.get("MaxResults");
                c.range(max, "maxResults", 1, Some(25));
            } else {
                let size = c.get("PageSize");
                c.range(size, "pageSize", 1, Some(25));
                let token = c.get("NextToken");
                c.length(token, "nextToken", 112, 1024);
                if let Some(t) = token.and_then(Value::as_str)
                    && (t.is_empty()
                        || !t.len().is_multiple_of(16)
                        || !t.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
                {
                    c.fail(
                        token,
                        "nextToken",
                        "Member must satisfy regular expression pattern: ([0-9a-f]{16})+".into(),
                    );
                }
            }
        }
        "DescribeExport" | "DescribeImport" => {
            let (field, at) = if op == "DescribeExport" {
                ("ExportArn", "exportArn")
            } else {
                ("ImportArn", "importArn")
            };
            let arn = c.get(field);
            if c.required(arn, at) {
                c.length(arn, at, 37, 1024);
            }
        }
        "ListGlobalTables" => {
            let start = c.get("ExclusiveStartGlobalTableName");
            c.name(start, "exclusiveStartGlobalTableName");
            let limit = c.get("Limit");
            c.range(limit, "limit", 1, None);
        }
        "DescribeGlobalTable" | "DescribeGlobalTableSettings" => {
            let name = c.get("GlobalTableName");
            if c.required(name, "globalTableName") {
                c.name(name, "globalTableName");
            }
        }
        "ListTables" => {
            let start = c.get("ExclusiveStartTableName");
            c.name(start, "exclusiveStartTableName");
            let limit = c.get("Limit");
            c.range(limit, "limit", 1, Some(100));
        }
        "ExecuteStatement" => {
            c.statement(req, "statement");
            let limit = c.get("Limit");
            c.range(limit, "limit", 1, None);
            let token = c.get("NextToken");
            c.length(token, "nextToken", 1, 32768);
            c.enums(&[
                (
                    "ReturnConsumedCapacity",
                    "returnConsumedCapacity",
                    RETURN_CAPACITY,
                ),
                (
                    "ReturnValuesOnConditionCheckFailure",
                    "returnValuesOnConditionCheckFailure",
                    RETURN_ON_FAILURE,
                ),
            ]);
        }
        "BatchExecuteStatement" | "ExecuteTransaction" => {
            let (field, at, most) = if op == "BatchExecuteStatement" {
                ("Statements", "statements", 25)
            } else {
                ("TransactStatements", "transactStatements", 100)
            };
            let list = c.get(field);
            if c.required(list, at) {
                c.length(list, at, 1, most);
                for (i, s) in list
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    c.statement(s, &format!("{at}.{}.member.statement", i + 1));
                }
            }
            let token = c.get("ClientRequestToken");
            c.length(token, "clientRequestToken", 1, 36);
            c.enums(&[(
                "ReturnConsumedCapacity",
                "returnConsumedCapacity",
                RETURN_CAPACITY,
            )]);
        }
        "TransactWriteItems" => {
            let token = c.get("ClientRequestToken");
            c.length(token, "clientRequestToken", 1, 36);
        }
        "TagResource" => {
            let tags = c.get("Tags");
            if c.get("ResourceArn").is_some() {
                c.required(tags, "tags");
            }
        }
        "UntagResource" => {
            let keys = c.get("TagKeys");
            if c.get("ResourceArn").is_some() {
                c.required(keys, "tagKeys");
            }
        }
        _ => {}
    }
    if c.errs.is_empty() {
        return Ok(());
    }
    // DynamoDB lists at most ten.
    c.errs.truncate(10);
    let n = c.errs.len();
    Err(DdbError::validation(format!(
        "{n} validation error{} detected: {}",
        if n == 1 { "" } else { "s" },
        c.errs.join("; ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(op: &str, req: Value) -> String {
        check(op, &req).err().map(|e| e.message).unwrap_or_default()
    }

    #[test]
    fn every_violation_is_reported_at_once() {
        assert_eq!(
            msg("PutItem", json!({"TableName": "a;"})),
            "3 validation errors detected: Value 'a;' at 'tableName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; Value 'a;' at 'tableName' failed to satisfy constraint: Member must have length greater than or equal to 3; Value null at 'item' failed to satisfy constraint: Member must not be null"
        );
        assert_eq!(
            msg("ListTables", json!({"Limit": 101})),
            "1 validation error detected: Value '101' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 100"
        );
        assert_eq!(msg("GetItem", json!({"TableName": "abc", "Key": {}})), "");
    }

    #[test]
    fn table_operations_name_their_table_first() {
        assert_eq!(
            msg("DescribeTable", json!({})),
            "The parameter 'TableName' is required but was not present in the request"
        );
        assert_eq!(
            msg("DeleteTable", json!({"TableName": "a;"})),
            "TableName must be at least 3 characters long and at most 255 characters long"
        );
        assert_eq!(
            msg(
                "CreateTable",
                json!({"TableName": "abc", "AttributeDefinitions": [], "KeySchema": [], "ProvisionedThroughput": {"ReadCapacityUnits": -1}})
            ),
            "3 validation errors detected: Value '[]' at 'keySchema' failed to satisfy constraint: Member must have length greater than or equal to 1; Value null at 'provisionedThroughput.writeCapacityUnits' failed to satisfy constraint: Member must not be null; Value '-1' at 'provisionedThroughput.readCapacityUnits' failed to satisfy constraint: Member must have value greater than or equal to 1"
        );
    }

    #[test]
    fn index_members_are_checked_with_the_request() {
        // CreateTable: every member of every index, nine empty indexes' 27 errors cut to
        // the first ten (name, key schema and projection of each in turn).
        let empty: Vec<Value> = (0..9).map(|_| json!({})).collect();
        let m = msg(
            "CreateTable",
            json!({"TableName": "abc", "AttributeDefinitions": [{"AttributeName": "a", "AttributeType": "S"}], "KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}], "GlobalSecondaryIndexes": empty}),
        );
        assert!(m.starts_with("10 validation errors detected: Value null at 'globalSecondaryIndexes.1.member.indexName' failed to satisfy constraint: Member must not be null; Value null at 'globalSecondaryIndexes.1.member.keySchema'"), "{m}");
        assert!(m.ends_with("Value null at 'globalSecondaryIndexes.4.member.indexName' failed to satisfy constraint: Member must not be null"), "{m}");
        // An index's key types, its projection's members and a global index's throughput
        // are checked here.
        assert_eq!(
            msg(
                "CreateTable",
                json!({"TableName": "abc", "AttributeDefinitions": [{}], "KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}], "LocalSecondaryIndexes": [{"IndexName": "h;", "KeySchema": [{"AttributeName": "a", "KeyType": "Woop"}], "Projection": {"NonKeyAttributes": [], "ProjectionType": "abc"}}], "GlobalSecondaryIndexes": [{"IndexName": "abc", "KeySchema": [{"AttributeName": "a", "KeyType": "HASH"}], "Projection": {}, "ProvisionedThroughput": {"ReadCapacityUnits": 0}}]})
            ),
            "9 validation errors detected: Value null at 'attributeDefinitions.1.member.attributeName' failed to satisfy constraint: Member must not be null; Value null at 'attributeDefinitions.1.member.attributeType' failed to satisfy constraint: Member must not be null; Value 'h;' at 'localSecondaryIndexes.1.member.indexName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; Value 'h;' at 'localSecondaryIndexes.1.member.indexName' failed to satisfy constraint: Member must have length greater than or equal to 3; Value 'Woop' at 'localSecondaryIndexes.1.member.keySchema.1.member.keyType' failed to satisfy constraint: Member must satisfy enum value set: [HASH, RANGE]; Value 'abc' at 'localSecondaryIndexes.1.member.projection.projectionType' failed to satisfy constraint: Member must satisfy enum value set: [ALL, INCLUDE, KEYS_ONLY]; Value '[]' at 'localSecondaryIndexes.1.member.projection.nonKeyAttributes' failed to satisfy constraint: Member must have length greater than or equal to 1; Value null at 'globalSecondaryIndexes.1.member.provisionedThroughput.writeCapacityUnits' failed to satisfy constraint: Member must not be null; Value '0' at 'globalSecondaryIndexes.1.member.provisionedThroughput.readCapacityUnits' failed to satisfy constraint: Member must have value greater than or equal to 1"
        );
        // UpdateTable: each index update's action.
        assert_eq!(
            msg(
                "UpdateTable",
                json!({"TableName": "abc", "GlobalSecondaryIndexUpdates": [{"Update": {}}, {"Update": {"IndexName": "abc;", "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 0}}}, {"Delete": {"IndexName": "a"}}, {"Create": {"IndexName": "abc"}}]})
            ),
            "7 validation errors detected: Value null at 'globalSecondaryIndexUpdates.1.member.update.indexName' failed to satisfy constraint: Member must not be null; Value null at 'globalSecondaryIndexUpdates.1.member.update.provisionedThroughput' failed to satisfy constraint: Member must not be null; Value 'abc;' at 'globalSecondaryIndexUpdates.2.member.update.indexName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; Value '0' at 'globalSecondaryIndexUpdates.2.member.update.provisionedThroughput.writeCapacityUnits' failed to satisfy constraint: Member must have value greater than or equal to 1; Value 'a' at 'globalSecondaryIndexUpdates.3.member.delete.indexName' failed to satisfy constraint: Member must have length greater than or equal to 3; Value null at 'globalSecondaryIndexUpdates.4.member.create.keySchema' failed to satisfy constraint: Member must not be null; Value null at 'globalSecondaryIndexUpdates.4.member.create.projection' failed to satisfy constraint: Member must not be null"
        );
    }
}
