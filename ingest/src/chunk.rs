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
    /// Length in model tokens, without special tokens: what batching sorts and pads by.
    pub tokens: u32,
    /// Markdown: the headings above the chunk, outermost first ("Install > Linux").
    pub heading: String,
}

pub struct Chunker {
    text: TextSplitter<Tokenizer>,
    markdown: MarkdownSplitter<Tokenizer>,
    tokenizer: Tokenizer,
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
            markdown: MarkdownSplitter::new(config(tokenizer.clone())?),
            tokenizer,
        })
    }

    /// Chunks of every page, in order. Chunks never cross a page, so each cites one page.
    pub fn chunk(&self, media: MediaType, doc: &Extracted) -> Vec<Chunk> {
        let mut chunks = Vec::new();
        for page in &doc.pages {
            let (pieces, headings): (Vec<(usize, &str)>, Vec<Heading>) = match media {
                // DOCX is extracted as Markdown, headings included.
                MediaType::Markdown | MediaType::Docx => (
                    self.markdown.chunk_indices(&page.text).collect(),
                    markdown_headings(&page.text),
                ),
                MediaType::Text | MediaType::Html | MediaType::Pdf => {
                    (self.text.chunk_indices(&page.text).collect(), Vec::new())
                }
            };
            let mut outline = Outline::new(&headings);
            for (offset, text) in pieces {
                if text.trim().is_empty() {
                    continue;
                }
                chunks.push(Chunk {
                    page: page.number,
                    text: text.to_owned(),
                    tokens: self.count_tokens(text),
                    heading: outline.path_at(offset),
                });
            }
        }
        chunks
    }

    fn count_tokens(&self, text: &str) -> u32 {
        self.tokenizer
            .encode(text, false)
            .map_or(0, |e| e.get_ids().len() as u32)
    }
}

/// A Markdown heading: where its line starts, its level and its text.
#[derive(Debug, Clone, PartialEq)]
struct Heading {
    offset: usize,
    level: usize,
    text: String,
}

/// ATX (`## Title`) and setext (`Title` over `===`/`---`) headings outside code fences.
fn markdown_headings(text: &str) -> Vec<Heading> {
    let mut headings = Vec::new();
    let mut fence: Option<&str> = None;
    let mut previous: Option<(usize, &str)> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let trimmed = line.trim();
        let unindented = line.trim_start();
        let indented_code = line.len() - unindented.len() >= 4;
        if let Some(marker) = fence {
            if trimmed.starts_with(marker) {
                fence = None;
            }
            previous = None;
            continue;
        }
        if !indented_code && (trimmed.starts_with("```") || trimmed.starts_with("~~~")) {
            fence = Some(&trimmed[..3]);
            previous = None;
            continue;
        }
        let hashes = trimmed.bytes().take_while(|&b| b == b'#').count();
        if !indented_code && (1..=6).contains(&hashes) && trimmed[hashes..].starts_with([' ', '\t'])
        {
            let title = trimmed[hashes..].trim().trim_end_matches('#').trim();
            if !title.is_empty() {
                headings.push(Heading {
                    offset: start,
                    level: hashes,
                    text: title.to_owned(),
                });
            }
            previous = None;
            continue;
        }
        let underline = !trimmed.is_empty()
            && (trimmed.bytes().all(|b| b == b'=') || trimmed.bytes().all(|b| b == b'-'));
        if let (true, Some((at, title))) = (underline && !indented_code, previous) {
            headings.push(Heading {
                offset: at,
                level: if trimmed.starts_with('=') { 1 } else { 2 },
                text: title.to_owned(),
            });
            previous = None;
            continue;
        }
        previous = (!trimmed.is_empty() && !indented_code).then_some((start, trimmed));
    }
    headings
}

/// The headings open at a position, for positions visited in increasing order (chunks come
/// in document order), so a document costs one pass over its headings.
struct Outline<'a> {
    headings: &'a [Heading],
    next: usize,
    open: Vec<&'a Heading>,
}

impl<'a> Outline<'a> {
    fn new(headings: &'a [Heading]) -> Self {
        Self {
            headings,
            next: 0,
            open: Vec::new(),
        }
    }

    /// The open headings at byte `offset`, outermost first, joined with " > ".
    fn path_at(&mut self, offset: usize) -> String {
        while let Some(h) = self.headings.get(self.next).filter(|h| h.offset <= offset) {
            while self.open.last().is_some_and(|top| top.level >= h.level) {
                self.open.pop();
            }
            self.open.push(h);
            self.next += 1;
        }
        self.open
            .iter()
            .map(|h| h.text.as_str())
            .collect::<Vec<_>>()
            .join(" > ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heading_paths_follow_the_outline_and_skip_code() {
        let text = "# Guide\nintro\n\n## Install\n\n```sh\n# not a heading\n```\n\n### Linux\nsteps\n\n## Use\nrun it\n\nSetext\n------\nbody\n";
        let headings = markdown_headings(text);
        let names: Vec<&str> = headings.iter().map(|h| h.text.as_str()).collect();
        assert_eq!(names, ["Guide", "Install", "Linux", "Use", "Setext"]);
        let mut outline = Outline::new(&headings);
        assert_eq!(outline.path_at(0), "Guide");
        assert_eq!(
            outline.path_at(text.find("steps").unwrap()),
            "Guide > Install > Linux"
        );
        assert_eq!(outline.path_at(text.find("run it").unwrap()), "Guide > Use");
        assert_eq!(
            outline.path_at(text.find("body").unwrap()),
            "Guide > Setext"
        );
    }

    #[test]
    fn korean_headings_are_kept_whole() {
        let text = "# 인사 규정\n\n## 연차 휴가\n연차는 15일입니다.\n";
        let headings = markdown_headings(text);
        assert_eq!(
            Outline::new(&headings).path_at(text.find("연차는").unwrap()),
            "인사 규정 > 연차 휴가"
        );
    }
}
