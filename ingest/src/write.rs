//! chunks -> vectors -> points: the embedding stage and the write of each document version.
//!
//! Chunks of several documents are gathered into a window, looked up by content first (a chunk
//! whose text is already stored, or was embedded earlier in this run, reuses that vector), then
//! embedded in batches of similar length. A document is written as soon as all its chunks
//! have vectors: every point of the version, chunk 0 last as its commit marker, then the sweep
//! of any other version.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use rag_embed::Embedder;
use rag_store::{ChunkPayload, ChunkPoint, Store, Visibility, point_id};

use crate::batch;
use crate::config::IngestConfig;
use crate::counters;
use crate::error::IndexError;
use crate::manifest::Stat;
use crate::outcome::{EmbedStats, Outcome};
use crate::prepare::Ready;

/// Vectors embedded in this run kept for reuse; cleared when full (copies tend to be near).
const RUN_CACHE_MAX: usize = 8192;

/// A document that left the stage, written or not.
#[derive(Debug)]
pub(crate) struct Finished {
    pub source: String,
    /// Points of other versions removed after this one was written.
    pub points_deleted: u64,
    pub doc_hash: String,
    pub stat: Option<Stat>,
    pub result: Result<Outcome, IndexError>,
}

struct InFlight {
    doc: Ready,
    hashes: Vec<String>,
    vectors: Vec<Option<Vec<f32>>>,
    missing: usize,
}

pub(crate) struct VersionWriter {
    embedder: Arc<Embedder>,
    store: Arc<Store>,
    batch_size: usize,
    window: usize,
    by_length: bool,
    docs: HashMap<u64, InFlight>,
    next_id: u64,
    /// (document, chunk) pairs waiting for a vector, in arrival order.
    queue: VecDeque<(u64, usize)>,
    cache: HashMap<String, Vec<f32>>,
    pub stats: EmbedStats,
}

impl VersionWriter {
    pub fn new(embedder: Arc<Embedder>, store: Arc<Store>, config: &IngestConfig) -> Self {
        let batch_size = config.embed_batch.max(1);
        Self {
            embedder,
            store,
            batch_size,
            window: config.embed_window.max(batch_size),
            by_length: config.sort_by_length,
            docs: HashMap::new(),
            next_id: 0,
            queue: VecDeque::new(),
            cache: HashMap::new(),
            stats: EmbedStats::default(),
        }
    }

    /// Chunks waiting for a vector.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Whether enough chunks wait to fill a window.
    pub fn window_full(&self) -> bool {
        self.queue.len() >= self.window
    }

    /// Takes a document in. Chunks with a known vector get it now; a document that needs no
    /// embedding at all is written at once and returned. Errors: the store failed.
    pub async fn admit(&mut self, doc: Ready) -> Result<Vec<Finished>, IndexError> {
        let hashes: Vec<String> = doc
            .chunks
            .iter()
            .map(|c| blake3::hash(c.embed_text.as_bytes()).to_hex().to_string())
            .collect();
        let mut vectors: Vec<Option<Vec<f32>>> =
            hashes.iter().map(|h| self.cache.get(h).cloned()).collect();
        let mut wanted: Vec<String> = hashes
            .iter()
            .zip(&vectors)
            .filter(|(_, v)| v.is_none())
            .map(|(h, _)| h.clone())
            .collect();
        wanted.sort();
        wanted.dedup();
        if !wanted.is_empty() {
            let dimension = self.embedder.dimension();
            let stored = self.store.vectors_by_chunk_hash(wanted).await?;
            for (hash, vector) in hashes.iter().zip(vectors.iter_mut()) {
                if vector.is_none() {
                    *vector = stored.get(hash).filter(|v| v.len() == dimension).cloned();
                }
            }
        }
        let missing = vectors.iter().filter(|v| v.is_none()).count();
        self.reused((vectors.len() - missing) as u64);

        let id = self.next_id;
        self.next_id += 1;
        self.queue.extend(
            vectors
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_none())
                .map(|(i, _)| (id, i)),
        );
        self.docs.insert(
            id,
            InFlight {
                doc,
                hashes,
                vectors,
                missing,
            },
        );
        if missing == 0 {
            return Ok(vec![self.write(id).await?]);
        }
        Ok(Vec::new())
    }

    /// Embeds the next window of queued chunks and writes the documents that became complete.
    /// Errors: the store failed (an embedding failure fails only the documents in the window).
    pub async fn embed_next(&mut self) -> Result<Vec<Finished>, IndexError> {
        let take = self.queue.len().min(self.window);
        let mut users: HashMap<String, Vec<(u64, usize)>> = HashMap::new();
        let mut unique: Vec<(String, String, u32)> = Vec::new();
        // Every document with a chunk in this window: any of them may be complete after it,
        // including one whose chunks here were all found in the run cache.
        let mut touched: Vec<u64> = Vec::new();
        let mut reused = 0;
        for (id, index) in self.queue.drain(..take) {
            let Some(doc) = self.docs.get_mut(&id) else {
                continue;
            };
            touched.push(id);
            let hash = &doc.hashes[index];
            if let Some(vector) = self.cache.get(hash) {
                doc.vectors[index] = Some(vector.clone());
                doc.missing -= 1;
                reused += 1;
                continue;
            }
            let entry = users.entry(hash.clone()).or_default();
            if entry.is_empty() {
                let chunk = &doc.doc.chunks[index];
                unique.push((hash.clone(), chunk.embed_text.clone(), chunk.tokens));
            } else {
                reused += 1;
            }
            entry.push((id, index));
        }
        self.reused(reused);

        let lengths: Vec<u32> = unique.iter().map(|(_, _, t)| *t).collect();
        let batches = batch::plan(&lengths, self.batch_size, self.by_length);
        // The texts move into the embedding call; `unique` keeps hashes and lengths.
        let texts: Vec<Vec<String>> = batches
            .iter()
            .map(|b| {
                b.iter()
                    .map(|&i| std::mem::take(&mut unique[i].1))
                    .collect()
            })
            .collect();
        let embedder = self.embedder.clone();
        let started = std::time::Instant::now();
        let embedded = tokio::task::spawn_blocking(move || {
            texts
                .into_iter()
                .map(|t| embedder.embed(t))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| IndexError::Folder(format!("embedding task: {e}")))?;
        self.stats.embed_seconds += started.elapsed().as_secs_f64();

        touched.sort_unstable();
        touched.dedup();
        let embedded = match embedded {
            Ok(embedded) => embedded,
            Err(source) => {
                // Which text broke the call is unknown: every document in the window fails.
                let mut finished = Vec::new();
                for id in touched {
                    if let Some(flight) = self.docs.remove(&id) {
                        self.queue.retain(|(d, _)| *d != id);
                        finished.push(Finished {
                            points_deleted: 0,
                            result: Err(IndexError::Embed {
                                path: flight.doc.source.clone(),
                                reason: source.to_string(),
                            }),
                            source: flight.doc.source,
                            doc_hash: flight.doc.doc_hash,
                            stat: flight.doc.stat,
                        });
                    }
                }
                return Ok(finished);
            }
        };

        if self.cache.len() + unique.len() > RUN_CACHE_MAX {
            self.cache.clear();
        }
        for (batch, vectors) in batches.iter().zip(embedded) {
            self.stats.padding.add(batch::padding(&lengths, batch));
            for (&i, vector) in batch.iter().zip(vectors) {
                let hash = &unique[i].0;
                for &(id, index) in &users[hash] {
                    let doc = self
                        .docs
                        .get_mut(&id)
                        .expect("documents leave only when complete");
                    doc.vectors[index] = Some(vector.clone());
                    doc.missing -= 1;
                }
                self.cache.insert(hash.clone(), vector);
            }
        }
        self.stats.chunks_embedded += unique.len() as u64;
        counters::chunks_embedded(unique.len() as u64);

        let mut finished = Vec::new();
        for id in touched {
            if self.docs.get(&id).is_some_and(|d| d.missing == 0) {
                finished.push(self.write(id).await?);
            }
        }
        Ok(finished)
    }

    fn reused(&mut self, chunks: u64) {
        self.stats.chunks_reused += chunks;
        counters::chunks_reused(chunks);
    }

    /// Embeds and writes everything still queued.
    pub async fn finish(&mut self) -> Result<Vec<Finished>, IndexError> {
        let mut finished = Vec::new();
        while self.queued() > 0 {
            finished.extend(self.embed_next().await?);
        }
        debug_assert!(self.docs.is_empty(), "every admitted document leaves");
        Ok(finished)
    }

    /// Writes the complete document `id`: its points, chunk 0 last, then the sweep of every
    /// other version.
    async fn write(&mut self, id: u64) -> Result<Finished, IndexError> {
        let InFlight {
            doc,
            hashes,
            vectors,
            ..
        } = self.docs.remove(&id).expect("written once");
        let n = doc.chunks.len() as u32;
        let model = self.embedder.model_name().to_owned();
        let indexed_at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut points: Vec<ChunkPoint> = doc
            .chunks
            .iter()
            .zip(hashes)
            .zip(vectors)
            .enumerate()
            .map(|(i, ((chunk, chunk_hash), vector))| ChunkPoint {
                id: point_id(&doc.doc_id, i as u32, &doc.doc_hash),
                vector: vector.expect("complete documents have every vector"),
                lexical: rag_lexical::document_vector(&chunk.embed_text),
                payload: ChunkPayload {
                    doc_id: doc.doc_id.clone(),
                    source: doc.source.clone(),
                    root: doc.root.clone(),
                    doc_hash: doc.doc_hash.clone(),
                    page: chunk.page,
                    chunk_index: i as u32,
                    chunk_count: n,
                    chunk_hash,
                    text: chunk.text.clone(),
                    title: doc.title.clone(),
                    heading: chunk.heading.clone(),
                    media_type: doc.media.as_mime().to_owned(),
                    embedding_model: model.clone(),
                    indexed_at_ms,
                    metadata: doc.metadata.clone(),
                    groups: doc.groups.clone(),
                },
            })
            .collect();
        // Chunk 0 last: the commit marker. The store applies the points in order (in batches of
        // its own), so the marker is stored only once every other chunk is.
        points.rotate_left(1);
        self.store.upsert(points).await?;
        let points_deleted = self
            .store
            .delete_document(&doc.doc_id, Some(&doc.doc_hash), &Visibility::All)
            .await?;
        Ok(Finished {
            points_deleted,
            source: doc.source,
            doc_hash: doc.doc_hash,
            stat: doc.stat,
            result: Ok(Outcome::Indexed {
                chunks: n,
                pages: doc.pages,
            }),
        })
    }
}
