//! The schema record: which migrations a store has applied, and for which embedding model and
//! vector size. Each backend keeps it where it can (a file beside the embedded shard, the
//! collection's metadata on a server); what it says is checked in one place.

use serde::{Deserialize, Serialize};

use crate::migrations::Target;
use crate::{Result, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaRecord {
    /// The last migration applied; 0 while the first one is under way.
    pub version: u32,
    pub vector_size: usize,
    pub embedding_model: String,
}

impl SchemaRecord {
    pub fn new(version: u32, target: &Target) -> Self {
        Self {
            version,
            vector_size: target.vector_size,
            embedding_model: target.embedding_model.clone(),
        }
    }

    /// Refuses a store built for another model or vector size: its vectors are not comparable
    /// with the ones this configuration makes, so reusing it would return nonsense silently.
    pub fn check(&self, target: &Target, store: &str) -> Result<()> {
        if self.vector_size != target.vector_size || self.embedding_model != target.embedding_model
        {
            return Err(StoreError::SchemaMismatch(format!(
                "{store} was built with embedding model {} ({} dimensions) but {} ({} dimensions) \
                 is configured; `rag reindex` rebuilds the store for the configured model (and switches \
                 to it), or use another data directory or collection",
                self.embedding_model, self.vector_size, target.embedding_model, target.vector_size
            )));
        }
        Ok(())
    }
}
