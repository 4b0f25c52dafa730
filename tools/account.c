/* account.c: an account's fingerprint and removal for moves between backends (account.h). */
#include "account.h"
#include "tool.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include "sieve/sieve.h"
#include "store/mail.h"
#include "store/mboxname.h"
#include "store/store.h"
#include "store/store-retained.h"
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#define HEXLEN (2 * 32 + 1)

static void hex_of(const unsigned char *md, unsigned n, char *hex)
{
    for (unsigned i = 0; i < n; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    hex[2 * n] = '\0';
}

static void sha256_hex(const void *p, size_t len, char *hex)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_Digest(p, len, md, &n, EVP_sha256(), NULL);
    hex_of(md, n, hex);
}

static void ctx_hex(EVP_MD_CTX *ctx, char *hex)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_DigestFinal_ex(ctx, md, &n);
    hex_of(md, n, hex);
}

static int add_name(const char *name, const struct mboxlist_entry *e, void *rock)
{
    (void)e;
    strarr_add(rock, name);
    return 0;
}

/* user_mailboxes: user's INBOX (when it exists) and every mailbox below it, in list order
 * (parents before children). 0 or an error. */
static int user_mailboxes(struct store *st, const char *user, struct strarr *names)
{
    struct buf inbox = BUF_INIT, prefix = BUF_INIT;
    mboxname_user_inbox(user, &inbox);
    int r = store_lookup(st, buf_cstr(&inbox), NULL);
    if (r == 1) strarr_add(names, buf_cstr(&inbox));
    if (r >= 0) {
        buf_printf(&prefix, "%s/", buf_cstr(&inbox));
        r = store_mailbox_foreach(st, buf_cstr(&prefix), add_name, names);
    }
    buf_fini(&inbox);
    buf_fini(&prefix);
    return r < 0 ? r : 0;
}

/* verify_mailbox: one M line for name; adds its message count to *msgs */
static int verify_mailbox(struct tool *t, struct store *st, const char *name, FILE *out,
                          size_t *msgs)
{
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    struct mailbox *mb = NULL;
    struct mail *m = NULL;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    size_t n = 0;
    int r = store_open_mailbox(st, name, &e, &mb);
    if (!r) r = mailbox_lock_shared(mb);
    if (r < 0) {
        tool_error(t, "%s: %s", name, cf_strerror(r));
        goto out;
    }
    m = mail_new(mb);
    uint32_t count = mailbox_count(mb);
    for (uint32_t i = 1; i <= count && r >= 0; i++) {
        uint32_t uid = mailbox_uid(mb, i);
        struct index_record rec;
        int f = mailbox_record(mb, uid, &rec);
        if (f < 0) { r = f; break; }
        if (f == 0 || (rec.flags & FLAG_EXPUNGED)) continue;
        const char *p;
        size_t len;
        mail_set_uid(m, uid);
        r = mail_message(m, &p, &len);
        if (r < 0) {
            tool_error(t, "%s: message %u: %s", name, (unsigned)uid, cf_strerror(r));
            break;
        }
        char hex[HEXLEN], line[32 + HEXLEN];
        sha256_hex(p, len, hex);
        int ll = snprintf(line, sizeof line, "%u %s\n", (unsigned)uid, hex);
        EVP_DigestUpdate(ctx, line, (size_t)ll);
        n++;
    }
    mail_free(&m);
    mailbox_unlock(mb);
    if (r >= 0) {
        char hex[HEXLEN];
        ctx_hex(ctx, hex);
        fprintf(out, "M %zu %s %s\n", n, hex, name);
        *msgs += n;
        r = 0;
    }
out:
    EVP_MD_CTX_free(ctx);
    mailbox_close(&mb);
    mboxlist_entry_fini(&e);
    return r;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* verify_sieve: the S line */
static int verify_sieve(struct tool *t, const char *user, FILE *out)
{
    struct strarr names = STRARR_INIT;
    char *active = NULL;
    int r = sieve_list(t->cfg, user, &names, &active);
    if (r < 0 && r != CF_E_NOTFOUND) {
        tool_error(t, "cannot list the Sieve scripts: %s", cf_strerror(r));
        return r;
    }
    if (names.count) qsort(names.v, names.count, sizeof *names.v, cmp_str);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    r = 0;
    for (size_t i = 0; i < names.count && !r; i++) {
        char *data = NULL, hex[HEXLEN];
        size_t len = 0;
        r = sieve_get(t->cfg, user, names.v[i], &data, &len);
        if (r < 0) {
            tool_error(t, "cannot read the Sieve script %s: %s", names.v[i], cf_strerror(r));
            break;
        }
        r = 0;
        sha256_hex(data ? data : "", len, hex);
        free(data);
        EVP_DigestUpdate(ctx, names.v[i], strlen(names.v[i]));
        EVP_DigestUpdate(ctx, " ", 1);
        EVP_DigestUpdate(ctx, hex, strlen(hex));
        EVP_DigestUpdate(ctx, "\n", 1);
    }
    if (active) {
        EVP_DigestUpdate(ctx, "active ", 7);
        EVP_DigestUpdate(ctx, active, strlen(active));
        EVP_DigestUpdate(ctx, "\n", 1);
    }
    char hex[HEXLEN];
    ctx_hex(ctx, hex);
    if (!r) fprintf(out, "S %zu %s\n", names.count, hex);
    EVP_MD_CTX_free(ctx);
    free(active);
    strarr_fini(&names);
    return r;
}

/* verify_subscriptions: the U line */
static int verify_subscriptions(struct tool *t, struct store *st, const char *user, FILE *out)
{
    struct strarr subs = STRARR_INIT;
    int r = store_subscriptions(st, user, &subs);
    if (r < 0) {
        tool_error(t, "cannot read the subscriptions: %s", cf_strerror(r));
        strarr_fini(&subs);
        return r;
    }
    struct buf all = BUF_INIT;
    for (size_t i = 0; i < subs.count; i++) {
        buf_appends(&all, subs.v[i]);
        buf_putc(&all, '\n');
    }
    char hex[HEXLEN];
    sha256_hex(all.s ? all.s : "", all.len, hex);
    fprintf(out, "U %zu %s\n", subs.count, hex);
    buf_fini(&all);
    strarr_fini(&subs);
    return 0;
}

int account_verify(struct tool *t, const char *user, FILE *out)
{
    struct store *st;
    int rc = tool_store_open(t, &st);
    if (rc) return rc;
    struct strarr names = STRARR_INIT;
    size_t msgs = 0;
    int r = user_mailboxes(st, user, &names);
    if (r < 0) tool_error(t, "cannot list the mailboxes of %s: %s", user, cf_strerror(r));
    for (size_t i = 0; i < names.count && !r; i++) r = verify_mailbox(t, st, names.v[i], out, &msgs);
    if (!r) r = verify_sieve(t, user, out);
    if (!r) r = verify_subscriptions(t, st, user, out);
    if (!r) fprintf(out, "T %zu %zu\n", names.count, msgs);
    strarr_fini(&names);
    store_close(&st);
    return r < 0 ? tool_exit_for(r) : EXIT_OK;
}

int account_remove(struct tool *t, const char *user, FILE *out)
{
    struct store *st;
    int rc = tool_store_open(t, &st);
    if (rc) return rc;
    struct strarr names = STRARR_INIT, subs = STRARR_INIT, scripts = STRARR_INIT;
    struct buf inbox = BUF_INIT;
    char *active = NULL;
    size_t nscripts = 0;
    int r = user_mailboxes(st, user, &names);
    /* children first: they come after their parents in the list */
    for (size_t i = names.count; i-- > 0 && r >= 0; ) {
        r = store_delete_opts(st, names.v[i], STORE_DELETE_NOW);
        if (r == CF_E_NOTFOUND) r = 0;
        if (r < 0) tool_error(t, "cannot delete %s: %s", names.v[i], cf_strerror(r));
    }
    if (r >= 0 && (r = store_subscriptions(st, user, &subs)) >= 0)
        for (size_t i = 0; i < subs.count && r >= 0; i++)
            r = store_unsubscribe(st, user, subs.v[i]);
    if (r < 0 && r != CF_E_NOTFOUND) goto out;
    mboxname_user_inbox(user, &inbox);
    /* mailboxes the user deleted before, kept for undelete (delete_mode = delayed): a dump
     * does not carry them, so they go now rather than stay behind on a backend the user left */
    struct store_deleted *del = NULL;
    size_t ndel = 0;
    r = store_deleted_list(st, &del, &ndel);
    size_t il = inbox.len;
    for (size_t i = 0; i < ndel; i++) {
        const char *n = del[i].name;
        if (r >= 0 && !strncmp(n, buf_cstr(&inbox), il) && (n[il] == '\0' || n[il] == '/'))
            r = store_deleted_expire(st, &del[i]);
        store_deleted_fini(&del[i]);
    }
    free(del);
    if (r < 0) {
        tool_error(t, "cannot remove the deleted mailboxes kept for undelete: %s", cf_strerror(r));
        goto out;
    }
    r = store_quota_get(st, buf_cstr(&inbox), NULL);
    if (r == 1) r = store_quota_delete(st, buf_cstr(&inbox));
    if (r < 0) {
        tool_error(t, "cannot delete the quota root %s: %s", buf_cstr(&inbox), cf_strerror(r));
        goto out;
    }
    r = sieve_list(t->cfg, user, &scripts, &active);
    if (r == CF_E_NOTFOUND) r = 0;
    if (active) r = sieve_deactivate(t->cfg, user);
    for (size_t i = 0; i < scripts.count && r >= 0; i++, nscripts++)
        r = sieve_delete(t->cfg, user, scripts.v[i]);
    if (r < 0) {
        tool_error(t, "cannot delete the Sieve scripts: %s", cf_strerror(r));
        goto out;
    }
    r = 0;
    fprintf(out, "removed %zu mailbox%s, %zu Sieve script%s\n", names.count,
            names.count == 1 ? "" : "es", nscripts, nscripts == 1 ? "" : "s");
out:
    free(active);
    buf_fini(&inbox);
    strarr_fini(&names);
    strarr_fini(&subs);
    strarr_fini(&scripts);
    store_close(&st);
    return r < 0 ? tool_exit_for(r) : EXIT_OK;
}
