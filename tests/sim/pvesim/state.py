"""Access to the simulator's data directory, the command log and injected faults."""

import json
import os
import sys
import time


def options(args):
    """A Proxmox CLI's `--key value` (or `--key=value`, or a bare `--flag` = "1") pairs and
    its positionals, for every simulated command."""
    pos, kv = [], {}
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("--"):
            k = a[2:]
            if "=" in k:
                k, v = k.split("=", 1)
            elif i + 1 < len(args) and not args[i + 1].startswith("--"):
                v = args[i + 1]
                i += 1
            else:
                v = "1"
            kv[k] = v
        else:
            pos.append(a)
        i += 1
    return pos, kv


class SimError(Exception):
    """A Proxmox error: message to stderr, exit status (255 like PVE's CLI handler)."""

    def __init__(self, message, status=255):
        super().__init__(message)
        self.message = message
        self.status = status


class State:
    def __init__(self, root=None):
        root = root or os.environ.get("PVESIM_ROOT")
        if not root:
            raise SimError("PVESIM_ROOT is not set (the simulator's data directory)", 2)
        self.root = os.path.abspath(root)
        cluster = self.load("cluster.json", {"cluster": None, "nodes": [{"node": "pve1", "status": "online"}]})
        self.cluster = cluster
        self.nodes = cluster.get("nodes", [])
        self.local_node = os.environ.get("PVESIM_NODE") or (self.nodes[0]["node"] if self.nodes else "pve1")

    # --- files -----------------------------------------------------------------
    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def load(self, rel, default=None):
        p = self.path(rel)
        try:
            with open(p, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return default

    def save(self, rel, data):
        p = self.path(rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        tmp = p + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, p)

    # --- cluster ---------------------------------------------------------------
    def node(self, name):
        for n in self.nodes:
            if n["node"] == name:
                return n
        return None

    def storages(self):
        return self.load("storage.json", [])

    def storage(self, sid):
        for s in self.storages():
            if s["storage"] == sid:
                return s
        return None

    def storage_on_node(self, s, node):
        return s.get("nodes") is None or node in s["nodes"]

    def guests(self):
        d = self.path("guests")
        out = []
        if os.path.isdir(d):
            for f in os.listdir(d):
                if f.endswith(".json"):
                    with open(os.path.join(d, f), encoding="utf-8") as fh:
                        out.append(json.load(fh))
        return out

    def guest(self, vmid):
        return self.load(os.path.join("guests", "%s.json" % vmid))

    def save_guest(self, g):
        self.save(os.path.join("guests", "%s.json" % g["vmid"]), g)

    def delete_guest(self, vmid):
        try:
            os.unlink(self.path("guests", "%s.json" % vmid))
        except FileNotFoundError:
            pass

    # --- bookkeeping -----------------------------------------------------------
    def log_command(self, cmd, argv):
        entry = {"cmd": cmd, "argv": argv, "node": self.local_node, "time": time.time()}
        with open(self.path("commands.log"), "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    def check_faults(self, cmd, argv):
        """Applies faults.json: [{"match": substring, "stderr": msg, "exit": n, "times": k}]."""
        faults = self.load("faults.json", [])
        line = " ".join([cmd] + argv)
        for i, f in enumerate(faults):
            if f.get("match", "\0") in line:
                times = f.get("times")
                if times is not None:
                    if times <= 0:
                        continue
                    faults[i]["times"] = times - 1
                    self.save("faults.json", faults)
                if f.get("sleep"):
                    # A slow command that then succeeds (to interrupt a run mid-step).
                    time.sleep(float(f["sleep"]))
                    if "exit" not in f:
                        continue
                if f.get("stdout"):
                    sys.stdout.write(f["stdout"])
                if f.get("action") == "disconnect":
                    cut_connection()
                raise SimError(f.get("stderr", "simulated failure"), f.get("exit", 255))


def cut_connection():
    """Kills the sshd process serving this session: the client sees the connection drop."""
    import signal
    pid = os.getppid()
    for _ in range(10):
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().split()
        except OSError:
            return
        comm, ppid = fields[1].strip("()"), int(fields[3])
        if comm.startswith("sshd"):
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
            return
        pid = ppid


def main_wrapper(cmd, handler):
    """Common entry: log, delay, faults, run handler(state, argv), map SimError to exit."""
    argv = sys.argv[1:]
    try:
        state = State()
        state.log_command(cmd, argv)
        delay = float(os.environ.get("PVESIM_DELAY") or 0)
        if delay > 0:
            time.sleep(delay)
        state.check_faults(cmd, argv)
        status = handler(state, argv) or 0
    except SimError as e:
        msg = e.message if e.message.endswith("\n") else e.message + "\n"
        sys.stdout.flush()
        sys.stderr.write(msg)
        status = e.status
    except BrokenPipeError:
        status = 141
    sys.stdout.flush()
    sys.exit(status)
