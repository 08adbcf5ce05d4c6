//! Choosing the target: node, VMID, storage, and the refusals before any plan.

use super::*;

/// The node for a backup that names none (`--volid`) restored to a new VMID: qmrestore
/// and pct restore refuse an archive whose storage is not enabled on their node (pve-storage
/// `Storage.pm` `activate_storage` → `storage_check_enabled`: "storage 'S' is not available
/// on node 'N'"). So a node where the storage is enabled and the archive is: `preferred`
/// when it qualifies, else the only one; several copies on a storage that is not shared may
/// differ, the choice is the user's (`Err`: a usage error naming them).
pub(super) fn choose_node(
    ctx: &Ctx,
    b: &Backup,
    preferred: &str,
) -> Result<std::result::Result<String, String>> {
    let mut nodes: Vec<String> = ctx.cluster.ips.keys().cloned().collect();
    nodes.extend(ctx.cluster.local.clone());
    nodes.sort();
    nodes.dedup();
    let storage = b.storage.as_deref().unwrap_or_default();
    let found = guest::archive_nodes(ctx.t, &nodes, storage, &b.volid)?;
    let fits = found.nodes.iter().any(|n| n == preferred);
    if fits && (found.shared || found.nodes.len() == 1) {
        return Ok(Ok(preferred.to_string()));
    }
    match found.nodes.as_slice() {
        [] => Ok(Err(format!(
            "{} is on no online node where storage {storage} is enabled (storage.cfg `nodes`); nothing was changed",
            b.volid
        ))),
        [one] => Ok(Ok(one.clone())),
        [first, ..] if found.shared => Ok(Ok(first.clone())),
        several => Err(pvedr::Error::usage(format!(
            "{} is on nodes {}: storage {storage} is not shared, so each node has its own copy; choose one with --node; nothing was changed",
            b.volid,
            several.join(", ")
        ))),
    }
}

/// Where a container's volumes go without `--storage`: `pct restore` would put them all on
/// `local` (pve-container `API2/LXC.pm`: `storage // 'local'`), which on a default install
/// cannot hold containers. So: the storage of its root file system now (overwrite), else
/// the one the backup's own config names (`pvesm extractconfig`).
pub(super) fn ct_storage(
    ctx: &Ctx,
    t: &dyn Transport,
    b: &Backup,
    at: pvedr::pve::At,
    overwrite: bool,
) -> std::result::Result<String, String> {
    let (config, whose) = if overwrite {
        let c = pvedr::pve::Client::new(t).guest_config(at);
        (c, format!("CT {}'s config", at.vmid))
    } else {
        let c = ctx.cache.archive_config(t, at.node, &b.volid, true);
        (c, format!("the config inside {}", b.volid))
    };
    let config = config
        .map_err(|e| e.to_string())
        .and_then(|c| c)
        .map_err(|e| format!("cannot read {whose} to tell the storage ({e}); give --storage"))?;
    config
        .rootfs_storage()
        .map(str::to_string)
        .ok_or_else(|| format!("{whose} names no rootfs storage; give --storage"))
}

/// The VMID to restore to: a scratch one for a drill, else --target-vmid or the backup's.
pub(super) fn select_target(
    ctx: &Ctx,
    b: &Backup,
    present: &HashMap<u64, Resource>,
) -> std::result::Result<u64, String> {
    if ctx.cli.test {
        let v = match ctx.o.target {
            Some(v) => v,
            None => (9900..999_999_999)
                .find(|v| !present.contains_key(v))
                .unwrap_or(9900),
        };
        return match present.contains_key(&v) {
            true => Err(format!("scratch VMID {v} is in use")),
            false => Ok(v),
        };
    }
    ctx.o
        .target
        .or(b.vmid)
        .ok_or_else(|| "the backup has no VMID; give --target-vmid".to_string())
}

pub(super) fn check_overwrite(
    ctx: &Ctx,
    b: &Backup,
    target: u64,
    e: &Resource,
) -> std::result::Result<(), String> {
    if Some(target) != b.vmid {
        return Err(format!(
            "--target-vmid {target} is taken ({} on {}): a new VMID must be free cluster-wide",
            e.r#type.as_str(),
            node_of(e)
        ));
    }
    if e.r#type.as_str() != b.subtype {
        return Err(format!(
            "guest {target} is a {} but the backup is a {}",
            e.r#type.as_str(),
            b.subtype
        ));
    }
    // A dry run goes on to show the whole plan, then says it needs --force.
    if !ctx.cli.force && !ctx.cli.write.dry_run {
        return Err(needs_force(target, node_of(e)));
    }
    if e.ha_managed() {
        check_ha(ctx, target, e)?;
    }
    Ok(())
}

/// Only a guest HA is asked to keep `started` is refused: `qm stop` would only file a
/// request and HA start it again, vzdump's stop mode refuses it (pve-manager `VZDump.pm`:
/// `vm_is_ha_managed($vmid, 'started')`). Requested `stopped`/`disabled`: not running, no
/// HA stop needed.
pub(super) fn check_ha(ctx: &Ctx, target: u64, e: &Resource) -> std::result::Result<(), String> {
    let sid = format!(
        "{}:{target}",
        if e.r#type == Kind::Lxc { "ct" } else { "vm" }
    );
    let requested = guest::ha_requested(ctx.t, &sid)
        .map_err(|err| format!("cannot read HA's state of {sid}: {err}; nothing was changed"))?;
    if requested.as_deref() != Some("started") {
        return Ok(());
    }
    let set = |state: &str| shell::join(&["ha-manager", "set", &sid, "--state", state]);
    Err(format!(
        "guest {target} is managed by HA with requested state started: a stop would only be requested and HA would start it again; nothing was changed. To restore it, change HA's state first (this changes the cluster's HA configuration and stops the guest): {}; after the restore: {}",
        set("stopped"),
        set("started")
    ))
}

pub(super) fn protected_msg(lxc: bool, target: u64) -> String {
    format!(
        "guest {target} has protection on: Proxmox refuses to restore over a protected guest, so nothing was stopped or changed (if you mean it, first: {})",
        shell::join(&argv(&[
            tool_of(lxc),
            "set",
            &target.to_string(),
            "--protection",
            "0"
        ]))
    )
}

pub(super) fn needs_force(target: u64, node: &str) -> String {
    format!(
        "guest {target} exists on {}: overwriting it needs --force (a safety point is taken first)",
        pvedr::msg::visible(node)
    )
}

/// With maps: the backup's own config placed on `node` and checked there, before any
/// change; a restore over an existing guest keeps its own storages and bridges.
pub(super) fn remap_of(
    ctx: &Ctx,
    t: &dyn Transport,
    b: &Backup,
    node: &str,
    lxc: bool,
    overwrite: bool,
    head: Option<&GuestConfig>,
) -> Result<Option<(Remap, Vec<pvedr::pve::Storage>)>> {
    if !ctx.o.maps.any() {
        return Ok(None);
    }
    if overwrite {
        return Err(pvedr::Error::usage(
            "--target-storage, --target-bridge and --drop-passthrough restore to a new VMID: give a free --target-vmid; nothing was changed",
        ));
    }
    // An offsite copy's config was read from the head of its stream; an archive on a
    // node is asked of the node.
    let config = match head {
        Some(c) => Ok(c.clone()),
        None => ctx.cache.archive_config(t, node, &b.volid, lxc)?,
    };
    let (c, facts) = (pvedr::pve::Client::new(t), ctx.cache.facts(node));
    crate::remap::prepare(&c, &facts, &b.volid, config, lxc, &ctx.o.maps).map(Some)
}

/// Where the restore command puts the volumes under a map: a container's root file
/// system's target (each volume is then named), a VM's one target or the one with room
/// for every disk (the others are moved after).
pub(super) fn mapped_storage(
    r: &Remap,
    storages: &[pvedr::pve::Storage],
) -> Result<Option<String>> {
    if r.lxc {
        return Ok(r
            .disks
            .iter()
            .find(|d| d.key == "rootfs")
            .map(|d| d.to.clone()));
    }
    match r.vm_storage(storages) {
        Some(s) => Ok(Some(s)),
        None if r.disks.is_empty() => Ok(None),
        None => Err(pvedr::Error::usage(
            "no mapped storage has room for all of the VM's disks, which qmrestore puts on one storage before they are moved; map onto fewer storages; nothing was changed",
        )),
    }
}
