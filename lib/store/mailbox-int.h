/* mailbox-int.h: private to the lib/store/mailbox*.c files and mail.c: struct mailbox and the
 * helpers they share. Nothing outside those files includes it. */
#ifndef COFFER_STORE_MAILBOX_INT_H
#define COFFER_STORE_MAILBOX_INT_H
#include "store/mailbox.h"
#include "store/index.h"
#include "store/uidcol.h"
#include "store/mailbox-sort.h"
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#define LOCK_FILE "lock"
#define INDEX_FILE "index"
#define CACHE_FILE "cache"

struct mailbox {
    char *partition, *uniqueid, *dir, *name, *index_path;
    int lock_fd;
    dev_t lock_dev;             /* lock_fd's file, once mailbox_target_check asked (ino 0: */
    ino_t lock_ino;             /* not yet) */
    int locked;                 /* 0, LOCK_SH or LOCK_EX */
    int index_fd, cache_fd;
    int index_rdonly;           /* index_fd could only be opened read-only */
    int check_counts;           /* check the counters at the next refresh (set by open): 1
                                 * unless verified (index.h), 2 recount in any case */
    dev_t index_dev;
    ino_t index_ino;
    unsigned char *map;
    size_t map_len;
    struct index_header hdr;    /* as of the last refresh */
    uint64_t chosen_commit;     /* the header index_choose_header last picked in this file */
    uint32_t chosen_crc;        /* and its slot checksum (index_header_unchanged) */
    int nofsync;
    int expunge_delayed;        /* expunge keeps the message files (mailbox_set_expunge_delayed) */
    int dir_fd;                 /* the mailbox directory, for its fsync (opened on first use) */
    int recent_fd;              /* the "recent" file, kept open after a claim (-1: not open) */
    dev_t recent_dev;           /* and the file it is open on, checked against the path under */
    ino_t recent_ino;           /* the file's own lock before each claim */
    int commit_uncertain;       /* a failed commit could not restore its header slot durably */
    uint64_t *sync_map;         /* the lock file's shared ticket word (group commit) */
    int sync_map_failed;
    struct strarr keywords;     /* names, loaded lazily */
    uint32_t kw_loaded_bytes;
    uint64_t kw_loaded_gen;
    int kw_loaded;
    /* the session view: uids in ascending order, message number = position + 1 */
    uint32_t *view;
    uint32_t nview, aview;
    uint32_t view_maxuid;
    uint64_t view_modseq, view_generation;
    uint32_t view_records;
    int expunge_pending;
    /* a lazy view (vimplicit, made from the group summary): per group of UIDSUM_RECORDS
     * record positions, its count of messages and the uid of its last record, and its uids
     * once some message number in it was asked for (vg_uids[g] NULL before). A group not
     * read holds the records of its positions below view_records that were live at
     * view_modseq: not FLAG_EXPUNGED, or expunged later (a higher modseq: an expunge gives
     * the record a new modseq, and nothing changes a record after). mb->view is then only
     * the "built" mark and nview the count. */
    int vimplicit;
    uint32_t vg_n, vg_a;
    uint32_t *vg_count, *vg_last, *vg_pre;
    uint32_t **vg_uids;
    int vg_dirty;               /* vg_pre to be summed again */
    /* expunges a sync held back (MAILBOX_SYNC_NO_EXPUNGE): position and uid, ascending; their
     * groups are read, so the rule above no longer decides for them */
    uint32_t *vg_held_pos, *vg_held_uid;
    size_t vg_nheld, vg_aheld;
    /* the highest modseq of each block of MSUM_BLOCK records (one page of them), so that
     * mailbox_modseq_scan reads only the blocks that changed: valid while the header has
     * msum_generation, msum_modseq and msum_records (every change raises highestmodseq) */
    uint64_t *msum;
    uint32_t msum_records;
    uint64_t msum_generation, msum_modseq;
    int hdr_fallback;           /* the last refresh fell back from a torn commit */
    /* the uid column (mailbox-uidcol.c): the positions the commit being made rewrote in
     * place, and whether that commit may bring the column forward (col_track) */
    uint32_t *col_pos;
    uint32_t *col_old;          /* the flags each had before (COL_OLD_NONE: a new record) */
    size_t col_npos, col_apos;
    int col_track;
    /* the blocks of MSUM_BLOCK records that this handle's own commits rewrote in place since
     * own_since (the highest modseq before the first of them; ascending, no repeats, each
     * with the highest modseq of the commits that wrote it), valid while the header is the
     * one the last of them wrote (own_generation, own_commit, own_crc, own_records):
     * mbi_changed_blocks's answer for the sync that follows the session's own STORE or
     * EXPUNGE, without reading the column's groups. What the view has seen is dropped. */
    uint32_t *own_blocks;
    uint64_t *own_mods;
    size_t own_n, own_a;
    uint64_t own_since, own_generation, own_commit;
    uint32_t own_records, own_crc;
    int own_valid;
    /* the position of the first record the own commits added since own_since (UINT32_MAX:
     * none), and the highest modseq they gave */
    uint32_t own_added;
    uint64_t own_added_mod;
    /* the first unseen message of the view as the column said (mailbox_first_unseen): 0
     * unknown; valid while the header has first_unseen_modseq and the view's record count */
    uint32_t first_unseen;
    uint64_t first_unseen_modseq, first_unseen_generation;
    /* the key files that appends through this handle fill (mbi_sortkeys_appended), kept
     * open between appends: slot i for the process's i-th fill kind (mailbox-sort.c) */
    struct mbi_keyfile {
        int open;               /* fd is open on the file this handle last wrote */
        int fd;
        dev_t dev;
        ino_t ino;
        off_t size;             /* its size after that write: any other change shows */
        long last;              /* the uid of its last record then */
        unsigned char key[SORTKEYS_KEY_LEN];
    } keyfiles[SORTKEYS_FILL_MAX];
    /* the uid column and its group summary, kept open between locks (mailbox-uidcol.c):
     * checked once per lock taken (lock_seq) by a stat that the path still names the same
     * inode, so a rebuild (renamed in), a reconstruct (removed) or a repack is followed. named
     * is the header the file was last seen to have (read or written by this handle, known
     * set): a header is written in place only by a commit that made a new index header, so
     * while the index header is the one named, the file's header is still that one. */
    struct mbi_colfile {
        int fd;                 /* -1: not open */
        dev_t dev;
        ino_t ino;
        uint64_t seq;           /* lock_seq when the path was last checked */
        int known;
        struct uidcol_header named;
        /* the summary only: the entry of group ent_group as this handle's last commit wrote
         * it, valid with known while that commit's header is named (ent_known) */
        int ent_known, ent_pending;
        uint32_t ent_group, ent_next_group;
        unsigned char ent[UIDSUM_ENTRY_SIZE], ent_next[UIDSUM_ENTRY_SIZE];
    } colf, sumf;
    uint64_t lock_seq;          /* locks taken by mbi_lock (each flock of it counts) */
};

/* mbi_colfiles_close: close the uid column files kept open on mb (mailbox_close). */
void mbi_colfiles_close(struct mailbox *mb);

/* mbi_keyfiles_close: close the key files kept open on mb (mailbox_close). */
void mbi_keyfiles_close(struct mailbox *mb);

#define MSUM_BLOCK 32u   /* 32 records of 128 bytes: one 4 KiB page */

/* mbi_msum_note: record position pos's modseq in the summary being built (msum_build). */
static inline void mbi_msum_note(uint64_t *msum, uint32_t pos, uint64_t modseq)
{
    if (modseq > msum[pos / MSUM_BLOCK]) msum[pos / MSUM_BLOCK] = modseq;
}

int mbi_fault_point(const char *point);
int mbi_corrupt(struct mailbox *mb, const char *what, uint32_t uid);
int mbi_io_error(struct mailbox *mb, const char *call, const char *path);
int mbi_do_fsync(struct mailbox *mb, int fd, int data_only);
int mbi_sync_dir(struct mailbox *mb);
int mbi_refresh(struct mailbox *mb);
int mbi_lock(struct mailbox *mb, int op);
void mbi_unlock(struct mailbox *mb, int took);
long mbi_find_pos(const struct mailbox *mb, uint32_t uid);
int mbi_read_record(struct mailbox *mb, uint32_t pos, struct index_record *r);
int mbi_index_sync(struct mailbox *mb, const char *point);
int mbi_write_header(struct mailbox *mb, struct index_header *nh);
/* mbi_write_header_with: mbi_write_header with flush(mb, nh, arg) as its flush step in place of
 * the index's fdatasync (what: its name in the log line of a failure); flush returns 0, or -1
 * with errno set, and then the commit is undone as after a failed index flush. */
int mbi_write_header_with(struct mailbox *mb, struct index_header *nh,
                          int (*flush)(struct mailbox *, const struct index_header *, void *),
                          void *arg, const char *what);
/* mbi_commit_flaglog (mailbox-flaglog.c): the commit of a flag change whose entry (operation,
 * modseq and the changed uid ranges; the rest is filled in) is e: nh written into its slot, e
 * appended to the flag change log and the log flushed instead of the index (flaglog.h). Falls
 * back to mbi_write_header when the log cannot take it (and then starts the log over). */
struct flaglog_entry;
int mbi_commit_flaglog(struct mailbox *mb, struct index_header *nh, struct flaglog_entry *e);
/* mbi_flaglog_replay: under a lock, before a recount that the verified marker did not spare:
 * the log's entries of this index generation replayed onto the records (flaglog_apply), and
 * the record count raised to an entry's when the chosen header is older (a torn slot). The
 * number of records changed. */
int mbi_flaglog_replay(struct mailbox *mb);
int mbi_pwrite_all(int fd, const void *p, size_t n, uint64_t off);
int mbi_write_intent(struct mailbox *mb);
void mbi_write_verified(struct mailbox *mb);
/* mbi_msum_begin: a zeroed summary array for the current header's records, to be filled with
 * mbi_msum_note for every record [0, record_count) and handed to mbi_msum_end. */
uint64_t *mbi_msum_begin(struct mailbox *mb);
void mbi_msum_end(struct mailbox *mb, uint64_t *msum);
/* mbi_msum_current: under a lock, 1 when mb->msum summarizes the current header's records
 * (made now from the uid column's block maxima when it did not), else 0. */
int mbi_msum_current(struct mailbox *mb);
/* mbi_boot_id: this boot's id (16 bytes): 0, or -1 when it cannot be known. */
int mbi_boot_id(uint8_t id[16]);
/* mbi_verified: 1 when the verified marker (index.h) names mb->hdr and this boot. */
int mbi_verified(const struct mailbox *mb);

/* ---- the uid column (uidcol.h, mailbox-uidcol.c) ---- */

/* mbi_uidcol_usable: 1 when the current header is one a column may be trusted for or built
 * from: big enough, verified in this boot, no pending intent, no torn fallback. */
int mbi_uidcol_usable(struct mailbox *mb);
/* A view read from the column: uids of the existing messages (n of them, ascending), the
 * highest uid of any record, the modseq summary (a block each) and the message number of
 * the first unseen message (0 none). The caller owns uids and msum. */
struct uidcol_view {
    uint32_t *uids;
    uint32_t n, maxuid, first_unseen;
    uint64_t *msum;
};
/* mbi_uidcol_view: under a lock, the view from the column when it names the current header
 * and passes its checks: 1, else 0 (a damaged one logged) and the caller reads the records. */
int mbi_uidcol_view(struct mailbox *mb, struct uidcol_view *v);
/* mbi_uidcol_maxima: under a lock, only the highest modseq of every block of 32 records from
 * the column, when it names the current header and its blocks pass their checksums: 1 and
 * *msum_r (a summary for mbi_msum_end, the caller owns it), else 0 (a damaged one logged).
 * Reads the whole column (8.5 bytes a message), not the records (128 bytes a message): what
 * an incremental sync and a CHANGEDSINCE scan use to find the blocks other sessions changed. */
int mbi_uidcol_maxima(struct mailbox *mb, uint64_t **msum_r);
/* One group of the summary file (uidsum, uidcol.h): UIDSUM_RECORDS records. */
struct uidsum_group {
    uint64_t maxmodseq;
    uint32_t live, seen;        /* records without FLAG_EXPUNGED; of those, with \Seen */
    uint32_t first, last;       /* uids of its first and last record */
};
/* mbi_uidsum_load: under a lock, the groups of the current header (*n_r of them, the caller
 * frees *g_r) when the summary names it and passes its checks (made again from the column
 * first when only the column does): 1, else 0. Reads 0.03 bytes a message. */
int mbi_uidsum_load(struct mailbox *mb, struct uidsum_group **g_r, uint32_t *n_r);
/* mbi_changed_blocks: under a lock, the blocks of MSUM_BLOCK records of the current header
 * whose highest modseq is above since (*blocks_r, ascending, caller frees; *n_r of them; the
 * caller looks only at the records below position `below`, and may get blocks past it): from
 * the session's own summary when it is the header's, else from the group summary and the
 * column blocks of the groups above since, else from the column's block maxima (which become
 * the session's summary). 1, or 0 when none of them can say (the caller reads the records). */
int mbi_changed_blocks(struct mailbox *mb, uint64_t since, uint32_t below, uint32_t **blocks_r,
                       size_t *n_r);
/* mbi_uidcol_group: under a lock on the current header, the uids of the records at positions
 * [g * UIDSUM_RECORDS, end) that a lazy view made at view_modseq holds (struct mailbox), from
 * the column when it names the current header: a block whose max_modseq is at most
 * view_modseq gives its entries (nothing in it changed since), any other its 32 records. 1
 * with *n_r the count (uids gets the first cap of them), else 0 (the caller reads the
 * records). 8.7 KB instead of 128 KB of records for a group. */
int mbi_uidcol_group(struct mailbox *mb, uint32_t g, uint32_t end, uint64_t view_modseq,
                     uint32_t *uids, uint32_t cap, uint32_t *n_r);
/* A column being made from the records by a full pass (the view build): buf NULL when none
 * is to be written. mbi_uidcol_build_note for every record, then mbi_uidcol_build_end with the
 * pass's modseq summary (NULL: give up). */
struct uidcol_build {
    unsigned char *buf;
    uint32_t nb;
};
void mbi_uidcol_build_begin(struct mailbox *mb, struct uidcol_build *b);
static inline void mbi_uidcol_build_note(struct uidcol_build *b, uint32_t pos,
                                         const unsigned char *raw)
{
    if (b->buf)   /* uid and flags, as the record has them (little-endian) */
        memcpy(b->buf + uidcol_block_offset(pos / UIDCOL_BLOCK) +
               (pos % UIDCOL_BLOCK) * UIDCOL_ENTRY_SIZE, raw, UIDCOL_ENTRY_SIZE);
}
void mbi_uidcol_build_end(struct mailbox *mb, struct uidcol_build *b, const uint64_t *msum);
/* mbi_uidcol_note: the commit being made rewrites record pos in place (called before the
 * first change of it: its flags now are the ones the column has). */
#define COL_OLD_NONE UINT32_MAX
void mbi_uidcol_note(struct mailbox *mb, uint32_t pos);
/* mbi_own_note: after a commit from header old (slot checksum old_crc) to mb->hdr, add the
 * blocks it rewrote in place (what mbi_uidcol_note gathered) and the records it added to the
 * handle's own changes, or start them over from old; a commit that began a generation drops
 * them. mbi_own_forget: drop them (a commit not made, or records changed otherwise). */
void mbi_own_note(struct mailbox *mb, const struct index_header *old, uint32_t old_crc);
void mbi_own_forget(struct mailbox *mb);
/* mbi_own_blocks: under a lock, 1 and the blocks whose records below position `below` may
 * have a modseq above since (a copy, ascending: *blocks_r, *n_r) when every commit since
 * `since` is one of this handle's own (the header is the one its last commit wrote), else 0. */
int mbi_own_blocks(struct mailbox *mb, uint64_t since, uint32_t below, uint32_t **blocks_r,
                   size_t *n_r);
/* mbi_uidcol_forget: drop what mbi_uidcol_note gathered (a commit not made, or one whose
 * changes are not known, such as a repair). */
void mbi_uidcol_forget(struct mailbox *mb);
/* mbi_uidcol_commit: after commit mb->hdr was made over old (its slot checksum old_crc;
 * old_trusted: it was a header a column may name), bring the column forward when it named
 * old: the blocks of the noted positions and of the added records made again from the
 * records, then its header. Any failure leaves it naming old, so it is not used. No fsync. */
void mbi_uidcol_commit(struct mailbox *mb, const struct index_header *old, uint32_t old_crc,
                       int old_trusted);

int mbi_keyword_get(struct mailbox *mb, struct index_header *nh, const char *name, int create);
void mbi_count_record(struct index_header *h, const struct index_record *r, int add);
struct mailbox *mbi_mailbox_alloc(const char *partition, const char *uniqueid, const char *name);
int mbi_open_lock_file(const char *dir, int *fd_r);
int mbi_cache_end(struct mailbox *mb, uint64_t *end_r);
void mbi_push_u32(uint32_t **v, size_t *n, size_t *alloc, uint32_t x);
void mbi_unlink_messages(struct mailbox *mb, const uint32_t *uids, size_t n);
/* mbi_cache_read: the cache record of the message whose index record is r (not read again)
 * into e. 0, or CF_E_CORRUPT when it is missing, damaged or unreadable (logged as
 * mailbox_cache_rebuild): the caller rebuilds it from the message file (mailbox_summarize).
 * Blocks on a disk read. */
int mbi_cache_read(struct mailbox *mb, const struct index_record *r, struct cache_entry *e);

/* One message just appended, for mbi_sortkeys_appended: its uid, GUID and header block. */
struct mailbox_sortkeys_new {
    uint32_t uid;
    const uint8_t *guid;
    const char *hdr;
    size_t hlen;
};

/* mbi_sortkeys_appended: the store's call after an append's commit (mailbox-append.c):
 * nw[0,n) in ascending uid order, all committed. Never fails; never blocks on other locks
 * than the key files' own. */
void mbi_sortkeys_appended(struct mailbox *mb, const struct mailbox_sortkeys_new *nw, size_t n);

#endif
