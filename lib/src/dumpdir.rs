//! Offline listing of a dump directory (a NAS mount when the cluster is gone): exactly what
//! pve-storage's dir plugin would list, plus what only the files tell (path, vzdump log).

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::archive;
use crate::error::{Error, Result};
use crate::records::{self, Backup, BackupFailure, Storage};
use crate::time::Zone;

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
        let mut names: Vec<String> = Vec::new();
        let entries = fs::read_dir(&dir)
            .map_err(|e| Error::io(format!("cannot read {}", dir.display()), e))?;
        for e in entries {
            let e = e.map_err(|e| Error::io(format!("cannot read {}", dir.display()), e))?;
            if let Some(n) = e.file_name().to_str() {
                names.push(n.to_string());
            }
        }
        let present: HashSet<&str> = names.iter().map(String::as_str).collect();
        let mut out = Listing::default();
        let mut stems: HashSet<String> = HashSet::new();
        for name in &names {
            let Some(a) = archive::parse(name) else {
                continue;
            };
            let p = dir.join(name);
            // Skip what is not a regular file (a directory named like an archive).
            let Ok(meta) = fs::metadata(&p) else { continue };
            if !meta.is_file() {
                continue;
            }
            stems.insert(a.stem.clone());
            let ctime = match a.local_time.and_then(|t| self.zone.to_epoch(t)) {
                Some(t) => t,
                None => meta.ctime(),
            };
            let notes = fs::read(dir.join(format!("{name}.notes"))).ok().map(|b| {
                String::from_utf8_lossy(&b)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string()
            });
            let (log, log_status) =
                if a.is_std_name() && present.contains(format!("{}.log", a.stem).as_str()) {
                    let lp = dir.join(format!("{}.log", a.stem));
                    let status = fs::read(&lp)
                        .ok()
                        .map(|b| log_outcome(&String::from_utf8_lossy(&b)));
                    (Some(lp.display().to_string()), status)
                } else {
                    (None, None)
                };
            out.backups.push(Backup {
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
                protected: present.contains(format!("{name}.protected").as_str()),
                path: Some(p.display().to_string()),
                log,
                log_status: log_status.map(String::from),
                ..Default::default()
            });
        }
        // Proxmox sorts the listing by lower-cased volid.
        out.backups.sort_by_key(|b| b.volid.to_lowercase());

        for name in &names {
            let Some((subtype, vmid, t)) = archive::parse_log_name(name) else {
                continue;
            };
            let stem = name.trim_end_matches(".log");
            // A log with an archive is a finished backup; with a .dat beside it, one in progress.
            if stems.contains(stem)
                || names
                    .iter()
                    .any(|n| n.starts_with(stem) && n.ends_with(".dat"))
            {
                continue;
            }
            let lp = dir.join(name);
            let text = fs::read(&lp)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let ctime = self.zone.to_epoch(t).unwrap_or(0);
            out.failures.push(BackupFailure {
                node: self.node.clone(),
                storage: Some(self.storage.clone()),
                vmid,
                subtype,
                ctime,
                time: records::rfc3339(ctime),
                log: lp.display().to_string(),
                error: last_error(&text),
                extra: Default::default(),
            });
        }
        out.failures.sort_by(|a, b| a.log.cmp(&b.log));
        Ok(out)
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

/// The outcome of a vzdump `.log`: `error` if any line is an ERROR, `warning` for WARN lines,
/// `ok` when the backup finished, `unknown` otherwise (a log cut short).
pub fn log_outcome(text: &str) -> &'static str {
    let level = |l: &str, tag: &str| l.split_whitespace().nth(2) == Some(tag);
    if text.lines().any(|l| level(l, "ERROR:")) {
        "error"
    } else if text.lines().any(|l| level(l, "WARN:")) {
        "warning"
    } else if text
        .lines()
        .any(|l| l.contains("INFO: Finished Backup of VM"))
    {
        "ok"
    } else {
        "unknown"
    }
}

/// The message of the last `ERROR:` line of a vzdump log.
pub fn last_error(text: &str) -> Option<String> {
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
    }
}
