//! The domain operations, written once over any [`Backend`].

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::backend::{
    Backend, Condition, Filter, NamedVector, NewPoint, Payload, PointKey, QueryRequest, Record,
    ScrollRequest, VectorData,
};
use crate::fusion::{List, Standing, prefetch_limit, search_scores};
use crate::migrations::{self, Target};
use crate::point::{
    DEFAULT_TENANT, EVERYONE, cosine, in_tenant, parse_payload, prefix_keys, stored_payload,
};
use crate::{
    ChunkPoint, DocumentVersion, Hit, Query, Result, SearchFilter, StoreError, Visibility, fields,
    migrate,
};

/// Points per upsert request: keeps each request a few MiB (far below a server's message
/// limit) whatever the size of the document being written.
const UPSERT_BATCH: usize = 256;

/// Points per scroll page when reading payloads only.
const SCROLL_PAGE: usize = 1024;

/// The vector store: chunks with their dense and lexical vectors, over the configured backend,
/// as one tenant sees it. Every read, count and delete is filtered by the tenant inside the
/// engine, and every write is stamped with it: no operation of this handle can reach another
/// tenant's points. [`Store::for_tenant`] makes the handle of another tenant over the same
/// backend. Calls never block the async runtime.
pub struct Store {
    pub(crate) backend: Arc<dyn Backend>,
    dense: String,
    lexical: Option<String>,
    tenant: String,
    /// Writes made through this process, per tenant: shared by every tenant's handle.
    writes: Arc<std::sync::Mutex<std::collections::HashMap<String, u64>>>,
}

/// What `rag status` reports about an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexStats {
    /// Complete document versions (commit marker stored): one per document, except that a
    /// document caught in the middle of a re-index counts once per version.
    pub documents: u64,
    /// Stored points, one per chunk.
    pub chunks: u64,
    pub schema_version: u32,
    pub embedding_model: String,
    pub vector_size: usize,
    /// Which backend, and where ("embedded store /var/lib/rag", "collection ... on Qdrant
    /// server ...").
    pub backend: String,
}

impl Store {
    /// Migrates `backend` to the latest schema for `target`, then serves it.
    /// The handle is the default tenant's.
    pub(crate) async fn open(backend: Box<dyn Backend>, target: &Target) -> Result<Self> {
        migrate::migrate(backend.as_ref(), target).await?;
        Ok(Self {
            backend: Arc::from(backend),
            dense: migrations::dense_vector_name()?,
            lexical: migrations::lexical_vector_name()?,
            tenant: DEFAULT_TENANT.to_owned(),
            writes: Default::default(),
        })
    }

    /// The same store as `tenant` sees it. Cheap: the backend is shared.
    pub fn for_tenant(&self, tenant: &str) -> Arc<Store> {
        Arc::new(Self {
            backend: self.backend.clone(),
            dense: self.dense.clone(),
            lexical: self.lexical.clone(),
            tenant: tenant.to_owned(),
            writes: self.writes.clone(),
        })
    }

    /// How many writes (upserts, deletes) this tenant's documents have had through this process,
    /// when this process is the store's only writer; `None` when others may write too (a Qdrant
    /// server). What was read at one count is still true while the count is the same.
    pub fn write_epoch(&self) -> Option<u64> {
        if !self.backend.exclusive() {
            return None;
        }
        let writes = self.writes.lock().unwrap_or_else(|e| e.into_inner());
        Some(writes.get(&self.tenant).copied().unwrap_or(0))
    }

    /// Counts a write to this tenant's documents, before and after it is made: a reader that
    /// saw the count before the write cannot keep what it read past it.
    fn wrote(&self) {
        let mut writes = self.writes.lock().unwrap_or_else(|e| e.into_inner());
        *writes.entry(self.tenant.clone()).or_insert(0) += 1;
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// `filter`, narrowed to this handle's tenant. Every operation goes through here.
    fn scoped(&self, filter: Filter) -> Filter {
        filter.and(Condition::keyword(fields::TENANT, &self.tenant))
    }

    /// Inserts or overwrites points by id, in order.
    pub async fn upsert(&self, points: Vec<ChunkPoint>) -> Result<()> {
        let mut points = points.into_iter().peekable();
        // One batch after another, each applied before the next is sent, so a later point
        // overwrites an earlier one with the same id.
        self.wrote();
        while points.peek().is_some() {
            let batch = points
                .by_ref()
                .take(UPSERT_BATCH)
                .map(|p| self.new_point(p))
                .collect();
            let written = self.backend.upsert(batch).await;
            self.wrote();
            written?;
        }
        Ok(())
    }

    fn new_point(&self, point: ChunkPoint) -> NewPoint {
        let mut vectors = vec![NamedVector {
            name: self.dense.clone(),
            vector: VectorData::Dense(point.vector),
        }];
        // Points written before the lexical migration, or with no terms, have no sparse vector.
        if let Some(name) = &self.lexical
            && !point.lexical.is_empty()
        {
            vectors.push(NamedVector {
                name: name.clone(),
                vector: VectorData::Sparse(point.lexical),
            });
        }
        NewPoint {
            id: in_tenant(&self.tenant, point.id),
            vectors,
            payload: stored_payload(&point.payload, &self.tenant),
        }
    }

    /// The best `limit` chunks for `query`, best first. With lexical terms: the dense, the
    /// lexical (IDF-weighted) and the identifier rankings, each of its best candidates, fused
    /// here as `query.fusion` says (the same for every backend); without: dense only. Equal
    /// scores are ordered by document id, then chunk index, never by the store's layout.
    pub async fn search(
        &self,
        query: Query,
        limit: usize,
        filter: &SearchFilter,
    ) -> Result<Vec<Hit>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        metrics::counter!(crate::SEARCHES).increment(1);
        let filter = self.scoped(search_filter(filter));
        let mut lists = vec![(
            List::Dense,
            NamedVector {
                name: self.dense.clone(),
                vector: VectorData::Dense(query.dense.clone()),
            },
        )];
        if let Some(name) = &self.lexical {
            for (list, terms) in [
                (List::Lexical, &query.lexical),
                (List::Identifiers, &query.identifiers),
            ] {
                if let Some(terms) = terms.as_ref().filter(|t| !t.is_empty()) {
                    lists.push((
                        list,
                        NamedVector {
                            name: name.clone(),
                            vector: VectorData::Sparse(terms.clone()),
                        },
                    ));
                }
            }
        }
        // Deeper than `limit` even for a dense search: chunks with equal scores (copies of a
        // text) at the cut are then chosen by the stable order, not by the engine.
        let depth = prefetch_limit(limit);
        let kinds: Vec<List> = lists.iter().map(|(k, _)| *k).collect();
        // The rankings are independent: asked together, a search waits for the slowest one
        // rather than for their sum.
        let rankings = futures_util::future::try_join_all(lists.into_iter().map(|(_, nearest)| {
            self.backend.query(QueryRequest {
                nearest,
                filter: filter.clone(),
                limit: depth,
                with_vector: self.dense.clone(),
            })
        }))
        .await?;
        let mut candidates: Vec<Candidate> = Vec::new();
        // Within a tenant a point id is its (document, version, chunk).
        let mut seen: HashMap<PointKey, usize> = HashMap::new();
        for (i, found) in rankings.into_iter().enumerate() {
            // Equal engine scores share a rank (the first one's): the engine's order among
            // them is its layout, which must not reach the fused score.
            let mut rank = 0;
            let mut previous = None;
            for (position, scored) in found.into_iter().enumerate() {
                if previous != Some(scored.score) {
                    rank = position;
                    previous = Some(scored.score);
                }
                let at = *seen.entry(scored.id).or_insert_with(|| {
                    let vector = scored.vector.unwrap_or_default();
                    candidates.push(Candidate {
                        id: scored.id,
                        standing: Standing {
                            similarity: cosine(&query.dense, &vector),
                            places: vec![None; kinds.len()],
                        },
                        vector,
                    });
                    candidates.len() - 1
                });
                candidates[at].standing.places[i] = Some((rank, scored.score));
            }
        }
        let standings: Vec<&Standing> = candidates.iter().map(|c| &c.standing).collect();
        let scores = search_scores(&query.fusion, &kinds, &standings);
        let mut ranked: Vec<(f32, Candidate)> = scores.into_iter().zip(candidates).collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        self.best_hits(ranked, limit).await
    }

    /// The best `limit` of `ranked` (ordered by score, best first) as hits, in the stable
    /// order. Payloads are read only for the candidates that can make the cut, those scoring
    /// at least the `limit`-th (ties at the cut included, so that the tie-break by document
    /// and chunk stays exact). A candidate deleted since it was ranked is skipped and the cut
    /// moves down.
    async fn best_hits(&self, ranked: Vec<(f32, Candidate)>, limit: usize) -> Result<Vec<Hit>> {
        let mut hits = Vec::new();
        let mut rest = ranked.into_iter().peekable();
        while hits.len() < limit {
            // The next candidates down to the one that would fill `limit`, and all tied with it.
            let mut batch: Vec<(f32, Candidate)> = rest.by_ref().take(limit - hits.len()).collect();
            let Some(&(cut, _)) = batch.last() else {
                break;
            };
            while let Some(c) = rest.next_if(|(score, _)| *score >= cut) {
                batch.push(c);
            }
            let mut payloads: HashMap<PointKey, Payload> = self
                .backend
                .payloads(batch.iter().map(|(_, c)| c.id).collect())
                .await?
                .into_iter()
                .collect();
            for (score, candidate) in batch {
                if let Some(payload) = payloads.remove(&candidate.id) {
                    hits.push(Hit {
                        score,
                        similarity: candidate.standing.similarity,
                        vector: candidate.vector,
                        payload: parse_payload(payload)?,
                    });
                }
            }
        }
        order(&mut hits);
        hits.truncate(limit);
        Ok(hits)
    }

    /// One entry per (document, version) whose commit marker (chunk 0) is stored, optionally
    /// only those indexed from folder `root`, or only those of document `doc_id`.
    pub async fn document_versions(
        &self,
        root: Option<&str>,
        doc_id: Option<&str>,
    ) -> Result<Vec<DocumentVersion>> {
        let mut filter = Filter::must(Condition::Integer {
            field: fields::CHUNK_INDEX,
            value: 0,
        });
        if let Some(root) = root {
            filter = filter.and(Condition::keyword(fields::ROOT, root));
        }
        if let Some(doc_id) = doc_id {
            filter = filter.and(Condition::keyword(fields::DOC_ID, doc_id));
        }
        let filter = self.scoped(filter);
        let fields = vec![
            fields::DOC_ID,
            fields::SOURCE,
            fields::ROOT,
            fields::DOC_HASH,
            fields::CHUNK_COUNT,
            fields::GROUPS,
        ];
        let versions: BTreeSet<DocumentVersion> = self
            .scroll_all(filter, fields)
            .await?
            .iter()
            .map(|r| DocumentVersion {
                doc_id: text(r, fields::DOC_ID),
                source: text(r, fields::SOURCE),
                root: text(r, fields::ROOT),
                doc_hash: text(r, fields::DOC_HASH),
                chunk_count: r
                    .payload
                    .get(fields::CHUNK_COUNT)
                    .and_then(|v| v.as_u64())
                    .unwrap_or(0) as u32,
                groups: r
                    .payload
                    .get(fields::GROUPS)
                    .and_then(|v| v.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|g| g.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_else(|| vec![EVERYONE.to_owned()]),
            })
            .collect();
        Ok(versions.into_iter().collect())
    }

    /// A stored vector for each of `chunk_hashes` that some stored chunk has, by hash: the
    /// embedding of a text depends only on the text (one model per store), so a chunk already
    /// stored under another document or version need not be embedded again.
    pub async fn vectors_by_chunk_hash(
        &self,
        chunk_hashes: Vec<String>,
    ) -> Result<HashMap<String, Vec<f32>>> {
        let mut found = HashMap::new();
        if chunk_hashes.is_empty() {
            return Ok(found);
        }
        let wanted = chunk_hashes.len();
        let filter = self.scoped(Filter::must(Condition::AnyKeyword {
            field: fields::CHUNK_HASH,
            values: chunk_hashes,
        }));
        let mut offset = None;
        // Copies share a hash, so a page can hold fewer distinct hashes than points.
        loop {
            let page = self
                .backend
                .scroll(ScrollRequest {
                    filter: filter.clone(),
                    fields: vec![fields::CHUNK_HASH],
                    with_vector: Some(self.dense.clone()),
                    limit: wanted.clamp(16, 1024),
                    offset,
                })
                .await?;
            for record in page.records {
                let hash = record
                    .payload
                    .get(fields::CHUNK_HASH)
                    .and_then(|v| v.as_str());
                if let (Some(hash), Some(vector)) = (hash, record.vector) {
                    found.entry(hash.to_owned()).or_insert(vector);
                }
            }
            match page.next {
                Some(next) if found.len() < wanted => offset = Some(next),
                _ => return Ok(found),
            }
        }
    }

    /// Deletes every chunk of `doc_id` that `visibility` allows, except those of version
    /// `keep_hash` when given. Returns how many points were deleted.
    pub async fn delete_document(
        &self,
        doc_id: &str,
        keep_hash: Option<&str>,
        visibility: &Visibility,
    ) -> Result<u64> {
        let mut filter = Filter::must(Condition::keyword(fields::DOC_ID, doc_id));
        if let Some(hash) = keep_hash {
            filter = filter.and_not(Condition::keyword(fields::DOC_HASH, hash));
        }
        self.delete_where(visible(filter, visibility)).await
    }

    /// Deletes every chunk whose source path is exactly `source` that `visibility` allows.
    /// Returns how many.
    pub async fn delete_source(&self, source: &str, visibility: &Visibility) -> Result<u64> {
        let filter = Filter::must(Condition::keyword(fields::SOURCE, source));
        self.delete_where(visible(filter, visibility)).await
    }

    /// Number of stored points (chunks) of the tenant.
    pub async fn count(&self) -> Result<u64> {
        self.backend.count(&self.scoped(Filter::default())).await
    }

    /// Number of points indexed from folder `root`.
    pub async fn count_in_root(&self, root: &str) -> Result<u64> {
        self.backend
            .count(&self.scoped(Filter::must(Condition::keyword(fields::ROOT, root))))
            .await
    }

    /// Every (doc_id, doc_hash) that has at least one point under `root`, commit marker or
    /// not. Reads an id pair per point: for finding what an interrupted run left behind, when
    /// [`Store::count_in_root`] shows more points than the complete versions hold.
    pub async fn point_versions(&self, root: &str) -> Result<BTreeSet<(String, String)>> {
        let filter = self.scoped(Filter::must(Condition::keyword(fields::ROOT, root)));
        let records = self
            .scroll_all(filter, vec![fields::DOC_ID, fields::DOC_HASH])
            .await?;
        Ok(records
            .iter()
            .map(|r| (text(r, fields::DOC_ID), text(r, fields::DOC_HASH)))
            .collect())
    }

    /// Makes everything written so far durable.
    pub async fn flush(&self) -> Result<()> {
        self.backend.flush().await
    }

    /// Builds the search indexes for what was written (all tenants: segments are shared),
    /// blocking until done; searches and writes go on meanwhile. Without it the embedded engine
    /// searches new points by brute force, which at a million chunks is slow. Callers are the
    /// writers (the ingest command, the worker, the service's background task), never a query.
    /// `true` when anything changed. The server optimises by itself: this waits until it has.
    /// Safe to interrupt: a crash leaves the segments it was replacing in place.
    pub async fn optimize(&self) -> Result<bool> {
        self.backend.optimize().await
    }

    /// The chunks `indexes` of version `doc_hash` of document `doc_id` that exist and that
    /// `visibility` allows, in order: a chunk in its document's context (the source viewer).
    /// Read by id, as the ids follow from document, version and index.
    pub async fn chunks(
        &self,
        doc_id: &str,
        doc_hash: &str,
        indexes: std::ops::Range<u32>,
        visibility: &Visibility,
    ) -> Result<Vec<crate::ChunkPayload>> {
        let ids = indexes
            .map(|i| {
                PointKey::Uuid(in_tenant(
                    &self.tenant,
                    crate::point::point_id(doc_id, i, doc_hash),
                ))
            })
            .collect();
        let mut chunks = Vec::new();
        for (_, payload) in self.backend.payloads(ids).await? {
            let chunk = parse_payload(payload)?;
            if chunk.doc_id == doc_id
                && chunk.doc_hash == doc_hash
                && visibility.permits(&chunk.groups)
            {
                chunks.push(chunk);
            }
        }
        chunks.sort_by_key(|c| c.chunk_index);
        Ok(chunks)
    }

    /// Removes the whole collection, every tenant's points with it (server backend only; the
    /// embedded store is its data directory).
    pub async fn drop_collection(&self) -> Result<()> {
        self.backend.drop_collection().await
    }

    /// Size and identity of the index, for `rag status`.
    pub async fn stats(&self) -> Result<IndexStats> {
        let schema = self.backend.schema().await?.ok_or_else(|| {
            StoreError::Operation(format!("{}: no schema record", self.backend.describe()))
        })?;
        Ok(IndexStats {
            // Counted, not scrolled: `rag status` (a compose health check) calls this often, and
            // a count stays cheap on a large collection.
            documents: self
                .backend
                .count(&self.scoped(Filter::must(Condition::Integer {
                    field: fields::CHUNK_INDEX,
                    value: 0,
                })))
                .await?,
            chunks: self.count().await?,
            schema_version: schema.version,
            embedding_model: schema.embedding_model,
            vector_size: schema.vector_size,
            backend: self.backend.describe(),
        })
    }

    /// Counted first, because neither engine says how many points a delete by filter removed.
    async fn delete_where(&self, filter: Filter) -> Result<u64> {
        // Both engines read an empty filter as "everything": never let one through.
        if filter == Filter::default() {
            return Err(StoreError::Operation(
                "refusing to delete with an empty filter (it would delete every point)".into(),
            ));
        }
        let filter = self.scoped(filter);
        let n = self.backend.count(&filter).await?;
        if n > 0 {
            self.wrote();
            let deleted = self.backend.delete(&filter).await;
            self.wrote();
            deleted?;
        }
        Ok(n)
    }

    /// The payload `fields` of every point matching `filter`, page by page.
    async fn scroll_all(&self, filter: Filter, fields: Vec<&'static str>) -> Result<Vec<Record>> {
        let mut all = Vec::new();
        let mut offset = None;
        loop {
            let page = self
                .backend
                .scroll(ScrollRequest {
                    filter: filter.clone(),
                    fields: fields.clone(),
                    with_vector: None,
                    limit: SCROLL_PAGE,
                    offset,
                })
                .await?;
            all.extend(page.records);
            match page.next {
                Some(next) => offset = Some(next),
                None => return Ok(all),
            }
        }
    }
}

/// A chunk found by at least one ranking, with where it stands in each.
#[derive(Debug, Clone)]
struct Candidate {
    id: PointKey,
    vector: Vec<f32>,
    standing: Standing,
}

/// Best first; equal scores by document id, then chunk index, then version, never by the
/// store's layout.
fn order(hits: &mut [Hit]) {
    hits.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.payload.doc_id.cmp(&b.payload.doc_id))
            .then_with(|| a.payload.chunk_index.cmp(&b.payload.chunk_index))
            .then_with(|| a.payload.doc_hash.cmp(&b.payload.doc_hash))
    });
}

/// `filter`, narrowed to the documents `visibility` allows: those open to everyone and those
/// naming one of the caller's groups.
fn visible(filter: Filter, visibility: &Visibility) -> Filter {
    match visibility {
        Visibility::All => filter,
        Visibility::Groups(groups) => filter.and(Condition::AnyKeyword {
            field: fields::GROUPS,
            values: std::iter::once(EVERYONE.to_owned())
                .chain(groups.iter().cloned())
                .collect(),
        }),
    }
}

/// A search filter as conditions on the stored payload: a path prefix becomes an exact match
/// on `path_prefixes` (see [`crate::point::stored_payload`]).
fn search_filter(filter: &SearchFilter) -> Filter {
    let mut out = visible(Filter::default(), &filter.visibility);
    let keys = filter
        .path_prefix
        .as_deref()
        .map(prefix_keys)
        .unwrap_or_default();
    if !keys.is_empty() {
        out = out.and(Condition::AnyKeyword {
            field: fields::PATH_PREFIXES,
            values: keys,
        });
    }
    if !filter.doc_ids.is_empty() {
        out = out.and(Condition::AnyKeyword {
            field: fields::DOC_ID,
            values: filter.doc_ids.clone(),
        });
    }
    out
}

fn text(record: &Record, field: &str) -> String {
    record
        .payload
        .get(field)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ChunkPayload;
    use crate::fusion::{Fusion, FusionMethod};

    /// A candidate with the payload a search would read for it.
    fn candidate(
        doc: &str,
        chunk: u32,
        similarity: f32,
        lists: &[Option<usize>],
    ) -> (Candidate, ChunkPayload) {
        let mut payload = crate::point::tests::sample_payload("a.md");
        payload.doc_id = doc.into();
        payload.chunk_index = chunk;
        let candidate = Candidate {
            id: PointKey::Uuid(crate::point::point_id(doc, chunk, &payload.doc_hash)),
            vector: Vec::new(),
            standing: Standing {
                similarity,
                // Engine scores that fall with the rank, as every ranking's do.
                places: lists
                    .iter()
                    .map(|r| r.map(|r| (r, 10.0 - r as f32)))
                    .collect(),
            },
        };
        (candidate, payload)
    }

    /// What a search returns for these candidates, all of them.
    fn fuse(found: Vec<(Candidate, ChunkPayload)>, kinds: &[List], fusion: &Fusion) -> Vec<Hit> {
        let standings: Vec<&Standing> = found.iter().map(|(c, _)| &c.standing).collect();
        let scores = search_scores(fusion, kinds, &standings);
        let mut hits: Vec<Hit> = found
            .into_iter()
            .zip(scores)
            .map(|((c, payload), score)| Hit {
                score,
                similarity: c.standing.similarity,
                vector: c.vector,
                payload,
            })
            .collect();
        order(&mut hits);
        hits
    }

    fn rrf() -> Fusion {
        Fusion {
            method: FusionMethod::Rrf,
            dense_weight: 1.0,
            lexical_weight: 1.0,
            identifier_weight: 1.0,
        }
    }

    fn ranked_keys(hits: &[Hit]) -> Vec<(String, u32)> {
        hits.iter()
            .map(|h| (h.payload.doc_id.clone(), h.payload.chunk_index))
            .collect()
    }

    fn keys(pairs: &[(&str, u32)]) -> Vec<(String, u32)> {
        pairs.iter().map(|(d, c)| (d.to_string(), *c)).collect()
    }

    #[test]
    fn equal_scores_are_ordered_by_document_then_chunk_whatever_the_engine_order() {
        // Dense only: three copies of one text (equal similarity) and a better chunk.
        let dense = vec![
            candidate("b", 0, 0.5, &[Some(1)]),
            candidate("a", 1, 0.5, &[Some(2)]),
            candidate("c", 0, 0.9, &[Some(0)]),
            candidate("a", 0, 0.5, &[Some(3)]),
        ];
        let expected = keys(&[("c", 0), ("a", 0), ("a", 1), ("b", 0)]);
        let mut reversed = dense.clone();
        reversed.reverse();
        for candidates in [dense, reversed] {
            let hits = fuse(candidates, &[List::Dense], &rrf());
            assert_eq!(ranked_keys(&hits), expected);
            assert_eq!(hits[0].score, 0.9, "a dense search scores by similarity");
        }
        // Hybrid: first of the dense ranking only and first of the lexical ranking only tie.
        let kinds = [List::Dense, List::Lexical];
        let hybrid = vec![
            candidate("z", 4, 0.8, &[Some(0), None]),
            candidate("y", 2, 0.1, &[None, Some(0)]),
            candidate("y", 1, 0.1, &[None, Some(0)]),
        ];
        let mut reversed = hybrid.clone();
        reversed.reverse();
        for candidates in [hybrid, reversed] {
            let hits = fuse(candidates, &kinds, &rrf());
            assert_eq!(ranked_keys(&hits), keys(&[("y", 1), ("y", 2), ("z", 4)]));
            assert!(hits.iter().all(|h| h.score == hits[0].score));
        }
    }

    #[test]
    fn weights_decide_between_the_rankings() {
        let kinds = [List::Dense, List::Lexical, List::Identifiers];
        // "d" leads the dense ranking, "l" the lexical one; "i" is second in both and first
        // in the identifier ranking.
        let candidates = vec![
            candidate("d", 0, 0.9, &[Some(0), Some(2), None]),
            candidate("l", 0, 0.5, &[Some(2), Some(0), None]),
            candidate("i", 0, 0.6, &[Some(1), Some(1), Some(0)]),
        ];
        let fused = |fusion: Fusion| {
            ranked_keys(&fuse(candidates.clone(), &kinds, &fusion))[0]
                .0
                .clone()
        };
        assert_eq!(fused(rrf()), "i");
        let dense_led = Fusion {
            dense_weight: 3.0,
            identifier_weight: 0.0,
            ..rrf()
        };
        assert_eq!(fused(dense_led), "d");
        let lexical_led = Fusion {
            lexical_weight: 3.0,
            identifier_weight: 0.0,
            ..rrf()
        };
        assert_eq!(fused(lexical_led), "l");
        // Score fusion: "d" has the best similarity; "l" the best lexical score (10 vs 9 and 8).
        let scores = |dense_weight, lexical_weight| Fusion {
            method: FusionMethod::Score,
            dense_weight,
            lexical_weight,
            identifier_weight: 0.0,
        };
        assert_eq!(fused(scores(1.0, 0.0)), "d");
        // Lexical only: "l" scores 1, "i" 0.9, "d" 0.8.
        assert_eq!(fused(scores(0.0, 1.0)), "l");
        let hits = fuse(candidates.clone(), &kinds, &scores(1.0, 1.0));
        // Dense normalised over 0.5..0.9: d 1.0, i 0.25, l 0.0; plus lexical: d 1.8, l 1.0.
        assert_eq!(ranked_keys(&hits)[0].0, "d");
        assert!((hits[0].score - 1.8).abs() < 1e-5, "{}", hits[0].score);
    }

    #[test]
    fn search_filter_uses_prefix_keys_and_doc_ids() {
        assert!(search_filter(&SearchFilter::visible(Visibility::All)).is_empty());
        let only_root = SearchFilter {
            path_prefix: Some(" / ".into()),
            doc_ids: Vec::new(),
            visibility: Visibility::All,
        };
        assert!(search_filter(&only_root).is_empty());
        let filter = search_filter(&SearchFilter {
            path_prefix: Some("hr/".into()),
            doc_ids: vec!["d1".into()],
            visibility: Visibility::Groups(vec!["eng".into()]),
        });
        assert_eq!(
            filter.must,
            [
                Condition::AnyKeyword {
                    field: fields::GROUPS,
                    values: vec![EVERYONE.into(), "eng".into()],
                },
                Condition::AnyKeyword {
                    field: fields::PATH_PREFIXES,
                    values: vec!["hr".into(), "hr/".into()],
                },
                Condition::AnyKeyword {
                    field: fields::DOC_ID,
                    values: vec!["d1".into()],
                },
            ]
        );
        assert!(filter.must_not.is_empty());
    }
}
