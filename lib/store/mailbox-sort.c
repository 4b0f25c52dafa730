/* mailbox-sort.c: the index walk and the sort key file of mailbox-sort.h. The key file is a
 * header and an append-only run of records in ascending uid order; it is never truncated in
 * place (a reader may have it mapped): it grows by appends under its own flock, and is
 * replaced as a whole (temp file, rename) when it must shrink or is damaged. No fsync: it is
 * a cache that a reader checks record by record and rebuilds when it does not fit. */
#include "store/mailbox-sort.h"
#include "store/mailbox-int.h"
#include "store/index.h"
#include "store/mail.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

struct mailbox_sortkeys_stats mailbox_sortkeys_stats;

/* Header layout (byte offsets). */
enum {
    SH_MAGIC = 0, SH_VERSION = 8, SH_HEADER_SIZE = 12, SH_UIDVALIDITY = 16,
    SH_CONTENT_VERSION = 20, SH_KEY = 24, SH_CRC = 60
};
/* Record layout: length (of the whole record), uid, GUID prefix, blob, checksum of the rest
 * (mailbox_sortkeys_sum). */
enum { SR_LEN = 0, SR_UID = 4, SR_GUID = 8, SR_BLOB = 16 };
#define SR_OVERHEAD (SR_BLOB + 4)

/* find_from: the position of uid among the records [pos, count) of the mapped index, or -1;
 * *pos_r is where the next (greater) uid's search may start. */
static long find_from(const unsigned char *map, uint32_t count, uint32_t pos, uint32_t uid,
                      uint32_t *pos_r)
{
    /* the uids asked for are usually dense: look a few records ahead before bisecting */
    for (int k = 0; k < 4 && pos < count; k++, pos++) {
        uint32_t u = index_record_uid(map + index_record_offset(pos));
        if (u == uid) { *pos_r = pos + 1; return (long)pos; }
        if (u > uid) { *pos_r = pos; return -1; }
    }
    uint32_t lo = pos, hi = count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint32_t u = index_record_uid(map + index_record_offset(mid));
        if (u == uid) { *pos_r = mid + 1; return (long)mid; }
        if (u < uid) lo = mid + 1;
        else hi = mid;
    }
    *pos_r = lo;
    return -1;
}

void mailbox_sort_records(struct mailbox *mb, const uint32_t *uids, size_t n,
                          struct mailbox_sortrec *out)
{
    const unsigned char *map = mb->map;
    uint32_t count = mb->hdr.record_count, pos = 0;
    for (size_t i = 0; i < n; i++) {
        struct mailbox_sortrec *o = &out[i];
        memset(o, 0, sizeof *o);
        long p = map ? find_from(map, count, pos, uids[i], &pos) : -1;
        if (p < 0) continue;
        struct index_record r;
        index_record_decode_unchecked(map + index_record_offset((uint32_t)p), &r);
        o->internaldate = r.internaldate;
        o->sentdate = r.sentdate;
        o->size = r.size;
        memcpy(o->guid, r.guid, SORTKEYS_GUID_LEN);
        o->found = 1;
        o->expunged = (r.flags & FLAG_EXPUNGED) != 0;
    }
}

/* ---- the key file ---- */

static inline uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint32_t mailbox_sortkeys_sum(const void *data, size_t n)
{
    const unsigned char *p = data;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w = (uint64_t)get32(p + i) | (uint64_t)get32(p + i + 4) << 32;
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    if (i < n) {
        uint64_t w = 0;
        for (size_t k = 0; i + k < n; k++) w |= (uint64_t)p[i + k] << (8 * k);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    h ^= h >> 29;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 32;
    return (uint32_t)h;
}

static void header_encode(unsigned char *h, uint32_t uidvalidity, uint32_t version,
                          const unsigned char *key)
{
    memset(h, 0, SORTKEYS_HEADER_SIZE);
    memcpy(h + SH_MAGIC, SORTKEYS_MAGIC, 8);
    le_put32(h + SH_VERSION, SORTKEYS_VERSION);
    le_put32(h + SH_HEADER_SIZE, SORTKEYS_HEADER_SIZE);
    le_put32(h + SH_UIDVALIDITY, uidvalidity);
    le_put32(h + SH_CONTENT_VERSION, version);
    memcpy(h + SH_KEY, key, SORTKEYS_KEY_LEN);
    le_put32(h + SH_CRC, index_crc32(h, SH_CRC));
}

/* header_ok: the mapped file starts with a header of this format, mailbox and content
 * version (its key into key). */
static int header_ok(const unsigned char *m, size_t len, uint32_t uidvalidity, uint32_t version,
                     unsigned char *key)
{
    if (len < SORTKEYS_HEADER_SIZE || memcmp(m + SH_MAGIC, SORTKEYS_MAGIC, 8) != 0) return 0;
    if (le_get32(m + SH_CRC) != index_crc32(m, SH_CRC)) return 0;
    if (le_get32(m + SH_VERSION) != SORTKEYS_VERSION ||
        le_get32(m + SH_HEADER_SIZE) != SORTKEYS_HEADER_SIZE ||
        le_get32(m + SH_UIDVALIDITY) != uidvalidity ||
        le_get32(m + SH_CONTENT_VERSION) != version)
        return 0;
    memcpy(key, m + SH_KEY, SORTKEYS_KEY_LEN);
    return 1;
}

static void record_put(struct buf *wb, uint32_t uid, const uint8_t *guid, const void *blob,
                       size_t len)
{
    unsigned char h[SR_BLOB], c[4];
    size_t at = wb->len;
    le_put32(h + SR_LEN, (uint32_t)(len + SR_OVERHEAD));
    le_put32(h + SR_UID, uid);
    memcpy(h + SR_GUID, guid, SORTKEYS_GUID_LEN);
    buf_append(wb, h, sizeof h);
    if (len) buf_append(wb, blob, len);
    le_put32(c, mailbox_sortkeys_sum(wb->s + at, SR_BLOB + len));
    buf_append(wb, c, 4);
}

/* A record of the file that looks whole (its checksum is tested only when it is used). */
struct frec {
    uint32_t uid, len;
    size_t off;
};

/* frec_usable: the record's checksum holds and it belongs to the message with this GUID. */
static int frec_usable(const unsigned char *m, const struct frec *f, const uint8_t *guid)
{
    const unsigned char *p = m + f->off;
    return memcmp(p + SR_GUID, guid, SORTKEYS_GUID_LEN) == 0 &&
           get32(p + f->len - 4) == mailbox_sortkeys_sum(p, f->len - 4);
}

static char *sk_path(struct mailbox *mb, const char *file, const char *suffix)
{
    return xasprintf("%s/%s%s", mb->dir, file, suffix);
}

/* same_file: path still names the file open as fd, with size bytes. */
static int same_file(const char *path, int fd, off_t size)
{
    struct stat a, b;
    return stat(path, &a) == 0 && fstat(fd, &b) == 0 && a.st_dev == b.st_dev &&
           a.st_ino == b.st_ino && b.st_size == size;
}

static int write_all(int fd, const char *p, size_t n, off_t off)
{
    while (n) {
        ssize_t w = pwrite(fd, p, n, off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

/* sk_append: add the records wb to the end of the file open as fd, when it is still the file
 * at path with size bytes (else another session changed it first: nothing is written). 0
 * when they were written, -1 when not. */
static int sk_append(struct mailbox *mb, const char *path, int fd, off_t size,
                     const struct buf *wb)
{
    int r = -1;
    while (flock(fd, LOCK_EX) < 0)
        if (errno != EINTR) return -1;
    if (same_file(path, fd, size)) {
        if (write_all(fd, wb->s, wb->len, size) < 0) {
            log_warn("sortkeys_write_failed", "mbox=%s error=%s", log_quote(mb->name),
                     log_quote(strerror(errno)));
            /* the torn tail fails its checks: the next reader rewrites the file */
        } else {
            mailbox_sortkeys_stats.appends++;
            r = 0;
        }
    }
    flock(fd, LOCK_UN);
    return r;
}

/* sk_replace: the whole file becomes wb (header and records): a temp file renamed over path.
 * When fd is open on the old file, only while it is still the file at path with size bytes. */
static void sk_replace(struct mailbox *mb, const char *file, const char *path, int fd,
                       off_t size, const struct buf *wb)
{
    char suffix[32];
    snprintf(suffix, sizeof suffix, ".tmp.%ld", (long)getpid());
    char *tmp = sk_path(mb, file, suffix);
    if (fd >= 0) {
        while (flock(fd, LOCK_EX) < 0)
            if (errno != EINTR) goto done;
        if (!same_file(path, fd, size)) goto unlock;
    }
    int tfd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (tfd < 0 || write_all(tfd, wb->s, wb->len, 0) < 0 || close(tfd) < 0 ||
        rename(tmp, path) < 0) {
        log_warn("sortkeys_write_failed", "mbox=%s error=%s", log_quote(mb->name),
                 log_quote(strerror(errno)));
        if (tfd >= 0) unlink(tmp);
    } else {
        mailbox_sortkeys_stats.rewrites++;
    }
unlock:
    if (fd >= 0) flock(fd, LOCK_UN);
done:
    free(tmp);
}

void mailbox_sortkeys_fini(struct mailbox_sortkeys *k)
{
    xbig_free(k->blob, k->n * sizeof *k->blob);
    xbig_free(k->len, k->n * sizeof *k->len);
    if (k->map) munmap(k->map, k->map_len);
    buf_fini(&k->extra);
    memset(k, 0, sizeof *k);
}

/* compute: the blob of the message whose index record is rec (NULL: none) appended to
 * k->extra; its offset. */
static int compute(struct mailbox_sortkeys *k, const struct mailbox_sortkeys_ops *ops,
                   struct mail *m, const struct index_record *rec, size_t *off_r)
{
    const char *h = "";
    size_t hl = 0;
    *off_r = k->extra.len;
    mailbox_sortkeys_stats.computed++;
    if (rec) {
        mail_set_record(m, rec);
        int r = mail_header(m, &h, &hl);
        if (r == CF_E_NOTFOUND) {
            h = "";
            hl = 0;
        } else if (r < 0) {
            return r;
        }
    }
    ops->encode(ops->rock, k->key, h, hl, &k->extra);
    return 0;
}

#define NO_OFF ((size_t)-1)

int mailbox_sortkeys_get(struct mailbox *mb, const struct mailbox_sortkeys_ops *ops,
                         const uint32_t *uids, const struct mailbox_sortrec *recs, size_t n,
                         struct mailbox_sortkeys *k)
{
    const char *file = ops->file ? ops->file : SORTKEYS_FILE;
    char *path = sk_path(mb, file, "");
    int fd = -1, writable = 1, rewrite = 0, r = 0;
    off_t size = 0;
    struct frec *fr = NULL;
    size_t nfr = 0, afr = 0, *xoff = NULL;
    struct buf wb = BUF_INIT;
    struct mail *m = mail_new(mb);
    uint32_t last_uid = 0;

    memset(k, 0, sizeof *k);
    /* arrays of 8 to 16 MB at 1,000,000 messages: xbig_alloc (core/xmalloc.h) */
    k->n = n;
    k->blob = n ? xbig_alloc(n * sizeof *k->blob) : NULL;
    k->len = n ? xbig_alloc(n * sizeof *k->len) : NULL;
    xoff = n ? xbig_alloc(n * sizeof *xoff) : NULL;
    for (size_t i = 0; i < n; i++) {
        k->blob[i] = NULL;
        xoff[i] = NO_OFF;
    }

    /* the file as it is */
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 && (errno == EACCES || errno == EROFS || errno == EPERM)) {
        writable = 0;
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0 && errno != ENOENT) writable = 0;
    if (fd >= 0) {
        struct stat st;
        if (fstat(fd, &st) == 0 && st.st_size >= SORTKEYS_HEADER_SIZE) {
            size = st.st_size;
            /* populated at once: a command reads most of it, and one call costs less than a
             * page fault per 4 KiB */
            void *p = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
            if (p != MAP_FAILED) {
                k->map = p;
                k->map_len = (size_t)size;
            }
        } else if (fstat(fd, &st) == 0) {
            size = st.st_size;
        }
    }
    if (!k->map || !header_ok(k->map, k->map_len, mb->hdr.uidvalidity, ops->version, k->key)) {
        /* none, damaged, or of another format: a new file with a new key */
        if (k->map) {
            munmap(k->map, k->map_len);
            k->map = NULL;
            k->map_len = 0;
        }
        rewrite = 1;
        if (getrandom(k->key, sizeof k->key, 0) != (ssize_t)sizeof k->key) {
            /* cannot happen on Linux >= 3.17; a weaker key only weakens the hashes' keying */
            for (size_t i = 0; i < sizeof k->key; i++) k->key[i] = (unsigned char)rand();
        }
    } else {
        /* the records that look whole, in ascending uid order; the first that does not ends
         * the walk (a torn append: the file gets rewritten) */
        size_t off = SORTKEYS_HEADER_SIZE;
        while (k->map_len - off >= SR_OVERHEAD) {
            const unsigned char *p = k->map + off;
            uint32_t len = get32(p + SR_LEN), uid = get32(p + SR_UID);
            if (len < SR_OVERHEAD || len > SORTKEYS_MAX_RECORD || len > k->map_len - off ||
                uid <= last_uid)
                break;
            if (nfr == afr) {
                /* sized for the index's records (a file holds about those) at first */
                size_t na = afr ? afr * 2 : (size_t)mb->hdr.record_count + 1024;
                struct frec *nf = xbig_alloc(na * sizeof *fr);
                if (nfr) memcpy(nf, fr, nfr * sizeof *fr);
                xbig_free(fr, afr * sizeof *fr);
                fr = nf;
                afr = na;
            }
            fr[nfr].uid = uid;
            fr[nfr].len = len;
            fr[nfr++].off = off;
            last_uid = uid;
            off += len;
        }
        if (off != k->map_len) rewrite = 1;
        /* more than half of it for expunged messages: time to shrink */
        if (nfr > 2 * (size_t)mb->hdr.exists + 64) rewrite = 1;
    }

    /* the blobs the file holds for the uids asked for */
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        while (j < nfr && fr[j].uid < uids[i]) j++;
        if (j == nfr || fr[j].uid != uids[i] || !recs[i].found) continue;
        if (!frec_usable(k->map, &fr[j], recs[i].guid)) {
            rewrite = 1;       /* damaged, or of another message under this uid */
            continue;
        }
        k->blob[i] = k->map + fr[j].off + SR_BLOB;
        k->len[i] = fr[j].len - SR_OVERHEAD;
        mailbox_sortkeys_stats.hits++;
    }

    /* what the file should get: every live message of the index after its last uid (all of
     * them when it is rewritten), so the file never has gaps the next command would refill */
    if (writable) {
        const uint64_t gen = mb->hdr.generation;
        const unsigned char *map0 = mb->map;
        uint32_t count = mb->hdr.record_count, pos = 0;
        size_t wi = 0, fj = 0;
        if (rewrite) {
            unsigned char h[SORTKEYS_HEADER_SIZE];
            header_encode(h, mb->hdr.uidvalidity, ops->version, k->key);
            buf_append(&wb, h, sizeof h);
        } else if (mb->map) {
            find_from(mb->map, count, 0, last_uid, &pos);
        }
        for (; pos < count && r >= 0; pos++) {
            if (!mb->map || mb->map != map0 || mb->hdr.generation != gen ||
                mb->hdr.record_count != count) {
                /* the index was refreshed under us (a record read took the lock): give up
                 * writing this time */
                writable = 0;
                break;
            }
            struct index_record rec;
            index_record_decode_unchecked(mb->map + index_record_offset(pos), &rec);
            if (rec.flags & FLAG_EXPUNGED) continue;
            if (!rewrite && rec.uid <= last_uid) continue;
            while (wi < n && uids[wi] < rec.uid) wi++;
            int wanted = wi < n && uids[wi] == rec.uid;
            const void *blob = NULL;
            size_t blen = 0;
            if (wanted && k->blob[wi] && !memcmp(recs[wi].guid, rec.guid, SORTKEYS_GUID_LEN)) {
                blob = k->blob[wi];
                blen = k->len[wi];
            } else if (!wanted && rewrite) {
                while (fj < nfr && fr[fj].uid < rec.uid) fj++;
                if (fj < nfr && fr[fj].uid == rec.uid && frec_usable(k->map, &fr[fj], rec.guid)) {
                    blob = k->map + fr[fj].off + SR_BLOB;
                    blen = fr[fj].len - SR_OVERHEAD;
                }
            }
            if (!blob) {
                size_t xo;
                r = compute(k, ops, m, &rec, &xo);
                if (r < 0) break;
                if (wanted && !k->blob[wi]) {
                    xoff[wi] = xo;
                    k->len[wi] = (uint32_t)(k->extra.len - xo);
                }
                blob = k->extra.s + xo;
                blen = k->extra.len - xo;
            }
            record_put(&wb, rec.uid, rec.guid, blob, blen);
        }
    }

    /* the rest (no file to write, a gap, a message being expunged) computed in memory */
    for (size_t i = 0; i < n && r >= 0; i++) {
        if (k->blob[i] || xoff[i] != NO_OFF) continue;
        struct index_record rec;
        int have = 0;
        if (recs[i].found && mb->map) {
            uint32_t pos;
            long p = find_from(mb->map, mb->hdr.record_count, 0, uids[i], &pos);
            if (p >= 0) {
                index_record_decode_unchecked(mb->map + index_record_offset((uint32_t)p), &rec);
                have = 1;
            }
        }
        r = compute(k, ops, m, have ? &rec : NULL, &xoff[i]);
        k->len[i] = (uint32_t)(k->extra.len - xoff[i]);
    }
    if (r < 0) goto out;

    if (writable && rewrite) {
        sk_replace(mb, file, path, fd, size, &wb);
    } else if (writable && wb.len) {
        sk_append(mb, path, fd, size, &wb);
    }
    for (size_t i = 0; i < n; i++) {
        if (xoff[i] == NO_OFF) continue;
        k->blob[i] = (const unsigned char *)k->extra.s + xoff[i];
    }
out:
    mail_free(&m);
    if (fd >= 0) close(fd);
    free(path);
    xbig_free(fr, afr * sizeof *fr);
    xbig_free(xoff, n * sizeof *xoff);
    buf_fini(&wb);
    return r;
}

/* ---- records written at append ---- */

static const struct mailbox_sortkeys_ops *fill_ops[SORTKEYS_FILL_MAX];
static size_t n_fill_ops;

void mailbox_sortkeys_fill_on_append(const struct mailbox_sortkeys_ops *ops)
{
    for (size_t i = 0; i < n_fill_ops; i++)
        if (fill_ops[i] == ops) return;
    if (n_fill_ops < SORTKEYS_FILL_MAX) fill_ops[n_fill_ops++] = ops;
}

/* The file's tail read to find its last record: records are a few hundred bytes; a file whose
 * last record is longer is left to the next reader. */
#define FILL_TAIL (16u * 1024)

/* last_record_uid: the uid of the record that ends the file at size bytes, found in the tail
 * t[0,tn) (the file's bytes [size - tn, size)): the start o whose length field reaches the end
 * exactly and whose checksum holds. 0 when there is none (no records: tn 0), -1 when it is
 * not found (a torn or long tail). A wrong guess (a blob that happens to look like a record
 * with a valid checksum) only makes the readers rewrite the file: they check uid order. */
static long last_record_uid(const unsigned char *t, size_t tn)
{
    if (!tn) return 0;
    if (tn < SR_OVERHEAD) return -1;
    for (size_t o = tn - SR_OVERHEAD + 1; o-- > 0;) {
        const unsigned char *p = t + o;
        if (get32(p + SR_LEN) != tn - o) continue;
        if (get32(p + tn - o - 4) != mailbox_sortkeys_sum(p, tn - o - 4)) continue;
        uint32_t uid = get32(p + SR_UID);
        return uid ? (long)uid : -1;
    }
    return -1;
}

/* live_before: the uid of the last live (not expunged) index record below uid, 0 when there
 * is none, -1 when it cannot be told cheaply (many expunged records in between). */
static long live_before(struct mailbox *mb, uint32_t uid, size_t n)
{
    if (!mb->map) return -1;
    /* the new messages are the only live ones (the mailbox was empty, or emptied and its
     * expunged records not yet removed): none below, without walking the expunged records.
     * mb->hdr is the header this append committed. */
    if (mb->hdr.exists == n) return 0;
    /* the new records end the index: look from its end (a bisection from the start would
     * touch pages of the mapping the append did not) */
    long p = (long)mb->hdr.record_count;
    for (int k = 0; p > 0 && k < 1024; k++) {
        uint32_t u = index_record_uid(mb->map + index_record_offset((uint32_t)(p - 1)));
        if (u < uid) return -1;
        p--;
        if (u == uid) break;
    }
    if (p >= (long)mb->hdr.record_count ||
        index_record_uid(mb->map + index_record_offset((uint32_t)p)) != uid)
        return -1;
    for (int k = 0; k < 64 && p > 0; k++) {
        struct index_record rec;
        index_record_decode_unchecked(mb->map + index_record_offset((uint32_t)--p), &rec);
        if (!(rec.flags & FLAG_EXPUNGED)) return rec.uid;
    }
    return p == 0 ? 0 : -1;
}

/* keyfile_drop: forget the file kept open in kf. */
static void keyfile_drop(struct mbi_keyfile *kf)
{
    if (kf->open) close(kf->fd);
    kf->open = 0;
    kf->fd = -1;
}

void mbi_keyfiles_close(struct mailbox *mb)
{
    for (size_t i = 0; i < SORTKEYS_FILL_MAX; i++) keyfile_drop(&mb->keyfiles[i]);
}

/* encode_new: the records of nw[0,n) with the file's key into wb (the caller counts them in
 * mailbox_sortkeys_stats.filled). */
static void encode_new(const struct mailbox_sortkeys_ops *ops, const unsigned char *key,
                       const struct mailbox_sortkeys_new *nw, size_t n, struct buf *wb)
{
    struct buf blob = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        buf_reset(&blob);
        ops->encode(ops->rock, key, nw[i].hdr, nw[i].hlen, &blob);
        record_put(wb, nw[i].uid, nw[i].guid, blob.s, blob.len);
    }
    buf_fini(&blob);
}

/* fill_kept: the append through the file kf holds open, when it is still the file at path
 * as this handle left it (same inode and size, checked under its lock, so kf->last is its
 * last record): 1 done (written, or nothing to write: a gap), 0 when the long way must
 * decide (the caller drops kf: replaced, removed or grown by another, or an emptied
 * mailbox's file to be started afresh). */
static int fill_kept(struct mailbox *mb, struct mbi_keyfile *kf, const char *path,
                     const struct mailbox_sortkeys_ops *ops,
                     const struct mailbox_sortkeys_new *nw, size_t n, long below)
{
    if (below == 0 && kf->last > 0) return 0;   /* sk_replace's case */
    int gap = kf->last < below || kf->last >= (long)nw[0].uid;
    struct buf wb = BUF_INIT;
    int done = 0;
    struct stat st;
    if (gap) {
        /* nothing to write (the readers fill or rewrite it): only whether it is still the
         * file whose last record was looked at, without its lock. Its writers only add at
         * the end (so the size shows them, even half done) or rename a new file in. */
        return stat(path, &st) == 0 && st.st_dev == kf->dev && st.st_ino == kf->ino &&
               st.st_size == kf->size;
    }
    encode_new(ops, kf->key, nw, n, &wb);   /* outside the lock */
    while (flock(kf->fd, LOCK_EX) < 0)
        if (errno != EINTR) goto out;
    if (stat(path, &st) == 0 && st.st_dev == kf->dev && st.st_ino == kf->ino &&
        st.st_size == kf->size) {
        done = 1;
        if (write_all(kf->fd, wb.s, wb.len, kf->size) < 0) {
            log_warn("sortkeys_write_failed", "mbox=%s error=%s", log_quote(mb->name),
                     log_quote(strerror(errno)));
            /* the torn tail fails its checks: the next reader rewrites the file; the
             * size kept no longer matches, so the next append here goes the long way */
            kf->size = -1;
        } else {
            mailbox_sortkeys_stats.appends++;
            mailbox_sortkeys_stats.filled += n;
            kf->size += (off_t)wb.len;
            kf->last = (long)nw[n - 1].uid;
        }
    }
    flock(kf->fd, LOCK_UN);
out:
    buf_fini(&wb);
    return done;
}

static void fill_file(struct mailbox *mb, struct mbi_keyfile *kf,
                      const struct mailbox_sortkeys_ops *ops,
                      const struct mailbox_sortkeys_new *nw, size_t n, long below)
{
    const char *file = ops->file ? ops->file : SORTKEYS_FILE;
    char *path = sk_path(mb, file, "");
    unsigned char key[SORTKEYS_KEY_LEN];
    struct buf wb = BUF_INIT;
    unsigned char *tail = NULL;
    long last = 0;
    off_t size = 0;
    int replace = 0, fd = -1;
    struct stat st;
    if (kf->open) {
        if (fill_kept(mb, kf, path, ops, nw, n, below)) goto out;
        keyfile_drop(kf);
    }
    mailbox_sortkeys_stats.fill_opens++;
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        /* no file: start one only when nothing older would be missing from it */
        if (errno != ENOENT || below != 0) goto out;
        if (getrandom(key, sizeof key, 0) != (ssize_t)sizeof key) goto out;
        unsigned char h[SORTKEYS_HEADER_SIZE];
        header_encode(h, mb->hdr.uidvalidity, ops->version, key);
        buf_append(&wb, h, sizeof h);
    } else {
        unsigned char h[SORTKEYS_HEADER_SIZE];
        if (fstat(fd, &st) < 0 || st.st_size < SORTKEYS_HEADER_SIZE) goto out;
        size = st.st_size;
        if (pread(fd, h, sizeof h, 0) != (ssize_t)sizeof h ||
            !header_ok(h, sizeof h, mb->hdr.uidvalidity, ops->version, key))
            goto out;
        /* the last 1 KiB first (a record is a few hundred bytes), then FILL_TAIL */
        size_t avail = (size_t)(size - SORTKEYS_HEADER_SIZE);
        unsigned char small[1024];
        size_t tn = avail < sizeof small ? avail : sizeof small;
        if (tn && pread(fd, small, tn, size - (off_t)tn) != (ssize_t)tn) goto out;
        last = last_record_uid(small, tn);
        if (last < 0 && avail > tn) {
            tn = avail < FILL_TAIL ? avail : FILL_TAIL;
            tail = xmalloc(tn);
            if (pread(fd, tail, tn, size - (off_t)tn) != (ssize_t)tn) goto out;
            last = last_record_uid(tail, tn);
        }
        /* The file holds every live message up to its last record (it is written without
         * gaps), so it may take the new ones when that record is the live message just
         * below them or a later, expunged one; an older last record is a gap. A file whose
         * every record is of an expunged message (the mailbox was emptied, then filled
         * again: below is 0) is started afresh instead, so that it does not carry them. */
        if (last < 0) goto out;
        if (last < below || last >= (long)nw[0].uid) {
            /* a gap: left to the readers. Kept open with what was found, so that the next
             * append through this handle only checks that the file is unchanged (fill_kept)
             * instead of reading its header and tail again */
            kf->open = 1;
            kf->fd = fd;
            kf->dev = st.st_dev;
            kf->ino = st.st_ino;
            kf->size = size;
            kf->last = last;
            memcpy(kf->key, key, sizeof key);
            fd = -1;
            goto out;
        }
        if (below == 0 && last > 0) {
            buf_append(&wb, h, sizeof h);
            replace = 1;
        }
    }
    size_t hlen = wb.len;   /* the records start here */
    encode_new(ops, key, nw, n, &wb);
    mailbox_sortkeys_stats.filled += n;
    if (fd < 0 || replace) {
        sk_replace(mb, file, path, fd, size, &wb);
        goto out;
    }
    if (sk_append(mb, path, fd, size, &wb) == 0) {
        /* keep it open for the next append through this handle (fstat above: st) */
        kf->open = 1;
        kf->fd = fd;
        kf->dev = st.st_dev;
        kf->ino = st.st_ino;
        kf->size = size + (off_t)(wb.len - hlen);
        kf->last = (long)nw[n - 1].uid;
        memcpy(kf->key, key, sizeof key);
        fd = -1;
    }
out:
    if (fd >= 0) close(fd);
    free(tail);
    free(path);
    buf_fini(&wb);
}

void mbi_sortkeys_appended(struct mailbox *mb, const struct mailbox_sortkeys_new *nw, size_t n)
{
    if (!n_fill_ops || !n) return;
    long below = live_before(mb, nw[0].uid, n);
    if (below < 0) return;
    for (size_t i = 0; i < n_fill_ops; i++) fill_file(mb, &mb->keyfiles[i], fill_ops[i], nw, n, below);
}
