/* index.h: the binary per-mailbox index file: encode/decode of its header slots, keyword area
 * and fixed-size message records, all little-endian with CRC32 checksums (man coffer-store(5)). */
#ifndef COFFER_STORE_INDEX_H
#define COFFER_STORE_INDEX_H
#include <stddef.h>
#include <stdint.h>

#define INDEX_MAGIC "COFFERIX"
#define INDEX_VERSION 3           /* written; versions 1 (no expunged_at) and 2 (no savedate,
                                   * threadid) are still read */
#define INDEX_VERSION_MIN 1
#define INDEX_SLOT_SIZE 128          /* bytes of one header slot (checksum included) */
#define INDEX_SLOT0_OFFSET 0
#define INDEX_SLOT1_OFFSET 512       /* a different disk sector from slot 0 */
#define INDEX_INTENT_OFFSET 256      /* the in-place change marker (struct index_intent) */
#define INDEX_INTENT_SIZE 32
#define INDEX_VERIFIED_OFFSET 320    /* the verified-counts marker (struct index_verified) */
#define INDEX_VERIFIED_SIZE 64
#define INDEX_KEYWORD_OFFSET 1024    /* keyword names area, up to the header size */
#define INDEX_HEADER_SIZE 8192       /* records start here */
#define INDEX_RECORD_SIZE 128        /* divides 512 and 4096: a record never straddles a sector */
#define INDEX_MAX_KEYWORDS 128
#define INDEX_KEYWORD_AREA (INDEX_HEADER_SIZE - INDEX_KEYWORD_OFFSET)

/* System flags of a record (struct index_record.flags). */
#define FLAG_SEEN      0x01u
#define FLAG_ANSWERED  0x02u
#define FLAG_FLAGGED   0x04u
#define FLAG_DELETED   0x08u
#define FLAG_DRAFT     0x10u
#define FLAG_SYSTEM_MASK 0x1fu
#define FLAG_EXPUNGED  0x80000000u   /* internal: removed, waiting for a repack (expunged_at) */

struct index_header {
    uint32_t version;
    uint32_t header_size;
    uint32_t record_size;
    uint32_t uidvalidity;
    uint32_t uidnext;
    uint32_t record_count;   /* records in the file that count; bytes past them are ignored */
    uint32_t prev_count;     /* record_count before the commit that wrote this slot */
    uint32_t exists;         /* records without FLAG_EXPUNGED */
    uint32_t deleted, seen, answered, flagged;   /* among the existing records */
    uint32_t expunged;       /* records with FLAG_EXPUNGED still in the file */
    uint32_t keyword_count;
    uint32_t keyword_bytes;  /* bytes used in the keyword area */
    uint32_t keyword_crc;    /* CRC32 of those bytes */
    uint64_t commit;         /* commit sequence number; the slot is commit % 2 */
    uint64_t highestmodseq;
    uint64_t quota_used;     /* sum of the sizes of the existing records */
    uint64_t generation;     /* bumped by every repack */
    /* RFC 7162 VANISHED: the highest modseq of an expunged record that a repack (or a
     * reconstruct) dropped from the file; 0 when none ever was. Expunges with a higher
     * modseq are all still in the file, so "what vanished since modseq m" has an exact answer
     * for m >= vanished_modseq (mailbox_modseq_scan). Bytes 104-111 of the slot (zero in
     * files written before the field existed; coffer-store(5)). */
    uint64_t vanished_modseq;
};

struct index_record {
    uint32_t uid;
    uint32_t flags;          /* FLAG_* */
    int64_t internaldate;    /* seconds since the epoch */
    int64_t sentdate;        /* from the Date: header, seconds since the epoch, 0 if none */
    uint64_t size;           /* bytes of the message file */
    uint64_t modseq;
    uint64_t cache_offset;   /* of this message's record in the cache file, 0 if none */
    uint32_t header_size;    /* bytes of the top-level header, including the empty line */
    uint32_t body_lines;
    uint8_t user_flags[INDEX_MAX_KEYWORDS / 8]; /* bit k (byte k/8, bit k%8) = keyword k */
    uint8_t guid[20];        /* SHA-1 of the message bytes */
    int64_t expunged_at;     /* with FLAG_EXPUNGED: when, seconds since the epoch, if the
                              * message file was kept for unexpunge (expunge_mode delayed);
                              * 0 when the file is gone (immediate mode, an unexpunged
                              * original, or a record written by index version 1) */
    int64_t savedate;        /* RFC 8514: when the message was stored in this mailbox (append,
                              * delivery, copy, move), seconds since the epoch; 0 = unknown
                              * (records written before index version 3) */
    uint64_t threadid;       /* RFC 8474 THREADID: the first 8 bytes of the SHA-1 of the
                              * thread root's Message-ID (mime_thread_root), or of the GUID when
                              * the message names none; never 0 once set; 0 = not computed
                              * (records written before index version 3) */
};

/* Little-endian helpers, also used by the cache file. */
void le_put32(unsigned char *p, uint32_t v);
void le_put64(unsigned char *p, uint64_t v);
uint32_t le_get32(const unsigned char *p);
uint64_t le_get64(const unsigned char *p);

/* index_crc32: CRC-32 (zlib polynomial) of len bytes. */
uint32_t index_crc32(const void *p, size_t len);

/* index_header_encode: fill out[INDEX_SLOT_SIZE] (magic, fields, checksum). */
void index_header_encode(const struct index_header *h, unsigned char *out);

/* index_header_decode: parse one slot. 0, or CF_E_CORRUPT on a bad magic, version, size or
 * checksum (nothing logged: the caller knows the mailbox). */
int index_header_decode(const unsigned char *in, struct index_header *h);

/* index_record_encode: fill out[INDEX_RECORD_SIZE] with the record and its checksum. */
void index_record_encode(const struct index_record *r, unsigned char *out);

/* index_record_set_flags: out (INDEX_RECORD_SIZE bytes, not in) becomes the encoded record
 * in with flags, user_flags and modseq replaced, its checksum changed by what changed: without
 * a checksum over the whole record, and a record whose checksum did not match still does not
 * (a flag change never vouches for bytes it did not check). */
void index_record_set_flags(const unsigned char *in, unsigned char *out, uint32_t flags,
                            const uint8_t *user_flags, uint64_t modseq);

/* index_record_decode: 0, or CF_E_CORRUPT when the checksum does not match (or uid is 0). */
int index_record_decode(const unsigned char *in, struct index_record *r);

/* index_record_decode_unchecked: every field of an encoded record, without the checksum test
 * (for reads of fields that never change in place, as the session view's walks do). */
void index_record_decode_unchecked(const unsigned char *in, struct index_record *r);

/* index_record_uid: the uid field of an encoded record, without checking anything. */
static inline uint32_t index_record_uid(const unsigned char *in)
{
    return (uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 | (uint32_t)in[3] << 24;
}

/* index_choose_header: given the whole index file (map, len), pick the header that counts:
 * the valid slot with the highest commit number, unless the records its commit added
 * ([prev_count, record_count)) fail their checksums -- a commit torn by a power loss -- in
 * which case the other slot, one commit older, is used. Checks keyword area, sizes and that the
 * file holds record_count records. On success *h is set and *slot_r (if not NULL) tells which
 * slot; returns 0, 1 when it fell back to the older slot, or CF_E_CORRUPT. */
int index_choose_header(const unsigned char *map, size_t len, struct index_header *h,
                        int *slot_r);

/* index_header_unchanged: 0 with *h set when the slot of commit (map, len) still holds the
 * header that had slot checksum crc, the other slot holds no valid header of a later commit,
 * and the file holds its records: the header index_choose_header picked before, with its
 * checks still good (a commit's records do not change without a later commit). CF_E_CORRUPT
 * otherwise: choose again. */
int index_header_unchanged(const unsigned char *map, size_t len, uint64_t commit, uint32_t crc,
                           struct index_header *h);

/* index_slot_offset: file offset of the slot a header with this commit number lives in. */
static inline size_t index_slot_offset(uint64_t commit)
{
    return (commit & 1) ? INDEX_SLOT1_OFFSET : INDEX_SLOT0_OFFSET;
}

/* index_record_offset: file offset of record number i (0-based). */
static inline uint64_t index_record_offset(uint32_t i)
{
    return INDEX_HEADER_SIZE + (uint64_t)i * INDEX_RECORD_SIZE;
}

/* index_keyword_get: the k-th keyword name in the keyword area bytes (area, bytes), as a
 * pointer into it with its length in *len_r; NULL when k is out of range or malformed. */
const char *index_keyword_get(const unsigned char *area, uint32_t bytes, uint32_t k,
                              size_t *len_r);

/* index_user_flag_get/set: test, set or clear keyword bit k of a record. */
static inline int index_user_flag_get(const struct index_record *r, unsigned k)
{
    return k < INDEX_MAX_KEYWORDS && (r->user_flags[k / 8] >> (k % 8)) & 1;
}
static inline void index_user_flag_set(struct index_record *r, unsigned k, int on)
{
    if (k >= INDEX_MAX_KEYWORDS) return;
    if (on) r->user_flags[k / 8] |= (uint8_t)(1u << (k % 8));
    else r->user_flags[k / 8] &= (uint8_t)~(1u << (k % 8));
}

/* The intent marker: written (one pwrite, no fsync) by a commit that rewrites records in place
 * (STORE, EXPUNGE) before its first record write. It names the commit about to be made; once a
 * header with that commit number is chosen the marker is stale. A marker naming the commit after
 * the chosen header means a writer died between its record writes and its header write: the
 * records may be ahead of the header's counters, which must then be recomputed (index_recount).
 * Layout: magic "COFFERIN" (8), generation (8), commit (8), zero (4), CRC-32 of bytes 0-27 (4). */
struct index_intent {
    uint64_t generation;     /* of the file the change was made in */
    uint64_t commit;         /* the commit number the change would have had */
};

/* index_intent_encode: fill out[INDEX_INTENT_SIZE]. */
void index_intent_encode(const struct index_intent *it, unsigned char *out);

/* index_intent_decode: 0, or CF_E_CORRUPT when there is no valid marker (zero bytes in a file
 * that never had one, or a torn write). */
int index_intent_decode(const unsigned char *in, struct index_intent *it);

/* index_intent_pending: 1 when the file (map, at least INDEX_HEADER_SIZE bytes) holds a valid
 * marker for the commit after h in h's generation, else 0. */
int index_intent_pending(const unsigned char *map, const struct index_header *h);

/* The verified-counts marker: says that the records were found to agree with the header of one
 * commit (slot checksum included) during one boot of the machine. Written without fsync by
 * whoever recounted and found no difference, and by every commit after it (a commit keeps the
 * counters right under the write lock). Within one boot the page cache keeps the order of every
 * process's writes, so the records can only get ahead of a header through an interrupted
 * in-place commit, which leaves a pending intent marker; a power loss or a kernel crash, which
 * keep no order, change the boot id. An open that finds the marker for its header and this boot,
 * and no pending intent, therefore skips the recount (coffer-store(5)).
 * Layout: magic "COFFERV1" (8), boot id (16), generation (8), commit (8), slot crc (4), zero
 * (16), CRC-32 of bytes 0-59 (4). */
struct index_verified {
    uint8_t boot_id[16];     /* the kernel's boot id (random/boot_id) when it was written */
    uint64_t generation;
    uint64_t commit;
    uint32_t slot_crc;       /* the crc field of the header slot holding that commit */
};

/* index_verified_encode: fill out[INDEX_VERIFIED_SIZE]. */
void index_verified_encode(const struct index_verified *v, unsigned char *out);

/* index_verified_decode: 0, or CF_E_CORRUPT when there is no valid marker (zero bytes in a file
 * written before it existed, a torn write). */
int index_verified_decode(const unsigned char *in, struct index_verified *v);

/* index_slot_crc: the stored checksum of the slot that holds h (the file map holds it). */
uint32_t index_slot_crc(const unsigned char *map, const struct index_header *h);

/* index_recount: recompute from the records [0, h->record_count) of map (which holds them:
 * index_choose_header checked) every header field that the records determine, into *out (a
 * copy of *h with those fields replaced): exists, deleted, seen, answered, flagged, expunged,
 * quota_used; highestmodseq and uidnext are raised to cover the records' modseqs and uids; when
 * records use keyword bits at or above keyword_count, the names written after the keyword bytes
 * in use (by the interrupted commit, in bit order) are counted in. Reads the raw fields without
 * checksums, as the session view does, so the view and the counters always agree. Returns 0 when
 * *out equals *h, 1 when some field differs, CF_E_CORRUPT when a used keyword bit has no name. */
int index_recount(const unsigned char *map, const struct index_header *h,
                  struct index_header *out);

/* index_new_file: the bytes of an empty index (INDEX_HEADER_SIZE of them, caller frees) with
 * commit 1 in slot 1 and slot 0 zeroed. */
unsigned char *index_new_file(uint32_t uidvalidity, uint64_t generation, size_t *len_r);

#endif
