//! A folder ingest does not follow symbolic links, and says so in its summary; names on disk
//! become NFC source paths. Real embedder, real embedded store.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rag_embed::{EmbedConfig, Embedder};
use rag_ingest::{Chunker, Indexer, IngestConfig, PdfExtractor, SkipKind};
use rag_store::StoreConfig;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

async fn indexer(data: &Path) -> Indexer {
    let models = repo().join("models");
    let config = EmbedConfig {
        model_dir: models.join("embed/all-MiniLM-L6-v2"),
        onnxruntime: models.join("onnxruntime/libonnxruntime.so"),
        threads: 1,
        ..EmbedConfig::default()
    };
    let chunker = Chunker::new(&config.tokenizer_file(), 200, 32).unwrap();
    let embedder = Arc::new(Embedder::load(&config).unwrap());
    let store = rag_store::open(
        &StoreConfig::Embedded {
            data_dir: data.to_owned(),
            min_free_bytes: 0,
        },
        embedder.dimension(),
        embedder.model_name(),
    )
    .await
    .unwrap();
    let pdf = PdfExtractor {
        helper: None,
        pdftotext: None,
        timeout: Duration::from_secs(30),
    };
    Indexer::new(embedder, store, chunker, pdf, IngestConfig::default())
        .with_manifest_dir(data.join("manifests"))
}

/// The sources stored for the folder `docs`.
async fn sources(indexer: &Indexer, docs: &Path) -> Vec<String> {
    let root = docs.canonicalize().unwrap();
    let mut sources: Vec<String> = indexer
        .store()
        .document_versions(Some(&root.to_string_lossy()), None)
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.source)
        .collect();
    sources.sort();
    sources
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn symbolic_links_are_skipped_and_counted_in_the_summary() {
    use std::os::unix::fs::symlink;

    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.md"), "The vault code is 4711.").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    std::fs::write(docs.join("leave.md"), "Employees get 25 days of leave.").unwrap();
    symlink(outside.path().join("secret.md"), docs.join("vault.md")).unwrap();
    symlink(outside.path(), docs.join("more")).unwrap();

    let indexer = indexer(&dir.path().join("data")).await;
    let summary = indexer
        .index_folder(&docs, &Default::default(), &|_| {})
        .await
        .unwrap();
    assert_eq!(summary.indexed, 1);
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    assert_eq!(summary.skipped_of(SkipKind::SymbolicLink), 2);
    let mut links: Vec<String> = summary
        .skipped
        .iter()
        .filter(|s| s.kind == SkipKind::SymbolicLink)
        .map(|s| s.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    links.sort();
    assert_eq!(links, ["more", "vault.md"]);
    assert_eq!(sources(&indexer, &docs).await, ["leave.md"]);

    let plan = indexer
        .plan_folder(&docs, &Default::default())
        .await
        .unwrap();
    assert_eq!(plan.skipped_of(SkipKind::SymbolicLink), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_decomposed_file_name_is_stored_composed_and_stays_one_document() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    std::fs::write(docs.join("cafe\u{301}.md"), "The café opens at eight.").unwrap();
    let indexer = indexer(&dir.path().join("data")).await;
    for run in 0..2 {
        let summary = indexer
            .index_folder(&docs, &Default::default(), &|_| {})
            .await
            .unwrap();
        assert_eq!(
            (summary.indexed, summary.unchanged),
            if run == 0 { (1, 0) } else { (0, 1) }
        );
        assert_eq!(summary.deleted, 0);
        assert_eq!(sources(&indexer, &docs).await, ["caf\u{e9}.md"]);
    }
}
