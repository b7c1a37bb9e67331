//! Re-embedding without downtime: which store a configured name means now, the next one built
//! beside it, and the switch from one to the other (`rag reindex`).
//!
//! - Server: the configured collection name is an alias, and each generation a collection
//!   `{name}-{stamp}` (a new store starts as `{name}-0`). The switch points the alias at the
//!   next collection in one request, which the server applies atomically. A process resolves
//!   the alias once, when it connects: a running service keeps the collection, and so the
//!   embedding model, it started with; one started after the switch gets the new one. The old
//!   collection stays until it is removed on request.
//! - Embedded: a generation is a folder `generations/{stamp}` under the data directory, and the
//!   data directory's `CURRENT` file names the current one (none: the data directory itself is
//!   the store, as every store made before generations). The switch replaces `CURRENT` by a
//!   rename. The data directory belongs to one process at a time, so the embedded switch is
//!   made with the service stopped, and takes effect when it starts again.
//!
//! A crash at any moment before the switch leaves the current generation as it was and an
//! unfinished one beside it, which [`others`] lists and [`remove`] deletes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use crate::backend::Backend;
use crate::point::parse_payload;
use crate::{ChunkPayload, Result, Store, StoreConfig, StoreError, fields, migrations};

/// Points read per page by [`contents`].
const PAGE: usize = 512;

/// One generation of a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Generation {
    /// A collection of the Qdrant server.
    Collection(String),
    /// A folder under the embedded store's data directory (`generations/{stamp}`).
    Folder(PathBuf),
    /// The embedded store kept at the top of its data directory (`chunks/`, `schema.json`),
    /// as every store made before generations.
    Top(PathBuf),
}

impl std::fmt::Display for Generation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Generation::Collection(name) => write!(f, "collection {name}"),
            Generation::Folder(dir) => write!(f, "folder {}", dir.display()),
            Generation::Top(dir) => write!(f, "the store at the top of {}", dir.display()),
        }
    }
}

/// What differs between the backends in keeping generations: each backend implements it
/// (`edge/generations.rs`, `server/generations.rs`), and [`crate::generations`] picks one.
#[async_trait::async_trait]
pub(crate) trait Generations: Send + Sync {
    /// The generation the store's name points to now; `None` when there is no store yet.
    async fn current(&self) -> Result<Option<Generation>>;
    /// Creates the empty generation `stamp` and opens it; nothing points to it yet.
    async fn create(&self, stamp: &str) -> Result<(Generation, Box<dyn Backend>)>;
    /// Points the store's name at `next` (see [`switch`]).
    async fn switch(&self, next: &Generation, replace_collection: bool) -> Result<()>;
    /// The generations of this store there are (the current one may be among them).
    async fn all(&self) -> Result<Vec<Generation>>;
    /// Deletes `old`, which the caller has checked is not the current generation.
    async fn remove(&self, old: &Generation) -> Result<()>;
    /// Whether `generation` is the store's configured name itself rather than a generation
    /// behind it (a server collection made before stores were aliases).
    fn is_the_name(&self, _generation: &Generation) -> bool {
        false
    }
}

/// The generation `config`'s name points to now; `None` when there is no store yet.
pub async fn current(config: &StoreConfig) -> Result<Option<Generation>> {
    crate::generations(config).current().await
}

/// Creates the generation `stamp` (unique per run, e.g. seconds since the epoch) beside the
/// current one, empty, for vectors of `vector_size` from `embedding_model`, and opens it. No
/// name points to it until [`switch`].
pub async fn create(
    config: &StoreConfig,
    stamp: &str,
    vector_size: usize,
    embedding_model: &str,
) -> Result<(Generation, Arc<Store>)> {
    let target = migrations::Target {
        vector_size,
        embedding_model: embedding_model.to_owned(),
    };
    let (generation, backend) = crate::generations(config).create(stamp).await?;
    Ok((generation, Arc::new(Store::open(backend, &target).await?)))
}

/// Points `config`'s name at `next`, for every process that opens the store from now on.
///
/// A server name that is still a plain collection (a store made before aliases) cannot become
/// an alias while that collection exists: with `replace_collection` it is deleted first, which
/// ends the searches of every service still using it; without, the switch is refused.
pub async fn switch(
    config: &StoreConfig,
    next: &Generation,
    replace_collection: bool,
) -> Result<()> {
    crate::generations(config)
        .switch(next, replace_collection)
        .await
}

/// Generations of `config`'s store that its name does not point to: old ones kept after a
/// switch, and builds that never finished.
pub async fn others(config: &StoreConfig) -> Result<Vec<Generation>> {
    let generations = crate::generations(config);
    let current = generations.current().await?;
    let mut found = generations.all().await?;
    found.retain(|g| Some(g) != current.as_ref());
    Ok(found)
}

/// Deletes `old`, a generation of `config`'s store that its name no longer points to. Open
/// handles on it must be dropped first (embedded: the folder is locked while open).
pub async fn remove(config: &StoreConfig, old: &Generation) -> Result<()> {
    let generations = crate::generations(config);
    if generations.current().await?.as_ref() == Some(old) {
        return Err(StoreError::Operation(format!(
            "{old} is the current generation: it is never removed"
        )));
    }
    generations.remove(old).await
}

/// Whether `generation` is `config`'s store name itself, not a generation behind the name: a
/// server collection made before stores were aliases, which a switch must replace.
pub fn is_the_name(config: &StoreConfig, generation: &Generation) -> bool {
    crate::generations(config).is_the_name(generation)
}

/// `generation` is not one of this store's: refused.
pub(crate) fn foreign(generation: &Generation) -> StoreError {
    StoreError::Operation(format!("{generation} is not a generation of this store"))
}

/// What a store holds that a rebuild starts from.
#[derive(Debug, Default)]
pub struct Contents {
    /// Every folder indexed into the store, with the tenant it was indexed for, and the source
    /// paths (relative to the folder) of the documents indexed from it.
    pub folders: BTreeMap<(String, String), BTreeSet<String>>,
    /// The newest complete version of every document under the root asked for (the API's),
    /// with its tenant, chunks in order.
    pub documents: Vec<(String, Vec<ChunkPayload>)>,
    /// Points read, all tenants.
    pub points: u64,
}

/// Reads every tenant's points of `store` once: the folders indexed into it, and the
/// documents under `root` (those sent over the API, which only the store holds). Versions
/// missing a chunk (a write that a crash interrupted) are left out.
pub async fn contents(store: &Store, root: &str) -> Result<Contents> {
    let mut contents = Contents::default();
    // (tenant, doc_id, doc_hash) -> chunks by index.
    let mut versions: BTreeMap<(String, String, String), BTreeMap<u32, ChunkPayload>> =
        BTreeMap::new();
    let mut offset = None;
    loop {
        let page = store.backend.export(offset, PAGE).await?;
        for point in page.points {
            contents.points += 1;
            let text = |field: &str| {
                point
                    .payload
                    .get(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            let (tenant, point_root) = (text(fields::TENANT), text(fields::ROOT));
            if point_root != root {
                contents
                    .folders
                    .entry((tenant, point_root))
                    .or_default()
                    .insert(text(fields::SOURCE));
                continue;
            }
            let payload = parse_payload(point.payload)?;
            versions
                .entry((tenant, payload.doc_id.clone(), payload.doc_hash.clone()))
                .or_default()
                .insert(payload.chunk_index, payload);
        }
        match page.next {
            Some(next) => offset = Some(next),
            None => break,
        }
    }
    // The newest complete version of each (tenant, document).
    let mut newest: BTreeMap<(String, String), (u64, Vec<ChunkPayload>)> = BTreeMap::new();
    for ((tenant, doc_id, _), chunks) in versions {
        let count = chunks.values().next().map_or(0, |c| c.chunk_count) as usize;
        let complete = count == chunks.len() && chunks.keys().copied().eq(0..count as u32);
        if !complete {
            continue;
        }
        let chunks: Vec<ChunkPayload> = chunks.into_values().collect();
        let at = chunks[0].indexed_at_ms;
        let slot = newest.entry((tenant, doc_id)).or_insert((at, Vec::new()));
        if slot.1.is_empty() || at > slot.0 {
            *slot = (at, chunks);
        }
    }
    contents.documents = newest
        .into_iter()
        .map(|((tenant, _), (_, chunks))| (tenant, chunks))
        .collect();
    Ok(contents)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::edge::{self, CURRENT_FILE};

    fn embedded(dir: &Path) -> StoreConfig {
        StoreConfig::Embedded {
            data_dir: dir.to_owned(),
            min_free_bytes: 0,
        }
    }

    #[tokio::test]
    async fn an_embedded_store_switches_generations_and_removes_only_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let config = embedded(dir.path());
        assert_eq!(current(&config).await.unwrap(), None);
        drop(crate::open(&config, 4, "a").await.unwrap());
        let top = Generation::Top(dir.path().to_owned());
        assert_eq!(current(&config).await.unwrap(), Some(top.clone()));

        // Built beside the current store while it is open, then switched to.
        let old = crate::open(&config, 4, "a").await.unwrap();
        let (next, store) = create(&config, "1", 8, "b").await.unwrap();
        assert!(
            create(&config, "1", 8, "b").await.is_err(),
            "one build per stamp"
        );
        assert_eq!(others(&config).await.unwrap(), vec![next.clone()]);
        switch(&config, &next, false).await.unwrap();
        assert_eq!(current(&config).await.unwrap(), Some(next.clone()));
        assert_eq!(others(&config).await.unwrap(), vec![top.clone()]);
        assert!(
            remove(&config, &next).await.is_err(),
            "never the current one"
        );
        drop((old, store));

        // Opening the data directory now opens the new generation, with its model.
        let reopened = crate::open_existing(&config).await.unwrap();
        assert_eq!(reopened.stats().await.unwrap().vector_size, 8);
        assert!(
            crate::open(&config, 4, "a").await.is_err(),
            "one process per store"
        );
        drop(reopened);
        remove(&config, &top).await.unwrap();
        assert!(!dir.path().join(edge::SHARD_DIR).exists());
        assert!(!dir.path().join(edge::SCHEMA_FILE).exists());
        assert_eq!(others(&config).await.unwrap(), Vec::<Generation>::new());
        assert_eq!(
            crate::open_existing(&config)
                .await
                .unwrap()
                .stats()
                .await
                .unwrap()
                .embedding_model,
            "b"
        );
    }

    #[tokio::test]
    async fn a_current_file_may_only_name_a_folder_under_the_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["../elsewhere", "/etc", ""] {
            std::fs::write(dir.path().join(CURRENT_FILE), bad).unwrap();
            assert!(
                current(&embedded(dir.path())).await.is_err(),
                "{bad:?} accepted"
            );
        }
    }
}
