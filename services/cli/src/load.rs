//! `rag load`: many clients against a running service, from a process of their own, as a
//! company's traffic would come: Search clients, Ask clients and an ingesting client at once,
//! for a fixed time. Prints requests/s, latency percentiles, errors by status code and, for
//! Ask, tokens/s and time to first token.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use rag_proto::v1 as pb;
use tokio::sync::Mutex;

use crate::client::ApiKey;
use crate::config::Config;

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Service address (overrides `client.addr`).
    #[arg(long)]
    addr: Option<String>,
    /// Clients calling Search back to back.
    #[arg(long, default_value_t = 0)]
    search_clients: usize,
    /// Clients calling Ask back to back.
    #[arg(long, default_value_t = 0)]
    ask_clients: usize,
    /// A client sending this folder's files with IngestDocument, again and again (each round
    /// with a new marker line, so every file is new to the index and embedded).
    #[arg(long)]
    ingest_folder: Option<PathBuf>,
    /// How long to run.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Questions, one per line (default: questions about the sample folder).
    #[arg(long)]
    questions: Option<PathBuf>,
    /// Answer length for Ask, in tokens.
    #[arg(long, default_value_t = 64)]
    max_tokens: u32,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    /// Calls by status code name.
    codes: BTreeMap<String, usize>,
    /// Ask only.
    first_tokens: Vec<Duration>,
    tokens: u64,
    /// Ask only: each answer's tokens after the first per second of its streaming.
    stream_rates: Vec<f64>,
}

pub async fn run(config: &Config, args: LoadArgs) -> anyhow::Result<()> {
    let questions = crate::workload::questions(args.questions.as_deref())?;
    let addr = args.addr.clone().unwrap_or(config.client.addr.clone());
    // One connection per client: HTTP/2 multiplexing on one would measure the connection.
    let key = ApiKey::from_config(config)?;
    let endpoint = crate::client::endpoint(config, &addr)?;
    let connect = || async {
        let channel = endpoint
            .connect()
            .await
            .with_context(|| format!("cannot reach the rag service at {addr}"))?;
        anyhow::Ok(
            key.clone()
                .client(channel)
                .max_decoding_message_size(64 << 20),
        )
    };
    let until = Instant::now() + Duration::from_secs(args.seconds);
    let search = Arc::new(Mutex::new(Tally::default()));
    let ask = Arc::new(Mutex::new(Tally::default()));
    let ingest = Arc::new(Mutex::new(Tally::default()));
    let mut clients = Vec::new();
    for i in 0..args.search_clients {
        let mut client = connect().await?;
        let (tally, questions) = (search.clone(), questions.clone());
        clients.push(tokio::spawn(async move {
            for q in questions.iter().cycle().skip(i) {
                if Instant::now() >= until {
                    break;
                }
                let started = Instant::now();
                let code = match client
                    .search(pb::SearchRequest {
                        query: q.clone(),
                        retrieval: None,
                    })
                    .await
                {
                    Ok(_) => tonic::Code::Ok,
                    Err(e) => e.code(),
                };
                tally.lock().await.record(started.elapsed(), code);
            }
        }));
    }
    for i in 0..args.ask_clients {
        let mut client = connect().await?;
        let (tally, questions) = (ask.clone(), questions.clone());
        let max_tokens = args.max_tokens;
        clients.push(tokio::spawn(async move {
            for q in questions.iter().cycle().skip(i) {
                if Instant::now() >= until {
                    break;
                }
                let started = Instant::now();
                let outcome =
                    crate::workload::streamed_ask(&mut client, q, max_tokens, started).await;
                let mut tally = tally.lock().await;
                match outcome {
                    Ok((first, tokens, last)) => {
                        tally.record(started.elapsed(), tonic::Code::Ok);
                        tally.first_tokens.push(first);
                        tally.tokens += u64::from(tokens);
                        if tokens > 1 && last > first {
                            tally
                                .stream_rates
                                .push(f64::from(tokens - 1) / (last - first).as_secs_f64());
                        }
                    }
                    Err(code) => tally.record(started.elapsed(), code),
                }
            }
        }));
    }
    if let Some(folder) = args.ingest_folder.clone() {
        let mut client = connect().await?;
        let files = files_of(&folder)?;
        anyhow::ensure!(!files.is_empty(), "no files under {}", folder.display());
        let tally = ingest.clone();
        clients.push(tokio::spawn(async move {
            for round in 0.. {
                for (name, body) in &files {
                    if Instant::now() >= until {
                        return;
                    }
                    let mut content = body.clone();
                    content.extend_from_slice(format!("\n\nLoad round {round}.\n").as_bytes());
                    let started = Instant::now();
                    let code = match client
                        .ingest_document(pb::IngestDocumentRequest {
                            file_name: format!("load/{round}/{name}"),
                            content,
                            ..Default::default()
                        })
                        .await
                    {
                        Ok(_) => tonic::Code::Ok,
                        Err(e) => e.code(),
                    };
                    tally.lock().await.record(started.elapsed(), code);
                }
            }
        }));
    }
    let started = Instant::now();
    for client in clients {
        client.await?;
    }
    let seconds = started.elapsed().as_secs_f64();

    let mut report = serde_json::Map::new();
    for (name, tally) in [("search", search), ("ask", ask), ("ingest", ingest)] {
        let mut tally = tally.lock().await;
        if tally.latencies.is_empty() {
            continue;
        }
        report.insert(name.into(), tally.summary(seconds));
    }
    report.insert("seconds".into(), seconds.into());
    report.insert(
        "clients".into(),
        serde_json::json!({
            "search": args.search_clients,
            "ask": args.ask_clients,
            "ingest": usize::from(args.ingest_folder.is_some()),
        }),
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for (name, summary) in &report {
            println!("{name}: {summary}");
        }
    }
    Ok(())
}

impl Tally {
    fn record(&mut self, took: Duration, code: tonic::Code) {
        self.latencies.push(took);
        *self.codes.entry(format!("{code:?}")).or_default() += 1;
    }

    fn summary(&mut self, seconds: f64) -> serde_json::Value {
        self.latencies.sort();
        self.first_tokens.sort();
        let ms = |sorted: &[Duration], p: f64| {
            if sorted.is_empty() {
                return 0.0;
            }
            let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
            (sorted[i].as_secs_f64() * 1e4).round() / 10.0
        };
        let mut summary = serde_json::json!({
            "calls": self.latencies.len(),
            "per_second": (self.latencies.len() as f64 / seconds * 10.0).round() / 10.0,
            "p50_ms": ms(&self.latencies, 50.0),
            "p99_ms": ms(&self.latencies, 99.0),
            "codes": self.codes,
        });
        if !self.first_tokens.is_empty() {
            let rates = &self.stream_rates;
            summary["tokens"] = self.tokens.into();
            summary["tokens_per_second"] =
                ((self.tokens as f64 / seconds * 10.0).round() / 10.0).into();
            summary["per_request_tokens_per_second"] = (rates.iter().sum::<f64>()
                / rates.len().max(1) as f64)
                .round()
                .into();
            summary["first_token_p50_ms"] = ms(&self.first_tokens, 50.0).into();
            summary["first_token_p99_ms"] = ms(&self.first_tokens, 99.0).into();
        }
        summary
    }
}

/// The folder's files (name relative to it, bytes), in name order.
fn files_of(folder: &std::path::Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    let mut stack = vec![folder.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in fs_err::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path
                    .strip_prefix(folder)?
                    .to_string_lossy()
                    .replace('\\', "/");
                files.push((name, fs_err::read(&path)?));
            }
        }
    }
    files.sort();
    Ok(files)
}
