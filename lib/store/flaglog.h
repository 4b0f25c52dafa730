/* flaglog.h: the per-mailbox flag change log "flaglog" (man coffer-store(5)). A STORE commit
 * rewrites its records and its header slot in the index without flushing the index, and makes
 * the change durable by appending one small entry (the operation and the uid ranges it changed)
 * to this file and flushing that instead: a few hundred bytes to the disk in place of every
 * page of records touched (640 KB for STORE 1:* on 5,000 messages). Within one boot the page
 * cache holds the records as committed; after a power loss an open that recounts replays the
 * entries of the index's generation onto records whose modseq is older, then recounts. Every
 * index flush (an append, EXPUNGE, a repair) makes the entries before it redundant; the log is
 * started over when it would grow past flaglog_max. */
#ifndef COFFER_STORE_FLAGLOG_H
#define COFFER_STORE_FLAGLOG_H
#include "store/index.h"
#include <stddef.h>
#include <stdint.h>

#define FLAGLOG_FILE "flaglog"
#define FLAGLOG_MAGIC "COFFERFL"
#define FLAGLOG_VERSION 1
#define FLAGLOG_HEADER_SIZE 64
/* bytes: an entry that would take the log past this is not written; its STORE flushes the
 * index instead and the log starts over (256 KiB; tests set it lower) */
extern uint32_t flaglog_max;
#define FLAGLOG_READ_MAX (64u << 20)   /* a longer file is not a log this code wrote */

/* The operation of an entry: what mailbox_store's ops do to the flags of each record. */
enum { FLAGLOG_SET = 0, FLAGLOG_ADD = 1, FLAGLOG_REMOVE = 2 };

/* One entry (all little-endian): length (4, the whole entry, checksum included), epoch (8),
 * generation (8), commit (8), modseq (8), op (4), system flags (4), keyword bits (16),
 * record count (4), range count (4), ranges (8 each: first uid, last uid), CRC-32 of
 * everything before (4). */
#define FLAGLOG_ENTRY_FIXED 68      /* bytes before the ranges */
struct flaglog_entry {
    uint64_t epoch;         /* the log's epoch (its header) when written */
    uint64_t generation;    /* of the index it applies to */
    uint64_t commit;        /* the index commit that made the change */
    uint64_t modseq;        /* the change's modseq */
    uint32_t op;            /* FLAGLOG_* */
    uint32_t sys;           /* FLAG_* system flags of the operation */
    uint8_t keywords[INDEX_MAX_KEYWORDS / 8];   /* keyword bits of the operation */
    uint32_t record_count;  /* the index's record count at that commit (all of them flushed
                             * by an earlier commit) */
    uint32_t nranges;
    const unsigned char *ranges;   /* nranges pairs of (first uid, last uid), little-endian */
};

/* flaglog_header_encode: fill out[FLAGLOG_HEADER_SIZE]: magic (8), version (4), header size
 * (4), epoch (8), zero (40), CRC-32 of bytes 0-59 (4). */
void flaglog_header_encode(uint64_t epoch, unsigned char *out);

/* flaglog_header_decode: 0 with *epoch_r set, or CF_E_CORRUPT. */
int flaglog_header_decode(const unsigned char *in, uint64_t *epoch_r);

/* flaglog_entry_size: the encoded size of an entry with nranges ranges. */
static inline size_t flaglog_entry_size(uint32_t nranges)
{
    return FLAGLOG_ENTRY_FIXED + (size_t)nranges * 8 + 4;
}

/* flaglog_entry_encode: out[flaglog_entry_size(e->nranges)] from e (its ranges included). */
void flaglog_entry_encode(const struct flaglog_entry *e, unsigned char *out);

/* flaglog_entry_next: the entry at *off of the log bytes (buf, len) when it is whole, of epoch
 * and its checksum is right: 1 with *e set (ranges pointing into buf) and *off past it; 0 at
 * the end of the log (anything else: bytes of an older epoch, a torn write, zeros). */
int flaglog_entry_next(const unsigned char *buf, size_t len, size_t *off, uint64_t epoch,
                       struct flaglog_entry *e);

/* flaglog_change: the flags and keyword bits r gets from the operation (op, sys, keywords)
 * into *flags_r and kw_r; 1 when they differ from r's. The rule of mailbox_store, shared by
 * the store and the replay so that both always agree. */
int flaglog_change(uint32_t op, uint32_t sys, const uint8_t *keywords,
                   const struct index_record *r, uint32_t *flags_r, uint8_t *kw_r);

/* flaglog_apply: replay entry e onto record r: when r is not expunged and older than the
 * entry (r->modseq < e->modseq) and the operation changes its flags, they change and r takes
 * the entry's modseq: 1; else 0. Idempotent: a record the change reached, or one changed
 * again later, has a modseq at least the entry's. */
int flaglog_apply(const struct flaglog_entry *e, struct index_record *r);

#endif
