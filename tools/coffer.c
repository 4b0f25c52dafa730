/* coffer.c: the `coffer` administration command: global options, config loading, privilege
 * drop to the service user, and dispatch to one file per subcommand. */
#include "tool.h"
#include "cmd.h"
#include "auth/sasl.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/paths.h"
#include "core/priv.h"
#include "core/xmalloc.h"
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
    { "expire", cmd_expire, "expire [--dry-run]            prune records, repack, remove expunged/deleted past retention" },
    { "mailbox", cmd_mailbox, "mailbox list|create|delete|rename   mailboxes (internal names, user/NAME/...)" },
    { "quota", cmd_quota, "quota get|set|delete|report|fix   quota roots, limits and usage" },
    { "reconstruct", cmd_reconstruct, "reconstruct [-r] MAILBOX|--user U|--all|--mailboxlist   repair from the files" },
    { "restore", cmd_restore, "restore [--user NEW] < FILE   recreate an account from a dump" },
    { "route", cmd_route, "route set|mark|get|list|delete|import   user -> backend table of the router" },
    { "sieve", cmd_sieve, "sieve put|get|list|activate|deactivate|delete|rename|check   Sieve scripts of a user" },
    { "status", cmd_status, "status                        workers per service of the running cofferd" },
    { "undelete", cmd_undelete, "undelete USER MAILBOX [--as NEW] | --list   bring back a deleted mailbox" },
    { "unexpunge", cmd_unexpunge, "unexpunge USER MAILBOX [--since D] [--uid SET]   bring back expunged messages" },
    { "user", cmd_user, "user add|passwd|delete|list|move   users in the SASL password database; move between backends" },
};

/* sub_usage: `coffer SUB --help`: the subcommand's line and its manual page. Needs no
 * configuration, so it works on a machine where coffer.conf does not exist yet. */
static void sub_usage(const struct subcommand *sub)
{
    /* undelete is described with unexpunge, restore with dump */
    const char *page = !strcmp(sub->name, "undelete") ? "unexpunge"
                     : !strcmp(sub->name, "restore") ? "dump" : sub->name;
    printf("usage: coffer [-C coffer.conf] [--json] %s\n\nSee coffer-%s(8) and coffer(8).\n",
           sub->usage, page);
}

/* wants_help: -h or --help among a subcommand's words, except as the value of -p (a password
 * may be anything). */
static int wants_help(int argc, char **argv, int first)
{
    for (int k = first; k < argc; k++)
        if ((!strcmp(argv[k], "-h") || !strcmp(argv[k], "--help")) &&
            !(k > first && !strcmp(argv[k - 1], "-p")))
            return 1;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: coffer [-C coffer.conf] [--json] SUBCOMMAND [ARGS]\n\nsubcommands:\n");
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        fprintf(f, "  %s\n", subcommands[i].usage);
    fprintf(f, "\nThe configuration is -C, else $COFFER_CONF, else " COFFER_DEFAULT_CONF ".\n"
               "See coffer(8).\n");
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

/* reachable: can we (after the privilege drop) use configdir, the sasldb and the partitions
 * the subcommand works on? Else one line per path naming it and the missing permission, and
 * -1: the libraries underneath would only say "I/O error". deliver talks to the server over
 * its socket and needs none of them; status only reads configdir. */
static int reachable(const struct tool *t)
{
    if (!strcmp(t->sub, "deliver")) return 0;
    int status = !strcmp(t->sub, "status"), user = !strcmp(t->sub, "user");
    int route = !strcmp(t->sub, "route");  /* a router host may hold no mail partitions */
    struct path_who who;
    path_who_self(&who);
    struct buf why = BUF_INIT;
    int bad = path_check_access(config_str(t->cfg, CFG_CONFIGDIR),
                                status ? R_OK | X_OK : R_OK | W_OK | X_OK, 0, &who, &why) != 0;
    if (!bad && user)
        bad = path_check_access(config_str(t->cfg, CFG_SASL_DBPATH), R_OK | W_OK, 1, &who,
                                &why) != 0;
    for (size_t i = 0; !bad && !status && !user && !route && i < t->cfg->npartitions; i++)
        bad = path_check_access(t->cfg->partitions[i].path, R_OK | W_OK | X_OK, 0, &who,
                                &why) != 0;
    if (bad) tool_error(t, "%s", buf_cstr(&why));
    buf_fini(&why);
    return bad ? -1 : 0;
}

int main(int argc, char **argv)
{
    struct tool t;
    memset(&t, 0, sizeof t);
    t.conf_path = getenv("COFFER_CONF");
    if (!t.conf_path) t.conf_path = COFFER_DEFAULT_CONF;
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
    t.sub = sub->name;
    if (wants_help(argc, argv, i + 1)) { sub_usage(sub); return 0; }
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
    if (drop_privileges(t.cfg) < 0 || reachable(&t) < 0) rc = EXIT_FAIL;
    else rc = sub->run(&t);
    config_free(&t.cfg);
    strarr_fini(&rest);
    return rc;
}
