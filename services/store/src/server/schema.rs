//! The schema record, kept in the collection's own metadata.

use std::collections::HashMap;

use qdrant_client::qdrant::Value;

use super::ServerBackend;
use crate::backend::Backend;
use crate::schema::SchemaRecord;
use crate::{Result, StoreError};

/// Collection metadata keys of the schema record. Flat keys, because an update merges metadata
/// key by key.
const META_VERSION: &str = "rag_schema_version";
const META_VECTOR_SIZE: &str = "rag_vector_size";
const META_MODEL: &str = "rag_embedding_model";

pub(super) fn to_metadata(record: &SchemaRecord) -> HashMap<String, Value> {
    HashMap::from([
        (
            META_VERSION.to_owned(),
            Value::from(i64::from(record.version)),
        ),
        (
            META_VECTOR_SIZE.to_owned(),
            Value::from(i64::try_from(record.vector_size).unwrap_or(i64::MAX)),
        ),
        (
            META_MODEL.to_owned(),
            Value::from(record.embedding_model.clone()),
        ),
    ])
}

/// `Ok(None)` when the metadata holds no record at all.
pub(super) fn from_metadata(
    metadata: &HashMap<String, Value>,
) -> std::result::Result<Option<SchemaRecord>, String> {
    if ![META_VERSION, META_VECTOR_SIZE, META_MODEL]
        .iter()
        .any(|k| metadata.contains_key(*k))
    {
        return Ok(None);
    }
    let integer = |key: &str| {
        metadata
            .get(key)
            .and_then(Value::as_integer)
            .ok_or_else(|| format!("metadata {key} is missing or not an integer"))
    };
    let version = u32::try_from(integer(META_VERSION)?)
        .map_err(|_| format!("metadata {META_VERSION} is out of range"))?;
    let vector_size = usize::try_from(integer(META_VECTOR_SIZE)?)
        .map_err(|_| format!("metadata {META_VECTOR_SIZE} is out of range"))?;
    let embedding_model = metadata
        .get(META_MODEL)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("metadata {META_MODEL} is missing or not a string"))?
        .clone();
    Ok(Some(SchemaRecord {
        version,
        vector_size,
        embedding_model,
    }))
}

impl ServerBackend {
    /// The schema record of the collection; `None` when the collection does not exist.
    pub(super) async fn read_schema(&self) -> Result<Option<SchemaRecord>> {
        if !self.exists().await? {
            return Ok(None);
        }
        let config = self.collection_config().await?;
        match from_metadata(&config.metadata) {
            Ok(Some(record)) => Ok(Some(record)),
            Ok(None) => Err(StoreError::SchemaMismatch(format!(
                "collection {} exists but was not created by rag; configure another collection",
                self.collection
            ))),
            Err(e) => Err(StoreError::SchemaMismatch(format!(
                "{}: {e}",
                self.describe()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_record_round_trips_and_foreign_metadata_is_none() {
        let record = SchemaRecord {
            version: 1,
            vector_size: 384,
            embedding_model: "m".into(),
        };
        assert_eq!(from_metadata(&to_metadata(&record)), Ok(Some(record)));
        let foreign = HashMap::from([("owner".to_owned(), Value::from("someone"))]);
        assert_eq!(from_metadata(&foreign), Ok(None));
        let broken = HashMap::from([(META_VERSION.to_owned(), Value::from("one"))]);
        assert!(from_metadata(&broken).is_err());
    }
}
