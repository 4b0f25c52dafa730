/* cache.h: the per-mailbox cache file: an append-only file of per-message records of
 * (field id, length, bytes) fields with a CRC32, holding what the MIME parser computed. */
#ifndef COFFER_STORE_CACHE_H
#define COFFER_STORE_CACHE_H
#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"

#define CACHE_MAGIC "COFFERCA"
#define CACHE_VERSION 1
#define CACHE_HEADER_SIZE 16
#define CACHE_MAX_RECORD (64u << 20)  /* a bigger length field is treated as damage */
#define CACHE_HEADER_MAX (8u << 10)   /* top-level headers up to this size are cached */

enum cache_field {
    CACHE_ENVELOPE = 1,
    CACHE_BODYSTRUCTURE = 2,
    CACHE_BODY = 3,
    CACHE_SECTIONS = 4,
    CACHE_HEADER = 5,     /* the raw top-level header block, when at most CACHE_HEADER_MAX */
    CACHE_PREVIEW = 6,    /* RFC 8970 preview text (UTF-8, possibly empty; mime_preview) */
    CACHE_BINSIZE = 7,    /* decoded sizes of the encoded parts (lib/mime/binsize.h) */
    CACHE_NFIELDS = 8     /* one past the last id */
};

/* One decoded cache record; f[id] holds field id (f[0] unused). An absent field is empty with
 * present[id] == 0. */
struct cache_entry {
    uint32_t uid;
    struct buf f[CACHE_NFIELDS];
    int present[CACHE_NFIELDS];
};

void cache_entry_init(struct cache_entry *e);
void cache_entry_fini(struct cache_entry *e);

/* cache_header_encode: the CACHE_HEADER_SIZE bytes that start a cache file. */
void cache_header_encode(unsigned char *out);

/* cache_header_check: 0 if the first bytes of a cache file are a valid header, else
 * CF_E_CORRUPT. */
int cache_header_check(const unsigned char *in, size_t len);

/* cache_record_encode: append the encoded record of e (its present fields) to out. */
void cache_record_encode(const struct cache_entry *e, struct buf *out);

/* cache_record_decode: decode one record from in[0..len) (len may exceed the record: the
 * record's own length field says where it ends). 0, or CF_E_CORRUPT on a bad length, checksum,
 * uid mismatch (when uid is not 0) or field layout. */
int cache_record_decode(const unsigned char *in, size_t len, uint32_t uid,
                        struct cache_entry *e);

/* A record's fields in place: v->p[id] points into the bytes given to cache_record_parse
 * (valid as long as they are), v->len[id] its length; present[id] 0 for an absent field. */
struct cache_view {
    uint32_t uid;
    const char *p[CACHE_NFIELDS];
    size_t len[CACHE_NFIELDS];
    int present[CACHE_NFIELDS];
};

/* cache_record_parse: cache_record_decode without copying: the same checks, the fields of
 * the record at in[0..len) as pointers into in. 0 or CF_E_CORRUPT (also for a field id given
 * twice, which the encoder never writes and cache_record_decode joins). */
int cache_record_parse(const unsigned char *in, size_t len, uint32_t uid, struct cache_view *v);

/* cache_view_of: v pointing at the fields of e (valid until e changes). */
void cache_view_of(const struct cache_entry *e, struct cache_view *v);

/* cache_record_len: the total length claimed by the record starting at in (at least 4 bytes
 * readable), or 0 when implausible. */
size_t cache_record_len(const unsigned char *in);

/* cache_read: read and decode the record at offset of the open cache file fd. 0,
 * CF_E_CORRUPT (damaged, short or mismatched record), or CF_E_IO. Blocks on disk reads. */
int cache_read(int fd, uint64_t offset, uint32_t uid, struct cache_entry *e);

#endif
