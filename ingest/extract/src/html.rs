//! HTML -> readable text: the words a reader sees, without scripts, styles, navigation and
//! page chrome, with block elements on their own lines so chunks keep paragraph boundaries.

use ego_tree::NodeRef;
use scraper::{Html, Node};

use super::{ExtractError, Extracted, Page, text};

/// Subtrees that are never part of a document's content.
const SKIPPED: &[&str] = &[
    "script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form",
    "button", "select", "svg", "head", "iframe",
];

/// Elements that start a new line.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "br",
    "li",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "tr",
    "table",
    "blockquote",
    "pre",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "figure",
    "figcaption",
    "caption",
    "td",
    "th",
];

pub fn html(bytes: &[u8]) -> Result<Extracted, ExtractError> {
    let source = text::decode(bytes, "HTML")?;
    let document = Html::parse_document(&source);
    let mut out = String::new();
    let mut title = None;
    walk(*document.root_element(), &mut out, &mut title, false);
    let title = document_title(&document).or(title);
    let text = tidy(&out);
    Ok(Extracted {
        title,
        pages: vec![Page { number: 0, text }],
    })
}

fn walk(node: NodeRef<'_, Node>, out: &mut String, h1: &mut Option<String>, pre: bool) {
    match node.value() {
        Node::Text(t) => {
            if pre {
                out.push_str(&t.text);
            } else {
                let words: Vec<&str> = t.text.split_whitespace().collect();
                if !words.is_empty() {
                    if t.text.starts_with(char::is_whitespace) && !out.ends_with(['\n', ' ']) {
                        out.push(' ');
                    }
                    out.push_str(&words.join(" "));
                    if t.text.ends_with(char::is_whitespace) {
                        out.push(' ');
                    }
                }
            }
        }
        Node::Element(e) => {
            let name = e.name();
            if SKIPPED.contains(&name) {
                return;
            }
            let block = BLOCKS.contains(&name);
            if block && !out.ends_with('\n') {
                out.push('\n');
            }
            let start = out.len();
            for child in node.children() {
                walk(child, out, h1, pre || name == "pre");
            }
            if name == "h1" && h1.is_none() {
                let heading = out[start..].trim();
                if !heading.is_empty() {
                    *h1 = Some(heading.to_owned());
                }
            }
            if block && !out.ends_with('\n') {
                out.push('\n');
            }
        }
        _ => {
            for child in node.children() {
                walk(child, out, h1, pre);
            }
        }
    }
}

fn document_title(document: &Html) -> Option<String> {
    let selector = scraper::Selector::parse("title").expect("valid selector");
    document
        .select(&selector)
        .next()
        .map(|t| t.text().collect::<Vec<_>>().join(" ").trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// Trims every line and keeps at most one blank line between paragraphs.
fn tidy(text: &str) -> String {
    let mut out = String::new();
    let mut blank = 0;
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        out.push_str(line);
        blank = 0;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_content_and_drops_chrome() {
        let page = br#"<!doctype html><html><head><title>Leave | Intranet</title>
            <style>p { color: red }</style><script>var tracking = 1;</script></head>
            <body><nav><a href="/">Home</a> <a href="/hr">HR</a></nav>
            <header>Company intranet</header>
            <main><h1>Leave policy</h1><p>Employees get <b>25 days</b> of leave.</p>
            <ul><li>Carry over 5 days</li><li>Until 31 March</li></ul>
            <pre>code  block</pre></main>
            <footer>(c) Northwind</footer></body></html>"#;
        let doc = html(page).unwrap();
        let text = &doc.pages[0].text;
        assert_eq!(doc.title.as_deref(), Some("Leave | Intranet"));
        assert!(text.contains("Employees get 25 days of leave."), "{text}");
        assert!(text.contains("Carry over 5 days\nUntil 31 March"), "{text}");
        assert!(text.contains("code  block"), "{text}");
        for chrome in ["tracking", "color", "Home", "Company intranet", "Northwind"] {
            assert!(!text.contains(chrome), "{chrome} in {text}");
        }
    }

    #[test]
    fn first_heading_is_the_title_without_a_title_element() {
        let doc = html("<h1>복지 안내</h1><p>건강검진</p>".as_bytes()).unwrap();
        assert_eq!(doc.title.as_deref(), Some("복지 안내"));
    }
}
