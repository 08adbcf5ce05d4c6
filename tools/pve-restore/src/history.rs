//! `--drill-history FILE`: every restore record of a run appended to one JSON Lines file,
//! the evidence backup-check reads and `--sample` picks from.
//!
//! Appends and trims take an exclusive `flock` on `FILE.lock` (not on FILE: a trim
//! replaces FILE by a rename, and a lock on the old inode would not stop an append to the
//! new one). An append is one `write` of one whole line on an `O_APPEND` descriptor, then
//! `fsync`: concurrent runs never interleave lines. A trim rewrites the file atomically
//! (`pvedr::fs::AtomicFile`), so a reader sees the old history or the new one.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use pvedr::error::{Error, Result};
use pvedr::records::{Record, Restore};

/// The longest line kept (a restore record is a few KiB): a longer one is not ours.
pub const MAX_LINE: usize = 1 << 20;

/// How long an append waits for another run's append or trim.
const LOCK_WAIT: Duration = Duration::from_secs(60);

/// What a trim keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Records that started within this many seconds.
    For(u64),
    /// The newest N lines.
    Last(usize),
}

/// `--drill-history-keep`: `400d` (a duration) or `1000` (a count of records).
pub fn parse_keep(s: &str) -> std::result::Result<Keep, String> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return match s.parse::<usize>() {
            Ok(n) if n > 0 => Ok(Keep::Last(n)),
            _ => Err(format!("'{s}': a count must be a whole number from 1")),
        };
    }
    pvedr::cli::values::duration(s).map(|d| Keep::For(d.as_secs()))
}

pub struct History {
    path: PathBuf,
    keep: Keep,
    trimmed: bool,
}

impl History {
    /// The history at `path`, created if need be: one that cannot be written is refused
    /// before the run restores anything.
    pub fn open(path: &Path, keep: Keep) -> Result<History> {
        open_for_writing(path, true)?;
        Ok(History {
            path: path.to_path_buf(),
            keep,
            trimmed: false,
        })
    }

    /// Appends `rec` as one line; the run's first append trims the file first.
    pub fn append(&mut self, rec: &Restore) -> Result<()> {
        let line = Record::Restore(rec.clone())
            .to_json_line()
            .map_err(|e| Error::Other(format!("cannot encode record: {e}")))?;
        let _lock = self.lock()?;
        if !self.trimmed {
            self.trimmed = true;
            trim(&self.path, self.keep, pvedr::time::now())?;
        }
        let mut f = open_for_writing(&self.path, true)?;
        // A line cut short (a full disk, a crash) must not swallow this one.
        let line = match ends_cut(&mut f).map_err(|e| self.err("cannot read", e))? {
            true => [b"\n".as_slice(), &line].concat(),
            false => line,
        };
        f.write_all(&line)
            .map_err(|e| self.err("cannot append to", e))?;
        f.sync_all().map_err(|e| self.err("cannot sync", e))
    }

    fn err(&self, what: &str, e: std::io::Error) -> Error {
        Error::io(format!("{what} {}", self.path.display()), e)
    }

    /// The history's lock, waited for up to [`LOCK_WAIT`].
    fn lock(&self) -> Result<Flock<File>> {
        let mut name = self.path.clone().into_os_string();
        name.push(".lock");
        let path = PathBuf::from(name);
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            let f = open_for_writing(&path, false)?;
            match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
                Ok(l) => return Ok(l),
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(_) => {
                    return Err(Error::Refused(format!(
                        "{} stayed locked for {} s: another pve-restore holds it",
                        path.display(),
                        LOCK_WAIT.as_secs()
                    )));
                }
            }
        }
    }
}

/// `path` created if need be, never through a symlink, without blocking on a FIFO, and
/// refused unless it is a regular file.
fn open_for_writing(path: &Path, append: bool) -> Result<File> {
    use nix::fcntl::OFlag;
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .append(append)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK).bits())
        .open(path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    match f.metadata() {
        Ok(m) if m.is_file() => Ok(f),
        Ok(_) => Err(Error::File {
            path: path.to_path_buf(),
            message: "not a regular file".into(),
        }),
        Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
    }
}

/// Whether a non-empty file's last byte is not a newline.
fn ends_cut(f: &mut File) -> std::io::Result<bool> {
    use std::io::{Seek, SeekFrom};
    if f.metadata()?.len() == 0 {
        return Ok(false);
    }
    let mut last = [0u8; 1];
    f.seek(SeekFrom::End(-1))?;
    f.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// One line of the history, read with a bound.
pub enum Line {
    Whole(Vec<u8>),
    TooLong,
}

/// The lines of `file`, each cut at [`MAX_LINE`] (the rest of a longer one skipped).
pub fn lines(file: File) -> impl Iterator<Item = std::io::Result<Line>> {
    let mut r = BufReader::new(file);
    std::iter::from_fn(move || {
        let mut buf = Vec::new();
        let n = match (&mut r)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
        {
            Ok(n) => n,
            Err(e) => return Some(Err(e)),
        };
        if n == 0 {
            return None;
        }
        if buf.len() > MAX_LINE && buf.last() != Some(&b'\n') {
            let mut sink = Vec::new();
            loop {
                sink.clear();
                match (&mut r).take(64 << 10).read_until(b'\n', &mut sink) {
                    Ok(0) => break,
                    Ok(_) if sink.last() == Some(&b'\n') => break,
                    Ok(_) => {}
                    Err(e) => return Some(Err(e)),
                }
            }
            return Some(Ok(Line::TooLong));
        }
        Some(Ok(Line::Whole(buf)))
    })
}

/// When a history line's record started (epoch seconds); `None` for a line that is not a
/// restore record with `started`, which a trim keeps (it loses nothing it cannot date).
fn started_of(line: &[u8]) -> Option<i64> {
    restore_in(serde_json::from_slice(line).ok()?)?.started_at()
}

/// The typed `restore` record a history line holds, if it holds one.
pub fn restore_in(v: serde_json::Value) -> Option<Restore> {
    match Record::from_value(v).ok()? {
        Record::Restore(r) => Some(r),
        _ => None,
    }
}

/// Which lines of `path` a trim keeps: `None` when the file is missing.
fn marks(path: &Path, keep: Keep, now: i64) -> Result<Option<Vec<bool>>> {
    let Some(f) = open(path)? else {
        return Ok(None);
    };
    let cutoff = match keep {
        Keep::For(s) => now.saturating_sub(i64::try_from(s).unwrap_or(i64::MAX)),
        Keep::Last(_) => i64::MIN,
    };
    let mut stay = Vec::new();
    for l in lines(f) {
        stay.push(match l.map_err(|e| read_err(path, e))? {
            Line::Whole(b) => started_of(&b).is_none_or(|t| t >= cutoff),
            Line::TooLong => false,
        });
    }
    if let Keep::Last(n) = keep {
        let first = stay.len().saturating_sub(n);
        stay.iter_mut().take(first).for_each(|s| *s = false);
    }
    Ok(Some(stay))
}

/// The history for reading, `None` when it does not exist. A FIFO, device or directory is
/// refused without blocking (`dumpdir::open_regular`): `/dev/zero` or a FIFO cannot hold
/// the run.
pub fn open(path: &Path) -> Result<Option<File>> {
    use pvedr::dumpdir::{Skip, open_regular};
    match open_regular(path) {
        Ok((f, _)) => Ok(Some(f)),
        Err(Skip::Missing) => Ok(None),
        Err(e) => Err(Error::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        }),
    }
}

fn read_err(path: &Path, e: std::io::Error) -> Error {
    Error::io(format!("cannot read {}", path.display()), e)
}

/// Drops what `keep` does not keep, and lines longer than [`MAX_LINE`]; the file is
/// rewritten only when something goes. Called under the history's lock.
pub fn trim(path: &Path, keep: Keep, now: i64) -> Result<()> {
    let Some(stay) = marks(path, keep, now)? else {
        return Ok(());
    };
    let going = stay.iter().filter(|s| !**s).count();
    let Some(f) = open(path)?.filter(|_| going > 0) else {
        return Ok(());
    };
    let mut out = pvedr::fs::AtomicFile::create(path)?;
    let werr = |e| Error::io(format!("cannot write {}", path.display()), e);
    for (l, keep) in lines(f).zip(stay.iter()) {
        if let (Line::Whole(mut b), true) = (l.map_err(|e| read_err(path, e))?, keep) {
            if b.last() != Some(&b'\n') {
                b.push(b'\n');
            }
            out.write_all(&b).map_err(werr)?;
        }
    }
    pvedr::msg::say(format_args!(
        "{}: {going} of {} records dropped by --drill-history-keep",
        path.display(),
        stay.len()
    ));
    out.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trim_drops_old_and_overlong_lines_and_keeps_what_it_cannot_date() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("h.jsonl");
        let long = "x".repeat(MAX_LINE + 10);
        let rec = |at: &str| {
            format!(
                "{{\"kind\":\"restore\",\"dry_run\":false,\"status\":\"verified\",\"started\":\"{at}\"}}"
            )
        };
        let (old, new) = (rec("2020-01-01T00:00:00Z"), rec("2024-01-10T00:00:00Z"));
        // Not a restore record: not dated, so kept.
        let other = "{\"kind\":\"check\",\"started\":\"2020-01-01T00:00:00Z\"}";
        let text = format!("{old}\ngarbage\n{other}\n{long}\n{new}");
        std::fs::write(&path, text).expect("write");
        let now = 1_705_300_000; // 2024-01-15
        trim(&path, Keep::For(30 * 86400), now).expect("trim");
        let kept = std::fs::read_to_string(&path).expect("read");
        assert_eq!(kept, format!("garbage\n{other}\n{new}\n"));
        trim(&path, Keep::Last(1), now).expect("trim");
        let kept = std::fs::read_to_string(&path).expect("read");
        assert_eq!(kept, format!("{new}\n"));
        trim(&dir.path().join("none"), Keep::Last(1), now).expect("a missing file is empty");
    }

    #[test]
    fn an_append_after_a_line_cut_short_starts_its_own_line() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("h.jsonl");
        std::fs::write(&path, "{\"kind\":\"restore\",\"vm").expect("write");
        let mut h = History::open(&path, Keep::Last(10)).expect("open");
        h.append(&Restore::default()).expect("append");
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[1].starts_with("{\"kind\":\"restore\""), "{text}");
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn keep_is_a_duration_or_a_count() {
        assert_eq!(parse_keep("400d").ok(), Some(Keep::For(400 * 86400)));
        assert_eq!(parse_keep("50").ok(), Some(Keep::Last(50)));
        for bad in ["0", "", "-3", "4x", "99999999999999999999999"] {
            assert!(parse_keep(bad).is_err(), "{bad}");
        }
    }
}
