/* mailbox-change.c: changing messages in place: flag store, expunge and repack. */
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
        if (mbi_pwrite_all(mb->index_fd, e + 4, INDEX_RECORD_SIZE, index_record_offset(le_get32(e))) < 0)
            mbi_io_error(mb, "pwrite", mb->index_path);
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
    int took = mbi_lock(mb, LOCK_EX);
    if (took < 0) {
        r = took;
        goto out;
    }
    struct index_header nh = mb->hdr;
    nh.prev_count = nh.record_count;
    uint64_t modseq = nh.highestmodseq + 1;
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
    for (size_t i = 0; i < n; i++) {
        long pos = mbi_find_pos(mb, uids[i]);
        if (pos < 0) continue;
        struct index_record rec;
        if ((r = mbi_read_record(mb, (uint32_t)pos, &rec)) < 0) goto done;
        if (rec.flags & FLAG_EXPUNGED) continue;
        if (st->unchangedsince && rec.modseq > st->unchangedsince) {
            mbi_push_u32(&failed, &nfailed, &afailed, rec.uid);
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
        mbi_count_record(&nh, &rec, 0);
        mbi_count_record(&nh, &nr, 1);
        nr.modseq = modseq;
        unsigned char raw[INDEX_RECORD_SIZE];
        index_record_encode(&nr, raw);
        if (!changed && (r = mbi_write_intent(mb)) < 0) goto done;
        save_record(mb, &undo, (uint32_t)pos);
        if (mbi_pwrite_all(mb->index_fd, raw, sizeof raw, index_record_offset((uint32_t)pos)) < 0) {
            r = mbi_io_error(mb, "pwrite", mb->index_path);
            goto done;
        }
        mbi_fault_point("record");
        changed = 1;
    }
    if (changed || nh.keyword_count != mb->hdr.keyword_count) {
        if (changed) nh.highestmodseq = modseq;
        r = mbi_write_header(mb, &nh);
    }
done:
    if (r < 0) undo_records(mb, &undo);
    buf_fini(&undo);
    mbi_unlock(mb, took);
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
    int took = mbi_lock(mb, LOCK_EX);
    if (took < 0) return took;
    struct index_header nh = mb->hdr;
    nh.prev_count = nh.record_count;
    uint64_t modseq = nh.highestmodseq + 1;
    size_t total = uids ? n : mb->hdr.record_count;
    for (size_t i = 0; i < total; i++) {
        long pos = uids ? mbi_find_pos(mb, uids[i]) : (long)i;
        if (pos < 0) continue;
        const unsigned char *raw = mb->map + index_record_offset((uint32_t)pos);
        uint32_t f = le_get32(raw + 4);
        if ((f & FLAG_EXPUNGED) || !(f & FLAG_DELETED)) continue;
        struct index_record rec;
        if ((r = mbi_read_record(mb, (uint32_t)pos, &rec)) < 0) goto done;
        mbi_count_record(&nh, &rec, 0);
        bytes += rec.size;
        rec.flags |= FLAG_EXPUNGED;
        rec.modseq = modseq;
        nh.expunged++;
        unsigned char enc[INDEX_RECORD_SIZE];
        index_record_encode(&rec, enc);
        if (!ngone && (r = mbi_write_intent(mb)) < 0) goto done;
        save_record(mb, &undo, (uint32_t)pos);
        if (mbi_pwrite_all(mb->index_fd, enc, sizeof enc, index_record_offset((uint32_t)pos)) < 0) {
            r = mbi_io_error(mb, "pwrite", mb->index_path);
            goto done;
        }
        mbi_fault_point("record");
        mbi_push_u32(&gone, &ngone, &agone, rec.uid);
    }
    if (!ngone) goto done;
    nh.highestmodseq = modseq;
    if ((r = mbi_write_header(mb, &nh)) < 0) goto done;
    /* Only after the commit: a crash before leaves files nobody points to, never the reverse. */
    mbi_unlink_messages(mb, gone, ngone);
    if (count_r) *count_r = (uint32_t)ngone;
    if (bytes_r) *bytes_r = bytes;
done:
    if (r < 0) undo_records(mb, &undo);
    buf_fini(&undo);
    mbi_unlock(mb, took);
    free(gone);
    return r;
}

int mailbox_repack(struct mailbox *mb)
{
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
    uint32_t kept = 0;
    for (uint32_t i = 0; i < mb->hdr.record_count; i++) {
        const unsigned char *raw = mb->map + index_record_offset(i);
        struct index_record rec;
        if ((r = mbi_read_record(mb, i, &rec)) < 0) goto done;
        if (rec.flags & FLAG_EXPUNGED) {
            mbi_push_u32(&gone, &ngone, &agone, rec.uid);
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
            r = mbi_io_error(mb, "write", tmp);
        if (fd >= 0) close(fd);
        free(tmp);
    } else {
        r = file_write_atomic(mb->index_path, out.s, out.len, 0600);
    }
    if (r < 0) goto done;
    mbi_unlink_messages(mb, gone, ngone);
    r = mbi_refresh(mb);   /* follow our own rename */
    log_info("mailbox_repacked", "mbox=%s records=%u removed=%zu generation=%llu",
             log_quote(mb->name), (unsigned)kept, ngone, (unsigned long long)nh.generation);
done:
    mbi_unlock(mb, took);
    buf_fini(&out);
    free(gone);
    return r;
}
