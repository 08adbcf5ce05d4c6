"""`qmrestore - VMID` and `pct restore VMID - --rootfs …`: a restore that reads the archive
from standard input, as Proxmox does it (docs/simulator.md, *Restoring from a pipe*).

qemu-server `src/PVE/QemuServer.pm` `restore_file_archive` hands `-` to
`restore_vma_archive` with no decompressor: `vma extract` reads stdin, which must be an
uncompressed VMA. pve-container `src/PVE/LXC/Create.pm` `restore_tar_archive` runs
`tar xpf -` without a compression option: stdin must be an uncompressed tar. Neither
checks a checksum of the whole stream."""

import hashlib
import io
import re
import struct
import sys
import tarfile

from . import vma, volumes
from .state import SimError

# A container's tar is read whole (tests' are small); a bound keeps a runaway writer from
# filling memory. A VM's stream is read as it comes (`vma_stream`), of any size.
MAX_STDIN = 512 * 1024 * 1024
# Bytes read at a time when a stream is only hashed.
CHUNK = 1 << 20


def read_stdin():
    data = sys.stdin.buffer.read(MAX_STDIN + 1)
    if len(data) > MAX_STDIN:
        raise SimError("pvesim: more than %d bytes on stdin" % MAX_STDIN, 1)
    return data


def data_id(raw):
    """What a restored volume holds in the simulator: the archive's (uncompressed) bytes'
    digest, so a restore from a file and one from a pipe of the same archive give the
    same data."""
    return hashlib.sha256(raw).hexdigest()[:16]


class Digest:
    """A reader that hashes what passes through it: `data_id` of a stream read once, in
    bounded memory (a 1 GiB archive in the benchmarks)."""

    def __init__(self, f):
        self.f = f
        self.h = hashlib.sha256()

    def read(self, n):
        b = self.f.read(n)
        self.h.update(b)
        return b

    def drain(self):
        while self.read(CHUNK):
            pass

    def data_id(self):
        return self.h.hexdigest()[:16]


def vma_stream(f):
    """A VMA read from f to its end, as `vma extract` reads stdin: (the header's error,
    the config's text, the data's error, data_id). Read to the end whatever it finds, as
    the whole stream was read before (`read_stdin`)."""
    r = Digest(f)
    head_err = text = data_err = None
    try:
        head = vma.read_header(r)
    except SimError as e:
        head_err = e.message
    else:
        text = vma_config_text(head)
        try:
            vma.check_extents(r, head)
        except SimError as e:
            data_err = e.message
    r.drain()
    return head_err, text, data_err, r.data_id()


def vma_config_text(raw):
    """`qemu-server.conf` from a VMA's header blobs; None when the header is not one."""
    if len(raw) < 3072 or raw[:4] != b"VMA\0":
        return None
    off = struct.unpack(">I", raw[48:52])[0]
    p = struct.unpack(">I", raw[3068:3072])[0]
    ln = struct.unpack("<H", raw[off + p:off + p + 2])[0]
    return raw[off + p + 2:off + p + 2 + ln].decode()


def parse_conf(text):
    conf = {}
    for line in text.splitlines():
        if line.startswith("#") or ":" not in line:
            continue
        k, v = line.split(":", 1)
        conf[k.strip()] = v.strip()
    return conf


def ct_members(raw):
    """Every member of an uncompressed tar read from stdin, its data read through, as
    `tar xpf -` would: a cut inside a member is an error, a cut inside the end-of-archive
    zero blocks is not (GNU tar, like Python's tarfile, stops at the first zero block)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tf:
            conf = None
            for m in tf:
                f = tf.extractfile(m)
                data = f.read() if f is not None else b""
                if m.name == "./etc/vzdump/pct.conf":
                    conf = data.decode()
            return conf
    except (tarfile.ReadError, EOFError) as e:
        if raw[:4] == b"\x28\xb5\x2f\xfd" or raw[:2] == b"\x1f\x8b":
            raise SimError("tar: Archive is compressed. Use a compression option\n"
                           "tar: Error is not recoverable: exiting now", 2)
        raise SimError("tar: Unexpected EOF in archive (%s)\n"
                       "tar: Error is not recoverable: exiting now" % e, 2)


# pve-container `src/PVE/LXC/Create.pm` `sanitize_and_merge_config`: these keys of the
# archive's config are never taken; mount points and `unprivileged` come from the call.
CT_NOT_MERGED = re.compile(r"digest|rootfs|snapshots|unprivileged|parent|template|mp\d+|unused\d+")


def ct_given_volumes(state, vmid, kv, taken):
    """`--rootfs STORAGE:GiB[,…]`, `--mpN …`: `create_disks` allocates each
    `STORAGE:SIZE` as a new volume of SIZE GiB; anything else is used as given."""
    out = {}
    for k in sorted(kv):
        if k != "rootfs" and not re.fullmatch(r"mp\d+", k):
            continue
        vol, opts = volumes.options(kv[k])
        rest = [p for p in kv[k].split(",")[1:] if not p.startswith("size=")]
        m = re.fullmatch(r"([a-zA-Z][\w.-]*):(\d+(?:\.\d+)?)", vol)
        if m:
            sid = m.group(1)
            s = state.storage(sid)
            if s is None:
                raise SimError("storage '%s' does not exist" % sid)
            if "rootdir" not in (s.get("content") or "").split(","):
                raise SimError("400 Parameter verification failed.\nstorage: storage '%s' does not support container directories" % sid)
            new = volumes.alloc(state, sid, vmid, taken)
            taken.add(new)
            size = m.group(2)
            size = size[:-2] if size.endswith(".0") else size
            out[k] = (new, ",".join([new] + rest + ["size=%sG" % size]))
        else:
            out[k] = (None, kv[k])
    return out
