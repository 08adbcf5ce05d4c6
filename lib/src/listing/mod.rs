//! Gathering backups (and guests, storages, jobs) from nodes, or from a dump directory.
//!
//! Over a transport the work takes at most three round trips, whatever the number of nodes
//! and storages: the cluster's nodes, then every node's backup storages, then every
//! storage's content, each round a parallel batch on the node.

mod blind;
mod guests;
mod remote;

pub use guests::{GuestArgs, GuestSelection};
pub use remote::gather_remote;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use clap::Args;

use crate::dumpdir::DumpDir;
use crate::error::{Error, Result};
use crate::pvesh::{self, paths};
use crate::records::{Backup, BackupFailure, Guest, Job, Storage};
use crate::status::TaskExit;
use crate::time::{self, Zone};
use crate::transport::RemoteCommand;
use crate::validate;

/// Which nodes and storages to read.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Selection")]
pub struct SelectArgs {
    /// Node to list (repeatable). Default: the node the command runs on.
    #[arg(long, value_name = "NODE")]
    pub node: Vec<String>,

    /// Every online node of the cluster (offline nodes are reported on stderr).
    #[arg(long, conflicts_with = "node")]
    pub all_nodes: bool,

    /// Storage to list (repeatable). Default: every storage of the node whose content
    /// includes backups. In --dir mode: the storage ID used in volids (default `dir`).
    #[arg(long, short = 's', value_name = "STORAGE")]
    pub storage: Vec<String>,

    /// Offline mode: read this dump directory directly (a NAS mount when the cluster is
    /// gone) instead of asking Proxmox.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["all_nodes", "host", "tfvars"])]
    pub dir: Option<PathBuf>,

    /// The node's time zone (IANA name, e.g. Europe/Paris): what dates (--since, --until),
    /// retention periods and job schedules mean, and with --dir how archive names are read.
    /// Default: the zone the node reports (/nodes/localhost/time); with --dir, TZ, else the
    /// system zone.
    #[arg(long, value_name = "NAME")]
    pub timezone: Option<String>,
}

/// Which backups to keep.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Filters")]
pub struct FilterArgs {
    /// Only this guest (repeatable).
    #[arg(long, value_name = "VMID")]
    pub vmid: Vec<String>,

    /// Only VMs (qemu) or containers (lxc).
    #[arg(long = "type", value_name = "TYPE", value_parser = ["qemu", "lxc"])]
    pub guest_type: Option<String>,

    /// Only backups made at or after this time (YYYY-MM-DD in the node's zone, or RFC 3339).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,

    /// Only backups made at or before this time (a date means the end of that day).
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,

    /// Only the newest backup of each guest: the newest with a standard vzdump name that is
    /// not a pvedr safety point (notes "pvedr safety point …"); a renamed or manual copy or
    /// a safety point only when the guest has nothing else.
    #[arg(long)]
    pub latest: bool,
}

/// Parsed and validated filters.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub vmids: Vec<u64>,
    pub guest_type: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub latest: bool,
}

impl FilterArgs {
    pub fn parse(&self, zone: Zone) -> Result<Filter> {
        Ok(Filter {
            vmids: self
                .vmid
                .iter()
                .map(|v| validate::vmid(v))
                .collect::<Result<_>>()?,
            guest_type: self.guest_type.clone(),
            since: self
                .since
                .as_deref()
                .map(|s| time::parse_date(s, zone, false))
                .transpose()?,
            until: self
                .until
                .as_deref()
                .map(|s| time::parse_date(s, zone, true))
                .transpose()?,
            latest: self.latest,
        })
    }
}

impl Filter {
    pub fn matches(&self, b: &Backup) -> bool {
        (self.vmids.is_empty() || b.vmid.is_some_and(|v| self.vmids.contains(&v)))
            && self.guest_type.as_deref().is_none_or(|t| t == b.subtype)
            && self.since.is_none_or(|s| b.ctime >= s)
            && self.until.is_none_or(|u| b.ctime <= u)
    }

    /// Keeps the matching backups, in order; with `latest`, the newest per guest
    /// (type and VMID, as Proxmox groups them), by [`crate::newest`]'s rule: never an
    /// unfinished PBS snapshot, a renamed copy or a safety point only when the guest has
    /// nothing else.
    pub fn apply(&self, backups: Vec<Backup>) -> Vec<Backup> {
        let kept: Vec<Backup> = backups.into_iter().filter(|b| self.matches(b)).collect();
        if !self.latest {
            return kept;
        }
        let mut newest: BTreeMap<(String, Option<u64>), usize> = BTreeMap::new();
        for (i, b) in kept.iter().enumerate().filter(|(_, b)| !b.unfinished) {
            let key = (b.subtype.clone(), b.vmid);
            match newest.get(&key) {
                Some(&j) if !crate::newest::beats(b, &kept[j]) => {}
                _ => {
                    newest.insert(key, i);
                }
            }
        }
        let chosen: HashSet<usize> = newest.into_values().collect();
        kept.into_iter()
            .enumerate()
            .filter(|(i, _)| chosen.contains(i))
            .map(|(_, b)| b)
            .collect()
    }
}

/// What to gather besides backups.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extras {
    pub guests: bool,
    pub storage: bool,
    pub jobs: bool,
    pub failures: bool,
}

/// Everything gathered. `problems` lists what could not be read (the run is partial).
#[derive(Debug, Default)]
pub struct Gathered {
    pub backups: Vec<Backup>,
    pub guests: Vec<Guest>,
    pub storages: Vec<Storage>,
    pub jobs: Vec<Job>,
    pub failures: Vec<BackupFailure>,
    pub problems: Vec<String>,
    /// Why backups may be missing from the listing (privileges the token lacks): a guest
    /// without backups is then unknown, not unprotected. Each is in `problems` too.
    pub blind: Vec<String>,
    /// The zone of the node asked (its `/nodes/localhost/time`), when `--timezone` was not
    /// given: what dates, periods and schedules mean there.
    pub node_zone: Option<Zone>,
}

impl Gathered {
    /// `--timezone` if given, else the node's own zone, else this process's.
    pub fn zone(&self, sel: &SelectArgs) -> Result<Zone> {
        match (&sel.timezone, self.node_zone) {
            (Some(n), _) => Zone::named(n),
            (None, Some(z)) => Ok(z),
            (None, None) => Ok(Zone::Local),
        }
    }
}

impl Gathered {
    /// Each backup says the zone its node's periods are in (when it has a name), so a
    /// reader elsewhere (`backup-prune` off the node) marks as the node will.
    fn stamp_zone(&mut self, zone: Zone) {
        if let Some(name) = zone.name() {
            for b in &mut self.backups {
                b.timezone = Some(name.to_string());
            }
        }
    }

    /// Fills `name` of each backup from the guest list.
    fn name_backups(&mut self) {
        let names: BTreeMap<u64, &str> = self
            .guests
            .iter()
            .filter_map(|g| Some((g.vmid, g.name.as_deref()?)))
            .collect();
        for b in &mut self.backups {
            if let Some(n) = b.vmid.and_then(|v| names.get(&v)) {
                b.name = Some((*n).to_string());
            }
        }
    }
}

/// Reads a dump directory.
pub fn gather_dir(sel: &SelectArgs, zone: Zone, extras: Extras) -> Result<Gathered> {
    let path = sel
        .dir
        .clone()
        .ok_or_else(|| Error::usage("no --dir given"))?;
    if sel.storage.len() > 1 {
        return Err(Error::usage(
            "--dir takes one --storage (the ID used in volids)",
        ));
    }
    let storage = match sel.storage.first() {
        Some(s) => validate::storage_id(s)?.to_string(),
        None => "dir".into(),
    };
    let node = match sel.node.as_slice() {
        [] => None,
        [n] => Some(validate::node(n)?.to_string()),
        _ => return Err(Error::usage("--dir takes one --node")),
    };
    let dd = DumpDir {
        path,
        storage,
        node,
        zone,
    };
    let listing = dd.list()?;
    let mut g = Gathered {
        backups: listing.backups,
        failures: listing.failures,
        ..Default::default()
    };
    g.stamp_zone(zone);
    if extras.storage {
        g.storages.push(dd.storage_record()?);
    }
    if extras.guests {
        crate::msg::warn("--with-guests needs a node; a dump directory holds no guest list");
    }
    if extras.jobs {
        crate::msg::warn("--with-jobs needs a node; a dump directory holds no job list");
    }
    Ok(g)
}

/// `ERROR: Backup of VM <vmid> failed - <reason>` lines of a vzdump task log, each with the
/// guest type from its `Starting Backup of VM <vmid> (<type>)` line.
fn task_failures(
    node: &str,
    task: &serde_json::Map<String, serde_json::Value>,
    lines: &[serde_json::Map<String, serde_json::Value>],
) -> Vec<BackupFailure> {
    let start = pvesh::int_of(task, "starttime").unwrap_or(0);
    let upid = pvesh::str_of(task, "upid").unwrap_or_default();
    let text: Vec<String> = lines.iter().filter_map(|l| pvesh::str_of(l, "t")).collect();
    let mut out = Vec::new();
    for l in &text {
        let Some(rest) = l.split("ERROR: Backup of VM ").nth(1) else {
            continue;
        };
        let Some((id, reason)) = rest.split_once(" failed - ") else {
            continue;
        };
        let Ok(vmid) = id.trim().parse::<u64>() else {
            continue;
        };
        let subtype = text
            .iter()
            .find_map(|x| {
                let r = x.split(&format!("Starting Backup of VM {vmid} (")).nth(1)?;
                Some(r.trim_end_matches(')').to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        out.push(BackupFailure {
            node: Some(node.into()),
            storage: None,
            vmid,
            subtype,
            ctime: start,
            time: crate::records::rfc3339(start),
            log: upid.clone(),
            error: Some(format!("Backup of VM {vmid} failed - {}", reason.trim())),
            extra: Default::default(),
        });
    }
    out
}

fn task_index(node: &str) -> RemoteCommand {
    pvesh::get(
        &paths::tasks(node),
        &["--typefilter", "vzdump", "--limit", "100"],
    )
}

fn severity(status: &str) -> u8 {
    match TaskExit::parse(status) {
        TaskExit::Ok => 0,
        TaskExit::Warnings => 1,
        TaskExit::Running | TaskExit::Error => 2,
    }
}

/// Gives each job the outcome of its last run (`last_task`). The job ID is not in a task, so
/// scheduled runs (started by root@pam) are matched to a job by the schedule's time of day in
/// the node's zone (--timezone/TZ), within 10 minutes; with one job, all are its own. Of each
/// node's newest run the worst wins, so one failed node is not hidden by another.
fn attach_last_tasks(
    jobs: &mut [Job],
    tasks: &[(String, serde_json::Map<String, serde_json::Value>)],
    zone: Zone,
) {
    let single = jobs.len() == 1;
    for job in jobs.iter_mut() {
        let schedule = job
            .schedule
            .as_deref()
            .and_then(crate::schedule::Schedule::parse);
        let mut newest: BTreeMap<&str, (i64, &serde_json::Map<String, serde_json::Value>)> =
            BTreeMap::new();
        for (node, t) in tasks {
            if pvesh::str_of(t, "type").as_deref() != Some("vzdump")
                || job.node.as_deref().is_some_and(|n| n != node)
            {
                continue;
            }
            let Some(start) = pvesh::int_of(t, "starttime") else {
                continue;
            };
            let belongs = single
                || match (&schedule, zone.to_local(start)) {
                    (Some(s), Some(lt)) => {
                        use chrono::{Datelike, Timelike};
                        s.matches(
                            lt.weekday().num_days_from_monday(),
                            lt.hour() * 60 + lt.minute(),
                            10,
                        )
                    }
                    _ => false,
                };
            if !belongs {
                continue;
            }
            if newest.get(node.as_str()).is_none_or(|(s, _)| start > *s) {
                newest.insert(node, (start, t));
            }
        }
        let worst = newest.values().max_by_key(|(start, t)| {
            (
                severity(&pvesh::str_of(t, "status").unwrap_or_default()),
                *start,
            )
        });
        if let Some((_, t)) = worst {
            let mut m = serde_json::Map::new();
            for k in ["upid", "node", "starttime", "endtime", "status"] {
                if let Some(v) = t.get(k) {
                    m.insert(k.into(), v.clone());
                }
            }
            job.last_task = Some(serde_json::Value::Object(m));
        }
    }
}

fn storage_index(node: &str) -> RemoteCommand {
    pvesh::get(&paths::storages(node), &["--content", "backup"])
}

/// (node, online) of every node in `/cluster/status`, and the local one.
fn cluster_nodes(
    items: &[serde_json::Map<String, serde_json::Value>],
) -> (Vec<(String, bool)>, Option<String>) {
    let mut all = Vec::new();
    let mut local = None;
    for m in items {
        if pvesh::str_of(m, "type").as_deref() != Some("node") {
            continue;
        }
        let Some(name) = pvesh::str_of(m, "name") else {
            continue;
        };
        // The node sent it: say so, and never let it reach a path or a command.
        if validate::node(&name).is_err() {
            crate::msg::warn(format!(
                "/cluster/status names a node '{}', which is not a valid node name: skipped",
                crate::msg::visible(&name).escape_debug()
            ));
            continue;
        }
        if pvesh::bool_of(m, "local").unwrap_or(false) {
            local = Some(name.clone());
        }
        all.push((name, pvesh::bool_of(m, "online").unwrap_or(false)));
    }
    all.sort();
    (all, local)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(vmid: u64, subtype: &str, ctime: i64) -> Backup {
        Backup {
            vmid: Some(vmid),
            subtype: subtype.into(),
            ctime,
            volid: format!("l:backup/{subtype}-{vmid}-{ctime}"),
            ..Default::default()
        }
    }

    #[test]
    fn latest_is_per_type_and_vmid() {
        let f = Filter {
            latest: true,
            ..Default::default()
        };
        let out = f.apply(vec![
            b(100, "qemu", 1),
            b(100, "qemu", 3),
            b(100, "lxc", 2),
            b(101, "qemu", 1),
        ]);
        let got: Vec<(u64, &str, i64)> = out
            .iter()
            .map(|x| (x.vmid.unwrap_or(0), x.subtype.as_str(), x.ctime))
            .collect();
        assert_eq!(
            got,
            vec![(100, "qemu", 3), (100, "lxc", 2), (101, "qemu", 1)]
        );
    }

    #[test]
    fn ranges_and_types() {
        let f = Filter {
            since: Some(2),
            until: Some(3),
            guest_type: Some("qemu".into()),
            ..Default::default()
        };
        let out = f.apply(vec![b(100, "qemu", 1), b(100, "qemu", 3), b(100, "lxc", 2)]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].ctime, 3);
    }
}
