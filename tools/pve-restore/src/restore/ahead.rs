//! Reads ahead, before the first guest's plan, what the plans of a run's guests will ask:
//! the cluster's guests, each target node's facts in one batch, and the configs inside the
//! archives restored to a new VMID in parallel batches (`Ctx::cache`). Nothing is decided
//! here: a read that fails is left to the guest that needs it, which reads it again and
//! gets the node's own error, as without the read ahead.
//!
//! A plan over many records (the site plan) uses the same: [`prefetch`], then
//! `ctx.cache.facts(node)` (a node's storages, bridges, mappings, QEMU capabilities) and
//! `ctx.cache.archive_config(t, node, volid, lxc)` (kept, else read now).

use std::collections::BTreeMap;

use super::*;

/// Reads ahead for `backups` (see the module); `default_node` as `restore_one` takes it.
pub fn prefetch(ctx: &Ctx, backups: &[Backup], default_node: &str) {
    let Ok(present) = ctx.cache.guests(ctx.t) else {
        return;
    };
    let new: Vec<&Backup> = backups
        .iter()
        .filter(|b| to_new_vmid(ctx, b, &present))
        .collect();
    let mut nodes: Vec<String> = new.iter().map(|b| node_of(ctx, b, default_node)).collect();
    nodes.sort_unstable();
    nodes.dedup();
    for n in nodes.iter().filter(|n| validate::node(n).is_ok()) {
        // Through the node's own connection, as its plans read them (the node pvesh runs
        // on answers the CPU models: qemu-server `API2/Qemu/CPU.pm` `index` has no
        // `proxyto`). A batch that fails is no verdict: each plan reads what it needs.
        if let Ok(hop) = ctx.cluster.route(ctx.t, n) {
            let t: &dyn Transport = hop.as_deref().unwrap_or(ctx.t);
            let _ = ctx.cache.facts(n).prefetch(&pvedr::pve::Client::new(t));
        }
    }
    read_configs(ctx, &new, default_node);
}

/// Reads the archives' configs on each backup's node, batch by batch; failures are left.
fn read_configs(ctx: &Ctx, backups: &[&Backup], default_node: &str) {
    let mut by_node: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for b in backups.iter().filter(|b| readable(b)) {
        let node = node_of(ctx, b, default_node);
        by_node.entry(node).or_default().push(&b.volid);
    }
    for (node, volids) in by_node {
        let Ok(hop) = ctx.cluster.route(ctx.t, &node) else {
            continue;
        };
        let t: &dyn Transport = hop.as_deref().unwrap_or(ctx.t);
        let _ = ctx.cache.read_configs(t, &node, &volids);
    }
}

/// An archive on a node whose name and kind can be asked about (what `restore_one`
/// validates before it reads the config).
fn readable(b: &Backup) -> bool {
    crate::offsite::of(b).is_none()
        && matches!(b.subtype.as_str(), "qemu" | "lxc")
        && validate::volid(&b.volid).is_ok()
}

/// The node `restore_one` plans `b` on first (`--node`, else the record's, else this
/// node; an offsite copy goes to `--node` or this node).
fn node_of(ctx: &Ctx, b: &Backup, default_node: &str) -> String {
    let own = b.node.clone().filter(|_| crate::offsite::of(b).is_none());
    ctx.o
        .node
        .clone()
        .or(own)
        .unwrap_or_else(|| default_node.to_string())
}

/// Whether `b` goes to a VMID no guest has (a drill's scratch VMID always does): only then
/// do the plans read the archive's config and the node's facts.
fn to_new_vmid(ctx: &Ctx, b: &Backup, present: &HashMap<u64, Resource>) -> bool {
    match (ctx.cli.test, ctx.o.target.or(b.vmid)) {
        (true, _) => true,
        (false, Some(v)) => !present.contains_key(&v),
        (false, None) => false,
    }
}
