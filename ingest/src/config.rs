use serde::{Deserialize, Serialize};

use crate::error::IndexError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Largest chunk, in embedding-model tokens (special tokens excluded).
    pub chunk_tokens: usize,
    /// Tokens shared by neighbouring chunks.
    pub overlap_tokens: usize,
    /// Contextual chunk headers: each chunk is embedded (and its lexical vector made) with a
    /// header line naming the document's title and its heading path (Markdown, DOCX), or its
    /// title or file name (other formats); the stored text stays the document's. Changing it
    /// re-embeds everything on the next ingest. Off by default: on the natural-question sets
    /// and the Debian Policy set it cost up to 10 points of dense recall@5 and gained at most
    /// 0.7 (BENCHMARKS.md).
    pub chunk_headers: bool,
    /// Files larger than this are reported and skipped.
    pub max_file_bytes: u64,
    /// How long one PDF extractor may run on one file.
    pub pdf_timeout_secs: u64,
    /// Chunks embedded per model call.
    pub embed_batch: usize,
    /// Files read and extracted at once, while the model embeds.
    pub extract_workers: usize,
    /// Chunks gathered (across documents) before they are sorted into batches.
    pub embed_window: usize,
    /// Batch chunks of similar token length together, so little compute goes to padding.
    pub sort_by_length: bool,
    /// The tenant a folder ingest writes into (documents sent over the API go to the caller's).
    pub tenant: String,
    /// Who may read a folder's documents: `[[ingest.groups]]` rules of a path prefix (a folder
    /// or a file, relative to the folder ingested) and the groups allowed; the longest prefix
    /// that matches a file decides. A file no rule matches is open to everyone in the tenant.
    pub groups: Vec<GroupRule>,
}

/// One `[[ingest.groups]]` rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupRule {
    /// "hr" or "hr/" (the folder), "hr/salaries.md" (one file).
    pub prefix: String,
    /// Groups that may read the documents; `["*"]`: everyone in the tenant.
    pub groups: Vec<String>,
}

impl IngestConfig {
    /// Refuses a tenant or group name that could not be matched safely.
    pub fn check(&self) -> Result<(), IndexError> {
        let bad = |reason: String| IndexError::Folder(format!("ingest configuration: {reason}"));
        if !rag_store::valid_name(&self.tenant) {
            return Err(bad(format!(
                "tenant {:?}: use {}",
                self.tenant,
                rag_store::NAME_RULE
            )));
        }
        for rule in &self.groups {
            crate::document::check_groups(&rule.groups).map_err(|reason| {
                bad(format!(
                    "groups rule for prefix {:?}: {reason}",
                    rule.prefix
                ))
            })?;
        }
        Ok(())
    }

    /// The groups that may read the folder file at `relative`, by the longest matching rule.
    pub fn groups_for(&self, relative: &str) -> Vec<String> {
        self.groups
            .iter()
            .filter_map(|rule| {
                let prefix = rule
                    .prefix
                    .trim()
                    .trim_start_matches("./")
                    .trim_end_matches('/');
                let matches = !prefix.is_empty()
                    && (relative == prefix
                        || relative
                            .strip_prefix(prefix)
                            .is_some_and(|rest| rest.starts_with('/')));
                matches.then_some((prefix.len(), &rule.groups))
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, groups)| rag_store::normalise_groups(groups))
            .unwrap_or_else(|| rag_store::normalise_groups(&[]))
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            chunk_tokens: 200,
            overlap_tokens: 32,
            // Off: measured below plain chunks on most sets (BENCHMARKS.md, issue 13 "after").
            chunk_headers: false,
            max_file_bytes: 64 * 1024 * 1024,
            pdf_timeout_secs: 60,
            embed_batch: 32,
            extract_workers: 2,
            embed_window: 1024,
            sort_by_length: true,
            tenant: rag_store::DEFAULT_TENANT.to_owned(),
            groups: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_matching_prefix_decides_a_files_groups() {
        let rule = |prefix: &str, groups: &[&str]| GroupRule {
            prefix: prefix.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        };
        let config = IngestConfig {
            groups: vec![
                rule("hr/", &["hr"]),
                rule("./hr/salaries.md", &["hr-leads", "finance"]),
                rule("finance", &["finance"]),
            ],
            ..Default::default()
        };
        config.check().unwrap();
        assert_eq!(config.groups_for("hr/leave.md"), ["hr"]);
        assert_eq!(config.groups_for("hr/salaries.md"), ["finance", "hr-leads"]);
        assert_eq!(config.groups_for("finance/q3.md"), ["finance"]);
        // A folder name is matched whole: "hr-archive" is not under "hr".
        assert_eq!(config.groups_for("hr-archive/x.md"), ["*"]);
        assert_eq!(config.groups_for("it/vpn.md"), ["*"]);
        let bad = IngestConfig {
            groups: vec![rule("x", &["a,b"])],
            ..Default::default()
        };
        assert!(bad.check().is_err());
        let bad = IngestConfig {
            tenant: "a/b".into(),
            ..Default::default()
        };
        assert!(bad.check().is_err());
    }
}
