//! file -> text. One extractor per format, chosen by [`MediaType`].

mod docx;
mod html;
mod pdf;
mod text;

use std::path::Path;

pub use pdf::{HelperOutput, PdfExtractor, extract_in_this_process as extract_pdf_in_this_process};

/// The formats we index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    Text,
    Markdown,
    Html,
    Pdf,
    Docx,
}

impl MediaType {
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "txt" | "text" => Some(Self::Text),
            "md" | "markdown" => Some(Self::Markdown),
            "html" | "htm" | "xhtml" => Some(Self::Html),
            "pdf" => Some(Self::Pdf),
            "docx" => Some(Self::Docx),
            _ => None,
        }
    }

    pub fn from_mime(mime: &str) -> Option<Self> {
        let essence = mime
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "text/plain" => Some(Self::Text),
            "text/markdown" | "text/x-markdown" => Some(Self::Markdown),
            "text/html" | "application/xhtml+xml" => Some(Self::Html),
            "application/pdf" => Some(Self::Pdf),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => {
                Some(Self::Docx)
            }
            _ => None,
        }
    }

    pub fn as_mime(self) -> &'static str {
        match self {
            Self::Text => "text/plain",
            Self::Markdown => "text/markdown",
            Self::Html => "text/html",
            Self::Pdf => "application/pdf",
            Self::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        }
    }
}

/// Extracted text. Paged formats keep one entry per page so chunks can cite their page.
#[derive(Debug, Clone, PartialEq)]
pub struct Extracted {
    pub title: Option<String>,
    pub pages: Vec<Page>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// 1-based; 0 for formats without pages.
    pub number: u32,
    pub text: String,
}

impl Extracted {
    pub fn is_blank(&self) -> bool {
        self.pages.iter().all(|p| p.text.trim().is_empty())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("binary content in a {0} file")]
    Binary(&'static str),
    #[error("not valid UTF-8 text (byte {0}) and no other encoding fits")]
    NotUtf8(usize),
    #[error("not valid {0} text")]
    Encoding(&'static str),
    #[error(
        "text looks garbled ({0:.0}% replacement, private-use or control characters): a broken font encoding or a binary file"
    )]
    Garbled(f64),
    #[error("PDF could not be read: {0}")]
    Pdf(String),
    #[error("DOCX could not be read: {0}")]
    Docx(String),
    #[error("encrypted PDF: it needs a password to be read")]
    Encrypted,
    #[error("image-only PDF: no text layer (scanned pages are not OCRed)")]
    ImageOnly,
    #[error("no text found (empty, or an image-only document)")]
    NoText,
}

/// Extracts the text of one document. `path` names the file for the PDF helper when the bytes
/// already sit on disk; otherwise they are staged in a temporary file.
pub fn extract(
    media: MediaType,
    bytes: &[u8],
    path: Option<&Path>,
    pdf: &PdfExtractor,
) -> Result<Extracted, ExtractError> {
    let extracted = match media {
        MediaType::Text => text::plain(bytes)?,
        MediaType::Markdown => text::markdown(bytes)?,
        MediaType::Html => html::html(bytes)?,
        MediaType::Pdf => pdf.extract(bytes, path)?,
        MediaType::Docx => docx::docx(bytes)?,
    };
    if extracted.is_blank() {
        return Err(ExtractError::NoText);
    }
    let share = garbled_share(&extracted);
    if share > MAX_GARBLED_SHARE {
        return Err(ExtractError::Garbled(share * 100.0));
    }
    Ok(extracted)
}

/// Above this share of suspicious characters, extracted text is noise that would only pollute
/// the index (PDFs with broken font encodings come out like this).
const MAX_GARBLED_SHARE: f64 = 0.10;

/// The share of non-whitespace characters that are U+FFFD, private-use or control characters.
fn garbled_share(doc: &Extracted) -> f64 {
    let (mut bad, mut all) = (0usize, 0usize);
    for c in doc.pages.iter().flat_map(|p| p.text.chars()) {
        if c.is_whitespace() {
            continue;
        }
        all += 1;
        let private = matches!(c as u32, 0xE000..=0xF8FF | 0xF0000..=0xFFFFD | 0x100000..=0x10FFFD);
        if c == '\u{FFFD}' || c.is_control() || private {
            bad += 1;
        }
    }
    if all == 0 {
        0.0
    } else {
        bad as f64 / all as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_from_names_and_mimes() {
        assert_eq!(
            MediaType::from_path(Path::new("a/B.MD")),
            Some(MediaType::Markdown)
        );
        assert_eq!(
            MediaType::from_path(Path::new("x.pdf")),
            Some(MediaType::Pdf)
        );
        assert_eq!(MediaType::from_path(Path::new("x.exe")), None);
        assert_eq!(MediaType::from_path(Path::new("README")), None);
        assert_eq!(
            MediaType::from_mime("text/plain; charset=utf-8"),
            Some(MediaType::Text)
        );
        assert_eq!(MediaType::from_mime("image/png"), None);
        assert_eq!(
            MediaType::from_path(Path::new("page.HTM")),
            Some(MediaType::Html)
        );
    }

    #[test]
    fn garbled_text_is_refused_and_normal_text_is_not() {
        let none = PdfExtractor {
            helper: None,
            pdftotext: None,
            timeout: std::time::Duration::from_secs(1),
        };
        let garbled = "\u{E001}\u{E002}\u{FFFD}ab\u{E003}".repeat(20);
        let err = extract(MediaType::Text, garbled.as_bytes(), None, &none).unwrap_err();
        assert!(matches!(err, ExtractError::Garbled(_)), "{err}");
        let fine = "연차는 25일입니다. Leave is 25 days.";
        assert!(extract(MediaType::Text, fine.as_bytes(), None, &none).is_ok());
    }
}
