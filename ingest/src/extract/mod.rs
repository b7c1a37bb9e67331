//! file -> text. One extractor per format, chosen by [`MediaType`].

mod pdf;
mod text;

use std::path::Path;

pub use pdf::{HelperOutput, PdfExtractor, extract_in_this_process as extract_pdf_in_this_process};

/// The formats we index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    Text,
    Markdown,
    Pdf,
}

impl MediaType {
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "txt" | "text" => Some(Self::Text),
            "md" | "markdown" => Some(Self::Markdown),
            "pdf" => Some(Self::Pdf),
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
            "application/pdf" => Some(Self::Pdf),
            _ => None,
        }
    }

    pub fn as_mime(self) -> &'static str {
        match self {
            Self::Text => "text/plain",
            Self::Markdown => "text/markdown",
            Self::Pdf => "application/pdf",
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
    #[error("not valid UTF-8 text (byte {0})")]
    NotUtf8(usize),
    #[error("PDF could not be read: {0}")]
    Pdf(String),
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
        MediaType::Pdf => pdf.extract(bytes, path)?,
    };
    if extracted.is_blank() {
        return Err(ExtractError::NoText);
    }
    Ok(extracted)
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
    }
}
