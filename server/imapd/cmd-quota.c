/* cmd-quota.c: GETQUOTA, GETQUOTAROOT and SETQUOTA (RFC 9208 section 4.1; RFC 2087 clients
 * use the same commands) with the STORAGE (KiB) and MESSAGE resources. The quota warning at
 * SELECT is imapd_quota_warn (reply.c).
 *
 * Quota roots are mailbox names (store/quotadb.h) and are shown in the user's view like
 * mailbox names: fred's root "user/fred" is "INBOX" to fred and "Other Users/fred" to an
 * administrator. A user may read the quota of a root in their own hierarchy or of a mailbox
 * they can see; only administrators (config `admins`) may SETQUOTA. A root the user may not
 * read is answered exactly like one that does not exist. Administrators may also write
 * another user's root the conventional way, "user/fred" (admin_conventional_root). */
#include "imapd.h"
#include "acl-check.h"
#include "selected.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "store/acl.h"
#include "store/mboxname.h"
#include "store/store.h"
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* kib: bytes as KiB, rounded up (RFC 9208 section 5.1: STORAGE is in units of 1024 octets). */
static int64_t kib(int64_t bytes) { return bytes <= 0 ? 0 : bytes / 1024 + (bytes % 1024 != 0); }

/* quota_response: "* QUOTA root (STORAGE used limit MESSAGE used limit)"; a resource without a
 * limit is left out (RFC 9208 section 5.1). */
static void quota_response(struct client *c, const char *root, const struct quota *qt)
{
    struct buf out = BUF_INIT, ext = BUF_INIT;
    buf_appends(&out, "QUOTA ");
    if (rev2_name_to_wire(c, root, &ext) < 0) {
        buf_reset(&ext);
        buf_appends(&ext, root);
    }
    rev2_string_append(c, ext.s ? ext.s : "", ext.len, &out);
    buf_appends(&out, " (");
    const char *sep = "";
    if (qt->limit_storage_kib != QUOTA_UNLIMITED) {
        buf_printf(&out, "STORAGE %" PRId64 " %" PRId64, kib(qt->used_bytes), qt->limit_storage_kib);
        sep = " ";
    }
    if (qt->limit_messages != QUOTA_UNLIMITED)
        buf_printf(&out, "%sMESSAGE %" PRId64 " %" PRId64, sep,
                   qt->used_messages < 0 ? 0 : qt->used_messages, qt->limit_messages);
    buf_putc(&out, ')');
    client_untagged(c, "%s", buf_cstr(&out));
    buf_fini(&out);
    buf_fini(&ext);
}

/* may_read_root: whether the user may see internal root name: administrators, the owner of a
 * personal root, or anyone who can see a mailbox of that name. 1, 0, or an error. */
static int may_read_root(struct client *c, const char *root)
{
    if (c->is_admin) return 1;
    struct buf owner = BUF_INIT;
    int own = mboxname_owner(root, &owner) == 1 && !strcmp(buf_cstr(&owner), c->user);
    buf_fini(&owner);
    if (own) return 1;
    char rights[ACL_RIGHTS_SIZE];
    int r = acl_lookup(c, root, NULL, 'r', rights);
    return r == CF_E_PERM ? 1 : r;
}

/* admin_conventional_root: an administrator's "user/fred/..." (the internal spelling, which
 * Cyrus administrators type) would otherwise be "user/ADMIN/user/fred/..." in the
 * administrator's own namespace, silently making a new root there. When that name is neither
 * a mailbox nor a quota root of the administrator's, it means fred's: root becomes the name
 * "Other Users/fred/..." stands for, which is also how the QUOTA answer shows it. 0 (root
 * possibly replaced), or an error. */
static int admin_conventional_root(struct client *c, const char *wire, struct buf *root)
{
    struct quota qt;
    int r = store_lookup(c->store, buf_cstr(root), NULL);
    if (r == 0) r = store_quota_get(c->store, buf_cstr(root), &qt);
    if (r != 0) return r < 0 ? r : 0;   /* the administrator's own name exists: keep it */
    char *other = xasprintf("%s%s", MBOXNAME_NS_OTHER, wire + 5);
    struct buf theirs = BUF_INIT;
    if (rev2_name_from_wire(c, other, &theirs) == 0) {
        log_info("quota_root_conventional", "given=%s root=%s", log_quote(wire),
                 log_quote(buf_cstr(&theirs)));
        buf_reset(root);
        buf_appends(root, buf_cstr(&theirs));
    }
    buf_fini(&theirs);
    free(other);
    return 0;
}

/* root_arg: argument i as an internal quota root name, or 0 after answering. */
static int root_arg(struct client *c, const struct imap_command *cmd, size_t i, struct buf *root)
{
    const char *s = i < cmd->nargs ? imap_arg_astring(&cmd->args[i]) : NULL;
    if (!s) {
        client_tagged(c, cmd->tag, "BAD %s needs a quota root", cmd->name);
        return 0;
    }
    if (strlen(s) != cmd->args[i].len || rev2_name_from_wire(c, s, root) < 0) {
        client_tagged(c, cmd->tag, "NO [NONEXISTENT] No such quota root");
        return 0;
    }
    if (c->is_admin && !strncmp(s, "user/", 5) && s[5]) {
        int r = admin_conventional_root(c, s, root);
        if (r < 0) {
            imapd_reply_error(c, cmd->tag, r);
            return 0;
        }
    }
    return 1;
}

/* RFC 9208 section 4.1.1: GETQUOTA root. */
void cmd_getquota(struct client *c, const struct imap_command *cmd)
{
    struct buf root = BUF_INIT;
    if (cmd->nargs != 1) {
        client_tagged(c, cmd->tag, "BAD GETQUOTA needs a quota root");
        goto done;
    }
    if (!c->store) {
        client_tagged(c, cmd->tag, "NO [UNAVAILABLE] The mail store is not available");
        goto done;
    }
    if (!root_arg(c, cmd, 0, &root)) goto done;
    struct quota qt;
    int r = may_read_root(c, buf_cstr(&root));
    if (r == 1) r = store_quota_get(c->store, buf_cstr(&root), &qt);
    if (r == 0) {
        client_tagged(c, cmd->tag, "NO [NONEXISTENT] No such quota root");
        goto done;
    }
    if (r < 0) {
        imapd_reply_error(c, cmd->tag, r);
        goto done;
    }
    quota_response(c, buf_cstr(&root), &qt);
    client_tagged(c, cmd->tag, "OK GETQUOTA completed");
done:
    buf_fini(&root);
}

/* RFC 9208 section 4.1.2: GETQUOTAROOT mailbox: "* QUOTAROOT mailbox root" and the QUOTA of
 * that root (a mailbox has at most one root here: the nearest). Needs any right that makes
 * the mailbox visible. */
void cmd_getquotaroot(struct client *c, const struct imap_command *cmd)
{
    struct buf name = BUF_INIT, root = BUF_INIT, out = BUF_INIT, ext = BUF_INIT;
    const char *s = cmd->nargs == 1 ? imap_arg_astring(&cmd->args[0]) : NULL;
    if (!s) {
        client_tagged(c, cmd->tag, "BAD GETQUOTAROOT needs a mailbox name");
        goto done;
    }
    if (!c->store) {
        client_tagged(c, cmd->tag, "NO [UNAVAILABLE] The mail store is not available");
        goto done;
    }
    if (strlen(s) != cmd->args[0].len) {
        client_tagged(c, cmd->tag, "NO [NONEXISTENT] No such mailbox");
        goto done;
    }
    if (imapd_mailbox_name(c, cmd->tag, s, &name) < 0) goto done;
    char rights[ACL_RIGHTS_SIZE] = "";
    int r = acl_lookup(c, buf_cstr(&name), NULL, 'r', rights);
    if (r == CF_E_PERM) r = 1;
    if (r == 0) {
        client_tagged(c, cmd->tag, "NO [NONEXISTENT] No such mailbox");
        goto done;
    }
    struct quota qt;
    int have = 0;
    if (r == 1) {
        r = store_quota_of(c->store, buf_cstr(&name), &root, &qt);
        have = r == 1;
    }
    if (r < 0) {
        imapd_reply_error(c, cmd->tag, r);
        goto done;
    }
    buf_appends(&out, "QUOTAROOT ");
    rev2_string_append(c, cmd->args[0].s, cmd->args[0].len, &out);
    if (have) {
        if (rev2_name_to_wire(c, buf_cstr(&root), &ext) < 0) {
            buf_reset(&ext);
            buf_appends(&ext, buf_cstr(&root));
        }
        buf_putc(&out, ' ');
        rev2_string_append(c, ext.s ? ext.s : "", ext.len, &out);
    }
    client_untagged(c, "%s", buf_cstr(&out));
    if (have) quota_response(c, buf_cstr(&root), &qt);
    client_tagged(c, cmd->tag, "OK GETQUOTAROOT completed");
done:
    buf_fini(&name);
    buf_fini(&root);
    buf_fini(&out);
    buf_fini(&ext);
}

/* parse_limit: a resource limit number (RFC 9208 section 4.1.3: number64). */
static int parse_limit(const struct imap_arg *a, int64_t *out)
{
    const char *s = imap_arg_atom(a);
    if (!s || !*s || a->type == IMAP_ARG_NIL) return CF_E_PARSE;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end || errno || v < 0 || s[0] == '-' || s[0] == '+') return CF_E_PARSE;
    *out = v;
    return 0;
}

/* RFC 9208 section 4.1.3: SETQUOTA root (resource limit ...). The limits replace the old ones:
 * a resource not named has no limit, and "()" makes the name no quota root at all. A new root
 * starts with the usage counted from its mailboxes (store_quota_set). Administrators only. */
void cmd_setquota(struct client *c, const struct imap_command *cmd)
{
    struct buf root = BUF_INIT;
    if (cmd->nargs != 2 || cmd->args[1].type != IMAP_ARG_LIST || cmd->args[1].count % 2) {
        client_tagged(c, cmd->tag, "BAD SETQUOTA needs a quota root and a list of resource "
                      "limits");
        goto done;
    }
    int64_t storage = QUOTA_UNLIMITED, messages = QUOTA_UNLIMITED;
    const struct imap_arg *l = cmd->args[1].list;
    for (size_t i = 0; i < cmd->args[1].count; i += 2) {
        int64_t v;
        if (parse_limit(&l[i + 1], &v) < 0) {
            client_tagged(c, cmd->tag, "BAD Invalid resource limit");
            goto done;
        }
        if (imap_arg_atom_eq(&l[i], "STORAGE") && v > QUOTA_STORAGE_KIB_MAX) {
            /* L6: its byte count would not fit in 63 bits */
            client_tagged(c, cmd->tag, "NO [LIMIT] STORAGE limit too large (at most %" PRId64
                          " KiB)", (int64_t)QUOTA_STORAGE_KIB_MAX);
            goto done;
        }
        if (imap_arg_atom_eq(&l[i], "STORAGE")) storage = v;
        else if (imap_arg_atom_eq(&l[i], "MESSAGE")) messages = v;
        else {
            client_tagged(c, cmd->tag, "NO [CANNOT] Unsupported resource (STORAGE and MESSAGE "
                          "are)");
            goto done;
        }
    }
    if (!c->store) {
        client_tagged(c, cmd->tag, "NO [UNAVAILABLE] The mail store is not available");
        goto done;
    }
    if (!c->is_admin) {
        /* say nothing about whether the root exists */
        client_tagged(c, cmd->tag, "NO [NOPERM] Only administrators may set quotas");
        goto done;
    }
    if (!root_arg(c, cmd, 0, &root)) goto done;
    const char *rn = buf_cstr(&root);
    struct quota qt;
    int r;
    if (!cmd->args[1].count) {
        r = store_quota_delete(c->store, rn);
        if (r == CF_E_NOTFOUND) r = 0;
        if (r) {
            imapd_reply_error(c, cmd->tag, r);
            goto done;
        }
        log_info("quota_removed", "root=%s", log_quote(rn));
        client_tagged(c, cmd->tag, "OK SETQUOTA completed");
        goto done;
    }
    /* a new root counts its mailboxes (and the root that had them lets go) under the roots'
     * locks, so that no append slips between the count and the store (store.h) */
    r = store_quota_set(c->store, rn, storage, messages, &qt);
    if (r == CF_E_PARSE) {
        client_tagged(c, cmd->tag, "NO [CANNOT] Invalid quota root");
        goto done;
    }
    if (r) {
        imapd_reply_error(c, cmd->tag, r);
        goto done;
    }
    log_info("quota_set", "root=%s storage_kib=%" PRId64 " messages=%" PRId64, log_quote(rn),
             storage, messages);
    quota_response(c, rn, &qt);
    client_tagged(c, cmd->tag, "OK SETQUOTA completed");
done:
    buf_fini(&root);
}
