//! What the service answers from, shared by both doors: empty until start-up has loaded it,
//! replaced whole when a rebuild switches the store.

use std::sync::{Arc, RwLock};

use rag_engine::Engine;
use rag_ingest::Indexer;

use crate::ApiError;

/// What the service needs once start-up has loaded it: the engine answers, the indexer takes
/// documents sent over the API.
#[derive(Clone)]
pub struct Loaded {
    pub engine: Engine,
    pub indexer: Arc<Indexer>,
}

/// A call keeps the [`Loaded`] it started with, so no call mixes two stores (or two embedding
/// models).
#[derive(Default)]
pub struct Current {
    loaded: RwLock<Option<Arc<Loaded>>>,
    /// Held shared by every call that writes documents, for its whole length; a rebuild takes
    /// it alone to carry the last writes over and switch with none in flight.
    writes: tokio::sync::RwLock<()>,
}

impl Current {
    pub fn get(&self) -> Option<Arc<Loaded>> {
        self.loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// What a call answers from; [`ApiError::NotReady`] until start-up has loaded it.
    pub fn loaded(&self) -> Result<Arc<Loaded>, ApiError> {
        self.get().ok_or(ApiError::NotReady)
    }

    /// Puts `loaded` in place; returns what calls started before may still be using.
    pub fn replace(&self, loaded: Loaded) -> Option<Arc<Loaded>> {
        self.loaded
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .replace(Arc::new(loaded))
    }

    /// Held by a call that writes documents for its whole length.
    pub async fn writing(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.writes.read().await
    }

    /// Waits for the calls writing documents to end and keeps new ones waiting until the
    /// guard is dropped.
    pub async fn pause_writes(&self) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        self.writes.write().await
    }
}
