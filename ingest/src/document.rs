//! Where a document comes from (a folder's file, or bytes sent over the API) and the id it is
//! stored under.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::IndexError;
use crate::extract::MediaType;
use crate::walk::Found;

/// The `root` of documents that arrived over the API rather than from a folder.
pub const API_ROOT: &str = "api:";

/// Deterministic document id for a source path under a root.
pub fn doc_id_for(root: &str, source: &str) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(root.as_bytes());
    hasher.update(&[0]);
    hasher.update(source.as_bytes());
    hasher.finalize().to_hex()[..32].to_owned()
}

/// A document sent as bytes.
#[derive(Debug, Clone)]
pub struct IncomingDocument {
    pub file_name: String,
    /// Empty: inferred from `file_name`.
    pub media_type: String,
    pub content: Vec<u8>,
    /// Empty: derived from `file_name`.
    pub document_id: String,
    pub metadata: BTreeMap<String, String>,
}

impl IncomingDocument {
    /// The media type named, or else the one the file name implies.
    pub(crate) fn media(&self) -> Result<MediaType, IndexError> {
        let named = !self.media_type.trim().is_empty();
        let media = if named {
            MediaType::from_mime(&self.media_type)
        } else {
            MediaType::from_path(Path::new(&self.file_name))
        };
        media.ok_or_else(|| IndexError::Unsupported {
            path: self.file_name.clone(),
            media_type: if self.media_type.is_empty() {
                self.file_name.clone()
            } else {
                self.media_type.clone()
            },
        })
    }

    /// Its origin and its bytes, once its media type is known.
    pub(crate) fn into_origin(self, media: MediaType) -> (Origin, Vec<u8>) {
        let doc_id = if self.document_id.is_empty() {
            doc_id_for(API_ROOT, &self.file_name)
        } else {
            self.document_id
        };
        let origin = Origin {
            root: API_ROOT.to_owned(),
            doc_id,
            source: self.file_name,
            media,
            on_disk: None,
            metadata: self.metadata,
        };
        (origin, self.content)
    }
}

/// Everything about a document but its bytes: what the prepare stage needs to turn them into
/// chunks and to name the document in errors and payloads.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub root: String,
    pub doc_id: String,
    /// The path under the root, or the file name sent: what errors and answers cite.
    pub source: String,
    pub media: MediaType,
    /// Where the bytes already sit on disk, so the PDF helper need not stage a copy.
    pub on_disk: Option<PathBuf>,
    pub metadata: BTreeMap<String, String>,
}

impl Origin {
    pub fn file(root: &str, doc_id: String, file: &Found) -> Self {
        Self {
            root: root.to_owned(),
            doc_id,
            source: file.relative.clone(),
            media: file.media,
            on_disk: Some(file.path.clone()),
            metadata: BTreeMap::new(),
        }
    }
}
