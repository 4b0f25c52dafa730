/* sieved.h: the ManageSieve server's session state, command table and handlers (RFC 5804). */
#ifndef COFFER_SIEVED_SIEVED_H
#define COFFER_SIEVED_SIEVED_H
#include "core/buf.h"
#include "net/worker.h"
#include "msieve-parse.h"
#include <stddef.h>

struct csasl;
struct store;

/* sieved_store: the worker's store handle (opened at the first call in the worker, not in the
 * zygote); NULL when that failed (logged, tried again next time). Not owned. */
struct store *sieved_store(void);

/* Failed AUTHENTICATE attempts after which the connection is closed (BYE). */
#define SIEVED_MAX_AUTH_FAILURES 3

struct client {
    struct worker_session *ws;
    struct stream *stream;          /* ws->stream; not owned */
    const char *end_reason;         /* set when the session is to end */
    struct csasl *sasl;             /* owned; made on first use, a new one after STARTTLS */
    char *user;                     /* the authorized user (whose scripts these are); owned */
    int auth_failures;
};

struct client *client_new(struct worker_session *ws);
void client_free(struct client **c);

/* client_read: one command (or, with p in response mode, one SASL response) into p: lines and
 * literals, with the literal limits of the state: before AUTHENTICATE max_literal_preauth
 * (more: BYE, the session ends), after it sieve_max_script_size (more, up to max_literal:
 * skipped, *too_big_r set and the string left empty, for a NO (QUOTA/MAXSIZE); past
 * max_literal: BYE). too_big_r may be NULL (then any literal over the limit is a BYE).
 * 1 complete; 0 refused with a NO written (the next command can be read); -1 the session
 * ends (c->end_reason set, goodbye written). Blocks on the client. */
int client_read(struct client *c, struct msieve_parser *p, int *too_big_r);

/* client_texts: the replies of worker_next_line / worker_read_end. */
extern const struct line_texts client_texts;

/* client_sasl: the session's SASL exchange (service "sieve"), made on first use with the TLS
 * state of now; NULL when it could not be set up (logged). */
struct csasl *client_sasl(struct client *c);

/* client_string: a string as RFC 5804 section 4 writes it: quoted when it is short and holds
 * no CR, LF or NUL, else a literal {n}. Buffered. */
void client_string(struct client *c, const char *s, size_t len);

/* client_status: a status response: kind ("OK", "NO", "BYE"), the response code in
 * parentheses when code is not NULL (e.g. "QUOTA/MAXSIZE", or "SASL \"...\"" as given), and
 * the formatted human text (as a string) unless fmt is NULL. Buffered. */
void client_status(struct client *c, const char *kind, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* client_capabilities: the capability response lines (RFC 5804 section 1.7), not the OK. */
void client_capabilities(struct client *c);

/* client_error: the NO for a store error r (CF_E_*): NONEXISTENT, ALREADYEXISTS, ACTIVE,
 * QUOTA/MAXSCRIPTS, QUOTA/MAXSIZE, or TRYLATER "internal error" (I/O: logged where it
 * happened). */
void client_error(struct client *c, int r);

enum command_flags {
    CMD_NOAUTH = 1 << 0,            /* only before AUTHENTICATE */
    CMD_AUTH = 1 << 1,              /* only after it */
};

struct command {
    const char *name;
    void (*handler)(struct client *c, const struct msieve_command *cmd);
    unsigned flags;
    size_t min_args, max_args;
    const char *args;               /* the argument types in order: 's' string, 'n' number */
};

/* command_dispatch: look up, check the state and the arguments, run the handler; NO for an
 * unknown command or a wrong state or arguments. */
void command_dispatch(struct client *c, const struct msieve_command *cmd);

/* handlers: cmd-session.c */
void cmd_capability(struct client *c, const struct msieve_command *cmd);
void cmd_logout(struct client *c, const struct msieve_command *cmd);
void cmd_noop(struct client *c, const struct msieve_command *cmd);
void cmd_starttls(struct client *c, const struct msieve_command *cmd);
/* cmd-auth.c */
void cmd_authenticate(struct client *c, const struct msieve_command *cmd);
void cmd_unauthenticate(struct client *c, const struct msieve_command *cmd);
/* cmd-script.c */
void cmd_havespace(struct client *c, const struct msieve_command *cmd);
void cmd_putscript(struct client *c, const struct msieve_command *cmd);
void cmd_checkscript(struct client *c, const struct msieve_command *cmd);
void cmd_listscripts(struct client *c, const struct msieve_command *cmd);
void cmd_setactive(struct client *c, const struct msieve_command *cmd);
void cmd_getscript(struct client *c, const struct msieve_command *cmd);
void cmd_deletescript(struct client *c, const struct msieve_command *cmd);
void cmd_renamescript(struct client *c, const struct msieve_command *cmd);

#endif
