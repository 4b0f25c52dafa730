/* uidcol.h: the per-mailbox uid column file "uidcol" (man coffer-store(5)): for every index
 * record its uid and flags word, and per block of 32 records the highest modseq, so that a
 * fresh session builds its view and its modseq summary from about 8 bytes per message
 * instead of the 128-byte records. Derived data, trusted only for the index commit and boot
 * it names; anything else rebuilds it from the records. */
#ifndef COFFER_STORE_UIDCOL_H
#define COFFER_STORE_UIDCOL_H
#include <stdint.h>

#define UIDCOL_FILE "uidcol"
#define UIDCOL_MAGIC "COFFERUC"
#define UIDCOL_VERSION 1
#define UIDCOL_HEADER_SIZE 64
#define UIDCOL_BLOCK 32u            /* records per block: the index's pages (MSUM_BLOCK) */
#define UIDCOL_ENTRY_SIZE 8         /* uid (4), flags (4) */
#define UIDCOL_BLOCK_SIZE 272       /* 32 entries, max modseq (8), zero (4), checksum (4) */

/* The header: magic (8), version (4), header size (4), boot id (16), generation (8), commit
 * (8), slot crc (4), record count (4), zero (4), CRC-32 of bytes 0-59 (4). It names the index
 * header the column equals, as the verified marker does (index.h). */
struct uidcol_header {
    uint8_t boot_id[16];
    uint64_t generation;
    uint64_t commit;
    uint32_t slot_crc;
    uint32_t record_count;
};

/* uidcol_header_encode: fill out[UIDCOL_HEADER_SIZE]. */
void uidcol_header_encode(const struct uidcol_header *h, unsigned char *out);

/* uidcol_header_decode: 0, or CF_E_CORRUPT on a bad magic, version, size or checksum. */
int uidcol_header_decode(const unsigned char *in, struct uidcol_header *h);

/* uidcol_block_offset: file offset of block b. */
static inline uint64_t uidcol_block_offset(uint32_t b)
{
    return UIDCOL_HEADER_SIZE + (uint64_t)b * UIDCOL_BLOCK_SIZE;
}

/* uidcol_block_seal: set the checksum of a block (blk[UIDCOL_BLOCK_SIZE]) after a change. */
void uidcol_block_seal(unsigned char *blk);

/* uidcol_block_check: 0 when the block's checksum and zero field are right, else
 * CF_E_CORRUPT. */
int uidcol_block_check(const unsigned char *blk);

/* The group summary file "uidsum" (man coffer-store(5)): for every group of UIDSUM_GROUP
 * column blocks (1,024 records) the highest modseq, the live and live-\Seen records and the
 * first and last uid, so that a session's view and an incremental sync cost about 0.03
 * bytes per message: a fresh session counts its messages from it and reads a group's records
 * only when a message number in it is asked for; a sync reads only the groups, then the
 * blocks, above its modseq. Its header is the column's (magic UIDSUM_MAGIC) and names the
 * index commit it equals; it is derived data like the column. */
#define UIDSUM_FILE "uidsum"
#define UIDSUM_MAGIC "COFFERUS"
#define UIDSUM_GROUP 32u            /* column blocks per group */
#define UIDSUM_RECORDS (UIDSUM_GROUP * UIDCOL_BLOCK)
#define UIDSUM_ENTRY_SIZE 32        /* max modseq (8), live (4), seen (4), first uid (4), last
                                     * uid (4), zero (4), checksum (4) */

/* Counters for tests and benchmarks: views built from the column, columns (re)written from
 * the records, and commits that kept a column up to date. */
struct uidcol_stats {
    uint64_t loads, rebuilds, updates;
    uint64_t maxima;        /* block maxima read for an incremental sync or scan */
    uint64_t incremental;   /* view syncs that read only the changed blocks' records */
    uint64_t sum_loads;     /* group summaries read (views made, changed blocks found) */
    uint64_t sum_rebuilds;  /* group summaries written whole (from a column or a build) */
    uint64_t group_loads;   /* groups of a lazy view whose messages were read */
    uint64_t own;           /* changed blocks known from the handle's own commits alone */
    uint64_t sum_deltas;    /* summary entries brought forward from their changed blocks */
    uint64_t commit_opens;  /* column opens by commits (none below uidcol_min_records; none
                             * while the handle keeps it open) */
    uint64_t file_opens;    /* opens of either file to keep on a handle */
    uint64_t sum_entry_kept;    /* summary entries a commit took from its handle, unread */
};
extern struct uidcol_stats uidcol_stats;

/* Mailboxes with fewer records than this get no column (their records are read as cheaply);
 * tests set it to 0. */
extern uint32_t uidcol_min_records;

#endif
