/* cmd-reconstruct.c: `coffer reconstruct`: rebuild mailboxes' indexes and caches from their
 * message files, and the mailbox list from the partitions (lib/store/reconstruct.h), printing
 * every change it made. */
#include "tool.h"
#include "cmd.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include "store/reconstruct.h"
#include "store/store.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECONSTRUCT_USAGE \
    "usage: coffer reconstruct [--dry-run] [-r] MAILBOX... | --user USER | --all | --mailboxlist"

static int add_name(const char *name, const struct mboxlist_entry *e, void *rock)
{
    (void)e;
    strarr_add(rock, name);
    return 0;
}

/* one: reconstruct the listed mailbox name. Returns findings or an error (printed). */
static int one(struct tool *t, struct store *st, const char *name, unsigned flags,
               struct recon_report *rep)
{
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    int r = store_lookup(st, name, &e);
    if (r == 0) {
        tool_error(t, "%s: not in the mailbox list (coffer reconstruct --mailboxlist adds "
                      "mailboxes found on the partitions)", name);
        r = CF_E_NOTFOUND;
    } else if (r > 0) {
        /* the store keeps the quota root in step with records dropped or adopted */
        r = store_reconstruct(st, name, &e, flags, rep);
        if (r == CF_E_NOTFOUND) {
            recon_report_add(rep, name, "directory_missing", "%s on partition %s", e.uniqueid,
                             e.partition);
            r = 1;
        } else if (r < 0) {
            tool_error(t, "%s: %s", name, cf_strerror(r));
        }
    } else {
        tool_error(t, "%s: %s", name, cf_strerror(r));
    }
    mboxlist_entry_fini(&e);
    return r;
}

int cmd_reconstruct(struct tool *t)
{
    unsigned flags = 0;
    int recursive = 0, all = 0, mlist = 0;
    const char *user = NULL;
    struct strarr names = STRARR_INIT;
    int bad = 0;
    for (int i = 0; i < t->argc; i++) {
        const char *a = t->argv[i];
        if (!strcmp(a, "-r")) recursive = 1;
        else if (!strcmp(a, "--dry-run") || !strcmp(a, "-n")) flags |= RECON_DRY_RUN;
        else if (!strcmp(a, "--all")) all = 1;
        else if (!strcmp(a, "--mailboxlist")) mlist = 1;
        else if (!strcmp(a, "--user") && i + 1 < t->argc) user = t->argv[++i];
        else if (a[0] == '-') bad = 1;
        else strarr_add(&names, a);
    }
    if (bad || (!names.count && !all && !mlist && !user) || (all + mlist + !!user + !!names.count) > 1) {
        tool_error(t, RECONSTRUCT_USAGE);
        strarr_fini(&names);
        return EXIT_USAGE;
    }
    struct store *st;
    int rc = tool_store_open(t, &st);
    if (rc) {
        strarr_fini(&names);
        return rc;
    }
    struct recon_report rep;
    recon_report_init(&rep);
    int r = 0, failed = 0;
    if (mlist || all) {
        r = store_reconstruct_mailboxlist(st, flags, &rep);
        if (r < 0) {
            tool_error(t, "cannot rebuild the mailbox list: %s", cf_strerror(r));
            failed = 1;
        }
    }
    /* the mailboxes to rebuild */
    struct strarr todo = STRARR_INIT;
    if (all) {
        store_mailbox_foreach(st, "", add_name, &todo);
    } else if (user) {
        struct buf inbox = BUF_INIT;
        buf_printf(&inbox, "user/%s", user);
        if (store_lookup(st, buf_cstr(&inbox), NULL) == 1) strarr_add(&todo, buf_cstr(&inbox));
        buf_putc(&inbox, '/');
        store_mailbox_foreach(st, buf_cstr(&inbox), add_name, &todo);
        if (!todo.count) {
            tool_error(t, "user %s has no mailboxes", user);
            failed = 1;
            r = CF_E_NOTFOUND;
        }
        buf_fini(&inbox);
    } else {
        for (size_t i = 0; i < names.count; i++) {
            strarr_add(&todo, names.v[i]);
            if (!recursive) continue;
            char *prefix = xasprintf("%s/", names.v[i]);
            store_mailbox_foreach(st, prefix, add_name, &todo);
            free(prefix);
        }
    }
    /* a mailbox that lost its UIDVALIDITY gets one above every value given out so far, and
     * the counter stays above every value on disk afterwards (never lowered) */
    uint32_t last_uidv = 0;
    if (todo.count && !(flags & RECON_DRY_RUN) &&
        store_raise_uidvalidity(st, 0, &last_uidv) == 0)
        rep.uidvalidity_next = last_uidv + 1;
    for (size_t i = 0; i < todo.count; i++) {
        tool_progress(t, i + 1, todo.count, "mailboxes");
        int x = one(t, st, todo.v[i], flags, &rep);
        if (x < 0) {
            failed = 1;
            r = x;
        }
    }
    if (!(flags & RECON_DRY_RUN) && rep.uidvalidity_max &&
        store_raise_uidvalidity(st, rep.uidvalidity_max, NULL) < 0) {
        tool_error(t, "cannot update the UIDVALIDITY counter");
        failed = 1;
    }
    struct table tab;
    table_init(&tab, (const char *const[]){ "mailbox", "change", "detail", NULL });
    for (size_t i = 0; i < rep.what.count; i++)
        table_add(&tab, (const char *const[]){ rep.mailbox.v[i], rep.what.v[i], rep.detail.v[i] });
    if (rep.what.count || t->json) table_print(&tab, t->json);
    table_fini(&tab);
    if (!t->json)
        fprintf(stderr, "coffer reconstruct: %u mailbox%s, %u messages; %u adopted, %u dropped, "
                "%u fixed; %zu change%s%s\n", (unsigned)rep.mailboxes, rep.mailboxes == 1 ? "" : "es",
                (unsigned)rep.messages, (unsigned)rep.adopted, (unsigned)rep.dropped,
                (unsigned)rep.fixed, rep.what.count, rep.what.count == 1 ? "" : "s",
                (flags & RECON_DRY_RUN) ? " (dry run: nothing written)" : "");
    if ((rep.adopted || rep.dropped) && !(flags & RECON_DRY_RUN) && !t->json)
        fprintf(stderr, "coffer reconstruct: message counts changed; quota usage follows\n");
    recon_report_fini(&rep);
    strarr_fini(&todo);
    strarr_fini(&names);
    store_close(&st);
    return failed ? tool_exit_for(r) : EXIT_OK;
}
