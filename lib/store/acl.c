/* acl.c: RFC 4314 ACL text: parsing, editing, and a user's rights from it; see acl.h. */
#include "store/acl.h"
#include "store/store-int.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "store/mbheader.h"
#include "store/mboxname.h"
#include "store/partition.h"
#include "store/store.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

unsigned acl_right_bit(char right)
{
    static const char all[] = ACL_RIGHTS_ALL;
    const char *at = right ? strchr(all, right) : NULL;
    return at ? 1u << (at - all) : 0;
}

int acl_parse_rights(const char *s, size_t len, int strict, unsigned *mask_r)
{
    unsigned mask = 0;
    for (size_t i = 0; i < len; i++) {
        /* RFC 4314 section 2.1.1: the RFC 2086 "create" and "delete" rights */
        if (s[i] == 'c') {
            mask |= acl_right_bit('k') | acl_right_bit('x');
            continue;
        }
        if (s[i] == 'd') {
            mask |= acl_right_bit('x') | acl_right_bit('t') | acl_right_bit('e');
            continue;
        }
        unsigned bit = acl_right_bit(s[i]);
        if (!bit && strict) return CF_E_PARSE;
        mask |= bit;
    }
    *mask_r = mask;
    return 0;
}

char *acl_format_rights(unsigned mask, char *out)
{
    static const char all[] = ACL_RIGHTS_ALL;
    size_t n = 0;
    for (size_t i = 0; i < sizeof all - 1; i++)
        if (mask & (1u << i)) out[n++] = all[i];
    out[n] = '\0';
    return out;
}

int acl_ident_valid(const char *id)
{
    size_t len = strlen(id);
    if (!len || len > ACL_IDENT_MAX || id[0] == '-') return 0;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        if (*p <= ' ' || *p == 0x7f) return 0;
    return 1;
}

/* applies: whether identifier id[0..len) (no '-') names user (NULL: not logged in). */
static int applies(const char *id, size_t len, const char *user)
{
    if (len == 6 && !memcmp(id, "anyone", 6)) return 1;
    if (!user) return len == 9 && !memcmp(id, "anonymous", 9);
    return strlen(user) == len && !memcmp(id, user, len);
}

/* An entry of the text: identifier and rights, as pointers into it. */
struct entry {
    const char *id, *rights;
    size_t idlen, rlen;
};

/* next_entry: the entry at *p (advanced past it). 1, or 0 at the end or a malformed tail. */
static int next_entry(const char **p, struct entry *e)
{
    const char *s = *p;
    if (!s || !*s) return 0;
    const char *tab1 = strchr(s, '\t');
    if (!tab1) return 0;
    const char *r = tab1 + 1;
    const char *tab2 = strchr(r, '\t');
    e->id = s;
    e->idlen = (size_t)(tab1 - s);
    e->rights = r;
    e->rlen = tab2 ? (size_t)(tab2 - r) : strlen(r);
    *p = tab2 ? tab2 + 1 : r + e->rlen;
    return 1;
}

unsigned acl_text_rights(const char *acl, const char *user)
{
    unsigned grant = 0, deny = 0;
    struct entry e;
    const char *p = acl;
    while (next_entry(&p, &e)) {
        int negative = e.idlen && e.id[0] == '-';
        if (!applies(e.id + negative, e.idlen - negative, user)) continue;
        unsigned m = 0;
        acl_parse_rights(e.rights, e.rlen, 0, &m);
        if (negative) deny |= m;
        else grant |= m;
    }
    return grant & ~deny;
}

unsigned acl_user_rights(const char *acl, const char *name, const char *user, int is_admin)
{
    if (is_admin) return ACL_MASK_ALL;
    unsigned mask = acl_text_rights(acl, user);
    if (user && name) {
        struct buf owner = BUF_INIT;
        if (mboxname_owner(name, &owner) == 1 && !strcmp(buf_cstr(&owner), user))
            mask |= acl_right_bit('l') | acl_right_bit('a');
        buf_fini(&owner);
    }
    return mask;
}

void acl_split(const char *acl, struct strarr *idents, struct strarr *rights)
{
    struct entry e;
    const char *p = acl;
    while (next_entry(&p, &e)) {
        char *id = xstrndup(e.id, e.idlen), *r = xstrndup(e.rights, e.rlen);
        strarr_add(idents, id);
        strarr_add(rights, r);
        free(id);
        free(r);
    }
}

/* rebuild: acl without ident's entry into out; *old_r gets that entry's mask. 1 found, 0 not. */
static int rebuild(const char *acl, const char *ident, struct buf *out, unsigned *old_r)
{
    struct entry e;
    const char *p = acl;
    size_t idlen = strlen(ident);
    int found = 0;
    *old_r = 0;
    while (next_entry(&p, &e)) {
        if (e.idlen == idlen && !memcmp(e.id, ident, idlen)) {
            acl_parse_rights(e.rights, e.rlen, 0, old_r);
            found = 1;
            continue;
        }
        buf_append(out, e.id, e.idlen);
        buf_putc(out, '\t');
        buf_append(out, e.rights, e.rlen);
        buf_putc(out, '\t');
    }
    return found;
}

int acl_modify(const char *acl, const char *ident, enum acl_mode mode, unsigned mask,
               char **out_r)
{
    *out_r = NULL;
    if (!acl_ident_valid(ident + (ident[0] == '-'))) return CF_E_PARSE;
    struct buf out = BUF_INIT;
    unsigned old = 0;
    rebuild(acl ? acl : "", ident, &out, &old);
    unsigned now = mode == ACL_ADD ? old | mask : mode == ACL_REMOVE ? old & ~mask : mask;
    now &= ACL_MASK_ALL;
    if (now) {
        char letters[16];
        buf_printf(&out, "%s\t%s\t", ident, acl_format_rights(now, letters));
    }
    buf_cstr(&out);
    *out_r = out.s ? buf_release(&out) : xstrdup("");
    return 0;
}

int acl_remove_ident(const char *acl, const char *ident, char **out_r)
{
    struct buf out = BUF_INIT;
    unsigned old;
    int found = rebuild(acl ? acl : "", ident, &out, &old);
    buf_cstr(&out);
    *out_r = out.s ? buf_release(&out) : xstrdup("");
    return found;
}

int acl_mailbox_update(struct store *st, const char *name, const struct mboxlist_entry *e)
{
    int r = mboxlist_update(st->mboxlist, NULL, name, e);
    if (r) return r;
    /* the header file keeps a copy for reconstruct; the list entry is the truth, so a failure
     * here is logged and reported but leaves the new ACL in force */
    const char *pp = store_partition_path(st, e->partition);
    if (!pp) return CF_E_NOTFOUND;
    char *dir = partition_mailbox_dir(pp, e->uniqueid);
    char *lock = xasprintf("%s/lock", dir);
    struct mbheader h;
    mbheader_init(&h);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        r = errno == ENOENT ? CF_E_NOTFOUND : CF_E_IO;
        log_err("acl_header_open_failed", "mailbox=%s path=%s errno=%d", log_quote(name),
                  log_quote(lock), errno);
        goto out;
    }
    while (flock(fd, LOCK_EX) < 0 && errno == EINTR) {}
    r = mbheader_read(dir, &h);
    if (r == 0) {
        free(h.acl);
        h.acl = xstrdup(e->acl ? e->acl : "");
        r = mbheader_write(dir, &h);
    }
    if (r) log_err("acl_header_write_failed", "mailbox=%s error=%s", log_quote(name),
                     cf_strerror(r));
out:
    if (fd >= 0) close(fd);
    mbheader_fini(&h);
    free(lock);
    free(dir);
    return r;
}
