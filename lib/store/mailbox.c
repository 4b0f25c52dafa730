/* mailbox.c: one mailbox on disk: locking, the session view, append, copy, store, expunge,
 * repack, sync, message and cache reads, create/delete/rename of the directory. */
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

#define LOCK_FILE "lock"
#define INDEX_FILE "index"
#define CACHE_FILE "cache"

struct mailbox {
    char *partition, *uniqueid, *dir, *name, *index_path;
    int lock_fd;
    int locked;                 /* 0, LOCK_SH or LOCK_EX */
    int index_fd, cache_fd;
    int index_rdonly;           /* index_fd could only be opened read-only */
    int check_counts;           /* recount the records at the next refresh (set by open) */
    dev_t index_dev;
    ino_t index_ino;
    unsigned char *map;
    size_t map_len;
    struct index_header hdr;    /* as of the last refresh */
    int nofsync;
    int dir_fd;                 /* the mailbox directory, for its fsync (opened on first use) */
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
};

int (*mailbox_fault_hook)(const char *point);
struct mailbox_sync_stats mailbox_sync_stats;

/* fault_point: 0, or the errno a crash test wants the operation at point to fail with. */
static int fault_point(const char *point)
{
    return mailbox_fault_hook ? mailbox_fault_hook(point) : 0;
}

static int corrupt(struct mailbox *mb, const char *what, uint32_t uid)
{
    log_err("mailbox_corrupt", "mbox=%s uniqueid=%s what=%s uid=%u action=reconstruct",
            log_quote(mb->name), mb->uniqueid, what, (unsigned)uid);
    return CF_E_CORRUPT;
}

static int io_error(struct mailbox *mb, const char *call, const char *path)
{
    int e = errno;
    log_err("mailbox_io_error", "mbox=%s call=%s path=%s errno=%s", log_quote(mb->name), call,
            log_quote(path), strerror(e));
    errno = e;
    return CF_E_IO;
}

static int do_fsync(struct mailbox *mb, int fd, int data_only)
{
    if (mb->nofsync) return 0;
    if (data_only) mailbox_sync_stats.index++;
    else mailbox_sync_stats.file++;
    return data_only ? fdatasync(fd) : fsync(fd);
}

/* sync_dir: make the entries created (or linked) in the mailbox directory durable. A new
 * message file's contents are fsynced, but its name lives in the directory, and POSIX does not
 * order the directory's write before the index's: without this an acknowledged message could
 * come back after a power loss as a record without a file. 0 or CF_E_IO (logged). */
static int sync_dir(struct mailbox *mb)
{
    if (mb->nofsync) return 0;
    if (mb->dir_fd < 0) {
        mb->dir_fd = open(mb->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (mb->dir_fd < 0) return io_error(mb, "open", mb->dir);
    }
    mailbox_sync_stats.dir++;
    if (fsync(mb->dir_fd) < 0) return io_error(mb, "fsync", mb->dir);
    return 0;
}

/* ---- index file mapping and locking ---- */

static void unmap_index(struct mailbox *mb)
{
    if (mb->map) munmap(mb->map, mb->map_len);
    mb->map = NULL;
    mb->map_len = 0;
}

/* map_refresh: make the mapping cover the whole index file. */
static int map_refresh(struct mailbox *mb)
{
    struct stat st;
    if (fstat(mb->index_fd, &st) < 0) return io_error(mb, "fstat", mb->index_path);
    size_t len = (size_t)st.st_size;
    if (len == mb->map_len && mb->map) return 0;
    unmap_index(mb);
    if (len < INDEX_HEADER_SIZE) return corrupt(mb, "index_short", 0);
    void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, mb->index_fd, 0);
    if (p == MAP_FAILED) return io_error(mb, "mmap", mb->index_path);
    mb->map = p;
    mb->map_len = len;
    return 0;
}

static int open_index(struct mailbox *mb)
{
    if (mb->index_fd >= 0) close(mb->index_fd);
    unmap_index(mb);
    mb->index_fd = open(mb->index_path, O_RDWR | O_CLOEXEC);
    mb->index_rdonly = 0;
    if (mb->index_fd < 0 && errno == EACCES) {
        mb->index_fd = open(mb->index_path, O_RDONLY | O_CLOEXEC);
        mb->index_rdonly = 1;
    }
    if (mb->index_fd < 0) {
        if (errno == ENOENT) return CF_E_NOTFOUND;
        return io_error(mb, "open", mb->index_path);
    }
    struct stat st;
    if (fstat(mb->index_fd, &st) < 0) return io_error(mb, "fstat", mb->index_path);
    mb->index_dev = st.st_dev;
    mb->index_ino = st.st_ino;
    return map_refresh(mb);
}

static int write_header(struct mailbox *mb, struct index_header *nh);

/* check_counts: the chosen header's counters may lag behind its records when a STORE or
 * EXPUNGE died between rewriting records in place and writing its header (the intent marker
 * says so), or, after a power loss, whenever the kernel wrote records but not the header (the
 * full recount that open asks for finds that). The records are the truth: recount them and,
 * under the write lock, commit the repaired header (logged). Under a shared lock (or a
 * read-only index) mb->hdr gets the repaired counters in memory and 1 is returned: the caller
 * may take the write lock to store them. 0, 1 or <0. */
static int check_counts(struct mailbox *mb)
{
    int pending = index_intent_pending(mb->map, &mb->hdr);
    if (!pending && !mb->check_counts) return 0;
    struct index_header fixed;
    int diff = index_recount(mb->map, &mb->hdr, &fixed);
    if (diff < 0) return corrupt(mb, "index_keywords", 0);
    if (!diff && !pending) {
        mb->check_counts = 0;
        return 0;
    }
    if (mb->locked != LOCK_EX || mb->index_rdonly) {
        mb->hdr = fixed;   /* serve the true counters; a writer stores them */
        return 1;
    }
    struct index_header old = mb->hdr;
    fixed.prev_count = fixed.record_count;   /* adds no record: nothing for check_tail */
    int r = write_header(mb, &fixed);        /* commit old.commit + 1: the marker is spent */
    if (r < 0) return r;
    mb->check_counts = 0;
    if (diff)
        log_warn("mailbox_counts_repaired",
                 "mbox=%s uniqueid=%s reason=%s commit=%llu exists=%u->%u expunged=%u->%u "
                 "deleted=%u->%u seen=%u->%u highestmodseq=%llu->%llu keywords=%u->%u",
                 log_quote(mb->name), mb->uniqueid,
                 pending ? "interrupted_commit" : "count_mismatch",
                 (unsigned long long)fixed.commit, (unsigned)old.exists, (unsigned)fixed.exists,
                 (unsigned)old.expunged, (unsigned)fixed.expunged, (unsigned)old.deleted,
                 (unsigned)fixed.deleted, (unsigned)old.seen, (unsigned)fixed.seen,
                 (unsigned long long)old.highestmodseq, (unsigned long long)fixed.highestmodseq,
                 (unsigned)old.keyword_count, (unsigned)fixed.keyword_count);
    return 0;
}

/* refresh: under a lock, follow a repack (new inode), remap, read the current header and
 * check its counters (check_counts). 0, 1 (see check_counts) or <0. */
static int refresh(struct mailbox *mb)
{
    struct stat st;
    if (stat(mb->index_path, &st) < 0) {
        if (errno == ENOENT) return CF_E_NOTFOUND;
        return io_error(mb, "stat", mb->index_path);
    }
    int r;
    if (mb->index_fd < 0 || st.st_ino != mb->index_ino || st.st_dev != mb->index_dev)
        r = open_index(mb);
    else
        r = map_refresh(mb);
    if (r < 0) return r;
    struct index_header h;
    r = index_choose_header(mb->map, mb->map_len, &h, NULL);
    if (r < 0) return corrupt(mb, "index_header", 0);
    if (r == 1 && h.commit != mb->hdr.commit)
        log_warn("mailbox_torn_commit", "mbox=%s uniqueid=%s commit=%llu action=%s",
                 log_quote(mb->name), mb->uniqueid, (unsigned long long)h.commit + 1,
                 "ignored (never acknowledged)");
    mb->hdr = h;
    return check_counts(mb);
}

/* lock: take the lock (LOCK_SH or LOCK_EX) and refresh. Returns 1 if taken (the caller
 * unlocks), 0 if a sufficient lock was already held, or <0. */
static int lock(struct mailbox *mb, int op)
{
    if (mb->locked) {
        if (op == LOCK_EX && mb->locked != LOCK_EX) {
            log_err("mailbox_lock_misuse", "mbox=%s reason=%s", log_quote(mb->name),
                    log_quote("write under a shared lock"));
            return CF_E_INTERNAL;
        }
        return 0;
    }
    while (flock(mb->lock_fd, op) < 0) {
        if (errno == EINTR) continue;
        return io_error(mb, "flock", mb->dir);
    }
    mb->locked = op;
    int r = refresh(mb);
    if (r == 1 && op == LOCK_SH) {
        /* The header needs a repair a shared lock cannot write. Take the write lock if nobody
         * holds the mailbox (never wait: this process may hold another shared lock on it),
         * repair, and come back to a shared lock; otherwise keep the repaired counters in
         * memory and leave the write to the next writer. */
        flock(mb->lock_fd, LOCK_UN);
        mb->locked = 0;
        if (flock(mb->lock_fd, LOCK_EX | LOCK_NB) == 0) {
            mb->locked = LOCK_EX;
            r = refresh(mb);
            flock(mb->lock_fd, LOCK_UN);
            mb->locked = 0;
            if (r < 0) return r;
        }
        while (flock(mb->lock_fd, op) < 0) {
            if (errno == EINTR) continue;
            return io_error(mb, "flock", mb->dir);
        }
        mb->locked = op;
        r = refresh(mb);
    }
    if (r < 0) {
        flock(mb->lock_fd, LOCK_UN);
        mb->locked = 0;
        return r;
    }
    return 1;
}

static void unlock(struct mailbox *mb, int took)
{
    if (took <= 0) return;
    flock(mb->lock_fd, LOCK_UN);
    mb->locked = 0;
}

int mailbox_lock_shared(struct mailbox *mb)
{
    int r = lock(mb, LOCK_SH);
    return r < 0 ? r : 0;
}

void mailbox_unlock(struct mailbox *mb)
{
    unlock(mb, 1);
}

/* ---- \Recent high-water mark: the side file "recent" ---- */

#define RECENT_FILE "recent"

/* recent_read: the mark stored in the side file, 1 when there is none (every uid unclaimed).
 * The file is one fixed-width line written with a single pwrite, so a reader never sees a mix. */
static uint32_t recent_read(struct mailbox *mb, int fd)
{
    char b[16];
    ssize_t n = pread(fd, b, sizeof b - 1, 0);
    if (n <= 0) return 1;
    b[n] = '\0';
    unsigned long v = strtoul(b, NULL, 10);
    if (v < 1 || v > UINT32_MAX) {
        log_warn("mailbox_recent_damaged", "mbox=%s uniqueid=%s action=reset", log_quote(mb->name),
                 mb->uniqueid);
        return 1;
    }
    return (uint32_t)v;
}

int mailbox_claim_recent(struct mailbox *mb, int claim, uint32_t *first_r, uint32_t *end_r)
{
    char *path = xasprintf("%s/%s", mb->dir, RECENT_FILE);
    int r = 0, took = 0;
    int fd = open(path, (claim ? O_RDWR | O_CREAT : O_RDONLY) | O_CLOEXEC, 0600);
    if (fd < 0 && errno == ENOENT && !claim) {      /* never claimed: everything is recent */
        *first_r = 1;
        *end_r = mb->hdr.uidnext;
        goto out;
    }
    if (fd < 0) {
        r = io_error(mb, "open", path);
        goto out;
    }
    uint32_t mark = recent_read(mb, fd);
    if (!claim || mark >= mb->hdr.uidnext) {        /* nothing new since the last claim */
        *first_r = mark;
        *end_r = claim || mark > mb->hdr.uidnext ? mark : mb->hdr.uidnext;
        goto out;
    }
    took = lock(mb, LOCK_EX);
    if (took < 0) {
        r = took;
        goto out;
    }
    mark = recent_read(mb, fd);
    *first_r = mark;
    *end_r = mark;
    if (mark < mb->hdr.uidnext) {
        char b[16];
        int len = snprintf(b, sizeof b, "%010u\n", (unsigned)mb->hdr.uidnext);
        /* no fsync: after a crash at worst a few messages lose \Recent, which is harmless */
        if (pwrite(fd, b, (size_t)len, 0) != len) {
            r = io_error(mb, "pwrite", path);
            goto out;
        }
        *end_r = mb->hdr.uidnext;
    }
out:
    unlock(mb, took);
    if (fd >= 0) close(fd);
    free(path);
    return r;
}

/* find_pos: position of uid among the records of the current header, or -1. */
static long find_pos(const struct mailbox *mb, uint32_t uid)
{
    uint32_t lo = 0, hi = mb->hdr.record_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint32_t u = index_record_uid(mb->map + index_record_offset(mid));
        if (u == uid) return (long)mid;
        if (u < uid) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

/* first_pos_after: position of the first record with uid > uid. */
static uint32_t first_pos_after(const struct mailbox *mb, uint32_t uid)
{
    uint32_t lo = 0, hi = mb->hdr.record_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (index_record_uid(mb->map + index_record_offset(mid)) <= uid) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static int read_record(struct mailbox *mb, uint32_t pos, struct index_record *r)
{
    if (index_record_decode(mb->map + index_record_offset(pos), r) < 0)
        return corrupt(mb, "index_record", index_record_uid(mb->map + index_record_offset(pos)));
    return 0;
}

/* index_sync: fdatasync the index, or fail as a crash test asks at point. */
static int index_sync(struct mailbox *mb, const char *point)
{
    int e = fault_point(point);
    if (e) {
        errno = e;
        return -1;
    }
    return do_fsync(mb, mb->index_fd, 1);
}

/* write_header: the commit. Writes nh (with the next commit number) into its slot and flushes
 * the index: records and keyword bytes written before reach the disk with it. When the write
 * or the flush fails, the slot gets its previous bytes back before anything else can happen
 * under our lock: other sessions read the slot through the page cache, and must never adopt a
 * commit that was refused (its message files are about to be removed). The previous bytes are
 * then flushed; if that fails too, what the disk holds is unknown, mb->commit_uncertain is set
 * and the caller must keep the files this commit refers to (above the committed uidnext they
 * are removed later by a writer that has flushed the index first: remove_uncommitted). 0 or
 * CF_E_IO (logged). */
static int write_header(struct mailbox *mb, struct index_header *nh)
{
    unsigned char slot[INDEX_SLOT_SIZE], prev[INDEX_SLOT_SIZE];
    nh->commit = mb->hdr.commit + 1;
    off_t off = (off_t)index_slot_offset(nh->commit);
    index_header_encode(nh, slot);
    memcpy(prev, mb->map + off, sizeof prev);   /* the mapping always covers the header area */
    mb->commit_uncertain = 0;
    fault_point("commit");
    int r;
    if (pwrite(mb->index_fd, slot, sizeof slot, off) != (ssize_t)sizeof slot) {
        r = io_error(mb, "pwrite", mb->index_path);
        goto undo;
    }
    if (index_sync(mb, "index_sync") < 0) {
        r = io_error(mb, "fdatasync", mb->index_path);
        goto undo;
    }
    mb->hdr = *nh;
    return map_refresh(mb);
undo:
    if (pwrite(mb->index_fd, prev, sizeof prev, off) != (ssize_t)sizeof prev ||
        index_sync(mb, "restore_sync") < 0) {
        mb->commit_uncertain = 1;
        log_err("mailbox_commit_uncertain", "mbox=%s uniqueid=%s commit=%llu errno=%s "
                "action=%s", log_quote(mb->name), mb->uniqueid, (unsigned long long)nh->commit,
                strerror(errno), "files kept until the index can be flushed");
    }
    return r;
}

static int pwrite_all(int fd, const void *p, size_t n, uint64_t off)
{
    const char *s = p;
    while (n) {
        ssize_t w = pwrite(fd, s, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        s += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* write_intent: called before a commit's first in-place record write (STORE, EXPUNGE): the
 * marker naming that commit (index.h), so the next lock notices a crash before the header
 * write and recounts. One pwrite, no fsync: a process crash keeps the order of the writes; for
 * a power loss, which does not, open recounts anyway. */
static int write_intent(struct mailbox *mb)
{
    struct index_intent it = { mb->hdr.generation, mb->hdr.commit + 1 };
    unsigned char raw[INDEX_INTENT_SIZE];
    index_intent_encode(&it, raw);
    if (pwrite_all(mb->index_fd, raw, sizeof raw, INDEX_INTENT_OFFSET) < 0)
        return io_error(mb, "pwrite", mb->index_path);
    return 0;
}

/* ---- keywords ---- */

/* keyword_get: the bit of keyword name (ASCII case-insensitive), creating it in nh's keyword
 * area when create is set (bytes written now, counted only when nh is committed). Returns the
 * bit, CF_E_NOTFOUND, CF_E_LIMIT or CF_E_IO. */
static int keyword_get(struct mailbox *mb, struct index_header *nh, const char *name, int create)
{
    size_t nlen = strlen(name);
    const unsigned char *area = mb->map + INDEX_KEYWORD_OFFSET;
    for (uint32_t k = 0; k < nh->keyword_count; k++) {
        size_t len;
        const char *kw = index_keyword_get(area, nh->keyword_bytes, k, &len);
        if (kw && len == nlen && !strncasecmp(kw, name, nlen)) return (int)k;
    }
    if (!create) return CF_E_NOTFOUND;
    if (!nlen || nh->keyword_count >= INDEX_MAX_KEYWORDS ||
        nh->keyword_bytes + nlen + 1 > INDEX_KEYWORD_AREA)
        return CF_E_LIMIT;
    if (pwrite_all(mb->index_fd, name, nlen + 1, INDEX_KEYWORD_OFFSET + nh->keyword_bytes) < 0)
        return io_error(mb, "pwrite", mb->index_path);
    nh->keyword_bytes += (uint32_t)nlen + 1;
    nh->keyword_crc = index_crc32(area, nh->keyword_bytes);  /* the mapping sees the write */
    return (int)nh->keyword_count++;
}

const struct strarr *mailbox_keywords(struct mailbox *mb)
{
    if (!mb->kw_loaded || mb->kw_loaded_bytes != mb->hdr.keyword_bytes ||
        mb->kw_loaded_gen != mb->hdr.generation) {
        strarr_fini(&mb->keywords);
        const unsigned char *area = mb->map + INDEX_KEYWORD_OFFSET;
        for (uint32_t k = 0; k < mb->hdr.keyword_count; k++) {
            size_t len;
            const char *kw = index_keyword_get(area, mb->hdr.keyword_bytes, k, &len);
            strarr_take(&mb->keywords, kw ? xstrndup(kw, len) : xstrdup(""));
        }
        mb->kw_loaded = 1;
        mb->kw_loaded_bytes = mb->hdr.keyword_bytes;
        mb->kw_loaded_gen = mb->hdr.generation;
    }
    return &mb->keywords;
}

/* ---- counters ---- */

static void count_record(struct index_header *h, const struct index_record *r, int add)
{
    uint32_t d = add ? 1u : (uint32_t)-1;
    h->exists += d;
    if (r->flags & FLAG_DELETED) h->deleted += d;
    if (r->flags & FLAG_SEEN) h->seen += d;
    if (r->flags & FLAG_ANSWERED) h->answered += d;
    if (r->flags & FLAG_FLAGGED) h->flagged += d;
    if (add) h->quota_used += r->size;
    else h->quota_used = h->quota_used >= r->size ? h->quota_used - r->size : 0;
}

/* ---- open / close ---- */

static struct mailbox *mailbox_alloc(const char *partition, const char *uniqueid, const char *name)
{
    struct mailbox *mb = xzmalloc(sizeof *mb);
    mb->partition = xstrdup(partition);
    mb->uniqueid = xstrdup(uniqueid);
    mb->name = xstrdup(name ? name : uniqueid);
    mb->dir = partition_mailbox_dir(partition, uniqueid);
    mb->index_path = xasprintf("%s/%s", mb->dir, INDEX_FILE);
    mb->lock_fd = mb->index_fd = mb->cache_fd = mb->dir_fd = -1;
    strarr_init(&mb->keywords);
    return mb;
}

void mailbox_close(struct mailbox **pmb)
{
    struct mailbox *mb = *pmb;
    if (!mb) return;
    unmap_index(mb);
    if (mb->index_fd >= 0) close(mb->index_fd);
    if (mb->cache_fd >= 0) close(mb->cache_fd);
    if (mb->dir_fd >= 0) close(mb->dir_fd);
    if (mb->sync_map) munmap(mb->sync_map, sizeof *mb->sync_map);
    if (mb->lock_fd >= 0) close(mb->lock_fd);  /* drops any lock */
    strarr_fini(&mb->keywords);
    free(mb->view);
    free(mb->partition);
    free(mb->uniqueid);
    free(mb->name);
    free(mb->dir);
    free(mb->index_path);
    free(mb);
    *pmb = NULL;
}

static int open_lock_file(const char *dir, int *fd_r)
{
    char *path = xasprintf("%s/%s", dir, LOCK_FILE);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    int r = 0;
    if (fd < 0) {
        r = errno == ENOENT ? CF_E_NOTFOUND : CF_E_IO;
        if (r == CF_E_IO)
            log_err("mailbox_io_error", "call=open path=%s errno=%s", log_quote(path), strerror(errno));
    }
    *fd_r = fd;
    free(path);
    return r;
}

/* open_cache: open the cache file, recreating an empty one when it is missing or its header
 * is damaged (the cache is derived data; records pointing into a recreated file fail their
 * checks and are rebuilt from the message files). Call under the write lock or at open. */
static int open_cache(struct mailbox *mb)
{
    char *path = xasprintf("%s/%s", mb->dir, CACHE_FILE);
    int r = 0;
    mb->cache_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (mb->cache_fd < 0) mb->cache_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (mb->cache_fd < 0) r = io_error(mb, "open", path);
    free(path);
    return r;
}

/* cache_end: where the next cache record goes (the end of the file), writing the cache file
 * header first if the file is empty or its header damaged. */
static int cache_end(struct mailbox *mb, uint64_t *end_r)
{
    struct stat st;
    unsigned char head[CACHE_HEADER_SIZE];
    if (fstat(mb->cache_fd, &st) < 0) return io_error(mb, "fstat", "cache");
    if (st.st_size >= CACHE_HEADER_SIZE &&
        pread(mb->cache_fd, head, sizeof head, 0) == (ssize_t)sizeof head &&
        cache_header_check(head, sizeof head) == 0) {
        *end_r = (uint64_t)st.st_size;
        return 0;
    }
    if (st.st_size > 0) corrupt(mb, "cache_header", 0);
    cache_header_encode(head);
    if (ftruncate(mb->cache_fd, 0) < 0 || pwrite_all(mb->cache_fd, head, sizeof head, 0) < 0)
        return io_error(mb, "write", "cache");
    *end_r = CACHE_HEADER_SIZE;
    return 0;
}

static int view_update(struct mailbox *mb, unsigned flags, struct mailbox_changes *ch);

int mailbox_open(const char *partition, const char *uniqueid, const char *name,
                 struct mailbox **mb_r)
{
    *mb_r = NULL;
    if (!partition_uniqueid_valid(uniqueid)) return CF_E_NOTFOUND;
    struct mailbox *mb = mailbox_alloc(partition, uniqueid, name);
    struct mailbox_changes ch;
    mailbox_changes_init(&ch);
    int r = open_lock_file(mb->dir, &mb->lock_fd);
    if (r < 0) goto fail;
    r = open_cache(mb);
    if (r < 0) goto fail;
    mb->check_counts = 1;   /* one recount per open: it walks the records anyway */
    int took = lock(mb, LOCK_SH);
    if (took < 0) {
        r = took;
        goto fail;
    }
    r = view_update(mb, 0, &ch);
    unlock(mb, took);
    if (r < 0) goto fail;
    mailbox_changes_fini(&ch);
    *mb_r = mb;
    return 0;
fail:
    mailbox_changes_fini(&ch);
    mailbox_close(&mb);
    return r;
}

void mailbox_set_nofsync(struct mailbox *mb, int on) { mb->nofsync = on; }
const char *mailbox_uniqueid(const struct mailbox *mb) { return mb->uniqueid; }
const char *mailbox_dir(const struct mailbox *mb) { return mb->dir; }
const struct index_header *mailbox_header(const struct mailbox *mb) { return &mb->hdr; }
uint32_t mailbox_count(const struct mailbox *mb) { return mb->nview; }

uint32_t mailbox_uid(const struct mailbox *mb, uint32_t msgno)
{
    return msgno >= 1 && msgno <= mb->nview ? mb->view[msgno - 1] : 0;
}

uint32_t mailbox_msgno(const struct mailbox *mb, uint32_t uid)
{
    uint32_t lo = 0, hi = mb->nview;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (mb->view[mid] == uid) return mid + 1;
        if (mb->view[mid] < uid) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

/* ---- sync ---- */

void mailbox_changes_init(struct mailbox_changes *c) { memset(c, 0, sizeof *c); }

void mailbox_changes_fini(struct mailbox_changes *c)
{
    free(c->expunged_msgnos);
    free(c->expunged_uids);
    free(c->changed_uids);
    memset(c, 0, sizeof *c);
}

static void push_u32(uint32_t **v, size_t *n, size_t *alloc, uint32_t x)
{
    if (*n == *alloc) {
        *alloc = *alloc ? *alloc * 2 : 16;
        *v = xreallocarray(*v, *alloc, sizeof **v);
    }
    (*v)[(*n)++] = x;
}

/* view_update: under a lock, compare the view with the records and apply the differences. */
static int view_update(struct mailbox *mb, unsigned flags, struct mailbox_changes *ch)
{
    const struct index_header *h = &mb->hdr;
    int no_expunge = flags & MAILBOX_SYNC_NO_EXPUNGE;
    ch->highestmodseq = h->highestmodseq;
    if (h->generation == mb->view_generation && h->record_count == mb->view_records &&
        h->highestmodseq == mb->view_modseq && mb->view &&
        !(mb->expunge_pending && !no_expunge)) {
        ch->exists = mb->nview;
        return 0;
    }
    size_t ae = 0, ac = 0;
    uint32_t count = h->record_count, j = 0, k = 0, removed = 0;
    int pending = 0;
    /* Messages already in the view: still there, changed, or expunged. */
    for (uint32_t i = 0; i < mb->nview; i++) {
        uint32_t u = mb->view[i];
        while (j < count && index_record_uid(mb->map + index_record_offset(j)) < u) j++;
        int gone = 1;
        if (j < count && index_record_uid(mb->map + index_record_offset(j)) == u) {
            const unsigned char *raw = mb->map + index_record_offset(j);
            uint32_t rflags = le_get32(raw + 4);
            uint64_t modseq = le_get64(raw + 32);
            gone = (rflags & FLAG_EXPUNGED) != 0;
            if (!gone && modseq > mb->view_modseq) {
                struct index_record r;
                int rr = read_record(mb, j, &r);
                if (rr < 0) {   /* keep the view whole: nothing was reported */
                    memmove(mb->view + k, mb->view + i, (mb->nview - i) * sizeof *mb->view);
                    mb->nview = k + (mb->nview - i);
                    mailbox_changes_fini(ch);
                    return rr;
                }
                push_u32(&ch->changed_uids, &ch->n_changed, &ac, u);
            }
            j++;
        }
        if (gone && no_expunge) {
            pending = 1;
            gone = 0;
        }
        if (gone) {
            size_t n1 = ch->n_expunged, a1 = ae;
            push_u32(&ch->expunged_msgnos, &n1, &a1, i + 1 - removed);
            push_u32(&ch->expunged_uids, &ch->n_expunged, &ae, u);
            removed++;
            continue;
        }
        mb->view[k++] = u;
    }
    mb->nview = k;
    /* New messages: records above the highest uid the view ever held. */
    uint32_t prev = mb->view_maxuid;
    for (j = first_pos_after(mb, mb->view_maxuid); j < count; j++) {
        const unsigned char *raw = mb->map + index_record_offset(j);
        uint32_t u = index_record_uid(raw);
        if (u <= prev || u >= h->uidnext) return corrupt(mb, "index_order", u);
        prev = u;
        if (le_get32(raw + 4) & FLAG_EXPUNGED) continue;
        if (mb->nview == mb->aview) {
            mb->aview = mb->aview ? mb->aview + mb->aview / 2 : (count > 16 ? count : 16);
            mb->view = xreallocarray(mb->view, mb->aview, sizeof *mb->view);
        }
        mb->view[mb->nview++] = u;
        ch->n_new++;
    }
    if (prev > mb->view_maxuid) mb->view_maxuid = prev;
    if (!mb->view) mb->view = xmalloc(sizeof *mb->view);  /* marks the view as built */
    mb->expunge_pending = pending;
    mb->view_modseq = h->highestmodseq;
    mb->view_generation = h->generation;
    mb->view_records = count;
    ch->exists = mb->nview;
    return 0;
}

int mailbox_sync(struct mailbox *mb, unsigned flags, struct mailbox_changes *ch)
{
    mailbox_changes_fini(ch);
    int took = lock(mb, LOCK_SH);
    if (took < 0) return took;
    int r = view_update(mb, flags, ch);
    unlock(mb, took);
    return r;
}

/* ---- reading ---- */

int mailbox_record(struct mailbox *mb, uint32_t uid, struct index_record *r)
{
    long pos = find_pos(mb, uid);
    if (pos < 0) return 0;
    if (index_record_decode(mb->map + index_record_offset((uint32_t)pos), r) == 0) return 1;
    /* Maybe a writer was changing it under us: look again under the shared lock. */
    int took = lock(mb, LOCK_SH);
    if (took < 0) return took;
    int ret = 0;
    pos = find_pos(mb, uid);
    if (pos >= 0) ret = read_record(mb, (uint32_t)pos, r) < 0 ? CF_E_CORRUPT : 1;
    unlock(mb, took);
    return ret;
}

char *mailbox_message_path(const struct mailbox *mb, uint32_t uid)
{
    return xasprintf("%s/%u.", mb->dir, (unsigned)uid);
}

int mailbox_message_open(struct mailbox *mb, uint32_t uid, int *fd_r, uint64_t *size_r)
{
    char *path = mailbox_message_path(mb, uid);
    int r = 0;
    *fd_r = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd_r < 0) {
        r = errno == ENOENT ? CF_E_NOTFOUND : io_error(mb, "open", path);
        goto done;
    }
    if (size_r) {
        struct stat st;
        if (fstat(*fd_r, &st) < 0) {
            r = io_error(mb, "fstat", path);
            close(*fd_r);
            *fd_r = -1;
            goto done;
        }
        *size_r = (uint64_t)st.st_size;
    }
done:
    free(path);
    return r;
}

int mailbox_message_map(struct mailbox *mb, uint32_t uid, const char **p_r, size_t *len_r)
{
    int fd;
    uint64_t size;
    *p_r = NULL;
    *len_r = 0;
    int r = mailbox_message_open(mb, uid, &fd, &size);
    if (r < 0) return r;
    if (size == 0) {
        *p_r = "";
    } else {
        void *p = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            r = io_error(mb, "mmap", "message");
        } else {
            *p_r = p;
            *len_r = (size_t)size;
        }
    }
    close(fd);
    return r;
}

void mailbox_message_unmap(const char *p, size_t len)
{
    if (p && len) munmap((void *)p, len);
}

/* ---- message summaries ---- */

static void guid_of(const char *p, size_t len, uint8_t out[20])
{
    unsigned int n = 20;
    EVP_Digest(p, len, out, &n, EVP_sha1(), NULL);
}

void mailbox_summarize(const char *p, size_t len, uint32_t uid, struct cache_entry *e,
                       struct index_record *rec)
{
    struct mime_summary s;
    mime_summary_init(&s);
    mime_summarize(p, len, &s);   /* CF_E_LIMIT still leaves a usable summary */
    cache_entry_fini(e);
    e->uid = uid;
    struct { int id; struct buf *b; } map[] = {
        { CACHE_ENVELOPE, &s.envelope }, { CACHE_BODYSTRUCTURE, &s.bodystructure },
        { CACHE_BODY, &s.body }, { CACHE_SECTIONS, &s.sections },
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        buf_reset(&e->f[map[i].id]);
        if (map[i].b->len) buf_append(&e->f[map[i].id], map[i].b->s, map[i].b->len);
        e->present[map[i].id] = 1;
    }
    size_t hs = s.header_size <= len ? s.header_size : len;
    buf_reset(&e->f[CACHE_HEADER]);
    if (hs <= CACHE_HEADER_MAX) {
        if (hs) buf_append(&e->f[CACHE_HEADER], p, hs);
        e->present[CACHE_HEADER] = 1;
    }
    if (rec) {
        rec->size = len;
        rec->header_size = (uint32_t)hs;
        rec->body_lines = s.body_lines;
        rec->sentdate = 0;
        /* the Date: header field, unfolded (RFC 5322 section 3.6.1) */
        for (size_t pos = 0; pos < hs;) {
            const char *line = p + pos;
            const char *nl = memchr(line, '\n', hs - pos);
            size_t ll = nl ? (size_t)(nl - line) + 1 : hs - pos;
            if (ll > 5 && !strncasecmp(line, "Date:", 5)) {
                struct buf v = BUF_INIT;
                size_t q = pos + 5;
                for (;;) {
                    const char *e2 = memchr(p + q, '\n', hs - q);
                    size_t end = e2 ? (size_t)(e2 - p) : hs;
                    buf_append(&v, p + q, end - q);
                    buf_putc(&v, ' ');
                    q = end + 1;
                    if (q >= hs || (p[q] != ' ' && p[q] != '\t')) break;
                }
                rec->sentdate = mailbox_parse_date(buf_cstr(&v), v.len);
                buf_fini(&v);
                break;
            }
            pos += ll;
        }
        guid_of(p, len, rec->guid);
    }
    mime_summary_fini(&s);
}

int mailbox_cache_fetch(struct mailbox *mb, uint32_t uid, struct cache_entry *e)
{
    struct index_record r;
    int found = mailbox_record(mb, uid, &r);
    if (found < 0) return found;
    if (!found || (r.flags & FLAG_EXPUNGED)) return CF_E_NOTFOUND;
    int cr = r.cache_offset ? cache_read(mb->cache_fd, r.cache_offset, uid, e) : CF_E_CORRUPT;
    if (cr == 0) return 0;
    log_warn("mailbox_cache_rebuild", "mbox=%s uid=%u reason=%s", log_quote(mb->name),
             (unsigned)uid, cr == CF_E_IO ? "io" : "damaged");
    const char *p;
    size_t len;
    int r2 = mailbox_message_map(mb, uid, &p, &len);
    if (r2 < 0) return r2;
    mailbox_summarize(p, len, uid, e, NULL);
    mailbox_message_unmap(p, len);
    return 0;
}

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
    int r = sync_dir(mb);
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
            return io_error(mb, "fcntl", mb->dir);
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
        return io_error(mb, link_src ? "link" : "open", link_src ? link_src : mb->dir);
    }
}

/* write_message_file: write and fsync the new file fd of uid; closes fd. 0 or CF_E_IO. */
static int write_message_file(struct mailbox *mb, int fd, uint32_t uid, const char *p,
                              size_t len)
{
    int r = 0;
    if (write_all(fd, p, len) < 0 || do_fsync(mb, fd, 0) < 0) {
        char *path = mailbox_message_path(mb, uid);
        r = io_error(mb, "write", path);
        free(path);
    }
    if (close(fd) < 0 && r == 0) r = io_error(mb, "close", mb->dir);
    return r;
}

static void unlink_messages(struct mailbox *mb, const uint32_t *uids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *path = mailbox_message_path(mb, uids[i]);
        if (uids[i] && unlink(path) < 0 && errno != ENOENT) io_error(mb, "unlink", path);
        free(path);
    }
}

/* set_keywords: the user-flag bits of names into rec (creating keywords in nh). */
static int set_keywords(struct mailbox *mb, struct index_header *nh, const char *const *names,
                        struct index_record *rec)
{
    for (size_t i = 0; names && names[i]; i++) {
        int k = keyword_get(mb, nh, names[i], 1);
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
    int took = lock(mb, LOCK_SH);   /* where to start looking: the current uidnext */
    if (took < 0) return took;
    uint32_t next = mb->hdr.uidnext, mark = 0;
    unlock(mb, took);
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
        if (remove_files) unlink_messages(mb, &pm[i].uid, 1);
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
            if (!flushed && index_sync(mb, "index_sync") < 0)
                r = io_error(mb, "fdatasync", mb->index_path);
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
            if (unlink(old) < 0) io_error(mb, "unlink", old);
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
    if ((r = cache_end(mb, &cend)) < 0) goto done;
    for (size_t i = 0; i < n; i++) {
        struct pending *m = &pm[i];
        if (!m->uid) continue;
        uint32_t uid = m->uid;
        nh.uidnext = uid + 1;
        m->rec.uid = uid;
        m->rec.modseq = modseq;
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
        count_record(&nh, &m->rec, 1);
        nh.record_count++;
    }
    /* The cache is not fsynced: a record lost in a crash fails its check and is rebuilt. */
    if (cbuf.len && pwrite_all(mb->cache_fd, cbuf.s, cbuf.len, cend) < 0) {
        r = io_error(mb, "pwrite", "cache");
        goto done;
    }
    if (pwrite_all(mb->index_fd, rbuf.s, rbuf.len, index_record_offset(nh.prev_count)) < 0) {
        r = io_error(mb, "pwrite", mb->index_path);
        goto done;
    }
    /* Every new name durable before the header that points to it. Checked this late on
     * purpose: while we waited for the lock, the writer ahead of us fsynced the directory
     * after our files were made, so under load this is mostly skipped. */
    if ((r = dirsync(mb, mark)) < 0) goto done;
    nh.highestmodseq = modseq;
    r = write_header(mb, &nh);
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
        int took = lock(mb, LOCK_EX);
        if (took < 0) {
            r = took;
            break;
        }
        uint32_t wait = 0;
        r = commit_messages(mb, pm, n, kw, q, mark, uids_r, &wait);
        unlock(mb, took);
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
                r = io_error(mb, "fstat", "append-fd");
                goto done;
            }
            p->len = (size_t)st.st_size;
            p->data = "";
            if (p->len) {
                void *a = mmap(NULL, p->len, PROT_READ, MAP_SHARED, m->fd, 0);
                if (a == MAP_FAILED) {
                    r = io_error(mb, "mmap", "append-fd");
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
    int took = lock(src, LOCK_SH);
    if (took < 0) {
        r = took;
        goto done;
    }
    const struct strarr *names = mailbox_keywords(src);
    for (size_t k = 0; k < names->count; k++) strarr_add(&srckw, names->v[k]);
    for (size_t i = 0; i < n; i++) {
        long pos = find_pos(src, uids[i]);
        if (pos < 0) continue;
        struct pending *p = &pm[np];
        if ((r = read_record(src, (uint32_t)pos, &p->rec)) < 0) break;
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
        from[np++] = i;
    }
    unlock(src, took);
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

/* ---- store ---- */

/* save_record: remember record pos as it is now (its raw bytes), to put back if the commit
 * that rewrites it in place fails. */
static void save_record(struct mailbox *mb, struct buf *undo, uint32_t pos)
{
    unsigned char p[4];
    le_put32(p, pos);
    buf_append(undo, p, sizeof p);
    buf_append(undo, mb->map + index_record_offset(pos), INDEX_RECORD_SIZE);
}

/* undo_records: after a failed commit (write_header put the header slot back), put back the
 * records it had rewritten in place, so that nothing of a change the client was refused
 * shows (the intent marker would otherwise make the next lock recount and commit them). Best
 * effort: a record that cannot be written back stays changed, and is counted in. */
static void undo_records(struct mailbox *mb, const struct buf *undo)
{
    for (size_t off = 0; off + 4 + INDEX_RECORD_SIZE <= undo->len; off += 4 + INDEX_RECORD_SIZE) {
        const unsigned char *e = (const unsigned char *)undo->s + off;
        if (pwrite_all(mb->index_fd, e + 4, INDEX_RECORD_SIZE, index_record_offset(le_get32(e))) < 0)
            io_error(mb, "pwrite", mb->index_path);
    }
}

int mailbox_store(struct mailbox *mb, const uint32_t *uids, size_t n,
                  const struct mailbox_store *st, uint32_t **failed_r, size_t *nfailed_r)
{
    uint32_t *failed = NULL;
    size_t nfailed = 0, afailed = 0;
    int kbits[INDEX_MAX_KEYWORDS];
    size_t nk = 0;
    int r = 0, changed = 0;
    struct buf undo = BUF_INIT;
    int took = lock(mb, LOCK_EX);
    if (took < 0) {
        r = took;
        goto out;
    }
    struct index_header nh = mb->hdr;
    nh.prev_count = nh.record_count;
    uint64_t modseq = nh.highestmodseq + 1;
    for (size_t i = 0; st->keywords && st->keywords[i]; i++) {
        int k = keyword_get(mb, &nh, st->keywords[i], st->op != STORE_REMOVE);
        if (k == CF_E_NOTFOUND) continue;   /* removing an unknown keyword: nothing to do */
        if (k < 0) {
            r = k;
            goto done;
        }
        if (nk < INDEX_MAX_KEYWORDS) kbits[nk++] = k;
    }
    uint32_t sys = st->flags & FLAG_SYSTEM_MASK;
    for (size_t i = 0; i < n; i++) {
        long pos = find_pos(mb, uids[i]);
        if (pos < 0) continue;
        struct index_record rec;
        if ((r = read_record(mb, (uint32_t)pos, &rec)) < 0) goto done;
        if (rec.flags & FLAG_EXPUNGED) continue;
        if (st->unchangedsince && rec.modseq > st->unchangedsince) {
            push_u32(&failed, &nfailed, &afailed, rec.uid);
            continue;
        }
        struct index_record nr = rec;
        if (st->op == STORE_SET) {
            nr.flags = sys;
            memset(nr.user_flags, 0, sizeof nr.user_flags);
        } else if (st->op == STORE_ADD) {
            nr.flags |= sys;
        } else {
            nr.flags &= ~sys;
        }
        for (size_t k = 0; k < nk; k++)
            index_user_flag_set(&nr, (unsigned)kbits[k], st->op != STORE_REMOVE);
        if (nr.flags == rec.flags && !memcmp(nr.user_flags, rec.user_flags, sizeof nr.user_flags))
            continue;   /* RFC 7162 section 3.1.3: no change, no new modseq */
        count_record(&nh, &rec, 0);
        count_record(&nh, &nr, 1);
        nr.modseq = modseq;
        unsigned char raw[INDEX_RECORD_SIZE];
        index_record_encode(&nr, raw);
        if (!changed && (r = write_intent(mb)) < 0) goto done;
        save_record(mb, &undo, (uint32_t)pos);
        if (pwrite_all(mb->index_fd, raw, sizeof raw, index_record_offset((uint32_t)pos)) < 0) {
            r = io_error(mb, "pwrite", mb->index_path);
            goto done;
        }
        fault_point("record");
        changed = 1;
    }
    if (changed || nh.keyword_count != mb->hdr.keyword_count) {
        if (changed) nh.highestmodseq = modseq;
        r = write_header(mb, &nh);
    }
done:
    if (r < 0) undo_records(mb, &undo);
    buf_fini(&undo);
    unlock(mb, took);
out:
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

int mailbox_expunge_sized(struct mailbox *mb, const uint32_t *uids, size_t n, uint32_t *count_r,
                          uint64_t *bytes_r)
{
    uint32_t *gone = NULL;
    size_t ngone = 0, agone = 0;
    uint64_t bytes = 0;
    int r = 0;
    struct buf undo = BUF_INIT;
    if (count_r) *count_r = 0;
    if (bytes_r) *bytes_r = 0;
    int took = lock(mb, LOCK_EX);
    if (took < 0) return took;
    struct index_header nh = mb->hdr;
    nh.prev_count = nh.record_count;
    uint64_t modseq = nh.highestmodseq + 1;
    size_t total = uids ? n : mb->hdr.record_count;
    for (size_t i = 0; i < total; i++) {
        long pos = uids ? find_pos(mb, uids[i]) : (long)i;
        if (pos < 0) continue;
        const unsigned char *raw = mb->map + index_record_offset((uint32_t)pos);
        uint32_t f = le_get32(raw + 4);
        if ((f & FLAG_EXPUNGED) || !(f & FLAG_DELETED)) continue;
        struct index_record rec;
        if ((r = read_record(mb, (uint32_t)pos, &rec)) < 0) goto done;
        count_record(&nh, &rec, 0);
        bytes += rec.size;
        rec.flags |= FLAG_EXPUNGED;
        rec.modseq = modseq;
        nh.expunged++;
        unsigned char enc[INDEX_RECORD_SIZE];
        index_record_encode(&rec, enc);
        if (!ngone && (r = write_intent(mb)) < 0) goto done;
        save_record(mb, &undo, (uint32_t)pos);
        if (pwrite_all(mb->index_fd, enc, sizeof enc, index_record_offset((uint32_t)pos)) < 0) {
            r = io_error(mb, "pwrite", mb->index_path);
            goto done;
        }
        fault_point("record");
        push_u32(&gone, &ngone, &agone, rec.uid);
    }
    if (!ngone) goto done;
    nh.highestmodseq = modseq;
    if ((r = write_header(mb, &nh)) < 0) goto done;
    /* Only after the commit: a crash before leaves files nobody points to, never the reverse. */
    unlink_messages(mb, gone, ngone);
    if (count_r) *count_r = (uint32_t)ngone;
    if (bytes_r) *bytes_r = bytes;
done:
    if (r < 0) undo_records(mb, &undo);
    buf_fini(&undo);
    unlock(mb, took);
    free(gone);
    return r;
}

int mailbox_repack(struct mailbox *mb)
{
    int took = lock(mb, LOCK_EX);
    if (took < 0) return took;
    struct buf out = BUF_INIT;
    uint32_t *gone = NULL;
    size_t ngone = 0, agone = 0;
    int r = 0;
    /* The new header's counters come from the records it keeps, never carried over. */
    struct index_header nh;
    if (index_recount(mb->map, &mb->hdr, &nh) < 0) {
        r = corrupt(mb, "index_keywords", 0);
        goto done;
    }
    buf_append(&out, mb->map, INDEX_HEADER_SIZE);
    memset(out.s + INDEX_SLOT0_OFFSET, 0, INDEX_SLOT_SIZE);
    memset(out.s + INDEX_SLOT1_OFFSET, 0, INDEX_SLOT_SIZE);
    memset(out.s + INDEX_INTENT_OFFSET, 0, INDEX_INTENT_SIZE);
    uint32_t kept = 0;
    for (uint32_t i = 0; i < mb->hdr.record_count; i++) {
        const unsigned char *raw = mb->map + index_record_offset(i);
        struct index_record rec;
        if ((r = read_record(mb, i, &rec)) < 0) goto done;
        if (rec.flags & FLAG_EXPUNGED) {
            push_u32(&gone, &ngone, &agone, rec.uid);
            continue;
        }
        buf_append(&out, raw, INDEX_RECORD_SIZE);
        kept++;
    }
    nh.record_count = nh.prev_count = kept;
    nh.expunged = 0;
    nh.generation++;
    nh.commit = 1;   /* a new file: its first commit, complete before it is renamed in */
    index_header_encode(&nh, (unsigned char *)out.s + index_slot_offset(nh.commit));
    if (mb->nofsync) {
        char *tmp = xasprintf("%s.tmp.%d", mb->index_path, (int)getpid());
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || write_all(fd, out.s, out.len) < 0 || rename(tmp, mb->index_path) < 0)
            r = io_error(mb, "write", tmp);
        if (fd >= 0) close(fd);
        free(tmp);
    } else {
        r = file_write_atomic(mb->index_path, out.s, out.len, 0600);
    }
    if (r < 0) goto done;
    unlink_messages(mb, gone, ngone);
    r = refresh(mb);   /* follow our own rename */
    log_info("mailbox_repacked", "mbox=%s records=%u removed=%zu generation=%llu",
             log_quote(mb->name), (unsigned)kept, ngone, (unsigned long long)nh.generation);
done:
    unlock(mb, took);
    buf_fini(&out);
    free(gone);
    return r;
}

/* ---- create, status, delete, rename ---- */

int mailbox_create(const char *partition, const char *name, const char *uniqueid,
                   const char *acl, uint32_t uidvalidity)
{
    if (!partition_uniqueid_valid(uniqueid) || !name || strpbrk(name, "\r\n") ||
        (acl && strpbrk(acl, "\r\n")))
        return CF_E_PARSE;
    if (!uidvalidity) uidvalidity = (uint32_t)time(NULL);
    char *dir = partition_mailbox_dir(partition, uniqueid);
    char *parent = xstrndup(dir, strlen(dir) - UNIQUEID_LEN - 1);
    char *path = NULL;
    unsigned char *idx = NULL;
    int r = mkdir_p(parent, 0700);
    if (r < 0) goto done;
    if (mkdir(dir, 0700) < 0) {
        if (errno == EEXIST) {
            r = CF_E_EXISTS;
        } else {
            log_err("mailbox_io_error", "call=mkdir path=%s errno=%s", log_quote(dir), strerror(errno));
            r = CF_E_IO;
        }
        goto done;
    }
    unsigned char chead[CACHE_HEADER_SIZE];
    cache_header_encode(chead);
    path = xasprintf("%s/%s", dir, CACHE_FILE);
    if ((r = file_write_atomic(path, chead, sizeof chead, 0600)) < 0) goto done;
    free(path);
    size_t ilen;
    idx = index_new_file(uidvalidity, 1, &ilen);
    path = xasprintf("%s/%s", dir, INDEX_FILE);
    if ((r = file_write_atomic(path, idx, ilen, 0600)) < 0) goto done;
    /* The header goes last: a directory without one is an unfinished create. */
    struct mbheader h = { (char *)name, (char *)uniqueid, (char *)(acl ? acl : ""), uidvalidity };
    if ((r = mbheader_write(dir, &h)) < 0) goto done;
    /* the new name in xx/, and xx/ itself in the partition when mkdir_p just made it */
    if ((r = fsync_dir(parent, 1)) < 0) goto done;
    r = fsync_dir(parent, 0);
done:
    free(idx);
    free(path);
    free(parent);
    free(dir);
    return r;
}

int mailbox_status(const char *partition, const char *uniqueid, struct index_header *h)
{
    if (!partition_uniqueid_valid(uniqueid)) return CF_E_NOTFOUND;
    struct mailbox *mb = mailbox_alloc(partition, uniqueid, NULL);
    int r = open_lock_file(mb->dir, &mb->lock_fd);
    if (r == 0) {
        int took = lock(mb, LOCK_SH);
        if (took < 0) r = took;
        else *h = mb->hdr;
        unlock(mb, took);
    }
    mailbox_close(&mb);
    return r;
}

/* remove_dir_files: unlink every entry of dir (no subdirectories expected), then dir. */
static int remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? CF_E_NOTFOUND : CF_E_IO;
    struct dirent *de;
    int r = 0;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char *p = xasprintf("%s/%s", dir, de->d_name);
        if (unlink(p) < 0 && errno != ENOENT) {
            log_err("mailbox_io_error", "call=unlink path=%s errno=%s", log_quote(p), strerror(errno));
            r = CF_E_IO;
        }
        free(p);
    }
    closedir(d);
    if (r == 0 && rmdir(dir) < 0) {
        log_err("mailbox_io_error", "call=rmdir path=%s errno=%s", log_quote(dir), strerror(errno));
        r = CF_E_IO;
    }
    if (r == 0) {
        char *parent = xstrndup(dir, strlen(dir) - UNIQUEID_LEN - 1);
        /* the xx directory goes too when this was its last mailbox */
        fsync_dir(parent, rmdir(parent) < 0);
        free(parent);
    }
    return r;
}

int mailbox_delete(const char *partition, const char *uniqueid)
{
    if (!partition_uniqueid_valid(uniqueid)) return CF_E_NOTFOUND;
    char *dir = partition_mailbox_dir(partition, uniqueid);
    int fd = -1;
    struct stat st;
    int r = stat(dir, &st) < 0 ? CF_E_NOTFOUND : open_lock_file(dir, &fd);
    if (r < 0) goto done;
    /* Wait for sessions in the middle of a change; they see the mailbox gone afterwards. */
    while (flock(fd, LOCK_EX) < 0 && errno == EINTR) {}
    r = remove_dir(dir);
done:
    if (fd >= 0) close(fd);
    free(dir);
    return r;
}

/* copy_file: copy src to a new file dst (O_EXCL) and fsync it. */
static int copy_file(const char *src, const char *dst)
{
    char *text = NULL;
    size_t len = 0;
    int r = file_read_all(src, (size_t)-1 / 2, &text, &len);
    if (r < 0) return r;
    int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || write_all(fd, text, len) < 0 || fsync(fd) < 0) {
        log_err("mailbox_io_error", "call=write path=%s errno=%s", log_quote(dst), strerror(errno));
        r = CF_E_IO;
    }
    if (fd >= 0) close(fd);
    free(text);
    return r;
}

int mailbox_rename(const char *old_partition, const char *new_partition, const char *uniqueid,
                   const char *new_name)
{
    if (!partition_uniqueid_valid(uniqueid)) return CF_E_NOTFOUND;
    if (!new_name || strpbrk(new_name, "\r\n")) return CF_E_PARSE;
    char *odir = partition_mailbox_dir(old_partition, uniqueid);
    char *ndir = partition_mailbox_dir(new_partition, uniqueid);
    char *nparent = xstrndup(ndir, strlen(ndir) - UNIQUEID_LEN - 1);
    int fd = -1, made = 0;
    DIR *d = NULL;
    struct mbheader h;
    mbheader_init(&h);
    int r = mbheader_read(odir, &h);
    if (r < 0) goto done;
    if ((r = open_lock_file(odir, &fd)) < 0) goto done;
    while (flock(fd, LOCK_EX) < 0 && errno == EINTR) {}
    free(h.name);
    h.name = xstrdup(new_name);
    if (!strcmp(odir, ndir)) {
        r = mbheader_write(odir, &h);
        goto done;
    }
    if ((r = mkdir_p(nparent, 0700)) < 0) goto done;
    if (mkdir(ndir, 0700) < 0) {
        r = errno == EEXIST ? CF_E_EXISTS : CF_E_IO;
        goto done;
    }
    made = 1;
    if (!(d = opendir(odir))) {
        r = CF_E_IO;
        goto done;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *fn = de->d_name;
        if (!strcmp(fn, ".") || !strcmp(fn, "..") || !strcmp(fn, LOCK_FILE) ||
            !strcmp(fn, MBHEADER_FILE) || strstr(fn, ".tmp."))
            continue;
        char *s = xasprintf("%s/%s", odir, fn), *t = xasprintf("%s/%s", ndir, fn);
        size_t fl = strlen(fn);
        int is_msg = fl > 1 && fn[fl - 1] == '.';
        /* Messages may share the inode (a link is atomic and durable with the directory);
         * index and cache are private copies, as they are written in place. */
        if (!is_msg || link(s, t) < 0) r = copy_file(s, t);
        free(s);
        free(t);
        if (r < 0) goto done;
    }
    if ((r = fsync_dir(ndir, 1)) < 0) goto done;
    if ((r = mbheader_write(ndir, &h)) < 0) goto done;   /* the new copy is now complete */
    if ((r = fsync_dir(nparent, 1)) < 0) goto done;
    if ((r = fsync_dir(nparent, 0)) < 0) goto done;   /* xx/ when mkdir_p just made it */
    made = 0;
    r = remove_dir(odir);
done:
    if (d) closedir(d);
    if (made) remove_dir(ndir);
    if (fd >= 0) close(fd);
    mbheader_fini(&h);
    free(odir);
    free(ndir);
    free(nparent);
    return r;
}
