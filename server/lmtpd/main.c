/* main.c: lmtpd, the LMTP server (RFC 2033): greeting, then the command loop of one session,
 * run by cofferd's prefork worker (lib/net/worker.h). */
#include "lmtpd.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "net/stream.h"
#include "auth/sasl.h"
#include "imap/imap-keyfiles.h"
#include "store/mailbox.h"
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
const char *lmtpd_hostname(void) { return g_cfg ? config_str(g_cfg, CFG_HOSTNAME) : "localhost"; }

/* The store is opened on first use, in the worker: init runs in the zygote, and a Berkeley DB
 * environment must not be opened before fork (its handles are per process). A failed open
 * is logged and tried again at the next call. */
struct store *lmtpd_store(void)
{
    if (!g_store && g_cfg && store_open(g_cfg, &g_store)) {
        log_err("store_unavailable", "service=%s", log_quote(g_svc->name));
        g_store = NULL;
    }
    return g_store;
}

static int lmtpd_init(const struct config *cfg, const struct config_service *svc)
{
    /* the SASL library (which users exist), shared by the workers forked from the zygote;
     * the store (the Berkeley DB environment) is opened per worker (see lmtpd_store) */
    if (csasl_init(cfg)) return 1;
    g_cfg = cfg;
    /* deliveries write the new messages' SORT keys and header search column records, so the
     * first SORT or header SEARCH after a batch does not encode the batch */
    imap_keyfiles_fill_on_append();
    /* the quota roots a worker is changing go to its connection slot: cofferd recounts them
     * if the worker is killed (store/quotalock.h) */
    quotalock_set_note(worker_note);
    g_svc = svc;
    return 0;
}

static void lmtpd_session(struct worker_session *ws)
{
    struct client *c = client_new(ws);
    const struct mailbox_sync_stats s0 = mailbox_sync_stats;
    stream_set_timeout(c->stream, config_int(ws->cfg, CFG_IDLE_TIMEOUT));
    stream_set_max_line(c->stream, (size_t)config_int(ws->cfg, CFG_MAX_LINE));
    client_reply(c, "220 %s LMTP Coffer ready", lmtpd_hostname());

    struct buf line = BUF_INIT;
    while (!c->end_reason) {
        int r = worker_next_line(c->stream, &line, &client_texts, &c->end_reason);
        if (r <= 0) continue;
        if (memchr(line.s, '\0', line.len)) {
            /* L2: a NUL would silently cut the command (an address) short */
            client_reply(c, "500 5.5.2 NUL is not allowed in a command line");
            continue;
        }
        const char *text = buf_cstr(&line);
        const char *sp = strchr(text, ' ');
        struct lmtp_command cmd;
        cmd.verb = xstrndup(text, sp ? (size_t)(sp - text) : strlen(text));
        for (char *p = cmd.verb; *p; p++) if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 32);
        cmd.args = sp ? sp + 1 : "";
        command_dispatch(c, &cmd);
        free(cmd.verb);
    }
    buf_fini(&line);
    stream_flush(c->stream);
    /* what durability cost the session's deliveries (coffer-store(5), Crash safety): file
     * fsyncs, directory fsyncs made and skipped (group commit), index flushes */
    const struct mailbox_sync_stats *s1 = &mailbox_sync_stats;
    log_debug("session_syncs", "file=%llu dir=%llu dir_shared=%llu index=%llu",
              (unsigned long long)(s1->file - s0.file), (unsigned long long)(s1->dir - s0.dir),
              (unsigned long long)(s1->dir_shared - s0.dir_shared),
              (unsigned long long)(s1->index - s0.index));
    ws->end_reason = c->end_reason;   /* worker_main logs the disconnect line */
    client_free(&c);
}

/* lmtpd_release: idle after its sessions (worker.h): close the store; lmtpd_store reopens it */
static void lmtpd_release(void) { store_close(&g_store); }

static const struct worker_ops lmtpd_ops = {
    .name = "lmtpd",
    .init = lmtpd_init,
    .session = lmtpd_session,
    .release = lmtpd_release,   /* idle: the store closes (worker.h) */
    /* H2: over max_preauth_per_ip */
    .too_many = "421 4.7.0 Too many connections from your address",
};

int main(int argc, char **argv)
{
    int rc = worker_main(argc, argv, &lmtpd_ops);
    if (g_store) store_close(&g_store);
    return rc;
}
