/* index.c: encoding, decoding and checking of the per-mailbox index file format. */
#include "store/index.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include <string.h>
#include <zlib.h>

void le_put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

void le_put64(unsigned char *p, uint64_t v)
{
    le_put32(p, (uint32_t)v);
    le_put32(p + 4, (uint32_t)(v >> 32));
}

uint32_t le_get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t le_get64(const unsigned char *p)
{
    return (uint64_t)le_get32(p) | (uint64_t)le_get32(p + 4) << 32;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_CLMUL_CRC 1

/* crc_clmul: the CRC-32 register (reflected, without zlib's inversions) after the first
 * *done bytes of p[0,n) (n >= 16; *done is n rounded down to 16), by folding 16 bytes at a
 * time with carry-less multiplication and a Barrett reduction to 32 bits (Gopal et al.,
 * "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ", Intel 2009). The
 * constants are powers of x modulo the CRC-32 polynomial, bit-reflected: x^(128+32) and
 * x^(128-32) to fold 128 bits, x^64 to go from 64 to 32, the polynomial and floor(x^64 / P)
 * for Barrett. Nine times zlib's crc32 on a 124-byte index record: every record a FETCH,
 * SEARCH or SORT reads has its checksum checked, and at 1,000,000 messages zlib's was a third
 * of FETCH 1:* (FLAGS). */
__attribute__((target("pclmul,sse4.1")))
static uint32_t crc_clmul(uint32_t reg, const unsigned char *p, size_t n, size_t *done)
{
    const __m128i k34 = _mm_set_epi64x(0x0ccaa009eull, 0x1751997d0ull);
    const __m128i k5 = _mm_set_epi64x(0, 0x163cd6124ull);
    const __m128i pu = _mm_set_epi64x(0x1f7011641ull, 0x1db710641ull);
    const __m128i mask32 = _mm_set_epi32(0, 0, 0, -1);
    __m128i x = _mm_xor_si128(_mm_loadu_si128((const __m128i *)p), _mm_cvtsi32_si128((int)reg));
    size_t i = 16;
    for (; n - i >= 16; i += 16) {
        __m128i lo = _mm_clmulepi64_si128(x, k34, 0x00);
        __m128i hi = _mm_clmulepi64_si128(x, k34, 0x11);
        x = _mm_xor_si128(_mm_xor_si128(lo, hi), _mm_loadu_si128((const __m128i *)(p + i)));
    }
    *done = i;
    __m128i t = _mm_clmulepi64_si128(x, k34, 0x10);            /* 128 to 64 bits */
    x = _mm_xor_si128(_mm_srli_si128(x, 8), t);
    t = _mm_srli_si128(x, 4);                                   /* 64 to 32 */
    x = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(x, mask32), k5, 0x00), t);
    t = x;                                                      /* Barrett */
    x = _mm_clmulepi64_si128(_mm_and_si128(x, mask32), pu, 0x10);
    x = _mm_clmulepi64_si128(_mm_and_si128(x, mask32), pu, 0x00);
    x = _mm_xor_si128(x, t);
    return (uint32_t)_mm_extract_epi32(x, 1);
}
#endif

uint32_t index_crc32(const void *p, size_t len)
{
    uLong c = crc32(0L, Z_NULL, 0);
    const unsigned char *s = p;
#ifdef HAVE_CLMUL_CRC
    static int clmul = -1;
    if (clmul < 0) clmul = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
    if (clmul && len >= 16) {
        size_t done;
        c = ~crc_clmul(~(uint32_t)c, s, len, &done) & 0xffffffffu;
        s += done;
        len -= done;
    }
#endif
    /* zlib's crc32 takes a uInt length: feed big inputs in pieces. */
    while (len) {
        uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
        c = crc32(c, s, n);
        s += n;
        len -= n;
    }
    return (uint32_t)c;
}

/* Header slot layout: byte offsets within the slot. */
enum {
    H_MAGIC = 0, H_VERSION = 8, H_HEADER_SIZE = 12, H_RECORD_SIZE = 16, H_UIDVALIDITY = 20,
    H_UIDNEXT = 24, H_RECORD_COUNT = 28, H_PREV_COUNT = 32, H_EXISTS = 36, H_DELETED = 40,
    H_SEEN = 44, H_ANSWERED = 48, H_FLAGGED = 52, H_KEYWORD_COUNT = 56, H_KEYWORD_BYTES = 60,
    H_COMMIT = 64, H_HIGHESTMODSEQ = 72, H_QUOTA_USED = 80, H_GENERATION = 88,
    H_KEYWORD_CRC = 96, H_EXPUNGED = 100, H_VANISHED_MODSEQ = 104, H_CRC = 124
};

void index_header_encode(const struct index_header *h, unsigned char *out)
{
    memset(out, 0, INDEX_SLOT_SIZE);
    memcpy(out + H_MAGIC, INDEX_MAGIC, 8);
    le_put32(out + H_VERSION, INDEX_VERSION);
    le_put32(out + H_HEADER_SIZE, h->header_size ? h->header_size : INDEX_HEADER_SIZE);
    le_put32(out + H_RECORD_SIZE, h->record_size ? h->record_size : INDEX_RECORD_SIZE);
    le_put32(out + H_UIDVALIDITY, h->uidvalidity);
    le_put32(out + H_UIDNEXT, h->uidnext);
    le_put32(out + H_RECORD_COUNT, h->record_count);
    le_put32(out + H_PREV_COUNT, h->prev_count);
    le_put32(out + H_EXISTS, h->exists);
    le_put32(out + H_DELETED, h->deleted);
    le_put32(out + H_SEEN, h->seen);
    le_put32(out + H_ANSWERED, h->answered);
    le_put32(out + H_FLAGGED, h->flagged);
    le_put32(out + H_KEYWORD_COUNT, h->keyword_count);
    le_put32(out + H_KEYWORD_BYTES, h->keyword_bytes);
    le_put64(out + H_COMMIT, h->commit);
    le_put64(out + H_HIGHESTMODSEQ, h->highestmodseq);
    le_put64(out + H_QUOTA_USED, h->quota_used);
    le_put64(out + H_GENERATION, h->generation);
    le_put32(out + H_KEYWORD_CRC, h->keyword_crc);
    le_put32(out + H_EXPUNGED, h->expunged);
    le_put64(out + H_VANISHED_MODSEQ, h->vanished_modseq);
    le_put32(out + H_CRC, index_crc32(out, H_CRC));
}

int index_header_decode(const unsigned char *in, struct index_header *h)
{
    if (memcmp(in + H_MAGIC, INDEX_MAGIC, 8) != 0) return CF_E_CORRUPT;
    if (le_get32(in + H_CRC) != index_crc32(in, H_CRC)) return CF_E_CORRUPT;
    memset(h, 0, sizeof *h);
    h->version = le_get32(in + H_VERSION);
    h->header_size = le_get32(in + H_HEADER_SIZE);
    h->record_size = le_get32(in + H_RECORD_SIZE);
    h->uidvalidity = le_get32(in + H_UIDVALIDITY);
    h->uidnext = le_get32(in + H_UIDNEXT);
    h->record_count = le_get32(in + H_RECORD_COUNT);
    h->prev_count = le_get32(in + H_PREV_COUNT);
    h->exists = le_get32(in + H_EXISTS);
    h->deleted = le_get32(in + H_DELETED);
    h->seen = le_get32(in + H_SEEN);
    h->answered = le_get32(in + H_ANSWERED);
    h->flagged = le_get32(in + H_FLAGGED);
    h->keyword_count = le_get32(in + H_KEYWORD_COUNT);
    h->keyword_bytes = le_get32(in + H_KEYWORD_BYTES);
    h->commit = le_get64(in + H_COMMIT);
    h->highestmodseq = le_get64(in + H_HIGHESTMODSEQ);
    h->quota_used = le_get64(in + H_QUOTA_USED);
    h->generation = le_get64(in + H_GENERATION);
    h->keyword_crc = le_get32(in + H_KEYWORD_CRC);
    h->expunged = le_get32(in + H_EXPUNGED);
    h->vanished_modseq = le_get64(in + H_VANISHED_MODSEQ);
    /* Version 1 differs only in records: bytes 96-103 were zero (expunged_at 0, "file
     * gone"), so it reads as is; the next commit writes version 2. Version 2 records have
     * zero in bytes 104-119 (savedate and threadid 0: unknown), so it reads as is too. A later
     * layout must bump INDEX_VERSION. */
    if (h->version < INDEX_VERSION_MIN || h->version > INDEX_VERSION || h->header_size != INDEX_HEADER_SIZE ||
        h->record_size != INDEX_RECORD_SIZE)
        return CF_E_CORRUPT;
    if (h->prev_count > h->record_count || h->keyword_count > INDEX_MAX_KEYWORDS ||
        h->keyword_bytes > INDEX_KEYWORD_AREA || h->exists > h->record_count ||
        h->uidnext == 0 || h->commit == 0)
        return CF_E_CORRUPT;
    return 0;
}

/* Record layout: byte offsets within a record. */
enum {
    R_UID = 0, R_FLAGS = 4, R_INTERNALDATE = 8, R_SENTDATE = 16, R_SIZE = 24, R_MODSEQ = 32,
    R_CACHE_OFFSET = 40, R_HEADER_SIZE = 48, R_BODY_LINES = 52, R_USER_FLAGS = 56, R_GUID = 72,
    R_EXPUNGED_AT = 96, R_SAVEDATE = 104, R_THREADID = 112, R_CRC = 124
};

void index_record_encode(const struct index_record *r, unsigned char *out)
{
    memset(out, 0, INDEX_RECORD_SIZE);
    le_put32(out + R_UID, r->uid);
    le_put32(out + R_FLAGS, r->flags);
    le_put64(out + R_INTERNALDATE, (uint64_t)r->internaldate);
    le_put64(out + R_SENTDATE, (uint64_t)r->sentdate);
    le_put64(out + R_SIZE, r->size);
    le_put64(out + R_MODSEQ, r->modseq);
    le_put64(out + R_CACHE_OFFSET, r->cache_offset);
    le_put32(out + R_HEADER_SIZE, r->header_size);
    le_put32(out + R_BODY_LINES, r->body_lines);
    memcpy(out + R_USER_FLAGS, r->user_flags, sizeof r->user_flags);
    memcpy(out + R_GUID, r->guid, sizeof r->guid);
    le_put64(out + R_EXPUNGED_AT, (uint64_t)r->expunged_at);
    le_put64(out + R_SAVEDATE, (uint64_t)r->savedate);
    le_put64(out + R_THREADID, r->threadid);
    le_put32(out + R_CRC, index_crc32(out, R_CRC));
}

/* The checksum change of a flag rewrite: CRC-32 is affine in its input, so for two records
 * of the same length crc(a) ^ crc(b) = lin(a ^ b), and lin of a difference confined to a few
 * bytes is the xor of one table entry per byte that differs: flip[i][d] = lin(d at the i-th of
 * the positions below, zero elsewhere). Built on first use (28 x 256 checksums of 124 bytes). */
static const uint8_t flip_pos[] = {
    R_FLAGS, R_FLAGS + 1, R_FLAGS + 2, R_FLAGS + 3,
    R_MODSEQ, R_MODSEQ + 1, R_MODSEQ + 2, R_MODSEQ + 3, R_MODSEQ + 4, R_MODSEQ + 5,
    R_MODSEQ + 6, R_MODSEQ + 7,
    R_USER_FLAGS, R_USER_FLAGS + 1, R_USER_FLAGS + 2, R_USER_FLAGS + 3, R_USER_FLAGS + 4,
    R_USER_FLAGS + 5, R_USER_FLAGS + 6, R_USER_FLAGS + 7, R_USER_FLAGS + 8, R_USER_FLAGS + 9,
    R_USER_FLAGS + 10, R_USER_FLAGS + 11, R_USER_FLAGS + 12, R_USER_FLAGS + 13,
    R_USER_FLAGS + 14, R_USER_FLAGS + 15,
};
#define NFLIP (sizeof flip_pos / sizeof flip_pos[0])
static uint32_t (*flip)[256];

static void flip_init(void)
{
    uint32_t (*t)[256] = xreallocarray(NULL, NFLIP, sizeof *t);
    unsigned char z[R_CRC];
    memset(z, 0, sizeof z);
    uint32_t zero = index_crc32(z, sizeof z);
    for (size_t i = 0; i < NFLIP; i++) {
        t[i][0] = 0;
        for (unsigned v = 1; v < 256; v++) {
            z[flip_pos[i]] = (unsigned char)v;
            t[i][v] = index_crc32(z, sizeof z) ^ zero;
        }
        z[flip_pos[i]] = 0;
    }
    flip = t;
}

void index_record_set_flags(const unsigned char *in, unsigned char *out, uint32_t flags,
                            const uint8_t *user_flags, uint64_t modseq)
{
    if (!flip) flip_init();
    memcpy(out, in, INDEX_RECORD_SIZE);
    le_put32(out + R_FLAGS, flags);
    le_put64(out + R_MODSEQ, modseq);
    memcpy(out + R_USER_FLAGS, user_flags, INDEX_MAX_KEYWORDS / 8);
    uint32_t crc = le_get32(in + R_CRC);
    for (size_t i = 0; i < NFLIP; i++) crc ^= flip[i][in[flip_pos[i]] ^ out[flip_pos[i]]];
    le_put32(out + R_CRC, crc);
}

int index_record_decode(const unsigned char *in, struct index_record *r)
{
    if (le_get32(in + R_CRC) != index_crc32(in, R_CRC)) return CF_E_CORRUPT;
    index_record_decode_unchecked(in, r);
    if (r->uid == 0) return CF_E_CORRUPT;
    return 0;
}

/* check_header: the header's keyword area and size claims agree with the file. */
static int check_header(const unsigned char *map, size_t len, const struct index_header *h)
{
    if (len < index_record_offset(h->record_count)) return CF_E_CORRUPT;
    if (index_crc32(map + INDEX_KEYWORD_OFFSET, h->keyword_bytes) != h->keyword_crc)
        return CF_E_CORRUPT;
    /* keyword_count NUL-terminated names fill exactly keyword_bytes */
    uint32_t n = 0;
    for (uint32_t i = 0; i < h->keyword_bytes; i++)
        if (map[INDEX_KEYWORD_OFFSET + i] == 0) n++;
    if (n != h->keyword_count) return CF_E_CORRUPT;
    if (h->keyword_bytes && map[INDEX_KEYWORD_OFFSET + h->keyword_bytes - 1] != 0)
        return CF_E_CORRUPT;
    return 0;
}

/* check_tail: the records the last commit appended are intact and in UID order. */
static int check_tail(const unsigned char *map, const struct index_header *h)
{
    uint32_t prev_uid = 0;
    uint32_t start = h->prev_count ? h->prev_count - 1 : 0;
    for (uint32_t i = start; i < h->record_count; i++) {
        struct index_record r;
        if (index_record_decode(map + index_record_offset(i), &r) < 0) return CF_E_CORRUPT;
        if (r.uid <= prev_uid || r.uid >= h->uidnext) return CF_E_CORRUPT;
        prev_uid = r.uid;
    }
    return 0;
}

int index_choose_header(const unsigned char *map, size_t len, struct index_header *h,
                        int *slot_r)
{
    if (len < INDEX_HEADER_SIZE) return CF_E_CORRUPT;
    struct index_header s[2];
    int ok[2];
    ok[0] = index_header_decode(map + INDEX_SLOT0_OFFSET, &s[0]) == 0 && !(s[0].commit & 1);
    ok[1] = index_header_decode(map + INDEX_SLOT1_OFFSET, &s[1]) == 0 && (s[1].commit & 1);
    int order[2] = { 0, 1 };
    if (ok[0] && ok[1] && s[1].commit > s[0].commit) { order[0] = 1; order[1] = 0; }
    else if (!ok[0]) { order[0] = 1; order[1] = 0; }
    for (int k = 0; k < 2; k++) {
        int i = order[k];
        if (!ok[i]) continue;
        /* The older slot is a fallback only when it is exactly the previous commit. */
        if (k == 1 && (!ok[order[0]] || s[i].commit + 1 != s[order[0]].commit)) break;
        if (check_header(map, len, &s[i]) < 0 || check_tail(map, &s[i]) < 0) continue;
        *h = s[i];
        if (slot_r) *slot_r = i;
        return k;
    }
    return CF_E_CORRUPT;
}

int index_header_unchanged(const unsigned char *map, size_t len, uint64_t commit, uint32_t crc,
                           struct index_header *h)
{
    if (!commit || len < INDEX_HEADER_SIZE) return CF_E_CORRUPT;
    const unsigned char *cur = map + index_slot_offset(commit);
    struct index_header other;
    if (le_get32(cur + H_CRC) != crc || index_header_decode(cur, h) < 0 || h->commit != commit)
        return CF_E_CORRUPT;
    if (index_header_decode(map + index_slot_offset(commit + 1), &other) == 0 &&
        other.commit > commit)
        return CF_E_CORRUPT;
    if (len < index_record_offset(h->record_count)) return CF_E_CORRUPT;
    return 0;
}

const char *index_keyword_get(const unsigned char *area, uint32_t bytes, uint32_t k,
                              size_t *len_r)
{
    uint32_t pos = 0;
    for (uint32_t i = 0; pos < bytes; i++) {
        const unsigned char *nul = memchr(area + pos, 0, bytes - pos);
        if (!nul) return NULL;
        size_t n = (size_t)(nul - (area + pos));
        if (i == k) {
            if (len_r) *len_r = n;
            return (const char *)area + pos;
        }
        pos += (uint32_t)n + 1;
    }
    return NULL;
}

/* Intent marker layout: byte offsets within it. */
enum { I_MAGIC = 0, I_GENERATION = 8, I_COMMIT = 16, I_CRC = 28 };
#define INTENT_MAGIC "COFFERIN"

void index_intent_encode(const struct index_intent *it, unsigned char *out)
{
    memset(out, 0, INDEX_INTENT_SIZE);
    memcpy(out + I_MAGIC, INTENT_MAGIC, 8);
    le_put64(out + I_GENERATION, it->generation);
    le_put64(out + I_COMMIT, it->commit);
    le_put32(out + I_CRC, index_crc32(out, I_CRC));
}

int index_intent_decode(const unsigned char *in, struct index_intent *it)
{
    if (memcmp(in + I_MAGIC, INTENT_MAGIC, 8) != 0) return CF_E_CORRUPT;
    if (le_get32(in + I_CRC) != index_crc32(in, I_CRC)) return CF_E_CORRUPT;
    it->generation = le_get64(in + I_GENERATION);
    it->commit = le_get64(in + I_COMMIT);
    return 0;
}

int index_intent_pending(const unsigned char *map, const struct index_header *h)
{
    struct index_intent it;
    if (index_intent_decode(map + INDEX_INTENT_OFFSET, &it) < 0) return 0;
    return it.generation == h->generation && it.commit == h->commit + 1;
}

/* Verified marker layout: byte offsets within it. */
enum { V_MAGIC = 0, V_BOOT_ID = 8, V_GENERATION = 24, V_COMMIT = 32, V_SLOT_CRC = 40, V_CRC = 60 };
#define VERIFIED_MAGIC "COFFERV1"

void index_verified_encode(const struct index_verified *v, unsigned char *out)
{
    memset(out, 0, INDEX_VERIFIED_SIZE);
    memcpy(out + V_MAGIC, VERIFIED_MAGIC, 8);
    memcpy(out + V_BOOT_ID, v->boot_id, sizeof v->boot_id);
    le_put64(out + V_GENERATION, v->generation);
    le_put64(out + V_COMMIT, v->commit);
    le_put32(out + V_SLOT_CRC, v->slot_crc);
    le_put32(out + V_CRC, index_crc32(out, V_CRC));
}

int index_verified_decode(const unsigned char *in, struct index_verified *v)
{
    if (memcmp(in + V_MAGIC, VERIFIED_MAGIC, 8) != 0) return CF_E_CORRUPT;
    if (le_get32(in + V_CRC) != index_crc32(in, V_CRC)) return CF_E_CORRUPT;
    memcpy(v->boot_id, in + V_BOOT_ID, sizeof v->boot_id);
    v->generation = le_get64(in + V_GENERATION);
    v->commit = le_get64(in + V_COMMIT);
    v->slot_crc = le_get32(in + V_SLOT_CRC);
    return 0;
}

uint32_t index_slot_crc(const unsigned char *map, const struct index_header *h)
{
    return le_get32(map + index_slot_offset(h->commit) + H_CRC);
}

int index_recount(const unsigned char *map, const struct index_header *h,
                  struct index_header *out)
{
    *out = *h;
    out->exists = out->deleted = out->seen = out->answered = out->flagged = out->expunged = 0;
    out->quota_used = 0;
    uint64_t used_lo = 0, used_hi = 0;   /* keyword bits set in some existing record */
    uint32_t maxuid = 0;
    for (uint32_t i = 0; i < h->record_count; i++) {
        const unsigned char *raw = map + index_record_offset(i);
        uint32_t uid = le_get32(raw + R_UID), flags = le_get32(raw + R_FLAGS);
        uint64_t modseq = le_get64(raw + R_MODSEQ);
        if (uid > maxuid) maxuid = uid;
        if (modseq > out->highestmodseq) out->highestmodseq = modseq;
        if (flags & FLAG_EXPUNGED) {
            out->expunged++;
            continue;
        }
        out->exists++;
        if (flags & FLAG_DELETED) out->deleted++;
        if (flags & FLAG_SEEN) out->seen++;
        if (flags & FLAG_ANSWERED) out->answered++;
        if (flags & FLAG_FLAGGED) out->flagged++;
        out->quota_used += le_get64(raw + R_SIZE);
        used_lo |= le_get64(raw + R_USER_FLAGS);
        used_hi |= le_get64(raw + R_USER_FLAGS + 8);
    }
    if (maxuid >= out->uidnext) out->uidnext = maxuid + 1;
    uint32_t nkw = 0;   /* 1 + the highest keyword bit in use */
    for (uint32_t k = 0; k < INDEX_MAX_KEYWORDS; k++)   /* bit k is bit k % 64 of a word */
        if (((k < 64 ? used_lo : used_hi) >> (k % 64)) & 1) nkw = k + 1;
    /* Bits past keyword_count come from the interrupted commit, which wrote the names of the
     * keywords it created right after the bytes in use, in bit order, before any record. */
    const unsigned char *area = map + INDEX_KEYWORD_OFFSET;
    while (out->keyword_count < nkw) {
        uint32_t pos = out->keyword_bytes;
        const unsigned char *nul = pos < INDEX_KEYWORD_AREA
                                       ? memchr(area + pos, 0, INDEX_KEYWORD_AREA - pos) : NULL;
        if (!nul || nul == area + pos) return CF_E_CORRUPT;
        out->keyword_bytes = (uint32_t)(nul - area) + 1;
        out->keyword_count++;
    }
    if (out->keyword_bytes != h->keyword_bytes)
        out->keyword_crc = index_crc32(area, out->keyword_bytes);
    return out->exists != h->exists || out->deleted != h->deleted || out->seen != h->seen ||
           out->answered != h->answered || out->flagged != h->flagged ||
           out->expunged != h->expunged || out->quota_used != h->quota_used ||
           out->highestmodseq != h->highestmodseq || out->uidnext != h->uidnext ||
           out->keyword_count != h->keyword_count;
}

unsigned char *index_new_file(uint32_t uidvalidity, uint64_t generation, size_t *len_r)
{
    unsigned char *p = xzmalloc(INDEX_HEADER_SIZE);
    struct index_header h;
    memset(&h, 0, sizeof h);
    h.uidvalidity = uidvalidity;
    h.uidnext = 1;
    h.commit = 1;
    h.generation = generation;
    h.keyword_crc = index_crc32("", 0);
    index_header_encode(&h, p + index_slot_offset(h.commit));
    *len_r = INDEX_HEADER_SIZE;
    return p;
}

void index_record_decode_unchecked(const unsigned char *in, struct index_record *r)
{
    r->uid = le_get32(in + R_UID);
    r->flags = le_get32(in + R_FLAGS);
    r->internaldate = (int64_t)le_get64(in + R_INTERNALDATE);
    r->sentdate = (int64_t)le_get64(in + R_SENTDATE);
    r->size = le_get64(in + R_SIZE);
    r->modseq = le_get64(in + R_MODSEQ);
    r->cache_offset = le_get64(in + R_CACHE_OFFSET);
    r->header_size = le_get32(in + R_HEADER_SIZE);
    r->body_lines = le_get32(in + R_BODY_LINES);
    memcpy(r->user_flags, in + R_USER_FLAGS, sizeof r->user_flags);
    memcpy(r->guid, in + R_GUID, sizeof r->guid);
    r->expunged_at = (int64_t)le_get64(in + R_EXPUNGED_AT);
    r->savedate = (int64_t)le_get64(in + R_SAVEDATE);
    r->threadid = le_get64(in + R_THREADID);
}
