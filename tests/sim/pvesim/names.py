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


def dump_dir(storage_cfg):
    return os.path.join(storage_cfg["path"], "dump")
