"""Backup names as pve-storage reads them (PVE::Storage::archive_info, listing regexes)."""

import os
import re
import time

COMPRESSOR_RE = r"gz|lzo|zst|bz2"
BACKUP_EXT_RE_2 = r"\.(tgz|(?:tar|vma)(?:\.(" + COMPRESSOR_RE + r"))?)"
LISTED_RE = re.compile(r"^([^/]+" + BACKUP_EXT_RE_2 + r")$")
INFO_RE = re.compile(r"^(vzdump-(lxc|openvz|qemu)-.+" + BACKUP_EXT_RE_2 + r")$")


def archive_info(name):
    """(type, format, vmid, ctime_parts or None) or None when not a vzdump archive."""
    m = INFO_RE.match(name)
    if not m:
        return None
    btype, ext = m.group(2), m.group(3)
    std = re.match(
        r"^(vzdump-" + btype + r"-([1-9][0-9]{2,8})-(\d{4})_(\d{2})_(\d{2})-(\d{2})_(\d{2})_(\d{2}))\."
        + re.escape(ext) + r"$",
        name,
    )
    parts = None
    vmid = None
    if std:
        vmid = int(std.group(2))
        parts = tuple(int(std.group(i)) for i in range(3, 9))
        if not timelocal_accepts(parts):
            # archive_info dies in timelocal: the listing's `eval {…} // {}` keeps nothing.
            return None
    return {"type": btype, "format": ext, "vmid": vmid, "time": parts,
            "stem": std.group(1) if std else None}


def timelocal_accepts(parts):
    """Time::Local's range check (croaks otherwise): month 1..12, day within the month
    (29 Feb only in leap years), hour 0..23, minute and second 0..59 (no leap second)."""
    y, mo, d, h, mi, s = parts
    if not 1 <= mo <= 12 or h > 23 or mi > 59 or s > 59:
        return False
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1]
    return 1 <= d <= days


def local_epoch(parts):
    """The node's local time (TZ) to epoch, like Perl's Time::Local timelocal: a time the
    autumn fall-back repeats is "the earlier of the two possible GMT times" (its docs);
    mktime with isdst unknown would pick either. A time the spring gap skips is normalised
    forward, as mktime does."""
    time.tzset()
    y, mo, d, h, mi, s = parts
    both = []
    for dst in (0, 1):
        e = int(time.mktime((y, mo, d, h, mi, s, 0, 0, dst)))
        if tuple(time.localtime(e))[:6] == (y, mo, d, h, mi, s):
            both.append(e)
    return min(both) if both else int(time.mktime((y, mo, d, h, mi, s, 0, 0, -1)))


def listing_vmid(name, fmt):
    m = re.search(r"-([1-9][0-9]{2,8})-[^/]+\." + re.escape(fmt) + r"$", name)
    return int(m.group(1)) if m else None


def std_stem(path):
    m = re.match(r"(.*/vzdump-\w+-\d+-\d{4}_\d{2}_\d{2}-\d{2}_\d{2}_\d{2})[^/]+$", path)
    return m.group(1) if m else None


def dump_dir(storage_cfg, state=None, node=None):
    """A dir storage's `dump/`: as Proxmox names it (no state: pve-storage `Plugin.pm`
    `get_subdir`, the same path on every node), or where `node`'s files really are."""
    if state is None:
        return os.path.join(storage_cfg["path"], "dump")
    return os.path.join(node_root(state, storage_cfg, node), "dump")


def node_root(state, storage_cfg, node):
    """Where a storage's files are on `node`. A dir storage that is not `shared` is each
    node's own disk (pve-storage `Storage.pm` `storage_check_node`/`shared`: the same path,
    other contents on each node, as `local` at /var/lib/vz): the simulator keeps its home
    node's (the first of `nodes`, else of the cluster) at `path`, another node of `nodes`
    has its own under `<root>/nodefs/<node>/<storage>`. Shared storages are one directory."""
    path = storage_cfg["path"]
    if storage_cfg.get("type") != "dir" or int(storage_cfg.get("shared", 0)) or not node:
        return path
    homes = storage_cfg.get("nodes") or [n["node"] for n in state.nodes]
    # A node the storage is not on keeps the old answer (the commands refuse it elsewhere).
    if not homes or node == homes[0] or node not in homes:
        return path
    return state.path("nodefs", node, storage_cfg["storage"])


def node_path(state, arg, node):
    """`arg` as `node` sees it: a path under a node-local storage's `path` moved to that
    node's own directory (what a file command on the node reads or writes)."""
    for s in state.storages():
        p = s.get("path")
        if not p or not (arg == p or arg.startswith(p.rstrip("/") + "/")):
            continue
        root = node_root(state, s, node)
        if root != p:
            return root + arg[len(p):]
    return arg
