/* fuzz-index.c: fuzz target for the index file decoders (lib/store/index.c): header slots,
 * the intent marker, the keyword area, records, index_choose_header and index_recount.
 *
 * A real index is 8 KiB of header before the first record, and checksums everywhere, so the
 * input is a compact description of a file rather than the file: byte 0 says which checksums
 * the target fixes up (bit 0 the two slots, bit 1 the records, bit 2 the keyword area's CRC in
 * both slots, bit 3 the intent marker), then come slot 0, slot 1 (128 bytes each), the intent
 * marker (32), a 2-byte little-endian keyword area length and its bytes, and the records; what
 * is missing is zero. The file is laid out from that at the real offsets. */
#include "fuzz-util.h"
#include "core/error.h"
#include "store/index.h"

#define MAX_RECORDS 256

static size_t take(const uint8_t **p, size_t *left, uint8_t *out, size_t n)
{
    size_t k = *left < n ? *left : n;
    memcpy(out, *p, k);
    *p += k;
    *left -= k;
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned fix = data[0];
    const uint8_t *p = data + 1;
    size_t left = size - 1;
    uint8_t kwlen_raw[2] = { 0, 0 };
    unsigned char slot0[INDEX_SLOT_SIZE] = { 0 }, slot1[INDEX_SLOT_SIZE] = { 0 };
    unsigned char intent[INDEX_INTENT_SIZE] = { 0 };
    take(&p, &left, slot0, sizeof slot0);
    take(&p, &left, slot1, sizeof slot1);
    take(&p, &left, intent, sizeof intent);
    take(&p, &left, kwlen_raw, 2);
    size_t kwlen = (size_t)(kwlen_raw[0] | kwlen_raw[1] << 8) % (INDEX_KEYWORD_AREA + 1);
    size_t recbytes = left > kwlen ? left - kwlen : 0;
    if (recbytes > (size_t)MAX_RECORDS * INDEX_RECORD_SIZE)
        recbytes = (size_t)MAX_RECORDS * INDEX_RECORD_SIZE;
    size_t len = INDEX_HEADER_SIZE + recbytes;
    unsigned char *map = calloc(1, len);
    if (!map) abort();
    take(&p, &left, map + INDEX_KEYWORD_OFFSET, kwlen);
    take(&p, &left, map + INDEX_HEADER_SIZE, recbytes);
    /* checksums, as a writer would have made them */
    if (fix & 2)
        for (size_t off = 0; off + INDEX_RECORD_SIZE <= recbytes; off += INDEX_RECORD_SIZE) {
            unsigned char *rec = map + INDEX_HEADER_SIZE + off;
            le_put32(rec + INDEX_RECORD_SIZE - 4, index_crc32(rec, INDEX_RECORD_SIZE - 4));
        }
    unsigned char *slots[2] = { slot0, slot1 };
    for (int i = 0; i < 2; i++) {
        if (fix & 4) {
            uint32_t kb = le_get32(slots[i] + 60);     /* keyword_bytes */
            if (kb <= INDEX_KEYWORD_AREA)
                le_put32(slots[i] + 96, index_crc32(map + INDEX_KEYWORD_OFFSET, kb));
        }
        if (fix & 1) {
            memcpy(slots[i], INDEX_MAGIC, 8);
            le_put32(slots[i] + INDEX_SLOT_SIZE - 4, index_crc32(slots[i], INDEX_SLOT_SIZE - 4));
        }
    }
    if (fix & 8) {
        memcpy(intent, "COFFERIN", 8);
        le_put32(intent + 28, index_crc32(intent, 28));
    }
    memcpy(map + INDEX_SLOT0_OFFSET, slot0, sizeof slot0);
    memcpy(map + INDEX_SLOT1_OFFSET, slot1, sizeof slot1);
    memcpy(map + INDEX_INTENT_OFFSET, intent, sizeof intent);

    struct index_header h, h2, out;
    unsigned char enc[INDEX_SLOT_SIZE];
    for (int i = 0; i < 2; i++)
        if (index_header_decode(slots[i], &h2) == 0) {
            /* a decoded slot encodes to the same bytes (reserved bytes aside) */
            index_header_encode(&h2, enc);
            struct index_header h3;
            FUZZ_ASSERT(index_header_decode(enc, &h3) == 0);
            h2.version = INDEX_VERSION;   /* a version-1 slot is written back as the current one */
            FUZZ_ASSERT(!memcmp(&h2, &h3, sizeof h2));
        }
    int slot = -1;
    int r = index_choose_header(map, len, &h, &slot);
    FUZZ_ASSERT(r == 0 || r == 1 || r == CF_E_CORRUPT);
    if (r >= 0) {
        FUZZ_ASSERT(slot == 0 || slot == 1);
        FUZZ_ASSERT(index_record_offset(h.record_count) <= len);
        for (uint32_t k = 0; k < h.keyword_count; k++) {
            size_t kl;
            const char *kw = index_keyword_get(map + INDEX_KEYWORD_OFFSET, h.keyword_bytes, k, &kl);
            FUZZ_ASSERT(kw != NULL);
            FUZZ_ASSERT((const unsigned char *)kw + kl < map + INDEX_KEYWORD_OFFSET + h.keyword_bytes);
        }
        FUZZ_ASSERT(index_keyword_get(map + INDEX_KEYWORD_OFFSET, h.keyword_bytes,
                                      h.keyword_count, NULL) == NULL);
        (void)index_intent_pending(map, &h);
        int rc = index_recount(map, &h, &out);
        FUZZ_ASSERT(rc == 0 || rc == 1 || rc == CF_E_CORRUPT);
        if (rc >= 0) {
            FUZZ_ASSERT(out.exists + out.expunged == h.record_count);
            FUZZ_ASSERT(out.keyword_count <= INDEX_MAX_KEYWORDS);
            FUZZ_ASSERT(out.keyword_bytes <= INDEX_KEYWORD_AREA);
        }
        for (uint32_t i = 0; i < h.record_count; i++) {
            struct index_record rec, rec2;
            memset(&rec, 0, sizeof rec);      /* padding, for the memcmp below */
            memset(&rec2, 0, sizeof rec2);
            if (index_record_decode(map + index_record_offset(i), &rec) == 0) {
                unsigned char re[INDEX_RECORD_SIZE];
                index_record_encode(&rec, re);
                FUZZ_ASSERT(index_record_decode(re, &rec2) == 0);
                FUZZ_ASSERT(!memcmp(&rec, &rec2, sizeof rec));
            }
        }
    }
    /* every record slot on its own, whatever the header says */
    for (size_t off = 0; off + INDEX_RECORD_SIZE <= recbytes; off += INDEX_RECORD_SIZE) {
        struct index_record rec;
        (void)index_record_decode(map + INDEX_HEADER_SIZE + off, &rec);
    }
    struct index_intent it;
    (void)index_intent_decode(map + INDEX_INTENT_OFFSET, &it);
    /* the keyword area on its own */
    for (uint32_t k = 0; k < 4; k++)
        (void)index_keyword_get(map + INDEX_KEYWORD_OFFSET, (uint32_t)kwlen, k, NULL);
    free(map);
    return 0;
}
