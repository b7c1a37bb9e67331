//! A folder's files next to what the store holds for it: the starting point of a folder run and
//! of a dry run.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use rag_store::Store;

use crate::error::IndexError;
use crate::stored::StoredVersions;
use crate::walk::{Found, Selection, Skipped, walk};

pub(crate) struct Survey {
    pub root_key: String,
    pub found: Vec<Found>,
    pub skipped: Vec<Skipped>,
    /// By doc_id.
    pub stored: HashMap<String, StoredDoc>,
    /// Documents with points of an unfinished version, to be swept.
    pub unclean: HashSet<String>,
}

pub(crate) struct StoredDoc {
    pub source: String,
    /// One per stored version; more than one only after an interrupted run.
    pub hashes: HashSet<String>,
}

impl Survey {
    /// The folder's supported files and the document versions stored for it.
    pub async fn take(
        store: &Store,
        root: &Path,
        selection: &Selection,
    ) -> Result<Self, IndexError> {
        let root = fs_err::canonicalize(root).map_err(|e| IndexError::Folder(e.to_string()))?;
        if !root.is_dir() {
            return Err(IndexError::Folder(format!(
                "{}: not a folder",
                root.display()
            )));
        }
        let root_key = root.to_string_lossy().into_owned();
        let selection = selection.clone();
        let (found, skipped) = tokio::task::spawn_blocking(move || walk(&root, &selection))
            .await
            .map_err(|e| IndexError::Folder(format!("walk: {e}")))?
            .map_err(IndexError::Folder)?;
        let mut stored: HashMap<String, StoredDoc> = HashMap::new();
        let mut complete_points = 0u64;
        for v in store.document_versions(Some(&root_key), None).await? {
            complete_points += u64::from(v.chunk_count);
            let doc = stored.entry(v.doc_id).or_insert_with(|| StoredDoc {
                source: v.source,
                hashes: HashSet::new(),
            });
            doc.hashes.insert(v.doc_hash);
        }
        // More points than the complete versions hold: a run was interrupted while writing a
        // version (no commit marker yet). Find those documents so they are swept, whatever
        // becomes of their files.
        let mut unclean = HashSet::new();
        if store.count_in_root(&root_key).await? > complete_points {
            for (doc_id, doc_hash) in store.point_versions(&root_key).await? {
                if !stored
                    .get(&doc_id)
                    .is_some_and(|d| d.hashes.contains(&doc_hash))
                {
                    unclean.insert(doc_id);
                }
            }
        }
        Ok(Self {
            root_key,
            found,
            skipped,
            stored,
            unclean,
        })
    }

    /// What the store holds of one document of the folder.
    pub fn versions(&self, doc_id: &str) -> StoredVersions {
        StoredVersions::new(
            self.stored
                .get(doc_id)
                .map(|d| d.hashes.clone())
                .unwrap_or_default(),
            self.unclean.contains(doc_id),
        )
    }
}
