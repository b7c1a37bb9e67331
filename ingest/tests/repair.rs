//! What an interrupted run leaves behind is repaired by the next one, whatever happened to the
//! files in between: real embedder, real embedded store.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rag_embed::{EmbedConfig, Embedder};
use rag_ingest::{
    API_ROOT, Chunker, GroupRule, IncomingDocument, IndexError, Indexer, IngestConfig, Outcome,
    PdfExtractor, doc_id_for,
};
use rag_store::{
    ChunkPayload, ChunkPoint, DEFAULT_TENANT, EVERYONE, SearchFilter, Store, StoreConfig,
    Visibility, point_id,
};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

async fn indexer(data: &Path) -> Indexer {
    indexer_with(data, IngestConfig::default()).await
}

async fn indexer_with(data: &Path, ingest: IngestConfig) -> Indexer {
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
        pdftotext: Some("pdftotext".into()),
        timeout: Duration::from_secs(30),
    };
    Indexer::new(embedder, store, chunker, pdf, ingest).with_manifest_dir(data.join("manifests"))
}

/// Points of a version whose writing stopped before its commit marker (chunk 0).
fn unfinished(root: &str, source: &str, doc_hash: &str, dim: usize) -> Vec<ChunkPoint> {
    points(root, source, doc_hash, dim, 1..3)
}

/// Chunks `indices` of a three-chunk version of `source`.
fn points(
    root: &str,
    source: &str,
    doc_hash: &str,
    dim: usize,
    indices: std::ops::Range<u32>,
) -> Vec<ChunkPoint> {
    let doc_id = doc_id_for(root, source);
    indices
        .map(|i| ChunkPoint {
            id: point_id(&doc_id, i, doc_hash),
            vector: vec![0.1; dim],
            lexical: Default::default(),
            payload: ChunkPayload {
                doc_id: doc_id.clone(),
                source: source.into(),
                root: root.into(),
                doc_hash: doc_hash.into(),
                page: 0,
                chunk_index: i,
                chunk_count: 3,
                chunk_hash: format!("unfinished-{i}"),
                text: format!("half-written chunk {i}"),
                title: String::new(),
                heading: String::new(),
                media_type: "text/plain".into(),
                embedding_model: "all-MiniLM-L6-v2".into(),
                indexed_at_ms: 0,
                metadata: Default::default(),
                groups: vec![EVERYONE.into()],
            },
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn unfinished_versions_are_swept_even_when_their_file_reverted_or_vanished() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(
        docs.join("kept.md"),
        "# Kept\n\nThe archive opens at eight.",
    )
    .unwrap();
    std::fs::write(docs.join("other.txt"), "Parking is behind building B.").unwrap();
    let indexer = indexer(&dir.path().join("data")).await;
    let store: &Arc<Store> = indexer.store();
    let clean = indexer
        .index_folder(&docs, &Default::default(), &|_| {})
        .await
        .unwrap();
    assert_eq!(clean.indexed, 2);

    // A run was killed while writing a new version of kept.md (its file then went back to the
    // stored content) and while writing gone.txt for the first time (the file was then
    // deleted): neither version got its commit marker.
    let root = std::fs::canonicalize(&docs)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let dim = indexer.embedder().dimension();
    let mut leftovers = unfinished(&root, "kept.md", "newer-version", dim);
    leftovers.extend(unfinished(&root, "gone.txt", "first-version", dim));
    store.upsert(leftovers).await.unwrap();
    assert_eq!(store.count().await.unwrap(), clean.points_total + 4);

    let repaired = indexer
        .index_folder(&docs, &Default::default(), &|_| {})
        .await
        .unwrap();
    assert_eq!(repaired.unchanged, 2, "{repaired:?}");
    assert_eq!(repaired.points_deleted, 4, "{repaired:?}");
    assert_eq!(repaired.points_total, clean.points_total);
    let versions = store.point_versions(&root).await.unwrap();
    assert!(
        versions
            .iter()
            .all(|(_, hash)| hash != "newer-version" && hash != "first-version"),
        "{versions:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_document_sent_as_bytes_is_checked_indexed_then_unchanged_and_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let ingest = IngestConfig {
        max_file_bytes: 1000,
        ..IngestConfig::default()
    };
    let indexer = indexer_with(&dir.path().join("data"), ingest).await;
    let send = |file_name: &str, media_type: &str, content: &[u8]| IncomingDocument {
        file_name: file_name.into(),
        media_type: media_type.into(),
        content: content.to_vec(),
        document_id: String::new(),
        metadata: [("team".to_owned(), "ops".to_owned())].into(),
        tenant: DEFAULT_TENANT.into(),
        groups: Vec::new(),
        writer: Visibility::All,
    };

    let err = indexer
        .index_document(send("tool.exe", "", b"MZ"))
        .await
        .unwrap_err();
    assert!(matches!(err, IndexError::Unsupported { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("tool.exe: unsupported media type \"tool.exe\"")
    );
    let err = indexer
        .index_document(send("notes", "image/png", b"x"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("\"image/png\""), "{err}");
    let err = indexer
        .index_document(send("big.txt", "", &[b'a'; 1001]))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "big.txt: 1001 bytes is over the limit of 1000 bytes"
    );
    let err = indexer
        .index_document(send("blank.md", "text/markdown", b"  \n\n "))
        .await
        .unwrap_err();
    assert!(matches!(err, IndexError::Extract { .. }), "{err}");

    let note = b"# Gate codes\n\nThe side gate opens with code 4711 after six.";
    let (doc_id, outcome) = indexer
        .index_document(send("gate.md", "", note))
        .await
        .unwrap();
    assert_eq!(doc_id, doc_id_for(API_ROOT, "gate.md"));
    assert!(
        matches!(outcome, Outcome::Indexed { chunks, pages: 0 } if chunks > 0),
        "{outcome:?}"
    );
    let (_, again) = indexer
        .index_document(send("gate.md", "text/markdown", note))
        .await
        .unwrap();
    assert_eq!(again, Outcome::Unchanged);

    // An interrupted run wrote another complete version and did not sweep it: sending the
    // stored content again sweeps it.
    let store = indexer.store();
    let dim = indexer.embedder().dimension();
    store
        .upsert(points(API_ROOT, "gate.md", "older-version", dim, 0..3))
        .await
        .unwrap();
    let (_, again) = indexer
        .index_document(send("gate.md", "", note))
        .await
        .unwrap();
    assert_eq!(again, Outcome::Unchanged);
    let versions = store.point_versions(API_ROOT).await.unwrap();
    assert_eq!(versions.len(), 1, "{versions:?}");
    assert!(
        versions
            .iter()
            .all(|(id, hash)| id == &doc_id && hash != "older-version")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn contextual_chunks_are_a_new_recipe_embedded_with_headers_stored_without() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    let note = "# Leave Policy\n\n## Sick leave\n\nTell your manager before ten.";
    std::fs::write(docs.join("leave.md"), note).unwrap();
    std::fs::write(docs.join("parking-rules.txt"), "Cars go in bay C.").unwrap();
    let data = dir.path().join("data");
    let lexical_top = |store: Arc<Store>, words: &'static str| async move {
        let query = rag_store::Query {
            dense: vec![0.0; 384],
            lexical: Some(rag_lexical::query_vector(words)),
            ..Default::default()
        };
        let hits = store
            .search(query, 1, &SearchFilter::visible(Visibility::All))
            .await
            .unwrap();
        hits.into_iter().next().unwrap()
    };

    let plain = IngestConfig {
        chunk_headers: false,
        ..IngestConfig::default()
    };
    let plain_indexer = indexer_with(&data, plain).await;
    let first = plain_indexer
        .index_folder(&docs, &Default::default(), &|_| {})
        .await
        .unwrap();
    assert_eq!(first.indexed, 2);
    let hit = lexical_top(plain_indexer.store().clone(), "sick leave").await;
    assert_eq!(hit.payload.text, note);
    let plain_hash = hit.payload.chunk_hash.clone();
    drop(plain_indexer);

    // The same store, the contextual recipe: every document is a new version; the Markdown
    // chunk, now embedded under its headings, is embedded again, while the text file's chunk
    // (no title or heading of its own, so no header: never its file name, which would make a
    // renamed copy embed again) keeps its vector.
    let headers = IngestConfig {
        chunk_headers: true,
        ..IngestConfig::default()
    };
    let indexer = indexer_with(&data, headers).await;
    let second = indexer
        .index_folder(&docs, &Default::default(), &|_| {})
        .await
        .unwrap();
    assert_eq!(second.indexed, 2, "{second:?}");
    assert_eq!(second.embedding.chunks_reused, 1, "{second:?}");
    assert_eq!(second.embedding.chunks_embedded, 1, "{second:?}");
    assert_eq!(second.points_total, first.points_total);
    let again = indexer
        .index_folder(&docs, &Default::default(), &|_| {})
        .await
        .unwrap();
    assert_eq!(again.unchanged, 2, "{again:?}");

    // The text file's chunk is found by its own words, its stored text as it was.
    let hit = lexical_top(indexer.store().clone(), "cars bay").await;
    assert_eq!(hit.payload.source, "parking-rules.txt");
    assert_eq!(hit.payload.text, "Cars go in bay C.");
    let hit = lexical_top(indexer.store().clone(), "sick leave").await;
    assert_eq!(hit.payload.text, note);
    assert_eq!(hit.payload.heading, "Leave Policy");
    assert_ne!(hit.payload.chunk_hash, plain_hash);
}

fn groups(names: &[&str]) -> Vec<String> {
    names.iter().map(|g| g.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn documents_sent_as_bytes_go_to_the_callers_tenant_and_groups_it_may_write() {
    let dir = tempfile::tempdir().unwrap();
    let indexer = indexer(&dir.path().join("data")).await;
    let send = |tenant: &str, doc_groups: &[&str], writer: Visibility| IncomingDocument {
        file_name: "hr/salaries.md".into(),
        media_type: String::new(),
        content: b"# Salaries\n\nBands are reviewed every March.".to_vec(),
        document_id: String::new(),
        metadata: Default::default(),
        tenant: tenant.into(),
        groups: groups(doc_groups),
        writer,
    };
    let eng = Visibility::Groups(groups(&["eng"]));
    let hr = Visibility::Groups(groups(&["hr"]));

    // A key may not write a document it could not read afterwards.
    let err = indexer
        .index_document(send("acme", &["hr"], eng.clone()))
        .await
        .unwrap_err();
    assert!(matches!(err, IndexError::Forbidden { .. }), "{err}");
    let err = indexer
        .index_document(send("acme", &["bad,name"], Visibility::All))
        .await
        .unwrap_err();
    assert!(matches!(err, IndexError::BadGroups { .. }), "{err}");

    let (doc_id, outcome) = indexer
        .index_document(send("acme", &["hr"], hr.clone()))
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Indexed { .. }), "{outcome:?}");
    let acme = indexer.store().for_tenant("acme");
    let versions = acme.document_versions(None, Some(&doc_id)).await.unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].groups, ["hr"]);
    // Nothing of it in the default tenant, or in another.
    assert_eq!(indexer.store().count().await.unwrap(), 0);
    assert_eq!(
        indexer.store().for_tenant("globex").count().await.unwrap(),
        0
    );

    // The same document id in another tenant is a document of its own.
    let (same_id, outcome) = indexer
        .index_document(send("globex", &[], eng.clone()))
        .await
        .unwrap();
    assert_eq!(same_id, doc_id);
    assert!(matches!(outcome, Outcome::Indexed { .. }), "{outcome:?}");
    assert_eq!(
        acme.document_versions(None, Some(&doc_id)).await.unwrap()[0].groups,
        ["hr"]
    );

    // An engineering writer of acme cannot replace the HR document it cannot read.
    let err = indexer
        .index_document(send("acme", &[], eng))
        .await
        .unwrap_err();
    assert!(matches!(err, IndexError::Forbidden { .. }), "{err}");
    assert_eq!(
        acme.document_versions(None, Some(&doc_id)).await.unwrap()[0].groups,
        ["hr"]
    );

    // Opening it to everyone is a new version (same bytes, other readers).
    let (_, outcome) = indexer
        .index_document(send("acme", &["*"], hr))
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Indexed { .. }), "{outcome:?}");
    let versions = acme.document_versions(None, Some(&doc_id)).await.unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].groups, [EVERYONE]);
}

#[tokio::test(flavor = "multi_thread")]
async fn folder_rules_set_groups_and_a_changed_rule_rewrites_only_what_it_covers() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(docs.join("hr")).unwrap();
    std::fs::write(
        docs.join("hr/leave.md"),
        "# Leave\n\nTwenty-five days a year.",
    )
    .unwrap();
    std::fs::write(
        docs.join("welcome.md"),
        "# Welcome\n\nThe canteen opens at noon.",
    )
    .unwrap();
    let data = dir.path().join("data");
    let rule = |g: &[&str]| IngestConfig {
        tenant: "acme".into(),
        groups: vec![GroupRule {
            prefix: "hr".into(),
            groups: groups(g),
        }],
        ..IngestConfig::default()
    };
    let stored_groups = |indexer: &Indexer| {
        let store = indexer.store().clone();
        async move {
            let mut found: Vec<(String, Vec<String>)> = store
                .document_versions(None, None)
                .await
                .unwrap()
                .into_iter()
                .map(|v| (v.source, v.groups))
                .collect();
            found.sort();
            found
        }
    };
    let indexer = indexer_with(&data, rule(&["hr"])).await;
    assert_eq!(indexer.store().tenant(), "acme");
    let summary = indexer
        .index_folder(&docs, &Default::default(), &|_| {})
        .await
        .unwrap();
    assert_eq!(summary.indexed, 2, "{summary:?}");
    assert_eq!(
        stored_groups(&indexer).await,
        [
            ("hr/leave.md".into(), groups(&["hr"])),
            ("welcome.md".into(), groups(&[EVERYONE])),
        ]
    );
    drop(indexer);

    // The rule changes: the HR file is rewritten with the new readers, from stored vectors;
    // the other file is untouched.
    let indexer = indexer_with(&data, rule(&["hr", "legal"])).await;
    let summary = indexer
        .index_folder(&docs, &Default::default(), &|_| {})
        .await
        .unwrap();
    assert_eq!((summary.indexed, summary.unchanged), (1, 1), "{summary:?}");
    assert_eq!(summary.embedding.chunks_embedded, 0, "{summary:?}");
    assert_eq!(
        stored_groups(&indexer).await[0],
        ("hr/leave.md".into(), groups(&["hr", "legal"]))
    );
    // Nothing went to the default tenant.
    assert_eq!(
        indexer
            .store()
            .for_tenant(DEFAULT_TENANT)
            .count()
            .await
            .unwrap(),
        0
    );
}
