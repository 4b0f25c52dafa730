/* cmd-route.c: `coffer route set|mark|get|list|delete|import`: the user -> backend table of
 * the scale-out router (route.db, store/routedb.h; man/coffer-route.8). */
#include "tool.h"
#include "cmd.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include "store/kv.h"
#include "store/routedb.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUTE_USAGE "usage: coffer route set USER BACKEND [--moving|--ready] | mark USER " \
                    "moving|ready | get USER | list | export | delete USER | import [FILE|-]"

/* route_open: join the database environment (configdir/db) and open route.db; 0 or an exit
 * code after printing the error. */
static int route_open(struct tool *t, struct kv_env **env, struct routedb **rd)
{
    char *dir = xasprintf("%s/db", config_str(t->cfg, CFG_CONFIGDIR));
    int r = kv_env_open(dir, env);
    if (!r) r = kv_env_guard(*env, EXIT_TEMPFAIL);
    if (!r) r = routedb_open(*env, rd);
    if (r) {
        tool_error(t, "cannot open %s/%s: %s", dir, ROUTEDB_DB, cf_strerror(r));
        kv_env_close(env);
    }
    free(dir);
    return r ? tool_exit_for(r) : 0;
}

static const char *state_name(const struct route *rt) { return rt->moving ? "moving" : "ready"; }

static int list_one(const char *user, const struct route *rt, void *rock)
{
    table_add(rock, (const char *const[]){ user, rt->backend, state_name(rt), "table" });
    return 0;
}

/* export_one: "user backend\n", the form import reads (the moving mark is not exported: it
 * belongs to the router where a move runs) */
static int export_one(const char *user, const struct route *rt, void *rock)
{
    (void)rock;
    return printf("%s %s\n", user, rt->backend) < 0 ? CF_E_IO : 0;
}

/* check_backend: 0 when name is a [backend] of the configuration, else an exit code */
static int check_backend(struct tool *t, const char *name)
{
    if (config_backend(t->cfg, name)) return 0;
    tool_error(t, "no [backend %s] section in %s", name, t->conf_path);
    return EXIT_USAGE;
}

static int check_user(struct tool *t, const char *user)
{
    if (routedb_valid_name(user)) return 0;
    tool_error(t, "'%s' is not a valid user name (no domain, space, '@' or '%%')", user);
    return EXIT_USAGE;
}

/* ---- import ---- */

struct import {
    struct routedb *rd;
    struct strarr users, backends;      /* parallel */
    const char *moving_user;            /* set when a listed user is being moved */
};

static int import_txn(struct kv_txn *txn, void *rock)
{
    struct import *im = rock;
    im->moving_user = NULL;
    for (size_t i = 0; i < im->users.count; i++) {
        struct route rt;
        int r = routedb_get(im->rd, txn, im->users.v[i], &rt);
        if (r < 0) return r;
        if (r == 1 && rt.moving) {
            im->moving_user = im->users.v[i];
            return CF_E_LOCKED;
        }
        memset(&rt, 0, sizeof rt);
        snprintf(rt.backend, sizeof rt.backend, "%s", im->backends.v[i]);
        r = routedb_set(im->rd, txn, im->users.v[i], &rt);
        if (r < 0) return r;
    }
    return 0;
}

/* import: "USER BACKEND" lines ('#' comments and blank lines skipped) from path ("-": stdin),
 * all checked first, then written in one transaction */
static int import(struct tool *t, struct routedb *rd, const char *path)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!f) {
        tool_error(t, "cannot open %s", path);
        return EXIT_FAIL;
    }
    struct import im = { rd, STRARR_INIT, STRARR_INIT, NULL };
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = EXIT_OK;
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *save = NULL;
        char *user = strtok_r(line, " \t\r\n", &save);
        if (!user) continue;
        char *backend = strtok_r(NULL, " \t\r\n", &save);
        char *extra = backend ? strtok_r(NULL, " \t\r\n", &save) : NULL;
        if (!backend || extra || !routedb_valid_name(user)) {
            tool_error(t, "%s:%d: expected 'USER BACKEND'", path, lineno);
            rc = EXIT_USAGE;
            break;
        }
        if (!config_backend(t->cfg, backend)) {
            tool_error(t, "%s:%d: no [backend %s] section in %s", path, lineno, backend,
                       t->conf_path);
            rc = EXIT_USAGE;
            break;
        }
        strarr_add(&im.users, user);
        strarr_add(&im.backends, backend);
    }
    free(line);
    if (f != stdin) fclose(f);
    if (rc == EXIT_OK) {
        int r = kv_txn_run(kv_db_env(routedb_kv(rd)), 0, import_txn, &im);
        if (r == CF_E_LOCKED) {
            tool_error(t, "%s is being moved: nothing imported (finish or undo the move first)",
                       im.moving_user);
            rc = EXIT_TEMPFAIL;
        } else if (r < 0) {
            tool_error(t, "import failed, nothing imported: %s", cf_strerror(r));
            rc = tool_exit_for(r);
        } else if (t->json) {
            printf("{\"imported\": %zu}\n", im.users.count);
        } else {
            printf("imported %zu routes\n", im.users.count);
        }
    }
    strarr_fini(&im.users);
    strarr_fini(&im.backends);
    return rc;
}

static void done(struct tool *t, const char *user, const char *result)
{
    if (t->json) {
        struct buf b = BUF_INIT;
        buf_appends(&b, "{\"user\": ");
        json_str(&b, user);
        buf_appends(&b, ", \"result\": ");
        json_str(&b, result);
        buf_appends(&b, "}\n");
        fputs(buf_cstr(&b), stdout);
        buf_fini(&b);
    } else {
        printf("%s %s\n", result, user);
    }
}

int cmd_route(struct tool *t)
{
    const char *verb = t->argc ? t->argv[0] : "";
    int n = t->argc;
    if (!((!strcmp(verb, "set") && (n == 3 || n == 4)) || (!strcmp(verb, "mark") && n == 3) ||
          (!strcmp(verb, "get") && n == 2) || (!strcmp(verb, "list") && n == 1) ||
          (!strcmp(verb, "export") && n == 1) ||
          (!strcmp(verb, "delete") && n == 2) || (!strcmp(verb, "import") && n <= 2))) {
        tool_error(t, ROUTE_USAGE);
        return EXIT_USAGE;
    }
    int moving = 0;
    if (!strcmp(verb, "set") && n == 4) {
        if (!strcmp(t->argv[3], "--moving")) moving = 1;
        else if (strcmp(t->argv[3], "--ready")) { tool_error(t, ROUTE_USAGE); return EXIT_USAGE; }
    }
    if (!strcmp(verb, "mark")) {
        if (!strcmp(t->argv[2], "moving")) moving = 1;
        else if (strcmp(t->argv[2], "ready")) { tool_error(t, ROUTE_USAGE); return EXIT_USAGE; }
    }
    int rc;
    if (n >= 2 && strcmp(verb, "import") && (rc = check_user(t, t->argv[1]))) return rc;
    if (!strcmp(verb, "set") && (rc = check_backend(t, t->argv[2]))) return rc;

    struct kv_env *env = NULL;
    struct routedb *rd = NULL;
    if ((rc = route_open(t, &env, &rd))) return rc;
    int r = 0;
    if (!strcmp(verb, "set")) {
        struct route rt;
        memset(&rt, 0, sizeof rt);
        snprintf(rt.backend, sizeof rt.backend, "%s", t->argv[2]);
        rt.moving = moving;
        r = routedb_set(rd, NULL, t->argv[1], &rt);
        if (!r) done(t, t->argv[1], moving ? "set (moving)" : "set");
    } else if (!strcmp(verb, "mark")) {
        /* read and write in one transaction, so a concurrent set is not undone */
        struct route rt;
        KV_RETRY(r) {
            struct kv_txn *txn = NULL;
            r = kv_txn_begin(env, 0, &txn);
            if (!r) r = routedb_get(rd, txn, t->argv[1], &rt);
            if (r == 0) r = CF_E_NOTFOUND;
            if (r == 1) {
                rt.moving = moving;
                r = routedb_set(rd, txn, t->argv[1], &rt);
            }
            if (!r) r = kv_txn_commit(&txn);
            else kv_txn_abort(&txn);
        }
        if (!r) done(t, t->argv[1], moving ? "marked moving" : "marked ready");
    } else if (!strcmp(verb, "get")) {
        struct route rt;
        r = routedb_get(rd, NULL, t->argv[1], &rt);
        const char *def = config_str(t->cfg, CFG_ROUTER_DEFAULT_BACKEND);
        if (r >= 0) {
            struct table tab;
            table_init(&tab, (const char *const[]){ "user", "backend", "state", "source", NULL });
            if (r == 1) table_add(&tab, (const char *const[]){ t->argv[1], rt.backend,
                                                               state_name(&rt), "table" });
            else if (*def) table_add(&tab, (const char *const[]){ t->argv[1], def, "ready",
                                                                  "default" });
            if (r == 1 || *def) table_print(&tab, t->json);
            table_fini(&tab);
            r = r == 1 || *def ? 0 : CF_E_NOTFOUND;
        }
    } else if (!strcmp(verb, "list")) {
        struct table tab;
        table_init(&tab, (const char *const[]){ "user", "backend", "state", "source", NULL });
        r = routedb_foreach(rd, list_one, &tab);
        if (!r) table_print(&tab, t->json);
        table_fini(&tab);
    } else if (!strcmp(verb, "export")) {
        r = routedb_foreach(rd, export_one, NULL);
        if (!r && fflush(stdout)) r = CF_E_IO;
    } else if (!strcmp(verb, "delete")) {
        r = routedb_del(rd, NULL, t->argv[1]);
        if (r == 0) r = CF_E_NOTFOUND;
        if (r == 1) {
            r = 0;
            done(t, t->argv[1], "deleted");
        }
    } else {
        rc = import(t, rd, n == 2 ? t->argv[1] : "-");
    }
    if (r == CF_E_NOTFOUND) {
        tool_error(t, "no route for %s%s", t->argv[1],
                   !strcmp(verb, "get") ? " and no router_default_backend" : "");
        rc = EXIT_NOTFOUND;
    } else if (r < 0) {
        tool_error(t, "%s failed: %s", verb, cf_strerror(r));
        rc = tool_exit_for(r);
    }
    routedb_close(&rd);
    kv_env_close(&env);
    return rc;
}
