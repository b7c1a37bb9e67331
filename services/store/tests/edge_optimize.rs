//! Building the embedded store's search index: searches stay right before, during and after,
//! and a process killed in the middle of the build leaves a store that opens with every point
//! and that the next build completes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rag_store::synthetic::Synthetic;
use rag_store::{SearchFilter, Store, StoreConfig, Visibility};

const DIM: usize = 384;
const MODEL: &str = "synthetic";
/// Enough 384-dimensional vectors (1.5 KB each) to pass the engine's indexing threshold
/// (10 MB per segment), so that the optimiser builds an HNSW graph rather than nothing.
const POINTS: u64 = 12_000;
/// Set for the child process that builds the index and is killed.
const CHILD_DIR: &str = "RAG_TEST_OPTIMIZE_DIR";

fn config(dir: &Path) -> StoreConfig {
    StoreConfig::Embedded {
        data_dir: dir.to_owned(),
        min_free_bytes: 0,
    }
}

fn everything() -> SearchFilter {
    SearchFilter {
        path_prefix: None,
        doc_ids: vec![],
        visibility: Visibility::All,
    }
}

/// Every point is stored once, and a question about a chunk finds that chunk first.
async fn assert_complete(store: &Store, data: &Synthetic, when: &str) {
    assert_eq!(store.count().await.unwrap(), POINTS, "{when}: point count");
    for target in (0..POINTS).step_by(997) {
        let hits = store
            .search(data.query(target, 1), 5, &everything())
            .await
            .unwrap();
        let expected = data.point(target).payload;
        let first = &hits
            .first()
            .unwrap_or_else(|| panic!("{when}: no hit"))
            .payload;
        assert_eq!(
            (&first.doc_id, first.chunk_index),
            (&expected.doc_id, expected.chunk_index),
            "{when}: query about chunk {target}"
        );
    }
}

fn segments(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("chunks/segments"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().is_dir())
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_index_build_loses_nothing_and_is_completed_later() {
    let dir = tempfile::tempdir().unwrap();
    let data = Synthetic::new(DIM, MODEL, 11);
    {
        let store = rag_store::open(&config(dir.path()), DIM, MODEL)
            .await
            .unwrap();
        let points: Vec<_> = (0..POINTS).map(|i| data.point(i)).collect();
        for batch in points.chunks(2_000) {
            store.upsert(batch.to_vec()).await.unwrap();
        }
        store.flush().await.unwrap();
        assert_complete(&store, &data, "before any index").await;
    }

    // Killed at different moments of the build: early (copying), later (building the graph).
    for delay_ms in [50, 400, 1_500] {
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(exe)
            .args(["--exact", "optimizer_child", "--ignored", "--nocapture"])
            .env(CHILD_DIR, dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        loop {
            let line = lines
                .next()
                .expect("the child ended before building")
                .unwrap();
            if line.contains("building the index") {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        let finished = child.try_wait().unwrap().is_some();
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            !finished,
            "the build took under {delay_ms} ms: the test no longer interrupts it"
        );

        let store = rag_store::open(&config(dir.path()), DIM, MODEL)
            .await
            .unwrap();
        assert_complete(&store, &data, &format!("after a kill at {delay_ms} ms")).await;
    }

    // The next build completes, and the store is the same, now indexed.
    let store = rag_store::open(&config(dir.path()), DIM, MODEL)
        .await
        .unwrap();
    assert!(!dir.path().join("chunks/temp_segments").exists());
    assert!(store.optimize().await.unwrap(), "nothing was left to build");
    assert!(
        !store.optimize().await.unwrap(),
        "a second build found work"
    );
    assert_complete(&store, &data, "after the build").await;
    assert!(segments(dir.path()) >= 1);
}

/// Not a test on its own: the process `an_interrupted_index_build...` starts and kills.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "started by an_interrupted_index_build_loses_nothing_and_is_completed_later"]
async fn optimizer_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        panic!("run by an_interrupted_index_build_loses_nothing_and_is_completed_later only");
    };
    let store = rag_store::open(&config(Path::new(&dir)), DIM, MODEL)
        .await
        .unwrap();
    println!("building the index");
    store.optimize().await.unwrap();
    println!("built");
}

#[tokio::test(flavor = "multi_thread")]
async fn searches_and_writes_go_on_while_the_index_builds() {
    let dir = tempfile::tempdir().unwrap();
    let data = Synthetic::new(DIM, MODEL, 5);
    let store = rag_store::open(&config(dir.path()), DIM, MODEL)
        .await
        .unwrap();
    let points: Vec<_> = (0..POINTS).map(|i| data.point(i)).collect();
    store.upsert(points).await.unwrap();

    let building = tokio::spawn({
        let store = store.clone();
        async move { store.optimize().await }
    });
    let mut searched = 0;
    while !building.is_finished() {
        let target = (searched * 131) % POINTS;
        let hits = store
            .search(data.query(target, 2), 3, &everything())
            .await
            .unwrap();
        assert_eq!(hits[0].payload.doc_id, data.point(target).payload.doc_id);
        if searched == 0 {
            // A write while the build runs is kept.
            store.upsert(vec![data.point(POINTS)]).await.unwrap();
        }
        searched += 1;
    }
    assert!(building.await.unwrap().unwrap());
    assert!(searched > 1, "no search ran during the build");
    assert_eq!(store.count().await.unwrap(), POINTS + 1);
}
