/* cmd-user.c: `coffer user add|passwd|delete|list`: users in the SASL password database;
 * `user move` is cmd-move.c. */
#include "tool.h"
#include "cmd.h"
#include "auth/sasl.h"
#include "core/error.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* read_password: from -p PASS, else the first line of standard input. Caller frees. */
static char *read_password(struct tool *t, int *argi)
{
    if (*argi + 1 < t->argc && !strcmp(t->argv[*argi], "-p")) {
        char *p = strdup(t->argv[*argi + 1]);
        *argi += 2;
        return p;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n <= 0) { free(line); return NULL; }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
    return line;
}

static int valid_name(const char *u)
{
    if (!*u || strlen(u) > 200) return 0;
    for (const unsigned char *p = (const unsigned char *)u; *p; p++)
        if (*p <= ' ' || *p == '/' || *p == '@' || *p == '%' || *p == '*' || *p == 0x7f) return 0;
    return 1;
}

/* add_from_stdin: `user add --stdin`: lines "NAME PASSWORD" (the password is the rest of the
 * line after one space), each added as `user add` would, in this one process (a process per
 * user costs more than the add itself when provisioning thousands). Every bad line and every
 * failure is reported; returns EXIT_OK when all were added. */
static int add_from_stdin(struct tool *t)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long long added = 0, failed = 0, lineno = 0;
    int rc = EXIT_OK;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (!len) continue;
        char *sp = strchr(line, ' ');
        if (sp) *sp = '\0';
        if (!sp || !sp[1] || !valid_name(line)) {
            tool_error(t, "line %lld: give a valid user name, one space and a password", lineno);
            failed++;
            if (rc == EXIT_OK) rc = EXIT_USAGE;
            continue;
        }
        int r = csasl_setpass(line, sp + 1, 1);
        if (r) {
            tool_error(t, "cannot add %s: %s", line,
                       r == CF_E_EXISTS ? "user already exists" : cf_strerror(r));
            failed++;
            if (rc == EXIT_OK) rc = tool_exit_for(r);
            continue;
        }
        added++;
    }
    free(line);
    if (t->json) printf("{\"added\": %lld, \"failed\": %lld}\n", added, failed);
    else printf("added %lld users, %lld failed\n", added, failed);
    return rc;
}

int cmd_user(struct tool *t)
{
    if (t->argc < 1) {
        tool_error(t, "usage: coffer user add|passwd NAME [-p PASSWORD] | add --stdin | delete NAME | list | move NAME --to BACKEND [--rollback]");
        return EXIT_USAGE;
    }
    const char *verb = t->argv[0];
    if (!strcmp(verb, "move")) return cmd_user_move(t);    /* the router's, no SASL needed */
    if (csasl_init(t->cfg)) return EXIT_FAIL;
    int rc = EXIT_OK;
    if (!strcmp(verb, "list") && t->argc == 1) {
        struct strarr users = STRARR_INIT;
        int r = csasl_listusers(&users);
        if (r) {
            tool_error(t, "cannot read %s: %s", config_str(t->cfg, CFG_SASL_DBPATH), cf_strerror(r));
            rc = tool_exit_for(r);
        } else {
            struct table tab;
            table_init(&tab, (const char *const[]){ "user", "admin", NULL });
            const struct strarr *admins = config_list(t->cfg, CFG_ADMINS);
            for (size_t i = 0; i < users.count; i++) {
                const char *adm = strarr_find(admins, users.v[i]) >= 0 ? "yes" : "no";
                table_add(&tab, (const char *const[]){ users.v[i], adm });
            }
            table_print(&tab, t->json);
            table_fini(&tab);
        }
        strarr_fini(&users);
    } else if (!strcmp(verb, "add") && t->argc == 2 && !strcmp(t->argv[1], "--stdin")) {
        rc = add_from_stdin(t);
    } else if ((!strcmp(verb, "add") || !strcmp(verb, "passwd")) && t->argc >= 2) {
        const char *user = t->argv[1];
        int argi = 2;
        if (!valid_name(user)) {
            tool_error(t, "'%s' is not a valid user name", user);
            csasl_done();
            return EXIT_USAGE;
        }
        char *pass = read_password(t, &argi);
        if (!pass || !*pass || argi != t->argc) {
            tool_error(t, "give the password with -p PASSWORD or on standard input");
            free(pass);
            csasl_done();
            return EXIT_USAGE;
        }
        int create = !strcmp(verb, "add");
        int r = csasl_setpass(user, pass, create);
        free(pass);
        if (r) {
            tool_error(t, "%s %s: %s", create ? "cannot add" : "cannot change the password of",
                       user, r == CF_E_EXISTS ? "user already exists"
                       : r == CF_E_NOTFOUND ? "no such user" : cf_strerror(r));
            rc = tool_exit_for(r);
        } else if (t->json) {
            printf("{\"user\": \"%s\", \"result\": \"%s\"}\n", user, create ? "added" : "changed");
        } else {
            printf("%s %s\n", create ? "added user" : "changed the password of", user);
        }
    } else if (!strcmp(verb, "delete") && t->argc == 2) {
        const char *user = t->argv[1];
        int r = csasl_deluser(user);
        if (r) {
            tool_error(t, "cannot delete %s: %s", user,
                       r == CF_E_NOTFOUND ? "no such user" : cf_strerror(r));
            rc = tool_exit_for(r);
        } else if (t->json) {
            printf("{\"user\": \"%s\", \"result\": \"deleted\"}\n", user);
        } else {
            printf("deleted user %s\n", user);
        }
    } else {
        tool_error(t, "usage: coffer user add|passwd NAME [-p PASSWORD] | add --stdin | delete NAME | list | move NAME --to BACKEND [--rollback]");
        rc = EXIT_USAGE;
    }
    csasl_done();
    return rc;
}
