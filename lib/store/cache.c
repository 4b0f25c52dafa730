/* cache.c: encoding, decoding and reading of cache file records. */
#include "store/cache.h"
#include "store/index.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/xmalloc.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Record layout: length (4), uid (4), fields: id (4), length (4), bytes; then CRC32 (4) of all
 * the bytes before it. */
#define REC_MIN 12

void cache_entry_init(struct cache_entry *e)
{
    memset(e, 0, sizeof *e);
    for (int i = 0; i < CACHE_NFIELDS; i++) buf_init(&e->f[i]);
}

void cache_entry_fini(struct cache_entry *e)
{
    for (int i = 0; i < CACHE_NFIELDS; i++) buf_fini(&e->f[i]);
    memset(e->present, 0, sizeof e->present);
}

void cache_header_encode(unsigned char *out)
{
    memset(out, 0, CACHE_HEADER_SIZE);
    memcpy(out, CACHE_MAGIC, 8);
    le_put32(out + 8, CACHE_VERSION);
    le_put32(out + 12, CACHE_HEADER_SIZE);
}

int cache_header_check(const unsigned char *in, size_t len)
{
    if (len < CACHE_HEADER_SIZE || memcmp(in, CACHE_MAGIC, 8) != 0 ||
        le_get32(in + 8) != CACHE_VERSION || le_get32(in + 12) != CACHE_HEADER_SIZE)
        return CF_E_CORRUPT;
    return 0;
}

void cache_record_encode(const struct cache_entry *e, struct buf *out)
{
    size_t start = out->len;
    unsigned char tmp[8];
    buf_append(out, "\0\0\0\0", 4);    /* length, filled in below */
    le_put32(tmp, e->uid);
    buf_append(out, tmp, 4);
    for (int id = 1; id < CACHE_NFIELDS; id++) {
        if (!e->present[id]) continue;
        le_put32(tmp, (uint32_t)id);
        le_put32(tmp + 4, (uint32_t)e->f[id].len);
        buf_append(out, tmp, 8);
        if (e->f[id].len) buf_append(out, e->f[id].s, e->f[id].len);
    }
    size_t total = out->len - start + 4;
    le_put32((unsigned char *)out->s + start, (uint32_t)total);
    le_put32(tmp, index_crc32(out->s + start, total - 4));
    buf_append(out, tmp, 4);
}

size_t cache_record_len(const unsigned char *in)
{
    uint32_t n = le_get32(in);
    if (n < REC_MIN || n > CACHE_MAX_RECORD) return 0;
    return n;
}

/* record_check: the record at in (len bytes available) is whole, its checksum holds and, when
 * uid is not 0, it is that message's; its length in *n_r. Shared by parse and decode. */
static int record_check(const unsigned char *in, size_t len, uint32_t uid, size_t *n_r)
{
    if (len < REC_MIN) return CF_E_CORRUPT;
    size_t n = cache_record_len(in);
    if (!n || n > len) return CF_E_CORRUPT;
    if (le_get32(in + n - 4) != index_crc32(in, n - 4)) return CF_E_CORRUPT;
    if (uid && le_get32(in + 4) != uid) return CF_E_CORRUPT;
    *n_r = n;
    return 0;
}

int cache_record_parse(const unsigned char *in, size_t len, uint32_t uid, struct cache_view *v)
{
    size_t n;
    if (record_check(in, len, uid, &n) < 0) return CF_E_CORRUPT;
    uint32_t ruid = le_get32(in + 4);
    memset(v, 0, sizeof *v);
    v->uid = ruid;
    size_t pos = 8, end = n - 4;
    while (pos < end) {
        if (end - pos < 8) return CF_E_CORRUPT;
        uint32_t id = le_get32(in + pos), flen = le_get32(in + pos + 4);
        pos += 8;
        if (flen > end - pos) return CF_E_CORRUPT;
        /* Unknown field ids (from a later version) are skipped; a field given twice (never
         * written so) is left to cache_record_decode, which joins the parts */
        if (id > 0 && id < CACHE_NFIELDS) {
            if (v->present[id]) return CF_E_CORRUPT;
            v->p[id] = (const char *)in + pos;
            v->len[id] = flen;
            v->present[id] = 1;
        }
        pos += flen;
    }
    return 0;
}

void cache_view_of(const struct cache_entry *e, struct cache_view *v)
{
    v->uid = e->uid;
    for (int i = 0; i < CACHE_NFIELDS; i++) {
        v->p[i] = e->f[i].s ? e->f[i].s : "";
        v->len[i] = e->f[i].len;
        v->present[i] = e->present[i];
    }
}

int cache_record_decode(const unsigned char *in, size_t len, uint32_t uid,
                        struct cache_entry *e)
{
    size_t n;
    if (record_check(in, len, uid, &n) < 0) return CF_E_CORRUPT;
    uint32_t ruid = le_get32(in + 4);
    for (int i = 0; i < CACHE_NFIELDS; i++) {
        buf_reset(&e->f[i]);
        e->present[i] = 0;
    }
    e->uid = ruid;
    size_t pos = 8, end = n - 4;
    while (pos < end) {
        if (end - pos < 8) return CF_E_CORRUPT;
        uint32_t id = le_get32(in + pos), flen = le_get32(in + pos + 4);
        pos += 8;
        if (flen > end - pos) return CF_E_CORRUPT;
        /* Unknown field ids (from a later version) are skipped. */
        if (id > 0 && id < CACHE_NFIELDS) {
            buf_append(&e->f[id], in + pos, flen);
            e->present[id] = 1;
        }
        pos += flen;
    }
    return 0;
}

int cache_read(int fd, uint64_t offset, uint32_t uid, struct cache_entry *e)
{
    /* One pread brings in the whole record in the common case (a record is mostly a couple
     * of KiB: the IMAP texts and the top-level header block); a longer one takes a second
     * read. FETCH of ENVELOPE/BODYSTRUCTURE for a whole mailbox is one such read per message,
     * so the first read is kept small: every byte of it is copied out of the page cache. */
    enum { FIRST = 4096 };
    unsigned char first[FIRST];
    if (offset < CACHE_HEADER_SIZE) return CF_E_CORRUPT;
    ssize_t r;
    do r = pread(fd, first, FIRST, (off_t)offset);
    while (r < 0 && errno == EINTR);
    if (r < 0) return CF_E_IO;
    if (r < 4) return CF_E_CORRUPT;
    size_t n = cache_record_len(first);
    if (!n) return CF_E_CORRUPT;
    if (n <= (size_t)r) return cache_record_decode(first, n, uid, e);
    if (r < FIRST) return CF_E_CORRUPT;     /* the file ends inside the record */
    unsigned char *p = xmalloc(n);
    memcpy(p, first, FIRST);
    size_t got = FIRST;
    int ret = 0;
    while (got < n) {
        r = pread(fd, p + got, n - got, (off_t)(offset + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { ret = CF_E_IO; goto done; }
        if (r == 0) { ret = CF_E_CORRUPT; goto done; }
        got += (size_t)r;
    }
    ret = cache_record_decode(p, n, uid, e);
done:
    free(p);
    return ret;
}
