//! `rag eval`: retrieval quality and refusal on a labelled question set.
//!
//! A question set is JSON lines: `{"question": "...", "sources": ["hr/leave.md"]}` for a
//! question the corpus answers (a source ending in `/` matches every file below it), and
//! `{"question": "...", "sources": []}` for one it does not. The corpus is indexed into a
//! scratch store first, so results depend only on the corpus, the set and the configuration.
//!
//! Reported: recall@1 and @5 and MRR@10 on answerable questions; refusal accuracy on answerable
//! and unanswerable questions at the configured score threshold, and the threshold that
//! balances the two best on this set (calibrated, not guessed); retrieval latency.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use rag_engine::{AskEvent, Engine, Retrieval, Verdict};
use serde::Deserialize;
use tokio_stream::StreamExt;

use crate::config::Config;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The question set (JSON lines).
    #[arg(long, default_value = "benches/eval/sample.jsonl")]
    questions: PathBuf,
    /// The folder to index and ask about.
    #[arg(long, default_value = "examples/docs")]
    corpus: PathBuf,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
    /// Retrieve by dense vectors only (the baseline hybrid retrieval is compared with).
    #[arg(long)]
    dense_only: bool,
    /// Also generate an answer to every question, as Ask does, and report citation precision
    /// and answer-level refusal (slow: one generation per question).
    #[arg(long)]
    generate: bool,
    /// Keep the index in this folder instead of a scratch one: a re-run skips unchanged files
    /// (as `rag ingest` does), so retrieval settings can be compared over one index.
    #[arg(long, value_name = "DIR")]
    index: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Question {
    question: String,
    /// Empty: the corpus does not answer it.
    sources: Vec<String>,
}

impl Question {
    /// Whether `source` is one of the expected documents (a source ending in `/` is a folder).
    fn expects(&self, source: &str) -> bool {
        self.sources
            .iter()
            .any(|s| source == s || (s.ends_with('/') && source.starts_with(s.as_str())))
    }
}

/// Chunks retrieved per question: enough for MRR@10.
const DEPTH: usize = 10;

#[derive(Debug, Default, serde::Serialize)]
pub struct Results {
    /// "hybrid" (dense + lexical, fused) or "dense".
    pub retrieval: &'static str,
    pub answerable: usize,
    pub unanswerable: usize,
    pub recall_at_1: f64,
    pub recall_at_5: f64,
    pub mrr_at_10: f64,
    pub score_threshold: f32,
    /// Share of answerable questions whose best chunk passes the threshold (not refused).
    pub answered_when_answerable: f64,
    /// Share of unanswerable questions whose best chunk fails the threshold (refused).
    pub refused_when_unanswerable: f64,
    /// The threshold with the best mean of the two shares on this set, and that mean.
    pub calibrated_threshold: f32,
    pub calibrated_balanced_accuracy: f64,
    pub latency_p50_ms: f64,
    pub latency_p95_ms: f64,
    /// Per question: the best candidate's cosine similarity and whether it is answerable, for
    /// calibrating one threshold over several sets.
    pub best_similarities: Vec<(f32, bool)>,
    /// With `--generate`: the answers as Ask gives them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<Generation>,
}

/// Answer-level results, at the configured top_k and threshold.
#[derive(Debug, Default, serde::Serialize)]
pub struct Generation {
    /// Of the valid citations in answers to answerable questions, the share naming an expected
    /// source document.
    pub citation_precision: f64,
    pub citations: usize,
    /// Of the supported sentences in answers to answerable questions, the share whose
    /// supporting source is an expected document (what a client showing `supported_by` as the
    /// sentence's source would get right).
    pub attribution_precision: f64,
    pub attributions: usize,
    /// Answerable questions answered (not refused, not withheld).
    pub answered_when_answerable: f64,
    /// Unanswerable questions refused: nothing retrieved, the model said so, or the answer was
    /// withheld because no sentence was supported.
    pub refused_when_unanswerable: f64,
    /// Of all sentences the model wrote (where it was called), the share a source supports.
    pub sentences_supported: f64,
    /// Answers withheld for lack of support.
    pub withheld: usize,
    pub generation_p50_ms: f64,
}

pub async fn run(config: Config, args: EvalArgs) -> anyhow::Result<()> {
    let questions: Vec<Question> = fs_err::read_to_string(&args.questions)?
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{}:{}", args.questions.display(), i + 1))
        })
        .collect::<anyhow::Result<_>>()?;
    anyhow::ensure!(
        !questions.is_empty(),
        "no questions in {}",
        args.questions.display()
    );

    let scratch = tempfile::tempdir()?;
    let mut config = config;
    config.data_dir = match &args.index {
        Some(dir) => dir.clone(),
        None => scratch.path().join("data"),
    };
    let indexer = crate::ingest::open_indexer(&config).await?;
    let summary = indexer
        .index_folder(&args.corpus, &Default::default(), &|_| {})
        .await
        .with_context(|| format!("indexing {}", args.corpus.display()))?;
    anyhow::ensure!(summary.points_total > 0, "the corpus produced no chunks");

    // Retrieval alone needs no chat model; it is loaded only for --generate and translation.
    let retriever =
        crate::engine::retriever(&config, indexer.embedder().clone(), indexer.store().clone())
            .await?;
    let defaults = retriever.default_retrieval();
    // Translating questions for search needs the chat model, as generating answers does.
    let engine = if args.generate || config.query.translation.enabled {
        Some(crate::engine::with_generator(&config, retriever.clone()).await?)
    } else {
        None
    };
    let retrieval = Retrieval {
        top_k: DEPTH,
        score_threshold: -1.0,
        hybrid: defaults.hybrid && !args.dense_only,
        ..defaults.clone()
    };
    let mut ranks = Vec::new();
    let mut best_scores = Vec::new();
    let mut latencies = Vec::new();
    for q in &questions {
        let started = std::time::Instant::now();
        let found = match &engine {
            Some(engine) => engine.retrieve(&q.question, &retrieval).await,
            None => retriever.retrieve(&q.question, &retrieval).await,
        };
        let hits = match found {
            // Refused for its language (an English-only model): no passage, as Search says.
            Err(rag_engine::EngineError::UnsupportedLanguage { .. }) => Vec::new(),
            other => other?,
        };
        let took = started.elapsed();
        latencies.push(took);
        // The refusal signal: Ask refuses when none of the `top_k` fused hits it would use
        // reaches the threshold (see `Engine::retrieve`).
        let top = hits
            .iter()
            .take(config.query.top_k)
            .map(|h| h.similarity)
            .fold(f32::MIN, f32::max);
        best_scores.push((top, !q.sources.is_empty()));
        if !q.sources.is_empty() {
            let rank = hits.iter().position(|h| q.expects(&h.payload.source));
            ranks.push(rank);
        }
    }
    let mut results = score(
        &ranks,
        &best_scores,
        config.query.score_threshold,
        &mut latencies,
    );
    results.retrieval = if retrieval.hybrid { "hybrid" } else { "dense" };
    if args.generate {
        let retrieval = Retrieval {
            hybrid: retrieval.hybrid,
            ..defaults
        };
        let engine = engine.expect("loaded for --generate");
        results.generation = Some(generate(&engine, &questions, retrieval).await?);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        print_table(&args, &summary, &results);
    }
    Ok(())
}

fn score(
    ranks: &[Option<usize>],
    best_scores: &[(f32, bool)],
    threshold: f32,
    latencies: &mut [Duration],
) -> Results {
    let share = |n: usize, of: usize| if of == 0 { 0.0 } else { n as f64 / of as f64 };
    let answerable = ranks.len();
    let unanswerable = best_scores.len() - answerable;
    let hits_at = |k: usize| ranks.iter().filter(|r| r.is_some_and(|r| r < k)).count();
    let mrr = ranks
        .iter()
        .map(|r| r.map_or(0.0, |r| 1.0 / (r as f64 + 1.0)))
        .sum::<f64>();
    let shares = |t: f32| {
        let answered = best_scores.iter().filter(|(s, a)| *a && *s >= t).count();
        let refused = best_scores.iter().filter(|(s, a)| !*a && *s < t).count();
        (share(answered, answerable), share(refused, unanswerable))
    };
    let (answered, refused) = shares(threshold);
    // Candidate thresholds: just above each observed best score, and the lowest.
    let (calibrated, balanced) = best_scores
        .iter()
        .map(|(s, _)| s + 1e-4)
        .chain([f32::MIN])
        .map(|t| {
            let (a, r) = shares(t);
            (t, (a + r) / 2.0)
        })
        .fold(
            (threshold, f64::MIN),
            |best, c| {
                if c.1 > best.1 { c } else { best }
            },
        );
    latencies.sort();
    let pct = |p: f64| {
        let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    Results {
        retrieval: "hybrid",
        answerable,
        unanswerable,
        recall_at_1: share(hits_at(1), answerable),
        recall_at_5: share(hits_at(5), answerable),
        mrr_at_10: if answerable == 0 {
            0.0
        } else {
            mrr / answerable as f64
        },
        score_threshold: threshold,
        answered_when_answerable: answered,
        refused_when_unanswerable: refused,
        calibrated_threshold: calibrated,
        calibrated_balanced_accuracy: balanced,
        latency_p50_ms: pct(0.5),
        latency_p95_ms: pct(0.95),
        best_similarities: best_scores.to_vec(),
        generation: None,
    }
}

/// Answered and refused questions, by whether the set expects an answer.
#[derive(Default)]
struct Outcomes {
    answerable: usize,
    answered: usize,
    unanswerable: usize,
    refused: usize,
}

impl Outcomes {
    fn count(&mut self, expected: bool, answered: bool) {
        if expected {
            self.answerable += 1;
            self.answered += usize::from(answered);
        } else {
            self.unanswerable += 1;
            self.refused += usize::from(!answered);
        }
    }
}

/// Answers every question as Ask does (same engine, same stream) and scores the answers.
async fn generate(
    engine: &Engine,
    questions: &[Question],
    retrieval: Retrieval,
) -> anyhow::Result<Generation> {
    let options = rag_engine::AskOptions {
        retrieval,
        ..engine.default_ask()
    };
    let mut g = Generation::default();
    let mut outcomes = Outcomes::default();
    let (mut right_citations, mut sentences, mut supported, mut right_attributions) = (0, 0, 0, 0);
    let mut took = Vec::new();
    for q in questions {
        let expected = !q.sources.is_empty();
        let mut events = match engine.ask(&q.question, options.clone()).await {
            // Refused for its language: counted as a question not answered.
            Err(rag_engine::EngineError::UnsupportedLanguage { .. }) => {
                outcomes.count(expected, false);
                continue;
            }
            other => other?,
        };
        let mut sources = Vec::new();
        let mut answer = None;
        while let Some(event) = events.next().await {
            match event? {
                AskEvent::Sources(hits) => sources = hits,
                AskEvent::Token(_) | AskEvent::Rewritten(_) => {}
                AskEvent::Answer(a) => answer = Some(a),
            }
        }
        let answer = answer.context("the answer stream ended without an answer")?;
        let checked = &answer.checked;
        if !sources.is_empty() {
            // The model's time (queue, prompt, answer), without retrieval and the check.
            let t = &answer.timings;
            took.push(t.queued + t.prompt_eval + t.generation);
            sentences += checked.sentences.len();
            supported += checked
                .sentences
                .iter()
                .filter(|s| s.supported_by.is_some())
                .count();
        }
        if expected && checked.status == Verdict::Answered {
            let source = |n: u32| sources[n as usize - 1].payload.source.as_str();
            for &n in &checked.citations {
                g.citations += 1;
                right_citations += usize::from(q.expects(source(n)));
            }
            for n in checked.sentences.iter().filter_map(|s| s.supported_by) {
                g.attributions += 1;
                right_attributions += usize::from(q.expects(source(n)));
            }
        }
        if checked.status == Verdict::Unsupported {
            g.withheld += 1;
        }
        outcomes.count(expected, checked.status == Verdict::Answered);
    }
    let share = |n: usize, of: usize| if of == 0 { 0.0 } else { n as f64 / of as f64 };
    g.citation_precision = share(right_citations, g.citations);
    g.attribution_precision = share(right_attributions, g.attributions);
    g.answered_when_answerable = share(outcomes.answered, outcomes.answerable);
    g.refused_when_unanswerable = share(outcomes.refused, outcomes.unanswerable);
    g.sentences_supported = share(supported, sentences);
    took.sort();
    g.generation_p50_ms = took
        .get(took.len() / 2)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    Ok(g)
}

fn print_table(args: &EvalArgs, summary: &rag_ingest::Summary, r: &Results) {
    println!(
        "# rag eval: {} over {} ({} files, {} chunks)",
        args.questions.display(),
        args.corpus.display(),
        summary.files,
        summary.chunks_written
    );
    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!("| retrieval | {} |", r.retrieval);
    println!(
        "| questions | {} answerable, {} unanswerable |",
        r.answerable, r.unanswerable
    );
    println!("| recall@1 | {:.3} |", r.recall_at_1);
    println!("| recall@5 | {:.3} |", r.recall_at_5);
    println!("| MRR@10 | {:.3} |", r.mrr_at_10);
    println!(
        "| at the configured threshold {:.2}: answered when answerable / refused when not | {:.3} / {:.3} |",
        r.score_threshold, r.answered_when_answerable, r.refused_when_unanswerable
    );
    println!(
        "| calibrated threshold (best balanced accuracy on this set) | {:.3} ({:.3}) |",
        r.calibrated_threshold, r.calibrated_balanced_accuracy
    );
    println!(
        "| retrieval latency p50 / p95 | {:.1} ms / {:.1} ms |",
        r.latency_p50_ms, r.latency_p95_ms
    );
    if let Some(g) = &r.generation {
        println!(
            "| citation precision (answers to answerable questions) | {:.3} of {} citations |",
            g.citation_precision, g.citations
        );
        println!(
            "| attribution precision (source supporting each sentence) | {:.3} of {} sentences |",
            g.attribution_precision, g.attributions
        );
        println!(
            "| answers: answered when answerable / refused when not | {:.3} / {:.3} |",
            g.answered_when_answerable, g.refused_when_unanswerable
        );
        println!(
            "| sentences supported by a source / answers withheld | {:.3} / {} |",
            g.sentences_supported, g.withheld
        );
        println!("| generation p50 | {:.0} ms |", g.generation_p50_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_follow_their_definitions() {
        let ranks = [Some(0), Some(2), None, Some(7)];
        let best = [
            (0.9, true),
            (0.6, true),
            (0.5, true),
            (0.4, true),
            (0.45, false),
            (0.2, false),
        ];
        let mut latencies = vec![Duration::from_millis(10); 6];
        let r = score(&ranks, &best, 0.5, &mut latencies);
        assert_eq!((r.answerable, r.unanswerable), (4, 2));
        assert_eq!(r.recall_at_1, 0.25);
        assert_eq!(r.recall_at_5, 0.5);
        let mrr = (1.0 + 1.0 / 3.0 + 0.0 + 1.0 / 8.0) / 4.0;
        assert!((r.mrr_at_10 - mrr).abs() < 1e-9);
        assert_eq!(r.answered_when_answerable, 0.75);
        assert_eq!(r.refused_when_unanswerable, 1.0);
        // Just above 0.45 refuses both unanswerable ones and keeps 3 of 4 answerable.
        assert!(r.calibrated_threshold > 0.45 && r.calibrated_threshold <= 0.5);
        assert!((r.calibrated_balanced_accuracy - 0.875).abs() < 1e-9);
        assert_eq!(r.latency_p50_ms, 10.0);
    }
}
