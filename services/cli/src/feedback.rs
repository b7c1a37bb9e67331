//! `rag feedback export`: the thumbs up and down the chat page stored (`data_dir/feedback.jsonl`)
//! as a question set for `rag eval`.
//!
//! A thumbs-up on an answer says its cited documents answer the question (a follow-up counts
//! as its standalone rewrite: eval asks questions alone); a thumbs-up on "the documents don't
//! say" says the documents have no answer. A thumbs-down says what was wrong, not what is right,
//! so it cannot become a label: those are counted and, with `--down`, written out for review.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use rag_http::feedback::{self, Record};

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum FeedbackCommand {
    /// Write the thumbs-up answers as a question set (`rag eval --questions`).
    Export(ExportArgs),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write the question set here (JSON lines) instead of to standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write the thumbs-down records here, as stored, for review.
    #[arg(long)]
    down: Option<PathBuf>,
    /// Only feedback of this tenant.
    #[arg(long)]
    tenant: Option<String>,
}

/// One line of a question set, as `rag eval` reads it.
#[derive(Debug, serde::Serialize)]
struct Question {
    question: String,
    sources: Vec<String>,
}

pub fn run(config: &Config, command: FeedbackCommand) -> anyhow::Result<()> {
    let FeedbackCommand::Export(args) = command;
    let path = config.data_dir.join(feedback::FILE);
    let (records, torn) =
        feedback::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let records: Vec<Record> = records
        .into_iter()
        .filter(|r| args.tenant.as_ref().is_none_or(|t| *t == r.tenant))
        .collect();
    let (questions, down) = export(&records);
    let mut lines = String::new();
    for q in &questions {
        lines.push_str(&serde_json::to_string(q)?);
        lines.push('\n');
    }
    match &args.out {
        Some(out) => {
            std::fs::write(out, &lines).with_context(|| format!("writing {}", out.display()))?
        }
        None => std::io::stdout().write_all(lines.as_bytes())?,
    }
    if let Some(file) = &args.down {
        let mut text = String::new();
        for r in &down {
            text.push_str(&serde_json::to_string(r)?);
            text.push('\n');
        }
        std::fs::write(file, text).with_context(|| format!("writing {}", file.display()))?;
    }
    eprintln!(
        "feedback: {} records; {} questions exported ({} answerable, {} not); {} thumbs-down {}{}",
        records.len(),
        questions.len(),
        questions.iter().filter(|q| !q.sources.is_empty()).count(),
        questions.iter().filter(|q| q.sources.is_empty()).count(),
        down.len(),
        if args.down.is_some() {
            "written for review"
        } else {
            "left out (--down FILE to review them)"
        },
        if torn > 0 {
            format!("; {torn} unreadable lines skipped")
        } else {
            String::new()
        },
    );
    Ok(())
}

/// The question set (one entry per question, the latest thumbs-up winning) and the thumbs-down
/// records.
fn export(records: &[Record]) -> (Vec<Question>, Vec<&Record>) {
    let mut questions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut down = Vec::new();
    for r in records {
        let f = &r.feedback;
        if f.rating != "up" {
            down.push(r);
            continue;
        }
        let question = f
            .rewritten_question
            .clone()
            .filter(|q| !q.trim().is_empty())
            .unwrap_or_else(|| f.question.clone());
        let mut sources: Vec<String> = if f.status == "answered" {
            f.sources
                .iter()
                .filter(|s| s.cited)
                .map(|s| s.source_path.clone())
                .collect()
        } else {
            Vec::new()
        };
        // An answer approved without a citation names no document: not a label either way.
        if f.status == "answered" && sources.is_empty() {
            continue;
        }
        sources.sort();
        sources.dedup();
        questions.insert(question.trim().to_owned(), sources);
    }
    let questions = questions
        .into_iter()
        .map(|(question, sources)| Question { question, sources })
        .collect();
    (questions, down)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rag_http::feedback::{FeedbackRequest, FeedbackSource};

    fn record(
        rating: &str,
        question: &str,
        rewrite: Option<&str>,
        status: &str,
        cited: &[&str],
    ) -> Record {
        Record {
            at_ms: 0,
            tenant: "default".into(),
            key_id: None,
            feedback: FeedbackRequest {
                rating: rating.into(),
                comment: String::new(),
                question: question.into(),
                rewritten_question: rewrite.map(str::to_owned),
                answer: "a".into(),
                status: status.into(),
                sources: cited
                    .iter()
                    .enumerate()
                    .map(|(i, s)| FeedbackSource {
                        number: i as u32 + 1,
                        document_id: "d".into(),
                        source_path: (*s).into(),
                        page: 0,
                        chunk_index: 0,
                        cited: true,
                    })
                    .collect(),
            },
        }
    }

    #[test]
    fn thumbs_up_become_labels_and_thumbs_down_do_not() {
        let records = [
            record(
                "up",
                "Vacation days?",
                None,
                "answered",
                &["hr/leave.md", "hr/leave.md"],
            ),
            record(
                "up",
                "and part-time?",
                Some("Part-time vacation days?"),
                "answered",
                &["hr/leave.md"],
            ),
            record("up", "Capital of France?", None, "not_found", &[]),
            record("down", "VPN?", None, "answered", &["it/vpn.txt"]),
            record("up", "No citation?", None, "answered", &[]),
        ];
        let (questions, down) = export(&records);
        let got: Vec<(&str, Vec<&str>)> = questions
            .iter()
            .map(|q| {
                (
                    q.question.as_str(),
                    q.sources.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("Capital of France?", vec![]),
                ("Part-time vacation days?", vec!["hr/leave.md"]),
                ("Vacation days?", vec!["hr/leave.md"]),
            ]
        );
        assert_eq!(down.len(), 1);
    }
}
