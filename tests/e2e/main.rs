//! End-to-end: the real `rag` binary, real models, the embedded store, gRPC over loopback.

mod harness;

use harness::{Server, Workspace, repo};
use rag_proto::v1 as pb;
use tonic::Code;

fn search_request(query: &str) -> pb::SearchRequest {
    pb::SearchRequest {
        query: query.into(),
        retrieval: Some(pb::RetrievalOptions {
            top_k: 5,
            ..Default::default()
        }),
    }
}

async fn top_sources(server: &Server, query: &str) -> Vec<(String, u32)> {
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

struct Asked {
    sources: Vec<pb::Source>,
    tokens: Vec<String>,
    answer: pb::Answer,
    order: Vec<&'static str>,
}

async fn ask(server: &Server, question: &str) -> Asked {
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

fn failed_paths(summary: &serde_json::Value) -> Vec<String> {
    summary["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn index_a_folder_then_search_ask_ingest_and_delete_over_grpc() {
    let ws = Workspace::new();
    ws.copy_samples();
    // Bad files next to good ones: they are reported and the rest is indexed.
    let pdf = std::fs::read(ws.docs().join("finance/expense-policy.pdf")).unwrap();
    std::fs::write(ws.docs().join("broken.pdf"), &pdf[..pdf.len() / 3]).unwrap();
    std::fs::write(
        ws.docs().join("binary.txt"),
        b"\x7fELF\x02\x01\x01\0\0\0\0garbage",
    )
    .unwrap();

    let (code, summary) = ws.ingest();
    assert_eq!(
        code, 3,
        "exit code 3 = finished, some files failed: {summary}"
    );
    let mut failed = failed_paths(&summary);
    failed.sort();
    assert_eq!(failed, ["binary.txt", "broken.pdf"], "{summary}");
    let reasons = summary["failed"].to_string();
    assert!(reasons.contains("binary"), "{reasons}");
    assert!(reasons.contains("PDF"), "{reasons}");
    assert_eq!(summary["indexed"], 7, "{summary}");
    assert!(
        summary["chunks_written"].as_u64().unwrap() >= 7,
        "{summary}"
    );

    // An unchanged folder writes nothing.
    let (_, again) = ws.ingest();
    assert_eq!(again["indexed"], 0, "{again}");
    assert_eq!(again["unchanged"], 7, "{again}");
    assert_eq!(again["chunks_written"], 0, "{again}");
    assert_eq!(again["deleted"], 0, "{again}");

    let server = ws.serve().await;

    // Search ranks the document that holds the answer first.
    for (question, source, page) in [
        (
            "How many days of paid annual leave do employees get?",
            "handbook/leave-policy.md",
            0,
        ),
        (
            "What is the hotel limit per night on business trips?",
            "finance/expense-policy.pdf",
            2,
        ),
        ("What does VPN error NWC-412 mean?", "it/vpn-setup.txt", 0),
        (
            "How long must a password be?",
            "it/security-guidelines.md",
            0,
        ),
        (
            "When does the new office in Busan open?",
            "meetings/2026-q3-all-hands.txt",
            0,
        ),
        (
            "Who approves expenses above 1,000 euros?",
            "finance/expense-policy.pdf",
            3,
        ),
    ] {
        let top = top_sources(&server, question).await;
        assert_eq!(
            top.first(),
            Some(&(source.to_owned(), page)),
            "{question}: got {top:?}"
        );
    }

    // A document sent over gRPC is searchable at once; sending it again writes nothing.
    let doc = "# First week\n\nParking permits for the office garage (level -2) are issued at \
               reception on your first day. Bring your ID card.\n\nYour buddy shows you the \
               kitchen and the fire exits.";
    let ingest = pb::IngestDocumentRequest {
        file_name: "onboarding/first-week.md".into(),
        content: doc.as_bytes().to_vec(),
        ..Default::default()
    };
    let first = server
        .client()
        .ingest_document(ingest.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(first.chunks_written >= 1 && !first.unchanged, "{first:?}");
    let top = top_sources(&server, "Where do I get a parking permit?").await;
    assert_eq!(top[0].0, "onboarding/first-week.md", "{top:?}");
    let second = server
        .client()
        .ingest_document(ingest)
        .await
        .unwrap()
        .into_inner();
    assert!(second.unchanged && second.chunks_written == 0, "{second:?}");
    assert_eq!(second.document_id, first.document_id);

    // Ask streams sources, then tokens, then the final answer, grounded in the right document.
    let asked = ask(
        &server,
        "How many days of paid annual leave do employees get per year?",
    )
    .await;
    assert_eq!(asked.order, ["sources", "token", "answer"]);
    assert!(!asked.tokens.is_empty());
    let streamed = asked.tokens.concat();
    // Every sentence of the answer is checked; a supported one names a given source that
    // shares most of its terms or its meaning.
    let answer = &asked.answer;
    assert!(!answer.sentences.is_empty(), "{answer:?}");
    for sentence in &answer.sentences {
        assert!(
            streamed.contains(sentence.text.trim_end_matches(['.', ' '])),
            "{sentence:?}"
        );
        if sentence.supported {
            let n = sentence.supported_by as usize;
            assert!(n >= 1 && n <= asked.sources.len(), "{sentence:?}");
            assert!(
                sentence.lexical_overlap >= 0.6 || sentence.similarity >= 0.7,
                "{sentence:?}"
            );
        } else {
            assert_eq!(sentence.supported_by, 0, "{sentence:?}");
        }
    }
    // A refusal for lack of support keeps the model's words as the draft; otherwise the text is
    // what was streamed, less any citation of a source that was not given.
    if answer.status == pb::AnswerStatus::Unsupported as i32 {
        assert!(answer.sentences.iter().all(|s| !s.supported), "{answer:?}");
        assert_eq!(answer.draft, streamed.trim());
        assert!(answer.citations.is_empty());
    } else {
        assert_eq!(
            answer.status,
            pb::AnswerStatus::Answered as i32,
            "{answer:?}"
        );
        assert!(answer.sentences.iter().any(|s| s.supported), "{answer:?}");
        if answer.invalid_citations.is_empty() {
            assert_eq!(answer.text, streamed.trim());
        }
        for n in &answer.invalid_citations {
            assert!(!answer.text.contains(&format!("[{n}]")), "{answer:?}");
        }
    }
    eprintln!("answer: {answer:?}");
    assert!(
        asked
            .sources
            .iter()
            .any(|s| s.chunk.as_ref().unwrap().source_path == "handbook/leave-policy.md"),
        "sources: {:?}",
        asked.sources
    );
    assert_eq!(asked.sources[0].number, 1);
    for c in &asked.answer.citations {
        let given = &asked.sources[c.number as usize - 1];
        assert_eq!(c.source_path, given.chunk.as_ref().unwrap().source_path);
    }
    let usage = asked.answer.usage.unwrap();
    assert!(
        usage.completion_tokens >= 1 && usage.completion_tokens <= 48,
        "{usage:?}"
    );
    assert!(usage.prompt_tokens > 50, "{usage:?}");
    let timings = asked.answer.timings.unwrap();
    assert!(timings.first_token_ms > 0.0 && timings.total_ms >= timings.first_token_ms);

    // A question the documents don't cover is refused without calling the model.
    let asked = ask(&server, "What is the boiling point of mercury in kelvin?").await;
    assert_eq!(
        asked.answer.status,
        pb::AnswerStatus::NotFound as i32,
        "{:?}",
        asked.answer
    );
    assert_eq!(asked.answer.finish_reason, "not_found");
    assert!(asked.sources.is_empty() && asked.tokens.is_empty());

    // DeleteDocument removes a document from results.
    let deleted = server
        .client()
        .delete_document(pb::DeleteDocumentRequest {
            target: Some(pb::delete_document_request::Target::SourcePath(
                "it/vpn-setup.txt".into(),
            )),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.chunks_deleted >= 1, "{deleted:?}");
    let top = top_sources(&server, "What does VPN error NWC-412 mean?").await;
    assert!(top.iter().all(|(s, _)| s != "it/vpn-setup.txt"), "{top:?}");

    let status = server.stop();
    assert!(status.success(), "server exit: {status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_invalid_argument_naming_the_field() {
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.docs()).unwrap();
    std::fs::write(ws.docs().join("note.txt"), "The cafeteria opens at 11:30.").unwrap();
    let (code, _) = ws.ingest();
    assert_eq!(code, 0);
    let server = ws.serve().await;
    let mut client = server.client();

    fn expect<T>(r: Result<T, tonic::Status>, field: &str) {
        let Err(status) = r else {
            panic!("request with a bad {field} succeeded")
        };
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains(field), "{field}: {status:?}");
    }

    expect(client.search(search_request("   ")).await, "query");
    let mut too_many = search_request("cafeteria");
    too_many.retrieval.as_mut().unwrap().top_k = 1000;
    expect(client.search(too_many).await, "retrieval.top_k");
    expect(
        client
            .ask(pb::AskRequest {
                question: "".into(),
                ..Default::default()
            })
            .await,
        "question",
    );
    expect(
        client
            .ask(pb::AskRequest {
                question: "When does the cafeteria open?".into(),
                temperature: Some(9.0),
                ..Default::default()
            })
            .await,
        "temperature",
    );
    expect(
        client
            .ingest_document(pb::IngestDocumentRequest {
                file_name: "photo.png".into(),
                media_type: "image/png".into(),
                content: vec![1, 2, 3],
                ..Default::default()
            })
            .await,
        "media_type",
    );
    expect(
        client
            .ingest_document(pb::IngestDocumentRequest {
                file_name: "scan.pdf".into(),
                content: b"%PDF-1.7\n garbage that is no PDF".to_vec(),
                ..Default::default()
            })
            .await,
        "scan.pdf",
    );
    expect(
        client
            .delete_document(pb::DeleteDocumentRequest { target: None })
            .await,
        "target",
    );

    // The server is still healthy and answers after all of that.
    let top = top_sources(&server, "When does the cafeteria open?").await;
    assert_eq!(top[0].0, "note.txt");

    // Generic gRPC clients can discover the API through reflection.
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut reflection = ServerReflectionClient::new(server.channel.clone());
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&"rag.v1.RagService".to_owned()), "{names:?}");
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn formats_encodings_and_operator_options() {
    let ws = Workspace::new();
    let docs = ws.docs();
    std::fs::create_dir_all(docs.join("web")).unwrap();
    std::fs::write(
        docs.join("web/canteen.html"),
        "<html><head><title>Canteen</title><script>var menu = 'secret';</script></head>\
         <body><nav>Home | HR | IT</nav><h1>Canteen</h1><p>The canteen serves lunch from \
         11:30 to 14:00. The vegetarian dish of the day costs 6 euros.</p></body></html>",
    )
    .unwrap();
    let korean =
        "복지 안내: 자기계발비는 연간 100만 원까지 지원합니다. 도서와 교육비를 포함합니다.";
    let (euc_kr, _, _) = encoding_rs::EUC_KR.encode(korean);
    std::fs::write(docs.join("benefits-euckr.txt"), &euc_kr).unwrap();
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(
        "Bicycle parking is in the courtyard; the gate code is 4711."
            .encode_utf16()
            .flat_map(|u| u.to_le_bytes()),
    );
    std::fs::write(docs.join("parking-utf16.txt"), utf16).unwrap();

    // A dry run lists what would happen and writes nothing.
    let out = ws.rag(&["ingest", "--dry-run", "--json", docs.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["add"].as_array().unwrap().len(), 3, "{plan}");
    let out = ws.rag(&["ingest", "--dry-run", "--json", docs.to_str().unwrap()]);
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        plan["add"].as_array().unwrap().len(),
        3,
        "a dry run wrote something: {plan}"
    );

    // Exclude globs, and a machine-readable report.
    let report = ws.dir.path().join("report.json");
    let out = ws.rag(&[
        "ingest",
        "--exclude",
        "web/**",
        "--report",
        report.to_str().unwrap(),
        docs.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(summary["indexed"], 2, "{summary}");
    let (_, summary) = ws.ingest();
    assert_eq!(summary["indexed"], 1, "the HTML page joins: {summary}");
    assert_eq!(summary["unchanged"], 2, "{summary}");

    // A removed file shows up as a deletion, then is deleted.
    std::fs::remove_file(docs.join("parking-utf16.txt")).unwrap();
    let out = ws.rag(&["ingest", "--dry-run", "--json", docs.to_str().unwrap()]);
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        plan["delete"],
        serde_json::json!(["parking-utf16.txt"]),
        "{plan}"
    );
    let (_, summary) = ws.ingest();
    assert_eq!(summary["deleted"], 1, "{summary}");

    let server = ws.serve().await;
    let search = |q: &'static str| {
        let mut client = server.client();
        async move {
            client
                .search(search_request(q))
                .await
                .unwrap()
                .into_inner()
                .chunks
        }
    };
    let hits = search("When does the canteen serve lunch?").await;
    assert_eq!(hits[0].source_path, "web/canteen.html");
    assert!(hits[0].text.contains("11:30") && !hits[0].text.contains("secret"));
    assert!(
        !hits[0].text.contains("Home | HR"),
        "navigation is not content"
    );
    let hits = search("자기계발비 지원 금액").await;
    assert_eq!(hits[0].source_path, "benefits-euckr.txt");
    assert!(
        hits[0].text.contains("연간 100만 원"),
        "decoded from EUC-KR: {}",
        hits[0].text
    );
    let hits = search("Where can I park my bicycle?").await;
    assert!(hits.iter().all(|h| h.source_path != "parking-utf16.txt"));
}

/// kill -9 at several moments of a real ingest, then rerun: the index must be exactly what one
/// clean run produces (no duplicates, nothing missing), and a further run must write nothing.
#[tokio::test(flavor = "multi_thread")]
async fn an_ingest_killed_at_any_moment_reruns_to_the_clean_result() {
    fn corpus(ws: &Workspace) {
        ws.copy_samples();
        for i in 0..30 {
            let body: String = (0..12)
                .map(|p| {
                    format!(
                        "Section {p} of memo {i}: the facilities team reviewed room {i}{p} and \
                         scheduled maintenance for week {}. Contact desk {} for access.\n\n",
                        (i * 7 + p) % 52,
                        100 + i * 3 + p
                    )
                })
                .collect();
            std::fs::write(ws.docs().join(format!("memo-{i:02}.txt")), body).unwrap();
        }
    }

    let clean = Workspace::new();
    corpus(&clean);
    let (code, clean_summary) = clean.ingest();
    assert_eq!(code, 0, "{clean_summary}");
    let clean_points = clean_summary["points_total"].as_u64().unwrap();
    assert!(clean_points > 60, "{clean_summary}");

    let crashed = Workspace::new();
    corpus(&crashed);
    for delay_ms in [400, 900, 1600, 2600, 3800] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rag"))
            .arg("--config")
            .arg(crashed.config())
            .args(["ingest", "--json", crashed.docs().to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL: no cleanup runs
        let _ = child.wait();
    }
    let (code, summary) = crashed.ingest();
    assert_eq!(code, 0, "{summary}");
    assert_eq!(
        summary["points_total"].as_u64().unwrap(),
        clean_points,
        "{summary}"
    );
    assert_eq!(summary["failed"].as_array().unwrap().len(), 0, "{summary}");
    let (_, again) = crashed.ingest();
    assert_eq!(again["chunks_written"], 0, "{again}");
    assert_eq!(again["unchanged"], clean_summary["indexed"], "{again}");
    assert_eq!(
        again["points_total"].as_u64().unwrap(),
        clean_points,
        "{again}"
    );
}

/// A folder of bad inputs next to one good file: everything bad is reported with its path and
/// reason, the good file is indexed, and the process ends normally.
#[tokio::test(flavor = "multi_thread")]
async fn bad_input_never_stops_a_batch() {
    let ws = Workspace::new();
    let docs = ws.docs();
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("good.md"), "# Good\n\nThe library opens at nine.").unwrap();
    std::fs::write(docs.join("empty.txt"), b"").unwrap();
    std::fs::write(docs.join("huge.txt"), "word ".repeat(40_000)).unwrap();
    std::fs::write(docs.join("elf.md"), b"\x7fELF\x02\x01\x01\0\0\0binary").unwrap();
    std::fs::write(docs.join("fake.pdf"), b"this is not a PDF at all").unwrap();
    let garbled: String = "\u{E000}\u{FFFD}\u{E123}x".repeat(50);
    std::fs::write(docs.join("garbled.txt"), garbled).unwrap();
    let mut deep = docs.clone();
    for i in 0..60 {
        deep = deep.join(format!("d{i}"));
    }
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(
        deep.join("deep.txt"),
        "Deep down, the archive keeps old contracts.",
    )
    .unwrap();
    std::os::unix::fs::symlink(&docs, docs.join("loop")).unwrap();
    std::os::unix::fs::symlink(docs.join("missing.txt"), docs.join("dangling.txt")).unwrap();
    let sample_pdf =
        std::fs::read(repo().join("examples/docs/finance/expense-policy.pdf")).unwrap();
    std::fs::write(
        docs.join("truncated.pdf"),
        &sample_pdf[..sample_pdf.len() / 2],
    )
    .unwrap();
    let fixtures = repo().join("tests/fixtures");
    std::fs::copy(
        fixtures.join("encrypted-password.pdf"),
        docs.join("locked.pdf"),
    )
    .unwrap();
    // Encrypted with an empty user password: readable, so indexed.
    std::fs::copy(
        fixtures.join("encrypted-no-user-password.pdf"),
        docs.join("owner-locked.pdf"),
    )
    .unwrap();
    std::fs::write(docs.join("scan.pdf"), image_only_pdf()).unwrap();
    // Not UTF-8: Latin-1 bytes, detected and decoded.
    std::fs::write(
        docs.join("latin1.txt"),
        b"Caf\xe9 cr\xe8me is served in the lobby at ten.",
    )
    .unwrap();
    let unreadable = docs.join("unreadable.txt");
    std::fs::write(&unreadable, "Nobody may read this.").unwrap();
    std::fs::set_permissions(
        &unreadable,
        std::os::unix::fs::PermissionsExt::from_mode(0o000),
    )
    .unwrap();
    // root reads any file; everyone else gets "permission denied".
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rag"))
        .arg("--config")
        .arg(ws.config())
        .args(["ingest", "--json", docs.to_str().unwrap()])
        .env("RAG_INGEST__MAX_FILE_BYTES", "100000")
        .output()
        .unwrap();
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(3), "some files failed: {summary}");
    assert_eq!(
        summary["indexed"],
        if root { 5 } else { 4 },
        "good.md, the deeply nested file, the owner-locked PDF, latin1.txt (and unreadable.txt \
         for root): {summary}"
    );
    let reasons: std::collections::BTreeMap<String, String> = summary["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expect = [
        ("empty.txt", "no text"),
        ("huge.txt", "over the limit"),
        ("elf.md", "binary"),
        ("fake.pdf", "not a PDF"),
        ("garbled.txt", "garbled"),
        ("truncated.pdf", "truncated"),
        ("locked.pdf", "encrypted PDF"),
        ("scan.pdf", "image-only"),
    ];
    let mut expect = expect.to_vec();
    if !root {
        expect.push(("unreadable.txt", "ermission denied"));
    }
    for &(path, reason) in &expect {
        let got = reasons
            .get(path)
            .unwrap_or_else(|| panic!("{path} not reported: {summary}"));
        assert!(got.contains(reason), "{path}: {got}");
        assert!(got.starts_with(path), "the error names the file: {got}");
    }
    assert_eq!(reasons.len(), expect.len(), "{summary}");

    let server = ws.serve().await;
    let hits = top_sources(&server, "Where is the café crème served?").await;
    assert_eq!(hits[0].0, "latin1.txt", "{hits:?}");
    let hits = top_sources(&server, "What is the hotel limit per night?").await;
    assert_eq!(hits[0].0, "owner-locked.pdf", "{hits:?}");
}

/// A valid one-page PDF whose page draws a line and holds no text, like a scan without OCR.
fn image_only_pdf() -> Vec<u8> {
    let content = "0 0 m 200 200 l S";
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>".to_owned(),
        format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ),
    ];
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend(format!("{} 0 obj\n{body}\nendobj\n", i + 1).bytes());
    }
    let xref = pdf.len();
    pdf.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).bytes());
    for offset in offsets {
        pdf.extend(format!("{offset:010} 00000 n \n").bytes());
    }
    pdf.extend(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .bytes(),
    );
    pdf
}

/// Sets every file under `dir` to an mtime an hour ago, so the manifest trusts it (files changed
/// within seconds of a run are always re-read).
fn age_files(dir: &std::path::Path) {
    let past = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            age_files(&path);
        } else {
            std::fs::File::options()
                .append(true)
                .open(&path)
                .unwrap()
                .set_modified(past)
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reruns_read_only_changed_files_and_never_embed_a_text_twice() {
    let ws = Workspace::new();
    ws.copy_samples();
    let docs = ws.docs();
    age_files(&docs);

    let (code, first) = ws.ingest();
    assert_eq!(code, 0, "{first}");
    assert_eq!(first["indexed"], 7, "{first}");
    assert_eq!(first["files_read"], 7, "{first}");
    let embedded = first["chunks_embedded"].as_u64().unwrap();
    assert!(embedded > 0, "{first}");
    assert!(
        first["tokens_computed"].as_u64().unwrap() >= first["tokens_real"].as_u64().unwrap(),
        "{first}"
    );

    // Unchanged: the manifest answers for every file; nothing is read, nothing written.
    let (_, rerun) = ws.ingest();
    assert_eq!(rerun["unchanged"], 7, "{rerun}");
    assert_eq!(rerun["files_read"], 0, "{rerun}");
    assert_eq!(rerun["chunks_written"], 0, "{rerun}");

    // A touched file (same bytes) is read and hashed again, and found unchanged.
    std::fs::File::options()
        .append(true)
        .open(docs.join("it/vpn-setup.txt"))
        .unwrap()
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(60))
        .unwrap();
    let (_, touched) = ws.ingest();
    assert_eq!(touched["files_read"], 1, "{touched}");
    assert_eq!(touched["unchanged"], 7, "{touched}");

    // A renamed file and a copied file are written under their new paths from the vectors
    // already stored: no chunk is embedded again.
    std::fs::rename(
        docs.join("handbook/remote-work.md"),
        docs.join("handbook/working-from-home.md"),
    )
    .unwrap();
    std::fs::copy(
        docs.join("finance/expense-policy.pdf"),
        docs.join("finance/expense-policy-copy.pdf"),
    )
    .unwrap();
    let (code, moved) = ws.ingest();
    assert_eq!(code, 0, "{moved}");
    assert_eq!(moved["indexed"], 2, "{moved}");
    assert_eq!(moved["deleted"], 1, "{moved}");
    assert_eq!(moved["chunks_embedded"], 0, "{moved}");
    assert_eq!(moved["chunks_reused"], moved["chunks_written"], "{moved}");
    let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap();
    assert_eq!(
        n(&moved, "points_total"),
        n(&first, "points_total") + n(&moved, "chunks_written") - n(&moved, "points_deleted"),
        "nothing duplicated, nothing left behind: {moved}"
    );

    let server = ws.serve().await;
    let hits = top_sources(&server, "How many days per week can I work remotely?").await;
    assert_eq!(hits[0].0, "handbook/working-from-home.md", "{hits:?}");
    assert!(
        hits.iter().all(|(p, _)| p != "handbook/remote-work.md"),
        "{hits:?}"
    );

    // Markdown chunks carry the headings above them.
    let chunks = server
        .client()
        .search(search_request("core collaboration hours"))
        .await
        .unwrap()
        .into_inner()
        .chunks;
    let core = chunks
        .iter()
        .find(|c| c.text.contains("10:00 to 15:00"))
        .expect("the core-hours chunk is found");
    assert!(
        core.heading.starts_with("Remote Work Policy"),
        "heading path: {:?}",
        core.heading
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_watch_mode_indexes_changes_as_they_happen() {
    use std::io::BufRead;
    let ws = Workspace::new();
    let docs = ws.docs();
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(
        docs.join("menu.md"),
        "# Menu\n\nOn Fridays the canteen serves fish.",
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rag"))
        .arg("--config")
        .arg(ws.config())
        .args(["ingest", "--watch", "--debounce-ms", "300", "--json"])
        .arg(&docs)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (tx, runs) = std::sync::mpsc::channel::<serde_json::Value>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(summary) = serde_json::from_str(&line) {
                let _ = tx.send(summary);
            }
        }
    });
    let next_run = || {
        runs.recv_timeout(std::time::Duration::from_secs(60))
            .expect("a run summary within 60 s")
    };

    let first = next_run();
    assert_eq!(first["indexed"], 1, "{first}");

    // A burst of changes: a new file written in two steps, and an edit.
    std::fs::write(docs.join("parking.txt"), "Bicycle parking is in the ").unwrap();
    std::fs::write(
        docs.join("parking.txt"),
        "Bicycle parking is in the courtyard behind building B.",
    )
    .unwrap();
    std::fs::write(
        docs.join("menu.md"),
        "# Menu\n\nOn Fridays the canteen serves pasta.",
    )
    .unwrap();
    let mut seen = next_run();
    // Debouncing may still split a burst; what matters is where the index ends up.
    while seen["points_total"] != 2 || seen["indexed"] == 0 {
        seen = next_run();
    }
    assert_eq!(seen["failed"].as_array().unwrap().len(), 0, "{seen}");

    std::fs::remove_file(docs.join("menu.md")).unwrap();
    let mut removed = next_run();
    while removed["deleted"] == 0 {
        removed = next_run();
    }
    assert_eq!(removed["points_total"], 1, "{removed}");

    // SIGTERM ends the worker cleanly.
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "worker exit: {status}");

    let (_, after) = ws.ingest();
    assert_eq!(
        after["unchanged"], 1,
        "the worker left the index in step: {after}"
    );
    assert_eq!(after["chunks_written"], 0, "{after}");
}

/// Exact terms (error codes) that embeddings blur are found by the lexical side of hybrid
/// retrieval, in English and in Korean text with particles attached.
#[tokio::test(flavor = "multi_thread")]
async fn hybrid_retrieval_finds_exact_codes_that_dense_retrieval_blurs() {
    let ws = Workspace::new();
    let components = [
        ("NWC-4121", "the DNS resolver", "flush the resolver cache"),
        (
            "NWC-4127",
            "the DHCP lease",
            "renew the lease from the tray icon",
        ),
        ("NWC-4172", "the TLS handshake", "check the system clock"),
        (
            "NWC-4712",
            "the proxy login",
            "re-enter your directory password",
        ),
        (
            "NWC-7412",
            "the split tunnel",
            "reinstall the client profile",
        ),
        ("NWC-1247", "the MTU probe", "lower the MTU to 1380"),
    ];
    std::fs::create_dir_all(ws.docs().join("support")).unwrap();
    for (i, (code, part, fix)) in components.iter().enumerate() {
        std::fs::write(
            ws.docs().join(format!("support/note-{i}.txt")),
            format!(
                "Network client support note {i}.\n\nWhen the network client reports error \
                 {code}, {part} has failed and the connection is dropped. To fix it, {fix}, \
                 then reconnect. If the error persists, open a ticket with the client log."
            ),
        )
        .unwrap();
    }
    std::fs::write(
        ws.docs().join("support/오류-안내.md"),
        "# 네트워크 오류 안내\n\n오류 코드 KRX-9051은 인증서가 만료되었을 때 표시됩니다. \
         인증서를 재발급받으려면 보안팀에 문의하세요.\n\n회의실 예약은 그룹웨어에서 합니다.",
    )
    .unwrap();
    let (code, summary) = ws.ingest();
    assert_eq!(code, 0, "{summary}");

    let server = ws.serve().await;
    let mut hybrid_first = 0;
    for (i, (code, _, _)) in components.iter().enumerate() {
        let top = top_sources(&server, &format!("What should I do about error {code}?")).await;
        if top.first().map(|t| t.0.as_str()) == Some(format!("support/note-{i}.txt").as_str()) {
            hybrid_first += 1;
        }
    }
    let top = top_sources(&server, "KRX-9051 오류는 무엇인가요?").await;
    assert_eq!(top[0].0, "support/오류-안내.md", "{top:?}");
    assert!(server.stop().success());
    assert_eq!(
        hybrid_first,
        components.len(),
        "each code's note ranks first"
    );

    // The same questions with dense retrieval only, for comparison: the codes differ in a
    // digit or two, which the embedding barely sees.
    ws.append_config("hybrid = false");
    let server = ws.serve().await;
    let mut dense_first = 0;
    for (i, (code, _, _)) in components.iter().enumerate() {
        let top = top_sources(&server, &format!("What should I do about error {code}?")).await;
        if top.first().map(|t| t.0.as_str()) == Some(format!("support/note-{i}.txt").as_str()) {
            dense_first += 1;
        }
    }
    assert!(server.stop().success());
    eprintln!("first-ranked notes: hybrid {hybrid_first}/6, dense only {dense_first}/6");
    assert!(dense_first < hybrid_first, "dense only: {dense_first}/6");
}

/// Ranked sources for `query` at the given score threshold.
async fn ranked(server: &Server, query: &str, threshold: f32) -> Vec<String> {
    let request = pb::SearchRequest {
        query: query.into(),
        retrieval: Some(pb::RetrievalOptions {
            top_k: 5,
            score_threshold: Some(threshold),
            ..Default::default()
        }),
    };
    let chunks = server
        .client()
        .search(request)
        .await
        .unwrap()
        .into_inner()
        .chunks;
    let mut sources: Vec<String> = Vec::new();
    for c in chunks {
        if !sources.contains(&c.source_path) {
            sources.push(c.source_path);
        }
    }
    sources
}

/// With the multilingual configuration, Korean questions find Korean and English documents and
/// the answer's sources lead with the right one; English keeps working.
#[tokio::test(flavor = "multi_thread")]
async fn korean_questions_over_korean_and_english_documents() {
    let ws = Workspace::multilingual();
    ws.copy_samples();
    let (code, summary) = ws.ingest();
    assert_eq!(code, 0, "{summary}");
    let server = ws.serve().await;

    // Korean over Korean, and English over English, at the configured threshold.
    let top = ranked(&server, "자기계발비는 연간 얼마까지 지원되나요?", 0.814).await;
    assert_eq!(
        top.first().map(String::as_str),
        Some("handbook/복지-안내.md"),
        "{top:?}"
    );
    let top = ranked(
        &server,
        "How long are VPN device certificates valid?",
        0.814,
    )
    .await;
    assert_eq!(
        top.first().map(String::as_str),
        Some("it/vpn-setup.txt"),
        "{top:?}"
    );

    // Korean over English while a Korean document is in the index: the right English document
    // is among the first three (the Korean benefits page, same language, often ranks above it).
    for (question, source) in [
        (
            "정규직 직원의 연차 유급 휴가는 며칠인가요?",
            "handbook/leave-policy.md",
        ),
        (
            "비밀번호는 최소 몇 자여야 하나요?",
            "it/security-guidelines.md",
        ),
        (
            "경비 청구는 며칠 안에 제출해야 하나요?",
            "finance/expense-policy.pdf",
        ),
    ] {
        let top = ranked(&server, question, 0.0).await;
        assert!(
            top.iter().take(3).any(|s| s == source),
            "{question}: {top:?}"
        );
    }
    assert!(server.stop().success());

    // Korean over English documents only: the right one ranks first.
    std::fs::remove_file(ws.docs().join("handbook/복지-안내.md")).unwrap();
    let (code, summary) = ws.ingest();
    assert_eq!(
        (code, &summary["deleted"]),
        (0, &serde_json::json!(1)),
        "{summary}"
    );
    let server = ws.serve().await;
    for (question, source) in [
        (
            "정규직 직원의 연차 유급 휴가는 며칠인가요?",
            "handbook/leave-policy.md",
        ),
        (
            "일주일에 며칠까지 재택근무를 할 수 있나요?",
            "handbook/remote-work.md",
        ),
        (
            "비밀번호는 최소 몇 자여야 하나요?",
            "it/security-guidelines.md",
        ),
        (
            "VPN 기기 인증서의 유효 기간은 얼마인가요?",
            "it/vpn-setup.txt",
        ),
        (
            "경비 청구는 며칠 안에 제출해야 하나요?",
            "finance/expense-policy.pdf",
        ),
    ] {
        let top = ranked(&server, question, 0.0).await;
        assert_eq!(
            top.first().map(String::as_str),
            Some(source),
            "{question}: {top:?}"
        );
    }

    // And end to end: the answer's first source is the English document that holds it, and
    // whatever the model cites is one of the given sources.
    let mut stream = server
        .client()
        .ask(pb::AskRequest {
            question: "비밀번호는 최소 몇 자여야 하나요?".into(),
            max_tokens: 32,
            retrieval: Some(pb::RetrievalOptions {
                score_threshold: Some(0.75),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut sources = Vec::new();
    let mut answer = None;
    while let Some(message) = stream.message().await.unwrap() {
        match message.event.unwrap() {
            pb::ask_response::Event::Sources(s) => sources = s.sources,
            pb::ask_response::Event::Answer(a) => answer = Some(a),
            pb::ask_response::Event::Token(_) => {}
        }
    }
    let answer = answer.unwrap();
    assert_eq!(
        sources[0].chunk.as_ref().unwrap().source_path,
        "it/security-guidelines.md",
        "{sources:?}"
    );
    for c in &answer.citations {
        assert!(
            c.number >= 1 && c.number as usize <= sources.len(),
            "{answer:?}"
        );
    }
    assert!(!answer.sentences.is_empty() || answer.status == pb::AnswerStatus::NotFound as i32);
    assert!(server.stop().success());
}

/// A configured cross-encoder reorders the fused candidates and decides which `top_k` are
/// kept. The model is a stand-in with a cross-encoder's interface that scores a passage by how
/// often it says "zebra" (`tests/fixtures/reranker/make.py`): no real reranker can be fetched
/// here, and the test is about the plumbing, not the model.
#[tokio::test(flavor = "multi_thread")]
async fn a_configured_reranker_decides_the_order() {
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.docs().join("office")).unwrap();
    for (name, text) in [
        (
            "pets.md",
            "# Pets in the office\n\nDogs and cats are welcome in the office on Fridays if \
             they are house-trained. Animals must stay out of meeting rooms.",
        ),
        (
            "plants.md",
            "# Plants\n\nEvery desk may have one plant. The facilities team waters the shared \
             plants in the office on Mondays.",
        ),
        (
            "poster.md",
            "# Poster policy\n\nPosters of a zebra, another zebra or any landscape may hang in \
             the kitchen.",
        ),
    ] {
        std::fs::write(ws.docs().join("office").join(name), text).unwrap();
    }
    let (code, summary) = ws.ingest();
    assert_eq!(code, 0, "{summary}");
    let question = "Are animals such as dogs allowed in the office?";
    let first = |server: &Server| {
        let client = server.client();
        async move {
            let mut client = client;
            client
                .search(pb::SearchRequest {
                    query: question.into(),
                    retrieval: Some(pb::RetrievalOptions {
                        top_k: 1,
                        score_threshold: Some(0.0),
                        ..Default::default()
                    }),
                })
                .await
                .unwrap()
                .into_inner()
                .chunks
        }
    };

    let server = ws.serve().await;
    let plain = first(&server).await;
    assert!(server.stop().success());
    assert_eq!(plain[0].source_path, "office/pets.md", "{plain:?}");

    ws.append_config(&format!(
        "[rerank]\nmodel_dir = \"{}\"\nonnx_file = \"{}\"\ncandidates = 10",
        repo().join("models/embed/all-MiniLM-L6-v2").display(),
        repo().join("tests/fixtures/reranker/model.onnx").display()
    ));
    let server = ws.serve().await;
    let reranked = first(&server).await;
    assert!(server.stop().success());
    assert_eq!(reranked.len(), 1);
    assert_eq!(reranked[0].source_path, "office/poster.md", "{reranked:?}");
    assert_eq!(
        reranked[0].rank_score, 2.0,
        "the reranker's score: two zebras"
    );
}

/// `rag eval --json` on a shipped set, checked against its recorded baseline.
fn eval_against_baseline(ws: &Workspace, set: &str, baseline: &str) -> serde_json::Value {
    let out = ws.rag(&[
        "eval",
        "--json",
        "--questions",
        repo().join(set).to_str().unwrap(),
        "--corpus",
        repo().join("examples/docs").to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let baseline: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join(baseline)).unwrap()).unwrap();
    let margin = baseline["margin"].as_f64().unwrap();
    for metric in ["recall_at_5", "mrr_at_10"] {
        let got = results[metric].as_f64().unwrap();
        let recorded = baseline[metric].as_f64().unwrap();
        assert!(
            got >= recorded - margin,
            "{set}: {metric} fell to {got:.3} (recorded {recorded:.3}, margin {margin})"
        );
    }
    assert_eq!(results["retrieval"], "hybrid");
    results
}

/// Fails when retrieval on the shipped question sets gets worse than the recorded baselines.
#[tokio::test(flavor = "multi_thread")]
async fn retrieval_quality_on_the_shipped_sets_does_not_regress() {
    let results = eval_against_baseline(
        &Workspace::new(),
        "benches/eval/sample.jsonl",
        "benches/eval/sample-baseline.json",
    );
    assert_eq!(results["answerable"], 22, "{results}");
    assert_eq!(results["unanswerable"], 8, "{results}");
    // Korean questions, mostly answered by English documents, with the multilingual model.
    let results = eval_against_baseline(
        &Workspace::multilingual(),
        "benches/eval/sample-ko.jsonl",
        "benches/eval/sample-ko-baseline.json",
    );
    assert_eq!(results["answerable"], 14, "{results}");
}
