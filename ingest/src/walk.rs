//! The folder walk: which files a folder ingest considers.

use std::path::{Path, PathBuf};

use crate::extract::MediaType;

/// A file found under the ingest root.
#[derive(Debug, Clone)]
pub struct Found {
    pub path: PathBuf,
    /// Path relative to the root, with `/` separators: the document's source path.
    pub relative: String,
    pub media: MediaType,
}

/// Something the walk could not use, with the reason.
#[derive(Debug, Clone)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
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
    for entry in walker {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                skipped.push(Skipped {
                    path: root.to_path_buf(),
                    reason: e.to_string(),
                });
                continue;
            }
        };
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.into_path();
        let Some(media) = MediaType::from_path(&path) else {
            skipped.push(Skipped {
                path,
                reason: "unsupported file type".into(),
            });
            continue;
        };
        let relative = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        found.push(Found {
            path,
            relative,
            media,
        });
    }
    found.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok((found, skipped))
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
}
