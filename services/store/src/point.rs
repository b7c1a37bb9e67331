use std::collections::BTreeMap;

use crate::Fusion;
use rag_lexical::SparseVector;
use serde::{Deserialize, Serialize};

/// Everything stored with a chunk. Field names are the payload keys in Qdrant; the indexed ones
/// are listed in `migrations/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkPayload {
    pub doc_id: String,
    /// Source path, relative to `root` for folder ingests.
    pub source: String,
    /// Canonical folder the document was indexed from; `api:` for documents sent over gRPC.
    pub root: String,
    /// Hash of the document's content and of the pipeline settings that shaped its chunks.
    /// Identifies one version of a document.
    pub doc_hash: String,
    /// 1-based page, 0 for formats without pages.
    pub page: u32,
    pub chunk_index: u32,
    /// Number of chunks in this version of the document.
    pub chunk_count: u32,
    /// Hash of the text the vector was made from (the embedded text, header included): a
    /// stored vector is reused for any chunk with the same hash.
    pub chunk_hash: String,
    pub text: String,
    pub title: String,
    /// Markdown: the section headings above the chunk, outermost first ("Install > Linux").
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub heading: String,
    pub media_type: String,
    pub embedding_model: String,
    /// When this version was written (ms since the epoch). While a new version replaces an old
    /// one both are stored for a moment; readers keep the newer, so none sees a document twice.
    #[serde(default)]
    pub indexed_at_ms: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Who inside the tenant may read the document: group names, or [`EVERYONE`] alone.
    /// Searches filter on it before ranking (see [`Visibility`]).
    #[serde(default = "everyone")]
    pub groups: Vec<String>,
}

/// The tenant of everything indexed without one: folder ingests that name none, the service
/// with authentication off, and every point stored before tenants existed (migration 0004).
pub const DEFAULT_TENANT: &str = "default";

/// The group of documents every caller of the tenant may read.
pub const EVERYONE: &str = "*";

fn everyone() -> Vec<String> {
    vec![EVERYONE.to_owned()]
}

/// Which documents of its tenant a caller may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    /// Every document (an unrestricted key, local use, the ingest worker).
    All,
    /// Documents open to [`EVERYONE`] and those naming one of these groups.
    Groups(Vec<String>),
}

impl Visibility {
    /// Whether a document stored with `groups` is visible.
    pub fn permits(&self, groups: &[String]) -> bool {
        match self {
            Visibility::All => true,
            Visibility::Groups(mine) => groups.iter().any(|g| g == EVERYONE || mine.contains(g)),
        }
    }

    /// Whether a caller with this visibility may write a document for `groups`: every group
    /// named must be one of the caller's, so no one can hide a document from themselves or
    /// place one where they cannot read.
    pub fn covers(&self, groups: &[String]) -> bool {
        match self {
            Visibility::All => true,
            Visibility::Groups(mine) => groups.iter().all(|g| g == EVERYONE || mine.contains(g)),
        }
    }
}

/// What [`valid_name`] accepts, for the messages that refuse a name.
pub const NAME_RULE: &str = "1 to 64 letters, digits, '-', '_', '.', '@', ':'";

/// A tenant or group name as accepted in configuration and requests: 1 to 64 characters,
/// letters, digits, `-`, `_`, `.`, `@`, `:` — so a name can never be read as a path, a
/// wildcard or a list.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | ':'))
}

/// The longest document id accepted, in bytes (a derived id has 32).
pub const MAX_DOCUMENT_ID_BYTES: usize = 256;

/// What [`valid_document_id`] accepts, for the messages that refuse an id.
pub const DOCUMENT_ID_RULE: &str = "1 to 256 bytes, without control characters or line separators";

/// A document id as accepted in requests: not empty, at most [`MAX_DOCUMENT_ID_BYTES`], and
/// nothing that [`breaks_lines`] — an id is written into log and audit lines, and a newline in
/// one would let a caller forge a line of its own.
pub fn valid_document_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_DOCUMENT_ID_BYTES && !id.chars().any(breaks_lines)
}

/// A character that ends, splits or rewrites a line of text where it is shown: the control
/// characters (C0, DEL, C1: newline, carriage return, escape...) and the Unicode line and
/// paragraph separators.
pub fn breaks_lines(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// A document's groups as stored: the named groups, sorted and deduplicated, or [`EVERYONE`]
/// when none is named (or when it is among them).
pub fn normalise_groups(groups: &[String]) -> Vec<String> {
    let mut out: Vec<String> = groups.iter().map(|g| g.trim().to_owned()).collect();
    if out.is_empty() || out.iter().any(|g| g == EVERYONE) {
        return everyone();
    }
    out.sort();
    out.dedup();
    out
}

#[derive(Debug, Clone)]
pub struct ChunkPoint {
    pub id: uuid::Uuid,
    pub vector: Vec<f32>,
    /// BM25 term weights of the text ([`rag_lexical::document_vector`]).
    pub lexical: SparseVector,
    pub payload: ChunkPayload,
}

/// What a search looks for: the query's embedding and, for hybrid retrieval, its terms.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub dense: Vec<f32>,
    /// `None` (or no terms) searches the dense vectors only.
    pub lexical: Option<SparseVector>,
    /// The query's identifiers ([`rag_lexical::identifier_vector`]), ranked on their own
    /// against the lexical vectors and fused as a third list; `None` or empty: no such list.
    pub identifiers: Option<SparseVector>,
    /// How the rankings of a hybrid search are combined.
    pub fusion: Fusion,
}

/// Cosine similarity; the fused score says nothing about absolute relevance, so every hit
/// carries this too.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}

/// Point ids are derived, never random: the same chunk of the same document version always
/// lands on the same id, so re-running an ingest overwrites instead of duplicating. The store
/// mixes in the tenant ([`in_tenant`]), so two tenants' documents never share an id.
pub fn point_id(doc_id: &str, chunk_index: u32, doc_hash: &str) -> uuid::Uuid {
    let mut hasher = blake3::Hasher::new();
    hasher.update(doc_id.as_bytes());
    hasher.update(&[0]);
    hasher.update(&chunk_index.to_le_bytes());
    hasher.update(doc_hash.as_bytes());
    uuid_of(hasher)
}

/// The first 128 bits of the hash, as a UUID (the form point ids take in both engines).
fn uuid_of(hasher: blake3::Hasher) -> uuid::Uuid {
    let bytes: [u8; 16] = hasher.finalize().as_bytes()[..16]
        .try_into()
        .expect("blake3 output is 32 bytes");
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The id a point gets in `tenant`. The default tenant keeps [`point_id`] as it is, so stores
/// written before tenants existed keep their ids (and an unchanged re-run writes nothing).
pub(crate) fn in_tenant(tenant: &str, id: uuid::Uuid) -> uuid::Uuid {
    if tenant == DEFAULT_TENANT {
        return id;
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update(tenant.as_bytes());
    hasher.update(&[0]);
    hasher.update(id.as_bytes());
    uuid_of(hasher)
}

/// The payload as stored: the chunk's fields, its `tenant`, and `path_prefixes`, every
/// directory prefix of the source path and the path itself ("hr/", "hr/leave.md"). Path-prefix
/// filters become exact keyword matches on it, which both backends index (a Qdrant server has
/// no prefix match).
pub(crate) fn stored_payload(
    payload: &ChunkPayload,
    tenant: &str,
) -> serde_json::Map<String, serde_json::Value> {
    let serde_json::Value::Object(mut map) =
        serde_json::to_value(payload).expect("ChunkPayload serialises")
    else {
        unreachable!("ChunkPayload serialises to a JSON object")
    };
    let mut prefixes: Vec<String> = payload
        .source
        .match_indices('/')
        .map(|(i, _)| payload.source[..=i].to_owned())
        .collect();
    prefixes.push(payload.source.clone());
    map.insert(crate::fields::PATH_PREFIXES.into(), prefixes.into());
    map.insert(crate::fields::TENANT.into(), tenant.into());
    map
}

/// The `path_prefixes` values a path-prefix filter accepts: the prefix as a folder and as a
/// file, so "hr", "hr/" and "hr/leave.md" all mean what a user expects.
pub(crate) fn prefix_keys(prefix: &str) -> Vec<String> {
    let trimmed = prefix.trim().trim_start_matches("./");
    let folder = trimmed.trim_end_matches('/');
    if folder.is_empty() {
        return Vec::new();
    }
    vec![folder.to_owned(), format!("{folder}/")]
}

/// Parses a stored payload back; extra stored fields are ignored.
pub(crate) fn parse_payload(
    map: serde_json::Map<String, serde_json::Value>,
) -> Result<ChunkPayload, crate::StoreError> {
    serde_json::from_value(serde_json::Value::Object(map))
        .map_err(|e| crate::StoreError::Operation(format!("stored payload: {e}")))
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The ranking score: the fused score (see [`Fusion`]) for a hybrid
    /// search, the cosine similarity for a dense-only one.
    pub score: f32,
    /// Cosine similarity of the chunk's dense vector to the query's.
    pub similarity: f32,
    /// The chunk's dense vector: answers are checked against it sentence by sentence.
    pub vector: Vec<f32>,
    pub payload: ChunkPayload,
}

/// Which chunks of the tenant a search may return. No `Default`: every caller says what it
/// may see.
#[derive(Debug, Clone)]
pub struct SearchFilter {
    pub path_prefix: Option<String>,
    pub doc_ids: Vec<String>,
    pub visibility: Visibility,
}

impl SearchFilter {
    /// No narrowing: every chunk `visibility` allows.
    pub fn visible(visibility: Visibility) -> Self {
        Self {
            path_prefix: None,
            doc_ids: Vec::new(),
            visibility,
        }
    }
}

/// A document version whose commit marker is stored.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DocumentVersion {
    pub doc_id: String,
    pub source: String,
    pub root: String,
    pub doc_hash: String,
    /// Points the complete version has.
    pub chunk_count: u32,
    /// Who may read it ([`ChunkPayload::groups`]).
    pub groups: Vec<String>,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample_payload(source: &str) -> ChunkPayload {
        ChunkPayload {
            doc_id: "d".into(),
            source: source.into(),
            root: "r".into(),
            doc_hash: "h".into(),
            page: 0,
            chunk_index: 0,
            chunk_count: 1,
            chunk_hash: "c".into(),
            text: "t".into(),
            title: "T".into(),
            heading: String::new(),
            media_type: "text/markdown".into(),
            embedding_model: "m".into(),
            indexed_at_ms: 0,
            metadata: Default::default(),
            groups: everyone(),
        }
    }

    #[test]
    fn path_prefixes_cover_every_folder_and_the_file() {
        let payload = sample_payload("hr/policies/leave.md");
        let stored = stored_payload(&payload, "acme");
        assert_eq!(stored["tenant"], "acme");
        assert_eq!(
            stored["path_prefixes"],
            serde_json::json!(["hr/", "hr/policies/", "hr/policies/leave.md"])
        );
        assert_eq!(parse_payload(stored).unwrap(), payload);
        assert_eq!(prefix_keys("hr/"), ["hr", "hr/"]);
        assert_eq!(
            prefix_keys("./hr/policies"),
            ["hr/policies", "hr/policies/"]
        );
        assert!(prefix_keys(" / ").is_empty());
    }

    #[test]
    fn point_ids_are_stable_and_distinct() {
        let a = point_id("doc", 0, "h1");
        assert_eq!(a, point_id("doc", 0, "h1"));
        assert_ne!(a, point_id("doc", 1, "h1"));
        assert_ne!(a, point_id("doc", 0, "h2"));
        assert_ne!(a, point_id("doc2", 0, "h1"));
        assert_eq!(in_tenant(DEFAULT_TENANT, a), a);
        assert_ne!(in_tenant("acme", a), a);
        assert_ne!(in_tenant("acme", a), in_tenant("globex", a));
    }

    #[test]
    fn visibility_reads_public_and_own_groups_and_writes_only_own() {
        let eng = Visibility::Groups(vec!["eng".into()]);
        let groups = |g: &[&str]| g.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(eng.permits(&groups(&[EVERYONE])));
        assert!(eng.permits(&groups(&["hr", "eng"])));
        assert!(!eng.permits(&groups(&["hr"])));
        assert!(!eng.permits(&[]));
        assert!(Visibility::All.permits(&groups(&["hr"])));
        assert!(eng.covers(&groups(&["eng"])));
        assert!(!eng.covers(&groups(&["eng", "hr"])));
        assert!(Visibility::Groups(vec![]).covers(&groups(&[EVERYONE])));
        assert_eq!(normalise_groups(&[]), [EVERYONE]);
        assert_eq!(normalise_groups(&groups(&["b", "a", "b"])), ["a", "b"]);
        assert_eq!(normalise_groups(&groups(&["a", EVERYONE])), [EVERYONE]);
        assert!(valid_name("hr-team_2") && valid_name("한국어팀"));
        assert!(!valid_name("") && !valid_name("a,b") && !valid_name("*") && !valid_name("a/b"));
    }

    #[test]
    fn document_ids_are_bounded_single_line_text() {
        for good in [
            "3f2a9c0b1d",
            "hr/leave policy v2",
            "https://wiki/x?id=1",
            "문서-1",
        ] {
            assert!(valid_document_id(good), "{good:?}");
        }
        assert!(valid_document_id(&"x".repeat(MAX_DOCUMENT_ID_BYTES)));
        for bad in [
            "",
            "x\n2026-12-06T00:00:00Z INFO audit forged",
            "x\rforged",
            "tab\there",
            "esc\u{1b}[31m",
            "nul\0",
            "next-line\u{85}",
            "line\u{2028}separator",
            "para\u{2029}separator",
        ] {
            assert!(!valid_document_id(bad), "{bad:?}");
        }
        assert!(!valid_document_id(&"x".repeat(MAX_DOCUMENT_ID_BYTES + 1)));
        // Bytes, not characters: 86 three-byte characters are over.
        assert!(!valid_document_id(&"문".repeat(86)));
    }
}
