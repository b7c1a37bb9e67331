//! `rag search`, `rag ask`, `rag delete`: a client for people, over the same gRPC API services use.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use rag_proto::v1 as pb;
use rag_proto::v1::rag_service_client::RagServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::RetrievalArgs;
use crate::config::Config;

#[derive(Debug, Args)]
pub struct SearchArgs {
    query: String,
    #[command(flatten)]
    retrieval: RetrievalArgs,
    /// Service address (overrides `client.addr`).
    #[arg(long)]
    addr: Option<String>,
    /// Print the response as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct AskArgs {
    question: String,
    #[command(flatten)]
    retrieval: RetrievalArgs,
    /// Longest answer, in tokens (default: the service's).
    #[arg(long)]
    max_tokens: Option<u32>,
    /// Sampling temperature; 0 is greedy.
    #[arg(long)]
    temperature: Option<f32>,
    #[arg(long)]
    seed: Option<u32>,
    /// An earlier question of the conversation, oldest first (repeatable): QUESTION is then a
    /// follow-up, rewritten into a standalone question before retrieval.
    #[arg(long = "after", value_name = "EARLIER_QUESTION")]
    after: Vec<String>,
    /// Service address (overrides `client.addr`).
    #[arg(long)]
    addr: Option<String>,
    /// Print one JSON object with the answer, its citations and sources, instead of streaming.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
// One of the two targets; `--addr` stays free to combine with either.
#[command(group(clap::ArgGroup::new("target").required(true).args(["doc_id", "source"])))]
pub struct DeleteArgs {
    /// The document id (as shown by `rag search`).
    #[arg(long)]
    doc_id: Option<String>,
    /// The document's source path.
    #[arg(long)]
    source: Option<String>,
    #[arg(long)]
    addr: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[arg(long)]
    addr: Option<String>,
    /// Print the status and index statistics as JSON.
    #[arg(long)]
    json: bool,
}

/// The service at `addr`, over TLS for `https://` addresses (`client.tls_*`).
pub fn endpoint(config: &Config, addr: &str) -> anyhow::Result<Endpoint> {
    let endpoint = Channel::from_shared(addr.to_owned())
        .with_context(|| format!("invalid service address {addr}"))?;
    Ok(match crate::tls::client(&config.client, addr)? {
        Some(tls) => endpoint.tls_config(tls)?,
        None => endpoint,
    })
}

async fn channel(config: &Config, addr: Option<&str>) -> anyhow::Result<Channel> {
    let addr = addr.unwrap_or(&config.client.addr).to_owned();
    endpoint(config, &addr)?
        .timeout(Duration::from_secs(config.client.timeout_secs))
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .with_context(|| {
            format!("cannot reach the rag service at {addr} (is `rag serve` running?)")
        })
}

/// A client of the rag service that sends the configured API key with every call.
pub type Client = RagServiceClient<InterceptedService<Channel, ApiKey>>;

/// Puts `authorization: Bearer <key>` on every request (nothing when no key is configured).
#[derive(Clone)]
pub struct ApiKey(Option<MetadataValue<Ascii>>);

impl ApiKey {
    /// The key from `--api-key`, `RAG_API_KEY` or `client.api_key`.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let value = config
            .client
            .api_key
            .as_deref()
            .map(|key| {
                MetadataValue::try_from(format!("Bearer {}", key.trim()))
                    .context("the API key must be printable ASCII")
            })
            .transpose()?;
        Ok(Self(value))
    }

    pub fn none() -> Self {
        Self(None)
    }

    pub fn client(self, channel: Channel) -> Client {
        RagServiceClient::with_interceptor(channel, self)
    }
}

impl Interceptor for ApiKey {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert(rag_grpc::AUTHORIZATION_HEADER, value.clone());
        }
        Ok(request)
    }
}

pub(crate) async fn connect(config: &Config, addr: Option<&str>) -> anyhow::Result<Client> {
    Ok(ApiKey::from_config(config)?.client(channel(config, addr).await?))
}

fn retrieval(args: &RetrievalArgs) -> pb::RetrievalOptions {
    pb::RetrievalOptions {
        top_k: args.top_k.unwrap_or(0),
        score_threshold: args.threshold,
        filter: Some(pb::Filter {
            path_prefix: args.path_prefix.clone().unwrap_or_default(),
            document_ids: args.doc_ids.clone(),
        }),
    }
}

fn status_error(e: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", e.code(), e.message())
}

pub async fn search(config: &Config, args: SearchArgs) -> anyhow::Result<ExitCode> {
    let mut client = connect(config, args.addr.as_deref()).await?;
    let response = client
        .search(pb::SearchRequest {
            query: args.query,
            retrieval: Some(retrieval(&args.retrieval)),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    if args.json {
        let chunks: Vec<_> = response.chunks.iter().map(chunk_json).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "chunks": chunks }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    if response.chunks.is_empty() {
        println!("No chunk matched.");
    }
    for (i, c) in response.chunks.iter().enumerate() {
        println!(
            "{}. [{:.3}] {}  (doc {})",
            i + 1,
            c.score,
            location(c),
            c.document_id
        );
        println!("   {}", snippet(&c.text, 200));
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn ask(config: &Config, args: AskArgs) -> anyhow::Result<ExitCode> {
    let mut client = connect(config, args.addr.as_deref()).await?;
    let mut stream = client
        .ask(pb::AskRequest {
            question: args.question,
            retrieval: Some(retrieval(&args.retrieval)),
            max_tokens: args.max_tokens.unwrap_or(0),
            temperature: args.temperature,
            seed: args.seed,
            history: args
                .after
                .into_iter()
                .map(|question| pb::Turn {
                    question,
                    answer: String::new(),
                })
                .collect(),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    let mut sources = Vec::new();
    let mut answer = None;
    let mut stdout = std::io::stdout();
    while let Some(message) = stream.message().await.map_err(status_error)? {
        match message.event {
            Some(pb::ask_response::Event::Rewrite(r)) if !args.json => {
                println!("(searched for: {})", r.question);
            }
            Some(pb::ask_response::Event::Sources(s)) => sources = s.sources,
            Some(pb::ask_response::Event::Token(t)) if !args.json => {
                write!(stdout, "{}", t.text)?;
                stdout.flush()?;
            }
            Some(pb::ask_response::Event::Answer(a)) => answer = Some(a),
            _ => {}
        }
    }
    let answer = answer.context("the service ended the answer stream without a final answer")?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&answer_json(&answer, &sources))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    if answer.status == pb::AnswerStatus::NotFound as i32 && sources.is_empty() {
        println!("{}", answer.text);
    } else {
        println!();
    }
    if answer.status == pb::AnswerStatus::Unsupported as i32 {
        println!(
            "\nWithheld: no sentence of this answer is supported by the sources.\n{}",
            answer.text
        );
    }
    if !answer.sentences.is_empty() {
        println!("\nChecked against the sources:");
        for s in &answer.sentences {
            let verdict = if s.supported {
                format!("supported by [{}]", s.supported_by)
            } else {
                "NOT supported".to_owned()
            };
            println!(
                "  {verdict:<18} terms {:.0}%, similarity {:.2}: {}",
                s.lexical_overlap * 100.0,
                s.similarity,
                snippet(&s.text, 80)
            );
        }
    }
    if !sources.is_empty() {
        println!("\nSources:");
        for s in &sources {
            let c = s.chunk.clone().unwrap_or_default();
            let cited = if answer.citations.iter().any(|x| x.number == s.number) {
                "  (cited)"
            } else {
                ""
            };
            println!(
                "  [{}] {}  score {:.3}{cited}",
                s.number,
                location(&c),
                c.score
            );
        }
    }
    if !answer.invalid_citations.is_empty() {
        println!(
            "  note: the answer cites {:?}, which match no source",
            answer.invalid_citations
        );
    }
    if let Some(t) = &answer.timings {
        eprintln!(
            "retrieval {:.0} ms, first token {:.0} ms, total {:.0} ms, {:.1} tokens/s",
            t.retrieval_ms, t.first_token_ms, t.total_ms, t.tokens_per_second
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn delete(config: &Config, args: DeleteArgs) -> anyhow::Result<ExitCode> {
    use pb::delete_document_request::Target;
    let mut client = connect(config, args.addr.as_deref()).await?;
    let target = match (args.doc_id, args.source) {
        (Some(id), _) => Target::DocumentId(id),
        (None, Some(source)) => Target::SourcePath(source),
        (None, None) => unreachable!("clap requires one"),
    };
    let response = client
        .delete_document(pb::DeleteDocumentRequest {
            target: Some(target),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    println!("{} chunks deleted", response.chunks_deleted);
    Ok(ExitCode::SUCCESS)
}

pub async fn status(config: &Config, args: StatusArgs) -> anyhow::Result<ExitCode> {
    use tonic_health::pb::health_check_response::ServingStatus;
    let channel = channel(config, args.addr.as_deref()).await?;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "rag.v1.RagService".into(),
        })
        .await
        .map_err(status_error)?
        .into_inner()
        .status();
    let serving = status == ServingStatus::Serving;
    // Statistics exist only once the store is loaded. The exit code says whether the service
    // serves; statistics it cannot give (an older server, a store that is down) are a warning.
    let stats = if serving {
        match ApiKey::from_config(config)?
            .client(channel)
            .index_stats(pb::IndexStatsRequest {})
            .await
        {
            Ok(stats) => Some(stats.into_inner()),
            Err(e) => {
                eprintln!("rag: index statistics unavailable: {}", status_error(e));
                None
            }
        }
    } else {
        None
    };
    if args.json {
        let stats = stats.map(|s| {
            serde_json::json!({
                "documents": s.documents,
                "chunks": s.chunks,
                "embedding_model": s.embedding_model,
                "vector_size": s.vector_size,
                "schema_version": s.schema_version,
                "store_backend": s.store_backend,
            })
        });
        let out = serde_json::json!({"status": status.as_str_name(), "index": stats});
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{}", status.as_str_name());
        if let Some(s) = stats {
            println!("documents        {}", s.documents);
            println!("chunks           {}", s.chunks);
            println!(
                "embedding model  {} ({} dimensions)",
                s.embedding_model, s.vector_size
            );
            println!("schema version   {}", s.schema_version);
            println!("store            {}", s.store_backend);
        }
    }
    Ok(if serving {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn location(c: &pb::Chunk) -> String {
    if c.page > 0 {
        format!("{} (page {})", c.source_path, c.page)
    } else {
        c.source_path.clone()
    }
}

fn snippet(text: &str, max_chars: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max_chars {
        flat
    } else {
        format!("{}…", flat.chars().take(max_chars).collect::<String>())
    }
}

fn chunk_json(c: &pb::Chunk) -> serde_json::Value {
    serde_json::json!({
        "document_id": c.document_id,
        "source_path": c.source_path,
        "page": c.page,
        "chunk_index": c.chunk_index,
        "title": c.title,
        "score": c.score,
        "text": c.text,
    })
}

fn answer_json(a: &pb::Answer, sources: &[pb::Source]) -> serde_json::Value {
    let status = pb::AnswerStatus::try_from(a.status)
        .map(|s| s.as_str_name())
        .unwrap_or("ANSWER_STATUS_UNSPECIFIED");
    serde_json::json!({
        "answer": a.text,
        "status": status,
        "finish_reason": a.finish_reason,
        "citations": a.citations.iter().map(|c| serde_json::json!({
            "number": c.number, "document_id": c.document_id, "source_path": c.source_path, "page": c.page,
        })).collect::<Vec<_>>(),
        "invalid_citations": a.invalid_citations,
        "draft": a.draft,
        "sentences": a.sentences.iter().map(|s| serde_json::json!({
            "text": s.text, "cited": s.cited, "supported": s.supported,
            "supported_by": s.supported_by, "lexical_overlap": s.lexical_overlap,
            "similarity": s.similarity,
        })).collect::<Vec<_>>(),
        "sources": sources.iter().map(|s| serde_json::json!({
            "number": s.number,
            "chunk": s.chunk.as_ref().map(chunk_json),
        })).collect::<Vec<_>>(),
        "usage": a.usage.as_ref().map(|u| serde_json::json!({
            "prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
        })),
        "timings": a.timings.as_ref().map(|t| serde_json::json!({
            "retrieval_ms": t.retrieval_ms, "first_token_ms": t.first_token_ms,
            "total_ms": t.total_ms, "tokens_per_second": t.tokens_per_second,
        })),
    })
}
