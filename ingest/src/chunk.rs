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
    /// The document's own text: stored, shown and cited.
    pub text: String,
    /// What is embedded and made into the lexical vector: `text` under a header line with the
    /// document's title and the chunk's heading path ([`Chunker::add_headers`]), or `text`.
    pub embed_text: String,
    /// Length of `embed_text` in model tokens, without special tokens: what batching sorts
    /// and pads by.
    pub tokens: u32,
    /// Markdown: the headings above the chunk, outermost first ("Install > Linux").
    pub heading: String,
}

pub struct Chunker {
    text: TextSplitter<Tokenizer>,
    markdown: MarkdownSplitter<Tokenizer>,
    tokenizer: Tokenizer,
    /// Headers put before the embedded text ([`Chunker::add_headers`]).
    contextual: bool,
}

/// A heading-only fragment longer than this (a table of contents, say) stays a chunk of its
/// own rather than being merged into the body after it.
const MAX_MERGED_HEADINGS_BYTES: usize = 400;

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
            contextual: false,
        })
    }

    /// Turns chunk headers on or off (the default). Heading-only Markdown fragments are merged
    /// into the body below them either way.
    pub fn with_context(mut self, contextual: bool) -> Self {
        self.contextual = contextual;
        self
    }

    pub fn contextual(&self) -> bool {
        self.contextual
    }

    /// Puts each chunk's context before its embedded text: the document's title (when it has
    /// one of its own, not made from the file name, and it is not already the first heading)
    /// and the chunk's heading path, as one line (`Travel Policy > Hotels`). Never the file
    /// name: a renamed or copied file must reuse the vectors already stored. The stored text
    /// stays as it is. Nothing happens when headers are off.
    pub fn add_headers(&self, chunks: &mut [Chunk], title: Option<&str>) {
        if !self.contextual {
            return;
        }
        for chunk in chunks {
            let header = header(title, &chunk.heading);
            if header.is_empty() {
                continue;
            }
            chunk.embed_text = format!("{header}\n\n{}", chunk.text);
            chunk.tokens = self.count_tokens(&chunk.embed_text);
        }
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
            let pieces: Vec<(usize, usize, &str)> = if self.contextual && !headings.is_empty() {
                merge_heading_only(&page.text, pieces)
            } else {
                pieces.into_iter().map(|(at, t)| (at, at, t)).collect()
            };
            let mut outline = Outline::new(&headings);
            for (_, body, text) in pieces {
                if text.trim().is_empty() {
                    continue;
                }
                chunks.push(Chunk {
                    page: page.number,
                    text: text.to_owned(),
                    embed_text: text.to_owned(),
                    tokens: self.count_tokens(text),
                    heading: outline.path_at(body),
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

/// The header line of a chunk: see [`Chunker::add_headers`].
fn header(title: Option<&str>, heading: &str) -> String {
    let title = title.map(str::trim).filter(|t| !t.is_empty());
    let first = heading.split(" > ").next().unwrap_or_default();
    match title {
        Some(t) if heading.is_empty() => t.to_owned(),
        Some(t) if !t.eq_ignore_ascii_case(first) => format!("{t} > {heading}"),
        _ => heading.to_owned(),
    }
}

/// Splitter pieces `(offset, text)` with every heading-only piece (the splitter cuts a title
/// line off on its own when the section below it does not fit) merged into the piece after
/// it: `(start, body offset, text)`, where the text runs from the headings to the end of that
/// piece, a contiguous slice of `page`, and the body offset is where the heading path is read.
fn merge_heading_only<'a>(
    page: &'a str,
    pieces: Vec<(usize, &'a str)>,
) -> Vec<(usize, usize, &'a str)> {
    let mut out = Vec::with_capacity(pieces.len());
    let mut held: Option<(usize, usize)> = None;
    for (offset, text) in pieces {
        let end = offset + text.len();
        let (start, end) = match held.take() {
            Some((s, e)) => (s.min(offset), e.max(end)),
            None => (offset, end),
        };
        if heading_only(text) && end - start <= MAX_MERGED_HEADINGS_BYTES {
            held = Some((start, end));
            continue;
        }
        out.push((start, offset, &page[start..end]));
    }
    if let Some((start, end)) = held {
        out.push((start, start, &page[start..end]));
    }
    out
}

/// Whether every non-blank line of `text` belongs to a Markdown heading.
fn heading_only(text: &str) -> bool {
    let headings = markdown_headings(text);
    if headings.is_empty() {
        return false;
    }
    let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
    let heading_lines: usize = headings
        .iter()
        .map(|h| {
            if text[h.offset..].trim_start().starts_with('#') {
                1
            } else {
                2
            }
        })
        .sum();
    lines == heading_lines
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
    fn heading_only_fragments_join_the_body_they_head() {
        let page = "# Guide\n\n## Install\n\nStep one.\n\nStep two.\n\n## Use\n\nRun it.\n";
        let at = |s: &str| page.find(s).unwrap();
        let install_end = at("\n\n## Use");
        // As the splitter cuts it when a section does not fit: the title lines alone first.
        let pieces = vec![
            (0, &page[..at("\n\nStep one")]),
            (at("Step one"), &page[at("Step one")..install_end]),
            (at("## Use"), &page[at("## Use")..]),
        ];
        let merged = merge_heading_only(page, pieces);
        assert_eq!(
            merged,
            [
                (0, at("Step one"), &page[..install_end]),
                (at("## Use"), at("## Use"), &page[at("## Use")..]),
            ]
        );
        // Headings with nothing after them on the page stay.
        let tail = "# Last\n\nSetext\n------\n";
        assert!(heading_only(tail));
        assert!(!heading_only("# Title\n\nbody"));
        assert_eq!(merge_heading_only(tail, vec![(0, tail)]), [(0, 0, tail)]);
    }

    #[test]
    fn headers_name_the_title_and_the_heading_path_once() {
        assert_eq!(
            header(Some("Travel Policy"), "Hotels"),
            "Travel Policy > Hotels"
        );
        assert_eq!(
            header(Some("Travel policy"), "travel policy > Hotels"),
            "travel policy > Hotels"
        );
        assert_eq!(header(None, "Guide > Install"), "Guide > Install");
        assert_eq!(header(Some("VPN"), ""), "VPN");
        assert_eq!(header(None, ""), "");
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
