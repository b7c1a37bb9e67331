use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Largest chunk, in embedding-model tokens (special tokens excluded).
    pub chunk_tokens: usize,
    /// Tokens shared by neighbouring chunks.
    pub overlap_tokens: usize,
    /// Files larger than this are reported and skipped.
    pub max_file_bytes: u64,
    /// How long one PDF extractor may run on one file.
    pub pdf_timeout_secs: u64,
    /// Chunks embedded per model call.
    pub embed_batch: usize,
    /// Points written per store call.
    pub upsert_batch: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            chunk_tokens: 200,
            overlap_tokens: 32,
            max_file_bytes: 64 * 1024 * 1024,
            pdf_timeout_secs: 60,
            embed_batch: 32,
            upsert_batch: 256,
        }
    }
}
