/* acl-check.c: a session's rights on a mailbox from its ACL text (RFC 4314); see acl-check.h. */
#include "acl-check.h"
#include "imapd.h"
#include "core/buf.h"
#include "core/error.h"
#include "store/mboxname.h"
#include "store/store.h"
#include <string.h>

/* add_rights: set the bits of the rights letters in s[0..n) in *mask (bit i = ACL_ALL_RIGHTS[i]);
 * unknown letters are ignored, obsolete 'c' and 'd' expand (RFC 4314 section 2.1.1). */
static void add_rights(unsigned *mask, const char *s, size_t n)
{
    static const char all[] = ACL_ALL_RIGHTS;
    for (size_t i = 0; i < n; i++) {
        const char *expand;
        char one[2] = { s[i], '\0' };
        if (s[i] == 'c') expand = "kx";
        else if (s[i] == 'd') expand = "tex";
        else expand = one;
        for (const char *p = expand; *p; p++) {
            const char *at = strchr(all, *p);
            if (at && *p) *mask |= 1u << (at - all);
        }
    }
}

static int ident_applies(const struct client *c, const char *id, size_t len)
{
    if (len == 6 && !memcmp(id, "anyone", 6)) return 1;
    return c->user && strlen(c->user) == len && !memcmp(id, c->user, len);
}

static int is_own(const struct client *c, const char *name)
{
    if (!c->user || !name) return 0;
    struct buf owner = BUF_INIT;
    int own = mboxname_owner(name, &owner) == 1 && !strcmp(buf_cstr(&owner), c->user);
    buf_fini(&owner);
    return own;
}

int acl_rights(const struct client *c, const char *name, const char *acl_text, char *rights_out)
{
    static const char all[] = ACL_ALL_RIGHTS;
    unsigned grant = 0, deny = 0;
    if (c->is_admin || is_own(c, name)) {
        grant = (1u << (sizeof all - 1)) - 1;
    } else if (acl_text) {
        /* "ident\trights\t" pairs; a malformed tail is ignored (it grants nothing) */
        const char *p = acl_text;
        for (;;) {
            const char *tab1 = strchr(p, '\t');
            if (!tab1) break;
            const char *r = tab1 + 1;
            const char *tab2 = strchr(r, '\t');
            size_t rlen = tab2 ? (size_t)(tab2 - r) : strlen(r);
            int negative = *p == '-';
            const char *id = p + negative;
            if (ident_applies(c, id, (size_t)(tab1 - id)))
                add_rights(negative ? &deny : &grant, r, rlen);
            if (!tab2) break;
            p = tab2 + 1;
        }
    }
    grant &= ~deny;
    int n = 0;
    for (size_t i = 0; i < sizeof all - 1; i++)
        if (grant & (1u << i)) rights_out[n++] = all[i];
    rights_out[n] = '\0';
    return n;
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
