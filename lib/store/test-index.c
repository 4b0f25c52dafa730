/* test-index.c: unit tests of the index, cache and mailbox header file formats. */
#include "store/cache.h"
#include "store/index.h"
#include "store/mailbox.h"
#include "store/mbheader.h"
#include "store/partition.h"
#include "core/error.h"
#include "core/unit.h"
#include "core/xmalloc.h"
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static void test_le(void)
{
    unsigned char b[8];
    le_put32(b, 0x11223344u);
    UNIT_EQ_INT(b[0], 0x44);
    UNIT_EQ_INT(b[3], 0x11);
    UNIT_EQ_INT(le_get32(b), 0x11223344u);
    le_put64(b, 0x0102030405060708ull);
    UNIT_EQ_INT(b[0], 8);
    UNIT_EQ_INT(b[7], 1);
    UNIT_CHECK(le_get64(b) == 0x0102030405060708ull);
    /* the CRC-32 check value of "123456789" */
    UNIT_EQ_INT(index_crc32("123456789", 9), 0xCBF43926u);
}

/* index_crc32 (carry-less multiplication where the CPU has it) is zlib's crc32 for every
 * length, alignment and content. */
static void test_crc(void)
{
    unsigned char buf[1100];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof buf; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (unsigned char)(x >> 16);
    }
    for (size_t off = 0; off < 16; off++)
        for (size_t n = 0; off + n <= 1084; n += n < 300 ? 1 : 37)
            UNIT_EQ_INT(index_crc32(buf + off, n), (uint32_t)crc32(0L, buf + off, (uInt)n));
    memset(buf, 0xff, sizeof buf);
    UNIT_EQ_INT(index_crc32(buf, 128), (uint32_t)crc32(0L, buf, 128));
    memset(buf, 0, sizeof buf);
    UNIT_EQ_INT(index_crc32(buf, 1000), (uint32_t)crc32(0L, buf, 1000));
}

static void test_header(void)
{
    struct index_header h, d;
    memset(&h, 0, sizeof h);
    h.uidvalidity = 1234567890;
    h.uidnext = 77;
    h.record_count = 50;
    h.prev_count = 49;
    h.exists = 40;
    h.deleted = 3; h.seen = 20; h.answered = 2; h.flagged = 1;
    h.expunged = 10;
    h.keyword_count = 2;
    h.keyword_bytes = 9;
    h.keyword_crc = 0xdeadbeef;
    h.commit = 12;
    h.highestmodseq = 0x100000001ull;
    h.quota_used = 5ull << 33;
    h.generation = 3;
    unsigned char slot[INDEX_SLOT_SIZE];
    index_header_encode(&h, slot);
    UNIT_CHECK(!memcmp(slot, "COFFERIX", 8));
    UNIT_EQ_INT(index_header_decode(slot, &d), 0);
    UNIT_EQ_INT(d.version, INDEX_VERSION);
    UNIT_EQ_INT(d.header_size, INDEX_HEADER_SIZE);
    UNIT_EQ_INT(d.record_size, INDEX_RECORD_SIZE);
    UNIT_EQ_INT(d.uidvalidity, 1234567890);
    UNIT_EQ_INT(d.uidnext, 77);
    UNIT_EQ_INT(d.record_count, 50);
    UNIT_EQ_INT(d.prev_count, 49);
    UNIT_EQ_INT(d.exists, 40);
    UNIT_EQ_INT(d.deleted, 3);
    UNIT_EQ_INT(d.seen, 20);
    UNIT_EQ_INT(d.answered, 2);
    UNIT_EQ_INT(d.flagged, 1);
    UNIT_EQ_INT(d.expunged, 10);
    UNIT_EQ_INT(d.keyword_count, 2);
    UNIT_EQ_INT(d.keyword_bytes, 9);
    UNIT_EQ_INT(d.keyword_crc, 0xdeadbeef);
    UNIT_EQ_INT(d.commit, 12);
    UNIT_CHECK(d.highestmodseq == 0x100000001ull);
    UNIT_CHECK(d.quota_used == 5ull << 33);
    UNIT_EQ_INT(d.generation, 3);
    /* fixed byte positions, as the man page documents them */
    UNIT_EQ_INT(le_get32(slot + 24), 77);
    UNIT_CHECK(le_get64(slot + 72) == 0x100000001ull);
    /* every single-bit flip is caught */
    int caught = 0;
    for (int bit = 0; bit < INDEX_SLOT_SIZE * 8; bit++) {
        slot[bit / 8] ^= (unsigned char)(1 << (bit % 8));
        if (index_header_decode(slot, &d) == CF_E_CORRUPT) caught++;
        slot[bit / 8] ^= (unsigned char)(1 << (bit % 8));
    }
    UNIT_EQ_INT(caught, INDEX_SLOT_SIZE * 8);
    /* wrong version with a right checksum */
    le_put32(slot + 8, INDEX_VERSION + 1);
    le_put32(slot + 124, index_crc32(slot, 124));
    UNIT_EQ_INT(index_header_decode(slot, &d), CF_E_CORRUPT);
}

static void test_record(void)
{
    struct index_record r, d;
    memset(&r, 0, sizeof r);
    r.uid = 4000000000u;
    r.flags = FLAG_SEEN | FLAG_DRAFT | FLAG_EXPUNGED;
    r.internaldate = 1700000000;
    r.sentdate = -5;
    r.size = 6ull << 32;
    r.modseq = 99;
    r.cache_offset = 1ull << 40;
    r.header_size = 812;
    r.body_lines = 33;
    index_user_flag_set(&r, 0, 1);
    index_user_flag_set(&r, 127, 1);
    index_user_flag_set(&r, 64, 1);
    index_user_flag_set(&r, 64, 0);
    for (int i = 0; i < 20; i++) r.guid[i] = (uint8_t)(i * 13);
    r.savedate = -7;                        /* version 3: bytes 104-111 */
    r.threadid = 0x8877665544332211ull;     /* bytes 112-119 */
    unsigned char raw[INDEX_RECORD_SIZE];
    index_record_encode(&r, raw);
    UNIT_EQ_INT(index_record_uid(raw), 4000000000u);
    UNIT_EQ_INT(index_record_decode(raw, &d), 0);
    UNIT_EQ_INT(d.uid, r.uid);
    UNIT_EQ_INT(d.flags, r.flags);
    UNIT_EQ_INT(d.internaldate, 1700000000);
    UNIT_EQ_INT(d.sentdate, -5);
    UNIT_CHECK(d.size == 6ull << 32);
    UNIT_EQ_INT(d.modseq, 99);
    UNIT_CHECK(d.cache_offset == 1ull << 40);
    UNIT_EQ_INT(d.header_size, 812);
    UNIT_EQ_INT(d.body_lines, 33);
    UNIT_CHECK(index_user_flag_get(&d, 0));
    UNIT_CHECK(index_user_flag_get(&d, 127));
    UNIT_CHECK(!index_user_flag_get(&d, 64));
    UNIT_CHECK(!index_user_flag_get(&d, 1));
    UNIT_CHECK(!memcmp(d.guid, r.guid, 20));
    UNIT_EQ_INT(d.savedate, -7);
    UNIT_CHECK(d.threadid == 0x8877665544332211ull);
    UNIT_EQ_INT(raw[112], 0x11);
    UNIT_EQ_INT(raw[119], 0x88);
    UNIT_EQ_INT(raw[120], 0);     /* bytes 120-123 reserved */
    UNIT_EQ_INT(raw[56], 1);      /* keyword 0 is bit 0 of byte 56 */
    UNIT_EQ_INT(raw[71], 0x80);   /* keyword 127 is bit 7 of byte 71 */
    int caught = 0;
    for (int bit = 0; bit < INDEX_RECORD_SIZE * 8; bit++) {
        raw[bit / 8] ^= (unsigned char)(1 << (bit % 8));
        if (index_record_decode(raw, &d) == CF_E_CORRUPT) caught++;
        raw[bit / 8] ^= (unsigned char)(1 << (bit % 8));
    }
    UNIT_EQ_INT(caught, INDEX_RECORD_SIZE * 8);
}

/* build_file: an index image with n records, committed twice (slots 0 and 1 both valid). */
static unsigned char *build_file(uint32_t n, size_t *len_r, struct index_header *h)
{
    size_t len;
    unsigned char *f = index_new_file(42, 1, &len);
    f = xrealloc(f, INDEX_HEADER_SIZE + (size_t)n * INDEX_RECORD_SIZE);
    memcpy(f + INDEX_KEYWORD_OFFSET, "$Junk\0work\0", 11);
    for (uint32_t i = 0; i < n; i++) {
        struct index_record r;
        memset(&r, 0, sizeof r);
        r.uid = i * 2 + 1;
        r.size = 100;
        index_record_encode(&r, f + index_record_offset(i));
    }
    struct index_header_pair { struct index_header a, b; } p;
    memset(&p, 0, sizeof p);
    p.a.uidvalidity = 42;
    p.a.uidnext = n ? n * 2 : 1;
    p.a.record_count = n ? n - 1 : 0;
    p.a.prev_count = p.a.record_count;
    p.a.exists = p.a.record_count;
    p.a.commit = 2;
    p.a.keyword_count = 1;
    p.a.keyword_bytes = 6;
    p.a.keyword_crc = index_crc32(f + INDEX_KEYWORD_OFFSET, 6);
    p.b = p.a;
    p.b.record_count = n;
    p.b.exists = n;
    p.b.commit = 3;
    p.b.keyword_count = 2;
    p.b.keyword_bytes = 11;
    p.b.keyword_crc = index_crc32(f + INDEX_KEYWORD_OFFSET, 11);
    index_header_encode(&p.a, f + index_slot_offset(2));
    index_header_encode(&p.b, f + index_slot_offset(3));
    *len_r = INDEX_HEADER_SIZE + (size_t)n * INDEX_RECORD_SIZE;
    if (h) *h = p.b;
    return f;
}

static void test_choose(void)
{
    size_t len;
    struct index_header h;
    int slot;
    unsigned char *f = build_file(10, &len, NULL);
    UNIT_EQ_INT(index_choose_header(f, len, &h, &slot), 0);
    UNIT_EQ_INT(h.commit, 3);
    UNIT_EQ_INT(slot, 1);
    UNIT_EQ_INT(h.record_count, 10);
    size_t kl;
    const char *kw = index_keyword_get(f + INDEX_KEYWORD_OFFSET, h.keyword_bytes, 1, &kl);
    UNIT_CHECK(kw && kl == 4 && !memcmp(kw, "work", 4));
    UNIT_CHECK(index_keyword_get(f + INDEX_KEYWORD_OFFSET, h.keyword_bytes, 2, &kl) == NULL);
    /* a torn commit: the newest slot's appended record is damaged -> the older slot wins */
    f[index_record_offset(9) + 10] ^= 0xff;
    UNIT_EQ_INT(index_choose_header(f, len, &h, &slot), 1);
    UNIT_EQ_INT(h.commit, 2);
    UNIT_EQ_INT(slot, 0);
    UNIT_EQ_INT(h.record_count, 9);
    UNIT_EQ_INT(h.keyword_count, 1);
    f[index_record_offset(9) + 10] ^= 0xff;
    /* a torn header slot: the other one wins */
    f[INDEX_SLOT1_OFFSET + 30] ^= 1;
    UNIT_EQ_INT(index_choose_header(f, len, &h, &slot), 0);   /* the only valid slot */
    UNIT_EQ_INT(h.commit, 2);
    /* both slots bad -> corrupt */
    f[INDEX_SLOT0_OFFSET + 30] ^= 1;
    UNIT_EQ_INT(index_choose_header(f, len, &h, &slot), CF_E_CORRUPT);
    f[INDEX_SLOT0_OFFSET + 30] ^= 1;
    f[INDEX_SLOT1_OFFSET + 30] ^= 1;
    /* file shorter than the record count claims */
    UNIT_EQ_INT(index_choose_header(f, len - 1, &h, &slot), 1);  /* falls back to 9 records */
    UNIT_EQ_INT(h.record_count, 9);
    UNIT_EQ_INT(index_choose_header(f, len - INDEX_RECORD_SIZE - 1, &h, &slot), CF_E_CORRUPT);
    /* a damaged keyword area */
    f[INDEX_KEYWORD_OFFSET] = 'X';
    UNIT_EQ_INT(index_choose_header(f, len, &h, &slot), CF_E_CORRUPT);
    free(f);
    /* a new empty index */
    f = index_new_file(7, 1, &len);
    UNIT_EQ_INT(len, INDEX_HEADER_SIZE);
    UNIT_EQ_INT(index_choose_header(f, len, &h, &slot), 0);
    UNIT_EQ_INT(h.uidvalidity, 7);
    UNIT_EQ_INT(h.uidnext, 1);
    UNIT_EQ_INT(h.record_count, 0);
    free(f);
}

/* set_record: re-encode record i of f with flags, modseq and keyword bit kw (-1: none). */
static void set_record(unsigned char *f, uint32_t i, uint32_t flags, uint64_t modseq, int kw)
{
    struct index_record r;
    UNIT_EQ_INT(index_record_decode(f + index_record_offset(i), &r), 0);
    r.flags = flags;
    r.modseq = modseq;
    if (kw >= 0) index_user_flag_set(&r, (unsigned)kw, 1);
    index_record_encode(&r, f + index_record_offset(i));
}

static void test_recount(void)
{
    size_t len;
    struct index_header h, o;
    unsigned char *f = build_file(10, &len, NULL);
    UNIT_EQ_INT(index_choose_header(f, len, &h, NULL), 0);
    h.quota_used = 1000;   /* ten records of 100 bytes */
    UNIT_EQ_INT(index_recount(f, &h, &o), 0);
    UNIT_EQ_INT(o.exists, 10);
    UNIT_CHECK(o.quota_used == 1000);
    /* records changed in place without their header: an EXPUNGE and a STORE cut short */
    set_record(f, 3, FLAG_DELETED | FLAG_EXPUNGED, 5, -1);
    set_record(f, 4, FLAG_SEEN | FLAG_DELETED | FLAG_FLAGGED | FLAG_ANSWERED, 5, -1);
    UNIT_EQ_INT(index_recount(f, &h, &o), 1);
    UNIT_EQ_INT(o.exists, 9);
    UNIT_EQ_INT(o.expunged, 1);
    UNIT_EQ_INT(o.deleted, 1);
    UNIT_EQ_INT(o.seen, 1);
    UNIT_EQ_INT(o.answered, 1);
    UNIT_EQ_INT(o.flagged, 1);
    UNIT_CHECK(o.quota_used == 900);
    UNIT_CHECK(o.highestmodseq == 5);
    UNIT_EQ_INT(o.uidnext, h.uidnext);
    UNIT_EQ_INT(o.record_count, h.record_count);
    UNIT_CHECK(o.commit == h.commit);
    UNIT_EQ_INT(index_recount(f, &o, &o), 0);   /* the repaired header agrees */
    /* a record using keyword bit 1 while the header counts one keyword: the name written
     * after the bytes in use ("work") is taken in */
    h.keyword_count = 1;
    h.keyword_bytes = 6;
    h.keyword_crc = index_crc32(f + INDEX_KEYWORD_OFFSET, 6);
    set_record(f, 5, 0, 6, 1);
    UNIT_EQ_INT(index_recount(f, &h, &o), 1);
    UNIT_EQ_INT(o.keyword_count, 2);
    UNIT_EQ_INT(o.keyword_bytes, 11);
    UNIT_EQ_INT(o.keyword_crc, index_crc32(f + INDEX_KEYWORD_OFFSET, 11));
    UNIT_CHECK(o.highestmodseq == 6);
    /* bit 2 has no name at all: corrupt */
    set_record(f, 6, 0, 6, 2);
    UNIT_EQ_INT(index_recount(f, &h, &o), CF_E_CORRUPT);
    free(f);
}

static void test_intent(void)
{
    struct index_intent it = { 3, 41 }, d;
    unsigned char raw[INDEX_INTENT_SIZE];
    index_intent_encode(&it, raw);
    UNIT_CHECK(!memcmp(raw, "COFFERIN", 8));
    UNIT_EQ_INT(index_intent_decode(raw, &d), 0);
    UNIT_CHECK(d.generation == 3 && d.commit == 41);
    raw[17] ^= 1;
    UNIT_EQ_INT(index_intent_decode(raw, &d), CF_E_CORRUPT);
    size_t len;
    unsigned char *f = index_new_file(7, 3, &len);
    struct index_header h;
    UNIT_EQ_INT(index_choose_header(f, len, &h, NULL), 0);
    UNIT_EQ_INT(index_intent_pending(f, &h), 0);            /* a new file has none */
    it.commit = h.commit + 1;
    index_intent_encode(&it, f + INDEX_INTENT_OFFSET);
    UNIT_EQ_INT(index_intent_pending(f, &h), 1);            /* the next commit never came */
    h.commit++;
    UNIT_EQ_INT(index_intent_pending(f, &h), 0);            /* it came */
    h.commit--;
    h.generation++;
    UNIT_EQ_INT(index_intent_pending(f, &h), 0);            /* left over from before a repack */
    /* the marker lies between the two slots and before the keyword area */
    UNIT_CHECK(INDEX_INTENT_OFFSET >= INDEX_SLOT0_OFFSET + INDEX_SLOT_SIZE);
    UNIT_CHECK(INDEX_INTENT_OFFSET + INDEX_INTENT_SIZE <= INDEX_SLOT1_OFFSET);
    free(f);
}

/* The verified marker's encoding and place, and index_header_unchanged: the same header
 * while its slot keeps its bytes and no later commit exists. */
static void test_verified(void)
{
    struct index_verified v = { { 1, 2, 3 }, 5, 77, 0xdeadbeef }, d;
    unsigned char raw[INDEX_VERIFIED_SIZE];
    index_verified_encode(&v, raw);
    UNIT_CHECK(!memcmp(raw, "COFFERV1", 8));
    UNIT_EQ_INT(index_verified_decode(raw, &d), 0);
    UNIT_CHECK(d.generation == 5 && d.commit == 77 && d.slot_crc == 0xdeadbeef &&
               !memcmp(d.boot_id, v.boot_id, 16));
    raw[40] ^= 1;
    UNIT_EQ_INT(index_verified_decode(raw, &d), CF_E_CORRUPT);
    unsigned char zero[INDEX_VERIFIED_SIZE] = { 0 };
    UNIT_EQ_INT(index_verified_decode(zero, &d), CF_E_CORRUPT);   /* older files */
    UNIT_CHECK(INDEX_VERIFIED_OFFSET >= INDEX_INTENT_OFFSET + INDEX_INTENT_SIZE);
    UNIT_CHECK(INDEX_VERIFIED_OFFSET + INDEX_VERIFIED_SIZE <= INDEX_SLOT1_OFFSET);
    size_t len;
    unsigned char *f = index_new_file(7, 3, &len);
    struct index_header h, u;
    UNIT_EQ_INT(index_choose_header(f, len, &h, NULL), 0);
    uint32_t crc = index_slot_crc(f, &h);
    UNIT_EQ_INT(index_header_unchanged(f, len, h.commit, crc, &u), 0);
    UNIT_CHECK(u.commit == h.commit && u.uidnext == h.uidnext);
    UNIT_EQ_INT(index_header_unchanged(f, len, h.commit, crc ^ 1, &u), CF_E_CORRUPT);
    UNIT_EQ_INT(index_header_unchanged(f, len, 0, crc, &u), CF_E_CORRUPT);
    struct index_header next = h;                 /* a later commit in the other slot */
    next.commit++;
    index_header_encode(&next, f + index_slot_offset(next.commit));
    UNIT_EQ_INT(index_header_unchanged(f, len, h.commit, crc, &u), CF_E_CORRUPT);
    free(f);
}

static void test_cache(void)
{
    struct cache_entry e, d;
    cache_entry_init(&e);
    cache_entry_init(&d);
    e.uid = 17;
    buf_appends(&e.f[CACHE_ENVELOPE], "(NIL \"hi\")");
    e.present[CACHE_ENVELOPE] = 1;
    e.present[CACHE_BODY] = 1;   /* present but empty */
    buf_appends(&e.f[CACHE_HEADER], "Subject: hi\r\n\r\n");
    e.present[CACHE_HEADER] = 1;
    buf_appends(&e.f[CACHE_PREVIEW], "hi \xc3\xa9");
    e.present[CACHE_PREVIEW] = 1;
    struct buf out = BUF_INIT;
    buf_append(&out, "junk", 4);
    size_t start = out.len;
    cache_record_encode(&e, &out);
    const unsigned char *rec = (const unsigned char *)out.s + start;
    size_t rlen = out.len - start;
    UNIT_EQ_INT(cache_record_len(rec), rlen);
    UNIT_EQ_INT(le_get32(rec + 4), 17);
    UNIT_EQ_INT(cache_record_decode(rec, rlen, 17, &d), 0);
    UNIT_EQ_STR(buf_cstr(&d.f[CACHE_ENVELOPE]), "(NIL \"hi\")");
    UNIT_CHECK(d.present[CACHE_BODY] && d.f[CACHE_BODY].len == 0);
    UNIT_CHECK(!d.present[CACHE_BODYSTRUCTURE]);
    UNIT_EQ_STR(buf_cstr(&d.f[CACHE_HEADER]), "Subject: hi\r\n\r\n");
    UNIT_EQ_STR(buf_cstr(&d.f[CACHE_PREVIEW]), "hi \xc3\xa9");
    UNIT_EQ_INT(cache_record_decode(rec, rlen, 18, &d), CF_E_CORRUPT);   /* wrong uid */
    UNIT_EQ_INT(cache_record_decode(rec, rlen - 1, 17, &d), CF_E_CORRUPT); /* cut short */
    int caught = 0;
    for (size_t bit = 0; bit < rlen * 8; bit++) {
        out.s[start + bit / 8] ^= (char)(1 << (bit % 8));
        if (cache_record_decode(rec, rlen, 17, &d) < 0) caught++;
        out.s[start + bit / 8] ^= (char)(1 << (bit % 8));
    }
    UNIT_EQ_INT(caught, rlen * 8);
    unsigned char head[CACHE_HEADER_SIZE];
    cache_header_encode(head);
    UNIT_EQ_INT(cache_header_check(head, sizeof head), 0);
    head[8] = 9;
    UNIT_EQ_INT(cache_header_check(head, sizeof head), CF_E_CORRUPT);
    buf_fini(&out);
    cache_entry_fini(&e);
    cache_entry_fini(&d);
}

static void test_mbheader(void)
{
    struct mbheader h = { "user.alice.Sent Items", "0123456789abcdef0123456789abcdef",
                          "alice\tlrswipkxtecda\tanyone\tp", 99 }, d;
    struct buf b = BUF_INIT;
    UNIT_EQ_INT(mbheader_encode(&h, &b), 0);
    mbheader_init(&d);
    UNIT_EQ_INT(mbheader_parse(b.s, b.len, &d), 0);
    UNIT_EQ_STR(d.name, h.name);
    UNIT_EQ_STR(d.uniqueid, h.uniqueid);
    UNIT_EQ_STR(d.acl, h.acl);
    UNIT_EQ_INT(d.uidvalidity, 99);
    UNIT_EQ_INT(mbheader_parse(b.s, b.len - 1, &d), CF_E_CORRUPT);   /* cut file */
    UNIT_EQ_INT(mbheader_parse("coffer-mailbox-header 2\n", 24, &d), CF_E_CORRUPT);
    mbheader_fini(&d);
    h.name = "bad\nname";
    buf_reset(&b);
    UNIT_EQ_INT(mbheader_encode(&h, &b), CF_E_PARSE);
    buf_fini(&b);
}

static void test_partition(void)
{
    char id[UNIQUEID_LEN + 1], id2[UNIQUEID_LEN + 1];
    partition_new_uniqueid(id);
    partition_new_uniqueid(id2);
    UNIT_CHECK(partition_uniqueid_valid(id));
    UNIT_CHECK(strcmp(id, id2) != 0);
    UNIT_CHECK(!partition_uniqueid_valid("0123456789ABCDEF0123456789abcdef"));
    UNIT_CHECK(!partition_uniqueid_valid("0123"));
    UNIT_CHECK(!partition_uniqueid_valid("../3456789abcdef0123456789abcdef"));
    char *d = partition_mailbox_dir("/p", "ab23456789abcdef0123456789abcdef");
    UNIT_EQ_STR(d, "/p/ab/ab23456789abcdef0123456789abcdef");
    free(d);
}

/* index_record_set_flags: the checksum it derives from what changed equals a fresh encode's,
 * and a record damaged before stays damaged. */
static void test_set_flags(void)
{
    struct index_record r, d;
    memset(&r, 0, sizeof r);
    r.uid = 4711;
    r.flags = FLAG_SEEN | FLAG_DRAFT;
    r.internaldate = 1700000000;
    r.size = 12345;
    r.modseq = 0x0102030405060708ull;
    r.user_flags[0] = 0x81;
    r.user_flags[15] = 0x40;
    for (int i = 0; i < 20; i++) r.guid[i] = (uint8_t)(i * 7 + 1);
    r.threadid = 99;
    unsigned char in[INDEX_RECORD_SIZE], out[INDEX_RECORD_SIZE], want[INDEX_RECORD_SIZE];
    index_record_encode(&r, in);
    for (unsigned k = 0; k < 300; k++) {
        struct index_record n = r;
        n.flags = (k * 2654435761u) & (FLAG_SYSTEM_MASK | FLAG_EXPUNGED);
        n.modseq = r.modseq + k * 0x10001ull;
        for (int i = 0; i < 16; i++) n.user_flags[i] = (uint8_t)(k * 31 + i * 17);
        index_record_set_flags(in, out, n.flags, n.user_flags, n.modseq);
        index_record_encode(&n, want);
        UNIT_CHECK(!memcmp(out, want, sizeof out));
        UNIT_EQ_INT(index_record_decode(out, &d), 0);
        UNIT_EQ_INT(d.flags, n.flags);
    }
    in[80] ^= 0x10;   /* a GUID byte damaged on disk */
    index_record_set_flags(in, out, FLAG_FLAGGED, r.user_flags, r.modseq + 1);
    UNIT_EQ_INT(index_record_decode(out, &d), CF_E_CORRUPT);
}

int main(void)
{
    test_le();
    test_crc();
    test_header();
    test_record();
    test_set_flags();
    test_choose();
    test_recount();
    test_intent();
    test_verified();
    test_cache();
    test_mbheader();
    test_partition();
    UNIT_DONE();
}
