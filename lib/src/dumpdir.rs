//! Offline listing of a dump directory (a NAS mount when the cluster is gone): exactly what
//! pve-storage's dir plugin would list, plus what only the files tell (path, vzdump log).

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::archive;
use crate::error::{Error, Result};
use crate::records::{self, Backup, BackupFailure, Storage};
use crate::time::Zone;

/// Most of a `.notes` file read: Proxmox lists its first line only.
const MAX_NOTES: u64 = 64 * 1024;
/// Most of a vzdump `.log` read, from its end (the outcome is in the last lines).
const MAX_LOG_TAIL: u64 = 1 << 20;

/// Why a file was not read.
#[derive(Debug)]
pub enum Skip {
    /// It does not exist.
    Missing,
    /// A FIFO, socket, device or directory: reading it could block or never end.
    NotRegular(&'static str),
    /// It cannot be opened or read.
    Unreadable(io::Error),
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::Missing => write!(f, "missing"),
            Skip::NotRegular(what) => write!(f, "not a regular file ({what})"),
            Skip::Unreadable(e) => write!(f, "cannot read: {e}"),
        }
    }
}

fn kind_of(t: fs::FileType) -> &'static str {
    if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_dir() {
        "a directory"
    } else {
        "not a file"
    }
}

/// Opens `path` for reading only if it is a regular file (a symlink to one is followed). A
/// FIFO or device is refused from its metadata before any open; the open is non-blocking
/// (a FIFO swapped in meanwhile would block it forever) and the type is checked again on the
/// open file (fstat), so nothing can swap the file in between.
pub fn open_regular(path: &Path) -> std::result::Result<(File, u64), Skip> {
    match fs::metadata(path) {
        Ok(m) if !m.is_file() => return Err(Skip::NotRegular(kind_of(m.file_type()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Skip::Missing),
        _ => {}
    }
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Skip::Missing,
            _ => Skip::Unreadable(e),
        })?;
    let meta = file.metadata().map_err(Skip::Unreadable)?;
    if !meta.is_file() {
        return Err(Skip::NotRegular(kind_of(meta.file_type())));
    }
    Ok((file, meta.len()))
}

/// The first `max` bytes of a regular file, and whether there was more.
pub fn read_head(path: &Path, max: u64) -> std::result::Result<(Vec<u8>, bool), Skip> {
    let (file, _) = open_regular(path)?;
    let mut buf = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(Skip::Unreadable)?;
    let cut = buf.len() as u64 > max;
    buf.truncate(max as usize);
    Ok((buf, cut))
}

/// The last `max` bytes of a regular file.
fn read_tail(path: &Path, max: u64) -> std::result::Result<Vec<u8>, Skip> {
    let (mut file, len) = open_regular(path)?;
    if len > max {
        file.seek(SeekFrom::Start(len - max))
            .map_err(Skip::Unreadable)?;
    }
    let mut buf = Vec::new();
    file.take(max)
        .read_to_end(&mut buf)
        .map_err(Skip::Unreadable)?;
    Ok(buf)
}

/// A warning on stderr, prefixed with the running tool's name.
fn warn(msg: &str) {
    crate::msg::warn(msg);
}

/// The first line of a `.notes` file; `None` (with a warning unless it is missing) when it
/// cannot be read.
fn read_notes(path: &Path) -> Option<String> {
    match read_head(path, MAX_NOTES) {
        Ok((bytes, cut)) => {
            let text = String::from_utf8_lossy(&bytes);
            let first = text.lines().next().unwrap_or("").to_string();
            if cut && first.len() == text.len() {
                warn(&format!(
                    "{}: first line cut to {MAX_NOTES} bytes",
                    path.display()
                ));
            }
            Some(first)
        }
        Err(Skip::Missing) => None,
        Err(e) => {
            warn(&format!("skipped {}: {e}", path.display()));
            None
        }
    }
}

/// The directory's file names; one that is not UTF-8 is skipped with a warning.
fn utf8_names(dir: &Path) -> Result<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    let entries =
        fs::read_dir(dir).map_err(|e| Error::io(format!("cannot read {}", dir.display()), e))?;
    for e in entries {
        let e = e.map_err(|e| Error::io(format!("cannot read {}", dir.display()), e))?;
        match e.file_name().to_str() {
            Some(n) => names.push(n.to_string()),
            None => warn(&format!(
                "skipped {}: the file name is not UTF-8",
                e.path().display()
            )),
        }
    }
    Ok(names)
}

/// An archive's metadata; `None` (warned) for what is not a regular file (a directory named
/// like an archive). stat only: the archive itself is opened by whoever reads it.
fn archive_metadata(p: &Path) -> Option<fs::Metadata> {
    match fs::metadata(p) {
        Ok(m) if m.is_file() => Some(m),
        Ok(m) => {
            warn(&format!(
                "skipped {}: not a regular file ({})",
                p.display(),
                kind_of(m.file_type())
            ));
            None
        }
        Err(e) => {
            warn(&format!("skipped {}: cannot read: {e}", p.display()));
            None
        }
    }
}

/// The archive's vzdump log (a standard name's `<stem>.log`, when present): its path and
/// outcome; `(None, None)` (warned when unreadable) without one.
fn read_log(
    dir: &Path,
    a: &archive::ArchiveName,
    present: &HashSet<&str>,
) -> (Option<String>, Option<&'static str>) {
    if !(a.is_std_name() && present.contains(format!("{}.log", a.stem).as_str())) {
        return (None, None);
    }
    let lp = dir.join(format!("{}.log", a.stem));
    match read_tail(&lp, MAX_LOG_TAIL) {
        Ok(b) => (
            Some(lp.display().to_string()),
            Some(log_outcome(&String::from_utf8_lossy(&b))),
        ),
        Err(e) => {
            warn(&format!("skipped {}: {e}", lp.display()));
            (None, None)
        }
    }
}

/// Whether `<name>.protected` is present.
fn is_protected(dir: &Path, name: &str, present: &HashSet<&str>) -> bool {
    let protected = present.contains(format!("{name}.protected").as_str());
    if protected {
        // Proxmox only tests that it exists (`-e`): never opened, and it counts.
        let pp = dir.join(format!("{name}.protected"));
        if let Some(m) = fs::metadata(&pp).ok().filter(|m| !m.is_file()) {
            warn(&format!(
                "{}: not a regular file ({}); the archive counts as protected, as in Proxmox",
                pp.display(),
                kind_of(m.file_type())
            ));
        }
    }
    protected
}

/// Where and how to read.
#[derive(Debug, Clone)]
pub struct DumpDir {
    /// The dump directory itself (a storage path with a `dump/` inside is accepted too).
    pub path: PathBuf,
    /// Storage ID used in volids (`<ID>:backup/<file>`).
    pub storage: String,
    pub node: Option<String>,
    pub zone: Zone,
}

/// Everything read from the directory.
#[derive(Debug, Default)]
pub struct Listing {
    pub backups: Vec<Backup>,
    pub failures: Vec<BackupFailure>,
}

impl DumpDir {
    /// `PATH` or, when PATH holds no archives but has a `dump/` directory, `PATH/dump`.
    pub fn resolve(path: &Path) -> Result<PathBuf> {
        let meta = fs::metadata(path)
            .map_err(|e| Error::io(format!("cannot read dump directory {}", path.display()), e))?;
        if !meta.is_dir() {
            return Err(Error::usage(format!(
                "{} is not a directory",
                path.display()
            )));
        }
        let dump = path.join("dump");
        if dump.is_dir() && !has_archive(path) {
            return Ok(dump);
        }
        Ok(path.to_path_buf())
    }

    pub fn list(&self) -> Result<Listing> {
        let dir = DumpDir::resolve(&self.path)?;
        let dir = fs::canonicalize(&dir).unwrap_or(dir);
        let names = utf8_names(&dir)?;
        let present: HashSet<&str> = names.iter().map(String::as_str).collect();
        let mut out = Listing::default();
        let mut stems: HashSet<String> = HashSet::new();
        for name in &names {
            // Proxmox reads the directory with the glob `<$path/*>`: no dot files.
            let Some(a) = archive::parse(name).filter(|_| !name.starts_with('.')) else {
                continue;
            };
            if let Some(b) = self.backup(&dir, name, &a, &present) {
                stems.insert(a.stem);
                out.backups.push(b);
            }
        }
        // Proxmox sorts the listing by lower-cased volid.
        out.backups.sort_by_key(|b| b.volid.to_lowercase());
        out.failures = names
            .iter()
            .filter_map(|name| self.failure(&dir, name, &names, &stems))
            .collect();
        out.failures.sort_by(|a, b| a.log.cmp(&b.log));
        Ok(out)
    }

    /// The `backup` record of archive `name`; `None` (warned) when it is not a regular file.
    fn backup(
        &self,
        dir: &Path,
        name: &str,
        a: &archive::ArchiveName,
        present: &HashSet<&str>,
    ) -> Option<Backup> {
        let p = dir.join(name);
        let meta = archive_metadata(&p)?;
        let ctime = match a.local_time.and_then(|t| self.zone.to_epoch(t)) {
            Some(t) => t,
            None => meta.ctime(),
        };
        let notes = read_notes(&dir.join(format!("{name}.notes")));
        let (log, log_status) = read_log(dir, a, present);
        let protected = is_protected(dir, name, present);
        Some(Backup {
            node: self.node.clone(),
            storage: Some(self.storage.clone()),
            volid: format!("{}:backup/{name}", self.storage),
            vmid: a.vmid,
            subtype: a.subtype.clone(),
            ctime,
            time: records::rfc3339(ctime),
            size: Some(meta.len()),
            format: a.format.clone(),
            notes,
            protected,
            path: Some(p.display().to_string()),
            log,
            log_status: log_status.map(String::from),
            ..Default::default()
        })
    }

    /// The `backup-failure` record of vzdump log `name` left without an archive; `None` for
    /// another file, a finished or running backup's log, or a log that is not a regular file.
    fn failure(
        &self,
        dir: &Path,
        name: &str,
        names: &[String],
        stems: &HashSet<String>,
    ) -> Option<BackupFailure> {
        let (subtype, vmid, t) = archive::parse_log_name(name)?;
        let stem = name.trim_end_matches(".log");
        // A log with an archive is a finished backup; with a .dat beside it, one in progress.
        if stems.contains(stem)
            || names
                .iter()
                .any(|n| n.starts_with(stem) && n.ends_with(".dat"))
        {
            return None;
        }
        let lp = dir.join(name);
        let text = match read_tail(&lp, MAX_LOG_TAIL) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e @ Skip::NotRegular(_)) => {
                warn(&format!("skipped {}: {e}", lp.display()));
                return None;
            }
            Err(e) => {
                warn(&format!("{}: {e}", lp.display()));
                String::new()
            }
        };
        let ctime = self.zone.to_epoch(t).unwrap_or(0);
        Some(BackupFailure {
            node: self.node.clone(),
            storage: Some(self.storage.clone()),
            vmid,
            subtype,
            ctime,
            time: records::rfc3339(ctime),
            log: lp.display().to_string(),
            error: last_error(&text),
            extra: Default::default(),
        })
    }

    /// The file system holding the directory, as a `storage` record.
    pub fn storage_record(&self) -> Result<Storage> {
        let dir = DumpDir::resolve(&self.path)?;
        let st = nix::sys::statvfs::statvfs(&dir).map_err(|e| {
            Error::io(
                format!("statvfs {}", dir.display()),
                std::io::Error::from(e),
            )
        })?;
        let frsize = st.fragment_size() as u64;
        let total = st.blocks() as u64 * frsize;
        let avail = st.blocks_available() as u64 * frsize;
        let used = total.saturating_sub(st.blocks_free() as u64 * frsize);
        Ok(Storage {
            node: self.node.clone(),
            storage: self.storage.clone(),
            storage_type: "dir".into(),
            total: Some(total),
            used: Some(used),
            avail: Some(avail),
            used_fraction: (total > 0).then(|| used as f64 / total as f64),
            shared: false,
            active: true,
            path: Some(dir.display().to_string()),
            extra: Default::default(),
        })
    }
}

fn has_archive(dir: &Path) -> bool {
    fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .any(|e| e.file_name().to_str().and_then(archive::parse).is_some())
        })
        .unwrap_or(false)
}

// vzdump's wording, pve-manager PVE/VZDump.pm `exec_backup_task`: a guest's backup ends
// with `debugmsg('err', "Backup of VM $vmid failed - $err", ...)` or
// `debugmsg('info', "Finished Backup of VM $vmid ($tstr)", ...)`. Other ERROR lines (e.g.
// qemu-server's "unable to freeze guest fs - ...") can precede either.

/// The level word of a `.log` line (`<date> <time> <LEVEL>: <msg>`).
fn level(l: &str) -> Option<&str> {
    l.split_whitespace().nth(2)
}

/// The message of an `ERROR: Backup of VM N failed - …` line.
fn failure_line(l: &str) -> Option<&str> {
    if level(l) != Some("ERROR:") {
        return None;
    }
    let i = l.find(" ERROR: ")?;
    let msg = l[i + " ERROR: ".len()..].trim();
    let rest = msg.strip_prefix("Backup of VM ")?;
    let (vmid, tail) = rest.split_once(' ')?;
    (vmid.chars().all(|c| c.is_ascii_digit()) && tail.starts_with("failed - ")).then_some(msg)
}

/// The outcome of a vzdump `.log`: `error` if the backup failed (`Backup of VM N failed`),
/// or did not finish and has ERROR lines; `warning` if it finished with ERROR or WARN
/// lines (a guest-agent freeze error is not a failure), or did not finish and has WARN
/// lines; `ok` when it finished cleanly; `unknown` otherwise (a log cut short).
pub fn log_outcome(text: &str) -> &'static str {
    let has = |tag: &str| text.lines().any(|l| level(l) == Some(tag));
    let finished = text
        .lines()
        .any(|l| l.contains("INFO: Finished Backup of VM"));
    if text.lines().any(|l| failure_line(l).is_some()) {
        "error"
    } else if finished {
        if has("ERROR:") || has("WARN:") {
            "warning"
        } else {
            "ok"
        }
    } else if has("ERROR:") {
        "error"
    } else if has("WARN:") {
        "warning"
    } else {
        "unknown"
    }
}

/// Why a vzdump run failed: the last `Backup of VM N failed - …` line, else the message of
/// the last `ERROR:` line.
pub fn last_error(text: &str) -> Option<String> {
    if let Some(msg) = text.lines().rev().find_map(failure_line) {
        return Some(msg.to_string());
    }
    text.lines().rev().find_map(|l| {
        let i = l.find(" ERROR: ")?;
        Some(l[i + " ERROR: ".len()..].trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes() {
        let ok = "2024-01-15 02:00:02 INFO: Starting Backup of VM 100 (qemu)\n2024-01-15 02:01:05 INFO: Finished Backup of VM 100 (00:01:03)\n";
        assert_eq!(log_outcome(ok), "ok");
        let warn = "2024-01-15 02:00:02 WARN: unable to add notes - x\n2024-01-15 02:01:05 INFO: Finished Backup of VM 100 (00:01:03)\n";
        assert_eq!(log_outcome(warn), "warning");
        let err = "2024-01-15 02:00:02 INFO: Starting Backup of VM 102 (qemu)\n2024-01-15 02:00:03 ERROR: Backup of VM 102 failed - no space left on device\n";
        assert_eq!(log_outcome(err), "error");
        assert_eq!(
            last_error(err).as_deref(),
            Some("Backup of VM 102 failed - no space left on device")
        );
        let frozen = "2024-01-15 02:00:12 ERROR: unable to freeze guest fs - got timeout\n2024-01-15 02:01:05 INFO: Finished Backup of VM 100 (00:01:03)\n";
        assert_eq!(log_outcome(frozen), "warning");
        let cut = "2024-01-15 02:00:12 ERROR: unable to freeze guest fs - got timeout\n";
        assert_eq!(log_outcome(cut), "error");
    }
}
