//! `restore`: an old version becomes current again, as a new version, in phases: check
//! (valid state, lineage, lock), plan, write under our own lock (released on every way
//! out), verify, digest, and the command that undoes it.

use pvedr::records::StepStatus;
use std::time::Instant;

use md5::Digest;
use pvedr::cli::WriteArgs;
use pvedr::error::{Error, Result, code};
use pvedr::output::Output;
use pvedr::records::{Record, Step};
use pvedr::s3::{Bucket, Entry};
use pvedr::terraform::state;
use serde_json::{Value, json};

use crate::history::{delete_command, find, get, open};
use crate::location::StateLocation;
use pvedr::change::step;

pub struct Options {
    pub force: bool,
    pub keep_serial: bool,
    pub table: Option<String>,
    pub write: WriteArgs,
}

/// What the checks found.
struct Checked {
    new_body: Vec<u8>,
    new_serial: u64,
    lock_held: bool,
    versioned: bool,
    has_current: bool,
}

/// Our own Terraform lock; deleted when dropped, whatever happened (only ours, ever).
struct OwnLock<'a> {
    s3: &'a Bucket,
    key: String,
    /// The pasteable command that removes the lock by hand.
    release: String,
}

impl Drop for OwnLock<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.s3.delete(&self.key, None) {
            pvedr::msg::warn(format!(
                "could not release the lock s3://{}/{}: {e}; once S3 answers, remove it with: {}",
                self.s3.name, self.key, self.release
            ));
        }
    }
}

fn lock_key(t: &StateLocation) -> String {
    format!("{}.tflock", t.key)
}

pub fn restore(t: &StateLocation, version: &str, o: &Options, out: &mut Output) -> Result<u8> {
    let (s3, h) = open(t)?;
    let mut steps = Vec::new();
    let c = check(&s3, t, &h, version, o, &mut steps)?;
    let t0 = Instant::now();
    let safety = match (c.has_current, c.versioned) {
        (true, true) => format!(
            "current entry {} stays in the history",
            h.first().map(|e| e.version_id.as_str()).unwrap_or("?")
        ),
        (true, false) => format!("the current object is copied to {}", aside_key(t)),
        (false, _) => "no current object".into(),
    };
    if o.write.dry_run {
        planned(t, version, o, &c, safety, t0, &mut steps);
        return write_all(out, steps).map(|_| code::SUCCESS);
    }
    pvedr::cli::confirm(
        &format!(
            "restore version {version} of {} as the current state",
            t.url()
        ),
        o.write.yes,
    )?;
    // From here a signal lets the short write sequence finish (lock, write, read back,
    // release): killed in between, it would leave the lock behind and no record.
    pvedr::interrupt::install();
    if c.has_current && !c.versioned {
        s3.copy(&t.key, None, &aside_key(t))?;
    }
    steps.push(step("record-current", &t.key, StepStatus::Ok, safety, t0));
    let r = write_locked(&s3, t, &c, &mut steps);
    let r = r.map(|new_version| {
        let digest_ok = digest(&s3, t, o, &c.new_body, &mut steps);
        (new_version, digest_ok)
    });
    let (new_version, digest_ok) = match r {
        Ok(v) => v,
        Err(e) => {
            write_all(out, steps)?;
            return Err(e);
        }
    };
    let undo = delete_command(t, Some(&new_version));
    let mut last = step("undo", &t.key, StepStatus::Ok, undo.clone(), Instant::now());
    last.extra
        .insert("command".into(), Value::from(undo.clone()));
    let same = steps.iter().all(|s| s.status != StepStatus::Failed);
    steps.push(last);
    pvedr::msg::say(format!(
        "restored {version} as {new_version}. To undo: {undo}"
    ));
    write_all(out, steps)?;
    Ok(match (pvedr::interrupt::requested(), same && digest_ok) {
        (true, _) => code::INTERRUPTED,
        (false, true) => code::SUCCESS,
        (false, false) => code::FAILURE,
    })
}

fn aside_key(t: &StateLocation) -> String {
    format!(
        "{}.pvedr-{}",
        t.key,
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    )
}

fn write_all(out: &mut Output, steps: Vec<Step>) -> Result<()> {
    for s in steps {
        out.write(&Record::Step(s))?;
    }
    Ok(())
}

/// The checks: nothing is written when one says no.
fn check(
    s3: &Bucket,
    t: &StateLocation,
    h: &[Entry],
    version: &str,
    o: &Options,
    steps: &mut Vec<Step>,
) -> Result<Checked> {
    let t0 = Instant::now();
    let e = find(h, version)?;
    if e.delete_marker {
        return Err(Error::Refused(format!(
            "{} is a delete marker; use undelete",
            version.escape_debug()
        )));
    }
    let old = get(s3, t, Some(&e.version_id))?;
    let (_, old_info) = state::parse(&old).map_err(|m| {
        Error::Refused(format!(
            "version {version} is not a valid state ({m}); nothing was written"
        ))
    })?;
    steps.push(step(
        "check-version",
        version,
        StepStatus::Ok,
        format!("serial {} lineage {}", old_info.serial, old_info.lineage),
        t0,
    ));
    let (max_serial, current_lineage) = history_serials(s3, t, h, old_info.serial)?;
    check_lineage(version, &old_info.lineage, current_lineage, o.force, steps)?;
    let t0 = Instant::now();
    let lock = lock_key(t);
    let lock_held = s3.head_object(&lock)?.is_some();
    if lock_held && !o.force {
        return Err(Error::Refused(format!(
            "s3://{}/{lock} exists: someone holds the Terraform lock (terraform force-unlock if it is stale); nothing was written",
            t.bucket
        )));
    }
    steps.push(step(
        "check-lock",
        &lock,
        StepStatus::Ok,
        if lock_held {
            "held by someone else; --force: it is left alone"
        } else {
            "not locked"
        },
        t0,
    ));
    let new_serial = if o.keep_serial {
        old_info.serial
    } else {
        max_serial.checked_add(1).ok_or_else(|| {
            Error::Refused(format!(
                "the highest serial in the history is {max_serial}: the next one would overflow; nothing was written"
            ))
        })?
    };
    let new_body = if o.keep_serial {
        old.clone()
    } else {
        state::with_serial(&old, new_serial).map_err(|m| {
            Error::Refused(format!(
                "version {version} could not be given serial {new_serial} ({m}); nothing was written"
            ))
        })?
    };
    let versioned = s3
        .versioning()?
        .unwrap_or_else(|| h.iter().any(|e| e.version_id != "null"));
    Ok(Checked {
        new_body,
        new_serial,
        lock_held,
        versioned,
        has_current: !h.is_empty(),
    })
}

/// The highest serial of every valid version, and the lineage of the newest one.
fn history_serials(
    s3: &Bucket,
    t: &StateLocation,
    h: &[Entry],
    floor: u64,
) -> Result<(u64, Option<String>)> {
    let mut max_serial = floor;
    let mut current_lineage = None;
    for v in h.iter().filter(|v| !v.delete_marker) {
        if let Ok((_, i)) = state::parse(&get(s3, t, Some(&v.version_id))?) {
            max_serial = max_serial.max(i.serial);
            if current_lineage.is_none() {
                current_lineage = Some(i.lineage);
            }
        }
    }
    Ok((max_serial, current_lineage))
}

fn check_lineage(
    version: &str,
    old: &str,
    current: Option<String>,
    force: bool,
    steps: &mut Vec<Step>,
) -> Result<()> {
    let t0 = Instant::now();
    match current {
        Some(l) if l != old && !force => Err(Error::Refused(format!(
            "version {version} has lineage {old} but the state's is {l}: it belongs to another state (use --force if you are sure); nothing was written"
        ))),
        Some(l) if l != old => {
            steps.push(step(
                "check-lineage",
                version,
                StepStatus::Ok,
                format!("lineage differs ({l}); --force"),
                t0,
            ));
            Ok(())
        }
        _ => {
            steps.push(step(
                "check-lineage",
                version,
                StepStatus::Ok,
                "same lineage as the current state",
                t0,
            ));
            Ok(())
        }
    }
}

fn planned(
    t: &StateLocation,
    version: &str,
    o: &Options,
    c: &Checked,
    safety: String,
    t0: Instant,
    steps: &mut Vec<Step>,
) {
    let lock = lock_key(t);
    steps.push(step(
        "record-current",
        &t.key,
        StepStatus::Planned,
        safety,
        t0,
    ));
    steps.push(step(
        "take-lock",
        &lock,
        if c.lock_held {
            StepStatus::Skipped
        } else {
            StepStatus::Planned
        },
        "conditional write (If-None-Match: *), as Terraform does",
        t0,
    ));
    steps.push(step(
        "write",
        &t.key,
        StepStatus::Planned,
        format!(
            "version {version} as a new current version, serial {}",
            c.new_serial
        ),
        t0,
    ));
    steps.push(step(
        "verify",
        &t.key,
        StepStatus::Planned,
        "read back and compare",
        t0,
    ));
    if let Some(tb) = &o.table {
        steps.push(step(
            "digest",
            tb,
            StepStatus::Planned,
            format!(
                "set Digest of {}/{}-md5 to the MD5 of the new content",
                t.bucket, t.key
            ),
            t0,
        ));
    }
}

/// Takes the lock (unless someone else holds it and --force said go), writes, reads back;
/// the lock is released when this returns, on every path. Returns the new version id.
fn write_locked(
    s3: &Bucket,
    t: &StateLocation,
    c: &Checked,
    steps: &mut Vec<Step>,
) -> Result<String> {
    let t0 = Instant::now();
    let lock = lock_key(t);
    let mut own = None;
    if !c.lock_held {
        let info = json!({"ID": format!("pvedr-{}-{}", std::process::id(), chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)),
            "Operation": "OperationTypeInvalid", "Info": "tfstate-versions restore", "Who": format!("tfstate-versions@{}", std::env::var("HOSTNAME").unwrap_or_default()),
            "Version": "", "Created": chrono::Utc::now().to_rfc3339(), "Path": format!("{}/{}", t.bucket, t.key)});
        if s3
            .put_if_absent(&lock, info.to_string().into_bytes())?
            .is_none()
        {
            return Err(Error::Refused(
                "someone took the Terraform lock just now; nothing was written".into(),
            ));
        }
        let mut lock_at = t.clone();
        lock_at.key = lock.clone();
        own = Some(OwnLock {
            s3,
            key: lock.clone(),
            release: delete_command(&lock_at, None),
        });
        steps.push(step(
            "take-lock",
            &lock,
            StepStatus::Changed,
            "lock taken",
            t0,
        ));
    }
    let t0 = Instant::now();
    // A failed write or read-back is a record too: the last one says where the run stopped.
    let new_version = s3.put(&t.key, c.new_body.clone()).inspect_err(|e| {
        steps.push(step(
            "write",
            &t.key,
            StepStatus::Failed,
            format!("{e}; no version was removed (check which is current with `list`)"),
            t0,
        ));
    })?;
    steps.push(step(
        "write",
        &t.key,
        StepStatus::Changed,
        format!("new current version {new_version}"),
        t0,
    ));
    let t0 = Instant::now();
    let back = get(s3, t, None).inspect_err(|e| {
        steps.push(step(
            "verify",
            &t.key,
            StepStatus::Failed,
            e.to_string(),
            t0,
        ));
    })?;
    let same = back == c.new_body;
    steps.push(step(
        "verify",
        &t.key,
        if same {
            StepStatus::Ok
        } else {
            StepStatus::Failed
        },
        if same {
            format!("read back equal (md5 {:x})", md5::Md5::digest(&back))
        } else {
            "read back differs".into()
        },
        t0,
    ));
    if let Some(l) = own {
        drop(l);
        steps.push(step(
            "release-lock",
            &lock,
            StepStatus::Changed,
            "lock released",
            t0,
        ));
    }
    Ok(new_version)
}

/// The legacy DynamoDB digest; `false` when it could not be written.
fn digest(s3: &Bucket, t: &StateLocation, o: &Options, body: &[u8], steps: &mut Vec<Step>) -> bool {
    let Some(tb) = &o.table else {
        return true;
    };
    let t0 = Instant::now();
    let digest = format!("{:x}", md5::Md5::digest(body));
    let ep = t.dynamodb_endpoint.clone().or(t.endpoint.url.clone());
    match s3.put_state_digest(tb, ep.as_deref(), &t.key, &digest) {
        Ok(()) => {
            steps.push(step(
                "digest",
                tb,
                StepStatus::Changed,
                format!("{}/{}-md5 = {digest}", t.bucket, t.key),
                t0,
            ));
            true
        }
        Err(e) => {
            steps.push(step(
                "digest",
                tb,
                StepStatus::Failed,
                format!("{e}; Terraform refuses the state until Digest = {digest}"),
                t0,
            ));
            false
        }
    }
}
