//! file -> text -> chunks with the real tokenizer and the shipped sample files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rag_ingest::extract::{self, MediaType, PdfExtractor};
use rag_ingest::{Chunker, ChunkerError};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn tokenizer() -> PathBuf {
    repo().join("models/embed/all-MiniLM-L6-v2/tokenizer.json")
}

fn poppler_only() -> PdfExtractor {
    PdfExtractor {
        helper: None,
        pdftotext: Some("pdftotext".into()),
        timeout: Duration::from_secs(30),
    }
}

fn count_tokens(text: &str) -> usize {
    let mut tok = tokenizers::Tokenizer::from_file(tokenizer()).unwrap();
    // The model's tokenizer.json pads and truncates to 128: count the real tokens.
    tok.with_padding(None);
    tok.with_truncation(None).unwrap();
    tok.encode(text, false).unwrap().get_ids().len()
}

#[test]
fn chunks_respect_the_token_limit_and_overlap() {
    let chunker = Chunker::new(&tokenizer(), 64, 16).unwrap();
    let text: String = (0..200)
        .map(|i| format!("Sentence number {i} talks about leave policy details. "))
        .collect();
    let doc = extract::extract(MediaType::Text, text.as_bytes(), None, &poppler_only()).unwrap();
    let chunks = chunker.chunk(MediaType::Text, &doc);
    assert!(chunks.len() > 10, "{} chunks", chunks.len());
    for c in &chunks {
        let n = count_tokens(&c.text);
        assert!(n <= 64, "chunk of {n} tokens: {:?}", c.text);
    }
    // Neighbouring chunks share text.
    let shared = chunks
        .windows(2)
        .filter(|w| {
            let tail: String = w[0]
                .text
                .chars()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            w[1].text.contains(tail.trim())
        })
        .count();
    assert!(shared > 0, "no overlap between neighbouring chunks");
}

#[test]
fn markdown_and_korean_are_chunked_on_structure() {
    let chunker = Chunker::new(&tokenizer(), 120, 0).unwrap();
    let bytes = std::fs::read(repo().join("examples/docs/handbook/복지-안내.md")).unwrap();
    let doc = extract::extract(MediaType::Markdown, &bytes, None, &poppler_only()).unwrap();
    assert_eq!(doc.title.as_deref(), Some("복지 안내"));
    let chunks = chunker.chunk(MediaType::Markdown, &doc);
    assert!(chunks.len() >= 2);
    let all: String = chunks.iter().map(|c| c.text.as_str()).collect();
    assert!(
        all.contains("연간 100만 원"),
        "Korean text survives chunking"
    );
}

#[test]
fn sample_pdf_has_text_per_page() {
    let path = repo().join("examples/docs/finance/expense-policy.pdf");
    let bytes = std::fs::read(&path).unwrap();
    let doc = extract::extract(MediaType::Pdf, &bytes, Some(&path), &poppler_only()).unwrap();
    assert_eq!(doc.pages.len(), 3);
    assert_eq!(doc.pages[1].number, 2);
    assert!(
        doc.pages[1].text.contains("180 euros"),
        "{:?}",
        doc.pages[1]
    );
    assert!(!doc.pages[0].text.contains("180 euros"));
}

#[test]
fn corrupt_and_fake_pdfs_are_errors_not_crashes() {
    let bytes = std::fs::read(repo().join("examples/docs/finance/expense-policy.pdf")).unwrap();
    let truncated = &bytes[..bytes.len() / 3];
    let err = extract::extract(MediaType::Pdf, truncated, None, &poppler_only()).unwrap_err();
    assert!(err.to_string().contains("PDF"), "{err}");
    let err = extract::extract(MediaType::Pdf, b"hello", None, &poppler_only()).unwrap_err();
    assert!(err.to_string().contains("not a PDF"), "{err}");
}

#[test]
fn a_hanging_pdf_helper_is_killed_at_the_timeout() {
    let bytes = std::fs::read(repo().join("examples/docs/finance/expense-policy.pdf")).unwrap();
    let slow = PdfExtractor {
        helper: Some(vec![
            "sh".into(),
            "-c".into(),
            "sleep 30".into(),
            "sh".into(),
        ]),
        pdftotext: None,
        timeout: Duration::from_millis(300),
    };
    let started = std::time::Instant::now();
    let err = extract::extract(MediaType::Pdf, &bytes, None, &slow).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[test]
fn bad_chunk_settings_are_errors() {
    let err = Chunker::new(&tokenizer(), 50, 50).err().unwrap();
    assert!(matches!(err, ChunkerError::Config(_)), "{err}");
    let err = Chunker::new(Path::new("/nonexistent/tokenizer.json"), 50, 5)
        .err()
        .unwrap();
    assert!(err.to_string().contains("/nonexistent"), "{err}");
}
