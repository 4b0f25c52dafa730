/* delivery.c: from a spooled message and the accepted recipients to mailboxes and the
 * per-recipient replies of RFC 2033 section 4.2 (Sieve decides where each user's copy goes). */
#include "core/metrics.h"
#include "lmtpd.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mime/decode.h"
#include "sieve/sieve.h"
#include "store/deliver.h"
#include "store/mboxname.h"
#include "store/store.h"
#include "store/userfence.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define LOOP_HEADER "X-Coffer-Loop"

/* What became of one recipient. */
struct outcome {
    int error;                 /* 0, or the CF_E_* that decides the reply */
    const char *reject;        /* Sieve reject reason (550 5.7.1), or NULL */
    size_t first, count;       /* its targets in the target array */
};

struct has_rock { const char *name, *value; };

static int has_cb(void *rock, const char *name, size_t name_len, const char *value,
                  size_t value_len)
{
    struct has_rock *hr = rock;
    if (name_len != strlen(hr->name) || strncasecmp(name, hr->name, name_len)) return 0;
    if (!hr->value) return 1;
    struct buf v = BUF_INIT;
    mime_header_unfold(value, value_len, &v);
    size_t vl = v.len;
    while (vl && (v.s[vl - 1] == ' ' || v.s[vl - 1] == '\t')) vl--;
    buf_truncate(&v, vl);
    int eq = !strcasecmp(buf_cstr(&v), hr->value);
    buf_fini(&v);
    return eq;
}

/* header_has: whether the header section has a field name whose value (unfolded, trimmed)
 * equals value (case-insensitive), or any such field when value is NULL. */
static int header_has(const char *msg, size_t len, const char *name, const char *value)
{
    struct has_rock hr = { name, value };
    return mime_header_foreach(msg, len, has_cb, &hr);
}

/* write_pipe: all of p to fd; 0 or -1 (the command stopped reading). */
static int write_pipe(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* sendmail: pipe head then body to the `sendmail` command, run without a shell: the setting is
 * split on spaces into the program and its arguments, then "--" and rcpt are appended (M9: an
 * address such as "-X/path" or "-C..." must never be read as an option; every sendmail
 * clone ends its options at "--"). An address starting with '-' is refused all the same, as
 * no real mailbox has one. 0, or CF_E_IO (logged). Blocks until the command exits. */
static int sendmail(struct client *c, const char *rcpt, const char *head, const char *body,
                    size_t blen)
{
    struct strarr argv = STRARR_INIT;
    strarr_split(&argv, config_str(c->ws->cfg, CFG_SENDMAIL), " ", 1);
    for (size_t i = argv.count; i-- > 0;)
        if (!*argv.v[i]) strarr_remove(&argv, i);
    int r = CF_E_IO, fds[2] = { -1, -1 };
    pid_t pid = -1;
    const char *why = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int have_fa = 0, have_attr = 0;
    if (!argv.count || argv.v[0][0] != '/') {
        why = "sendmail must start with an absolute path";
        goto done;
    }
    if (rcpt[0] == '-' || !rcpt[0]) {
        why = "address starts with '-'";
        goto done;
    }
    strarr_add(&argv, "--");
    strarr_add(&argv, rcpt);
    if (pipe2(fds, O_CLOEXEC) < 0) {
        why = strerror(errno);
        goto done;
    }
    if (posix_spawn_file_actions_init(&fa) != 0) goto done;
    have_fa = 1;
    if (posix_spawnattr_init(&attr) != 0) goto done;
    have_attr = 1;
    /* the worker ignores SIGPIPE and blocks some signals; the command gets the defaults */
    sigset_t none, pipe_only;
    sigemptyset(&none);
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &pipe_only);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawn_file_actions_adddup2(&fa, fds[0], 0);
    int e = posix_spawn(&pid, argv.v[0], &fa, &attr, argv.v, environ);
    close(fds[0]);
    fds[0] = -1;
    if (e) {
        pid = -1;
        why = strerror(e);
        goto done;
    }
    struct sigaction ign, old;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, &old);       /* a command that exits early must not kill us */
    int wr = write_pipe(fds[1], head, strlen(head));
    if (wr == 0 && blen) wr = write_pipe(fds[1], body, blen);
    sigaction(SIGPIPE, &old, NULL);
    close(fds[1]);
    fds[1] = -1;
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (wr == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0) r = 0;
    else why = "the command failed";
done:
    if (have_fa) posix_spawn_file_actions_destroy(&fa);
    if (have_attr) posix_spawnattr_destroy(&attr);
    if (fds[0] >= 0) close(fds[0]);
    if (fds[1] >= 0) close(fds[1]);
    if (r < 0)
        log_err("sendmail_failed", "command=%s rcpt=%s error=%s",
                log_quote(config_str(c->ws->cfg, CFG_SENDMAIL)), log_quote(rcpt),
                log_quote(why ? why : "spawn failed"));
    strarr_fini(&argv);
    return r;
}

/* automatic_message: mail no person sent: Auto-Submitted (RFC 3834), a mailing list
 * (List-Id, RFC 2919) or Precedence bulk/list/junk. */
static int automatic_message(const char *data, size_t len)
{
    return header_has(data, len, "Auto-Submitted", NULL) || header_has(data, len, "List-Id", NULL) ||
           header_has(data, len, "Precedence", "bulk") ||
           header_has(data, len, "Precedence", "list") ||
           header_has(data, len, "Precedence", "junk");
}

/* vacation: RFC 5230: answer the sender at most once per :days, never automatic mail. */
static void vacation(struct client *c, const struct rcpt *r, const struct sieve_result *sr,
                     const char *data, size_t len, const char *msgid)
{
    const char *sender = c->mail_from;
    if (!*sender || automatic_message(data, len)) {
        log_info("vacation_skipped", "user=%s sender=%s", log_quote(r->user), log_quote(sender));
        return;
    }
    struct store *st = lmtpd_store();
    int64_t now = (int64_t)time(NULL);
    int days = sr->vac_days > 0 ? sr->vac_days : 7;
    int answered = store_vacation_check(st, r->user, sender, days, now);
    if (answered < 0) return;   /* no database: no answer rather than one per message */
    if (answered) {
        log_info("vacation_suppressed", "user=%s sender=%s", log_quote(r->user),
                 log_quote(sender));
        return;
    }
    struct buf head = BUF_INIT;
    buf_printf(&head, "From: <%s>\r\nTo: <%s>\r\n", sr->vac_from ? sr->vac_from : r->addr,
               sr->vac_address ? sr->vac_address : sender);
    if (sr->vac_subject) buf_printf(&head, "Subject: %s\r\n", sr->vac_subject);
    else buf_appends(&head, "Subject: Auto: your message\r\n");
    if (msgid) buf_printf(&head, "In-Reply-To: %s\r\nReferences: %s\r\n", msgid, msgid);
    buf_appends(&head, "Auto-Submitted: auto-replied (vacation)\r\nPrecedence: bulk\r\n");
    if (!sr->vac_mime)
        buf_appends(&head, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
    /* with :mime the reason carries its own MIME header fields */
    if (sendmail(c, sender, buf_cstr(&head), sr->vac_message, strlen(sr->vac_message)) == 0) {
        store_vacation_mark(st, r->user, sender, now);
        log_info("vacation_sent", "user=%s sender=%s", log_quote(r->user), log_quote(sender));
    }
    buf_fini(&head);
}

/* is_sender: whether addr is the message's envelope sender or appears in its From field. */
static int is_sender(struct client *c, const char *data, size_t len, const char *addr)
{
    if (*c->mail_from && !strcasecmp(addr, c->mail_from)) return 1;
    const char *v;
    size_t n;
    if (!*addr || !mime_header_find(data, len, "From", &v, &n)) return 0;
    struct buf from = BUF_INIT;
    mime_header_unfold(v, n, &from);
    int found = strcasestr(buf_cstr(&from), addr) != NULL;
    buf_fini(&from);
    return found;
}

/* notify: the Sieve notify actions of r (method mailto, libsieve's draft-martin-sieve-notify
 * syntax): a short message to each address through the sendmail command, at most one round
 * per sieve_notify_interval for the user, and never to the sender of an automatic (bulk,
 * list, auto-submitted) message, which could answer it in a loop. */
static void notify(struct client *c, const struct rcpt *r, const struct sieve_result *sr,
                   const char *data, size_t len)
{
    if (!sr->nnotify) return;
    int allowed = sieve_notify_allowed(c->ws->cfg, r->user, (long long)time(NULL));
    if (allowed <= 0) {
        if (allowed == 0) log_info("sieve_notify_limited", "user=%s", log_quote(r->user));
        return;
    }
    int automatic = automatic_message(data, len);
    for (size_t i = 0; i < sr->nnotify; i++) {
        const struct sieve_notify *n = &sr->notify[i];
        for (size_t k = 0; k < n->to.count; k++) {
            const char *to = n->to.v[k];
            if (automatic && is_sender(c, data, len, to)) {
                log_info("sieve_notify_skipped", "user=%s to=%s reason=automatic_sender",
                         log_quote(r->user), log_quote(to));
                continue;
            }
            struct buf head = BUF_INIT;
            buf_printf(&head, "From: <%s>\r\nTo: <%s>\r\nSubject: %.200s\r\n", r->addr, to,
                       n->message);
            /* RFC 5436 section 2.7 / RFC 3834: never answered automatically */
            buf_appends(&head, "Auto-Submitted: auto-notified\r\nPrecedence: bulk\r\n");
            if (!strcmp(n->priority, "high")) buf_appends(&head, "Importance: high\r\n");
            if (!strcmp(n->priority, "low")) buf_appends(&head, "Importance: low\r\n");
            buf_appends(&head, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8"
                               "\r\n\r\n");
            buf_printf(&head, "%s\r\n", n->message);
            if (sendmail(c, to, buf_cstr(&head), "", 0) == 0)
                log_info("sieve_notified", "user=%s to=%s", log_quote(r->user), log_quote(to));
            buf_fini(&head);
        }
    }
}

/* flags_of: RFC 5232 flag names to FLAG_* bits and a NULL-terminated keyword array (caller
 * frees the array, not the strings, which stay in names). */
static uint32_t flags_of(const struct strarr *names, const char ***kw_r)
{
    static const struct { const char *name; uint32_t bit; } sys[] = {
        { "\\Seen", FLAG_SEEN }, { "\\Answered", FLAG_ANSWERED }, { "\\Flagged", FLAG_FLAGGED },
        { "\\Deleted", FLAG_DELETED }, { "\\Draft", FLAG_DRAFT },
    };
    uint32_t flags = 0;
    const char **kw = xzmalloc((names->count + 1) * sizeof *kw);
    size_t nk = 0;
    for (size_t i = 0; i < names->count; i++) {
        const char *n = names->v[i];
        size_t k;
        for (k = 0; k < sizeof sys / sizeof sys[0]; k++)
            if (!strcasecmp(n, sys[k].name)) break;
        if (k < sizeof sys / sizeof sys[0]) flags |= sys[k].bit;
        else if (*n && *n != '\\') kw[nk++] = n;
    }
    *kw_r = kw;
    return flags;
}

static void reply_for(struct client *c, const struct rcpt *r, const struct outcome *o,
                      const struct deliver_target *t)
{
    if (o->reject) {
        metrics_lmtp(METRICS_LMTP_REJECTED);
        client_reply(c, "550 5.7.1 <%s> %s", r->addr, o->reject);
        return;
    }
    int err = o->error;
    /* the recipient's reply is the worst of its targets' results */
    for (size_t i = o->first; !err && i < o->first + o->count; i++)
        if (t[i].result < 0) err = t[i].result;
    enum metrics_lmtp m = !err ? METRICS_LMTP_DELIVERED
        : err != CF_E_QUOTA ? METRICS_LMTP_TEMPFAIL
        : config_int(c->ws->cfg, CFG_LMTP_OVERQUOTA_PERMANENT) ? METRICS_LMTP_OVERQUOTA_PERM
        : METRICS_LMTP_OVERQUOTA_TEMP;
    metrics_lmtp(m);
    if (m == METRICS_LMTP_DELIVERED)
        client_reply(c, "250 2.1.5 <%s> Delivered", r->addr);
    else if (m == METRICS_LMTP_OVERQUOTA_PERM)
        client_reply(c, "552 5.2.2 <%s> Mailbox over quota", r->addr);
    else if (m == METRICS_LMTP_OVERQUOTA_TEMP)
        client_reply(c, "452 4.2.2 <%s> Mailbox over quota", r->addr);
    else
        client_reply(c, "451 4.3.0 <%s> Temporary local problem", r->addr);
}

/* The delivery plan of one message: every target of every recipient, in recipient order, and
 * what the targets point into (keyword arrays, fileinto mailbox names). */
struct plan {
    struct deliver_target *t;
    size_t nt, talloc;
    const char ***kws;          /* keyword arrays from flags_of, one per target that has one */
    size_t nkws;
    struct strarr names;        /* fileinto mailbox names */
};

static void plan_fini(struct plan *p)
{
    for (size_t i = 0; i < p->nkws; i++) free(p->kws[i]);
    free(p->kws);
    strarr_fini(&p->names);
    free(p->t);
}

/* plan_add: a target mailbox for user with the Sieve flags names (NULL: none). mailbox must
 * outlive the plan. */
static void plan_add(struct plan *p, const char *mailbox, const char *user,
                     const struct strarr *names)
{
    uint32_t flags = 0;
    const char **kw = NULL;
    if (names) {
        flags = flags_of(names, &kw);
        p->kws = xrealloc(p->kws, (p->nkws + 1) * sizeof *p->kws);
        p->kws[p->nkws++] = kw;
    }
    if (p->nt == p->talloc) {
        p->talloc = p->talloc ? p->talloc * 2 : 8;
        p->t = xrealloc(p->t, p->talloc * sizeof *p->t);
    }
    struct deliver_target *t = &p->t[p->nt++];
    memset(t, 0, sizeof *t);
    t->mailbox = mailbox;
    t->user = user;
    t->flags = flags;
    t->keywords = kw;
}

/* redirect_all: send the message on to every Sieve redirect address of r; 1 when it must be
 * kept as well (a loop, or a redirect that could not be sent), else 0. */
static int redirect_all(struct client *c, const struct rcpt *r, const struct sieve_result *sr,
                        const char *data, size_t len)
{
    int keep = 0;
    for (size_t k = 0; k < sr->redirect.count; k++) {
        if (header_has(data, len, LOOP_HEADER, r->user)) {
            log_notice("sieve_redirect_loop", "user=%s to=%s", log_quote(r->user),
                       log_quote(sr->redirect.v[k]));
            keep = 1;
            continue;
        }
        struct buf head = BUF_INIT;
        buf_printf(&head, "%s: %s\r\n", LOOP_HEADER, r->user);
        if (sendmail(c, sr->redirect.v[k], buf_cstr(&head), data, len) < 0) keep = 1;
        else log_info("sieve_redirected", "user=%s to=%s", log_quote(r->user),
                      log_quote(sr->redirect.v[k]));
        buf_fini(&head);
    }
    return keep;
}

/* fileinto_target: the mailbox a Sieve fileinto folder f of r means (user/NAME/f), or r's own
 * mailbox when that folder does not exist (RFC 5228 section 4.1: the message is never lost);
 * the name is kept in the plan. */
static const char *fileinto_target(struct store *st, struct plan *p, const struct rcpt *r,
                                   const char *f)
{
    struct buf name = BUF_INIT;
    mboxname_user_inbox(r->user, &name);
    if (strcasecmp(f, "INBOX")) {
        buf_printf(&name, "/%s", f);
        if (mboxname_valid(buf_cstr(&name)) < 0 || store_lookup(st, buf_cstr(&name), NULL) != 1) {
            log_notice("sieve_fileinto_missing", "user=%s folder=%s", log_quote(r->user),
                       log_quote(f));
            buf_reset(&name);
            buf_appends(&name, r->mailbox);
        }
    }
    strarr_take(&p->names, buf_release(&name));
    return p->names.v[p->names.count - 1];
}

/* plan_recipient: the targets of recipient r: its INBOX (created when missing), or what its
 * active Sieve script says (keep, fileinto, redirect, vacation, reject into o->reject, which
 * points into sr). Errors go to o->error. */
static void plan_recipient(struct client *c, struct store *st, struct rcpt *r,
                           struct sieve_result *sr, const char *data, size_t len,
                           const char *msgid, struct plan *p, struct outcome *o)
{
    o->first = p->nt;
    if (r->need_inbox) {
        int e = store_ensure_inbox(st, r->user);
        if (e < 0) {
            o->error = e;
            return;
        }
        if (e == 1) log_info("inbox_created", "user=%s", log_quote(r->user));
        r->need_inbox = 0;
    }
    char *script = NULL, *sname = NULL;
    if (!r->user || sieve_active_script(c->ws->cfg, r->user, &script, &sname) != 1) {
        plan_add(p, r->mailbox, r->user, NULL);
        o->count = p->nt - o->first;
        return;
    }
    struct sieve_input in = { data, len, c->mail_from, r->addr,
                              (int)config_int(c->ws->cfg, CFG_SIEVE_MAX_REDIRECTS) };
    /* RFC 5228 section 2.10.6: a failed run keeps the message (sieve_run forces keep) */
    if (sieve_run(script, &in, sr) < 0 || sr->error)
        log_warn("sieve_failed", "user=%s script=%s action=keep errors=%s", log_quote(r->user),
                 log_quote(sname ? sname : "?"), log_quote(buf_cstr(&sr->errors)));
    free(script);
    free(sname);
    if (sr->reject) {
        for (char *q = sr->reject; *q; q++) if (*q == '\r' || *q == '\n') *q = ' ';
        o->reject = sr->reject;
        log_info("sieve_rejected", "user=%s reason=%s", log_quote(r->user), log_quote(sr->reject));
        return;
    }
    int keep = sr->keep | redirect_all(c, r, sr, data, len);
    if (sr->vacation) vacation(c, r, sr, data, len, msgid);
    notify(c, r, sr, data, len);
    if (keep) plan_add(p, r->mailbox, r->user, &sr->keep_flags);
    for (size_t k = 0; k < sr->nfileinto; k++)
        plan_add(p, fileinto_target(st, p, r, sr->fileinto[k].mailbox), r->user,
                 &sr->fileinto[k].flags);
    if (p->nt == o->first) log_info("sieve_discarded", "user=%s", log_quote(r->user));
    o->count = p->nt - o->first;
}

/* fail_all: the same temporary failure for every recipient (nothing was stored). */
static void fail_all(struct client *c, const char *why)
{
    log_err("delivery_failed", "error=%s", why);
    for (size_t i = 0; i < c->nrcpts; i++) {
        struct outcome o = { CF_E_IO, NULL, 0, 0 };
        reply_for(c, &c->rcpts[i], &o, NULL);
    }
}

void lmtp_deliver(struct client *c, int fd)
{
    struct stat sb;
    const char *data = NULL;
    size_t len = 0;
    if (!lmtpd_store()) {
        fail_all(c, "store_unavailable");
        return;
    }
    if (fstat(fd, &sb) < 0) {
        fail_all(c, "spool");
        return;
    }
    if (sb.st_size > 0) {
        len = (size_t)sb.st_size;
        void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            fail_all(c, "spool");
            return;
        }
        data = m;
    }
    lmtp_deliver_data(c, data, len);
    if (data) munmap((void *)data, len);
}

void lmtp_deliver_data(struct client *c, const char *data, size_t len)
{
    struct store *st = lmtpd_store();
    struct buf msgid = BUF_INIT;
    if (!st) {
        fail_all(c, "store_unavailable");
        return;
    }
    struct outcome *oc = xzmalloc(c->nrcpts * sizeof *oc);
    struct sieve_result *srs = xzmalloc(c->nrcpts * sizeof *srs);
    struct plan p = { .names = STRARR_INIT };
    for (size_t i = 0; i < c->nrcpts; i++) sieve_result_init(&srs[i]);
    deliver_message_id(data, len, &msgid);
    const char *id = msgid.len ? buf_cstr(&msgid) : NULL;
    /* a user fenced since RCPT (being moved away: userfence.h) is deferred; the shared lock
     * from this check to the commit lets the FENCE wait for this delivery */
    int hold = userfence_hold(c->ws->cfg);
    for (size_t i = 0; i < c->nrcpts; i++) {
        if (c->rcpts[i].user && userfence_check(c->ws->cfg, c->rcpts[i].user)) {
            log_info("rcpt_deferred", "rcpt=%s reason=fenced", log_quote(c->rcpts[i].addr));
            oc[i].first = p.nt;
            oc[i].error = CF_E_LOCKED;
            continue;
        }
        plan_recipient(c, st, &c->rcpts[i], &srs[i], data, len, id, &p, &oc[i]);
    }
    struct deliver_msg m = { data, len, -1, id, 0 };
    deliver_message(st, &m, p.t, p.nt);
    userfence_release(hold);
    for (size_t i = 0; i < c->nrcpts; i++) reply_for(c, &c->rcpts[i], &oc[i], p.t);
    buf_fini(&msgid);
    for (size_t i = 0; i < c->nrcpts; i++) sieve_result_fini(&srs[i]);
    free(srs);
    plan_fini(&p);
    free(oc);
}
