//! What can go wrong while ingesting. The gRPC layer maps each variant to a status code, so a
//! variant's meaning (one document's fault, or the store's) must not drift.

use rag_store::StoreError;

use crate::extract::ExtractError;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {size} bytes is over the limit of {limit} bytes")]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("{path}: {source}")]
    Extract {
        path: String,
        #[source]
        source: ExtractError,
    },
    #[error(
        "{path}: unsupported media type {media_type:?} (expected text/plain, text/markdown, text/html, application/pdf or a DOCX document)"
    )]
    Unsupported { path: String, media_type: String },
    #[error("{path}: embedding failed: {reason}")]
    Embed { path: String, reason: String },
    #[error("{path}: extraction crashed: {reason}")]
    Crashed { path: String, reason: String },
    #[error("{name:?}: not a usable document name: {reason}")]
    BadName { name: String, reason: String },
    /// The groups named for a document are malformed.
    #[error("{path}: groups: {reason}")]
    BadGroups { path: String, reason: String },
    /// The caller may not write this document: it names a group the caller is not in, or
    /// replaces a version the caller cannot read.
    #[error("{path}: {reason}")]
    Forbidden { path: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Folder(String),
}

impl IndexError {
    /// Whether the error concerns one document only, so a batch goes on without it.
    pub fn is_per_document(&self) -> bool {
        !matches!(self, Self::Store(_) | Self::Folder(_))
    }

    /// A short, fixed name for the variant: a metric label must not carry paths or messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Read { .. } => "read",
            Self::TooLarge { .. } => "too_large",
            Self::Extract { .. } => "extract",
            Self::Unsupported { .. } => "unsupported",
            Self::Embed { .. } => "embed",
            Self::Crashed { .. } => "crashed",
            Self::BadName { .. } => "bad_name",
            Self::BadGroups { .. } => "bad_groups",
            Self::Forbidden { .. } => "forbidden",
            Self::Store(_) => "store",
            Self::Folder(_) => "folder",
        }
    }
}
