/* mailbox-append.c: adding messages: UID claims, staging, the group commit, append and copy. */
#include "store/mailbox-int.h"
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

/* ---- append ---- */

/* Group commit of the directory fsync, and message files written outside the mailbox lock.
 *
 * An append first stages its message files, without the mailbox lock: it claims a uid by
 * taking an OFD write lock on byte LOCK_UID_BASE + uid of the lock file (never blocking: a
 * claimed uid is skipped), creates "<uid>." with O_EXCL (an existing file is skipped too),
 * writes and fsyncs it. The byte lock stays until the commit is done or undone, and the
 * kernel drops it when the process dies: a message file at or above the committed uidnext
 * whose byte is not locked belongs to no append in progress (it was killed before its commit,
 * never acknowledged) and is garbage.
 *
 * The new names must be durable before the header that points to them, but one directory
 * fsync covers every name created before it started. The first 8 bytes of the lock file,
 * mapped shared, hold a ticket word: issued (high 32 bits) and done (low 32 bits). A writer
 * reads `issued` as its mark right after creating its last file; to fsync the directory it
 * takes ticket = ++issued first and, once the fsync returned, raises done to its ticket. A
 * ticket above the mark was taken after the mark was read, so that fsync started after the
 * file was created: when done > mark the writer's names are already durable and it skips its
 * own fsync. Both halves live in one aligned word, so no crash can make done pass issued.
 * The check is made under the write lock just before the header is written: while a writer
 * waited for the lock, the one ahead of it fsynced the directory after the waiting writer's
 * files were made, so concurrent deliveries to one mailbox mostly skip theirs. The index
 * fdatasync is not shared: a header must not be seen by other sessions before it is durable
 * (nor put back after they saw it), so it is written and flushed under the lock, one commit
 * at a time.
 *
 * Then, under the write lock, the commit: files below its first uid and at or above uidnext
 * are waited for (byte locked: another append in progress, which started first) or removed
 * (garbage); staged uids that fell below uidnext meanwhile (another append committed higher
 * uids first) are moved up by link + unlink (a new name: a new mark); then the records, the
 * directory sync and the header. Waiting only for lower uids, while holding no mailbox
 * lock, cannot deadlock: the append waited for only ever waits for uids lower still. */
#define LOCK_UID_BASE 4096

/* sync_word: the shared ticket word (mapped on first use), or NULL (then every writer
 * fsyncs the directory itself). */
static uint64_t *sync_word(struct mailbox *mb)
{
    if (mb->sync_map || mb->sync_map_failed) return mb->sync_map;
    struct stat st;
    mb->sync_map_failed = 1;
    if (fstat(mb->lock_fd, &st) < 0) return NULL;
    if (st.st_size < (off_t)sizeof(uint64_t) && ftruncate(mb->lock_fd, sizeof(uint64_t)) < 0)
        return NULL;
    void *p = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, mb->lock_fd, 0);
    if (p == MAP_FAILED) return NULL;
    mb->sync_map = p;
    mb->sync_map_failed = 0;
    return mb->sync_map;
}

/* dirsync_mark: the mark to take right after creating (or linking) a message file. */
static uint32_t dirsync_mark(struct mailbox *mb)
{
    uint64_t *w = sync_word(mb);
    return w ? (uint32_t)(__atomic_load_n(w, __ATOMIC_SEQ_CST) >> 32) : 0;
}

/* dirsync: make the names created before mark was taken durable: skip when a directory
 * fsync that started after it has completed, else fsync the directory. 0 or CF_E_IO. */
static int dirsync(struct mailbox *mb, uint32_t mark)
{
    if (mb->nofsync) return 0;
    uint64_t *w = sync_word(mb);
    uint32_t ticket = 0;
    if (w) {
        uint64_t v = __atomic_load_n(w, __ATOMIC_SEQ_CST), nv;
        if ((int32_t)((uint32_t)v - mark) > 0) {
            mailbox_sync_stats.dir_shared++;
            return 0;
        }
        do {
            nv = v + (UINT64_C(1) << 32);
        } while (!__atomic_compare_exchange_n(w, &v, nv, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
        ticket = (uint32_t)(nv >> 32);
    }
    int r = mbi_sync_dir(mb);
    if (r == 0 && w) {
        uint64_t v = __atomic_load_n(w, __ATOMIC_SEQ_CST), nv;
        do {
            if ((int32_t)((uint32_t)v - ticket) >= 0) break;
            nv = (v & ~UINT64_C(0xffffffff)) | ticket;
        } while (!__atomic_compare_exchange_n(w, &v, nv, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
    }
    return r;
}

/* uid_flock: the lock file's byte that stands for a claim on uid */
static struct flock uid_flock(uint32_t uid, short type)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = (off_t)LOCK_UID_BASE + (off_t)uid;
    fl.l_len = 1;
    return fl;
}

/* uid_lock: take (F_WRLCK) or drop (F_UNLCK) the claim on uid; wait or not. 0 or -1 (errno:
 * EAGAIN/EACCES when another open file holds it). */
static int uid_lock(int lock_fd, uint32_t uid, short type, int wait)
{
    struct flock fl = uid_flock(uid, type);
    int r;
    while ((r = fcntl(lock_fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl)) < 0 && errno == EINTR) {}
    return r;
}

int mailbox_uid_staged(int lock_fd, uint32_t uid)
{
    struct flock fl = uid_flock(uid, F_WRLCK);
    if (fcntl(lock_fd, F_OFD_GETLK, &fl) < 0) return 1;   /* unknown: treat as in progress */
    return fl.l_type != F_UNLCK;
}

/* claim_uid: the first uid >= *next that no append claims and no file uses: claimed (byte
 * lock) and, when create, its file created (O_EXCL, *fd_r) or, when link_src, linked to
 * link_src. *next moves past it. 0, 1 when link_src is gone (nothing claimed), CF_E_LIMIT,
 * CF_E_IO; -EXDEV style failures of link come back as CF_E_PERM (copy the file instead). */
static int claim_uid(struct mailbox *mb, uint32_t *next, const char *link_src, int *fd_r,
                     uint32_t *uid_r)
{
    for (;; (*next)++) {
        if (*next >= UINT32_MAX - 1) {
            log_err("mailbox_uid_exhausted", "mbox=%s", log_quote(mb->name));
            return CF_E_LIMIT;
        }
        uint32_t uid = *next;
        if (uid_lock(mb->lock_fd, uid, F_WRLCK, 0) < 0) {
            if (errno == EAGAIN || errno == EACCES) continue;
            return mbi_io_error(mb, "fcntl", mb->dir);
        }
        char *path = mailbox_message_path(mb, uid);
        int ok, e;
        if (link_src) {
            ok = link(link_src, path) == 0;
        } else {
            *fd_r = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            ok = *fd_r >= 0;
        }
        e = errno;
        free(path);
        if (ok) {
            *uid_r = uid;
            (*next)++;
            return 0;
        }
        uid_lock(mb->lock_fd, uid, F_UNLCK, 0);
        if (e == EEXIST) continue;   /* committed, staged and done, or garbage: not ours */
        errno = e;
        if (link_src && e == ENOENT) return 1;
        if (link_src && (e == EXDEV || e == EMLINK || e == EPERM)) return CF_E_PERM;
        return mbi_io_error(mb, link_src ? "link" : "open", link_src ? link_src : mb->dir);
    }
}

/* write_message_file: write and fsync the new file fd of uid; closes fd. 0 or CF_E_IO. */
static int write_message_file(struct mailbox *mb, int fd, uint32_t uid, const char *p,
                              size_t len)
{
    int r = 0;
    if (write_all(fd, p, len) < 0 || mbi_do_fsync(mb, fd, 0) < 0) {
        char *path = mailbox_message_path(mb, uid);
        r = mbi_io_error(mb, "write", path);
        free(path);
    }
    if (close(fd) < 0 && r == 0) r = mbi_io_error(mb, "close", mb->dir);
    return r;
}

void mbi_unlink_messages(struct mailbox *mb, const uint32_t *uids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *path = mailbox_message_path(mb, uids[i]);
        if (uids[i] && unlink(path) < 0 && errno != ENOENT) mbi_io_error(mb, "unlink", path);
        free(path);
    }
}

/* set_keywords: the user-flag bits of names into rec (creating keywords in nh). */
static int set_keywords(struct mailbox *mb, struct index_header *nh, const char *const *names,
                        struct index_record *rec)
{
    for (size_t i = 0; names && names[i]; i++) {
        int k = mbi_keyword_get(mb, nh, names[i], 1);
        if (k < 0) return k;
        index_user_flag_set(rec, (unsigned)k, 1);
    }
    return 0;
}

/* One message being added by append or copy. */
struct pending {
    const char *data;       /* bytes to write, or NULL when linking src_path */
    size_t len;
    const char *src_path;   /* copy: the source message file */
    struct index_record rec;
    struct cache_entry ce;
    int have_cache;
    uint32_t uid;           /* staged under this uid (byte locked), 0 when not staged */
};

/* stage_messages: without the mailbox lock, claim a uid for each message and write its file
 * (or link it, for a copy; a copy whose source is gone gets uid 0). *mark_r gets the
 * directory-sync mark taken after the last name was made. 0, CF_E_LIMIT, CF_E_IO, or <0
 * from the lock; the caller removes the files and drops the claims (unstage). */
static int stage_messages(struct mailbox *mb, struct pending *pm, size_t n, uint32_t *mark_r)
{
    int took = mbi_lock(mb, LOCK_SH);   /* where to start looking: the current uidnext */
    if (took < 0) return took;
    uint32_t next = mb->hdr.uidnext, mark = 0;
    mbi_unlock(mb, took);
    int r = 0;
    for (size_t i = 0; i < n; i++) {
        struct pending *m = &pm[i];
        int fd = -1;
        m->uid = 0;
        if (m->src_path) {
            r = claim_uid(mb, &next, m->src_path, NULL, &m->uid);
            if (r == 1) {           /* expunged since we looked */
                r = 0;
                continue;
            }
            if (r == CF_E_PERM) {   /* another file system: a real copy */
                char *text = NULL;
                size_t tlen = 0;
                r = file_read_all(m->src_path, (size_t)-1 / 2, &text, &tlen);
                if (r == CF_E_NOTFOUND) {
                    r = 0;
                    continue;
                }
                if (r == 0) r = claim_uid(mb, &next, NULL, &fd, &m->uid);
                if (r == 0) {
                    mark = dirsync_mark(mb);
                    r = write_message_file(mb, fd, m->uid, text, tlen);
                }
                free(text);
            } else if (r == 0) {
                mark = dirsync_mark(mb);
            }
        } else {
            r = claim_uid(mb, &next, NULL, &fd, &m->uid);
            if (r == 0) {
                mark = dirsync_mark(mb);
                r = write_message_file(mb, fd, m->uid, m->data, m->len);
            }
        }
        if (r < 0) break;
    }
    *mark_r = mark;
    return r;
}

/* unstage: drop the claims of pm (after the commit, or removing the files first). */
static void unstage(struct mailbox *mb, struct pending *pm, size_t n, int remove_files)
{
    for (size_t i = 0; i < n; i++) {
        if (!pm[i].uid) continue;
        if (remove_files) mbi_unlink_messages(mb, &pm[i].uid, 1);
        uid_lock(mb->lock_fd, pm[i].uid, F_UNLCK, 0);
        pm[i].uid = 0;
    }
}

/* clear_below: under the write lock, the uids in [uidnext, first): another append's claim
 * (its file may be half written or not created yet) makes us wait for it (*wait_r set, 1 returned: unlock, wait on its claim, retry);
 * others are garbage of a killed append and removed, after an index flush (so that the
 * header they are judged by is the one on disk: see write_header). 0, 1 or CF_E_IO. */
static int clear_below(struct mailbox *mb, uint32_t first, uint32_t *wait_r)
{
    int flushed = 0;
    unsigned removed = 0;
    for (uint32_t u = mb->hdr.uidnext; u < first; u++) {
        /* the claim first: its file may not be created yet */
        if (mailbox_uid_staged(mb->lock_fd, u)) {
            *wait_r = u;
            return 1;
        }
        char *path = mailbox_message_path(mb, u);
        struct stat st;
        int there = lstat(path, &st) == 0;
        int r = 0;
        if (there) {
            if (!flushed && mbi_index_sync(mb, "index_sync") < 0)
                r = mbi_io_error(mb, "fdatasync", mb->index_path);
            flushed = 1;
            if (r == 0 && unlink(path) == 0) removed++;
        }
        free(path);
        if (r) return r;
    }
    /* no directory fsync: a removal lost in a crash leaves garbage to remove again */
    if (removed)
        log_notice("mailbox_uncommitted_removed", "mbox=%s uniqueid=%s uidnext=%u files=%u",
                   log_quote(mb->name), mb->uniqueid, (unsigned)mb->hdr.uidnext, removed);
    return 0;
}

/* rehome: under the write lock, move staged files whose uid is not above the last uid that
 * counts (another append committed higher uids first) to fresh uids, in order; *mark is
 * renewed after each new name. 0 or <0. */
static int rehome(struct mailbox *mb, struct pending *pm, size_t n, uint32_t *mark)
{
    uint32_t prev = mb->hdr.uidnext - 1, next = mb->hdr.uidnext;
    for (size_t i = 0; i < n; i++) {
        if (!pm[i].uid) continue;
        if (pm[i].uid > prev) {
            prev = pm[i].uid;
            continue;
        }
        char *old = mailbox_message_path(mb, pm[i].uid);
        uint32_t uid = 0;
        if (next <= prev) next = prev + 1;
        int r = claim_uid(mb, &next, old, NULL, &uid);
        if (r == 0) {
            *mark = dirsync_mark(mb);
            if (unlink(old) < 0) mbi_io_error(mb, "unlink", old);
            uid_lock(mb->lock_fd, pm[i].uid, F_UNLCK, 0);
            pm[i].uid = prev = uid;
        }
        free(old);
        if (r != 0) return r < 0 ? r : CF_E_IO;
    }
    return 0;
}

/* commit_messages: the common tail of append and copy, under the write lock, after
 * stage_messages: quota check, garbage and order (clear_below, rehome), cache records, index
 * records, commit. Sets uids_r[i] (0 for a copy whose source vanished). kw[i] lists keyword
 * names of message i. Returns 1 with *wait_r set when an earlier append must finish first. */
static int commit_messages(struct mailbox *mb, struct pending *pm, size_t n,
                           const char *const *const *kw, const struct mailbox_quota *q,
                           uint32_t mark, uint32_t *uids_r, uint32_t *wait_r)
{
    struct index_header nh = mb->hdr;
    struct buf cbuf = BUF_INIT, rbuf = BUF_INIT;
    uint64_t cend = 0, bytes = 0;
    uint32_t first = 0, added = 0;
    int r;
    nh.prev_count = nh.record_count;
    uint64_t modseq = nh.highestmodseq + 1;
    for (size_t i = 0; i < n; i++) {
        uids_r[i] = 0;
        if (!pm[i].uid) continue;
        bytes += pm[i].rec.size;
        added++;
        if (!first) first = pm[i].uid;
    }
    if (!added) return 0;
    if ((r = clear_below(mb, first, wait_r)) != 0) goto done;
    if (q && q->check && (r = q->check(q->rock, mb->uniqueid, bytes, added)) < 0) goto done;
    if ((r = rehome(mb, pm, n, &mark)) < 0) goto done;
    if ((r = mbi_cache_end(mb, &cend)) < 0) goto done;
    /* RFC 8514: the save date is when the message entered this mailbox, whatever the internal
     * date (an APPEND's, or a copy's kept one) says */
    int64_t saved = (int64_t)time(NULL);
    for (size_t i = 0; i < n; i++) {
        struct pending *m = &pm[i];
        if (!m->uid) continue;
        uint32_t uid = m->uid;
        nh.uidnext = uid + 1;
        m->rec.uid = uid;
        m->rec.modseq = modseq;
        m->rec.savedate = saved;
        m->rec.flags &= FLAG_SYSTEM_MASK;
        if ((r = set_keywords(mb, &nh, kw ? kw[i] : NULL, &m->rec)) < 0) goto done;
        m->rec.cache_offset = 0;
        if (m->have_cache) {
            m->ce.uid = uid;
            m->rec.cache_offset = cend + cbuf.len;
            cache_record_encode(&m->ce, &cbuf);
        }
        unsigned char raw[INDEX_RECORD_SIZE];
        index_record_encode(&m->rec, raw);
        buf_append(&rbuf, raw, sizeof raw);
        mbi_count_record(&nh, &m->rec, 1);
        nh.record_count++;
    }
    /* The cache is not fsynced: a record lost in a crash fails its check and is rebuilt. */
    if (cbuf.len && mbi_pwrite_all(mb->cache_fd, cbuf.s, cbuf.len, cend) < 0) {
        r = mbi_io_error(mb, "pwrite", "cache");
        goto done;
    }
    /* in pages: a batch's records are then changed in place one at a time (write_all_paged) */
    if (pwrite_all_paged(mb->index_fd, rbuf.s, rbuf.len,
                         (off_t)index_record_offset(nh.prev_count)) < 0) {
        r = mbi_io_error(mb, "pwrite", mb->index_path);
        goto done;
    }
    /* Every new name durable before the header that points to it. Checked this late on
     * purpose: while we waited for the lock, the writer ahead of us fsynced the directory
     * after our files were made, so under load this is mostly skipped. */
    if ((r = dirsync(mb, mark)) < 0) goto done;
    nh.highestmodseq = modseq;
    mb->col_track = 1;   /* the uid column gets the added records' blocks */
    r = mbi_write_header(mb, &nh);
    if (r == 0)
        for (size_t i = 0; i < n; i++) uids_r[i] = pm[i].uid;
done:
    buf_fini(&cbuf);
    buf_fini(&rbuf);
    return r;
}

/* add_messages: stage, then commit under the write lock (waiting for earlier appends when
 * commit_messages asks), then drop the claims; on failure the files go too, unless the
 * commit's outcome on disk is uncertain (write_header). */
static int add_messages(struct mailbox *mb, struct pending *pm, size_t n,
                        const char *const *const *kw, const struct mailbox_quota *q,
                        uint32_t *uids_r)
{
    mb->commit_uncertain = 0;
    for (size_t i = 0; i < n; i++) uids_r[i] = 0;
    uint32_t mark = 0;
    int r = stage_messages(mb, pm, n, &mark);
    while (r == 0) {
        int took = mbi_lock(mb, LOCK_EX);
        if (took < 0) {
            r = took;
            break;
        }
        uint32_t wait = 0;
        r = commit_messages(mb, pm, n, kw, q, mark, uids_r, &wait);
        mbi_unlock(mb, took);
        if (r != 1) break;
        if (took == 0) {   /* cannot let go of a lock we did not take: never happens */
            r = CF_E_INTERNAL;
            break;
        }
        uid_lock(mb->lock_fd, wait, F_WRLCK, 1);   /* until that append is done or dead */
        uid_lock(mb->lock_fd, wait, F_UNLCK, 0);
        r = 0;
    }
    unstage(mb, pm, n, r < 0 && !mb->commit_uncertain);
    return r;
}

int mailbox_append(struct mailbox *mb, struct mailbox_msg *msgs, size_t n,
                   const struct mailbox_quota *q)
{
    if (!n) return 0;
    struct pending *pm = xzmalloc(n * sizeof *pm);
    const char *const **kw = xzmalloc(n * sizeof *kw);
    uint32_t *uids = xzmalloc(n * sizeof *uids);
    int *mapped = xzmalloc(n * sizeof *mapped);
    int r = 0;
    time_t now = time(NULL);
    for (size_t i = 0; i < n; i++) cache_entry_init(&pm[i].ce);
    /* Everything that needs no lock first: reading, parsing and hashing the messages. */
    for (size_t i = 0; i < n; i++) {
        struct mailbox_msg *m = &msgs[i];
        struct pending *p = &pm[i];
        if (m->data) {
            p->data = m->data;
            p->len = m->len;
        } else {
            struct stat st;
            if (fstat(m->fd, &st) < 0) {
                r = mbi_io_error(mb, "fstat", "append-fd");
                goto done;
            }
            p->len = (size_t)st.st_size;
            p->data = "";
            if (p->len) {
                void *a = mmap(NULL, p->len, PROT_READ, MAP_SHARED, m->fd, 0);
                if (a == MAP_FAILED) {
                    r = mbi_io_error(mb, "mmap", "append-fd");
                    goto done;
                }
                p->data = a;
                mapped[i] = 1;
            }
        }
        mailbox_summarize(p->data, p->len, 0, &p->ce, &p->rec);
        p->have_cache = 1;
        p->rec.internaldate = m->internaldate ? m->internaldate : (int64_t)now;
        p->rec.flags = m->flags & FLAG_SYSTEM_MASK;
        kw[i] = m->keywords;
    }
    r = add_messages(mb, pm, n, kw, q, uids);
    for (size_t i = 0; i < n; i++) msgs[i].uid = uids[i];
    if (r == 0) {
        /* the key files registered by the process (mailbox-sort.h) get the new messages'
         * records now, while their headers are at hand */
        struct mailbox_sortkeys_new *nw = xreallocarray(NULL, n, sizeof *nw);
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (!uids[i] || (k && uids[i] <= nw[k - 1].uid)) continue;
            nw[k].uid = uids[i];
            nw[k].guid = pm[i].rec.guid;
            nw[k].hdr = pm[i].data;
            nw[k].hlen = pm[i].rec.header_size < pm[i].len ? pm[i].rec.header_size : pm[i].len;
            k++;
        }
        mbi_sortkeys_appended(mb, nw, k);
        free(nw);
    }
done:
    for (size_t i = 0; i < n; i++) {
        if (mapped[i]) munmap((void *)pm[i].data, pm[i].len);
        cache_entry_fini(&pm[i].ce);
    }
    free(pm);
    free(kw);
    free(uids);
    free(mapped);
    return r;
}

/* ---- copy ---- */

int mailbox_copy(struct mailbox *src, const uint32_t *uids, size_t n, struct mailbox *dst,
                 uint32_t *dst_uids_r, const struct mailbox_quota *q)
{
    return mailbox_copy_flags(src, uids, n, dst, dst_uids_r, q, MAILBOX_COPY_ALL_FLAGS, 1);
}

int mailbox_copy_flags(struct mailbox *src, const uint32_t *uids, size_t n, struct mailbox *dst,
                       uint32_t *dst_uids_r, const struct mailbox_quota *q, uint32_t keep_flags,
                       int keep_keywords)
{
    struct pending *pm = xzmalloc((n ? n : 1) * sizeof *pm);
    const char **kwnames = xzmalloc((n ? n : 1) * (INDEX_MAX_KEYWORDS + 1) * sizeof *kwnames);
    const char *const **kw = xzmalloc((n ? n : 1) * sizeof *kw);
    size_t *from = xzmalloc((n ? n : 1) * sizeof *from);
    uint32_t *newuids = xzmalloc((n ? n : 1) * sizeof *newuids);
    struct strarr srckw = STRARR_INIT;
    size_t np = 0;
    int r = 0;
    for (size_t i = 0; i < n; i++) {
        cache_entry_init(&pm[i].ce);
        if (dst_uids_r) dst_uids_r[i] = 0;
    }
    if (!n) goto done;
    /* 1. Under the source's shared lock: the records, keyword names and cache entries. */
    int took = mbi_lock(src, LOCK_SH);
    if (took < 0) {
        r = took;
        goto done;
    }
    const struct strarr *names = mailbox_keywords(src);
    for (size_t k = 0; k < names->count; k++) strarr_add(&srckw, names->v[k]);
    for (size_t i = 0; i < n; i++) {
        long pos = mbi_find_pos(src, uids[i]);
        if (pos < 0) continue;
        struct pending *p = &pm[np];
        if ((r = mbi_read_record(src, (uint32_t)pos, &p->rec)) < 0) break;
        if (p->rec.flags & FLAG_EXPUNGED) continue;
        p->rec.flags &= ~(MAILBOX_COPY_ALL_FLAGS & ~keep_flags);
        const char **kl = kwnames + np * (INDEX_MAX_KEYWORDS + 1);
        size_t nk = 0;
        for (unsigned k = 0; keep_keywords && k < INDEX_MAX_KEYWORDS && k < srckw.count; k++)
            if (index_user_flag_get(&p->rec, k)) kl[nk++] = srckw.v[k];
        kl[nk] = NULL;
        memset(p->rec.user_flags, 0, sizeof p->rec.user_flags);
        kw[np] = kl;
        p->src_path = mailbox_message_path(src, uids[i]);
        if (p->rec.cache_offset &&
            cache_read(src->cache_fd, p->rec.cache_offset, uids[i], &p->ce) == 0) {
            p->have_cache = 1;
        } else {
            const char *data;
            size_t len;
            if (mailbox_message_map(src, uids[i], &data, &len) == 0) {
                mailbox_summarize(data, len, uids[i], &p->ce, NULL);
                mailbox_message_unmap(data, len);
                p->have_cache = 1;
            }
        }
        /* a record from before index version 3 has no THREADID yet: the copy gets it from the
         * cached header when there is one (else it is computed when asked for) */
        if (!p->rec.threadid && p->have_cache && p->ce.present[CACHE_HEADER] &&
            p->ce.f[CACHE_HEADER].len)
            p->rec.threadid = mailbox_threadid(p->ce.f[CACHE_HEADER].s,
                                               p->ce.f[CACHE_HEADER].len, p->rec.guid);
        from[np++] = i;
    }
    mbi_unlock(src, took);
    if (r < 0 || !np) goto done;
    /* 2. Link (or copy) into the destination, then commit under its write lock. */
    r = add_messages(dst, pm, np, kw, q, newuids);
    if (r == 0 && dst_uids_r)
        for (size_t i = 0; i < np; i++) dst_uids_r[from[i]] = newuids[i];
done:
    for (size_t i = 0; i < n; i++) {
        cache_entry_fini(&pm[i].ce);
        free((char *)pm[i].src_path);
    }
    strarr_fini(&srckw);
    free(pm);
    free(kwnames);
    free(kw);
    free(from);
    free(newuids);
    return r;
}
