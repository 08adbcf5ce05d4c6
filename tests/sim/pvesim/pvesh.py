"""`pvesh`: the API paths pvedr reads, and the backup delete path."""

import json
import os
import re
import stat
import sys
import time

from . import names, snapshots
from .state import SimError, options

METHODS = ("get", "ls", "create", "set", "delete", "usage")


def parse_args(argv):
    if not argv or argv[0] not in METHODS:
        raise SimError("ERROR: unknown command 'pvesh %s'" % (argv[0] if argv else ""))
    method = argv[0]
    if len(argv) < 2:
        raise SimError("400 not enough arguments\npvesh %s <api_path> [OPTIONS] [FORMAT_OPTIONS]" % method)
    path = argv[1]
    pos, opts = options(argv[2:])
    if pos:
        raise SimError("400 too many arguments")
    return method, path, opts


def emit(data, opts):
    fmt = opts.get("output-format", "text")
    if fmt == "json":
        sys.stdout.write(json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n")
    elif fmt == "json-pretty":
        sys.stdout.write(json.dumps(data, sort_keys=True, indent=4, ensure_ascii=False) + "\n")
    else:
        # Proxmox prints a text table here; the tools always ask for JSON.
        sys.stdout.write(json.dumps(data, sort_keys=True, indent=4, ensure_ascii=False) + "\n")


def require_node(state, node):
    n = state.node(node)
    if n is None:
        raise SimError("hostname lookup '%s' failed - failed to get address info for: %s: Name or service not known" % (node, node))
    if node != state.local_node and n.get("status") != "online":
        ip = n.get("ip", "10.0.0.%d" % (state.nodes.index(n) + 1))
        raise SimError("ssh: connect to host %s port 22: No route to host" % ip)
    return n


def require_storage(state, sid, node=None):
    s = state.storage(sid)
    if s is None:
        raise SimError("storage '%s' does not exist" % sid)
    if node is not None and not state.storage_on_node(s, node):
        raise SimError("storage '%s' is not available on node '%s'" % (sid, node))
    return s


def storage_status(s):
    """(total, used, avail, active) as Proxmox's storage_info reports them."""
    if s.get("disable"):
        return 0, 0, 0, 0
    st = s.get("status")
    if st:
        return int(st.get("total", 0)), int(st.get("used", 0)), int(st.get("avail", 0)), int(st.get("active", 1))
    if s["type"] == "dir":
        try:
            v = os.statvfs(s["path"])
        except OSError:
            return 0, 0, 0, 0
        total = v.f_blocks * v.f_frsize
        return total, total - v.f_bfree * v.f_frsize, v.f_bavail * v.f_frsize, 1
    return 1099511627776, 0, 1099511627776, 1


# --- /cluster -----------------------------------------------------------------------
def cluster_status(state, opts):
    out = []
    online = [n for n in state.nodes]
    if state.cluster.get("cluster"):
        out.append({"id": "cluster", "name": state.cluster["cluster"], "nodes": len(state.nodes),
                    "quorate": 1, "type": "cluster", "version": 3})
    for i, n in enumerate(online):
        e = {"id": "node/" + n["node"], "ip": n.get("ip", "10.0.0.%d" % (i + 1)), "level": "",
             "name": n["node"], "nodeid": i + 1, "online": 1 if n.get("status") == "online" else 0,
             "type": "node"}
        if n["node"] == state.local_node:
            e["local"] = 1
        else:
            e["local"] = 0
        out.append(e)
    return out


def nodes_index(state, opts):
    out = []
    for n in state.nodes:
        e = {"id": "node/" + n["node"], "node": n["node"], "status": n.get("status", "online"), "type": "node"}
        if e["status"] == "online":
            e.update({"cpu": 0.0123, "disk": 3221225472, "level": "", "maxcpu": 8, "maxdisk": 100861726720,
                      "maxmem": 33554432000, "mem": 8589934592, "uptime": 864000,
                      "ssl_fingerprint": "AA:BB:CC"})
        out.append(e)
    return out


def guest_entry(state, g):
    node = state.node(g.get("node"))
    online = node is not None and node.get("status") == "online"
    e = {"id": "%s/%d" % (g["type"], g["vmid"]), "node": g.get("node"), "type": g["type"], "vmid": g["vmid"]}
    if online:
        status = g.get("status", "stopped")
        e.update({"status": status, "template": int(g.get("template", 0)), "name": g.get("name"),
                  "cpu": 0.01 if status == "running" else 0, "maxcpu": 2, "mem": 1073741824 if status == "running" else 0,
                  "maxmem": 4294967296, "disk": 0, "maxdisk": 34359738368, "netin": 1000, "netout": 2000,
                  "diskread": 1234, "diskwrite": 5678, "uptime": 86400 if status == "running" else 0})
        if g["type"] == "qemu":
            e["memhost"] = e["mem"]
        if e["name"] is None:
            del e["name"]
    else:
        e["status"] = "unknown"
    for k in ("tags", "lock", "pool", "hastate"):
        if g.get(k):
            e[k] = g[k]
    return e


def ha_resources(state, opts):
    """`/cluster/ha/resources` (pve-ha-manager `src/PVE/API2/HA/Resources.pm` `index`):
    each resource's `sid`, `type` and configured `state`."""
    from . import guests
    out = []
    for g in sorted(state.guests(), key=lambda g: g["vmid"]):
        req = guests.ha_requested(g)
        t = "ct" if g["type"] == "lxc" else "vm"
        if req is not None and opts.get("type") in (None, t):
            out.append({"sid": "%s:%d" % (t, g["vmid"]), "type": t, "state": req})
    return out


def cluster_resources(state, opts):
    typ = opts.get("type")
    out = []
    if typ in (None, "vm"):
        for g in sorted(state.guests(), key=lambda g: str(g["vmid"])):
            out.append(guest_entry(state, g))
    if typ in (None, "storage"):
        for n in state.nodes:
            for s in state.storages():
                if not state.storage_on_node(s, n["node"]):
                    continue
                total, used, _avail, active = storage_status(s)
                online = n.get("status") == "online"
                out.append({"id": "storage/%s/%s" % (n["node"], s["storage"]), "storage": s["storage"],
                            "node": n["node"], "type": "storage", "plugintype": s["type"],
                            "status": "available" if online and active else "unknown",
                            "shared": int(s.get("shared", 0)), "content": s.get("content", ""),
                            "disk": used, "maxdisk": total})
    if typ in (None, "node"):
        for e in nodes_index(state, opts):
            out.append(e)
    if typ not in (None, "vm", "storage", "node", "sdn"):
        raise SimError("400 Parameter verification failed.\ntype: value '%s' does not have a value in the enumeration 'vm, storage, node, sdn'" % typ)
    return out


def next_run(schedule, now):
    """next-run for simple 'HH:MM' schedules (enough for the simulator)."""
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", schedule or "")
    if not m:
        return None
    lt = time.localtime(now)
    t = time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday, int(m.group(1)), int(m.group(2)), 0, 0, 0, -1))
    if t <= now:
        t += 86400
    return int(t)


def cluster_backup(state, opts):
    out = []
    now = int(os.environ.get("PVESIM_NOW") or time.time())
    for j in state.load("jobs.json", []):
        e = dict(j)
        e.setdefault("type", "vzdump")
        e.setdefault("enabled", 1)
        nr = next_run(e.get("schedule"), now)
        if nr is not None:
            e["next-run"] = nr
        out.append(e)
    return out


def included(job, g):
    """pve-manager `VZDump.pm` get_included_guests: the pool first (its members, `exclude`
    not applied), else the `vmid` list, else `all` minus `exclude`; then a job with `node`
    keeps only the guests on that node. Disabled jobs count (BackupInfo.pm)."""
    ids = [int(x) for x in str(job.get("vmid", "")).split(",") if x.strip().isdigit()]
    excl = [int(x) for x in str(job.get("exclude", "")).split(",") if x.strip().isdigit()]
    if job.get("pool"):
        chosen = g.get("pool") == job["pool"]
    elif ids:
        chosen = g["vmid"] in ids
    elif job.get("all"):
        chosen = g["vmid"] not in excl
    else:
        chosen = False
    return chosen and (not job.get("node") or job["node"] == g.get("node"))


def not_backed_up(state, opts):
    jobs = state.load("jobs.json", [])
    out = []
    for g in state.guests():
        # Proxmox counts disabled jobs as coverage too.
        if not any(included(j, g) for j in jobs):
            e = {"type": g["type"], "vmid": g["vmid"]}
            if g.get("name"):
                e["name"] = g["name"]
            out.append(e)
    return out


# --- /nodes/{node}/storage ----------------------------------------------------------
def storage_index(state, node, opts):
    content = opts.get("content")
    out = []
    for s in state.storages():
        kinds = [c for c in s.get("content", "").split(",") if c]
        if content and content not in kinds:
            continue
        # pve-storage Storage.pm storage_info: storage_check_enabled (`disable`, then
        # storage_check_node: storage.cfg `nodes` without this node) refuses; with a
        # content filter such a storage is left out, without one it is listed with
        # enabled 0, active 0 and no space.
        enabled = not s.get("disable") and state.storage_on_node(s, node)
        if content and not enabled:
            continue
        total, used, avail, active = storage_status(s) if enabled else (0, 0, 0, 0)
        e = {"active": active, "avail": avail, "content": s.get("content", ""), "enabled": 1 if enabled else 0,
             "shared": int(s.get("shared", 0)), "storage": s["storage"], "total": total, "type": s["type"],
             "used": used}
        if active and total:
            e["used_fraction"] = used / total
        out.append(e)
    return out


# --- /nodes/{node}/network ------------------------------------------------------------
def node_network(state, node, opts):
    """pve-manager PVE/API2/Network.pm `index`: the node's interfaces (`network.json`
    {node: [{iface, type}]}, default a fresh install's `vmbr0`), `lo` never; `--type T`
    keeps that type, `any_bridge` keeps `bridge` and `OVSBridge` and adds the SDN vnets
    whose zone takes in the node (pve-network PVE/Network/SDN.pm `get_local_vnets`:
    `sdn.json` {"zones": {Z: {"nodes": [...]}}, "vnets": {V: {"zone": Z}}}, a zone without
    `nodes` on every node). pvesh runs as root@pam: nothing is hidden here."""
    nets = state.load("network.json", None)
    ifaces = [dict(i) for i in (nets or {}).get(node, [])] if nets is not None else \
        [{"iface": "vmbr0", "type": "bridge"}, {"iface": "eno1", "type": "eth"}]
    tfilter = opts.get("type")
    if tfilter:
        bridge = tfilter in ("any_bridge", "any_local_bridge")
        ifaces = [i for i in ifaces if i["type"] == tfilter or (bridge and i["type"] in ("bridge", "OVSBridge"))]
    if tfilter in ("any_bridge", "vnet"):
        sdn = state.load("sdn.json", {})
        zones = sdn.get("zones", {})
        for v, c in sorted(sdn.get("vnets", {}).items()):
            z = zones.get(c.get("zone"))
            if z is not None and (z.get("nodes") is None or node in z["nodes"]):
                ifaces.append({"iface": v, "type": "vnet", "active": 1})
    for i in ifaces:
        i.setdefault("active", 1)
    return sorted((i for i in ifaces if i["iface"] != "lo"), key=lambda i: i["iface"])


# --- /nodes/{node}/capabilities/qemu ---------------------------------------------------
DEFAULT_CAPS = {
    "cpu": ["host", "kvm64", "qemu64", "x86-64-v2", "x86-64-v2-AES", "x86-64-v3", "x86-64-v4"],
    "machines": ["pc-i440fx-9.0", "pc-i440fx-9.0+pve0", "pc-i440fx-8.1", "pc-q35-9.0", "pc-q35-9.0+pve0",
                 "pc-q35-8.1"],
}


def node_caps(state, node, what, opts):
    """qemu-server `src/PVE/API2/Qemu/CPU.pm` `index` ({name, vendor, custom}) and
    `src/PVE/API2/Qemu/Machine.pm` ({id, type, version}): what the node's QEMU offers, from
    `capabilities.json` ({node: {"cpu": [...], "machines": [...]}}, default `DEFAULT_CAPS`)."""
    caps = state.load("capabilities.json", {}).get(node, DEFAULT_CAPS)
    if what == "cpu":
        return [{"name": n, "vendor": "default", "custom": 0} for n in caps.get("cpu", [])]
    return [{"id": m, "type": "q35" if "q35" in m else "i440fx", "version": m.rsplit("-", 1)[-1]}
            for m in caps.get("machines", [])]


def cluster_mapping(state, kind, opts):
    """pve-manager PVE/API2/Cluster/Mapping/PCI.pm and USB.pm `index`: each mapping's `id`,
    `description` and `map` (entries `node=N,path=…,id=…`), from `mapping.json`
    ({"pci": [...], "usb": [...]}); pvesh (root) sees them all."""
    return state.load("mapping.json", {}).get(kind, [])


def storage_status_get(state, node, sid, opts):
    s = require_storage(state, sid, node)
    total, used, avail, active = storage_status(s)
    return {"active": active, "avail": avail, "content": s.get("content", ""), "enabled": 0 if s.get("disable") else 1,
            "shared": int(s.get("shared", 0)), "total": total, "type": s["type"], "used": used}


def dir_content(state, s, vmid, node):
    """pve-storage Plugin.pm `$get_subdir_files` (type backup) and `list_volumes`; the
    node's own files (proxied to it: `API2/Storage/Content.pm` `index` is `proxyto => 'node'`)."""
    d = names.dump_dir(s, state, node)
    out = []
    try:
        files = os.listdir(d)
    except FileNotFoundError:
        return out
    for fn in files:
        # `<$path/*>`: a glob, so no dot files.
        if fn.startswith("."):
            continue
        m = names.LISTED_RE.match(fn)
        if not m:
            continue
        p = os.path.join(d, fn)
        # `next if (!$st || S_ISDIR($st->mode))`: anything but a directory is listed.
        try:
            st = os.stat(p)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            continue
        fmt = m.group(2)
        # `$fn !~ m/\S+-$vmid-\S+/`: unanchored.
        if vmid is not None and not re.search(r"\S+-" + str(vmid) + r"-\S+", fn):
            continue
        info = names.archive_info(fn)
        e = {"content": "backup", "format": fmt, "size": st.st_size, "volid": "%s:backup/%s" % (s["storage"], fn),
             "subtype": info["type"] if info else "unknown"}
        if info and info["time"]:
            e["ctime"] = names.local_epoch(info["time"])
        else:
            e["ctime"] = int(st.st_ctime)
        v = vmid if vmid is not None else names.listing_vmid(fn, fmt)
        if v is not None:
            e["vmid"] = int(v)
        # pve-common File.pm `file_read_first_line`: undef for an empty file (no field), else
        # the first line chomped; `decode('UTF-8', $notes, 1) // $notes`: bytes that are not
        # UTF-8 stay bytes, which the JSON encoder prints as one code point each (Latin-1).
        try:
            with open(p + ".notes", "rb") as f:
                raw = f.readline()
        except FileNotFoundError:
            raw = None
        if raw:
            raw = raw[:-1] if raw.endswith(b"\n") else raw
            try:
                e["notes"] = raw.decode("utf-8")
            except UnicodeDecodeError:
                e["notes"] = raw.decode("latin-1")
        if os.path.exists(p + ".protected"):
            e["protected"] = 1
        out.append(e)
    return out


def pbs_volid(sid, snap):
    t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(snap["backup-time"])))
    return "%s:backup/%s/%s/%s" % (sid, snap["backup-type"], snap["backup-id"], t)


def pbs_snapshot_item(snap):
    """What proxmox-backup's `list_snapshots_blocking` (src/api2/admin/datastore.rs) answers
    for one snapshot. Without a manifest (a backup being written: `get_all_snapshot_files`
    fails) it has no size, comment, verification or fingerprint, and its files no
    crypt-mode; with one, `size` is the sum of its files' sizes."""
    item = {k: snap[k] for k in ("backup-type", "backup-id", "backup-time") if k in snap}
    if snap.get("protected"):
        item["protected"] = True
    if snap.get("manifest") is False:
        item["files"] = [{"filename": f["filename"]} for f in snap.get("files") or []]
        return item
    files = snap.get("files") or []
    item["size"] = snap["size"] if "size" in snap else sum(int(f.get("size") or 0) for f in files)
    for k in ("comment", "verification", "fingerprint", "files"):
        if snap.get(k):
            item[k] = snap[k]
    return item


def pbs_content(state, s, vmid):
    """pve-storage src/PVE/Storage/PBSPlugin.pm `list_volumes` over the datastore's list:
    `size => $item->{size} // 1`, so a snapshot without a manifest is listed with size 1."""
    out = []
    for snap in state.load(os.path.join("pbs", s["storage"] + ".json"), []):
        if snap["backup-type"] not in ("vm", "ct") or not str(snap["backup-id"]).isdigit():
            continue
        if vmid is not None and str(snap["backup-id"]) != str(vmid):
            continue
        snap = pbs_snapshot_item(snap)
        size = snap.get("size")
        e = {"content": "backup", "ctime": int(snap["backup-time"]),
             "format": "pbs-" + snap["backup-type"], "size": int(size) if size is not None else 1,
             "subtype": "qemu" if snap["backup-type"] == "vm" else "lxc",
             "vmid": int(snap["backup-id"]), "volid": pbs_volid(s["storage"], snap)}
        if snap.get("comment"):
            e["notes"] = snap["comment"].split("\n")[0]
        if snap.get("protected"):
            e["protected"] = 1
        if snap.get("verification"):
            e["verification"] = snap["verification"]
        if snap.get("fingerprint"):
            e["encrypted"] = snap["fingerprint"]
        elif snap.get("files"):
            enc = [f for f in snap["files"] if f["filename"] not in ("index.json.blob", "client.log.blob")]
            if enc and all(f.get("crypt-mode") == "encrypt" for f in enc):
                e["encrypted"] = "1"
        out.append(e)
    return out


def content_index(state, node, sid, opts):
    s = require_storage(state, sid, node)
    if s.get("disable"):
        # volume_list → activate_storage → storage_check_enabled dies.
        raise SimError("storage '%s' is disabled" % sid)
    kinds = [c for c in s.get("content", "").split(",") if c]
    content = opts.get("content")
    if (content and content != "backup") or "backup" not in kinds:
        return []
    vmid = opts.get("vmid")
    out = pbs_content(state, s, vmid) if s["type"] == "pbs" else dir_content(state, s, vmid, node)
    out.sort(key=lambda e: e["volid"].lower())
    return out


def split_volid(sid, volume):
    if ":" not in volume:
        volume = "%s:%s" % (sid, volume)
    store, volname = volume.split(":", 1)
    if store != sid:
        raise SimError("storage ID mismatch ('%s' != '%s')" % (store, sid))
    return volume, volname


def volume_get(state, node, sid, volume, opts):
    s = require_storage(state, sid, node)
    volid, volname = split_volid(sid, volume)
    if s["type"] == "pbs":
        for e in pbs_content(state, s, None):
            if e["volid"] == volid:
                return {"format": e["format"], "notes": e.get("notes", ""), "path": volid,
                        "protected": e.get("protected", 0), "size": e["size"], "used": e["size"]}
        raise SimError("unable to find snapshot '%s'" % volname)
    if not volname.startswith("backup/"):
        raise SimError("unable to parse volume name '%s'" % volname)
    # `info` is `proxyto => 'node'`: the node's own file, named as on that node.
    p = os.path.join(names.dump_dir(s, state, node), volname[len("backup/"):])
    if not os.path.isfile(p):
        raise SimError("volume '%s' does not exist" % volid)
    m = names.LISTED_RE.match(os.path.basename(p))
    try:
        with open(p + ".notes", "rb") as f:
            notes = f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        notes = ""
    size = os.stat(p).st_size
    shown = os.path.join(names.dump_dir(s), os.path.basename(p))
    return {"format": m.group(2) if m else "raw", "notes": notes, "path": shown,
            "protected": 1 if os.path.exists(p + ".protected") else 0, "size": size, "used": size}


def upid(node, wtype, wid):
    now = int(time.time())
    return "UPID:%s:%08X:%08X:%08X:%s:%s:root@pam:" % (node, os.getpid(), 12345678, now, wtype, wid)


def volume_delete(state, node, sid, volume, opts):
    """DELETE .../content/{volid}: an `imgdel` worker, run synchronously by the CLI.

    As pve-storage `API2/Storage/Content.pm` (delete) runs it through pve-common
    `RESTEnvironment.pm` fork_worker in CLI mode: the volume is parsed before the fork (an
    error there exits non-zero), but a failure inside the worker (`vdisk_free`: protected,
    missing, I/O) is only printed to stderr by `tee_worker`; pvesh still prints the UPID and
    exits 0. "Removed volume" is printed only when the worker got that far.
    """
    s = require_storage(state, sid, node)
    volid, volname = split_volid(sid, volume)
    if s["type"] != "pbs" and (not volname.startswith("backup/") or "/" in volname[len("backup/"):]):
        raise SimError("unable to parse volume name '%s'" % volname)
    proxied = node != state.local_node
    try:
        state.check_faults("imgdel", [volid])
        owner = delete_worker(state, s, sid, volid, volname, node)
    except SimError as e:
        sys.stdout.write(worker_output(None, upid(node, "imgdel", sid), proxied))
        sys.stdout.flush()
        sys.stderr.write(e.message.rstrip("\n") + "\n")
        return None
    wid = ("%s@" % owner if owner else "") + sid
    sys.stdout.write(worker_output("Removed volume '%s'" % volid, upid(node, "imgdel", wid), proxied))
    return None


def worker_output(line, upid_, proxied):
    """What pvesh prints for a synchronous worker: its output line, then the UPID.

    For another node pve-manager PVE/CLI/pvesh.pm proxy_handler runs `pvesh --noproxy …
    --output-format json` there through pve-common PVE/Tools.pm run_command (PVE/Cmd.pm
    `run`), whose outfunc gets each line without its newline and appends it to one string:
    the worker's line and the JSON-quoted UPID run together. That is not JSON, so it is
    returned as a string and printed on one line."""
    if proxied:
        return (line or "") + json.dumps(upid_) + "\n"
    return "".join(x + "\n" for x in (line, upid_) if x is not None)


def delete_worker(state, s, sid, volid, volname, node):
    """The worker's part: vdisk_free (protection checked there) and the side files."""
    if s["type"] == "pbs":
        snaps = state.load(os.path.join("pbs", sid + ".json"), [])
        for i, snap in enumerate(snaps):
            if pbs_volid(sid, snap) == volid:
                if snap.get("protected"):
                    raise SimError("cannot remove protected volume '%s' on '%s'" % (volname, sid))
                del snaps[i]
                state.save(os.path.join("pbs", sid + ".json"), snaps)
                break
        else:
            raise SimError("unable to find snapshot '%s'" % volname)
        owner = volname.split("/")[2] if volname.count("/") >= 3 else None
    else:
        fn = volname[len("backup/"):]
        p = os.path.join(names.dump_dir(s, state, node), fn)
        if not os.path.isfile(p):
            raise SimError("volume '%s' does not exist" % volid)
        if os.path.exists(p + ".protected"):
            raise SimError("cannot remove protected volume '%s' on '%s'" % (volname, sid))
        os.unlink(p)
        stem = names.std_stem(p)
        if stem:
            # Like archive_auxiliaries_remove: the log and the notes go too.
            for aux in (stem + ".log", p + ".notes"):
                try:
                    os.unlink(aux)
                except FileNotFoundError:
                    pass
        owner = names.listing_vmid(fn, names.LISTED_RE.match(fn).group(2)) if names.LISTED_RE.match(fn) else None
    return owner


# --- /nodes/{node}/time -------------------------------------------------------------
def node_time(state, node, opts):
    """pve-manager PVE/API2/Nodes.pm `time`: the zone timedatectl reports (pve-common
    PVE/Systemd.pm get_timezone), UTC seconds, and local seconds as if they were UTC."""
    now = int(os.environ.get("PVESIM_NOW") or time.time())
    time.tzset()
    lt = time.localtime(now)
    return {"localtime": now + lt.tm_gmtoff, "time": now,
            "timezone": os.environ.get("TZ") or "Etc/UTC"}


# --- /nodes/{node}/tasks ------------------------------------------------------------
def tasks(state, node, opts):
    items = state.load(os.path.join("tasks", node + ".json"), [])
    items = sorted(items, key=lambda t: t.get("starttime", 0), reverse=True)
    tf = opts.get("typefilter")
    # pve-manager PVE/API2/Tasks.pm node_tasks: `source` archive (default: finished tasks),
    # active (running ones, status RUNNING) or all. A task still running has no status yet.
    source = opts.get("source", "archive")
    out = []
    for t in items:
        running = "status" not in t
        if running and source == "archive":
            continue
        if not running and source == "active":
            continue
        if running:
            t = dict(t, status="RUNNING")
        if tf and t.get("type") != tf:
            continue
        if opts.get("vmid") and str(t.get("id", "")) != opts["vmid"]:
            continue
        if opts.get("since") and t.get("starttime", 0) < int(opts["since"]):
            continue
        if opts.get("until") and t.get("starttime", 0) > int(opts["until"]):
            continue
        if opts.get("errors") in ("1", "true") and t.get("status") == "OK":
            continue
        if opts.get("userfilter") and opts["userfilter"] not in t.get("user", ""):
            continue
        out.append(t)
    start = int(opts.get("start", 0))
    limit = int(opts.get("limit", 50))
    return out[start:start + limit]


def task_status(state, node, upid_, opts):
    """pve-manager PVE/API2/Tasks.pm read_task_status: the UPID's fields (a token's task
    splits `user` into user and `tokenid`), `running` or `stopped` plus `exitstatus`."""
    m = re.fullmatch(r"UPID:([a-zA-Z0-9]([a-zA-Z0-9\-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):"
                     r"([0-9A-Fa-f]{8}):([^:\s/]+):([^:\s/]*):([^:\s/]+):", upid_)
    if not m:
        raise SimError("400 Parameter verification failed.\nupid: unable to parse worker upid")
    for t in state.load(os.path.join("tasks", node + ".json"), []):
        if t.get("upid") == upid_:
            break
    else:
        raise SimError("400 Parameter verification failed.\nupid: no such task")
    user = m.group(8)
    e = {"id": m.group(7), "node": m.group(1), "pid": int(m.group(3), 16), "pstart": int(m.group(4), 16),
         "starttime": int(m.group(5), 16), "type": m.group(6), "upid": upid_, "user": user}
    if "!" in user:
        e["user"], e["tokenid"] = user.split("!", 1)
    if "status" in t:
        e["status"] = "stopped"
        e["exitstatus"] = t["status"]
    else:
        e["status"] = "running"
    return e


def guest_on_node(state, node, gtype, vmid):
    g = state.guest(vmid)
    if g is None or g["type"] != gtype or g.get("node") != node:
        sub = "qemu-server" if gtype == "qemu" else "lxc"
        raise SimError("Configuration file 'nodes/%s/%s/%s.conf' does not exist" % (node, sub, vmid))
    return g


def guest_config(state, node, gtype, vmid, opts):
    """qemu-server API2/Qemu.pm vm_config / pve-container API2/LXC/Config.pm vm_config: the
    config keys (without snapshots) plus `digest`. A container's raw `lxc.*` keys are one
    key `lxc`, a list of [key, value] (pve-container LXC/Config.pm parse_pct_config pushes
    them onto `$conf->{lxc}`; vm_config's return schema: "Array of lxc low-level
    configurations")."""
    g = guest_on_node(state, node, gtype, vmid)
    conf = dict(g.get("config") or {})
    raw = [[k, conf.pop(k)] for k in sorted(conf) if gtype == "lxc" and k.startswith("lxc.")]
    if raw:
        conf["lxc"] = raw
    if g.get("name"):
        conf.setdefault("name" if gtype == "qemu" else "hostname", g["name"])
    if g.get("lock"):
        conf["lock"] = g["lock"]
    conf["digest"] = snapshots.digest(g.get("config") or {})
    return conf


def guest_status(state, node, gtype, vmid, opts):
    """qemu-server API2/Qemu.pm vm_status / pve-container API2/LXC/Status.pm vm_status."""
    g = guest_on_node(state, node, gtype, vmid)
    status = g.get("status", "stopped")
    e = {"status": status, "vmid": int(vmid), "cpus": 2, "maxmem": 4294967296, "maxdisk": 34359738368,
         "uptime": 86400 if status == "running" else 0, "cpu": 0.01 if status == "running" else 0,
         "mem": 1073741824 if status == "running" else 0,
         "ha": {"managed": 1 if g.get("hastate") and g.get("hastate") != "ignored" else 0}}
    if g.get("name"):
        e["name"] = g["name"]
    if gtype == "qemu":
        e["qmpstatus"] = status
    else:
        e["type"] = "lxc"
    if g.get("lock"):
        e["lock"] = g["lock"]
    if g.get("template"):
        e["template"] = 1
    if g.get("tags"):
        e["tags"] = g["tags"]
    return e


def extractconfig(state, node, opts):
    """pve-manager PVE/API2/VZDump.pm extractconfig: the config inside the archive, a string."""
    from . import guests
    volid = opts.get("volume")
    if not volid:
        raise SimError("400 Parameter verification failed.\nvolume: property is missing and it is not optional")
    base = os.path.basename(volid.split(":", 1)[-1])
    if not names.archive_info(base):
        raise SimError("unable to parse volume ID '%s'" % volid)
    gtype = "qemu" if "qemu" in base else "lxc"
    return guests.archive_config_text(guests.archive_path(state, volid), gtype)


def task_log(state, node, upid_, opts):
    p = state.path("tasks", node, upid_.replace("/", "_") + ".log")
    # pve-manager PVE/API2/Tasks.pm read_task_log → pve-common PVE/Tools.pm dump_logfile: a
    # log that cannot be opened is no error but one line, and an empty one says "no content".
    try:
        with open(p, encoding="utf-8") as f:
            lines = f.read().split("\n")
    except FileNotFoundError:
        return [{"n": 1, "t": "unable to open file - No such file or directory"}]
    if lines and lines[-1] == "":
        lines.pop()
    start = int(opts.get("start", 0))
    limit = int(opts.get("limit", 50))
    out = [{"n": i + 1, "t": t} for i, t in enumerate(lines)][start:start + limit]
    return out if lines else [{"n": 1, "t": "no content"}]


ROUTES = [
    ("get", r"/cluster/status", lambda st, m, o: cluster_status(st, o)),
    ("get", r"/nodes", lambda st, m, o: nodes_index(st, o)),
    ("get", r"/cluster/resources", lambda st, m, o: cluster_resources(st, o)),
    ("get", r"/cluster/ha/resources", lambda st, m, o: ha_resources(st, o)),
    ("get", r"/cluster/backup", lambda st, m, o: cluster_backup(st, o)),
    ("get", r"/cluster/backup-info/not-backed-up", lambda st, m, o: not_backed_up(st, o)),
    ("get", r"/nodes/([^/]+)/storage", lambda st, m, o: storage_index(st, m[0], o)),
    ("get", r"/nodes/([^/]+)/network", lambda st, m, o: node_network(st, m[0], o)),
    ("get", r"/cluster/mapping/(pci|usb)", lambda st, m, o: cluster_mapping(st, m[0], o)),
    ("get", r"/nodes/([^/]+)/capabilities/qemu/(cpu|machines)", lambda st, m, o: node_caps(st, m[0], m[1], o)),
    ("get", r"/nodes/([^/]+)/storage/([^/]+)/status", lambda st, m, o: storage_status_get(st, m[0], m[1], o)),
    ("get", r"/nodes/([^/]+)/storage/([^/]+)/content", lambda st, m, o: content_index(st, m[0], m[1], o)),
    ("get", r"/nodes/([^/]+)/storage/([^/]+)/content/(.+)", lambda st, m, o: volume_get(st, m[0], m[1], m[2], o)),
    ("delete", r"/nodes/([^/]+)/storage/([^/]+)/content/(.+)", lambda st, m, o: volume_delete(st, m[0], m[1], m[2], o)),
    ("get", r"/nodes/([^/]+)/(qemu|lxc)/([1-9][0-9]{2,8})/snapshot",
     lambda st, m, o: snapshots.pvesh_list(st, m[0], m[1], m[2])),
    ("get", r"/nodes/([^/]+)/time", lambda st, m, o: node_time(st, m[0], o)),
    ("get", r"/nodes/([^/]+)/tasks", lambda st, m, o: tasks(st, m[0], o)),
    ("get", r"/nodes/([^/]+)/tasks/([^/]+)/log", lambda st, m, o: task_log(st, m[0], m[1], o)),
    ("get", r"/nodes/([^/]+)/tasks/([^/]+)/status", lambda st, m, o: task_status(st, m[0], m[1], o)),
    ("get", r"/nodes/([^/]+)/(qemu|lxc)/([1-9][0-9]{2,8})/config",
     lambda st, m, o: guest_config(st, m[0], m[1], m[2], o)),
    ("get", r"/nodes/([^/]+)/(qemu|lxc)/([1-9][0-9]{2,8})/status/current",
     lambda st, m, o: guest_status(st, m[0], m[1], m[2], o)),
    ("get", r"/nodes/([^/]+)/vzdump/extractconfig", lambda st, m, o: extractconfig(st, m[0], o)),
]


def main(state, argv):
    method, path, opts = parse_args(argv)
    if method == "ls":
        method = "get"
    norm = "/" + path.strip("/")
    for meth, pattern, fn in ROUTES:
        if meth != method:
            continue
        m = re.fullmatch(pattern, norm)
        if m:
            groups = m.groups()
            if groups and norm.startswith("/nodes/"):
                # pve-manager PVE/CLI/pvesh.pm proxy_handler: `localhost` is this node.
                if groups[0] == "localhost":
                    groups = (state.local_node,) + groups[1:]
                require_node(state, groups[0])
            data = fn(state, groups, opts)
            if data is not None:
                emit(data, opts)
            return 0
    # pve-manager PVE/CLI/pvesh.pm extract_path_info: printed, then exit(1).
    raise SimError("No '%s' handler defined for '%s'" % (argv[0] if argv else method, path), 1)
