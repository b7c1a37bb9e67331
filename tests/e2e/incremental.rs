//! Re-runs and the watch mode: only changes are read, nothing is embedded twice.

use crate::client::{search_request, top_sources};
use crate::harness::Workspace;

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
