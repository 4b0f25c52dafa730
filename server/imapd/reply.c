/* reply.c: what every IMAP command family shares: the one table from store error codes to
 * tagged NO replies, mailbox names as the client sends them, quoting, and the quota warning.
 *
 * Command files call these and never each other, so a cmd-*.c depends on imapd.h and the
 * store only. */
#include "imapd.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "store/mboxname.h"
#include "store/quotadb.h"
#include "store/store.h"
#include <inttypes.h>

/* RFC 5530 section 3 response codes for the store's errors. The text never holds a path or a
 * call: the store logged those where the error happened (STYLE.md, Errors). */
static const struct {
    int err;
    const char *reply;
} reply_errors[] = {
    { CF_E_NOTFOUND, "NO [NONEXISTENT] No such mailbox" },
    { CF_E_EXISTS, "NO [ALREADYEXISTS] Mailbox already exists" },
    { CF_E_PARSE, "NO [CANNOT] Invalid mailbox name" },
    /* the ACL (or a rule such as "not into itself") forbids it */
    { CF_E_PERM, "NO [NOPERM] Permission denied" },
    { CF_E_QUOTA, "NO [OVERQUOTA] Quota exceeded" },
    /* a configured count or size, or the mailbox's keyword table, is full */
    { CF_E_LIMIT, "NO [LIMIT] A limit of the mail store was reached" },
    /* another session holds what this needs ("someone else may be holding an exclusive
     * lock needed for this operation") */
    { CF_E_LOCKED, "NO [INUSE] The mailbox is in use; try again" },
    /* a subsystem (database, password backend) is down for now */
    { CF_E_AGAIN, "NO [UNAVAILABLE] Temporary failure; try again" },
    /* a write or flush failed (EIO, ENOSPC); nothing was committed */
    { CF_E_IO, "NO [UNAVAILABLE] The mail store could not write; try again" },
    /* a stored file failed its magic, size or checksum check: reconstruct repairs it */
    { CF_E_CORRUPT, "NO [CORRUPTION] Mailbox is damaged" },
};

const char *imapd_error_reply(int r)
{
    for (size_t i = 0; i < sizeof reply_errors / sizeof reply_errors[0]; i++)
        if (reply_errors[i].err == r) return reply_errors[i].reply;
    return "NO [SERVERBUG] Internal error";
}

void imapd_reply_error(struct client *c, const char *tag, int r)
{
    client_tagged(c, tag, "%s", imapd_error_reply(r));
}

int imapd_mailbox_name(struct client *c, const char *tag, const char *imapname, struct buf *out)
{
    int r = rev2_name_from_wire(c, imapname, out);
    if (!r) return 0;
    if (r == CF_E_PARSE)
        client_tagged(c, tag, "NO [CANNOT] Invalid mailbox name");
    else
        client_tagged(c, tag, "NO [NONEXISTENT] No such mailbox");
    return r;
}

void imapd_quota_warn(struct client *c, const char *name)
{
    long long pct = config_int(c->ws->cfg, CFG_QUOTA_WARN_PERCENT);
    if (pct <= 0 || !c->store) return;
    struct buf root = BUF_INIT;
    struct quota qt;
    if (store_quota_of(c->store, name, &root, &qt) == 1) {
        int64_t used = quota_percent(&qt);   /* L6: no overflow, no division by zero */
        if (used >= pct) {
            client_untagged(c, "NO [ALERT] Mailbox is %" PRId64 "%% full", used);
            log_notice("quota_warning", "root=%s percent=%" PRId64, log_quote(buf_cstr(&root)),
                       used);
        }
    }
    buf_fini(&root);
}
