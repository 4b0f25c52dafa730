/* cmd-acl.c: `coffer acl get|set|delete`: a mailbox's access control list (RFC 4314), kept in
 * the mailbox list entry as "ident\trights\t" pairs and copied into the mailbox's header file,
 * so that reconstruct --mailboxlist brings the ACL back with the mailbox. */
#include "tool.h"
#include "cmd.h"
#include "auth/sasl.h"
#include "core/error.h"
#include "store/acl.h"
#include "store/store.h"
#include <stdlib.h>
#include <string.h>

#define ACL_USAGE "usage: coffer acl get NAME | set NAME IDENTIFIER [+|-]RIGHTS | delete NAME IDENTIFIER"

int cmd_acl(struct tool *t)
{
    const char *verb = t->argc ? t->argv[0] : "";
    int get = !strcmp(verb, "get") && t->argc == 2;
    int set = !strcmp(verb, "set") && t->argc == 4;
    int del = !strcmp(verb, "delete") && t->argc == 3;
    if (!get && !set && !del) {
        tool_error(t, ACL_USAGE);
        return EXIT_USAGE;
    }
    const char *name = t->argv[1];
    const char *ident = t->argc > 2 ? t->argv[2] : NULL;
    const char *rights = set ? t->argv[3] : "";
    enum acl_mode mode = ACL_REPLACE;   /* RFC 4314 section 3.1: a leading '+' or '-' */
    unsigned want = 0;
    if (set) {
        if (*rights == '+' || *rights == '-') mode = *rights++ == '+' ? ACL_ADD : ACL_REMOVE;
        if (acl_parse_rights(rights, strlen(rights), 1, &want) < 0) {
            tool_error(t, "'%s' holds a letter that is no RFC 4314 right (valid: "
                       ACL_RIGHTS_ALL ", c, d)", rights);
            return EXIT_USAGE;
        }
    }
    if (ident && !acl_ident_valid(ident + (ident[0] == '-'))) {
        tool_error(t, "'%s' is not a valid identifier", ident);
        return EXIT_USAGE;
    }
    if (set && mode != ACL_REMOVE && want && config_int(t->cfg, CFG_ACL_LOCAL_USERS_ONLY)) {
        /* acl_local_users_only: as imapd's SETACL (cmd-acl.c there) */
        int ok = csasl_init(t->cfg) ? CF_E_INTERNAL : csasl_acl_grantee_ok(ident);
        if (ok < 0) {
            tool_error(t, "cannot read the user list: %s", cf_strerror(ok));
            return tool_exit_for(ok);
        }
        if (!ok) {
            tool_error(t, "'%s' is not a user of this server (acl_local_users_only: it may "
                       "live on another backend, and folders are shared only within one)", ident);
            return EXIT_FAIL;
        }
    }
    struct store *st;
    int rc = tool_store_open(t, &st);
    if (rc) return rc;
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    struct strarr ids = STRARR_INIT, rs = STRARR_INIT;
    int r = store_lookup(st, name, &e);
    if (r == 0) r = CF_E_NOTFOUND;
    if (r < 0) {
        tool_error(t, "%s: %s", name, r == CF_E_NOTFOUND ? "no such mailbox" : cf_strerror(r));
        goto out;
    }
    r = 0;
    if (set || del) {
        char *acl = NULL;
        if (set) {
            r = acl_modify(e.acl, ident, mode, want, &acl);
        } else if (!acl_remove_ident(e.acl, ident, &acl)) {
            tool_error(t, "%s has no ACL entry for %s", name, ident);
            r = CF_E_NOTFOUND;
        }
        if (r) {
            free(acl);
            goto out;
        }
        free(e.acl);
        e.acl = acl;
        r = acl_mailbox_update(st, name, &e);
        if (r) {
            tool_error(t, "cannot update the ACL of %s: %s (when only its header file failed, "
                       "the list has the new ACL: coffer reconstruct %s copies it)", name,
                       cf_strerror(r), name);
            goto out;
        }
    }
    acl_split(e.acl, &ids, &rs);
    struct table tab;
    table_init(&tab, (const char *const[]){ "mailbox", "identifier", "rights", NULL });
    for (size_t i = 0; i < ids.count; i++) table_add(&tab, (const char *const[]){ name, ids.v[i], rs.v[i] });
    table_print(&tab, t->json);
    table_fini(&tab);
out:
    strarr_fini(&ids);
    strarr_fini(&rs);
    mboxlist_entry_fini(&e);
    store_close(&st);
    return tool_exit_for(r);
}
