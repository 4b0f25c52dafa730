/* hibernate.c: IDLE sessions to imap-hibernate and back (hibernate.h). */
#include "hibernate.h"
#include "selected.h"
#include "notify.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "imap/imap-hibstate.h"
#include "net/handoff.h"
#include "net/stream.h"
#include "net/worker.h"
#include "store/mailbox.h"
#include "store/store.h"
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* how long a worker waits to send a session to imap-hibernate, and for its answer */
#define HIBERNATE_SEND_MS 2000
#define HIBERNATE_ACK_MS 60000

int64_t hibernate_delay_ms(struct client *c)
{
    const struct config *cfg = c->ws->cfg;
    int64_t t = config_int(cfg, CFG_IMAP_HIBERNATE_TIMEOUT);
    if (t <= 0 || !*config_str(cfg, CFG_IMAP_HIBERNATE_SOCKET)) return -1;
    if (!c->user || (c->state != CLIENT_AUTH && c->state != CLIENT_SELECTED)) return -1;
    /* TLS and deflate keep their state in this process (no kernel TLS hand-over here) */
    if (stream_is_tls(c->stream) || stream_is_compressed(c->stream)) return -1;
    if (notify_active(c)) return -1;
    if (c->sel && (c->sel->seen_user || c->sel->contexts)) return -1;
    return t * 1000;
}

/* state_of: c's state in IDLE with tag until deadline_ms, as text into out. 0 or CF_E_PARSE
 * (a field that cannot be written: the session stays). */
static int state_of(struct client *c, const char *tag, int64_t deadline_ms, struct buf *out)
{
    struct imap_hibstate hs;
    imap_hibstate_init(&hs);
    snprintf(hs.session, sizeof hs.session, "%s", log_session() ? log_session() : "");
    hs.user = xstrdup(c->user);
    hs.authid = xstrdup(c->authid ? c->authid : c->user);
    hs.is_admin = c->is_admin;
    hs.enabled = c->enabled;
    hs.tag = xstrdup(tag);
    hs.deadline_ms = deadline_ms;
    hs.started_ms = (int64_t)c->started.tv_sec * 1000 + c->started.tv_nsec / 1000000;
    struct selected *sel = c->state == CLIENT_SELECTED ? c->sel : NULL;
    if (sel) {
        const char *ppath = mailbox_partition(sel->mb);
        hs.mailbox = xstrdup(sel->name);
        snprintf(hs.uniqueid, sizeof hs.uniqueid, "%s", mailbox_uniqueid(sel->mb));
        hs.partition_path = xstrdup(ppath ? ppath : "");
        hs.uidvalidity = sel->uidvalidity;
        hs.readonly = sel->readonly;
        hs.no_recent = sel->no_recent;
        snprintf(hs.rights, sizeof hs.rights, "%s", sel->rights);
        uint32_t n = selected_count(sel);
        for (uint32_t i = 1; i <= n; i++) {
            uint32_t u = selected_uid(sel, i);
            imap_seqset_add(&hs.uids, u, u);
        }
        mailbox_view_state(sel->mb, &hs.maxuid, &hs.modseq);
        for (size_t i = 0; i < sel->recent.count; i++)
            imap_seqset_add(&hs.recent, sel->recent.r[i].lo, sel->recent.r[i].hi);
        hs.recent_from = sel->recent_from;
        hs.told_exists = sel->told_exists;
        hs.told_recent = sel->told_recent;
        hs.told_keywords = sel->told_keywords;
        for (size_t i = 0; i < sel->saved.count; i++)
            imap_seqset_add(&hs.saved, sel->saved.r[i].lo, sel->saved.r[i].hi);
    }
    int r = imap_hibstate_format(&hs, out);
    imap_hibstate_fini(&hs);
    return r;
}

/* connect_to: a blocking connection to the UNIX socket at path, or -1 (errno set). */
static int connect_to(const char *path)
{
    struct sockaddr_un un;
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof un.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(un.sun_path, path, strlen(path));
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    if (connect(s, (struct sockaddr *)&un, sizeof un) < 0) {
        int e = errno;
        close(s);
        errno = e;
        return -1;
    }
    return s;
}

int hibernate_try(struct client *c, const char *tag, int64_t deadline_ms)
{
    /* input already read into the stream, or output not yet sent, cannot travel */
    if (stream_pending(c->stream) || stream_flush(c->stream) < 0) return 0;
    if (c->sel && c->state == CLIENT_SELECTED) {
        /* every change up to now has been told: the state says what the client knows */
        int r = selected_sync(c, 0);
        if (r < 0) {
            selected_sync_failed(c, r);
            stream_flush(c->stream);
            return 0;
        }
        if (stream_flush(c->stream) < 0) return 0;
    }
    struct buf st = BUF_INIT;
    int took = 0, s = -1;
    if (state_of(c, tag, deadline_ms, &st) < 0) {
        log_debug("hibernate_skipped", "reason=state");
        goto out;
    }
    const char *path = config_str(c->ws->cfg, CFG_IMAP_HIBERNATE_SOCKET);
    s = connect_to(path);
    if (s < 0) {
        log_warn("hibernate_failed", "socket=%s error=%s", log_quote(path),
                 log_quote(strerror(errno)));
        goto out;
    }
    long pid;
    if (!handoff_listener_ok(s, &pid)) {
        log_warn("hibernate_failed", "reason=listener listener_pid=%ld", pid);
        goto out;
    }
    int r = handoff_send(s, stream_fd(c->stream), HIBERNATE_KIND_SLEEP, st.s, st.len,
                         HIBERNATE_SEND_MS);
    if (r < 0) {
        log_warn("hibernate_failed", "error=%s", log_quote(cf_strerror(r)));
        goto out;
    }
    /* The connection is imap-hibernate's once it says so, and ours when it says no or closes.
     * Silence is neither: it may have taken the session and be slow to say so (a loaded
     * machine), and a session must never be served by both. So the wait is long, and when
     * even that passes the connection is shut down for both (the client reconnects). */
    struct pollfd p = { s, POLLIN, 0 };
    char ack = 0;
    int pr;
    do pr = poll(&p, 1, HIBERNATE_ACK_MS);
    while (pr < 0 && errno == EINTR);
    ssize_t got = pr == 1 ? read(s, &ack, 1) : -1;
    if (got == 1 && ack == HANDOFF_ACK) {
        took = 1;
    } else if (pr == 0) {
        log_warn("hibernate_failed", "reason=no_answer seconds=%d", HIBERNATE_ACK_MS / 1000);
        shutdown(stream_fd(c->stream), SHUT_RDWR);
        c->end_reason = "hibernate_no_answer";
    } else {
        log_info("hibernate_refused", "reason=%s", got == 1 ? "busy" : "closed");
    }
out:
    if (s >= 0) close(s);
    buf_fini(&st);
    if (took) {
        log_info("hibernate", "tag=%s exists=%u", log_quote(tag),
                 c->sel && c->state == CLIENT_SELECTED ? (unsigned)selected_count(c->sel) : 0);
        c->end_reason = "hibernated";
    }
    return took;
}

/* view_uids: the uids of set as an ascending array (malloc'ed) of *n_r. */
static uint32_t *view_uids(const struct imap_seqset *set, uint32_t *n_r)
{
    uint64_t n = imap_seqset_size(set);
    uint32_t *v = xreallocarray(NULL, n ? (size_t)n : 1, sizeof *v);
    size_t k = 0;
    for (size_t i = 0; i < set->count; i++)
        for (uint64_t u = set->r[i].lo; u <= set->r[i].hi; u++) v[k++] = (uint32_t)u;
    *n_r = (uint32_t)k;
    return v;
}

/* resume_selected: sel for hs's mailbox with the client's view; 0 or a store error */
static int resume_selected(const struct imap_hibstate *hs, struct selected **sel_r)
{
    struct mailbox *mb = NULL;
    int r = mailbox_open_target(hs->partition_path, hs->uniqueid, hs->mailbox, &mb);
    if (r < 0) return r;
    if (mailbox_header(mb)->uidvalidity != hs->uidvalidity) {
        /* cannot happen to a mailbox that still exists: uidvalidity is fixed at creation */
        mailbox_close(&mb);
        return CF_E_NOTFOUND;
    }
    uint32_t n;
    uint32_t *uids = view_uids(&hs->uids, &n);
    mailbox_view_restore(mb, uids, n, hs->maxuid, hs->modseq);
    struct selected *sel = xzmalloc(sizeof *sel);
    sel->name = xstrdup(hs->mailbox);
    sel->mb = mb;
    sel->readonly = hs->readonly;
    sel->no_recent = hs->no_recent;
    sel->uidvalidity = hs->uidvalidity;
    snprintf(sel->rights, sizeof sel->rights, "%s", hs->rights);
    imap_seqset_init(&sel->recent);
    imap_seqset_init(&sel->skip);
    imap_seqset_init(&sel->saved);
    imap_seqset_init(&sel->seen_uids);
    for (size_t i = 0; i < hs->recent.count; i++)
        imap_seqset_add(&sel->recent, hs->recent.r[i].lo, hs->recent.r[i].hi);
    for (size_t i = 0; i < hs->saved.count; i++)
        imap_seqset_add(&sel->saved, hs->saved.r[i].lo, hs->saved.r[i].hi);
    sel->recent_from = hs->recent_from;
    sel->told_exists = hs->told_exists;
    sel->told_recent = hs->told_recent;
    sel->told_keywords = hs->told_keywords;
    *sel_r = sel;
    return 0;
}

int hibernate_resume(struct client *c, uint32_t kind, const char *state, size_t len, char **tag_r,
                     int64_t *deadline_r)
{
    struct imap_hibstate hs;
    imap_hibstate_init(&hs);
    const char *why = NULL;
    *tag_r = NULL;
    if (imap_hibstate_parse(&hs, state, len, &why) < 0) {
        log_err("resume_failed", "reason=state error=%s", log_quote(why));
        c->end_reason = "resume_failed";
        return CF_E_PARSE;
    }
    if (hs.session[0]) log_set_session(hs.session);
    else log_new_session_id();
    c->user = xstrdup(hs.user);
    c->authid = xstrdup(hs.authid);
    c->is_admin = hs.is_admin;
    c->enabled = hs.enabled;
    c->state = CLIENT_AUTH;
    c->started.tv_sec = hs.started_ms / 1000;
    c->started.tv_nsec = (long)(hs.started_ms % 1000) * 1000000;
    log_set_user(c->user);
    worker_note_resumed(c->ws, c->user);
    int r = 0;
    if (hs.mailbox) {
        log_set_mailbox(hs.mailbox);
        struct selected *sel = NULL;
        r = c->store ? resume_selected(&hs, &sel) : CF_E_IO;
        if (r < 0) {
            /* as a live IDLE would have found at its next sync */
            log_info("wake", "reason=%s peer=%s", hibernate_kind_name(kind), c->ws->peer);
            c->state = CLIENT_SELECTED;
            selected_sync_failed(c, r);
            stream_flush(c->stream);
            goto out;
        }
        c->sel = sel;
        c->state = CLIENT_SELECTED;
    }
    log_info("wake", "reason=%s peer=%s", hibernate_kind_name(kind), c->ws->peer);
    *tag_r = hs.tag;
    hs.tag = NULL;
    *deadline_r = hs.deadline_ms;
out:
    imap_hibstate_fini(&hs);
    return r;
}
