/* tool.h: shared plumbing of the `coffer` administration command (tool.c): global options,
 * config, output as a human table or JSON, exit codes, and the store helpers of the
 * mailbox-level subcommands. The subcommands themselves are in cmd.h. */
#ifndef COFFER_TOOLS_TOOL_H
#define COFFER_TOOLS_TOOL_H
#include "core/buf.h"
#include "core/config.h"
#include "core/strarr.h"

/* Exit codes (documented in coffer(8)). */
enum tool_exit {
    EXIT_OK = 0,         /* done; for checks: clean */
    EXIT_FAIL = 1,       /* the operation failed, or a check found problems */
    EXIT_USAGE = 2,      /* bad command line or bad configuration */
    EXIT_NOTFOUND = 3,   /* the named user, mailbox, ... does not exist */
    EXIT_EXISTS = 4,     /* it already exists */
    EXIT_TEMPFAIL = 5,   /* try again (server busy, lock held, ...) */
    EXIT_QUOTA = 6,      /* refused: it would exceed a quota (unexpunge, undelete) */
};

struct tool {
    const char *conf_path;
    struct config *cfg;
    const char *sub;     /* the subcommand's name, for messages */
    int json;            /* --json given */
    int argc;            /* the subcommand's arguments, options removed */
    char **argv;
};

/* tool_exit_for: the exit code for a CF_E_* error. */
int tool_exit_for(int err);

/* A result table: column names, then rows of cells; printed aligned for humans or as a JSON
 * array of objects. Cells that look like integers are emitted as JSON numbers when the column
 * name ends in '#' (the '#' is not printed). */
struct table {
    struct strarr cols;
    struct strarr cells;   /* row-major */
};
void table_init(struct table *t, const char *const *cols);
void table_add(struct table *t, const char *const *row);
void table_print(const struct table *t, int json);
void table_fini(struct table *t);

/* json_str: append s as a JSON string literal. */
void json_str(struct buf *b, const char *s);

/* tool_error: print "coffer SUB: message" to stderr (or {"error": ...} with --json to stdout). */
void tool_error(const struct tool *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Store helpers of the mailbox-level subcommands. */
struct store;
/* tool_store_open: open the store of t->cfg (the database environment joined without
 * recovery, as every service does). 0, or an exit code after printing the error. */
int tool_store_open(struct tool *t, struct store **st_r);
/* tool_progress: a progress line on stderr ("coffer SUB: done/total what"), at most one a
 * second, and always for the last item (done == total). */
void tool_progress(struct tool *t, size_t done, size_t total, const char *what);

/* Quota usage recounted from the index headers (`quota fix`, `check`): every quota root with the bytes
 * and messages of the mailboxes it governs (each mailbox counts under its nearest root). */
struct tool_quota_usage {
    struct strarr roots;      /* sorted */
    long long *bytes, *msgs;  /* parallel to roots */
};
/* tool_quota_recount: fill u (fresh; free with tool_quota_usage_fini). 0 or a CF_E_* error.
 * Blocks for one index header read per mailbox, with a progress line. */
int tool_quota_recount(struct tool *t, struct store *st, struct tool_quota_usage *u);
void tool_quota_usage_fini(struct tool_quota_usage *u);

#endif
