"""`pvesim-api`: the simulated cluster's HTTPS front, playing `pveproxy` on one node.

Paths `/api2/json/...` answer Proxmox's envelope and errors as pve-http-server
`src/PVE/APIServer/AnyEvent.pm` and `Formatter/Standard.pm` send them, API tokens are
checked as pve-manager `PVE/HTTPServer.pm` `auth_handler` and pve-access-control
`AccessControl.pm` `verify_token` do, privileges as `RPCEnvironment.pm` `permissions`
computes them, and every path's check is the one its method definition states (the table
in docs/simulator.md, "REST API front").

GETs run the simulator's own `pvesh get`, worker methods its CLI commands in a background
thread, so the REST paths and the CLI act on the same node state.
"""

import argparse
import hashlib
import itertools
import json
import os
import re
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SIM_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
BIN = os.path.join(SIM_DIR, "bin")

# --- roles: pve-access-control src/PVE/AccessControl.pm $privgroups, create_roles ---------
PRIVGROUPS = {
    "VM": {"root": [], "admin": ["VM.Config.Disk", "VM.Config.CPU", "VM.Config.Memory", "VM.Config.Network",
                                 "VM.Config.HWType", "VM.Config.Options", "VM.Allocate", "VM.Clone",
                                 "VM.GuestAgent.Unrestricted", "VM.Migrate", "VM.Replicate", "VM.Snapshot",
                                 "VM.Snapshot.Rollback"],
           "user": ["VM.Config.CDROM", "VM.Config.Cloudinit", "VM.Console", "VM.Backup", "VM.GuestAgent.FileRead",
                    "VM.GuestAgent.FileSystemMgmt", "VM.GuestAgent.FileWrite", "VM.PowerMgmt"],
           "audit": ["VM.Audit", "VM.GuestAgent.Audit"]},
    "Sys": {"root": ["Sys.PowerMgmt", "Sys.Modify", "Sys.Incoming", "Sys.AccessNetwork"],
            "admin": ["Sys.Console", "Sys.Syslog"], "user": [], "audit": ["Sys.Audit"]},
    "Datastore": {"root": [], "admin": ["Datastore.Allocate", "Datastore.AllocateTemplate"],
                  "user": ["Datastore.AllocateSpace"], "audit": ["Datastore.Audit"]},
    "SDN": {"root": [], "admin": ["SDN.Allocate", "SDN.Audit"], "user": ["SDN.Use"], "audit": ["SDN.Audit"]},
    "User": {"root": ["Realm.Allocate"], "admin": ["User.Modify", "Group.Allocate", "Realm.AllocateUser"],
             "user": [], "audit": []},
    "Pool": {"root": [], "admin": ["Pool.Allocate"], "user": ["Pool.Audit"], "audit": ["Pool.Audit"]},
    "Mapping": {"root": [], "admin": ["Mapping.Modify"], "user": ["Mapping.Use"], "audit": ["Mapping.Audit"]},
}


def build_roles():
    valid = {"Permissions.Modify"}
    roles = {"NoAccess": set()}
    for cat, cd in PRIVGROUPS.items():
        valid.update(cd["root"] + cd["admin"] + cd["user"] + cd["audit"])
        for p in cd["admin"] + cd["user"] + cd["audit"]:
            roles.setdefault("PVE%sAdmin" % cat, set()).add(p)
            roles.setdefault("PVEAdmin", set()).add(p)
        if cd["user"]:
            for p in cd["user"] + cd["audit"]:
                roles.setdefault("PVE%sUser" % cat, set()).add(p)
        for p in cd["audit"]:
            roles.setdefault("PVEAuditor", set()).add(p)
    roles["PVEAdmin"].discard("Mapping.Modify")
    roles["PVETemplateUser"] = {"VM.Clone", "VM.Audit"}
    roles["Administrator"] = set(valid)
    return roles, valid


ROLES, VALID_PRIVS = build_roles()
TOKEN_RE = re.compile(r"^(([^\s:/]+)@([A-Za-z][A-Za-z0-9.\-_]+))!([A-Za-z][A-Za-z0-9.\-_]+)$")


class ApiError(Exception):
    """A PVE::Exception (code, msg, errors) or a plain die (500)."""

    def __init__(self, code, msg, errors=None, body=True):
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.errors = errors
        self.body = body


def perm_exc(what=None):
    # pve-common src/PVE/Exception.pm raise_perm_exc: 403, "Permission check failed[ (what)]\n".
    return ApiError(403, "Permission check failed" + (" (%s)" % what if what else "") + "\n")


def param_exc(errors):
    # pve-common src/PVE/Exception.pm raise_param_exc.
    return ApiError(400, "Parameter verification failed.\n", errors)


# --- tokens and permissions -----------------------------------------------------------
class Auth:
    def __init__(self, root):
        self.root = root

    def tokens(self):
        try:
            with open(os.path.join(self.root, "tokens.json"), encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return []

    def token(self, tokenid):
        for t in self.tokens():
            if t.get("tokenid") == tokenid:
                return t
        return None

    def verify(self, api_token):
        """AccessControl.pm verify_token; any failure is `Authentication failed!` (HTTPServer.pm)."""
        m = re.match(r"^(.*)=(.*)$", api_token or "")
        if not m:
            raise ApiError(401, "Authentication failed!\n", body=False)
        tokenid, secret = m.group(1), m.group(2)
        t = self.token(tokenid) if TOKEN_RE.match(tokenid) else None
        if t is None or t.get("secret") != secret:
            raise ApiError(401, "Authentication failed!\n", body=False)
        if t.get("expire") and int(t["expire"]) < time.time():
            raise ApiError(401, "Authentication failed!\n", body=False)
        return tokenid

    def permissions(self, user, path):
        """RPCEnvironment.pm permissions -> AccessControl.pm roles: walk "/" .. path; at each
        level the ACL entries there that apply (the final path, or propagate) replace what was
        found above; NoAccess wins at its level. Privilege -> propagate flag (1/0)."""
        if user == "root@pam":
            return {p: 1 for p in ROLES["Administrator"]}
        t = self.token(user)
        if t is None:
            return {}
        owner = TOKEN_RE.match(user).group(1)
        if owner == "root@pam" and str(t.get("privsep", 1)) in ("0", "false"):
            return {p: 1 for p in ROLES["Administrator"]}
        levels = ["/"]
        parts = [x for x in path.split("/") if x]
        for i in range(len(parts)):
            levels.append("/" + "/".join(parts[:i + 1]))
        roles = {}
        for i, lvl in enumerate(levels):
            final = i == len(levels) - 1
            new = None
            for e in t.get("acl", []):
                if norm_path(e.get("path", "/")) != lvl:
                    continue
                prop = 0 if str(e.get("propagate", 1)) in ("0", "false", "False") else 1
                if not (final or prop):
                    continue
                new = new if new is not None else {}
                for r in e.get("roles", []):
                    new[r] = prop
                if e.get("privs"):
                    new["\0custom:%s:%s" % (lvl, ",".join(e["privs"]))] = prop
            if new is not None:
                roles = new
        if "NoAccess" in roles:
            return {}
        privs = {}
        for r, prop in roles.items():
            if r.startswith("\0custom:"):
                # AccessControl.pm parse_user_config: "ignore invalid privilege" (a role
                # with PVE 8's VM.Monitor gives nothing for it in PVE 9).
                ps = [p for p in r.split(":", 2)[2].split(",") if p in VALID_PRIVS]
            else:
                ps = ROLES.get(r, set())
            for p in ps:
                privs[p] = privs.get(p, 0) or prop
        return privs

    def check(self, user, path, privs, noerr=False):
        """RPCEnvironment.pm check: every privilege; else `Permission check failed (PATH, PRIV)`."""
        perm = self.permissions(user, path)
        for p in privs:
            if p not in perm:
                if noerr:
                    return False
                raise perm_exc("%s, %s" % (path, p))
        return True

    def check_any(self, user, path, privs, noerr=False):
        perm = self.permissions(user, path)
        if any(p in perm for p in privs):
            return True
        if noerr:
            return False
        raise perm_exc("%s, %s" % (path, "|".join(privs)))

    def effective(self, user):
        """RPCEnvironment.pm get_effective_permissions: the default top paths and every ACL
        path, each with its privileges, paths without any left out."""
        paths = {"/", "/access", "/access/groups", "/nodes", "/pool", "/sdn", "/storage", "/vms"}
        t = self.token(user)
        for e in (t or {}).get("acl", []):
            paths.add(norm_path(e.get("path", "/")))
        out = {}
        for p in sorted(paths):
            perms = self.permissions(user, p)
            if perms:
                out[p] = perms
        return out


def norm_path(p):
    # AccessControl.pm normalize_path
    p = re.sub(r"/+", "/", p or "/").rstrip("/") or "/"
    return p if p.startswith("/") else "/" + p


# --- the simulated cluster -----------------------------------------------------------
class Cluster:
    def __init__(self, root, entry):
        self.root = root
        self.entry = entry
        self.lock = threading.Lock()
        self.counter = itertools.count(1)

    def load(self, rel, default):
        try:
            with open(os.path.join(self.root, rel), encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return default

    def save(self, rel, data):
        p = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p + ".tmp", "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(p + ".tmp", p)

    def nodes(self):
        return self.load("cluster.json", {}).get("nodes", [])

    def guest(self, vmid):
        return self.load(os.path.join("guests", "%s.json" % vmid), None)

    def drop_raw_lxc(self, vmid):
        rel = os.path.join("guests", "%s.json" % vmid)
        with self.lock:
            g = self.load(rel, None)
            if g is not None:
                g["config"] = {k: v for k, v in (g.get("config") or {}).items() if not k.startswith("lxc.")}
                self.save(rel, g)

    def guests(self):
        d = os.path.join(self.root, "guests")
        out = []
        for f in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            if f.endswith(".json"):
                out.append(self.load(os.path.join("guests", f), {}))
        return out

    def env(self, node):
        return dict(os.environ, PVESIM_ROOT=self.root, PVESIM_NODE=node,
                    PATH=BIN + ":" + os.environ.get("PATH", ""))

    def run(self, node, argv, upid=None):
        env = self.env(node)
        if upid:
            # The worker's own task (a vzdump must not wait for its own lock).
            env["PVESIM_UPID"] = upid
        p = subprocess.run([sys.executable, os.path.join(BIN, argv[0])] + argv[1:], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return p.returncode, p.stdout, p.stderr

    def log(self, entry):
        with self.lock:
            with open(os.path.join(self.root, "commands.log"), "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")

    def route_node(self, node):
        """pve-manager PVE/HTTPServer.pm rest_handler: proxyto a node other than this one ->
        pve-http-server AnyEvent.pm proxy_request; an unreachable node answers AnyEvent::HTTP's
        pseudo-status 595 with the connect error as reason. A name that is no cluster node
        fails in PVE::Cluster::remote_node_ip's host lookup."""
        if node == "localhost" or node == self.entry:
            return self.entry
        for n in self.nodes():
            if n["node"] == node:
                if n.get("status") != "online":
                    raise ApiError(595, "No route to host", body=False)
                return node
        raise ApiError(500, "hostname lookup '%s' failed - failed to get address info for: %s: "
                            "Name or service not known\n" % (node, node))

    # --- tasks ------------------------------------------------------------------
    def start_task(self, node, wtype, wid, user, argvs, log_filter=None, error_from_stderr=False):
        """pve-common RESTEnvironment.pm fork_worker: a UPID for `node` (pve-common UPID.pm
        format), the task in the node's list at once, its log and status when it ends."""
        n = next(self.counter)
        pid = 0x40000 + (os.getpid() % 0x10000) * 16 + n
        start = int(time.time())
        upid = "UPID:%s:%08X:%08X:%08X:%s:%s:%s:" % (node, pid, 0x1000000 + pid, start, wtype, wid, user)
        entry = {"id": wid, "node": node, "pid": pid, "pstart": 0x1000000 + pid, "starttime": start,
                 "type": wtype, "upid": upid, "user": user}
        if "!" in user:
            entry["user"], entry["tokenid"] = user.split("!", 1)
        rel = os.path.join("tasks", node + ".json")
        logp = os.path.join(self.root, "tasks", node, upid + ".log")
        with self.lock:
            items = self.load(rel, [])
            items.append(entry)
            self.save(rel, items)
            os.makedirs(os.path.dirname(logp), exist_ok=True)
            open(logp, "w").close()
        delay = float(os.environ.get("PVESIM_API_TASK_DELAY") or 0)

        def worker():
            if delay > 0:
                time.sleep(delay)
            lines, status = [], "OK"
            warnings = 0
            for argv in argvs:
                if argv[0] == "@fail":
                    status = argv[1]
                    break
                if argv[0] == "@warn":
                    # RESTEnvironment.pm warn: "WARN: " + the message on stderr, counted.
                    self.drop_raw_lxc(argv[1])
                    lines += ["WARN: " + argv[2]] + argv[3:]
                    warnings += 1
                    continue
                code, out, err = self.run(node, argv, upid)
                outl = [l for l in out.splitlines() if not (log_filter and log_filter(l))]
                errl = [l for l in err.splitlines() if l.strip()]
                lines += outl + errl
                if code != 0 or (error_from_stderr and errl):
                    status = errl[-1] if errl else "command '%s' failed: exit code %d" % (argv[0], code)
                    break
            if status == "OK" and warnings:
                # RESTEnvironment.pm fork_worker: the task ends "WARNINGS: N".
                status = "WARNINGS: %d" % warnings
            lines.append("TASK " + status if status == "OK" or status.startswith("WARNINGS") else "TASK ERROR: " + status)
            with self.lock:
                with open(logp, "w", encoding="utf-8") as f:
                    f.write("\n".join(lines) + "\n")
                if wtype in (os.environ.get("PVESIM_API_LOSE_LOG") or "").split(","):
                    # A fault: the log is gone (a full /var/log, cleaned up) once it ended.
                    os.remove(logp)
                items = self.load(rel, [])
                for it in items:
                    if it.get("upid") == upid:
                        it["status"] = status
                        it["endtime"] = int(time.time())
                self.save(rel, items)

        threading.Thread(target=worker, daemon=True).start()
        # Not Proxmox: a hostile or broken server answering something else as the task id.
        return os.environ.get("PVESIM_API_UPID") or upid


# --- parameters ------------------------------------------------------------------------
BOOL_TRUE = ("1", "true", "yes", "on")
BOOL_FALSE = ("0", "false", "no", "off")


def boolean(params, key):
    """pve-common JSONSchema.pm parse_boolean: 1/0, true/false, yes/no, on/off."""
    v = str(params[key]).lower()
    if v in BOOL_TRUE:
        return "1"
    if v in BOOL_FALSE:
        return "0"
    raise param_exc({key: "type check ('boolean') failed - got '%s'" % params[key]})


def check_params(params, allowed, booleans=(), required=(), extra=None):
    """JSONSchema.pm validate with additionalProperties => 0."""
    errors = {}
    for k in params:
        if k in allowed or k in booleans or (extra and extra.match(k)):
            continue
        errors[k] = "property is not defined in schema and the schema does not allow additional properties"
    for k in required:
        if k not in params:
            errors[k] = "property is missing and it is not optional"
    for k in booleans:
        if k in params:
            v = str(params[k]).lower()
            if v not in BOOL_TRUE + BOOL_FALSE:
                errors[k] = "type check ('boolean') failed - got '%s'" % params[k]
    if "vmid" in params and "vmid" in allowed and not re.fullmatch(r"[1-9][0-9]{2,8}", str(params["vmid"])):
        errors["vmid"] = "invalid format - value does not look like a valid VM ID"
    if errors:
        raise param_exc(errors)


def cli_opts(params, keys, booleans=()):
    out = []
    for k in keys:
        if k in params:
            out += ["--" + k, boolean(params, k) if k in booleans else str(params[k])]
    return out


def parse_volid(volid):
    """(storage, owner vmid or None) as pve-storage parse_volname gives them for a backup."""
    if ":" not in volid:
        return None, None
    sid, volname = volid.split(":", 1)
    m = re.match(r"^backup/vzdump-(openvz|lxc|qemu)-(\d+)-.+", volname)
    if m:
        return sid, int(m.group(2))
    m = re.match(r"^backup/(vm|ct)/(\d+)/", volname)
    if m:
        return sid, int(m.group(2))
    return sid, None


def check_volume_access(auth, user, volid, vmid=None):
    """pve-storage src/PVE/Storage.pm check_volume_access for a backup volume:
    Datastore.Allocate on the storage; or the caller's own guest; or
    Datastore.AllocateSpace on the storage plus VM.Backup on the owner."""
    sid, owner = parse_volid(volid)
    if sid is None:
        if user != "root@pam":
            raise ApiError(500, "Only root can pass arbitrary filesystem paths.")
        return
    if auth.check(user, "/storage/" + sid, ["Datastore.Allocate"], True):
        return
    if owner is not None and vmid is not None and int(owner) == int(vmid):
        return
    if owner is not None:
        auth.check(user, "/storage/" + sid, ["Datastore.AllocateSpace"])
        auth.check(user, "/vms/%d" % owner, ["VM.Backup"])
        return
    raise ApiError(500, "missing privileges to access %s\n" % volid)


# --- the routes ------------------------------------------------------------------------
NODE = r"([^/]+)"
VMID = r"([1-9][0-9]{2,8})"
GT = r"(qemu|lxc)"
CONFIG_KEY = re.compile(r"^[a-z][a-z0-9_\-]*$")

QM_CONFIG_PERMS = ["VM.Config.Disk", "VM.Config.CDROM", "VM.Config.CPU", "VM.Config.Memory", "VM.Config.Network",
                   "VM.Config.HWType", "VM.Config.Options", "VM.Config.Cloudinit"]
CT_CONFIG_PERMS = ["VM.Config.Disk", "VM.Config.CPU", "VM.Config.Memory", "VM.Config.Network", "VM.Config.Options"]

VZDUMP_PARAMS = ("vmid", "all", "exclude", "storage", "mode", "compress", "notes-template", "protected", "remove",
                 "prune-backups", "mailto", "mailnotification", "node", "zstd", "pigz", "stdexcludes",
                 "exclude-path", "quiet", "lockwait", "stopwait", "tmpdir", "dumpdir", "script", "bwlimit",
                 "ionice", "performance", "fleecing", "notification-mode", "pool", "job-id", "stop", "stdout",
                 "pbs-change-detection-mode", "maxfiles")


VZDUMP_BOOLS = ("all", "protected", "remove", "stdexcludes", "quiet", "stop", "stdout")


class Front:
    def __init__(self, root, entry):
        self.cluster = Cluster(root, entry)
        self.auth = Auth(root)
        self.entry = entry
        # (method, pattern, handler)
        self.routes = [
            ("GET", r"/cluster/status", self.get_cluster_status),
            ("GET", r"/cluster/resources", self.get_resources),
            ("GET", r"/cluster/ha/resources", self.get_ha_resources),
            ("GET", r"/cluster/backup", self.get_backup_jobs),
            ("GET", r"/cluster/backup-info/not-backed-up", self.get_not_backed_up),
            ("GET", r"/nodes", self.get_nodes),
            ("GET", r"/nodes/%s/time" % NODE, self.get_time),
            ("GET", r"/nodes/%s/network" % NODE, self.get_network),
            ("GET", r"/cluster/mapping/(pci|usb)", self.get_mapping),
            ("GET", r"/nodes/%s/capabilities/qemu/(cpu|machines)" % NODE, self.get_qemu_caps),
            ("GET", r"/nodes/%s/storage" % NODE, self.get_storage_index),
            ("GET", r"/nodes/%s/storage/([^/]+)/status" % NODE, self.get_storage_status),
            ("GET", r"/nodes/%s/storage/([^/]+)/content" % NODE, self.get_content),
            ("GET", r"/nodes/%s/storage/([^/]+)/content/(.+)" % NODE, self.get_volume),
            ("DELETE", r"/nodes/%s/storage/([^/]+)/content/(.+)" % NODE, self.delete_volume),
            ("GET", r"/nodes/%s/tasks" % NODE, self.get_tasks),
            ("GET", r"/nodes/%s/tasks/([^/]+)/status" % NODE, self.get_task_status),
            ("GET", r"/nodes/%s/tasks/([^/]+)/log" % NODE, self.get_task_log),
            ("GET", r"/nodes/%s/%s/%s/status/current" % (NODE, GT, VMID), self.get_guest_status),
            ("GET", r"/nodes/%s/%s/%s/config" % (NODE, GT, VMID), self.get_guest_config),
            ("PUT", r"/nodes/%s/%s/%s/config" % (NODE, GT, VMID), self.put_guest_config),
            ("POST", r"/nodes/%s/%s/%s/status/(start|stop|shutdown)" % (NODE, GT, VMID), self.post_power),
            ("GET", r"/nodes/%s/%s/%s/snapshot" % (NODE, GT, VMID), self.get_snapshots),
            ("POST", r"/nodes/%s/%s/%s/snapshot" % (NODE, GT, VMID), self.post_snapshot),
            ("DELETE", r"/nodes/%s/%s/%s/snapshot/([^/]+)" % (NODE, GT, VMID), self.delete_snapshot),
            ("POST", r"/nodes/%s/%s/%s/snapshot/([^/]+)/rollback" % (NODE, GT, VMID), self.post_rollback),
            ("DELETE", r"/nodes/%s/%s/%s" % (NODE, GT, VMID), self.delete_guest),
            ("POST", r"/nodes/%s/qemu/%s/agent/ping" % (NODE, VMID), self.post_agent_ping),
            ("POST", r"/nodes/%s/qemu/%s/move_disk" % (NODE, VMID), self.post_move_disk),
            ("POST", r"/nodes/%s/qemu" % NODE, self.post_qemu),
            ("POST", r"/nodes/%s/lxc" % NODE, self.post_lxc),
            ("POST", r"/nodes/%s/vzdump" % NODE, self.post_vzdump),
            ("GET", r"/nodes/%s/vzdump/extractconfig" % NODE, self.get_extractconfig),
            ("GET", r"/access/permissions", self.get_permissions),
            ("GET", r"/version", self.get_version),
        ]
        self.fingerprint = None

    def dispatch(self, method, rel, params, user):
        for meth, pattern, fn in self.routes:
            if meth != method:
                continue
            m = re.fullmatch(pattern, rel)
            if m:
                return fn(user, params, *m.groups())
        # pve-manager PVE/HTTPServer.pm rest_handler: no handler -> 501.
        raise ApiError(501, "Method '%s %s' not implemented" % (method, rel))

    # --- helpers --------------------------------------------------------------------
    def pvesh_get(self, path, params, node=None):
        argv = ["pvesh", "get", path]
        for k in sorted(params):
            argv += ["--" + k, str(params[k])]
        argv += ["--output-format", "json"]
        code, out, err = self.cluster.run(node or self.entry, argv)
        if code != 0:
            raise pvesh_error(err)
        return json.loads(out) if out.strip() else None

    def perm(self, user, path, privs, any_=False):
        if any_:
            return self.auth.check_any(user, path, privs)
        return self.auth.check(user, path, privs)

    def audited_get(self, user, params, privs, allowed, path):
        """A cluster-wide read: `privs` on `/`, only the `allowed` parameters."""
        self.perm(user, "/", privs)
        check_params(params, allowed)
        return self.pvesh_get(path, params)

    def node_of(self, node):
        return self.cluster.route_node(node)

    # --- /cluster, /nodes ------------------------------------------------------------
    def get_cluster_status(self, user, params):
        # pve-manager PVE/API2/Cluster.pm get_status: check perm / Sys.Audit.
        return self.audited_get(user, params, ["Sys.Audit"], (), "/cluster/status")

    def get_ha_resources(self, user, params):
        # pve-ha-manager src/PVE/API2/HA/Resources.pm index: check perm / Sys.Audit.
        return self.audited_get(user, params, ["Sys.Audit"], ("type",), "/cluster/ha/resources")

    def get_resources(self, user, params):
        # Cluster.pm resources: user => 'all'; guests need VM.Audit, storages Datastore.Audit,
        # node stats Sys.Audit on /nodes/<node>, a guest's pool Pool.Audit.
        check_params(params, ("type",))
        data = self.pvesh_get("/cluster/resources", params)
        out = []
        for e in data:
            if e.get("type") in ("qemu", "lxc"):
                if not self.auth.check(user, "/vms/%s" % e["vmid"], ["VM.Audit"], True):
                    continue
                if e.get("pool") and not self.auth.check(user, "/pool/%s" % e["pool"], ["Pool.Audit"], True):
                    e = {k: v for k, v in e.items() if k != "pool"}
            elif e.get("type") == "storage":
                if not self.auth.check(user, "/storage/%s" % e["storage"], ["Datastore.Audit"], True):
                    continue
            elif e.get("type") == "node":
                e = self.hide_node_stats(user, e)
            out.append(e)
        return out

    def hide_node_stats(self, user, e):
        # pve-manager PVE/API2Tools.pm extract_node_stats with $exclude_stats.
        if self.auth.check(user, "/nodes/%s" % e["node"], ["Sys.Audit"], True):
            return e
        return {k: v for k, v in e.items()
                if k not in ("uptime", "cpu", "mem", "disk", "maxcpu", "maxmem", "maxdisk")}

    def get_backup_jobs(self, user, params):
        # pve-manager PVE/API2/Backup.pm index: check perm / Sys.Audit.
        return self.audited_get(user, params, ["Sys.Audit"], (), "/cluster/backup")

    def get_not_backed_up(self, user, params):
        # pve-manager PVE/API2/Cluster/BackupInfo.pm get_guests_not_in_backup: check perm /
        # Sys.Audit; guests without VM.Audit are left out.
        self.perm(user, "/", ["Sys.Audit"])
        check_params(params, ())
        data = self.pvesh_get("/cluster/backup-info/not-backed-up", params)
        return [e for e in data if self.auth.check(user, "/vms/%s" % e["vmid"], ["VM.Audit"], True)]

    def get_nodes(self, user, params):
        # pve-manager PVE/API2/Nodes.pm (PVE::API2::Nodes) index: user => 'all', stats only
        # with Sys.Audit on /nodes/<node>; `ssl_fingerprint` the node's certificate
        # (PVE::Cluster::get_node_fingerprint): this server's own for the entry node.
        check_params(params, ())
        out = []
        for e in self.pvesh_get("/nodes", params):
            if e.get("node") == self.entry and self.fingerprint:
                e["ssl_fingerprint"] = self.fingerprint
            out.append(self.hide_node_stats(user, e))
        return out

    def get_version(self, user, params):
        # pve-manager PVE/API2.pm version: user => 'all'; version, release, repoid (the
        # pve-manager the simulator follows, 9.2.11 at 14a22df3).
        check_params(params, ())
        return {"release": "9.2", "repoid": "14a22df3", "version": "9.2.11"}

    def get_time(self, user, params, node):
        # Nodes.pm time: check perm /nodes/{node} Sys.Audit.
        self.perm(user, "/nodes/" + node, ["Sys.Audit"])
        node = self.node_of(node)
        check_params(params, ())
        return self.pvesh_get("/nodes/%s/time" % node, params)

    # --- storage ------------------------------------------------------------------------
    def get_storage_index(self, user, params, node):
        # pve-storage src/PVE/API2/Storage/Status.pm index: user => 'all'; entries need
        # Datastore.Audit or Datastore.AllocateSpace on /storage/<storage>.
        node = self.node_of(node)
        check_params(params, ("content", "storage", "target", "format"), booleans=("enabled", "format"))
        data = self.pvesh_get("/nodes/%s/storage" % node, {k: v for k, v in params.items() if k == "content"})
        out = []
        for e in data:
            if not self.auth.check_any(user, "/storage/" + e["storage"], ["Datastore.Audit", "Datastore.AllocateSpace"], True):
                continue
            if params.get("storage") and params["storage"] != e["storage"]:
                continue
            if params.get("enabled") and boolean(params, "enabled") == "1" and not e.get("enabled"):
                continue
            out.append(e)
        return out

    def get_qemu_caps(self, user, params, node, what):
        # qemu-server src/PVE/API2/Qemu/CPU.pm index and Machine.pm: user => 'all' (no custom
        # CPU models are simulated, so nothing is filtered).
        node = self.node_of(node)
        check_params(params, ("arch",))
        return self.pvesh_get("/nodes/%s/capabilities/qemu/%s" % (node, what), params)

    def get_mapping(self, user, params, kind):
        # pve-manager PVE/API2/Cluster/Mapping/PCI.pm, USB.pm index: only entries with
        # Mapping.Modify, Mapping.Use or Mapping.Audit on /mapping/<kind>/<id>.
        check_params(params, ("check-node",))
        privs = ["Mapping.Modify", "Mapping.Use", "Mapping.Audit"]
        return [m for m in self.pvesh_get("/cluster/mapping/%s" % kind, {}) or []
                if self.auth.check_any(user, "/mapping/%s/%s" % (kind, m["id"]), privs, True)]

    def get_network(self, user, params, node):
        # pve-manager PVE/API2/Network.pm index: user => 'all'; a bridge is kept only with
        # SDN.Audit or SDN.Use on /sdn/zones/localnetwork/<bridge>, a vnet only with them on
        # /sdn/zones/<zone>/<vnet> (pve-network SDN.pm get_local_vnets; check_sdn_bridge).
        node = self.node_of(node)
        check_params(params, ("type",))
        data = self.pvesh_get("/nodes/%s/network" % node, params)
        from . import state
        vnets = state.State(self.cluster.root).load("sdn.json", {}).get("vnets", {})
        privs = ["SDN.Audit", "SDN.Use"]
        out = []
        for e in data:
            zone = vnets.get(e["iface"], {}).get("zone") if e["type"] == "vnet" else "localnetwork"
            if e["type"] in ("bridge", "OVSBridge", "vnet") and \
                    not self.auth.check_any(user, "/sdn/zones/%s/%s" % (zone, e["iface"]), privs, True):
                continue
            out.append(e)
        return out

    def get_storage_status(self, user, params, node, sid):
        # Status.pm read_status: check perm /storage/{storage} Datastore.Audit|AllocateSpace (any).
        self.perm(user, "/storage/" + sid, ["Datastore.Audit", "Datastore.AllocateSpace"], True)
        node = self.node_of(node)
        check_params(params, ())
        return self.pvesh_get("/nodes/%s/storage/%s/status" % (node, sid), params)

    def get_content(self, user, params, node, sid):
        # pve-storage src/PVE/API2/Storage/Content.pm index: check perm /storage/{storage}
        # Datastore.Audit|AllocateSpace (any); each volume kept only if check_volume_access
        # passes (in an eval: dropped silently).
        self.perm(user, "/storage/" + sid, ["Datastore.Audit", "Datastore.AllocateSpace"], True)
        node = self.node_of(node)
        check_params(params, ("content", "vmid"))
        data = self.pvesh_get("/nodes/%s/storage/%s/content" % (node, sid), params)
        out = []
        for e in data:
            try:
                check_volume_access(self.auth, user, e["volid"])
            except ApiError:
                continue
            out.append(e)
        return out

    def volid(self, sid, volume):
        return volume if ":" in volume else "%s:%s" % (sid, volume)

    def get_volume(self, user, params, node, sid, volume):
        # Content.pm info: user => 'all'; check_volume_access in the code.
        node = self.node_of(node)
        check_params(params, ())
        check_volume_access(self.auth, user, self.volid(sid, volume))
        return self.pvesh_get("/nodes/%s/storage/%s/content/%s" % (node, sid, volume), params)

    def delete_volume(self, user, params, node, sid, volume):
        # Content.pm delete: user => 'all'; a backup with an owner needs
        # Datastore.AllocateSpace on the storage and VM.Backup on the owner, anything else
        # Datastore.Allocate. Worker `imgdel`, id "<owner>@<storage>".
        node = self.node_of(node)
        check_params(params, ("delay",))
        volid = self.volid(sid, volume)
        _s, owner = parse_volid(volid)
        if owner is not None:
            self.perm(user, "/storage/" + sid, ["Datastore.AllocateSpace"])
            self.perm(user, "/vms/%d" % owner, ["VM.Backup"])
        else:
            self.perm(user, "/storage/" + sid, ["Datastore.Allocate"])
        wid = ("%d@" % owner if owner is not None else "") + sid
        return self.cluster.start_task(
            node, "imgdel", wid, user, [["pvesh", "delete", "/nodes/%s/storage/%s/content/%s" % (node, sid, volume)]],
            log_filter=lambda l: l.startswith("UPID:"), error_from_stderr=True)

    # --- tasks ----------------------------------------------------------------------------
    def task_owner(self, user, upid):
        m = re.match(r"^UPID:[^:]+:[^:]+:[^:]+:[^:]+:[^:]+:[^:]*:([^:]+):$", upid)
        if not m:
            raise param_exc({"upid": "unable to parse worker upid"})
        owner = m.group(1)
        # Tasks.pm $check_task_user: a token sees its own tasks, a user its own and its tokens'.
        return user == owner or ("!" in owner and user == owner.split("!", 1)[0])

    def get_tasks(self, user, params, node):
        # pve-manager PVE/API2/Tasks.pm node_tasks: user => 'all'; the caller's own tasks, or
        # all with Sys.Audit on /nodes/<node>.
        node = self.node_of(node)
        check_params(params, ("start", "limit", "typefilter", "vmid", "userfilter", "since", "until",
                              "statusfilter", "source"), booleans=("errors",))
        fwd = {k: v for k, v in params.items() if k not in ("start", "limit")}
        if "errors" in fwd:
            fwd["errors"] = boolean(params, "errors")
        data = self.pvesh_get("/nodes/%s/tasks" % node, dict(fwd, limit=1000000))
        auditor = self.auth.check(user, "/nodes/" + node, ["Sys.Audit"], True)
        out = [t for t in data if auditor or self.task_owner(user, t["upid"])]
        start, limit = int(params.get("start", 0)), int(params.get("limit", 50))
        return out[start:start + limit]

    def get_task_status(self, user, params, node, upid):
        # Tasks.pm read_task_status: owner, else check /nodes/<node> Sys.Audit.
        node = self.node_of(node)
        check_params(params, ())
        if not self.task_owner(user, upid):
            self.perm(user, "/nodes/" + node, ["Sys.Audit"])
        return self.pvesh_get("/nodes/%s/tasks/%s/status" % (node, upid), params)

    def get_task_log(self, user, params, node, upid):
        # Tasks.pm read_task_log: owner, else check /nodes/<node> Sys.Audit; `total` = lines.
        node = self.node_of(node)
        check_params(params, ("start", "limit"), booleans=("download",))
        if not self.task_owner(user, upid):
            self.perm(user, "/nodes/" + node, ["Sys.Audit"])
        data = self.pvesh_get("/nodes/%s/tasks/%s/log" % (node, upid),
                              {k: v for k, v in params.items() if k in ("start", "limit")})
        try:
            with open(os.path.join(self.cluster.root, "tasks", node, upid + ".log"), encoding="utf-8") as f:
                total = len(f.read().splitlines())
        except FileNotFoundError:
            total = 0
        return Envelope(data, total=total)

    # --- guests -----------------------------------------------------------------------
    def audited_guest_get(self, user, params, node, gtype, vmid, sub):
        """A guest read without parameters that needs VM.Audit on /vms/{vmid}."""
        self.perm(user, "/vms/" + vmid, ["VM.Audit"])
        node = self.node_of(node)
        check_params(params, ())
        return self.pvesh_get("/nodes/%s/%s/%s/%s" % (node, gtype, vmid, sub), params)

    def get_guest_status(self, user, params, node, gtype, vmid):
        # qemu-server API2/Qemu.pm vm_status, pve-container API2/LXC/Status.pm vm_status:
        # check perm /vms/{vmid} VM.Audit.
        return self.audited_guest_get(user, params, node, gtype, vmid, "status/current")

    def get_guest_config(self, user, params, node, gtype, vmid):
        # Qemu.pm vm_config, LXC/Config.pm vm_config: check perm /vms/{vmid} VM.Audit.
        self.perm(user, "/vms/" + vmid, ["VM.Audit"])
        node = self.node_of(node)
        check_params(params, ("snapshot",), booleans=("current",))
        return self.pvesh_get("/nodes/%s/%s/%s/config" % (node, gtype, vmid), {})

    def put_guest_config(self, user, params, node, gtype, vmid):
        # Qemu.pm update_vm / LXC/Config.pm update_vm: check perm /vms/{vmid} any of the
        # VM.Config.* list; skiplock is root@pam's only. Synchronous (returns null).
        perms = QM_CONFIG_PERMS if gtype == "qemu" else CT_CONFIG_PERMS
        self.perm(user, "/vms/" + vmid, perms, True)
        node = self.node_of(node)
        check_params(params, ("delete", "digest", "revert"), booleans=("skiplock", "force"), extra=CONFIG_KEY)
        if "skiplock" in params and user != "root@pam":
            raise param_exc({"skiplock": "Only root may use this option."})
        argv = ["qm" if gtype == "qemu" else "pct", "set", vmid]
        for k in sorted(params):
            if k in ("digest", "revert", "force"):
                continue
            argv += ["--" + k, str(params[k])]
        code, _out, err = self.cluster.run(node, argv)
        if code != 0:
            raise pvesh_error(err)
        return None

    def need_guest(self, node, gtype, vmid):
        """load_config before the worker: the config must be on that node."""
        g = self.cluster.guest(vmid)
        if g is None or g.get("type") != gtype or g.get("node") != node:
            sub = "qemu-server" if gtype == "qemu" else "lxc"
            raise ApiError(500, "Configuration file 'nodes/%s/%s/%s.conf' does not exist\n" % (node, sub, vmid))
        return g

    def post_power(self, user, params, node, gtype, vmid, action):
        # Qemu.pm vm_start/vm_stop/vm_shutdown, LXC/Status.pm likewise: check perm
        # /vms/{vmid} VM.PowerMgmt. Workers qmstart/qmstop/qmshutdown, vzstart/vzstop/vzshutdown.
        self.perm(user, "/vms/" + vmid, ["VM.PowerMgmt"])
        node = self.node_of(node)
        allowed = {"start": ("timeout", "machine", "migratedfrom", "migration_type", "targetstorage"),
                   "stop": ("timeout", "migratedfrom"),
                   "shutdown": ("timeout",)}[action]
        bools = {"start": ("skiplock",), "stop": ("skiplock", "keepActive", "overrule-shutdown"),
                 "shutdown": ("skiplock", "forceStop", "keepActive")}[action]
        check_params(params, allowed, booleans=bools)
        if "skiplock" in params and user != "root@pam":
            raise param_exc({"skiplock": "Only root may use this option."})
        g = self.need_guest(node, gtype, vmid)
        tool = "qm" if gtype == "qemu" else "pct"
        argv = [tool, action, vmid] + cli_opts(params, sorted(params), booleans=bools)
        wtype = ("qm" if gtype == "qemu" else "vz") + action
        if g.get("hastate") and g.get("hastate") != "ignored":
            # An HA-managed guest: the request goes to the HA manager (hastart / hastop).
            wtype = "hastart" if action == "start" else "hastop"
        return self.cluster.start_task(node, wtype, vmid, user, [argv])

    def post_move_disk(self, user, params, node, vmid):
        # qemu-server src/PVE/API2/Qemu.pm move_vm_disk: check perm /vms/{vmid}
        # VM.Config.Disk, then Datastore.AllocateSpace on the target storage; worker qmmove.
        self.perm(user, "/vms/" + vmid, ["VM.Config.Disk"])
        node = self.node_of(node)
        check_params(params, ("disk", "storage", "format", "digest", "bwlimit"), booleans=("delete",),
                     required=("disk", "storage"))
        self.perm(user, "/storage/" + params["storage"], ["Datastore.AllocateSpace"])
        self.need_guest(node, "qemu", vmid)
        argv = ["qm", "disk", "move", vmid, params["disk"], params["storage"]] + \
            cli_opts(params, ["delete"], booleans=("delete",))
        return self.cluster.start_task(node, "qmmove", vmid, user, [argv])

    def get_snapshots(self, user, params, node, gtype, vmid):
        # Qemu.pm snapshot_list, LXC/Snapshot.pm list: check perm /vms/{vmid} VM.Audit.
        return self.audited_guest_get(user, params, node, gtype, vmid, "snapshot")

    def post_snapshot(self, user, params, node, gtype, vmid):
        # Qemu.pm snapshot, LXC/Snapshot.pm snapshot: check perm /vms/{vmid} VM.Snapshot.
        self.perm(user, "/vms/" + vmid, ["VM.Snapshot"])
        node = self.node_of(node)
        check_params(params, ("snapname", "description"), booleans=("vmstate",) if gtype == "qemu" else (),
                     required=("snapname",))
        self.need_guest(node, gtype, vmid)
        tool = "qm" if gtype == "qemu" else "pct"
        argv = [tool, "snapshot", vmid, params["snapname"]] + cli_opts(params, ("description", "vmstate"), ("vmstate",))
        return self.cluster.start_task(node, ("qm" if gtype == "qemu" else "vz") + "snapshot", vmid, user, [argv])

    def delete_snapshot(self, user, params, node, gtype, vmid, snap):
        # Qemu.pm delsnapshot, LXC/Snapshot.pm delsnapshot: check perm /vms/{vmid} VM.Snapshot.
        self.perm(user, "/vms/" + vmid, ["VM.Snapshot"])
        node = self.node_of(node)
        check_params(params, (), booleans=("force",))
        self.need_guest(node, gtype, vmid)
        tool = "qm" if gtype == "qemu" else "pct"
        argv = [tool, "delsnapshot", vmid, snap] + cli_opts(params, ("force",), ("force",))
        return self.cluster.start_task(node, ("qm" if gtype == "qemu" else "vz") + "delsnapshot", vmid, user, [argv])

    def post_rollback(self, user, params, node, gtype, vmid, snap):
        # Qemu.pm rollback, LXC/Snapshot.pm rollback: check perm /vms/{vmid}
        # VM.Snapshot|VM.Snapshot.Rollback (any).
        self.perm(user, "/vms/" + vmid, ["VM.Snapshot", "VM.Snapshot.Rollback"], True)
        node = self.node_of(node)
        check_params(params, (), booleans=("start",))
        self.need_guest(node, gtype, vmid)
        tool = "qm" if gtype == "qemu" else "pct"
        argvs = [[tool, "rollback", vmid, snap]]
        if "start" in params and boolean(params, "start") == "1":
            # Qemu.pm rollback: VM.PowerMgmt too when asked to start (vm_start runs in the
            # worker, its own check would not fire); started only if not running already.
            self.perm(user, "/vms/" + vmid, ["VM.PowerMgmt"])
            argvs = [[tool, "rollback", vmid, snap, "--start", "1"]]
        return self.cluster.start_task(node, ("qm" if gtype == "qemu" else "vz") + "rollback", vmid, user, argvs)

    def post_agent_ping(self, user, params, node, vmid):
        # qemu-server src/PVE/API2/Qemu/Agent.pm register_command('ping', 'POST',
        # 'VM.GuestAgent.Audit'): check perm /vms/{vmid} [VM.GuestAgent.Audit,
        # VM.GuestAgent.Unrestricted], any; proxyto node; load_config, then
        # src/PVE/QemuServer/Agent.pm assert_agent_available dies (500); {"result": ...}.
        self.perm(user, "/vms/" + vmid, ["VM.GuestAgent.Audit", "VM.GuestAgent.Unrestricted"], True)
        node = self.node_of(node)
        check_params(params, ())
        self.need_guest(node, "qemu", vmid)
        code, _, err = self.cluster.run(node, ["qm", "guest", "cmd", vmid, "ping"])
        if code != 0:
            lines = [l for l in err.splitlines() if l.strip()] or ["QEMU guest agent is not running"]
            raise ApiError(500, lines[-1] + "\n")
        return {"result": {}}

    def delete_guest(self, user, params, node, gtype, vmid):
        # Qemu.pm destroy_vm, LXC.pm destroy_vm: check perm /vms/{vmid} VM.Allocate;
        # skiplock root@pam only. Workers qmdestroy, vzdestroy.
        self.perm(user, "/vms/" + vmid, ["VM.Allocate"])
        node = self.node_of(node)
        if gtype == "qemu":
            bools = ("purge", "destroy-unreferenced-disks", "skiplock")
        else:
            bools = ("purge", "destroy-unreferenced-disks", "force")
        check_params(params, (), booleans=bools)
        if "skiplock" in params and user != "root@pam":
            raise param_exc({"skiplock": "Only root may use this option."})
        self.need_guest(node, gtype, vmid)
        tool = "qm" if gtype == "qemu" else "pct"
        argv = [tool, "destroy", vmid] + cli_opts(params, bools, bools)
        return self.cluster.start_task(node, ("qm" if gtype == "qemu" else "vz") + "destroy", vmid, user, [argv])

    # --- restore, backup --------------------------------------------------------------
    def post_qemu(self, user, params, node):
        """qemu-server src/PVE/API2/Qemu.pm create_vm with `archive` (restore), in its order:
        Datastore.AllocateSpace on `storage`, VM.PowerMgmt for `start`, then VM.Allocate on
        /vms/{vmid} (or the pool, or VM.Backup for a forced restore over an existing VM) —
        else a bare `Permission check failed` —, drive options conflict with `archive`,
        check_volume_access of the archive, then the VMID must be free
        (create_and_lock_config: `unable to restore VM N - VM N already exists on node 'X'`)."""
        node = self.node_of(node)
        bools = ("force", "unique", "live-restore", "start", "ha-managed")
        check_params(params, ("vmid", "archive", "storage", "pool", "bwlimit"), booleans=bools,
                     required=("vmid",), extra=CONFIG_KEY)
        vmid = str(params["vmid"])
        archive = params.get("archive")
        if not archive:
            raise ApiError(500, "pvesim: only a restore (`archive`) is simulated for POST /nodes/{node}/qemu\n")
        if params.get("pool"):
            self.check_pool(params["pool"])
        if "storage" in params:
            self.perm(user, "/storage/" + params["storage"], ["Datastore.AllocateSpace"])
        if "ha-managed" in params and boolean(params, "ha-managed") == "1":
            self.perm(user, "/", ["Sys.Console"])
        if "start" in params and boolean(params, "start") == "1":
            self.vm_perm(user, vmid, params.get("pool"), ["VM.PowerMgmt"])
        existing = self.cluster.guest(vmid)
        force = "force" in params and boolean(params, "force") == "1"
        exists_here = existing is not None and existing.get("type") == "qemu" and existing.get("node") == node
        if not (self.auth.check(user, "/vms/" + vmid, ["VM.Allocate"], True)
                or (params.get("pool") and self.auth.check(user, "/pool/" + params["pool"], ["VM.Allocate"], True))
                or (force and exists_here and self.auth.check(user, "/vms/" + vmid, ["VM.Backup"], True))):
            raise perm_exc()
        for k in sorted(params):
            if re.fullmatch(r"(ide|sata|scsi|virtio)\d+|efidisk0|tpmstate0", k):
                raise param_exc({k: "option conflicts with option 'archive'"})
        if archive == "-":
            # qemu-server src/PVE/API2/Qemu.pm create_vm: stdin only from the CLI.
            raise ApiError(500, "pipe requires cli environment\n")
        check_volume_access(self.auth, user, archive, vmid)
        if existing is not None and (not force or existing.get("node") != node):
            raise ApiError(500, "unable to restore VM %s - %s %s already exists on node '%s'\n" % (
                vmid, "VM" if existing.get("type") == "qemu" else "CT", vmid, existing.get("node")))
        keys = [k for k in sorted(params) if k not in ("vmid", "archive")]
        argv = ["qmrestore", archive, vmid] + cli_opts(params, keys, bools)
        return self.cluster.start_task(node, "qmrestore", vmid, user, self.restricted_vm_restore(user, node, archive) or [argv])

    def restricted_vm_restore(self, user, node, volid):
        """qemu-server src/PVE/QemuServer.pm check_restore_permissions → check_mapping_access,
        in the restore task for anyone but root@pam: a `hostpciN` or `usbN` (but spice) with
        a host device instead of a mapping dies; simulated as a task that fails before it
        writes anything (Proxmox removes what it allocated)."""
        if user == "root@pam":
            return []
        for k, v in self.backup_config(node, volid):
            first = v.split(",")[0]
            host = dict(p.split("=", 1) for p in v.split(",") if "=" in p).get("host") or (first if "=" not in first else None)
            if re.fullmatch(r"hostpci\d+", k) and host:
                return [["@fail", "only root can set '%s' config for non-mapped devices" % k]]
            if re.fullmatch(r"usb\d+", k) and host and host.lower() != "spice":
                return [["@fail", "only root can set '%s' config for real devices" % k]]
        return []

    def post_lxc(self, user, params, node):
        """pve-container src/PVE/API2/LXC.pm create_vm with `restore=1`, in its order: the
        VMID must be free unless a forced restore over the same CT (`check_vmid_unused`:
        `CT N already exists on node 'X'`), VM.Allocate on /vms/{vmid} (or the pool, or
        VM.Backup for a forced restore over it) — else a bare `Permission check failed` —,
        check_volume_access of the archive, then Datastore.AllocateSpace on the storage the
        volumes go to (`storage`, default `local`)."""
        node = self.node_of(node)
        bools = ("restore", "force", "unique", "unprivileged", "start", "ignore-unpack-errors", "ha-managed")
        check_params(params, ("vmid", "ostemplate", "storage", "pool", "bwlimit", "rootfs"), booleans=bools,
                     required=("vmid", "ostemplate"), extra=CONFIG_KEY)
        vmid = str(params["vmid"])
        restore = "restore" in params and boolean(params, "restore") == "1"
        if not restore:
            raise ApiError(500, "pvesim: only a restore (`restore=1`) is simulated for POST /nodes/{node}/lxc\n")
        if "ha-managed" in params and boolean(params, "ha-managed") == "1":
            self.perm(user, "/", ["Sys.Console"])
        existing = self.cluster.guest(vmid)
        force = "force" in params and boolean(params, "force") == "1"
        same = existing is not None and existing.get("type") == "lxc" and existing.get("node") == node
        if existing is not None and not (same and force):
            raise ApiError(500, "%s %s already exists on node '%s'\n" % (
                "VM" if existing.get("type") == "qemu" else "CT", vmid, existing.get("node")))
        if params.get("pool"):
            self.check_pool(params["pool"])
        if not (self.auth.check(user, "/vms/" + vmid, ["VM.Allocate"], True)
                or (params.get("pool") and self.auth.check(user, "/pool/" + params["pool"], ["VM.Allocate"], True))
                or (force and same and self.auth.check(user, "/vms/" + vmid, ["VM.Backup"], True))):
            raise perm_exc()
        if params["ostemplate"] == "-":
            # pve-container src/PVE/API2/LXC.pm create_vm: stdin only from the CLI.
            raise ApiError(500, "pipe requires cli environment\n")
        check_volume_access(self.auth, user, params["ostemplate"], vmid)
        sid = params.get("storage", "local")
        self.perm(user, "/storage/" + sid, ["Datastore.AllocateSpace"])
        keys = [k for k in sorted(params) if k not in ("vmid", "ostemplate", "restore")]
        argv = ["pct", "restore", vmid, params["ostemplate"]] + cli_opts(params, keys, bools)
        argvs = [argv] + self.restricted_ct_restore(user, node, vmid, params["ostemplate"])
        if argvs[-1][0] == "@fail":
            argv = argvs[-1]
        if self.restores_privileged(params) and not self.auth.check(user, "/", ["Sys.Modify"], True):
            # In the worker (create_vm's $realcmd): a privileged CT, new or replacing an
            # unprivileged one, needs Sys.Modify on /.
            was_unpriv = same and str((existing.get("config") or {}).get("unprivileged", "0")) == "1"
            if not same or was_unpriv:
                argvs = [["@fail", "Permission check failed (/, Sys.Modify)"]]
        return self.cluster.start_task(node, "vzrestore", vmid, user, argvs)

    def backup_config(self, node, volid):
        """The guest config inside a backup, as `extractconfig` reads it."""
        try:
            text = self.pvesh_get("/nodes/%s/vzdump/extractconfig" % node, {"volume": volid})
        except ApiError:
            return {}
        text = text if isinstance(text, str) else ""
        return [(k.strip(), v.strip()) for k, v in (l.split(":", 1) for l in text.splitlines() if ":" in l)
                if not k.startswith("#")]

    def restricted_ct_restore(self, user, node, vmid, volid):
        """pve-container src/PVE/API2/LXC.pm create_vm, restore by anyone but root@pam (a
        token never is: `$is_root = $authuser eq 'root@pam'`), inside the worker: a bind or
        device mount point of the backup dies ("restoring 'mpN' to bind mount is only
        possible for root"); raw `lxc.*` keys are not restored, only warned about
        (src/PVE/LXC/Create.pm sanitize_and_merge_config, restricted: `$rpcenv->warn`),
        and the task ends `WARNINGS: 1`."""
        if user == "root@pam":
            return []
        conf = self.backup_config(node, volid)
        for k, v in conf:
            vol = v.split(",")[0]
            if re.fullmatch(r"mp\d+", k) and vol.startswith("/"):
                kind = "device" if vol.startswith("/dev/") else "bind"
                return [["@fail", "restoring '%s' to %s mount is only possible for root" % (k, kind)]]
        raw = ["%s: %s" % (k, v) for k, v in conf if k.startswith("lxc.")]
        if not raw:
            return []
        msg = ["skipping custom lxc options, restore manually as root:", "-" * 32] + raw + ["-" * 32]
        return [["@warn", vmid] + msg]

    def restores_privileged(self, params):
        """`unprivileged` as the restored CT gets it: the parameter, else the backup's pct.conf."""
        if "unprivileged" in params:
            return boolean(params, "unprivileged") == "0"
        from . import guests, state
        try:
            path = guests.archive_path(state.State(self.cluster.root), params["ostemplate"])
            conf = guests.archive_config(path, "lxc")
        except Exception:
            return False
        return str(conf.get("unprivileged", "0")) != "1"

    def post_vzdump(self, user, params, node):
        """pve-manager PVE/API2/VZDump.pm vzdump: user => 'all'; root-only tmpdir, dumpdir,
        script, job-id (PVE/API2/Backup.pm assert_param_permission_common), Sys.Modify on /
        for bwlimit/ionice/performance, Datastore.Allocate for prune-backups and
        Datastore.AllocateSpace on the storage (default `local`) before the worker; the
        VM.Backup check of each guest happens inside the worker (PVE/VZDump.pm exec_backup)."""
        node = self.node_of(node)
        check_params(params, VZDUMP_PARAMS, booleans=VZDUMP_BOOLS)
        if user != "root@pam":
            for k in ("tmpdir", "dumpdir", "script", "job-id"):
                if k in params:
                    raise param_exc({k: "Only root may set this option."})
            if any(k in params for k in ("bwlimit", "ionice", "performance")):
                self.perm(user, "/", ["Sys.Modify"])
            sid = None if params.get("dumpdir") else (params.get("storage") or "local")
            if "prune-backups" in params and sid:
                self.perm(user, "/storage/" + sid, ["Datastore.Allocate"])
        if "stdout" in params:
            raise param_exc({"stdout": "option is only allowed on the command line interface."})
        if params.get("node") and params["node"] != node:
            raise param_exc({"node": "option is only allowed on the command line interface."})
        vmids = [v for v in re.split(r"[,;\s]+", str(params.get("vmid", ""))) if v]
        every = "all" in params and boolean(params, "all") == "1"
        if every:
            # get_included_guests: all guests of this node but the excluded ones.
            excl = [v for v in re.split(r"[,;\s]+", str(params.get("exclude", ""))) if v]
            vmids = [str(g["vmid"]) for g in self.cluster.guests() if g.get("node") == node
                     and str(g["vmid"]) not in excl]
        local = [v for v in vmids if (self.cluster.guest(v) or {}).get("node") in (node, None)]
        if not local and not every:
            return "OK"
        sid = None if params.get("dumpdir") else (params.get("storage") or "local")
        if sid:
            self.perm(user, "/storage/" + sid, ["Datastore.AllocateSpace"])
        opts = [k for k in sorted(params) if k in ("storage", "mode", "compress", "notes-template", "protected",
                                                   "remove", "prune-backups")]
        argvs = []
        for v in sorted(local, key=int):
            if not self.auth.check(user, "/vms/%s" % v, ["VM.Backup"], True):
                if every:
                    continue  # exec_backup: with `all` the check is noerr, the guest skipped
                # exec_backup checks VM.Backup per guest without noerr for an explicit VMID
                # list, before its eval: the worker dies with the permission error.
                argvs = [["@fail", "Permission check failed (/vms/%s, VM.Backup)" % v]]
                break
            argvs.append(["vzdump", v] + cli_opts(params, opts, VZDUMP_BOOLS))
        wid = local[0] if len(local) == 1 else ""
        return self.cluster.start_task(node, "vzdump", wid, user, argvs)

    def get_extractconfig(self, user, params, node):
        # VZDump.pm extractconfig: check_volume_access(..., 'backup') then VM.Backup on the owner.
        node = self.node_of(node)
        check_params(params, ("volume",), required=("volume",))
        check_volume_access(self.auth, user, params["volume"])
        _s, owner = parse_volid(params["volume"])
        if owner is not None:
            self.perm(user, "/vms/%d" % owner, ["VM.Backup"])
        return self.pvesh_get("/nodes/%s/vzdump/extractconfig" % node, params)

    def get_permissions(self, user, params):
        # pve-access-control src/PVE/API2/AccessControl.pm permissions: user => 'all'; another
        # user's (not an owned token's) permissions need Sys.Audit on /access.
        check_params(params, ("userid", "path"))
        userid = params.get("userid", user)
        owner = TOKEN_RE.match(userid).group(1) if TOKEN_RE.match(userid) else None
        if not (userid == user or owner == user):
            self.perm(user, "/access", ["Sys.Audit"])
        if params.get("path"):
            return {params["path"]: self.auth.permissions(userid, norm_path(params["path"]))}
        return self.auth.effective(userid)

    def check_pool(self, pool):
        # RPCEnvironment.pm check_pool_exist: pools are not simulated.
        raise perm_exc("pool '%s' does not exist" % pool)

    def vm_perm(self, user, vmid, pool, privs):
        # RPCEnvironment.pm check_vm_perm
        if pool and self.auth.check(user, "/pool/" + pool, privs, True):
            return
        self.auth.check(user, "/vms/%s" % vmid, privs)


class Envelope:
    """Data plus the result attributes rest_handler copies into the answer (`total`)."""

    def __init__(self, data, total=None):
        self.data = data
        self.total = total


def pvesh_error(stderr):
    """A failed CLI call as the API answers the same die: a PVE::Exception (400 parameter
    errors) keeps its code, anything else is 500 with the message."""
    text = stderr.strip("\n")
    m = re.match(r"^400 Parameter verification failed\.\n(.*)$", text, re.S)
    if m:
        errors = {}
        for line in m.group(1).splitlines():
            if ": " in line and not line.startswith(("pvesh ", "qm ", "pct ", "qmrestore ")):
                k, v = line.split(": ", 1)
                errors[k] = v
        return param_exc(errors)
    return ApiError(500, text + "\n")


# --- HTTP -------------------------------------------------------------------------------
def decode_urlencoded(data):
    """AnyEvent.pm decode_urlencoded: `&` or `;` separated; a repeated key becomes a list."""
    out = {}
    if not data:
        return out
    for kv in re.split(r"[&;]", data):
        if not kv:
            continue
        k, _, v = kv.partition("=")
        k = urllib.parse.unquote_plus(k)
        v = urllib.parse.unquote_plus(v) if "=" in kv else None
        if k in out and v is not None:
            old = out[k]
            v = (old if isinstance(old, list) else [old]) + [v]
        out[k] = v if v is not None else ""
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pve-api-daemon/3.0"
    sys_version = ""
    front = None  # set by main

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self.handle_api("GET")

    def do_POST(self):
        self.handle_api("POST")

    def do_PUT(self):
        self.handle_api("PUT")

    def do_DELETE(self):
        self.handle_api("DELETE")

    def answer(self, code, reason, body=None, delay=0):
        """AnyEvent.pm response: status line `<code> <first line of the message>`,
        `Connection: close` for code >= 400; an error without formatter has no body."""
        if delay > 0:
            time.sleep(delay)
        reason = (reason or "").split("\n")[0]
        if code >= 400 and os.environ.get("PVESIM_API_ECHO_AUTH"):
            # Not Proxmox: a hostile or broken proxy that echoes the request's credentials
            # in its refusals (status line and `errors`), as tests of redaction need.
            header = self.headers.get("Authorization") or ""
            reason = "%s (%s)" % (reason, header)
            if isinstance(body, dict):
                body = dict(body, errors=dict(body.get("errors") or {}, authorization=header))
            elif body is None:
                body = {"data": None, "errors": {"authorization": header}}
        self.send_response_only(code, reason)
        self.send_header("Date", self.date_time_string())
        self.send_header("Expires", self.date_time_string())
        self.send_header("Cache-Control", "max-age=0")
        self.send_header("Pragma", "no-cache")
        self.send_header("Server", "pve-api-daemon/3.0")
        raw = b""
        if body is not None:
            raw = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":"), sort_keys=True,
                                                                   ensure_ascii=False).encode()
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(raw)))
        if code >= 400:
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Connection", "Keep-Alive")
        self.end_headers()
        if raw and self.command != "HEAD":
            self.wfile.write(raw)

    def handle_api(self, method):
        front = self.front
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        params = {}
        if method in ("POST", "PUT") and body:
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype == "application/json":
                params = {k: v for k, v in json.loads(body.decode()).items()}
            else:
                params = decode_urlencoded(body.decode("utf-8", "replace"))
        params.update(decode_urlencoded(url.query))
        params.pop("_dc", None)
        # The secret is never logged: only the token ID, once it is known.
        entry = {"cmd": "pveproxy", "via": "api", "method": method, "path": path,
                 "argv": ["%s=%s" % (k, params[k]) for k in sorted(params)],
                 "node": front.entry, "time": time.time()}
        m = re.match(r"^/api2/+([a-z][a-z0-9]+)(/.*)?$", path)
        if not path.startswith("/api2"):
            front.cluster.log(entry)
            return self.answer(501, "no such uri", None)
        if not m:
            front.cluster.log(entry)
            # AnyEvent.pm authenticate_and_handle_request: no format -> error(501, "no such uri").
            return self.answer(501, "no such uri", b"no such uri")
        fmt, rel = m.group(1), m.group(2) or "/"
        rel = "/" + rel.strip("/") if rel != "/" else "/"
        auth_header = self.headers.get("Authorization")
        mt = re.search(r"(?:^|\s)PVEAPIToken(?:=| )([^;]*)", auth_header or "")
        api_token = urllib.parse.unquote(mt.group(1)) if mt else None
        auth_delay = float(os.environ.get("PVESIM_API_AUTH_DELAY", "3"))
        try:
            if not api_token:
                raise ApiError(401, "No ticket\n", body=False)
            user = front.auth.verify(api_token)
        except ApiError as e:
            entry["user"] = None
            front.cluster.log(entry)
            # HTTPServer.pm auth_handler dies; AnyEvent.pm answers 401 with the message as
            # reason, no body, after a 3 second delay.
            return self.answer(401, e.msg, None, delay=auth_delay)
        entry["user"] = user
        front.cluster.log(entry)
        if length and method not in ("POST", "PUT"):
            # AnyEvent.pm authenticate_and_handle_request: a body only for PUT and POST.
            msg = "Unexpected content for method '%s'" % method
            return self.answer(501, msg, msg.encode())
        if fmt != "json":
            return self.answer(501, "no formatter for uri %s, %s" % (rel, fmt), ("no formatter for uri %s, %s" % (rel, fmt)).encode())
        try:
            data = front.dispatch(method, rel, params, user)
        except ApiError as e:
            if not e.body:
                return self.answer(e.code, e.msg, None)
            # Formatter/Standard.pm prepare_response_data ('json'): data null, the message,
            # and `errors` for parameter exceptions.
            out = {"data": None, "message": e.msg}
            if e.errors:
                out["errors"] = e.errors
            return self.answer(e.code, e.msg, out)
        except Exception as e:  # a bug in the simulator: answer 500 like an unexpected die
            return self.answer(500, "pvesim-api: %s" % e, {"data": None, "message": "pvesim-api: %s\n" % e})
        out = {"data": data}
        if isinstance(data, Envelope):
            out = {"data": data.data}
            if data.total:
                out["total"] = data.total
        return self.answer(200, "OK", out)


class TlsServer(ThreadingHTTPServer):
    """TLS per connection, in the connection's own thread (a client that never finishes
    its handshake, or refuses the certificate, blocks nobody)."""

    ctx = None

    def finish_request(self, request, client_address):
        try:
            request = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        pass


def main(argv=None):
    ap = argparse.ArgumentParser(prog="pvesim-api")
    ap.add_argument("--root", required=True)
    ap.add_argument("--node", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args(argv)
    Handler.front = Front(os.path.abspath(a.root), a.node)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    with open(a.cert, encoding="ascii") as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    digest = hashlib.sha256(der).hexdigest().upper()
    Handler.front.fingerprint = ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))
    srv = TlsServer(("127.0.0.1", a.port), Handler)
    srv.ctx = ctx
    srv.daemon_threads = True
    sys.stdout.write("listening %d\n" % srv.server_address[1])
    sys.stdout.flush()
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0
