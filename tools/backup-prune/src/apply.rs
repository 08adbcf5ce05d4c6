//! `--apply`: delete the backups marked `remove`, one at a time, after proving the preview
//! still holds, and prove each deletion afterwards.

use pvedr::records::StepStatus;
use std::collections::{HashMap, HashSet};
use std::time::Instant;

use pvedr::connect::Connection;
use pvedr::error::Result;
use pvedr::output::Output;
use pvedr::records::{Backup, Record, Step};
use pvedr::transport::{RemoteCommand, Transport};
use pvedr::{pvesh, validate};

use crate::cli::Cli;
use crate::plan::GroupKey;

#[derive(Debug, Default)]
pub struct Report {
    pub deleted: usize,
    pub skipped: usize,
    pub failed: usize,
    /// A Ctrl-C or SIGTERM stopped the deletions.
    pub interrupted: bool,
}

impl Report {
    /// One deletion's step: deleted, skipped (gone or kept meanwhile) or failed.
    pub fn count(&mut self, status: &StepStatus) {
        match status {
            StepStatus::Changed => self.deleted += 1,
            StepStatus::Skipped => self.skipped += 1,
            _ => self.failed += 1,
        }
    }
}

/// What a storage holds now: volid → (ctime, protected), or why it could not be listed.
type Listing = HashMap<(String, String), Result<Vec<Backup>, String>>;

fn relist(t: &dyn Transport, pairs: &[(String, String)]) -> Result<Listing> {
    let cmds: Vec<RemoteCommand> = pairs
        .iter()
        .map(|(n, s)| pvesh::get(&pvesh::paths::contents(n, s), &["--content", "backup"]))
        .collect();
    let outs = t.exec_batch(&cmds)?;
    let mut listing = Listing::new();
    for (((n, s), cmd), out) in pairs.iter().zip(&cmds).zip(outs) {
        let r = pvesh::parse_list(t.host(), cmd, out)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|m| pvesh::backup(n, s, m))
                    .collect()
            })
            .map_err(|e| e.to_string());
        listing.insert((n.clone(), s.clone()), r);
    }
    Ok(listing)
}

/// A deletion's step (on a node or offsite).
pub(crate) fn step(
    volid: &str,
    status: StepStatus,
    message: impl Into<String>,
    started: Option<Instant>,
) -> Step {
    Step::new("delete", volid, status, message, started)
}

/// The progress line of the `i`th (from 0) of `total` deletions, of `volid`, once done.
pub(crate) fn say_done(i: usize, total: usize, volid: &str, s: &Step) {
    pvedr::msg::say(format!(
        "[{}/{total}] {} {}: {}",
        i + 1,
        s.status,
        volid,
        s.message.as_deref().unwrap_or("")
    ));
}

fn pair_of(b: &Backup) -> (String, String) {
    (
        b.node.clone().unwrap_or_default(),
        b.storage.clone().unwrap_or_default(),
    )
}

/// The input's `backup` records, with `--node` where a record names none.
fn input_backups(cli: &Cli, records: &[Record]) -> Vec<Backup> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Backup(b) => {
                let mut b = b.clone();
                if b.node.is_none() {
                    b.node = cli.node.clone();
                }
                Some(b)
            }
            _ => None,
        })
        .collect()
}

/// The backups marked `remove` whose records pass the checks a flag would (nothing odd
/// reaches the node's shell); the others get their step now.
/// The volid names the storage the deletion goes to: a record saying `storage: local` for
/// `nas:backup/…` is refused, not deleted from whichever the path picks.
fn same_storage(volid: &str, storage: &str) -> Result<(), String> {
    match volid.split_once(':') {
        Some((s, _)) if s == storage => Ok(()),
        _ => Err(format!(
            "the volid {volid} is not on storage {storage} (the record's); nothing deleted"
        )),
    }
}

const UNFINISHED: &str = "an unfinished PBS snapshot (a backup being written): never removed";

fn marked<'a>(backups: &'a [Backup], steps: &mut Vec<Step>) -> Vec<&'a Backup> {
    let mut targets = Vec::new();
    for b in backups {
        if b.extra.get("mark").and_then(|m| m.as_str()) != Some("remove") {
            continue;
        }
        let checked = match (&b.node, &b.storage) {
            (None, _) => Err("no node known for this backup; give --node".to_string()),
            (_, None) => Err("no storage in the record".to_string()),
            (Some(n), Some(s)) => validate::node(n)
                .and(validate::storage_id(s))
                .and(validate::volid(&b.volid))
                .map_err(|e| e.to_string())
                .and_then(|_| same_storage(&b.volid, s)),
        };
        match checked {
            Err(e) => steps.push(step(&b.volid, StepStatus::Failed, e, None)),
            Ok(()) if b.protected => {
                steps.push(step(&b.volid, StepStatus::Skipped, "protected", None))
            }
            Ok(()) if b.unfinished => {
                steps.push(step(&b.volid, StepStatus::Skipped, UNFINISHED, None))
            }
            Ok(()) => targets.push(b),
        }
    }
    targets
}

pub fn apply(
    cli: &Cli,
    records: &[Record],
    out: &mut Output,
    conn: Option<Connection>,
) -> Result<Report> {
    let backups = input_backups(cli, records);
    let mut steps: Vec<Step> = Vec::new();
    let targets = marked(&backups, &mut steps);
    let mut report = Report::default();
    if !targets.is_empty() {
        let conn = match conn {
            Some(c) => c,
            None => cli.connect.connect()?,
        };
        let t = conn.transport.as_ref();
        let mut pairs: Vec<(String, String)> = targets.iter().map(|b| pair_of(b)).collect();
        pairs.sort();
        pairs.dedup();
        let before = relist(t, &pairs)?;
        let eligible = still_safe(cli, &backups, &targets, &before, &mut steps);
        pvedr::interrupt::install();
        let attempted = delete_each(t, &eligible, &mut steps, &mut report);
        if !attempted.is_empty() {
            prove(t, &pairs, &attempted, &mut steps)?;
        }
    }
    for s in steps {
        report.count(&s.status);
        out.write(&Record::Step(s))?;
    }
    Ok(report)
}

/// The check: does the preview still hold? Returns the backups it is safe to delete.
fn still_safe<'a>(
    cli: &Cli,
    backups: &'a [Backup],
    targets: &[&'a Backup],
    before: &Listing,
    steps: &mut Vec<Step>,
) -> Vec<&'a Backup> {
    let mut input_groups: HashMap<GroupKey, Vec<&Backup>> = HashMap::new();
    for b in backups {
        input_groups.entry(GroupKey::of(b)).or_default().push(b);
    }
    let mut eligible = Vec::new();
    for &b in targets {
        let now = match before.get(&pair_of(b)) {
            Some(Ok(list)) => list,
            Some(Err(e)) => {
                steps.push(step(
                    &b.volid,
                    StepStatus::Failed,
                    format!("cannot list the storage: {e}"),
                    None,
                ));
                continue;
            }
            None => continue,
        };
        let Some(current) = now.iter().find(|c| c.volid == b.volid) else {
            steps.push(step(
                &b.volid,
                StepStatus::Skipped,
                "already gone from the storage",
                None,
            ));
            continue;
        };
        if current.protected {
            steps.push(step(
                &b.volid,
                StepStatus::Skipped,
                "protected since the listing",
                None,
            ));
            continue;
        }
        if current.unfinished {
            steps.push(step(&b.volid, StepStatus::Skipped, UNFINISHED, None));
            continue;
        }
        let key = GroupKey::of(b);
        let changed = input_groups
            .get(&key)
            .and_then(|input| group_changed(input, now, &key));
        if let (Some(why), false) = (changed, cli.force) {
            steps.push(step(
                &b.volid,
                StepStatus::Skipped,
                format!("{why} since the input was listed, so the marks may be wrong; list again (or --force)"),
                None,
            ));
            continue;
        }
        eligible.push(b);
    }
    eligible
}

/// One at a time; a failure does not stop the others. A Ctrl-C lets the running deletion
/// finish and skips the rest. Returns the steps (by index) of deletions that went through.
fn delete_each<'a>(
    t: &dyn Transport,
    eligible: &[&'a Backup],
    steps: &mut Vec<Step>,
    report: &mut Report,
) -> Vec<(usize, &'a Backup)> {
    let total = eligible.len();
    let mut attempted = Vec::new();
    for (i, &b) in eligible.iter().enumerate() {
        if pvedr::interrupt::requested() {
            report.interrupted = true;
            steps.push(step(
                &b.volid,
                StepStatus::Skipped,
                "interrupted before this deletion",
                None,
            ));
            continue;
        }
        let started = Instant::now();
        let cmd = RemoteCommand::write([
            "pvesh".to_string(),
            "delete".into(),
            pvesh::paths::content(
                b.node.as_deref().unwrap_or(""),
                b.storage.as_deref().unwrap_or(""),
                &b.volid,
            ),
        ]);
        let s = match t.exec(&cmd) {
            Ok(o) if removed(&o, &b.volid) => {
                attempted.push((steps.len(), b));
                step(&b.volid, StepStatus::Changed, "deleted", Some(started))
            }
            Ok(o) => step(
                &b.volid,
                StepStatus::Failed,
                delete_error(&o),
                Some(started),
            ),
            Err(e) => step(&b.volid, StepStatus::Failed, e.to_string(), Some(started)),
        };
        say_done(i, total, &b.volid, &s);
        steps.push(s);
    }
    attempted
}

/// pvesh runs the `imgdel` worker synchronously and exits 0 even when it fails (pve-common
/// `RESTEnvironment::fork_worker` in CLI mode prints the error to stderr); the worker prints
/// "Removed volume '<volid>'" only once the volume is freed, so that line is the answer.
/// For another node pvesh's `proxy_handler` joins the remote lines without their newlines:
/// the line is then followed by the JSON-quoted UPID (`Removed volume 'X'"UPID:…"`).
fn removed(o: &pvedr::transport::CommandOutput, volid: &str) -> bool {
    let line = format!("Removed volume '{volid}'");
    o.success()
        && String::from_utf8_lossy(&o.stdout).lines().any(|l| {
            l.trim_end()
                .strip_prefix(line.as_str())
                .is_some_and(|rest| rest.is_empty() || is_quoted_upid(rest))
        })
}

/// `"UPID:…"`, as pvesh prints a UPID in JSON.
fn is_quoted_upid(s: &str) -> bool {
    s.len() > 2 && s.starts_with("\"UPID:") && s.ends_with('"')
}

/// Proxmox's own words when it gave some, else what was missing.
fn delete_error(o: &pvedr::transport::CommandOutput) -> String {
    let text = o.stderr.trim();
    match (text.is_empty(), o.success()) {
        (false, _) => text.to_string(),
        (true, true) => "pvesh exited 0 but did not say \"Removed volume\"".into(),
        (true, false) => format!("exit status {}", o.status),
    }
}

/// The proof: gone from the listing.
fn prove(
    t: &dyn Transport,
    pairs: &[(String, String)],
    attempted: &[(usize, &Backup)],
    steps: &mut [Step],
) -> Result<()> {
    let after = relist(t, pairs)?;
    for (idx, b) in attempted {
        if let Some(Ok(list)) = after.get(&pair_of(b))
            && list.iter().any(|c| c.volid == b.volid)
        {
            steps[*idx].status = StepStatus::Failed;
            steps[*idx].message = Some("still listed after the delete".into());
        }
    }
    Ok(())
}

/// A group's marks depend only on its backups at least as new as each one: the preview is
/// still right if no backup that old or newer appeared and none of the input vanished.
fn group_changed(input: &[&Backup], now: &[Backup], key: &GroupKey) -> Option<String> {
    let oldest = input.iter().map(|b| b.ctime).min()?;
    let known: HashSet<&str> = input.iter().map(|b| b.volid.as_str()).collect();
    let present: HashSet<&str> = now.iter().map(|b| b.volid.as_str()).collect();
    // A snapshot being written takes no slot: it changes no mark.
    let added = now
        .iter()
        .filter(|c| c.subtype == key.subtype && c.vmid == key.vmid && !c.unfinished)
        .filter(|c| c.ctime >= oldest && !known.contains(c.volid.as_str()))
        .count();
    let gone = known.iter().filter(|v| !present.contains(*v)).count();
    match (added, gone) {
        (0, 0) => None,
        (a, 0) => Some(format!("{a} newer backup(s) of this guest appeared")),
        (0, g) => Some(format!("{g} backup(s) of this guest vanished")),
        (a, g) => Some(format!(
            "{a} backup(s) of this guest appeared and {g} vanished"
        )),
    }
}
