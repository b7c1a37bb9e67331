//! Where a document comes from (a folder's file, or bytes sent over the API) and the id it is
//! stored under.

use std::collections::BTreeMap;
use std::path::Path;

use rag_store::Visibility;
use unicode_normalization::UnicodeNormalization;

use crate::error::IndexError;
use crate::extract::MediaType;
use crate::walk::Found;

/// Checks group names given for a document or in a rule: each a valid name, or `*` alone
/// meaning everyone.
pub(crate) fn check_groups(groups: &[String]) -> Result<(), String> {
    for group in groups {
        let group = group.trim();
        if group != rag_store::EVERYONE && !rag_store::valid_name(group) {
            return Err(format!(
                "{group:?} is not a group name ({}; or \"*\" for everyone)",
                rag_store::NAME_RULE
            ));
        }
    }
    Ok(())
}

/// The `root` of documents that arrived over the API rather than from a folder.
pub const API_ROOT: &str = "api:";

/// Deterministic document id for a source path under a root.
pub fn doc_id_for(root: &str, source: &str) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(root.as_bytes());
    hasher.update(&[0]);
    hasher.update(source.as_bytes());
    hasher.finalize().to_hex()[..32].to_owned()
}

/// The name a document sent over the API is stored and cited under: a relative path with `/`
/// between its parts (a backslash counts as one), without empty or `.` parts, in Unicode NFC
/// (so `café.md` typed on macOS, decomposed, and elsewhere, composed, is one document).
/// Refused: `..` parts, absolute paths (also `C:`-style), control characters, characters that
/// look like a path separator, bidirectional text controls and invisible characters — such a
/// name would be shown to readers, and copied into paths by anyone who mirrors the index, as
/// given, and could pass for another one.
///
/// This is the one check of API names (gRPC `IngestDocument`, and any other door that takes
/// document bytes, goes through [`crate::IncomingDocument`]). A folder's file names are only
/// normalised (see `walk::source_path`): a file that exists is not refused for its name.
pub fn source_name(name: &str) -> Result<String, IndexError> {
    let bad = |reason: String| IndexError::BadName {
        name: name.to_owned(),
        reason,
    };
    let name_nfc: String = name.trim().nfc().collect();
    if name_nfc.chars().any(char::is_control) {
        return Err(bad("it contains control characters".into()));
    }
    if let Some((c, what)) = refused_character(&name_nfc) {
        return Err(bad(format!("it contains U+{:04X} ({what})", u32::from(c))));
    }
    let unified = name_nfc.replace('\\', "/");
    if unified.starts_with('/')
        || unified
            .split('/')
            .next()
            .is_some_and(|first| first.ends_with(':'))
    {
        return Err(bad(
            "absolute paths are not accepted; send a relative name".into()
        ));
    }
    let mut parts = Vec::new();
    for part in unified.split('/') {
        match part.trim() {
            "" | "." => {}
            ".." => return Err(bad("`..` is not accepted in a name".into())),
            _ => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err(bad("it is empty".into()));
    }
    Ok(parts.join("/"))
}

/// The first character of `name` a document name may not contain, with what it is.
fn refused_character(name: &str) -> Option<(char, &'static str)> {
    let chars: Vec<char> = name.chars().collect();
    chars.iter().enumerate().find_map(|(i, &c)| {
        let what = match c {
            '\u{2215}' | '\u{2044}' | '\u{FF0F}' | '\u{29F8}' | '\u{2571}' | '\u{27CB}' => {
                "a look-alike of '/'"
            }
            '\u{FF3C}' | '\u{2216}' | '\u{29F5}' | '\u{29F9}' | '\u{2572}' | '\u{27CD}'
            | '\u{FE68}' => "a look-alike of '\\'",
            '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{061C}' => "a bidirectional text control",
            // Joiners shape Persian, Arabic and Indic words and emoji sequences: accepted
            // between two such characters, refused next to ASCII (where they would only hide
            // inside a Latin name) or at an end.
            '\u{200C}' | '\u{200D}' if joins(chars.get(i.wrapping_sub(1)), chars.get(i + 1)) => {
                return None;
            }
            '\u{200B}'..='\u{200D}'
            | '\u{2060}'..='\u{2064}'
            | '\u{FEFF}'
            | '\u{00AD}'
            | '\u{034F}'
            | '\u{180E}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{3164}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E007F}' => "an invisible character",
            '\u{2028}' | '\u{2029}' => "a line break",
            _ => return None,
        };
        Some((c, what))
    })
}

/// Whether a zero-width joiner between `before` and `after` joins two letters of a script that
/// needs it (or emoji): both exist, are not ASCII, and are neither space nor invisible.
fn joins(before: Option<&char>, after: Option<&char>) -> bool {
    let shapes = |c: Option<&char>| {
        c.is_some_and(|&c| {
            !c.is_ascii()
                && !c.is_whitespace()
                && !c.is_control()
                && !matches!(c, '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
        })
    };
    shapes(before) && shapes(after)
}

/// A document sent as bytes.
#[derive(Debug, Clone)]
pub struct IncomingDocument {
    pub file_name: String,
    /// Empty: inferred from `file_name`.
    pub media_type: String,
    pub content: Vec<u8>,
    /// Empty: derived from `file_name`.
    pub document_id: String,
    pub metadata: BTreeMap<String, String>,
    /// The tenant it is written into: the caller's.
    pub tenant: String,
    /// Who may read it; empty: everyone in the tenant.
    pub groups: Vec<String>,
    /// What the caller may read: it may only write documents for its own groups, and only
    /// replace versions it can read.
    pub writer: Visibility,
}

impl IncomingDocument {
    /// The media type named, or else the one the file name implies.
    pub(crate) fn media(&self) -> Result<MediaType, IndexError> {
        let named = !self.media_type.trim().is_empty();
        let media = if named {
            MediaType::from_mime(&self.media_type)
        } else {
            MediaType::from_path(Path::new(&self.file_name))
        };
        media.ok_or_else(|| IndexError::Unsupported {
            path: self.file_name.clone(),
            media_type: if self.media_type.is_empty() {
                self.file_name.clone()
            } else {
                self.media_type.clone()
            },
        })
    }

    /// Its origin and its bytes, once its media type is known.
    pub(crate) fn into_origin(self, media: MediaType) -> (Origin, Vec<u8>) {
        let doc_id = if self.document_id.is_empty() {
            doc_id_for(API_ROOT, &self.file_name)
        } else {
            self.document_id
        };
        let origin = Origin {
            root: API_ROOT.to_owned(),
            doc_id,
            source: self.file_name,
            media,
            metadata: self.metadata,
            groups: rag_store::normalise_groups(&self.groups),
        };
        (origin, self.content)
    }
}

/// Everything about a document but its bytes: what the prepare stage needs to turn them into
/// chunks and to name the document in errors and payloads.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub root: String,
    pub doc_id: String,
    /// The path under the root, or the file name sent: what errors and answers cite.
    pub source: String,
    pub media: MediaType,
    pub metadata: BTreeMap<String, String>,
    /// Who may read it, normalised ([`rag_store::normalise_groups`]).
    pub groups: Vec<String>,
}

impl Origin {
    pub fn file(root: &str, doc_id: String, file: &Found, groups: Vec<String>) -> Self {
        Self {
            root: root.to_owned(),
            doc_id,
            source: file.relative.clone(),
            media: file.media,
            metadata: BTreeMap::new(),
            groups,
        }
    }
}

#[cfg(test)]
mod name_tests {
    use super::source_name;

    #[test]
    fn names_are_normalised_relative_paths() {
        for (given, stored) in [
            ("leave.md", "leave.md"),
            ("  hr/leave.md ", "hr/leave.md"),
            ("./hr//leave.md", "hr/leave.md"),
            ("hr\\policies\\leave.md", "hr/policies/leave.md"),
            ("연차/휴가 규정.md", "연차/휴가 규정.md"),
            ("a..b.md", "a..b.md"),
        ] {
            assert_eq!(source_name(given).unwrap(), stored, "{given:?}");
        }
    }

    #[test]
    fn escaping_absolute_and_control_names_are_refused() {
        for given in [
            "../../etc/passwd.txt",
            "hr/../../x.md",
            "/etc/passwd.txt",
            "\\\\server\\share\\x.md",
            "C:\\Windows\\x.txt",
            "bad\nname.md",
            "tab\tname.md",
            "",
            "./",
        ] {
            assert!(source_name(given).is_err(), "{given:?} was accepted");
        }
    }

    #[test]
    fn composed_and_decomposed_spellings_are_one_name() {
        let composed = "caf\u{e9}.md";
        let decomposed = "cafe\u{301}.md";
        assert_ne!(composed, decomposed);
        assert_eq!(source_name(composed).unwrap(), composed);
        assert_eq!(source_name(decomposed).unwrap(), composed);
        assert_eq!(
            source_name("re\u{301}sume\u{301}s/caf\u{e9}.md").unwrap(),
            "r\u{e9}sum\u{e9}s/caf\u{e9}.md"
        );
        // And so one document id.
        assert_eq!(
            super::doc_id_for(super::API_ROOT, &source_name(composed).unwrap()),
            super::doc_id_for(super::API_ROOT, &source_name(decomposed).unwrap())
        );
    }

    #[test]
    fn look_alike_separators_bidi_controls_and_invisible_characters_are_refused() {
        for (c, what) in [
            ('\u{2215}', "a look-alike of '/'"),
            ('\u{2044}', "a look-alike of '/'"),
            ('\u{FF0F}', "a look-alike of '/'"),
            ('\u{29F8}', "a look-alike of '/'"),
            ('\u{FF3C}', "a look-alike of '\\'"),
            ('\u{2216}', "a look-alike of '\\'"),
            ('\u{202A}', "a bidirectional text control"),
            ('\u{202E}', "a bidirectional text control"),
            ('\u{2066}', "a bidirectional text control"),
            ('\u{2069}', "a bidirectional text control"),
            ('\u{200E}', "a bidirectional text control"),
            ('\u{200F}', "a bidirectional text control"),
            ('\u{061C}', "a bidirectional text control"),
            ('\u{200B}', "an invisible character"),
            ('\u{200C}', "an invisible character"),
            ('\u{200D}', "an invisible character"),
            ('\u{2060}', "an invisible character"),
            ('\u{FEFF}', "an invisible character"),
        ] {
            let given = format!("hr{c}leave.md");
            let err = source_name(&given).expect_err(&given).to_string();
            let want = format!("contains U+{:04X} ({what})", u32::from(c));
            assert!(err.contains(&want), "{given:?}: {err:?} lacks {want:?}");
            assert!(err.contains("not a usable document name"), "{err}");
        }
        // At either end too (trimming does not remove them).
        assert!(source_name("\u{FEFF}leave.md").is_err());
        assert!(source_name("leave.md\u{200B}").is_err());
        assert!(source_name("\u{202E}dm.exe").is_err());
    }

    #[test]
    fn joiners_inside_words_of_scripts_that_need_them_are_kept() {
        // Persian plural with a zero-width non-joiner; an emoji sequence with joiners.
        for given in [
            "\u{06AF}\u{0632}\u{0627}\u{0631}\u{0634}\u{200C}\u{0647}\u{0627}.md",
            "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}.md",
        ] {
            assert_eq!(source_name(given).unwrap(), given, "{given:?}");
        }
        // Next to ASCII a joiner only hides: refused.
        assert!(source_name("pay\u{200C}pal.md").is_err());
        assert!(source_name("\u{200D}\u{1F468}.md").is_err());
    }
}
