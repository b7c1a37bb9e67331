//! Where a document comes from (a folder's file, or bytes sent over the API) and the id it is
//! stored under.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rag_store::Visibility;

use crate::error::IndexError;
use crate::extract::MediaType;
use crate::walk::Found;

/// Checks group names given for a document or in a rule: each a valid name, or `*` alone
/// meaning everyone.
pub(crate) fn check_groups(groups: &[String]) -> Result<(), String> {
    for group in groups {
        let group = group.trim();
        if group != rag_store::EVERYONE && !rag_store::valid_name(group) {
            return Err(format!(
                "{group:?} is not a group name ({}; or \"*\" for everyone)",
                rag_store::NAME_RULE
            ));
        }
    }
    Ok(())
}

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

/// The name a document sent over the API is stored and cited under: a relative path with `/`
/// between its parts (a backslash counts as one), without empty or `.` parts. Refused: `..` parts,
/// absolute paths (also `C:`-style), control characters — such a name would be shown to
/// readers, and copied into paths by anyone who mirrors the index, as given.
pub fn source_name(name: &str) -> Result<String, IndexError> {
    let bad = |reason| IndexError::BadName {
        name: name.to_owned(),
        reason,
    };
    let name_trimmed = name.trim();
    if name_trimmed.chars().any(char::is_control) {
        return Err(bad("it contains control characters"));
    }
    let unified = name_trimmed.replace('\\', "/");
    if unified.starts_with('/')
        || unified
            .split('/')
            .next()
            .is_some_and(|first| first.ends_with(':'))
    {
        return Err(bad("absolute paths are not accepted; send a relative name"));
    }
    let mut parts = Vec::new();
    for part in unified.split('/') {
        match part.trim() {
            "" | "." => {}
            ".." => return Err(bad("`..` is not accepted in a name")),
            _ => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err(bad("it is empty"));
    }
    Ok(parts.join("/"))
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
    /// The tenant it is written into: the caller's.
    pub tenant: String,
    /// Who may read it; empty: everyone in the tenant.
    pub groups: Vec<String>,
    /// What the caller may read: it may only write documents for its own groups, and only
    /// replace versions it can read.
    pub writer: Visibility,
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
            groups: rag_store::normalise_groups(&self.groups),
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
    /// Who may read it, normalised ([`rag_store::normalise_groups`]).
    pub groups: Vec<String>,
}

impl Origin {
    pub fn file(root: &str, doc_id: String, file: &Found, groups: Vec<String>) -> Self {
        Self {
            root: root.to_owned(),
            doc_id,
            source: file.relative.clone(),
            media: file.media,
            on_disk: Some(file.path.clone()),
            metadata: BTreeMap::new(),
            groups,
        }
    }
}

#[cfg(test)]
mod name_tests {
    use super::source_name;

    #[test]
    fn names_are_normalised_relative_paths() {
        for (given, stored) in [
            ("leave.md", "leave.md"),
            ("  hr/leave.md ", "hr/leave.md"),
            ("./hr//leave.md", "hr/leave.md"),
            ("hr\\policies\\leave.md", "hr/policies/leave.md"),
            ("연차/휴가 규정.md", "연차/휴가 규정.md"),
            ("a..b.md", "a..b.md"),
        ] {
            assert_eq!(source_name(given).unwrap(), stored, "{given:?}");
        }
    }

    #[test]
    fn escaping_absolute_and_control_names_are_refused() {
        for given in [
            "../../etc/passwd.txt",
            "hr/../../x.md",
            "/etc/passwd.txt",
            "\\\\server\\share\\x.md",
            "C:\\Windows\\x.txt",
            "bad\nname.md",
            "tab\tname.md",
            "",
            "./",
        ] {
            assert!(source_name(given).is_err(), "{given:?} was accepted");
        }
    }
}
