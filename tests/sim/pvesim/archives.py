"""Real vzdump archives for the tests: VMA images with correct headers and extents, LXC tars
holding ./etc/vzdump/pct.conf, compressed with the real zstd/gzip/lzop, and vzdump logs.
Layouts follow shared/reference/proxmox.md §7 and §8."""

import gzip
import hashlib
import io
import os
import random
import re
import struct
import subprocess
import tarfile
import time
import uuid

CLUSTER = 65536
BLOCKS_PER_EXTENT = 59
HEADER_BASE = 12288


def _blob_buffer():
    buf = bytearray(b"\0")  # offset 0 is never used

    def add(data):
        off = len(buf)
        buf.extend(struct.pack("<H", len(data)))
        buf.extend(data)
        return off
    return buf, add


WORDS = ("the of and to in is for on that with as by at from kernel systemd info warn error "
         "GET POST /var/log/syslog user root www-data nginx postgres connection accepted closed "
         "port session opened cron job backup started finished ok 200 404 500 ms bytes").split()


def _text_block(rng):
    """4 KiB of log-like text: words, numbers and time stamps, about 3:1 under zstd."""
    out = []
    n = 0
    while n < 4096:
        line = "Jan %2d %02d:%02d:%02d pve%d %s[%d]: %s\n" % (
            rng.randint(1, 31), rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59),
            rng.randint(1, 3), rng.choice(WORDS), rng.randint(100, 99999),
            " ".join(rng.choices(WORDS, k=rng.randint(4, 14))))
        out.append(line)
        n += len(line)
    return "".join(out).encode()[:4096]


def _disk_cluster(rng):
    """(mask, data) of one 64 KiB cluster of a disk that looks used: a third of the clusters
    zero (vma-writer stores no data for zero 4 KiB blocks, mask bit clear), a third random
    (compressed or encrypted files), a third text, some of its blocks zero."""
    kind = rng.randrange(3)
    if kind == 0:
        return 0, b""
    if kind == 1:
        return 0xFFFF, rng.randbytes(CLUSTER)
    mask, data = 0, []
    for j in range(16):
        if rng.randrange(8):
            mask |= 1 << j
            data.append(_text_block(rng))
    return mask, b"".join(data)


def _pattern_cluster(seed, dev, c):
    # Some structure and some zeros (compresses about 1000:1).
    block = hashlib.sha256(b"%d-%d-%d" % (seed, dev, c)).digest() * 64
    return 0xFFFF, block + bytes(CLUSTER - len(block))


def vma_bytes(config, disks, ctime=None, seed=1, content="pattern"):
    """A VMA archive. config: qemu-server.conf text; disks: [(devname, size_bytes)];
    content: "pattern" (tiny when compressed) or "disk" (compresses like a used disk)."""
    rng = random.Random(seed)
    u = uuid.UUID(int=(seed * 0x9E3779B97F4A7C15) % (1 << 128)).bytes
    buf, add = _blob_buffer()
    name_off = add(b"qemu-server.conf\0")
    conf_off = add(config.encode())
    dev_offs = [add(d[0].encode() + b"\0") for d in disks]
    blob_size = len(buf)
    header_size = HEADER_BASE + ((blob_size + 511) // 512) * 512
    h = bytearray(header_size)
    h[0:4] = b"VMA\0"
    struct.pack_into(">I", h, 4, 1)
    h[8:24] = u
    struct.pack_into(">q", h, 24, int(ctime if ctime is not None else time.time()))
    struct.pack_into(">I", h, 48, HEADER_BASE)
    struct.pack_into(">I", h, 52, blob_size)
    struct.pack_into(">I", h, 56, header_size)
    struct.pack_into(">I", h, 2044, name_off)
    struct.pack_into(">I", h, 3068, conf_off)
    for i, (off, (_name, size)) in enumerate(zip(dev_offs, disks)):
        dev_id = i + 1
        base = 4096 + 32 * dev_id
        struct.pack_into(">I", h, base, off)
        struct.pack_into(">Q", h, base + 8, size)
    h[HEADER_BASE:HEADER_BASE + blob_size] = buf
    h[32:48] = hashlib.md5(bytes(h)).digest()
    out = bytearray(h)
    # Extents: every cluster of every device, full (mask 0xffff), 59 clusters per extent.
    clusters = []
    for i, (_name, size) in enumerate(disks):
        for c in range((size + CLUSTER - 1) // CLUSTER):
            clusters.append((i + 1, c))
    for start in range(0, len(clusters), BLOCKS_PER_EXTENT):
        part = clusters[start:start + BLOCKS_PER_EXTENT]
        data = [_disk_cluster(rng) if content == "disk" else _pattern_cluster(seed, dev, c)
                for dev, c in part]
        eh = bytearray(512)
        eh[0:4] = b"VMAE"
        struct.pack_into(">H", eh, 6, sum(bin(m).count("1") for m, _ in data))
        eh[8:24] = u
        for j, ((dev, c), (mask, _)) in enumerate(zip(part, data)):
            info = (mask << 48) | (dev << 32) | c
            struct.pack_into(">Q", eh, 40 + 8 * j, info)
        eh[24:40] = hashlib.md5(bytes(eh)).digest()
        out.extend(eh)
        for _, d in data:
            out.extend(d)
    return bytes(out)


def lxc_tar_bytes(config, hostname="ct", seed=1):
    bio = io.BytesIO()
    mtime = 1700000000

    def add(name, data=None, is_dir=False, xattrs=None):
        ti = tarfile.TarInfo(name)
        ti.mtime = mtime
        ti.uid = ti.gid = 0
        if xattrs:
            ti.pax_headers = {"SCHILY.xattr." + k: v for k, v in xattrs.items()}
        if is_dir:
            ti.type = tarfile.DIRTYPE
            ti.mode = 0o755
            tf.addfile(ti)
        else:
            ti.size = len(data)
            ti.mode = 0o644
            tf.addfile(ti, io.BytesIO(data))

    # vzdump runs tar with pve-storage Plugin.pm @COMMON_TAR_FLAGS (--acls --xattrs …),
    # which makes GNU tar write POSIX pax archives: extended headers for xattrs and for
    # names longer than the ustar field, no GNU long-name members.
    with tarfile.open(fileobj=bio, mode="w", format=tarfile.PAX_FORMAT) as tf:
        add("./etc/vzdump/pct.conf", config.encode())
        add("./etc/vzdump/pct.fw", b"")
        add("./", is_dir=True)
        add("./etc", is_dir=True)
        add("./etc/hostname", (hostname + "\n").encode())
        add("./etc/os-release", b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
        add("./var", is_dir=True)
        add("./var/lib", is_dir=True)
        add("./var/lib/data.bin", hashlib.sha256(b"%d" % seed).digest() * 2048,
            xattrs={"user.pvedr": "sim", "security.capability": "\x01"})
        add("./var/lib/" + "a-rather-long-directory-name/" * 4 + "file.txt", b"long name\n")
    return bio.getvalue()


def compress(data, method):
    if method in (None, "none"):
        return data
    if method == "gzip":
        return gzip.compress(data, mtime=0)
    cmd = {"zstd": ["zstd", "-q", "-c"], "lzo": ["lzop", "-c"]}.get(method)
    if cmd is None:
        raise ValueError("unknown compression %r" % method)
    try:
        return subprocess.run(cmd, input=data, stdout=subprocess.PIPE, check=True).stdout
    except FileNotFoundError:
        raise SystemExit("%s is not installed (apt-get install %s)" % (cmd[0], "lzop" if method == "lzo" else "zstd"))


EXT = {"none": "", "zstd": ".zst", "gzip": ".gz", "lzo": ".lzo"}


def qemu_config(vmid, name):
    return ("agent: 1\nboot: order=scsi0;net0\ncores: 2\nipconfig0: ip=127.0.0.1/8\nmemory: 2048\nname: %s\n"
            "net0: virtio=BC:24:11:00:%02X:%02X,bridge=vmbr0\nostype: l26\n"
            "scsi0: local-lvm:vm-%d-disk-0,size=256K\nscsihw: virtio-scsi-single\n"
            "#qmdump#map:scsi0:drive-scsi0:local-lvm:raw:\n") % (name, (vmid >> 8) & 255, vmid & 255, vmid)


def lxc_config(vmid, name):
    return ("arch: amd64\ncores: 1\nhostname: %s\nmemory: 512\n"
            "net0: name=eth0,bridge=vmbr0,hwaddr=BC:24:11:01:%02X:%02X,ip=dhcp,type=veth\n"
            "ostype: debian\nrootfs: local-lvm:vm-%d-disk-0,size=1G\nunprivileged: 1\n") % (
                name, (vmid >> 8) & 255, vmid & 255, vmid)


def config_drives(config):
    """The VMA devices of a VM config's text: `drive-KEY` for each disk vzdump backs up
    (no CD-ROM, no `backup=0`)."""
    out = []
    for line in config.splitlines():
        k, _, v = line.partition(":")
        k, v = k.strip(), v.strip()
        if not re.fullmatch(r"(ide|scsi|virtio|sata|efidisk|tpmstate)\d+", k):
            continue
        if "media=cdrom" in v or "backup=0" in v or v.split(",")[0] == "none":
            continue
        out.append("drive-" + k)
    return out


def archive_bytes(gtype, vmid, name, size_kib=256, seed=None, compression="zstd", content="pattern",
                  config=None):
    """config: the guest config's text inside the archive (default: the demo's)."""
    seed = seed if seed is not None else vmid
    if gtype == "qemu":
        config = config or qemu_config(vmid, name)
        raw = vma_bytes(config, [(d, size_kib * 1024) for d in config_drives(config)], seed=seed,
                        content=content)
    else:
        raw = lxc_tar_bytes(config or lxc_config(vmid, name), hostname=name, seed=seed)
    return compress(raw, compression)


def write_log(path, gtype, vmid, name, start, archive_path, outcome="ok", reason="no space left on device"):
    """A vzdump .log as §8 describes (local-time stamps)."""
    def ts(t):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
    kind = "VM" if gtype == "qemu" else "CT"
    lines = ["INFO: Starting Backup of VM %d (%s)" % (vmid, gtype), "INFO: status = running",
             "INFO: %s Name: %s" % (kind, name), "INFO: backup mode: snapshot", "INFO: ionice priority: 7"]
    if outcome == "failed":
        lines.append("ERROR: Backup of VM %d failed - %s" % (vmid, reason))
    else:
        lines.append("INFO: creating vzdump archive '%s'" % archive_path)
        if outcome == "warnings":
            lines.append("WARN: unable to add notes - %s" % reason)
        size = os.path.getsize(archive_path) if os.path.exists(archive_path) else 0
        lines.append("INFO: archive file size: %dKB" % max(1, size // 1024))
        lines.append("INFO: Finished Backup of VM %d (00:00:03)" % vmid)
    with open(path, "w", encoding="utf-8") as f:
        for i, l in enumerate(lines):
            f.write("%s %s\n" % (ts(start + (i // 3)), l))


def corrupt(path, mode, offset=None):
    data = open(path, "rb").read()
    if mode == "truncate":
        data = data[: max(1, len(data) * 2 // 3)]
    elif mode == "bitflip":
        b = bytearray(data)
        pos = offset if offset is not None else len(b) // 2
        b[pos % len(b)] ^= 0x10
        data = bytes(b)
    elif mode == "empty":
        data = b""
    else:
        raise ValueError("unknown corruption %r" % mode)
    with open(path, "wb") as f:
        f.write(data)
