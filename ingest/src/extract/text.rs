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

fn decode(bytes: &[u8], kind: &'static str) -> Result<String, ExtractError> {
    // A NUL byte never occurs in real UTF-8 text; it is the cheapest sign of a binary file
    // wearing a text extension.
    if bytes.contains(&0) {
        return Err(ExtractError::Binary(kind));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.to_owned()),
        Err(e) => Err(ExtractError::NotUtf8(e.valid_up_to())),
    }
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
    fn binary_and_invalid_utf8_are_errors() {
        assert!(matches!(plain(b"ab\0cd"), Err(ExtractError::Binary(_))));
        assert!(matches!(
            plain(b"ok \xff\xfe"),
            Err(ExtractError::NotUtf8(3))
        ));
        assert_eq!(plain(b"\xEF\xBB\xBFhi").unwrap().pages[0].text, "hi");
    }
}
