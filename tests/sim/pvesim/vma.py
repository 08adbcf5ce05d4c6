"""`vma verify FILE`: what pve-qemu's `vma` (vma.c verify_content, vma-reader.c) checks of a
plain VMA archive: the header's magic, version and MD5, then every extent's magic, UUID and
MD5, and that its blocks are all there. Silent with status 0 when whole."""

import hashlib
import struct

from .state import SimError

EXTENT_HEADER = 512
# 12 KiB of fixed fields and the blob buffer, with room to spare.
MAX_HEADER = 16 << 20


def verify(state, argv):
    args = [a for a in argv if a != "-v"]
    if args[:1] != ["verify"]:
        raise SimError("usage: vma verify <filename> [-v]", 1)
    files = [a for a in args[1:] if a != "--"]
    if len(files) != 1:
        raise SimError("usage: vma verify <filename> [-v]", 1)
    try:
        with open(files[0], "rb") as f:
            check(f)
    except OSError as e:
        raise SimError("vma_reader_create %s failed - %s" % (files[0], e.strerror), 1)
    return 0


def check(f, header_only=False):
    head = read_header(f)
    if not header_only:
        check_extents(f, head)


def read_header(f):
    """The header, its magic, version and MD5 checked."""
    head = f.read(12288)
    if len(head) < 64 or head[0:4] != b"VMA\0" or struct.unpack(">I", head[4:8])[0] != 1:
        raise SimError("vma_reader_create failed - not a VMA file (wrong magic or version)", 1)
    header_size = struct.unpack(">I", head[56:60])[0]
    # Read from a stream, the size field is not trusted with an allocation: a header
    # larger than MAX_HEADER reads as truncated.
    head += f.read(max(0, min(header_size, MAX_HEADER) - len(head)))
    if len(head) < header_size:
        raise SimError("vma_reader_create failed - header truncated", 1)
    zeroed = bytearray(head[:header_size])
    zeroed[32:48] = bytes(16)
    if hashlib.md5(bytes(zeroed)).digest() != head[32:48]:
        raise SimError("vma_reader_create failed - wrong vma header chechsum", 1)
    return head


def check_extents(f, head):
    """Every extent after the header, read from f one at a time (at most 59 clusters)."""
    uuid = head[8:24]
    n = 0
    while True:
        eh = f.read(EXTENT_HEADER)
        if not eh:
            return
        n += 1
        if len(eh) < EXTENT_HEADER or eh[0:4] != b"VMAE" or eh[8:24] != uuid:
            raise SimError("verify failed - extent %d: wrong magic or uuid" % n, 1)
        zeroed = bytearray(eh)
        zeroed[24:40] = bytes(16)
        if hashlib.md5(bytes(zeroed)).digest() != eh[24:40]:
            raise SimError("verify failed - extent %d: wrong extent header chechsum" % n, 1)
        blocks = 0
        for j in range(59):
            info = struct.unpack(">Q", eh[40 + 8 * j:48 + 8 * j])[0]
            blocks += bin(info >> 48).count("1")
        data = f.read(blocks * 4096)
        if len(data) < blocks * 4096:
            raise SimError("verify failed - extent %d truncated" % n, 1)
