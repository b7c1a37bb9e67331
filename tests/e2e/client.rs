//! What the tests send and read, as a gRPC client would.

use rag_proto::v1 as pb;

use crate::harness::Server;

pub fn search_request(query: &str) -> pb::SearchRequest {
    pb::SearchRequest {
        query: query.into(),
        retrieval: Some(pb::RetrievalOptions {
            top_k: 5,
            ..Default::default()
        }),
    }
}

pub async fn top_sources(server: &Server, query: &str) -> Vec<(String, u32)> {
    server
        .client()
        .search(search_request(query))
        .await
        .unwrap_or_else(|e| panic!("search {query:?}: {e}"))
        .into_inner()
        .chunks
        .into_iter()
        .map(|c| (c.source_path, c.page))
        .collect()
}

pub struct Asked {
    pub sources: Vec<pb::Source>,
    pub tokens: Vec<String>,
    pub answer: pb::Answer,
    pub order: Vec<&'static str>,
}

pub async fn ask(server: &Server, question: &str) -> Asked {
    let mut stream = server
        .client()
        .ask(pb::AskRequest {
            question: question.into(),
            max_tokens: 48,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("ask {question:?}: {e}"))
        .into_inner();
    let mut asked = Asked {
        sources: vec![],
        tokens: vec![],
        answer: pb::Answer::default(),
        order: vec![],
    };
    while let Some(message) = stream.message().await.unwrap() {
        match message.event.unwrap() {
            pb::ask_response::Event::Rewrite(_) => asked.order.push("rewrite"),
            pb::ask_response::Event::Sources(s) => {
                asked.order.push("sources");
                asked.sources = s.sources;
            }
            pb::ask_response::Event::Token(t) => {
                if asked.order.last() != Some(&"token") {
                    asked.order.push("token");
                }
                asked.tokens.push(t.text);
            }
            pb::ask_response::Event::Answer(a) => {
                asked.order.push("answer");
                asked.answer = a;
            }
        }
    }
    asked
}

pub fn failed_paths(summary: &serde_json::Value) -> Vec<String> {
    summary["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_owned())
        .collect()
}

/// The value of the sample of `name` whose labels include every one of `labels`; 0 when the
/// series does not exist yet (Prometheus shows a counter only once it moved).
pub fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| {
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            metric == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, value)| value.parse::<f64>().unwrap())
        .sum()
}
