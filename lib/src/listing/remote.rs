//! Gathering over a transport, in at most three round trips whatever the cluster's size:
//! (1) the cluster's nodes, guests and jobs, (2) each node's backup storages and vzdump
//! tasks, (3) each storage's content and the logs of failed tasks. Each round is one batch;
//! its answers are found by what was asked ([`Req`]), not by position.

use std::collections::{BTreeSet, HashSet};

use serde_json::{Map, Value};

use super::{Extras, Gathered, SelectArgs};
use crate::error::{Error, Result};
use crate::msg;
use crate::pve::{self, Resource};
use crate::pvesh::{self, paths};
use crate::records::{Guest, Storage};
use crate::status::TaskExit;
use crate::transport::{CommandOutput, RemoteCommand, Transport};
use crate::validate;

/// What a request in a round asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Req {
    Status,
    Time,
    Resources,
    Jobs,
    Storages(String),
    Tasks(String),
    Content(usize),
    Log(usize),
}

/// One round trip: requests, then their answers.
#[derive(Default)]
struct Round {
    asked: Vec<(Req, RemoteCommand)>,
}

/// A round's answers.
struct Answers {
    host: String,
    got: Vec<(Req, RemoteCommand, CommandOutput)>,
}

impl Round {
    fn ask(&mut self, r: Req, cmd: RemoteCommand) {
        self.asked.push((r, cmd));
    }

    fn run(self, t: &dyn Transport) -> Result<Answers> {
        let cmds: Vec<RemoteCommand> = self.asked.iter().map(|(_, c)| c.clone()).collect();
        let outs = t.exec_batch(&cmds)?;
        Ok(Answers {
            host: t.host().into(),
            got: self
                .asked
                .into_iter()
                .zip(outs)
                .map(|((r, c), o)| (r, c, o))
                .collect(),
        })
    }
}

impl Answers {
    /// The raw answer to `r`; `None` when it was not asked.
    fn take(&mut self, r: &Req) -> Option<(RemoteCommand, CommandOutput)> {
        let i = self.got.iter().position(|(x, _, _)| x == r)?;
        let (_, cmd, out) = self.got.swap_remove(i);
        Some((cmd, out))
    }

    /// The answer to `r` as a JSON list; `None` when it was not asked.
    fn list(&mut self, r: &Req) -> Option<Result<Vec<Map<String, Value>>>> {
        let (cmd, out) = self.take(r)?;
        Some(pvesh::parse_list(&self.host, &cmd, out))
    }
}

fn problem(g: &mut Gathered, msg: String) {
    msg::say(&msg);
    g.problems.push(msg);
}

/// Asks Proxmox through the transport (local pvesh or SSH).
pub fn gather_remote(
    t: &dyn Transport,
    sel: &SelectArgs,
    extras: Extras,
    default_node: Option<&str>,
) -> Result<Gathered> {
    for n in &sel.node {
        validate::node(n)?;
    }
    for s in &sel.storage {
        validate::storage_id(s)?;
    }
    let mut g = Gathered::default();
    let named: Vec<String> = match (sel.node.is_empty(), default_node) {
        (false, _) => sel.node.clone(),
        (true, Some(n)) => vec![n.to_string()],
        (true, None) => Vec::new(),
    };
    let need_status = named.is_empty() || sel.all_nodes;
    let mut r1 = Round::default();
    // Named nodes are checked against the cluster in the same round trip: a mistyped
    // --node is an error naming the nodes there, not a partial listing.
    if need_status || !sel.node.is_empty() {
        r1.ask(Req::Status, pvesh::get(paths::CLUSTER_STATUS, &[]));
    }
    if sel.timezone.is_none() {
        r1.ask(Req::Time, pvesh::get(&paths::node_time("localhost"), &[]));
    }
    if extras.guests {
        r1.ask(Req::Resources, pve::resources::vm_resources_cmd());
    }
    if extras.jobs {
        r1.ask(Req::Jobs, pvesh::get(paths::CLUSTER_BACKUP, &[]));
    }
    // When the nodes are known, their storage lists ride along in round 1.
    if !need_status {
        ask_node_lists(&mut r1, &named, extras);
    }
    crate::deadline::doing(format!("reading the cluster from {}", t.host()));
    let mut a1 = r1.run(t)?;
    if let Some((cmd, out)) = a1.take(&Req::Time) {
        g.node_zone = Some(pvesh::zone_of(&a1.host, &cmd, out)?);
    }
    let nodes = match (a1.list(&Req::Status), need_status) {
        (Some(status), true) => online_nodes(&status?, sel, &a1.host, &mut g)?,
        // Reading /cluster/status needs Sys.Audit on / (pve-manager `API2/Cluster.pm`
        // `get_status`), which a least-privileged token may lack: then the names stand.
        (Some(Ok(status)), false) => known_nodes(&status, named)?,
        (Some(Err(_)), false) => named,
        (None, _) => named,
    };
    if let Some(items) = a1.list(&Req::Resources) {
        g.guests = Resource::all(&items?)
            .into_iter()
            .map(Guest::from)
            .collect();
        g.guests.sort_by_key(|x| x.vmid);
    }
    if let Some(items) = a1.list(&Req::Jobs) {
        g.jobs = items?.iter().filter_map(pvesh::job).collect();
    }
    let mut lists = if need_status {
        let mut r2 = Round::default();
        ask_node_lists(&mut r2, &nodes, extras);
        crate::deadline::doing(format!("listing the storages of {}", nodes.join(", ")));
        r2.run(t)?
    } else {
        a1
    };
    let (targets, tasks) = node_lists(&mut lists, &nodes, sel, extras, &mut g)?;
    contents_and_logs(t, &targets, &tasks, extras, &mut g)?;
    crate::deadline::doing("reading the connection's privileges");
    let blind = super::blind::spots(t, &targets, extras.guests).unwrap_or_else(|e| {
        vec![format!(
            "the connection's privileges could not be read ({e}): the listing may be incomplete"
        )]
    });
    for b in blind {
        problem(&mut g, b.clone());
        g.blind.push(b);
    }
    if extras.storage {
        g.storages = targets;
    }
    if extras.guests {
        g.name_backups();
    }
    let zone = g.zone(sel)?;
    g.stamp_zone(zone);
    if extras.jobs {
        super::attach_last_tasks(&mut g.jobs, &tasks, zone);
    }
    Ok(g)
}

fn ask_node_lists(r: &mut Round, nodes: &[String], extras: Extras) {
    for n in nodes {
        r.ask(Req::Storages(n.clone()), super::storage_index(n));
    }
    if extras.jobs || extras.failures {
        for n in nodes {
            r.ask(Req::Tasks(n.clone()), super::task_index(n));
        }
    }
}

/// The nodes to read from `/cluster/status`: every online one (`--all-nodes`), or this one.
fn online_nodes(
    status: &[Map<String, Value>],
    sel: &SelectArgs,
    host: &str,
    g: &mut Gathered,
) -> Result<Vec<String>> {
    let (all, local) = super::cluster_nodes(status);
    if !sel.all_nodes {
        let local = local.ok_or_else(|| Error::Protocol {
            host: host.into(),
            command: pvesh::get(paths::CLUSTER_STATUS, &[]).line(),
            message: "no local node in /cluster/status; name it with --node".into(),
        })?;
        return Ok(vec![local]);
    }
    let mut nodes = Vec::new();
    for (n, online) in all {
        if online {
            nodes.push(n);
        } else {
            problem(
                g,
                format!("node {n} is offline; its local storages were not listed"),
            );
        }
    }
    Ok(nodes)
}

/// The nodes named with --node, each checked against `/cluster/status`.
fn known_nodes(status: &[Map<String, Value>], named: Vec<String>) -> Result<Vec<String>> {
    let (all, _) = super::cluster_nodes(status);
    let there: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    match named.iter().find(|n| !there.contains(&n.as_str())) {
        Some(n) => Err(Error::Refused(format!(
            "no node '{n}' in the cluster (nodes there: {})",
            there.join(", ")
        ))),
        None => Ok(named),
    }
}

type Task = (String, Map<String, Value>);

/// Each node's backup storages (a shared one once) and its vzdump tasks.
fn node_lists(
    a: &mut Answers,
    nodes: &[String],
    sel: &SelectArgs,
    extras: Extras,
    g: &mut Gathered,
) -> Result<(Vec<Storage>, Vec<Task>)> {
    let mut targets: Vec<Storage> = Vec::new();
    let mut seen_shared: HashSet<String> = HashSet::new();
    // Every backup storage seen, to name them when a wanted one is not there.
    let mut existing: BTreeSet<String> = BTreeSet::new();
    let mut unread = false;
    let mut tasks: Vec<Task> = Vec::new();
    for node in nodes {
        if extras.jobs || extras.failures {
            match a.list(&Req::Tasks(node.clone())) {
                Some(Ok(items)) => tasks.extend(items.into_iter().map(|t| (node.clone(), t))),
                Some(Err(e)) => problem(g, format!("node {node}: cannot list tasks: {e}")),
                None => {}
            }
        }
        let items = match a.list(&Req::Storages(node.clone())) {
            Some(Ok(i)) => i,
            Some(Err(e)) => {
                problem(g, format!("node {node}: cannot list storages: {e}"));
                unread = true;
                continue;
            }
            None => continue,
        };
        for s in items.iter().filter_map(|m| pvesh::storage(node, m)) {
            existing.insert(s.storage.clone());
            if !sel.storage.is_empty() && !sel.storage.contains(&s.storage) {
                continue;
            }
            // A shared storage (NFS, PBS) shows the same backups on every node: list it once.
            if s.shared && !seen_shared.insert(s.storage.clone()) {
                continue;
            }
            targets.push(s);
        }
    }
    let there = if existing.is_empty() {
        "none".to_string()
    } else {
        existing.into_iter().collect::<Vec<_>>().join(", ")
    };
    let missing: Vec<&String> = sel
        .storage
        .iter()
        .filter(|want| !targets.iter().any(|s| &s.storage == *want))
        .collect();
    // Nothing of what was asked exists where every node answered: a typo, not a partial
    // listing; say what there is.
    if !sel.storage.is_empty() && targets.is_empty() && !unread && !nodes.is_empty() {
        return Err(Error::Refused(format!(
            "no storage {} with backup content on {} (backup storages there: {there})",
            missing
                .iter()
                .map(|w| format!("'{w}'"))
                .collect::<Vec<_>>()
                .join(", "),
            nodes.join(", ")
        )));
    }
    for want in missing {
        let msg = format!(
            "storage '{want}' not found with backup content on {} (backup storages there: {there})",
            nodes.join(", ")
        );
        problem(g, msg);
    }
    Ok((targets, tasks))
}

/// `nas on pve1, local on pve1`: the active storages whose content a round lists.
fn storage_names(targets: &[Storage]) -> String {
    let names: Vec<String> = targets
        .iter()
        .filter(|s| s.active)
        .map(|s| format!("{} on {}", s.storage, s.node.as_deref().unwrap_or("?")))
        .collect();
    names.join(", ")
}

/// Failed vzdump tasks (not OK, not WARNINGS, not running): their logs name the guests.
fn failed_tasks(tasks: &[Task]) -> Vec<&Task> {
    tasks
        .iter()
        .filter(|(_, t)| {
            let st = pvesh::str_of(t, "status").unwrap_or_default();
            pvesh::str_of(t, "type").as_deref() == Some("vzdump")
                && !st.is_empty()
                && TaskExit::parse(&st).is_error()
        })
        .collect()
}

/// Round 3: every active storage's content, and the logs of failed tasks.
fn contents_and_logs(
    t: &dyn Transport,
    targets: &[Storage],
    tasks: &[Task],
    extras: Extras,
    g: &mut Gathered,
) -> Result<()> {
    let mut r3 = Round::default();
    for (i, s) in targets.iter().enumerate() {
        if !s.active {
            let node = s.node.as_deref().unwrap_or("?");
            problem(
                g,
                format!("storage {} on {node} is not active; not listed", s.storage),
            );
            continue;
        }
        let path = paths::contents(s.node.as_deref().unwrap_or(""), &s.storage);
        r3.ask(Req::Content(i), pvesh::get(&path, &["--content", "backup"]));
    }
    let failed = if extras.failures {
        failed_tasks(tasks)
    } else {
        Vec::new()
    };
    for (i, (n, task)) in failed.iter().enumerate() {
        if let Some(upid) = pvesh::str_of(task, "upid") {
            let path = paths::task_log(n, &upid);
            r3.ask(Req::Log(i), pvesh::get(&path, &["--limit", "100000"]));
        }
    }
    crate::deadline::doing(format!("listing the backups of {}", storage_names(targets)));
    let mut a = r3.run(t)?;
    for (i, (node, task)) in failed.iter().enumerate() {
        match a.list(&Req::Log(i)) {
            Some(Ok(lines)) => match pvesh::unreadable_log(&lines) {
                None => g.failures.extend(super::task_failures(node, task, &lines)),
                // Which guests that run failed is unknown, not none.
                Some(why) => problem(
                    g,
                    format!(
                        "node {node}: cannot read the log of failed task {}: {}; its failures are unknown",
                        pvesh::str_of(task, "upid").unwrap_or_default(),
                        crate::msg::visible(&why)
                    ),
                ),
            },
            Some(Err(e)) => problem(
                g,
                format!("node {node}: cannot read a failed task's log: {e}"),
            ),
            None => {}
        }
    }
    for (i, s) in targets.iter().enumerate() {
        let node = s.node.as_deref().unwrap_or("");
        match a.list(&Req::Content(i)) {
            Some(Ok(items)) => g.backups.extend(
                items
                    .iter()
                    .filter_map(|m| pvesh::backup(node, &s.storage, m)),
            ),
            Some(Err(e)) => {
                // Its backups are not in the listing: a guest without any is unknown.
                let m = format!("storage {} on {node}: {e}", s.storage);
                problem(g, m.clone());
                g.blind.push(m);
            }
            None => {}
        }
    }
    Ok(())
}
