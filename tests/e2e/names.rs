//! Names of documents sent over the API: one document per name whatever its Unicode spelling,
//! and no look-alike separators or invisible characters.

use rag_proto::v1 as pb;
use tonic::Code;

use crate::client::top_sources;
use crate::harness::Workspace;

#[tokio::test(flavor = "multi_thread")]
async fn composed_and_decomposed_spellings_of_a_name_are_one_document() {
    let ws = Workspace::new();
    let server = ws.serve().await;
    let mut client = server.client();
    let doc = |name: &str| pb::IngestDocumentRequest {
        file_name: name.into(),
        content: b"# Cafe\n\nThe staff cafe on floor 2 serves lunch from noon to two.\n".to_vec(),
        ..Default::default()
    };
    let decomposed = "menus/cafe\u{301}.md";
    let composed = "menus/caf\u{e9}.md";

    let first = client
        .ingest_document(doc(decomposed))
        .await
        .unwrap()
        .into_inner();
    assert!(!first.unchanged && first.chunks_written >= 1, "{first:?}");
    let second = client
        .ingest_document(doc(composed))
        .await
        .unwrap()
        .into_inner();
    assert!(second.unchanged, "{second:?}");
    assert_eq!(second.document_id, first.document_id);
    let stats = client
        .index_stats(pb::IndexStatsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.documents, 1, "{stats:?}");
    let top = top_sources(&server, "When does the staff cafe serve lunch?").await;
    assert_eq!(top[0].0, composed, "{top:?}");

    for (name, code_point) in [
        ("menus\u{2215}cafe.md", "U+2215"),
        ("menus\u{FF0F}cafe.md", "U+FF0F"),
        ("menus/\u{202E}dm.exe", "U+202E"),
        ("menus/ca\u{200B}fe.md", "U+200B"),
    ] {
        let err = client.ingest_document(doc(name)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{name:?}: {err:?}");
        assert!(err.message().contains("file_name"), "{err:?}");
        assert!(err.message().contains(code_point), "{err:?}");
    }
    server.stop();
}
