"""qm, pct, qmrestore, vzdump: guest state in guests/<vmid>.json, real archives in, real
archives out. Messages and exit codes as Proxmox's (shared/reference/proxmox.md §5, §8)."""

import contextlib
import gzip
import io
import os
import random
import re
import struct
import subprocess
import sys
import tarfile
import time

from . import archives, names, pipe, snapshots, volumes
from .state import SimError, options as opts


def kind_word(gtype):
    return "VM" if gtype == "qemu" else "CT"


def need_guest(state, vmid, gtype):
    g = state.guest(vmid)
    # qm/pct read the config from this node's directory (/etc/pve/nodes/<this node>/…):
    # a guest of another node is not there (qemu-server PVE/QemuConfig.pm load_config).
    if g is None or g["type"] != gtype or g.get("node") != state.local_node:
        if gtype == "qemu":
            raise SimError("Configuration file 'nodes/%s/qemu-server/%s.conf' does not exist" % (state.local_node, vmid))
        raise SimError("Configuration file 'nodes/%s/lxc/%s.conf' does not exist" % (state.local_node, vmid))
    return g


def check_lock(g):
    if g.get("lock"):
        raise SimError("%s is locked (%s)" % (kind_word(g["type"]), g["lock"]))


def print_config(g):
    conf = dict(g.get("config") or {})
    if g.get("name") and g["type"] == "qemu":
        conf.setdefault("name", g["name"])
    if g.get("name") and g["type"] == "lxc":
        conf.setdefault("hostname", g["name"])
    if g.get("lock"):
        conf["lock"] = g["lock"]
    for k in sorted(conf):
        sys.stdout.write("%s: %s\n" % (k, conf[k]))


def check_property_string(key, value):
    """pve-common `src/PVE/JSONSchema.pm` `parse_property_string`, run by `check_format`
    for a formatted option (`netN`): a key given twice is refused (400, "invalid format")."""
    seen = set()
    for part in value.split(","):
        if "=" not in part:
            continue
        k = part.split("=", 1)[0]
        if k in seen:
            raise SimError("400 Parameter verification failed.\n%s: invalid format - duplicate key in "
                           "comma-separated list property: %s" % (key, k))
        seen.add(k)


def with_mac(g, v):
    """qemu-server `src/PVE/QemuServer/Network.pm` `parse_net`: a VM's net line without a
    MAC (`virtio` bare, no `macaddr=`) gets a new random one."""
    parts = v.split(",")
    if g["type"] != "qemu" or "=" in parts[0] or any(p.startswith("macaddr=") for p in parts):
        return v
    rnd = random.Random(v)
    mac = "BC:24:11:%02X:%02X:%02X" % (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256))
    return ",".join(["%s=%s" % (parts[0], mac)] + parts[1:])


def set_options(g, kv):
    for k, v in kv.items():
        if re.fullmatch(r"net\d+", k):
            check_property_string(k, v)
            kv[k] = with_mac(g, v)
    conf = g.setdefault("config", {})
    for k, v in kv.items():
        if k in ("skiplock",):
            continue
        if k == "delete":
            for d in v.split(","):
                conf.pop(d, None)
        else:
            conf[k] = v


def is_template(g):
    return bool(g.get("template")) or str((g.get("config") or {}).get("template", "0")) == "1"


def start(state, g):
    check_lock(g)
    if is_template(g):
        # qemu-server src/PVE/QemuServer.pm vm_start; pve-container src/PVE/API2/LXC/Status.pm
        # vm_start.
        raise SimError("you can't start a %s if it's a template" % ("vm" if g["type"] == "qemu" else "CT"))
    if g.get("status") == "running":
        raise SimError("%s %s already running" % (kind_word(g["type"]), g["vmid"]))
    if g.get("fail_start"):
        raise SimError("start failed: %s" % g["fail_start"])
    check_bridges(state, g)
    g["status"] = "running"
    state.save_guest(g)


def check_bridges(state, g):
    """Bridges are checked only when the guest starts, not by a restore or `qm set`:
    pve-common `src/PVE/Network.pm` `tap_plug` → `read_bridge_mtu` dies `bridge 'X' does
    not exist` (the node's bridges and vnets: `pvesh.node_network`)."""
    from .pvesh import node_network
    there = {i["iface"] for i in node_network(state, g.get("node") or state.local_node, {"type": "any_bridge"})}
    for k in sorted((g.get("config") or {})):
        if not re.fullmatch(r"net\d+", k):
            continue
        bridge = dict(p.split("=", 1) for p in str(g["config"][k]).split(",") if "=" in p).get("bridge")
        if bridge and bridge not in there:
            raise SimError("bridge '%s' does not exist" % bridge)


def ha_managed(g):
    """pve-ha-manager PVE::HA::Config::vm_is_ha_managed: a resource not `ignored`."""
    return bool(g.get("hastate")) and g.get("hastate") != "ignored"


def ha_requested(g):
    """The HA resource's configured (requested) state, or None when HA does not manage it.
    A guest's `hastate` is the HA manager's runtime service state that `/cluster/resources`
    shows (pve-manager `PVE/API2/Cluster.pm` `resources`); `ha_request` the configured one
    (default: `hastate`, else `started`, as pve-ha-manager `src/PVE/HA/Config.pm`
    `service_check_ha_state` reads a missing state)."""
    if not g.get("hastate"):
        return None
    req = g.get("ha_request") or g["hastate"]
    return req if req in ("started", "stopped", "disabled", "ignored") else "started"


def stop(state, g, kv=None):
    kv = kv or {}
    # qemu-server QemuServer.pm _do_vm_stop and pve-container API2/LXC/Status.pm vm_stop:
    # a lock refuses the stop unless --skiplock (for a CT also the `mounted` lock passes).
    if "skiplock" not in kv and not (g["type"] == "lxc" and g.get("lock") == "mounted"):
        check_lock(g)
    if ha_managed(g):
        # qemu-server API2/Qemu.pm vm_stop (pve-container likewise): only an HA request
        # (`ha-manager crm-command stop`), which returns before the guest has stopped.
        sys.stdout.write("Requesting HA stop for %s %s\n" % (kind_word(g["type"]), g["vmid"]))
        return
    if g.get("status") != "running":
        if g["type"] == "lxc":
            raise SimError("CT %s not running" % g["vmid"])
        return
    g["status"] = "stopped"
    state.save_guest(g)


def destroy(state, g, kv):
    if g.get("status") == "running" and not (g["type"] == "lxc" and kv.get("force") == "1"):
        if g["type"] == "qemu":
            raise SimError("VM %s is running - destroy failed" % g["vmid"])
        raise SimError("unable to destroy CT %s - container is running" % g["vmid"])
    check_lock(g)
    if kv.get("purge") == "1":
        jobs = state.load("jobs.json", [])
        for j in jobs:
            ids = [x for x in str(j.get("vmid", "")).split(",") if x and x != str(g["vmid"])]
            if "vmid" in j:
                j["vmid"] = ",".join(ids)
        state.save("jobs.json", jobs)
    free_owned(state, g)
    state.delete_guest(g["vmid"])


def free_owned(state, g):
    """The volumes of its config a guest owns go with it (unusedN too): qemu-server
    `src/PVE/QemuServer.pm` `destroy_vm` (`$remove_owned_drive` over `foreach_volume_full`
    with `include_unused`), pve-container `src/PVE/LXC.pm` `destroy_lxc_container`."""
    conf = g.get("config") or {}
    if g["type"] == "qemu":
        vols = [v for _, v, _ in volumes.qemu_drives(conf)]
        vols += [str(v) for k, v in conf.items() if re.fullmatch(r"unused\d+", k)]
    else:
        vols = [v for _, v, _ in volumes.ct_volumes(conf)]
    for v in vols:
        if volumes.is_volume(v) and volumes.owner(v) == int(g["vmid"]):
            volumes.free(state, v)


def rollback(state, g, snap, kv=None):
    """pve-guest-common AbstractConfig.pm snapshot_rollback, in its order: the snapshot,
    each volume's `volume_rollback_is_possible` (before the stop), `check_lock`, the stop;
    a snapshot with RAM starts the VM from it (`__snapshot_rollback_vm_start`). `--start 1`
    (Qemu.pm / LXC/Snapshot.pm `rollback`) starts it after, unless it already runs."""
    kv = kv or {}
    snaps = g.get("snapshots") or {}
    if snap not in snaps:
        raise SimError("snapshot '%s' does not exist" % snap)
    snapshots.check_rollback_possible(state, g, snap)
    check_lock(g)
    g["config"] = snapshots.applied(g.get("config") or {}, snaps[snap], snap)
    resumed = g["type"] == "qemu" and bool(snaps[snap].get("vmstate"))
    g["status"] = "running" if resumed else "stopped"
    g["rolled_back_to"] = snap
    state.save_guest(g)
    if kv.get("start") in ("1", "true") and not resumed:
        start(state, g)


def qm(state, argv):
    if not argv:
        raise SimError("ERROR: no command specified")
    cmd, rest = argv[0], argv[1:]
    if cmd == "guest" and rest[:1] == ["cmd"]:
        pos, _ = opts(rest[1:])
        g = need_guest(state, pos[0], "qemu")
        if g.get("status") != "running" or str((g.get("config") or {}).get("agent", "0")).split(",")[0] not in ("1", "enabled=1"):
            raise SimError("QEMU guest agent is not running")
        if g.get("agent_broken"):
            raise SimError("QEMU guest agent is not running")
        return 0
    if cmd == "disk" and rest[:1] == ["move"]:
        return disk_move(state, rest[1:])
    if cmd in snapshots.COMMANDS:
        return snapshots.run(state, "qemu", cmd, rest, need_guest)
    return common(state, "qemu", cmd, rest)


def disk_move(state, rest):
    """qemu-server `src/PVE/API2/Qemu.pm` `move_vm_disk`: `qm disk move VMID DISK STORAGE`
    copies the disk to a new volume on STORAGE and points DISK at it; without `--delete 1`
    the old volume stays as `unusedN` (`add_unused_volume`), with it it is freed."""
    pos, kv = opts(rest)
    if len(pos) < 3:
        raise SimError("400 not enough arguments\nqm disk move <vmid> <disk> <storage> [OPTIONS]")
    g = need_guest(state, pos[0], "qemu")
    check_lock(g)
    conf = g.setdefault("config", {})
    if pos[1] not in conf:
        raise SimError("disk '%s' does not exist" % pos[1])
    s = state.storage(pos[2])
    if s is None or not state.storage_on_node(s, state.local_node) or s.get("disable"):
        raise SimError("storage '%s' is not available on node '%s'" % (pos[2], state.local_node))
    old, rest_opts = str(conf[pos[1]]).split(",")[0], str(conf[pos[1]]).split(",")[1:]
    new = volumes.alloc(state, pos[2], pos[0], {old})
    volumes.write(state, new, volumes.read(state, old) or "")
    volumes.set_size(state, new, volumes.size_of(state, old))
    conf[pos[1]] = ",".join([new] + rest_opts)
    if kv.get("delete") == "1":
        volumes.free(state, old)
    else:
        n = 0
        while "unused%d" % n in conf:
            n += 1
        conf["unused%d" % n] = old
    state.save_guest(g)
    return 0


def pct(state, argv):
    if not argv:
        raise SimError("ERROR: no command specified")
    cmd, rest = argv[0], argv[1:]
    if cmd == "restore":
        pos, kv = opts(rest)
        if pos[1:2] == ["-"] and "rootfs" not in kv:
            # pve-container `src/PVE/API2/LXC.pm` `create_vm`.
            raise SimError("restore from pipe requires rootfs parameter")
        return restore(state, "lxc", pos[0], pos[1], kv)
    if cmd == "exec":
        vmid = rest[0]
        g = need_guest(state, vmid, "lxc")
        if g.get("status") != "running":
            raise SimError("CT %s not running" % vmid)
        return 0
    if cmd in snapshots.COMMANDS:
        return snapshots.run(state, "lxc", cmd, rest, need_guest)
    return common(state, "lxc", cmd, rest)


def common(state, gtype, cmd, rest):
    """The subcommands qm and pct share: status, config, start, stop, set, destroy, rollback."""
    pos, kv = opts(rest)
    if not pos:
        raise SimError("400 not enough arguments")
    g = need_guest(state, pos[0], gtype)
    if cmd == "status":
        sys.stdout.write("status: %s\n" % g.get("status", "stopped"))
    elif cmd == "config":
        print_config(g)
    elif cmd == "start":
        start(state, g)
    elif cmd in ("stop", "shutdown"):
        stop(state, g, kv)
    elif cmd == "set":
        # qemu-server and pve-container (API2/LXC/Config.pm update_vm) both check the lock.
        if "skiplock" not in kv:
            check_lock(g)
        set_options(g, kv)
        state.save_guest(g)
    elif cmd == "destroy":
        destroy(state, g, kv)
    elif cmd == "rollback":
        rollback(state, g, pos[1] if len(pos) > 1 else "", kv)
    else:
        raise SimError("ERROR: unknown command '%s %s'" % ("qm" if gtype == "qemu" else "pct", cmd))
    return 0


def volid_storage(state, volid):
    """A volume ID's storage id, volume name and storage (pve-storage `Storage.pm`
    `parse_volume_id`, then `storage_config`), refused as Proxmox words it."""
    if ":" not in volid:
        raise SimError("unable to parse volume ID '%s'" % volid)
    sid, volname = volid.split(":", 1)
    s = state.storage(sid)
    if s is None:
        raise SimError("storage '%s' does not exist" % sid)
    return sid, volname, s


def archive_path(state, archive):
    if archive.startswith("/"):
        return names.node_path(state, archive, state.local_node)
    sid, volname, s = volid_storage(state, archive)
    # qemu-server `API2/Qemu.pm` `$classify_restore_archive` (and pve-container's restore)
    # take the archive's path through pve-storage `Storage.pm` `abs_filesystem_path` ->
    # `activate_volumes` -> `activate_storage` -> `storage_check_enabled` /
    # `storage_check_node`: a storage disabled, or not in `nodes` of this node, is refused.
    if s.get("disable"):
        raise SimError("storage '%s' is disabled" % sid)
    if not state.storage_on_node(s, state.local_node):
        raise SimError("storage '%s' is not available on node '%s'" % (sid, state.local_node))
    if s["type"] != "dir" or not volname.startswith("backup/"):
        raise SimError("unable to parse directory volume name '%s'" % volname)
    p = os.path.join(names.dump_dir(s, state, state.local_node), volname[len("backup/"):])
    if not os.path.isfile(p):
        raise SimError("volume '%s' does not exist" % archive)
    return p


@contextlib.contextmanager
def decompressing(path):
    """The archive's uncompressed bytes as a stream, in bounded memory whatever its size
    (as qemu-server pipes `zstd -q -d -c FILE` into `vma extract`); a failed decompressor
    raises CalledProcessError once its output was read to the end."""
    if path.endswith(".gz") or path.endswith(".tgz"):
        with gzip.open(path, "rb") as f:
            yield f
        return
    tool = {".zst": ["zstd", "-q", "-d", "-c"], ".lzo": ["lzop", "-d", "-c"]}.get(os.path.splitext(path)[1])
    if tool is None:
        with open(path, "rb") as f:
            yield f
        return
    p = subprocess.Popen(tool + ["--", path], stdout=subprocess.PIPE)
    try:
        yield p.stdout
    except BaseException:
        p.kill()
        p.wait()
        raise
    p.stdout.close()
    if p.wait():
        raise subprocess.CalledProcessError(p.returncode, tool)


# The head of a VMA kept to read its config (the header and its blobs fit in it).
VMA_HEAD = 16 << 20


def scan(path):
    """(the head of the uncompressed archive, data_id of all of it), read once."""
    with decompressing(path) as f:
        r = pipe.Digest(f)
        head = r.read(VMA_HEAD)
        r.drain()
    return head, r.data_id()


def config_text(raw, gtype, path):
    """The guest config inside the head of an archive (a VMA) or the whole of it (a tar)."""
    if gtype == "qemu":
        if raw[:4] != b"VMA\0":
            raise SimError("unable to read archive '%s' - not a VMA file" % path)
        off = struct.unpack(">I", raw[48:52])[0]
        p = struct.unpack(">I", raw[3068:3072])[0]
        ln = struct.unpack("<H", raw[off + p:off + p + 2])[0]
        return raw[off + p + 2:off + p + 2 + ln].decode()
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        return tf.extractfile("./etc/vzdump/pct.conf").read().decode()


def archive_config(path, gtype):
    """The guest config inside a real archive, as a dict."""
    return pipe.parse_conf(archive_config_text(path, gtype))


def archive_config_and_id(path, gtype):
    """The guest config's text inside a real archive and the archive's data_id."""
    try:
        if gtype == "qemu":
            head, digest = scan(path)
        else:
            # A container's tar is read whole (the simulator's are small).
            with decompressing(path) as f:
                head = f.read()
            digest = pipe.data_id(head)
    except subprocess.CalledProcessError:
        raise SimError("unable to read archive '%s' - decompression failed" % path)
    return config_text(head, gtype, path), digest


def archive_config_text(path, gtype):
    """The guest config inside a real archive, as `pvesm extractconfig` prints it."""
    return archive_config_and_id(path, gtype)[0]


def pvesm_path(state, volid):
    """`pvesm path VOLID` (pve-storage src/PVE/CLI/pvesm.pm `path` -> PVE::Storage::path ->
    Plugin.pm `filesystem_path`: the storage's backup subdir plus the name; the file need
    not exist)."""
    _, volname, s = volid_storage(state, volid)
    if s["type"] != "dir" or not volname.startswith("backup/") or "/" in volname[len("backup/"):]:
        raise SimError("unable to parse directory volume name '%s'" % volname)
    sys.stdout.write(os.path.join(names.dump_dir(s), volname[len("backup/"):]) + "\n")
    return 0


def pvesm(state, argv):
    """`pvesm extractconfig VOLID` (pve-storage src/PVE/CLI/pvesm.pm `extractconfig`:
    `extract_vzdump_config`, printed with a newline), `pvesm path VOLID`."""
    if len(argv) == 2 and argv[0] == "path":
        return pvesm_path(state, argv[1])
    if len(argv) != 2 or argv[0] != "extractconfig":
        raise SimError("pvesim: only `pvesm extractconfig VOLID` and `pvesm path VOLID` are simulated")
    volid = argv[1]
    base = os.path.basename(volid.split(":", 1)[-1])
    info = names.archive_info(base)
    if not info:
        raise SimError("unable to parse volume ID '%s'" % volid)
    gtype = "qemu" if "qemu" in base else "lxc"
    sys.stdout.write(archive_config_text(archive_path(state, volid), gtype) + "\n")
    return 0


def ct_volumes_given(kv):
    """`pct restore` given `--rootfs`/`--mpN`: each volume where the call says."""
    return any(k == "rootfs" or re.fullmatch(r"mp\d+", k) for k in kv)


def ct_restore_storage(state, kv):
    """pct restore puts every volume on --storage, default `local` (pve-container
    src/PVE/API2/LXC.pm create_vm: `extract_param($param, 'storage') // 'local'`), which
    must hold container directories (`$check_and_activate_storage`: `rootdir` content)."""
    sid = kv.get("storage") or "local"
    s = state.storage(sid)
    if s is None:
        raise SimError("storage '%s' does not exist" % sid)
    if "rootdir" not in (s.get("content") or "").split(","):
        raise SimError("400 Parameter verification failed.\nstorage: storage '%s' does not support container directories\npct restore <vmid> <ostemplate> [OPTIONS]" % sid)
    return sid


def ct_restore_mapped(state, vmid, old, conf, kv, archive):
    """pve-container `src/PVE/API2/LXC.pm` `create_vm` with `rootfs`/`mpN` given: no
    storage-only mode; mount points without `rootfs` abort; each `STORAGE:SIZE` (GiB)
    becomes a new volume there (`$check_and_activate_storage`: the storage enabled on the
    node, `rootdir` content), a path stays as given; `src/PVE/LXC/Create.pm`
    `sanitize_and_merge_config` recovers no `mpN` from the backup, so mount points not
    passed are dropped, and a given `netN` wins over the backup's."""
    if "rootfs" not in kv:
        raise SimError("mount points configured, but 'rootfs' not set - aborting")
    for k in [k for k in conf if re.fullmatch(r"mp\d+", k) or k.startswith("unused")]:
        del conf[k]
    taken = {v for _, v, _ in volumes.ct_volumes(old or {})}
    for k in sorted(kv):
        if re.fullmatch(r"net\d+", k):
            conf[k] = kv[k]
        if not (k == "rootfs" or re.fullmatch(r"mp\d+", k)):
            continue
        first, _, rest = kv[k].partition(",")
        m = re.fullmatch(r"([^:\s]+):(\d+)", first)
        if not m:
            conf[k] = kv[k]
            continue
        s = state.storage(m.group(1))
        if s is None or s.get("disable") or not state.storage_on_node(s, state.local_node):
            raise SimError("storage '%s' is not available on node '%s'" % (m.group(1), state.local_node))
        if "rootdir" not in (s.get("content") or "").split(","):
            raise SimError("storage '%s' does not support container directories" % m.group(1))
        new = volumes.alloc(state, m.group(1), vmid, taken)
        taken.add(new)
        volumes.write(state, new, "restored from %s (%s)\n" % (archive, k))
        conf[k] = ",".join([new] + [p for p in rest.split(",") if p] + ["size=%sG" % m.group(2)])
    if old:
        for _, vol, _ in volumes.ct_volumes(old):
            if volumes.owner(vol) == int(vmid):
                volumes.free(state, vol)


def restore(state, gtype, vmid, archive, kv):
    force = kv.get("force") == "1"
    existing = state.guest(vmid)
    if existing is not None and existing.get("node") != state.local_node:
        # pve-cluster check_vmid_unused: the VMID belongs to a guest of another node.
        raise SimError("unable to restore %s %s - %s %s already exists on node '%s'" % (
            kind_word(gtype), vmid, kind_word(existing["type"]), vmid, existing.get("node")))
    if existing is not None and not force:
        if gtype == "qemu":
            raise SimError("unable to restore VM %s - %s %s already exists on node '%s'" % (
                vmid, kind_word(existing["type"]), vmid, existing.get("node")))
        raise SimError("%s %s already exists on node '%s'" % (kind_word(existing["type"]), vmid, existing.get("node")))
    if existing is not None:
        if existing["type"] != gtype:
            raise SimError("unable to restore %s %s - guest type mismatch" % (kind_word(gtype), vmid))
        if existing.get("lock"):
            raise SimError("unable to restore %s %s - %s is locked (%s)" % (kind_word(gtype), vmid, kind_word(gtype), existing["lock"]))
        if str((existing.get("config") or {}).get("protection", "0")) == "1":
            # pve-guest-common AbstractConfig.pm check_protection, called by qemu-server
            # API2/Qemu.pm (restore: $emsg "unable to restore VM N -") and pve-container
            # API2/LXC.pm ("unable to restore CT N").
            if gtype == "qemu":
                raise SimError("unable to restore VM %s - - protection mode enabled" % vmid)
            raise SimError("unable to restore CT %s - protection mode enabled" % vmid)
        if existing.get("status") == "running":
            if gtype == "qemu":
                raise SimError("unable to restore VM %s - vm is running" % vmid)
            raise SimError("can't overwrite running container")
    old = (existing or {}).get("config") or {}
    if archive == "-":
        conf = pipe_restore(state, gtype, vmid, existing, old, kv)
    else:
        conf = file_restore(state, gtype, vmid, existing, old, archive, kv)
        if gtype == "lxc" and not ct_volumes_given(kv):
            kv = dict(kv, storage=ct_restore_storage(state, kv))
    g = {"vmid": int(vmid), "type": gtype, "node": state.local_node,
         "name": conf.get("name") or conf.get("hostname") or ("VM %s" % vmid),
         "status": "stopped", "config": conf, "restored_from": archive}
    # No "snapshots": a restore over a guest drops every one of them (qemu-server
    # `$restore_cleanup_oldconf`: "after the restore we have no snapshots anymore";
    # pve-container `destroy_lxc_container` frees the volumes and writes a new config).
    if (existing or {}).get("pool"):
        # Pool membership is in user.cfg, not in the guest's config: a restore over the
        # guest keeps it (qemu-server `src/PVE/QemuServer.pm` `restore_vma_archive` and
        # pve-container `src/PVE/API2/LXC.pm` `create_vm` only call pve-access-control
        # `AccessControl.pm` `add_vm_to_pool` with `--pool`; only the destroy APIs call
        # `remove_vm_access`).
        g["pool"] = existing["pool"]
    if kv.get("pool"):
        g["pool"] = kv["pool"]
    if str(conf.get("template", "0")) == "1":
        # qemu-server API2/Qemu.pm create_vm ("Convert restored VM to template"), pve-container
        # API2/LXC.pm create_vm ($was_template): a template's backup comes back a template.
        g["template"] = 1
    if kv.get("unique") == "1":
        g["unique"] = True
    if kv.get("storage"):
        g["restored_to_storage"] = kv["storage"]
    state.save_guest(g)
    if kv.get("start") == "1":
        g["status"] = "running"
        state.save_guest(g)
    sys.stdout.write("rescan volumes...\n")
    return 0


def file_restore(state, gtype, vmid, existing, old, archive, kv):
    path = archive_path(state, archive)
    text, digest = archive_config_and_id(path, gtype)
    conf = pipe.parse_conf(text)
    label = "data " + digest
    if gtype == "lxc" and ct_volumes_given(kv):
        ct_restore_mapped(state, vmid, old, conf, kv, label)
        sys.stdout.write("extracting archive '%s'\n" % path)
        ct_defaults(conf, vmid)
    elif gtype == "lxc":
        sid = ct_restore_storage(state, kv)
        volumes.ct_restore(state, vmid, old, conf, sid, label)
        sys.stdout.write("extracting archive '%s'\n" % path)
        ct_defaults(conf, vmid)
    else:
        if existing is None:
            qemu_new_config(state, vmid)
        sys.stdout.write("restore vma archive: zstd -q -d -c %s | vma extract -v -r /var/tmp/vzdumptmp%d.fifo - /var/tmp/vzdumptmp%d\n" % (path, os.getpid(), os.getpid()))
        qemu_storage_fault(state, vmid, old, conf, kv.get("storage"))
        qemu_data_fault(state, vmid, old, conf)
        volumes.qemu_restore(state, vmid, old, conf, kv.get("storage"), label)
    return conf


def pipe_restore(state, gtype, vmid, existing, old, kv):
    """The archive on stdin (tests/sim/pvesim/pipe.py)."""
    if gtype == "lxc":
        raw = pipe.read_stdin()
        return ct_pipe_restore(state, vmid, existing, old, raw, "data " + pipe.data_id(raw), kv)
    head_err, text, data_err, digest = pipe.vma_stream(sys.stdin.buffer)
    label = "data " + digest
    if existing is None:
        qemu_new_config(state, vmid)
    sys.stdout.write("restore vma archive: vma extract -v -r /var/tmp/vzdumptmp%d.fifo - /var/tmp/vzdumptmp%d\n" % (os.getpid(), os.getpid()))
    if head_err:
        # Before `print_devmap`: nothing of an existing VM was touched yet.
        qemu_data_failed(state, vmid, {}, {}, head_err)
    conf = pipe.parse_conf(text)
    if data_err:
        qemu_data_failed(state, vmid, old, conf, data_err)
    volumes.qemu_restore(state, vmid, old, conf, kv.get("storage"), label)
    return conf


# `pct restore` options that are no config keys.
CT_CALL_ONLY = {"storage", "force", "unique", "pool", "start", "restore", "ignore-unpack-errors",
                "bwlimit", "ha-managed"}


def ct_pipe_restore(state, vmid, existing, old, raw, label, kv):
    """pve-container `src/PVE/API2/LXC.pm` `create_vm` with `-`: no config is recovered
    before the extraction, so mount points and `unprivileged` are the call's; the disks
    given are created, the old CT's volumes destroyed, then `tar xpf -` extracts; on error
    the new disks and the config are destroyed (`$destroy_config_on_error`, set before
    `create_disks`). After it `restore_configuration_from_etc_vzdump` merges the archive's
    `pct.conf` (`sanitize_and_merge_config`: never its mount points, `unprivileged`,
    `template`)."""
    taken = {v for _, v, _ in volumes.ct_volumes(old or {})}
    given = pipe.ct_given_volumes(state, vmid, kv, taken)
    if old:
        for _, vol, _ in volumes.ct_volumes(old):
            if volumes.owner(vol) == int(vmid):
                volumes.free(state, vol)
    sys.stdout.write("extracting archive from STDIN\n")
    try:
        text = pipe.ct_members(raw)
    except SimError as e:
        for new, _ in given.values():
            if new:
                volumes.free(state, new)
        try:
            os.unlink(state.path("guests", "%s.json" % vmid))
        except FileNotFoundError:
            pass
        raise SimError("unable to restore CT %s - %s" % (vmid, e.message))
    conf = {k: v for k, v in kv.items() if k not in CT_CALL_ONLY and k not in given}
    for k, (new, value) in given.items():
        conf[k] = value
        _, o = volumes.options(value)
        if new and volumes.ct_backed_up(k, o):
            volumes.write(state, new, "restored %s (%s)\n" % (label, k))
        elif new:
            volumes.write(state, new, "")
    sys.stdout.write("merging backed-up and given configuration..\n")
    for k, v in pipe.parse_conf(text or "").items():
        if not pipe.CT_NOT_MERGED.fullmatch(k) and k not in conf:
            conf[k] = v
    ct_defaults(conf, vmid)
    return conf


def ct_defaults(conf, vmid):
    """pve-container `src/PVE/API2/LXC.pm` `create_vm`, after any restore: `hostname ||=
    CT<vmid>`, `memory ||= 512`, `swap //= 512`."""
    conf.setdefault("hostname", "CT%s" % vmid)
    conf.setdefault("memory", "512")
    conf.setdefault("swap", "512")


def qemu_new_config(state, vmid):
    """qemu-server `src/PVE/API2/Qemu.pm` `create_vm`: `create_and_lock_config` writes the
    new VM's config (`lock: create`) before the worker restores anything."""
    state.save_guest({"vmid": int(vmid), "type": "qemu", "node": state.local_node,
                      "name": None, "status": "stopped", "config": {}, "lock": "create"})


def qemu_data_fault(state, vmid, old, conf):
    """A fault matching `qmrestore-data <vmid>` fails the data restore inside the worker.
    qemu-server `create_vm` (restore branch) then only removes the `create` lock and warns
    that the state is NOT cleaned up: the VM's config stays (for a new VMID an empty one),
    and `restore_vma_archive` has freed the volumes it allocated. pve-container's
    `create_vm` instead destroys a new CT's config on error (`$destroy_config_on_error`).
    Over an existing VM (`--force`), `restore_vma_archive` has already replaced its config
    by `memory: 128` ("create empty/temp config") and `$restore_cleanup_oldconf` has freed
    the old disks the archive brings back, and its snapshots: the old VM is gone."""
    try:
        state.check_faults("qmrestore-data", [str(vmid)])
    except SimError as e:
        qemu_data_failed(state, vmid, old, conf, e.message, e.status)


def qemu_storage_fault(state, vmid, old, conf, storage):
    """qemu-server `src/PVE/QemuServer.pm` `$parse_backup_hints`, in the restore worker (the
    new VM's config already written): each disk's storage (`--storage` or its own) must be in
    storage.cfg (`storage_config`: `storage 'X' does not exist`) and allow `images`; then
    `restore_vma_archive` writes the disks, and a storage without room for them fails the
    write halfway (Proxmox does not check space first on thin or file storages). The room is
    the storage's written `avail` less what restores and moves allocated on it since
    (`volumes.taken`): two restores staged on one storage at once overfill it together."""
    need = {}
    for k, vol, kv in volumes.qemu_drives(conf):
        if "backup" in kv and not volumes.truthy(kv["backup"]):
            continue
        sid = storage or vol.split(":", 1)[0]
        s = state.storage(sid)
        if s is None:
            qemu_data_failed(state, vmid, old, conf, "storage '%s' does not exist" % sid)
        if "images" not in (s.get("content") or "").split(","):
            qemu_data_failed(state, vmid, old, conf,
                             "Content type 'images' is not available on storage '%s'" % sid)
        need[sid] = need.get(sid, 0) + size_bytes(kv.get("size", "0"))
    for sid, n in sorted(need.items()):
        avail = ((state.storage(sid) or {}).get("status") or {}).get("avail")
        if avail is not None and n > int(avail) - volumes.taken(state, sid):
            qemu_data_failed(state, vmid, old, conf,
                             "vma: restore failed - write to storage '%s' failed: No space left on device" % sid)


size_bytes = volumes.size_bytes


def qemu_data_failed(state, vmid, old, conf, message, status=255):
    """The data restore failed: what `create_vm` and `restore_vma_archive` leave (see
    `qemu_data_fault`); `old` empty when it failed before touching an existing VM."""
    g = state.guest(vmid)
    if g is not None:
        g.pop("lock", None)
        if old:
            restored = {k for k, _, _ in volumes.qemu_drives(conf)}
            for k, vol, _ in volumes.qemu_drives(old):
                if k in restored and volumes.owner(vol) == int(vmid):
                    volumes.free(state, vol)
            g["config"] = {"memory": "128"}
            g.pop("snapshots", None)
        state.save_guest(g)
    sys.stderr.write("error before or during data restore, some or all disks were not "
                     "completely restored. VM %s state is NOT cleaned up.\n" % vmid)
    raise SimError(message, status)


def qmrestore(state, argv):
    pos, kv = opts(argv)
    if len(pos) < 2:
        raise SimError("400 not enough arguments\nqmrestore <archive> <vmid> [OPTIONS]")
    archive, vmid = pos[0], pos[1]
    if not re.fullmatch(r"[1-9][0-9]{2,8}", vmid):
        raise SimError("400 Parameter verification failed.\nvmid: invalid format - value does not look like a valid VM ID")
    base = os.path.basename(archive.split(":", 1)[-1])
    # qemu-server `restore_file_archive`: `-` goes to `restore_vma_archive` unnamed.
    if archive != "-" and not names.archive_info(base):
        raise SimError("ERROR: couldn't determine archive info from '%s'" % archive)
    return restore(state, "qemu", vmid, archive, kv)


def job_errors():
    """How the vzdump CLI ends a run with failed guests: the worker's log (INFO/ERROR lines)
    on stdout, its `die "job errors\n"` (pve-manager PVE/VZDump.pm exec_backup) printed by
    pve-common RESTEnvironment.pm tee_worker on stderr without `TASK ERROR:`, and exit -1
    (255) from PVE/CLI/vzdump.pm, which reads the task's status."""
    sys.stdout.write("INFO: Backup job finished with errors\n")
    sys.stdout.flush()
    sys.stderr.write("job errors\n")
    return 255


LOCKFILE = "/var/run/vzdump.lock"


def lock_holder(state):
    """The node's vzdump lock is held while a vzdump task of this node runs (one without a
    status in tasks/<node>.json) other than the one running this command (an API worker's,
    `PVESIM_UPID`)."""
    own = os.environ.get("PVESIM_UPID")
    for t in state.load(os.path.join("tasks", state.local_node + ".json"), []):
        if t.get("type") == "vzdump" and "status" not in t and t.get("upid") != own:
            return t
    return None


def global_lock(state, kv):
    """pve-manager `PVE/VZDump.pm` `getlock`, called by the worker of `PVE/API2/VZDump.pm`
    `vzdump` before any guest: one vzdump per node (flock on /var/run/vzdump.lock). A busy
    lock is waited for `lockwait` minutes (pve-guest-common `src/PVE/VZDump/Common.pm`:
    default 180); `lockwait 0` (`0 || $self->{lockwait}`, never set: no wait) fails at
    once. `debugmsg` lines reach stdout (the CLI's worker tees its STDERR there, see above),
    the error stderr. A simulated minute lasts `minute` seconds
    of `sim.json` (default 60), so tests can wait the three hours in a second."""
    if lock_holder(state) is None:
        return
    try:
        wait = int(kv.get("lockwait", "180"))
    except ValueError:
        raise SimError("400 Parameter verification failed.\nlockwait: type check ('integer') failed")
    if wait <= 0:
        sys.stdout.write("ERROR: can't acquire lock '%s' (wait = 0)\n" % LOCKFILE)
        raise SimError("can't acquire lock '%s' (wait = 0)" % LOCKFILE)
    sys.stdout.write("INFO: trying to get global lock - waiting...\n")
    sys.stdout.flush()
    minute = float((state.load("sim.json", {}) or {}).get("minute", 60))
    deadline = time.time() + wait * minute
    while lock_holder(state) is not None:
        if time.time() >= deadline:
            sys.stdout.write("ERROR: can't acquire lock '%s' - got timeout\n" % LOCKFILE)
            raise SimError("can't acquire lock '%s' - got timeout" % LOCKFILE)
        time.sleep(min(0.1, max(0.0, deadline - time.time())))
    sys.stdout.write("INFO: got global lock\n")


def vzdump(state, argv):
    pos, kv = opts(argv)
    if not pos:
        raise SimError("400 not enough arguments")
    vmid = pos[0]
    g = state.guest(vmid)
    if g is None:
        raise SimError("unable to find VM '%s'" % vmid)
    if g.get("node") != state.local_node:
        # vzdump backs up the guests of this node only: another node's is skipped silently.
        return 0
    sid = kv.get("storage", "local")
    s = state.storage(sid)
    if s is None:
        raise SimError("storage '%s' does not exist" % sid)
    global_lock(state, kv)
    now = int(time.time())
    stamp = time.strftime("%Y_%m_%d-%H_%M_%S", time.localtime(now))
    sys.stdout.write("INFO: starting new backup job: vzdump %s\n" % " ".join(argv))
    sys.stdout.write("INFO: Starting Backup of VM %s (%s)\n" % (vmid, g["type"]))
    if g.get("lock"):
        sys.stdout.write("ERROR: Backup of VM %s failed - %s is locked (%s)\n" % (vmid, kind_word(g["type"]), g["lock"]))
        return job_errors()
    # pve-manager PVE/VZDump.pm: vm_is_ha_managed($vmid, 'started'), the requested state.
    if kv.get("mode") == "stop" and ha_requested(g) == "started":
        # pve-manager PVE/VZDump.pm: stop mode refused for an HA-managed, started service.
        sys.stdout.write("ERROR: Backup of VM %s failed - Cannot execute a backup with stop mode on a HA managed and enabled Service. Use snapshot mode or disable the Service.\n" % vmid)
        return job_errors()
    if s["type"] == "pbs":
        return vzdump_pbs(state, s, g, vmid, kv, now)
    compress = kv.get("compress", "0")
    ext = {"zstd": ".zst", "gzip": ".gz", "lzo": ".lzo", "1": ".lzo"}.get(compress, "")
    base = "vma" if g["type"] == "qemu" else "tar"
    fname = "vzdump-%s-%s-%s.%s%s" % (g["type"], vmid, stamp, base, ext)
    d = names.dump_dir(s, state, state.local_node)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, fname)
    sys.stdout.write("INFO: creating vzdump archive '%s'\n" % os.path.join(names.dump_dir(s), fname))
    meth = {".zst": "zstd", ".gz": "gzip", ".lzo": "lzo", "": "none"}[ext]
    data = archives.archive_bytes(g["type"], int(vmid), g.get("name") or "guest", 64, seed=now, compression=meth)
    with open(path, "wb") as f:
        f.write(data)
    tmpl = kv.get("notes-template")
    if tmpl:
        notes = tmpl.replace("{{guestname}}", g.get("name") or "").replace("{{vmid}}", str(vmid)).replace(
            "{{node}}", state.local_node).replace("{{cluster}}", state.cluster.get("cluster") or "standalone node")
        notes = notes.replace("\\n", "\n")
        with open(path + ".notes", "w", encoding="utf-8") as f:
            f.write(notes)
        sys.stdout.write("INFO: adding notes to backup\n")
    if kv.get("protected") == "1":
        open(path + ".protected", "w").close()
    archives.write_log(os.path.join(d, fname.split(".")[0] + ".log"), g["type"], int(vmid), g.get("name") or "", now, path)
    # Retention: the job's/CLI's, else the storage's (which may delete old archives).
    prune = kv.get("prune-backups") or s.get("prune-backups")
    if prune and "keep-all=1" not in prune:
        m = re.search(r"keep-last=(\d+)", prune)
        if m:
            keep = int(m.group(1))
            mine = sorted([f for f in os.listdir(d) if re.match(r"vzdump-%s-%s-\d{4}_" % (g["type"], vmid), f)
                           and names.LISTED_RE.match(f) and not os.path.exists(os.path.join(d, f + ".protected"))], reverse=True)
            for old in mine[keep:]:
                os.unlink(os.path.join(d, old))
                sys.stdout.write("INFO: removing backup '%s:backup/%s'\n" % (sid, old))
    sys.stdout.write("INFO: Finished Backup of VM %s (00:00:03)\n" % vmid)
    sys.stdout.write("INFO: Backup job finished successfully\n")
    return 0


def vzdump_pbs(state, s, g, vmid, kv, now):
    """vzdump to a PBS storage: a snapshot in the datastore, named as pve-manager's
    PVE/VZDump/QemuServer.pm and pve-container's PVE/VZDump/LXC.pm print it
    ("creating Proxmox Backup Server archive 'vm/100/2026-12-01T02:00:02Z'", UTC)."""
    btype = "vm" if g["type"] == "qemu" else "ct"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    sys.stdout.write("INFO: creating Proxmox Backup Server archive '%s/%s/%s'\n" % (btype, vmid, stamp))
    rel = os.path.join("pbs", s["storage"] + ".json")
    snaps = state.load(rel, [])
    snap = {"backup-type": btype, "backup-id": str(vmid), "backup-time": now, "size": 4194304}
    tmpl = kv.get("notes-template")
    if tmpl:
        snap["comment"] = tmpl.replace("{{guestname}}", g.get("name") or "").replace("{{vmid}}", str(vmid))
    if kv.get("protected") == "1":
        snap["protected"] = True
    snaps.append(snap)
    state.save(rel, snaps)
    sys.stdout.write("INFO: Finished Backup of VM %s (00:00:03)\n" % vmid)
    sys.stdout.write("INFO: Backup job finished successfully\n")
    return 0
