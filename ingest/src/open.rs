//! Opening a file the walk found, so that what is read is what the walk saw: a regular file
//! under the folder.
//!
//! Between the walk and the read, anyone who may write in the folder can swap a file, or a
//! folder on its path, for a symbolic link to text elsewhere (another user's home, `/etc`).
//! Reading by path would follow the link and index that text. So a file is opened one path
//! component at a time from the folder (`openat`), every component with `O_NOFOLLOW` (folders
//! also with `O_DIRECTORY`, the file also with `O_NONBLOCK`, so that a FIFO swapped in cannot
//! stall the run); the opened handle is checked (`fstat`: a regular file) and it is what is
//! measured, read and hashed: the path is never looked up again (extractors get the bytes).
//!
//! Covered: the file, and any folder between the ingest folder and the file, replaced by a
//! symbolic link after the walk; a FIFO, socket or device swapped in. Not covered: the
//! ingest folder's own ancestors (the operator named the folder; it is resolved once, when the
//! run starts), hard links (a hard link to a file outside is a regular file inside; Linux's
//! `fs.protected_hardlinks` refuses making one to a file the linker cannot already write), and
//! mounts.

use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io;
use std::path::{Component, Path};

/// The file at `path` under `root`, opened without following any link below `root`, with its
/// `fstat`. Refuses anything but a regular file.
pub(crate) fn open_beneath(root: &Path, path: &Path) -> io::Result<(File, Metadata)> {
    let relative = path
        .strip_prefix(root)
        .map_err(|_| io::Error::other("the file is not under the folder"))?;
    let mut parts = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the path has a part that is not a plain name",
                ));
            }
        }
    }
    let Some((name, folders)) = parts.split_last() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path names the folder itself",
        ));
    };
    let file = open_parts(root, folders, name)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(io::Error::other(
            "it is no longer a regular file (replaced after the folder was walked?)",
        ));
    }
    Ok((file, metadata))
}

#[cfg(unix)]
fn open_parts(root: &Path, folders: &[&OsStr], name: &OsStr) -> io::Result<File> {
    let mut dir = openat(None, root.as_os_str(), libc::O_DIRECTORY, "the folder")?;
    for folder in folders {
        let what = format!("the folder {:?} on its path", folder.to_string_lossy());
        dir = openat(Some(&dir), folder, libc::O_DIRECTORY, &what)?;
    }
    let fd = openat(Some(&dir), name, libc::O_NONBLOCK, "the file")?;
    // O_NONBLOCK stays set: reads of a regular file ignore it, and anything else is refused.
    Ok(File::from(fd))
}

/// `openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | flags)`; `None`: relative to the
/// working directory. A symbolic link is refused in words naming `what` it was.
#[cfg(unix)]
fn openat(
    dir: Option<&std::os::fd::OwnedFd>,
    name: &OsStr,
    flags: libc::c_int,
    what: &str,
) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;

    let name = std::ffi::CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in the path"))?;
    let dirfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY | flags;
    loop {
        // SAFETY: `name` is a NUL-terminated string that outlives the call, and `dirfd` is
        // AT_FDCWD or a descriptor owned by `dir`, open for the duration of the call.
        let fd = unsafe { libc::openat(dirfd, name.as_ptr(), flags) };
        if fd >= 0 {
            // SAFETY: `openat` just returned this descriptor; nothing else owns it.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::EINTR) => continue,
            // O_NOFOLLOW meeting a link: ELOOP; with O_DIRECTORY, Linux says ENOTDIR first.
            Some(libc::ELOOP | libc::ENOTDIR) if is_link_at(dirfd, &name) => {
                return Err(io::Error::other(format!(
                    "{what} is a symbolic link (replaced after the folder was walked?); \
                     symbolic links are not followed"
                )));
            }
            _ => return Err(error),
        }
    }
}

/// Whether `name` in `dirfd` is a symbolic link (`fstatat` with `AT_SYMLINK_NOFOLLOW`): only
/// to word an error.
#[cfg(unix)]
fn is_link_at(dirfd: libc::c_int, name: &std::ffi::CStr) -> bool {
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `name` is NUL-terminated, `dirfd` is open (see `openat`), and `stat` is written
    // by the call before it is read, only when the call succeeds.
    unsafe {
        libc::fstatat(
            dirfd,
            name.as_ptr(),
            stat.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        ) == 0
            && stat.assume_init().st_mode & libc::S_IFMT == libc::S_IFLNK
    }
}

/// Without `openat` and `O_NOFOLLOW`: refuse a link seen by `lstat` before opening. Narrower
/// than on Unix (a swap between the two calls is not caught).
#[cfg(not(unix))]
fn open_parts(root: &Path, folders: &[&OsStr], name: &OsStr) -> io::Result<File> {
    let mut path = root.to_path_buf();
    for part in folders.iter().chain(std::iter::once(&name)) {
        path.push(part);
        if std::fs::symlink_metadata(&path)?.file_type().is_symlink() {
            return Err(io::Error::other(
                "a symbolic link on its path; symbolic links are not followed",
            ));
        }
    }
    File::open(&path)
}

#[cfg(all(test, unix))]
mod tests {
    use std::io::Read;
    use std::os::unix::fs::symlink;

    use super::*;

    fn read(root: &Path, path: &Path) -> io::Result<String> {
        let (mut file, _) = open_beneath(root, path)?;
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        Ok(text)
    }

    #[test]
    fn opens_regular_files_and_refuses_links_fifos_and_folders() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.md"), "outside text").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/doc.md"), "inside text").unwrap();
        assert_eq!(read(root, &root.join("a/b/doc.md")).unwrap(), "inside text");

        // The file swapped for a link.
        symlink(outside.path().join("secret.md"), root.join("link.md")).unwrap();
        let err = read(root, &root.join("link.md")).unwrap_err().to_string();
        assert!(err.contains("the file is a symbolic link"), "{err}");

        // A folder on the path swapped for a link to a folder outside.
        std::fs::rename(root.join("a"), root.join("a-old")).unwrap();
        symlink(outside.path(), root.join("a")).unwrap();
        std::fs::create_dir(outside.path().join("b")).unwrap();
        std::fs::write(outside.path().join("b/doc.md"), "outside text").unwrap();
        let err = read(root, &root.join("a/b/doc.md"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("the folder \"a\" on its path is a symbolic link"),
            "{err}"
        );

        // A FIFO: refused without blocking.
        let fifo = root.join("fifo.md");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = read(root, &fifo).unwrap_err().to_string();
        assert!(err.contains("no longer a regular file"), "{err}");

        assert!(read(root, &root.join("a-old")).is_err());
        assert!(read(root, outside.path().join("secret.md").as_path()).is_err());
    }
}
