//! Thumbs up or down on an answer, with an optional comment, stored with the question, the
//! answer and its sources as one JSON line in `data_dir/feedback.jsonl`; `rag feedback export`
//! turns them into a question set for `rag eval`.

use std::io::Write;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rag_auth::Action;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::Body;
use crate::{HttpError, St, audited};

/// The file, under the data directory.
pub const FILE: &str = "feedback.jsonl";
const MAX_COMMENT_CHARS: usize = 2000;
/// A question or an answer as the page showed it: far below this.
const MAX_TEXT_CHARS: usize = 20_000;
const MAX_SOURCES: usize = 100;

/// What the chat page (or any client) sends about an answer it showed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackRequest {
    /// "up" or "down".
    pub rating: String,
    #[serde(default)]
    pub comment: String,
    /// The question as the user asked it.
    pub question: String,
    /// The standalone question a follow-up was rewritten into, if it was.
    #[serde(default)]
    pub rewritten_question: Option<String>,
    pub answer: String,
    /// The answer's status: "answered", "not_found" or "unsupported".
    pub status: String,
    /// The sources the answer cited (or was given).
    #[serde(default)]
    pub sources: Vec<FeedbackSource>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FeedbackSource {
    pub number: u32,
    pub document_id: String,
    pub source_path: String,
    #[serde(default)]
    pub page: u32,
    #[serde(default)]
    pub chunk_index: u32,
    /// Whether the answer cited it.
    #[serde(default)]
    pub cited: bool,
}

/// A stored line: the request, and who sent it when.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub at_ms: u64,
    pub tenant: String,
    #[serde(default)]
    pub key_id: Option<String>,
    #[serde(flatten)]
    pub feedback: FeedbackRequest,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FeedbackSaved {
    pub saved: bool,
}

/// The feedback file; appends are serialised so that lines never interleave.
pub struct Log {
    path: PathBuf,
    lock: std::sync::Mutex<()>,
}

impl Log {
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            path: data_dir.join(FILE),
            lock: std::sync::Mutex::new(()),
        }
    }

    fn append(&self, record: &Record) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let _one = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        // One write of the whole line: a crash leaves at most a torn last line, which export
        // skips.
        file.write_all(&line)?;
        file.sync_data()
    }
}

/// Reads the stored feedback; torn or unreadable lines are counted, not fatal.
pub fn read(path: &std::path::Path) -> std::io::Result<(Vec<Record>, usize)> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    };
    let mut records = Vec::new();
    let mut bad = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str(line) {
            Ok(r) => records.push(r),
            Err(_) => bad += 1,
        }
    }
    Ok((records, bad))
}

/// Stores a thumbs up or down on an answer.
#[utoipa::path(post, path = "/v1/feedback", request_body = FeedbackRequest,
    responses((status = 201, body = FeedbackSaved), (status = 400, body = crate::ErrorBody),
        (status = 401, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub async fn post(
    axum::extract::State(http): St,
    headers: HeaderMap,
    Body(body): Body<FeedbackRequest>,
) -> Result<Response, HttpError> {
    let admission = http.admit(&headers, Action::Ask)?;
    let feedback = body?;
    if !matches!(feedback.rating.as_str(), "up" | "down") {
        return Err(HttpError::invalid("rating", "\"up\" or \"down\""));
    }
    if feedback.question.trim().is_empty() {
        return Err(HttpError::invalid("question", "must not be empty"));
    }
    for (field, text, limit) in [
        ("comment", &feedback.comment, MAX_COMMENT_CHARS),
        ("question", &feedback.question, MAX_TEXT_CHARS),
        ("answer", &feedback.answer, MAX_TEXT_CHARS),
    ] {
        if text.chars().count() > limit {
            return Err(HttpError::invalid(
                field,
                format!("over the limit of {limit} characters"),
            ));
        }
    }
    if feedback.sources.len() > MAX_SOURCES {
        return Err(HttpError::invalid(
            "sources",
            format!("over the limit of {MAX_SOURCES}"),
        ));
    }
    let record = Record {
        at_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        tenant: admission.caller.tenant.clone(),
        key_id: admission.key_id.clone(),
        feedback,
    };
    let log = http.feedback.clone();
    tokio::task::spawn_blocking(move || log.append(&record))
        .await
        .map_err(|e| rag_engine::EngineError::Internal(e.to_string()))?
        .map_err(|e| rag_engine::EngineError::Internal(format!("writing feedback: {e}")))?;
    let response = (StatusCode::CREATED, Json(FeedbackSaved { saved: true })).into_response();
    Ok(audited(response, &admission, Vec::new()))
}
