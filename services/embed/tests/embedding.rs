//! The real model: vectors must mean something, not just have the right shape.

use std::path::PathBuf;

use rag_embed::{EmbedConfig, Embedder};
use rag_store::cosine;

fn config() -> EmbedConfig {
    let models = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models");
    EmbedConfig {
        model_dir: models.join("embed/all-MiniLM-L6-v2"),
        onnxruntime: models.join("onnxruntime/libonnxruntime.so"),
        threads: 1,
        ..EmbedConfig::default()
    }
}

#[test]
fn paraphrases_score_far_above_unrelated_sentences() {
    let embedder = Embedder::load(&config()).expect("models: run scripts/fetch-models.sh");
    assert_eq!(embedder.dimension(), 384);
    let v = embedder
        .embed(vec![
            "How many vacation days do employees get each year?".into(),
            "Every employee receives 25 days of paid annual leave per year.".into(),
            "The VPN client shows error NWC-412 when the certificate expired.".into(),
            "Bananas are a good source of potassium.".into(),
        ])
        .unwrap();
    assert_eq!(v.len(), 4);
    let related = cosine(&v[0], &v[1]);
    let unrelated = cosine(&v[0], &v[3]);
    let other_topic = cosine(&v[0], &v[2]);
    assert!(related > 0.5, "paraphrase similarity {related}");
    assert!(unrelated < 0.2, "unrelated similarity {unrelated}");
    assert!(related > other_topic + 0.3, "{related} vs {other_topic}");
    let norm: f32 = v[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-3, "vectors are normalised: {norm}");
}

#[test]
fn same_text_gives_the_same_vector_alone_or_in_a_batch() {
    let embedder = Embedder::load(&config()).unwrap();
    let alone = embedder.embed(vec!["short".into()]).unwrap();
    let batch = embedder
        .embed(vec![
            "a much longer sentence that forces padding in the batch".into(),
            "short".into(),
        ])
        .unwrap();
    assert!(cosine(&alone[0], &batch[1]) > 0.999);
    assert!(embedder.embed(vec![]).unwrap().is_empty());
}

#[test]
fn missing_runtime_library_is_an_error_naming_the_path() {
    let mut c = config();
    c.model_dir = PathBuf::from("/nonexistent/model");
    let err = Embedder::load(&c).err().expect("must fail");
    assert!(err.to_string().contains("/nonexistent/model"), "{err}");
}
