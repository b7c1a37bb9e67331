//! What every backend must do, run against each of them.

use rag_store::{
    ChunkPayload, ChunkPoint, EVERYONE, Query, SearchFilter, StoreConfig, Visibility, point_id,
};

pub const DIM: usize = 4;
pub const MODEL: &str = "test-model";
/// Points left after `run`.
pub const REMAINING: u64 = 3;

fn point(doc: &str, source: &str, hash: &str, index: u32, vector: [f32; 4]) -> ChunkPoint {
    let text = format!("text of {source} #{index}");
    ChunkPoint {
        id: point_id(doc, index, hash),
        vector: vector.to_vec(),
        lexical: rag_lexical::document_vector(&text),
        payload: ChunkPayload {
            doc_id: doc.into(),
            source: source.into(),
            root: "/docs".into(),
            doc_hash: hash.into(),
            page: index + 1,
            chunk_index: index,
            chunk_count: 2,
            chunk_hash: format!("{doc}-{index}"),
            text,
            title: "Title".into(),
            heading: String::new(),
            media_type: "text/plain".into(),
            embedding_model: MODEL.into(),
            indexed_at_ms: 0,
            metadata: [("team".to_owned(), "hr".to_owned())].into(),
            groups: vec![EVERYONE.into()],
        },
    }
}

fn dense(vector: [f32; 4]) -> Query {
    Query {
        dense: vector.to_vec(),
        lexical: None,
        identifiers: None,
        fusion: Default::default(),
    }
}

fn hybrid(vector: [f32; 4], text: &str) -> Query {
    Query {
        dense: vector.to_vec(),
        lexical: Some(rag_lexical::query_vector(text)),
        identifiers: Some(rag_lexical::identifier_vector(text)),
        fusion: Default::default(),
    }
}

fn prefix(p: &str) -> SearchFilter {
    SearchFilter {
        path_prefix: Some(p.into()),
        doc_ids: vec![],
        visibility: Visibility::All,
    }
}

pub async fn run(config: &StoreConfig) {
    let store = rag_store::open(config, DIM, MODEL).await.unwrap();
    assert_eq!(store.count().await.unwrap(), 0);

    store
        .upsert(vec![
            point("a", "hr/leave.md", "h1", 1, [0.0, 1.0, 0.0, 0.0]),
            point("a", "hr/leave.md", "h1", 0, [1.0, 0.0, 0.0, 0.0]),
            point("b", "it/vpn.txt", "h2", 1, [0.0, 0.0, 0.0, 1.0]),
            point("b", "it/vpn.txt", "h2", 0, [0.0, 0.0, 1.0, 0.0]),
        ])
        .await
        .unwrap();
    // Upserting the same ids again does not duplicate.
    store
        .upsert(vec![point(
            "a",
            "hr/leave.md",
            "h1",
            0,
            [1.0, 0.0, 0.0, 0.0],
        )])
        .await
        .unwrap();
    store.flush().await.unwrap();
    assert_eq!(store.count().await.unwrap(), 4);
    assert_eq!(store.count_in_root("/docs").await.unwrap(), 4);
    assert_eq!(store.count_in_root("/elsewhere").await.unwrap(), 0);
    let pairs: Vec<(String, String)> = store
        .point_versions("/docs")
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(
        pairs,
        [("a".into(), "h1".into()), ("b".into(), "h2".into())]
    );
    let versions = store.document_versions(Some("/docs"), None).await.unwrap();
    assert!(versions.iter().all(|v| v.chunk_count == 2), "{versions:?}");

    // Stored vectors are found by chunk content; unknown hashes are simply absent.
    let reused = store
        .vectors_by_chunk_hash(vec!["b-1".into(), "a-0".into(), "nowhere".into()])
        .await
        .unwrap();
    assert_eq!(reused.len(), 2, "{reused:?}");
    assert_eq!(reused["a-0"], vec![1.0, 0.0, 0.0, 0.0]);
    assert_eq!(reused["b-1"], vec![0.0, 0.0, 0.0, 1.0]);
    assert!(
        store
            .vectors_by_chunk_hash(vec![])
            .await
            .unwrap()
            .is_empty()
    );

    // Nearest first, payload intact.
    let all = SearchFilter::visible(Visibility::All);
    let hits = store
        .search(dense([0.9, 0.1, 0.0, 0.0]), 2, &all)
        .await
        .unwrap();
    assert_eq!(hits.len(), 2);
    assert_eq!(
        hits[0].payload,
        point("a", "hr/leave.md", "h1", 0, [0.0; 4]).payload
    );
    assert!(hits[0].score > 0.99 && hits[0].score >= hits[1].score);
    assert_eq!(hits[0].score, hits[0].similarity, "dense only: the cosine");
    assert!((hits[1].similarity - 0.110).abs() < 0.01, "{hits:?}");

    // Hybrid: an exact term the dense side ranks last still reaches the fused top, and each
    // hit keeps its cosine similarity next to the fused score.
    let code = point("c", "ops/errors.md", "h3", 0, [-1.0, 0.0, 0.0, 0.0]);
    let mut code = ChunkPoint {
        lexical: rag_lexical::document_vector("Error NWC-412: the network controller is down"),
        ..code
    };
    code.payload.text = "Error NWC-412: the network controller is down".into();
    store.upsert(vec![code]).await.unwrap();
    let query = [1.0, 0.0, 0.0, 0.0];
    let dense_top: Vec<String> = store
        .search(dense(query), 2, &all)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.payload.doc_id)
        .collect();
    assert!(!dense_top.contains(&"c".to_owned()), "{dense_top:?}");
    let hits = store
        .search(hybrid(query, "what does NWC-412 mean"), 2, &all)
        .await
        .unwrap();
    let c = hits
        .iter()
        .find(|h| h.payload.doc_id == "c")
        .unwrap_or_else(|| panic!("exact term not fused in: {hits:?}"));
    assert!((c.similarity + 1.0).abs() < 1e-4, "{c:?}");
    // Fused scores (the default: normalised similarity plus weighted lexical scores), not
    // similarities: positive, at most the sum of the weights.
    let fusion = rag_store::Fusion::default();
    let most = fusion.dense_weight + fusion.lexical_weight + fusion.identifier_weight;
    assert!(
        hits.iter().all(|h| h.score > 0.0 && h.score <= most + 1e-6),
        "{hits:?}"
    );
    // Filters apply to both sides of a hybrid search.
    let hits = store
        .search(hybrid(query, "NWC-412"), 10, &prefix("hr"))
        .await
        .unwrap();
    assert!(!hits.is_empty());
    assert!(
        hits.iter().all(|h| h.payload.source == "hr/leave.md"),
        "{hits:?}"
    );
    // A query without lexical terms is a dense search.
    let hits = store.search(hybrid(query, "?!"), 1, &all).await.unwrap();
    assert_eq!(hits[0].payload.doc_id, "a");
    assert_eq!(hits[0].score, hits[0].similarity);
    assert_eq!(
        store
            .delete_document("c", None, &Visibility::All)
            .await
            .unwrap(),
        1
    );

    // Equal scores (copies of one text) come in a stable order, document id then chunk index,
    // whatever order they were written in, also where `limit` cuts between them; the same in
    // a hybrid search, where their fused scores are equal too.
    let copy = [0.0, -1.0, 0.0, 0.0];
    store
        .upsert(vec![
            point("t2", "t/2.md", "h5", 0, copy),
            point("t1", "t/1.md", "h5", 1, copy),
            point("t3", "t/3.md", "h5", 0, copy),
            point("t1", "t/1.md", "h5", 0, copy),
        ])
        .await
        .unwrap();
    for query in [dense(copy), hybrid(copy, "nothing here matches")] {
        for limit in [2, 4] {
            let order: Vec<(String, u32)> = store
                .search(query.clone(), limit, &all)
                .await
                .unwrap()
                .into_iter()
                .map(|h| (h.payload.doc_id, h.payload.chunk_index))
                .collect();
            let expected =
                [("t1", 0), ("t1", 1), ("t2", 0), ("t3", 0)].map(|(d, c)| (d.to_owned(), c));
            assert_eq!(order, expected[..limit], "limit {limit}");
        }
    }
    for doc in ["t1", "t2", "t3"] {
        store
            .delete_document(doc, None, &Visibility::All)
            .await
            .unwrap();
    }

    // Filters: folder prefix (with or without a slash), whole path, document ids.
    for p in ["it", "it/", "it/vpn.txt"] {
        let hits = store
            .search(dense([1.0, 0.0, 0.0, 0.0]), 10, &prefix(p))
            .await
            .unwrap();
        assert_eq!(hits.len(), 2, "prefix {p}");
        assert!(hits.iter().all(|h| h.payload.source == "it/vpn.txt"));
    }
    let hits = store
        .search(dense([1.0, 0.0, 0.0, 0.0]), 10, &prefix("i"))
        .await
        .unwrap();
    assert!(
        hits.is_empty(),
        "a prefix matches whole folder or file names only"
    );
    let filter = SearchFilter {
        path_prefix: None,
        doc_ids: vec!["a".into(), "zzz".into()],
        visibility: Visibility::All,
    };
    let hits = store
        .search(dense([0.0, 0.0, 1.0, 0.0]), 10, &filter)
        .await
        .unwrap();
    assert_eq!(hits.len(), 2);
    assert!(hits.iter().all(|h| h.payload.doc_id == "a"));

    // Versions: one entry per document version whose marker (chunk 0) is stored.
    let versions = store.document_versions(Some("/docs"), None).await.unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0].doc_id, "a");
    assert_eq!(versions[0].doc_hash, "h1");
    assert!(
        store
            .document_versions(Some("/other"), None)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .document_versions(None, Some("b"))
            .await
            .unwrap()
            .len(),
        1
    );

    // A new version of "a" beside the old one; then everything but the new one goes.
    store
        .upsert(vec![point(
            "a",
            "hr/leave.md",
            "h3",
            0,
            [1.0, 1.0, 0.0, 0.0],
        )])
        .await
        .unwrap();
    assert_eq!(
        store
            .document_versions(None, Some("a"))
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        store
            .delete_document("a", Some("h3"), &Visibility::All)
            .await
            .unwrap(),
        2
    );
    let versions = store.document_versions(None, Some("a")).await.unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].doc_hash, "h3");

    // Delete by source path.
    assert_eq!(
        store
            .delete_source("it/vpn.txt", &Visibility::All)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .delete_source("it/vpn.txt", &Visibility::All)
            .await
            .unwrap(),
        0
    );
    store
        .upsert(vec![
            point("c", "c.md", "h4", 0, [0.0, 0.0, 1.0, 1.0]),
            point("c", "c.md", "h4", 1, [0.0, 1.0, 1.0, 1.0]),
        ])
        .await
        .unwrap();
    store.flush().await.unwrap();
    assert_eq!(store.count().await.unwrap(), REMAINING);

    tenants_and_groups(&store).await;
    assert_eq!(store.count().await.unwrap(), REMAINING);
}

/// Another tenant over the same backend sees none of the default tenant's points and its
/// writes never land on them, even with the same document ids and versions; inside a tenant,
/// a document's groups decide who finds and deletes it.
async fn tenants_and_groups(store: &rag_store::Store) {
    let acme = store.for_tenant("acme");
    assert_eq!(acme.tenant(), "acme");
    assert_eq!(acme.count().await.unwrap(), 0);
    let everything = SearchFilter::visible(Visibility::All);
    let near_c = dense([0.0, 0.0, 1.0, 1.0]);
    assert!(
        acme.search(near_c.clone(), 10, &everything)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        acme.document_versions(None, Some("c"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        acme.vectors_by_chunk_hash(vec!["c-0".into()])
            .await
            .unwrap()
            .is_empty()
    );

    // The default tenant's document "c", version "h4", chunk 0, written again as acme's
    // HR-only document: a point of its own.
    let mut secret = point("c", "c.md", "h4", 0, [0.0, 0.0, 1.0, 1.0]);
    secret.payload.groups = vec!["hr".into()];
    let public = point("p", "p.md", "h6", 0, [0.0, 0.0, 1.0, 0.9]);
    acme.upsert(vec![secret, public]).await.unwrap();
    assert_eq!(acme.count().await.unwrap(), 2);
    assert_eq!(store.count().await.unwrap(), REMAINING);
    let versions = acme.document_versions(None, Some("c")).await.unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].groups, ["hr"]);
    let mine = store.document_versions(None, Some("c")).await.unwrap();
    assert_eq!(mine[0].groups, [EVERYONE]);

    let found = |visibility: Visibility| {
        let acme = acme.clone();
        let query = near_c.clone();
        async move {
            let mut docs: Vec<String> = acme
                .search(query, 10, &SearchFilter::visible(visibility))
                .await
                .unwrap()
                .into_iter()
                .map(|h| h.payload.doc_id)
                .collect();
            docs.sort();
            docs
        }
    };
    let eng = Visibility::Groups(vec!["eng".into()]);
    let hr = Visibility::Groups(vec!["hr".into(), "eng".into()]);
    assert_eq!(found(eng.clone()).await, ["p"]);
    assert_eq!(found(Visibility::Groups(vec![])).await, ["p"]);
    assert_eq!(found(hr.clone()).await, ["c", "p"]);
    assert_eq!(found(Visibility::All).await, ["c", "p"]);
    // The default tenant's own search never returns acme's points.
    assert!(
        store
            .search(near_c.clone(), 10, &everything)
            .await
            .unwrap()
            .iter()
            .all(|h| h.payload.doc_id != "p" && h.payload.groups == [EVERYONE])
    );

    // Deletes: not visible, not deleted; and never the other tenant's.
    assert_eq!(acme.delete_document("c", None, &eng).await.unwrap(), 0);
    assert_eq!(acme.delete_source("c.md", &eng).await.unwrap(), 0);
    assert_eq!(acme.delete_document("c", None, &hr).await.unwrap(), 1);
    assert_eq!(acme.delete_source("p.md", &eng).await.unwrap(), 1);
    assert_eq!(acme.count().await.unwrap(), 0);
    assert_eq!(store.count().await.unwrap(), REMAINING);
}

/// What a user checks after restoring a backup: the same answers. Each tenant's searches
/// (scores included) and statistics equal the source's; a damaged file and a store that is not
/// empty are refused without writing anything.
pub async fn snapshot(source: &StoreConfig, target: &StoreConfig, scratch: &std::path::Path) {
    let store = rag_store::open(source, DIM, MODEL).await.unwrap();
    store
        .upsert(vec![
            point("a", "hr/leave.md", "h1", 1, [0.0, 1.0, 0.0, 0.0]),
            point("a", "hr/leave.md", "h1", 0, [1.0, 0.0, 0.0, 0.0]),
            point("b", "it/vpn.txt", "h2", 0, [0.0, 0.0, 1.0, 0.0]),
        ])
        .await
        .unwrap();
    let acme = store.for_tenant("acme");
    acme.upsert(vec![point(
        "z",
        "acme/plan.md",
        "h9",
        0,
        [0.5, 0.5, 0.0, 0.0],
    )])
    .await
    .unwrap();
    store.flush().await.unwrap();

    let file = scratch.join("store.snapshot");
    let info = store.snapshot(&file).await.unwrap();
    assert_eq!(info.points, 4, "{info:?}");
    assert_eq!(
        (info.embedding_model.as_str(), info.vector_size),
        (MODEL, DIM)
    );

    // Damaged copies: cut short, and one byte changed inside.
    let bytes = std::fs::read(&file).unwrap();
    let cut = scratch.join("cut.snapshot");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let restored = rag_store::snapshot::restore(target, &cut).await;
    assert!(restored.is_err(), "a truncated snapshot was restored");
    let flipped = scratch.join("flipped.snapshot");
    let mut changed = bytes.clone();
    let middle = changed.len() / 2;
    changed[middle] ^= 0x40;
    std::fs::write(&flipped, &changed).unwrap();
    assert!(
        rag_store::snapshot::restore(target, &flipped)
            .await
            .is_err(),
        "a damaged snapshot was restored"
    );

    let restored = rag_store::snapshot::restore(target, &file).await.unwrap();
    assert_eq!(restored, info);
    let copy = rag_store::open(target, DIM, MODEL).await.unwrap();
    let copy_acme = copy.for_tenant("acme");
    for (original, restored) in [(&store, &copy), (&acme, &copy_acme)] {
        let (a, b) = (
            original.stats().await.unwrap(),
            restored.stats().await.unwrap(),
        );
        assert_eq!((a.documents, a.chunks), (b.documents, b.chunks));
        for (vector, text) in [
            ([0.9, 0.1, 0.0, 0.0], "leave"),
            ([0.0, 0.0, 1.0, 0.1], "vpn text"),
            ([0.5, 0.5, 0.0, 0.0], "plan"),
        ] {
            let all = SearchFilter::visible(Visibility::All);
            let seen = |hits: Vec<rag_store::Hit>| {
                hits.into_iter()
                    .map(|h| (h.payload, h.score.to_bits(), h.similarity.to_bits()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                seen(
                    original
                        .search(hybrid(vector, text), 5, &all)
                        .await
                        .unwrap()
                ),
                seen(
                    restored
                        .search(hybrid(vector, text), 5, &all)
                        .await
                        .unwrap()
                ),
                "{text:?} in tenant {}",
                original.tenant()
            );
        }
    }
    drop((copy, copy_acme));

    // Only into an empty store.
    let err = rag_store::snapshot::restore(target, &file)
        .await
        .expect_err("restored into a store that has points");
    assert!(err.to_string().contains("empty store"), "{err}");
}
