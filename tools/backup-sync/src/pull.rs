//! `pull`: an offsite copy back into a directory. The archive streams into a temporary
//! file beside the target; only when its size and sha256 match the manifest is it renamed
//! into place (side files likewise), so a target is never a half or wrong archive.

use pvedr::records::StepStatus;
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use pvedr::change::Approval;
use pvedr::cli::WriteArgs;
use pvedr::crypt::Identities;
use pvedr::error::{Error, Result};
use pvedr::fs::AtomicFile;
use pvedr::records::{Record, Step};
use pvedr::s3::{Bucket, Endpoint};

use crate::cli::PullArgs;
use crate::location::{check_part, parse_volid};
use crate::meter::{Meter, add};
use crate::run::manifest_of;
use crate::side;

/// (bucket, key) of each copy to bring back: the volids given, else the `backup` records
/// on stdin.
pub fn targets(a: &PullArgs) -> Result<Vec<(String, String)>> {
    let volids: Vec<String> = if a.volids.is_empty() {
        pvedr::jsonl::read_only(&["-".to_string()], &["backup"])?
            .into_iter()
            .filter_map(|r| match r {
                Record::Backup(b) => Some(b.volid),
                _ => None,
            })
            .collect()
    } else {
        a.volids.clone()
    };
    if volids.is_empty() {
        return Err(Error::usage(
            "nothing to pull: give a VOLID or `backup` records on stdin",
        ));
    }
    if let Some(d) = a.to_dir.as_ref().filter(|d| !d.is_dir()) {
        return Err(Error::usage(format!(
            "--to-dir {}: not a directory",
            d.display()
        )));
    }
    if let (Some(n), Some(s)) = (&a.to_node, &a.storage) {
        pvedr::validate::node(n)?;
        pvedr::validate::storage_id(s)?;
    }
    volids.iter().map(|v| parse_volid(v)).collect()
}

/// The plan, on stderr: each copy and where it goes; then the change contract's gate.
pub fn approve(a: &PullArgs, targets: &[(String, String)], write: &WriteArgs) -> Result<Approval> {
    let to = match (&a.to_dir, &a.to_node, &a.storage) {
        (Some(d), _, _) => d.display().to_string(),
        (None, Some(n), Some(s)) => format!("storage {s} on node {n}"),
        _ => String::new(),
    };
    pvedr::msg::say(format!("pull: {} copies into {to}", targets.len()));
    for (b, key) in targets {
        pvedr::msg::line(format_args!("  s3://{b}/{}", pvedr::msg::visible(key)));
    }
    pvedr::change::approve(
        write,
        &format!("pulling {} copies into {to}", targets.len()),
    )
}

fn step(name: &str, status: StepStatus, msg: impl Into<String>, started: Option<Instant>) -> Step {
    Step::new("pull", name, status, msg, started)
}

pub fn run(
    endpoint: &Endpoint,
    a: &PullArgs,
    targets: &[(String, String)],
    emit: &mut dyn FnMut(Step) -> Result<()>,
) -> Result<()> {
    let mut buckets: HashMap<String, Bucket> = HashMap::new();
    let conn = match &a.to_node {
        Some(_) => Some(a.connect.connect()?.transport),
        None => None,
    };
    // --to-node NODE: the files are written on NODE, through the connected node if it is
    // another one (a `local` storage is each node's own disk).
    let hop = match (&conn, &a.to_node) {
        (Some(t), Some(n)) => pvedr::cluster::read(t.as_ref())?.route(t.as_ref(), n)?,
        _ => None,
    };
    let node: Option<&dyn pvedr::transport::Transport> = hop.as_deref().or(conn.as_deref());
    let ids = a
        .age_identity
        .as_deref()
        .map(Identities::load)
        .transpose()?;
    for (b, key) in targets {
        let name = key.rsplit('/').next().unwrap_or(key);
        if pvedr::interrupt::requested() {
            emit(step(
                name,
                StepStatus::Skipped,
                "interrupted before this download",
                None,
            ))?;
            continue;
        }
        if !buckets.contains_key(b) {
            buckets.insert(b.clone(), Bucket::connect(endpoint, b)?);
        }
        let started = Instant::now();
        let st = match buckets.get(b) {
            Some(bucket) => match (node, &a.to_dir, &a.storage) {
                (Some(t), _, Some(s)) => {
                    crate::to_node::pull_one(endpoint, bucket, key, t, s, a.force, ids.as_ref())
                }
                (_, Some(d), _) => pull_one(bucket, key, d, a.force, ids.as_ref(), started),
                _ => Err(Error::usage(
                    "give --to-dir DIR or --to-node NODE --storage ID",
                )),
            }
            .unwrap_or_else(|e| step(name, StepStatus::Failed, e.to_string(), Some(started))),
            None => continue,
        };
        emit(st)?;
    }
    Ok(())
}

fn pull_one(
    bucket: &Bucket,
    key: &str,
    dir: &Path,
    force: bool,
    ids: Option<&Identities>,
    started: Instant,
) -> Result<Step> {
    let m = manifest_of(bucket, key)?;
    check_part("archive name", &m.archive)?;
    if !key.ends_with(&format!("/{}", m.archive)) && key != m.archive {
        return Err(Error::Other(format!(
            "the manifest of {key} names another archive"
        )));
    }
    let target = dir.join(&m.archive);
    let url = format!("s3://{}/{key}", bucket.name);
    let ids = side::identities_for(&url, &m, ids)?;
    if target.exists() {
        if same_file(&target, m.size, &m.sha256)? {
            let mut st = step(
                &m.archive,
                StepStatus::Skipped,
                format!("{} is already this copy", target.display()),
                Some(started),
            );
            add(&mut st, 0, started, &url, &m.sha256);
            return Ok(st);
        }
        if !force {
            return Err(Error::Refused(format!(
                "{} exists with other contents; kept (--force replaces it)",
                target.display()
            )));
        }
    }
    // Side files are checked before anything is written: a forged one stops the pull.
    let sides = side::to_write(bucket, key, &m, ids, force, |f, sha| held_in(dir, f, sha))?;
    let f = AtomicFile::create(&target)?;
    let mut meter = Meter::new(f, &m.archive, Some(m.size), None);
    // The meter sees the plaintext: its size and sha256 are the manifest's.
    match ids {
        Some(ids) => pvedr::crypt::decrypt_to(ids, &mut meter, |w| bucket.get_to(key, None, w)),
        None => bucket.get_to(key, None, &mut meter),
    }
    .map_err(|e| {
        if pvedr::interrupt::requested() {
            Error::Interrupted
        } else {
            e
        }
    })?;
    let bytes = meter.bytes;
    let (f, sha) = meter.into_parts();
    if bytes != m.size || sha != m.sha256 {
        // Dropping `f` removes the temporary file: the target is untouched.
        return Err(Error::Refused(format!(
            "{url}: got {bytes} bytes sha256 {sha}, the manifest says {} bytes sha256 {}; nothing written",
            m.size, m.sha256
        )));
    }
    f.commit()?;
    for s in sides {
        pvedr::fs::write_atomic(&dir.join(&s.name), &s.data)?;
    }
    let mut st = step(
        &m.archive,
        StepStatus::Changed,
        format!("written to {}", target.display()),
        Some(started),
    );
    add(&mut st, bytes, started, &url, &sha);
    Ok(st)
}

/// What `dir` holds where a side file goes.
fn held_in(dir: &Path, s: &side::Fetched, sha: &str) -> Result<side::Held> {
    let target = dir.join(&s.name);
    Ok(if std::fs::symlink_metadata(&target).is_err() {
        side::Held::Nothing
    } else if same_file(&target, s.data.len() as u64, sha)? {
        side::Held::Same
    } else {
        side::Held::Other(target.display().to_string())
    })
}

fn same_file(p: &Path, size: u64, sha256: &str) -> Result<bool> {
    let meta = std::fs::symlink_metadata(p)
        .map_err(|e| Error::io(format!("reading {}", p.display()), e))?;
    // A symlink or a directory is never this copy (and is not followed).
    if !meta.is_file() || meta.len() != size {
        return Ok(false);
    }
    let src = crate::source::Source::Dir(p.parent().unwrap_or(Path::new(".")).to_path_buf());
    Ok(src.sha256(&p.display().to_string())? == sha256)
}
