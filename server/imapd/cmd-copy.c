/* cmd-copy.c: COPY, MOVE and their UID forms (RFC 3501 section 6.4.7, RFC 6851), with
 * UIDPLUS COPYUID (RFC 4315 section 3) and quota (RFC 9208 OVERQUOTA). */
#include "imapd.h"
#include "selected.h"
#include "acl-check.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "store/mboxname.h"
#include "store/store-mail.h"
#include <stdlib.h>
#include <string.h>

/* copyuid_append: the COPYUID source and destination sets, in corresponding order, with
 * runs that are consecutive in both written as ranges (RFC 4315 section 3 uid-set). */
static void copyuid_append(const uint32_t *src, const uint32_t *dst, size_t n, struct buf *out)
{
    struct buf d = BUF_INIT;
    int first = 1;
    for (size_t i = 0; i < n;) {
        if (!dst[i]) {
            i++;
            continue;
        }
        size_t j = i;
        while (j + 1 < n && dst[j + 1] && src[j + 1] == src[j] + 1 && dst[j + 1] == dst[j] + 1)
            j++;
        if (!first) {
            buf_putc(out, ',');
            buf_putc(&d, ',');
        }
        first = 0;
        if (j > i) {
            buf_printf(out, "%u:%u", (unsigned)src[i], (unsigned)src[j]);
            buf_printf(&d, "%u:%u", (unsigned)dst[i], (unsigned)dst[j]);
        } else {
            buf_printf(out, "%u", (unsigned)src[i]);
            buf_printf(&d, "%u", (unsigned)dst[i]);
        }
        i = j + 1;
    }
    buf_putc(out, ' ');
    buf_append(out, d.s ? d.s : "", d.len);
    buf_fini(&d);
}

/* collect_uids: the uids of msgs (numbers or UIDs as the command gave them, resolved by
 * selected_msgset) that still exist; a message expunged elsewhere is left out (RFC 2180
 * section 4.4). *uids_r (caller frees) and *n_r. 0 or mailbox_record's error. */
static int collect_uids(struct selected *sel, const struct imap_seqset *msgs, uint32_t **uids_r,
                        size_t *n_r)
{
    uint64_t total = imap_seqset_size(msgs);
    uint32_t *uids = *uids_r = xreallocarray(NULL, total ? total : 1, sizeof *uids);
    *n_r = 0;
    for (size_t i = 0; i < msgs->count; i++)
        for (uint64_t m = msgs->r[i].lo; m <= msgs->r[i].hi; m++) {
            struct index_record rec;
            uint32_t uid = selected_uid(sel, (uint32_t)m);
            int r = mailbox_record(sel->mb, uid, &rec);
            if (r < 0) return r;
            if (r == 1 && !(rec.flags & FLAG_EXPUNGED)) uids[(*n_r)++] = uid;
        }
    return 0;
}

static void do_copy(struct client *c, const struct imap_command *cmd, int move)
{
    struct selected *sel = c->sel;
    int uid_cmd = command_is_uid(cmd);
    struct imap_seqset msgs = IMAP_SEQSET_INIT;
    struct buf name = BUF_INIT, b = BUF_INIT;
    struct mailbox *dst = NULL;
    uint32_t *uids = NULL, *dst_uids = NULL;
    size_t n = 0;
    const char *err = NULL;
    int r;
    const char *ext = cmd->nargs == 2 ? imap_arg_astring(&cmd->args[1]) : NULL;
    if (!ext || !imap_arg_atom(&cmd->args[0])) {
        client_tagged(c, cmd->tag, "BAD %s takes a sequence set and a mailbox name", cmd->name);
        goto out;
    }
    if (selected_msgset(sel, cmd->args[0].s, uid_cmd, &msgs, &err) < 0) {
        client_tagged(c, cmd->tag, "BAD %s", err);
        goto out;
    }
    if (move && sel->readonly) {
        client_tagged(c, cmd->tag, "NO [READ-ONLY] The mailbox is read-only");
        goto out;
    }
    if (move && (!strchr(sel->rights, 'e') || !strchr(sel->rights, 't'))) {
        client_tagged(c, cmd->tag, "NO [NOPERM] Permission denied");   /* RFC 6851 section 3.3 */
        goto out;
    }
    /* RFC 3501 section 6.4.7: a target that does not exist gets TRYCREATE */
    if (rev2_name_from_wire(c, ext, &name) < 0) {
        client_tagged(c, cmd->tag, "NO [TRYCREATE] No such mailbox");
        goto out;
    }
    char drights[ACL_RIGHTS_SIZE] = "";
    r = acl_lookup(c, buf_cstr(&name), NULL, 'i', drights);
    if (r == 0) {
        client_tagged(c, cmd->tag, "NO [TRYCREATE] No such mailbox");
        goto out;
    }
    if (r == CF_E_PERM) {
        client_tagged(c, cmd->tag, "NO [NOPERM] Permission denied");
        goto out;
    }
    if (r < 0) {
        imapd_reply_error(c, cmd->tag, r);
        goto out;
    }
    r = collect_uids(sel, &msgs, &uids, &n);
    if (r < 0) {
        imapd_reply_error(c, cmd->tag, r);
        goto out;
    }
    dst_uids = xreallocarray(NULL, n ? n : 1, sizeof *dst_uids);
    if (!n) {
        client_tagged(c, cmd->tag, "OK %s completed", cmd->name);
        goto out;
    }
    r = store_open_target(c->store, buf_cstr(&name), NULL, &dst);
    if (r == CF_E_NOTFOUND) {
        client_tagged(c, cmd->tag, "NO [TRYCREATE] No such mailbox");
        goto out;
    }
    if (r < 0) {
        imapd_reply_error(c, cmd->tag, r);
        goto out;
    }
    /* L4 of the 2026-12 review, RFC 4314 section 4: the copies keep only the flags the user
     * may set on the target, as APPEND does (\Seen needs s, \Deleted t, the others w) */
    uint32_t keep = 0;
    if (strchr(drights, 's')) keep |= FLAG_SEEN;
    if (strchr(drights, 't')) keep |= FLAG_DELETED;
    if (strchr(drights, 'w')) keep |= FLAG_ANSWERED | FLAG_FLAGGED | FLAG_DRAFT;
    int kw = strchr(drights, 'w') != NULL;
    /* one store transaction each: quota locks, check, commit, settle (store/store-mail.h) */
    r = move ? store_move(c->store, sel->mb, sel->name, uids, n, dst, buf_cstr(&name), keep, kw,
                          dst_uids, 0, NULL)
             : store_copy(c->store, sel->mb, uids, n, dst, buf_cstr(&name), keep, kw, dst_uids, 0);
    if (r < 0) {
        imapd_reply_error(c, cmd->tag, r);
        goto out;
    }
    buf_printf(&b, "[COPYUID %u ", (unsigned)mailbox_header(dst)->uidvalidity);
    copyuid_append(uids, dst_uids, n, &b);
    buf_putc(&b, ']');
    if (!move) {
        client_tagged(c, cmd->tag, "OK %s %s completed", buf_cstr(&b), cmd->name);
        goto out;
    }
    /* RFC 6851 section 4.3: COPYUID untagged first, then the EXPUNGEs (from the sync before
     * the tagged reply), then the tagged OK */
    client_untagged(c, "OK %s Moved", buf_cstr(&b));
    client_tagged(c, cmd->tag, "OK %s completed", cmd->name);
out:
    mailbox_close(&dst);
    free(uids);
    free(dst_uids);
    buf_fini(&name);
    buf_fini(&b);
    imap_seqset_fini(&msgs);
}

void cmd_copy(struct client *c, const struct imap_command *cmd) { do_copy(c, cmd, 0); }
void cmd_move(struct client *c, const struct imap_command *cmd) { do_copy(c, cmd, 1); }
