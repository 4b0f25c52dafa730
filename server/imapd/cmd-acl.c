/* cmd-acl.c: the ACL commands SETACL, DELETEACL, GETACL, LISTRIGHTS and MYRIGHTS (RFC 4314
 * section 3), over the mailbox list's ACL text (store/acl.h).
 *
 * Every command but MYRIGHTS needs the 'a' right on the mailbox (RFC 4314 section 4); MYRIGHTS
 * needs any right. A mailbox the user may not see ('l') is answered NO [NONEXISTENT], exactly
 * as a missing one, so the commands reveal nothing about other people's mailboxes. A session
 * that has a mailbox selected keeps the rights it had at SELECT until it selects again. */
#include "imapd.h"
#include "acl-check.h"
#include "auth/sasl.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/strarr.h"
#include "core/xmalloc.h"
#include "store/acl.h"
#include "store/mboxname.h"
#include "store/store.h"
#include <stdlib.h>
#include <string.h>

/* acl_target: resolve argument 0 to an internal name and look it up with right (0: any right).
 * 1 with e filled; or 0 after the command was answered. */
static int acl_target(struct client *c, const struct imap_command *cmd, char right,
                      struct buf *name, struct mboxlist_entry *e, char *rights)
{
    const char *s = cmd->nargs ? imap_arg_astring(&cmd->args[0]) : NULL;
    if (!s) {
        client_tagged(c, cmd->tag, "BAD %s needs a mailbox name", cmd->name);
        return 0;
    }
    if (!c->store) {
        client_tagged(c, cmd->tag, "NO [UNAVAILABLE] The mail store is not available");
        return 0;
    }
    if (strlen(s) != cmd->args[0].len) {
        client_tagged(c, cmd->tag, "NO [NONEXISTENT] No such mailbox");
        return 0;
    }
    if (imapd_mailbox_name(c, cmd->tag, s, name) < 0) return 0;
    rights[0] = '\0';
    int r = acl_lookup(c, buf_cstr(name), e, right, rights);
    /* MYRIGHTS: any right will do; none at all is as good as no mailbox */
    if (!right && (r == 0 || r == CF_E_PERM)) r = rights[0] ? 1 : 0;
    if (r == 1) return 1;
    if (r == 0)
        client_tagged(c, cmd->tag, "NO [NONEXISTENT] No such mailbox");
    else
        imapd_reply_error(c, cmd->tag, r);   /* NOPERM, UNAVAILABLE, ... */
    return 0;
}

/* arg_ident: argument i as an identifier, or NULL after answering BAD. */
static const char *arg_ident(struct client *c, const struct imap_command *cmd, size_t i)
{
    const char *s = i < cmd->nargs ? imap_arg_astring(&cmd->args[i]) : NULL;
    if (!s || strlen(s) != cmd->args[i].len) {
        client_tagged(c, cmd->tag, "BAD %s needs an identifier", cmd->name);
        return NULL;
    }
    return s;
}

/* ---- SETACL / DELETEACL ---- */

static void update_acl(struct client *c, const struct imap_command *cmd, const char *name,
                       struct mboxlist_entry *e, char *new_acl)
{
    free(e->acl);
    e->acl = new_acl;
    int r = acl_mailbox_update(c->store, name, e);
    if (r) {
        imapd_reply_error(c, cmd->tag, r);   /* NONEXISTENT when it went meanwhile */
        return;
    }
    log_info("acl_changed", "mailbox=%s acl=%s", log_quote(name), log_quote(new_acl));
    client_tagged(c, cmd->tag, "OK %s completed", cmd->name);
}

/* RFC 4314 section 3.1: SETACL mailbox identifier [+|-]rights. An empty rights string
 * (without '+' or '-') removes the identifier; unknown letters are a BAD. */
void cmd_setacl(struct client *c, const struct imap_command *cmd)
{
    struct buf name = BUF_INIT;
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    char rights[ACL_RIGHTS_SIZE];
    const char *ident, *text;
    if (cmd->nargs != 3) {
        client_tagged(c, cmd->tag, "BAD SETACL needs a mailbox, an identifier and rights");
        goto done;
    }
    if (!(ident = arg_ident(c, cmd, 1))) goto done;
    text = imap_arg_astring(&cmd->args[2]);
    if (!text) {
        client_tagged(c, cmd->tag, "BAD SETACL needs rights");
        goto done;
    }
    enum acl_mode mode = ACL_REPLACE;
    if (*text == '+') mode = ACL_ADD, text++;
    else if (*text == '-') mode = ACL_REMOVE, text++;
    unsigned mask = 0;
    if (acl_parse_rights(text, strlen(text), 1, &mask) < 0) {
        /* the rights may be a literal with CR LF in it: never echo them raw (review L1) */
        char shown[41];
        client_tagged(c, cmd->tag, "BAD Unknown right in \"%s\" (valid: " ACL_RIGHTS_ALL
                      " and the obsolete c d)",
                      client_printable(cmd->args[2].s, cmd->args[2].len, shown, sizeof shown));
        goto done;
    }
    if (!acl_target(c, cmd, 'a', &name, &e, rights)) goto done;
    if (mode != ACL_REMOVE && mask) {
        /* acl_local_users_only (a scale-out backend): a user of another backend would get
         * an entry nobody can use, as shared folders do not cross backends (router(8)) */
        int ok = csasl_acl_grantee_ok(ident);
        if (ok < 0) {
            client_tagged(c, cmd->tag, "NO [UNAVAILABLE] Cannot read the user list, try again");
            goto done;
        }
        if (!ok) {
            log_info("acl_refused", "mailbox=%s identifier=%s reason=not_local",
                     log_quote(buf_cstr(&name)), log_quote(ident));
            client_tagged(c, cmd->tag, "NO [CANNOT] %s is not a user of this server (it may "
                          "live on another backend: folders are shared only within one)", ident);
            goto done;
        }
    }
    char *acl = NULL;
    if (acl_modify(e.acl, ident, mode, mask, &acl) < 0) {
        client_tagged(c, cmd->tag, "NO [CANNOT] Invalid identifier");
        goto done;
    }
    update_acl(c, cmd, buf_cstr(&name), &e, acl);
done:
    mboxlist_entry_fini(&e);
    buf_fini(&name);
}

/* RFC 4314 section 3.2: DELETEACL mailbox identifier. Removing an identifier that has no
 * entry succeeds (the ACL is as asked). */
void cmd_deleteacl(struct client *c, const struct imap_command *cmd)
{
    struct buf name = BUF_INIT;
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    char rights[ACL_RIGHTS_SIZE];
    const char *ident;
    if (cmd->nargs != 2) {
        client_tagged(c, cmd->tag, "BAD DELETEACL needs a mailbox and an identifier");
        goto done;
    }
    if (!(ident = arg_ident(c, cmd, 1))) goto done;
    if (!acl_target(c, cmd, 'a', &name, &e, rights)) goto done;
    char *acl = NULL;
    if (!acl_remove_ident(e.acl, ident, &acl)) {
        free(acl);
        client_tagged(c, cmd->tag, "OK DELETEACL completed");
        goto done;
    }
    update_acl(c, cmd, buf_cstr(&name), &e, acl);
done:
    mboxlist_entry_fini(&e);
    buf_fini(&name);
}

/* ---- GETACL / LISTRIGHTS / MYRIGHTS ---- */

/* RFC 4314 section 3.3: * ACL mailbox (identifier rights)* */
void cmd_getacl(struct client *c, const struct imap_command *cmd)
{
    struct buf name = BUF_INIT, out = BUF_INIT;
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    struct strarr ids = STRARR_INIT, rs = STRARR_INIT;
    char rights[ACL_RIGHTS_SIZE];
    if (cmd->nargs != 1) {
        client_tagged(c, cmd->tag, "BAD GETACL needs a mailbox name");
        goto done;
    }
    if (!acl_target(c, cmd, 'a', &name, &e, rights)) goto done;
    acl_split(e.acl, &ids, &rs);
    buf_appends(&out, "ACL ");
    rev2_string_append(c, cmd->args[0].s, cmd->args[0].len, &out);
    for (size_t i = 0; i < ids.count; i++) {
        unsigned m = 0;
        char letters[16];
        acl_parse_rights(rs.v[i], strlen(rs.v[i]), 0, &m);
        buf_putc(&out, ' ');
        imap_string_append(&out, ids.v[i], strlen(ids.v[i]));
        buf_putc(&out, ' ');
        acl_format_rights(m, letters);
        imap_string_append(&out, letters, strlen(letters));
    }
    client_untagged(c, "%s", buf_cstr(&out));
    client_tagged(c, cmd->tag, "OK GETACL completed");
done:
    strarr_fini(&ids);
    strarr_fini(&rs);
    mboxlist_entry_fini(&e);
    buf_fini(&name);
    buf_fini(&out);
}

/* RFC 4314 section 3.4: * LISTRIGHTS mailbox identifier required optional...: an
 * administrator always has every right; the owner of a personal mailbox always has
 * ACL_OWNER_IMPLICIT; every other right can be granted on its own ("RIGHTS=kxte": no ties). */
void cmd_listrights(struct client *c, const struct imap_command *cmd)
{
    struct buf name = BUF_INIT, out = BUF_INIT, owner = BUF_INIT;
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    char rights[ACL_RIGHTS_SIZE];
    const char *ident;
    if (cmd->nargs != 2) {
        client_tagged(c, cmd->tag, "BAD LISTRIGHTS needs a mailbox and an identifier");
        goto done;
    }
    if (!(ident = arg_ident(c, cmd, 1))) goto done;
    if (!acl_target(c, cmd, 'a', &name, &e, rights)) goto done;
    const char *required = "";
    if (strarr_find(config_list(c->ws->cfg, CFG_ADMINS), ident) >= 0)
        required = ACL_RIGHTS_ALL;
    else if (mboxname_owner(buf_cstr(&name), &owner) == 1 && !strcmp(buf_cstr(&owner), ident))
        required = ACL_OWNER_IMPLICIT;
    buf_appends(&out, "LISTRIGHTS ");
    rev2_string_append(c, cmd->args[0].s, cmd->args[0].len, &out);
    buf_putc(&out, ' ');
    imap_string_append(&out, ident, strlen(ident));
    buf_putc(&out, ' ');
    imap_string_append(&out, required, strlen(required));
    for (const char *p = ACL_RIGHTS_ALL; *p; p++)
        if (!strchr(required, *p)) buf_printf(&out, " %c", *p);
    client_untagged(c, "%s", buf_cstr(&out));
    client_tagged(c, cmd->tag, "OK LISTRIGHTS completed");
done:
    mboxlist_entry_fini(&e);
    buf_fini(&name);
    buf_fini(&out);
    buf_fini(&owner);
}

/* RFC 4314 section 3.5: * MYRIGHTS mailbox rights. */
void cmd_myrights(struct client *c, const struct imap_command *cmd)
{
    struct buf name = BUF_INIT, out = BUF_INIT;
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    char rights[ACL_RIGHTS_SIZE] = "";
    if (cmd->nargs != 1) {
        client_tagged(c, cmd->tag, "BAD MYRIGHTS needs a mailbox name");
        goto done;
    }
    if (!acl_target(c, cmd, 0, &name, &e, rights)) goto done;
    buf_appends(&out, "MYRIGHTS ");
    rev2_string_append(c, cmd->args[0].s, cmd->args[0].len, &out);
    buf_putc(&out, ' ');
    imap_string_append(&out, rights, strlen(rights));
    client_untagged(c, "%s", buf_cstr(&out));
    client_tagged(c, cmd->tag, "OK MYRIGHTS completed");
done:
    mboxlist_entry_fini(&e);
    buf_fini(&name);
    buf_fini(&out);
}
