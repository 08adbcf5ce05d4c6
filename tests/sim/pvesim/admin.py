"""pvesim-admin: lay out and change a simulated cluster for tests and the demo."""

import argparse
import json
import os
import sys
import time

from . import archives

DAY = 86400


def write_json(root, rel, data):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True)


def read_json(root, rel, default):
    try:
        with open(os.path.join(root, rel), encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return default


def storage_cfg(root, sid):
    for s in read_json(root, "storage.json", []):
        if s["storage"] == sid:
            return s
    raise SystemExit("no storage %r in %s/storage.json" % (sid, root))


def add_backup(root, storage, gtype, vmid, epoch, compress="zstd", name=None, notes=None,
               protected=False, log="ok", size_kib=256, guest_name=None, seed=None, config=None):
    s = storage_cfg(root, storage)
    d = os.path.join(s["path"], "dump")
    os.makedirs(d, exist_ok=True)
    stamp = time.strftime("%Y_%m_%d-%H_%M_%S", time.localtime(epoch))
    stem = "vzdump-%s-%d-%s" % (gtype, vmid, stamp)
    base = "vma" if gtype == "qemu" else "tar"
    fname = name or "%s.%s%s" % (stem, base, archives.EXT[compress])
    path = os.path.join(d, fname)
    gname = guest_name or ("vm%d" % vmid)
    if log == "failed":
        lp = os.path.join(d, stem + ".log")
        archives.write_log(lp, gtype, vmid, gname, epoch, path, "failed")
        return lp
    data = archives.archive_bytes(gtype, vmid, gname, size_kib=size_kib,
                                  seed=seed if seed is not None else epoch, compression=compress, config=config)
    with open(path, "wb") as f:
        f.write(data)
    os.utime(path, (epoch, epoch))
    if notes is not None:
        with open(path + ".notes", "w", encoding="utf-8") as f:
            f.write(notes)
    if protected:
        open(path + ".protected", "w").close()
    if log in ("ok", "warnings") and name is None:
        archives.write_log(os.path.join(d, stem + ".log"), gtype, vmid, gname, epoch, path, log)
    return path


def add_pbs(root, storage, btype, vmid, epoch, size=None, comment=None, protected=False,
            verify=None, encrypted=False, unfinished=False):
    rel = os.path.join("pbs", storage + ".json")
    snaps = read_json(root, rel, [])
    snap = {"backup-type": btype, "backup-id": str(vmid), "backup-time": int(epoch)}
    if unfinished:
        # Being written (or its backup died): no index.json.blob yet.
        snap["manifest"] = False
    if size is not None:
        snap["size"] = size
    if comment:
        snap["comment"] = comment
    if protected:
        snap["protected"] = True
    if verify:
        snap["verification"] = {"state": verify, "upid": "UPID:pbs1:00000A1C:0001F2C3:%08X:verify:store1\\x3a%s-%d-%08X:root@pam:" % (int(epoch) + 3600, btype, vmid, int(epoch))}
    if encrypted:
        snap["fingerprint"] = "a1:b2:c3:d4:e5:f6:07:18:29:3a:4b:5c:6d:7e:8f:90:a1:b2:c3:d4:e5:f6:07:18:29:3a:4b:5c:6d:7e:8f:90"
    snaps.append(snap)
    write_json(root, rel, snaps)


def upid(node, pid, start, wtype, wid):
    return "UPID:%s:%08X:%08X:%08X:%s:%s:root@pam:" % (node, pid, 12345678 + pid, start, wtype, wid)


def add_task(root, node, start, status, wtype="vzdump", wid="", log_lines=None, duration=170):
    u = upid(node, 600000 + (start % 100000), start, wtype, wid)
    rel = os.path.join("tasks", node + ".json")
    items = read_json(root, rel, [])
    items.append({"endtime": start + duration, "id": wid, "node": node, "pid": 600000 + (start % 100000),
                  "pstart": 12345678 + 600000 + (start % 100000), "starttime": start, "status": status,
                  "type": wtype, "upid": u, "user": "root@pam"})
    write_json(root, rel, items)
    if log_lines is not None:
        p = os.path.join(root, "tasks", node, u + ".log")
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w", encoding="utf-8") as f:
            f.write("\n".join(log_lines) + "\n")
    return u


def init(root, scenario, now):
    os.makedirs(root, exist_ok=True)
    root = os.path.abspath(root)
    for sid in ("local", "nas"):
        os.makedirs(os.path.join(root, sid, "dump"), exist_ok=True)
    if scenario == "empty":
        write_json(root, "cluster.json", {"cluster": None, "nodes": [{"node": "pve1", "status": "online", "ip": "10.0.0.1"}]})
        write_json(root, "storage.json", [
            {"storage": "local", "type": "dir", "path": os.path.join(root, "local"), "content": "backup,iso,vztmpl", "shared": 0}])
        write_json(root, "jobs.json", [])
        return
    write_json(root, "cluster.json", {"cluster": "homelab", "nodes": [
        {"node": "pve1", "status": "online", "ip": "10.0.0.1"},
        {"node": "pve2", "status": "online", "ip": "10.0.0.2"},
        {"node": "pve3", "status": "offline", "ip": "10.0.0.3"}]})
    write_json(root, "storage.json", [
        {"storage": "local", "type": "dir", "path": os.path.join(root, "local"), "content": "backup,iso,vztmpl",
         "shared": 0, "nodes": ["pve1"]},
        {"storage": "nas", "type": "dir", "path": os.path.join(root, "nas"), "content": "backup", "shared": 1,
         "status": {"total": 4000000000000, "used": 3400000000000, "avail": 600000000000}},
        {"storage": "pbs", "type": "pbs", "datastore": "store1", "content": "backup", "shared": 1,
         "status": {"total": 8000000000000, "used": 2000000000000, "avail": 6000000000000}},
        {"storage": "local-lvm", "type": "lvmthin", "content": "images,rootdir", "shared": 0, "nodes": ["pve1", "pve2"],
         "status": {"total": 500000000000, "used": 100000000000, "avail": 400000000000}},
    ])
    guests = [
        {"vmid": 100, "type": "qemu", "node": "pve1", "name": "web01", "status": "running", "tags": "prod;web"},
        {"vmid": 101, "type": "lxc", "node": "pve1", "name": "db01", "status": "running", "tags": "prod"},
        {"vmid": 102, "type": "qemu", "node": "pve2", "name": "monitoring", "status": "running"},
        {"vmid": 103, "type": "lxc", "node": "pve2", "name": "test-ct", "status": "stopped"},
        {"vmid": 9000, "type": "qemu", "node": "pve1", "name": "debian-template", "status": "stopped", "template": 1},
    ]
    for g in guests:
        text = archives.qemu_config(g["vmid"], g["name"]) if g["type"] == "qemu" else archives.lxc_config(g["vmid"], g["name"])
        g["config"] = {k.strip(): v.strip() for k, v in (l.split(":", 1) for l in text.splitlines() if ":" in l and not l.startswith("#"))}
        if g["vmid"] == 100:
            g["snapshots"] = {"before-upgrade": dict(g["config"], memory="1024")}
        write_json(root, os.path.join("guests", "%d.json" % g["vmid"]), g)
    write_json(root, "jobs.json", [
        {"all": 1, "compress": "zstd", "enabled": 1, "exclude": "103,9000", "id": "backup-8c5b1a3e-4f2d",
         "mode": "snapshot", "notes-template": "{{guestname}}", "prune-backups": {"keep-daily": "7", "keep-weekly": "4"},
         "schedule": "02:00", "storage": "local", "type": "vzdump"},
        {"enabled": 0, "id": "backup-1f00aa11-2b3c", "mode": "stop", "schedule": "sat 01:00", "storage": "pbs",
         "type": "vzdump", "vmid": "103"},
    ])
    # The newest backups are from last night 02:00 local time.
    lt = time.localtime(now)
    last_night = int(time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday, 2, 0, 2, 0, 0, -1)))
    if last_night > now:
        last_night -= DAY
    for i in range(9):
        t = last_night - i * DAY
        add_backup(root, "local", "qemu", 100, t, "zstd", notes="web01\nnightly", guest_name="web01",
                   protected=(i == 8))
    for i in range(3):
        t = last_night - i * DAY + 65
        add_backup(root, "local", "lxc", 101, t, "gzip" if i else "zstd", notes="db01", guest_name="db01")
    add_backup(root, "local", "qemu", 100, last_night - 20 * DAY, "zstd", name="vzdump-qemu-100-manual-copy.vma.zst")
    for i in range(1, 4):
        add_backup(root, "nas", "qemu", 102, last_night - i * DAY + 30, "lzo", guest_name="monitoring")
    add_backup(root, "nas", "qemu", 102, last_night + 30, log="failed", guest_name="monitoring")
    # An in-progress backup: .dat and .tmp/ are never listed.
    d = os.path.join(root, "nas", "dump")
    stamp = time.strftime("%Y_%m_%d-%H_%M_%S", time.localtime(now - 60))
    open(os.path.join(d, "vzdump-qemu-102-%s.vma.dat" % stamp), "wb").write(b"\0" * 1000)
    os.makedirs(os.path.join(d, "vzdump-qemu-102-%s.tmp" % stamp), exist_ok=True)
    add_pbs(root, "pbs", "vm", 100, last_night - DAY - 3600, size=34359738368, comment="web01", verify="ok",
            encrypted=True)
    add_pbs(root, "pbs", "ct", 101, last_night - DAY - 3500, size=2147483648, comment="db01", verify="failed",
            protected=True)
    add_pbs(root, "pbs", "vm", 102, last_night - 2 * DAY, unfinished=True)
    add_task(root, "pve1", last_night - 2, "OK", log_lines=["INFO: starting new backup job: vzdump --all 1", "TASK OK"])
    add_task(root, "pve1", last_night - DAY - 2, "WARNINGS: 1", log_lines=["WARN: unable to add notes", "TASK WARNINGS: 1"])
    add_task(root, "pve2", last_night + 28, "job errors", log_lines=[
        "INFO: starting new backup job: vzdump --all 1 --exclude 103,9000",
        "INFO: Starting Backup of VM 102 (qemu)",
        "ERROR: Backup of VM 102 failed - no space left on device",
        "INFO: Failed at %s" % time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last_night + 31)),
        "INFO: Backup job finished with errors",
        "TASK ERROR: job errors"])


def parse_time(args):
    if args.epoch is not None:
        return int(args.epoch)
    if args.time:
        return int(time.mktime(time.strptime(args.time, "%Y-%m-%d %H:%M:%S")))
    raise SystemExit("give --time 'YYYY-MM-DD HH:MM:SS' or --epoch N")


def main(argv=None):
    p = argparse.ArgumentParser(prog="pvesim-admin")
    sub = p.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("init")
    i.add_argument("root")
    i.add_argument("--scenario", default="demo", choices=["demo", "empty"])
    i.add_argument("--now", type=int, default=None)
    b = sub.add_parser("add-backup")
    b.add_argument("root")
    b.add_argument("--storage", required=True)
    b.add_argument("--type", required=True, choices=["qemu", "lxc"])
    b.add_argument("--vmid", required=True, type=int)
    b.add_argument("--time")
    b.add_argument("--epoch", type=int)
    b.add_argument("--compress", default="zstd", choices=["zstd", "gzip", "lzo", "none"])
    b.add_argument("--name")
    b.add_argument("--notes")
    b.add_argument("--protected", action="store_true")
    b.add_argument("--log", default="ok", choices=["ok", "warnings", "failed", "none"])
    b.add_argument("--size-kib", type=int, default=256)
    b.add_argument("--seed", type=int)
    b.add_argument("--config", help="a file with the guest config the archive holds (default: the demo's)")
    pb = sub.add_parser("add-pbs")
    pb.add_argument("root")
    pb.add_argument("--storage", default="pbs")
    pb.add_argument("--type", required=True, choices=["vm", "ct"])
    pb.add_argument("--vmid", required=True, type=int)
    pb.add_argument("--epoch", required=True, type=int)
    pb.add_argument("--size", type=int)
    pb.add_argument("--comment")
    pb.add_argument("--protected", action="store_true")
    pb.add_argument("--verify", choices=["ok", "failed"])
    pb.add_argument("--encrypted", action="store_true")
    pb.add_argument("--unfinished", action="store_true", help="no manifest yet: a backup being written")
    c = sub.add_parser("corrupt")
    c.add_argument("file")
    c.add_argument("--mode", required=True, choices=["truncate", "bitflip", "empty"])
    c.add_argument("--offset", type=int, help="bitflip: the byte to change (default: the middle)")
    a = sub.add_parser("archive")
    a.add_argument("out")
    a.add_argument("--type", required=True, choices=["qemu", "lxc"])
    a.add_argument("--vmid", type=int, default=100)
    a.add_argument("--compress", default="zstd", choices=["zstd", "gzip", "lzo", "none"])
    a.add_argument("--size-kib", type=int, default=256)
    a.add_argument("--seed", type=int, default=1)
    a.add_argument("--content", default="pattern", choices=["pattern", "disk"],
                   help="disk: a third zero, a third random, a third text clusters (compresses like a used disk)")
    args = p.parse_args(argv)
    if args.cmd == "init":
        init(args.root, args.scenario, args.now if args.now is not None else int(time.time()))
    elif args.cmd == "add-backup":
        print(add_backup(args.root, args.storage, args.type, args.vmid, parse_time(args), args.compress,
                         args.name, args.notes, args.protected, args.log, args.size_kib, seed=args.seed,
                         config=open(args.config, encoding="utf-8").read() if args.config else None))
    elif args.cmd == "add-pbs":
        add_pbs(args.root, args.storage, args.type, args.vmid, args.epoch, args.size, args.comment,
                args.protected, args.verify, args.encrypted, args.unfinished)
    elif args.cmd == "corrupt":
        archives.corrupt(args.file, args.mode, args.offset)
    elif args.cmd == "archive":
        data = archives.archive_bytes(args.type, args.vmid, "vm%d" % args.vmid, args.size_kib, args.seed,
                                      args.compress, content=args.content)
        with open(args.out, "wb") as f:
            f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
