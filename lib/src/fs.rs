//! Writing files so that a reader sees the old content or the new, never half: a temporary
//! file beside the target (created exclusively, never through a symlink), written, synced,
//! renamed over the target, the directory synced. On any error the temporary file is
//! removed. A symlink planted at the target is replaced, not followed.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The whole of a small regular file, at most `max` bytes. A FIFO, socket, device or
/// directory is refused before any read ([`crate::dumpdir::open_regular`]: opened
/// non-blocking, its type checked on the open file), so `/dev/zero` or a FIFO without a
/// writer cannot hold the run.
pub fn read_small(path: &Path, max: u64) -> Result<Vec<u8>> {
    let err = |message: String| Error::File {
        path: path.to_path_buf(),
        message,
    };
    let (file, _) = crate::dumpdir::open_regular(path).map_err(|e| err(e.to_string()))?;
    let mut buf = Vec::new();
    std::io::Read::take(file, max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| err(e.to_string()))?;
    if buf.len() as u64 > max {
        return Err(err(format!("larger than {max} bytes")));
    }
    Ok(buf)
}

/// A file being written; [`AtomicFile::commit`] puts it in place, drop throws it away.
pub struct AtomicFile {
    target: PathBuf,
    tmp: PathBuf,
    file: Option<File>,
}

impl AtomicFile {
    pub fn create(target: &Path) -> Result<AtomicFile> {
        AtomicFile::create_with_mode(target, 0o644)
    }

    /// Like [`AtomicFile::create`], with the file's permission bits (0o600 for what holds
    /// secrets: a Terraform state does).
    pub fn create_with_mode(target: &Path, mode: u32) -> Result<AtomicFile> {
        let dir = target
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = target
            .file_name()
            .ok_or_else(|| Error::usage(format!("{} is not a file name", target.display())))?;
        let tmp = dir.join(format!(
            ".{}.{}.tmp",
            name.to_string_lossy(),
            std::process::id()
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(&tmp)
            .map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;
        // Removed before an exit on a signal (`interrupt::default_exit`).
        crate::interrupt::temp_files().push(tmp.clone());
        Ok(AtomicFile {
            target: target.to_path_buf(),
            tmp,
            file: Some(file),
        })
    }

    /// Syncs and renames into place.
    pub fn commit(mut self) -> Result<()> {
        let f = self
            .file
            .take()
            .ok_or_else(|| Error::Other("file already committed".into()))?;
        f.sync_all()
            .map_err(|e| Error::io(format!("syncing {}", self.tmp.display()), e))?;
        drop(f);
        {
            // Under the lock: a signal's exit sees the file either whole in place or not
            // yet renamed (and removes it).
            let mut temp = crate::interrupt::temp_files();
            std::fs::rename(&self.tmp, &self.target)
                .map_err(|e| Error::io(format!("renaming to {}", self.target.display()), e))?;
            temp.retain(|p| p != &self.tmp);
        }
        if let Some(dir) = self.target.parent().filter(|d| !d.as_os_str().is_empty()) {
            // The rename is durable once the directory is.
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        self.tmp = PathBuf::new();
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.file {
            Some(f) => f.write(buf),
            None => Err(std::io::Error::other("file already committed")),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let mut temp = crate::interrupt::temp_files();
            let _ = std::fs::remove_file(&self.tmp);
            temp.retain(|p| p != &self.tmp);
        }
    }
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_mode(path, bytes, 0o644)
}

/// Writes `bytes` to `path` atomically, readable by its owner only (secrets).
pub fn write_atomic_private(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_mode(path, bytes, 0o600)
}

fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut f = AtomicFile::create_with_mode(path, mode)?;
    f.write_all(bytes)
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    f.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_a_planted_symlink_instead_of_following_it() {
        let d = tempfile::tempdir().expect("tmp");
        let victim = d.path().join("victim");
        std::fs::write(&victim, "keep").expect("write");
        let target = d.path().join("out");
        std::os::unix::fs::symlink(&victim, &target).expect("symlink");
        write_atomic(&target, b"new").expect("atomic");
        assert_eq!(std::fs::read_to_string(&victim).expect("read"), "keep");
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "new");
        assert!(
            !std::fs::symlink_metadata(&target)
                .expect("meta")
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn an_abandoned_write_leaves_nothing() {
        let d = tempfile::tempdir().expect("tmp");
        let target = d.path().join("out");
        {
            let mut f = AtomicFile::create(&target).expect("create");
            f.write_all(b"half").expect("write");
        }
        assert_eq!(std::fs::read_dir(d.path()).expect("dir").count(), 0);
    }
}
