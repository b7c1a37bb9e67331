//! Plain text and Markdown: decoding (BOMs, UTF-16, detected legacy encodings, binary
//! refusal) and the Markdown title, for any bytes, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rag_extract::{MediaType, PdfExtractor, extract};

fuzz_target!(|data: &[u8]| {
    let pdf = PdfExtractor {
        helper: None,
        pdftotext: None,
        timeout: std::time::Duration::from_secs(1),
    };
    let _ = extract(MediaType::Text, data, None, &pdf);
    let _ = extract(MediaType::Markdown, data, None, &pdf);
});
