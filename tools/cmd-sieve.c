/* cmd-sieve.c: `coffer sieve put|get|list|activate|deactivate|delete|rename|check`: a user's Sieve
 * scripts (lib/sieve, the store sieved and coffer dump/restore use too). */
#include "tool.h"
#include "cmd.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include "sieve/sieve.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int read_stdin(struct buf *b)
{
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) {
        buf_append(b, chunk, n);
        if (b->len > SIEVE_MAX_SCRIPT) return CF_E_LIMIT;
    }
    return ferror(stdin) ? CF_E_IO : 0;
}

int cmd_sieve(struct tool *t)
{
    const char *op = t->argc > 0 ? t->argv[0] : "";
    const char *user = t->argc > 1 ? t->argv[1] : NULL;
    const char *name = t->argc > 2 ? t->argv[2] : NULL;
    struct buf in = BUF_INIT, err = BUF_INIT;
    int r = 0;
    if (!strcmp(op, "check") && t->argc == 1) {
        if ((r = read_stdin(&in)) == 0) r = sieve_check(buf_cstr(&in), &err);
    } else if (!strcmp(op, "put") && name && t->argc == 3) {
        if ((r = read_stdin(&in)) == 0) r = sieve_put(t->cfg, user, name, in.s ? in.s : "",
                                                      in.len, SIEVE_PUT_LIMITS, &err);
        if (r == SIEVE_E_MAXSIZE)
            tool_error(t, "the script is larger than sieve_max_script_size (%zu bytes)",
                       sieve_max_size(t->cfg));
        if (r == SIEVE_E_MAXSCRIPTS)
            tool_error(t, "%s already has sieve_max_scripts scripts", user);
    } else if (!strcmp(op, "get") && name && t->argc == 3) {
        char *data;
        size_t len;
        if ((r = sieve_get(t->cfg, user, name, &data, &len)) == 0) {
            fwrite(data, 1, len, stdout);
            free(data);
        }
    } else if (!strcmp(op, "list") && user && t->argc == 2) {
        struct strarr names = STRARR_INIT;
        char *active = NULL;
        if ((r = sieve_list(t->cfg, user, &names, &active)) == 0) {
            static const char *const cols[] = { "name", "active", NULL };
            struct table tb;
            table_init(&tb, cols);
            for (size_t i = 0; i < names.count; i++) {
                const char *row[] = { names.v[i],
                                      active && !strcmp(active, names.v[i]) ? "yes" : "no" };
                table_add(&tb, row);
            }
            table_print(&tb, t->json);
            table_fini(&tb);
        }
        free(active);
        strarr_fini(&names);
    } else if (!strcmp(op, "rename") && t->argc == 4) {
        r = sieve_rename(t->cfg, user, name, t->argv[3]);
        if (r == CF_E_EXISTS) tool_error(t, "%s already exists", t->argv[3]);
    } else if (!strcmp(op, "activate") && name && t->argc == 3) {
        r = sieve_activate(t->cfg, user, name);
    } else if (!strcmp(op, "deactivate") && user && t->argc == 2) {
        r = sieve_deactivate(t->cfg, user);
    } else if (!strcmp(op, "delete") && name && t->argc == 3) {
        r = sieve_delete(t->cfg, user, name);
        if (r == CF_E_PERM) tool_error(t, "%s is the active script: deactivate it first", name);
    } else {
        tool_error(t, "usage: coffer sieve put|get|delete|activate USER NAME | rename USER OLD "
                      "NEW | list|deactivate USER | check < script");
        r = CF_E_PARSE;
        goto done;
    }
    if (r < 0 && err.len) {
        fputs(buf_cstr(&err), stderr);
    } else if (r < 0 && r != CF_E_PERM && r != SIEVE_E_MAXSIZE && r != SIEVE_E_MAXSCRIPTS &&
               r != CF_E_EXISTS) {
        tool_error(t, "%s", cf_strerror(r));
    }
done:
    buf_fini(&in);
    buf_fini(&err);
    return tool_exit_for(r);
}
