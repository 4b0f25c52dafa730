/* fuzz-cache.c: fuzz target for the cache file decoder (lib/store/cache.c): the file header
 * and a chain of records. Byte 0 of the input says whether the target fixes up the records'
 * checksums (bit 0) and whether a 16-byte file header comes first (bit 1); the rest is the
 * file. Properties: a decoded record re-encodes to bytes that decode to the same fields, and
 * its fields lie inside the record; the copy-free parse (cache_record_parse) accepts only
 * what the decoder accepts, with the same fields. */
#include "fuzz-util.h"
#include "core/buf.h"
#include "core/error.h"
#include "store/cache.h"
#include "store/index.h"

static void check_entry(const struct cache_entry *e, size_t reclen)
{
    struct buf enc = BUF_INIT;
    struct cache_entry e2;
    size_t sum = 0;
    for (int id = 1; id < CACHE_NFIELDS; id++) sum += e->f[id].len;
    FUZZ_ASSERT(sum + 12 <= reclen);
    cache_entry_init(&e2);
    cache_record_encode(e, &enc);
    FUZZ_ASSERT(enc.len <= reclen);      /* unknown fields are dropped, never added */
    FUZZ_ASSERT(cache_record_len((const unsigned char *)enc.s) == enc.len);
    FUZZ_ASSERT(cache_record_decode((const unsigned char *)enc.s, enc.len, e->uid, &e2) == 0);
    for (int id = 1; id < CACHE_NFIELDS; id++) {
        FUZZ_ASSERT(e2.present[id] == e->present[id]);
        FUZZ_ASSERT(e2.f[id].len == e->f[id].len);
        FUZZ_ASSERT(!e->f[id].len || !memcmp(e2.f[id].s, e->f[id].s, e->f[id].len));
    }
    cache_entry_fini(&e2);
    buf_fini(&enc);
}

/* check_parse: cache_record_parse agrees with cache_record_decode (r its result, e its
 * entry) on rec: never accepts what decode refused; where it accepts, the same fields, lying
 * inside the record. */
static void check_parse(const unsigned char *rec, size_t avail, uint32_t uid, int r,
                        const struct cache_entry *e)
{
    struct cache_view v;
    int rp = cache_record_parse(rec, avail, uid, &v);
    FUZZ_ASSERT(rp == 0 || rp == CF_E_CORRUPT);
    if (rp < 0) return;         /* decode may still join a field given twice */
    FUZZ_ASSERT(r == 0);
    size_t n = cache_record_len(rec);
    for (int id = 1; id < CACHE_NFIELDS; id++) {
        FUZZ_ASSERT(v.present[id] == e->present[id]);
        FUZZ_ASSERT(v.len[id] == e->f[id].len);
        if (!v.present[id]) continue;
        FUZZ_ASSERT(v.p[id] >= (const char *)rec + 8 && v.p[id] + v.len[id] <= (const char *)rec + n - 4);
        FUZZ_ASSERT(!v.len[id] || !memcmp(v.p[id], e->f[id].s, v.len[id]));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned flags = data[0];
    size_t len = size - 1;
    unsigned char *file = malloc(len ? len : 1);
    if (!file) abort();
    memcpy(file, data + 1, len);
    size_t pos = 0;
    if (flags & 2) {
        (void)cache_header_check(file, len);
        pos = CACHE_HEADER_SIZE;
    }
    struct cache_entry e;
    cache_entry_init(&e);
    while (pos + 4 <= len) {
        unsigned char *rec = file + pos;
        size_t n = cache_record_len(rec);
        if (!n) break;
        if ((flags & 1) && n <= len - pos)
            le_put32(rec + n - 4, index_crc32(rec, n - 4));
        uint32_t uid = le_get32(len - pos >= 8 ? rec + 4 : rec);
        int r = cache_record_decode(rec, len - pos, (flags & 4) ? uid + 1 : uid, &e);
        FUZZ_ASSERT(r == 0 || r == CF_E_CORRUPT);
        check_parse(rec, len - pos, (flags & 4) ? uid + 1 : uid, r, &e);
        if (r == 0) check_entry(&e, n);
        r = cache_record_decode(rec, len - pos, 0, &e);
        if (r == 0) check_entry(&e, n);
        if (n > len - pos) break;
        pos += n;
    }
    cache_entry_fini(&e);
    free(file);
    return 0;
}
