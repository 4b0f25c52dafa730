/* deliver.c: one message into many mailboxes: duplicates, quota, single-instance store. */
#include "store/deliver.h"
#include "store/store-mail.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mime/decode.h"
#include "store/store-int.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

int deliver_quota_full(struct store *st, const char *mailbox, int64_t add_bytes)
{
    struct buf root = BUF_INIT;
    struct quota qt;
    int r = quotadb_find_root(st->quota, NULL, mailbox, &root);
    if (r == 1) r = quotadb_get(st->quota, NULL, buf_cstr(&root), &qt);
    if (r == 1) r = quota_would_exceed(&qt, add_bytes > 0 ? add_bytes : 1, 1);
    buf_fini(&root);
    return r;
}

/* A mailbox already holding the message, kept open so later targets on the same partition
 * can link to it instead of writing another copy. */
struct source {
    char *partition;
    struct mailbox *mb;
    uint32_t uid;
    uint32_t flags;
    const char *const *keywords;
};

static int same_keywords(const char *const *a, const char *const *b)
{
    if (!a || !*a) return !b || !*b;
    if (!b) return 0;
    for (; *a && *b; a++, b++)
        if (strcmp(*a, *b)) return 0;
    return !*a && !*b;
}

static void log_result(const struct deliver_target *t, const char *msgid, uint64_t size)
{
    log_set_user(t->user);
    log_set_mailbox(t->mailbox);
    if (t->result == DELIVER_OK)
        log_info("delivered", "uid=%u size=%llu msgid=%s", t->uid, (unsigned long long)size,
                 log_quote(msgid ? msgid : ""));
    else if (t->result == DELIVER_DUPLICATE)
        log_info("duplicate_suppressed", "size=%llu msgid=%s", (unsigned long long)size,
                 log_quote(msgid ? msgid : ""));
    else if (t->result == CF_E_QUOTA)
        log_notice("delivery_overquota", "size=%llu msgid=%s", (unsigned long long)size,
                   log_quote(msgid ? msgid : ""));
    else
        log_warn("delivery_failed", "error=%s size=%llu msgid=%s", log_quote(cf_strerror(t->result)),
                 (unsigned long long)size, log_quote(msgid ? msgid : ""));
    log_set_user(NULL);
    log_set_mailbox(NULL);
}

/* deliver_one: file m into t->mailbox; sets t->result and t->uid. A mailbox it opened and
 * filled is handed to srcs (for linking) instead of being closed. */
static void deliver_one(struct store *st, const struct deliver_msg *m, struct deliver_target *t,
                        struct source *srcs, size_t *nsrcs, int64_t now)
{
    struct mboxlist_entry e;
    struct mailbox *mb = NULL;
    mboxlist_entry_init(&e);
    t->uid = 0;
    int r;
    if (m->msgid && !t->no_dupcheck) {
        r = dupdb_check(st->dup, NULL, m->msgid, t->mailbox, NULL);
        if (r == 1) {
            t->result = DELIVER_DUPLICATE;
            goto done;
        }
        /* a broken duplicate database must not stop mail: deliver (logged by dupdb) */
    }
    /* a handle kept from an earlier delivery to this mailbox, or a new one (store.h) */
    if ((r = store_take_target(st, t->mailbox, &e, &mb)) < 0) {
        t->result = r;
        goto done;
    }
    struct source *src = NULL;
    for (size_t i = 0; i < *nsrcs; i++)
        if (!strcmp(srcs[i].partition, e.partition) && srcs[i].flags == t->flags &&
            same_keywords(srcs[i].keywords, t->keywords)) {
            src = &srcs[i];
            break;
        }
    /* each is one store transaction: quota lock, check, commit, settle (store-mail.h); a
     * failed lock is a temporary failure (L14: 4.3.0), never an unchecked delivery */
    if (src) {
        /* single-instance store: the copy hard-links the file the first mailbox got */
        r = store_copy(st, src->mb, &src->uid, 1, mb, t->mailbox, MAILBOX_COPY_ALL_FLAGS, 1,
                       &t->uid, 0);
        if (r == 0 && t->uid == 0) r = CF_E_NOTFOUND;   /* expunged from under us: append */
    }
    if (!src || r == CF_E_NOTFOUND || r == CF_E_IO) {
        struct mailbox_msg mm;
        memset(&mm, 0, sizeof mm);
        mm.data = m->data;
        mm.len = m->len;
        mm.fd = m->fd;
        mm.internaldate = m->internaldate ? m->internaldate : now;
        mm.flags = t->flags;
        mm.keywords = t->keywords;
        r = store_append(st, mb, t->mailbox, &mm, 1);
        t->uid = mm.uid;
        if (r == 0 && !src) {
            struct source *s = &srcs[(*nsrcs)++];
            s->partition = xstrdup(e.partition);
            s->mb = mb;
            s->uid = mm.uid;
            s->flags = t->flags;
            s->keywords = t->keywords;
            mb = NULL;
        }
    }
    if (r < 0) {
        t->result = r;
        goto done;
    }
    t->result = DELIVER_OK;
    /* the message is durable and counted; the duplicate mark follows (see deliver.h) */
    if (m->msgid) dupdb_mark(st->dup, NULL, m->msgid, t->mailbox, now);
done:
    /* kept for the next delivery to it; one that failed is opened afresh next time */
    if (mb && t->result == DELIVER_OK) store_keep_target(st, &mb);
    if (mb) mailbox_close(&mb);
    mboxlist_entry_fini(&e);
}

int deliver_message(struct store *st, const struct deliver_msg *m, struct deliver_target *t,
                    size_t n)
{
    struct source *srcs = xzmalloc((n ? n : 1) * sizeof *srcs);
    size_t nsrcs = 0;
    int64_t now = (int64_t)time(NULL);
    uint64_t size = m->len;
    if (!m->data) {
        struct stat sb;
        size = fstat(m->fd, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    }
    int ok = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j;
        for (j = 0; j < i; j++)
            if (!strcmp(t[j].mailbox, t[i].mailbox)) break;
        if (j < i) {
            /* one copy per mailbox per delivery, whoever asked for it twice */
            t[i].result = t[j].result;
            t[i].uid = t[j].uid;
        } else {
            deliver_one(st, m, &t[i], srcs, &nsrcs, now);
            log_result(&t[i], m->msgid, size);
        }
        if (t[i].result == DELIVER_OK || t[i].result == DELIVER_DUPLICATE) ok++;
    }
    for (size_t i = 0; i < nsrcs; i++) {
        free(srcs[i].partition);
        store_keep_target(st, &srcs[i].mb);   /* each got its message: kept */
    }
    free(srcs);
    return ok;
}

/* ---- Message-ID ---- */

int deliver_message_id(const char *msg, size_t len, struct buf *out)
{
    const char *raw;
    size_t raw_len;
    buf_reset(out);
    if (!mime_header_find(msg, len, "Message-ID", &raw, &raw_len)) return 0;
    struct buf v = BUF_INIT;
    mime_header_unfold(raw, raw_len, &v);
    const char *s = buf_cstr(&v);
    const char *lt = strchr(s, '<');
    const char *gt = lt ? strchr(lt, '>') : NULL;
    if (lt && gt && gt > lt + 1) {
        buf_append(out, lt, (size_t)(gt - lt + 1));
    } else {
        /* no angle brackets: keep the trimmed text, so it still identifies the message */
        size_t l = strlen(s);
        while (l && (s[l - 1] == ' ' || s[l - 1] == '\t')) l--;
        buf_append(out, s, l);
    }
    buf_fini(&v);
    /* strip whitespace inside (folding may have put some there) */
    size_t w = 0;
    for (size_t i = 0; i < out->len; i++)
        if (out->s[i] != ' ' && out->s[i] != '\t') out->s[w++] = out->s[i];
    buf_truncate(out, w);
    return out->len > 0;
}
