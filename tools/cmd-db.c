/* cmd-db.c: `coffer db list|dump|load`: a plain-text dump and load of every database in
 * configdir/db (the "Dump format" of coffer-store(5), store_db_dump), so that data survives a Berkeley DB
 * upgrade, and an inspection aid. */
#include "tool.h"
#include "cmd.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include "store/store.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DB_USAGE "usage: coffer db list | dump NAME > FILE | load [--replace] NAME < FILE"

/* db_name: "mailboxes" or "mailboxes.db" -> "mailboxes.db" (caller frees), or NULL when the
 * name holds anything but [A-Za-z0-9_-]. */
static char *db_name(const char *n)
{
    size_t l = strlen(n);
    if (l > 3 && !strcmp(n + l - 3, ".db")) l -= 3;
    if (!l || l > 64) return NULL;
    for (size_t i = 0; i < l; i++) {
        char c = n[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return NULL;
    }
    return xasprintf("%.*s.db", (int)l, n);
}

int cmd_db(struct tool *t)
{
    int replace = 0;
    struct strarr args = STRARR_INIT;
    int bad = 0;
    for (int i = 0; i < t->argc; i++) {
        if (!strcmp(t->argv[i], "--replace")) replace = 1;
        else if (t->argv[i][0] == '-') bad = 1;
        else strarr_add(&args, t->argv[i]);
    }
    const char *verb = args.count ? args.v[0] : "";
    int list = !strcmp(verb, "list") && args.count == 1;
    int dump = !strcmp(verb, "dump") && args.count == 2;
    int load = !strcmp(verb, "load") && args.count == 2;
    char *name = args.count == 2 ? db_name(args.v[1]) : NULL;
    if (bad || (!list && !dump && !load) || (replace && !load) || ((dump || load) && !name)) {
        tool_error(t, DB_USAGE);
        free(name);
        strarr_fini(&args);
        return EXIT_USAGE;
    }
    char *dbdir = xasprintf("%s/db", config_str(t->cfg, CFG_CONFIGDIR));
    struct store *st = NULL;
    int rc = tool_store_open(t, &st);
    int r = 0;
    if (rc) goto out;
    if (list) {
        struct table tab;
        table_init(&tab, (const char *const[]){ "database", "records#", "bytes#", NULL });
        struct strarr files = STRARR_INIT;
        DIR *d = opendir(dbdir);
        struct dirent *de;
        while (d && (de = readdir(d))) {
            size_t l = strlen(de->d_name);
            if (l > 3 && !strcmp(de->d_name + l - 3, ".db") && de->d_name[0] != '.') strarr_add(&files, de->d_name);
        }
        if (d) closedir(d);
        strarr_sort(&files);
        for (size_t i = 0; i < files.count && !r; i++) {
            long long n = 0;
            if ((r = store_db_count(st, files.v[i], &n)) < 0) break;
            struct stat sb;
            char *p = xasprintf("%s/%s", dbdir, files.v[i]);
            char cn[32], cb[32];
            snprintf(cn, sizeof cn, "%lld", n);
            snprintf(cb, sizeof cb, "%lld", stat(p, &sb) == 0 ? (long long)sb.st_size : 0LL);
            free(p);
            table_add(&tab, (const char *const[]){ files.v[i], cn, cb });
        }
        if (r < 0) tool_error(t, "cannot read the databases: %s", cf_strerror(r));
        else table_print(&tab, t->json);
        table_fini(&tab);
        strarr_fini(&files);
    } else {
        char *path = xasprintf("%s/%s", dbdir, name);
        struct stat sb;
        if (dump && stat(path, &sb) < 0) {
            tool_error(t, "no database %s in %s", name, dbdir);
            r = CF_E_NOTFOUND;
        }
        free(path);
        if (!r && dump) {
            r = store_db_dump(st, name, stdout);
            if (!r && fflush(stdout) != 0) r = CF_E_IO;
            if (r) tool_error(t, "cannot dump %s: %s", name, cf_strerror(r));
        } else if (!r) {
            r = store_db_load(st, name, stdin, replace);
            if (r) tool_error(t, "cannot load %s: %s", name, r == CF_E_PARSE ? "malformed dump (see the log line)" : cf_strerror(r));
            else if (!t->json) fprintf(stderr, "coffer db: loaded %s\n", name);
        }
    }
    rc = tool_exit_for(r < 0 ? r : 0);
out:
    store_close(&st);
    free(dbdir);
    free(name);
    strarr_fini(&args);
    return rc;
}
