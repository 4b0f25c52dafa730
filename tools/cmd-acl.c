/* cmd-acl.c: `coffer acl get|set|delete`: a mailbox's access control list (RFC 4314), kept in
 * the mailbox list entry as "ident\trights\t" pairs and copied into the mailbox's header file,
 * so that reconstruct --mailboxlist brings the ACL back with the mailbox. */
#include "tool.h"
#include "cmd.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include "store/mbheader.h"
#include "store/partition.h"
#include "store/store.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define ACL_USAGE "usage: coffer acl get NAME | set NAME IDENTIFIER [+|-]RIGHTS | delete NAME IDENTIFIER"

/* RFC 4314 section 2.1: the rights in their canonical order; digits are for local use. */
static const char acl_order[] = "lrswipkxtea0123456789";

/* rights_parse: add the letters of s to have[] (indexed by position in acl_order); the obsolete
 * RFC 2086 rights map as RFC 4314 section 2.1.1 says: "c" is the create set (k x), "d" the
 * delete set (x t e). 0, or -1 for an unknown letter. */
static int rights_parse(const char *s, int *have)
{
    for (; *s; s++) {
        const char *m = *s == 'c' ? "kx" : *s == 'd' ? "xte" : NULL;
        if (!m) {
            const char *p = strchr(acl_order, *s);
            if (!p) return -1;
            have[p - acl_order] = 1;
            continue;
        }
        for (; *m; m++) have[strchr(acl_order, *m) - acl_order] = 1;
    }
    return 0;
}

static void rights_text(const int *have, struct buf *out)
{
    for (size_t i = 0; acl_order[i]; i++)
        if (have[i]) buf_putc(out, acl_order[i]);
}

/* ident_valid: an identifier ("fred", "anyone", "-fred" for negative rights) that the ACL text
 * can hold: no tab, CR, LF or other control characters, not empty. */
static int ident_valid(const char *id)
{
    if (!*id || !strcmp(id, "-") || strlen(id) > 255) return 0;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == ' ') return 0;
    return 1;
}

/* acl_split: the pairs of an ACL text into ids/rights. */
static void acl_split(const char *acl, struct strarr *ids, struct strarr *rights)
{
    struct strarr parts = STRARR_INIT;
    strarr_split(&parts, acl, "\t", 0);
    for (size_t i = 0; i + 1 < parts.count; i += 2) {
        strarr_add(ids, parts.v[i]);
        strarr_add(rights, parts.v[i + 1]);
    }
    strarr_fini(&parts);
}

/* write_header_acl: copy the ACL into the mailbox's header file, under its write lock. */
static int write_header_acl(struct tool *t, struct store *st, const char *name,
                            const struct mboxlist_entry *e)
{
    const char *pp = store_partition_path(st, e->partition);
    if (!pp) return CF_E_NOTFOUND;
    char *dir = partition_mailbox_dir(pp, e->uniqueid);
    char *lock = xasprintf("%s/lock", dir);
    struct mbheader h;
    mbheader_init(&h);
    int r = 0;
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        r = errno == ENOENT ? CF_E_NOTFOUND : CF_E_IO;
        goto out;
    }
    while (flock(fd, LOCK_EX) < 0 && errno == EINTR) {}
    r = mbheader_read(dir, &h);
    if (r == 0) {
        free(h.acl);
        h.acl = xstrdup(e->acl);
        r = mbheader_write(dir, &h);
    }
out:
    if (r) tool_error(t, "%s: the list is updated but its header file is not (%s); run coffer "
                      "reconstruct %s", name, cf_strerror(r), name);
    if (fd >= 0) close(fd);
    mbheader_fini(&h);
    free(lock);
    free(dir);
    return r;
}

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
    int mode = 0;   /* 0 replace, '+' add, '-' remove (RFC 4314 section 3.1) */
    int want[sizeof acl_order] = { 0 };
    if (set) {
        if (*rights == '+' || *rights == '-') mode = *rights++;
        if (rights_parse(rights, want) < 0) {
            tool_error(t, "'%s' holds a letter that is no RFC 4314 right (valid: %s, c, d)", rights,
                       acl_order);
            return EXIT_USAGE;
        }
    }
    if (ident && !ident_valid(ident)) {
        tool_error(t, "'%s' is not a valid identifier", ident);
        return EXIT_USAGE;
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
    acl_split(e.acl, &ids, &rs);
    if (set || del) {
        int k = strarr_find(&ids, ident);
        if (del && k < 0) {
            tool_error(t, "%s has no ACL entry for %s", name, ident);
            r = CF_E_NOTFOUND;
            goto out;
        }
        int have[sizeof acl_order] = { 0 };
        if (k >= 0 && mode) rights_parse(rs.v[k], have);
        for (size_t i = 0; i < sizeof acl_order; i++) {
            if (mode == '-') have[i] = have[i] && !want[i];
            else have[i] = have[i] || want[i];
        }
        struct buf txt = BUF_INIT;
        if (set) rights_text(have, &txt);
        if (k >= 0) {
            strarr_remove(&ids, (size_t)k);
            strarr_remove(&rs, (size_t)k);
        }
        if (txt.len) {   /* empty rights: the identifier goes (RFC 4314 section 3.1) */
            strarr_add(&ids, ident);
            strarr_add(&rs, buf_cstr(&txt));
        }
        buf_fini(&txt);
        struct buf acl = BUF_INIT;
        for (size_t i = 0; i < ids.count; i++) buf_printf(&acl, "%s\t%s\t", ids.v[i], rs.v[i]);
        free(e.acl);
        e.acl = buf_release(&acl);
        r = mboxlist_update(st->mboxlist, NULL, name, &e);
        if (r) {
            tool_error(t, "cannot update %s: %s", name, cf_strerror(r));
            goto out;
        }
        r = write_header_acl(t, st, name, &e);
    }
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
