//! Batch ingest as an operator runs it: formats and encodings, bad input, crashes.

use rag_proto::v1 as pb;

use crate::client::{search_request, top_sources};
use crate::harness::{Workspace, repo};

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
    // The default model reads English only (a Korean question is searched by its words and its
    // translation, see retrieval.rs): read the EUC-KR file's stored text through a filter on
    // its path instead.
    let hits = server
        .client()
        .search(pb::SearchRequest {
            query: "employee benefits".into(),
            retrieval: Some(pb::RetrievalOptions {
                score_threshold: Some(-1.0),
                filter: Some(pb::Filter {
                    path_prefix: "benefits-euckr.txt".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .chunks;
    assert_eq!(hits[0].source_path, "benefits-euckr.txt");
    assert!(
        hits.iter().any(|h| h.text.contains("연간 100만 원")),
        "decoded from EUC-KR: {hits:?}"
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
