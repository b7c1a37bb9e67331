//! The Qdrant server backend against the same contract. Needs a server, so it is ignored by
//! default: set QDRANT_URL (e.g. http://127.0.0.1:6334) and run with `--include-ignored`
//! (`scripts/test.sh` does).

mod contract;

use rag_store::StoreConfig;

fn server(name: &str) -> StoreConfig {
    let url = std::env::var("QDRANT_URL")
        .expect("QDRANT_URL must name the Qdrant server this ignored test runs against");
    StoreConfig::Server {
        urls: vec![url],
        collection: format!("rag_test_{}_{name}", std::process::id()),
        api_key: std::env::var("QDRANT_API_KEY").ok(),
        timeout: std::time::Duration::from_secs(30),
        layout: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a Qdrant server: set QDRANT_URL and run with --include-ignored"]
async fn a_restored_snapshot_answers_like_the_original() {
    let dir = tempfile::tempdir().unwrap();
    contract::snapshot(&server("source"), &server("restored"), dir.path()).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a Qdrant server: set QDRANT_URL and run with --include-ignored"]
async fn server_store_meets_the_contract() {
    let config = server("contract");
    contract::run(&config).await;
    let store = rag_store::open(&config, contract::DIM, contract::MODEL)
        .await
        .unwrap();
    assert_eq!(store.count().await.unwrap(), contract::REMAINING);
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.chunks, contract::REMAINING);
    assert!(stats.backend.contains("Qdrant server"), "{stats:?}");
}
