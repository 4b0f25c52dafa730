/* lmtpd.h: the LMTP server's session state, command table and command handlers. */
#ifndef COFFER_LMTPD_LMTPD_H
#define COFFER_LMTPD_LMTPD_H
#include "core/buf.h"
#include "net/worker.h"
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct store;

/* One accepted recipient (RCPT TO). */
struct rcpt {
    char *addr;             /* the address as given, without the angle brackets */
    char *user;             /* the user it belongs to, NULL for a shared mailbox */
    char *detail;           /* "folder" of user+folder, or NULL */
    char *mailbox;          /* internal name of the default target (INBOX, folder, shared) */
    int need_inbox;         /* user known to SASL without an INBOX yet: create it first */
};

#define LMTP_MAX_RCPTS 1000 /* RFC 5321 section 4.5.3.1.8 asks for at least 100 */

struct client {
    struct worker_session *ws;
    struct stream *stream;          /* ws->stream; not owned */
    int greeted;                    /* LHLO was accepted (reset by STARTTLS, RFC 3207 4.2) */
    char *lhlo_name;                /* what the client called itself (owned) */
    const char *end_reason;         /* set when the session is to end */
    struct timespec started;
    /* the transaction (RFC 5321 section 3.3), cleared by client_reset */
    char *mail_from;                /* reverse path without <>, "" for the null sender; NULL
                                     * before MAIL */
    long long declared_size;        /* SIZE= of MAIL (RFC 1870), 0 when not given */
    struct rcpt *rcpts;
    size_t nrcpts, rcpts_alloc;
    int spool_fd;                   /* BDAT: the message so far (-1 when none) */
    uint64_t spool_size;            /* BDAT: message bytes received, headers not counted */
    int bdat_failed;                /* BDAT: a chunk was refused (too big, local trouble) */
    const char *bdat_error;         /* BDAT: the reply for every recipient at LAST */
    /* AUTH (cmd-auth.c, RFC 4954) */
    struct csasl *sasl;             /* owned; made on first use */
    int sasl_ssf;                   /* the TLS strength sasl was made for */
    char *auth_user;                /* the authenticated administrator, NULL before AUTH */
    int auth_failures;              /* failed AUTH attempts (LMTP_MAX_AUTH_FAILURES ends it) */
};

/* A command line: the verb in upper case and everything after the first space. */
struct lmtp_command {
    char *verb;
    const char *args;               /* "" when there are none */
};

struct client *client_new(struct worker_session *ws);

/* cmd-auth.c: AUTH (RFC 4954). auth_lhlo_line adds the "AUTH mechanisms" LHLO line when
 * there is something to offer; auth_required is 1 when MAIL must wait for AUTH
 * (lmtp_require_auth, TCP connection, not yet authenticated). */
struct strarr;
void auth_lhlo_line(struct client *c, struct strarr *lines);
int auth_required(const struct client *c);
void cmd_auth(struct client *c, const struct lmtp_command *cmd);
void client_free(struct client **c);

/* client_texts: the goodbyes (and over-long line reply) of the session, for worker_next_line
 * and worker_read_end. */
extern const struct line_texts client_texts;

/* client_reply: one reply line plus CRLF, buffered until the session loop flushes; control
 * characters in the formatted text are sent as '?' (L1). */
int client_reply(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* client_reset: forget the current transaction (RSET, LHLO, STARTTLS). */
void client_reset(struct client *c);

const char *lmtpd_hostname(void);
/* lmtpd_store: the worker's store handle, opened at the first call in the worker process (not
 * in init, which runs in the zygote before fork); NULL when it could not be opened (logged;
 * tried again at the next call; deliveries then get 451 4.3.0). Not owned. */
struct store *lmtpd_store(void);

struct command {
    const char *verb;
    void (*handler)(struct client *c, const struct lmtp_command *cmd);
};

const struct command *command_find(const char *verb);

/* command_dispatch: run the handler; "500 5.5.2 Unknown command" otherwise. */
void command_dispatch(struct client *c, const struct lmtp_command *cmd);

void cmd_lhlo(struct client *c, const struct lmtp_command *cmd);     /* cmd-session.c */
void cmd_helo(struct client *c, const struct lmtp_command *cmd);
void cmd_noop(struct client *c, const struct lmtp_command *cmd);
void cmd_rset(struct client *c, const struct lmtp_command *cmd);
void cmd_quit(struct client *c, const struct lmtp_command *cmd);
void cmd_starttls(struct client *c, const struct lmtp_command *cmd); /* cmd-starttls.c */
void cmd_mail(struct client *c, const struct lmtp_command *cmd);     /* cmd-mail.c */
void cmd_rcpt(struct client *c, const struct lmtp_command *cmd);
void cmd_data(struct client *c, const struct lmtp_command *cmd);     /* cmd-data.c */
void cmd_bdat(struct client *c, const struct lmtp_command *cmd);

/* acl_grants_anyone: whether the ACL text ("ident\trights\t" pairs, mboxlist.h) gives right
 * to a sender who is not logged in: "anyone" or "anonymous" entries, minus negative ones
 * (RFC 4314 section 2; store/acl.h acl_text_rights). 1 or 0. (cmd-mail.c) */
int acl_grants_anyone(const char *acl, char right);

/* spool_new: an unlinked temporary file in configdir/tmp holding the Return-Path and Received
 * header fields of the current transaction. The fd, or CF_E_IO (logged). (cmd-data.c) */
int spool_new(struct client *c);

/* lmtp_deliver: file the message in fd (complete, headers added) for every recipient and send
 * one reply per recipient, in RCPT order (RFC 2033 section 4.2). Runs Sieve. (delivery.c) */
void lmtp_deliver(struct client *c, int fd);

/* lmtp_deliver_data: the same for a message held in memory, data[0,len) (DATA keeps one that
 * fits its write buffer there instead of spooling it to a file). Blocks on the store. */
void lmtp_deliver_data(struct client *c, const char *data, size_t len);

#endif
