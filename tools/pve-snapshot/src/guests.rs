//! What every command asks of the cluster: the selected guests, their snapshots, the node's
//! clock, a guest's lock; and the node-local commands, run on the guest's own node.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use pvedr::cluster::{self, Cluster};
use pvedr::error::{Error, Result};
use pvedr::listing::GuestSelection;
use pvedr::pve::{self, At, Client, Kind};
use pvedr::pvesh::{self, paths};
use pvedr::records::{Guest, Snapshot, rfc3339};
use pvedr::transport::{CommandOutput, RemoteCommand, Transport};
use pvedr::{msg, retry, validate};
use serde_json::{Map, Value};

use crate::names;

/// The connection, the cluster behind it, and the selected guests.
pub struct Ctx<'a> {
    pub t: &'a dyn Transport,
    pub cluster: Cluster,
    pub guests: Vec<Guest>,
    /// `--vmid`s that are not in the cluster.
    pub missing: Vec<u64>,
}

impl<'a> Ctx<'a> {
    pub fn new(t: &'a dyn Transport, sel: &GuestSelection) -> Result<Ctx<'a>> {
        pvedr::deadline::doing(format!("reading the cluster from {}", t.host()));
        let cluster = cluster::read(t)?;
        let (found, mut missing) = sel.resolve(t)?;
        for v in &missing {
            msg::warn(format!("guest {v} does not exist in the cluster"));
        }
        // The node name reaches API paths and commands: one that is not a node name is
        // the node's own error, and its guest is left alone.
        let (guests, odd): (Vec<Guest>, Vec<Guest>) = found
            .into_iter()
            .partition(|g| g.node.as_deref().is_some_and(|n| validate::node(n).is_ok()));
        for g in odd {
            msg::warn(format!(
                "guest {}: invalid node '{}' in /cluster/resources; left alone",
                g.vmid,
                msg::visible(g.node.as_deref().unwrap_or(""))
            ));
            missing.push(g.vmid);
        }
        Ok(Ctx {
            t,
            cluster,
            guests,
            missing,
        })
    }

    /// Runs a node-local command on `node`: on the connection or through the cluster's SSH.
    pub fn on_node(&self, node: &str, cmd: &RemoteCommand) -> Result<CommandOutput> {
        match self.cluster.route(self.t, node)? {
            Some(hop) => hop.exec(cmd),
            None => self.t.exec(cmd),
        }
    }

    /// The node's local time as `YYYYMMDD-HHMMSS`: its own clock and zone, from
    /// `/nodes/NODE/time` (pve-manager `API2/Nodes.pm` `time`: `localtime` is the local
    /// wall clock counted as if it were UTC seconds).
    pub fn node_stamp(&self, node: &str) -> Result<String> {
        let cmd = pvesh::get(&paths::node_time(node), &[]);
        let m = pvesh::parse_object(self.t.host(), &cmd, self.t.exec(&cmd)?)?;
        pvesh::int_of(&m, "localtime")
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            .map(|t| t.format("%Y%m%d-%H%M%S").to_string())
            .filter(|s| names::is_stamp(s))
            .ok_or_else(|| Error::Protocol {
                host: node.into(),
                command: cmd.line(),
                message: "no usable `localtime`".into(),
            })
    }

    /// Waits up to `wait` for the guest's lock to go away (read from its config on its
    /// node every 2 s). The lock still held, or `None` once it is free.
    pub fn wait_unlocked(&self, g: &Guest, wait: Duration) -> Result<Option<String>> {
        let node = g.node.clone().unwrap_or_default();
        let hop = self.cluster.route(self.t, &node)?;
        let client = Client::new(hop.as_deref().unwrap_or(self.t));
        let at = at(g, &node);
        let mut held = g.lock.clone();
        let free = retry::poll_until(Instant::now() + wait, Duration::from_secs(2), || {
            held = client.lock(at)?;
            Ok(held.is_none().then_some(()))
        })?;
        Ok(if free.is_some() { None } else { held })
    }
}

/// Where a guest's API paths are.
fn at<'n>(g: &Guest, node: &'n str) -> At<'n> {
    let kind = Kind::parse(&g.guest_type).unwrap_or(Kind::Qemu);
    At {
        node,
        kind,
        vmid: g.vmid,
    }
}

/// What happened to one guest, on stderr: `pve-snapshot: warning: qemu 100 on pve1: …`.
/// Every failure that becomes a record is said here too (cron mails stderr).
pub fn warn(g: &Guest, what: impl std::fmt::Display) {
    msg::warn(format!(
        "{} {} on {}: {what}",
        g.guest_type,
        g.vmid,
        g.node.as_deref().unwrap_or("?")
    ));
}

/// How a command that did not come back is described: a lost connection leaves its effect
/// unknown; any other error (a malformed answer, a task id that is not one) is a failure.
/// A task left running names itself (its UPID and how to stop it).
pub fn lost_or_failed(e: &Error) -> String {
    if e.is_transient() || matches!(e, Error::TaskLeft { .. }) {
        e.lost()
    } else {
        format!("failed: {e}")
    }
}

pub fn tool(g: &Guest) -> &'static str {
    if g.guest_type == "lxc" { "pct" } else { "qm" }
}

/// A guest's snapshots as Proxmox lists them (`current` aside, its parent marked `current`).
#[derive(Debug, Default)]
pub struct Listed {
    pub snapshots: Vec<Snapshot>,
}

/// Every guest's snapshots, in one round trip (a parallel batch of `pvesh get`, proxied by
/// Proxmox to each guest's node). Per guest: the list, or why it could not be read.
pub fn list_all(t: &dyn Transport, guests: &[Guest]) -> Result<Vec<Result<Listed, String>>> {
    let ats: Vec<At> = guests
        .iter()
        .map(|g| at(g, g.node.as_deref().unwrap_or_default()))
        .collect();
    let names: Vec<String> = guests
        .iter()
        .map(|g| {
            format!(
                "{} {} on {}",
                g.guest_type,
                g.vmid,
                g.node.as_deref().unwrap_or("?")
            )
        })
        .collect();
    pvedr::deadline::doing(format!("listing the snapshots of {}", names.join(", ")));
    let lists = Client::new(t).snapshots_of(&ats)?;
    Ok(guests
        .iter()
        .zip(lists)
        .map(|(g, list)| Ok(listed(g, list?)))
        .collect())
}

fn listed(g: &Guest, items: Vec<pve::Snapshot>) -> Listed {
    let parent = items
        .iter()
        .find(|s| s.is_current())
        .and_then(|s| s.parent.clone());
    let mut snapshots: Vec<Snapshot> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for s in items
        .into_iter()
        .filter(|s| !s.is_current())
        .map(|s| snapshot(g, s))
    {
        // Names are unique in a guest's config: a second entry is the node's error, and
        // counting it twice would let prune remove the snapshot it also keeps.
        if !seen.insert(s.name.clone()) {
            warn(
                g,
                format!("snapshot '{}' listed twice; counted once", s.name),
            );
            continue;
        }
        snapshots.push(s);
    }
    for s in &mut snapshots {
        if parent.as_deref() == Some(s.name.as_str()) {
            s.extra.insert("current".into(), Value::Bool(true));
        }
    }
    // Proxmox lists in hash order: oldest first here, the name breaking ties.
    snapshots.sort_by(|a, b| (a.snaptime, &a.name).cmp(&(b.snaptime, &b.name)));
    Listed { snapshots }
}

/// One entry of the list as a `snapshot` record.
fn snapshot(g: &Guest, s: pve::Snapshot) -> Snapshot {
    let snaptime = s.snaptime.filter(|t| *t > 0);
    let description = s.description.filter(|d| !d.is_empty());
    let mut extra = Map::new();
    if let Some(st) = s.snapstate {
        extra.insert("snapstate".into(), Value::String(st));
    }
    Snapshot {
        node: g.node.clone(),
        vmid: g.vmid,
        guest_type: g.guest_type.clone(),
        label: names::ours(&s.name, description.as_deref()).map(String::from),
        name: s.name,
        snaptime,
        time: snaptime.map(rfc3339),
        parent: s.parent,
        vmstate: (g.guest_type == "qemu").then_some(s.vmstate),
        description,
        extra,
    }
}

/// What a failed command said (Proxmox's reason), on one line, bounded.
pub fn reason(out: &CommandOutput) -> String {
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return format!("exited with status {}", out.status);
    }
    let mut text = msg::visible(&lines.join("; "));
    if text.len() > 500 {
        let mut cut = 500;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// Whether Proxmox refused before changing anything (the guest stays as it was).
pub fn refusal(reason: &str) -> bool {
    [
        "is locked (",
        "snapshot feature is not available",
        "already used",
        "you can't",
        "does not exist",
        "reserved name",
        "cannot be removed while the VM is running",
        "Parameter verification failed",
    ]
    .iter()
    .any(|p| reason.contains(p))
}
