//! The checks of single request fields every call shares: a question, a document id, a source
//! path. Every door's values pass through these, so none reaches the store or a log line
//! unchecked.

use rag_engine::Engine;
use rag_store::DOCUMENT_ID_RULE;

use crate::ApiError;

/// The longest source path (or path prefix) a request may name, in bytes.
pub const MAX_SOURCE_PATH_BYTES: usize = 4096;

/// A question (or query), trimmed: not empty and within the engine's question limit.
pub fn question(engine: &Engine, field: &'static str, text: &str) -> Result<String, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ApiError::invalid(field, "must not be empty"));
    }
    let chars = text.chars().count();
    let limit = engine.config().max_question_chars;
    if chars > limit {
        return Err(ApiError::invalid(
            field,
            format!("{chars} characters is over the limit of {limit}"),
        ));
    }
    Ok(text.to_owned())
}

/// A document id a request names (to delete, filter on, write under or show), trimmed
/// ([`rag_store::valid_document_id`]).
pub fn document_id(field: &'static str, id: &str) -> Result<String, ApiError> {
    let id = id.trim();
    if id.is_empty() {
        return Err(ApiError::invalid(field, "must not be empty"));
    }
    if !rag_store::valid_document_id(id) {
        return Err(ApiError::invalid(
            field,
            format!("not a document id ({DOCUMENT_ID_RULE})"),
        ));
    }
    Ok(id.to_owned())
}

/// A source path (or path prefix) a request names, as given (empty stays empty): at most
/// [`MAX_SOURCE_PATH_BYTES`] and on one line, as ingest stores paths.
pub fn source_path(field: &'static str, path: &str) -> Result<String, ApiError> {
    if path.len() > MAX_SOURCE_PATH_BYTES {
        return Err(ApiError::invalid(
            field,
            format!(
                "{} bytes is over the limit of {MAX_SOURCE_PATH_BYTES}",
                path.len()
            ),
        ));
    }
    if path.chars().any(rag_store::breaks_lines) {
        return Err(ApiError::invalid(
            field,
            "must not contain control characters or line separators",
        ));
    }
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORGED: &str = "x\n2026-12-06T00:00:00Z  INFO audit: forged";

    #[test]
    fn document_ids_and_paths_are_refused_naming_their_field() {
        assert_eq!(document_id("document_id", "  a1b2 ").unwrap(), "a1b2");
        for bad in ["", "   ", FORGED, &"x".repeat(257)] {
            let e = document_id("document_id", bad).unwrap_err();
            assert_eq!(e.field().map(|(f, _)| f), Some("document_id"), "{bad:?}");
        }
        assert_eq!(
            source_path("source_path", "hr/a b.md").unwrap(),
            "hr/a b.md"
        );
        assert_eq!(source_path("source_path", "").unwrap(), "");
        for bad in [FORGED, "a\rb", "a\u{2028}b", &"p/".repeat(2049)] {
            let e = source_path("source_path", bad).unwrap_err();
            assert_eq!(e.field().map(|(f, _)| f), Some("source_path"), "{bad:?}");
        }
    }
}
