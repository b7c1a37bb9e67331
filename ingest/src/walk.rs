//! The folder walk: which files a folder ingest considers.
//!
//! Symbolic links are never followed: a link (to a file or a folder, inside the folder or not)
//! is reported as skipped, and the read opens what the walk found without following links
//! either (`open`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use unicode_normalization::{UnicodeNormalization, is_nfc};

use crate::extract::MediaType;

/// A file found under the ingest root.
#[derive(Debug, Clone)]
pub struct Found {
    /// The file on disk (the root joined with its name as the disk spells it).
    pub path: PathBuf,
    /// The ingest root, as walked: the file is opened from there without following links.
    pub root: Arc<Path>,
    /// Path relative to the root, with `/` separators, in Unicode NFC: the document's source
    /// path.
    pub relative: String,
    pub media: MediaType,
}

/// Something the walk could not use, with the reason.
#[derive(Debug, Clone)]
pub struct Skipped {
    pub path: PathBuf,
    pub kind: SkipKind,
    pub reason: String,
}

/// Why the walk left something out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipKind {
    /// A file of a type the ingest does not read.
    Unsupported,
    /// A symbolic link (to a file or a folder): links are not followed.
    SymbolicLink,
    /// A second file whose name is the same as another's once normalised (NFC).
    SameName,
    /// Something the walk could not list or look at.
    Unreadable,
}

impl SkipKind {
    pub const ALL: [Self; 4] = [
        Self::Unsupported,
        Self::SymbolicLink,
        Self::SameName,
        Self::Unreadable,
    ];

    /// A fixed snake-case name, for JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unsupported => "unsupported",
            Self::SymbolicLink => "symbolic_link",
            Self::SameName => "same_name",
            Self::Unreadable => "unreadable",
        }
    }
}

/// Which files of a folder to consider, beyond the ignore files.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Globs (gitignore syntax, relative to the root); when any is given, only matching files.
    pub include: Vec<String>,
    /// Globs of files to leave out.
    pub exclude: Vec<String>,
}

impl Selection {
    fn overrides(&self, root: &Path) -> Result<ignore::overrides::Override, String> {
        let mut builder = ignore::overrides::OverrideBuilder::new(root);
        for glob in &self.include {
            builder
                .add(glob)
                .map_err(|e| format!("include {glob:?}: {e}"))?;
        }
        for glob in &self.exclude {
            builder
                .add(&format!("!{glob}"))
                .map_err(|e| format!("exclude {glob:?}: {e}"))?;
        }
        builder.build().map_err(|e| e.to_string())
    }
}

/// Walks `root` honouring `.gitignore`, `.ignore` and `.ragignore` files, skipping hidden files.
/// Files of unsupported types are not errors: they are returned as skipped.
pub fn walk(root: &Path, selection: &Selection) -> Result<(Vec<Found>, Vec<Skipped>), String> {
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    let walker = ignore::WalkBuilder::new(root)
        .overrides(selection.overrides(root)?)
        .add_custom_ignore_filename(".ragignore")
        // Honour .gitignore even when the folder is not a git checkout.
        .require_git(false)
        .follow_links(false)
        .build();
    let shared_root: Arc<Path> = Arc::from(root);
    for entry in walker {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                skipped.push(Skipped {
                    path: root.to_path_buf(),
                    kind: SkipKind::Unreadable,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        // The root itself (depth 0) was resolved by the caller; links below it are reported.
        if entry.depth() > 0 && entry.path_is_symlink() {
            skipped.push(Skipped {
                path: entry.into_path(),
                kind: SkipKind::SymbolicLink,
                reason: "symbolic link, not followed".into(),
            });
            continue;
        }
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.into_path();
        let Some(media) = MediaType::from_path(&path) else {
            skipped.push(Skipped {
                path,
                kind: SkipKind::Unsupported,
                reason: "unsupported file type".into(),
            });
            continue;
        };
        let relative = source_path(path.strip_prefix(root).unwrap_or(&path));
        found.push(Found {
            path,
            root: shared_root.clone(),
            relative,
            media,
        });
    }
    // Two files whose names differ only in their Unicode form (or in bytes that are not UTF-8)
    // would be one document: the one whose name is already NFC is kept, then the first by its
    // bytes on disk, so every run keeps the same one.
    found.sort_by(|a, b| {
        (&a.relative, !is_nfc_on_disk(a), &a.path).cmp(&(&b.relative, !is_nfc_on_disk(b), &b.path))
    });
    let mut unique: Vec<Found> = Vec::with_capacity(found.len());
    for file in found {
        match unique.last() {
            Some(kept) if kept.relative == file.relative => skipped.push(Skipped {
                reason: format!(
                    "its name is the same as {:?}'s once Unicode-normalised (NFC); only that one is indexed",
                    kept.path.strip_prefix(root).unwrap_or(&kept.path)
                ),
                path: file.path,
                kind: SkipKind::SameName,
            }),
            _ => unique.push(file),
        }
    }
    Ok((unique, skipped))
}

/// A path under the root as a document's source path: its parts joined with `/`, in Unicode
/// NFC.
///
/// NFC, as for names sent over the API ([`crate::document::source_name`]), so that a file
/// written on macOS (whose file systems hand out or keep decomposed, NFD, names) and the same
/// file copied elsewhere get one document id and one cited name, and every run of the same
/// folder the same ids (the disk's spelling does not change between runs; only files whose
/// names were not NFC are re-indexed once, under their NFC id, by the first run with this
/// rule). Names on disk are not refused for the characters an API name may not contain: the
/// file exists, and refusing it would silently drop documents that folder ingests have always
/// indexed. The file is still opened by its name as the disk spells it ([`Found::path`]).
fn source_path(relative: &Path) -> String {
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().nfc().collect::<String>())
        .collect::<Vec<_>>()
        .join("/")
}

fn is_nfc_on_disk(file: &Found) -> bool {
    file.path.to_str().is_some_and(is_nfc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn honours_ignore_files_and_reports_unsupported_types() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/doc.md"), "# hi").unwrap();
        std::fs::write(root.join("notes.txt"), "x").unwrap();
        std::fs::write(root.join("secret.txt"), "x").unwrap();
        std::fs::write(root.join("image.png"), "x").unwrap();
        std::fs::write(root.join(".ragignore"), "secret.txt\n").unwrap();
        let (found, skipped) = walk(root, &Selection::default()).unwrap();
        let names: Vec<&str> = found.iter().map(|f| f.relative.as_str()).collect();
        assert_eq!(names, ["a/b/doc.md", "notes.txt"]);
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].path.ends_with("image.png"));

        let only_md = Selection {
            include: vec!["*.md".into()],
            exclude: vec![],
        };
        let (found, _) = walk(root, &only_md).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].relative, "a/b/doc.md");
        let no_a = Selection {
            include: vec![],
            exclude: vec!["a/**".into()],
        };
        let (found, _) = walk(root, &no_a).unwrap();
        let names: Vec<&str> = found.iter().map(|f| f.relative.as_str()).collect();
        assert_eq!(names, ["notes.txt"]);
    }

    #[cfg(unix)]
    #[test]
    fn symbolic_links_are_reported_not_followed() {
        use std::os::unix::fs::symlink;
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.md"), "x").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("doc.md"), "x").unwrap();
        std::fs::write(root.join("sub/inner.md"), "x").unwrap();
        symlink(outside.path().join("secret.md"), root.join("leak.md")).unwrap();
        symlink(outside.path(), root.join("elsewhere")).unwrap();
        symlink(root.join("doc.md"), root.join("sub/alias.md")).unwrap();
        let (found, skipped) = walk(root, &Selection::default()).unwrap();
        let names: Vec<&str> = found.iter().map(|f| f.relative.as_str()).collect();
        assert_eq!(names, ["doc.md", "sub/inner.md"]);
        let mut links: Vec<String> = skipped
            .iter()
            .filter(|s| s.kind == SkipKind::SymbolicLink)
            .map(|s| s.path.strip_prefix(root).unwrap().display().to_string())
            .collect();
        links.sort();
        assert_eq!(links, ["elsewhere", "leak.md", "sub/alias.md"]);
        assert_eq!(skipped.len(), 3);
    }

    #[test]
    fn names_are_nfc_and_a_second_spelling_of_one_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let decomposed = "cafe\u{301}.md";
        let composed = "caf\u{e9}.md";
        std::fs::create_dir(root.join("re\u{301}sume\u{301}")).unwrap();
        std::fs::write(root.join("re\u{301}sume\u{301}/a.md"), "x").unwrap();
        std::fs::write(root.join(decomposed), "x").unwrap();
        let (found, _) = walk(root, &Selection::default()).unwrap();
        let names: Vec<&str> = found.iter().map(|f| f.relative.as_str()).collect();
        assert_eq!(names, [composed, "r\u{e9}sum\u{e9}/a.md"]);
        // The file is still the one on disk, opened by its own spelling.
        assert!(found[0].path.ends_with(decomposed));

        // A file system that keeps both spellings apart: one document, the NFC-named file.
        std::fs::write(root.join(composed), "y").unwrap();
        if std::fs::read_dir(root).unwrap().count() == 3 {
            let (found, skipped) = walk(root, &Selection::default()).unwrap();
            assert_eq!(found.len(), 2);
            assert!(found[0].path.ends_with(composed));
            assert_eq!(skipped.len(), 1);
            assert_eq!(skipped[0].kind, SkipKind::SameName);
            assert!(skipped[0].path.ends_with(decomposed));
        }
    }
}
