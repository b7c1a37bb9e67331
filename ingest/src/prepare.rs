//! file or bytes -> text -> chunks: everything about a document before embedding, run on
//! blocking threads so several files are read and extracted while the model embeds others.
//!
//! A folder's file ([`Preparer::read`]) and a document sent over the API
//! ([`Preparer::accept`]) pass the same checks, then the same [`Preparer::prepare`].

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use crate::chunk::{Chunk, Chunker};
use crate::config::IngestConfig;
use crate::document::{IncomingDocument, Origin};
use crate::error::IndexError;
use crate::extract::{self, ExtractError, MediaType, PdfExtractor};
use crate::manifest::Stat;
use crate::open::open_beneath;
use crate::stored::{Decision, StoredVersions};
use crate::walk::Found;

/// A document version whose chunks wait for vectors.
#[derive(Debug)]
pub(crate) struct Ready {
    pub doc_id: String,
    pub root: String,
    pub source: String,
    pub media: MediaType,
    pub title: String,
    pub metadata: BTreeMap<String, String>,
    pub groups: Vec<String>,
    pub doc_hash: String,
    pub pages: u32,
    pub chunks: Vec<Chunk>,
    /// The file's stat when it was read (folder ingests), for the manifest.
    pub stat: Option<Stat>,
}

/// What preparing one document came to.
#[derive(Debug)]
pub(crate) enum Prepared {
    /// The stored version is this one: nothing to embed. `stale` when an interrupted run left
    /// another version of the document behind, to be swept.
    Unchanged {
        relative: String,
        doc_id: String,
        doc_hash: String,
        stat: Option<Stat>,
        stale: bool,
    },
    Ready(Box<Ready>),
    Failed {
        relative: String,
        error: IndexError,
    },
}

/// The settings and tools of the stages before embedding; cheap to clone into tasks.
#[derive(Clone)]
pub(crate) struct Preparer {
    pub pdf: PdfExtractor,
    pub chunker: Arc<Chunker>,
    pub max_file_bytes: u64,
    /// Everything besides the bytes that shapes a document's points: a change re-indexes.
    pub fingerprint: Arc<str>,
}

impl Preparer {
    pub fn new(pdf: PdfExtractor, chunker: Chunker, config: &IngestConfig, model: &str) -> Self {
        let chunker = chunker.with_context(config.chunk_headers);
        Self {
            pdf,
            chunker: Arc::new(chunker),
            max_file_bytes: config.max_file_bytes,
            // v2: chunks carry their Markdown heading path. v3: and a lexical (BM25) vector.
            // v4: heading-only Markdown fragments merged into the body they head; `headers`:
            // the embedded text (and lexical vector) starts with the chunk's header line.
            fingerprint: format!(
                "v4|{model}|{}|{}{}",
                config.chunk_tokens,
                config.overlap_tokens,
                if config.chunk_headers { "|headers" } else { "" }
            )
            .into(),
        }
    }

    /// The version of a document: its bytes, the pipeline, and who may read it — so a
    /// changed permission rule rewrites the document's points (vectors are reused). Open
    /// documents hash as before permissions existed, so upgrading re-indexes nothing.
    pub fn doc_hash(&self, bytes: &[u8], groups: &[String]) -> String {
        let mut hasher = blake3::Hasher::new();
        hasher.update(self.fingerprint.as_bytes());
        hasher.update(&[0]);
        hasher.update(bytes);
        if groups != [rag_store::EVERYONE] {
            hasher.update(&[0]);
            hasher.update(groups.join("\n").as_bytes());
        }
        hasher.finalize().to_hex().to_string()
    }

    /// Reads one file of a folder and prepares it. Blocking.
    pub fn prepare_file(
        &self,
        root: &str,
        doc_id: String,
        file: &Found,
        groups: Vec<String>,
        stored: &StoredVersions,
    ) -> Prepared {
        match self.read(file) {
            Ok((bytes, stat)) => self.prepare(
                Origin::file(root, doc_id, file, groups),
                &bytes,
                Some(stat),
                stored,
            ),
            Err(error) => Prepared::Failed {
                relative: file.relative.clone(),
                error,
            },
        }
    }

    /// The file's stat by path, without following a link (`lstat`), refused above the size
    /// limit: enough to find a file unchanged by the manifest without reading it. A link or
    /// anything but a regular file is refused here, and then by the read with its reason.
    pub fn stat(&self, file: &Found) -> Result<Stat, IndexError> {
        let metadata = fs_err::symlink_metadata(&file.path).map_err(|source| IndexError::Read {
            path: file.relative.clone(),
            source,
        })?;
        if !metadata.is_file() {
            return Err(IndexError::Read {
                path: file.relative.clone(),
                source: std::io::Error::other("not a regular file"),
            });
        }
        let stat = Stat::of(&metadata);
        self.within_limit(&file.relative, stat.size)?;
        Ok(stat)
    }

    /// The file's bytes and the stat of the very file they were read from. The file is
    /// opened without following links (see `open`), and the bytes, their hash and the stat
    /// recorded in the manifest all come from that one handle: the path is not looked up
    /// again. At most the size limit is read, even from a file that grows meanwhile.
    pub fn read(&self, file: &Found) -> Result<(Vec<u8>, Stat), IndexError> {
        let failed = |source| IndexError::Read {
            path: file.relative.clone(),
            source,
        };
        let (opened, metadata) = open_beneath(&file.root, &file.path).map_err(failed)?;
        let stat = Stat::of(&metadata);
        self.within_limit(&file.relative, stat.size)?;
        let mut bytes = Vec::with_capacity(usize::try_from(stat.size).unwrap_or(0));
        opened
            .take(self.max_file_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(failed)?;
        self.within_limit(&file.relative, bytes.len() as u64)?;
        Ok((bytes, stat))
    }

    /// A document sent as bytes, with its media type known and its size within the limit.
    pub fn accept(&self, mut doc: IncomingDocument) -> Result<(Origin, Vec<u8>), IndexError> {
        doc.file_name = crate::document::source_name(&doc.file_name)?;
        crate::document::check_groups(&doc.groups).map_err(|reason| IndexError::BadGroups {
            path: doc.file_name.clone(),
            reason,
        })?;
        let media = doc.media()?;
        self.within_limit(&doc.file_name, doc.content.len() as u64)?;
        Ok(doc.into_origin(media))
    }

    fn within_limit(&self, source: &str, size: u64) -> Result<(), IndexError> {
        if size > self.max_file_bytes {
            return Err(IndexError::TooLarge {
                path: source.to_owned(),
                size,
                limit: self.max_file_bytes,
            });
        }
        Ok(())
    }

    /// bytes -> text -> chunks, unless the store already holds this version. Blocking.
    pub fn prepare(
        &self,
        origin: Origin,
        bytes: &[u8],
        stat: Option<Stat>,
        stored: &StoredVersions,
    ) -> Prepared {
        let doc_hash = self.doc_hash(bytes, &origin.groups);
        if let Decision::Unchanged { stale } = stored.decide(&doc_hash) {
            return Prepared::Unchanged {
                relative: origin.source,
                doc_id: origin.doc_id,
                doc_hash,
                stat,
                stale,
            };
        }
        match self.extract_and_chunk(&origin, bytes) {
            Ok((chunks, pages, title)) => Prepared::Ready(Box::new(Ready {
                doc_id: origin.doc_id,
                root: origin.root,
                source: origin.source,
                media: origin.media,
                title,
                metadata: origin.metadata,
                groups: origin.groups,
                doc_hash,
                pages,
                chunks,
                stat,
            })),
            Err(error) => Prepared::Failed {
                relative: origin.source,
                error,
            },
        }
    }

    /// Text and chunks of one document; `(chunks, pages, title)`. Blocking.
    fn extract_and_chunk(
        &self,
        origin: &Origin,
        bytes: &[u8],
    ) -> Result<(Vec<Chunk>, u32, String), IndexError> {
        let failed = |e| IndexError::Extract {
            path: origin.source.clone(),
            source: e,
        };
        // No path, even for a folder's file: the PDF helpers get a staged copy of these bytes,
        // never the file re-opened by a path that may lead elsewhere by now.
        let extracted = extract::extract(origin.media, bytes, None, &self.pdf).map_err(failed)?;
        let mut chunks = self.chunker.chunk(origin.media, &extracted);
        if chunks.is_empty() {
            return Err(failed(ExtractError::NoText));
        }
        let pages = extracted.pages.iter().filter(|p| p.number > 0).count() as u32;
        self.chunker
            .add_headers(&mut chunks, extracted.title.as_deref());
        let title = extracted
            .title
            .unwrap_or_else(|| title_from_path(&origin.source));
        Ok((chunks, pages, title))
    }
}

/// Runs `prepare` on a blocking thread; a panic in a parser becomes this document's failure.
pub(crate) async fn on_blocking_thread(
    relative: String,
    prepare: impl FnOnce() -> Prepared + Send + 'static,
) -> Prepared {
    match tokio::task::spawn_blocking(prepare).await {
        Ok(prepared) => prepared,
        Err(e) => Prepared::Failed {
            error: IndexError::Crashed {
                path: relative.clone(),
                reason: if e.is_panic() {
                    "the extractor panicked".into()
                } else {
                    e.to_string()
                },
            },
            relative,
        },
    }
}

pub(crate) fn title_from_path(source: &str) -> String {
    Path::new(source)
        .file_stem()
        .map(|s| s.to_string_lossy().replace(['_', '-'], " "))
        .unwrap_or_else(|| source.to_owned())
}

#[cfg(all(test, unix))]
mod tests {
    use std::collections::HashSet;
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::walk::{Selection, walk};

    fn preparer() -> Preparer {
        let tokenizer = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../models/embed/all-MiniLM-L6-v2/tokenizer.json");
        let pdf = PdfExtractor {
            helper: None,
            pdftotext: None,
            timeout: Duration::from_secs(5),
        };
        let config = IngestConfig::default();
        let chunker = Chunker::new(&tokenizer, config.chunk_tokens, config.overlap_tokens).unwrap();
        Preparer::new(pdf, chunker, &config, "test-model")
    }

    /// What preparing `file` gives: its chunks' text, or the failure.
    fn text_of(preparer: &Preparer, root: &Path, file: &Found) -> Result<String, String> {
        let nothing_stored = StoredVersions::new(HashSet::new(), false);
        let root = root.to_string_lossy();
        match preparer.prepare_file(&root, "id".into(), file, vec![], &nothing_stored) {
            Prepared::Ready(ready) => Ok(ready
                .chunks
                .iter()
                .map(|c| c.text.as_str())
                .collect::<Vec<_>>()
                .join("\n")),
            Prepared::Failed { error, .. } => Err(error.to_string()),
            Prepared::Unchanged { .. } => Err("unchanged".into()),
        }
    }

    /// The walk saw regular files; before they are read, one is replaced by a symbolic link
    /// to a file outside the folder, and a folder on another's path by a link to a folder
    /// outside. Neither outside text is read: both files fail, saying why.
    #[test]
    fn a_file_or_folder_swapped_for_a_link_after_the_walk_is_not_read() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.md"), "outside secret text").unwrap();
        std::fs::write(outside.path().join("deep.md"), "outside deep text").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("notes.md"), "inside notes text").unwrap();
        std::fs::write(root.join("sub/deep.md"), "inside deep text").unwrap();
        std::fs::write(root.join("kept.md"), "inside kept text").unwrap();

        let (found, skipped) = walk(&root, &Selection::default()).unwrap();
        assert!(skipped.is_empty());
        let by_name = |name: &str| found.iter().find(|f| f.relative == name).unwrap();

        // The swaps, between the walk and the read.
        std::fs::remove_file(root.join("notes.md")).unwrap();
        symlink(outside.path().join("secret.md"), root.join("notes.md")).unwrap();
        std::fs::rename(root.join("sub"), root.join("sub-was")).unwrap();
        symlink(outside.path(), root.join("sub")).unwrap();

        let preparer = preparer();
        let err = text_of(&preparer, &root, by_name("notes.md")).unwrap_err();
        assert!(
            err.contains("notes.md: cannot read: the file is a symbolic link"),
            "{err}"
        );
        let err = text_of(&preparer, &root, by_name("sub/deep.md")).unwrap_err();
        assert!(
            err.contains(
                "sub/deep.md: cannot read: the folder \"sub\" on its path is a symbolic link"
            ),
            "{err}"
        );
        // Nor does the stat that lets the manifest vouch for a file follow the link.
        assert!(preparer.stat(by_name("notes.md")).is_err());

        let kept = text_of(&preparer, &root, by_name("kept.md")).unwrap();
        assert!(kept.contains("inside kept text"), "{kept}");
    }

    #[test]
    fn the_stat_and_the_bytes_come_from_the_file_read() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join("a.md"), "twelve bytes").unwrap();
        let (found, _) = walk(&root, &Selection::default()).unwrap();
        let (bytes, stat) = preparer().read(&found[0]).unwrap();
        assert_eq!(bytes, b"twelve bytes");
        assert_eq!(stat.size, 12);
        assert_eq!(
            stat.inode,
            std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(root.join("a.md")).unwrap())
        );
    }
}
