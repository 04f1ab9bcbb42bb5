//! `GetQueueAttributes`: a queue's attributes and counters, by name or `All`.

use serde_json::{Map, Value, json};

use store::queue::SqsError;

use super::input::{queue_name, str_list};
use crate::AppState;

pub(super) struct GetQueueAttributes {
    name: String,
    attribute_names: Vec<String>,
}

impl GetQueueAttributes {
    pub(super) fn parse(input: &Value) -> Result<Self, SqsError> {
        Ok(GetQueueAttributes {
            name: queue_name(input)?,
            attribute_names: str_list(input, "AttributeNames")?,
        })
    }

    pub(super) fn apply(self, state: &AppState) -> Result<Value, SqsError> {
        let attrs = state
            .store
            .queues
            .get_attributes(&self.name, &self.attribute_names)?;
        let mut m = Map::new();
        for (k, v) in attrs {
            m.insert(k.into(), Value::String(v));
        }
        if m.is_empty() {
            Ok(json!({}))
        } else {
            Ok(json!({"Attributes": m}))
        }
    }
}
