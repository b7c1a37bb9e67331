//! The embedded backend against the store contract.

mod contract;

use rag_store::{IndexStats, StoreConfig, StoreError};

#[tokio::test(flavor = "multi_thread")]
async fn embedded_store_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::Embedded {
        data_dir: dir.path().join("data"),
        min_free_bytes: 0,
    };
    contract::run(&config).await;

    // Reopening gives the same data.
    let store = rag_store::open(&config, contract::DIM, contract::MODEL)
        .await
        .unwrap();
    assert_eq!(store.count().await.unwrap(), contract::REMAINING);
    let stats = store.stats().await.unwrap();
    assert_eq!(
        stats,
        IndexStats {
            documents: 2,
            chunks: contract::REMAINING,
            schema_version: rag_store::migrations::latest(),
            embedding_model: contract::MODEL.into(),
            vector_size: contract::DIM,
            backend: format!("embedded store {}", dir.path().join("data").display()),
        }
    );

    // One process at a time: a second opener is told the directory is taken.
    let err = rag_store::open(&config, contract::DIM, contract::MODEL)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    drop(store);
    rag_store::open(&config, contract::DIM, contract::MODEL)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_built_for_another_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig::Embedded {
        data_dir: dir.path().to_owned(),
        min_free_bytes: 0,
    };
    drop(rag_store::open(&config, 4, "model-a").await.unwrap());
    let err = rag_store::open(&config, 8, "model-b").await.err().unwrap();
    assert!(matches!(err, StoreError::SchemaMismatch(_)), "{err}");
    assert!(err.to_string().contains("model-a"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restored_snapshot_answers_like_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let store = |name: &str| StoreConfig::Embedded {
        data_dir: dir.path().join(name),
        min_free_bytes: 0,
    };
    contract::snapshot(&store("source"), &store("restored"), dir.path()).await;
}
