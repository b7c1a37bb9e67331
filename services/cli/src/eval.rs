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

use std::io::Write as _;
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
    /// With --generate: write one JSON line per question to FILE (the answer, its verdict, the
    /// documents cited and supporting each sentence, timings), to read the wrong answers one
    /// by one.
    #[arg(long, value_name = "FILE", requires = "generate")]
    details: Option<PathBuf>,
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
    /// Of the answerable questions, the share answered from the right page: answered, and at
    /// least one cited or supporting document is an expected one.
    pub correct: f64,
    /// Of the answerable questions, the share answered from the wrong page: answered, and no
    /// cited or supporting document is an expected one.
    pub wrong: f64,
    /// Of the answerable questions, the share refused or withheld.
    pub missed: f64,
    /// Of the answers shown (answered), the share written in the question's script (a Korean
    /// question answered in Korean); 1 when none was shown.
    pub in_question_language: f64,
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
    /// The model's time per answer (queue, prompt, generation) where it was called.
    pub generation_p50_ms: f64,
    pub generation_p95_ms: f64,
    /// Prompt tokens per answer where the model was called (the sources it had to read).
    pub prompt_tokens_p50: f64,
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
    let engine = if args.generate || config.query.engine.translation.enabled {
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
            .take(config.query.engine.top_k)
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
        config.query.engine.score_threshold,
        &mut latencies,
    );
    results.retrieval = if retrieval.hybrid { "hybrid" } else { "dense" };
    if args.generate {
        let retrieval = Retrieval {
            hybrid: retrieval.hybrid,
            ..defaults
        };
        let engine = engine.expect("loaded for --generate");
        let mut details = match &args.details {
            Some(path) => Some(std::io::BufWriter::new(fs_err::File::create(path)?)),
            None => None,
        };
        let details_out = details.as_mut().map(|w| w as &mut dyn std::io::Write);
        results.generation = Some(generate(&engine, &questions, retrieval, details_out).await?);
        if let Some(mut w) = details {
            std::io::Write::flush(&mut w)?;
        }
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
    let latencies: Vec<f64> = latencies.iter().copied().map(ms).collect();
    let pct = |p: f64| quantile(&latencies, p);
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

/// How one answer came out, judged against the set's expected documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    /// Answerable, answered, and a cited or supporting document is expected.
    Correct,
    /// Answerable, answered, and no cited or supporting document is expected.
    Wrong,
    /// Answerable, but refused or withheld.
    Missed,
    /// Not answerable, and refused or withheld.
    Refused,
    /// Not answerable, yet answered.
    Answered,
}

impl Outcome {
    fn of(q: &Question, answered: bool, documents: &[&str]) -> Self {
        match (q.sources.is_empty(), answered) {
            (true, true) => Self::Answered,
            (true, false) => Self::Refused,
            (false, false) => Self::Missed,
            (false, true) if documents.iter().any(|d| q.expects(d)) => Self::Correct,
            (false, true) => Self::Wrong,
        }
    }
}

/// One line of `--details`: what a reader checks when an answer is wrong.
#[derive(Debug, serde::Serialize)]
struct Detail<'a> {
    question: &'a str,
    expected: &'a [String],
    outcome: Outcome,
    /// answered | not_found | unsupported (withheld) | unsupported_language
    status: &'static str,
    answer: String,
    /// The model's answer when it was withheld.
    #[serde(skip_serializing_if = "String::is_empty")]
    draft: String,
    /// Whether the shown answer is in the question's script.
    in_question_language: bool,
    /// The documents given to the model, as numbered (source n is sources[n - 1]).
    sources: Vec<&'a str>,
    cited: Vec<&'a str>,
    sentences: Vec<SentenceDetail<'a>>,
    prompt_tokens: usize,
    completion_tokens: usize,
    retrieval_ms: f64,
    first_token_ms: f64,
    generation_ms: f64,
    total_ms: f64,
}

impl<'a> Detail<'a> {
    /// A question refused for its language.
    fn unread(q: &'a Question, outcome: Outcome) -> Self {
        Detail {
            question: &q.question,
            expected: &q.sources,
            outcome,
            status: "unsupported_language",
            answer: String::new(),
            draft: String::new(),
            in_question_language: false,
            sources: Vec::new(),
            cited: Vec::new(),
            sentences: Vec::new(),
            prompt_tokens: 0,
            completion_tokens: 0,
            retrieval_ms: 0.0,
            first_token_ms: 0.0,
            generation_ms: 0.0,
            total_ms: 0.0,
        }
    }

    /// A question answered, refused or withheld, with the sources it was given.
    fn of(
        q: &'a Question,
        outcome: Outcome,
        answer: &'a rag_engine::Answer,
        sources: &'a [rag_store::Hit],
        in_language: bool,
    ) -> Self {
        let checked = &answer.checked;
        let t = &answer.timings;
        let source = |n: u32| sources[n as usize - 1].payload.source.as_str();
        Detail {
            question: &q.question,
            expected: &q.sources,
            outcome,
            status: status_name(checked.status),
            answer: checked.text.clone(),
            draft: checked.draft.clone(),
            in_question_language: in_language,
            sources: sources.iter().map(|h| h.payload.source.as_str()).collect(),
            cited: checked.citations.iter().map(|&n| source(n)).collect(),
            sentences: checked
                .sentences
                .iter()
                .map(|s| SentenceDetail {
                    text: &s.text,
                    cited: s.cited.iter().map(|&n| source(n)).collect(),
                    supported_by: s.supported_by.map(source),
                    lexical_overlap: s.lexical_overlap,
                    similarity: s.similarity,
                })
                .collect(),
            prompt_tokens: answer.prompt_tokens,
            completion_tokens: answer.completion_tokens,
            retrieval_ms: ms(t.retrieval),
            first_token_ms: ms(t.first_token),
            generation_ms: ms(t.generation),
            total_ms: ms(t.total),
        }
    }
}

#[derive(Debug, serde::Serialize)]
struct SentenceDetail<'a> {
    text: &'a str,
    cited: Vec<&'a str>,
    /// The document the support check attributes the sentence to, if any.
    supported_by: Option<&'a str>,
    lexical_overlap: f32,
    similarity: f32,
}

fn status_name(status: Verdict) -> &'static str {
    match status {
        Verdict::Answered => "answered",
        Verdict::NotFound => "not_found",
        Verdict::Unsupported => "unsupported",
    }
}

/// Whether `answer` is written in `question`'s script (both Latin, or both Korean, ...).
fn same_script(question: &str, answer: &str) -> bool {
    rag_lexical::asker_script(question) == rag_lexical::asker_script(answer)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The value at quantile `p` of sorted `values` (0 when empty).
fn quantile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values[((values.len() as f64 - 1.0) * p).round() as usize]
}

/// Answers every question as Ask does (same engine, same stream) and scores the answers; with
/// `details`, writes one JSON line per question there.
async fn generate(
    engine: &Engine,
    questions: &[Question],
    retrieval: Retrieval,
    mut details: Option<&mut dyn std::io::Write>,
) -> anyhow::Result<Generation> {
    let options = rag_engine::AskOptions {
        retrieval,
        ..engine.default_ask()
    };
    let mut g = Generation::default();
    let mut outcomes = Outcomes::default();
    let (mut right_citations, mut sentences, mut supported, mut right_attributions) = (0, 0, 0, 0);
    let (mut correct, mut wrong, mut missed) = (0, 0, 0);
    let (mut shown, mut shown_in_language) = (0, 0);
    let mut took = Vec::new();
    let mut prompt_tokens = Vec::new();
    for q in questions {
        let expected = !q.sources.is_empty();
        let mut events = match engine.ask(&q.question, options.clone()).await {
            // Refused for its language: counted as a question not answered.
            Err(rag_engine::EngineError::UnsupportedLanguage { .. }) => {
                outcomes.count(expected, false);
                let outcome = Outcome::of(q, false, &[]);
                missed += usize::from(outcome == Outcome::Missed);
                if let Some(out) = details.as_mut() {
                    let line = Detail::unread(q, outcome);
                    writeln!(out, "{}", serde_json::to_string(&line)?)?;
                }
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
        let t = &answer.timings;
        if !sources.is_empty() {
            // The model's time (queue, prompt, answer), without retrieval and the check.
            took.push(ms(t.queued + t.prompt_eval + t.generation));
            prompt_tokens.push(answer.prompt_tokens as f64);
            sentences += checked.sentences.len();
            supported += checked
                .sentences
                .iter()
                .filter(|s| s.supported_by.is_some())
                .count();
        }
        let source = |n: u32| sources[n as usize - 1].payload.source.as_str();
        let answered = checked.status == Verdict::Answered;
        // The documents the answer rests on: those it cites and those its sentences are
        // attributed to.
        let documents: Vec<&str> = checked
            .citations
            .iter()
            .copied()
            .chain(checked.sentences.iter().filter_map(|s| s.supported_by))
            .map(source)
            .collect();
        let outcome = Outcome::of(q, answered, &documents);
        match outcome {
            Outcome::Correct => correct += 1,
            Outcome::Wrong => wrong += 1,
            Outcome::Missed => missed += 1,
            Outcome::Refused | Outcome::Answered => {}
        }
        let in_language = same_script(&q.question, &checked.text);
        if answered {
            shown += 1;
            shown_in_language += usize::from(in_language);
        }
        if expected && answered {
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
        outcomes.count(expected, answered);
        if let Some(out) = details.as_mut() {
            let line = Detail::of(q, outcome, &answer, &sources, in_language);
            writeln!(out, "{}", serde_json::to_string(&line)?)?;
        }
    }
    let share = |n: usize, of: usize| if of == 0 { 0.0 } else { n as f64 / of as f64 };
    g.citation_precision = share(right_citations, g.citations);
    g.attribution_precision = share(right_attributions, g.attributions);
    g.answered_when_answerable = share(outcomes.answered, outcomes.answerable);
    g.refused_when_unanswerable = share(outcomes.refused, outcomes.unanswerable);
    g.correct = share(correct, outcomes.answerable);
    g.wrong = share(wrong, outcomes.answerable);
    g.missed = share(missed, outcomes.answerable);
    g.in_question_language = if shown == 0 {
        1.0
    } else {
        share(shown_in_language, shown)
    };
    g.sentences_supported = share(supported, sentences);
    took.sort_by(f64::total_cmp);
    prompt_tokens.sort_by(f64::total_cmp);
    g.generation_p50_ms = quantile(&took, 0.5);
    g.generation_p95_ms = quantile(&took, 0.95);
    g.prompt_tokens_p50 = quantile(&prompt_tokens, 0.5);
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
            "| answers to answerable questions: correct / wrong / missed | {:.3} / {:.3} / {:.3} |",
            g.correct, g.wrong, g.missed
        );
        println!(
            "| answers shown in the question's language | {:.3} |",
            g.in_question_language
        );
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
        println!(
            "| generation p50 / p95 (prompt tokens p50) | {:.0} ms / {:.0} ms ({:.0}) |",
            g.generation_p50_ms, g.generation_p95_ms, g.prompt_tokens_p50
        );
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

    #[test]
    fn an_answer_is_correct_only_when_it_rests_on_an_expected_document() {
        let q = Question {
            question: "How many vacation days?".into(),
            sources: vec!["handbook/leave-policy.md".into(), "finance/".into()],
        };
        let none = Question {
            question: "What is the capital of Australia?".into(),
            sources: vec![],
        };
        let leave = "handbook/leave-policy.md";
        assert_eq!(Outcome::of(&q, true, &[leave]), Outcome::Correct);
        assert_eq!(
            Outcome::of(&q, true, &["it/vpn.txt", "finance/expense.pdf"]),
            Outcome::Correct,
            "a folder source matches the files below it"
        );
        assert_eq!(Outcome::of(&q, true, &["it/vpn.txt"]), Outcome::Wrong);
        assert_eq!(
            Outcome::of(&q, true, &[]),
            Outcome::Wrong,
            "an answer citing nothing is not right"
        );
        assert_eq!(Outcome::of(&q, false, &[leave]), Outcome::Missed);
        assert_eq!(Outcome::of(&none, false, &[]), Outcome::Refused);
        assert_eq!(Outcome::of(&none, true, &[leave]), Outcome::Answered);
    }

    #[test]
    fn answers_are_judged_in_the_question_script() {
        assert!(same_script("연차는 며칠인가요?", "연차는 25일입니다 [1]."));
        assert!(!same_script("연차는 며칠인가요?", "You get 25 days [1]."));
        assert!(same_script("How many days?", "25 days [1]."));
        // Korean with an English product name in it: the answer must be Korean too.
        assert!(!same_script("EXIF 데이터", "EXIF data is shown [1]."));
        assert!(same_script(
            "EXIF 데이터",
            "EXIF 데이터는 이미지 정보입니다 [1]."
        ));
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.5), 3.0);
        assert_eq!(quantile(&[], 0.95), 0.0);
    }
}
