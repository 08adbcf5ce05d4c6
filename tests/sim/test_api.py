"""Self-test of pvesim-api (stdlib only): python3 tests/sim/test_api.py"""

import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.realpath(__file__))
ARCHIVE = "local:backup/vzdump-qemu-100-2024_01_15-02_00_02.vma.zst"
TOKENS = [
    {"tokenid": "root@pam!full", "secret": "rootsecret", "privsep": 0, "acl": []},
    {"tokenid": "audit@pve!ro", "secret": "ro-secret", "acl": [{"path": "/", "roles": ["PVEAuditor"]}]},
    # The listing role of docs/api-tokens.md: backups need Datastore.AllocateSpace + VM.Backup.
    {"tokenid": "backup@pve!list", "secret": "list-secret",
     "acl": [{"path": "/", "roles": ["PVEAuditor"]},
             {"path": "/storage", "privs": ["Datastore.Audit", "Datastore.AllocateSpace"]},
             {"path": "/vms", "privs": ["VM.Audit", "VM.Backup"]}]},
    # A PVE 8 role: VM.Monitor is no privilege in PVE 9 and gives nothing.
    {"tokenid": "old@pve!mon", "secret": "mon-secret", "acl": [{"path": "/", "privs": ["VM.Audit", "VM.Monitor"]}]},
]


class ApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="pvesim-api")
        t = cls.tmp.name
        cls.root = os.path.join(t, "root")
        env = dict(os.environ, TZ="UTC")
        subprocess.run([sys.executable, os.path.join(HERE, "pvesim-admin"), "init", cls.root, "--scenario", "demo",
                        "--now", "1705300000"], check=True, env=env)
        with open(os.path.join(cls.root, "tokens.json"), "w") as f:
            json.dump(TOKENS, f)
        cls.cert, key = os.path.join(t, "cert.pem"), os.path.join(t, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cls.cert,
                        "-days", "2", "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=IP:127.0.0.1,DNS:localhost", "-addext", "basicConstraints=critical,CA:FALSE",
                        "-addext", "extendedKeyUsage=serverAuth"], check=True, capture_output=True)
        env.update(PVESIM_API_AUTH_DELAY="0", PVESIM_API_TASK_DELAY="1")
        cls.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "pvesim-api"), "--root", cls.root, "--node",
                                     "pve1", "--cert", cls.cert, "--key", key], stdout=subprocess.PIPE, env=env,
                                    text=True)
        line = cls.proc.stdout.readline()
        assert line.startswith("listening "), line
        cls.base = "https://127.0.0.1:%d/api2/json" % int(line.split()[1])
        cls.ctx = ssl.create_default_context(cafile=cls.cert)

    @classmethod
    def tearDownClass(cls):
        cls.proc.kill()
        cls.proc.wait()
        cls.tmp.cleanup()

    def call(self, method, path, params=None, token="root@pam!full=rootsecret"):
        params = params or {}
        url = self.base + path
        data = None
        if method in ("POST", "PUT"):
            data = urllib.parse.urlencode(params).encode()
        elif params:
            url += "?" + urllib.parse.urlencode(params)
        req = urllib.request.Request(url, data=data, method=method)
        if token:
            req.add_header("Authorization", "PVEAPIToken=" + token)
        if data is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(req, context=self.ctx) as r:
                return r.status, r.reason, json.loads(r.read())
        except urllib.error.HTTPError as e:
            body = e.read()
            return e.code, e.reason, json.loads(body) if body else None

    def wait_task(self, upid, node="pve1"):
        seen = []
        for _ in range(100):
            code, _r, body = self.call("GET", "/nodes/%s/tasks/%s/status" % (node, upid))
            self.assertEqual(code, 200, body)
            seen.append(body["data"]["status"])
            if body["data"]["status"] == "stopped":
                return body["data"], seen
            time.sleep(0.2)
        self.fail("task did not end")

    def commands(self):
        with open(os.path.join(self.root, "commands.log")) as f:
            return [json.loads(l) for l in f]

    def test_envelope_and_local_node(self):
        code, reason, body = self.call("GET", "/cluster/status")
        self.assertEqual((code, reason), (200, "OK"))
        local = [e for e in body["data"] if e.get("local") == 1]
        self.assertEqual([e["name"] for e in local], ["pve1"])

    def test_bad_secret_is_401_without_body(self):
        code, reason, body = self.call("GET", "/cluster/status", token="root@pam!full=wrong")
        self.assertEqual((code, reason, body), (401, "Authentication failed!", None))
        code, reason, _ = self.call("GET", "/cluster/status", token=None)
        self.assertEqual((code, reason), (401, "No ticket"))
        self.assertTrue(all("wrong" not in json.dumps(c) and "rootsecret" not in json.dumps(c)
                            for c in self.commands()), "a secret in commands.log")

    def test_missing_privilege_names_path_and_privilege(self):
        code, reason, body = self.call("POST", "/nodes/pve1/qemu/100/status/stop", token="audit@pve!ro=ro-secret")
        self.assertEqual(code, 403)
        self.assertEqual(reason, "Permission check failed (/vms/100, VM.PowerMgmt)")
        self.assertEqual(body, {"data": None, "message": "Permission check failed (/vms/100, VM.PowerMgmt)\n"})

    def test_agent_ping_needs_a_guest_agent_privilege(self):
        for token in ("backup@pve!list=list-secret", "old@pve!mon=mon-secret"):
            code, reason, _ = self.call("POST", "/nodes/pve1/qemu/100/agent/ping", token=token)
            self.assertEqual((code, reason), (403, "Permission check failed (/vms/100, "
                                                   "VM.GuestAgent.Audit|VM.GuestAgent.Unrestricted)"))
        code, _r, body = self.call("POST", "/nodes/pve1/qemu/100/agent/ping", token="audit@pve!ro=ro-secret")
        self.assertIn(code, (200, 500), body)
        code, reason, _ = self.call("POST", "/nodes/pve1/qemu/9999/agent/ping")
        self.assertEqual((code, reason), (500, "Configuration file 'nodes/pve1/qemu-server/9999.conf' does not exist"))

    def test_auditor_sees_no_backups_the_listing_role_does(self):
        p = {"content": "backup"}
        _c, _r, audit = self.call("GET", "/nodes/pve1/storage/local/content", p, token="audit@pve!ro=ro-secret")
        _c, _r, lister = self.call("GET", "/nodes/pve1/storage/local/content", p, token="backup@pve!list=list-secret")
        _c, _r, root = self.call("GET", "/nodes/pve1/storage/local/content", p)
        self.assertEqual(audit["data"], [])
        self.assertTrue(root["data"])
        self.assertEqual(lister["data"], [e for e in root["data"] if "vmid" in e])

    def test_restore_task_runs_then_stops_with_log(self):
        code, _r, body = self.call("POST", "/nodes/pve1/qemu", {"vmid": 4100, "archive": ARCHIVE,
                                                                "storage": "local-lvm", "unique": 1})
        self.assertEqual(code, 200, body)
        upid = body["data"]
        self.assertRegex(upid, r"^UPID:pve1:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:qmrestore:4100:root@pam!full:$")
        status, seen = self.wait_task(upid)
        self.assertEqual(seen[0], "running")
        self.assertEqual(status["exitstatus"], "OK")
        _c, _r, log = self.call("GET", "/nodes/pve1/tasks/%s/log" % upid)
        self.assertEqual(log["data"][-1], {"n": len(log["data"]), "t": "TASK OK"})
        self.assertTrue(any("restore vma archive" in l["t"] for l in log["data"]))
        restores = [c for c in self.commands() if c["cmd"] == "qmrestore"]
        self.assertEqual(restores[-1]["argv"][:2], [ARCHIVE, "4100"])
        self.assertIn("--unique", restores[-1]["argv"])

    def test_container_restore(self):
        ct = "local:backup/vzdump-lxc-101-2024_01_15-02_01_07.tar.zst"
        code, reason, _ = self.call("POST", "/nodes/pve1/lxc", {"vmid": 4400, "ostemplate": ct, "restore": 1},
                                    token="backup@pve!list=list-secret")
        self.assertEqual((code, reason), (403, "Permission check failed"))
        code, reason, _ = self.call("POST", "/nodes/pve1/lxc", {"vmid": 101, "ostemplate": ct, "restore": 1})
        self.assertEqual((code, reason), (500, "CT 101 already exists on node 'pve1'"))
        code, _r, body = self.call("POST", "/nodes/pve1/lxc", {"vmid": 4400, "ostemplate": ct, "restore": 1,
                                                               "storage": "local-lvm"})
        self.assertEqual(code, 200, body)
        self.assertIn(":vzrestore:4400:", body["data"])
        status, _ = self.wait_task(body["data"])
        self.assertEqual(status["exitstatus"], "OK")

    def test_restore_refused_runs_nothing(self):
        before = len([c for c in self.commands() if c["cmd"] == "qmrestore"])
        code, reason, _ = self.call("POST", "/nodes/pve1/qemu", {"vmid": 4200, "archive": ARCHIVE},
                                    token="backup@pve!list=list-secret")
        self.assertEqual((code, reason), (403, "Permission check failed"))
        self.assertEqual(len([c for c in self.commands() if c["cmd"] == "qmrestore"]), before)
        api = [c for c in self.commands() if c.get("via") == "api" and c["method"] == "POST"]
        self.assertEqual(api[-1]["user"], "backup@pve!list")

    def test_failed_task_has_error_exitstatus(self):
        code, _r, body = self.call("POST", "/nodes/pve1/qemu", {"vmid": 4300, "archive": "local:backup/vzdump-qemu-100-1999_01_01-00_00_00.vma.zst"})
        self.assertEqual(code, 200, body)
        status, _ = self.wait_task(body["data"])
        self.assertIn("does not exist", status["exitstatus"])

    def test_unknown_path_and_parameter(self):
        code, reason, body = self.call("GET", "/nodes/pve1/nothing")
        self.assertEqual((code, reason), (501, "Method 'GET /nodes/pve1/nothing' not implemented"))
        self.assertEqual(body["data"], None)
        code, _r, body = self.call("GET", "/cluster/resources", {"kind": "vm"})
        self.assertEqual(code, 400)
        self.assertIn("kind", body["errors"])

    def test_offline_node_is_595(self):
        code, reason, _ = self.call("GET", "/nodes/pve3/storage")
        self.assertEqual((code, reason), (595, "No route to host"))

    def test_permissions_of_a_path(self):
        _c, _r, body = self.call("GET", "/access/permissions", {"path": "/vms/100"}, token="backup@pve!list=list-secret")
        self.assertEqual(set(body["data"]["/vms/100"]), {"VM.Audit", "VM.Backup"})

    def test_vzdump_task_and_its_archive(self):
        code, _r, body = self.call("POST", "/nodes/pve1/vzdump", {"vmid": 100, "storage": "local", "compress": "zstd",
                                                                  "mode": "snapshot", "remove": 0},
                                   token="backup@pve!list=list-secret")
        self.assertEqual(code, 200, body)
        self.assertIn(":vzdump:100:backup@pve!list:", body["data"])
        status, _ = self.wait_task(body["data"])
        self.assertEqual(status["exitstatus"], "OK")
        self.assertEqual((status["user"], status["tokenid"]), ("backup@pve", "list"))
        _c, _r, tasks = self.call("GET", "/nodes/pve1/tasks", {"typefilter": "vzdump"}, token="backup@pve!list=list-secret")
        self.assertEqual([t["upid"] for t in tasks["data"]][:1], [body["data"]])
        code, reason, _ = self.call("POST", "/nodes/pve1/vzdump", {"vmid": 100}, token="audit@pve!ro=ro-secret")
        self.assertEqual((code, reason), (403, "Permission check failed (/storage/local, Datastore.AllocateSpace)"))

    def test_nodes_carry_this_certificate_fingerprint(self):
        import hashlib
        with open(self.cert) as f:
            d = hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest().upper()
        _c, _r, body = self.call("GET", "/nodes")
        pve1 = [n for n in body["data"] if n["node"] == "pve1"][0]
        self.assertEqual(pve1["ssl_fingerprint"], ":".join(d[i:i + 2] for i in range(0, 64, 2)))


if __name__ == "__main__":
    unittest.main()
