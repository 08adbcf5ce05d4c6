#!/usr/bin/env python3
"""Writes N `backup` records (JSON Lines) as pve-ls-backups would: G guests, nightly backups."""
import json
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
guests = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
now = 1705300000
per = n // guests
out = sys.stdout
for g in range(guests):
    vmid = 100 + g
    subtype = "qemu" if g % 3 else "lxc"
    ext = "vma.zst" if subtype == "qemu" else "tar.zst"
    for i in range(per):
        ctime = now - i * 86400 - (g % 60) * 60
        import time as _t
        stamp = _t.strftime("%Y_%m_%d-%H_%M_%S", _t.gmtime(ctime))
        volid = "local:backup/vzdump-%s-%d-%s.%s" % (subtype, vmid, stamp, ext)
        out.write(json.dumps({"kind": "backup", "node": "pve1", "storage": "local", "volid": volid, "vmid": vmid,
                              "subtype": subtype, "ctime": ctime,
                              "time": _t.strftime("%Y-%m-%dT%H:%M:%SZ", _t.gmtime(ctime)),
                              "size": 1000000 + i, "format": ext, "protected": False},
                             separators=(",", ":")) + "\n")
