/* mailbox-read.c: reading a mailbox: index records, message files (open, map) and their
 * cache entries, and the summary (ENVELOPE, BODYSTRUCTURE, GUID, date) made at append. */
#include "store/mailbox-int.h"
#include "store/mailbox.h"
#include "store/mbheader.h"
#include "store/partition.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mime/binsize.h"
#include "mime/date.h"
#include "mime/decode.h"
#include "mime/mime.h"
#include "mime/preview.h"
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

/* ---- reading ---- */

int mailbox_record(struct mailbox *mb, uint32_t uid, struct index_record *r)
{
    long pos = mbi_find_pos(mb, uid);
    if (pos < 0) return 0;
    if (index_record_decode(mb->map + index_record_offset((uint32_t)pos), r) == 0) return 1;
    /* Maybe a writer was changing it under us: look again under the shared lock. */
    int took = mbi_lock(mb, LOCK_SH);
    if (took < 0) return took;
    int ret = 0;
    pos = mbi_find_pos(mb, uid);
    if (pos >= 0) ret = mbi_read_record(mb, (uint32_t)pos, r) < 0 ? CF_E_CORRUPT : 1;
    mbi_unlock(mb, took);
    return ret;
}

int mailbox_record_next(struct mailbox *mb, uint32_t uid, uint32_t *hint,
                        struct index_record *r)
{
    const uint32_t count = mb->hdr.record_count;
    long pos = -1;
    if (mb->map) {
        /* a few records from the hint: the next uid of an ascending walk is usually there
         * (expunged records between are skipped over) */
        uint32_t p = *hint;
        for (int k = 0; k < 8 && p < count; k++, p++) {
            uint32_t u = index_record_uid(mb->map + index_record_offset(p));
            if (u == uid) {
                pos = p;
                break;
            }
            if (u > uid) break;
        }
        if (pos >= 0 && index_record_decode(mb->map + index_record_offset((uint32_t)pos), r) == 0) {
            *hint = (uint32_t)pos + 1;
            return 1;
        }
    }
    /* not near the hint (or a torn read): the lookup that finds it anywhere */
    int found = mailbox_record(mb, uid, r);
    if (found == 1) {
        long at = mbi_find_pos(mb, uid);
        if (at >= 0) *hint = (uint32_t)at + 1;
    }
    return found;
}

void mailbox_modseq_scan_fini(struct mailbox_modseq_scan *s)
{
    free(s->changed);
    free(s->changed_recs);
    free(s->expunged);
    memset(s, 0, sizeof *s);
}

/* scan_push: report the record at raw if its modseq is above since (a changed one with its
 * decoded record: the caller reports it without looking it up again, which on a fresh
 * session costs a page of the mapping or more each). */
static void scan_push(struct mailbox_modseq_scan *s, const unsigned char *raw, uint64_t since,
                      size_t *ac, size_t *ae)
{
    if (le_get64(raw + 32) <= since) return;
    uint32_t uid = index_record_uid(raw);
    if (le_get32(raw + 4) & FLAG_EXPUNGED) {
        mbi_push_u32(&s->expunged, &s->n_expunged, ae, uid);
        return;
    }
    size_t had = *ac;
    mbi_push_u32(&s->changed, &s->n_changed, ac, uid);
    if (*ac != had) s->changed_recs = xreallocarray(s->changed_recs, *ac, sizeof *s->changed_recs);
    struct index_record *r = &s->changed_recs[s->n_changed - 1];
    if (index_record_decode(raw, r) < 0) memset(r, 0, sizeof *r);
}

int mailbox_modseq_scan(struct mailbox *mb, uint64_t since, struct mailbox_modseq_scan *s)
{
    memset(s, 0, sizeof *s);
    int took = mbi_lock(mb, LOCK_SH);
    if (took < 0) return took;
    size_t ac = 0, ae = 0;
    const struct index_header *h = &mb->hdr;
    s->highestmodseq = h->highestmodseq;
    s->vanished_modseq = h->vanished_modseq;
    /* the raw fields only (uid, flags, modseq), no checksum; callers read the few records
     * they report with mailbox_record, which checks it */
    s->view_current = mb->view && mb->view_generation == h->generation &&
                      mb->view_records == h->record_count && mb->view_modseq == h->highestmodseq &&
                      !mb->expunge_pending;
    uint32_t *blocks;
    size_t nbl;
    if (mbi_changed_blocks(mb, since, h->record_count, &blocks, &nbl)) {
        /* a summary of this header (the session's own, or the group summary and the uid
         * column's blocks when other sessions changed the mailbox since) says which blocks
         * hold a modseq above since: only those can hold one */
        for (size_t bk = 0; bk < nbl; bk++) {
            uint32_t b = blocks[bk];
            uint32_t first = b * MSUM_BLOCK, end = first + MSUM_BLOCK;
            if (end > h->record_count) end = h->record_count;
            /* a copy through pread costs less than touching the mapping's page (the
             * record reader in mailbox.c says why) */
            unsigned char blk[MSUM_BLOCK * INDEX_RECORD_SIZE];
            size_t want = (size_t)(end - first) * INDEX_RECORD_SIZE;
            int copied = pread(mb->index_fd, blk, want, (off_t)index_record_offset(first)) ==
                         (ssize_t)want;
            for (uint32_t i = first; i < end; i++)
                scan_push(s, copied ? blk + (size_t)(i - first) * INDEX_RECORD_SIZE
                                    : mb->map + index_record_offset(i), since, &ac, &ae);
        }
        free(blocks);
    } else {
        /* one pass over the mapping, which makes the summary for the next scan */
        uint64_t *msum = mbi_msum_begin(mb);
        for (uint32_t i = 0; i < h->record_count; i++) {
            const unsigned char *raw = mb->map + index_record_offset(i);
            mbi_msum_note(msum, i, le_get64(raw + 32));
            scan_push(s, raw, since, &ac, &ae);
        }
        mbi_msum_end(mb, msum);
    }
    mbi_unlock(mb, took);
    return 0;
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
        r = errno == ENOENT ? CF_E_NOTFOUND : mbi_io_error(mb, "open", path);
        goto done;
    }
    if (size_r) {
        struct stat st;
        if (fstat(*fd_r, &st) < 0) {
            r = mbi_io_error(mb, "fstat", path);
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
    uint64_t size = 0;
    *p_r = NULL;
    *len_r = 0;
    int r = mailbox_message_open(mb, uid, &fd, &size);
    if (r < 0) return r;
    if (size == 0) {
        *p_r = "";
    } else {
        void *p = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            r = mbi_io_error(mb, "mmap", "message");
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
    struct buf preview = BUF_INIT;
    mime_summary_init(&s);
    /* one parse for both (CF_E_LIMIT still leaves a usable summary) */
    mime_summarize_preview(p, len, &s, &preview);
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
    /* RFC 3516 BINARY.SIZE of the encoded parts, so FETCH need not decode them again */
    mime_binary_sizes(p, len, s.sections.s, s.sections.len, &e->f[CACHE_BINSIZE]);
    e->present[CACHE_BINSIZE] = 1;
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
        /* the first Date: field (RFC 5322 section 3.6.1); its folding is white space to the
         * date parser */
        const char *date;
        size_t date_len;
        if (mime_header_find(p, hs, "Date", &date, &date_len))
            rec->sentdate = mime_parse_date(date, date_len);
        guid_of(p, len, rec->guid);
        rec->threadid = mailbox_threadid(p, hs, rec->guid);
    }
    buf_reset(&e->f[CACHE_PREVIEW]);
    if (preview.len) buf_append(&e->f[CACHE_PREVIEW], preview.s, preview.len);
    e->present[CACHE_PREVIEW] = 1;
    buf_fini(&preview);
    mime_summary_fini(&s);
}

uint64_t mailbox_threadid(const char *hdr, size_t len, const uint8_t guid[20])
{
    struct buf root = BUF_INIT;
    unsigned char d[20];
    const unsigned char *src = guid;
    if (mime_thread_root(hdr, len, &root)) {
        guid_of(root.s, root.len, d);
        src = d;
    }
    uint64_t v = le_get64(src);
    buf_fini(&root);
    return v ? v : 1;
}

int mbi_cache_read(struct mailbox *mb, const struct index_record *r, struct cache_entry *e)
{
    int cr = r->cache_offset ? cache_read(mb->cache_fd, r->cache_offset, r->uid, e) : CF_E_CORRUPT;
    if (cr == 0) return 0;
    log_warn("mailbox_cache_rebuild", "mbox=%s uid=%u reason=%s", log_quote(mb->name),
             (unsigned)r->uid, cr == CF_E_IO ? "io" : "damaged");
    return CF_E_CORRUPT;
}

int mailbox_cache_fetch(struct mailbox *mb, uint32_t uid, struct cache_entry *e)
{
    struct index_record r;
    int found = mailbox_record(mb, uid, &r);
    if (found < 0) return found;
    if (!found || (r.flags & FLAG_EXPUNGED)) return CF_E_NOTFOUND;
    if (mbi_cache_read(mb, &r, e) == 0) return 0;
    const char *p;
    size_t len;
    int r2 = mailbox_message_map(mb, uid, &p, &len);
    if (r2 < 0) return r2;
    mailbox_summarize(p, len, uid, e, NULL);
    mailbox_message_unmap(p, len);
    return 0;
}
