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
    return {"type": btype, "format": ext, "vmid": vmid, "time": parts,
            "stem": std.group(1) if std else None}


def local_epoch(parts):
    """The node's local time (TZ) to epoch, like Perl's timelocal (mktime, isdst unknown)."""
    time.tzset()
    y, mo, d, h, mi, s = parts
    return int(time.mktime((y, mo, d, h, mi, s, 0, 0, -1)))


def listing_vmid(name, fmt):
    m = re.search(r"-([1-9][0-9]{2,8})-[^/]+\." + re.escape(fmt) + r"$", name)
    return int(m.group(1)) if m else None


def std_stem(path):
    m = re.match(r"(.*/vzdump-\w+-\d+-\d{4}_\d{2}_\d{2}-\d{2}_\d{2}_\d{2})[^/]+$", path)
    return m.group(1) if m else None


def dump_dir(storage_cfg):
    return os.path.join(storage_cfg["path"], "dump")
