/* cmd-unexpunge.c: `coffer unexpunge` and `coffer undelete`: bring back messages kept by
 * delayed expunge and mailboxes kept by delayed delete (store-retained.h), with a dry-run
 * listing of exactly what would come back. */
#include "tool.h"
#include "cmd.h"
#include "core/config.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include "mime/decode.h"
#include "store/mboxname.h"
#include "store/store-retained.h"
#include "store/store.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define UNEXPUNGE_USAGE \
    "usage: coffer unexpunge USER MAILBOX [--since DATE] [--uid SET] [--dry-run] [--force]"
#define UNDELETE_USAGE \
    "usage: coffer undelete USER MAILBOX [--as NEWNAME] [--dry-run] [--force] | undelete [USER] --list"

/* iso_time: "YYYY-MM-DDTHH:MM:SSZ" of t into out. */
static void iso_time(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, 32, "%lld", (long long)t);
}

/* parse_since: DATE as YYYY-MM-DD[THH:MM[:SS]][Z] (UTC), or a duration ("2h", "3d") meaning
 * that long ago. 0 or CF_E_PARSE. */
static int parse_since(const char *s, int64_t *out)
{
    long long d;
    if (config_parse_duration(s, &d) == 0) {
        *out = (int64_t)time(NULL) - d;
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int n = 0, y, mo, da, h = 0, mi = 0, se = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &da, &n) != 3) return CF_E_PARSE;
    const char *p = s + n;
    if (*p == 'T' || *p == ' ') {
        int m = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &h, &mi, &m) != 2) return CF_E_PARSE;
        p += 1 + m;
        if (*p == ':') {
            if (sscanf(p + 1, "%2d%n", &se, &m) != 1) return CF_E_PARSE;
            p += 1 + m;
        }
    }
    if (*p == 'Z') p++;
    if (*p || mo < 1 || mo > 12 || da < 1 || da > 31 || h > 23 || mi > 59 || se > 60)
        return CF_E_PARSE;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = da;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    *out = (int64_t)timegm(&tm);
    return 0;
}

/* A UID set as ranges ("1:5,9,20:*"; '*' is the largest uid). */
struct uid_set {
    uint32_t (*r)[2];
    size_t n;
};

static int parse_uid(const char *s, char **end, uint32_t *out)
{
    if (*s == '*') {
        *out = UINT32_MAX;
        *end = (char *)s + 1;
        return 0;
    }
    errno = 0;
    unsigned long v = strtoul(s, end, 10);
    if (errno || *end == s || v == 0 || v > UINT32_MAX) return CF_E_PARSE;
    *out = (uint32_t)v;
    return 0;
}

static int parse_set(const char *s, struct uid_set *set)
{
    const char *p = s;
    while (*p) {
        char *end;
        uint32_t a, b;
        if (parse_uid(p, &end, &a)) return CF_E_PARSE;
        b = a;
        if (*end == ':' && parse_uid(end + 1, &end, &b)) return CF_E_PARSE;
        if (a > b) { uint32_t x = a; a = b; b = x; }
        set->r = xreallocarray(set->r, set->n + 1, sizeof *set->r);
        set->r[set->n][0] = a;
        set->r[set->n][1] = b;
        set->n++;
        if (*end == ',') end++;
        else if (*end) return CF_E_PARSE;
        p = end;
    }
    return set->n ? 0 : CF_E_PARSE;
}

static int in_set(const struct uid_set *set, uint32_t uid)
{
    for (size_t i = 0; i < set->n; i++)
        if (uid >= set->r[i][0] && uid <= set->r[i][1]) return 1;
    return 0;
}

struct subject_rock { struct buf *out; };

static int subject_cb(void *rock, const char *name, size_t nl, const char *value, size_t vl)
{
    struct subject_rock *sr = rock;
    if (nl != 7 || strncasecmp(name, "Subject", 7)) return 0;
    mime_decode_header(value, vl, sr->out);
    return 1;
}

/* subject: the decoded Subject of message uid (its retained file), or "" into out. */
static void subject(struct mailbox *mb, uint32_t uid, struct buf *out)
{
    buf_reset(out);
    const char *p;
    size_t len;
    if (mailbox_message_map(mb, uid, &p, &len) < 0) return;
    struct subject_rock sr = { out };
    mime_header_foreach(p, len, subject_cb, &sr);
    mailbox_message_unmap(p, len);
    /* one line, trimmed */
    for (size_t i = 0; i < out->len; i++)
        if (out->s[i] == '\r' || out->s[i] == '\n' || out->s[i] == '\t') out->s[i] = ' ';
    buf_cstr(out);
}

static void flag_names(const struct index_record *r, const struct strarr *kw, struct buf *out)
{
    static const struct { uint32_t f; const char *n; } sys[] = {
        { FLAG_SEEN, "\\Seen" }, { FLAG_ANSWERED, "\\Answered" }, { FLAG_FLAGGED, "\\Flagged" },
        { FLAG_DRAFT, "\\Draft" },
    };
    buf_reset(out);
    for (size_t i = 0; i < sizeof sys / sizeof sys[0]; i++)
        if (r->flags & sys[i].f) {
            if (out->len) buf_putc(out, ' ');
            buf_appends(out, sys[i].n);
        }
    for (unsigned k = 0; k < kw->count && k < INDEX_MAX_KEYWORDS; k++)
        if (index_user_flag_get(r, k)) {
            if (out->len) buf_putc(out, ' ');
            buf_appends(out, kw->v[k]);
        }
    buf_cstr(out);
}

/* print_messages: the table of what unexpunge brings back (dry: would bring back), recs[0..k)
 * with their new uids nu (a 0 in a real run: gone meanwhile, not listed). */
static void print_messages(struct tool *t, struct mailbox *mb, struct index_record *recs,
                           size_t k, const uint32_t *nu, int dry)
{
    struct buf tmp = BUF_INIT, fl = BUF_INIT;
    struct table tab;
    if (dry)
        table_init(&tab, (const char *const[]){ "uid#", "date", "expunged", "size#", "flags", "subject", NULL });
    else
        table_init(&tab, (const char *const[]){ "uid#", "new_uid#", "date", "expunged", "size#", "flags", "subject", NULL });
    const struct strarr *kw = mailbox_keywords(mb);
    struct strarr kwc = STRARR_INIT;
    for (size_t i = 0; i < kw->count; i++) strarr_add(&kwc, kw->v[i]);
    for (size_t i = 0; i < k; i++) {
        if (!dry && !nu[i]) continue;   /* gone meanwhile */
        char uid[16], nuid[16], date[32], exp[32], size[32];
        snprintf(uid, sizeof uid, "%u", (unsigned)recs[i].uid);
        snprintf(nuid, sizeof nuid, "%u", (unsigned)nu[i]);
        snprintf(size, sizeof size, "%llu", (unsigned long long)recs[i].size);
        iso_time(recs[i].internaldate, date);
        iso_time(recs[i].expunged_at, exp);
        recs[i].flags &= ~FLAG_DELETED;
        flag_names(&recs[i], &kwc, &fl);
        /* dry run: the retained file; else the restored copy (same bytes) */
        subject(mb, dry ? recs[i].uid : nu[i], &tmp);
        if (dry)
            table_add(&tab, (const char *const[]){ uid, date, exp, size, buf_cstr(&fl), buf_cstr(&tmp) });
        else
            table_add(&tab, (const char *const[]){ uid, nuid, date, exp, size, buf_cstr(&fl), buf_cstr(&tmp) });
    }
    strarr_fini(&kwc);
    table_print(&tab, t->json);
    table_fini(&tab);
    buf_fini(&tmp);
    buf_fini(&fl);
}

int cmd_unexpunge(struct tool *t)
{
    int dry = 0, force = 0, bad = 0, have_since = 0;
    int64_t since = 0;
    struct uid_set set = { NULL, 0 };
    struct strarr pos = STRARR_INIT;
    for (int i = 0; i < t->argc; i++) {
        const char *a = t->argv[i];
        if (!strcmp(a, "--dry-run") || !strcmp(a, "-n")) dry = 1;
        else if (!strcmp(a, "--force")) force = 1;
        else if (!strcmp(a, "--since") && i + 1 < t->argc) {
            if (parse_since(t->argv[++i], &since)) bad = 1;
            have_since = 1;
        } else if (!strcmp(a, "--uid") && i + 1 < t->argc) {
            if (parse_set(t->argv[++i], &set)) bad = 1;
        } else if (a[0] == '-' && a[1]) bad = 1;
        else strarr_add(&pos, a);
    }
    if (bad || pos.count != 2) {
        tool_error(t, UNEXPUNGE_USAGE);
        strarr_fini(&pos);
        free(set.r);
        return EXIT_USAGE;
    }
    struct buf name = BUF_INIT;
    int rc = 0;
    if (mboxname_valid_user(pos.v[0]) || mboxname_from_external(pos.v[0], pos.v[1], &name) < 0) {
        tool_error(t, "%s: not a mailbox name of user %s", pos.v[1], pos.v[0]);
        rc = EXIT_USAGE;
        goto out0;
    }
    struct store *st;
    if ((rc = tool_store_open(t, &st))) goto out0;
    struct mailbox *mb = NULL;
    struct index_record *recs = NULL;
    size_t n = 0, k = 0;
    uint32_t *nu = NULL;
    int r = store_open_mailbox(st, buf_cstr(&name), NULL, &mb);
    if (r < 0) {
        tool_error(t, "%s: %s", buf_cstr(&name), cf_strerror(r));
        goto out;
    }
    if ((r = mailbox_retained(mb, NULL, 0, &recs, &n)) < 0) {
        tool_error(t, "%s: %s", buf_cstr(&name), cf_strerror(r));
        goto out;
    }
    /* the selection: in place, order kept */
    for (size_t i = 0; i < n; i++) {
        if (set.n && !in_set(&set, recs[i].uid)) continue;
        if (have_since && recs[i].expunged_at < since) continue;
        recs[k++] = recs[i];
    }
    uint64_t bytes = 0;
    for (size_t i = 0; i < k; i++) bytes += recs[i].size;
    nu = xreallocarray(NULL, k ? k : 1, sizeof *nu);
    if (!dry && k) {
        r = store_unexpunge(st, mb, buf_cstr(&name), recs, k, force, nu);
        if (r == CF_E_QUOTA) {
            tool_error(t, "%s: bringing back %zu message%s (%llu bytes) would exceed the quota; "
                       "nothing was changed (--force brings them back over the limit)",
                       buf_cstr(&name), k, k == 1 ? "" : "s", (unsigned long long)bytes);
            rc = EXIT_QUOTA;
            goto out;
        }
        if (r < 0) {
            tool_error(t, "%s: cannot unexpunge: %s", buf_cstr(&name), cf_strerror(r));
            goto out;
        }
    }
    print_messages(t, mb, recs, k, nu, dry);
    if (!t->json)
        fprintf(stderr, "coffer unexpunge: %s%zu message%s, %llu bytes%s\n", dry ? "dry run: " : "",
                k, k == 1 ? "" : "s", (unsigned long long)bytes,
                dry ? " would come back; nothing was changed" : " brought back");
    r = 0;
out:
    if (!rc) rc = tool_exit_for(r < 0 ? r : 0);
    free(nu);
    free(recs);
    mailbox_close(&mb);
    store_close(&st);
out0:
    buf_fini(&name);
    strarr_fini(&pos);
    free(set.r);
    return rc;
}

/* deleted_row: one hidden mailbox as a table row, names in user's view (NULL: internal). */
static void deleted_row(struct table *tab, const struct store_deleted *d, const char *user,
                        const char *target, int64_t retention)
{
    struct buf ext = BUF_INIT;
    if (mboxname_to_external(user, d->name, &ext) < 0) {
        buf_reset(&ext);
        buf_appends(&ext, d->name);
    }
    char when[32], until[32], msgs[16], bytes[32];
    iso_time(d->deleted_at, when);
    iso_time(d->deleted_at + retention, until);
    snprintf(msgs, sizeof msgs, "%u", (unsigned)d->messages);
    snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)d->bytes);
    if (target)
        table_add(tab, (const char *const[]){ buf_cstr(&ext), target, when, msgs, bytes, d->e.uniqueid });
    else
        table_add(tab, (const char *const[]){ buf_cstr(&ext), d->name, when, until, msgs, bytes, d->e.uniqueid });
    buf_fini(&ext);
}

/* owned_by: whether internal name belongs to user (user NULL: every name). */
static int owned_by(const char *name, const char *user)
{
    if (!user) return 1;
    struct buf owner = BUF_INIT;
    int mine = mboxname_owner(name, &owner) == 1 && !strcmp(buf_cstr(&owner), user);
    buf_fini(&owner);
    return mine;
}

int cmd_undelete(struct tool *t)
{
    int dry = 0, force = 0, list = 0, bad = 0;
    const char *as = NULL;
    struct strarr pos = STRARR_INIT;
    for (int i = 0; i < t->argc; i++) {
        const char *a = t->argv[i];
        if (!strcmp(a, "--dry-run") || !strcmp(a, "-n")) dry = 1;
        else if (!strcmp(a, "--force")) force = 1;
        else if (!strcmp(a, "--list")) list = 1;
        else if (!strcmp(a, "--as") && i + 1 < t->argc) as = t->argv[++i];
        else if (a[0] == '-' && a[1]) bad = 1;
        else strarr_add(&pos, a);
    }
    if (bad || (list ? pos.count > 1 || as : pos.count != 2)) {
        tool_error(t, UNDELETE_USAGE);
        strarr_fini(&pos);
        return EXIT_USAGE;
    }
    const char *user = pos.count ? pos.v[0] : NULL;
    struct buf name = BUF_INIT, target = BUF_INIT;
    int rc = 0;
    if (user && mboxname_valid_user(user)) {
        tool_error(t, "%s: not a user name", user);
        rc = EXIT_USAGE;
        goto out0;
    }
    if (!list && (mboxname_from_external(user, pos.v[1], &name) < 0 ||
                  mboxname_from_external(user, as ? as : pos.v[1], &target) < 0)) {
        tool_error(t, "%s: not a mailbox name of user %s", as ? as : pos.v[1], user);
        rc = EXIT_USAGE;
        goto out0;
    }
    struct store *st;
    if ((rc = tool_store_open(t, &st))) goto out0;
    struct store_deleted *v = NULL;
    size_t n = 0;
    int64_t retention = store_expunge_retention(st);
    int r = store_deleted_list(st, &v, &n);
    struct table tab;
    if (list) {
        table_init(&tab, (const char *const[]){ "name", "internal", "deleted", "expires", "messages#",
                                                "bytes#", "uniqueid", NULL });
        for (size_t i = 0; i < n; i++)
            if (owned_by(v[i].name, user)) deleted_row(&tab, &v[i], user, NULL, retention);
        table_print(&tab, t->json);
        table_fini(&tab);
        goto out;
    }
    /* the newest deletion of that name */
    const struct store_deleted *d = NULL;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i].name, buf_cstr(&name))) d = &v[i];
    if (!d) {
        tool_error(t, "%s: no deleted mailbox of that name (coffer undelete %s --list)",
                   pos.v[1], user);
        rc = EXIT_NOTFOUND;
        goto out;
    }
    if (!dry) {
        r = store_undelete(st, d, buf_cstr(&target), force);
        if (r == CF_E_EXISTS) {
            tool_error(t, "%s: a mailbox of that name exists; bring it back under another name "
                       "with --as NEWNAME", as ? as : pos.v[1]);
            rc = EXIT_EXISTS;
            goto out;
        }
        if (r == CF_E_QUOTA) {
            tool_error(t, "%s: bringing back %u message%s (%llu bytes) would exceed the quota; "
                       "nothing was changed (--force brings it back over the limit)",
                       pos.v[1], (unsigned)d->messages, d->messages == 1 ? "" : "s",
                       (unsigned long long)d->bytes);
            rc = EXIT_QUOTA;
            goto out;
        }
        if (r < 0) {
            tool_error(t, "%s: cannot undelete: %s", pos.v[1], cf_strerror(r));
            goto out;
        }
    }
    struct buf text = BUF_INIT;
    if (mboxname_to_external(user, buf_cstr(&target), &text) < 0) {
        buf_reset(&text);
        buf_appends(&text, buf_cstr(&target));
    }
    table_init(&tab, (const char *const[]){ "name", "as", "deleted", "messages#", "bytes#", "uniqueid", NULL });
    deleted_row(&tab, d, user, buf_cstr(&text), retention);
    table_print(&tab, t->json);
    table_fini(&tab);
    buf_fini(&text);
    if (dry && !t->json)
        fprintf(stderr, "coffer undelete: dry run: nothing was changed\n");
    r = 0;
out:
    if (!rc) rc = tool_exit_for(r < 0 ? r : 0);
    for (size_t i = 0; i < n; i++) store_deleted_fini(&v[i]);
    free(v);
    store_close(&st);
out0:
    buf_fini(&name);
    buf_fini(&target);
    strarr_fini(&pos);
    return rc;
}
