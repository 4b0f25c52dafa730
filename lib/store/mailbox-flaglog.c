/* mailbox-flaglog.c: the flag change log of a mailbox (flaglog.h, coffer-store(5)): a STORE
 * commit made durable by one small entry in it instead of a flush of the index, and the replay
 * of its entries onto the records after a power loss. */
#include "store/mailbox-int.h"
#include "store/flaglog.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *log_path(const struct mailbox *mb)
{
    return xasprintf("%s/%s", mb->dir, FLAGLOG_FILE);
}

/* The log as a commit found it, under the write lock (every writer of the log holds it). */
struct flaglog_w {
    int fd;
    uint64_t epoch;
    uint64_t end;       /* where the next entry goes: the file's size */
};

/* start_over: empty the log but for a header of a new epoch (entries of the old one that
 * survive past the new ones never pass as theirs). No fsync: what it drops is in the flushed
 * index, and the first entry's flush carries the header with it. 0 or -1. */
static int start_over(struct flaglog_w *w, uint64_t epoch)
{
    unsigned char head[FLAGLOG_HEADER_SIZE];
    flaglog_header_encode(epoch, head);
    if (ftruncate(w->fd, 0) < 0 || mbi_pwrite_all(w->fd, head, sizeof head, 0) < 0) return -1;
    w->epoch = epoch;
    w->end = FLAGLOG_HEADER_SIZE;
    return 0;
}

/* prepare: open the log for a commit whose entry has elen bytes. 0 with w ready; 1 when the
 * entry does not fit (the commit flushes the index instead, then calls reset); -1 when the
 * log cannot be used (the commit flushes the index). */
static int prepare(struct mailbox *mb, size_t elen, struct flaglog_w *w)
{
    char *path = log_path(mb);
    w->fd = open(path, O_RDWR | O_CLOEXEC);
    if (w->fd < 0 && errno == ENOENT) {
        /* a new log: its name must be on the disk before an entry in it counts (the log's
         * fdatasync does not write the directory); once per mailbox */
        w->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (w->fd >= 0 && mbi_sync_dir(mb) < 0) {
            free(path);
            return -1;
        }
    }
    free(path);
    if (w->fd < 0) return -1;
    struct stat st;
    unsigned char head[FLAGLOG_HEADER_SIZE];
    if (fstat(w->fd, &st) < 0) return -1;
    if (st.st_size < FLAGLOG_HEADER_SIZE ||
        pread(w->fd, head, sizeof head, 0) != (ssize_t)sizeof head ||
        flaglog_header_decode(head, &w->epoch) < 0) {
        /* new, or never written whole: nothing in it counts */
        if (start_over(w, 1) < 0) return -1;
    } else {
        w->end = (uint64_t)st.st_size;
    }
    if (w->end + elen > flaglog_max) return 1;
    return 0;
}

/* flush_entry: the flush step of a commit through the log (mbi_write_header_with): append the
 * entry of commit nh and flush the log. On failure the log is cut back to where it ended, so
 * that a refused change is never replayed. 0 or -1 (errno set). */
struct flush_ctx {
    struct flaglog_w *w;
    struct flaglog_entry *e;
};

static int flush_entry(struct mailbox *mb, const struct index_header *nh, void *arg)
{
    struct flush_ctx *fc = arg;
    struct flaglog_w *w = fc->w;
    struct flaglog_entry *e = fc->e;
    e->epoch = w->epoch;
    e->generation = nh->generation;
    e->commit = nh->commit;
    e->record_count = nh->record_count;
    size_t len = flaglog_entry_size(e->nranges);
    unsigned char *raw = xmalloc(len);
    flaglog_entry_encode(e, raw);
    int r = mbi_pwrite_all(w->fd, raw, len, w->end);
    free(raw);
    int fe = mbi_fault_point("flaglog");
    if (fe) {
        errno = fe;
        r = -1;
    }
    if (r == 0 && !mb->nofsync) {
        mailbox_sync_stats.flaglog++;
        if ((fe = mbi_fault_point("flaglog_sync")) != 0) {
            errno = fe;
            r = -1;
        } else {
            r = fdatasync(w->fd);
        }
    }
    if (r < 0) {
        int e2 = errno;
        if (ftruncate(w->fd, (off_t)w->end) < 0) { /* the restore's index flush still holds */ }
        errno = e2;
        return -1;
    }
    w->end += len;
    return 0;
}

int mbi_commit_flaglog(struct mailbox *mb, struct index_header *nh, struct flaglog_entry *e)
{
    if (mb->nofsync || mb->index_rdonly) return mbi_write_header(mb, nh);
    struct flaglog_w w = { -1, 0, 0 };
    int p = prepare(mb, flaglog_entry_size(e->nranges), &w);
    int r;
    if (p != 0) {
        r = mbi_write_header(mb, nh);
        /* the index is flushed: every entry is in it, the log starts over */
        if (r == 0 && p == 1 && start_over(&w, w.epoch + 1) < 0)
            log_warn("mailbox_flaglog_reset_failed", "mbox=%s errno=%s", log_quote(mb->name),
                     strerror(errno));
        if (p < 0 && w.fd < 0 && r == 0)
            log_warn("mailbox_flaglog_unusable", "mbox=%s errno=%s action=%s",
                     log_quote(mb->name), strerror(errno), "index flushed instead");
    } else {
        struct flush_ctx fc = { &w, e };
        r = mbi_write_header_with(mb, nh, flush_entry, &fc, "flaglog");
    }
    if (w.fd >= 0) close(w.fd);
    return r;
}

/* first_pos: position of the first record with uid >= uid. */
static uint32_t first_pos(const struct mailbox *mb, uint32_t uid)
{
    uint32_t lo = 0, hi = mb->hdr.record_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (index_record_uid(mb->map + index_record_offset(mid)) < uid) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* extend: the records [hdr.record_count, n) were flushed by a commit the log names (its
 * entry's record count), but the header chosen is older: a power loss tore the slot of a
 * later commit written without a flush, and the other slot held an older one. Take them when
 * they are whole and in uid order; the recount that follows fixes the counters. */
static void extend(struct mailbox *mb, uint32_t n)
{
    if (n <= mb->hdr.record_count || mb->map_len < index_record_offset(n)) return;
    uint32_t prev = mb->hdr.record_count ?
        index_record_uid(mb->map + index_record_offset(mb->hdr.record_count - 1)) : 0;
    uint32_t maxuid = prev;
    for (uint32_t i = mb->hdr.record_count; i < n; i++) {
        struct index_record r;
        if (index_record_decode(mb->map + index_record_offset(i), &r) < 0 || r.uid <= maxuid)
            return;
        maxuid = r.uid;
    }
    log_warn("mailbox_flaglog_records", "mbox=%s uniqueid=%s records=%u->%u",
             log_quote(mb->name), mb->uniqueid, (unsigned)mb->hdr.record_count, (unsigned)n);
    mb->hdr.record_count = n;
    if (maxuid >= mb->hdr.uidnext) mb->hdr.uidnext = maxuid + 1;
}

int mbi_flaglog_replay(struct mailbox *mb)
{
    if (mb->index_rdonly) return 0;
    char *path = log_path(mb);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0) return 0;   /* none: nothing was stored through it */
    struct stat st;
    unsigned char *buf = NULL;
    int changed = 0;
    uint64_t epoch;
    if (fstat(fd, &st) < 0 || st.st_size < FLAGLOG_HEADER_SIZE ||
        st.st_size > (off_t)FLAGLOG_READ_MAX)
        goto out;
    size_t len = (size_t)st.st_size;
    buf = xmalloc(len);
    if (pread(fd, buf, len, 0) != (ssize_t)len || flaglog_header_decode(buf, &epoch) < 0)
        goto out;
    size_t off = FLAGLOG_HEADER_SIZE;
    struct flaglog_entry e;
    uint32_t entries = 0;
    while (flaglog_entry_next(buf, len, &off, epoch, &e)) {
        if (e.generation != mb->hdr.generation) continue;   /* of an index since repacked */
        entries++;
        extend(mb, e.record_count);
        for (uint32_t k = 0; k < e.nranges; k++) {
            uint32_t lo = le_get32(e.ranges + 8 * k), hi = le_get32(e.ranges + 8 * k + 4);
            for (uint32_t pos = first_pos(mb, lo); pos < mb->hdr.record_count; pos++) {
                const unsigned char *raw = mb->map + index_record_offset(pos);
                if (index_record_uid(raw) > hi) break;
                struct index_record rec;
                if (index_record_decode(raw, &rec) < 0 || !flaglog_apply(&e, &rec)) continue;
                unsigned char out[INDEX_RECORD_SIZE];
                index_record_encode(&rec, out);
                if (mbi_pwrite_all(mb->index_fd, out, sizeof out, index_record_offset(pos)) < 0) {
                    mbi_io_error(mb, "pwrite", mb->index_path);
                    goto out;
                }
                changed++;
            }
        }
    }
    if (changed) mbi_own_forget(mb);   /* records changed outside any commit of ours */
    if (changed)
        log_warn("mailbox_flaglog_replayed", "mbox=%s uniqueid=%s entries=%u records=%d",
                   log_quote(mb->name), mb->uniqueid, (unsigned)entries, changed);
out:
    free(buf);
    close(fd);
    return changed;
}
