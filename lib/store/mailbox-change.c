/* mailbox-change.c: changing messages in place: flag store, expunge (immediate or delayed),
 * repack by retention, and unexpunge of what delayed expunge kept. */
#include "store/mailbox-int.h"
#include "store/flaglog.h"
#include "store/mailbox.h"
#include "store/mbheader.h"
#include "store/partition.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mime/mime.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- store ---- */

#define REWRITE_RUN_MAX 8192u   /* records per run (1 MiB of undo each) */
/* In-place record rewrites of one commit (STORE, EXPUNGE), straight into the index's writable
 * shared mapping: a change costs the records it changes, touched once each, with no copy of the
 * record area through pwrite (STORE 1:* on 5,000 messages was a 640 KB pwrite, about a third of
 * the command's CPU, most of it the kernel's per-page write path). The page cache is the same
 * one pwrite fills, so other processes and a process crash see exactly what they saw before.
 * Before the first change the intent marker (mbi_write_intent); the old bytes of every run of
 * adjacent records are kept to put back if the commit fails (undo_records). Nothing is synced
 * here: the header write's flush (or the flag change log's) makes the commit durable. */
struct rewrite {
    struct buf undo;    /* runs: first position (4), count (4), old bytes */
    size_t run_off;     /* offset in undo of the open run's count, 0 when none */
    uint32_t run_pos;   /* position of the open run's first record */
    uint32_t run_n;     /* its records */
    uint32_t written;   /* records changed so far */
};

static void rewrite_init(struct rewrite *rw)
{
    memset(rw, 0, sizeof *rw);
    buf_init(&rw->undo);
}

static void rewrite_fini(struct rewrite *rw)
{
    buf_fini(&rw->undo);
}

/* rewrite_flush: close the open run: counted, and a crash test's point after each run's
 * write (the same places the pwrite of a run had). 0. */
static int rewrite_flush(struct mailbox *mb, struct rewrite *rw)
{
    (void)mb;
    if (!rw->run_n) return 0;
    rw->run_n = 0;
    rw->run_off = 0;
    mailbox_sync_stats.record_writes++;
    mbi_fault_point("record");
    return 0;
}

/* rewrite_peek: record pos as this commit has made it so far (written in place: the mapping). */
static const unsigned char *rewrite_peek(const struct mailbox *mb, const struct rewrite *rw,
                                         uint32_t pos)
{
    (void)rw;
    return mb->map + index_record_offset(pos);
}

/* rewrite_read: mbi_read_record through rewrite_peek. 0 or CF_E_CORRUPT. */
static int rewrite_read(struct mailbox *mb, const struct rewrite *rw, uint32_t pos,
                        struct index_record *rec)
{
    const unsigned char *raw = rewrite_peek(mb, rw, pos);
    if (index_record_decode(raw, rec) < 0)
        return mbi_corrupt(mb, "index_record", index_record_uid(raw));
    return 0;
}

/* rewrite_raw: raw replaces record pos in this commit, in place. Its old bytes go to undo
 * unless the open run holds them already (a message named twice in one command); a position
 * that does not continue the open run closes it and opens another. 0 or CF_E_IO. */
static int rewrite_raw(struct mailbox *mb, struct rewrite *rw, uint32_t pos,
                       const unsigned char *raw)
{
    unsigned char *dst = mb->map + index_record_offset(pos);
    int r;
    if (mb->index_rdonly) {   /* mapped read-only: the write a pwrite would have refused */
        errno = EBADF;
        return mbi_io_error(mb, "write", mb->index_path);
    }
    if (rw->run_n && pos >= rw->run_pos && pos - rw->run_pos < rw->run_n) {
        memcpy(dst, raw, INDEX_RECORD_SIZE);
        return 0;
    }
    if (rw->run_n && (pos != rw->run_pos + rw->run_n || rw->run_n >= REWRITE_RUN_MAX) &&
        (r = rewrite_flush(mb, rw)) < 0)
        return r;
    if (!rw->written && (r = mbi_write_intent(mb)) < 0) return r;
    mbi_uidcol_note(mb, pos);   /* the uid column's block of pos follows this commit */
    unsigned char p[8];
    if (!rw->run_n) {
        rw->run_pos = pos;
        le_put32(p, pos);
        le_put32(p + 4, 0);
        rw->run_off = rw->undo.len + 4;
        buf_append(&rw->undo, p, sizeof p);
    }
    buf_append(&rw->undo, dst, INDEX_RECORD_SIZE);
    rw->run_n++;
    le_put32((unsigned char *)rw->undo.s + rw->run_off, rw->run_n);
    memcpy(dst, raw, INDEX_RECORD_SIZE);
    rw->written++;
    return 0;
}

static int rewrite_record(struct mailbox *mb, struct rewrite *rw, uint32_t pos,
                          const struct index_record *rec)
{
    unsigned char raw[INDEX_RECORD_SIZE];
    index_record_encode(rec, raw);
    return rewrite_raw(mb, rw, pos, raw);
}

/* undo_records: after a failed commit (write_header put the header slot back), put back the
 * records it had rewritten in place, so that nothing of a change the client was refused
 * shows (the intent marker would otherwise make the next lock recount and commit them). */
static void undo_records(struct mailbox *mb, const struct rewrite *rw)
{
    const unsigned char *u = (const unsigned char *)rw->undo.s;
    size_t *runs = NULL, nruns = 0, aruns = 0;
    for (size_t off = 0; off + 8 <= rw->undo.len;
         off += 8 + (size_t)le_get32(u + off + 4) * INDEX_RECORD_SIZE) {
        if (nruns == aruns) {
            aruns = aruns ? 2 * aruns : 16;
            runs = xreallocarray(runs, aruns, sizeof *runs);
        }
        runs[nruns++] = off;
    }
    /* last run first: a record changed in two runs gets its oldest bytes back */
    while (nruns--) {
        size_t off = runs[nruns];
        uint32_t pos = le_get32(u + off), n = le_get32(u + off + 4);
        memcpy(mb->map + index_record_offset(pos), u + off + 8, (size_t)n * INDEX_RECORD_SIZE);
    }
    free(runs);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* changed_ranges: the positions a STORE changed (pos[0, n), any order, repeats allowed) as
 * flag change log ranges: one (first uid, last uid) pair per run of adjacent positions, so that
 * no record between them was left out (STORE 1:* is one range). Sorts pos. */
static unsigned char *changed_ranges(const struct mailbox *mb, uint32_t *pos, size_t n,
                                     uint32_t *nranges_r)
{
    qsort(pos, n, sizeof *pos, cmp_u32);
    unsigned char *out = xmalloc(n * 8);
    uint32_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && pos[j + 1] <= pos[j] + 1) j++;
        le_put32(out + 8 * k, index_record_uid(mb->map + index_record_offset(pos[i])));
        le_put32(out + 8 * k + 4, index_record_uid(mb->map + index_record_offset(pos[j])));
        k++;
        i = j + 1;
    }
    *nranges_r = k;
    return out;
}

/* store_foresee: recs_r as the loop of mailbox_store_hooked will leave them, worked out
 * before it changes any record, for the caller's step (hook->ready every STORE_HOOK_STEP
 * uids, then with all). The same rule and checks as that loop; flag changes are idempotent,
 * so a uid named twice comes out as the loop leaves it. Nothing is written: what other
 * sessions can read in the mapping before the commit is made durable is what it was
 * (the step's work comes before the first change, not between it and the flush). */
static void store_foresee(struct mailbox *mb, const uint32_t *uids, size_t n,
                          const struct mailbox_store *st, const struct flaglog_entry *fe,
                          uint64_t modseq, struct index_record *recs_r,
                          const struct mailbox_store_hook *hook)
{
    for (size_t i = 0; i < n; i++) {
        if (i && i % STORE_HOOK_STEP == 0) hook->ready(hook->arg, recs_r, i);
        long pos = mbi_find_pos(mb, uids[i]);
        if (pos < 0) continue;
        struct index_record rec;
        index_record_decode_unchecked(mb->map + index_record_offset((uint32_t)pos), &rec);
        if (rec.uid != uids[i] || (rec.flags & FLAG_EXPUNGED)) continue;   /* the loop's */
        if (st->unchangedsince && rec.modseq > st->unchangedsince) continue;
        struct index_record nr = rec;
        if (flaglog_change(fe->op, fe->sys, fe->keywords, &rec, &nr.flags, nr.user_flags))
            nr.modseq = modseq;
        recs_r[i] = nr;
    }
    hook->ready(hook->arg, recs_r, n);
}

int mailbox_store(struct mailbox *mb, const uint32_t *uids, size_t n,
                  const struct mailbox_store *st, uint32_t **failed_r, size_t *nfailed_r)
{
    return mailbox_store_records(mb, uids, n, st, failed_r, nfailed_r, NULL);
}

int mailbox_store_records(struct mailbox *mb, const uint32_t *uids, size_t n,
                          const struct mailbox_store *st, uint32_t **failed_r, size_t *nfailed_r,
                          struct index_record *recs_r)
{
    return mailbox_store_hooked(mb, uids, n, st, failed_r, nfailed_r, recs_r, NULL);
}

int mailbox_store_hooked(struct mailbox *mb, const uint32_t *uids, size_t n,
                         const struct mailbox_store *st, uint32_t **failed_r, size_t *nfailed_r,
                         struct index_record *recs_r, const struct mailbox_store_hook *hook)
{
    uint32_t *failed = NULL;
    size_t nfailed = 0, afailed = 0;
    int kbits[INDEX_MAX_KEYWORDS];
    size_t nk = 0;
    int r = 0;
    uint32_t *changed_pos = NULL;
    size_t nchanged = 0, achanged = 0;
    unsigned char *ranges = NULL;
    struct rewrite rw;
    rewrite_init(&rw);
    int took = mbi_lock(mb, LOCK_EX);
    if (took < 0) {
        r = took;
        goto out;
    }
    struct index_header nh = mb->hdr;
    nh.prev_count = nh.record_count;
    uint64_t modseq = nh.highestmodseq + 1;
    /* under the lock the header is the latest commit: a view (and a modseq summary) that
     * holds it may take this commit in (the caller reports the changes: recs_r) */
    int view_current = recs_r && mb->view && mb->view_generation == nh.generation &&
                       mb->view_records == nh.record_count &&
                       mb->view_modseq == nh.highestmodseq && !mb->expunge_pending;
    int msum_current = mb->msum && mb->msum_generation == nh.generation &&
                       mb->msum_records == nh.record_count &&
                       mb->msum_modseq == nh.highestmodseq;
    for (size_t i = 0; st->keywords && st->keywords[i]; i++) {
        int k = mbi_keyword_get(mb, &nh, st->keywords[i], st->op != STORE_REMOVE);
        if (k == CF_E_NOTFOUND) continue;   /* removing an unknown keyword: nothing to do */
        if (k < 0) {
            r = k;
            goto done;
        }
        if (nk < INDEX_MAX_KEYWORDS) kbits[nk++] = k;
    }
    uint32_t sys = st->flags & FLAG_SYSTEM_MASK;
    /* the operation as the flag change log states it (flaglog_change: the one rule for the
     * store and the log's replay) */
    struct flaglog_entry fe;
    memset(&fe, 0, sizeof fe);
    fe.op = st->op == STORE_SET ? FLAGLOG_SET : st->op == STORE_ADD ? FLAGLOG_ADD : FLAGLOG_REMOVE;
    fe.sys = sys;
    fe.modseq = modseq;
    for (size_t k = 0; k < nk; k++) fe.keywords[kbits[k] / 8] |= (uint8_t)(1u << (kbits[k] % 8));
    if (recs_r)
        for (size_t i = 0; i < n; i++) recs_r[i].uid = 0;
    if (recs_r && hook) store_foresee(mb, uids, n, st, &fe, modseq, recs_r, hook);
    for (size_t i = 0; i < n; i++) {
        long pos = mbi_find_pos(mb, uids[i]);
        if (pos < 0) continue;
        /* read and rewritten without a checksum over the whole record: the checksum changes
         * by what the flags change (index_record_set_flags), so a damaged record stays
         * detectably damaged for the readers that check it */
        const unsigned char *raw = rewrite_peek(mb, &rw, (uint32_t)pos);
        struct index_record rec;
        index_record_decode_unchecked(raw, &rec);
        if (rec.uid != uids[i]) {
            r = mbi_corrupt(mb, "index_record", index_record_uid(raw));
            goto done;
        }
        if (rec.flags & FLAG_EXPUNGED) continue;
        if (st->unchangedsince && rec.modseq > st->unchangedsince) {
            mbi_push_u32(&failed, &nfailed, &afailed, rec.uid);
            continue;
        }
        struct index_record nr = rec;
        if (!flaglog_change(fe.op, fe.sys, fe.keywords, &rec, &nr.flags, nr.user_flags)) {
            if (recs_r) recs_r[i] = rec;
            continue;   /* RFC 7162 section 3.1.3: no change, no new modseq */
        }
        mbi_count_record(&nh, &rec, 0);
        mbi_count_record(&nh, &nr, 1);
        nr.modseq = modseq;
        if (recs_r) recs_r[i] = nr;
        unsigned char out[INDEX_RECORD_SIZE];
        index_record_set_flags(raw, out, nr.flags, nr.user_flags, nr.modseq);
        if ((r = rewrite_raw(mb, &rw, (uint32_t)pos, out)) < 0) goto done;
        mbi_push_u32(&changed_pos, &nchanged, &achanged, (uint32_t)pos);
    }
    if ((r = rewrite_flush(mb, &rw)) < 0) goto done;
    if (nchanged && nh.keyword_count == mb->hdr.keyword_count) {
        /* no new keyword name (those live in the index): the log carries the change */
        nh.highestmodseq = modseq;
        fe.ranges = ranges = changed_ranges(mb, changed_pos, nchanged, &fe.nranges);
        r = mbi_commit_flaglog(mb, &nh, &fe);
    } else if (nchanged || nh.keyword_count != mb->hdr.keyword_count) {
        if (nchanged) nh.highestmodseq = modseq;
        r = mbi_write_header(mb, &nh);
    }
    if (r == 0 && nchanged && mb->hdr.highestmodseq == modseq &&
        mb->hdr.generation == nh.generation && mb->hdr.record_count == nh.record_count) {
        /* the records changed are this commit's alone, and the caller reports them */
        if (view_current) mb->view_modseq = modseq;
        if (msum_current && mb->msum_records == mb->hdr.record_count) {
            for (size_t i = 0; i < nchanged; i++) mbi_msum_note(mb->msum, changed_pos[i], modseq);
            mb->msum_modseq = modseq;
        }
    }
done:
    if (r < 0) undo_records(mb, &rw);
    rewrite_fini(&rw);
    mbi_unlock(mb, took);
out:
    free(changed_pos);
    free(ranges);
    if (r < 0) {
        free(failed);
        failed = NULL;
        nfailed = 0;
    }
    if (failed_r) *failed_r = failed;
    else free(failed);
    if (nfailed_r) *nfailed_r = nfailed;
    return r;
}

/* ---- expunge and repack ---- */

int mailbox_expunge(struct mailbox *mb, const uint32_t *uids, size_t n, uint32_t *count_r)
{
    return mailbox_expunge_sized(mb, uids, n, count_r, NULL);
}

/* expunge_sized: mailbox_expunge_sized; with any_flags the records among uids go whether or
 * not they carry \Deleted (mailbox_expunge_replaced). */
static int expunge_sized(struct mailbox *mb, const uint32_t *uids, size_t n, int any_flags,
                         uint32_t *count_r, uint64_t *bytes_r)
{
    uint32_t *gone = NULL;
    size_t ngone = 0, agone = 0;
    uint64_t bytes = 0;
    int r = 0;
    struct rewrite rw;
    rewrite_init(&rw);
    if (count_r) *count_r = 0;
    if (bytes_r) *bytes_r = 0;
    int took = mbi_lock(mb, LOCK_EX);
    if (took < 0) {
        rewrite_fini(&rw);
        return took;
    }
    struct index_header nh = mb->hdr;
    nh.prev_count = nh.record_count;
    uint64_t modseq = nh.highestmodseq + 1;
    size_t total = uids ? n : mb->hdr.record_count;
    int64_t now = (int64_t)time(NULL);
    if (now <= 0) now = 1;   /* 0 means "file gone" */
    for (size_t i = 0; i < total; i++) {
        long pos = uids ? mbi_find_pos(mb, uids[i]) : (long)i;
        if (pos < 0) continue;
        const unsigned char *raw = rewrite_peek(mb, &rw, (uint32_t)pos);
        uint32_t f = le_get32(raw + 4);
        if ((f & FLAG_EXPUNGED) || (!any_flags && !(f & FLAG_DELETED))) continue;
        struct index_record rec;
        if ((r = rewrite_read(mb, &rw, (uint32_t)pos, &rec)) < 0) goto done;
        mbi_count_record(&nh, &rec, 0);
        bytes += rec.size;
        rec.flags |= FLAG_EXPUNGED;
        rec.modseq = modseq;
        rec.expunged_at = mb->expunge_delayed ? now : 0;
        nh.expunged++;
        if ((r = rewrite_record(mb, &rw, (uint32_t)pos, &rec)) < 0) goto done;
        mbi_push_u32(&gone, &ngone, &agone, rec.uid);
    }
    if (!ngone) goto done;
    if ((r = rewrite_flush(mb, &rw)) < 0) goto done;
    nh.highestmodseq = modseq;
    if ((r = mbi_write_header(mb, &nh)) < 0) goto done;
    /* Only after the commit: a crash before leaves files nobody points to, never the reverse.
     * Delayed mode keeps them for unexpunge until mailbox_repack_expired. */
    if (!mb->expunge_delayed) mbi_unlink_messages(mb, gone, ngone);
    if (count_r) *count_r = (uint32_t)ngone;
    if (bytes_r) *bytes_r = bytes;
done:
    if (r < 0) undo_records(mb, &rw);
    rewrite_fini(&rw);
    mbi_unlock(mb, took);
    free(gone);
    return r;
}

int mailbox_expunge_sized(struct mailbox *mb, const uint32_t *uids, size_t n, uint32_t *count_r,
                          uint64_t *bytes_r)
{
    return expunge_sized(mb, uids, n, 0, count_r, bytes_r);
}

int mailbox_expunge_replaced(struct mailbox *mb, const uint32_t *uids, size_t n,
                             uint32_t *count_r, uint64_t *bytes_r)
{
    if (!uids) return CF_E_INTERNAL;    /* never "every message" */
    return expunge_sized(mb, uids, n, 1, count_r, bytes_r);
}

void mailbox_set_expunge_delayed(struct mailbox *mb, int on)
{
    mb->expunge_delayed = on ? 1 : 0;
}

/* repack_drops: whether a repack with this cutoff drops the record raw (encoded). */
static int repack_drops(const struct index_record *rec, int64_t cutoff)
{
    return (rec->flags & FLAG_EXPUNGED) && (!rec->expunged_at || rec->expunged_at <= cutoff);
}

/* repack: mailbox_repack_expired; always rewrites when force (mailbox_repack), else only
 * when some record goes. */
static int repack(struct mailbox *mb, int64_t cutoff, int force, uint32_t *removed_r)
{
    if (removed_r) *removed_r = 0;
    int took = mbi_lock(mb, LOCK_EX);
    if (took < 0) return took;
    struct buf out = BUF_INIT;
    uint32_t *gone = NULL;
    size_t ngone = 0, agone = 0;
    int r = 0;
    /* The new header's counters come from the records it keeps, never carried over. */
    struct index_header nh;
    if (index_recount(mb->map, &mb->hdr, &nh) < 0) {
        r = mbi_corrupt(mb, "index_keywords", 0);
        goto done;
    }
    buf_append(&out, mb->map, INDEX_HEADER_SIZE);
    memset(out.s + INDEX_SLOT0_OFFSET, 0, INDEX_SLOT_SIZE);
    memset(out.s + INDEX_SLOT1_OFFSET, 0, INDEX_SLOT_SIZE);
    memset(out.s + INDEX_INTENT_OFFSET, 0, INDEX_INTENT_SIZE);
    uint32_t kept = 0, retained = 0;
    for (uint32_t i = 0; i < mb->hdr.record_count; i++) {
        struct index_record rec;
        if ((r = mbi_read_record(mb, i, &rec)) < 0) goto done;
        if (repack_drops(&rec, cutoff)) {
            mbi_push_u32(&gone, &ngone, &agone, rec.uid);
            /* VANISHED (EARLIER) can no longer be exact at or below this modseq */
            if (rec.modseq > nh.vanished_modseq) nh.vanished_modseq = rec.modseq;
            continue;
        }
        /* re-encoded: a version 1 record becomes a version 2 one (the same bytes) */
        unsigned char raw[INDEX_RECORD_SIZE];
        index_record_encode(&rec, raw);
        buf_append(&out, raw, sizeof raw);
        if (rec.flags & FLAG_EXPUNGED) retained++;
        kept++;
    }
    if (!ngone && !force) goto done;
    nh.record_count = nh.prev_count = kept;
    nh.expunged = retained;
    nh.generation++;
    nh.commit = 1;   /* a new file: its first commit, complete before it is renamed in */
    index_header_encode(&nh, (unsigned char *)out.s + index_slot_offset(nh.commit));
    if (mb->nofsync) {
        char *tmp = xasprintf("%s.tmp.%d", mb->index_path, (int)getpid());
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || write_all_paged(fd, out.s, out.len) < 0 || rename(tmp, mb->index_path) < 0)
            r = mbi_io_error(mb, "write", tmp);
        if (fd >= 0) close(fd);
        free(tmp);
    } else {
        /* in pages: the records are then changed in place (write_all_paged says why) */
        r = file_write_atomic_paged(mb->index_path, out.s, out.len, 0600);
    }
    if (r < 0) goto done;
    /* the files go after the new index no longer names them */
    mbi_unlink_messages(mb, gone, ngone);
    r = mbi_refresh(mb);   /* follow our own rename */
    if (removed_r) *removed_r = (uint32_t)ngone;
    log_info("mailbox_repacked", "mbox=%s records=%u removed=%zu retained=%u generation=%llu",
             log_quote(mb->name), (unsigned)kept, ngone, (unsigned)retained,
             (unsigned long long)nh.generation);
done:
    mbi_unlock(mb, took);
    buf_fini(&out);
    free(gone);
    return r;
}

int mailbox_expunged_due(struct mailbox *mb, int64_t cutoff, uint32_t *due_r, uint32_t *kept_r)
{
    *due_r = *kept_r = 0;
    int took = mbi_lock(mb, LOCK_SH);
    if (took < 0) return took;
    int r = 0;
    for (uint32_t i = 0; i < mb->hdr.record_count; i++) {
        struct index_record rec;
        if ((r = mbi_read_record(mb, i, &rec)) < 0) break;
        if (repack_drops(&rec, cutoff)) (*due_r)++;
        else if (rec.flags & FLAG_EXPUNGED) (*kept_r)++;
    }
    mbi_unlock(mb, took);
    return r;
}

int mailbox_repack(struct mailbox *mb)
{
    return repack(mb, INT64_MAX, 1, NULL);
}

int mailbox_repack_expired(struct mailbox *mb, int64_t cutoff, uint32_t *removed_r)
{
    return repack(mb, cutoff, 0, removed_r);
}

/* ---- unexpunge ---- */

/* A message's identity for "already there": content and internal date. */
struct msg_key {
    uint8_t guid[20];
    int64_t internaldate;
    uint32_t uid;
};

static int key_cmp(const void *a, const void *b)
{
    const struct msg_key *x = a, *y = b;
    int c = memcmp(x->guid, y->guid, sizeof x->guid);
    if (c) return c;
    if (x->internaldate != y->internaldate) return x->internaldate < y->internaldate ? -1 : 1;
    /* newest first among equals: the latest expunged copy is the one kept */
    return x->uid > y->uid ? -1 : x->uid < y->uid;
}

/* retained_locked: under a lock, the retained expunged records (uids NULL: all; else those
 * among uids) that unexpunge would bring back: not when a live record has the same GUID and
 * internal date (brought back before, by a run cut short), and of several alike only the one
 * with the highest uid. *recs_r in uid order (caller frees). 0 or CF_E_CORRUPT. */
static int retained_locked(struct mailbox *mb, const uint32_t *uids, size_t n,
                           struct index_record **recs_r, size_t *n_r)
{
    struct msg_key *live = NULL, *cand = NULL;
    size_t nlive = 0, ncand = 0;
    struct index_record *out = NULL;
    size_t nout = 0;
    int r = 0;
    uint32_t count = mb->hdr.record_count;
    live = xreallocarray(NULL, count ? count : 1, sizeof *live);
    cand = xreallocarray(NULL, count ? count : 1, sizeof *cand);
    for (uint32_t i = 0; i < count; i++) {
        struct index_record rec;
        if ((r = mbi_read_record(mb, i, &rec)) < 0) goto out;
        struct msg_key k;
        memcpy(k.guid, rec.guid, sizeof k.guid);
        k.internaldate = rec.internaldate;
        k.uid = rec.uid;
        if (!(rec.flags & FLAG_EXPUNGED)) live[nlive++] = k;
        else if (rec.expunged_at) {
            if (uids) {
                size_t j = 0;
                while (j < n && uids[j] != rec.uid) j++;
                if (j == n) continue;
            }
            cand[ncand++] = k;
        }
    }
    qsort(live, nlive, sizeof *live, key_cmp);
    qsort(cand, ncand, sizeof *cand, key_cmp);
    out = xreallocarray(NULL, ncand ? ncand : 1, sizeof *out);
    for (size_t i = 0; i < ncand; i++) {
        if (i > 0 && !memcmp(cand[i].guid, cand[i - 1].guid, sizeof cand[i].guid) &&
            cand[i].internaldate == cand[i - 1].internaldate)
            continue;   /* an older copy of the same message */
        int present = 0;
        size_t lo = 0, hi = nlive;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int c = memcmp(live[mid].guid, cand[i].guid, sizeof cand[i].guid);
            if (!c) c = live[mid].internaldate < cand[i].internaldate ? -1 :
                        live[mid].internaldate > cand[i].internaldate;
            if (!c) { present = 1; break; }
            if (c < 0) lo = mid + 1;
            else hi = mid;
        }
        if (present) continue;
        long pos = mbi_find_pos(mb, cand[i].uid);
        if (pos < 0 || (r = mbi_read_record(mb, (uint32_t)pos, &out[nout])) < 0) {
            if (!r) r = mbi_corrupt(mb, "index_record", cand[i].uid);
            goto out;
        }
        nout++;
    }
    /* back to uid order */
    for (size_t i = 1; i < nout; i++)
        for (size_t j = i; j > 0 && out[j - 1].uid > out[j].uid; j--) {
            struct index_record t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
out:
    free(live);
    free(cand);
    if (r < 0) {
        free(out);
        out = NULL;
        nout = 0;
    }
    *recs_r = out;
    *n_r = nout;
    return r;
}

int mailbox_retained(struct mailbox *mb, const uint32_t *uids, size_t n,
                     struct index_record **recs_r, size_t *n_r)
{
    *recs_r = NULL;
    *n_r = 0;
    int took = mbi_lock(mb, LOCK_SH);
    if (took < 0) return took;
    int r = retained_locked(mb, uids, n, recs_r, n_r);
    mbi_unlock(mb, took);
    return r;
}

/* forget_originals: after their copies committed, mark the originals (uids) as expunged with
 * no file (expunged_at 0) in one commit, then unlink their files. A crash before the commit
 * leaves them retained, and retained_locked skips them as present. */
static int forget_originals(struct mailbox *mb, const uint32_t *uids, size_t n)
{
    struct rewrite rw;
    uint32_t *gone = NULL;
    size_t ngone = 0, agone = 0;
    int r = 0;
    int took = mbi_lock(mb, LOCK_EX);
    if (took < 0) return took;
    rewrite_init(&rw);
    struct index_header nh = mb->hdr;
    nh.prev_count = nh.record_count;
    for (size_t i = 0; i < n; i++) {
        long pos = mbi_find_pos(mb, uids[i]);
        if (pos < 0) continue;
        struct index_record rec;
        if ((r = rewrite_read(mb, &rw, (uint32_t)pos, &rec)) < 0) goto done;
        if (!(rec.flags & FLAG_EXPUNGED) || !rec.expunged_at) continue;
        rec.expunged_at = 0;
        if ((r = rewrite_record(mb, &rw, (uint32_t)pos, &rec)) < 0) goto done;
        mbi_push_u32(&gone, &ngone, &agone, rec.uid);
    }
    if (!ngone) goto done;
    if ((r = rewrite_flush(mb, &rw)) < 0) goto done;
    if ((r = mbi_write_header(mb, &nh)) < 0) goto done;
    mbi_unlink_messages(mb, gone, ngone);
done:
    if (r < 0) undo_records(mb, &rw);
    rewrite_fini(&rw);
    mbi_unlock(mb, took);
    free(gone);
    return r;
}

int mailbox_unexpunge(struct mailbox *mb, const struct index_record *recs, size_t n,
                      const struct mailbox_quota *q, uint32_t *new_uids_r)
{
    struct mailbox_msg *msgs = xreallocarray(NULL, n ? n : 1, sizeof *msgs);
    const char **kwv = xreallocarray(NULL, n * (INDEX_MAX_KEYWORDS + 1) + 1, sizeof *kwv);
    uint32_t *orig = xreallocarray(NULL, n ? n : 1, sizeof *orig);
    struct strarr kw = STRARR_INIT;
    size_t nm = 0;
    int r = 0;
    if (new_uids_r)
        for (size_t i = 0; i < n; i++) new_uids_r[i] = 0;
    const struct strarr *names = mailbox_keywords(mb);
    for (size_t k = 0; k < names->count; k++) strarr_add(&kw, names->v[k]);
    for (size_t i = 0; i < n; i++) {
        struct index_record cur;
        int f = mailbox_record(mb, recs[i].uid, &cur);
        if (f < 0) { r = f; goto out; }
        /* gone meanwhile (repacked, or restored by another run) */
        if (!f || !(cur.flags & FLAG_EXPUNGED) || !cur.expunged_at) continue;
        struct mailbox_msg *m = &msgs[nm];
        memset(m, 0, sizeof *m);
        int fd;
        if ((f = mailbox_message_open(mb, cur.uid, &fd, NULL)) < 0) {
            if (f == CF_E_NOTFOUND) continue;
            r = f;
            goto out;
        }
        m->fd = fd;
        m->internaldate = cur.internaldate;
        m->flags = cur.flags & FLAG_SYSTEM_MASK & ~FLAG_DELETED;
        const char **kl = kwv + nm * (INDEX_MAX_KEYWORDS + 1);
        size_t nk = 0;
        for (unsigned k = 0; k < INDEX_MAX_KEYWORDS && k < kw.count; k++)
            if (index_user_flag_get(&cur, k)) kl[nk++] = kw.v[k];
        kl[nk] = NULL;
        m->keywords = kl;
        orig[nm++] = cur.uid;
    }
    if (!nm) goto out;
    if ((r = mailbox_append(mb, msgs, nm, q)) < 0) goto out;
    if (new_uids_r)
        for (size_t i = 0, j = 0; i < n && j < nm; i++)
            if (recs[i].uid == orig[j]) new_uids_r[i] = msgs[j++].uid;
    /* the copies are committed: only now may the originals go */
    r = forget_originals(mb, orig, nm);
    if (r == 0) r = (int)nm;
out:
    for (size_t i = 0; i < nm; i++) close(msgs[i].fd);
    strarr_fini(&kw);
    free(msgs);
    free(kwv);
    free(orig);
    return r;
}
