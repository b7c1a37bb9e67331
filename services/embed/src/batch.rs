//! Concurrent questions embedded together: one ONNX Runtime call for every question waiting,
//! instead of one call each.
//!
//! The model runs one call at a time anyway (its session is behind a lock), so questions that
//! arrive while a call runs would only queue; here they join the next call. A lone question
//! goes at once unless `max_wait` asks to hold it briefly for company (as
//! text-embeddings-inference does). Rows of a batch do not mix (attention and mean pooling are
//! masked to each row's own tokens), so a question gets its vector alone, up to float rounding.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::{EmbedError, Embedder};

type Reply = oneshot::Sender<Result<Vec<f32>, EmbedError>>;

/// Questions waiting beyond this are refused, not queued without end.
const QUEUE: usize = 4096;

#[derive(Clone)]
pub struct QueryBatcher {
    queue: mpsc::Sender<(String, Reply)>,
}

impl QueryBatcher {
    /// Starts the batching task on the current tokio runtime. `max_batch` 1 embeds each
    /// question alone (no batching).
    pub fn start(embedder: Arc<Embedder>, max_batch: usize, max_wait: Duration) -> Self {
        let (queue, pending) = mpsc::channel(QUEUE);
        tokio::spawn(run(embedder, pending, max_batch.max(1), max_wait));
        Self { queue }
    }

    /// The vector of one question (with the query prefix).
    pub async fn embed_query(&self, text: String) -> Result<Vec<f32>, EmbedError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .try_send((text, reply))
            .map_err(|_| EmbedError::Inference("query embedding queue is full".into()))?;
        answer
            .await
            .map_err(|_| EmbedError::Inference("query embedding task stopped".into()))?
    }
}

async fn run(
    embedder: Arc<Embedder>,
    mut pending: mpsc::Receiver<(String, Reply)>,
    max_batch: usize,
    max_wait: Duration,
) {
    while let Some(first) = pending.recv().await {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match pending.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        if batch.len() < max_batch && !max_wait.is_zero() {
            let until = tokio::time::Instant::now() + max_wait;
            while batch.len() < max_batch {
                match tokio::time::timeout_at(until, pending.recv()).await {
                    Ok(Some(next)) => batch.push(next),
                    _ => break,
                }
            }
        }
        let (texts, replies): (Vec<String>, Vec<Reply>) = batch.into_iter().unzip();
        metrics::histogram!(BATCH_SIZE).record(texts.len() as f64);
        let model = embedder.clone();
        let vectors = tokio::task::spawn_blocking(move || model.embed_queries(texts))
            .await
            .unwrap_or_else(|e| Err(EmbedError::Inference(format!("embedding task: {e}"))));
        match vectors {
            Ok(vectors) if vectors.len() == replies.len() => {
                for (reply, vector) in replies.into_iter().zip(vectors) {
                    let _ = reply.send(Ok(vector));
                }
            }
            Ok(vectors) => {
                let reason = format!("{} vectors for {} questions", vectors.len(), replies.len());
                for reply in replies {
                    let _ = reply.send(Err(EmbedError::Inference(reason.clone())));
                }
            }
            Err(e) => {
                let reason = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(EmbedError::Inference(reason.clone())));
                }
            }
        }
    }
}

/// Prometheus histogram: questions per query-embedding call.
pub const BATCH_SIZE: &str = "rag_query_embedding_batch_size";
