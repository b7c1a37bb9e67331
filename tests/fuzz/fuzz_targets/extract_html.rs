//! HTML: any bytes, in any encoding, give text or an error, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rag_extract::{MediaType, PdfExtractor, extract};

fuzz_target!(|data: &[u8]| {
    let _ = extract(MediaType::Html, data, None, &no_pdf());
});

fn no_pdf() -> PdfExtractor {
    PdfExtractor {
        helper: None,
        pdftotext: None,
        timeout: std::time::Duration::from_secs(1),
    }
}
