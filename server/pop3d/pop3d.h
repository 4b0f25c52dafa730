/* pop3d.h: the POP3 server's session state, command table and command handlers. */
#ifndef COFFER_POP3D_POP3D_H
#define COFFER_POP3D_POP3D_H
#include "core/buf.h"
#include "core/strarr.h"
#include "net/worker.h"
#include "pop3-parse.h"   /* struct pop3_command */
#include <stdint.h>
#include <time.h>

/* RFC 1939 section 3: session states. */
enum client_state {
    CLIENT_AUTHORIZATION,
    CLIENT_TRANSACTION,
    CLIENT_UPDATE,
};

struct csasl;
struct store;
struct maildrop;

/* Failed USER/PASS, AUTH or APOP attempts after which the connection is closed. */
#define POP3_MAX_AUTH_FAILURES 3

struct client {
    struct worker_session *ws;
    struct stream *stream;          /* ws->stream; not owned */
    enum client_state state;
    const char *end_reason;         /* set when the session is to end */
    struct timespec started;

    /* authorization (cmd-auth.c) */
    struct csasl *sasl;             /* owned; made on first use */
    char *user_arg;                 /* the name given with USER, waiting for PASS; owned */
    char *user;                     /* the logged-in user; owned */
    int auth_failures;

    /* transaction state (maildrop.c): the INBOX as it was at login; NULL before */
    struct maildrop *drop;
};

struct client *client_new(struct worker_session *ws);

/* client_free: releases the maildrop without expunging (a session that ends without QUIT
 * deletes nothing, RFC 1939 section 6), the SASL exchange and the client. */
void client_free(struct client **c);

/* client_texts: the goodbyes (and over-long line reply) of the session, for worker_next_line
 * and worker_read_end. */
extern const struct line_texts client_texts;

/* client_reply: one reply line plus CRLF, buffered until the session loop flushes; control
 * characters in the formatted text are sent as '?' (worker_vreply, L1). */
int client_reply(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* client_sasl: the session's SASL exchange, made on first use with service "pop" and the TLS
 * state of now (a new one after STLS). NULL when SASL could not be set up (logged). */
struct csasl *client_sasl(struct client *c);

const char *pop3d_hostname(void);

/* pop3d_store: the worker's store handle, opened at the first call in the worker process (not
 * in init, which runs in the zygote before fork); NULL if that failed (logged; tried again at
 * the next call). Not owned. */
struct store *pop3d_store(void);

enum command_flags {
    CMD_AUTHORIZATION = 1 << 0,     /* only before login (RFC 1939 section 4) */
    CMD_TRANSACTION = 1 << 1,       /* only after login (RFC 1939 section 5) */
};

struct command {
    const char *name;
    void (*handler)(struct client *c, const struct pop3_command *cmd);
    unsigned flags;
};

const struct command *command_find(const char *name);

/* command_dispatch: check the state, run the handler; "-ERR Unknown command" otherwise. */
void command_dispatch(struct client *c, const struct pop3_command *cmd);

/* ---- maildrop.c: the locked, snapshotted INBOX of a logged-in session ---- */

/* maildrop_open: lock user's maildrop (flock on configdir/lock/pop3/USER, non-blocking),
 * make sure the INBOX exists, open it and take the list of messages as of now. 0,
 * CF_E_LOCKED (another POP3 session holds it), CF_E_PERM (the user lacks the RFC 4314 'r'
 * right on their INBOX: store/acl.h), or another error (logged). */
int maildrop_open(struct store *st, const struct config *cfg, const char *user,
                  struct maildrop **out);

/* maildrop_close: apply pending \Seen flags, unlock and free. Expunges nothing. */
void maildrop_close(struct maildrop **d);

/* maildrop_may: whether the user had right (an RFC 4314 letter) on the INBOX at login: DELE
 * needs 't' and 'e' (the marks are expunged at QUIT), RETR sets \Seen only with 's'. */
int maildrop_may(const struct maildrop *d, char right);

/* Message numbers are 1..maildrop_count(), fixed for the session (RFC 1939 section 5). */
uint32_t maildrop_count(const struct maildrop *d);

/* maildrop_get: 1 and the uid and size of message n when n exists and is not marked deleted;
 * 0 when n is out of range; -1 when it is marked deleted. */
int maildrop_get(const struct maildrop *d, uint32_t n, uint32_t *uid_r, uint64_t *size_r);

/* maildrop_stat: number and total size of the messages not marked deleted. */
void maildrop_stat(const struct maildrop *d, uint32_t *count_r, uint64_t *octets_r);

uint32_t maildrop_uidvalidity(const struct maildrop *d);

/* maildrop_delete / maildrop_reset: mark message n (which maildrop_get found) deleted; undo all
 * marks (RSET). Nothing is written until maildrop_commit. */
void maildrop_delete(struct maildrop *d, uint32_t n);
void maildrop_reset(struct maildrop *d);

/* maildrop_send: write the line ok (CRLF added), then message n as a dot-stuffed multi-line
 * body ending in ".\r\n" (RFC 1939 section 3): the whole message (lines < 0), or the header,
 * the blank line and the first `lines` body lines (TOP). Bytes go out as stored: a message of
 * 64 KiB or more to a plaintext client is mapped, and sent with sendfile when no line needs
 * a dot and it ends in a line end; TLS and smaller messages are read and written. Notes \Seen
 * (written when the session ends) when seen is set. 0; CF_E_NOTFOUND (the message was
 * expunged meanwhile) or CF_E_AGAIN (its file could not be read; logged), and then nothing
 * was written; or a stream error. */
int maildrop_send(struct maildrop *d, struct stream *s, uint32_t n, long lines, int seen,
                  const char *ok);

/* maildrop_commit: the UPDATE state (RFC 1939 section 6): \Deleted and expunge exactly the
 * messages marked deleted. *expunged_r gets how many went. 0 or a store error (logged). */
int maildrop_commit(struct maildrop *d, uint32_t *expunged_r);

/* ---- handlers ---- */
void cmd_capa(struct client *c, const struct pop3_command *cmd);     /* cmd-session.c */
void cmd_noop(struct client *c, const struct pop3_command *cmd);
void cmd_quit(struct client *c, const struct pop3_command *cmd);
void cmd_stls(struct client *c, const struct pop3_command *cmd);     /* cmd-stls.c */
void cmd_user(struct client *c, const struct pop3_command *cmd);     /* cmd-auth.c */
void cmd_pass(struct client *c, const struct pop3_command *cmd);
void cmd_auth(struct client *c, const struct pop3_command *cmd);
void cmd_apop(struct client *c, const struct pop3_command *cmd);
void cmd_stat(struct client *c, const struct pop3_command *cmd);     /* cmd-mail.c */
void cmd_list(struct client *c, const struct pop3_command *cmd);
void cmd_uidl(struct client *c, const struct pop3_command *cmd);
void cmd_retr(struct client *c, const struct pop3_command *cmd);
void cmd_top(struct client *c, const struct pop3_command *cmd);
void cmd_dele(struct client *c, const struct pop3_command *cmd);
void cmd_rset(struct client *c, const struct pop3_command *cmd);

#endif
