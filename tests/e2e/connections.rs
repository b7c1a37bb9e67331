//! What a hostile or careless client can hold: oversized and keyless calls are refused before
//! they are read, half-sent requests and silent connections are closed, and an answer whose
//! client stops reading gives its permit back (issue 26, items 2–4).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use rag_proto::v1 as pb;
use rag_proto::v1::rag_service_client::RagServiceClient;
use tonic::Code;

use crate::harness::{Server, Workspace, with_key};

const READER: &str = "rag_reader-key-for-connection-tests";

/// An ordinary Search, with `key` if given.
fn hotel_search(key: Option<&str>) -> tonic::Request<pb::SearchRequest> {
    with_key(
        pb::SearchRequest {
            query: "hotel limit per night".into(),
            ..Default::default()
        },
        key,
    )
}

/// The resident memory of process `pid`, in bytes (`None` once it is gone).
fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())?;
    Some(kb * 1024)
}

/// Samples `rss` every 10 ms while `work` runs; the highest seen.
async fn peak_rss_during<F: std::future::Future>(server: &Server, work: F) -> (u64, F::Output) {
    let pid = server.child.id();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss(pid).unwrap_or(0));
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        })
    };
    let output = work.await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    (sampler.join().unwrap(), output)
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_and_keyless_calls_are_refused_before_the_service_reads_them() {
    let ws = Workspace::new();
    ws.index_samples();
    ws.with_keys(&[("qa-bot", READER, "reader")]);
    let server = ws.serve().await;
    // A warm service: one ordinary call first, so the flood is all that changes.
    server
        .client()
        .search(hotel_search(Some(READER)))
        .await
        .unwrap();
    let idle = rss(server.child.id()).unwrap();

    // Eight concurrent 60 MB Search calls, without a key and then with one.
    let flood = |key: Option<&'static str>| {
        let channel = server.channel.clone();
        async move {
            let calls = (0..8).map(|_| {
                let mut client = RagServiceClient::new(channel.clone());
                async move {
                    let request = pb::SearchRequest {
                        query: "x".repeat(60_000_000),
                        ..Default::default()
                    };
                    client.search(with_key(request, key)).await.unwrap_err()
                }
            });
            futures_util::future::join_all(calls).await
        }
    };
    let (peak, refused) = peak_rss_during(&server, flood(None)).await;
    for status in &refused {
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    }
    let (keyed_peak, refused) = peak_rss_during(&server, flood(Some(READER))).await;
    for status in &refused {
        assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
        assert!(status.message().contains("Search"), "{status:?}");
    }
    let grown = peak.max(keyed_peak).saturating_sub(idle);
    println!(
        "flood: idle RSS {} MB, peak {} MB without a key, {} MB with one",
        idle >> 20,
        peak >> 20,
        keyed_peak >> 20
    );
    assert!(
        grown < 50 << 20,
        "the service grew by {} MB under the flood",
        grown >> 20
    );

    // It still answers, and an ingest of a real file by a key allowed to is not refused by size.
    let hits = server
        .client()
        .search(hotel_search(Some(READER)))
        .await
        .unwrap()
        .into_inner();
    assert!(!hits.chunks.is_empty());
    server.stop();
}

/// Reads from `conn` until the server closes it or `within` passes; whether it closed.
fn closed_within(conn: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        conn.set_read_timeout(Some(left)).unwrap();
        match conn.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            // Reset by the server: closed.
            Err(_) => return true,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn half_sent_requests_and_silent_connections_are_closed_while_real_ones_are_answered() {
    let ws = Workspace::new();
    ws.index_samples();
    ws.append_config("[connections]\nheader_timeout_secs = 2\nidle_timeout_secs = 3");
    let server = ws.serve_http().await;
    let http = server
        .http
        .as_deref()
        .unwrap()
        .trim_start_matches("http://")
        .to_owned();
    let grpc = server.url.trim_start_matches("http://").to_owned();

    // 300 connections that send half a request head and wait, and 50 that send nothing to the
    // gRPC port.
    let started = Instant::now();
    let mut half: Vec<TcpStream> = (0..300)
        .map(|_| {
            let mut conn = TcpStream::connect(&http).unwrap();
            conn.write_all(b"POST /v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-")
                .unwrap();
            conn
        })
        .collect();
    let mut silent: Vec<TcpStream> = (0..50)
        .map(|_| TcpStream::connect(&grpc).unwrap())
        .collect();

    // Meanwhile a real request is answered.
    let asked = Instant::now();
    let response = reqwest::Client::new()
        .post(format!("http://{http}/v1/search"))
        .json(&serde_json::json!({"query": "hotel limit per night"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let answered = asked.elapsed();
    let hits: serde_json::Value = response.json().await.unwrap();
    assert!(!hits["chunks"].as_array().unwrap().is_empty(), "{hits}");
    // And a gRPC one.
    server.client().search(hotel_search(None)).await.unwrap();

    let (half_closed, silent_closed) = tokio::task::spawn_blocking(move || {
        let half = half
            .iter_mut()
            .map(|c| closed_within(c, Duration::from_secs(10)))
            .filter(|&closed| closed)
            .count();
        let silent = silent
            .iter_mut()
            .map(|c| closed_within(c, Duration::from_secs(10)))
            .filter(|&closed| closed)
            .count();
        (half, silent)
    })
    .await
    .unwrap();
    let all_closed = started.elapsed();
    println!(
        "half-sent: {half_closed}/300 closed, silent gRPC: {silent_closed}/50 closed, all within \
         {all_closed:?}; a real HTTP search meanwhile took {answered:?}"
    );
    assert_eq!(half_closed, 300, "half-sent HTTP requests left open");
    assert_eq!(silent_closed, 50, "silent gRPC connections left open");
    server.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_whose_client_stops_reading_gives_its_permit_back() {
    let ws = Workspace::new();
    ws.index_samples();
    ws.with_key_entries(&[("qa-bot", READER, "reader", "max_in_flight = 1")]);
    ws.append_config("[connections]\nwrite_timeout_secs = 2");
    // An answer longer than the events buffered between the model and the socket, whatever the
    // test model would say: its stream backs up behind the client.
    ws.llm_option("ignore_eos = true");
    let server = ws.start_serving(&["--admin-listen", "127.0.0.1:0"]);
    server.wait_serving().await;

    // A client whose stream window takes 16 bytes, and which never reads: the answer's events
    // back up behind it.
    let stalled = tonic::transport::Endpoint::from_shared(server.url.clone())
        .unwrap()
        .initial_stream_window_size(Some(16))
        .connect()
        .await
        .unwrap();
    let request = pb::AskRequest {
        question: "How many vacation days do I get per year, and how do I request them?".into(),
        max_tokens: 200,
        ..Default::default()
    };
    let held = RagServiceClient::new(stalled)
        .ask(with_key(request, Some(READER)))
        .await
        .unwrap();

    // The key's one call under way is the stalled answer, until the write timeout ends it.
    let mut client = server.client();
    let search = || hotel_search(Some(READER));
    let first = client.search(search()).await;
    assert_eq!(
        first.as_ref().map_err(|s| s.code()).err(),
        Some(Code::ResourceExhausted),
        "the stalled answer does not hold the key's permit: {first:?}"
    );
    let stalled_at = Instant::now();
    let freed = loop {
        match client.search(search()).await {
            Ok(_) => break stalled_at.elapsed(),
            Err(s) if s.code() == Code::ResourceExhausted => {
                assert!(
                    stalled_at.elapsed() < Duration::from_secs(30),
                    "the stalled answer still holds the permit after 30 s"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(s) => panic!("{s:?}"),
        }
    };
    println!("the stalled answer's permit came back after {freed:?}");
    let (status, metrics) = server.admin_get("/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("rag_stalled_streams_total{door=\"grpc\"} 1")),
        "{metrics}"
    );
    drop(held);
    server.stop();
}
