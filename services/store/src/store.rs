//! The domain operations, written once over any [`Backend`].

use std::collections::{BTreeSet, HashMap};

use crate::backend::{
    Backend, Condition, Filter, NamedVector, NewPoint, QueryRequest, Ranking, Record,
    ScrollRequest, VectorData,
};
use crate::migrations::{self, Target};
use crate::point::{RRF_K, cosine, parse_payload, prefetch_limit, prefix_keys, stored_payload};
use crate::{
    ChunkPoint, DocumentVersion, Hit, Query, Result, SearchFilter, StoreError, fields, migrate,
};

/// Points per upsert request: keeps each request a few MiB (far below a server's message
/// limit) whatever the size of the document being written.
const UPSERT_BATCH: usize = 256;

/// Points per scroll page when reading payloads only.
const SCROLL_PAGE: usize = 1024;

/// The vector store: chunks with their dense and lexical vectors, over the configured backend.
/// Calls never block the async runtime.
pub struct Store {
    backend: Box<dyn Backend>,
    dense: String,
    lexical: Option<String>,
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
    pub(crate) async fn open(backend: Box<dyn Backend>, target: &Target) -> Result<Self> {
        migrate::migrate(backend.as_ref(), target).await?;
        Ok(Self {
            backend,
            dense: migrations::dense_vector_name()?,
            lexical: migrations::lexical_vector_name()?,
        })
    }

    /// Inserts or overwrites points by id, in order.
    pub async fn upsert(&self, points: Vec<ChunkPoint>) -> Result<()> {
        let mut points = points.into_iter().peekable();
        // One batch after another, each applied before the next is sent, so a later point
        // overwrites an earlier one with the same id.
        while points.peek().is_some() {
            let batch = points
                .by_ref()
                .take(UPSERT_BATCH)
                .map(|p| self.new_point(p))
                .collect();
            self.backend.upsert(batch).await?;
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
            id: point.id,
            vectors,
            payload: stored_payload(&point.payload),
        }
    }

    /// The best `limit` chunks for `query`, best first. With lexical terms: the dense and the
    /// lexical (IDF-weighted) candidates fused by reciprocal rank; without: dense only.
    pub async fn search(
        &self,
        query: Query,
        limit: usize,
        filter: &SearchFilter,
    ) -> Result<Vec<Hit>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let request = self.query_request(&query, limit, filter);
        let hybrid = matches!(request.ranking, Ranking::Rrf { .. });
        let found = self.backend.query(request).await?;
        found
            .into_iter()
            .map(|scored| {
                let vector = scored.record.vector.unwrap_or_default();
                let similarity = cosine(&query.dense, &vector);
                Ok(Hit {
                    score: if hybrid { scored.score } else { similarity },
                    similarity,
                    vector,
                    payload: parse_payload(scored.record.payload)?,
                })
            })
            .collect()
    }

    fn query_request(&self, query: &Query, limit: usize, filter: &SearchFilter) -> QueryRequest {
        let dense = NamedVector {
            name: self.dense.clone(),
            vector: VectorData::Dense(query.dense.clone()),
        };
        let mut lists = Vec::new();
        if let Some(name) = &self.lexical {
            for terms in [&query.lexical, &query.identifiers].into_iter().flatten() {
                if !terms.is_empty() {
                    lists.push(NamedVector {
                        name: name.clone(),
                        vector: VectorData::Sparse(terms.clone()),
                    });
                }
            }
        }
        let ranking = if lists.is_empty() {
            Ranking::Nearest(dense)
        } else {
            lists.insert(0, dense);
            Ranking::Rrf {
                k: RRF_K,
                prefetch_limit: prefetch_limit(limit),
                lists,
            }
        };
        QueryRequest {
            ranking,
            filter: search_filter(filter),
            limit,
            with_vector: self.dense.clone(),
        }
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
        let fields = vec![
            fields::DOC_ID,
            fields::SOURCE,
            fields::ROOT,
            fields::DOC_HASH,
            fields::CHUNK_COUNT,
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
        let filter = Filter::must(Condition::AnyKeyword {
            field: fields::CHUNK_HASH,
            values: chunk_hashes,
        });
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

    /// Deletes every chunk of `doc_id`, except those of version `keep_hash` when given.
    /// Returns how many points were deleted.
    pub async fn delete_document(&self, doc_id: &str, keep_hash: Option<&str>) -> Result<u64> {
        let mut filter = Filter::must(Condition::keyword(fields::DOC_ID, doc_id));
        if let Some(hash) = keep_hash {
            filter = filter.and_not(Condition::keyword(fields::DOC_HASH, hash));
        }
        self.delete_where(filter).await
    }

    /// Deletes every chunk whose source path is exactly `source`. Returns how many.
    pub async fn delete_source(&self, source: &str) -> Result<u64> {
        self.delete_where(Filter::must(Condition::keyword(fields::SOURCE, source)))
            .await
    }

    /// Number of stored points (chunks).
    pub async fn count(&self) -> Result<u64> {
        self.backend.count(&Filter::default()).await
    }

    /// Number of points indexed from folder `root`.
    pub async fn count_in_root(&self, root: &str) -> Result<u64> {
        self.backend
            .count(&Filter::must(Condition::keyword(fields::ROOT, root)))
            .await
    }

    /// Every (doc_id, doc_hash) that has at least one point under `root`, commit marker or
    /// not. Reads an id pair per point: for finding what an interrupted run left behind, when
    /// [`Store::count_in_root`] shows more points than the complete versions hold.
    pub async fn point_versions(&self, root: &str) -> Result<BTreeSet<(String, String)>> {
        let filter = Filter::must(Condition::keyword(fields::ROOT, root));
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
                .count(&Filter::must(Condition::Integer {
                    field: fields::CHUNK_INDEX,
                    value: 0,
                }))
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
        let n = self.backend.count(&filter).await?;
        if n > 0 {
            self.backend.delete(&filter).await?;
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

/// A search filter as conditions on the stored payload: a path prefix becomes an exact match
/// on `path_prefixes` (see [`crate::point::stored_payload`]).
fn search_filter(filter: &SearchFilter) -> Filter {
    let mut out = Filter::default();
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

    #[test]
    fn search_filter_uses_prefix_keys_and_doc_ids() {
        assert!(search_filter(&SearchFilter::default()).is_empty());
        let only_root = SearchFilter {
            path_prefix: Some(" / ".into()),
            doc_ids: Vec::new(),
        };
        assert!(search_filter(&only_root).is_empty());
        let filter = search_filter(&SearchFilter {
            path_prefix: Some("hr/".into()),
            doc_ids: vec!["d1".into()],
        });
        assert_eq!(
            filter.must,
            [
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
