/* cmd-mailbox.c: `coffer mailbox list|create|delete|rename` (and `metadata`,
 * cmd-mailbox-metadata.c), over lib/store/store.h. */
#include "tool.h"
#include "cmd.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include "store/mboxname.h"
#include "store/store.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAILBOX_USAGE \
    "usage: coffer mailbox list [PATTERN] | create NAME [--partition P] [--special-use FLAGS] |\n" \
    "       create --stdin [--partition P] |\n" \
    "       delete [-r] NAME | rename OLD NEW [--partition P] |\n" \
    "       metadata MAILBOX [get [ENTRY...] | set ENTRY VALUE|- | delete ENTRY] [--user USER]"

struct list_rock {
    struct store *st;
    struct table *tab;
};

static int list_one(const char *extname, size_t matchlen, const char *name,
                    const struct mboxlist_entry *e, void *rock)
{
    struct list_rock *lr = rock;
    if (matchlen != strlen(extname) || !e) return 0;
    struct index_header h;
    char msgs[32] = "?", bytes[32] = "?";
    if (store_status(lr->st, name, &h) == 0) {
        snprintf(msgs, sizeof msgs, "%u", (unsigned)h.exists);
        snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)h.quota_used);
    }
    table_add(lr->tab, (const char *const[]){ name, e->partition, e->uniqueid, msgs, bytes, e->flags });
    return 0;
}

static void result(struct tool *t, const char *name, const char *what)
{
    if (t->json) {
        struct buf b = BUF_INIT;
        buf_appends(&b, "{\"mailbox\": ");
        json_str(&b, name);
        buf_appends(&b, ", \"result\": ");
        json_str(&b, what);
        buf_appends(&b, "}\n");
        fputs(buf_cstr(&b), stdout);
        buf_fini(&b);
    } else {
        printf("%s %s\n", what, name);
    }
}

static const char *why(int r)
{
    switch (r) {
    case CF_E_NOTFOUND: return "no such mailbox (or parent, or partition)";
    case CF_E_EXISTS: return "it already exists";
    case CF_E_PARSE: return "invalid mailbox name";
    case CF_E_PERM: return "not allowed (a mailbox cannot move inside itself)";
    default: return cf_strerror(r);
    }
}

static int collect_child(const char *name, const struct mboxlist_entry *e, void *rock)
{
    (void)e;
    strarr_add(rock, name);
    return 0;
}

/* Mailboxes per store_create_many call: one list transaction (and one syncfs) each. */
#define CREATE_BATCH 500

/* create_batch: create names[0..n-1]; report each failure and count the rest. */
static int create_batch(struct tool *t, struct store *st, const char *partition,
                        const char *const *names, size_t n, long long *created,
                        long long *failed, int *first_err)
{
    if (!n) return 0;
    int *res = xmalloc(n * sizeof *res);
    int r = store_create_many(st, names, n, partition, res);
    if (r < 0) {
        tool_error(t, "cannot create %s ... (%zu mailboxes): %s", names[0], n, cf_strerror(r));
        *failed += (long long)n;
    } else {
        *created += r;
        for (size_t i = 0; i < n; i++) {
            if (!res[i]) continue;
            tool_error(t, "cannot create %s: %s", names[i], why(res[i]));
            if (!*failed) *first_err = res[i];
            (*failed)++;
        }
        r = 0;
    }
    free(res);
    return r;
}

/* create_from_stdin: `create --stdin`: one internal mailbox name a line, in any order. All
 * are read first and sorted in the mailbox list's key order (bytes, as strcmp and Berkeley
 * DB's default B-tree comparison: a parent, being a prefix, comes before its children), then
 * created in batches (store_create_many). In that order each batch's entries land next to the
 * previous batch's in the list, on pages still in the cache; in the order given (user1,
 * user10, user100...) a list of millions of entries is written all over through its small
 * cache, several times slower (docs/perf/many-users.md). Returns 0 when every name was
 * created, else the first error. */
static int create_from_stdin(struct tool *t, struct store *st, const char *partition)
{
    struct strarr names = STRARR_INIT;
    long long created = 0, failed = 0;
    int first_err = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int r = 0;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (len) strarr_add(&names, line);
    }
    free(line);
    strarr_sort(&names);
    for (size_t i = 0; r >= 0 && i < names.count; i += CREATE_BATCH) {
        size_t n = names.count - i < CREATE_BATCH ? names.count - i : CREATE_BATCH;
        r = create_batch(t, st, partition, (const char *const *)names.v + i, n, &created,
                         &failed, &first_err);
    }
    strarr_fini(&names);
    if (t->json) printf("{\"created\": %lld, \"failed\": %lld}\n", created, failed);
    else printf("created %lld mailboxes, %lld failed\n", created, failed);
    if (r >= 0 && failed) r = first_err;
    return r;
}

int cmd_mailbox(struct tool *t)
{
    /* RFC 5464 annotations: its own options (cmd-mailbox-metadata.c) */
    if (t->argc >= 1 && !strcmp(t->argv[0], "metadata")) return cmd_mailbox_metadata(t);
    const char *partition = NULL, *special = NULL;
    int recursive = 0, bad = 0, from_stdin = 0;
    struct strarr args = STRARR_INIT;   /* the words without the options */
    for (int i = 0; i < t->argc; i++) {
        const char *a = t->argv[i];
        if (!strcmp(a, "--partition") && i + 1 < t->argc) partition = t->argv[++i];
        else if (!strcmp(a, "--special-use") && i + 1 < t->argc) special = t->argv[++i];
        else if (!strcmp(a, "-r")) recursive = 1;
        else if (!strcmp(a, "--stdin")) from_stdin = 1;
        else if (a[0] == '-' && a[1]) bad = 1;
        else strarr_add(&args, a);
    }
    const char *verb = args.count ? args.v[0] : "";
    int list = !strcmp(verb, "list") && args.count <= 2;
    int create = !strcmp(verb, "create") && args.count == 2 && !from_stdin;
    int create_many = !strcmp(verb, "create") && args.count == 1 && from_stdin && !special;
    int del = !strcmp(verb, "delete") && args.count == 2;
    int ren = !strcmp(verb, "rename") && args.count == 3;
    if (bad || (!list && !create && !create_many && !del && !ren)) {
        tool_error(t, MAILBOX_USAGE);
        strarr_fini(&args);
        return EXIT_USAGE;
    }
    if (partition && !config_partition(t->cfg, partition)) {
        tool_error(t, "no partition '%s' in %s", partition, config_str(t->cfg, CFG_PARTITIONS));
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
    if (list) {
        struct table tab;
        table_init(&tab, (const char *const[]){ "mailbox", "partition", "uniqueid", "messages#",
                                                "bytes#", "special-use", NULL });
        struct list_rock lr = { st, &tab };
        r = store_list(st, NULL, args.count == 2 ? args.v[1] : "*", NULL, list_one, &lr);
        if (r < 0) tool_error(t, "cannot list: %s", cf_strerror(r));
        else table_print(&tab, t->json);
        table_fini(&tab);
    } else if (create_many) {
        r = create_from_stdin(t, st, partition);
    } else if (create) {
        const char *name = args.v[1];
        r = store_create(st, name, partition, NULL, special, STORE_CREATE_PARENTS);
        if (r) tool_error(t, "cannot create %s: %s", name, why(r));
        else result(t, name, "created");
    } else if (del) {
        const char *name = args.v[1];
        struct strarr victims = STRARR_INIT;
        if (recursive) {
            char *prefix = xasprintf("%s/", name);
            store_mailbox_foreach(st, prefix, collect_child, &victims);
            free(prefix);
        }
        /* children first (deepest names sort last) */
        for (size_t i = victims.count; i-- > 0 && !r;) {
            r = store_delete(st, victims.v[i]);
            if (r == CF_E_NOTFOUND) r = 0;   /* deleted meanwhile */
            if (!r) result(t, victims.v[i], "deleted");
        }
        if (!r) r = store_delete(st, name);
        if (r) tool_error(t, "cannot delete %s: %s", name, why(r));
        else result(t, name, "deleted");
        strarr_fini(&victims);
    } else {
        r = store_rename(st, args.v[1], args.v[2], partition);
        if (r < 0) {
            tool_error(t, "cannot rename %s: %s", args.v[1], why(r));
        } else if (t->json) {
            struct buf b = BUF_INIT;
            buf_appends(&b, "{\"mailbox\": ");
            json_str(&b, args.v[1]);
            buf_appends(&b, ", \"result\": \"renamed\", \"to\": ");
            json_str(&b, args.v[2]);
            buf_printf(&b, ", \"count\": %d}\n", r);
            fputs(buf_cstr(&b), stdout);
            buf_fini(&b);
            r = 0;
        } else {
            printf("renamed %s to %s (%d mailbox%s)\n", args.v[1], args.v[2], r, r == 1 ? "" : "es");
            r = 0;
        }
    }
    store_close(&st);
    strarr_fini(&args);
    return tool_exit_for(r < 0 ? r : 0);
}
