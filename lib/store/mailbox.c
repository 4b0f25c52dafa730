/* mailbox.c: one mailbox on disk: the index mapping, locking, refresh, open/close and the
 * session view with its sync. Reading is in mailbox-read.c, append and copy in
 * mailbox-append.c, store/expunge/repack in mailbox-change.c, the directory in mailbox-dir.c. */
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

int (*mailbox_fault_hook)(const char *point);
int (*mailbox_boot_id_hook)(uint8_t id[16]);
uint64_t mailbox_recounts;
struct mailbox_sync_stats mailbox_sync_stats;

/* mbi_fault_point: 0, or the errno a crash test wants the operation at point to fail with. */
int mbi_fault_point(const char *point)
{
    return mailbox_fault_hook ? mailbox_fault_hook(point) : 0;
}

int mbi_corrupt(struct mailbox *mb, const char *what, uint32_t uid)
{
    log_err("mailbox_corrupt", "mbox=%s uniqueid=%s what=%s uid=%u action=reconstruct",
            log_quote(mb->name), mb->uniqueid, what, (unsigned)uid);
    return CF_E_CORRUPT;
}

int mbi_io_error(struct mailbox *mb, const char *call, const char *path)
{
    int e = errno;
    log_err("mailbox_io_error", "mbox=%s call=%s path=%s errno=%s", log_quote(mb->name), call,
            log_quote(path), strerror(e));
    errno = e;
    return CF_E_IO;
}

int mbi_do_fsync(struct mailbox *mb, int fd, int data_only)
{
    if (mb->nofsync) return 0;
    if (data_only) mailbox_sync_stats.index++;
    else mailbox_sync_stats.file++;
    return data_only ? fdatasync(fd) : fsync(fd);
}

/* mbi_sync_dir: make the entries created (or linked) in the mailbox directory durable. A new
 * message file's contents are fsynced, but its name lives in the directory, and POSIX does not
 * order the directory's write before the index's: without this an acknowledged message could
 * come back after a power loss as a record without a file. 0 or CF_E_IO (logged). */
int mbi_sync_dir(struct mailbox *mb)
{
    if (mb->nofsync) return 0;
    if (mb->dir_fd < 0) {
        mb->dir_fd = open(mb->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (mb->dir_fd < 0) return mbi_io_error(mb, "open", mb->dir);
    }
    mailbox_sync_stats.dir++;
    if (fsync(mb->dir_fd) < 0) return mbi_io_error(mb, "fsync", mb->dir);
    return 0;
}

/* ---- index file mapping and locking ---- */

static void unmap_index(struct mailbox *mb)
{
    if (mb->map) munmap(mb->map, mb->map_len);
    mb->map = NULL;
    mb->map_len = 0;
}

/* map_to: make the mapping cover the index file, whose size is len (just read by fstat). */
static int map_to(struct mailbox *mb, size_t len)
{
    if (len == mb->map_len && mb->map) return 0;
    if (mb->map && len > mb->map_len) {
        /* grown (an append): extend the mapping, keeping the pages already mapped. A fresh
         * mapping would fault the header and tail pages in again after every commit, and
         * the unmap's page-table teardown is expensive on a virtual machine */
        void *p = mremap(mb->map, mb->map_len, len, MREMAP_MAYMOVE);
        if (p != MAP_FAILED) {
            mb->map = p;
            mb->map_len = len;
            return 0;
        }
    }
    unmap_index(mb);
    if (len < INDEX_HEADER_SIZE) return mbi_corrupt(mb, "index_short", 0);
    /* writable when the file is: STORE and EXPUNGE change records in place through it
     * (mailbox-change.c); everything else writes with pwrite */
    int prot = mb->index_rdonly ? PROT_READ : PROT_READ | PROT_WRITE;
    void *p = mmap(NULL, len, prot, MAP_SHARED, mb->index_fd, 0);
    if (p == MAP_FAILED) return mbi_io_error(mb, "mmap", mb->index_path);
    mb->map = p;
    mb->map_len = len;
    return 0;
}

/* map_refresh: make the mapping cover the whole index file. */
static int map_refresh(struct mailbox *mb)
{
    struct stat st;
    if (fstat(mb->index_fd, &st) < 0) return mbi_io_error(mb, "fstat", mb->index_path);
    return map_to(mb, (size_t)st.st_size);
}

static int vg_all(struct mailbox *mb);

static int open_index(struct mailbox *mb)
{
    /* a repack: a lazy view's groups are known only by their positions in the file being
     * left, whose records say which messages the view holds: read them all now */
    if (mb->vimplicit && mb->map && mb->index_fd >= 0) {
        int r = vg_all(mb);
        if (r < 0) return r;
    }
    if (mb->index_fd >= 0) close(mb->index_fd);
    unmap_index(mb);
    mb->chosen_commit = 0;
    mb->index_fd = open(mb->index_path, O_RDWR | O_CLOEXEC);
    mb->index_rdonly = 0;
    if (mb->index_fd < 0 && errno == EACCES) {
        mb->index_fd = open(mb->index_path, O_RDONLY | O_CLOEXEC);
        mb->index_rdonly = 1;
    }
    if (mb->index_fd < 0) {
        if (errno == ENOENT) return CF_E_NOTFOUND;
        return mbi_io_error(mb, "open", mb->index_path);
    }
    struct stat st;
    if (fstat(mb->index_fd, &st) < 0) return mbi_io_error(mb, "fstat", mb->index_path);
    mb->index_dev = st.st_dev;
    mb->index_ino = st.st_ino;
    return map_to(mb, (size_t)st.st_size);     /* the file just opened: no second fstat */
}


/* mbi_boot_id: this boot's id (the kernel's random/boot_id, a UUID, as 16 bytes) in id: 0, or
 * -1 when it cannot be known (then no verified marker or uid column is trusted or written).
 * Read once. */
int mbi_boot_id(uint8_t id[16])
{
    static uint8_t cached[16];
    static int state;   /* 0 not read yet, 1 known, -1 unknown */
    if (mailbox_boot_id_hook) return mailbox_boot_id_hook(id);
    if (!state) {
        state = -1;
        int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
        char t[64];
        ssize_t n = fd >= 0 ? read(fd, t, sizeof t - 1) : -1;
        if (fd >= 0) close(fd);
        int k = 0;
        for (ssize_t i = 0; i < n && k < 32; i++) {
            char ch = t[i];
            int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
            if (v < 0) continue;   /* the dashes, the newline */
            cached[k / 2] = (uint8_t)(k % 2 ? cached[k / 2] | v : v << 4);
            k++;
        }
        if (k == 32) state = 1;
    }
    if (state < 0) return -1;
    memcpy(id, cached, 16);
    return 0;
}

/* mbi_verified: 1 when the index holds a verified-counts marker (index.h) for mb->hdr, its
 * slot bytes as they are now, and this boot; else 0. */
int mbi_verified(const struct mailbox *mb)
{
    struct index_verified v;
    uint8_t id[16];
    if (index_verified_decode(mb->map + INDEX_VERIFIED_OFFSET, &v) < 0 || mbi_boot_id(id) < 0)
        return 0;
    return !memcmp(v.boot_id, id, sizeof id) && v.generation == mb->hdr.generation &&
           v.commit == mb->hdr.commit && v.slot_crc == index_slot_crc(mb->map, &mb->hdr);
}

/* mbi_write_verified: record that the records agree with mb->hdr, which the caller knows (it
 * recounted, or it has just committed under the write lock with counters kept from a verified
 * header). One pwrite, no fsync (the marker only counts within this boot). Failures are
 * ignored: without a marker the next open recounts. */
void mbi_write_verified(struct mailbox *mb)
{
    struct index_verified v;
    unsigned char raw[INDEX_VERIFIED_SIZE];
    if (mb->index_rdonly || mbi_boot_id(v.boot_id) < 0) return;
    v.generation = mb->hdr.generation;
    v.commit = mb->hdr.commit;
    v.slot_crc = index_slot_crc(mb->map, &mb->hdr);
    index_verified_encode(&v, raw);
    if (!memcmp(raw, mb->map + INDEX_VERIFIED_OFFSET, sizeof raw)) return;
    (void)mbi_pwrite_all(mb->index_fd, raw, sizeof raw, INDEX_VERIFIED_OFFSET);
}

/* check_counts: the chosen header's counters may lag behind its records when a STORE or
 * EXPUNGE died between rewriting records in place and writing its header (the intent marker
 * says so), or, after a power loss, whenever the kernel wrote records but not the header (the
 * full recount that open asks for finds that; it is skipped when the verified marker vouches
 * for the header in this boot, and forced, check_counts 2, after a torn commit). The records
 * are the truth: recount them and,
 * under the write lock, commit the repaired header (logged). Under a shared lock (or a
 * read-only index) mb->hdr gets the repaired counters in memory and 1 is returned: the caller
 * may take the write lock to store them. 0, 1 or <0. */
static int check_counts(struct mailbox *mb)
{
    int pending = index_intent_pending(mb->map, &mb->hdr);
    if (!pending && !mb->check_counts) return 0;
    /* the open's check: a marker says this header was verified in this boot (index.h) */
    if (!pending && mb->check_counts == 1 && mbi_verified(mb)) {
        mb->check_counts = 0;
        return 0;
    }
    /* not vouched for in this boot: a power loss may have dropped record writes whose STORE
     * the flag change log made durable; they come back before the records are counted */
    if (mb->check_counts) mbi_flaglog_replay(mb);
    struct index_header fixed;
    mailbox_recounts++;
    int diff = index_recount(mb->map, &mb->hdr, &fixed);
    if (diff < 0) return mbi_corrupt(mb, "index_keywords", 0);
    if (!diff && !pending) {
        mb->check_counts = 0;
        mbi_write_verified(mb);
        return 0;
    }
    if (mb->locked != LOCK_EX || mb->index_rdonly) {
        mb->hdr = fixed;   /* serve the true counters; a writer stores them */
        return 1;
    }
    struct index_header old = mb->hdr;
    fixed.prev_count = fixed.record_count;   /* adds no record: nothing for check_tail */
    mbi_uidcol_forget(mb);   /* what changed is not known: the uid column is rebuilt */
    int r = mbi_write_header(mb, &fixed);        /* commit old.commit + 1: the marker is spent */
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

/* mbi_refresh: under a lock, follow a repack (new inode), remap, read the current header and
 * check its counters (check_counts). 0, 1 (see check_counts) or <0. */
int mbi_refresh(struct mailbox *mb)
{
    struct stat st;
    if (stat(mb->index_path, &st) < 0) {
        if (errno == ENOENT) return CF_E_NOTFOUND;
        return mbi_io_error(mb, "stat", mb->index_path);
    }
    int r;
    if (mb->index_fd < 0 || st.st_ino != mb->index_ino || st.st_dev != mb->index_dev) {
        mbi_own_forget(mb);   /* another file (a repack, a reconstruct): none of ours */
        r = open_index(mb);
    } else
        r = map_refresh(mb);
    if (r < 0) return r;
    struct index_header h;
    /* the header picked last time, still the newest and the same bytes: its checks hold
     * (they cost a checksum per record of its commit: 500 after a MULTIAPPEND of 500) */
    if (index_header_unchanged(mb->map, mb->map_len, mb->chosen_commit, mb->chosen_crc, &h) == 0) {
        r = 0;
    } else {
        r = index_choose_header(mb->map, mb->map_len, &h, NULL);
        if (r < 0) return mbi_corrupt(mb, "index_header", 0);
        mb->chosen_commit = r == 0 ? h.commit : 0;
        mb->chosen_crc = index_slot_crc(mb->map, &h);
    }
    if (r == 1 && mb->check_counts) mb->check_counts = 2;   /* torn: trust no marker */
    mb->hdr_fallback = r == 1;
    if (r == 1) mbi_own_forget(mb);   /* a torn commit: the records are not what we wrote */
    if (r == 1 && h.commit != mb->hdr.commit)
        log_warn("mailbox_torn_commit", "mbox=%s uniqueid=%s commit=%llu action=%s",
                 log_quote(mb->name), mb->uniqueid, (unsigned long long)h.commit + 1,
                 "ignored (never acknowledged)");
    mb->hdr = h;
    return check_counts(mb);
}

/* mbi_lock: take the lock (LOCK_SH or LOCK_EX) and refresh. Returns 1 if taken (the caller
 * unlocks), 0 if a sufficient lock was already held, or <0. */
int mbi_lock(struct mailbox *mb, int op)
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
        return mbi_io_error(mb, "flock", mb->dir);
    }
    mb->locked = op;
    mb->lock_seq++;
    mbi_uidcol_forget(mb);   /* nothing of an earlier lock's commit that was not made */
    int r = mbi_refresh(mb);
    if (r == 1 && op == LOCK_SH) {
        /* The header needs a repair a shared lock cannot write. Take the write lock if nobody
         * holds the mailbox (never wait: this process may hold another shared lock on it),
         * repair, and come back to a shared lock; otherwise keep the repaired counters in
         * memory and leave the write to the next writer. */
        flock(mb->lock_fd, LOCK_UN);
        mb->locked = 0;
        if (flock(mb->lock_fd, LOCK_EX | LOCK_NB) == 0) {
            mb->locked = LOCK_EX;
            mb->lock_seq++;
            r = mbi_refresh(mb);
            flock(mb->lock_fd, LOCK_UN);
            mb->locked = 0;
            if (r < 0) return r;
        }
        while (flock(mb->lock_fd, op) < 0) {
            if (errno == EINTR) continue;
            return mbi_io_error(mb, "flock", mb->dir);
        }
        mb->locked = op;
        mb->lock_seq++;
        r = mbi_refresh(mb);
    }
    if (r < 0) {
        flock(mb->lock_fd, LOCK_UN);
        mb->locked = 0;
        return r;
    }
    return 1;
}

void mbi_unlock(struct mailbox *mb, int took)
{
    if (took <= 0) return;
    flock(mb->lock_fd, LOCK_UN);
    mb->locked = 0;
}

int mailbox_lock_shared(struct mailbox *mb)
{
    int r = mbi_lock(mb, LOCK_SH);
    return r < 0 ? r : 0;
}

void mailbox_unlock(struct mailbox *mb)
{
    mbi_unlock(mb, 1);
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

struct mailbox_recent_stats mailbox_recent_stats;

/* recent_lock: the mailbox's write lock for a claim, without the header refresh of mbi_lock:
 * the claim uses the handle's uidnext as of its last refresh, so it needs only the exclusion
 * (against other claims, and against a move copying the file). *took 1 when it was taken
 * here. 0, CF_E_INTERNAL (under a shared lock of this handle) or CF_E_IO. */
static int recent_lock(struct mailbox *mb, int *took)
{
    *took = 0;
    if (mb->locked == LOCK_EX) return 0;
    if (mb->locked) {
        log_err("mailbox_lock_misuse", "mbox=%s reason=%s", log_quote(mb->name),
                log_quote("recent claim under a shared lock"));
        return CF_E_INTERNAL;
    }
    while (flock(mb->lock_fd, LOCK_EX) < 0) {
        if (errno == EINTR) continue;
        return mbi_io_error(mb, "flock", mb->dir);
    }
    mb->locked = LOCK_EX;
    mb->lock_seq++;
    *took = 1;
    return 0;
}

static void recent_unlock(struct mailbox *mb, int took)
{
    if (!took) return;
    flock(mb->lock_fd, LOCK_UN);
    mb->locked = 0;
}

static void recent_forget(struct mailbox *mb)
{
    if (mb->recent_fd >= 0) close(mb->recent_fd);
    mb->recent_fd = -1;
}

int mailbox_claim_recent(struct mailbox *mb, int claim, uint32_t *first_r, uint32_t *end_r)
{
    char *path = xasprintf("%s/%s", mb->dir, RECENT_FILE);
    int r = 0, locked = 0, fd = -1;
    struct stat st;
    uint32_t mark;
    if (claim && mb->recent_fd >= 0) {
        /* The kept descriptor, while the path still names the file it is open on (removed or
         * replaced by another process: the long way, as the first claim). Nothing new since
         * the last claim (the mark only grows): no lock, as for a fresh open below. */
        if (stat(path, &st) == 0 && st.st_dev == mb->recent_dev && st.st_ino == mb->recent_ino) {
            fd = mb->recent_fd;
            mark = recent_read(mb, fd);
            if (mark >= mb->hdr.uidnext) {
                *first_r = *end_r = mark;
                goto out;
            }
            r = recent_lock(mb, &locked);
            if (r < 0) goto out;
            if (stat(path, &st) == 0 && st.st_dev == mb->recent_dev && st.st_ino == mb->recent_ino)
                goto claim;
            recent_unlock(mb, locked);
            locked = 0;
        }
        recent_forget(mb);
        fd = -1;
    }
    fd = open(path, (claim ? O_RDWR | O_CREAT : O_RDONLY) | O_CLOEXEC, 0600);
    if (fd >= 0) mailbox_recent_stats.opens++;
    if (fd < 0 && errno == ENOENT && !claim) {      /* never claimed: everything is recent */
        *first_r = 1;
        *end_r = mb->hdr.uidnext;
        goto out;
    }
    if (fd < 0) {
        r = mbi_io_error(mb, "open", path);
        goto out;
    }
    struct stat fst;   /* a claimer keeps it while the path names it (checked at each use) */
    if (claim && fstat(fd, &fst) == 0 && stat(path, &st) == 0 && st.st_dev == fst.st_dev &&
        st.st_ino == fst.st_ino) {
        mb->recent_fd = fd;
        mb->recent_dev = fst.st_dev;
        mb->recent_ino = fst.st_ino;
    }
    mark = recent_read(mb, fd);
    if (!claim || mark >= mb->hdr.uidnext) {        /* nothing new since the last claim */
        *first_r = mark;
        *end_r = claim || mark > mb->hdr.uidnext ? mark : mb->hdr.uidnext;
        goto out;
    }
    r = recent_lock(mb, &locked);
    if (r < 0) goto out;
claim:
    mark = recent_read(mb, fd);
    *first_r = mark;
    *end_r = mark;
    if (mark < mb->hdr.uidnext) {
        char b[16];
        int len = snprintf(b, sizeof b, "%010u\n", (unsigned)mb->hdr.uidnext);
        /* no fsync: after a crash at worst a few messages lose \Recent, which is harmless */
        if (pwrite(fd, b, (size_t)len, 0) != len) {
            r = mbi_io_error(mb, "pwrite", path);
            goto out;
        }
        *end_r = mb->hdr.uidnext;
    }
out:
    recent_unlock(mb, locked);
    if (fd >= 0 && fd != mb->recent_fd) close(fd);
    else if (r < 0 && fd >= 0) recent_forget(mb);
    free(path);
    return r;
}

/* mbi_find_pos: position of uid among the records of the current header, or -1. Uids are
 * strictly increasing, so a record at position g with uid ug bounds the search: uid can only
 * be within |uid - ug| positions of g. An interpolation search: each probe at the position
 * uid would have if the uids between the window's ends were evenly spread, then the window
 * cut to the positions uid can still have. Two or three probes for the nearly dense uids of
 * a mailbox (gaps from appends that lost a race, repacks), where the two guesses from the
 * first record before left a binary search of 20 probes at 1,000,000 messages, each a cache
 * miss in a 128 MB mapping (14% of a 1,000-message UID STORE). Binary search for the rest. */
long mbi_find_pos(const struct mailbox *mb, uint32_t uid)
{
    uint32_t lo = 0, hi = mb->hdr.record_count;
    for (int k = 0; k < 6 && hi - lo > 8; k++) {
        uint32_t ulo = index_record_uid(mb->map + index_record_offset(lo));
        if (uid <= ulo) return uid == ulo ? (long)lo : -1;
        uint32_t uhi = index_record_uid(mb->map + index_record_offset(hi - 1));
        if (uid >= uhi) return uid == uhi ? (long)(hi - 1) : -1;
        /* ulo < uid < uhi: strictly inside */
        uint64_t g = lo + (uint64_t)(uid - ulo) * (hi - 1 - lo) / (uhi - ulo);
        if (g <= lo) g = lo + 1;
        if (g >= hi - 1) g = hi - 2;
        uint32_t ug = index_record_uid(mb->map + index_record_offset((uint32_t)g));
        if (ug == uid) return (long)g;
        if (ug < uid) {
            lo = (uint32_t)g + 1;
            if (g + 1 + (uint64_t)(uid - ug) < hi) hi = (uint32_t)(g + 1 + (uid - ug));
        } else {
            hi = (uint32_t)g;
            if (g > (uint64_t)(ug - uid) && g - (ug - uid) > lo) lo = (uint32_t)(g - (ug - uid));
        }
    }
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

int mbi_read_record(struct mailbox *mb, uint32_t pos, struct index_record *r)
{
    if (index_record_decode(mb->map + index_record_offset(pos), r) < 0)
        return mbi_corrupt(mb, "index_record", index_record_uid(mb->map + index_record_offset(pos)));
    return 0;
}

/* mbi_index_sync: fdatasync the index, or fail as a crash test asks at point. */
int mbi_index_sync(struct mailbox *mb, const char *point)
{
    int e = mbi_fault_point(point);
    if (e) {
        errno = e;
        return -1;
    }
    return mbi_do_fsync(mb, mb->index_fd, 1);
}

/* mbi_write_header: the commit. Writes nh (with the next commit number) into its slot and flushes
 * the index: records and keyword bytes written before reach the disk with it. When the write
 * or the flush fails, the slot gets its previous bytes back before anything else can happen
 * under our lock: other sessions read the slot through the page cache, and must never adopt a
 * commit that was refused (its message files are about to be removed). The previous bytes are
 * then flushed; if that fails too, what the disk holds is unknown, mb->commit_uncertain is set
 * and the caller must keep the files this commit refers to (above the committed uidnext they
 * are removed later by a writer that has flushed the index first: remove_uncommitted). 0 or
 * CF_E_IO (logged). */
static void uidcol_create(struct mailbox *mb);

int mbi_write_header(struct mailbox *mb, struct index_header *nh)
{
    return mbi_write_header_with(mb, nh, NULL, NULL, NULL);
}

int mbi_write_header_with(struct mailbox *mb, struct index_header *nh,
                          int (*flush)(struct mailbox *, const struct index_header *, void *),
                          void *arg, const char *what)
{
    unsigned char slot[INDEX_SLOT_SIZE], prev[INDEX_SLOT_SIZE];
    nh->commit = mb->hdr.commit + 1;
    off_t off = (off_t)index_slot_offset(nh->commit);
    index_header_encode(nh, slot);
    memcpy(prev, mb->map + off, sizeof prev);   /* the mapping always covers the header area */
    mb->commit_uncertain = 0;
    /* the uid column may be brought forward only from a header it could name */
    struct index_header old = mb->hdr;
    uint32_t old_crc = index_slot_crc(mb->map, &mb->hdr);
    int old_trusted = !mb->hdr_fallback && !mb->check_counts && mbi_verified(mb);
    mbi_fault_point("commit");
    int r;
    if (pwrite(mb->index_fd, slot, sizeof slot, off) != (ssize_t)sizeof slot) {
        r = mbi_io_error(mb, "pwrite", mb->index_path);
        goto undo;
    }
    if (flush ? flush(mb, nh, arg) < 0 : mbi_index_sync(mb, "index_sync") < 0) {
        r = mbi_io_error(mb, "fdatasync", flush ? what : mb->index_path);
        goto undo;
    }
    mb->hdr = *nh;
    r = map_refresh(mb);
    /* every lock since this handle's open checked the counters (open recounted or found
     * them verified, later locks looked for pending intents): the commit keeps them right */
    if (r == 0) mbi_write_verified(mb);
    if (r == 0) mbi_own_note(mb, &old, old_crc);
    else mbi_own_forget(mb);
    if (r == 0) mbi_uidcol_commit(mb, &old, old_crc, old_trusted);
    else mbi_uidcol_forget(mb);
    /* the commit that takes the mailbox to the size that has a column makes it (once) */
    if (r == 0 && old.record_count < uidcol_min_records &&
        mb->hdr.record_count >= uidcol_min_records)
        uidcol_create(mb);
    return r;
undo:
    mbi_own_forget(mb);
    mbi_uidcol_forget(mb);
    if (pwrite(mb->index_fd, prev, sizeof prev, off) != (ssize_t)sizeof prev ||
        mbi_index_sync(mb, "restore_sync") < 0) {
        mb->commit_uncertain = 1;
        log_err("mailbox_commit_uncertain", "mbox=%s uniqueid=%s commit=%llu errno=%s "
                "action=%s", log_quote(mb->name), mb->uniqueid, (unsigned long long)nh->commit,
                strerror(errno), "files kept until the index can be flushed");
    }
    return r;
}

void mbi_own_forget(struct mailbox *mb)
{
    mb->own_valid = 0;
    mb->own_n = 0;
    mb->own_added = UINT32_MAX;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

void mbi_own_note(struct mailbox *mb, const struct index_header *old, uint32_t old_crc)
{
    const struct index_header *h = &mb->hdr;
    /* Records added (an APPEND, a COPY into this mailbox) are kept as the position of the
     * first of them (own_added), so that the sync after the session's own APPEND reads
     * neither the uid column nor its summary (13 calls per APPEND on a big mailbox) */
    if (h->generation != old->generation || h->record_count < old->record_count) {
        mbi_own_forget(mb);
        return;
    }
    if (!mb->own_valid || mb->own_generation != old->generation ||
        mb->own_commit != old->commit || mb->own_crc != old_crc ||
        mb->own_records != old->record_count) {
        /* another writer's commit came between (or none of ours before): start from old */
        mb->own_n = 0;
        mb->own_since = old->highestmodseq;
        mb->own_added = UINT32_MAX;
    }
    /* what the view has taken in is never asked for again: the list stays this commit's */
    uint64_t seen = mb->view && mb->view_generation == h->generation ? mb->view_modseq : 0;
    size_t k = 0;
    if (seen > mb->own_since) {
        for (size_t i = 0; i < mb->own_n; i++)
            if (mb->own_mods[i] > seen) {
                mb->own_blocks[k] = mb->own_blocks[i];
                mb->own_mods[k++] = mb->own_mods[i];
            }
        mb->own_n = k;
        mb->own_since = seen;
        if (mb->own_added_mod <= seen) mb->own_added = UINT32_MAX;
    }
    /* after what the view has seen is dropped: this commit's records are new to it */
    if (h->record_count > old->record_count) {
        if (old->record_count < mb->own_added) mb->own_added = old->record_count;
        mb->own_added_mod = h->highestmodseq;
    }
    /* this commit's blocks (sorted, repeats dropped), merged into the list */
    size_t nnew = 0;
    uint32_t *nb = xreallocarray(NULL, mb->col_npos ? mb->col_npos : 1, sizeof *nb);
    for (size_t i = 0; i < mb->col_npos; i++) nb[nnew++] = mb->col_pos[i] / MSUM_BLOCK;
    qsort(nb, nnew, sizeof *nb, cmp_u32);
    size_t total = mb->own_n + nnew;
    uint32_t *mb_blocks = xreallocarray(NULL, total ? total : 1, sizeof *mb_blocks);
    uint64_t *mb_mods = xreallocarray(NULL, total ? total : 1, sizeof *mb_mods);
    size_t a = 0, b = 0, n = 0;
    while (a < mb->own_n || b < nnew) {
        uint32_t blk;
        uint64_t mod;
        if (b == nnew || (a < mb->own_n && mb->own_blocks[a] < nb[b])) {
            blk = mb->own_blocks[a];
            mod = mb->own_mods[a++];
        } else {
            blk = nb[b++];
            mod = h->highestmodseq;
        }
        if (n && mb_blocks[n - 1] == blk) {
            if (mod > mb_mods[n - 1]) mb_mods[n - 1] = mod;
            continue;
        }
        mb_blocks[n] = blk;
        mb_mods[n++] = mod;
    }
    free(nb);
    free(mb->own_blocks);
    free(mb->own_mods);
    mb->own_blocks = mb_blocks;
    mb->own_mods = mb_mods;
    mb->own_n = n;
    mb->own_a = total;
    mb->own_generation = h->generation;
    mb->own_commit = h->commit;
    mb->own_crc = index_slot_crc(mb->map, h);
    mb->own_records = h->record_count;
    mb->own_valid = 1;
}

int mbi_own_blocks(struct mailbox *mb, uint64_t since, uint32_t below, uint32_t **blocks_r,
                   size_t *n_r)
{
    const struct index_header *h = &mb->hdr;
    if (!mb->own_valid || since < mb->own_since || mb->own_generation != h->generation ||
        mb->own_commit != h->commit || mb->own_records != h->record_count ||
        mb->own_crc != index_slot_crc(mb->map, h))
        return 0;
    /* the blocks of the records added since, from the first of them up to below */
    uint32_t a0 = 1, a1 = 0;
    if (below > h->record_count) below = h->record_count;
    if (mb->own_added < below && mb->own_added_mod > since) {
        a0 = mb->own_added / MSUM_BLOCK;
        a1 = (below - 1) / MSUM_BLOCK;
    }
    size_t cap = mb->own_n + (a1 >= a0 ? a1 - a0 + 1 : 0);
    *blocks_r = xreallocarray(NULL, cap ? cap : 1, sizeof **blocks_r);
    size_t n = 0;
    for (size_t i = 0; i < mb->own_n; i++) {
        uint32_t b = mb->own_blocks[i];
        if (a1 >= a0 && b >= a0) break;   /* the rest are among the added ones' */
        if (mb->own_mods[i] > since) (*blocks_r)[n++] = b;
    }
    for (uint32_t b = a0; a1 >= a0 && b <= a1; b++) (*blocks_r)[n++] = b;
    if (a1 >= a0)   /* in-place changes past the added range (none below `below` matter) */
        for (size_t i = 0; i < mb->own_n; i++)
            if (mb->own_blocks[i] > a1 && mb->own_mods[i] > since)
                (*blocks_r)[n++] = mb->own_blocks[i];
    *n_r = n;
    return 1;
}

int mbi_pwrite_all(int fd, const void *p, size_t n, uint64_t off)
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

/* mbi_write_intent: called before a commit's first in-place record write (STORE, EXPUNGE): the
 * marker naming that commit (index.h), so the next lock notices a crash before the header
 * write and recounts. One pwrite, no fsync: a process crash keeps the order of the writes; for
 * a power loss, which does not, open recounts anyway. */
int mbi_write_intent(struct mailbox *mb)
{
    struct index_intent it = { mb->hdr.generation, mb->hdr.commit + 1 };
    unsigned char raw[INDEX_INTENT_SIZE];
    index_intent_encode(&it, raw);
    if (mbi_pwrite_all(mb->index_fd, raw, sizeof raw, INDEX_INTENT_OFFSET) < 0)
        return mbi_io_error(mb, "pwrite", mb->index_path);
    return 0;
}

/* ---- keywords ---- */

/* mbi_keyword_get: the bit of keyword name (ASCII case-insensitive), creating it in nh's keyword
 * area when create is set (bytes written now, counted only when nh is committed). Returns the
 * bit, CF_E_NOTFOUND, CF_E_LIMIT or CF_E_IO. */
int mbi_keyword_get(struct mailbox *mb, struct index_header *nh, const char *name, int create)
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
    if (mbi_pwrite_all(mb->index_fd, name, nlen + 1, INDEX_KEYWORD_OFFSET + nh->keyword_bytes) < 0)
        return mbi_io_error(mb, "pwrite", mb->index_path);
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

void mbi_count_record(struct index_header *h, const struct index_record *r, int add)
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

/* ---- the lazy view ---- */

static void vg_free(struct mailbox *mb)
{
    for (uint32_t g = 0; g < mb->vg_n; g++) free(mb->vg_uids[g]);
    free(mb->vg_count);
    free(mb->vg_last);
    free(mb->vg_pre);
    free(mb->vg_uids);
    mb->vg_count = mb->vg_last = mb->vg_pre = NULL;
    mb->vg_uids = NULL;
    mb->vg_n = mb->vg_a = 0;
    mb->vimplicit = 0;
    free(mb->vg_held_pos);
    free(mb->vg_held_uid);
    mb->vg_held_pos = mb->vg_held_uid = NULL;
    mb->vg_nheld = mb->vg_aheld = 0;
}

/* vg_grow: groups [0, n) exist (new ones empty). */
static void vg_grow(struct mailbox *mb, uint32_t n)
{
    if (n <= mb->vg_n) return;
    if (n > mb->vg_a) {
        uint32_t a = mb->vg_a ? mb->vg_a : 16;
        while (a < n) a *= 2;
        mb->vg_count = xreallocarray(mb->vg_count, a, sizeof *mb->vg_count);
        mb->vg_last = xreallocarray(mb->vg_last, a, sizeof *mb->vg_last);
        mb->vg_pre = xreallocarray(mb->vg_pre, a, sizeof *mb->vg_pre);
        mb->vg_uids = xreallocarray(mb->vg_uids, a, sizeof *mb->vg_uids);
        mb->vg_a = a;
    }
    for (uint32_t g = mb->vg_n; g < n; g++) {
        mb->vg_count[g] = mb->vg_last[g] = 0;
        mb->vg_uids[g] = NULL;
    }
    mb->vg_n = n;
    mb->vg_dirty = 1;
}

/* vg_prefix: vg_pre[g] = the messages of the groups before g (one pass over the groups:
 * 977 at 1,000,000 messages). */
static void vg_prefix(struct mailbox *mb)
{
    if (!mb->vg_dirty) return;
    uint32_t s = 0;
    for (uint32_t g = 0; g < mb->vg_n; g++) {
        mb->vg_pre[g] = s;
        s += mb->vg_count[g];
    }
    mb->vg_dirty = 0;
}

/* vg_load: under a lock on the view's index file, the messages of group g from its records
 * (one pread of 128 KiB at most). 0, CF_E_IO or CF_E_CORRUPT (the records do not hold the
 * count the view has: logged). */
static int vg_load(struct mailbox *mb, uint32_t g)
{
    if (mb->vg_uids[g]) return 0;
    uint32_t first = g * UIDSUM_RECORDS, end = first + UIDSUM_RECORDS;
    if (end > mb->view_records) end = mb->view_records;
    size_t want = (size_t)(end - first) * INDEX_RECORD_SIZE;
    unsigned char *buf = NULL;
    uint32_t *uids = xreallocarray(NULL, mb->vg_count[g] + 1, sizeof *uids);
    uint32_t n = 0;
    int r = 0;
    /* the column's blocks when it names the header (a fraction of the records' bytes) */
    if (mb->hdr.generation == mb->view_generation &&
        mbi_uidcol_group(mb, g, end, mb->view_modseq, uids, mb->vg_count[g] + 1, &n))
        goto counted;
    buf = xmalloc(want ? want : 1);
    if (want && pread(mb->index_fd, buf, want, (off_t)index_record_offset(first)) != (ssize_t)want) {
        r = mbi_io_error(mb, "pread", mb->index_path);
        goto out;
    }
    for (uint32_t i = 0; i < end - first; i++) {
        const unsigned char *raw = buf + (size_t)i * INDEX_RECORD_SIZE;
        /* in the view: live at view_modseq (see struct mailbox) */
        if ((le_get32(raw + 4) & FLAG_EXPUNGED) && le_get64(raw + 32) <= mb->view_modseq)
            continue;
        if (n == mb->vg_count[g]) {
            n++;
            break;
        }
        uids[n++] = index_record_uid(raw);
    }
counted:
    if (n != mb->vg_count[g]) {
        r = mbi_corrupt(mb, "view_group", first);
        goto out;
    }
    mb->vg_uids[g] = uids;
    uids = NULL;
    uidcol_stats.group_loads++;
out:
    free(buf);
    free(uids);
    return r;
}

/* vg_all: under a lock on the view's index file, make a lazy view an array (every group
 * read): for what only the array does (an expunge held back, a repack, no summary). */
static int vg_all(struct mailbox *mb)
{
    if (!mb->vimplicit) return 0;
    for (uint32_t g = 0; g < mb->vg_n; g++) {
        int r = vg_load(mb, g);
        if (r < 0) return r;
    }
    uint32_t *v = xreallocarray(NULL, mb->nview ? mb->nview : 1, sizeof *v), k = 0;
    for (uint32_t g = 0; g < mb->vg_n; g++) {
        memcpy(v + k, mb->vg_uids[g], (size_t)mb->vg_count[g] * sizeof *v);
        k += mb->vg_count[g];
    }
    free(mb->view);
    mb->view = v;
    mb->nview = k;
    mb->aview = k ? k : 1;
    vg_free(mb);   /* held expunges stay in the array, expunge_pending set: it walks */
    return 0;
}

/* ---- open / close ---- */

struct mailbox *mbi_mailbox_alloc(const char *partition, const char *uniqueid, const char *name)
{
    struct mailbox *mb = xzmalloc(sizeof *mb);
    mb->partition = xstrdup(partition);
    mb->uniqueid = xstrdup(uniqueid);
    mb->name = xstrdup(name ? name : uniqueid);
    mb->dir = partition_mailbox_dir(partition, uniqueid);
    mb->index_path = xasprintf("%s/%s", mb->dir, INDEX_FILE);
    mb->lock_fd = mb->index_fd = mb->cache_fd = mb->dir_fd = mb->recent_fd = -1;
    mb->colf.fd = mb->sumf.fd = -1;
    mb->own_added = UINT32_MAX;
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
    if (mb->recent_fd >= 0) close(mb->recent_fd);
    if (mb->sync_map) munmap(mb->sync_map, sizeof *mb->sync_map);
    mbi_keyfiles_close(mb);
    mbi_colfiles_close(mb);
    if (mb->lock_fd >= 0) close(mb->lock_fd);  /* drops any lock */
    strarr_fini(&mb->keywords);
    vg_free(mb);
    free(mb->view);
    free(mb->msum);
    free(mb->col_pos);
    free(mb->col_old);
    free(mb->own_blocks);
    free(mb->own_mods);
    free(mb->partition);
    free(mb->uniqueid);
    free(mb->name);
    free(mb->dir);
    free(mb->index_path);
    free(mb);
    *pmb = NULL;
}

int mailbox_target_check(struct mailbox *mb, const char *name)
{
    struct stat a;
    if (!mb->lock_ino) {
        if (fstat(mb->lock_fd, &a) < 0) return CF_E_NOTFOUND;
        mb->lock_dev = a.st_dev;
        mb->lock_ino = a.st_ino;
    }
    char *path = xasprintf("%s/%s", mb->dir, LOCK_FILE);
    int same = stat(path, &a) == 0 && a.st_dev == mb->lock_dev && a.st_ino == mb->lock_ino;
    free(path);
    if (!same) return CF_E_NOTFOUND;
    if (name && strcmp(name, mb->name) != 0) {
        free(mb->name);
        mb->name = xstrdup(name);
    }
    return 0;
}

int mbi_open_lock_file(const char *dir, int *fd_r)
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
    if (mb->cache_fd < 0) r = mbi_io_error(mb, "open", path);
    free(path);
    return r;
}

/* mbi_cache_end: where the next cache record goes (the end of the file), writing the cache file
 * header first if the file is empty or its header damaged. */
int mbi_cache_end(struct mailbox *mb, uint64_t *end_r)
{
    struct stat st;
    unsigned char head[CACHE_HEADER_SIZE];
    if (fstat(mb->cache_fd, &st) < 0) return mbi_io_error(mb, "fstat", "cache");
    if (st.st_size >= CACHE_HEADER_SIZE &&
        pread(mb->cache_fd, head, sizeof head, 0) == (ssize_t)sizeof head &&
        cache_header_check(head, sizeof head) == 0) {
        *end_r = (uint64_t)st.st_size;
        return 0;
    }
    if (st.st_size > 0) mbi_corrupt(mb, "cache_header", 0);
    cache_header_encode(head);
    if (ftruncate(mb->cache_fd, 0) < 0 || mbi_pwrite_all(mb->cache_fd, head, sizeof head, 0) < 0)
        return mbi_io_error(mb, "write", "cache");
    *end_r = CACHE_HEADER_SIZE;
    return 0;
}

static int view_update(struct mailbox *mb, unsigned flags, struct mailbox_changes *ch);
static void note_first_unseen(struct mailbox *mb);

/* open_mailbox: mailbox_open, with the view built (view 1), and its first unseen message
 * noted (view 2: mailbox_open_select), or not (view 0: mailbox_open_target). */
static int open_mailbox(const char *partition, const char *uniqueid, const char *name, int view,
                        struct mailbox **mb_r)
{
    *mb_r = NULL;
    if (!partition_uniqueid_valid(uniqueid)) return CF_E_NOTFOUND;
    struct mailbox *mb = mbi_mailbox_alloc(partition, uniqueid, name);
    struct mailbox_changes ch;
    mailbox_changes_init(&ch);
    int r = mbi_open_lock_file(mb->dir, &mb->lock_fd);
    if (r < 0) goto fail;
    r = open_cache(mb);
    if (r < 0) goto fail;
    mb->check_counts = 1;   /* one recount per open, unless the verified marker vouches */
    int took = mbi_lock(mb, LOCK_SH);
    if (took < 0) {
        r = took;
        goto fail;
    }
    /* the view reads every record: a handle that only writes (a delivery, an APPEND or
     * COPY target) skips it, so that its cost does not grow with the mailbox */
    r = view ? view_update(mb, 0, &ch) : 0;
    if (r == 0 && view == 2) note_first_unseen(mb);
    mbi_unlock(mb, took);
    if (r < 0) goto fail;
    mailbox_changes_fini(&ch);
    *mb_r = mb;
    return 0;
fail:
    mailbox_changes_fini(&ch);
    mailbox_close(&mb);
    return r;
}

int mailbox_open(const char *partition, const char *uniqueid, const char *name,
                 struct mailbox **mb_r)
{
    return open_mailbox(partition, uniqueid, name, 1, mb_r);
}

int mailbox_open_select(const char *partition, const char *uniqueid, const char *name,
                        struct mailbox **mb_r)
{
    return open_mailbox(partition, uniqueid, name, 2, mb_r);
}

int mailbox_open_target(const char *partition, const char *uniqueid, const char *name,
                        struct mailbox **mb_r)
{
    return open_mailbox(partition, uniqueid, name, 0, mb_r);
}

int mailbox_reuse(struct mailbox *mb, const char *partition, const char *uniqueid,
                  const char *name, int unseen)
{
    if (strcmp(mb->uniqueid, uniqueid) != 0 || strcmp(mb->partition, partition) != 0)
        return CF_E_NOTFOUND;
    free(mb->name);
    mb->name = xstrdup(name ? name : uniqueid);
    struct mailbox_changes ch;
    mailbox_changes_init(&ch);
    int took = mbi_lock(mb, LOCK_SH);
    if (took < 0) return took;
    if (mb->hdr.generation != mb->view_generation) {
        /* a repack: build the view afresh, as an open would */
        vg_free(mb);
        mb->nview = 0;
        mb->view_maxuid = 0;
    }
    int r = view_update(mb, 0, &ch);
    if (r == 0 && unseen) note_first_unseen(mb);
    mbi_unlock(mb, took);
    mailbox_changes_fini(&ch);
    return r;
}

void mailbox_set_nofsync(struct mailbox *mb, int on) { mb->nofsync = on; }
const char *mailbox_uniqueid(const struct mailbox *mb) { return mb->uniqueid; }
const char *mailbox_dir(const struct mailbox *mb) { return mb->dir; }
const char *mailbox_partition(const struct mailbox *mb) { return mb->partition; }
const struct index_header *mailbox_header(const struct mailbox *mb) { return &mb->hdr; }
uint32_t mailbox_count(const struct mailbox *mb) { return mb->nview; }
int mailbox_view_lazy(const struct mailbox *mb) { return mb->vimplicit; }

/* vg_ensure: group g of a lazy view read, under the shared lock when none is held. 1, 0 when
 * the view stopped being lazy meanwhile (the lock's refresh met a repack: look again in the
 * array), or <0. */
static int vg_ensure(struct mailbox *mb, uint32_t g)
{
    if (mb->vg_uids[g]) return 1;
    int took = mbi_lock(mb, LOCK_SH);
    if (took < 0) return took;
    int r = 0;
    if (mb->vimplicit) {
        r = vg_load(mb, g);
        if (r == 0) r = 1;
    }
    mbi_unlock(mb, took);
    return r;
}

/* The lookups take a const handle: reading a lazy view's group fills its cache, which
 * changes nothing the caller can see (the numbers are the same either way). */
uint32_t mailbox_uid(const struct mailbox *cmb, uint32_t msgno)
{
    if (msgno < 1 || msgno > cmb->nview) return 0;
    if (!cmb->vimplicit) return cmb->view[msgno - 1];
    struct mailbox *mb = (struct mailbox *)cmb;
    vg_prefix(mb);
    uint32_t lo = 0, hi = mb->vg_n;   /* the last group with fewer messages before it */
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (mb->vg_pre[mid] < msgno) lo = mid;
        else hi = mid;
    }
    int r = vg_ensure(mb, lo);
    if (r == 0) return mailbox_uid(mb, msgno);
    if (r < 0) return 0;
    return mb->vg_uids[lo][msgno - 1 - mb->vg_pre[lo]];
}

/* vg_find: the index of uid among group g's (read) messages, or -1. */
static long vg_find(const struct mailbox *mb, uint32_t g, uint32_t uid)
{
    const uint32_t *u = mb->vg_uids[g];
    uint32_t lo = 0, hi = mb->vg_count[g];
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (u[mid] == uid) return (long)mid;
        if (u[mid] < uid) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

uint32_t mailbox_msgno(const struct mailbox *cmb, uint32_t uid)
{
    if (cmb->vimplicit) {
        struct mailbox *mb = (struct mailbox *)cmb;
        if (!uid || uid > mb->view_maxuid) return 0;
        uint32_t g = 0, hi = mb->vg_n;   /* the first group whose last record is >= uid */
        while (g < hi) {
            uint32_t mid = g + (hi - g) / 2;
            if (mb->vg_last[mid] < uid) g = mid + 1;
            else hi = mid;
        }
        if (g == mb->vg_n || !mb->vg_count[g]) return 0;
        int r = vg_ensure(mb, g);
        if (r == 0) return mailbox_msgno(mb, uid);
        if (r < 0) return 0;
        long i = vg_find(mb, g, uid);
        if (i < 0) return 0;
        vg_prefix(mb);
        return mb->vg_pre[g] + (uint32_t)i + 1;
    }
    const struct mailbox *mb = cmb;
    uint32_t lo = 0, hi = mb->nview;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (mb->view[mid] == uid) return mid + 1;
        if (mb->view[mid] < uid) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

uint32_t mailbox_msgno_ge(const struct mailbox *cmb, uint64_t uid)
{
    if (cmb->vimplicit) {
        struct mailbox *mb = (struct mailbox *)cmb;
        for (;;) {
            uint32_t g = 0, hi = mb->vg_n;   /* the first group whose last record is >= uid */
            while (g < hi) {
                uint32_t mid = g + (hi - g) / 2;
                if (mb->vg_last[mid] < uid) g = mid + 1;
                else hi = mid;
            }
            while (g < mb->vg_n && !mb->vg_count[g]) g++;   /* (its messages are all gone) */
            if (g == mb->vg_n) return mb->nview + 1;
            int r = vg_ensure(mb, g);
            if (r == 0) break;   /* no longer lazy: the array below */
            if (r < 0) return mb->nview + 1;
            const uint32_t *u = mb->vg_uids[g];
            uint32_t lo = 0, top = mb->vg_count[g];
            while (lo < top) {
                uint32_t mid = lo + (top - lo) / 2;
                if (u[mid] < uid) lo = mid + 1;
                else top = mid;
            }
            vg_prefix(mb);
            /* past the group's messages (its last records gone): the next group's first */
            return mb->vg_pre[g] + lo + 1;
        }
    }
    uint32_t lo = 0, hi = cmb->nview;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (cmb->view[mid] < uid) lo = mid + 1;
        else hi = mid;
    }
    return lo + 1;
}

void mailbox_view_state(const struct mailbox *mb, uint32_t *maxuid_r, uint64_t *modseq_r)
{
    *maxuid_r = mb->view_maxuid;
    *modseq_r = mb->view_modseq;
}

void mailbox_view_restore(struct mailbox *mb, uint32_t *uids, uint32_t n, uint32_t maxuid,
                          uint64_t modseq)
{
    vg_free(mb);
    free(mb->view);
    mb->view = uids ? uids : xmalloc(sizeof *mb->view);   /* non-NULL: the view is built */
    mb->nview = n;
    mb->aview = n ? n : 1;
    mb->view_maxuid = maxuid;
    mb->view_modseq = modseq;
    /* no generation and no record count match: the next sync compares view and records */
    mb->view_generation = 0;
    mb->view_records = 0;
    mb->expunge_pending = 0;
    mb->first_unseen = 0;
    mb->first_unseen_modseq = 0;
}

/* ---- sync ---- */

void mailbox_changes_init(struct mailbox_changes *c) { memset(c, 0, sizeof *c); }

void mailbox_changes_fini(struct mailbox_changes *c)
{
    free(c->expunged_msgnos);
    free(c->expunged_uids);
    free(c->changed_uids);
    free(c->changed_recs);
    memset(c, 0, sizeof *c);
}

void mbi_push_u32(uint32_t **v, size_t *n, size_t *alloc, uint32_t x)
{
    if (*n == *alloc) {
        *alloc = *alloc ? *alloc * 2 : 16;
        *v = xreallocarray(*v, *alloc, sizeof **v);
    }
    (*v)[(*n)++] = x;
}

uint64_t *mbi_msum_begin(struct mailbox *mb)
{
    size_t n = (mb->hdr.record_count + MSUM_BLOCK - 1) / MSUM_BLOCK;
    return xzmalloc((n ? n : 1) * sizeof(uint64_t));
}

void mbi_msum_end(struct mailbox *mb, uint64_t *msum)
{
    free(mb->msum);
    mb->msum = msum;
    mb->msum_records = mb->hdr.record_count;
    mb->msum_generation = mb->hdr.generation;
    mb->msum_modseq = mb->hdr.highestmodseq;
}

/* A sequential reader of records [pos, end): through pread in chunks of RR_CHUNK records into
 * a small buffer for long runs, the mapping otherwise. A pass through the mapping costs a TLB
 * miss per 4 KiB page touched (each page holds 32 records); the kernel copies from the page
 * cache through its own large-page mapping, which on a 100,000-message mailbox made the pass
 * about 3 times faster (docs/perf/select.md). The bytes are the same: both read the page
 * cache under the caller's lock. */
#define RR_CHUNK 2048u   /* 256 KiB */
#define RR_MIN_RUN 1024u /* shorter runs read the mapping */
struct rec_reader {
    struct mailbox *mb;
    unsigned char *buf;   /* NULL: read the mapping */
    uint32_t lo, hi;      /* records in buf */
    uint32_t chunk;       /* records of the next read, doubling up to RR_CHUNK */
};

/* rr_init: a reader of [pos, end); first is the records of the first read (RR_CHUNK when the
 * whole run will be read, less when the reader may stop early). */
static void rr_init(struct rec_reader *rr, struct mailbox *mb, uint32_t pos, uint32_t end,
                    uint32_t first)
{
    rr->mb = mb;
    rr->buf = end - pos >= RR_MIN_RUN ? xmalloc((size_t)RR_CHUNK * INDEX_RECORD_SIZE) : NULL;
    rr->lo = rr->hi = 0;
    rr->chunk = first;
}

/* rr_get: record pos (read in order) as raw bytes. */
static const unsigned char *rr_get(struct rec_reader *rr, uint32_t pos, uint32_t end)
{
    if (rr->buf && (pos < rr->lo || pos >= rr->hi)) {
        uint32_t n = end - pos < rr->chunk ? end - pos : rr->chunk;
        if (rr->chunk < RR_CHUNK) rr->chunk *= 2;
        size_t want = (size_t)n * INDEX_RECORD_SIZE;
        ssize_t got = pread(rr->mb->index_fd, rr->buf, want, (off_t)index_record_offset(pos));
        if (got != (ssize_t)want) {   /* never expected: keep to the mapping */
            free(rr->buf);
            rr->buf = NULL;
        } else {
            rr->lo = pos;
            rr->hi = pos + n;
        }
    }
    if (rr->buf) return rr->buf + (size_t)(pos - rr->lo) * INDEX_RECORD_SIZE;
    return rr->mb->map + index_record_offset(pos);
}

static void rr_fini(struct rec_reader *rr)
{
    free(rr->buf);
    rr->buf = NULL;
}

/* uidcol_create: under the write lock of the commit that took the mailbox to
 * uidcol_min_records records, its uid column and group summary (mailbox-uidcol.c) made from
 * the records, as the first session's view build would make them. Without it a mailbox that
 * grew by deliveries alone had neither when its first session came, and that session read
 * every record and wrote both files (0.4 ms for 5,000 messages here, most of a first SELECT):
 * now it reads the summary, and each later commit brings both forward as it does for any
 * column (mbi_uidcol_commit). Once per mailbox: a column that stops naming the index later
 * (another boot, a repair) is rebuilt by the next session as before. Nothing is written when
 * the header may not be named (mbi_uidcol_usable) or a record is out of order (the next
 * reader reports it). */
static void uidcol_create(struct mailbox *mb)
{
    const struct index_header *h = &mb->hdr;
    uint32_t count = h->record_count, prev = 0;
    struct uidcol_build cb;
    mbi_uidcol_build_begin(mb, &cb);
    if (!cb.buf) return;
    uint64_t *msum = mbi_msum_begin(mb);
    struct rec_reader rr;
    rr_init(&rr, mb, 0, count, RR_CHUNK);
    for (uint32_t j = 0; j < count; j++) {
        const unsigned char *raw = rr_get(&rr, j, count);
        uint32_t u = index_record_uid(raw);
        if (u <= prev || u >= h->uidnext) {
            free(msum);
            msum = NULL;
            break;
        }
        prev = u;
        mbi_msum_note(msum, j, le_get64(raw + 32));
        mbi_uidcol_build_note(&cb, j, raw);
    }
    rr_fini(&rr);
    mbi_uidcol_build_end(mb, &cb, msum);   /* (msum NULL: nothing written) */
    if (msum) mbi_msum_end(mb, msum);
}

/* view_from_column: a first build of the view (empty) from the uid column: 1 when it was
 * usable (view, highest uid, modseq summary and first-unseen hint set, ch->n_new counted),
 * else 0 and nothing changed. */
static int view_from_column(struct mailbox *mb, struct mailbox_changes *ch)
{
    struct uidcol_view cv;
    if (!mbi_uidcol_view(mb, &cv)) return 0;
    free(mb->view);
    mb->view = cv.uids;
    mb->nview = cv.n;
    mb->aview = cv.n ? cv.n : 1;
    mb->view_maxuid = cv.maxuid;
    ch->n_new += cv.n;
    mbi_msum_end(mb, cv.msum);
    mb->first_unseen = cv.first_unseen;
    mb->first_unseen_modseq = mb->hdr.highestmodseq;
    mb->first_unseen_generation = mb->hdr.generation;
    return 1;
}

/* view_from_sum: a first build of the view (empty) as a lazy one from the group summary: 1
 * when it was usable (message counts per group, highest uid, ch->n_new), else 0 and nothing
 * changed. Reads 32 bytes per 1,024 messages and no record. */
static int view_from_sum(struct mailbox *mb, struct mailbox_changes *ch)
{
    struct uidsum_group *sg;
    uint32_t ng, total = 0;
    if (!mbi_uidsum_load(mb, &sg, &ng)) return 0;
    vg_free(mb);
    vg_grow(mb, ng);
    for (uint32_t g = 0; g < ng; g++) {
        mb->vg_count[g] = sg[g].live;
        mb->vg_last[g] = sg[g].last;
        total += sg[g].live;
    }
    mb->vimplicit = 1;
    free(mb->view);
    mb->view = xmalloc(sizeof *mb->view);   /* the "built" mark */
    mb->aview = 1;
    mb->nview = total;
    mb->view_maxuid = ng ? sg[ng - 1].last : 0;
    ch->n_new += total;
    mb->first_unseen = 0;
    mb->first_unseen_modseq = 0;
    free(sg);
    return 1;
}

/* push_changed: report uid (record rec) as changed in ch (*ac: the allocated length). */
static void push_changed(struct mailbox_changes *ch, size_t *ac, uint32_t uid,
                         const struct index_record *rec)
{
    size_t had = *ac;
    mbi_push_u32(&ch->changed_uids, &ch->n_changed, ac, uid);
    if (*ac != had) ch->changed_recs = xreallocarray(ch->changed_recs, *ac, sizeof *ch->changed_recs);
    ch->changed_recs[ch->n_changed - 1] = *rec;
}

int mbi_msum_current(struct mailbox *mb)
{
    const struct index_header *h = &mb->hdr;
    if (mb->msum && mb->msum_generation == h->generation && mb->msum_modseq == h->highestmodseq &&
        mb->msum_records == h->record_count)
        return 1;
    uint64_t *msum;
    if (!mbi_uidcol_maxima(mb, &msum)) return 0;
    mbi_msum_end(mb, msum);
    return 1;
}

/* view_changed_blocks: the part of view_update that looks at the messages already in the view,
 * reading only the blocks of 32 records whose highest modseq is above the view's (from the
 * block maxima of the uid column, or the session's own summary when it is current), instead
 * of every record of the view. Records keep their positions within a generation, so a
 * record that changed or was expunged since the view was made is in such a block; records
 * past the view's count are the new ones, which the caller adds. Returns 1 when done (changes
 * in ch, *pending_r set when no_expunge kept an expunged message), 0 when it cannot be used
 * (no current summary, a repack, a pending expunge: the caller walks the view), or <0 from a
 * damaged record (nothing changed). */
static int view_changed_blocks(struct mailbox *mb, int no_expunge, struct mailbox_changes *ch,
                               int *pending_r)
{
    const struct index_header *h = &mb->hdr;
    uint32_t *blocks;
    size_t nbl;
    if (!mb->view || !mb->nview || mb->expunge_pending || h->generation != mb->view_generation ||
        h->record_count < mb->view_records ||
        !mbi_changed_blocks(mb, mb->view_modseq, mb->view_records, &blocks, &nbl))
        return 0;
    uint32_t nold = mb->view_records;
    uint32_t *gone = NULL;      /* view indexes of the expunged messages, ascending */
    size_t ngone = 0, agone = 0, ac = 0, ae = 0;
    int pending = 0, r = 1;
    for (size_t bk = 0; bk < nbl && (uint64_t)blocks[bk] * MSUM_BLOCK < nold && r == 1; bk++) {
        uint32_t b = blocks[bk];
        uint32_t first = b * MSUM_BLOCK, end = first + MSUM_BLOCK;
        if (end > nold) end = nold;
        /* pread: a copy costs less than touching the mapping's page (rec_reader says why) */
        unsigned char blk[MSUM_BLOCK * INDEX_RECORD_SIZE];
        size_t want = (size_t)(end - first) * INDEX_RECORD_SIZE;
        int copied = pread(mb->index_fd, blk, want, (off_t)index_record_offset(first)) ==
                     (ssize_t)want;
        for (uint32_t i = first; i < end; i++) {
            const unsigned char *raw = copied ? blk + (size_t)(i - first) * INDEX_RECORD_SIZE
                                              : mb->map + index_record_offset(i);
            if (le_get64(raw + 32) <= mb->view_modseq) continue;
            uint32_t u = index_record_uid(raw);
            uint32_t msgno = mailbox_msgno(mb, u);
            if (!msgno) continue;   /* expunged before the view was made */
            if (le_get32(raw + 4) & FLAG_EXPUNGED) {
                if (no_expunge) pending = 1;
                else mbi_push_u32(&gone, &ngone, &agone, msgno - 1);
                continue;
            }
            struct index_record rec;
            r = mbi_read_record(mb, i, &rec);   /* its checksum, as the full walk checks */
            if (r < 0) break;
            r = 1;
            push_changed(ch, &ac, u, &rec);
        }
    }
    free(blocks);
    if (r < 0) {   /* keep the view whole: nothing was reported */
        free(gone);
        mailbox_changes_fini(ch);
        return r;
    }
    if (ngone) {
        uint32_t k = gone[0];
        for (size_t g = 0; g < ngone; g++) {
            size_t n1 = ch->n_expunged, a1 = ae;
            mbi_push_u32(&ch->expunged_msgnos, &n1, &a1, gone[g] + 1 - (uint32_t)g);
            mbi_push_u32(&ch->expunged_uids, &ch->n_expunged, &ae, mb->view[gone[g]]);
        }
        for (uint32_t i = gone[0], g = 0; i < mb->nview; i++) {
            if (g < ngone && gone[g] == i) {
                g++;
                continue;
            }
            mb->view[k++] = mb->view[i];
        }
        mb->nview = k;
    }
    free(gone);
    uidcol_stats.incremental++;
    *pending_r = pending;
    return 1;
}

/* One record a lazy view's sync reports: changed (rec) or expunged (gone: 1 now, 2 held
 * back by an earlier sync), at position pos. */
struct vg_item {
    uint32_t pos, uid;
    int gone;
    struct index_record rec;
};

static void vg_item_push(struct vg_item **it, size_t *n, size_t *a, uint32_t pos, uint32_t uid,
                         int gone)
{
    if (*n == *a) {
        *a = *a ? *a * 2 : 16;
        *it = xreallocarray(*it, *a, sizeof **it);
    }
    (*it)[*n].pos = pos;
    (*it)[*n].uid = uid;
    (*it)[*n].gone = gone;
    (*n)++;
}

static int vg_item_cmp(const void *a, const void *b)
{
    uint32_t x = ((const struct vg_item *)a)->pos, y = ((const struct vg_item *)b)->pos;
    return x < y ? -1 : x > y;
}

/* vg_sync: view_update for a lazy view: only the blocks whose highest modseq is above the
 * view's are read (mbi_changed_blocks), then the records appended since. Expunged messages
 * leave their group (read first, so that its message numbers are known), changed ones are
 * reported with their records, new ones counted into their groups. 1 when done, 0 when the
 * view must become an array first (nothing changed: no summary can say, an expunge to hold
 * back, a repack), or <0 (nothing changed, nothing reported). */
static int vg_sync(struct mailbox *mb, int no_expunge, struct mailbox_changes *ch)
{
    const struct index_header *h = &mb->hdr;
    if (h->generation != mb->view_generation || h->record_count < mb->view_records) return 0;
    uint32_t *blocks;
    size_t nb;
    if (!mbi_changed_blocks(mb, mb->view_modseq, mb->view_records, &blocks, &nb)) return 0;
    uint32_t vr = mb->view_records, count = h->record_count, prev = mb->view_maxuid;
    struct vg_item *it = NULL;
    size_t nit = 0, ait = 0;
    uint32_t *nu = NULL, *np = NULL;   /* the new records: uid (0x80000000 in np: expunged) */
    size_t nn = 0, an = 0, an2 = 0;
    int r = 1;
    for (size_t k = 0; k < nb && r == 1; k++) {
        uint32_t first = blocks[k] * MSUM_BLOCK, end = first + MSUM_BLOCK;
        if (end > vr) end = vr;
        if (first >= end) break;   /* ascending: the rest are new records */
        unsigned char blk[MSUM_BLOCK * INDEX_RECORD_SIZE];
        size_t want = (size_t)(end - first) * INDEX_RECORD_SIZE;
        if (pread(mb->index_fd, blk, want, (off_t)index_record_offset(first)) != (ssize_t)want) {
            r = mbi_io_error(mb, "pread", mb->index_path);
            break;
        }
        for (uint32_t i = first; i < end; i++) {
            const unsigned char *raw = blk + (size_t)(i - first) * INDEX_RECORD_SIZE;
            if (le_get64(raw + 32) <= mb->view_modseq) continue;
            int gone = (le_get32(raw + 4) & FLAG_EXPUNGED) != 0;
            vg_item_push(&it, &nit, &ait, i, index_record_uid(raw), gone);
            if (!gone && index_record_decode(raw, &it[nit - 1].rec) < 0) {
                r = mbi_corrupt(mb, "index_record", it[nit - 1].uid);
                break;
            }
        }
    }
    free(blocks);
    /* the expunges held back before: reported now (in position order with the others), or
     * held again */
    if (r == 1 && mb->vg_nheld) {
        for (size_t i = 0; i < mb->vg_nheld; i++)
            vg_item_push(&it, &nit, &ait, mb->vg_held_pos[i], mb->vg_held_uid[i], 2);
        qsort(it, nit, sizeof *it, vg_item_cmp);
    }
    if (r == 1 && count > vr) {
        struct rec_reader rr;
        rr_init(&rr, mb, vr, count, RR_CHUNK);
        for (uint32_t j = vr; j < count; j++) {
            const unsigned char *raw = rr_get(&rr, j, count);
            uint32_t u = index_record_uid(raw);
            if (u <= prev || u >= h->uidnext) {
                r = mbi_corrupt(mb, "index_order", u);
                break;
            }
            prev = u;
            mbi_push_u32(&nu, &nn, &an, u);
            nn--;
            mbi_push_u32(&np, &nn, &an2, j | (le_get32(raw + 4) & FLAG_EXPUNGED));
        }
        rr_fini(&rr);
    }
    /* the groups that lose messages are read before anything changes */
    for (size_t i = 0; i < nit && r == 1; i++)
        if (it[i].gone) {
            int lr = vg_load(mb, it[i].pos / UIDSUM_RECORDS);
            if (lr < 0) r = lr;
        }
    if (r != 1) {
        free(it);
        free(nu);
        free(np);
        return r;
    }
    mb->vg_nheld = 0;   /* in it now */
    vg_prefix(mb);      /* the numbers before any removal; kept while removing */
    size_t ac = 0, ae = 0;
    uint32_t removed = 0, removed_g = 0, cur = UINT32_MAX;
    for (size_t i = 0; i < nit; i++) {
        if (!it[i].gone) {
            push_changed(ch, &ac, it[i].uid, &it[i].rec);
            continue;
        }
        if (no_expunge) {
            /* RFC 3501 section 7.4.1: not now. Its group is read, so it stays in the view
             * whatever the rule says once view_modseq passes its expunge */
            size_t n1 = mb->vg_nheld, a1 = mb->vg_aheld;
            mbi_push_u32(&mb->vg_held_pos, &n1, &a1, it[i].pos);
            mbi_push_u32(&mb->vg_held_uid, &mb->vg_nheld, &mb->vg_aheld, it[i].uid);
            continue;
        }
        uint32_t g = it[i].pos / UIDSUM_RECORDS;
        if (g != cur) {
            cur = g;
            removed_g = 0;
        }
        long x = vg_find(mb, g, it[i].uid);
        if (x < 0) continue;   /* vg_load counted it in: never */
        /* its number now: those before its group less the ones removed there, and its
         * place in the group (removals in it already applied) */
        size_t n1 = ch->n_expunged, a1 = ae;
        mbi_push_u32(&ch->expunged_msgnos, &n1, &a1,
                     mb->vg_pre[g] - (removed - removed_g) + (uint32_t)x + 1);
        mbi_push_u32(&ch->expunged_uids, &ch->n_expunged, &ae, it[i].uid);
        uint32_t *u = mb->vg_uids[g];
        memmove(u + x, u + x + 1, (mb->vg_count[g] - (uint32_t)x - 1) * sizeof *u);
        mb->vg_count[g]--;
        mb->nview--;
        removed++;
        removed_g++;
    }
    for (size_t i = 0; i < nn; i++) {
        uint32_t pos = np[i] & ~FLAG_EXPUNGED, g = pos / UIDSUM_RECORDS;
        vg_grow(mb, g + 1);
        mb->vg_last[g] = nu[i];
        if (np[i] & FLAG_EXPUNGED) continue;   /* came and went: never in the view */
        if (mb->vg_uids[g]) {
            mb->vg_uids[g] = xreallocarray(mb->vg_uids[g], mb->vg_count[g] + 1, sizeof(uint32_t));
            mb->vg_uids[g][mb->vg_count[g]] = nu[i];
        }
        mb->vg_count[g]++;
        mb->nview++;
        ch->n_new++;
    }
    mb->vg_dirty = 1;
    if (prev > mb->view_maxuid) mb->view_maxuid = prev;
    mb->expunge_pending = mb->vg_nheld > 0;
    mb->view_modseq = h->highestmodseq;
    mb->view_records = count;
    ch->exists = mb->nview;
    uidcol_stats.incremental++;
    free(it);
    free(nu);
    free(np);
    return 1;
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
    if (mb->vimplicit) {
        int vr = vg_sync(mb, no_expunge, ch);
        if (vr < 0) return vr;
        if (vr == 1) return 0;
        if ((vr = vg_all(mb)) < 0) return vr;   /* and on with the array */
    }
    size_t ae = 0, ac = 0;
    uint32_t count = h->record_count, j = 0, k = 0, removed = 0;
    int pending = 0;
    int done = view_changed_blocks(mb, no_expunge, ch, &pending);
    if (done < 0) return done;
    /* Messages already in the view: still there, changed, or expunged. */
    for (uint32_t i = 0; !done && i < mb->nview; i++) {
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
                int rr = mbi_read_record(mb, j, &r);
                if (rr < 0) {   /* keep the view whole: nothing was reported */
                    memmove(mb->view + k, mb->view + i, (mb->nview - i) * sizeof *mb->view);
                    mb->nview = k + (mb->nview - i);
                    mailbox_changes_fini(ch);
                    return rr;
                }
                push_changed(ch, &ac, u, &r);
            }
            j++;
        }
        if (gone && no_expunge) {
            pending = 1;
            gone = 0;
        }
        if (gone) {
            size_t n1 = ch->n_expunged, a1 = ae;
            mbi_push_u32(&ch->expunged_msgnos, &n1, &a1, i + 1 - removed);
            mbi_push_u32(&ch->expunged_uids, &ch->n_expunged, &ae, u);
            removed++;
            continue;
        }
        mb->view[k++] = u;
    }
    if (!done) mb->nview = k;
    /* New messages: records above the highest uid the view ever held. When that is every
     * record (the first build), note their modseqs for mailbox_modseq_scan on the way: the
     * same cache line, so it costs nothing. */
    uint32_t prev = mb->view_maxuid;
    /* (a first build needs no search: each probe is a page of a fresh mapping) */
    j = mb->view_maxuid ? first_pos_after(mb, mb->view_maxuid) : 0;
    if (j == 0 && mb->nview == 0 && count > 0 && (view_from_sum(mb, ch) || view_from_column(mb, ch))) {
        prev = mb->view_maxuid;
        j = count;
    }
    uint64_t *msum = j == 0 ? mbi_msum_begin(mb) : NULL;
    struct uidcol_build cb = { NULL, 0 };
    if (msum && count > 0) mbi_uidcol_build_begin(mb, &cb);   /* the column was not usable */
    struct rec_reader rr;
    rr_init(&rr, mb, j, count, RR_CHUNK);
    for (; j < count; j++) {
        const unsigned char *raw = rr_get(&rr, j, count);
        uint32_t u = index_record_uid(raw);
        if (u <= prev || u >= h->uidnext) {
            free(msum);
            mbi_uidcol_build_end(mb, &cb, NULL);
            rr_fini(&rr);
            return mbi_corrupt(mb, "index_order", u);
        }
        prev = u;
        if (msum) mbi_msum_note(msum, j, le_get64(raw + 32));
        mbi_uidcol_build_note(&cb, j, raw);
        if (le_get32(raw + 4) & FLAG_EXPUNGED) continue;
        if (mb->nview == mb->aview) {
            /* (+ 16: an allocation of 1 must grow too) */
            mb->aview = mb->aview ? mb->aview + mb->aview / 2 + 16 : (count > 16 ? count : 16);
            mb->view = xreallocarray(mb->view, mb->aview, sizeof *mb->view);
        }
        mb->view[mb->nview++] = u;
        ch->n_new++;
    }
    rr_fini(&rr);
    if (prev > mb->view_maxuid) mb->view_maxuid = prev;
    mbi_uidcol_build_end(mb, &cb, msum);
    if (msum) mbi_msum_end(mb, msum);
    if (!mb->view) mb->view = xmalloc(sizeof *mb->view);  /* marks the view as built */
    mb->expunge_pending = pending;
    mb->view_modseq = h->highestmodseq;
    mb->view_generation = h->generation;
    mb->view_records = count;
    ch->exists = mb->nview;
    return 0;
}

/* first_unseen_known: the header as of the last lock is the one the view was read at from the
 * column, which said which message is the first unseen: nothing changed since. */
static int first_unseen_known(const struct mailbox *mb)
{
    const struct index_header *h = &mb->hdr;
    return mb->first_unseen_modseq && mb->first_unseen_modseq == h->highestmodseq &&
           mb->first_unseen_generation == h->generation && mb->view_modseq == h->highestmodseq &&
           mb->view_records == h->record_count && mb->view_generation == h->generation;
}

int mailbox_first_unseen_synced(struct mailbox *mb)
{
    /* every field compared changes only under the lock, with the header: a header that
     * still matches is the state of the sync the caller made */
    if (first_unseen_known(mb)) return (int)mb->first_unseen;
    return mailbox_first_unseen(mb);
}

/* vg_first_unseen: mailbox_first_unseen of a lazy view, under the lock: the records from the
 * first group the summary says holds a live message without \Seen (the first record that is
 * live and unseen now and below view_records is in the view, and the first of the view). */
static int vg_first_unseen(struct mailbox *mb)
{
    uint32_t start = 0, end = mb->view_records;
    if (end > mb->hdr.record_count) end = mb->hdr.record_count;   /* (never: same generation) */
    struct uidsum_group *sg;
    uint32_t ng;
    if (mbi_uidsum_load(mb, &sg, &ng)) {
        uint32_t g = 0;
        while (g < ng && sg[g].seen == sg[g].live) g++;
        start = g * UIDSUM_RECORDS;
        free(sg);
    }
    struct rec_reader rr;
    uint32_t pos = end, uid = 0;
    if (start < end) {
        rr_init(&rr, mb, start, end, 32);
        for (uint32_t j = start; j < end; j++) {
            const unsigned char *raw = rr_get(&rr, j, end);
            if (le_get32(raw + 4) & (FLAG_SEEN | FLAG_EXPUNGED)) continue;
            pos = j;
            uid = index_record_uid(raw);
            break;
        }
        rr_fini(&rr);
    }
    if (pos == end) return 0;
    uint32_t g = pos / UIDSUM_RECORDS;
    int r = vg_load(mb, g);
    if (r < 0) return r;
    long x = vg_find(mb, g, uid);
    if (x < 0) return 0;
    vg_prefix(mb);
    return (int)(mb->vg_pre[g] + (uint32_t)x + 1);
}

/* first_unseen_locked: mailbox_first_unseen under a lock the caller holds. */
static int first_unseen_locked(struct mailbox *mb)
{
    if (first_unseen_known(mb)) return (int)mb->first_unseen;
    if (mb->vimplicit) return vg_first_unseen(mb);
    uint32_t count = mb->hdr.record_count, k = 0, msgno = 0;
    struct rec_reader rr;
    rr_init(&rr, mb, 0, count, 32);
    for (uint32_t j = 0; j < count && k < mb->nview; j++) {
        const unsigned char *raw = rr_get(&rr, j, count);
        if (le_get32(raw + 4) & (FLAG_SEEN | FLAG_EXPUNGED)) continue;
        uint32_t u = index_record_uid(raw);
        while (k < mb->nview && mb->view[k] < u) k++;   /* records and view: uid order */
        if (k < mb->nview && mb->view[k] == u) {
            msgno = k + 1;
            break;
        }
    }
    rr_fini(&rr);
    return (int)msgno;
}

int mailbox_first_unseen(struct mailbox *mb)
{
    int took = mbi_lock(mb, LOCK_SH);
    if (took < 0) return took;
    int r = first_unseen_locked(mb);
    mbi_unlock(mb, took);
    return r;
}

/* note_first_unseen: under the lock of an open or reuse for SELECT or EXAMINE, right after
 * its view_update, the view's first unseen message noted as the one the uid column gives is
 * (first_unseen_known), so that the [UNSEEN] code (mailbox_first_unseen_synced) needs no
 * second lock cycle: for a lazy view (made from the group summary) or one read from the
 * records, SELECT locked again (flock, stat, fstat, the summary's open and read) only for
 * it. The same reads as mailbox_first_unseen: none when the column said or every message is
 * \Seen, else the records up to it. A failure notes nothing (a later look reads again and
 * reports it). */
static void note_first_unseen(struct mailbox *mb)
{
    if (first_unseen_known(mb)) return;
    int r = first_unseen_locked(mb);
    if (r < 0) return;
    mb->first_unseen = (uint32_t)r;
    mb->first_unseen_modseq = mb->hdr.highestmodseq;
    mb->first_unseen_generation = mb->hdr.generation;
}

int mailbox_sync(struct mailbox *mb, unsigned flags, struct mailbox_changes *ch)
{
    mailbox_changes_fini(ch);
    int took = mbi_lock(mb, LOCK_SH);
    if (took < 0) return took;
    int r = view_update(mb, flags, ch);
    mbi_unlock(mb, took);
    return r;
}
