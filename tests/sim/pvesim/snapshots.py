"""Guest snapshots: `qm|pct snapshot`, `delsnapshot`, `listsnapshot` and the API list
`/nodes/N/{qemu,lxc}/V/snapshot`, as Proxmox does them.

Sources (see docs/simulator.md): pve-guest-common src/PVE/AbstractConfig.pm
(`__snapshot_prepare`, `__snapshot_commit`, `snapshot_delete`, `__snapshot_copy_config`,
`check_lock`), src/PVE/GuestHelpers.pm `print_snapshot_tree`; qemu-server
src/PVE/API2/Qemu.pm (`snapshot_list`, `snapshot`, `delsnapshot`,
`assert_tpm_snapshot_delete_possible`), src/PVE/QemuConfig.pm (`has_feature`,
`__snapshot_save_vmstate`); pve-container src/PVE/API2/LXC/Snapshot.pm and
src/PVE/LXC/Config.pm `has_feature`; pve-storage `volume_has_feature` of Plugin.pm,
LVMPlugin.pm, LvmThinPlugin.pm, ZFSPoolPlugin.pm, RBDPlugin.pm.

A snapshot is kept in the guest's "snapshots" map, name -> the config section Proxmox
writes: the guest's config at that time plus `snaptime`, `description`, `vmstate`, and the
`parent` the config had (copy_config copies it); the guest's own `parent` is in its config.
"""

import hashlib
import json
import re
import sys
import time

from .state import SimError, options as parse_args

COMMANDS = ("snapshot", "delsnapshot", "listsnapshot")

# pve-common JSONSchema.pm: pve-snapshot-name is a pve-configid ($CONFIGID_RE), maxLength 40.
CONFIGID_RE = re.compile(r"^[a-z][a-z0-9_-]+$", re.I)
# AbstractConfig.pm __snapshot_copy_config: keys a snapshot section does not copy.
NOT_COPIED = ("snapshots", "snapstate", "snaptime", "vmstate", "lock", "digest", "description")
QEMU_DRIVE_RE = re.compile(r"^(ide\d+|sata\d+|scsi\d+|virtio\d+|efidisk0|tpmstate0)$")
LXC_VOLUME_RE = re.compile(r"^(rootfs|mp\d+)$")
# Plugins whose volume_has_feature gives `snapshot` for every current volume.
ALWAYS = ("lvmthin", "zfspool", "zfs", "rbd", "btrfs")
# Plugins that inherit Plugin.pm's table: qcow2 only (LVMPlugin.pm has the same table).
QCOW2_ONLY = ("dir", "nfs", "cifs", "glusterfs", "cephfs", "lvm")


def kind_word(gtype):
    return "VM" if gtype == "qemu" else "CT"


def param_error(name, msg, usage):
    return SimError("400 Parameter verification failed.\n%s: %s\n%s" % (name, msg, usage))


def volume_file(value):
    """The volume of a drive or mount point option (`local-lvm:vm-100-disk-0,size=8G`)."""
    for part in value.split(","):
        if part.startswith("file=") or part.startswith("volume="):
            return part.split("=", 1)[1]
        if "=" not in part:
            return part
    return ""


def guest_volumes(g):
    """(key, volid) of each volume has_feature looks at: no CD-ROMs (QemuConfig.pm)."""
    conf = g.get("config") or {}
    rx = QEMU_DRIVE_RE if g["type"] == "qemu" else LXC_VOLUME_RE
    out = []
    for k in sorted(conf):
        if not rx.match(k):
            continue
        v = str(conf[k])
        if "media=cdrom" in v or volume_file(v) in ("none", "cdrom"):
            continue
        out.append((k, volume_file(v)))
    return out


def volume_has_snapshot(state, volid):
    """pve-storage Storage.pm volume_has_feature('snapshot', …) for a current volume."""
    if ":" not in volid:
        return False  # a path (bind mount, passed-through disk): undef
    sid, volname = volid.split(":", 1)
    s = state.storage(sid)
    if s is None:
        raise SimError("storage '%s' does not exist" % sid)
    if s["type"] in ALWAYS:
        return True
    if s["type"] in QCOW2_ONLY:
        return volname.endswith(".qcow2")
    return False


def has_snapshot_feature(state, g):
    return all(volume_has_snapshot(state, v) for _, v in guest_volumes(g))


def digest(conf):
    return hashlib.sha1(json.dumps(conf, sort_keys=True).encode()).hexdigest()


def check_name(gtype, snapname, usage):
    if not CONFIGID_RE.match(snapname) or len(snapname) > 40:
        if len(snapname) > 40:
            raise param_error("snapname", "value may only be 40 characters long", usage)
        raise param_error("snapname", "invalid format - invalid configuration ID '%s'" % snapname, usage)
    if snapname == "current":
        raise SimError("unable to use snapshot name 'current' (reserved name)")
    if gtype == "qemu" and snapname.lower() == "pending":
        raise SimError("unable to use snapshot name 'pending' (reserved name)")
    if gtype == "lxc" and snapname == "vzdump":
        raise SimError("unable to use snapshot name 'vzdump' (reserved name)")


def create(state, g, snapname, kv):
    """AbstractConfig.pm snapshot_create: prepare (checks, lock, section), volumes, commit."""
    if str(g.get("template", 0)) in ("1", "true") or str((g.get("config") or {}).get("template", "0")) == "1":
        raise SimError("you can't take a snapshot if it's a template")
    if g.get("lock"):
        raise SimError("%s is locked (%s)" % (kind_word(g["type"]), g["lock"]))
    snaps = g.setdefault("snapshots", {})
    if snapname in snaps:
        raise SimError("snapshot name '%s' already used" % snapname)
    if not has_snapshot_feature(state, g):
        raise SimError("snapshot feature is not available")
    conf = g.setdefault("config", {})
    for other in snaps.values():
        if other.get("parent") == snapname:
            other.pop("parent", None)
    snap = {k: v for k, v in conf.items() if k not in NOT_COPIED and not re.match(r"^unused\d+$", k)}
    # QemuConfig.pm: the RAM is saved only when asked and the VM runs (vm-N-state-NAME on
    # the first disk's storage, as find_vmstate_storage picks when no vmstatestorage is set).
    if g["type"] == "qemu" and kv.get("vmstate") in ("1", "true") and g.get("status") == "running":
        vols = guest_volumes(g)
        sid = conf.get("vmstatestorage") or (vols[0][1].split(":", 1)[0] if vols else "local")
        snap["vmstate"] = "%s:vm-%s-state-%s" % (sid, g["vmid"], snapname)
    snap["snaptime"] = int(time.time())
    if kv.get("description"):
        snap["description"] = kv["description"]
    snaps[snapname] = snap
    conf["parent"] = snapname
    state.save_guest(g)


def tpm_blocks_delete(state, g, snapname):
    """qemu-server API2/Qemu.pm assert_tpm_snapshot_delete_possible: the top-most snapshot
    of a running VM whose TPM state is a qcow2 on a storage with snapshot-as-volume-chain."""
    conf = g.get("config") or {}
    if g["type"] != "qemu" or not conf.get("tpmstate0") or g.get("status") != "running":
        return None
    if conf.get("parent") != snapname:
        return None
    snap = (g.get("snapshots") or {}).get(snapname) or {}
    volid = volume_file(str(conf["tpmstate0"]))
    if not snap.get("tpmstate0") or volume_file(str(snap["tpmstate0"])) != volid:
        return None
    s = state.storage(volid.split(":", 1)[0]) if ":" in volid else None
    if s and volid.endswith(".qcow2") and s.get("snapshot-as-volume-chain"):
        return ("top-most snapshot of TPM state '%s' on storage with 'snapshot-as-volume-chain'"
                " cannot be removed while the VM is running." % volid)
    return None


def delete(state, g, snapname, kv):
    """AbstractConfig.pm snapshot_delete: set the snapshot-delete lock (check_lock first),
    remove the volume snapshots, relink parents, drop the section."""
    snaps = g.get("snapshots") or {}
    if snapname not in snaps:
        raise SimError("snapshot '%s' does not exist" % snapname)
    msg = tpm_blocks_delete(state, g, snapname)
    if msg:
        raise SimError(msg)
    if g.get("lock"):
        raise SimError("%s is locked (%s)" % (kind_word(g["type"]), g["lock"]))
    if str(g.get("template", 0)) in ("1", "true"):
        raise SimError("you can't delete a snapshot if vm is a template")
    gone = snaps.pop(snapname)
    new_parent = gone.get("parent")
    conf = g.setdefault("config", {})
    for holder in [conf] + list(snaps.values()):
        if holder.get("parent") == snapname:
            if new_parent:
                holder["parent"] = new_parent
            else:
                holder.pop("parent", None)
    state.save_guest(g)


def api_list(state, g):
    """Qemu.pm snapshot_list / LXC/Snapshot.pm list: one entry per snapshot (hash order in
    Proxmox; sorted by name here), then the `current` pseudo-entry."""
    out = []
    for name in sorted(g.get("snapshots") or {}):
        d = g["snapshots"][name]
        # `$d->{snaptime} || 0`: whatever the config holds (0, text, a clock's future), as is.
        item = {"name": name, "snaptime": d.get("snaptime") or 0,
                "description": d.get("description") or ""}
        if g["type"] == "qemu":
            item["vmstate"] = 1 if d.get("vmstate") else 0
        if d.get("parent"):
            item["parent"] = d["parent"]
        if d.get("snapstate"):
            item["snapstate"] = d["snapstate"]
        out.append(item)
    conf = g.get("config") or {}
    current = {"name": "current", "digest": digest(conf), "running": 1 if g.get("status") == "running" else 0,
               "description": "You are here!"}
    if conf.get("parent"):
        current["parent"] = conf["parent"]
    out.append(current)
    return out


def print_tree(entries):
    """pve-guest-common GuestHelpers.pm print_snapshot_tree."""
    by_name = {e["name"]: dict(e, children=[]) for e in entries}
    roots = []
    for e in entries:
        p = e.get("parent")
        if p and p in by_name:
            by_name[p]["children"].append(e["name"])
        else:
            roots.append(e["name"])

    def key(n):
        t = by_name[n].get("snaptime")
        return (1, 0) if t is None or n == "current" else (0, t)

    def walk(prefix, name):
        e = by_name[name]
        desc = (e.get("description") or "no-description").split("\n")[-1] or "no-description"
        ts = "" if name == "current" else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.get("snaptime") or 0))
        width = max(30 - len(prefix), 0)
        sys.stdout.write("%s %-*s %-23s %s\n" % (prefix, width, name, ts, desc))
        for c in sorted(e["children"], key=key):
            walk(" " + prefix, c)

    for r in sorted(roots, key=key):
        walk("`->", r)


def run(state, gtype, cmd, rest, need_guest):
    """`qm|pct snapshot VMID NAME [--vmstate 1] [--description T]`, `delsnapshot VMID NAME
    [--force 1]`, `listsnapshot VMID`."""
    tool = "qm" if gtype == "qemu" else "pct"
    pos, kv = parse_args(rest)
    usage = {"snapshot": "%s snapshot <vmid> <snapname> [OPTIONS]" % tool,
             "delsnapshot": "%s delsnapshot <vmid> <snapname> [OPTIONS]" % tool,
             "listsnapshot": "%s listsnapshot <vmid>" % tool}[cmd]
    need = 1 if cmd == "listsnapshot" else 2
    if len(pos) < need:
        raise SimError("400 not enough arguments\n" + usage)
    if len(pos) > need:
        raise SimError("400 too many arguments\n" + usage)
    allowed = {"snapshot": ("description", "vmstate") if gtype == "qemu" else ("description",),
               "delsnapshot": ("force",), "listsnapshot": ()}[cmd]
    for k in kv:
        if k not in allowed:
            raise param_error(k, "property is not defined in schema and the schema does not allow additional properties", usage)
    if cmd == "listsnapshot":
        print_tree(api_list(state, need_guest(state, pos[0], gtype)))
        return 0
    check_name(gtype, pos[1], usage)
    g = need_guest(state, pos[0], gtype)
    if cmd == "snapshot":
        create(state, g, pos[1], kv)
    else:
        delete(state, g, pos[1], kv)
    return 0


def pvesh_list(state, node, gtype, vmid):
    """GET /nodes/N/{qemu,lxc}/V/snapshot: proxied to N, where the config must be."""
    g = state.guest(vmid)
    if g is None or g["type"] != gtype or g.get("node") != node:
        sub = "qemu-server" if gtype == "qemu" else "lxc"
        raise SimError("Configuration file 'nodes/%s/%s/%s.conf' does not exist" % (node, sub, vmid))
    return api_list(state, g)


# pve-storage ZFSPoolPlugin.pm volume_rollback_is_possible (ZFSPlugin.pm inherits it): only
# the most recent snapshot of a dataset can be rolled back to.
MOST_RECENT_ONLY = ("zfspool", "zfs")


def check_rollback_possible(state, g, snapname):
    """AbstractConfig.pm snapshot_rollback → `__snapshot_rollback_vol_possible` for each
    volume of the snapshot: on ZFS a newer snapshot (by creation, here `snaptime`) dies with
    "can't rollback, 'X' is not most recent snapshot on 'VOLID'", before anything changes."""
    snaps = g.get("snapshots") or {}
    mine = snaps[snapname].get("snaptime") or 0
    newer = [n for n, s in snaps.items() if n != snapname and (s.get("snaptime") or 0) > mine]
    for _, volid in guest_volumes({"type": g["type"], "config": snaps[snapname]}):
        s = state.storage(volid.split(":", 1)[0]) if ":" in volid else None
        if s and s["type"] in MOST_RECENT_ONLY and newer:
            raise SimError("can't rollback, '%s' is not most recent snapshot on '%s'" % (snapname, volid))


def applied(conf, snap, snapname):
    """AbstractConfig.pm __snapshot_apply_config, then `parent` = the snapshot (rollback)."""
    new = {k: v for k, v in conf.items() if k == "description" or re.match(r"^unused\d+$", k)}
    new.update({k: v for k, v in snap.items() if k not in NOT_COPIED and not re.match(r"^unused\d+$", k)})
    new["parent"] = snapname
    return new
