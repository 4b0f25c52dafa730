/* coffer.c: the `coffer` administration command: global options, config loading, privilege
 * drop to the service user, and dispatch to one file per subcommand. */
#include "tool.h"
#include "auth/sasl.h"
#include "core/error.h"
#include "core/log.h"
#include "core/priv.h"
#include "core/xmalloc.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct subcommand {
    const char *name;
    int (*run)(struct tool *t);
    const char *usage;
} subcommands[] = {
    { "deliver", cmd_deliver, "deliver [-m folder] [-f sender] USER < msg   hand a message to lmtpd" },
    { "acl", cmd_acl, "acl get|set|delete            access control lists of mailboxes" },
    { "check", cmd_check, "check                         read-only consistency check of the whole store" },
    { "db", cmd_db, "db list|dump|load NAME       plain-text dump and load of the databases" },
    { "dump", cmd_dump, "dump USER > FILE              a user's whole account as a tar stream" },
    { "expire", cmd_expire, "expire [--dry-run]            prune duplicate and vacation records, repack" },
    { "mailbox", cmd_mailbox, "mailbox list|create|delete|rename   mailboxes (internal names, user/NAME/...)" },
    { "quota", cmd_quota, "quota get|set|delete|report|fix   quota roots, limits and usage" },
    { "reconstruct", cmd_reconstruct, "reconstruct [-r] MAILBOX|--user U|--all|--mailboxlist   repair from the files" },
    { "restore", cmd_restore, "restore [--user NEW] < FILE   recreate an account from a dump" },
    { "sieve", cmd_sieve, "sieve put|get|list|activate|deactivate|delete|check   Sieve scripts of a user" },
    { "status", cmd_status, "status                        workers per service of the running cofferd" },
    { "user", cmd_user, "user add|passwd|delete|list   users in the SASL password database" },
};

static const char *g_sub = "";

static void usage(FILE *f)
{
    fprintf(f, "usage: coffer [-C coffer.conf] [--json] SUBCOMMAND [ARGS]\n\nsubcommands:\n");
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        fprintf(f, "  %s\n", subcommands[i].usage);
    fprintf(f, "\nThe configuration is -C, else $COFFER_CONF, else /etc/coffer/coffer.conf.\n"
               "See coffer(8).\n");
}

int tool_exit_for(int err)
{
    switch (err) {
    case 0: return EXIT_OK;
    case CF_E_NOTFOUND: return EXIT_NOTFOUND;
    case CF_E_EXISTS: return EXIT_EXISTS;
    case CF_E_AGAIN: case CF_E_LOCKED: return EXIT_TEMPFAIL;
    case CF_E_PARSE: return EXIT_USAGE;
    default: return EXIT_FAIL;
    }
}

void json_str(struct buf *b, const char *s)
{
    buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') { buf_putc(b, '\\'); buf_putc(b, (char)*p); }
        else if (*p < 0x20) buf_printf(b, "\\u%04x", *p);
        else buf_putc(b, (char)*p);
    }
    buf_putc(b, '"');
}

void tool_error(const struct tool *t, const char *fmt, ...)
{
    struct buf msg = BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    if (t && t->json) {
        struct buf out = BUF_INIT;
        buf_appends(&out, "{\"error\": ");
        json_str(&out, buf_cstr(&msg));
        buf_appends(&out, "}\n");
        fputs(buf_cstr(&out), stdout);
        buf_fini(&out);
    }
    fprintf(stderr, "coffer%s%s: %s\n", *g_sub ? " " : "", g_sub, buf_cstr(&msg));
    buf_fini(&msg);
}

void table_init(struct table *t, const char *const *cols)
{
    strarr_init(&t->cols);
    strarr_init(&t->cells);
    for (; *cols; cols++) strarr_add(&t->cols, *cols);
}

void table_add(struct table *t, const char *const *row)
{
    for (size_t i = 0; i < t->cols.count; i++) strarr_add(&t->cells, row[i] ? row[i] : "");
}

void table_fini(struct table *t)
{
    strarr_fini(&t->cols);
    strarr_fini(&t->cells);
}

static int is_number(const char *s)
{
    if (*s == '-') s++;
    if (!*s) return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

void table_print(const struct table *t, int json)
{
    size_t ncol = t->cols.count, nrow = ncol ? t->cells.count / ncol : 0;
    struct buf out = BUF_INIT;
    if (json) {
        buf_putc(&out, '[');
        for (size_t r = 0; r < nrow; r++) {
            buf_appends(&out, r ? ",\n {" : "\n {");
            for (size_t c = 0; c < ncol; c++) {
                const char *name = t->cols.v[c], *cell = t->cells.v[r * ncol + c];
                size_t nl = strlen(name);
                int numeric = nl && name[nl - 1] == '#';
                char *key = xstrndup(name, numeric ? nl - 1 : nl);
                if (c) buf_appends(&out, ", ");
                json_str(&out, key);
                buf_appends(&out, ": ");
                if (numeric && is_number(cell)) buf_appends(&out, cell);
                else json_str(&out, cell);
                free(key);
            }
            buf_putc(&out, '}');
        }
        buf_appends(&out, nrow ? "\n]\n" : "]\n");
    } else {
        size_t *w = xzmalloc(ncol * sizeof *w);
        for (size_t c = 0; c < ncol; c++) {
            size_t nl = strlen(t->cols.v[c]);
            w[c] = nl && t->cols.v[c][nl - 1] == '#' ? nl - 1 : nl;
            for (size_t r = 0; r < nrow; r++) {
                size_t l = strlen(t->cells.v[r * ncol + c]);
                if (l > w[c]) w[c] = l;
            }
        }
        for (size_t r = 0; r <= nrow; r++) {
            for (size_t c = 0; c < ncol; c++) {
                const char *cell = r == 0 ? t->cols.v[c] : t->cells.v[(r - 1) * ncol + c];
                size_t l = strlen(cell);
                if (r == 0 && l && cell[l - 1] == '#') l--;
                int last = c + 1 == ncol;
                buf_printf(&out, "%.*s", (int)l, cell);
                if (!last) buf_printf(&out, "%*s", (int)(w[c] - l + 2), "");
            }
            buf_putc(&out, '\n');
            if (r == 0) {
                for (size_t c = 0; c < ncol; c++) {
                    for (size_t i = 0; i < w[c]; i++) buf_putc(&out, '-');
                    if (c + 1 < ncol) buf_appends(&out, "  ");
                }
                buf_putc(&out, '\n');
            }
        }
        free(w);
    }
    fputs(buf_cstr(&out), stdout);
    buf_fini(&out);
}

/* drop_privileges: as root with `user` configured, act as that user, so every file the tool
 * creates belongs to the server. */
static int drop_privileges(const struct config *cfg)
{
    struct buf err = BUF_INIT;
    int r = priv_drop(config_str(cfg, CFG_USER), &err);
    if (r) fprintf(stderr, "coffer: service %s\n", buf_cstr(&err));
    buf_fini(&err);
    return r ? -1 : 0;
}

int main(int argc, char **argv)
{
    struct tool t;
    memset(&t, 0, sizeof t);
    t.conf_path = getenv("COFFER_CONF");
    if (!t.conf_path) t.conf_path = "/etc/coffer/coffer.conf";
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-C") && i + 1 < argc) t.conf_path = argv[++i];
        else if (!strcmp(argv[i], "--json")) t.json = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) { usage(stdout); return 0; }
        else { usage(stderr); return EXIT_USAGE; }
    }
    if (i >= argc) { usage(stderr); return EXIT_USAGE; }
    const struct subcommand *sub = NULL;
    for (size_t k = 0; k < sizeof subcommands / sizeof subcommands[0]; k++)
        if (!strcmp(subcommands[k].name, argv[i])) sub = &subcommands[k];
    if (!sub) {
        fprintf(stderr, "coffer: unknown subcommand '%s'\n", argv[i]);
        usage(stderr);
        return EXIT_USAGE;
    }
    g_sub = sub->name;
    /* the rest: subcommand words and options; --json may appear anywhere */
    struct strarr rest = STRARR_INIT;
    for (int k = i + 1; k < argc; k++) {
        if (!strcmp(argv[k], "--json")) t.json = 1;
        else strarr_add(&rest, argv[k]);
    }
    t.argc = (int)rest.count;
    t.argv = rest.v ? rest.v : (char *[]){ NULL };

    log_init("coffer", 1, LOG_LVL_WARNING);
    struct buf err = BUF_INIT;
    if (config_load(t.conf_path, &t.cfg, &err)) {
        fprintf(stderr, "coffer: bad configuration:\n%s", buf_cstr(&err));
        buf_fini(&err);
        strarr_fini(&rest);
        return EXIT_USAGE;
    }
    buf_fini(&err);
    int rc;
    if (drop_privileges(t.cfg) < 0) rc = EXIT_FAIL;
    else rc = sub->run(&t);
    config_free(&t.cfg);
    strarr_fini(&rest);
    return rc;
}
