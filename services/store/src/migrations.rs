//! The collection schema, as the ordered files in `migrations/`. Each backend applies the steps
//! of every migration newer than the version it has recorded, then records the new version.

use serde::Deserialize;

use crate::{Result, StoreError};

/// The migrations, in the order they apply. A test checks this list against the folder.
const FILES: &[(&str, &str)] = &[
    (
        "0001_chunks.toml",
        include_str!("../../../migrations/0001_chunks.toml"),
    ),
    (
        "0002_chunk_hash.toml",
        include_str!("../../../migrations/0002_chunk_hash.toml"),
    ),
    (
        "0003_lexical.toml",
        include_str!("../../../migrations/0003_lexical.toml"),
    ),
    (
        "0004_tenants.toml",
        include_str!("../../../migrations/0004_tenants.toml"),
    ),
];

/// What the schema is being brought up to: the vector size and model of this configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub vector_size: usize,
    pub embedding_model: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Migration {
    #[serde(skip)]
    pub version: u32,
    #[serde(skip)]
    pub name: String,
    pub description: String,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    CreateCollection {
        dense_vector: String,
        distance: Distance,
    },
    CreatePayloadIndex {
        field: String,
        kind: IndexKind,
        /// Qdrant's multitenancy index: points sharing a value are stored together.
        #[serde(default)]
        is_tenant: bool,
    },
    /// Sets `field` to `value` on every point that lacks it (points written before the field
    /// existed).
    FillMissing {
        field: String,
        value: serde_json::Value,
    },
    /// A named sparse vector added to the collection (in place, also to an existing one).
    CreateSparseVector {
        name: String,
        modifier: SparseModifier,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SparseModifier {
    /// Weights stored as given.
    None,
    /// Query weights multiplied by each term's inverse document frequency.
    Idf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Distance {
    Cosine,
    Dot,
    Euclid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexKind {
    Keyword,
    Integer,
}

/// All migrations, parsed and numbered from their file names.
pub fn all() -> Result<Vec<Migration>> {
    FILES.iter().map(|(name, text)| parse(name, text)).collect()
}

/// The migrations a store at `applied` still needs.
pub fn pending(applied: u32) -> Result<Vec<Migration>> {
    Ok(all()?.into_iter().filter(|m| m.version > applied).collect())
}

/// The version a fully migrated store records.
pub fn latest() -> u32 {
    FILES.len() as u32
}

/// The name of the dense vector, from the migration that created the collection.
pub fn dense_vector_name() -> Result<String> {
    for migration in all()? {
        for step in migration.steps {
            if let Step::CreateCollection { dense_vector, .. } = step {
                return Ok(dense_vector);
            }
        }
    }
    Err(StoreError::Migration {
        name: "migrations/".into(),
        reason: "no create_collection step".into(),
    })
}

/// The name of the sparse lexical vector, if a migration creates one.
pub fn lexical_vector_name() -> Result<Option<String>> {
    for migration in all()? {
        for step in migration.steps {
            if let Step::CreateSparseVector { name, .. } = step {
                return Ok(Some(name));
            }
        }
    }
    Ok(None)
}

fn parse(name: &str, text: &str) -> Result<Migration> {
    let bad = |reason: String| StoreError::Migration {
        name: name.to_owned(),
        reason,
    };
    let version = name
        .split('_')
        .next()
        .and_then(|n| n.parse::<u32>().ok())
        .ok_or_else(|| bad("file name must start with a number, e.g. 0001_".into()))?;
    let mut migration: Migration = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
    migration.version = version;
    migration.name = name.to_owned();
    Ok(migration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_the_folder_is_listed_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".toml"))
            .collect();
        on_disk.sort();
        let listed: Vec<&str> = FILES.iter().map(|(n, _)| *n).collect();
        assert_eq!(on_disk, listed);
        let versions: Vec<u32> = all().unwrap().iter().map(|m| m.version).collect();
        let expected: Vec<u32> = (1..=FILES.len() as u32).collect();
        assert_eq!(
            versions, expected,
            "versions must be 1, 2, 3, ... without gaps"
        );
    }

    #[test]
    fn first_migration_creates_the_collection_with_indexes() {
        let first = &all().unwrap()[0];
        assert!(matches!(first.steps[0], Step::CreateCollection { .. }));
        assert!(first.steps.contains(&Step::CreatePayloadIndex {
            field: "doc_id".into(),
            kind: IndexKind::Keyword,
            is_tenant: false,
        }));
        assert_eq!(dense_vector_name().unwrap(), "dense");
        assert_eq!(lexical_vector_name().unwrap().as_deref(), Some("lexical"));
    }

    #[test]
    fn malformed_migration_is_an_error_naming_the_file() {
        let err = parse(
            "0002_bad.toml",
            "description = 'x'\n[[steps]]\nop = 'drop_everything'",
        )
        .unwrap_err();
        assert!(err.to_string().contains("0002_bad.toml"), "{err}");
    }
}
