//! PDF as the service reads it: the bytes are staged and handed to the isolated helper (the
//! `rag extract-pdf` child process named by RAG_BIN) and to poppler's pdftotext, under a
//! timeout. Whatever the parsers do in their processes, this side returns text or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rag_extract::{MediaType, PdfExtractor, extract};

fuzz_target!(|data: &[u8]| {
    let pdf = PdfExtractor {
        helper: std::env::var("RAG_BIN")
            .ok()
            .map(|bin| vec![bin, "extract-pdf".to_owned()]),
        pdftotext: Some("pdftotext".into()),
        timeout: std::time::Duration::from_secs(5),
    };
    let _ = extract(MediaType::Pdf, data, None, &pdf);
});
