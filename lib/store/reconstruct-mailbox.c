/* reconstruct-mailbox.c: rebuilding one mailbox's index and cache from its files, in phases
 * (reconstruct_mailbox), importing restored messages (reconstruct_import), and the report
 * (see reconstruct.h). The mailbox list's part is reconstruct-list.c. */
#include "store/reconstruct.h"
#include "store/reconstruct-int.h"
#include "store/mailbox-sort.h"
#include "store/uidcol.h"
#include "store/flaglog.h"
#include "store/store-retained.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "store/mailbox.h"
#include "store/mbheader.h"
#include "store/mboxname.h"
#include "store/partition.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The file names inside a mailbox directory (the layout of man coffer-store(5), as mailbox.c). */
#define LOCK_FILE "lock"
#define INDEX_FILE "index"
#define CACHE_FILE "cache"

void recon_report_init(struct recon_report *rep)
{
    memset(rep, 0, sizeof *rep);
    strarr_init(&rep->mailbox);
    strarr_init(&rep->what);
    strarr_init(&rep->detail);
}

void recon_report_fini(struct recon_report *rep)
{
    strarr_fini(&rep->mailbox);
    strarr_fini(&rep->what);
    strarr_fini(&rep->detail);
    memset(rep, 0, sizeof *rep);
}

void recon_report_add(struct recon_report *rep, const char *mailbox, const char *what,
                      const char *fmt, ...)
{
    struct buf d = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&d, fmt, ap);
    va_end(ap);
    strarr_add(&rep->mailbox, mailbox ? mailbox : "");
    strarr_add(&rep->what, what);
    strarr_add(&rep->detail, buf_cstr(&d));
    buf_fini(&d);
}

/* One UID as found in the old index and in the directory. */
struct item {
    uint32_t uid;
    int have_rec;              /* a record that passed its checksum */
    struct index_record rec;
    int have_file;
    uint64_t file_size;
    int64_t file_mtime;
    int resummarize;           /* the record's file-derived fields must be recomputed */
    int cache_ok;              /* the old cache record is good (entry below) */
    int uncommitted;           /* a file at or above the committed uidnext: removed */
    struct cache_entry ce;
};

/* retained: an expunged record whose file delayed expunge keeps for unexpunge: kept as it is,
 * never adopted as a live message, its file never removed here (coffer expire does). */
static int retained(const struct item *it)
{
    return it->have_rec && (it->rec.flags & FLAG_EXPUNGED) && it->rec.expunged_at && it->have_file;
}

static int item_cmp(const void *a, const void *b)
{
    uint32_t x = ((const struct item *)a)->uid, y = ((const struct item *)b)->uid;
    return x < y ? -1 : x > y;
}

/* item_find: the item of uid in the sorted array, or NULL. */
static struct item *item_find(struct item *v, size_t n, uint32_t uid)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid].uid == uid) return &v[mid];
        if (v[mid].uid < uid) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

uint32_t recon_message_uid(const char *fn)
{
    size_t n = strlen(fn);
    if (n < 2 || n > 11 || fn[n - 1] != '.' || fn[0] == '0') return 0;
    unsigned long long v = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (fn[i] < '0' || fn[i] > '9') return 0;
        v = v * 10 + (unsigned)(fn[i] - '0');
    }
    return v > 0 && v < UINT32_MAX ? (uint32_t)v : 0;
}

/* summarize_file: summarize the message file at path. 0, CF_E_NOTFOUND or CF_E_IO. */
static int summarize_file(const char *path, uint32_t uid, struct cache_entry *e,
                          struct index_record *rec)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? CF_E_NOTFOUND : CF_E_IO;
    struct stat sb;
    int r = 0;
    if (fstat(fd, &sb) < 0) {
        r = CF_E_IO;
    } else if (sb.st_size == 0) {
        mailbox_summarize("", 0, uid, e, rec);
    } else {
        void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            r = CF_E_IO;
        } else {
            mailbox_summarize(p, (size_t)sb.st_size, uid, e, rec);
            munmap(p, (size_t)sb.st_size);
        }
    }
    if (r) log_err("reconstruct_io_error", "path=%s errno=%s", log_quote(path), strerror(errno));
    close(fd);
    return r;
}

/* The state of one mailbox being looked at. */
struct recon {
    const char *label;         /* name for the report */
    struct recon_report *rep;
    char *dir;
    struct item *items;
    size_t n, alloc;
    struct strarr keywords;    /* names of the old index, bit k = keywords.v[k] */
    int have_header;           /* an old index header that passed every check */
    int index_bad;             /* the old index is missing or lost records */
    int have_slot;             /* some old header slot decoded (a damaged index) */
    struct index_header old;   /* the header of either kind */
    int findings;
};

static void found(struct recon *rc, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void found(struct recon *rc, const char *what, const char *fmt, ...)
{
    struct buf d = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&d, fmt, ap);
    va_end(ap);
    recon_report_add(rc->rep, rc->label, what, "%s", buf_cstr(&d));
    buf_fini(&d);
    rc->findings++;
}

static struct item *item_add(struct recon *rc, uint32_t uid)
{
    if (rc->n == rc->alloc) {
        rc->alloc = rc->alloc ? rc->alloc * 2 : 64;
        rc->items = xreallocarray(rc->items, rc->alloc, sizeof *rc->items);
    }
    struct item *it = &rc->items[rc->n++];
    memset(it, 0, sizeof *it);
    it->uid = uid;
    cache_entry_init(&it->ce);
    return it;
}

/* load_keywords: the keyword names of a header from the index bytes (its CRC checked). */
static int load_keywords(struct recon *rc, const unsigned char *map, size_t len,
                         const struct index_header *h)
{
    if (len < INDEX_KEYWORD_OFFSET + (size_t)h->keyword_bytes) return -1;
    const unsigned char *area = map + INDEX_KEYWORD_OFFSET;
    if (index_crc32(area, h->keyword_bytes) != h->keyword_crc) return -1;
    for (uint32_t k = 0; k < h->keyword_count; k++) {
        size_t kl;
        const char *kw = index_keyword_get(area, h->keyword_bytes, k, &kl);
        if (!kw) return -1;
        strarr_take(&rc->keywords, xstrndup(kw, kl));
    }
    return 0;
}

/* guess_keywords: with no header to vouch for the keyword area, read the names it holds up to
 * the first empty or implausible one (RFC 3501 section 9 atom characters, no backslash). The
 * area is zero past the names ever written, so this finds the committed names and at most a
 * few written by a commit that never completed, which are harmless extra names. */
static void guess_keywords(struct recon *rc, const unsigned char *map, size_t len)
{
    if (len < INDEX_HEADER_SIZE) return;
    const unsigned char *a = map + INDEX_KEYWORD_OFFSET;
    size_t pos = 0;
    while (pos < INDEX_KEYWORD_AREA && rc->keywords.count < INDEX_MAX_KEYWORDS) {
        size_t n = 0;
        while (pos + n < INDEX_KEYWORD_AREA && a[pos + n]) {
            unsigned char c = a[pos + n];
            if (c <= ' ' || c >= 0x7f || strchr("(){%*\"]\\", c)) return;
            n++;
        }
        if (!n || pos + n >= INDEX_KEYWORD_AREA) return;
        strarr_take(&rc->keywords, xstrndup((const char *)a + pos, n));
        pos += n + 1;
    }
}

/* apply_flaglog: the flag changes the flag change log made durable for this index generation
 * (a power loss may have kept the index from getting them): replayed onto the records read,
 * as an open's recount does (flaglog_apply), before anything is compared. Items sorted. */
static void apply_flaglog(struct recon *rc)
{
    if (!rc->have_slot) return;
    char *path = xasprintf("%s/%s", rc->dir, FLAGLOG_FILE);
    char *buf = NULL;
    size_t len = 0;
    int fr = file_read_all(path, FLAGLOG_READ_MAX, &buf, &len);
    free(path);
    uint64_t epoch;
    if (fr < 0 || len < FLAGLOG_HEADER_SIZE ||
        flaglog_header_decode((const unsigned char *)buf, &epoch) < 0) {
        free(buf);
        return;
    }
    size_t off = FLAGLOG_HEADER_SIZE;
    struct flaglog_entry e;
    uint32_t changed = 0;
    while (flaglog_entry_next((const unsigned char *)buf, len, &off, epoch, &e)) {
        if (e.generation != rc->old.generation) continue;
        for (uint32_t k = 0; k < e.nranges; k++) {
            uint32_t lo = le_get32(e.ranges + 8 * k), hi = le_get32(e.ranges + 8 * k + 4);
            size_t a = 0, b = rc->n;   /* the first item with uid >= lo */
            while (a < b) {
                size_t mid = a + (b - a) / 2;
                if (rc->items[mid].uid < lo) a = mid + 1;
                else b = mid;
            }
            for (; a < rc->n && rc->items[a].uid <= hi; a++)
                if (rc->items[a].have_rec && flaglog_apply(&e, &rc->items[a].rec)) changed++;
        }
    }
    if (changed)
        log_notice("reconstruct_flaglog_replayed", "mbox=%s records=%u", log_quote(rc->label),
                   (unsigned)changed);
    free(buf);
}

/* read_index: the records and keywords that survive in the old index. */
static void read_index(struct recon *rc, const unsigned char *map, size_t len)
{
    struct index_header h;
    if (index_choose_header(map, len, &h, NULL) >= 0) {
        rc->have_header = rc->have_slot = 1;
        rc->old = h;
        load_keywords(rc, map, len, &h);
        for (uint32_t i = 0; i < h.record_count; i++) {
            struct index_record r;
            const unsigned char *raw = map + index_record_offset(i);
            if (index_record_decode(raw, &r) < 0) {
                found(rc, "record_corrupt", "record %u (uid %u?) fails its checksum",
                      (unsigned)i, (unsigned)index_record_uid(raw));
                rc->index_bad = 1;
                continue;
            }
            struct item *it = item_add(rc, r.uid);
            it->have_rec = 1;
            it->rec = r;
        }
    } else {
        /* The header is unusable: take the newest slot that still decodes for uidvalidity,
         * uidnext and keywords, and every record slot that passes its checksum. */
        struct index_header s;
        for (int i = 0; i < 2 && len >= INDEX_HEADER_SIZE; i++) {
            size_t off = i ? INDEX_SLOT1_OFFSET : INDEX_SLOT0_OFFSET;
            if (index_header_decode(map + off, &s) == 0 && (!rc->have_slot || s.commit > rc->old.commit)) {
                rc->old = s;
                rc->have_slot = 1;
            }
        }
        if (!rc->have_slot || load_keywords(rc, map, len, &rc->old) < 0) {
            strarr_fini(&rc->keywords);
            guess_keywords(rc, map, len);
            found(rc, "keywords_guessed", "%zu keyword names read without a checksum",
                  rc->keywords.count);
        }
        uint32_t nrec = 0;
        for (uint64_t off = INDEX_HEADER_SIZE; off + INDEX_RECORD_SIZE <= len; off += INDEX_RECORD_SIZE) {
            struct index_record r;
            if (index_record_decode(map + off, &r) < 0) continue;
            struct item *it = item_add(rc, r.uid);
            it->have_rec = 1;
            it->rec = r;
            nrec++;
        }
        rc->index_bad = 1;
        found(rc, "index_damaged", "no usable index header (%s); %u records salvaged",
              rc->have_slot ? "a slot decodes but fails its checks" : "no slot decodes",
              (unsigned)nrec);
    }
    /* sort; a salvaged index may hold stale copies of a uid: keep the newest */
    if (rc->n) qsort(rc->items, rc->n, sizeof *rc->items, item_cmp);
    size_t k = 0;
    for (size_t i = 0; i < rc->n; i++) {
        if (k && rc->items[k - 1].uid == rc->items[i].uid) {
            if (rc->items[i].rec.modseq > rc->items[k - 1].rec.modseq)
                rc->items[k - 1] = rc->items[i];
            continue;
        }
        rc->items[k++] = rc->items[i];
    }
    rc->n = k;
    apply_flaglog(rc);
}

/* scan_files: note every message file of the directory. */
static int scan_files(struct recon *rc)
{
    DIR *d = opendir(rc->dir);
    if (!d) {
        log_err("reconstruct_io_error", "call=opendir path=%s errno=%s", log_quote(rc->dir), strerror(errno));
        return CF_E_IO;
    }
    size_t nold = rc->n;   /* items past nold are unsorted until the end */
    struct dirent *de;
    while ((de = readdir(d))) {
        uint32_t uid = recon_message_uid(de->d_name);
        if (!uid) continue;
        struct stat sb;
        if (fstatat(dirfd(d), de->d_name, &sb, 0) < 0 || !S_ISREG(sb.st_mode)) continue;
        struct item *it = item_find(rc->items, nold, uid);
        if (!it) it = item_add(rc, uid);
        it->have_file = 1;
        it->file_size = (uint64_t)sb.st_size;
        it->file_mtime = (int64_t)sb.st_mtime;
    }
    closedir(d);
    if (rc->n) qsort(rc->items, rc->n, sizeof *rc->items, item_cmp);
    return 0;
}

static void recon_fini(struct recon *rc)
{
    for (size_t i = 0; i < rc->n; i++) cache_entry_fini(&rc->items[i].ce);
    free(rc->items);
    strarr_fini(&rc->keywords);
    free(rc->dir);
}

/* write_cache: rewrite the cache file in place (under the write lock nobody appends; a reader
 * racing with us fails a record check and rebuilds that entry from the message file). */
static int write_cache(const char *dir, const struct buf *data)
{
    char *path = xasprintf("%s/%s", dir, CACHE_FILE);
    int r = 0;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, 0) < 0 || write_all(fd, data->s, data->len) < 0 || fsync(fd) < 0) {
        log_err("reconstruct_io_error", "call=write path=%s errno=%s", log_quote(path), strerror(errno));
        r = CF_E_IO;
    }
    if (fd >= 0) close(fd);
    free(path);
    return r;
}

/* write_mailbox: write the cache and the index for the items that have a file and are not
 * expunged (the caller holds the write lock): items marked resummarize are read from their
 * file, their modseq set to modseq when they had none or changed size. Keyword bits keep their
 * numbers (rc->keywords). The counters of *nh are computed here. 0 or CF_E_IO. */
static int write_mailbox(struct recon *rc, uint32_t uidvalidity, uint32_t uidnext,
                         uint64_t modseq, uint64_t generation, struct index_header *nh)
{
    struct buf cbuf = BUF_INIT, ibuf = BUF_INIT;
    int r = 0;
    memset(nh, 0, sizeof *nh);
    unsigned char head[CACHE_HEADER_SIZE];
    cache_header_encode(head);
    buf_append(&cbuf, head, sizeof head);
    buf_ensure(&ibuf, INDEX_HEADER_SIZE);
    memset(ibuf.s, 0, INDEX_HEADER_SIZE);
    ibuf.len = INDEX_HEADER_SIZE;
    uint32_t kbytes = 0;
    for (size_t k = 0; k < rc->keywords.count && k < INDEX_MAX_KEYWORDS; k++) {
        size_t kl = strlen(rc->keywords.v[k]) + 1;
        if (kbytes + kl > INDEX_KEYWORD_AREA) break;
        memcpy(ibuf.s + INDEX_KEYWORD_OFFSET + kbytes, rc->keywords.v[k], kl);
        kbytes += (uint32_t)kl;
        nh->keyword_count++;
    }
    nh->keyword_bytes = kbytes;
    nh->keyword_crc = index_crc32(ibuf.s + INDEX_KEYWORD_OFFSET, kbytes);
    uint32_t maxuid = 0;
    for (size_t i = 0; i < rc->n; i++) {
        struct item *it = &rc->items[i];
        if (retained(it)) {
            for (unsigned k = (unsigned)nh->keyword_count; k < INDEX_MAX_KEYWORDS; k++)
                index_user_flag_set(&it->rec, k, 0);
            it->rec.cache_offset = 0;   /* not in the new cache; rebuilt if ever read */
            unsigned char raw[INDEX_RECORD_SIZE];
            index_record_encode(&it->rec, raw);
            buf_append(&ibuf, raw, sizeof raw);
            nh->record_count++;
            nh->expunged++;
            if (it->uid > maxuid) maxuid = it->uid;
            continue;
        }
        if (!it->have_file || (it->have_rec && (it->rec.flags & FLAG_EXPUNGED))) continue;
        if (it->resummarize) {
            char *mp = xasprintf("%s/%u.", rc->dir, (unsigned)it->uid);
            int sr = summarize_file(mp, it->uid, &it->ce, &it->rec);
            free(mp);
            if (sr < 0) {
                r = sr;
                goto out;
            }
            if (!it->have_rec || it->rec.size != it->file_size) it->rec.modseq = modseq;
        }
        /* drop keyword bits with no surviving name */
        for (unsigned k = (unsigned)nh->keyword_count; k < INDEX_MAX_KEYWORDS; k++)
            index_user_flag_set(&it->rec, k, 0);
        it->rec.uid = it->uid;
        it->rec.flags &= FLAG_SYSTEM_MASK;
        if (!it->rec.modseq || it->rec.modseq > modseq) it->rec.modseq = modseq;
        it->ce.uid = it->uid;
        it->rec.cache_offset = cbuf.len;
        cache_record_encode(&it->ce, &cbuf);
        unsigned char raw[INDEX_RECORD_SIZE];
        index_record_encode(&it->rec, raw);
        buf_append(&ibuf, raw, sizeof raw);
        nh->record_count++;
        nh->exists++;
        if (it->rec.flags & FLAG_DELETED) nh->deleted++;
        if (it->rec.flags & FLAG_SEEN) nh->seen++;
        if (it->rec.flags & FLAG_ANSWERED) nh->answered++;
        if (it->rec.flags & FLAG_FLAGGED) nh->flagged++;
        nh->quota_used += it->rec.size;
        maxuid = it->uid;
    }
    nh->version = INDEX_VERSION;
    nh->header_size = INDEX_HEADER_SIZE;
    nh->record_size = INDEX_RECORD_SIZE;
    nh->uidvalidity = uidvalidity;
    nh->uidnext = uidnext > maxuid ? uidnext : maxuid + 1;
    nh->prev_count = nh->record_count;
    nh->highestmodseq = modseq;
    /* expunged records without their file are not carried over: VANISHED below the new
     * highest modseq is answered from the client's known uids (coffer-store(5)) */
    nh->vanished_modseq = modseq;
    nh->generation = generation ? generation : 1;
    nh->commit = 1;
    index_header_encode(nh, (unsigned char *)ibuf.s + index_slot_offset(nh->commit));
    /* cache first: the new index points into it */
    if ((r = write_cache(rc->dir, &cbuf)) < 0) goto out;
    char *path = xasprintf("%s/%s", rc->dir, INDEX_FILE);
    r = file_write_atomic_paged(path, ibuf.s, ibuf.len, 0600);
    free(path);
    if (r == 0) {
        /* the derived files follow the index: the next SORT/THREAD or header SEARCH, and the
         * next open, rebuild them (mailbox-sort.h, uidcol.h; all are checked against the
         * index anyway) */
        static const char *const derived[] = { SORTKEYS_FILE, SEARCHKEYS_FILE, UIDCOL_FILE,
                                                UIDSUM_FILE };
        for (size_t i = 0; i < sizeof derived / sizeof derived[0]; i++) {
            char *sk = xasprintf("%s/%s", rc->dir, derived[i]);
            if (unlink(sk) < 0 && errno != ENOENT)
                log_warn("reconstruct_unlink_failed", "path=%s errno=%s", log_quote(sk),
                         strerror(errno));
            free(sk);
        }
    }
out:
    buf_fini(&cbuf);
    buf_fini(&ibuf);
    return r;
}

/* What the checks of one reconstruct_mailbox run found, for its write phase. */
struct recon_pass {
    struct mbheader mh;        /* the header file, when hr == 0 */
    int hr;                    /* what mbheader_read said */
    int header_bad;            /* the header file is to be rewritten */
    int cache_fd;              /* the old cache file, or -1 */
    int cache_header_ok;
    int rewrite;               /* the index and the cache are to be rewritten */
    uint32_t maxuid;
    uint64_t maxmodseq;
    struct index_header nh;    /* the counts of the rebuilt index */
};

/* lock_dir: the mailbox's lock (flock on DIR/lock, shared for a dry run) into *lock_fd_r
 * (which the caller closes, also on failure). 0, CF_E_NOTFOUND (no directory) or CF_E_IO. */
static int lock_dir(const struct recon *rc, int dry, int *lock_fd_r)
{
    struct stat sb;
    if (stat(rc->dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) return CF_E_NOTFOUND;
    char *path = xasprintf("%s/%s", rc->dir, LOCK_FILE);
    int r = 0;
    int lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0) lock_fd = open(path, O_RDONLY | O_CLOEXEC);
    *lock_fd_r = lock_fd;
    if (lock_fd < 0) {
        log_err("reconstruct_io_error", "call=open path=%s errno=%s", log_quote(path), strerror(errno));
        r = CF_E_IO;
        goto out;
    }
    while (flock(lock_fd, dry ? LOCK_SH : LOCK_EX) < 0) {
        if (errno == EINTR) continue;
        r = CF_E_IO;
        goto out;
    }
out:
    free(path);
    return r;
}

/* check_header: 1. the header file: there, readable, and naming this mailbox (uniqueid, and
 * name and acl when given). */
static void check_header(struct recon *rc, const char *uniqueid, const char *name,
                         const char *acl, struct recon_pass *ps)
{
    ps->hr = mbheader_read(rc->dir, &ps->mh);
    if (ps->hr == CF_E_NOTFOUND) {
        found(rc, "header_missing", "no header file");
        ps->header_bad = 1;
    } else if (ps->hr < 0) {
        found(rc, "header_corrupt", "the header file cannot be parsed");
        ps->header_bad = 1;
    } else {
        if (strcmp(ps->mh.uniqueid, uniqueid)) {
            found(rc, "header_wrong", "the header file has uniqueid %s", ps->mh.uniqueid);
            ps->header_bad = 1;
        }
        if (name && strcmp(ps->mh.name, name)) {
            found(rc, "header_wrong", "the header file names %s", ps->mh.name);
            ps->header_bad = 1;
        }
        if (acl && strcmp(ps->mh.acl, acl)) {
            found(rc, "header_acl", "the header file's ACL differs from the mailbox list");
            ps->header_bad = 1;
        }
    }
}

/* load_index: 2. the old index, read whole into *map (the caller frees it) and taken apart
 * (read_index). 0, or CF_E_IO when it cannot be read. */
static int load_index(struct recon *rc, unsigned char **map, size_t *len)
{
    char *path = xasprintf("%s/%s", rc->dir, INDEX_FILE);
    int ir = file_read_all(path, (size_t)-1 / 2, (char **)map, len);
    free(path);
    if (ir == CF_E_NOTFOUND) {
        found(rc, "index_missing", "no index file");
        rc->index_bad = 1;
    } else if (ir < 0) {
        return ir;
    } else {
        read_index(rc, *map, *len);
    }
    return 0;
}

/* open_cache: 4. the old cache, and whether its header is sound. */
static void open_cache(struct recon *rc, struct recon_pass *ps)
{
    char *path = xasprintf("%s/%s", rc->dir, CACHE_FILE);
    ps->cache_fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (ps->cache_fd >= 0) {
        unsigned char head[CACHE_HEADER_SIZE];
        ps->cache_header_ok = pread(ps->cache_fd, head, sizeof head, 0) == (ssize_t)sizeof head &&
                              cache_header_check(head, sizeof head) == 0;
    }
    if (!ps->cache_header_ok)
        found(rc, "cache_damaged", ps->cache_fd < 0 ? "no cache file" : "bad cache file header");
}

/* compare_item: 5. one uid: its record against its file (and its cache record); the
 * survivors are counted into ps->nh. */
static void compare_item(struct recon *rc, struct item *it, struct recon_pass *ps,
                         uint32_t *cache_bad)
{
    struct recon_report *rep = rc->rep;
    if (it->have_rec && (it->rec.flags & FLAG_EXPUNGED)) {
        if (retained(it)) {
            if (it->uid > ps->maxuid) ps->maxuid = it->uid;
            return;
        }
        if (it->have_file) found(rc, "expunged_file", "uid %u: the file of an expunged message is still there", (unsigned)it->uid);
        return;
    }
    if (it->have_rec && !it->have_file) {
        found(rc, "record_dropped", "uid %u: message file missing", (unsigned)it->uid);
        rep->dropped++;
        ps->rewrite = 1;
        return;
    }
    if (!it->have_rec && rc->have_header && !rc->index_bad && it->uid >= rc->old.uidnext) {
        /* Above the committed uidnext of an intact index: the file of an append killed
         * before its commit, never acknowledged (it will be delivered again), or of one
         * in progress. Adopting it would make a duplicate; the mailbox's next writer
         * removes it, and so do we unless an append still claims it. */
        it->have_file = 0;
        it->uncommitted = 1;
        return;
    }
    if (!it->have_rec) {
        found(rc, "message_adopted", "uid %u: message file without a record (%llu bytes)",
              (unsigned)it->uid, (unsigned long long)it->file_size);
        rep->adopted++;
        it->rec.uid = it->uid;
        it->rec.internaldate = it->file_mtime;
        it->rec.savedate = it->file_mtime;     /* RFC 8514: when the file was stored */
        it->resummarize = 1;
        ps->rewrite = 1;
    } else if (it->rec.size != it->file_size) {
        found(rc, "size_fixed", "uid %u: index says %llu bytes, the file has %llu",
              (unsigned)it->uid, (unsigned long long)it->rec.size, (unsigned long long)it->file_size);
        rep->fixed++;
        it->resummarize = 1;
        ps->rewrite = 1;
    } else if (ps->cache_header_ok && it->rec.cache_offset &&
               cache_read(ps->cache_fd, it->rec.cache_offset, it->uid, &it->ce) == 0) {
        it->cache_ok = 1;
    } else {
        (*cache_bad)++;
        it->resummarize = 1;
    }
    if (it->rec.modseq > ps->maxmodseq) ps->maxmodseq = it->rec.modseq;
    if (it->uid > ps->maxuid) ps->maxuid = it->uid;
    struct index_header *nh = &ps->nh;
    nh->exists++;
    if (it->rec.flags & FLAG_DELETED) nh->deleted++;
    if (it->rec.flags & FLAG_SEEN) nh->seen++;
    if (it->rec.flags & FLAG_ANSWERED) nh->answered++;
    if (it->rec.flags & FLAG_FLAGGED) nh->flagged++;
    nh->quota_used += it->file_size;
}

/* compare: 5. every uid (compare_item), then the old header's counts and uidnext against
 * what was found: ps->rewrite says whether the index must be written. */
static void compare(struct recon *rc, struct recon_pass *ps)
{
    uint32_t cache_bad = 0;
    ps->rewrite = rc->index_bad;
    ps->maxmodseq = rc->old.highestmodseq;
    for (size_t i = 0; i < rc->n; i++) compare_item(rc, &rc->items[i], ps, &cache_bad);
    if (cache_bad && ps->cache_header_ok) {
        found(rc, "cache_damaged", "%u cache records missing or damaged", (unsigned)cache_bad);
        ps->rewrite = 1;
    }
    if (!ps->cache_header_ok) ps->rewrite = 1;
    const struct index_header *nh = &ps->nh;
    if (rc->have_header && !ps->rewrite) {
        const struct index_header *o = &rc->old;
        uint32_t old_exists = o->exists;
        if (o->exists != nh->exists || o->deleted != nh->deleted || o->seen != nh->seen ||
            o->answered != nh->answered || o->flagged != nh->flagged || o->quota_used != nh->quota_used) {
            found(rc, "counts_fixed", "exists %u->%u deleted %u->%u seen %u->%u bytes %llu->%llu",
                  (unsigned)old_exists, (unsigned)nh->exists, (unsigned)o->deleted, (unsigned)nh->deleted,
                  (unsigned)o->seen, (unsigned)nh->seen, (unsigned long long)o->quota_used,
                  (unsigned long long)nh->quota_used);
            ps->rewrite = 1;
        }
        if (o->uidnext <= ps->maxuid) {
            found(rc, "uidnext_fixed", "uidnext %u is not above uid %u", (unsigned)o->uidnext, (unsigned)ps->maxuid);
            ps->rewrite = 1;
        }
    }
    rc->rep->messages += nh->exists;
}

/* choose_uidvalidity: 6. the old index's UIDVALIDITY, else the header file's, else a new one
 * (above the list's counter); a header file that disagrees is to be rewritten. */
static uint32_t choose_uidvalidity(struct recon *rc, struct recon_pass *ps)
{
    struct recon_report *rep = rc->rep;
    uint32_t uidvalidity = rc->have_slot ? rc->old.uidvalidity : ps->hr == 0 ? ps->mh.uidvalidity : 0;
    if (!uidvalidity) {
        uint32_t now = (uint32_t)time(NULL);
        uidvalidity = rep->uidvalidity_next > now ? rep->uidvalidity_next : now;
        found(rc, "uidvalidity_new", "no uidvalidity survives: clients will resynchronize");
    }
    if (uidvalidity > rep->uidvalidity_max) rep->uidvalidity_max = uidvalidity;
    if (ps->hr == 0 && ps->mh.uidvalidity != uidvalidity && !ps->header_bad) {
        found(rc, "header_wrong", "the header file says uidvalidity %u, the index %u",
              (unsigned)ps->mh.uidvalidity, (unsigned)uidvalidity);
        ps->header_bad = 1;
    }
    return uidvalidity;
}

/* write_changes: 6. the new index and cache, and the header file, where they are needed. 0
 * or CF_E_IO. */
static int write_changes(struct recon *rc, struct recon_pass *ps, const char *uniqueid,
                         const char *name, const char *acl, uint32_t uidvalidity)
{
    int r;
    if (ps->rewrite) {
        uint32_t uidnext = rc->have_slot && rc->old.uidnext > ps->maxuid ? rc->old.uidnext : ps->maxuid + 1;
        if ((r = write_mailbox(rc, uidvalidity, uidnext, ps->maxmodseq + 1, rc->old.generation + 1, &ps->nh)) < 0)
            return r;
    }
    if (ps->header_bad && (name || ps->hr == 0)) {
        struct mbheader nmh = { (char *)(name ? name : ps->mh.name), (char *)uniqueid,
                                (char *)(acl ? acl : ps->hr == 0 ? ps->mh.acl : ""), uidvalidity };
        if ((r = mbheader_write(rc->dir, &nmh)) < 0) return r;
    }
    return 0;
}

/* remove_leftovers: 6. the files nothing refers to any more: of appends that never
 * committed (unless one is in progress: it stages its files before taking the lock), then
 * of expunged records, after the index no longer needs them. */
static void remove_leftovers(struct recon *rc, int lock_fd)
{
    for (size_t i = 0; i < rc->n; i++) {
        if (!rc->items[i].uncommitted || mailbox_uid_staged(lock_fd, rc->items[i].uid)) continue;
        char *mp = xasprintf("%s/%u.", rc->dir, (unsigned)rc->items[i].uid);
        if (unlink(mp) < 0 && errno != ENOENT)
            log_warn("reconstruct_unlink_failed", "path=%s errno=%s", log_quote(mp), strerror(errno));
        else
            log_notice("reconstruct_uncommitted_removed", "mbox=%s uid=%u", log_quote(rc->label),
                       (unsigned)rc->items[i].uid);
        free(mp);
    }
    for (size_t i = 0; i < rc->n; i++) {
        struct item *it = &rc->items[i];
        if (!(it->have_rec && (it->rec.flags & FLAG_EXPUNGED) && it->have_file) || retained(it)) continue;
        char *mp = xasprintf("%s/%u.", rc->dir, (unsigned)it->uid);
        if (unlink(mp) < 0 && errno != ENOENT)
            log_warn("reconstruct_unlink_failed", "path=%s errno=%s", log_quote(mp), strerror(errno));
        free(mp);
    }
}

int reconstruct_mailbox(const char *partition_path, const char *uniqueid, const char *name,
                        const char *acl, unsigned flags, struct recon_report *rep)
{
    if (!partition_uniqueid_valid(uniqueid)) return CF_E_PARSE;
    int dry = flags & RECON_DRY_RUN;
    struct recon rc;
    memset(&rc, 0, sizeof rc);
    strarr_init(&rc.keywords);
    rc.rep = rep;
    rc.dir = partition_mailbox_dir(partition_path, uniqueid);
    rc.label = name ? name : rc.dir;
    struct recon_pass ps;
    memset(&ps, 0, sizeof ps);
    mbheader_init(&ps.mh);
    ps.cache_fd = -1;
    unsigned char *map = NULL;
    size_t len = 0;
    int lock_fd = -1, r;
    rep->mailboxes++;
    if ((r = lock_dir(&rc, dry, &lock_fd)) < 0) goto out;
    check_header(&rc, uniqueid, name, acl, &ps);                /* 1. */
    if ((r = load_index(&rc, &map, &len)) < 0) goto out;        /* 2. */
    if ((r = scan_files(&rc)) < 0) goto out;                    /* 3. the message files */
    open_cache(&rc, &ps);                                       /* 4. */
    compare(&rc, &ps);                                          /* 5. */
    uint32_t uidvalidity = choose_uidvalidity(&rc, &ps);        /* 6. write */
    if (!dry) {
        if ((r = write_changes(&rc, &ps, uniqueid, name, acl, uidvalidity)) < 0) goto out;
        remove_leftovers(&rc, lock_fd);
        if (rc.findings)
            log_notice("mailbox_reconstructed", "mbox=%s uniqueid=%s findings=%d messages=%u",
                       log_quote(rc.label), uniqueid, rc.findings, (unsigned)ps.nh.exists);
    }
    r = rc.findings;
out:
    if (ps.cache_fd >= 0) close(ps.cache_fd);
    if (lock_fd >= 0) close(lock_fd);   /* drops the lock */
    free(map);
    mbheader_fini(&ps.mh);
    recon_fini(&rc);
    return r;
}

int reconstruct_lock(const char *partition_path, const char *uniqueid, int *fd_r)
{
    *fd_r = -1;
    if (!partition_uniqueid_valid(uniqueid)) return CF_E_NOTFOUND;
    char *dir = partition_mailbox_dir(partition_path, uniqueid);
    char *path = xasprintf("%s/%s", dir, LOCK_FILE);
    int r = 0;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        r = errno == ENOENT ? CF_E_NOTFOUND : CF_E_IO;
        if (r == CF_E_IO)
            log_err("reconstruct_io_error", "call=open path=%s errno=%s", log_quote(path), strerror(errno));
    } else {
        while (flock(fd, LOCK_EX) < 0 && errno == EINTR) {}
        *fd_r = fd;
    }
    free(path);
    free(dir);
    return r;
}

int reconstruct_import(const char *partition_path, const char *uniqueid, uint32_t uidvalidity,
                       uint32_t uidnext, uint64_t highestmodseq, const struct recon_import *msgs,
                       size_t n)
{
    if (!partition_uniqueid_valid(uniqueid)) return CF_E_NOTFOUND;
    struct recon_report rep;
    recon_report_init(&rep);
    struct recon rc;
    memset(&rc, 0, sizeof rc);
    strarr_init(&rc.keywords);
    rc.rep = &rep;
    rc.dir = partition_mailbox_dir(partition_path, uniqueid);
    rc.label = rc.dir;
    struct mbheader mh;
    mbheader_init(&mh);
    int r = 0;
    for (size_t i = 0; i < n; i++) {
        struct item *it = item_add(&rc, msgs[i].uid);
        it->have_file = 1;
        it->resummarize = 1;
        it->rec.uid = msgs[i].uid;
        it->rec.flags = msgs[i].flags & FLAG_SYSTEM_MASK;
        it->rec.internaldate = msgs[i].internaldate;
        it->rec.modseq = msgs[i].modseq;
        for (size_t k = 0; msgs[i].keywords && msgs[i].keywords[k]; k++) {
            int bit = strarr_find_case(&rc.keywords, msgs[i].keywords[k]);
            if (bit < 0) {
                if (rc.keywords.count >= INDEX_MAX_KEYWORDS) {
                    r = CF_E_LIMIT;
                    goto out;
                }
                strarr_add(&rc.keywords, msgs[i].keywords[k]);
                bit = (int)rc.keywords.count - 1;
            }
            index_user_flag_set(&it->rec, (unsigned)bit, 1);
        }
    }
    if (rc.n) qsort(rc.items, rc.n, sizeof *rc.items, item_cmp);
    for (size_t i = 1; i < rc.n; i++)
        if (rc.items[i].uid == rc.items[i - 1].uid) {
            r = CF_E_PARSE;
            goto out;
        }
    /* modseqs come from the caller (write_mailbox keeps a record's modseq when its size is the
     * file's): the sizes are taken now */
    struct index_header nh;
    uint64_t modseq = highestmodseq ? highestmodseq : 1;
    for (size_t i = 0; i < rc.n; i++) {
        struct item *it = &rc.items[i];
        char *mp = xasprintf("%s/%u.", rc.dir, (unsigned)it->uid);
        struct stat sb;
        int st = stat(mp, &sb);
        free(mp);
        if (st < 0) {
            r = CF_E_NOTFOUND;
            goto out;
        }
        it->have_rec = 1;
        it->file_size = it->rec.size = (uint64_t)sb.st_size;
        if (!it->rec.modseq || it->rec.modseq > modseq) it->rec.modseq = modseq;
    }
    r = write_mailbox(&rc, uidvalidity, uidnext, modseq, 1, &nh);
    if (r < 0) goto out;
    r = mbheader_read(rc.dir, &mh);
    if (r == 0 && mh.uidvalidity != uidvalidity) {
        mh.uidvalidity = uidvalidity;
        r = mbheader_write(rc.dir, &mh);
    }
out:
    mbheader_fini(&mh);
    recon_fini(&rc);
    recon_report_fini(&rep);
    return r;
}
