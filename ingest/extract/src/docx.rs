//! DOCX: the body of `word/document.xml` as Markdown, so Word headings give chunks their
//! section path just as Markdown headings do. Tables become one line per row.

use std::io::{Cursor, Read};

use roxmltree::{Document, Node, ParsingOptions};

use super::{ExtractError, Extracted, Page};

const W: &str = "http://schemas.openxmlformats.org/wordprocessingml/2006/main";
/// A part inflating beyond this is a ZIP bomb, not a document.
const MAX_PART_BYTES: u64 = 64 * 1024 * 1024;
/// Bounds on the parsed tree: real documents stay far below; crafted ones would exhaust memory
/// or, through recursion, the thread's stack (which aborts the process, not just this file).
const MAX_NODES: u32 = 4_000_000;
const MAX_DEPTH: usize = 128;

pub fn docx(bytes: &[u8]) -> Result<Extracted, ExtractError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| ExtractError::Docx(format!("not a DOCX (ZIP) file: {e}")))?;
    let body = read_part(&mut archive, "word/document.xml")?
        .ok_or_else(|| ExtractError::Docx("no word/document.xml: not a Word document".into()))?;
    let (text, title_paragraph) = body_markdown(&body)?;
    let title = read_part(&mut archive, "docProps/core.xml")
        .ok()
        .flatten()
        .and_then(|core| core_title(&core))
        .or(title_paragraph);
    Ok(Extracted {
        title,
        pages: vec![Page { number: 0, text }],
    })
}

fn read_part(
    archive: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
) -> Result<Option<String>, ExtractError> {
    let file = match archive.by_name(name) {
        Ok(file) => file,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(ExtractError::Docx(format!("{name}: {e}"))),
    };
    let mut xml = String::new();
    let read = file
        .take(MAX_PART_BYTES + 1)
        .read_to_string(&mut xml)
        .map_err(|e| ExtractError::Docx(format!("{name}: {e}")))?;
    if read as u64 > MAX_PART_BYTES {
        return Err(ExtractError::Docx(format!(
            "{name} inflates beyond {MAX_PART_BYTES} bytes"
        )));
    }
    Ok(Some(xml))
}

fn parse(xml: &str) -> Result<Document<'_>, ExtractError> {
    // No DTDs: entity expansion is the XML bomb.
    Document::parse_with_options(
        xml,
        ParsingOptions {
            allow_dtd: false,
            nodes_limit: MAX_NODES,
            ..ParsingOptions::default()
        },
    )
    .map_err(|e| ExtractError::Docx(format!("word/document.xml: {e}")))
}

/// The body as Markdown, and the text of a "Title"-styled paragraph if there is one.
fn body_markdown(xml: &str) -> Result<(String, Option<String>), ExtractError> {
    let doc = parse(xml)?;
    let mut out = String::new();
    let mut title = None;
    if let Some(body) = doc.descendants().find(|n| is_w(n, "body")) {
        block(body, &mut out, &mut title, 0)?;
    }
    Ok((out, title))
}

fn block(
    node: Node<'_, '_>,
    out: &mut String,
    title: &mut Option<String>,
    depth: usize,
) -> Result<(), ExtractError> {
    if depth > MAX_DEPTH {
        return Err(ExtractError::Docx(format!(
            "elements nested deeper than {MAX_DEPTH} levels"
        )));
    }
    for child in node.children().filter(Node::is_element) {
        if is_w(&child, "p") {
            let text = paragraph_text(child);
            if text.trim().is_empty() {
                continue;
            }
            match style(child) {
                Style::Title => {
                    let line = one_line(&text);
                    title.get_or_insert_with(|| line.clone());
                    out.push_str(&format!("# {line}\n\n"));
                }
                Style::Heading(level) => {
                    out.push_str(&format!("{} {}\n\n", "#".repeat(level), one_line(&text)));
                }
                Style::Body => {
                    // Body text that looks like Markdown structure must stay body text.
                    for line in text.trim_end().lines() {
                        if line.trim_start().starts_with(['#', '`', '~', '=', '-']) {
                            out.push('\\');
                        }
                        out.push_str(line);
                        out.push('\n');
                    }
                    out.push('\n');
                }
            }
        } else if is_w(&child, "tbl") {
            for row in child.children().filter(|n| is_w(n, "tr")) {
                let cells: Vec<String> = row
                    .children()
                    .filter(|n| is_w(n, "tc"))
                    .map(|cell| {
                        cell.descendants()
                            .filter(|n| is_w(n, "p"))
                            .map(paragraph_text)
                            .collect::<Vec<_>>()
                            .join(" ")
                            .trim()
                            .to_owned()
                    })
                    .collect();
                if cells.iter().any(|c| !c.is_empty()) {
                    out.push_str(&cells.join(" | "));
                    out.push('\n');
                }
            }
            out.push('\n');
        } else {
            // Content controls, custom XML, smart tags: their paragraphs are still text.
            block(child, out, title, depth + 1)?;
        }
    }
    Ok(())
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Visible text of a paragraph: text runs, tabs and breaks; deleted revisions and field codes
/// are left out.
fn paragraph_text(p: Node<'_, '_>) -> String {
    let mut text = String::new();
    for n in p.descendants().filter(Node::is_element) {
        if is_w(&n, "t") {
            text.push_str(n.text().unwrap_or(""));
        } else if is_w(&n, "tab") && n.parent().is_some_and(|r| is_w(&r, "r")) {
            text.push('\t');
        } else if is_w(&n, "br") || is_w(&n, "cr") {
            text.push('\n');
        }
    }
    text
}

enum Style {
    Title,
    Heading(usize),
    Body,
}

fn style(p: Node<'_, '_>) -> Style {
    let Some(props) = p.children().find(|n| is_w(n, "pPr")) else {
        return Style::Body;
    };
    let value = |name: &str| {
        props
            .children()
            .find(|n| is_w(n, name))
            .and_then(|n| n.attribute((W, "val")))
    };
    if let Some(id) = value("pStyle") {
        let id = id.to_ascii_lowercase().replace([' ', '-', '_'], "");
        if id == "title" {
            return Style::Title;
        }
        if let Some(level) = id
            .strip_prefix("heading")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| (1..=6).contains(l))
        {
            return Style::Heading(level);
        }
    }
    // Localised style names ("Überschrift 1") still carry an outline level.
    match value("outlineLvl").and_then(|l| l.parse::<usize>().ok()) {
        Some(level) if level < 6 => Style::Heading(level + 1),
        _ => Style::Body,
    }
}

fn core_title(xml: &str) -> Option<String> {
    let doc = parse(xml).ok()?;
    doc.descendants()
        .find(|n| n.tag_name().name() == "title")
        .and_then(|n| n.text())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

fn is_w(node: &Node<'_, '_>, name: &str) -> bool {
    node.tag_name().name() == name && node.tag_name().namespace() == Some(W)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;

    use super::*;

    /// A minimal Word document with the given body XML.
    pub(crate) fn make_docx(body: &str, title: Option<&str>) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("word/document.xml", options).unwrap();
        write!(
            zip,
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="{W}"><w:body>{body}</w:body></w:document>"#
        )
        .unwrap();
        if let Some(title) = title {
            zip.start_file("docProps/core.xml", options).unwrap();
            write!(
                zip,
                r#"<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{title}</dc:title></cp:coreProperties>"#
            )
            .unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    fn p(style: Option<&str>, text: &str) -> String {
        let props = style
            .map(|s| format!(r#"<w:pPr><w:pStyle w:val="{s}"/></w:pPr>"#))
            .unwrap_or_default();
        format!("<w:p>{props}<w:r><w:t>{text}</w:t></w:r></w:p>")
    }

    #[test]
    fn headings_paragraphs_and_tables_become_markdown() {
        let body = [
            p(Some("Heading1"), "출장 규정"),
            p(None, "숙박비는 1박 15만 원까지입니다."),
            p(Some("Heading2"), "Meals"),
            "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>Breakfast</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>15 EUR</w:t></w:r></w:p></w:tc></w:tr></w:tbl>".to_owned(),
            "<w:p><w:r><w:delText>deleted words</w:delText><w:t>kept</w:t><w:tab/><w:t>words</w:t></w:r></w:p>".to_owned(),
        ]
        .concat();
        let doc = docx(&make_docx(&body, Some("Travel Policy"))).unwrap();
        assert_eq!(doc.title.as_deref(), Some("Travel Policy"));
        assert_eq!(
            doc.pages[0].text,
            "# 출장 규정\n\n숙박비는 1박 15만 원까지입니다.\n\n## Meals\n\nBreakfast | 15 EUR\n\nkept\twords\n\n"
        );
    }

    #[test]
    fn body_text_never_turns_into_headings_and_deep_nesting_is_refused() {
        let doc = docx(&make_docx(&p(None, "# not a heading"), None)).unwrap();
        assert_eq!(doc.pages[0].text, "\\# not a heading\n\n");
        let deep = format!(
            "{}{}{}",
            "<w:sdt>".repeat(10_000),
            p(None, "x"),
            "</w:sdt>".repeat(10_000)
        );
        let err = docx(&make_docx(&deep, None)).unwrap_err();
        assert!(err.to_string().contains("nested deeper"), "{err}");
    }

    #[test]
    fn not_a_docx_is_an_error_saying_so() {
        let err = docx(b"PK\x03\x04 truncated").unwrap_err();
        assert!(err.to_string().contains("DOCX"), "{err}");
        let err = docx(b"plain text").unwrap_err();
        assert!(err.to_string().contains("not a DOCX"), "{err}");
    }
}
