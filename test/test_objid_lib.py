"""test_objid_lib.py: helpers of the SAVEDATE, PREVIEW and OBJECTID tests: the directory of a
mailbox found from its MAILBOXID, and turning its index and cache into what a version before
index version 3 wrote (no save date, no thread number, no preview field), as coffer-store(5)
describes the formats, so the tests can check what old mailboxes answer."""
import os
import re
import struct
import zlib

HEADER_SIZE = 8192
RECORD_SIZE = 128
SLOTS = (0, 512)


def mailbox_dir(coffer, mailboxid):
    """The directory of the mailbox whose MAILBOXID is "F" + uniqueid."""
    u = mailboxid[1:]
    return os.path.join(coffer.spool, u[:2], u)


def mailboxid_of(case, c, box):
    untagged = case.ok(c, "STATUS %s (MAILBOXID)" % box)
    m = re.search(rb"MAILBOXID \(([A-Za-z0-9_-]+)\)", untagged[0])
    case.assertTrue(m, untagged)
    return m.group(1).decode()


def _chosen_slot(data):
    best = None
    for off in SLOTS:
        slot = data[off:off + 128]
        if slot[:8] != b"COFFERIX":
            continue
        if struct.unpack_from("<I", slot, 124)[0] != zlib.crc32(slot[:124]):
            continue
        commit = struct.unpack_from("<Q", slot, 64)[0]
        if best is None or commit > best[1]:
            best = (off, commit)
    return best[0]


def _records(data):
    slot = _chosen_slot(data)
    count = struct.unpack_from("<I", data, slot + 28)[0]
    return slot, count


def _seal_record(buf, off):
    struct.pack_into("<I", buf, off + 124, zlib.crc32(bytes(buf[off:off + 124])))


def downgrade_index(d):
    """Records as index version 2 wrote them: bytes 104-119 (savedate, threadid) zero; the
    chosen header slot says version 2."""
    path = os.path.join(d, "index")
    with open(path, "rb") as f:
        buf = bytearray(f.read())
    slot, count = _records(buf)
    for i in range(count):
        off = HEADER_SIZE + i * RECORD_SIZE
        buf[off + 104:off + 120] = bytes(16)
        _seal_record(buf, off)
    struct.pack_into("<I", buf, slot + 8, 2)
    struct.pack_into("<I", buf, slot + 124, zlib.crc32(bytes(buf[slot:slot + 124])))
    with open(path, "r+b") as f:
        f.write(buf)


def strip_preview(d):
    """Every message's cache record rewritten (appended at the end of the cache) without field
    6, the preview, as caches written before it held them."""
    ipath, cpath = os.path.join(d, "index"), os.path.join(d, "cache")
    with open(ipath, "rb") as f:
        idx = bytearray(f.read())
    with open(cpath, "rb") as f:
        cache = bytearray(f.read())
    slot, count = _records(idx)
    for i in range(count):
        off = HEADER_SIZE + i * RECORD_SIZE
        coff = struct.unpack_from("<Q", idx, off + 40)[0]
        if not coff:
            continue
        n, uid = struct.unpack_from("<II", cache, coff)
        pos, end, fields = coff + 8, coff + n - 4, []
        while pos < end:
            fid, flen = struct.unpack_from("<II", cache, pos)
            if fid != 6:
                fields.append(bytes(cache[pos:pos + 8 + flen]))
            pos += 8 + flen
        body = struct.pack("<I", uid) + b"".join(fields)
        rec = struct.pack("<I", len(body) + 8) + body
        rec += struct.pack("<I", zlib.crc32(rec))
        struct.pack_into("<Q", idx, off + 40, len(cache))
        cache += rec
        _seal_record(idx, off)
    with open(cpath, "r+b") as f:
        f.write(cache)
    with open(ipath, "r+b") as f:
        f.write(idx)
