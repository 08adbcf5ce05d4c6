"""Guest volumes with data: `volumes/<storage>/<volname>` is a file standing for the
volume, its content for the data on it. What a restore over a guest does to them follows
pve-container and qemu-server (docs/simulator.md, *Volumes*)."""

import os
import re

from .state import SimError

QEMU_DRIVE_RE = re.compile(r"(ide|scsi|virtio|sata|efidisk|tpmstate)\d+")
CT_VOLUME_KEY_RE = re.compile(r"rootfs|mp\d+|unused\d+")


def path(state, volid):
    sid, volname = volid.split(":", 1)
    if ".." in volname.split("/") or not sid or not volname:
        raise SimError("unable to parse volume ID '%s'" % volid)
    return state.path("volumes", sid, volname)


def owner(volid):
    """The VMID a volume name belongs to (pve-storage `parse_volname`: `vm-N-…`,
    `base-N-…`, `subvol-N-…`, or `N/…` on a dir storage)."""
    m = re.search(r"(?:^|[:/])(?:vm|base|subvol)-(\d+)-", volid)
    return int(m.group(1)) if m else None


def options(value):
    """`VOLUME,k=v,…` → (volume, {k: v})."""
    parts = value.split(",")
    kv = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
    first = parts[0]
    if "=" in first:
        # `volume=X,…` spelled out
        k, v = first.split("=", 1)
        kv[k] = v
        first = kv.get("volume", kv.get("file", ""))
    return first, kv


def is_volume(vol):
    """A storage volume, not a bind mount (`/path`) or a device (pve-container
    `classify_mountpoint`) and not `none`/a CD-ROM image path."""
    return ":" in vol and not vol.startswith("/")


def truthy(v):
    return str(v).lower() in ("1", "on", "yes", "true")


def read(state, volid):
    try:
        with open(path(state, volid), encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None


def write(state, volid, data):
    p = path(state, volid)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "w", encoding="utf-8") as f:
        f.write(data)


def free(state, volid):
    """pve-storage `vdisk_free`."""
    for p in (path(state, volid), size_path(state, volid)):
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


def size_path(state, volid):
    """Where the size of a volume a restore or a move allocated is kept (`volsizes/`, apart
    from `volumes/`, which `on_storage` walks)."""
    sid, volname = volid.split(":", 1)
    return state.path("volsizes", sid, volname)


def set_size(state, volid, n):
    """Counts `n` bytes of `volid` against its storage's room (see `taken`)."""
    p = size_path(state, volid)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "w", encoding="utf-8") as f:
        f.write(str(int(n)))


def size_of(state, volid):
    try:
        with open(size_path(state, volid), encoding="utf-8") as f:
            return int(f.read() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def taken(state, sid):
    """Bytes of the volumes allocated on `sid` since its `status` was written: a storage
    with a written status has that much less room for a restore's writes."""
    root = state.path("volsizes", sid)
    n = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            volid = "%s:%s" % (sid, os.path.relpath(os.path.join(dirpath, f), root))
            # Only a volume still there: one removed another way took its room with it.
            if os.path.exists(path(state, volid)):
                n += size_of(state, volid)
    return n


def size_bytes(s):
    """pve-common `JSONSchema.pm` `parse_size`: a number with K, M, G or T."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?)", str(s))
    if not m:
        return 0
    return int(float(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[m.group(2)])


def alloc(state, sid, vmid, taken):
    """A new volume name as the plugins' `find_free_diskname` picks it: the first
    `vm-<vmid>-disk-N` neither on the storage nor in `taken`."""
    n = 0
    while True:
        volid = "%s:vm-%s-disk-%d" % (sid, vmid, n)
        if volid not in taken and not os.path.exists(path(state, volid)):
            return volid
        n += 1


def on_storage(state, vmid):
    """Every volume file owned by `vmid` (what `vdisk_list` finds for a rescan)."""
    root = state.path("volumes")
    out = []
    if not os.path.isdir(root):
        return out
    for sid in sorted(os.listdir(root)):
        for dirpath, _, files in os.walk(os.path.join(root, sid)):
            for f in sorted(files):
                rel = os.path.relpath(os.path.join(dirpath, f), os.path.join(root, sid))
                volid = "%s:%s" % (sid, rel)
                if owner(volid) == int(vmid):
                    out.append(volid)
    return out


def ct_volumes(conf, with_unused=True):
    """(key, volid, options) of a container config's volumes: `rootfs`, `mpN`, and
    `unusedN` (pve-container `foreach_volume_full` with `include_unused`)."""
    out = []
    for k in sorted(conf):
        if not CT_VOLUME_KEY_RE.fullmatch(k) or (k.startswith("unused") and not with_unused):
            continue
        vol, kv = options(str(conf[k]))
        if is_volume(vol):
            out.append((k, vol, kv))
    return out


def ct_backed_up(key, kv):
    """pve-container `src/PVE/LXC/Config.pm` `mountpoint_backup_enabled`: rootfs always, a
    volume mount point only with `backup=1`."""
    return key == "rootfs" or truthy(kv.get("backup", "0"))


def ct_restore(state, vmid, old, conf, sid, label):
    """pve-container `src/PVE/API2/LXC.pm` `create_vm` (restore, storage-only mode): every
    volume mount point of the backup's config becomes a new volume on `sid`, filled from
    the archive only if it was backed up (else empty); then `src/PVE/LXC.pm`
    `destroy_lxc_container` frees every volume of the old config, `unusedN` included.
    Bind and device mount points are no volumes and stay as they are."""
    taken = {v for _, v, _ in ct_volumes(old or {})}
    for k, vol, kv in ct_volumes(conf, with_unused=False):
        new = alloc(state, sid, vmid, taken)
        taken.add(new)
        data = "restored %s (%s)\n" % (label, k) if ct_backed_up(k, kv) else ""
        write(state, new, data)
        set_size(state, new, size_bytes(kv.get("size", "0")))
        conf[k] = ",".join([new] + str(conf[k]).split(",")[1:])
    for k in [k for k in conf if k.startswith("unused")]:
        del conf[k]
    if old:
        for _, vol, _ in ct_volumes(old):
            if owner(vol) == int(vmid):
                free(state, vol)


def qemu_drives(conf):
    """(key, volid, options) of a VM config's disks, CD-ROMs left out."""
    out = []
    for k in sorted(conf):
        if not QEMU_DRIVE_RE.fullmatch(k):
            continue
        vol, kv = options(str(conf[k]))
        if kv.get("media") == "cdrom" or not is_volume(vol):
            continue
        out.append((k, vol, kv))
    return out


def qemu_restore(state, vmid, old, conf, storage, label):
    """qemu-server `src/PVE/QemuServer.pm` `restore_vma_archive`: a disk with `backup=0` in
    the backup's config is not in the archive and its line is commented out
    (`restore_update_config_line`); `$restore_cleanup_oldconf` frees only the old disks
    the archive brings back (same key) and keeps the others ("other volumes will become
    unused"); the new disks are allocated; `rescan` then adds every volume of the VM that
    no key references as `unusedN`."""
    restored = {}
    for k, vol, kv in qemu_drives(conf):
        if "backup" in kv and not truthy(kv["backup"]):
            del conf[k]
        else:
            restored[k] = vol
    for k in [k for k in conf if re.fullmatch(r"unused\d+", k) or k == "parent"]:
        del conf[k]
    if old:
        for k, vol, _ in qemu_drives(old):
            if k in restored and owner(vol) == int(vmid):
                free(state, vol)
    taken = set()
    for k, vol in restored.items():
        new = alloc(state, storage or vol.split(":", 1)[0], vmid, taken)
        taken.add(new)
        write(state, new, "restored %s (%s)\n" % (label, k))
        set_size(state, new, size_bytes(options(str(conf[k]))[1].get("size", "0")))
        conf[k] = ",".join([new] + str(conf[k]).split(",")[1:])
    rescan(state, vmid, conf)


def rescan(state, vmid, conf):
    """qemu-server `rescan`: unreferenced volumes of the VM as `unusedN`."""
    used = {vol for _, vol, _ in qemu_drives(conf)}
    used |= {str(v) for k, v in conf.items() if re.fullmatch(r"unused\d+", k)}
    n = 0
    for vol in on_storage(state, vmid):
        if vol in used:
            continue
        while "unused%d" % n in conf:
            n += 1
        conf["unused%d" % n] = vol
