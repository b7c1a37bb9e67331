//! What every front door does to a request before the engine sees it, with no transport in
//! it: let the caller in (key, role, limits, forwarded groups) and validate the question and
//! its options with the server defaults filled in. The gRPC service and the HTTP API both call
//! these, so a request means the same and fails the same way whichever door it comes through.

use rag_auth::{Action, Gate, Permit};
use rag_engine::{AskOptions, Engine, Retrieval, Turn};
use rag_proto::v1 as pb;
use rag_store::{DEFAULT_TENANT, DOCUMENT_ID_RULE, SearchFilter, Visibility};

use crate::status::ApiError;

const MAX_TOP_K: u32 = 100;
const MAX_ANSWER_TOKENS: u32 = 4096;
/// Turns of history a follow-up may carry; only the last few are shown to the rewriter.
pub const MAX_HISTORY_TURNS: usize = 20;
/// An earlier answer longer than this is cut (history is context, not content).
const MAX_HISTORY_ANSWER_CHARS: usize = 8000;
/// The longest source path (or path prefix) a request may name, in bytes.
pub const MAX_SOURCE_PATH_BYTES: usize = 4096;

/// Whose documents a call reaches: its key's tenant, and what of it the key (or the user a
/// trusted key speaks for) may read.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: String,
    pub visibility: Visibility,
}

/// A call let in: who it is, and the permit that counts it against its key's in-flight limit
/// until dropped.
pub struct Admission {
    pub caller: Caller,
    /// `None` when keys are not checked.
    pub key_id: Option<String>,
    pub permit: Option<Permit>,
}

/// Lets a call in if `key` may perform `action` and is within its limits. `groups` is the
/// `x-rag-groups` value a front end sent (`Err` for one that is not text).
pub fn admit(
    gate: &Gate,
    key: Option<&str>,
    groups: Option<Result<&str, ()>>,
    action: Action,
) -> Result<Admission, ApiError> {
    let forwarded = match groups {
        None => None,
        Some(Err(())) => return Err(ApiError::invalid(GROUPS_HEADER, "must be ASCII")),
        Some(Ok(value)) => Some(
            rag_auth::parse_groups(value)
                .map_err(|reason| ApiError::invalid(GROUPS_HEADER, reason))?,
        ),
    };
    let Some(admitted) = gate.admit(key, action)? else {
        // No keys checked (local use): the default tenant; a front end's header is taken
        // at its word, so permissions can be tried out locally.
        return Ok(Admission {
            caller: Caller {
                tenant: DEFAULT_TENANT.to_owned(),
                visibility: forwarded.map_or(Visibility::All, Visibility::Groups),
            },
            key_id: None,
            permit: None,
        });
    };
    let principal = admitted.principal;
    let visibility = principal.reach(forwarded)?;
    Ok(Admission {
        caller: Caller {
            tenant: principal.tenant,
            visibility,
        },
        key_id: Some(principal.key_id),
        permit: Some(admitted.permit),
    })
}

/// Request metadata (gRPC) or header (HTTP) in which a trusted front end names the asking
/// user's groups: "hr,eng".
pub const GROUPS_HEADER: &str = "x-rag-groups";

/// The key in an `authorization: Bearer <key>` value.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, key) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
}

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

/// A document id a request names (to delete, filter on, write under or show), trimmed: every
/// door checks ids here, so none reaches the store or a log line unchecked
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

/// The request's retrieval options, validated, with the server defaults filled in, over the
/// caller's documents only.
pub fn retrieval(
    engine: &Engine,
    caller: &Caller,
    options: Option<pb::RetrievalOptions>,
) -> Result<Retrieval, ApiError> {
    let defaults = engine.default_retrieval();
    let options = options.unwrap_or_default();
    let top_k = match options.top_k {
        0 => defaults.top_k,
        k if k <= MAX_TOP_K => k as usize,
        k => {
            return Err(ApiError::invalid(
                "retrieval.top_k",
                format!("{k} is outside 1..={MAX_TOP_K}"),
            ));
        }
    };
    let score_threshold = match options.score_threshold {
        None => defaults.score_threshold,
        Some(t) if (-1.0..=1.0).contains(&t) => t,
        Some(t) => {
            return Err(ApiError::invalid(
                "retrieval.score_threshold",
                format!("{t} is outside -1..=1 (cosine similarity)"),
            ));
        }
    };
    let filter = options.filter.unwrap_or_default();
    let path_prefix = source_path("retrieval.filter.path_prefix", &filter.path_prefix)?;
    let doc_ids = filter
        .document_ids
        .iter()
        .map(|id| document_id("retrieval.filter.document_ids", id))
        .collect::<Result<_, _>>()?;
    Ok(Retrieval {
        top_k,
        score_threshold,
        hybrid: defaults.hybrid,
        tenant: caller.tenant.clone(),
        filter: SearchFilter {
            path_prefix: Some(path_prefix).filter(|p| !p.is_empty()),
            doc_ids,
            visibility: caller.visibility.clone(),
        },
    })
}

pub fn ask_options(
    engine: &Engine,
    caller: &Caller,
    request: &pb::AskRequest,
) -> Result<AskOptions, ApiError> {
    let defaults = engine.default_ask();
    let max_tokens = match request.max_tokens {
        0 => defaults.max_tokens,
        n if n <= MAX_ANSWER_TOKENS => n as usize,
        n => {
            return Err(ApiError::invalid(
                "max_tokens",
                format!("{n} is over the limit of {MAX_ANSWER_TOKENS}"),
            ));
        }
    };
    let temperature = match request.temperature {
        None => defaults.temperature,
        Some(t) if (0.0..=2.0).contains(&t) => t,
        Some(t) => {
            return Err(ApiError::invalid(
                "temperature",
                format!("{t} is outside 0..=2"),
            ));
        }
    };
    Ok(AskOptions {
        retrieval: retrieval(engine, caller, request.retrieval.clone())?,
        max_tokens,
        temperature,
        seed: request.seed.unwrap_or(defaults.seed),
        deadline: None,
        history: history(engine, &request.history)?,
    })
}

/// The conversation before a follow-up, validated: each question like a question, answers cut.
fn history(engine: &Engine, turns: &[pb::Turn]) -> Result<Vec<Turn>, ApiError> {
    if turns.len() > MAX_HISTORY_TURNS {
        return Err(ApiError::invalid(
            "history",
            format!(
                "{} turns is over the limit of {MAX_HISTORY_TURNS}",
                turns.len()
            ),
        ));
    }
    turns
        .iter()
        .map(|t| {
            Ok(Turn {
                question: question(engine, "history.question", &t.question)?,
                answer: t.answer.chars().take(MAX_HISTORY_ANSWER_CHARS).collect(),
            })
        })
        .collect()
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
