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
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::edge::{self, CURRENT_FILE, EdgeBackend};
use crate::point::parse_payload;
use crate::server::{Named, ServerBackend};
use crate::{ChunkPayload, Result, Store, StoreConfig, StoreError, fields, migrations};

/// Points read per page by [`contents`].
const PAGE: usize = 512;

/// Where the embedded store's generations go, under the data directory.
const GENERATIONS_DIR: &str = "generations";

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

/// The generation `config`'s name points to now; `None` when there is no store yet.
pub async fn current(config: &StoreConfig) -> Result<Option<Generation>> {
    match config {
        StoreConfig::Embedded { data_dir, .. } => {
            let dir = edge::store_dir(data_dir)?;
            if !dir.join(edge::SCHEMA_FILE).exists() {
                return Ok(None);
            }
            Ok(Some(if &dir == data_dir {
                Generation::Top(dir)
            } else {
                Generation::Folder(dir)
            }))
        }
        StoreConfig::Server { collection, .. } => {
            let server = connect_exact(config, collection).await?;
            Ok(match server.named(collection).await? {
                Named::Alias(target) => Some(Generation::Collection(target)),
                Named::Collection => Some(Generation::Collection(collection.clone())),
                Named::Nothing => None,
            })
        }
    }
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
    let (generation, backend): (Generation, Box<dyn crate::backend::Backend>) = match config {
        StoreConfig::Embedded {
            data_dir,
            min_free_bytes,
        } => {
            let dir = data_dir.join(GENERATIONS_DIR).join(stamp);
            if dir.exists() {
                return Err(StoreError::Operation(format!(
                    "{} exists already",
                    dir.display()
                )));
            }
            let backend = EdgeBackend::open(dir.clone(), *min_free_bytes).await?;
            (Generation::Folder(dir), Box::new(backend))
        }
        StoreConfig::Server { collection, .. } => {
            let name = format!("{collection}-{stamp}");
            let backend = connect_exact(config, &name).await?;
            if !matches!(backend.named(&name).await?, Named::Nothing) {
                return Err(StoreError::Operation(format!(
                    "collection or alias {name} exists already"
                )));
            }
            (Generation::Collection(name), Box::new(backend))
        }
    };
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
    match (config, next) {
        (StoreConfig::Embedded { data_dir, .. }, Generation::Folder(dir)) => {
            let relative = dir.strip_prefix(data_dir).map_err(|_| {
                StoreError::Operation(format!(
                    "{} is not under the data directory {}",
                    dir.display(),
                    data_dir.display()
                ))
            })?;
            let relative = relative.to_string_lossy().into_owned();
            let data_dir = data_dir.clone();
            tokio::task::spawn_blocking(move || write_current(&data_dir, &relative))
                .await
                .map_err(|e| StoreError::Unavailable(format!("switch task: {e}")))?
        }
        (StoreConfig::Server { collection, .. }, Generation::Collection(next)) => {
            let server = connect_exact(config, next).await?;
            if let Named::Collection = server.named(collection).await? {
                if !replace_collection {
                    return Err(StoreError::Operation(format!(
                        "{collection} is a collection (made before stores were aliases), so it \
                         cannot be switched while services use it: stop them and switch with \
                         the old collection deleted (rag reindex --drop-old), or keep \
                         store.collection = {next:?} for the new services"
                    )));
                }
                server.delete_collection(collection).await?;
            }
            server.point_alias(collection).await
        }
        _ => Err(StoreError::Operation(format!(
            "{next} is not a generation of this store"
        ))),
    }
}

/// Generations of `config`'s store that its name does not point to: old ones kept after a
/// switch, and builds that never finished.
pub async fn others(config: &StoreConfig) -> Result<Vec<Generation>> {
    let current = current(config).await?;
    let mut found = Vec::new();
    match config {
        StoreConfig::Embedded { data_dir, .. } => {
            if data_dir.join(edge::SCHEMA_FILE).exists() {
                found.push(Generation::Top(data_dir.clone()));
            }
            let dir = data_dir.join(GENERATIONS_DIR);
            if dir.exists() {
                let mut entries: Vec<PathBuf> = fs_err::read_dir(&dir)
                    .map_err(io(&dir))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_dir())
                    .collect();
                entries.sort();
                found.extend(entries.into_iter().map(Generation::Folder));
            }
        }
        StoreConfig::Server { collection, .. } => {
            let server = connect_exact(config, collection).await?;
            // Only `{name}-{digits}`: another store's collection may share the prefix.
            let prefix = format!("{collection}-");
            let mut names: Vec<String> = server
                .collections_named(&prefix)
                .await?
                .into_iter()
                .filter(|n| {
                    let stamp = &n[prefix.len()..];
                    !stamp.is_empty() && stamp.bytes().all(|b| b.is_ascii_digit())
                })
                .collect();
            names.sort();
            found.extend(names.into_iter().map(Generation::Collection));
        }
    }
    found.retain(|g| Some(g) != current.as_ref());
    Ok(found)
}

/// Deletes `old`, a generation of `config`'s store that its name no longer points to. Open
/// handles on it must be dropped first (embedded: the folder is locked while open).
pub async fn remove(config: &StoreConfig, old: &Generation) -> Result<()> {
    if current(config).await?.as_ref() == Some(old) {
        return Err(StoreError::Operation(format!(
            "{old} is the current generation: it is never removed"
        )));
    }
    match (config, old) {
        (
            StoreConfig::Embedded { data_dir, .. },
            Generation::Folder(dir) | Generation::Top(dir),
        ) => {
            let data_dir = data_dir.clone();
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || remove_folder(&data_dir, &dir))
                .await
                .map_err(|e| StoreError::Unavailable(format!("remove task: {e}")))?
        }
        (StoreConfig::Server { .. }, Generation::Collection(name)) => {
            connect_exact(config, name)
                .await?
                .delete_collection(name)
                .await
        }
        _ => Err(StoreError::Operation(format!(
            "{old} is not a generation of this store"
        ))),
    }
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

/// Writes `CURRENT` beside it and renames it over the old one: a crash leaves one or the other.
fn write_current(data_dir: &Path, relative: &str) -> Result<()> {
    let path = data_dir.join(CURRENT_FILE);
    let tmp = data_dir.join(format!("{CURRENT_FILE}.tmp"));
    fs_err::write(&tmp, format!("{relative}\n")).map_err(io(&tmp))?;
    fs_err::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io(&tmp))?;
    fs_err::rename(&tmp, &path).map_err(io(&path))?;
    // The rename is durable once the directory is.
    fs_err::File::open(data_dir)
        .and_then(|d| d.sync_all())
        .map_err(io(data_dir))
}

/// An old embedded generation: a folder under `generations/`, or the store files at the top of
/// the data directory (a store made before generations), never anything else there.
fn remove_folder(data_dir: &Path, dir: &Path) -> Result<()> {
    // Never from under a process that has it open.
    let _lock = edge::lock_exclusively(dir)?;
    if dir == data_dir {
        for name in [edge::SHARD_DIR, edge::SCHEMA_FILE] {
            let path = data_dir.join(name);
            let removed = if path.is_dir() {
                fs_err::remove_dir_all(&path)
            } else {
                fs_err::remove_file(&path)
            };
            match removed {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path)(e)),
            }
        }
        return Ok(());
    }
    if dir.parent() != Some(&data_dir.join(GENERATIONS_DIR)) {
        return Err(StoreError::Operation(format!(
            "{} is not a generation folder of {}",
            dir.display(),
            data_dir.display()
        )));
    }
    fs_err::remove_dir_all(dir).map_err(io(dir))
}

async fn connect_exact(config: &StoreConfig, collection: &str) -> Result<ServerBackend> {
    match config {
        StoreConfig::Server {
            urls,
            api_key,
            timeout,
            layout,
            ..
        } => {
            ServerBackend::connect_exact(urls, collection, api_key.as_deref(), *timeout, *layout)
                .await
        }
        StoreConfig::Embedded { .. } => Err(StoreError::Operation(
            "an embedded store has no collections".into(),
        )),
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::Operation(format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
