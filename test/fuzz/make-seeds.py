#!/usr/bin/env python3
"""make-seeds.py: writes the binary seed files of test/fuzz/corpus (index, cache, dump-tar),
whose checksums are easier to compute than to type. Run from anywhere; it rewrites only
those files. The text seeds are committed as they are."""
import io, os, struct, tarfile, zlib

TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

def put(target, name, data):
    d = os.path.join(TOP, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

def crc(b):
    return zlib.crc32(b) & 0xffffffff

# ---- index (layout: lib/store/index.c; input format: fuzz-index.c) ----
def slot(commit, record_count, prev_count, exists, kwcount, kwbytes, kwcrc, uidnext=10, flags=(0,0,0,0)):
    b = bytearray(128)
    b[0:8] = b"COFFERIX"
    struct.pack_into("<IIIIIIIIIIIIII", b, 8, 1, 8192, 128, 12345, uidnext, record_count,
                     prev_count, exists, flags[0], flags[1], flags[2], flags[3], kwcount, kwbytes)
    struct.pack_into("<QQQQ", b, 64, commit, 7, 3000, 1)
    struct.pack_into("<II", b, 96, kwcrc, record_count - exists)
    struct.pack_into("<I", b, 124, crc(bytes(b[:124])))
    return bytes(b)

def record(uid, flags, size, modseq, kwbits=0):
    b = bytearray(128)
    struct.pack_into("<IIqqQQQII", b, 0, uid, flags, 1700000000, 1699999999, size, modseq, 16 + uid, 300, 12)
    struct.pack_into("<Q", b, 56, kwbits)
    b[72:92] = bytes(range(20))
    struct.pack_into("<I", b, 124, crc(bytes(b[:124])))
    return bytes(b)

def intent(gen, commit):
    b = bytearray(32)
    b[0:8] = b"COFFERIN"
    struct.pack_into("<QQ", b, 8, gen, commit)
    struct.pack_into("<I", b, 28, crc(bytes(b[:28])))
    return bytes(b)

kw = b"$Forwarded\0$Junk\0"
recs = record(1, 0x01, 1000, 3, 1) + record(4, 0x09, 1000, 5) + record(7, 0x80000000, 1000, 7, 2)
s0 = slot(2, 3, 2, 2, 2, len(kw), crc(kw), flags=(1, 1, 0, 0))
s1 = slot(1, 2, 0, 2, 2, len(kw), crc(kw))
def index_input(fix, s0, s1, it, kw, recs):
    return bytes([fix]) + s0 + s1 + it + struct.pack("<H", len(kw)) + kw + recs
put("index", "two-slots", index_input(0, s0, s1, bytes(32), kw, recs))
put("index", "intent-pending", index_input(0, s0, s1, intent(1, 3), kw, recs))
put("index", "empty", index_input(0, bytes(128), slot(1, 0, 0, 0, 0, 0, crc(b""), uidnext=1), bytes(32), b"", b""))
put("index", "torn-commit", index_input(0, s0, s1, bytes(32), kw, recs[:256] + bytes(128)))
put("index", "fixups", index_input(0x0f, s0[:124] + bytes(4), s1, intent(1, 3)[:28] + bytes(4), kw, recs))

# ---- cache (layout: lib/store/cache.c; input format: fuzz-cache.c) ----
def cache_record(uid, fields):
    body = struct.pack("<I", uid)
    for fid, val in fields:
        body += struct.pack("<II", fid, len(val)) + val
    total = 4 + len(body) + 4
    rec = struct.pack("<I", total) + body
    return rec + struct.pack("<I", crc(rec))

chead = b"COFFERCA" + struct.pack("<II", 1, 16)
r1 = cache_record(1, [(1, b'("date" "subj" NIL NIL NIL NIL NIL NIL NIL NIL)'), (2, b'("text" "plain" NIL NIL NIL "7bit" 5 1)'),
                      (4, b"S1\n0 0 10 10 5 0\n"), (5, b"Subject: subj\r\n\r\n")])
r2 = cache_record(2, [(3, b'("text" "plain" NIL NIL NIL "7bit" 5 1)'), (99, b"future field")])
put("cache", "file", bytes([2]) + chead + r1 + r2)
put("cache", "records-fixup", bytes([1]) + r1[:-4] + bytes(4) + r2)
put("cache", "empty-record", bytes([0]) + cache_record(5, []))

# ---- dump stream (format: coffer-dump(8); reader: tools/dump-read.c) ----
manifest = (b'{"format": "coffer-dump", "version": 1, "user": "fred", "created": 1700000000,\n'
            b' "quota": {"storage_kib": 1024, "messages": 100},\n'
            b' "subscriptions": ["user/fred/Sent"],\n'
            b' "sieve": {"active": "main", "scripts": [{"name": "main", "file": "sieve/main.sieve"}]},\n'
            b' "mailboxes": [\n  {"name": "user/fred", "dir": "mailboxes/0", "uidvalidity": 1700000000, "uidnext": 3, '
            b'"highestmodseq": 4, "special_use": null, "acl": [["fred", "lrswipkxtecda"]],\n'
            b'   "messages": [\n    {"uid": 1, "file": "mailboxes/0/1.eml", "size": 24, "internaldate": 1700000000, '
            b'"modseq": 2, "flags": ["\\\\Seen"], "keywords": ["$Forwarded"]}]}]}\n')
put("dump-manifest", "manifest.json", manifest)
put("dump-manifest", "escapes.json", b'{"s": "a\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00", "n": [-1, 0, 9223372036854775807], '
                                     b'"t": true, "f": false, "z": null, "o": {}, "a": []}')
put("dump-manifest", "deep.json", b"[" * 40 + b"]" * 40)

def tar_bytes(entries):
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data, typ in entries:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mtime = 1700000000
            ti.type = typ
            t.addfile(ti, io.BytesIO(data) if data else None)
    data = bio.getvalue().rstrip(b"\0")
    data += bytes(-len(data) % 512)
    return data + bytes(1024)          # the two zero blocks that end an archive

msg = b"Subject: hi\r\n\r\nhello\r\n"
put("dump-tar", "dump.tar", tar_bytes([("manifest.json", manifest, tarfile.REGTYPE),
                                      ("mailboxes/0/1.eml", msg, tarfile.REGTYPE),
                                      ("sieve/main.sieve", b"keep;\n", tarfile.REGTYPE),
                                      ("mailboxes", b"", tarfile.DIRTYPE)]))
long_name = "mailboxes/0/" + "d" * 120 + "/1.eml"
put("dump-tar", "long-name.tar", tar_bytes([("manifest.json", b"{}", tarfile.REGTYPE),
                                           (long_name, msg, tarfile.REGTYPE)]))
