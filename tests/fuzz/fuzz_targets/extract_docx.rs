//! DOCX (a zip of XML): any bytes give text or an error, never a panic, a hang or a blow-up
//! (the zip-bomb and entry-size limits included).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rag_extract::{MediaType, PdfExtractor, extract};

fuzz_target!(|data: &[u8]| {
    let _ = extract(MediaType::Docx, data, None, &no_pdf());
});

fn no_pdf() -> PdfExtractor {
    PdfExtractor {
        helper: None,
        pdftotext: None,
        timeout: std::time::Duration::from_secs(1),
    }
}
