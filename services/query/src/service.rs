//! gRPC handlers: validate, call the engine, map results and errors. No logic of their own.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use rag_ingest::IncomingDocument;
use rag_proto::v1 as pb;
use rag_proto::v1::rag_service_server::RagService;
use rag_store::{Hit, SearchFilter};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::context::Source;
use crate::{Engine, NOT_FOUND_ANSWER, QueryError, Retrieval, Verdict};

const MAX_TOP_K: u32 = 100;
const MAX_ANSWER_TOKENS: u32 = 4096;

/// The service; answers UNAVAILABLE until the engine is loaded.
#[derive(Clone)]
pub struct Service {
    engine: Arc<OnceLock<Arc<Engine>>>,
}

impl Service {
    pub fn new(engine: Arc<OnceLock<Arc<Engine>>>) -> Self {
        Self { engine }
    }

    fn engine(&self) -> Result<Arc<Engine>, QueryError> {
        self.engine.get().cloned().ok_or(QueryError::NotReady)
    }
}

#[tonic::async_trait]
impl RagService for Service {
    async fn search(
        &self,
        request: Request<pb::SearchRequest>,
    ) -> Result<Response<pb::SearchResponse>, Status> {
        let engine = self.engine()?;
        let request = request.into_inner();
        let query = question(&engine, "query", &request.query)?;
        let retrieval = retrieval(&engine, request.retrieval)?;
        let (hits, took) = engine.retrieve(&query, &retrieval).await?;
        Ok(Response::new(pb::SearchResponse {
            chunks: hits.iter().map(chunk).collect(),
            timings: Some(pb::Timings {
                retrieval_ms: ms(took),
                ..Default::default()
            }),
        }))
    }

    type AskStream = ReceiverStream<Result<pb::AskResponse, Status>>;

    async fn ask(
        &self,
        request: Request<pb::AskRequest>,
    ) -> Result<Response<Self::AskStream>, Status> {
        let started = Instant::now();
        let engine = self.engine()?;
        let request = request.into_inner();
        let question = question(&engine, "question", &request.question)?;
        let retrieval = retrieval(&engine, request.retrieval)?;
        let max_tokens = match request.max_tokens {
            0 => engine.config.max_tokens,
            n if n <= MAX_ANSWER_TOKENS => n as usize,
            n => {
                return Err(QueryError::invalid(
                    "max_tokens",
                    format!("{n} is over the limit of {MAX_ANSWER_TOKENS}"),
                )
                .into());
            }
        };
        if max_tokens + 64 >= engine.generator.context_size() {
            return Err(QueryError::invalid(
                "max_tokens",
                format!(
                    "{max_tokens} leaves no room for sources in the context window of {} tokens",
                    engine.generator.context_size()
                ),
            )
            .into());
        }
        let temperature = match request.temperature {
            None => engine.config.temperature,
            Some(t) if (0.0..=2.0).contains(&t) => t,
            Some(t) => {
                return Err(
                    QueryError::invalid("temperature", format!("{t} is outside 0..=2")).into(),
                );
            }
        };
        let seed = request.seed.unwrap_or(0);

        let (hits, retrieval_took) = engine.retrieve(&question, &retrieval).await?;
        let (tx, rx) = mpsc::channel(64);
        let mut timings = pb::Timings {
            retrieval_ms: ms(retrieval_took),
            ..Default::default()
        };

        if hits.is_empty() {
            // Nothing relevant enough: say so plainly instead of letting the model guess.
            timings.total_ms = ms(started.elapsed());
            let _ = tx.try_send(Ok(sources_event(&[])));
            let _ = tx.try_send(Ok(answer_event(pb::Answer {
                text: NOT_FOUND_ANSWER.to_owned(),
                status: pb::AnswerStatus::NotFound.into(),
                timings: Some(timings),
                finish_reason: "not_found".into(),
                ..Default::default()
            })));
            return Ok(Response::new(ReceiverStream::new(rx)));
        }

        let prompt = engine.prompt(&question, hits, max_tokens);
        let mut events = engine
            .generator
            .generate(prompt.request(max_tokens, temperature, seed))
            .map_err(QueryError::from)?;

        tokio::spawn(async move {
            let sources = prompt.sources;
            let shown: Vec<Hit> = sources.iter().map(|s| s.hit.clone()).collect();
            if tx.send(Ok(sources_event(&shown))).await.is_err() {
                return; // dropping `events` cancels the generation
            }
            let mut text = String::new();
            while let Some(event) = events.recv().await {
                match event {
                    rag_llm::Event::Token(piece) => {
                        if timings.first_token_ms == 0.0 {
                            timings.first_token_ms = ms(started.elapsed());
                        }
                        text.push_str(&piece);
                        let event = pb::AskResponse {
                            event: Some(pb::ask_response::Event::Token(pb::Token { text: piece })),
                        };
                        if tx.send(Ok(event)).await.is_err() {
                            return;
                        }
                    }
                    rag_llm::Event::Done(stats) => {
                        timings.total_ms = ms(started.elapsed());
                        let generation = stats.generation.as_secs_f64();
                        if stats.completion_tokens > 1 && generation > 0.0 {
                            timings.tokens_per_second =
                                (stats.completion_tokens - 1) as f64 / generation;
                        }
                        let answer = answer(&engine, &text, &sources, &stats, timings).await;
                        let _ = tx.send(Ok(answer_event(answer))).await;
                        return;
                    }
                    rag_llm::Event::Failed(e) => {
                        let _ = tx.send(Err(QueryError::from(e).into())).await;
                        return;
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn ingest_document(
        &self,
        request: Request<pb::IngestDocumentRequest>,
    ) -> Result<Response<pb::IngestDocumentResponse>, Status> {
        let engine = self.engine()?;
        let request = request.into_inner();
        let file_name = request.file_name.trim().to_owned();
        if file_name.is_empty() {
            return Err(QueryError::invalid("file_name", "must not be empty").into());
        }
        if request.content.is_empty() {
            return Err(QueryError::invalid("content", "must not be empty").into());
        }
        let (document_id, outcome) = engine
            .indexer
            .index_document(IncomingDocument {
                file_name,
                media_type: request.media_type,
                content: request.content,
                document_id: request.document_id.trim().to_owned(),
                metadata: request.metadata.into_iter().collect(),
            })
            .await
            .map_err(|e| match e {
                rag_ingest::IndexError::Unsupported { .. } => {
                    QueryError::invalid("media_type", e.to_string())
                }
                rag_ingest::IndexError::TooLarge { .. }
                | rag_ingest::IndexError::Extract { .. } => {
                    QueryError::invalid("content", e.to_string())
                }
                e => QueryError::from(e),
            })?;
        let (chunks_written, pages, unchanged) = match outcome {
            rag_ingest::Outcome::Indexed { chunks, pages } => (chunks, pages, false),
            rag_ingest::Outcome::Unchanged => (0, 0, true),
        };
        Ok(Response::new(pb::IngestDocumentResponse {
            document_id,
            chunks_written,
            unchanged,
            pages,
        }))
    }

    async fn delete_document(
        &self,
        request: Request<pb::DeleteDocumentRequest>,
    ) -> Result<Response<pb::DeleteDocumentResponse>, Status> {
        let engine = self.engine()?;
        use pb::delete_document_request::Target;
        let deleted = match request.into_inner().target {
            Some(Target::DocumentId(id)) if !id.trim().is_empty() => {
                engine.store.delete_document(id.trim(), None).await
            }
            Some(Target::SourcePath(path)) if !path.trim().is_empty() => {
                engine.store.delete_source(path.trim()).await
            }
            Some(Target::DocumentId(_)) => {
                return Err(QueryError::invalid("document_id", "must not be empty").into());
            }
            Some(Target::SourcePath(_)) => {
                return Err(QueryError::invalid("source_path", "must not be empty").into());
            }
            None => {
                return Err(QueryError::invalid("target", "set document_id or source_path").into());
            }
        }
        .map_err(QueryError::from)?;
        engine.store.flush().await.map_err(QueryError::from)?;
        Ok(Response::new(pb::DeleteDocumentResponse {
            chunks_deleted: deleted,
        }))
    }
}

fn question(engine: &Engine, field: &'static str, text: &str) -> Result<String, QueryError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(QueryError::invalid(field, "must not be empty"));
    }
    let chars = text.chars().count();
    if chars > engine.config.max_question_chars {
        return Err(QueryError::invalid(
            field,
            format!(
                "{chars} characters is over the limit of {}",
                engine.config.max_question_chars
            ),
        ));
    }
    Ok(text.to_owned())
}

fn retrieval(
    engine: &Engine,
    options: Option<pb::RetrievalOptions>,
) -> Result<Retrieval, QueryError> {
    let options = options.unwrap_or_default();
    let top_k = match options.top_k {
        0 => engine.config.top_k,
        k if k <= MAX_TOP_K => k as usize,
        k => {
            return Err(QueryError::invalid(
                "retrieval.top_k",
                format!("{k} is outside 1..={MAX_TOP_K}"),
            ));
        }
    };
    let score_threshold = match options.score_threshold {
        None => engine.config.score_threshold,
        Some(t) if (-1.0..=1.0).contains(&t) => t,
        Some(t) => {
            return Err(QueryError::invalid(
                "retrieval.score_threshold",
                format!("{t} is outside -1..=1 (cosine similarity)"),
            ));
        }
    };
    let filter = options.filter.unwrap_or_default();
    Ok(Retrieval {
        top_k,
        score_threshold,
        hybrid: engine.config.hybrid,
        filter: SearchFilter {
            path_prefix: Some(filter.path_prefix).filter(|p| !p.is_empty()),
            doc_ids: filter.document_ids,
        },
    })
}

fn chunk(hit: &Hit) -> pb::Chunk {
    let p = &hit.payload;
    pb::Chunk {
        document_id: p.doc_id.clone(),
        source_path: p.source.clone(),
        page: p.page,
        chunk_index: p.chunk_index,
        text: p.text.clone(),
        score: hit.similarity,
        rank_score: hit.score,
        title: p.title.clone(),
        heading: p.heading.clone(),
    }
}

fn sources_event(sources: &[Hit]) -> pb::AskResponse {
    pb::AskResponse {
        event: Some(pb::ask_response::Event::Sources(pb::Sources {
            sources: sources
                .iter()
                .enumerate()
                .map(|(i, hit)| pb::Source {
                    number: i as u32 + 1,
                    chunk: Some(chunk(hit)),
                })
                .collect(),
        })),
    }
}

fn answer_event(answer: pb::Answer) -> pb::AskResponse {
    pb::AskResponse {
        event: Some(pb::ask_response::Event::Answer(answer)),
    }
}

/// The final answer, as the engine checked it.
async fn answer(
    engine: &Engine,
    text: &str,
    sources: &[Source],
    stats: &rag_llm::Stats,
    timings: pb::Timings,
) -> pb::Answer {
    let checked = engine.check_answer(text, sources).await;
    let citations = checked
        .citations
        .iter()
        .map(|&n| {
            let p = &sources[n as usize - 1].hit.payload;
            pb::Citation {
                number: n,
                document_id: p.doc_id.clone(),
                source_path: p.source.clone(),
                page: p.page,
            }
        })
        .collect();
    pb::Answer {
        status: match checked.status {
            Verdict::Answered => pb::AnswerStatus::Answered,
            Verdict::NotFound => pb::AnswerStatus::NotFound,
            Verdict::Unsupported => pb::AnswerStatus::Unsupported,
        }
        .into(),
        text: checked.text,
        draft: checked.draft,
        citations,
        invalid_citations: checked.invalid_citations,
        sentences: checked
            .sentences
            .into_iter()
            .map(|s| pb::Sentence {
                text: s.text,
                cited: s.cited,
                supported: s.supported_by.is_some(),
                supported_by: s.supported_by.unwrap_or(0),
                lexical_overlap: s.lexical_overlap,
                similarity: s.similarity,
            })
            .collect(),
        usage: Some(pb::Usage {
            prompt_tokens: stats.prompt_tokens as u32,
            completion_tokens: stats.completion_tokens as u32,
        }),
        timings: Some(timings),
        finish_reason: match stats.finish {
            rag_llm::Finish::Stop => "stop",
            rag_llm::Finish::Length => "length",
        }
        .into(),
    }
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
