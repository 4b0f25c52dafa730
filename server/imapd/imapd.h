/* imapd.h: the IMAP server's session state, command table and command handlers. */
#ifndef COFFER_IMAPD_IMAPD_H
#define COFFER_IMAPD_IMAPD_H
#include "core/buf.h"
#include "imap/imap-parser.h"
#include "net/worker.h"
#include <time.h>

/* RFC 3501 section 3: connection states. */
enum client_state {
    CLIENT_NOT_AUTH,
    CLIENT_AUTH,
    CLIENT_SELECTED,
    CLIENT_LOGOUT,
};

struct store;
struct csasl;
struct selected;
struct notify;

/* How a command completed, as client_tagged recorded it. */
enum client_done {
    CLIENT_DONE_NONE,               /* no tagged response yet */
    CLIENT_DONE_OK,
    CLIENT_DONE_NO,
    CLIENT_DONE_BAD,
};

/* A command's tagged response, recorded by client_tagged and written by the dispatcher after
 * the untagged updates the command allows (RFC 3501 section 7: they come before the tagged
 * response). */
struct client_reply {
    enum client_done done;
    struct buf line;                /* "tag OK text\r\n" */
    struct buf after;               /* untagged responses the handler wrote after it (a BYE) */
};

struct client {
    struct worker_session *ws;
    struct stream *stream;          /* ws->stream; not owned */
    struct imap_parser *parser;     /* owned */
    enum client_state state;
    const char *end_reason;         /* set when the session is to end: "logout", "eof", ... */
    struct timespec started;

    /* authentication (cmd-auth.c) */
    struct csasl *sasl;             /* owned; NULL until first needed */
    char *user;                     /* the authorized user once authenticated, else NULL */
    char *authid;                   /* the authenticated identity (differs for admin proxy) */
    int is_admin;                   /* user is named in `admins` */
    int auth_failures;              /* failed LOGIN/AUTHENTICATE attempts on this connection */
    int sasl_ssf;                   /* the TLS strength sasl was made with (remade after STARTTLS) */
    int parser_limits_auth;         /* the parser has the after-login limits (client.c) */

    /* the store, opened once per worker process (imapd_store()); not owned */
    struct store *store;

    /* selected state (cmd-select.c and friends): NULL when no mailbox is selected */
    struct selected *sel;
    /* the CMD_* flags of the command being run (command_dispatch sets them, cmd_uid those of
     * its sub-command; 0 between commands) */
    unsigned cmd_flags;
    /* the running command's tagged response until command_dispatch writes it */
    struct client_reply reply;

    /* extensions the client turned on with ENABLE (RFC 5161), CLIENT_ENABLED_* bits */
    unsigned enabled;

    /* NOTIFY SET state (notify.c), NULL without it; freed by the session loop */
    struct notify *notify;
};

/* CLIENT_ENABLED_* bits of c->enabled (condstore.c: RFC 7162) */
#define CLIENT_ENABLED_CONDSTORE 0x1u   /* ENABLE CONDSTORE or a CONDSTORE-enabling command */
#define CLIENT_ENABLED_QRESYNC 0x2u     /* ENABLE QRESYNC (implies CONDSTORE) */
/* rev2.c: RFC 9051 section 6.3.1, RFC 6855 section 3 */
#define CLIENT_ENABLED_IMAP4REV2 0x4u   /* ENABLE IMAP4rev2: UTF-8 names, no \Recent, ESEARCH */
#define CLIENT_ENABLED_UTF8ACCEPT 0x8u  /* ENABLE UTF8=ACCEPT: UTF-8 names, UTF8 APPEND item */

/* condstore_enable (condstore.c): turn on CLIENT_ENABLED_* bits; QRESYNC brings CONDSTORE
 * (RFC 7162 section 3.2.3). A CONDSTORE-enabling command (section 3.1) calls it with
 * CLIENT_ENABLED_CONDSTORE. */
void condstore_enable(struct client *c, unsigned bits);

/* condstore_status_highestmodseq (condstore.c): the HIGHESTMODSEQ c's user sees for mailbox
 * name (internal) with uniqueid whose index says highestmodseq: the same value a SELECT would
 * show (for STATUS HIGHESTMODSEQ, RFC 7162 section 3.1.7): in a shared mailbox with per-user
 * \Seen it is scaled and includes the user's own \Seen changes (imapd(8)). Blocks on the seen
 * database. */
uint64_t condstore_status_highestmodseq(struct client *c, const char *name, const char *uniqueid,
                                        uint64_t highestmodseq);

/* client_new: the state of one connection; client_free releases it (not the stream, and not
 * the selected mailbox: the session loop closes that first, so client.c needs no store). */
struct client *client_new(struct worker_session *ws);
void client_free(struct client **c);

/* client_update_limits: give the parser the limits of the current state (smaller before
 * login: max_literal_preauth, max_command_preauth, max_args_preauth); called before each
 * command is read. */
void client_update_limits(struct client *c);

/* client_texts: the untagged BYE for a timeout and a shutdown, for worker_read_end (too_long
 * is NULL: the IMAP parser answers over-long lines itself). */
extern const struct line_texts client_texts;

/* client_capabilities: append the capability list for the current state to out, e.g.
 * "IMAP4rev1 LITERAL+ STARTTLS LOGINDISABLED" (RFC 3501 section 7.2.1). */
void client_capabilities(const struct client *c, struct buf *out);

/* client_printable: s[0,len) fit to quote in a response text: at most outlen - 1 bytes,
 * every byte outside printable ASCII (CR, LF, controls, 8-bit) as '?'; returns out. */
const char *client_printable(const char *s, size_t len, char *out, size_t outlen);

/* client_tagged: record the tagged response ("tag OK ...", "tag NO ...", "tag BAD ...") of
 * the running command in c->reply; command_dispatch writes it after the untagged updates
 * (client_reply_take / client_reply_write). Control characters in the text become '?' (a
 * tagged response is one line; review L1). A second call in one command writes the first
 * response out before recording (the old order). Never blocks, does no mailbox I/O. 0. */
int client_tagged(struct client *c, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* client_untagged: write "* text" (buffered until the session loop flushes); the text may
 * hold literals. Written after a recorded tagged response (a BYE after a failed login), it is
 * held in c->reply.after and follows the tagged line. Returns the stream's result. */
int client_untagged(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* client_untagged_lines: client_untagged for n bytes of complete untagged lines ("* ...\r\n"
 * each) formatted by the caller: many responses (STORE's FETCHes) in one write. */
int client_untagged_lines(struct client *c, const char *p, size_t n);

/* client_untagged_nowait: client_untagged_lines for what the socket takes right now, without
 * waiting (stream_write_nowait): the bytes of p sent (the caller writes the rest later), 0
 * when nothing can go out at once (a TLS or compressed stream, a full socket, lines held for
 * after a tagged response), or the stream's error. */
long long client_untagged_nowait(struct client *c, const char *p, size_t n);

/* client_untagged_push: send what is buffered now rather than when the session loop flushes
 * (the first of many responses, so that the client starts reading them while the rest are
 * made). Nothing when the lines are held for after a tagged response. May block (the
 * stream's write timeout). Returns the stream's result. */
int client_untagged_push(struct client *c);

/* client_reply_take: move the recorded response out of c into *out (c->reply is empty again,
 * so what is written next goes straight to the stream). out is the caller's; written and
 * released with client_reply_write. */
void client_reply_take(struct client *c, struct client_reply *out);

/* client_reply_write: write r's tagged line, then what was held after it, and release r.
 * Returns the stream's result. */
int client_reply_write(struct client *c, struct client_reply *r);

/* client_reply_flush: write the recorded tagged response now (take + write), for completions
 * that must be on the wire before the command goes on (STARTTLS before the handshake) and for
 * parser errors, which no handler runs for. No-op when nothing was recorded. */
int client_reply_flush(struct client *c);

/* imapd_store: the process-wide store handle, opened at the first call in the worker process
 * (not in init, which runs in the zygote before fork); NULL if that failed (logged; tried
 * again at the next call): commands that need it answer "NO [UNAVAILABLE]". Not owned. */
struct store *imapd_store(void);

/* The hostname used in greetings: config hostname, else the system's. */
const char *imapd_hostname(void);

/* ---- commands.c: the one table of commands ---- */

enum command_flags {
    CMD_NEEDS_AUTH = 1 << 0,        /* authenticated or selected state (RFC 3501 section 6.3) */
    CMD_NEEDS_SELECTED = 1 << 1,    /* selected state (RFC 3501 section 6.4) */
    CMD_NOT_AUTH_ONLY = 1 << 2,     /* not authenticated state only (RFC 3501 section 6.2) */
    CMD_UID = 1 << 3,               /* may follow UID (RFC 3501 section 6.4.8) */
    /* message sequence numbers in its arguments or responses: no `* N EXPUNGE` before its
     * tagged response (RFC 3501 section 7.4.1, RFC 9051 section 7.5.1: not during FETCH, STORE
     * or SEARCH); its UID form is a different command and may have them (cmd_uid drops it) */
    CMD_USES_SEQS = 1 << 4,
    /* no mailbox updates before its tagged response (LOGOUT: nothing after BYE but the OK;
     * SELECT and EXAMINE: the open brought the view up to date under the lock and the rights
     * were just read, so a sync would take the lock and look the entry up again for changes
     * of the last microseconds, which the next command's sync reports as well) */
    CMD_NO_SYNC = 1 << 5,
    /* leaves the selected mailbox (SELECT, EXAMINE, UNSELECT, LOGOUT): runs without the rights
     * check of the selected mailbox (review L3) */
    CMD_LEAVES_MAILBOX = 1 << 6,
    /* set by cmd_uid on the sub-command's flags: untagged FETCH updates carry UID (RFC 3501
     * section 6.4.8) */
    CMD_UID_FORM = 1 << 7,
};

/* command_is_uid: 1 when a handler runs as UID FETCH/STORE/COPY/MOVE/SEARCH/EXPUNGE: the UID
 * dispatcher (cmd-uid.c) calls the handler with name "UID FETCH" etc. and the arguments after
 * the sub-command name. */
static inline int command_is_uid(const struct imap_command *cmd)
{
    return cmd->name[0] == 'U' && cmd->name[1] == 'I' && cmd->name[2] == 'D' && cmd->name[3] == ' ';
}

struct command {
    const char *name;               /* upper case */
    void (*handler)(struct client *c, const struct imap_command *cmd);
    unsigned flags;
};

/* command_find: the table entry for name (upper case), or NULL. */
const struct command *command_find(const char *name);

/* command_dispatch: run one parsed command: check the state it needs ("BAD Unknown command
 * NAME" for names not in the table), run its handler, which records its tagged response with
 * client_tagged, then complete it: after an OK or NO of a command without CMD_NO_SYNC in
 * selected state, sync the mailbox and write the untagged updates its flags allow (no EXPUNGE
 * for CMD_USES_SEQS, UID in FETCH for CMD_UID_FORM); then write the tagged response. A BAD
 * gets no updates (the command never ran). When the mailbox can no longer be kept in view
 * (deleted, 'r' revoked, damaged) it says BYE first and ends the session. Blocks on the
 * mailbox. */
void command_dispatch(struct client *c, const struct imap_command *cmd);

/* command_finish: complete the running command (flags in c->cmd_flags): the untagged updates
 * its flags allow, then its recorded tagged response (the second half of command_dispatch;
 * also for an IDLE resumed after hibernation). Blocks on the mailbox. */
void command_finish(struct client *c);

/* idle_resume (cmd-idle.c): go on with the IDLE of tag, handed back by imap-hibernate, until
 * DONE or deadline (CLOCK_MONOTONIC ms), first sending what changed meanwhile, and complete it
 * as command_dispatch would. soon: may go back to imap-hibernate as soon as the client has
 * been told (woken by a mailbox change, not by the client). */
void idle_resume(struct client *c, const char *tag, int64_t deadline, int soon);

/* ---- handlers, one file per family ---- */
void cmd_capability(struct client *c, const struct imap_command *cmd);   /* cmd-any.c */
void cmd_noop(struct client *c, const struct imap_command *cmd);
void cmd_logout(struct client *c, const struct imap_command *cmd);
void cmd_starttls(struct client *c, const struct imap_command *cmd);     /* cmd-starttls.c */
void cmd_compress(struct client *c, const struct imap_command *cmd);     /* cmd-compress.c */
void cmd_select(struct client *c, const struct imap_command *cmd);       /* cmd-select.c */
void cmd_examine(struct client *c, const struct imap_command *cmd);
void cmd_close(struct client *c, const struct imap_command *cmd);
void cmd_unselect(struct client *c, const struct imap_command *cmd);
void cmd_check(struct client *c, const struct imap_command *cmd);
void cmd_fetch(struct client *c, const struct imap_command *cmd);        /* cmd-fetch.c */
void cmd_store(struct client *c, const struct imap_command *cmd);        /* cmd-store.c */
void cmd_copy(struct client *c, const struct imap_command *cmd);         /* cmd-copy.c */
void cmd_move(struct client *c, const struct imap_command *cmd);
void cmd_expunge(struct client *c, const struct imap_command *cmd);      /* cmd-expunge.c */
void cmd_idle(struct client *c, const struct imap_command *cmd);         /* cmd-idle.c */
void cmd_uid(struct client *c, const struct imap_command *cmd);          /* cmd-uid.c */
void cmd_search(struct client *c, const struct imap_command *cmd);       /* cmd-search.c */
void cmd_cancelupdate(struct client *c, const struct imap_command *cmd); /* search-context.c */
/* search_run_selected: the message numbers of the selected view that prog matches, in
 * order, in *msgnos_r (malloc'ed, NULL when none; the caller frees) and *n_r; messages
 * expunged meanwhile do not match. 0 or a CF_E_* code. Blocks on the mailbox files. For
 * SORT and THREAD (cmd-sort.c). */
struct search_program;
int search_run_selected(struct selected *sel, struct search_program *prog, uint32_t **msgnos_r,
                        size_t *n_r);
void cmd_sort(struct client *c, const struct imap_command *cmd);         /* cmd-sort.c */
void cmd_thread(struct client *c, const struct imap_command *cmd);
void cmd_login(struct client *c, const struct imap_command *cmd);        /* cmd-auth.c */
void cmd_authenticate(struct client *c, const struct imap_command *cmd);
void cmd_unauthenticate(struct client *c, const struct imap_command *cmd); /* RFC 8437 */
void cmd_create(struct client *c, const struct imap_command *cmd);       /* cmd-mailbox.c */
void cmd_delete(struct client *c, const struct imap_command *cmd);
void cmd_rename(struct client *c, const struct imap_command *cmd);
void cmd_subscribe(struct client *c, const struct imap_command *cmd);
void cmd_unsubscribe(struct client *c, const struct imap_command *cmd);
void cmd_list(struct client *c, const struct imap_command *cmd);
void cmd_lsub(struct client *c, const struct imap_command *cmd);
void cmd_status(struct client *c, const struct imap_command *cmd);
void cmd_namespace(struct client *c, const struct imap_command *cmd);
void cmd_append(struct client *c, const struct imap_command *cmd);       /* cmd-append.c */
void cmd_replace(struct client *c, const struct imap_command *cmd);      /* RFC 8508 */
void cmd_setacl(struct client *c, const struct imap_command *cmd);       /* cmd-acl.c */
void cmd_deleteacl(struct client *c, const struct imap_command *cmd);
void cmd_getacl(struct client *c, const struct imap_command *cmd);
void cmd_listrights(struct client *c, const struct imap_command *cmd);
void cmd_myrights(struct client *c, const struct imap_command *cmd);
void cmd_getquota(struct client *c, const struct imap_command *cmd);     /* cmd-quota.c */
void cmd_getquotaroot(struct client *c, const struct imap_command *cmd);
void cmd_setquota(struct client *c, const struct imap_command *cmd);
void cmd_id(struct client *c, const struct imap_command *cmd);           /* cmd-misc.c */
void cmd_enable(struct client *c, const struct imap_command *cmd);
void cmd_genurlauth(struct client *c, const struct imap_command *cmd);   /* cmd-urlauth.c */
void cmd_resetkey(struct client *c, const struct imap_command *cmd);
void cmd_urlfetch(struct client *c, const struct imap_command *cmd);
void cmd_getmetadata(struct client *c, const struct imap_command *cmd);   /* cmd-metadata.c */
void cmd_setmetadata(struct client *c, const struct imap_command *cmd);
void cmd_notify(struct client *c, const struct imap_command *cmd);       /* notify.c */

/* auth_capabilities (cmd-auth.c): append the authentication capabilities of the current state
 * (" AUTH=PLAIN AUTH=SCRAM-SHA-256 ... SASL-IR" before login, nothing after). */
void auth_capabilities(const struct client *c, struct buf *out);

/* auth_session_end (cmd-auth.c): free what authentication keeps in c (client_free calls it). */
void auth_session_end(struct client *c);

/* ---- reply.c: shared by the command files (which never call each other) ---- */

/* imapd_error_reply: the reply text for store error r: "NO [CODE] text" with the RFC 5530
 * code (NONEXISTENT, ALREADYEXISTS, CANNOT, NOPERM, OVERQUOTA, LIMIT, INUSE, UNAVAILABLE,
 * CORRUPTION; SERVERBUG for the rest). Static. */
const char *imapd_error_reply(int r);

/* imapd_reply_error: client_tagged(tag, imapd_error_reply(r)): the one mapping every command
 * uses for a store error (the store already logged the detail). */
void imapd_reply_error(struct client *c, const char *tag, int r);

/* imapd_quota_warn: at SELECT of internal name: when its quota root uses at least
 * quota_warn_percent of a limit, "* NO [ALERT] Mailbox is N% full" and a log line. Blocks on
 * the quota database. */
void imapd_quota_warn(struct client *c, const char *name);

/* imapd_mailbox_name: the internal name (into out) of a mailbox name as the
 * client sent it (modified UTF-7, or UTF-8 after ENABLE IMAP4rev2 / UTF8=ACCEPT: rev2.c;
 * c->user's view, INBOX in any case). 0, or a negative code
 * after which the command has been answered with tag: NO [NONEXISTENT] for a namespace root
 * or a name that cannot exist, NO [CANNOT] for an invalid name. */
int imapd_mailbox_name(struct client *c, const char *tag, const char *imapname, struct buf *out);

/* ---- rev2.c: IMAP4rev2 (RFC 9051) and UTF8=ACCEPT (RFC 6855) per session ---- */

/* rev2_on: 1 when the session enabled IMAP4rev2. */
static inline int rev2_on(const struct client *c)
{
    return (c->enabled & CLIENT_ENABLED_IMAP4REV2) != 0;
}

/* rev2_utf8_names: 1 when mailbox names on the wire are UTF-8 (IMAP4rev2 or UTF8=ACCEPT
 * enabled), 0 when they are modified UTF-7 (RFC 3501 section 5.1.3). */
int rev2_utf8_names(const struct client *c);

/* rev2_name_from_wire: the internal name (into out, reset first) of a mailbox name as the
 * client sent it, in the session's form (mboxname_from_imap or, with UTF-8 names,
 * mboxname_from_external; U+2028 and U+2029 refused). Its codes: 0, CF_E_PARSE, CF_E_NOTFOUND,
 * CF_E_PERM. */
int rev2_name_from_wire(const struct client *c, const char *wire, struct buf *out);

/* rev2_name_to_wire: internal name as the session shows it (into out, reset first; not yet
 * quoted). 0 or CF_E_PARSE. */
int rev2_name_to_wire(const struct client *c, const char *name, struct buf *out);

/* rev2_ext_to_wire / rev2_pattern_from_wire: a name or LIST pattern in the user's view between
 * UTF-8 and the session's wire form, appended to out. 0 or CF_E_PARSE (not valid in the
 * source form). */
int rev2_ext_to_wire(const struct client *c, const char *extname, struct buf *out);
int rev2_pattern_from_wire(const struct client *c, const char *wire, struct buf *out);

/* rev2_enable: ENABLE of IMAP4rev2 or UTF8=ACCEPT (atom a): turns it on and appends " NAME"
 * to list when it was off. Returns its CLIENT_ENABLED_* bit, 0 for other names. */
unsigned rev2_enable(struct client *c, const struct imap_arg *a, struct buf *list);

/* rev2_status_items_ok: 0 when a rev2 session asked STATUS for RECENT (gone from RFC 9051's
 * status-att), else 1. items are IMAP_STATUS_* values (imap/imap-listopts.h). */
int rev2_status_items_ok(const struct client *c, const unsigned *items, size_t n);

/* rev2_string_append: a mailbox name (as rev2_name_to_wire gives it, or as the client sent
 * it) as an IMAP string: with UTF-8 names, valid UTF-8 without controls as a quoted string
 * (RFC 9051 QUOTED-CHAR, RFC 6855 section 3); else as imap_string_append does (a literal for
 * 8-bit bytes). */
void rev2_string_append(const struct client *c, const char *s, size_t len, struct buf *out);

/* rev2_select_list: RFC 9051 section 6.3.2: the untagged LIST response naming the mailbox
 * just selected (internal name), which SELECT and EXAMINE send to a rev2 session. */
void rev2_select_list(struct client *c, const char *name);

#endif
