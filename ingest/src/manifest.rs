//! What the last run saw of each file: (size, mtime, inode) -> content hash. A file whose stat
//! still matches is not read again, which keeps an unchanged re-run of a large folder to a walk
//! and a stat per file.
//!
//! The manifest is a cache, never the truth: a hit counts only if the store still holds that
//! version (the caller checks), so a lost, stale or foreign manifest costs reading time, never
//! correctness.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Entries whose mtime is this close to the run's start are not trusted next time: on a
/// file system with coarse timestamps a write right after our read could keep the mtime.
const RACY_WINDOW: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat {
    pub size: u64,
    pub mtime_ns: i128,
    pub inode: u64,
}

impl Stat {
    pub fn of(metadata: &std::fs::Metadata) -> Self {
        let mtime_ns = metadata
            .modified()
            .ok()
            .map(|t| match t.duration_since(UNIX_EPOCH) {
                Ok(d) => d.as_nanos() as i128,
                Err(e) => -(e.duration().as_nanos() as i128),
            })
            .unwrap_or(0);
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(metadata);
        #[cfg(not(unix))]
        let inode = 0;
        Self {
            size: metadata.len(),
            mtime_ns,
            inode,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    stat: Stat,
    doc_hash: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct OnDisk {
    /// The pipeline settings the hashes were made under; another fingerprint voids the file.
    fingerprint: String,
    root: String,
    files: HashMap<String, Entry>,
}

/// One folder's manifest, loaded at the start of a run and saved at its end.
#[derive(Debug)]
pub struct Manifest {
    path: Option<PathBuf>,
    previous: OnDisk,
    next: OnDisk,
    trust_before_ns: i128,
}

impl Manifest {
    /// The manifest for `root` in `dir` (none when `dir` is `None`: every file is read).
    /// An unreadable or mismatched file is treated as empty.
    pub fn load(dir: Option<&Path>, root: &str, fingerprint: &str, run_start: SystemTime) -> Self {
        let path = dir.map(|d| {
            d.join(format!(
                "{}.json",
                &blake3::hash(root.as_bytes()).to_hex()[..16]
            ))
        });
        let previous = path
            .as_deref()
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|bytes| serde_json::from_slice::<OnDisk>(&bytes).ok())
            .filter(|m| m.fingerprint == fingerprint && m.root == root)
            .unwrap_or_default();
        let trust_before_ns = run_start
            .checked_sub(RACY_WINDOW)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i128);
        Self {
            path,
            previous,
            next: OnDisk {
                fingerprint: fingerprint.to_owned(),
                root: root.to_owned(),
                files: HashMap::new(),
            },
            trust_before_ns,
        }
    }

    /// The content hash recorded for `relative` if its stat is unchanged.
    pub fn hash_if_unchanged(&self, relative: &str, stat: &Stat) -> Option<&str> {
        self.previous
            .files
            .get(relative)
            .filter(|e| e.stat == *stat)
            .map(|e| e.doc_hash.as_str())
    }

    /// Records that `relative`, as of `stat`, is stored as version `doc_hash`.
    pub fn record(&mut self, relative: &str, stat: Stat, doc_hash: &str) {
        if stat.mtime_ns >= self.trust_before_ns {
            return;
        }
        self.next.files.insert(
            relative.to_owned(),
            Entry {
                stat,
                doc_hash: doc_hash.to_owned(),
            },
        );
    }

    /// Writes what this run recorded, atomically. Files not recorded (failed, removed, racy)
    /// are read again next time.
    pub fn save(&self) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let dir = path.parent().expect("manifest path has a folder");
        fs_err::create_dir_all(dir)?;
        let bytes = serde_json::to_vec(&self.next).map_err(std::io::Error::other)?;
        let tmp = tempfile::NamedTempFile::new_in(dir)?;
        fs_err::write(tmp.path(), bytes)?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(size: u64, mtime_ns: i128) -> Stat {
        Stat {
            size,
            mtime_ns,
            inode: 7,
        }
    }

    #[test]
    fn a_recorded_file_is_unchanged_only_while_its_stat_matches() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let mut m = Manifest::load(Some(dir.path()), "/docs", "fp", now);
        m.record("a.md", stat(10, 1_000), "h1");
        m.save().unwrap();

        let m = Manifest::load(Some(dir.path()), "/docs", "fp", now);
        assert_eq!(m.hash_if_unchanged("a.md", &stat(10, 1_000)), Some("h1"));
        assert_eq!(m.hash_if_unchanged("a.md", &stat(11, 1_000)), None);
        assert_eq!(m.hash_if_unchanged("a.md", &stat(10, 1_001)), None);
        assert_eq!(m.hash_if_unchanged("b.md", &stat(10, 1_000)), None);
    }

    #[test]
    fn another_fingerprint_or_root_voids_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let mut m = Manifest::load(Some(dir.path()), "/docs", "fp", now);
        m.record("a.md", stat(10, 1_000), "h1");
        m.save().unwrap();
        let other = Manifest::load(Some(dir.path()), "/docs", "fp2", now);
        assert_eq!(other.hash_if_unchanged("a.md", &stat(10, 1_000)), None);
        let other = Manifest::load(Some(dir.path()), "/elsewhere", "fp", now);
        assert_eq!(other.hash_if_unchanged("a.md", &stat(10, 1_000)), None);
    }

    #[test]
    fn files_modified_just_before_the_run_are_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let now_ns = now.duration_since(UNIX_EPOCH).unwrap().as_nanos() as i128;
        let mut m = Manifest::load(Some(dir.path()), "/docs", "fp", now);
        m.record("fresh.md", stat(10, now_ns - 1_000_000), "h1");
        m.save().unwrap();
        let m = Manifest::load(Some(dir.path()), "/docs", "fp", now);
        assert_eq!(
            m.hash_if_unchanged("fresh.md", &stat(10, now_ns - 1_000_000)),
            None
        );
    }

    #[test]
    fn a_corrupt_manifest_is_empty_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let m = Manifest::load(Some(dir.path()), "/docs", "fp", SystemTime::now());
        std::fs::write(m.path.as_ref().unwrap(), b"{ not json").unwrap();
        let m = Manifest::load(Some(dir.path()), "/docs", "fp", SystemTime::now());
        assert_eq!(m.hash_if_unchanged("a.md", &stat(1, 1)), None);
    }
}
