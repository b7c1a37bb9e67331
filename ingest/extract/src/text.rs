//! Plain text and Markdown, in whatever encoding they were saved: UTF-8, UTF-16 (with a byte
//! order mark), or a legacy encoding such as EUC-KR/CP949, Shift_JIS or windows-1252 (detected).

use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE};

use super::{ExtractError, Extracted, Page};

pub fn plain(bytes: &[u8]) -> Result<Extracted, ExtractError> {
    let text = decode(bytes, "text")?;
    Ok(Extracted {
        title: None,
        pages: vec![Page { number: 0, text }],
    })
}

pub fn markdown(bytes: &[u8]) -> Result<Extracted, ExtractError> {
    let text = decode(bytes, "Markdown")?;
    let title = text
        .lines()
        .find_map(|l| l.strip_prefix("# "))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    Ok(Extracted {
        title,
        pages: vec![Page { number: 0, text }],
    })
}

/// Decodes text of unknown encoding. A byte order mark decides; then UTF-8 is tried; then the
/// encoding is guessed from the bytes. Bytes that decode in no encoding are an error, not text.
pub fn decode(bytes: &[u8], kind: &'static str) -> Result<String, ExtractError> {
    if let Some((encoding, bom)) = Encoding::for_bom(bytes) {
        let (text, had_errors) = encoding.decode_without_bom_handling(&bytes[bom..]);
        if had_errors {
            return Err(ExtractError::Encoding(encoding.name()));
        }
        if encoding != UTF_16LE && encoding != UTF_16BE && text.contains('\0') {
            return Err(ExtractError::Binary(kind));
        }
        return Ok(text.into_owned());
    }
    // A NUL byte never occurs in text in a single-byte or multi-byte legacy encoding; it is the
    // cheapest sign of a binary file wearing a text extension.
    if bytes.contains(&0) {
        return Err(ExtractError::Binary(kind));
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(text.to_owned());
    }
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(bytes, true);
    let encoding = detector.guess(None, chardetng::Utf8Detection::Allow);
    if encoding == UTF_8 {
        let valid = std::str::from_utf8(bytes).map_or_else(|e| e.valid_up_to(), |_| 0);
        return Err(ExtractError::NotUtf8(valid));
    }
    let (text, had_errors) = encoding.decode_without_bom_handling(bytes);
    if had_errors {
        return Err(ExtractError::Encoding(encoding.name()));
    }
    Ok(text.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_title_is_the_first_h1() {
        let doc = markdown("intro\n## sub\n# 휴가 규정 \nbody".as_bytes()).unwrap();
        assert_eq!(doc.title.as_deref(), Some("휴가 규정"));
        assert_eq!(doc.pages.len(), 1);
    }

    #[test]
    fn binary_is_an_error() {
        assert!(matches!(plain(b"ab\0cd"), Err(ExtractError::Binary(_))));
        assert_eq!(plain(b"\xEF\xBB\xBFhi").unwrap().pages[0].text, "hi");
    }

    #[test]
    fn utf16_with_a_bom_is_decoded() {
        let mut le = vec![0xFF, 0xFE];
        le.extend("연차 25일".encode_utf16().flat_map(|u| u.to_le_bytes()));
        assert_eq!(plain(&le).unwrap().pages[0].text, "연차 25일");
        let mut be = vec![0xFE, 0xFF];
        be.extend("leave".encode_utf16().flat_map(|u| u.to_be_bytes()));
        assert_eq!(plain(&be).unwrap().pages[0].text, "leave");
    }

    #[test]
    fn legacy_korean_and_western_encodings_are_detected() {
        let korean = "건강검진은 연 1회 회사 비용으로 받을 수 있습니다. 자기계발비는 연간 100만 원까지 지원합니다.";
        let (euc_kr, _, _) = encoding_rs::EUC_KR.encode(korean);
        assert_eq!(plain(&euc_kr).unwrap().pages[0].text, korean);
        let (latin, _, _) = encoding_rs::WINDOWS_1252.encode("Café crème, déjà vu — naïve façade.");
        assert_eq!(
            plain(&latin).unwrap().pages[0].text,
            "Café crème, déjà vu — naïve façade."
        );
    }
}
