/* acl-check.c: a session's rights on a mailbox from its ACL text (RFC 4314); see acl-check.h. */
#include "acl-check.h"
#include "imapd.h"
#include "core/error.h"
#include "store/acl.h"
#include "store/store.h"
#include <string.h>

int acl_rights(const struct client *c, const char *name, const char *acl_text, char *rights_out)
{
    unsigned mask = acl_user_rights(acl_text, name, c->user, c->is_admin);
    return (int)strlen(acl_format_rights(mask, rights_out));
}

int acl_has(const struct client *c, const char *name, const char *acl_text, char right)
{
    char rights[ACL_RIGHTS_SIZE];
    acl_rights(c, name, acl_text, rights);
    return right && strchr(rights, right) != NULL;
}

int acl_lookup(struct client *c, const char *name, struct mboxlist_entry *e, char right,
               char *rights_out)
{
    struct mboxlist_entry local;
    struct mboxlist_entry *ent = e ? e : &local;
    if (!e) mboxlist_entry_init(&local);
    char rights[ACL_RIGHTS_SIZE];
    int r;
    if (!c->store) {
        r = CF_E_AGAIN;
        goto done;
    }
    r = store_lookup(c->store, name, ent);
    if (r <= 0) goto done;
    acl_rights(c, name, ent->acl, rights);
    if (rights_out) memcpy(rights_out, rights, sizeof rights);
    if (right && strchr(rights, right)) r = 1;
    else if (strchr(rights, 'l')) r = CF_E_PERM;
    else r = 0;
done:
    if (!e) mboxlist_entry_fini(&local);
    return r;
}
