/* mailbox-uidcol.c: the uid column file (uidcol.h, coffer-store(5)): building a fresh
 * session's view and modseq summary from it, rewriting it from the records when it cannot be
 * trusted, and keeping it up to date at every commit. */
#include "store/mailbox-int.h"
#include "store/mailbox-sort.h"
#include "store/uidcol.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct uidcol_stats uidcol_stats;
uint32_t uidcol_min_records = 1024;

/* Header layout: byte offsets. */
enum {
    C_MAGIC = 0, C_VERSION = 8, C_HEADER_SIZE = 12, C_BOOT_ID = 16, C_GENERATION = 32,
    C_COMMIT = 40, C_SLOT_CRC = 48, C_RECORD_COUNT = 52, C_CRC = 60
};
/* Block layout: the entries, then these. */
enum {
    B_MAXMODSEQ = UIDCOL_BLOCK * UIDCOL_ENTRY_SIZE, B_ZERO = B_MAXMODSEQ + 8, B_CRC = B_ZERO + 4
};

void uidcol_header_encode(const struct uidcol_header *h, unsigned char *out)
{
    memset(out, 0, UIDCOL_HEADER_SIZE);
    memcpy(out + C_MAGIC, UIDCOL_MAGIC, 8);
    le_put32(out + C_VERSION, UIDCOL_VERSION);
    le_put32(out + C_HEADER_SIZE, UIDCOL_HEADER_SIZE);
    memcpy(out + C_BOOT_ID, h->boot_id, sizeof h->boot_id);
    le_put64(out + C_GENERATION, h->generation);
    le_put64(out + C_COMMIT, h->commit);
    le_put32(out + C_SLOT_CRC, h->slot_crc);
    le_put32(out + C_RECORD_COUNT, h->record_count);
    le_put32(out + C_CRC, index_crc32(out, C_CRC));
}

int uidcol_header_decode(const unsigned char *in, struct uidcol_header *h)
{
    if (memcmp(in + C_MAGIC, UIDCOL_MAGIC, 8) != 0 || le_get32(in + C_VERSION) != UIDCOL_VERSION ||
        le_get32(in + C_HEADER_SIZE) != UIDCOL_HEADER_SIZE ||
        le_get32(in + C_CRC) != index_crc32(in, C_CRC))
        return CF_E_CORRUPT;
    memcpy(h->boot_id, in + C_BOOT_ID, sizeof h->boot_id);
    h->generation = le_get64(in + C_GENERATION);
    h->commit = le_get64(in + C_COMMIT);
    h->slot_crc = le_get32(in + C_SLOT_CRC);
    h->record_count = le_get32(in + C_RECORD_COUNT);
    return 0;
}

/* The blocks' checksum is the sort key file's (mailbox_sortkeys_sum), not CRC-32: a fresh
 * session checks all of them, and zlib's CRC-32 took 0.65 ms for the 3,125 blocks of a
 * 100,000-message mailbox here, this one 0.17 ms. */
void uidcol_block_seal(unsigned char *blk)
{
    le_put32(blk + B_ZERO, 0);
    le_put32(blk + B_CRC, mailbox_sortkeys_sum(blk, B_CRC));
}

int uidcol_block_check(const unsigned char *blk)
{
    if (le_get32(blk + B_ZERO) != 0 || le_get32(blk + B_CRC) != mailbox_sortkeys_sum(blk, B_CRC))
        return CF_E_CORRUPT;
    return 0;
}

/* get32, get64: little-endian loads the compiler makes one move of (le_get32 is a call). */
static inline uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint32_t nblocks(uint32_t records)
{
    return (records + UIDCOL_BLOCK - 1) / UIDCOL_BLOCK;
}

static char *col_path(const struct mailbox *mb)
{
    return xasprintf("%s/%s", mb->dir, UIDCOL_FILE);
}

/* names: whether column header c names index header h (slot checksum crc) in this boot. */
static int names(const struct uidcol_header *c, const struct index_header *h, uint32_t crc)
{
    uint8_t id[16];
    return mbi_boot_id(id) == 0 && !memcmp(c->boot_id, id, sizeof id) &&
           c->generation == h->generation && c->commit == h->commit && c->slot_crc == crc &&
           c->record_count == h->record_count;
}

/* this_header: a column header naming mb->hdr as it is on disk now. 0, or -1 when the boot
 * id is unknown. */
static int this_header(const struct mailbox *mb, struct uidcol_header *c)
{
    if (mbi_boot_id(c->boot_id) < 0) return -1;
    c->generation = mb->hdr.generation;
    c->commit = mb->hdr.commit;
    c->slot_crc = index_slot_crc(mb->map, &mb->hdr);
    c->record_count = mb->hdr.record_count;
    return 0;
}

/* ---- the files kept open (struct mbi_colfile) ---- */

static void colfile_drop(struct mbi_colfile *kf)
{
    if (kf->fd >= 0) close(kf->fd);
    kf->fd = -1;
    kf->known = 0;
    kf->ent_known = 0;
}

void mbi_colfiles_close(struct mailbox *mb)
{
    colfile_drop(&mb->colf);
    colfile_drop(&mb->sumf);
}

/* colfile_fd: under a lock, the descriptor of the file name in the mailbox (the column or the
 * summary), kept open on the handle (the caller does not close it), or -1 when there is none.
 * The first use under each lock checks with one stat that the path still names the file kept
 * (a rebuild renames a new one in, a reconstruct removes it); later uses under the same lock
 * trust that check: only a holder of the write lock replaces or removes the file while others
 * hold the lock, except a reader's rebuild under a shared lock, whose new file has the same
 * contents. Opened read-write unless the handle is read-only. */
static int colfile_fd(struct mailbox *mb, struct mbi_colfile *kf, const char *name)
{
    if (kf->fd >= 0 && mb->locked && kf->seq == mb->lock_seq) return kf->fd;
    char *path = xasprintf("%s/%s", mb->dir, name);
    struct stat st;
    if (kf->fd >= 0) {
        if (stat(path, &st) == 0 && st.st_dev == kf->dev && st.st_ino == kf->ino) {
            kf->seq = mb->lock_seq;
            free(path);
            return kf->fd;
        }
        colfile_drop(kf);
    }
    int fd = open(path, (mb->index_rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    free(path);
    if (fd < 0) return -1;
    uidcol_stats.file_opens++;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return -1;
    }
    kf->fd = fd;
    kf->dev = st.st_dev;
    kf->ino = st.st_ino;
    kf->seq = mb->lock_seq;
    kf->known = 0;
    kf->ent_known = 0;
    return fd;
}

static int sum_header_decode(const unsigned char *in, struct uidcol_header *c);

/* colfile_names: whether the kept file's header names index header h (slot checksum crc):
 * from the header last seen when that names h (nothing read), else read. */
static int colfile_names(struct mbi_colfile *kf, int sum, const struct index_header *h,
                         uint32_t crc)
{
    if (kf->known && names(&kf->named, h, crc)) return 1;
    unsigned char head[UIDCOL_HEADER_SIZE];
    struct uidcol_header c;
    kf->known = 0;
    kf->ent_known = 0;   /* another header: the file is not as this handle left it */
    if (pread(kf->fd, head, sizeof head, 0) != (ssize_t)sizeof head ||
        (sum ? sum_header_decode(head, &c) : uidcol_header_decode(head, &c)) < 0)
        return 0;
    kf->named = c;
    kf->known = 1;
    return names(&c, h, crc);
}

int mbi_uidcol_usable(struct mailbox *mb)
{
    /* the rule of the verified marker (index.h): records agree with this header in this boot
     * (so no interrupted in-place commit, no torn commit, no repair held only in memory) */
    return mb->hdr.record_count >= uidcol_min_records && mb->hdr.record_count > 0 &&
           !mb->hdr_fallback && !mb->check_counts &&
           !index_intent_pending(mb->map, &mb->hdr) && mbi_verified(mb);
}

/* ---- reading ---- */

#define READ_BLOCKS 240u   /* 65 KB per pread */

/* damaged: log why a column naming the current header is not used, once per event. */
static int damaged(struct mailbox *mb, const char *what, uint32_t block)
{
    log_warn("mailbox_uidcol_damaged", "mbox=%s uniqueid=%s what=%s block=%u action=rebuild",
             log_quote(mb->name), mb->uniqueid, what, (unsigned)block);
    return 0;
}

int mbi_uidcol_view(struct mailbox *mb, struct uidcol_view *v)
{
    memset(v, 0, sizeof *v);
    if (!mbi_uidcol_usable(mb)) return 0;
    const struct index_header *h = &mb->hdr;
    int fd = colfile_fd(mb, &mb->colf, UIDCOL_FILE);
    if (fd < 0) return 0;
    int ok = 0;
    unsigned char *buf = NULL;
    if (!colfile_names(&mb->colf, 0, h, index_slot_crc(mb->map, h)))
        goto out;   /* another commit's, another boot's, or none: rebuilt, nothing to say */
    uint32_t count = h->record_count, nb = nblocks(count);
    v->uids = xreallocarray(NULL, h->exists ? h->exists : 1, sizeof *v->uids);
    v->msum = xzmalloc(nb * sizeof *v->msum);
    buf = xmalloc((size_t)READ_BLOCKS * UIDCOL_BLOCK_SIZE);
    uint32_t first_uid = 0, prev = 0, live = 0, expunged = 0;
    uint32_t seen = 0, deleted = 0, answered = 0, flagged = 0;
    for (uint32_t b0 = 0; b0 < nb; b0 += READ_BLOCKS) {
        uint32_t n = nb - b0 < READ_BLOCKS ? nb - b0 : READ_BLOCKS;
        size_t want = (size_t)n * UIDCOL_BLOCK_SIZE;
        if (pread(fd, buf, want, (off_t)uidcol_block_offset(b0)) != (ssize_t)want) {
            damaged(mb, "short", b0);
            goto out;
        }
        for (uint32_t b = 0; b < n; b++) {
            const unsigned char *blk = buf + (size_t)b * UIDCOL_BLOCK_SIZE;
            uint32_t first = (b0 + b) * UIDCOL_BLOCK;
            if (uidcol_block_check(blk) < 0) {
                damaged(mb, "block_checksum", b0 + b);
                goto out;
            }
            uint64_t maxmodseq = get64(blk + B_MAXMODSEQ);
            if (maxmodseq > h->highestmodseq) {
                damaged(mb, "block_modseq", b0 + b);
                goto out;
            }
            v->msum[b0 + b] = maxmodseq;
            for (uint32_t i = 0; i < UIDCOL_BLOCK; i++) {
                const unsigned char *e = blk + i * UIDCOL_ENTRY_SIZE;
                uint32_t uid = get32(e), f = get32(e + 4);
                if (first + i >= count) {   /* past the last record: zero */
                    if (uid || f) {
                        damaged(mb, "tail", b0 + b);
                        goto out;
                    }
                    continue;
                }
                if (uid <= prev || uid >= h->uidnext) {
                    damaged(mb, "uid_order", b0 + b);
                    goto out;
                }
                if (!prev) first_uid = uid;
                prev = uid;
                if (f & FLAG_EXPUNGED) {
                    expunged++;
                    continue;
                }
                if (live == h->exists) {
                    damaged(mb, "exists", b0 + b);
                    goto out;
                }
                v->uids[live++] = uid;
                seen += (f & FLAG_SEEN) != 0;
                deleted += (f & FLAG_DELETED) != 0;
                answered += (f & FLAG_ANSWERED) != 0;
                flagged += (f & FLAG_FLAGGED) != 0;
                if (!v->first_unseen && !(f & FLAG_SEEN)) v->first_unseen = live;
            }
        }
    }
    if (live != h->exists || expunged != h->expunged || seen != h->seen ||
        deleted != h->deleted || answered != h->answered || flagged != h->flagged) {
        damaged(mb, "counts", nb);
        goto out;
    }
    /* the ends against the records themselves (pread: a fresh mapping's page costs more) */
    unsigned char u0[4], u1[4];
    if (pread(mb->index_fd, u0, 4, (off_t)index_record_offset(0)) != 4 ||
        pread(mb->index_fd, u1, 4, (off_t)index_record_offset(count - 1)) != 4 ||
        le_get32(u0) != first_uid || le_get32(u1) != prev) {
        damaged(mb, "records", 0);
        goto out;
    }
    v->n = live;
    v->maxuid = prev;
    ok = 1;
out:
    free(buf);
    if (!ok) {
        free(v->uids);
        free(v->msum);
        memset(v, 0, sizeof *v);
        return 0;
    }
    uidcol_stats.loads++;
    return 1;
}

int mbi_uidcol_maxima(struct mailbox *mb, uint64_t **msum_r)
{
    *msum_r = NULL;
    if (!mbi_uidcol_usable(mb)) return 0;
    const struct index_header *h = &mb->hdr;
    int fd = colfile_fd(mb, &mb->colf, UIDCOL_FILE);
    if (fd < 0) return 0;
    int ok = 0;
    unsigned char *buf = NULL;
    uint64_t *msum = NULL;
    if (!colfile_names(&mb->colf, 0, h, index_slot_crc(mb->map, h))) goto out;
    uint32_t nb = nblocks(h->record_count);
    msum = xzmalloc(nb * sizeof *msum);
    buf = xmalloc((size_t)READ_BLOCKS * UIDCOL_BLOCK_SIZE);
    for (uint32_t b0 = 0; b0 < nb; b0 += READ_BLOCKS) {
        uint32_t n = nb - b0 < READ_BLOCKS ? nb - b0 : READ_BLOCKS;
        size_t want = (size_t)n * UIDCOL_BLOCK_SIZE;
        if (pread(fd, buf, want, (off_t)uidcol_block_offset(b0)) != (ssize_t)want) {
            damaged(mb, "short", b0);
            goto out;
        }
        for (uint32_t b = 0; b < n; b++) {
            /* a maximum that is too low would hide a change from the session: only a block
             * whose checksum holds is believed */
            const unsigned char *blk = buf + (size_t)b * UIDCOL_BLOCK_SIZE;
            if (uidcol_block_check(blk) < 0) {
                damaged(mb, "block_checksum", b0 + b);
                goto out;
            }
            uint64_t maxmodseq = get64(blk + B_MAXMODSEQ);
            if (maxmodseq > h->highestmodseq) {
                damaged(mb, "block_modseq", b0 + b);
                goto out;
            }
            msum[b0 + b] = maxmodseq;
        }
    }
    ok = 1;
out:
    free(buf);
    if (!ok) {
        free(msum);
        return 0;
    }
    uidcol_stats.maxima++;
    *msum_r = msum;
    return 1;
}

/* ---- writing the whole file ---- */

static void sum_header_encode(const struct uidcol_header *c, unsigned char *out);
struct grp_delta;
static int sum_commit(struct mailbox *mb, int colfd, const struct index_header *old,
                      uint32_t old_crc, const struct grp_delta *d, size_t n, int *fd_r);
static int sum_write_whole(struct mailbox *mb, const unsigned char *blocks, uint32_t nb,
                           const struct uidcol_header *c);


void mbi_uidcol_build_begin(struct mailbox *mb, struct uidcol_build *b)
{
    memset(b, 0, sizeof b[0]);
    if (mb->index_rdonly || !mbi_uidcol_usable(mb)) return;
    b->nb = nblocks(mb->hdr.record_count);
    b->buf = xzmalloc(UIDCOL_HEADER_SIZE + (size_t)b->nb * UIDCOL_BLOCK_SIZE);
}

void mbi_uidcol_build_end(struct mailbox *mb, struct uidcol_build *b, const uint64_t *msum)
{
    if (!b->buf) return;
    struct uidcol_header c;
    if (msum && this_header(mb, &c) == 0) {
        uidcol_header_encode(&c, b->buf);
        for (uint32_t k = 0; k < b->nb; k++) {
            unsigned char *blk = b->buf + uidcol_block_offset(k);
            le_put64(blk + B_MAXMODSEQ, msum[k]);
            uidcol_block_seal(blk);
        }
        /* a new file renamed in: a reader under another shared lock sees the old one or
         * this one, whole. No fsync: the column counts only in this boot. */
        char *path = col_path(mb);
        char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        size_t len = UIDCOL_HEADER_SIZE + (size_t)b->nb * UIDCOL_BLOCK_SIZE;
        if (fd < 0 || write_all_paged(fd, b->buf, len) < 0 || close(fd) < 0 ||
            rename(tmp, path) < 0) {
            log_warn("mailbox_uidcol_write_failed", "mbox=%s path=%s errno=%s",
                     log_quote(mb->name), log_quote(tmp), strerror(errno));
            if (fd >= 0) unlink(tmp);
        } else {
            uidcol_stats.rebuilds++;
            colfile_drop(&mb->colf);   /* a new file: opened again when next used */
            /* and its group summary, naming the same header */
            (void)sum_write_whole(mb, b->buf + UIDCOL_HEADER_SIZE, b->nb, &c);
        }
        free(tmp);
        free(path);
    }
    free(b->buf);
    b->buf = NULL;
}

/* ---- keeping it up to date ---- */

/* col_push: pos (old flags old) into the commit's list. */
static void col_push(struct mailbox *mb, uint32_t pos, uint32_t old)
{
    if (mb->col_npos == mb->col_apos) {
        mb->col_apos = mb->col_apos ? mb->col_apos * 2 : 16;
        mb->col_pos = xreallocarray(mb->col_pos, mb->col_apos, sizeof *mb->col_pos);
        mb->col_old = xreallocarray(mb->col_old, mb->col_apos, sizeof *mb->col_old);
    }
    mb->col_old[mb->col_npos] = old;
    mb->col_pos[mb->col_npos++] = pos;
}

void mbi_uidcol_note(struct mailbox *mb, uint32_t pos)
{
    mb->col_track = 1;
    uint32_t old = COL_OLD_NONE;
    if (pos < mb->hdr.record_count && mb->map_len >= index_record_offset(pos + 1))
        old = get32(mb->map + index_record_offset(pos) + 4);
    col_push(mb, pos, old);
}

void mbi_uidcol_forget(struct mailbox *mb)
{
    mb->col_track = 0;
    mb->col_npos = 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* write_blocks: blocks [k, k + nb) made again from their records, read from the mapping (the
 * commit has just refreshed it; a copy through pread was 640 KB per STORE 1:* on 5,000
 * messages) and written with one pwrite: STORE 1:* rewrites every block, and a call per block
 * was 300 system calls on 5,000 messages. 0 or -1. */
#define WRITE_RUN 64u   /* blocks per call: 256 KiB of records */

/* What the commit changed in one group's summary entry (sum_commit): the change of its live
 * and seen counts and the highest modseq of its changed records; exact 0 when that cannot be
 * told from the records noted (records added to the group), and the group's entry is made
 * again from all its blocks. */
struct grp_delta {
    uint32_t group;
    int32_t dlive, dseen;
    uint64_t maxmodseq;
    uint32_t last;      /* the uid of the last record added to the group (0: none) */
    int exact;
};

/* live_seen: a record's flags as the summary counts them: 1 live, 2 live and seen. */
static int live_seen(uint32_t f)
{
    return f & FLAG_EXPUNGED ? 0 : f & FLAG_SEEN ? 2 : 1;
}

/* pos_cmp: positions ascending, then in the order noted (the first note of a position has the
 * flags before the commit). */
struct pos_old {
    uint32_t pos, old, seq;
};
static int pos_cmp(const void *a, const void *b)
{
    const struct pos_old *x = a, *y = b;
    if (x->pos != y->pos) return x->pos < y->pos ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* grp_delta_at: the entry of group g, the last of d[0..*ng) when it is g's, else a new exact
 * one appended (the callers go through groups in order; d has room for one more). */
static struct grp_delta *grp_delta_at(struct grp_delta *d, size_t *ng, uint32_t g)
{
    if (!*ng || d[*ng - 1].group != g) {
        memset(&d[*ng], 0, sizeof d[*ng]);
        d[*ng].group = g;
        d[*ng].exact = 1;
        (*ng)++;
    }
    return &d[*ng - 1];
}

/* group_deltas: the commit's changes per summary group, from the positions noted (their old
 * flags) and the records as the commit left them: no column or summary read. *n_r groups,
 * ascending; caller frees. */
static struct grp_delta *group_deltas(struct mailbox *mb, uint32_t old_count, size_t *n_r)
{
    size_t n = mb->col_npos, ng = 0;
    struct pos_old *po = xreallocarray(NULL, n ? n : 1, sizeof *po);
    for (size_t i = 0; i < n; i++) {
        po[i].pos = mb->col_pos[i];
        po[i].old = mb->col_old[i];
        po[i].seq = (uint32_t)i;
    }
    qsort(po, n, sizeof *po, pos_cmp);
    uint32_t count = mb->hdr.record_count;
    size_t cap = n + (count > old_count ? (count - old_count) / UIDSUM_RECORDS + 2 : 0);
    struct grp_delta *d = xreallocarray(NULL, cap ? cap : 1, sizeof *d);
    for (size_t i = 0; i < n; i++) {
        if (i && po[i].pos == po[i - 1].pos) continue;   /* the first note has the old flags */
        uint32_t pos = po[i].pos, g = pos / UIDSUM_RECORDS;
        if (pos >= old_count && pos < count) continue;   /* added: below, one by one */
        struct grp_delta *e = grp_delta_at(d, &ng, g);
        if (pos >= old_count || po[i].old == COL_OLD_NONE || pos >= mb->hdr.record_count) {
            e->exact = 0;
            continue;
        }
        const unsigned char *raw = mb->map + index_record_offset(pos);
        int was = live_seen(po[i].old), now = live_seen(get32(raw + 4));
        e->dlive += (now != 0) - (was != 0);
        e->dseen += (now == 2) - (was == 2);
        uint64_t m = get64(raw + 32);
        if (m > e->maxmodseq) e->maxmodseq = m;
    }
    /* the records added, read from the mapping the commit has just written them through:
     * a group that had records before gets its entry with them counted in and its last uid
     * moved (an APPEND reads no column block); a group they start is made from the blocks */
    for (uint32_t pos = old_count; pos < count; pos++) {
        uint32_t g = pos / UIDSUM_RECORDS;
        struct grp_delta *e = grp_delta_at(d, &ng, g);
        if ((uint64_t)g * UIDSUM_RECORDS >= old_count ||
            mb->map_len < index_record_offset(pos + 1)) {
            e->exact = 0;
            continue;
        }
        const unsigned char *raw = mb->map + index_record_offset(pos);
        int now = live_seen(get32(raw + 4));
        e->dlive += now != 0;
        e->dseen += now == 2;
        uint64_t m = get64(raw + 32);
        if (m > e->maxmodseq) e->maxmodseq = m;
        e->last = get32(raw);
    }
    free(po);
    *n_r = ng;
    return d;
}

/* write_blocks: blocks [k, k + nb) made again from their records, read from the mapping (the
 * commit has just refreshed it; a copy through pread was 640 KB per STORE 1:* on 5,000
 * messages) and written with one pwrite: STORE 1:* rewrites every block, and a call per block
 * was 300 system calls on 5,000 messages. 0 or -1. */
#define WRITE_RUN 64u   /* blocks per call: 256 KiB of records */
static int write_blocks(struct mailbox *mb, int fd, uint32_t k, uint32_t nb)
{
    uint32_t first = k * UIDCOL_BLOCK, n = mb->hdr.record_count - first;
    if (n > nb * UIDCOL_BLOCK) n = nb * UIDCOL_BLOCK;
    if (mb->map_len < index_record_offset(first + n)) return -1;
    const unsigned char *recs = mb->map + index_record_offset(first);
    unsigned char *blks = xzmalloc((size_t)nb * UIDCOL_BLOCK_SIZE);
    for (uint32_t b = 0; b < nb; b++) {
        unsigned char *blk = blks + (size_t)b * UIDCOL_BLOCK_SIZE;
        uint64_t maxmodseq = 0;
        for (uint32_t i = b * UIDCOL_BLOCK; i < (b + 1) * UIDCOL_BLOCK && i < n; i++) {
            const unsigned char *raw = recs + (size_t)i * INDEX_RECORD_SIZE;
            /* uid and flags, little-endian both */
            memcpy(blk + (i % UIDCOL_BLOCK) * UIDCOL_ENTRY_SIZE, raw, 8);
            uint64_t m = le_get64(raw + 32);
            if (m > maxmodseq) maxmodseq = m;
        }
        le_put64(blk + B_MAXMODSEQ, maxmodseq);
        uidcol_block_seal(blk);
    }
    int r = mbi_pwrite_all(fd, blks, (size_t)nb * UIDCOL_BLOCK_SIZE, uidcol_block_offset(k));
    free(blks);
    return r;
}

void mbi_uidcol_commit(struct mailbox *mb, const struct index_header *old, uint32_t old_crc,
                       int old_trusted)
{
    int fd = -1;
    struct grp_delta *deltas = NULL;
    size_t ndeltas = 0;
    if (!mb->col_track || !old_trusted || mb->index_rdonly) goto out;
    /* A mailbox below uidcol_min_records has no column anyone reads (mbi_uidcol_usable): no
     * open (it fails on a small mailbox, once per commit). A column left from when it was
     * larger keeps naming an older commit, so it is rebuilt if the mailbox grows again. */
    if (mb->hdr.record_count < uidcol_min_records) goto out;
    mb->sumf.ent_pending = 0;
    int had = mb->colf.fd >= 0;
    fd = colfile_fd(mb, &mb->colf, UIDCOL_FILE);
    if (mb->colf.fd >= 0 && !had) uidcol_stats.commit_opens++;
    if (fd < 0) goto out;   /* no column: nothing to keep */
    unsigned char head[UIDCOL_HEADER_SIZE];
    struct uidcol_header c;
    /* only a column that equals the records of the commit before can be brought forward;
     * any other is left as it is: it names an older commit, so it is rebuilt */
    if (!colfile_names(&mb->colf, 0, old, old_crc) || this_header(mb, &c) < 0 ||
        mb->hdr.generation != old->generation || mb->hdr.record_count < old->record_count)
        goto out;
    /* the blocks of the records rewritten in place and of those added, each once */
    for (uint32_t p = old->record_count; p < mb->hdr.record_count; p += UIDCOL_BLOCK)
        col_push(mb, p, COL_OLD_NONE);
    if (mb->hdr.record_count > old->record_count)
        col_push(mb, mb->hdr.record_count - 1, COL_OLD_NONE);
    /* what they change in the summary, before the positions become blocks */
    deltas = group_deltas(mb, old->record_count, &ndeltas);
    for (size_t i = 0; i < mb->col_npos; i++) mb->col_pos[i] /= UIDCOL_BLOCK;
    qsort(mb->col_pos, mb->col_npos, sizeof *mb->col_pos, cmp_u32);
    for (size_t i = 0; i < mb->col_npos;) {
        /* a run of adjacent blocks (repeats skipped) */
        uint32_t k = mb->col_pos[i], nb = 1;
        size_t j = i + 1;
        for (; j < mb->col_npos && nb < WRITE_RUN; j++) {
            if (mb->col_pos[j] == k + nb - 1) continue;
            if (mb->col_pos[j] != k + nb) break;
            nb++;
        }
        while (j < mb->col_npos && mb->col_pos[j] == k + nb - 1) j++;
        if (k + nb > nblocks(mb->hdr.record_count) || write_blocks(mb, fd, k, nb) < 0)
            goto out;   /* the header still names the old commit: the column is not used */
        i = j;
    }
    /* the group summary's entries of those blocks, when it named the same commit */
    int sumfd = -1;
    int sum_ok = sum_commit(mb, fd, old, old_crc, deltas, ndeltas, &sumfd);
    /* last: the headers that make the blocks count, the column's first (a summary is
     * trusted for the commit it names on its own: its entries are right either way) */
    uidcol_header_encode(&c, head);
    /* what the files' headers are is known again only once written whole */
    mb->colf.known = 0;
    mb->sumf.known = 0;
    mb->sumf.ent_known = 0;
    if (mbi_fault_point("uidcol") == 0 && mbi_pwrite_all(fd, head, sizeof head, 0) == 0) {
        uidcol_stats.updates++;
        mb->colf.named = c;
        mb->colf.known = 1;
        if (sum_ok) {
            sum_header_encode(&c, head);
            if (mbi_pwrite_all(sumfd, head, sizeof head, 0) == 0) {
                mb->sumf.named = c;
                mb->sumf.known = 1;
                if (mb->sumf.ent_pending) {
                    mb->sumf.ent_known = 1;
                    mb->sumf.ent_group = mb->sumf.ent_next_group;
                    memcpy(mb->sumf.ent, mb->sumf.ent_next, UIDSUM_ENTRY_SIZE);
                }
            }
        }
    }
out:
    free(deltas);
    mbi_uidcol_forget(mb);
}

/* ---- the group summary (uidsum) ---- */

/* Entry layout: byte offsets. */
enum { S_MAXMODSEQ = 0, S_LIVE = 8, S_SEEN = 12, S_FIRST = 16, S_LAST = 20, S_ZERO = 24, S_SUM = 28 };

static char *sum_path(const struct mailbox *mb)
{
    return xasprintf("%s/%s", mb->dir, UIDSUM_FILE);
}

static uint32_t ngroups(uint32_t records)
{
    return (records + UIDSUM_RECORDS - 1) / UIDSUM_RECORDS;
}

/* sum_header: the column header c as the summary's (its own magic and checksum). */
static void sum_header_encode(const struct uidcol_header *c, unsigned char *out)
{
    uidcol_header_encode(c, out);
    memcpy(out + C_MAGIC, UIDSUM_MAGIC, 8);
    le_put32(out + C_CRC, index_crc32(out, C_CRC));
}

static int sum_header_decode(const unsigned char *in, struct uidcol_header *c)
{
    unsigned char t[UIDCOL_HEADER_SIZE];
    if (memcmp(in + C_MAGIC, UIDSUM_MAGIC, 8) != 0) return CF_E_CORRUPT;
    memcpy(t, in, sizeof t);
    memcpy(t + C_MAGIC, UIDCOL_MAGIC, 8);   /* the checksum covers the summary's magic */
    if (le_get32(in + C_CRC) != index_crc32(in, C_CRC)) return CF_E_CORRUPT;
    le_put32(t + C_CRC, index_crc32(t, C_CRC));
    return uidcol_header_decode(t, c);
}

/* group_entry: the summary entry of the group whose column blocks (nblk of them, sealed)
 * start at blks and whose first record is position first, of count records. */
static void group_entry(const unsigned char *blks, uint32_t nblk, uint32_t first,
                        uint32_t count, unsigned char *out)
{
    uint64_t maxmodseq = 0;
    uint32_t live = 0, seen = 0, fu = 0, lu = 0;
    for (uint32_t b = 0; b < nblk; b++) {
        const unsigned char *blk = blks + (size_t)b * UIDCOL_BLOCK_SIZE;
        uint64_t m = get64(blk + B_MAXMODSEQ);
        if (m > maxmodseq) maxmodseq = m;
        for (uint32_t i = 0; i < UIDCOL_BLOCK; i++) {
            if (first + b * UIDCOL_BLOCK + i >= count) break;
            uint32_t uid = get32(blk + i * UIDCOL_ENTRY_SIZE),
                     f = get32(blk + i * UIDCOL_ENTRY_SIZE + 4);
            if (!fu) fu = uid;
            lu = uid;
            if (f & FLAG_EXPUNGED) continue;
            live++;
            seen += (f & FLAG_SEEN) != 0;
        }
    }
    memset(out, 0, UIDSUM_ENTRY_SIZE);
    le_put64(out + S_MAXMODSEQ, maxmodseq);
    le_put32(out + S_LIVE, live);
    le_put32(out + S_SEEN, seen);
    le_put32(out + S_FIRST, fu);
    le_put32(out + S_LAST, lu);
    le_put32(out + S_SUM, mailbox_sortkeys_sum(out, S_SUM));
}

/* sum_write_whole: a new summary of the column blocks at blocks (nb of them, sealed, in
 * order) for the header c names, renamed in. 0 or -1 (logged). */
static int sum_write_whole(struct mailbox *mb, const unsigned char *blocks, uint32_t nb,
                           const struct uidcol_header *c)
{
    uint32_t count = c->record_count, ng = ngroups(count);
    size_t len = UIDCOL_HEADER_SIZE + (size_t)ng * UIDSUM_ENTRY_SIZE;
    unsigned char *buf = xzmalloc(len);
    sum_header_encode(c, buf);
    for (uint32_t g = 0; g < ng; g++) {
        uint32_t b0 = g * UIDSUM_GROUP, n = nb - b0 < UIDSUM_GROUP ? nb - b0 : UIDSUM_GROUP;
        group_entry(blocks + (size_t)b0 * UIDCOL_BLOCK_SIZE, n, g * UIDSUM_RECORDS, count,
                    buf + UIDCOL_HEADER_SIZE + (size_t)g * UIDSUM_ENTRY_SIZE);
    }
    char *path = sum_path(mb);
    char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), r = 0;
    if (fd < 0 || write_all_paged(fd, buf, len) < 0 || close(fd) < 0 || rename(tmp, path) < 0) {
        log_warn("mailbox_uidcol_write_failed", "mbox=%s path=%s errno=%s",
                 log_quote(mb->name), log_quote(tmp), strerror(errno));
        if (fd >= 0) unlink(tmp);
        r = -1;
    } else {
        uidcol_stats.sum_rebuilds++;
        colfile_drop(&mb->sumf);   /* a new file: opened again when next used */
    }
    free(tmp);
    free(path);
    free(buf);
    return r;
}

/* sum_from_column: under a lock, a summary made from the whole column when the column names
 * the current header and passes its checks (every block's checksum): 0, else -1. The first
 * session after an upgrade, a crash between the two files' commits, or a summary found
 * damaged pay one column read (8.5 bytes a message). */
static int sum_from_column(struct mailbox *mb)
{
    const struct index_header *h = &mb->hdr;
    int fd = colfile_fd(mb, &mb->colf, UIDCOL_FILE), r = -1;
    if (fd < 0) return -1;
    uint32_t nb = nblocks(h->record_count);
    size_t len = (size_t)nb * UIDCOL_BLOCK_SIZE;
    unsigned char *blocks = xmalloc(len ? len : 1);
    if (!colfile_names(&mb->colf, 0, h, index_slot_crc(mb->map, h)) ||
        pread(fd, blocks, len, UIDCOL_HEADER_SIZE) != (ssize_t)len)
        goto out;
    struct uidcol_header c = mb->colf.named;
    for (uint32_t b = 0; b < nb; b++) {
        const unsigned char *blk = blocks + (size_t)b * UIDCOL_BLOCK_SIZE;
        if (uidcol_block_check(blk) < 0 || get64(blk + B_MAXMODSEQ) > h->highestmodseq) {
            damaged(mb, "block_checksum", b);
            goto out;
        }
    }
    r = sum_write_whole(mb, blocks, nb, &c);
out:
    free(blocks);
    return r;
}

/* sum_read: the summary's groups when it names the current header and passes its checks. */
static int sum_read(struct mailbox *mb, struct uidsum_group **g_r, uint32_t *n_r)
{
    const struct index_header *h = &mb->hdr;
    int fd = colfile_fd(mb, &mb->sumf, UIDSUM_FILE), ok = 0;
    if (fd < 0) return 0;
    uint32_t ng = ngroups(h->record_count);
    size_t len = UIDCOL_HEADER_SIZE + (size_t)ng * UIDSUM_ENTRY_SIZE;
    unsigned char *buf = xmalloc(len);
    struct uidsum_group *g = xreallocarray(NULL, ng ? ng : 1, sizeof *g);
    struct uidcol_header c;
    mb->sumf.known = 0;
    mb->sumf.ent_known = 0;
    if (pread(fd, buf, len, 0) != (ssize_t)len || sum_header_decode(buf, &c) < 0) goto out;
    mb->sumf.named = c;
    mb->sumf.known = 1;
    if (!names(&c, h, index_slot_crc(mb->map, h))) goto out;
    uint64_t live = 0, seen = 0;
    uint32_t prev = 0;
    for (uint32_t k = 0; k < ng; k++) {
        const unsigned char *e = buf + UIDCOL_HEADER_SIZE + (size_t)k * UIDSUM_ENTRY_SIZE;
        uint32_t recs = h->record_count - k * UIDSUM_RECORDS;
        if (recs > UIDSUM_RECORDS) recs = UIDSUM_RECORDS;
        g[k].maxmodseq = get64(e + S_MAXMODSEQ);
        g[k].live = get32(e + S_LIVE);
        g[k].seen = get32(e + S_SEEN);
        g[k].first = get32(e + S_FIRST);
        g[k].last = get32(e + S_LAST);
        if (get32(e + S_ZERO) != 0 || get32(e + S_SUM) != mailbox_sortkeys_sum(e, S_SUM) ||
            g[k].maxmodseq > h->highestmodseq || g[k].live > recs || g[k].seen > g[k].live ||
            g[k].first <= prev || g[k].last < g[k].first ||
            g[k].last - g[k].first < recs - 1 || g[k].last >= h->uidnext) {
            damaged(mb, "group", k * UIDSUM_GROUP);
            goto out;
        }
        prev = g[k].last;
        live += g[k].live;
        seen += g[k].seen;
    }
    if (live != h->exists || seen != h->seen) {
        damaged(mb, "group_counts", ng * UIDSUM_GROUP);
        goto out;
    }
    /* the ends against the records themselves, as the column's view does */
    unsigned char u0[4], u1[4];
    if (ng && (pread(mb->index_fd, u0, 4, (off_t)index_record_offset(0)) != 4 ||
               pread(mb->index_fd, u1, 4, (off_t)index_record_offset(h->record_count - 1)) != 4 ||
               le_get32(u0) != g[0].first || le_get32(u1) != g[ng - 1].last)) {
        damaged(mb, "group_records", 0);
        goto out;
    }
    ok = 1;
out:
    free(buf);
    if (!ok) {
        free(g);
        return 0;
    }
    *g_r = g;
    *n_r = ng;
    return 1;
}

/* col_current: 1 when the column's header names the current header (its blocks unread). */
static int col_current(struct mailbox *mb)
{
    if (colfile_fd(mb, &mb->colf, UIDCOL_FILE) < 0) return 0;
    return colfile_names(&mb->colf, 0, &mb->hdr, index_slot_crc(mb->map, &mb->hdr));
}

int mbi_uidsum_load(struct mailbox *mb, struct uidsum_group **g_r, uint32_t *n_r)
{
    *g_r = NULL;
    *n_r = 0;
    /* only beside a column of the same header: a lazy view reads its groups and its changed
     * blocks there, and an open that finds none current rebuilds both from the records */
    if (!mbi_uidcol_usable(mb) || !col_current(mb)) return 0;
    if (!sum_read(mb, g_r, n_r) &&
        (mb->index_rdonly || sum_from_column(mb) < 0 || !sum_read(mb, g_r, n_r)))
        return 0;
    uidcol_stats.sum_loads++;
    return 1;
}

/* col_changed_blocks: the blocks above since, from the summary and the column's blocks of
 * the groups above it. 1, else 0. */
static int col_changed_blocks(struct mailbox *mb, uint64_t since, uint32_t **b_r, size_t *n_r)
{
    struct uidsum_group *g;
    uint32_t ng;
    if (!mbi_uidsum_load(mb, &g, &ng)) return 0;
    const struct index_header *h = &mb->hdr;
    int fd = colfile_fd(mb, &mb->colf, UIDCOL_FILE), ok = 0;
    unsigned char *buf = xmalloc((size_t)UIDSUM_GROUP * UIDCOL_BLOCK_SIZE);
    uint32_t *list = NULL;
    size_t n = 0, a = 0;
    if (fd < 0 || !colfile_names(&mb->colf, 0, h, index_slot_crc(mb->map, h))) goto out;
    uint32_t nb = nblocks(h->record_count);
    for (uint32_t k = 0; k < ng; k++) {
        if (g[k].maxmodseq <= since) continue;
        uint32_t b0 = k * UIDSUM_GROUP, nblk = nb - b0 < UIDSUM_GROUP ? nb - b0 : UIDSUM_GROUP;
        size_t want = (size_t)nblk * UIDCOL_BLOCK_SIZE;
        if (pread(fd, buf, want, (off_t)uidcol_block_offset(b0)) != (ssize_t)want) {
            damaged(mb, "short", b0);
            goto out;
        }
        for (uint32_t b = 0; b < nblk; b++) {
            const unsigned char *blk = buf + (size_t)b * UIDCOL_BLOCK_SIZE;
            /* a maximum too low would hide a change: only a checked block is believed */
            uint64_t m = get64(blk + B_MAXMODSEQ);
            if (uidcol_block_check(blk) < 0 || m > g[k].maxmodseq) {
                damaged(mb, "block_checksum", b0 + b);
                goto out;
            }
            if (m > since) mbi_push_u32(&list, &n, &a, b0 + b);
        }
    }
    ok = 1;
out:
    free(buf);
    free(g);
    if (!ok) {
        free(list);
        return 0;
    }
    *b_r = list;
    *n_r = n;
    return 1;
}

int mbi_changed_blocks(struct mailbox *mb, uint64_t since, uint32_t below, uint32_t **blocks_r,
                       size_t *n_r)
{
    const struct index_header *h = &mb->hdr;
    *blocks_r = NULL;
    *n_r = 0;
    /* every change since is this handle's own: the blocks it wrote, nothing read */
    if (mbi_own_blocks(mb, since, below, blocks_r, n_r)) {
        uidcol_stats.own++;
        return 1;
    }
    int own = mb->msum && mb->msum_generation == h->generation &&
              mb->msum_modseq == h->highestmodseq && mb->msum_records == h->record_count;
    if (!own && col_changed_blocks(mb, since, blocks_r, n_r)) return 1;
    if (!own && !mbi_msum_current(mb)) return 0;
    size_t a = 0;
    for (uint32_t b = 0; (uint64_t)b * MSUM_BLOCK < h->record_count; b++)
        if (mb->msum[b] > since) mbi_push_u32(blocks_r, n_r, &a, b);
    return 1;
}

/* sum_entry_apply: the summary entry e (of group g, of the commit before) with the change d
 * applied: 1, or 0 when e does not pass its checks or the counts come out impossible (the
 * caller makes the entry from the blocks). */
static int sum_entry_apply(unsigned char *e, uint32_t g, uint32_t count, const struct grp_delta *d)
{
    if (get32(e + S_ZERO) != 0 || get32(e + S_SUM) != mailbox_sortkeys_sum(e, S_SUM)) return 0;
    int64_t live = (int64_t)get32(e + S_LIVE) + d->dlive, seen = (int64_t)get32(e + S_SEEN) + d->dseen;
    uint64_t maxmodseq = get64(e + S_MAXMODSEQ);
    if (d->maxmodseq > maxmodseq) maxmodseq = d->maxmodseq;
    uint32_t recs = count - g * UIDSUM_RECORDS;
    if (recs > UIDSUM_RECORDS) recs = UIDSUM_RECORDS;
    if (live < 0 || seen < 0 || seen > live || live > recs) return 0;
    if (d->last) {
        /* records added after the group's last: uids ascend, each record a uid of its own */
        uint32_t first = get32(e + S_FIRST), last = get32(e + S_LAST);
        if (!first || d->last <= last || d->last - first < recs - 1) return 0;
        le_put32(e + S_LAST, d->last);
    }
    le_put64(e + S_MAXMODSEQ, maxmodseq);
    le_put32(e + S_LIVE, (uint32_t)live);
    le_put32(e + S_SEEN, (uint32_t)seen);
    le_put32(e + S_SUM, mailbox_sortkeys_sum(e, S_SUM));
    return 1;
}

/* sum_commit: bring the summary forward with the column (mbi_uidcol_commit, which has
 * written the blocks of the groups d[0, n) name, ascending, with what the commit changed in
 * each). A group whose changed records all were there before gets its old entry with those
 * changes (a commit costs the records it changed, not the groups they are in, 8.7 KB of
 * column each); any other its entry made again from the column's blocks. The entries from
 * the first changed group to the last are read with one pread and written back with one
 * pwrite (32 bytes a group: 31 KB at 1,000,000 messages; a call per group was 1,260 calls
 * for 1,000 spread changes there). 1 when done (the caller writes the header c after the
 * column's), 0 when the summary did not name old (left as it is: it is made again from the
 * column). */
static int sum_commit(struct mailbox *mb, int colfd, const struct index_header *old,
                      uint32_t old_crc, const struct grp_delta *d, size_t n, int *fd_r)
{
    int fd = colfile_fd(mb, &mb->sumf, UIDSUM_FILE);
    *fd_r = -1;
    if (fd < 0) return 0;
    if (!colfile_names(&mb->sumf, 1, old, old_crc)) return 0;
    if (!n) {
        *fd_r = fd;
        return 1;
    }
    uint32_t nb = nblocks(mb->hdr.record_count), g0 = d[0].group, g1 = d[n - 1].group;
    uint32_t old_groups = ngroups(old->record_count);
    /* the entries the file has (groups of the old records), read; new groups start zeroed */
    size_t span = (size_t)(g1 - g0 + 1) * UIDSUM_ENTRY_SIZE;
    uint64_t off0 = UIDCOL_HEADER_SIZE + (uint64_t)g0 * UIDSUM_ENTRY_SIZE;
    unsigned char *ents = xzmalloc(span), *buf = NULL;
    size_t have = g0 < old_groups ? (size_t)(old_groups - g0) * UIDSUM_ENTRY_SIZE : 0;
    if (have > span) have = span;
    /* the one entry of the group this handle's last commit wrote, while the file is as that
     * commit left it (the header named from memory: no other commit since) */
    int ok = 1;
    if (have == UIDSUM_ENTRY_SIZE && mb->sumf.ent_known && mb->sumf.ent_group == g0) {
        memcpy(ents, mb->sumf.ent, UIDSUM_ENTRY_SIZE);
        uidcol_stats.sum_entry_kept++;
    } else if (have) {
        ok = pread(fd, ents, have, (off_t)off0) == (ssize_t)have;
    }
    for (size_t i = 0; i < n && ok; i++) {
        uint32_t k = d[i].group;
        unsigned char *e = ents + (size_t)(k - g0) * UIDSUM_ENTRY_SIZE;
        if (d[i].exact && k < old_groups && sum_entry_apply(e, k, mb->hdr.record_count, &d[i])) {
            uidcol_stats.sum_deltas++;
            continue;
        }
        uint32_t b0 = k * UIDSUM_GROUP, nblk = nb - b0 < UIDSUM_GROUP ? nb - b0 : UIDSUM_GROUP;
        size_t want = (size_t)nblk * UIDCOL_BLOCK_SIZE;
        if (!buf) buf = xmalloc((size_t)UIDSUM_GROUP * UIDCOL_BLOCK_SIZE);
        if (pread(colfd, buf, want, (off_t)uidcol_block_offset(b0)) != (ssize_t)want) {
            ok = 0;
            break;
        }
        group_entry(buf, nblk, k * UIDSUM_RECORDS, mb->hdr.record_count, e);
    }
    /* the groups between the changed ones go back as they were read */
    if (ok && mbi_pwrite_all(fd, ents, span, off0) < 0) ok = 0;
    if (ok) {   /* the last one, remembered once the header naming this commit is written */
        mb->sumf.ent_pending = 1;
        mb->sumf.ent_next_group = g1;
        memcpy(mb->sumf.ent_next, ents + span - UIDSUM_ENTRY_SIZE, UIDSUM_ENTRY_SIZE);
    }
    free(buf);
    free(ents);
    if (!ok) return 0;
    *fd_r = fd;
    return 1;
}

int mbi_uidcol_group(struct mailbox *mb, uint32_t g, uint32_t end, uint64_t view_modseq,
                     uint32_t *uids, uint32_t cap, uint32_t *n_r)
{
    if (!mbi_uidcol_usable(mb)) return 0;
    const struct index_header *h = &mb->hdr;
    int fd = colfile_fd(mb, &mb->colf, UIDCOL_FILE), ok = 0;
    if (fd < 0) return 0;
    unsigned char *buf = xmalloc((size_t)UIDSUM_GROUP * UIDCOL_BLOCK_SIZE);
    uint32_t first = g * UIDSUM_RECORDS, n = 0, prev = 0;
    if (end > h->record_count || end <= first ||
        !colfile_names(&mb->colf, 0, h, index_slot_crc(mb->map, h)))
        goto out;
    uint32_t nblk = (end - first + UIDCOL_BLOCK - 1) / UIDCOL_BLOCK;
    size_t want = (size_t)nblk * UIDCOL_BLOCK_SIZE;
    if (pread(fd, buf, want, (off_t)uidcol_block_offset(g * UIDSUM_GROUP)) != (ssize_t)want)
        goto out;
    for (uint32_t b = 0; b < nblk; b++) {
        const unsigned char *blk = buf + (size_t)b * UIDCOL_BLOCK_SIZE;
        uint32_t p0 = first + b * UIDCOL_BLOCK, p1 = p0 + UIDCOL_BLOCK;
        if (p1 > end) p1 = end;
        if (uidcol_block_check(blk) < 0) {
            damaged(mb, "block_checksum", g * UIDSUM_GROUP + b);
            goto out;
        }
        if (get64(blk + B_MAXMODSEQ) <= view_modseq) {
            /* nothing in it changed since the view was made: its flags are the view's */
            for (uint32_t p = p0; p < p1; p++) {
                const unsigned char *e = blk + (p - p0) * UIDCOL_ENTRY_SIZE;
                uint32_t uid = get32(e);
                if (uid <= prev || uid >= h->uidnext) {
                    damaged(mb, "uid_order", g * UIDSUM_GROUP + b);
                    goto out;
                }
                prev = uid;
                if (get32(e + 4) & FLAG_EXPUNGED) continue;
                if (n < cap) uids[n] = uid;
                n++;
            }
            continue;
        }
        /* changed since: the records say whether an expunge came after the view */
        unsigned char recs[UIDCOL_BLOCK * INDEX_RECORD_SIZE];
        size_t rw = (size_t)(p1 - p0) * INDEX_RECORD_SIZE;
        if (pread(mb->index_fd, recs, rw, (off_t)index_record_offset(p0)) != (ssize_t)rw) goto out;
        for (uint32_t p = p0; p < p1; p++) {
            const unsigned char *raw = recs + (size_t)(p - p0) * INDEX_RECORD_SIZE;
            uint32_t uid = get32(raw);
            if (uid <= prev) goto out;   /* (the caller reads them and says) */
            prev = uid;
            if ((get32(raw + 4) & FLAG_EXPUNGED) && get64(raw + 32) <= view_modseq) continue;
            if (n < cap) uids[n] = uid;
            n++;
        }
    }
    /* the ends against the records themselves, as the whole column's view does */
    unsigned char u0[4], u1[4];
    if (pread(mb->index_fd, u0, 4, (off_t)index_record_offset(first)) != 4 ||
        pread(mb->index_fd, u1, 4, (off_t)index_record_offset(end - 1)) != 4 ||
        le_get32(u1) != prev || le_get32(u0) > prev ||
        (nblk && get64(buf + B_MAXMODSEQ) <= view_modseq && get32(buf) != le_get32(u0))) {
        damaged(mb, "group_records", g * UIDSUM_GROUP);
        goto out;
    }
    ok = 1;
    *n_r = n;
out:
    free(buf);
    return ok;
}
