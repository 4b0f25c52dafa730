/* cmd-quota.c: `coffer quota get|set|delete|report|fix`: quota roots in quota.db, and usage
 * recounted from the mailboxes' index headers (RFC 9208 resources STORAGE and MESSAGE). */
#include "tool.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include "store/store.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUOTA_USAGE \
    "usage: coffer quota get ROOT | set ROOT [--storage KIB] [--messages N] | delete ROOT |\n" \
    "       report | fix"

void tool_quota_usage_fini(struct tool_quota_usage *u)
{
    strarr_fini(&u->roots);
    free(u->bytes);
    free(u->msgs);
    memset(u, 0, sizeof *u);
}

static int add_root(const char *root, const struct quota *qt, void *rock)
{
    (void)qt;
    strarr_add(rock, root);
    return 0;
}

static int add_name(const char *name, const struct mboxlist_entry *e, void *rock)
{
    (void)e;
    strarr_add(rock, name);
    return 0;
}

int tool_quota_recount(struct tool *t, struct store *st, struct tool_quota_usage *u)
{
    memset(u, 0, sizeof *u);
    strarr_init(&u->roots);
    struct strarr names = STRARR_INIT;
    int r = quotadb_foreach(st->quota, NULL, "", add_root, &u->roots);
    if (!r) r = mboxlist_foreach(st->mboxlist, NULL, "", add_name, &names);
    if (r < 0) goto out;
    r = 0;
    strarr_sort(&u->roots);
    size_t n = u->roots.count ? u->roots.count : 1;
    u->bytes = xzmalloc(n * sizeof *u->bytes);
    u->msgs = xzmalloc(n * sizeof *u->msgs);
    struct buf root = BUF_INIT;
    for (size_t i = 0; i < names.count && u->roots.count; i++) {
        tool_progress(t, i + 1, names.count, "mailboxes counted");
        int f = quotadb_find_root(st->quota, NULL, names.v[i], &root);
        if (f < 0) { r = f; break; }
        if (!f) continue;
        int k = strarr_find(&u->roots, buf_cstr(&root));
        if (k < 0) continue;
        struct index_header h;
        int sr = store_status(st, names.v[i], &h);
        if (sr == CF_E_NOTFOUND) continue;   /* deleted meanwhile */
        if (sr < 0) {
            tool_error(t, "%s: cannot read its index (%s); run coffer reconstruct", names.v[i],
                       cf_strerror(sr));
            r = sr;
            break;
        }
        u->bytes[k] += (long long)h.quota_used;
        u->msgs[k] += h.exists;
    }
    buf_fini(&root);
out:
    strarr_fini(&names);
    if (r < 0) tool_quota_usage_fini(u);
    return r;
}

static void limit_text(char *out, size_t n, int64_t v)
{
    if (v == QUOTA_UNLIMITED) snprintf(out, n, "unlimited");
    else snprintf(out, n, "%lld", (long long)v);
}

static void quota_row(struct table *tab, const char *root, const struct quota *q)
{
    char sl[32], su[32], ml[32], mu[32], ub[32];
    limit_text(sl, sizeof sl, q->limit_storage_kib);
    snprintf(su, sizeof su, "%lld", (long long)((q->used_bytes + 1023) / 1024));
    snprintf(ub, sizeof ub, "%lld", (long long)q->used_bytes);
    limit_text(ml, sizeof ml, q->limit_messages);
    snprintf(mu, sizeof mu, "%lld", (long long)q->used_messages);
    table_add(tab, (const char *const[]){ root, sl, su, ub, ml, mu });
}

static const char *const quota_cols[] = { "root", "storage_limit_kib#", "storage_used_kib#",
                                          "used_bytes#", "message_limit#", "messages#", NULL };

static int report_one(const char *root, const struct quota *qt, void *rock)
{
    quota_row(rock, root, qt);
    return 0;
}

/* parse_limit: "unlimited", "none" or -1 -> QUOTA_UNLIMITED, else a non-negative number. */
static int parse_limit(const char *s, int64_t *out)
{
    if (!strcmp(s, "unlimited") || !strcmp(s, "none") || !strcmp(s, "-1")) {
        *out = QUOTA_UNLIMITED;
        return 0;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || !*s || *end || v < 0) return -1;
    *out = v;
    return 0;
}

/* fix_all: recount and repair every root; prints what it corrected. */
static int fix_all(struct tool *t, struct store *st)
{
    struct tool_quota_usage u;
    int r = tool_quota_recount(t, st, &u);
    if (r < 0) {
        tool_error(t, "cannot recount: %s", cf_strerror(r));
        return tool_exit_for(r);
    }
    struct table tab;
    table_init(&tab, (const char *const[]){ "root", "resource", "was#", "now#", NULL });
    size_t fixed = 0;
    for (size_t i = 0; i < u.roots.count && !r; i++) {
        struct quota q;
        int g = quotadb_get(st->quota, NULL, u.roots.v[i], &q);
        if (g <= 0) continue;   /* removed meanwhile */
        if (q.used_bytes == u.bytes[i] && q.used_messages == u.msgs[i]) continue;
        /* The count above ran without locks; a session may have been between its commit and
         * its usage delta. Count this root again under its lock, where none can be. */
        g = store_quota_fix(st, u.roots.v[i], &q);
        if (g == 0 || g == CF_E_NOTFOUND) continue;   /* right after all, or removed */
        if (g < 0) {
            r = g;
            break;
        }
        struct quota now_q;
        if (quotadb_get(st->quota, NULL, u.roots.v[i], &now_q) != 1) continue;
        u.bytes[i] = now_q.used_bytes;
        u.msgs[i] = now_q.used_messages;
        char was[32], now[32];
        if (q.used_bytes != u.bytes[i]) {
            snprintf(was, sizeof was, "%lld", (long long)q.used_bytes);
            snprintf(now, sizeof now, "%lld", u.bytes[i]);
            table_add(&tab, (const char *const[]){ u.roots.v[i], "bytes", was, now });
        }
        if (q.used_messages != u.msgs[i]) {
            snprintf(was, sizeof was, "%lld", (long long)q.used_messages);
            snprintf(now, sizeof now, "%lld", u.msgs[i]);
            table_add(&tab, (const char *const[]){ u.roots.v[i], "messages", was, now });
        }
        fixed++;
    }
    if (r) tool_error(t, "cannot write quota.db: %s", cf_strerror(r));
    table_print(&tab, t->json);
    if (!t->json)
        fprintf(stderr, "coffer quota: %zu root%s checked, %zu corrected\n", u.roots.count,
                u.roots.count == 1 ? "" : "s", fixed);
    table_fini(&tab);
    tool_quota_usage_fini(&u);
    return tool_exit_for(r);
}

int cmd_quota(struct tool *t)
{
    const char *storage = NULL, *messages = NULL;
    struct strarr args = STRARR_INIT;
    int bad = 0;
    for (int i = 0; i < t->argc; i++) {
        if (!strcmp(t->argv[i], "--storage") && i + 1 < t->argc) storage = t->argv[++i];
        else if (!strcmp(t->argv[i], "--messages") && i + 1 < t->argc) messages = t->argv[++i];
        else if (t->argv[i][0] == '-' && t->argv[i][1]) bad = 1;
        else strarr_add(&args, t->argv[i]);
    }
    const char *verb = args.count ? args.v[0] : "";
    int get = !strcmp(verb, "get") && args.count == 2;
    int set = !strcmp(verb, "set") && args.count == 2;
    int del = !strcmp(verb, "delete") && args.count == 2;
    int report = !strcmp(verb, "report") && args.count == 1;
    int fix = !strcmp(verb, "fix") && args.count == 1;
    int64_t sl = QUOTA_UNLIMITED, ml = QUOTA_UNLIMITED;
    if ((storage || messages) && !set) bad = 1;
    if (storage && parse_limit(storage, &sl) < 0) bad = 1;
    if (storage && !bad && sl > QUOTA_STORAGE_KIB_MAX) {
        /* L6: the limit in bytes must fit in 63 bits */
        tool_error(t, "--storage %s: at most %lld KiB", storage, (long long)QUOTA_STORAGE_KIB_MAX);
        strarr_fini(&args);
        return EXIT_USAGE;
    }
    if (messages && parse_limit(messages, &ml) < 0) bad = 1;
    if (bad || !(get || set || del || report || fix)) {
        tool_error(t, QUOTA_USAGE);
        strarr_fini(&args);
        return EXIT_USAGE;
    }
    struct store *st;
    int rc = tool_store_open(t, &st);
    if (rc) {
        strarr_fini(&args);
        return rc;
    }
    int r = 0;
    struct table tab;
    table_init(&tab, quota_cols);
    const char *root = args.count > 1 ? args.v[1] : "";
    if (get) {
        struct quota q;
        r = quotadb_get(st->quota, NULL, root, &q);
        if (r == 0) r = CF_E_NOTFOUND;
        if (r < 0) tool_error(t, "%s: %s", root, r == CF_E_NOTFOUND ? "not a quota root" : cf_strerror(r));
        else { quota_row(&tab, root, &q); table_print(&tab, t->json); r = 0; }
    } else if (set) {
        struct quota q;
        int g = quotadb_get(st->quota, NULL, root, &q);
        if (g < 0) r = g;
        if (!r && g == 1) {   /* keep what was not given */
            if (!storage) sl = q.limit_storage_kib;
            if (!messages) ml = q.limit_messages;
        }
        if (!r && g == 0 && store_lookup(st, root, NULL) != 1) {
            tool_error(t, "%s: no such mailbox", root);
            r = CF_E_NOTFOUND;
        } else {
            /* a new root counts its mailboxes at once, and so does the root that had them */
            if (!r) r = store_quota_set(st, root, sl, ml, NULL);
            if (r) tool_error(t, "cannot set the quota of %s: %s", root, cf_strerror(r));
        }
        if (!r && quotadb_get(st->quota, NULL, root, &q) == 1) {
            quota_row(&tab, root, &q);
            table_print(&tab, t->json);
        }
    } else if (del) {
        r = store_quota_delete(st, root);
        if (r) tool_error(t, "%s: %s", root, r == CF_E_NOTFOUND ? "not a quota root" : cf_strerror(r));
        else if (t->json) {
            struct buf b = BUF_INIT;
            buf_appends(&b, "{\"root\": ");
            json_str(&b, root);
            buf_appends(&b, ", \"result\": \"deleted\"}\n");
            fputs(buf_cstr(&b), stdout);
            buf_fini(&b);
        }
        else printf("%s is no longer a quota root\n", root);
    } else if (report) {
        r = quotadb_foreach(st->quota, NULL, "", report_one, &tab);
        if (r < 0) tool_error(t, "cannot read quota.db: %s", cf_strerror(r));
        else table_print(&tab, t->json);
    } else {
        table_fini(&tab);
        rc = fix_all(t, st);
        store_close(&st);
        strarr_fini(&args);
        return rc;
    }
    table_fini(&tab);
    store_close(&st);
    strarr_fini(&args);
    return tool_exit_for(r < 0 ? r : 0);
}
