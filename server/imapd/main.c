/* main.c: imapd, the IMAP4rev1 server (RFC 3501): greeting, then the command loop of one
 * session, run by cofferd's prefork worker (lib/net/worker.h). */
#include "imapd.h"
#include "selected.h"
#include "notify.h"
#include "hibernate.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "net/stream.h"
#include "auth/sasl.h"
#include "imap/imap-keyfiles.h"
#include "net/worker.h"
#include "store/quotalock.h"
#include "store/store.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct store *g_store;

static const struct config *g_cfg;
static const struct config_service *g_svc;

/* the host name of greetings (config_load fills in the system's when none is set) */
const char *imapd_hostname(void) { return g_cfg ? config_str(g_cfg, CFG_HOSTNAME) : "localhost"; }

/* The store is opened on first use, in the worker: init runs in the zygote, and a Berkeley DB
 * environment must not be opened before fork (its handles are per process). A failed open
 * is logged and tried again at the next call. */
struct store *imapd_store(void)
{
    if (!g_store && g_cfg && store_open(g_cfg, &g_store)) {
        log_err("store_unavailable", "service=%s", log_quote(g_svc->name));
        g_store = NULL;
    }
    return g_store;
}

/* test_store_fault: for test/test_imap_store.py only. With $COFFER_TEST_STORE_FAIL naming a
 * file, the flush of the flag change log (the step that makes a STORE durable) fails with EIO
 * while that file exists: a STORE refused after its records were rewritten and, for a session
 * without CONDSTORE, after its FETCH lines went out (cmd-store.c). Unset: no hook. */
static const char *g_store_fail_file;

static int test_store_fault(const char *point)
{
    if (strcmp(point, "flaglog_sync") || access(g_store_fail_file, F_OK) != 0) return 0;
    return EIO;
}

static int imapd_init(const struct config *cfg, const struct config_service *svc)
{
    g_store_fail_file = getenv("COFFER_TEST_STORE_FAIL");
    if (g_store_fail_file && *g_store_fail_file) mailbox_fault_hook = test_store_fault;
    /* the SASL library, shared by the workers forked from the zygote; the store is
     * opened per worker (see imapd_store) */
    if (csasl_init(cfg)) return 1;
    g_cfg = cfg;
    /* APPEND writes the new messages' SORT keys and header search column records */
    imap_keyfiles_fill_on_append();
    /* the quota roots a worker is changing go to its connection slot: cofferd recounts them
     * if the worker is killed (store/quotalock.h) */
    quotalock_set_note(worker_note);
    g_svc = svc;
    return 0;
}

/* reply_parse_error: BAD for a command the parser rejected, tagged when it read a tag. No
 * handler ran, so it is written at once, with no mailbox updates before it. */
static void reply_parse_error(struct client *c, const struct imap_command *cmd)
{
    const char *code = imap_parser_error_code(c->parser);
    const char *text = imap_parser_error(c->parser);
    /* RFC 9051 section 7.1 (TOOBIG): a message over the limit fails the APPEND with a NO in
     * an IMAP4rev2 session (rev2.c); IMAP4rev1 sessions keep the BAD they always got, except
     * for the case below.
     * APPENDLIMIT (RFC 7889 section 4): a message over the limit in a synchronizing literal
     * is refused before the "+" with NO [TOOBIG]; the command itself was fine. An oversized
     * {N+} stays BAD (RFC 7888 section 5 names BAD [TOOBIG]: the client sent it anyway). */
    const char *kind = cmd->tag && imap_parser_refused_literal(c->parser) && cmd->name &&
                               (!strcmp(cmd->name, "APPEND") || !strcmp(cmd->name, "REPLACE") ||
                                !strcmp(cmd->name, "UID"))
                           ? "NO"
                           : "BAD";
    if (rev2_on(c) && code && !strcmp(code, "TOOBIG") && cmd->name && !strcmp(cmd->name, "APPEND"))
        kind = "NO";
    client_tagged(c, cmd->tag ? cmd->tag : "*", "%s %s%s%s%s", kind, code ? "[" : "",
                  code ? code : "", code ? "] " : "", text);
    client_reply_flush(c);
}

/* session_loop: read and run commands until the session ends, then release it. */
static void session_loop(struct worker_session *ws, struct client *c)
{
    while (!c->end_reason) {
        /* pipelining: answer everything already received before the first flush */
        if (stream_pending(c->stream) == 0 && stream_flush(c->stream) < 0) {
            c->end_reason = "io";
            break;
        }
        if (worker_shutdown) {
            c->end_reason = worker_read_end(c->stream, CF_E_SHUTDOWN, &client_texts);
            break;
        }
        /* NOTIFY (RFC 5465): notifications while the client is quiet */
        if (notify_wait_input(c) < 0) break;
        struct imap_command cmd;
        client_update_limits(c);
        int r = imap_parser_read(c->parser, &cmd);
        switch (r) {
        case 0:
            command_dispatch(c, &cmd);
            break;
        case CF_E_PARSE:
        case CF_E_LIMIT:
            reply_parse_error(c, &cmd);
            if (imap_parser_fatal(c->parser)) {
                const char *code = imap_parser_error_code(c->parser);
                /* before login an oversized {N+} is not read (client_update_limits) */
                if (c->state == CLIENT_NOT_AUTH && code && !strcmp(code, "TOOBIG"))
                    client_untagged(c, "BYE [TOOBIG] Non-synchronizing literal too large");
                else
                    client_untagged(c, "BYE Cannot find the end of that command");
                c->end_reason = "protocol_error";
            }
            break;
        case CF_E_CORRUPT:
            /* only the deflate layer (COMPRESS) fails a read this way: a corrupt compressed
             * stream; our own output still works, so say why (compressed) */
            client_untagged(c, "BYE Corrupt compressed input");
            c->end_reason = "compress_error";
            break;
        default:
            c->end_reason = worker_read_end(c->stream, r, &client_texts);
            break;
        }
    }
    ws->end_reason = c->end_reason;   /* worker_main logs the disconnect line */
    selected_close(&c->sel);          /* the mailbox is the session's, not client.c's */
    if (c->store) store_park_mailbox(c->store, NULL);   /* and so is one kept for reselect */
    notify_free(&c->notify);
    /* the session's places are given up before its last words (BYE, "LOGOUT completed") go
     * out: a client told its session ended may come straight back (worker_note_end) */
    worker_note_end(ws);
    stream_flush(c->stream);
    client_free(&c);
}

static void imapd_session(struct worker_session *ws)
{
    struct client *c = client_new(ws);
    stream_set_timeout(c->stream, config_int(ws->cfg, CFG_IDLE_TIMEOUT));

    struct buf caps = BUF_INIT;
    client_capabilities(c, &caps);
    client_untagged(c, "OK [CAPABILITY %s] %s Coffer IMAP4rev1 server ready", buf_cstr(&caps),
                    imapd_hostname());
    buf_fini(&caps);
    session_loop(ws, c);
}

/* imapd_resume: a session handed back by imap-hibernate (hibernate.h): rebuilt, its IDLE goes
 * on (sending what changed meanwhile), then the command loop as ever. */
static void imapd_resume(struct worker_session *ws, uint32_t kind, const char *state, size_t len)
{
    struct client *c = client_new(ws);
    stream_set_timeout(c->stream, config_int(ws->cfg, CFG_IDLE_TIMEOUT));
    char *tag = NULL;
    int64_t deadline = 0;
    if (hibernate_resume(c, kind, state, len, &tag, &deadline) == 0) {
        client_update_limits(c);
        idle_resume(c, tag, deadline, kind == HIBERNATE_KIND_CHANGE);
    }
    free(tag);
    session_loop(ws, c);
}

static const char *imapd_resume_socket(const struct config *cfg)
{
    return config_str(cfg, CFG_IMAP_HIBERNATE_RESUME_SOCKET);
}

/* imapd_release: idle after its sessions (worker.h): close the store; imapd_store reopens it */
static void imapd_release(void) { store_close(&g_store); }

static const struct worker_ops imapd_ops = {
    .name = "imapd",
    .init = imapd_init,
    .session = imapd_session,
    .release = imapd_release,   /* idle: the store closes (worker.h) */
    /* H2: over max_preauth_per_ip */
    .too_many = "* BYE [UNAVAILABLE] Too many connections from your address",
    .resume_socket = imapd_resume_socket,   /* IDLE hibernation (hibernate.h) */
    .resume = imapd_resume,
};

int main(int argc, char **argv)
{
    int rc = worker_main(argc, argv, &imapd_ops);
    return rc;
}
