//! Our types to qdrant-client's and back.

use std::collections::HashMap;

use qdrant_client::Payload;
use qdrant_client::qdrant::r#match::MatchValue;
use qdrant_client::qdrant::value::Kind;
use qdrant_client::qdrant::{
    CollectionConfig, ListValue, PointId, Query, RepeatedStrings, Struct, Value, Vector,
    vector_output, vectors_config,
};

use crate::backend::{Condition, Filter, PointKey, VectorData};

/// Exact keyword match. `Condition::matches` with a `String` would turn a value containing
/// whitespace (a path like "hr/leave policy.md") into a full-text match.
pub(super) fn to_condition(condition: &Condition) -> qdrant_client::qdrant::Condition {
    use qdrant_client::qdrant::Condition as Q;
    match condition {
        Condition::Keyword { field, value } => {
            Q::matches(*field, MatchValue::Keyword(value.clone()))
        }
        Condition::AnyKeyword { field, values } => Q::matches(
            *field,
            MatchValue::Keywords(RepeatedStrings {
                strings: values.clone(),
            }),
        ),
        Condition::Integer { field, value } => Q::matches(*field, *value),
        Condition::IsEmpty { field } => Q::is_empty(field.as_str()),
    }
}

pub(super) fn to_filter(filter: &Filter) -> Option<qdrant_client::qdrant::Filter> {
    if filter.is_empty() {
        return None;
    }
    let mut out = qdrant_client::qdrant::Filter::must(filter.must.iter().map(to_condition));
    out.must_not = filter.must_not.iter().map(to_condition).collect();
    Some(out)
}

pub(super) fn nearest(vector: VectorData) -> Query {
    match vector {
        VectorData::Dense(v) => Query::new_nearest(v),
        VectorData::Sparse(v) => {
            let pairs: Vec<(u32, f32)> = v.indices.into_iter().zip(v.values).collect();
            Query::from(pairs)
        }
    }
}

pub(super) fn to_vector(vector: VectorData) -> Vector {
    match vector {
        VectorData::Dense(v) => Vector::new_dense(v),
        VectorData::Sparse(v) => Vector::new_sparse(v.indices, v.values),
    }
}

pub(super) fn dense_vector(
    vectors: Option<&qdrant_client::qdrant::VectorsOutput>,
    name: Option<&str>,
) -> Option<Vec<f32>> {
    match vectors?.get_vector_by_name(name?)? {
        vector_output::Vector::Dense(v) => Some(v.data),
        _ => None,
    }
}

/// Dimensions of the named dense vector `name`, if the collection has one.
pub(super) fn dense_size(config: &CollectionConfig, name: &str) -> Option<usize> {
    let vectors = config
        .params
        .as_ref()?
        .vectors_config
        .as_ref()?
        .config
        .as_ref()?;
    match vectors {
        vectors_config::Config::ParamsMap(map) => usize::try_from(map.map.get(name)?.size).ok(),
        // A single unnamed vector: not the layout the migrations create.
        vectors_config::Config::Params(_) => None,
    }
}

// qdrant-client converts between its `Value` and serde_json only with its `serde` feature; these
// mirror those conversions so the crate does not depend on that feature.

pub(super) fn to_payload(map: serde_json::Map<String, serde_json::Value>) -> Payload {
    Payload::from(
        map.into_iter()
            .map(|(k, v)| (k, to_value(v)))
            .collect::<HashMap<String, Value>>(),
    )
}

pub(super) fn to_value(value: serde_json::Value) -> Value {
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Kind::IntegerValue(i),
            None => Kind::DoubleValue(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Kind::StringValue(s),
        serde_json::Value::Array(values) => Kind::ListValue(ListValue {
            values: values.into_iter().map(to_value).collect(),
        }),
        serde_json::Value::Object(map) => Kind::StructValue(Struct {
            fields: map.into_iter().map(|(k, v)| (k, to_value(v))).collect(),
        }),
    };
    Value { kind: Some(kind) }
}

pub(super) fn to_point_id(key: PointKey) -> PointId {
    match key {
        PointKey::Num(n) => PointId::from(n),
        PointKey::Uuid(u) => PointId::from(u.to_string()),
    }
}

pub(super) fn to_json_map(
    payload: HashMap<String, Value>,
) -> serde_json::Map<String, serde_json::Value> {
    payload.into_iter().map(|(k, v)| (k, to_json(v))).collect()
}

pub(super) fn to_json(value: Value) -> serde_json::Value {
    match value.kind {
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(b),
        Some(Kind::IntegerValue(i)) => serde_json::Value::from(i),
        Some(Kind::DoubleValue(d)) => serde_json::Value::from(d),
        Some(Kind::StringValue(s)) => serde_json::Value::String(s),
        Some(Kind::ListValue(list)) => {
            serde_json::Value::Array(list.values.into_iter().map(to_json).collect())
        }
        Some(Kind::StructValue(s)) => serde_json::Value::Object(to_json_map(s.fields)),
        Some(Kind::NullValue(_)) | None => serde_json::Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_through_qdrant_values() {
        let json = serde_json::json!({
            "s": "hr/leave policy.md",
            "i": 42,
            "neg": -3,
            "f": 1.5,
            "b": true,
            "n": null,
            "list": ["a", "b/"],
            "obj": {"k": "v", "nested": [1, 2]},
        });
        let serde_json::Value::Object(map) = json.clone() else {
            unreachable!()
        };
        let payload: HashMap<String, Value> = to_payload(map).into();
        assert_eq!(serde_json::Value::Object(to_json_map(payload)), json);
    }

    #[test]
    fn keyword_conditions_stay_exact_with_spaces() {
        let condition = to_condition(&Condition::keyword(
            crate::fields::SOURCE,
            "hr/leave policy.md",
        ));
        let Some(qdrant_client::qdrant::condition::ConditionOneOf::Field(field)) =
            condition.condition_one_of
        else {
            panic!("field condition expected")
        };
        let value = field.r#match.and_then(|m| m.match_value);
        assert_eq!(
            value,
            Some(MatchValue::Keyword("hr/leave policy.md".into()))
        );
    }

    #[test]
    fn filters_translate_must_and_must_not() {
        assert!(to_filter(&Filter::default()).is_none());
        let filter = to_filter(
            &Filter::must(Condition::keyword(crate::fields::DOC_ID, "d"))
                .and(Condition::Integer {
                    field: crate::fields::CHUNK_INDEX,
                    value: 0,
                })
                .and_not(Condition::keyword(crate::fields::DOC_HASH, "h")),
        )
        .expect("filter");
        assert_eq!(filter.must.len(), 2);
        assert_eq!(filter.must_not.len(), 1);
    }
}
