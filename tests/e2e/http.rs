//! The HTTP door of a real `rag serve`: JSON search, ask as Server-Sent Events, the source
//! viewer, feedback and its export, the OpenAPI document, the page's files, the same keys as
//! gRPC; the official OpenAI Python client against the OpenAI-compatible endpoint; follow-up
//! questions in English and Korean.

use std::process::Command;

use futures_util::StreamExt;
use rag_proto::v1 as pb;
use serde_json::{Value, json};

use crate::harness::{Server, Workspace, repo};

const READER: &str = "reader-key-0123456789";

/// One Server-Sent Event: its name and its JSON data.
#[derive(Debug, Clone)]
pub struct Sse {
    pub event: String,
    pub data: Value,
}

/// POSTs `body` to `path` and reads the whole event stream.
pub async fn sse(server: &Server, path: &str, key: Option<&str>, body: Value) -> Vec<Sse> {
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", server.http.as_deref().unwrap()))
        .json(&body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut bytes = response.bytes_stream();
    let mut buffer = String::new();
    let mut events = Vec::new();
    while let Some(chunk) = bytes.next().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut event = String::from("message");
            let mut data = String::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    event = e.trim().to_owned();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
            if data.is_empty() || data == "[DONE]" {
                continue;
            }
            events.push(Sse {
                event,
                data: serde_json::from_str(&data).unwrap(),
            });
        }
    }
    events
}

async fn post(server: &Server, path: &str, key: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", server.http.as_deref().unwrap()))
        .json(&body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get(server: &Server, path: &str, key: Option<&str>) -> (u16, String) {
    let mut request =
        reqwest::Client::new().get(format!("{}{path}", server.http.as_deref().unwrap()));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn answer_of(events: &[Sse]) -> &Value {
    let last = events.last().expect("no events");
    assert_eq!(
        last.event, "answer",
        "the stream ends with the answer: {events:?}"
    );
    &last.data
}

#[tokio::test]
async fn http_api_searches_answers_and_shows_sources_with_the_same_keys() {
    let ws = Workspace::new();
    ws.with_keys(&[("bot", READER, "reader")]);
    ws.index_samples();
    let server = ws.serve_http().await;
    let hotel = "What is the hotel limit per night on business trips?";

    // Keys as for gRPC.
    let (status, body) = post(&server, "/v1/search", None, json!({"query": hotel})).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["type"], "authentication_error");
    // The key is checked before the body: a caller without one learns only that.
    let response = reqwest::Client::new()
        .post(format!("{}/v1/search", server.http.as_deref().unwrap()))
        .header("content-type", "application/json")
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let (status, _) = post(
        &server,
        "/v1/search",
        Some("wrong"),
        json!({"query": hotel}),
    )
    .await;
    assert_eq!(status, 401);

    // Search: the same chunks, in the same order, as the gRPC Search.
    let (status, body) = post(
        &server,
        "/v1/search",
        Some(READER),
        json!({"query": hotel, "top_k": 3}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let chunks = body["chunks"].as_array().unwrap();
    assert_eq!(chunks[0]["source_path"], "finance/expense-policy.pdf");
    let mut request = tonic::Request::new(pb::SearchRequest {
        query: hotel.into(),
        retrieval: Some(pb::RetrievalOptions {
            top_k: 3,
            ..Default::default()
        }),
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {READER}").parse().unwrap());
    let grpc = server.client().search(request).await.unwrap().into_inner();
    let ids = |v: &[Value]| -> Vec<(String, u64)> {
        v.iter()
            .map(|c| {
                (
                    c["document_id"].as_str().unwrap().to_owned(),
                    c["chunk_index"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let grpc_ids: Vec<(String, u64)> = grpc
        .chunks
        .iter()
        .map(|c| (c.document_id.clone(), u64::from(c.chunk_index)))
        .collect();
    assert_eq!(ids(chunks), grpc_ids);

    // Bad input: a clear error naming the field, as gRPC's.
    let (status, body) = post(&server, "/v1/search", Some(READER), json!({"query": " "})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["param"], "query");
    assert_eq!(body["error"]["code"], "INVALID_ARGUMENT");
    let (status, body) = post(
        &server,
        "/v1/search",
        Some(READER),
        json!({"query": hotel, "top_k": 1000}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["param"].as_str()),
        (400, Some("retrieval.top_k"))
    );

    let response = reqwest::Client::new()
        .post(format!("{}/v1/search", server.http.as_deref().unwrap()))
        .bearer_auth(READER)
        .header("content-type", "application/json")
        .body("{\"query\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["param"], "body", "{body}");

    // Ask: sources, tokens as generated, then the checked answer.
    let events = sse(&server, "/v1/ask", Some(READER), json!({"question": hotel})).await;
    assert_eq!(events[0].event, "sources", "{events:?}");
    let sources = events[0].data["sources"].as_array().unwrap();
    assert_eq!(
        sources[0]["chunk"]["source_path"],
        "finance/expense-policy.pdf"
    );
    let tokens: String = events
        .iter()
        .filter(|e| e.event == "token")
        .map(|e| e.data["text"].as_str().unwrap())
        .collect();
    assert!(
        events.iter().filter(|e| e.event == "token").count() > 1,
        "{events:?}"
    );
    let answer = answer_of(&events);
    assert!(!tokens.trim().is_empty());
    let status = answer["status"].as_str().unwrap();
    assert!(["answered", "unsupported", "not_found"].contains(&status));
    if status == "unsupported" {
        assert_eq!(answer["draft"].as_str().unwrap().trim(), tokens.trim());
    }
    // An answer cites the sources that support it (a supported sentence the model left
    // uncited gets its source); a refusal cites nothing.
    let citations = answer["citations"].as_array().unwrap();
    assert_eq!(citations.is_empty(), status != "answered", "{answer}");
    for c in citations {
        let n = c["number"].as_u64().unwrap() as usize;
        assert_eq!(c["source_path"], sources[n - 1]["chunk"]["source_path"]);
    }

    // A question the documents do not cover: said plainly, no tokens, no model.
    let events = sse(
        &server,
        "/v1/ask",
        Some(READER),
        json!({"question": "What is the boiling point of mercury in kelvin?"}),
    )
    .await;
    let answer = answer_of(&events);
    assert_eq!(answer["status"], "not_found");
    assert_eq!(answer["finish_reason"], "not_found");
    assert!(events.iter().all(|e| e.event != "token"));

    // The source viewer: the chunk in its document, from the index.
    let first = &chunks[0];
    let path = format!(
        "/v1/documents/{}/chunks/{}?version={}&around=1",
        first["document_id"].as_str().unwrap(),
        first["chunk_index"],
        first["document_version"].as_str().unwrap()
    );
    let (status, body) = get(&server, &path, Some(READER)).await;
    assert_eq!(status, 200, "{body}");
    let viewed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(viewed["cited_version"], true);
    assert_eq!(viewed["source_path"], "finance/expense-policy.pdf");
    let shown = viewed["chunks"].as_array().unwrap();
    let focus = shown
        .iter()
        .find(|c| c["chunk_index"] == first["chunk_index"])
        .unwrap();
    assert_eq!(focus["text"], first["text"]);
    assert!(shown.len() >= 2, "a neighbour is shown: {shown:?}");
    assert!(
        shown
            .windows(2)
            .all(|w| w[0]["chunk_index"].as_u64() < w[1]["chunk_index"].as_u64())
    );
    let (status, _) = get(&server, "/v1/documents/nope/chunks/0", Some(READER)).await;
    assert_eq!(status, 404);
    let (status, _) = get(
        &server,
        &path.replace("around=1", "around=50"),
        Some(READER),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = get(&server, &path, None).await;
    assert_eq!(status, 401);

    // Feedback, stored and exported as a question set for `rag eval`.
    let feedback = json!({
        "rating": "up", "comment": "exactly right", "question": hotel,
        "answer": "180 euros [1].", "status": "answered",
        "sources": [{"number": 1, "document_id": first["document_id"],
                     "source_path": "finance/expense-policy.pdf", "cited": true}],
    });
    let (status, body) = post(&server, "/v1/feedback", Some(READER), feedback.clone()).await;
    assert_eq!(status, 201, "{body}");
    let mut bad = feedback.clone();
    bad["rating"] = json!("meh");
    let (status, body) = post(&server, "/v1/feedback", Some(READER), bad).await;
    assert_eq!(
        (status, body["error"]["param"].as_str()),
        (400, Some("rating"))
    );
    let out = ws.dir.path().join("from-feedback.jsonl");
    let exported = ws.rag(&["feedback", "export", "--out", out.to_str().unwrap()]);
    assert!(exported.status.success(), "{exported:?}");
    let set = std::fs::read_to_string(&out).unwrap();
    let line: Value = serde_json::from_str(set.lines().next().unwrap()).unwrap();
    assert_eq!(
        line,
        json!({"question": hotel, "sources": ["finance/expense-policy.pdf"]})
    );

    // The OpenAPI document names exactly the API's routes; the page and its files are served.
    let (status, body) = get(&server, "/openapi.json", None).await;
    assert_eq!(status, 200);
    let openapi: Value = serde_json::from_str(&body).unwrap();
    let mut paths: Vec<&str> = openapi["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "/v1/ask",
            "/v1/chat/completions",
            "/v1/documents/{document_id}/chunks/{chunk_index}",
            "/v1/feedback",
            "/v1/models",
            "/v1/search"
        ]
    );
    let (status, page) = get(&server, "/", None).await;
    assert_eq!(status, 200);
    assert!(page.contains("/assets/app.js") && page.contains("<textarea"));
    for asset in ["/assets/app.js", "/assets/app.css"] {
        let (status, body) = get(&server, asset, None).await;
        assert_eq!(status, 200, "{asset}");
        assert!(body.len() > 1000);
    }
    // Paths that climb out of the assets, sent as written (an HTTP client would normalise
    // them): refused, and nothing of the repository's files comes back. (The same way, an
    // asset is served.)
    let (status, response) = raw_get(&server, "/assets/app.js");
    assert_eq!(status, 200, "{response}");
    assert!(response.contains("'use strict';"), "{response}");
    for path in [
        "/assets/../Cargo.toml",
        "/assets/%2e%2e/Cargo.toml",
        "/assets/..%2FCargo.toml",
    ] {
        let (status, response) = raw_get(&server, path);
        assert!((400..500).contains(&status), "{path}: {response}");
        assert!(
            !response.contains("[package]") && !response.contains("[workspace]"),
            "{path}: {response}"
        );
    }
}

/// GETs `path` exactly as written, over a plain TCP connection: the status and the whole
/// response, headers included.
fn raw_get(server: &Server, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let host = server
        .http
        .as_deref()
        .unwrap()
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let status_line = response.lines().next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{path}: no status line in {response:?}"));
    (status, response)
}

#[tokio::test]
async fn the_openai_python_client_streams_and_not() {
    let ws = Workspace::new();
    ws.with_keys(&[("bot", READER, "reader")]);
    ws.index_samples();
    let server = ws.serve_http().await;
    // scripts/setup.sh installs the client into a virtual environment of its own.
    let venv = std::env::var("RAG_TEST_VENV").map_or_else(
        |_| std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/rag/py"),
        std::path::PathBuf::from,
    );
    let out = Command::new(venv.join("bin/python"))
        .arg(repo().join("tests/e2e/clients/openai_chat.py"))
        .arg(server.http.as_deref().unwrap())
        .arg(READER)
        .arg("What is the hotel limit per night on business trips?")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the OpenAI client failed (scripts/setup.sh installs the `openai` package):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["models"], json!(["rag"]));
    assert_eq!(seen["object"], "chat.completion");
    assert!(
        !seen["content"].as_str().unwrap().trim().is_empty(),
        "{seen}"
    );
    assert!(seen["usage"].as_u64().unwrap() > 50, "{seen}");
    assert_eq!(seen["sources"][0], "finance/expense-policy.pdf", "{seen}");
    assert!(["stop", "length"].contains(&seen["finish_reason"].as_str().unwrap()));
    // Streaming: text in pieces, the same sources, a checked answer at the end.
    assert!(seen["pieces"].as_u64().unwrap() > 1, "{seen}");
    assert!(!seen["streamed"].as_str().unwrap().trim().is_empty());
    assert_eq!(seen["stream_sources"], seen["sources"]);
    assert!(seen["stream_status"].is_string(), "{seen}");
    assert!(seen["stream_finish"].is_string(), "{seen}");
    // Errors the client maps onto its own exception types.
    assert_eq!(seen["unknown_model"], "not_found");
    assert_eq!(seen["wrong_key"], "unauthenticated");
}

/// Asks over HTTP with `history` (question, answer) turns.
async fn follow_up(server: &Server, question: &str, history: &[(&str, &str)]) -> Vec<Sse> {
    let history: Vec<Value> = history
        .iter()
        .map(|(q, a)| json!({"question": q, "answer": a}))
        .collect();
    sse(
        server,
        "/v1/ask",
        None,
        json!({"question": question, "history": history, "max_tokens": 64}),
    )
    .await
}

fn cited_sources(answer: &Value) -> Vec<&str> {
    answer["citations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["source_path"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn follow_up_questions_are_rewritten_and_answered_from_the_documents() {
    let ws = Workspace::new();
    ws.with_default_chat_model();
    ws.append_config("rewrite_follow_ups = true");
    ws.index_samples();
    let server = ws.serve_http_and_admin().await;

    // Without keys the service answers only requests addressed to a loopback name, so a web
    // page cannot reach it by pointing a name of its own at 127.0.0.1.
    let response = reqwest::Client::new()
        .post(format!("{}/v1/search", server.http.as_deref().unwrap()))
        .header("host", "attacker.example")
        .json(&json!({"query": "leave"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let localhost = server
        .http
        .as_deref()
        .unwrap()
        .replace("127.0.0.1", "localhost");
    let response = reqwest::Client::new()
        .get(format!("{localhost}/v1/models"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let first = "How many days of paid annual leave does a full-time employee get?";
    let events = follow_up(&server, first, &[]).await;
    assert!(
        events.iter().all(|e| e.event != "rewrite"),
        "no history, no rewrite"
    );
    let answer = answer_of(&events).clone();
    assert_eq!(answer["status"], "answered", "{answer}");
    assert!(answer["text"].as_str().unwrap().contains("25"), "{answer}");
    let said = answer["text"].as_str().unwrap().to_owned();

    // The follow-up alone names nothing to search for; rewritten, it finds the leave policy.
    let events = follow_up(
        &server,
        "And how many of them can be carried over into the next year?",
        &[(first, &said)],
    )
    .await;
    assert_eq!(events[0].event, "rewrite", "{events:?}");
    assert_eq!(events[0].data["by"], "model", "{events:?}");
    let rewrite = events[0].data["question"].as_str().unwrap().to_lowercase();
    assert!(
        rewrite.contains("leave") && rewrite.contains("carr"),
        "{rewrite}"
    );
    assert_eq!(events[1].event, "sources");
    assert_eq!(
        events[1].data["sources"][0]["chunk"]["source_path"],
        "handbook/leave-policy.md"
    );
    let answer = answer_of(&events);
    assert_eq!(answer["status"], "answered", "{answer}");
    assert!(answer["text"].as_str().unwrap().contains('5'), "{answer}");
    assert_eq!(cited_sources(answer), ["handbook/leave-policy.md"]);
    assert!(answer["timings"]["rewrite_ms"].as_f64().unwrap() > 0.0);

    // Drifting out of the documents: still "the documents don't say". The question names its
    // own subject, so it is searched as asked, without a rewrite.
    let drifting = "And what is the boiling point of mercury in kelvin?";
    let events = follow_up(&server, drifting, &[(first, &said)]).await;
    assert_eq!(events[0].event, "rewrite");
    assert_eq!(events[0].data["by"], "as_asked", "{events:?}");
    assert_eq!(events[0].data["question"], drifting);
    assert_eq!(answer_of(&events)["status"], "not_found");
    assert_eq!(rewrites_reused(&server), 0);

    // The same conversation over gRPC: the Rewrite comes first, then a grounded answer.
    let stream = server
        .client()
        .ask(pb::AskRequest {
            question: "And how many of them can be carried over into the next year?".into(),
            history: vec![pb::Turn {
                question: first.into(),
                answer: said.clone(),
            }],
            max_tokens: 64,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let events: Vec<pb::AskResponse> = stream.map(|m| m.unwrap()).collect().await;
    use pb::ask_response::Event;
    let Some(Event::Rewrite(rewrite)) = &events[0].event else {
        panic!("the rewrite first: {events:?}")
    };
    assert!(
        rewrite.question.to_lowercase().contains("leave"),
        "{rewrite:?}"
    );
    let Some(Event::Answer(answer)) = &events.last().unwrap().event else {
        panic!("{events:?}")
    };
    assert_eq!(
        answer.status,
        pb::AnswerStatus::Answered as i32,
        "{answer:?}"
    );
    assert!(answer.timings.unwrap().rewrite_ms > 0.0);
    // That conversation turn was rewritten once, over HTTP: gRPC got the same rewrite again.
    assert_eq!(rewrites_reused(&server), 1);
}

/// By default (`query.rewrite_follow_ups = false`) a follow-up costs no generation before
/// retrieval. It is joined to the previous question, which finds the page, and nothing is
/// rewritten (so nothing is kept to reuse when the turn is asked again, as a rewrite would be);
/// the model reads the earlier question as context and answers the follow-up, or the answer is
/// withheld where it only answers the earlier question.
#[tokio::test]
async fn follow_ups_are_joined_without_a_rewrite_by_default() {
    let ws = Workspace::new();
    // The model the answers are measured with (BENCHMARKS.md, nineteenth session).
    ws.with_default_chat_model();
    // Every ask reaches the follow-up step: no answer is taken from the cache.
    ws.append_config("answer_cache = 0");
    ws.index_samples();
    let server = ws.serve_http_and_admin().await;
    let first = "How many days of paid annual leave does a full-time employee get?";
    let follow = "And how many of them can be carried over into the next year?";
    for _ in 0..2 {
        let events = follow_up(&server, follow, &[(first, "25 days [1].")]).await;
        assert_eq!(events[0].event, "rewrite", "{events:?}");
        assert_eq!(events[0].data["by"], "joined", "{events:?}");
        assert_eq!(events[0].data["question"], format!("{first} {follow}"));
        assert_eq!(
            events[1].data["sources"][0]["chunk"]["source_path"],
            "handbook/leave-policy.md"
        );
        assert!(answer_of(&events)["status"].is_string());
    }
    assert_eq!(rewrites_reused(&server), 0);
    // The model is shown the earlier question as context and answers the follow-up: asked as
    // one question, it answered for Paris.
    let events = follow_up(
        &server,
        "What about London?",
        &[(
            "What is the hotel limit per night in Paris?",
            "250 euros [1].",
        )],
    )
    .await;
    assert_eq!(events[0].data["by"], "joined", "{events:?}");
    let answer = answer_of(&events);
    assert_eq!(answer["status"], "answered", "{answer}");
    let text = answer["text"].as_str().unwrap();
    assert!(
        text.contains("London") && text.contains("250") && !text.contains("Paris"),
        "{answer}"
    );
    // The documents say how long a password must be, not how often it changes: the model's
    // answer to the earlier question again is not shown as an answer to the follow-up.
    let events = follow_up(
        &server,
        "And how often must it be changed?",
        &[(
            "How long must a password be?",
            "Passwords must be at least 14 characters long [1].",
        )],
    )
    .await;
    assert_eq!(events[0].data["by"], "joined", "{events:?}");
    let answer = answer_of(&events);
    assert_ne!(answer["status"], "answered", "{answer}");
    assert!(cited_sources(answer).is_empty(), "{answer}");
    // A follow-up that names its own subject is still searched as asked.
    let events = follow_up(
        &server,
        "What is the boiling point of mercury?",
        &[(first, "")],
    )
    .await;
    assert_eq!(events[0].data["by"], "as_asked", "{events:?}");
}

fn rewrites_reused(server: &Server) -> u64 {
    server.counter("rag_rewrites_reused_total")
}

#[tokio::test]
async fn korean_follow_up_questions_find_the_korean_page() {
    let ws = Workspace::multilingual();
    ws.with_default_chat_model();
    ws.index_samples();
    let server = ws.serve_http().await;

    let first = "건강검진은 회사 비용으로 받을 수 있나요?";
    let events = follow_up(&server, first, &[]).await;
    let answer = answer_of(&events).clone();
    assert_eq!(answer["status"], "answered", "{answer}");
    assert_eq!(
        cited_sources(&answer),
        ["handbook/복지-안내.md"],
        "{answer}"
    );
    let said = answer["text"].as_str().unwrap().to_owned();

    let events = follow_up(&server, "배우자는요?", &[(first, &said)]).await;
    assert_eq!(events[0].event, "rewrite", "{events:?}");
    let rewrite = events[0].data["question"].as_str().unwrap();
    assert!(rewrite.contains("배우자"), "{rewrite}");
    assert_eq!(
        events[1].data["sources"][0]["chunk"]["source_path"], "handbook/복지-안내.md",
        "{events:?}"
    );
    let answer = answer_of(&events);
    assert_eq!(answer["status"], "answered", "{answer}");
    assert!(answer["text"].as_str().unwrap().contains("50"), "{answer}");
}
