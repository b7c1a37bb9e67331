//! The API on gRPC's wire: each request message onto its `rag-api` request, each result onto
//! its message. Field for field; proto3's zero values are the API's "unset".

use rag_api::reply::{Answer, AskEvent, Chunk, Found, Ingested, Source, Timings};
use rag_api::{
    AskRequest, DeleteDocumentRequest, DeleteTarget, Filter, IngestDocumentRequest,
    RetrievalOptions, SearchRequest, Turn, Verdict,
};
use rag_proto::v1 as pb;
use rag_store::IndexStats;

/// 0 is proto3's unset.
fn set(n: u32) -> Option<u32> {
    (n != 0).then_some(n)
}

fn retrieval(options: Option<pb::RetrievalOptions>) -> RetrievalOptions {
    let options = options.unwrap_or_default();
    let filter = options.filter.unwrap_or_default();
    RetrievalOptions {
        top_k: set(options.top_k),
        score_threshold: options.score_threshold,
        filter: Filter {
            path_prefix: filter.path_prefix,
            document_ids: filter.document_ids,
        },
    }
}

pub fn search_request(request: pb::SearchRequest) -> SearchRequest {
    SearchRequest {
        query: request.query,
        retrieval: retrieval(request.retrieval),
    }
}

pub fn ask_request(request: pb::AskRequest) -> AskRequest {
    AskRequest {
        question: request.question,
        retrieval: retrieval(request.retrieval),
        max_tokens: set(request.max_tokens),
        temperature: request.temperature,
        seed: request.seed,
        history: request
            .history
            .into_iter()
            .map(|t| Turn {
                question: t.question,
                answer: t.answer,
            })
            .collect(),
    }
}

pub fn ingest_request(request: pb::IngestDocumentRequest) -> IngestDocumentRequest {
    IngestDocumentRequest {
        file_name: request.file_name,
        media_type: request.media_type,
        content: request.content,
        document_id: request.document_id,
        metadata: request.metadata.into_iter().collect(),
        groups: request.groups,
    }
}

pub fn delete_request(request: pb::DeleteDocumentRequest) -> DeleteDocumentRequest {
    use pb::delete_document_request::Target;
    DeleteDocumentRequest {
        target: request.target.map(|target| match target {
            Target::DocumentId(id) => DeleteTarget::DocumentId(id),
            Target::SourcePath(path) => DeleteTarget::SourcePath(path),
        }),
    }
}

fn chunk(c: Chunk) -> pb::Chunk {
    pb::Chunk {
        document_id: c.document_id,
        source_path: c.source_path,
        page: c.page,
        chunk_index: c.chunk_index,
        text: c.text,
        // The wire's `score` is the similarity.
        score: c.similarity,
        rank_score: c.rank_score,
        title: c.title,
        heading: c.heading,
    }
}

fn timings(t: Timings) -> pb::Timings {
    pb::Timings {
        retrieval_ms: t.retrieval_ms,
        first_token_ms: t.first_token_ms,
        total_ms: t.total_ms,
        tokens_per_second: t.tokens_per_second,
        rewrite_ms: t.rewrite_ms,
    }
}

pub fn search_response(found: Found) -> pb::SearchResponse {
    pb::SearchResponse {
        chunks: found.chunks.into_iter().map(chunk).collect(),
        timings: Some(timings(found.timings)),
    }
}

fn sources(sources: Vec<Source>) -> pb::Sources {
    pb::Sources {
        sources: sources
            .into_iter()
            .map(|s| pb::Source {
                number: s.number,
                chunk: Some(chunk(s.chunk)),
            })
            .collect(),
    }
}

fn answer(answer: Answer) -> pb::Answer {
    pb::Answer {
        status: match answer.status {
            Verdict::Answered => pb::AnswerStatus::Answered,
            Verdict::NotFound => pb::AnswerStatus::NotFound,
            Verdict::Unsupported => pb::AnswerStatus::Unsupported,
        }
        .into(),
        text: answer.text,
        draft: answer.draft,
        citations: answer
            .citations
            .into_iter()
            .map(|c| pb::Citation {
                number: c.number,
                document_id: c.document_id,
                source_path: c.source_path,
                page: c.page,
            })
            .collect(),
        invalid_citations: answer.invalid_citations,
        sentences: answer
            .sentences
            .into_iter()
            .map(|s| pb::Sentence {
                text: s.text,
                cited: s.cited,
                supported: s.supported_by.is_some(),
                supported_by: s.supported_by.unwrap_or(0),
                lexical_overlap: s.lexical_overlap,
                similarity: s.similarity,
            })
            .collect(),
        usage: answer.usage.map(|u| pb::Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
        }),
        timings: Some(timings(answer.timings)),
        finish_reason: answer.finish_reason.into(),
    }
}

pub fn ask_response(event: AskEvent) -> pb::AskResponse {
    use pb::ask_response::Event;
    let event = match event {
        AskEvent::Rewrite(r) => Event::Rewrite(pb::Rewrite {
            question: r.question,
            by: r.by.into(),
        }),
        AskEvent::Sources(s) => Event::Sources(sources(s)),
        AskEvent::Token(text) => Event::Token(pb::Token { text }),
        AskEvent::Answer(a) => Event::Answer(answer(*a)),
    };
    pb::AskResponse { event: Some(event) }
}

pub fn ingest_response(ingested: Ingested) -> pb::IngestDocumentResponse {
    pb::IngestDocumentResponse {
        document_id: ingested.document_id,
        chunks_written: ingested.chunks_written,
        unchanged: ingested.unchanged,
        pages: ingested.pages,
    }
}

pub fn stats_response(stats: IndexStats) -> pb::IndexStatsResponse {
    pb::IndexStatsResponse {
        documents: stats.documents,
        chunks: stats.chunks,
        embedding_model: stats.embedding_model,
        vector_size: stats.vector_size as u32,
        schema_version: stats.schema_version,
        store_backend: stats.backend,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_score_is_the_similarity_and_rank_score_the_ranking() {
        let c = chunk(Chunk {
            document_id: "d".into(),
            document_version: "v".into(),
            source_path: "a.md".into(),
            page: 0,
            chunk_index: 1,
            chunk_count: 2,
            title: String::new(),
            heading: String::new(),
            text: "t".into(),
            similarity: 0.8,
            rank_score: 0.03,
        });
        assert_eq!((c.score, c.rank_score), (0.8, 0.03));
    }

    #[test]
    fn proto_zero_values_are_unset() {
        let request = ask_request(pb::AskRequest {
            question: "q".into(),
            ..Default::default()
        });
        assert_eq!(request.max_tokens, None);
        assert_eq!(request.retrieval.top_k, None);
        assert!(request.retrieval.filter.path_prefix.is_empty());
    }
}
