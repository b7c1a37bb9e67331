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
use rag_engine::EngineError;
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
/// What `status` may be: the answer statuses the API reports.
const STATUSES: [&str; 3] = ["answered", "not_found", "unsupported"];

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
    /// Appends are refused while the data directory's file system has less free: the
    /// store's reserve (`store.min_free_mb`), which the feedback must not eat into.
    min_free_bytes: u64,
}

impl Log {
    /// The file in `data_dir`, without a disk reserve (see [`Log::with_reserve`]).
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            path: data_dir.join(FILE),
            lock: std::sync::Mutex::new(()),
            min_free_bytes: 0,
        }
    }

    /// Refuses appends while less than `min_free_bytes` is free, as the store refuses writes.
    pub fn with_reserve(mut self, min_free_bytes: u64) -> Self {
        self.min_free_bytes = min_free_bytes;
        self
    }

    /// Appends one line. Below the reserve: [`rag_store::StoreError::Full`] (the store's own
    /// refusal, which names `store.min_free_mb`), and nothing written.
    fn append(&self, record: &Record) -> Result<(), EngineError> {
        let io = |e: std::io::Error| EngineError::Internal(format!("writing feedback: {e}"));
        let mut line = serde_json::to_vec(record).map_err(|e| io(std::io::Error::other(e)))?;
        line.push(b'\n');
        let _one = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let dir = self.path.parent().unwrap_or(std::path::Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        rag_store::ensure_free_space(dir, self.min_free_bytes)?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        // One write of the whole line: a crash leaves at most a torn last line, which export
        // skips.
        file.write_all(&line).map_err(io)?;
        file.sync_data().map_err(io)
    }
}

/// Refuses feedback that is malformed or larger than an answer the page could have shown.
fn check(feedback: &FeedbackRequest) -> Result<(), HttpError> {
    if !matches!(feedback.rating.as_str(), "up" | "down") {
        return Err(HttpError::invalid("rating", "\"up\" or \"down\""));
    }
    if feedback.question.trim().is_empty() {
        return Err(HttpError::invalid("question", "must not be empty"));
    }
    if !STATUSES.contains(&feedback.status.as_str()) {
        return Err(HttpError::invalid(
            "status",
            "\"answered\", \"not_found\" or \"unsupported\"",
        ));
    }
    for (field, text, limit) in [
        ("comment", &feedback.comment, MAX_COMMENT_CHARS),
        ("question", &feedback.question, MAX_TEXT_CHARS),
        ("answer", &feedback.answer, MAX_TEXT_CHARS),
        (
            "rewritten_question",
            feedback
                .rewritten_question
                .as_ref()
                .unwrap_or(&String::new()),
            MAX_TEXT_CHARS,
        ),
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
    for source in &feedback.sources {
        // As the answer named them: ids and paths the API accepts in a request.
        rag_api::check::document_id("sources.document_id", &source.document_id)?;
        rag_api::check::source_path("sources.source_path", &source.source_path)?;
    }
    Ok(())
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

/// Stores a thumbs up or down on an answer. Refused (429, RESOURCE_EXHAUSTED, as the store
/// refuses writes) while the data directory has less than `store.min_free_mb` free.
#[utoipa::path(post, path = "/v1/feedback", request_body = FeedbackRequest,
    responses((status = 201, body = FeedbackSaved), (status = 400, body = crate::ErrorBody),
        (status = 401, body = crate::ErrorBody), (status = 429, body = crate::ErrorBody)),
    security(("bearer" = [])))]
pub async fn post(
    axum::extract::State(http): St,
    headers: HeaderMap,
    Body(body): Body<FeedbackRequest>,
) -> Result<Response, HttpError> {
    let admission = http.admit(&headers, Action::Ask)?;
    let feedback = body?;
    check(&feedback)?;
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
        .map_err(|e| EngineError::Internal(e.to_string()))??;
    let response = (StatusCode::CREATED, Json(FeedbackSaved { saved: true })).into_response();
    Ok(audited(response, &admission, Vec::new()))
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;

    use super::*;

    fn feedback() -> FeedbackRequest {
        FeedbackRequest {
            rating: "down".into(),
            comment: "wrong number".into(),
            question: "How many days?".into(),
            rewritten_question: Some("How many vacation days?".into()),
            answer: "25 [1]".into(),
            status: "answered".into(),
            sources: vec![FeedbackSource {
                number: 1,
                document_id: "3f2a9c0b1d".into(),
                source_path: "hr/leave.md".into(),
                page: 0,
                chunk_index: 2,
                cited: true,
            }],
        }
    }

    /// The field a refusal names.
    fn refused(f: &FeedbackRequest) -> Option<String> {
        check(f).err().map(|e| e.body().error.param.unwrap())
    }

    /// A change that makes feedback wrong.
    type Change = Box<dyn Fn(&mut FeedbackRequest)>;

    #[test]
    fn every_field_is_capped() {
        assert_eq!(refused(&feedback()), None);
        let long = "x".repeat(MAX_TEXT_CHARS + 1);
        let cases: Vec<(&str, Change)> = vec![
            ("rating", Box::new(|f| f.rating = "sideways".into())),
            ("status", Box::new(|f| f.status = "maybe".into())),
            ("status", Box::new(|f| f.status = "x".repeat(10_000))),
            (
                "comment",
                Box::new(|f| f.comment = "x".repeat(MAX_COMMENT_CHARS + 1)),
            ),
            ("question", Box::new(|f| f.question = " ".into())),
            (
                "answer",
                Box::new({
                    let long = long.clone();
                    move |f| f.answer = long.clone()
                }),
            ),
            (
                "rewritten_question",
                Box::new({
                    let long = long.clone();
                    move |f| f.rewritten_question = Some(long.clone())
                }),
            ),
            (
                "sources",
                Box::new(|f| f.sources = vec![f.sources[0].clone(); MAX_SOURCES + 1]),
            ),
            (
                "sources.document_id",
                Box::new(|f| {
                    f.sources[0].document_id = "x".repeat(rag_store::MAX_DOCUMENT_ID_BYTES + 1)
                }),
            ),
            (
                "sources.document_id",
                Box::new(|f| {
                    f.sources[0].document_id = "x\n2026-12-06T00:00:00Z INFO forged".into()
                }),
            ),
            (
                "sources.document_id",
                Box::new(|f| f.sources[0].document_id.clear()),
            ),
            (
                "sources.source_path",
                Box::new(|f| f.sources[0].source_path = "p/".repeat(5000)),
            ),
            (
                "sources.source_path",
                Box::new(|f| f.sources[0].source_path = "a\rb".into()),
            ),
        ];
        for (field, change) in cases {
            let mut f = feedback();
            change(&mut f);
            assert_eq!(refused(&f).as_deref(), Some(field), "{field}");
        }
        for status in STATUSES {
            let mut f = feedback();
            f.status = status.into();
            assert_eq!(refused(&f), None, "{status}");
        }
    }

    fn record() -> Record {
        Record {
            at_ms: 1,
            tenant: "default".into(),
            key_id: None,
            feedback: feedback(),
        }
    }

    #[test]
    fn appends_stop_at_the_store_reserve() {
        let dir = std::env::temp_dir().join(format!("rag-feedback-{}", uuid::Uuid::new_v4()));
        // No disk has this much free: the append is refused, and nothing is written.
        let log = Log::new(dir.clone()).with_reserve(u64::MAX);
        let err = log.append(&record()).unwrap_err();
        assert!(
            matches!(err, EngineError::Store(rag_store::StoreError::Full { .. })),
            "{err:?}"
        );
        assert!(!dir.join(FILE).exists());
        // Refused as the store's own refusal is, naming the setting.
        let response = HttpError::from(err).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let body = HttpError::from(EngineError::Store(rag_store::StoreError::Full {
            path: dir.clone(),
            free: 0,
            reserve: 1,
        }))
        .body();
        assert!(
            body.error.message.contains("store.min_free_mb"),
            "{}",
            body.error.message
        );
        assert_eq!(body.error.code, "RESOURCE_EXHAUSTED");

        // A reserve the disk has: the line is written.
        let log = Log::new(dir.clone()).with_reserve(1);
        log.append(&record()).unwrap();
        let (records, bad) = read(&dir.join(FILE)).unwrap();
        assert_eq!((records.len(), bad), (1, 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
