//! Requests as the service receives them: any bytes decoded as each request message, and the
//! text fields run through what the service does with them before any model sees them (terms,
//! the lexical and identifier vectors, script detection, media type names).
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use rag_proto::v1 as pb;

fuzz_target!(|data: &[u8]| {
    let mut texts: Vec<String> = Vec::new();
    if let Ok(r) = pb::SearchRequest::decode(data) {
        texts.push(r.query);
        if let Some(f) = r.retrieval.and_then(|r| r.filter) {
            texts.push(f.path_prefix);
            texts.extend(f.document_ids);
        }
    }
    if let Ok(r) = pb::AskRequest::decode(data) {
        texts.push(r.question);
    }
    if let Ok(r) = pb::IngestDocumentRequest::decode(data) {
        let _ = rag_extract::MediaType::from_mime(&r.media_type);
        let _ = rag_extract::MediaType::from_path(std::path::Path::new(&r.file_name));
        texts.push(r.file_name);
        texts.extend(r.groups);
        texts.extend(r.metadata.into_values());
    }
    let _ = pb::DeleteDocumentRequest::decode(data);
    texts.push(String::from_utf8_lossy(data).into_owned());
    for text in &texts {
        let _ = rag_lexical::terms(text);
        let _ = rag_lexical::query_vector(text);
        let _ = rag_lexical::identifier_vector(text);
        let _ = rag_lexical::document_vector(text);
        let _ = rag_lexical::non_latin_script(text);
    }
});
