//! Synthetic chunks for measuring and testing the store alone, at sizes no corpus on this
//! machine reaches (a million chunks would take days to embed on two cores). Shaped like the
//! real thing where it matters to the engine: dense vectors are unit vectors clustered around
//! topics (as embeddings are; uniform noise would be the worst case for an HNSW graph, not the
//! usual one), sparse vectors draw terms from a skewed vocabulary as text does, and payloads
//! are the size of a real chunk's. Deterministic: point `i` is the same on every run.

use crate::{ChunkPayload, ChunkPoint, EVERYONE, Query, SparseVector, point_id};

/// Topics the vectors cluster around.
const TOPICS: u64 = 512;
/// Term ids of the sparse vectors: the lexical side drops stop words, so the most frequent
/// terms left are each in a few percent of chunks, not in all of them.
const FIRST_TERM: f64 = 100.0;
const VOCABULARY: f64 = 50_000.0;
/// Terms per chunk, and per query.
const CHUNK_TERMS: usize = 48;
const QUERY_TERMS: usize = 4;
/// Chunks per synthetic document.
const CHUNKS_PER_DOC: u64 = 8;
/// Stored text per chunk (bytes): the default chunk size.
const TEXT_BYTES: usize = 1000;

pub struct Synthetic {
    dim: usize,
    model: String,
    seed: u64,
    topics: Vec<Vec<f32>>,
}

impl Synthetic {
    pub fn new(dim: usize, model: &str, seed: u64) -> Self {
        let topics = (0..TOPICS)
            .map(|t| {
                let mut rng = Rng::new(seed ^ 0x0707_01c5 ^ t.wrapping_mul(0x9e37_79b9));
                unit((0..dim).map(|_| rng.gaussian()).collect())
            })
            .collect();
        Self {
            dim,
            model: model.to_owned(),
            seed,
            topics,
        }
    }

    /// Chunk `i`.
    pub fn point(&self, i: u64) -> ChunkPoint {
        let mut rng = self.rng(i);
        let vector = self.near(self.topic_of(i), 0.9, &mut rng);
        let terms: Vec<u32> = (0..CHUNK_TERMS).map(|_| term(&mut rng)).collect();
        let doc = i / CHUNKS_PER_DOC;
        let index = (i % CHUNKS_PER_DOC) as u32;
        let doc_id = format!("doc-{doc}");
        let doc_hash = format!("{:016x}", self.seed ^ doc);
        let mut text = String::with_capacity(TEXT_BYTES + 16);
        for t in terms.iter().cycle() {
            if text.len() >= TEXT_BYTES {
                break;
            }
            text.push_str(&format!("w{t} "));
        }
        ChunkPoint {
            id: point_id(&doc_id, index, &doc_hash),
            vector,
            lexical: sparse(terms, &mut rng),
            payload: ChunkPayload {
                source: format!("topic-{}/doc-{doc}.md", doc % 100),
                doc_id,
                root: "/synthetic".into(),
                doc_hash,
                page: 0,
                chunk_index: index,
                chunk_count: CHUNKS_PER_DOC as u32,
                chunk_hash: format!("{:016x}-{i}", self.seed),
                text,
                title: format!("Document {doc}"),
                heading: format!("Section {index}"),
                media_type: "text/markdown".into(),
                embedding_model: self.model.clone(),
                indexed_at_ms: 0,
                metadata: Default::default(),
                groups: vec![EVERYONE.into()],
            },
        }
    }

    /// A question about chunk `target`: near its vector, sharing a few of its terms.
    pub fn query(&self, target: u64, salt: u64) -> Query {
        let point = self.point(target);
        let mut rng = Rng::new(self.seed ^ salt.wrapping_mul(0xa076_1d64_78bd_642f) ^ target);
        let dense = self.near(&point.vector, 0.5, &mut rng);
        let picked = (0..QUERY_TERMS)
            .map(|_| point.lexical.indices[rng.below(point.lexical.indices.len() as u64) as usize])
            .collect();
        Query {
            dense,
            lexical: Some(sparse(picked, &mut rng)),
            identifiers: None,
            fusion: Default::default(),
        }
    }

    fn rng(&self, i: u64) -> Rng {
        Rng::new(
            self.seed
                .wrapping_add(i.wrapping_mul(0x2545_f491_4f6c_dd1d)),
        )
    }

    /// The chunks of one document share a topic, as they do in real documents.
    fn topic_of(&self, i: u64) -> &[f32] {
        let doc = i / CHUNKS_PER_DOC;
        &self.topics[(Rng::new(self.seed ^ doc).next() % TOPICS) as usize]
    }

    /// `centre` moved by noise of norm about `spread`, back on the unit sphere.
    fn near(&self, centre: &[f32], spread: f32, rng: &mut Rng) -> Vec<f32> {
        let scale = spread / (self.dim as f32).sqrt();
        unit(centre.iter().map(|c| c + scale * rng.gaussian()).collect())
    }
}

/// A term id, the low ids far more frequent than the high ones: log-uniform, which is Zipf's
/// law (frequency ∝ 1/rank) as text vocabularies follow it.
fn term(rng: &mut Rng) -> u32 {
    (FIRST_TERM * (VOCABULARY / FIRST_TERM).powf(rng.unit())) as u32
}

fn sparse(mut terms: Vec<u32>, rng: &mut Rng) -> SparseVector {
    terms.sort_unstable();
    terms.dedup();
    let values = terms.iter().map(|_| 0.5 + rng.unit() as f32).collect();
    SparseVector {
        indices: terms,
        values,
    }
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::MIN_POSITIVE);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

/// SplitMix64: small, fast, and the same everywhere (no dependency for a benchmark's dice).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Standard normal (Box–Muller).
    fn gaussian(&mut self) -> f32 {
        let u = self.unit().max(f64::MIN_POSITIVE);
        let v = self.unit();
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_deterministic_unit_vectors_with_sorted_terms() {
        let a = Synthetic::new(32, "m", 7);
        let b = Synthetic::new(32, "m", 7);
        let (p, q) = (a.point(123), b.point(123));
        assert_eq!(p.id, q.id);
        assert_eq!(p.vector, q.vector);
        assert!((p.vector.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-4);
        assert!(p.lexical.indices.windows(2).all(|w| w[0] < w[1]));
        assert!(p.payload.text.len() >= TEXT_BYTES);
        assert_ne!(a.point(124).id, p.id);
        // A query about a chunk is nearer to it than to a chunk of another topic.
        let query = a.query(123, 1);
        let other = (0..64)
            .map(|i| a.point(10_000 + i * 8))
            .find(|o| crate::cosine(&o.vector, &p.vector) < 0.5)
            .expect("a chunk of another topic");
        assert!(
            crate::cosine(&query.dense, &p.vector) > crate::cosine(&query.dense, &other.vector)
        );
    }
}
