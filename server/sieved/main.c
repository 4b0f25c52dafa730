/* main.c: sieved, the ManageSieve server (RFC 5804): the capability greeting, then the command
 * loop of one session, run by cofferd's prefork worker (lib/net/worker.h). */
#include "sieved.h"
#include "auth/sasl.h"
#include "core/config.h"
#include "core/log.h"
#include "net/stream.h"
#include "net/worker.h"
#include "sieve/sieve.h"
#include "store/store.h"
#include <string.h>

static const struct config *g_cfg;
static struct store *g_store;

/* The store (for the folder names of fileinto warnings) is opened on first use, in the worker:
 * init runs in the zygote, and a Berkeley DB environment must not cross fork. A failed open is
 * logged and tried again at the next call. */
struct store *sieved_store(void)
{
    if (!g_store && g_cfg && store_open(g_cfg, &g_store)) {
        log_err("store_unavailable", "service=sieved");
        g_store = NULL;
    }
    return g_store;
}

static int sieved_init(const struct config *cfg, const struct config_service *svc)
{
    (void)svc;
    g_cfg = cfg;
    /* asked once in the zygote, so every worker shares the answer */
    sieve_extensions();
    return csasl_init(cfg) ? 1 : 0;
}

/* is_script_command: the commands whose literal is a script (too big: QUOTA/MAXSIZE). */
static int is_script_command(const char *name)
{
    return !strcmp(name, "PUTSCRIPT") || !strcmp(name, "CHECKSCRIPT");
}

static void sieved_session(struct worker_session *ws)
{
    struct client *c = client_new(ws);
    stream_set_timeout(c->stream, config_int(ws->cfg, CFG_IDLE_TIMEOUT));
    stream_set_max_line(c->stream, (size_t)config_int(ws->cfg, CFG_MAX_LINE));

    /* section 1.7: the greeting is the capability response */
    client_capabilities(c);
    client_status(c, "OK", NULL, "Coffer ManageSieve server ready");

    struct msieve_parser p;
    msieve_parser_init(&p, 0);
    while (!c->end_reason) {
        int too_big;
        int r = client_read(c, &p, &too_big);
        if (r > 0 && too_big) {
            if (is_script_command(p.cmd.name)) client_error(c, SIEVE_E_MAXSIZE);
            else client_status(c, "NO", NULL, "Literal too big");
        } else if (r > 0) {
            command_dispatch(c, &p.cmd);
        }
        msieve_parser_reset(&p);
    }
    worker_note_end(ws);   /* before "Logout completed" goes out (worker_note_end) */
    stream_flush(c->stream);
    ws->end_reason = c->end_reason;   /* worker_main logs the disconnect line */
    client_free(&c);
}

/* sieved_release: idle after its sessions (worker.h): close the store; sieved_store reopens it */
static void sieved_release(void) { store_close(&g_store); }

static const struct worker_ops sieved_ops = {
    .name = "sieved",
    .init = sieved_init,
    .session = sieved_session,
    .release = sieved_release,   /* idle: the store closes (worker.h) */
    /* H2: over max_preauth_per_ip */
    .too_many = "BYE (TRYLATER) \"Too many connections from your address\"",
};

int main(int argc, char **argv)
{
    int rc = worker_main(argc, argv, &sieved_ops);
    store_close(&g_store);
    csasl_done();
    return rc;
}
