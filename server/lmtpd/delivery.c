/* delivery.c: from a spooled message and the accepted recipients to mailboxes and the
 * per-recipient replies of RFC 2033 section 4.2 (Sieve decides where each user's copy goes). */
#include "lmtpd.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "store/deliver.h"
#include "store/store.h"
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

/* What became of one recipient. */
struct outcome {
    int error;                 /* 0, or the CF_E_* that decides the reply */
    const char *reject;        /* Sieve reject reason (550 5.7.1), or NULL */
    size_t first, count;       /* its targets in the target array */
};

static void reply_for(struct client *c, const struct rcpt *r, const struct outcome *o,
                      const struct deliver_target *t)
{
    if (o->reject) {
        client_reply(c, "550 5.7.1 <%s> %s", r->addr, o->reject);
        return;
    }
    int err = o->error;
    /* the recipient's reply is the worst of its targets' results */
    for (size_t i = o->first; !err && i < o->first + o->count; i++)
        if (t[i].result < 0) err = t[i].result;
    if (!err)
        client_reply(c, "250 2.1.5 <%s> Delivered", r->addr);
    else if (err == CF_E_QUOTA && config_int(c->ws->cfg, CFG_LMTP_OVERQUOTA_PERMANENT))
        client_reply(c, "552 5.2.2 <%s> Mailbox over quota", r->addr);
    else if (err == CF_E_QUOTA)
        client_reply(c, "452 4.2.2 <%s> Mailbox over quota", r->addr);
    else
        client_reply(c, "451 4.3.0 <%s> Temporary local problem", r->addr);
}

void lmtp_deliver(struct client *c, int fd)
{
    struct store *st = lmtpd_store();
    struct stat sb;
    const char *data = NULL;
    size_t len = 0;
    struct buf msgid = BUF_INIT;
    struct outcome *oc = xzmalloc(c->nrcpts * sizeof *oc);
    struct deliver_target *t = xzmalloc(c->nrcpts * sizeof *t);
    size_t nt = 0;
    int trouble = 0;
    if (!st || fstat(fd, &sb) < 0) {
        trouble = 1;
    } else if (sb.st_size > 0) {
        len = (size_t)sb.st_size;
        void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) trouble = 1;
        else data = p;
    }
    if (trouble) {
        log_err("delivery_failed", "error=%s", st ? "spool" : "store_unavailable");
        for (size_t i = 0; i < c->nrcpts; i++) {
            oc[i].error = CF_E_IO;
            reply_for(c, &c->rcpts[i], &oc[i], t);
        }
        goto done;
    }
    deliver_message_id(data, len, &msgid);
    for (size_t i = 0; i < c->nrcpts; i++) {
        struct rcpt *r = &c->rcpts[i];
        oc[i].first = nt;
        if (r->need_inbox) {
            int e = store_ensure_inbox(st, r->user);
            if (e < 0) {
                oc[i].error = e;
                continue;
            }
            if (e == 1) log_info("inbox_created", "user=%s", log_quote(r->user));
            r->need_inbox = 0;
        }
        t[nt].mailbox = r->mailbox;
        t[nt].user = r->user;
        nt++;
        oc[i].count = nt - oc[i].first;
    }
    struct deliver_msg m = { data, len, -1, msgid.len ? buf_cstr(&msgid) : NULL, 0 };
    deliver_message(st, &m, t, nt);
    for (size_t i = 0; i < c->nrcpts; i++) reply_for(c, &c->rcpts[i], &oc[i], t);
done:
    if (data) munmap((void *)data, len);
    buf_fini(&msgid);
    free(oc);
    free(t);
}
