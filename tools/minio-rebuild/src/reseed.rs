//! Step 6: the states back from a `tfstate-versions export` directory (`<name>.tfstate`,
//! `<name>.tfstate.sha256`, `<name>.tfstate.version`; name = the environment, or the bucket).
//! A state goes up only where the key is missing or holds an older serial of the same
//! lineage; anything newer or foreign stays as it is unless `--force`, and never under a
//! held Terraform lock.

use pvedr::records::StepStatus;
use std::path::{Path, PathBuf};
use std::time::Instant;

use pvedr::dumpdir::Skip;
use pvedr::error::{Error, Result};
use pvedr::msg::one_line;
use pvedr::records::Step;
use pvedr::s3::{Bucket, MAX_IN_MEMORY};
use pvedr::shell::quote;
use pvedr::terraform::state::{self, StateInfo};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::ctx::Ctx;
use pvedr::change::step;

/// The export file of `bucket`: `<bucket>.tfstate`, or `<E>.tfstate` for bucket tfstate-E.
fn export_file(dir: &Path, bucket: &str) -> Option<PathBuf> {
    let names = [Some(bucket), bucket.strip_prefix("tfstate-")];
    names
        .into_iter()
        .flatten()
        .map(|n| dir.join(format!("{n}.tfstate")))
        .find(|p| p.symlink_metadata().is_ok_and(|m| m.is_file()))
}

fn hex(b: &[u8]) -> String {
    pvedr::integrity::hex(&Sha256::digest(b))
}

/// Most of a `.sha256` file read (one line: the digest and the file's name).
const MAX_SUM: u64 = 4096;
/// Most of a `.version` file read (a version id).
const MAX_VERSION: u64 = 1024;

/// Everything one export holds, read before anything is written.
struct Export {
    body: Vec<u8>,
    info: StateInfo,
    sha: String,
    /// The version id it was taken from (`<file>.version`), when it reads as one.
    version: Option<String>,
}

/// A whole file of at most `max` bytes, read only if it is a regular file: a FIFO would
/// block the read and a device (`/dev/zero`) never end it.
fn read_small(path: &Path, max: u64) -> std::result::Result<Option<Vec<u8>>, String> {
    match pvedr::dumpdir::read_head(path, max) {
        Ok((b, false)) => Ok(Some(b)),
        Ok((_, true)) => Err(format!("{} is larger than {max} bytes", path.display())),
        Err(Skip::Missing) => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Reads an exported state, its `.sha256` (checked) and its `.version`.
fn read_export(file: &Path) -> std::result::Result<Export, String> {
    let body =
        read_small(file, MAX_IN_MEMORY)?.ok_or_else(|| format!("{}: missing", file.display()))?;
    let sum_file = PathBuf::from(format!("{}.sha256", file.display()));
    let said = read_small(&sum_file, MAX_SUM)?
        .ok_or_else(|| format!("{}: missing: the export is incomplete", sum_file.display()))?;
    let said = String::from_utf8_lossy(&said)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let sha = hex(&body);
    if said != sha {
        return Err(format!(
            "{} is damaged: its sha256 is {sha}, {} says {}; take another export",
            file.display(),
            sum_file.display(),
            said.chars().take(64).collect::<String>()
        ));
    }
    let (_, info) =
        state::parse(&body).map_err(|m| format!("{} is not a valid state: {m}", file.display()))?;
    let version = read_small(
        &PathBuf::from(format!("{}.version", file.display())),
        MAX_VERSION,
    )?
    .map(|v| String::from_utf8_lossy(&v).trim().to_string())
    .filter(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_graphic()));
    Ok(Export {
        body,
        info,
        sha,
        version,
    })
}

/// Every export is read and checked before the first upload: a bad one stops the step with
/// nothing written.
pub fn reseed(ctx: &mut Ctx) -> Result<bool> {
    let t0 = Instant::now();
    let Some(dir) = ctx.cli.from.clone() else {
        return Ok(true);
    };
    warn_unknown(ctx, &dir);
    let mut read = Vec::new();
    for bucket in ctx.buckets.clone() {
        let target = format!("s3://{bucket}/{}", ctx.cli.key);
        let Some(file) = export_file(&dir, &bucket) else {
            let m = format!("no export of it in {}", dir.display());
            ctx.emit(step("reseed", &target, StepStatus::Skipped, m, t0))?;
            continue;
        };
        match read_export(&file) {
            Ok(x) => read.push((bucket, target, x)),
            Err(m) => {
                let m =
                    format!("{m}; nothing uploaded (every export is read before the first upload)");
                ctx.emit(step("reseed", &target, StepStatus::Failed, m, t0))?;
                return Ok(false);
            }
        }
    }
    for (bucket, target, x) in read {
        let r = one(ctx, &bucket, &target, x);
        let failed = r.status == StepStatus::Failed;
        ctx.emit(r)?;
        if failed {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Export files that match no bucket of this run are said, not guessed at.
fn warn_unknown(ctx: &Ctx, dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten().take(10_000) {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".tfstate") else {
            continue;
        };
        let known = ctx
            .buckets
            .iter()
            .any(|b| b == stem || b.strip_prefix("tfstate-") == Some(stem));
        if !known {
            // A file name is anything but NUL and '/': shown on one line, escapes visible.
            pvedr::msg::warn(format!(
                "{} in {} matches none of this run's buckets (add --env {stem} or --bucket {stem}); left alone",
                one_line(&name),
                one_line(&dir.display().to_string()),
                stem = one_line(stem)
            ));
        }
    }
}

/// What to do with a stored state.
enum Decision {
    Upload(String),
    Same,
    Keep(String),
}

fn decide(stored: &[u8], info: &StateInfo, sha: &str) -> Decision {
    let Ok((_, s)) = state::parse(stored) else {
        return Decision::Keep("the bucket holds something that is not a valid state".into());
    };
    if s.lineage != info.lineage {
        return Decision::Keep(format!(
            "the bucket holds another state (lineage {}, the export's is {})",
            s.lineage, info.lineage
        ));
    }
    match s.serial.cmp(&info.serial) {
        std::cmp::Ordering::Less => {
            Decision::Upload(format!("older serial {} in the bucket", s.serial))
        }
        std::cmp::Ordering::Equal if hex(stored) == sha => Decision::Same,
        std::cmp::Ordering::Equal => Decision::Keep(format!(
            "the bucket holds serial {} with other content",
            s.serial
        )),
        std::cmp::Ordering::Greater => Decision::Keep(format!(
            "the bucket holds a newer state (serial {} > the export's {})",
            s.serial, info.serial
        )),
    }
}

fn one(ctx: &Ctx, bucket: &str, target: &str, x: Export) -> Step {
    let t0 = Instant::now();
    let Export {
        body,
        info,
        sha,
        version,
    } = x;
    let mut s = match compare_and_put(ctx, bucket, body, &info, &sha) {
        Ok((status, m, extra)) => {
            let mut s = step("reseed", target, status, m, t0);
            s.extra.extend(extra);
            s
        }
        Err(e) => step(
            "reseed",
            target,
            StepStatus::Failed,
            format!("{e}; nothing else was attempted"),
            t0,
        ),
    };
    s.extra.insert("serial".into(), Value::from(info.serial));
    s.extra.insert("sha256".into(), Value::from(sha));
    if let Some(v) = version {
        s.extra.insert("export_version_id".into(), Value::from(v));
    }
    s
}

type Outcome = (StepStatus, String, serde_json::Map<String, Value>);

fn compare_and_put(
    ctx: &Ctx,
    bucket: &str,
    body: Vec<u8>,
    info: &StateInfo,
    sha: &str,
) -> Result<Outcome> {
    let key = &ctx.cli.key;
    if ctx.store_unread || ctx.missing.iter().any(|b| b == bucket) {
        return Ok((
            StepStatus::Planned,
            format!("would upload serial {} where missing", info.serial),
            Default::default(),
        ));
    }
    let c = ctx.client(bucket)?;
    let head = c.head_object(key)?;
    let (reason, old) = match &head {
        None => (format!("{key} is missing"), None),
        Some(h) => {
            let stored = c.get(key, None, MAX_IN_MEMORY)?;
            match decide(&stored, info, sha) {
                Decision::Same => {
                    return Ok((
                        StepStatus::Ok,
                        format!("already there (serial {})", info.serial),
                        Default::default(),
                    ));
                }
                Decision::Upload(r) => (r, h.version_id.clone()),
                Decision::Keep(r) if ctx.cli.force => {
                    (format!("{r}; --force"), h.version_id.clone())
                }
                Decision::Keep(r) => {
                    return Ok((
                        StepStatus::Skipped,
                        format!("{r}; left untouched (--force overwrites it)"),
                        Default::default(),
                    ));
                }
            }
        }
    };
    if head.is_some() && c.head_object(&format!("{key}.tflock"))?.is_some() {
        let m = format!(
            "a Terraform lock is held ({key}.tflock): someone is running terraform; left untouched, run again later"
        );
        return Ok((StepStatus::Skipped, m, Default::default()));
    }
    if ctx.dry_run {
        return Ok((
            StepStatus::Planned,
            format!("would upload serial {} ({reason})", info.serial),
            Default::default(),
        ));
    }
    put_and_check(ctx, &c, body, info, sha, &reason, old)
}

fn put_and_check(
    ctx: &Ctx,
    c: &Bucket,
    body: Vec<u8>,
    info: &StateInfo,
    sha: &str,
    reason: &str,
    old: Option<String>,
) -> Result<Outcome> {
    let key = &ctx.cli.key;
    let version = if old.is_none() {
        match c.put_if_absent(key, body)? {
            Some(v) => v,
            None => {
                return Ok((
                    StepStatus::Skipped,
                    format!("{key} was written by someone else meanwhile; left untouched"),
                    Default::default(),
                ));
            }
        }
    } else {
        c.put(key, body)?
    };
    let back = c.get(
        key,
        Some(&version).filter(|v| *v != "null").map(String::as_str),
        MAX_IN_MEMORY,
    )?;
    if hex(&back) != sha {
        return Err(Error::Other(format!(
            "s3://{}/{key} version {version} reads back different from the export",
            c.name
        )));
    }
    let mut extra = serde_json::Map::new();
    extra.insert("version_id".into(), Value::from(version.clone()));
    let mut m = format!(
        "uploaded serial {} ({reason}); read back, sha256 matches",
        info.serial
    );
    if let Some(old) = old.filter(|v| v != "null") {
        let back = format!(
            "tfstate-versions{} --bucket {} --key {} restore {} --yes",
            ctx.endpoint
                .printable()
                .map(|e| format!(" --endpoint {}", quote(&e)))
                .unwrap_or_default(),
            quote(&c.name),
            quote(key),
            quote(&old)
        );
        pvedr::msg::say(format!("to bring back the state that was there: {back}"));
        m.push_str(&format!(
            "; the previous version {old} stays in the history"
        ));
        extra.insert("way_back".into(), Value::from(back));
    }
    Ok((StepStatus::Changed, m, extra))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(serial: u64, lineage: &str, v: &str) -> Vec<u8> {
        format!(r#"{{"version":4,"serial":{serial},"lineage":"{lineage}","outputs":{{"v":{{"value":"{v}"}}}}}}"#)
            .into_bytes()
    }

    fn export(b: &[u8]) -> (StateInfo, String) {
        (state::parse(b).expect("state").1, hex(b))
    }

    #[test]
    fn only_a_missing_or_older_state_of_the_same_lineage_is_replaced() {
        let (info, sha) = export(&st(3, "L", "x"));
        let kept = |stored: Vec<u8>| match decide(&stored, &info, &sha) {
            Decision::Keep(r) => r,
            _ => panic!("kept"),
        };
        assert!(matches!(
            decide(&st(2, "L", "y"), &info, &sha),
            Decision::Upload(_)
        ));
        assert!(matches!(
            decide(&st(3, "L", "x"), &info, &sha),
            Decision::Same
        ));
        assert!(kept(st(4, "L", "y")).contains("newer state (serial 4 > the export's 3)"));
        assert!(kept(st(3, "L", "y")).contains("other content"));
        assert!(kept(st(1, "M", "x")).contains("another state (lineage M"));
        assert!(kept(b"garbage".to_vec()).contains("not a valid state"));
    }

    #[test]
    fn export_files_by_environment_or_bucket() {
        let d = tempfile::tempdir().expect("tmp");
        std::fs::write(d.path().join("prod.tfstate"), "{}").expect("w");
        std::fs::write(d.path().join("other-bucket.tfstate"), "{}").expect("w");
        assert_eq!(
            export_file(d.path(), "tfstate-prod"),
            Some(d.path().join("prod.tfstate"))
        );
        assert_eq!(
            export_file(d.path(), "other-bucket"),
            Some(d.path().join("other-bucket.tfstate"))
        );
        assert_eq!(export_file(d.path(), "tfstate-lab"), None);
    }
}
