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

/// How a restore ends before its plan: refused or failed (both in the record), or a usage
/// error that stops the whole run.
pub(super) enum Early {
    Refused(String),
    Failed(pvedr::Error),
    Stop(pvedr::Error),
}

impl Early {
    /// A usage error stops the run; any other failure is the record's.
    fn stop_on_usage(e: pvedr::Error) -> Self {
        match e {
            e @ pvedr::Error::Usage(_) => Early::Stop(e),
            e => Early::Failed(e),
        }
    }

    /// The record (nothing planned, nothing changed), or the error that stops the run.
    pub(super) fn end(self, rec: Restore, started: Instant) -> Result<Restore> {
        let plan = Plan::default();
        match self {
            Early::Refused(msg) => Ok(refused(rec, plan, msg, started)),
            Early::Failed(e) => Ok(failed_early(rec, plan, e, started)),
            Early::Stop(e) => Err(e),
        }
    }
}

/// What [`choose`] settled: the target VMID, the guest there, whether the archive streams.
pub(super) struct Chosen {
    pub(super) target: u64,
    pub(super) existing: Option<Resource>,
    pub(super) streamed: Option<stream::Streamed>,
    pub(super) lxc: bool,
}

/// The record checked, the target chosen (with the refusals for it), the stream prepared
/// and, for a new guest on no named node, the node: `rec` gets the target and the node.
pub(super) fn choose(
    ctx: &Ctx,
    b: &Backup,
    offsite: Option<std::result::Result<crate::offsite::Offsite, String>>,
    node: &str,
    rec: &mut Restore,
) -> std::result::Result<Chosen, Early> {
    check_record(b, node).map_err(Early::Refused)?;
    let present = ctx.cache.guests(ctx.t).map_err(Early::Failed)?;
    let target = select_target(ctx, b, &present).map_err(Early::Refused)?;
    rec.target_vmid = Some(target);
    let existing = present.get(&target).cloned();
    if let Some(e) = &existing {
        rec.node = Some(node_of(e).into());
        check_overwrite(ctx, b, target, e).map_err(Early::Refused)?;
    }
    let lxc = b.subtype == "lxc";
    let streamed =
        stream::prepare(ctx, offsite, lxc, existing.is_some()).map_err(Early::Refused)?;
    if existing.is_none() && ctx.o.node.is_none() && b.node.is_none() && streamed.is_none() {
        match choose_node(ctx, b, node) {
            Ok(Ok(n)) => rec.node = Some(n),
            Ok(Err(msg)) => return Err(Early::Refused(msg)),
            Err(e) => return Err(Early::stop_on_usage(e)),
        }
    }
    Ok(Chosen {
        target,
        existing,
        streamed,
        lxc,
    })
}

/// The record's values checked like flags, and a subtype Proxmox can restore.
fn check_record(b: &Backup, node: &str) -> std::result::Result<(), String> {
    // A record's VMID is checked like a flag's (`"vmid": 5` must never reach qmrestore).
    let vmid_ok = b.vmid.map_or(Ok(0), |v| validate::vmid(&v.to_string()));
    vmid_ok
        .and_then(|_| validate::node(node))
        .and_then(|_| validate::volid(&b.volid))
        .and_then(|_| validate::storage_id(b.storage.as_deref().unwrap_or_default()))
        .map_err(|e| e.to_string())?;
    if b.subtype != "qemu" && b.subtype != "lxc" {
        // `unknown`: Proxmox could not type or date the name; qmrestore or pct is a guess.
        return Err(format!(
            "cannot restore a backup of subtype {}: Proxmox cannot tell a VM from a container by this name; rename it to vzdump-qemu-… or vzdump-lxc-… (with a valid date) first",
            b.subtype
        ));
    }
    Ok(())
}

/// Where the volumes go (`target_storage`) and the maps placed on node `on`: the mapped
/// storages, else `--storage`, else for a container where its root file system is or was.
pub(super) fn placement(
    ctx: &Ctx,
    t: &dyn Transport,
    b: &Backup,
    on: &str,
    c: &Chosen,
) -> std::result::Result<(Option<String>, Option<Remap>), Early> {
    let overwrite = c.existing.is_some();
    let head = c.streamed.as_ref().and_then(|s| s.config.as_ref());
    let remap = remap_of(ctx, t, b, on, c.lxc, overwrite, head).map_err(Early::stop_on_usage)?;
    let (target_storage, remap) = match remap {
        Some((r, storages)) => (mapped_storage(&r, &storages).map_err(Early::Stop)?, Some(r)),
        None => (None, None),
    };
    let target_storage = match (&ctx.o.storage, c.lxc) {
        _ if remap.is_some() => target_storage,
        (Some(s), _) => Some(s.clone()),
        (None, false) => None,
        (None, true) => match (&c.streamed, overwrite) {
            (Some(s), false) => s.rootfs_storage.clone(),
            _ => Some(
                ct_storage(ctx, t, b, guest::at(on, true, c.target), overwrite)
                    .map_err(Early::Refused)?,
            ),
        },
    };
    if remap.is_none() && !overwrite && c.streamed.is_none() {
        check_unmapped(ctx, t, b, on, c.lxc, target_storage.as_deref())
            .map_err(Early::stop_on_usage)?;
    }
    Ok((target_storage, remap))
}

/// Without maps, a new guest's disks and NICs checked against node `on` before any change.
fn check_unmapped(
    ctx: &Ctx,
    t: &dyn Transport,
    b: &Backup,
    on: &str,
    lxc: bool,
    default: Option<&str>,
) -> Result<()> {
    ctx.cache
        .archive_config(t, on, &b.volid, lxc)
        .and_then(|config| {
            let (c, facts) = (pvedr::pve::Client::new(t), ctx.cache.facts(on));
            crate::remap::check_unmapped(&c, &facts, &b.volid, config, lxc, default)
        })
}
