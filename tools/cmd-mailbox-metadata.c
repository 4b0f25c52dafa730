/* cmd-mailbox-metadata.c: `coffer mailbox metadata MAILBOX [get [ENTRY...] | set ENTRY VALUE |
 * delete ENTRY] [--user USER]`: the RFC 5464 annotations of a mailbox (internal name) or of
 * the server ("") for administrators, over store-db.h. No ACL applies; the limits do. */
#include "tool.h"
#include "cmd.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include "store/store.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METADATA_USAGE \
    "usage: coffer mailbox metadata MAILBOX [get [ENTRY...] | set ENTRY VALUE|- | delete ENTRY]" \
    " [--user USER]\n       (MAILBOX \"\" is the server; private entries are USER's)"

/* printable: v[0,len) with bytes below 0x20, 0x7f and '\' as \xNN escapes (UTF-8 stays) */
static void printable(struct buf *out, const char *v, size_t len)
{
    buf_reset(out);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch < 0x20 || ch == 0x7f || ch == '\\') buf_printf(out, "\\x%02x", ch);
        else buf_putc(out, (char)ch);
    }
    buf_cstr(out);
}

static int add_row(const char *entry, const char *val, size_t len, void *rock)
{
    struct table *tab = rock;
    struct buf shown = BUF_INIT;
    char bytes[32];
    printable(&shown, val, len);
    snprintf(bytes, sizeof bytes, "%zu", len);
    table_add(tab, (const char *const[]){ entry, bytes, buf_cstr(&shown) });
    buf_fini(&shown);
    return 0;
}

/* read_value: all of standard input into v (a binary value). 0 or CF_E_IO. */
static int read_value(struct buf *v)
{
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) buf_append(v, chunk, n);
    return ferror(stdin) ? CF_E_IO : 0;
}

int cmd_mailbox_metadata(struct tool *t)
{
    const char *user = NULL;
    struct strarr args = STRARR_INIT;   /* after "metadata", without the options */
    int bad = 0;
    for (int i = 1; i < t->argc; i++) {
        const char *a = t->argv[i];
        if (!strcmp(a, "--user") && i + 1 < t->argc) user = t->argv[++i];
        else if (a[0] == '-' && a[1]) bad = 1;
        else strarr_add(&args, a);
    }
    const char *verb = args.count > 1 ? args.v[1] : "get";
    int get = !strcmp(verb, "get");
    int set = !strcmp(verb, "set") && args.count == 4;
    int del = !strcmp(verb, "delete") && args.count == 3;
    if (bad || args.count < 1 || (!get && !set && !del) || (user && !*user)) {
        tool_error(t, METADATA_USAGE);
        strarr_fini(&args);
        return EXIT_USAGE;
    }
    const char *mailbox = args.v[0];
    struct store *st;
    int rc = tool_store_open(t, &st);
    if (rc) {
        strarr_fini(&args);
        return rc;
    }
    struct mboxlist_entry e;
    mboxlist_entry_init(&e);
    struct buf value = BUF_INIT;
    int r = 0;
    const char *uid = STORE_METADATA_SERVER;
    if (*mailbox) {
        r = store_lookup(st, mailbox, &e);
        if (r == 0) {
            tool_error(t, "no such mailbox: %s", mailbox);
            r = CF_E_NOTFOUND;
            goto out;
        }
        if (r < 0) {
            tool_error(t, "cannot look up %s: %s", mailbox, cf_strerror(r));
            goto out;
        }
        uid = e.uniqueid;
        r = 0;
    }
    if (get) {
        struct table tab;
        table_init(&tab, (const char *const[]){ "entry", "bytes#", "value", NULL });
        if (args.count <= 2) {
            r = store_metadata_foreach(st, uid, NULL, "/shared", -1, add_row, &tab);
            if (r >= 0 && user)
                r = store_metadata_foreach(st, uid, user, "/private", -1, add_row, &tab);
        }
        for (size_t i = 2; i < args.count && r >= 0; i++) {
            r = store_metadata_foreach(st, uid, user, args.v[i], -1, add_row, &tab);
            if (r == CF_E_PARSE)
                tool_error(t, "not an entry under /shared or /private: %s", args.v[i]);
        }
        if (r >= 0) table_print(&tab, t->json);
        else if (r != CF_E_PARSE) tool_error(t, "cannot read the annotations: %s", cf_strerror(r));
        table_fini(&tab);
    } else {
        const char *entry = args.v[2];
        struct store_metadata_item it = { entry, NULL, 0 };
        if (set) {
            if (!strcmp(args.v[3], "-")) r = read_value(&value);
            else buf_appends(&value, args.v[3]);
            it.value = value.s ? value.s : "";
            it.len = value.len;
        }
        long long maxsize = 0;
        if (!r) r = store_metadata_set(st, mailbox, user, &it, 1, &maxsize);
        if (r == CF_E_PARSE) {
            tool_error(t, "not an entry below /shared or /private%s: %s",
                       user ? "" : " (private entries need --user)", entry);
        } else if (r == CF_E_LIMIT) {
            if (maxsize > 0)
                tool_error(t, "the value is over metadata_max_entry_size (%lld)", maxsize);
            else tool_error(t, "too many annotations (metadata_max_entries, metadata_max_size or "
                               "metadata_max_entries_per_user)");
        } else if (r < 0) {
            tool_error(t, "cannot change %s: %s", entry, cf_strerror(r));
        } else if (t->json) {
            struct buf b = BUF_INIT;
            buf_appends(&b, "{\"mailbox\": ");
            json_str(&b, mailbox);
            buf_appends(&b, ", \"entry\": ");
            json_str(&b, entry);
            buf_appends(&b, set ? ", \"result\": \"set\"}\n" : ", \"result\": \"deleted\"}\n");
            fputs(buf_cstr(&b), stdout);
            buf_fini(&b);
        } else {
            printf("%s %s on %s\n", set ? "set" : "deleted", entry,
                   *mailbox ? mailbox : "the server");
        }
    }
out:
    store_close(&st);
    mboxlist_entry_fini(&e);
    buf_fini(&value);
    strarr_fini(&args);
    /* a refused limit is "it would exceed a quota" (coffer-mailbox(8)) */
    if (r == CF_E_LIMIT) return EXIT_QUOTA;
    return tool_exit_for(r < 0 ? r : 0);
}
