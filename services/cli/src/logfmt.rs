//! The fields of the text log format, escaped: every value (the message, `%` and `?` fields,
//! errors, span fields) is written with its control characters as escapes, so that nothing a
//! caller sends — a document id, a path, a question — can end a log line early and forge the
//! next one (an audit line, say). The JSON format escapes them already.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::Writer;

/// `name=value` fields as tracing-subscriber's default text format writes them, every value
/// passed through [`escape`]. Set with `fmt::layer().fmt_fields(EscapedFields)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct EscapedFields;

impl<'a> MakeVisitor<Writer<'a>> for EscapedFields {
    type Visitor = EscapingVisitor<'a>;

    fn make_visitor(&self, target: Writer<'a>) -> Self::Visitor {
        EscapingVisitor {
            writer: target,
            is_empty: true,
            result: Ok(()),
        }
    }
}

pub struct EscapingVisitor<'a> {
    writer: Writer<'a>,
    is_empty: bool,
    result: fmt::Result,
}

impl EscapingVisitor<'_> {
    fn write_field(&mut self, name: &str, value: fmt::Arguments<'_>) -> fmt::Result {
        if !self.is_empty {
            self.writer.write_char(' ')?;
        }
        self.is_empty = false;
        if name != "message" {
            let name = name.strip_prefix("r#").unwrap_or(name);
            if self.writer.has_ansi_escapes() {
                // Italic name, dimmed `=`: as the default format shows them on a terminal.
                write!(self.writer, "\x1b[3m{name}\x1b[0m\x1b[2m=\x1b[0m")?;
            } else {
                write!(self.writer, "{name}=")?;
            }
        }
        Escaping(&mut self.writer).write_fmt(value)
    }
}

impl Visit for EscapingVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        self.record_debug(field, &format_args!("{text}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        // A `log` record's metadata, already shown as the event's target and place.
        if field.name().starts_with("log.") {
            return;
        }
        self.result = self.write_field(field.name(), format_args!("{value:?}"));
    }
}

impl VisitOutput<fmt::Result> for EscapingVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl VisitFmt for EscapingVisitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        &mut self.writer
    }
}

/// Writes through to `W`, each character that could end, split or restyle a line escaped.
struct Escaping<W>(W);

impl<W: fmt::Write> fmt::Write for Escaping<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Runs of ordinary characters go through in one write.
        let mut plain = 0;
        for (i, c) in s.char_indices() {
            if let Some(escaped) = escape(c) {
                self.0.write_str(&s[plain..i])?;
                escaped.write_to(&mut self.0)?;
                plain = i + c.len_utf8();
            }
        }
        self.0.write_str(&s[plain..])
    }
}

/// How a character is written in a log line, when not as itself.
enum Escaped {
    Short(&'static str),
    Code(u32),
}

impl Escaped {
    fn write_to(&self, w: &mut impl fmt::Write) -> fmt::Result {
        match self {
            Self::Short(s) => w.write_str(s),
            Self::Code(c) => write!(w, "\\u{{{c:x}}}"),
        }
    }
}

/// The escape of `c`: newline, carriage return and tab as `\n`, `\r`, `\t`; every other
/// control character (C0, DEL, C1 — ESC included) and the Unicode line and paragraph
/// separators as `\u{..}`; `None` for the rest.
fn escape(c: char) -> Option<Escaped> {
    match c {
        '\n' => Some(Escaped::Short("\\n")),
        '\r' => Some(Escaped::Short("\\r")),
        '\t' => Some(Escaped::Short("\\t")),
        c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => {
            Some(Escaped::Code(c as u32))
        }
        _ => None,
    }
}

/// `text` as it is written in a log line.
#[cfg(test)]
fn escaped(text: &str) -> String {
    let mut out = String::new();
    Escaping(&mut out).write_str(text).unwrap();
    out
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    const FORGED: &str = "x\n2026-12-06T00:00:00Z  INFO audit: forged";

    #[test]
    fn every_line_breaking_character_is_escaped() {
        assert_eq!(escaped("plain text, 한국어 é"), "plain text, 한국어 é");
        assert_eq!(escaped("a\nb\rc\td"), "a\\nb\\rc\\td");
        assert_eq!(escaped("\u{1b}[31mred"), "\\u{1b}[31mred");
        assert_eq!(escaped("\0\u{7}\u{7f}"), "\\u{0}\\u{7}\\u{7f}");
        assert_eq!(escaped("c1\u{85}\u{9b}"), "c1\\u{85}\\u{9b}");
        assert_eq!(escaped("l\u{2028}p\u{2029}"), "l\\u{2028}p\\u{2029}");
    }

    /// What the text format writes for events and spans carrying `FORGED` in every kind of
    /// field.
    fn log_text() -> String {
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .fmt_fields(EscapedFields)
                .with_writer(move || writer.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", request_id = %FORGED, path = FORGED);
            let _entered = span.enter();
            tracing::info!(
                target: "audit",
                documents = %FORGED,
                path = FORGED,
                debug = ?FORGED,
                error = &std::io::Error::other(FORGED) as &(dyn std::error::Error + 'static),
                "call {FORGED}"
            );
            tracing::warn!("{FORGED}");
        });
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_forged_value_stays_on_its_line() {
        let text = log_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "one line per event:\n{text}");
        assert!(
            !lines.iter().any(|l| l.starts_with("2026-12-06T00:00:00Z")),
            "a forged line:\n{text}"
        );
        let audit = lines[0];
        assert!(audit.contains(" INFO "), "{audit}");
        for field in [
            "request_id=x\\n2026-12-06T00:00:00Z  INFO audit: forged",
            "documents=x\\n2026-12-06T00:00:00Z  INFO audit: forged",
            "path=\"x\\n2026-12-06T00:00:00Z  INFO audit: forged\"",
            "call x\\n2026-12-06T00:00:00Z  INFO audit: forged",
            "error=x\\n2026",
        ] {
            assert!(audit.contains(field), "{field} in {audit}");
        }
        assert!(lines[1].contains(" WARN "), "{}", lines[1]);
    }
}
