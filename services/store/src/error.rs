use std::path::PathBuf;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or opened; retrying later may help.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The embedded data directory is held by another process (a running `rag serve`, or a
    /// second ingest): only one process may open it at a time.
    #[error("store {} is in use by another process", path.display())]
    Locked { path: PathBuf },
    /// The stored schema does not fit this configuration (e.g. another vector size).
    #[error("store schema mismatch: {0}")]
    SchemaMismatch(String),
    /// A migration file is malformed.
    #[error("migration {name}: {reason}")]
    Migration { name: String, reason: String },
    #[error("store I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The embedded store's file system is (nearly) full: the write was not made. The engine
    /// writes through memory maps, where a full disk is a crash (SIGBUS), not an error: so
    /// writes stop while less than the configured reserve is free.
    #[error(
        "store data directory {} has {} MB free, less than the {} MB kept free for the store \
         (store.min_free_mb): writing stopped here (what was written before is complete); free \
         some space and run again",
        path.display(), free / 1_000_000, reserve / 1_000_000
    )]
    Full {
        path: PathBuf,
        free: u64,
        reserve: u64,
    },
    /// The engine rejected or failed an operation.
    #[error("store operation failed: {0}")]
    Operation(String),
}

impl StoreError {
    /// A migration step that needs the collection came before the step that creates it.
    pub(crate) fn before_collection(migration: &str, what: &str) -> Self {
        Self::Migration {
            name: migration.to_owned(),
            reason: format!("{what} before the collection exists"),
        }
    }
}
