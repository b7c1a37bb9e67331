//! text -> chunks, bounded in tokens of the embedding model's own tokenizer, so no chunk is
//! silently truncated by the embedder.

use std::path::Path;

use text_splitter::{ChunkConfig, MarkdownSplitter, TextSplitter};
use tokenizers::Tokenizer;

use crate::extract::{Extracted, MediaType};

#[derive(Debug, thiserror::Error)]
pub enum ChunkerError {
    #[error("tokenizer {path}: {reason}")]
    Tokenizer { path: String, reason: String },
    #[error("chunk settings: {0}")]
    Config(String),
}

/// A chunk of a document, before embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub page: u32,
    pub text: String,
}

pub struct Chunker {
    text: TextSplitter<Tokenizer>,
    markdown: MarkdownSplitter<Tokenizer>,
}

impl Chunker {
    /// `max_tokens` excludes the model's special tokens ([CLS]/[SEP]): keep it at least two below
    /// the embedder's maximum length.
    pub fn new(
        tokenizer_file: &Path,
        max_tokens: usize,
        overlap_tokens: usize,
    ) -> Result<Self, ChunkerError> {
        let mut tokenizer =
            Tokenizer::from_file(tokenizer_file).map_err(|e| ChunkerError::Tokenizer {
                path: tokenizer_file.display().to_string(),
                reason: e.to_string(),
            })?;
        // The model's tokenizer.json pads and truncates to its window; a sizer that truncates
        // makes every text look small enough, and the splitter would return it whole.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| ChunkerError::Config(e.to_string()))?;
        let config = |t: Tokenizer| {
            ChunkConfig::new(max_tokens)
                .with_sizer(t)
                .with_overlap(overlap_tokens)
                .map_err(|e| ChunkerError::Config(e.to_string()))
        };
        Ok(Self {
            text: TextSplitter::new(config(tokenizer.clone())?),
            markdown: MarkdownSplitter::new(config(tokenizer)?),
        })
    }

    /// Chunks of every page, in order. Chunks never cross a page, so each cites one page.
    pub fn chunk(&self, media: MediaType, doc: &Extracted) -> Vec<Chunk> {
        let mut chunks = Vec::new();
        for page in &doc.pages {
            let pieces: Box<dyn Iterator<Item = &str>> = match media {
                MediaType::Markdown => Box::new(self.markdown.chunks(&page.text)),
                MediaType::Text | MediaType::Html | MediaType::Pdf => {
                    Box::new(self.text.chunks(&page.text))
                }
            };
            chunks.extend(pieces.filter(|c| !c.trim().is_empty()).map(|text| Chunk {
                page: page.number,
                text: text.to_owned(),
            }));
        }
        chunks
    }
}
