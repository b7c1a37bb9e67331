//! The embedded store's generations: folders `generations/{stamp}` under the data directory,
//! and the `CURRENT` file naming the one in use (see [`crate::generation`]).

use std::path::{Path, PathBuf};

use super::{CURRENT_FILE, EdgeBackend, SCHEMA_FILE, SHARD_DIR, lock_exclusively, store_dir};
use crate::backend::Backend;
use crate::generation::{Generation, foreign};
use crate::{Result, StoreError};

/// Where the embedded store's generations go, under the data directory.
const GENERATIONS_DIR: &str = "generations";

pub(crate) struct Generations {
    pub(crate) data_dir: PathBuf,
    pub(crate) min_free_bytes: u64,
}

#[async_trait::async_trait]
impl crate::generation::Generations for Generations {
    async fn current(&self) -> Result<Option<Generation>> {
        let dir = store_dir(&self.data_dir)?;
        if !dir.join(SCHEMA_FILE).exists() {
            return Ok(None);
        }
        Ok(Some(if dir == self.data_dir {
            Generation::Top(dir)
        } else {
            Generation::Folder(dir)
        }))
    }

    async fn create(&self, stamp: &str) -> Result<(Generation, Box<dyn Backend>)> {
        let dir = self.data_dir.join(GENERATIONS_DIR).join(stamp);
        if dir.exists() {
            return Err(StoreError::Operation(format!(
                "{} exists already",
                dir.display()
            )));
        }
        let backend = EdgeBackend::open(dir.clone(), self.min_free_bytes).await?;
        Ok((Generation::Folder(dir), Box::new(backend)))
    }

    /// Replaces `CURRENT` by a rename; takes effect when a process next opens the store.
    async fn switch(&self, next: &Generation, _replace_collection: bool) -> Result<()> {
        let Generation::Folder(dir) = next else {
            return Err(foreign(next));
        };
        let data_dir = &self.data_dir;
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

    async fn all(&self) -> Result<Vec<Generation>> {
        let mut found = Vec::new();
        if self.data_dir.join(SCHEMA_FILE).exists() {
            found.push(Generation::Top(self.data_dir.clone()));
        }
        let dir = self.data_dir.join(GENERATIONS_DIR);
        if dir.exists() {
            let mut entries: Vec<PathBuf> = fs_err::read_dir(&dir)
                .map_err(io(&dir))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir())
                .collect();
            entries.sort();
            found.extend(entries.into_iter().map(Generation::Folder));
        }
        Ok(found)
    }

    async fn remove(&self, old: &Generation) -> Result<()> {
        let (Generation::Folder(dir) | Generation::Top(dir)) = old else {
            return Err(foreign(old));
        };
        let data_dir = self.data_dir.clone();
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || remove_folder(&data_dir, &dir))
            .await
            .map_err(|e| StoreError::Unavailable(format!("remove task: {e}")))?
    }
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
    let _lock = lock_exclusively(dir)?;
    if dir == data_dir {
        for name in [SHARD_DIR, SCHEMA_FILE] {
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

fn io(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |e| StoreError::Operation(format!("{}: {e}", path.display()))
}
