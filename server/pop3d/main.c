/* main.c: pop3d, the POP3 server (RFC 1939, RFC 2449): greeting, then the command loop of one
 * session, run by cofferd's prefork worker (lib/net/worker.h). */
#include "pop3d.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "net/stream.h"
#include "auth/sasl.h"
#include "net/worker.h"
#include "store/quotalock.h"
#include "store/store.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct store *g_store;

static const struct config *g_cfg;
static const struct config_service *g_svc;

/* the host name of greetings (config_load fills in the system's when none is set) */
const char *pop3d_hostname(void) { return g_cfg ? config_str(g_cfg, CFG_HOSTNAME) : "localhost"; }

/* The store is opened on first use, in the worker: init runs in the zygote, and a Berkeley DB
 * environment must not be opened before fork (its handles are per process). A failed open
 * is logged and tried again at the next call. */
struct store *pop3d_store(void)
{
    if (!g_store && g_cfg && store_open(g_cfg, &g_store)) {
        log_err("store_unavailable", "service=%s", log_quote(g_svc->name));
        g_store = NULL;
    }
    return g_store;
}

static int pop3d_init(const struct config *cfg, const struct config_service *svc)
{
    /* the SASL library, shared by the workers forked from the zygote; the store is
     * opened per worker (see pop3d_store) */
    if (csasl_init(cfg)) return 1;
    g_cfg = cfg;
    /* the quota roots a worker is changing go to its connection slot: cofferd recounts them
     * if the worker is killed (store/quotalock.h) */
    quotalock_set_note(worker_note);
    g_svc = svc;
    return 0;
}

static void pop3d_session(struct worker_session *ws)
{
    struct client *c = client_new(ws);
    stream_set_timeout(c->stream, config_int(ws->cfg, CFG_IDLE_TIMEOUT));
    stream_set_max_line(c->stream, (size_t)config_int(ws->cfg, CFG_MAX_LINE));

    /* no RFC 1939 section 7 timestamp: it announces APOP, which is not offered */
    client_reply(c, "+OK Coffer POP3 server ready");

    struct buf line = BUF_INIT;
    while (!c->end_reason) {
        int r = worker_next_line(c->stream, &line, &client_texts, &c->end_reason);
        if (r <= 0) continue;
        if (memchr(line.s, '\0', line.len)) {
            /* L2: a NUL would silently cut the line (a name or password) short */
            client_reply(c, "-ERR NUL is not allowed in a command line");
            continue;
        }
        struct pop3_command cmd;
        pop3_parse_line(buf_cstr(&line), &cmd);
        command_dispatch(c, &cmd);
        free(cmd.name);
        strarr_fini(&cmd.args);
    }
    buf_fini(&line);
    /* the maildrop (QUIT closed it already) and the connection table's slot are given up
     * before the last reply goes out: a client told "signing off" may come straight back */
    maildrop_close(&c->drop);
    worker_note_end(ws);
    stream_flush(c->stream);
    ws->end_reason = c->end_reason;   /* worker_main logs the disconnect line */
    client_free(&c);
}

/* pop3d_release: idle after its sessions (worker.h): close the store; pop3d_store reopens it */
static void pop3d_release(void) { store_close(&g_store); }

static const struct worker_ops pop3d_ops = {
    .name = "pop3d",
    .init = pop3d_init,
    .session = pop3d_session,
    .release = pop3d_release,   /* idle: the store closes (worker.h) */
    /* H2: over max_preauth_per_ip */
    .too_many = "-ERR [SYS/TEMP] Too many connections from your address",
};

int main(int argc, char **argv)
{
    int rc = worker_main(argc, argv, &pop3d_ops);
    store_close(&g_store);
    csasl_done();
    return rc;
}
