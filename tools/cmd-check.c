/* cmd-check.c: `coffer check`: a read-only consistency check of the whole store: the mailbox
 * list against the partitions, each mailbox's header file, index, message files and cache, and
 * quota usage against a recount. Exit status 0 only when everything is clean. */
#include "tool.h"
#include "cmd.h"
#include "core/error.h"
#include "store/quotalock.h"
#include "store/reconstruct.h"
#include "store/store.h"
#include <stdio.h>
#include <string.h>

static int add_name(const char *name, const struct mboxlist_entry *e, void *rock)
{
    (void)e;
    strarr_add(rock, name);
    return 0;
}

int cmd_check(struct tool *t)
{
    int no_quota = 0;
    for (int i = 0; i < t->argc; i++) {
        if (!strcmp(t->argv[i], "--no-quota")) no_quota = 1;
        else {
            tool_error(t, "usage: coffer check [--no-quota]");
            return EXIT_USAGE;
        }
    }
    struct store *st;
    int rc = tool_store_open(t, &st);
    if (rc) return rc;
    struct recon_report rep;
    recon_report_init(&rep);
    int err = 0;
    int r = reconstruct_mailboxlist(st, RECON_DRY_RUN, &rep);
    if (r < 0) {
        tool_error(t, "cannot scan the partitions: %s", cf_strerror(r));
        err = r;
    }
    struct strarr names = STRARR_INIT;
    r = store_mailbox_foreach(st, "", add_name, &names);
    if (r < 0) {
        tool_error(t, "cannot read the mailbox list: %s", cf_strerror(r));
        err = r;
    }
    for (size_t i = 0; i < names.count; i++) {
        tool_progress(t, i + 1, names.count, "mailboxes checked");
        struct mboxlist_entry e;
        mboxlist_entry_init(&e);
        r = store_lookup(st, names.v[i], &e);
        if (r == 1) {
            const char *pp = store_partition_path(st, e.partition);
            /* a missing directory was reported by the list scan already */
            if (pp) r = reconstruct_mailbox(pp, e.uniqueid, names.v[i], e.acl, RECON_DRY_RUN, &rep);
            if (r < 0 && r != CF_E_NOTFOUND) {
                recon_report_add(&rep, names.v[i], "unreadable", "%s", cf_strerror(r));
                err = r;
            }
        }
        mboxlist_entry_fini(&e);
    }
    if (!no_quota) {
        struct tool_quota_usage u;
        r = tool_quota_recount(t, st, &u);
        if (r < 0) {
            recon_report_add(&rep, "", "quota_unreadable", "%s", cf_strerror(r));
            err = r;
        } else {
            for (size_t i = 0; i < u.roots.count; i++) {
                struct quota q;
                if (store_quota_get(st, u.roots.v[i], &q) != 1) continue;
                if (q.used_bytes == u.bytes[i] && q.used_messages == u.msgs[i]) continue;
                /* a session may have been between its commit and its usage change: look
                 * again under the root's lock (reading only), where none can be */
                int fd = -1;
                int64_t b = u.bytes[i], m = u.msgs[i];
                if (quotalock_acquire(st, u.roots.v[i], &fd) == 0 &&
                    store_quota_get(st, u.roots.v[i], &q) == 1 &&
                    store_quota_recount(st, u.roots.v[i], &b, &m) == 0) {
                    u.bytes[i] = b;
                    u.msgs[i] = m;
                }
                quotalock_release(&fd);
                if (q.used_bytes != u.bytes[i] || q.used_messages != u.msgs[i])
                    recon_report_add(&rep, u.roots.v[i], "quota_usage",
                                     "quota.db says %lld bytes in %lld messages, the mailboxes hold "
                                     "%lld bytes in %lld (coffer quota fix)", (long long)q.used_bytes,
                                     (long long)q.used_messages, u.bytes[i], u.msgs[i]);
            }
            tool_quota_usage_fini(&u);
        }
    }
    struct table tab;
    table_init(&tab, (const char *const[]){ "mailbox", "problem", "detail", NULL });
    for (size_t i = 0; i < rep.what.count; i++)
        table_add(&tab, (const char *const[]){ rep.mailbox.v[i], rep.what.v[i], rep.detail.v[i] });
    if (rep.what.count || t->json) table_print(&tab, t->json);
    table_fini(&tab);
    if (!t->json)
        fprintf(stderr, "coffer check: %zu mailbox%s, %u messages: %s\n", names.count,
                names.count == 1 ? "" : "es", (unsigned)rep.messages,
                rep.what.count ? "problems found (coffer reconstruct, coffer quota fix)" : "clean");
    int rc2 = rep.what.count || err ? EXIT_FAIL : EXIT_OK;
    recon_report_fini(&rep);
    strarr_fini(&names);
    store_close(&st);
    return rc2;
}
