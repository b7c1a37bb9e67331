//! Documents that only the store holds — those sent over the API, whose bytes are not kept —
//! written into another store with this indexer's embedding model (`rag reindex`): the same
//! chunks, ids and versions, new vectors. Their chunking stays as it was; sending a document
//! again chunks it with the current recipe.

use rag_store::{ChunkPayload, ChunkPoint, point_id};

use crate::chunk::Chunk;
use crate::error::IndexError;
use crate::index::Indexer;
use crate::prepare::title_from_path;

/// Chunks embedded per call.
const EMBED_BATCH: usize = 32;

/// One complete stored version of a document, with the tenant it belongs to.
#[derive(Debug, Clone)]
pub struct StoredDocument {
    pub tenant: String,
    /// Every chunk of the version, in order.
    pub chunks: Vec<ChunkPayload>,
}

impl Indexer {
    /// Re-embeds `doc`'s stored chunks with this indexer's model and writes them into its
    /// store, in the document's tenant, chunk 0 (the commit marker) last. Returns the number
    /// of chunks written.
    pub async fn copy_document(&self, doc: StoredDocument) -> Result<u64, IndexError> {
        let Some(first) = doc.chunks.first() else {
            return Ok(0);
        };
        let source = first.source.clone();
        // As the prepare stage does: a title made from the file name heads no chunk.
        let title = (first.title != title_from_path(&first.source)).then(|| first.title.clone());
        let mut chunks: Vec<Chunk> = doc
            .chunks
            .iter()
            .map(|c| Chunk {
                page: c.page,
                text: c.text.clone(),
                embed_text: c.text.clone(),
                tokens: 0,
                heading: c.heading.clone(),
            })
            .collect();
        self.preparer()
            .chunker
            .add_headers(&mut chunks, title.as_deref());
        let texts: Vec<String> = chunks.iter().map(|c| c.embed_text.clone()).collect();
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(EMBED_BATCH) {
            let embedder = self.embedder().clone();
            let batch = batch.to_vec();
            let embedded = tokio::task::spawn_blocking(move || embedder.embed(batch))
                .await
                .map_err(|e| IndexError::Embed {
                    path: source.clone(),
                    reason: e.to_string(),
                })?
                .map_err(|e| IndexError::Embed {
                    path: source.clone(),
                    reason: e.to_string(),
                })?;
            vectors.extend(embedded);
        }
        let model = self.embedder().model_name().to_owned();
        let mut points: Vec<ChunkPoint> = doc
            .chunks
            .into_iter()
            .zip(chunks)
            .zip(vectors)
            .map(|((stored, chunk), vector)| ChunkPoint {
                id: point_id(&stored.doc_id, stored.chunk_index, &stored.doc_hash),
                vector,
                lexical: rag_lexical::document_vector(&chunk.embed_text),
                payload: ChunkPayload {
                    chunk_hash: blake3::hash(chunk.embed_text.as_bytes())
                        .to_hex()
                        .to_string(),
                    embedding_model: model.clone(),
                    ..stored
                },
            })
            .collect();
        let written = points.len() as u64;
        points.rotate_left(1);
        self.store().for_tenant(&doc.tenant).upsert(points).await?;
        Ok(written)
    }
}
