use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Largest chunk, in embedding-model tokens (special tokens excluded).
    pub chunk_tokens: usize,
    /// Tokens shared by neighbouring chunks.
    pub overlap_tokens: usize,
    /// Contextual chunk headers: each chunk is embedded (and its lexical vector made) with a
    /// header line naming the document's title and its heading path (Markdown, DOCX), or its
    /// title or file name (other formats); the stored text stays the document's. Changing it
    /// re-embeds everything on the next ingest. Off by default: on the natural-question sets
    /// and the Debian Policy set it cost up to 10 points of dense recall@5 and gained at most
    /// 0.7 (BENCHMARKS.md).
    pub chunk_headers: bool,
    /// Files larger than this are reported and skipped.
    pub max_file_bytes: u64,
    /// How long one PDF extractor may run on one file.
    pub pdf_timeout_secs: u64,
    /// Chunks embedded per model call.
    pub embed_batch: usize,
    /// Files read and extracted at once, while the model embeds.
    pub extract_workers: usize,
    /// Chunks gathered (across documents) before they are sorted into batches.
    pub embed_window: usize,
    /// Batch chunks of similar token length together, so little compute goes to padding.
    pub sort_by_length: bool,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            chunk_tokens: 200,
            overlap_tokens: 32,
            // Off: measured below plain chunks on most sets (BENCHMARKS.md, issue 13 "after").
            chunk_headers: false,
            max_file_bytes: 64 * 1024 * 1024,
            pdf_timeout_secs: 60,
            embed_batch: 32,
            extract_workers: 2,
            embed_window: 1024,
            sort_by_length: true,
        }
    }
}
