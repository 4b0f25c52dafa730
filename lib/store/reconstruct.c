/* reconstruct.c: rebuilding a mailbox's index and cache from its files, the mailbox list from
 * the partitions' header files, and finishing interrupted deletes (see reconstruct.h). */
#include "store/reconstruct.h"
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
#define TOMBSTONE_SUFFIX ".deleted"

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

/* ---- one mailbox ---- */

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

/* message_uid: the uid of a message file name "<uid>.", or 0. */
static uint32_t message_uid(const char *fn)
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
        uint32_t uid = message_uid(de->d_name);
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
    nh->generation = generation ? generation : 1;
    nh->commit = 1;
    index_header_encode(nh, (unsigned char *)ibuf.s + index_slot_offset(nh->commit));
    /* cache first: the new index points into it */
    if ((r = write_cache(rc->dir, &cbuf)) < 0) goto out;
    char *path = xasprintf("%s/%s", rc->dir, INDEX_FILE);
    r = file_write_atomic(path, ibuf.s, ibuf.len, 0600);
    free(path);
out:
    buf_fini(&cbuf);
    buf_fini(&ibuf);
    return r;
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
    struct mbheader mh;
    mbheader_init(&mh);
    unsigned char *map = NULL;
    size_t len = 0;
    int lock_fd = -1, r = 0;
    char *path = NULL;
    int cache_fd = -1;
    struct stat sb;
    rep->mailboxes++;
    if (stat(rc.dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
        r = CF_E_NOTFOUND;
        goto out;
    }
    path = xasprintf("%s/%s", rc.dir, LOCK_FILE);
    lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd < 0) lock_fd = open(path, O_RDONLY | O_CLOEXEC);
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

    /* 1. the header file */
    int hr = mbheader_read(rc.dir, &mh);
    int header_bad = 0;
    if (hr == CF_E_NOTFOUND) {
        found(&rc, "header_missing", "no header file");
        header_bad = 1;
    } else if (hr < 0) {
        found(&rc, "header_corrupt", "the header file cannot be parsed");
        header_bad = 1;
    } else {
        if (strcmp(mh.uniqueid, uniqueid)) {
            found(&rc, "header_wrong", "the header file has uniqueid %s", mh.uniqueid);
            header_bad = 1;
        }
        if (name && strcmp(mh.name, name)) {
            found(&rc, "header_wrong", "the header file names %s", mh.name);
            header_bad = 1;
        }
        if (acl && strcmp(mh.acl, acl)) {
            found(&rc, "header_acl", "the header file's ACL differs from the mailbox list");
            header_bad = 1;
        }
    }

    /* 2. the old index */
    free(path);
    path = xasprintf("%s/%s", rc.dir, INDEX_FILE);
    int ir = file_read_all(path, (size_t)-1 / 2, (char **)&map, &len);
    if (ir == CF_E_NOTFOUND) {
        found(&rc, "index_missing", "no index file");
        rc.index_bad = 1;
    } else if (ir < 0) {
        r = ir;
        goto out;
    } else {
        read_index(&rc, map, len);
    }

    /* 3. the message files */
    if ((r = scan_files(&rc)) < 0) goto out;

    /* 4. the old cache */
    free(path);
    path = xasprintf("%s/%s", rc.dir, CACHE_FILE);
    cache_fd = open(path, O_RDONLY | O_CLOEXEC);
    int cache_header_ok = 0;
    if (cache_fd >= 0) {
        unsigned char head[CACHE_HEADER_SIZE];
        cache_header_ok = pread(cache_fd, head, sizeof head, 0) == (ssize_t)sizeof head &&
                          cache_header_check(head, sizeof head) == 0;
    }
    if (!cache_header_ok) found(&rc, "cache_damaged", cache_fd < 0 ? "no cache file" : "bad cache file header");

    /* 5. compare */
    int rewrite = rc.index_bad;
    uint32_t maxuid = 0, cache_bad = 0;
    uint64_t maxmodseq = rc.old.highestmodseq;
    struct index_header nh;
    memset(&nh, 0, sizeof nh);
    for (size_t i = 0; i < rc.n; i++) {
        struct item *it = &rc.items[i];
        if (it->have_rec && (it->rec.flags & FLAG_EXPUNGED)) {
            if (retained(it)) {
                if (it->uid > maxuid) maxuid = it->uid;
                continue;
            }
            if (it->have_file) found(&rc, "expunged_file", "uid %u: the file of an expunged message is still there", (unsigned)it->uid);
            continue;
        }
        if (it->have_rec && !it->have_file) {
            found(&rc, "record_dropped", "uid %u: message file missing", (unsigned)it->uid);
            rep->dropped++;
            rewrite = 1;
            continue;
        }
        if (!it->have_rec && rc.have_header && !rc.index_bad && it->uid >= rc.old.uidnext) {
            /* Above the committed uidnext of an intact index: the file of an append killed
             * before its commit, never acknowledged (it will be delivered again), or of one
             * in progress. Adopting it would make a duplicate; the mailbox's next writer
             * removes it, and so do we unless an append still claims it. */
            it->have_file = 0;
            it->uncommitted = 1;
            continue;
        }
        if (!it->have_rec) {
            found(&rc, "message_adopted", "uid %u: message file without a record (%llu bytes)",
                  (unsigned)it->uid, (unsigned long long)it->file_size);
            rep->adopted++;
            it->rec.uid = it->uid;
            it->rec.internaldate = it->file_mtime;
            it->resummarize = 1;
            rewrite = 1;
        } else if (it->rec.size != it->file_size) {
            found(&rc, "size_fixed", "uid %u: index says %llu bytes, the file has %llu",
                  (unsigned)it->uid, (unsigned long long)it->rec.size, (unsigned long long)it->file_size);
            rep->fixed++;
            it->resummarize = 1;
            rewrite = 1;
        } else if (cache_header_ok && it->rec.cache_offset &&
                   cache_read(cache_fd, it->rec.cache_offset, it->uid, &it->ce) == 0) {
            it->cache_ok = 1;
        } else {
            cache_bad++;
            it->resummarize = 1;
        }
        if (it->rec.modseq > maxmodseq) maxmodseq = it->rec.modseq;
        if (it->uid > maxuid) maxuid = it->uid;
        nh.exists++;
        if (it->rec.flags & FLAG_DELETED) nh.deleted++;
        if (it->rec.flags & FLAG_SEEN) nh.seen++;
        if (it->rec.flags & FLAG_ANSWERED) nh.answered++;
        if (it->rec.flags & FLAG_FLAGGED) nh.flagged++;
        nh.quota_used += it->file_size;
    }
    if (cache_bad && cache_header_ok) {
        found(&rc, "cache_damaged", "%u cache records missing or damaged", (unsigned)cache_bad);
        rewrite = 1;
    }
    if (!cache_header_ok) rewrite = 1;
    if (rc.have_header && !rewrite) {
        const struct index_header *o = &rc.old;
        uint32_t old_exists = o->exists;
        if (o->exists != nh.exists || o->deleted != nh.deleted || o->seen != nh.seen ||
            o->answered != nh.answered || o->flagged != nh.flagged || o->quota_used != nh.quota_used) {
            found(&rc, "counts_fixed", "exists %u->%u deleted %u->%u seen %u->%u bytes %llu->%llu",
                  (unsigned)old_exists, (unsigned)nh.exists, (unsigned)o->deleted, (unsigned)nh.deleted,
                  (unsigned)o->seen, (unsigned)nh.seen, (unsigned long long)o->quota_used,
                  (unsigned long long)nh.quota_used);
            rewrite = 1;
        }
        if (o->uidnext <= maxuid) {
            found(&rc, "uidnext_fixed", "uidnext %u is not above uid %u", (unsigned)o->uidnext, (unsigned)maxuid);
            rewrite = 1;
        }
    }
    rep->messages += nh.exists;

    /* 6. write */
    uint32_t uidvalidity = rc.have_slot ? rc.old.uidvalidity : hr == 0 ? mh.uidvalidity : 0;
    if (!uidvalidity) {
        uint32_t now = (uint32_t)time(NULL);
        uidvalidity = rep->uidvalidity_next > now ? rep->uidvalidity_next : now;
        found(&rc, "uidvalidity_new", "no uidvalidity survives: clients will resynchronize");
    }
    if (uidvalidity > rep->uidvalidity_max) rep->uidvalidity_max = uidvalidity;
    if (hr == 0 && mh.uidvalidity != uidvalidity && !header_bad) {
        found(&rc, "header_wrong", "the header file says uidvalidity %u, the index %u",
              (unsigned)mh.uidvalidity, (unsigned)uidvalidity);
        header_bad = 1;
    }
    if (dry) goto done;
    if (rewrite) {
        uint32_t uidnext = rc.have_slot && rc.old.uidnext > maxuid ? rc.old.uidnext : maxuid + 1;
        if ((r = write_mailbox(&rc, uidvalidity, uidnext, maxmodseq + 1, rc.old.generation + 1, &nh)) < 0)
            goto out;
    }
    if (header_bad && (name || hr == 0)) {
        struct mbheader nmh = { (char *)(name ? name : mh.name), (char *)uniqueid,
                                (char *)(acl ? acl : hr == 0 ? mh.acl : ""), uidvalidity };
        if ((r = mbheader_write(rc.dir, &nmh)) < 0) goto out;
    }
    /* files of appends that never committed: nothing refers to them (no index rewrite needed) */
    for (size_t i = 0; i < rc.n; i++) {
        /* an append in progress elsewhere (it stages its files before taking the lock) */
        if (!rc.items[i].uncommitted || mailbox_uid_staged(lock_fd, rc.items[i].uid)) continue;
        char *mp = xasprintf("%s/%u.", rc.dir, (unsigned)rc.items[i].uid);
        if (unlink(mp) < 0 && errno != ENOENT)
            log_warn("reconstruct_unlink_failed", "path=%s errno=%s", log_quote(mp), strerror(errno));
        else
            log_notice("reconstruct_uncommitted_removed", "mbox=%s uid=%u", log_quote(rc.label),
                       (unsigned)rc.items[i].uid);
        free(mp);
    }
    /* files of expunged records go last, after the index no longer needs them */
    for (size_t i = 0; i < rc.n; i++) {
        struct item *it = &rc.items[i];
        if (!(it->have_rec && (it->rec.flags & FLAG_EXPUNGED) && it->have_file) || retained(it)) continue;
        char *mp = xasprintf("%s/%u.", rc.dir, (unsigned)it->uid);
        if (unlink(mp) < 0 && errno != ENOENT)
            log_warn("reconstruct_unlink_failed", "path=%s errno=%s", log_quote(mp), strerror(errno));
        free(mp);
    }
    if (rc.findings)
        log_notice("mailbox_reconstructed", "mbox=%s uniqueid=%s findings=%d messages=%u",
                   log_quote(rc.label), uniqueid, rc.findings, (unsigned)nh.exists);
done:
    r = rc.findings;
out:
    if (cache_fd >= 0) close(cache_fd);
    if (lock_fd >= 0) close(lock_fd);   /* drops the lock */
    free(map);
    free(path);
    mbheader_fini(&mh);
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

/* ---- the mailbox list ---- */

/* What the list says: one entry per mailbox. */
struct listed {
    char *name;
    struct mboxlist_entry e;
    int seen_dir;     /* its directory was found on some partition */
};

struct listing {
    struct listed *v;
    size_t n, alloc;
};

static int collect(const char *name, const struct mboxlist_entry *e, void *rock)
{
    struct listing *l = rock;
    if (l->n == l->alloc) {
        l->alloc = l->alloc ? l->alloc * 2 : 64;
        l->v = xreallocarray(l->v, l->alloc, sizeof *l->v);
    }
    struct listed *x = &l->v[l->n++];
    memset(x, 0, sizeof *x);
    x->name = xstrdup(name);
    mboxlist_entry_init(&x->e);
    x->e.partition = xstrdup(e->partition);
    memcpy(x->e.uniqueid, e->uniqueid, sizeof x->e.uniqueid);
    x->e.acl = xstrdup(e->acl);
    x->e.flags = xstrdup(e->flags);
    x->e.ctime = e->ctime;
    return 0;
}

static struct listed *by_uniqueid(struct listing *l, const char *uniqueid)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i].e.uniqueid, uniqueid)) return &l->v[i];
    return NULL;
}

static struct listed *by_name(struct listing *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i].name, name)) return &l->v[i];
    return NULL;
}

/* has_messages: whether dir holds a message file. */
static int has_messages(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *de;
    int any = 0;
    while (!any && (de = readdir(d))) any = message_uid(de->d_name) != 0;
    closedir(d);
    return any;
}

/* remove_files_dir: unlink every file in dir, then dir. 0 or CF_E_IO. */
static int remove_files_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return CF_E_IO;
    struct dirent *de;
    int r = 0;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT) r = CF_E_IO;
    }
    closedir(d);
    if (!r && rmdir(dir) < 0) r = CF_E_IO;
    if (r) log_err("reconstruct_io_error", "call=remove path=%s errno=%s", log_quote(dir), strerror(errno));
    return r;
}

static int dir_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* deleted_side_file: whether dir holds the side file of a delayed delete. */
static int deleted_side_file(const char *dir)
{
    char *p = xasprintf("%s/%s", dir, DELETED_FILE);
    int there = access(p, F_OK) == 0;
    free(p);
    return there;
}

/* one_dir: a directory PPATH/xx/FN found while scanning partition part. */
static int one_dir(struct store *st, const struct partition *part, const char *xxdir,
                   const char *fn, struct listing *l, unsigned flags, struct recon_report *rep)
{
    int dry = flags & RECON_DRY_RUN;
    int n = 0, r = 0;
    char *dir = xasprintf("%s/%s", xxdir, fn);
    size_t fl = strlen(fn), tl = strlen(TOMBSTONE_SUFFIX);
    if (fl == UNIQUEID_LEN + tl && !strcmp(fn + UNIQUEID_LEN, TOMBSTONE_SUFFIX)) {
        char *uid = xstrndup(fn, UNIQUEID_LEN);
        char *live = xstrndup(dir, strlen(dir) - tl);
        struct listed *x = by_uniqueid(l, uid);
        if (x && !strcmp(x->e.partition, part->name) && !dir_exists(live)) {
            recon_report_add(rep, x->name, "tombstone_restored", "%s: the delete never removed the list entry", dir);
            if (!dry && rename(dir, live) < 0) r = CF_E_IO;
        } else if (deleted_side_file(dir)) {
            /* a delayed delete (store-retained.h) cut short before it hid the directory */
            char *held = xasprintf("%s%s", live, DELETED_SUFFIX);
            recon_report_add(rep, x ? x->name : dir, "tombstone_hidden", "%s: an interrupted delayed delete", dir);
            if (!dry && rename(dir, held) < 0) r = CF_E_IO;
            free(held);
        } else {
            recon_report_add(rep, x ? x->name : dir, "tombstone_removed", "%s: an interrupted delete", dir);
            if (!dry) r = remove_files_dir(dir);
        }
        n++;
        free(uid);
        free(live);
        goto out;
    }
    if (!partition_uniqueid_valid(fn)) goto out;
    struct mbheader h;
    mbheader_init(&h);
    int hr = mbheader_read(dir, &h);
    if (hr == CF_E_NOTFOUND || hr == CF_E_CORRUPT) {
        struct listed *x = by_uniqueid(l, fn);
        if (x) {
            x->seen_dir = 1;   /* the mailbox check rewrites its header */
        } else if (!has_messages(dir)) {
            recon_report_add(rep, dir, "unfinished_create", "a directory without %s header and no messages",
                             hr == CF_E_NOTFOUND ? "a" : "a readable");
            if (!dry) r = remove_files_dir(dir);
            n++;
        } else {
            recon_report_add(rep, dir, "orphan_directory", "messages but no readable header: name unknown, left alone");
            n++;
        }
        mbheader_fini(&h);
        goto out;
    }
    if (hr < 0) {
        mbheader_fini(&h);
        r = hr;
        goto out;
    }
    if (h.uidvalidity > rep->uidvalidity_max) rep->uidvalidity_max = h.uidvalidity;
    struct listed *x = by_name(l, h.name);
    if (!x) {
        struct listed *y = by_uniqueid(l, fn);
        if (y) {
            /* listed under another name: a rename whose header update was lost */
            y->seen_dir = 1;
        } else if (mboxname_valid(h.name) == 0) {
            recon_report_add(rep, h.name, "mailbox_added", "from %s on partition %s", fn, part->name);
            n++;
            if (!dry) {
                struct mboxlist_entry e;
                mboxlist_entry_init(&e);
                memcpy(e.uniqueid, fn, UNIQUEID_LEN + 1);
                e.partition = xstrdup(part->name);
                e.acl = xstrdup(h.acl);
                e.flags = xstrdup("");
                r = mboxlist_create(st->mboxlist, NULL, h.name, &e);
                if (!r) {
                    collect(h.name, &e, l);
                    l->v[l->n - 1].seen_dir = 1;
                }
                mboxlist_entry_fini(&e);
            }
        } else {
            recon_report_add(rep, dir, "orphan_directory", "its header names an invalid mailbox name");
            n++;
        }
    } else if (!strcmp(x->e.uniqueid, fn)) {
        if (strcmp(x->e.partition, part->name)) {
            const char *lp = store_partition_path(st, x->e.partition);
            char *ldir = lp ? partition_mailbox_dir(lp, fn) : NULL;
            if (!ldir || !dir_exists(ldir)) {
                recon_report_add(rep, x->name, "entry_partition_fixed", "%s -> %s", x->e.partition, part->name);
                n++;
                if (!dry) {
                    free(x->e.partition);
                    x->e.partition = xstrdup(part->name);
                    r = mboxlist_update(st->mboxlist, NULL, x->name, &x->e);
                }
                x->seen_dir = 1;
            } else {
                recon_report_add(rep, x->name, "duplicate_directory",
                                 "also on partition %s (a move cut short); the list names %s", part->name, x->e.partition);
                n++;
            }
            free(ldir);
        } else {
            x->seen_dir = 1;
        }
    } else {
        const char *lp = store_partition_path(st, x->e.partition);
        char *ldir = lp ? partition_mailbox_dir(lp, x->e.uniqueid) : NULL;
        if (ldir && dir_exists(ldir)) {
            recon_report_add(rep, x->name, "orphan_directory", "%s also claims this name; left alone", dir);
            n++;
        } else {
            recon_report_add(rep, x->name, "entry_uniqueid_fixed", "%s -> %s", x->e.uniqueid, fn);
            n++;
            if (!dry) {
                memcpy(x->e.uniqueid, fn, UNIQUEID_LEN + 1);
                free(x->e.partition);
                x->e.partition = xstrdup(part->name);
                r = mboxlist_update(st->mboxlist, NULL, x->name, &x->e);
            }
            x->seen_dir = 1;
        }
        free(ldir);
    }
    mbheader_fini(&h);
out:
    free(dir);
    return r < 0 ? r : n;
}

int reconstruct_mailboxlist(struct store *st, unsigned flags, struct recon_report *rep)
{
    struct listing l = { NULL, 0, 0 };
    int r = mboxlist_foreach(st->mboxlist, NULL, "", collect, &l);
    int n = 0;
    if (r < 0) goto out;
    r = 0;
    for (size_t p = 0; p < st->cfg->npartitions && r >= 0; p++) {
        const struct partition *part = &st->cfg->partitions[p];
        DIR *pd = opendir(part->path);
        if (!pd) {
            if (errno != ENOENT) {
                recon_report_add(rep, "", "partition_unreadable", "%s: %s", part->path, strerror(errno));
                n++;
            }
            continue;
        }
        struct dirent *de;
        while (r >= 0 && (de = readdir(pd))) {
            if (strlen(de->d_name) != 2 || de->d_name[0] == '.') continue;
            char *xx = xasprintf("%s/%s", part->path, de->d_name);
            DIR *xd = opendir(xx);
            if (xd) {
                /* names first: one_dir may remove entries of the directory */
                struct strarr names = STRARR_INIT;
                struct dirent *e2;
                while ((e2 = readdir(xd)))
                    if (e2->d_name[0] != '.') strarr_add(&names, e2->d_name);
                closedir(xd);
                strarr_sort(&names);
                for (size_t i = 0; i < names.count && r >= 0; i++) {
                    r = one_dir(st, part, xx, names.v[i], &l, flags, rep);
                    if (r > 0) n += r;
                }
                strarr_fini(&names);
                if (!(flags & RECON_DRY_RUN)) rmdir(xx);   /* only when it became empty */
            }
            free(xx);
        }
        closedir(pd);
    }
    if (r < 0) goto out;
    r = 0;
    for (size_t i = 0; i < l.n; i++) {
        struct listed *x = &l.v[i];
        if (x->seen_dir) continue;
        const char *pp = store_partition_path(st, x->e.partition);
        char *dir = pp ? partition_mailbox_dir(pp, x->e.uniqueid) : NULL;
        if (!dir) {
            recon_report_add(rep, x->name, "entry_unknown_partition", "partition %s is not configured", x->e.partition);
            n++;
        } else if (!dir_exists(dir)) {
            recon_report_add(rep, x->name, "entry_without_directory", "%s does not exist", dir);
            n++;
        }
        free(dir);
    }
    /* the counter of new UIDVALIDITYs must stay above every one on disk (mboxlist.h) */
    if (!(flags & RECON_DRY_RUN) && rep->uidvalidity_max) {
        int ur = mboxlist_raise_uidvalidity(st->mboxlist, NULL, rep->uidvalidity_max, NULL);
        if (ur < 0) r = ur;
    }
out:
    for (size_t i = 0; i < l.n; i++) {
        free(l.v[i].name);
        mboxlist_entry_fini(&l.v[i].e);
    }
    free(l.v);
    return r < 0 ? r : n;
}
