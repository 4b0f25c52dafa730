/* fuzz-imap-thread.c: fuzz target for the SORT/THREAD keys (imap-sort.h) and the threading
 * of imap-thread.h. The whole input is a Subject value for base-subject extraction and
 * casemapping; then each line is a message "subject TAB message-id TAB references TAB
 * in-reply-to" (missing fields: none) threaded by both algorithms, so reference loops,
 * duplicate ids and odd subjects come from the fuzzer; REFERENCES over the sort key blobs
 * (imap-sortkeys.h, thread_references_hashed) must agree with it. Seeds in test/fuzz/corpus/imap-thread. */
#include "core/buf.h"
#include "core/xmalloc.h"
#include "imap/imap-sort.h"
#include "imap/imap-sortkeys.h"
#include "imap/imap-thread.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MSGS 2000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data, *end = in + size;
    struct buf subj = BUF_INIT, pool = BUF_INIT, out = BUF_INIT;
    int reply;
    imap_base_subject(in, size, &subj, &reply);
    imap_casemap(subj.s ? subj.s : "", subj.len, &pool);
    buf_reset(&pool);

    struct thread_msg *msgs = xreallocarray(NULL, MAX_MSGS, sizeof(*msgs));
    size_t *soff = xreallocarray(NULL, MAX_MSGS, sizeof(*soff));
    size_t n = 0;
    const char *p = in;
    while (p < end && n < MAX_MSGS) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *f[4] = { NULL, NULL, NULL, NULL };
        size_t fl[4] = { 0, 0, 0, 0 };
        const char *q = p;
        for (int k = 0; k < 4 && q <= le; k++) {
            const char *tab = memchr(q, '\t', (size_t)(le - q));
            const char *fe = tab ? tab : le;
            f[k] = q;
            fl[k] = (size_t)(fe - q);
            q = fe + 1;
            if (!tab) break;
        }
        struct thread_msg *m = &msgs[n];
        memset(m, 0, sizeof(*m));
        m->num = m->seq = (uint32_t)n + 1;
        m->date = (int64_t)(fl[0] % 7) * 86400;       /* equal dates happen */
        buf_reset(&subj);
        imap_base_subject(f[0] ? f[0] : "", fl[0], &subj, &m->reply);
        soff[n] = pool.len;
        imap_casemap(subj.s ? subj.s : "", subj.len, &pool);
        m->subject_len = pool.len - soff[n];
        m->msgid = f[1]; m->msgid_len = fl[1];
        m->refs = f[2]; m->refs_len = fl[2];
        m->irt = f[3]; m->irt_len = fl[3];
        n++;
        p = le + 1;
    }
    for (size_t i = 0; i < n; i++) msgs[i].subject = pool.s ? pool.s + soff[i] : "";
    thread_references(msgs, n, &out);
    /* the same through the sort key blobs (imap-sortkeys.h) and thread_references_hashed:
     * it must thread alike whenever the ids survive a header block unchanged (no CR, LF or
     * NUL in them) */
    {
        static const unsigned char key[IMAP_SORTKEYS_KEY_LEN] = { 1, 2, 3, 4, 5 };
        struct buf *blobs = xreallocarray(NULL, n ? n : 1, sizeof(*blobs));
        struct thread_msg *h = xreallocarray(NULL, n ? n : 1, sizeof(*h));
        struct buf hdr = BUF_INIT, out2 = BUF_INIT;
        int clean = 1;
        for (size_t i = 0; i < n; i++) {
            const char *v[3] = { msgs[i].msgid, msgs[i].refs, msgs[i].irt };
            size_t vl[3] = { msgs[i].msgid_len, msgs[i].refs_len, msgs[i].irt_len };
            static const char *const names[3] = { "Message-ID: ", "References: ",
                                                   "In-Reply-To: " };
            buf_reset(&hdr);
            for (int k = 0; k < 3; k++) {
                if (!v[k]) continue;
                for (size_t j = 0; j < vl[k]; j++)
                    if (v[k][j] == '\r' || v[k][j] == '\n' || v[k][j] == 0) clean = 0;
                buf_appends(&hdr, names[k]);
                buf_append(&hdr, v[k], vl[k]);
                buf_appends(&hdr, "\r\n");
            }
            buf_appends(&hdr, "\r\n");
            buf_init(&blobs[i]);
            imap_sortkeys_encode(NULL, key, hdr.s, hdr.len, &blobs[i]);
            struct imap_sortkeys k;
            if (imap_sortkeys_decode((const unsigned char *)blobs[i].s, blobs[i].len, &k) < 0)
                abort();
            h[i] = msgs[i];
            h[i].has_id = k.has_msgid;
            h[i].id_hash = k.msgid;
            h[i].parents = k.parents;
            h[i].nparents = k.nparents;
        }
        thread_references_hashed(h, n, &out2);
        if (clean && (out.len != out2.len || (out.len && memcmp(out.s, out2.s, out.len))))
            abort();
        for (size_t i = 0; i < n; i++) buf_fini(&blobs[i]);
        free(blobs);
        free(h);
        buf_fini(&hdr);
        buf_fini(&out2);
        /* the input as a blob: decoding never reads past it */
        struct imap_sortkeys k;
        imap_sortkeys_decode(data, size, &k);
    }
    buf_reset(&out);
    thread_orderedsubject(msgs, n, &out);
    buf_fini(&out);
    buf_fini(&pool);
    buf_fini(&subj);
    free(soff);
    free(msgs);
    return 0;
}
