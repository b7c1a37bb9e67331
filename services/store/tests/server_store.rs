//! The Qdrant server backend against the same contract. Needs a server: set QDRANT_URL
//! (e.g. http://127.0.0.1:6334); without it the test says so and does nothing.

mod contract;

use rag_store::StoreConfig;

#[tokio::test(flavor = "multi_thread")]
async fn server_store_meets_the_contract() {
    let Ok(url) = std::env::var("QDRANT_URL") else {
        eprintln!("SKIPPED server_store_meets_the_contract: QDRANT_URL is not set");
        return;
    };
    let collection = format!("rag_test_{}", std::process::id());
    let config = StoreConfig::Server {
        url,
        collection,
        api_key: std::env::var("QDRANT_API_KEY").ok(),
    };
    contract::run(&config).await;
    let store = rag_store::open(&config, contract::DIM, contract::MODEL)
        .await
        .unwrap();
    assert_eq!(store.count().await.unwrap(), contract::REMAINING);
}
