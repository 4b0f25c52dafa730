/* main.c: admind, the admin endpoint of a backend (man/admind.8): a small line protocol for
 * `coffer user move` on the router host, spoken only by an administrator (the admins setting)
 * who authenticated with SASL PLAIN, under TLS unless allow_plaintext. It fences a user (no
 * logins, deliveries deferred, live sessions ended), streams the user's dump out or a dump in,
 * fingerprints the account and removes it. Run by cofferd's prefork worker (lib/net/worker.h).
 *
 * The store work runs in a child process forked per command, with the dump and restore code of
 * the coffer tool (tools/: one copy of the format) on pipes that this process relays to and
 * from the connection: the worker itself never opens the Berkeley DB environment, and a child
 * dies with its worker (PR_SET_PDEATHSIG), so kill -9 at any point leaves no orphan writing. */
#include "admind/admin-parse.h"
#include "account.h"
#include "cmd.h"
#include "tool.h"
#include "auth/sasl.h"
#include "core/base64.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "net/stream.h"
#include "net/worker.h"
#include "store/userfence.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ADMIN_MAX_AUTH_FAILS 3          /* failed AUTHs before the connection is closed */
#define ADMIN_KICK_WAIT_MS 10000        /* FENCE: how long ended sessions get to say goodbye */
#define ADMIN_RELAY_BUF 65536

static const struct config *g_cfg;

static int admind_init(const struct config *cfg, const struct config_service *svc)
{
    (void)svc;
    if (csasl_init(cfg)) return 1;
    g_cfg = cfg;
    return 0;
}

static void reply(struct stream *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(struct stream *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    worker_vreply(s, fmt, ap);
    va_end(ap);
    stream_flush(s);
}

/* ---- authentication ---- */

/* auth: AUTH PLAIN BASE64 (RFC 4616): 1 when the session is now an administrator's, 0 when
 * refused (reply sent) */
static int auth(struct worker_session *ws, const char *b64, char **admin_r)
{
    struct stream *s = ws->stream;
    struct buf dec = BUF_INIT;
    int ok = 0;
    if (!worker_plaintext_ok(ws)) {
        log_notice("auth_failed", "reason=plaintext");
        reply(s, "NO TLS required (use a tls = implicit listener or allow_plaintext)");
        goto out;
    }
    const char *authz, *authc, *pass;
    size_t zl, cl, pl;
    if (base64_decode(b64, strlen(b64), &dec) < 0 || !dec.len) goto bad;
    buf_cstr(&dec);                     /* SASL compares the password as a C string */
    /* authzid NUL authcid NUL password */
    authz = dec.s;
    const char *n1 = memchr(dec.s, '\0', dec.len);
    if (!n1) goto bad;
    zl = (size_t)(n1 - authz);
    authc = n1 + 1;
    const char *n2 = memchr(authc, '\0', dec.len - zl - 1);
    if (!n2) goto bad;
    cl = (size_t)(n2 - authc);
    pass = n2 + 1;
    pl = dec.len - zl - cl - 2;
    if (zl && (zl != cl || memcmp(authz, authc, cl))) {
        log_notice("auth_failed", "reason=authzid");
        reply(s, "NO acting as another user is not allowed");
        goto out;
    }
    struct csasl *sasl = NULL;
    int r = csasl_new("imap", NULL, NULL, stream_tls_ssf(s), &sasl);
    if (!r) r = csasl_checkpass(sasl, authc, cl, pass, pl);
    if (r) {
        csasl_free(&sasl);
        log_notice("auth_failed", "reason=%s", r == CF_E_AGAIN ? "backend" : "credentials");
        sleep(1);                       /* paces password guessing */
        reply(s, r == CF_E_AGAIN ? "NO temporary authentication failure"
                                 : "NO authentication failed");
        goto out;
    }
    const char *user = csasl_user(sasl);
    if (strarr_find(config_list(g_cfg, CFG_ADMINS), user) < 0) {
        log_notice("auth_failed", "user=%s reason=not_admin", log_quote(user));
        csasl_free(&sasl);
        sleep(1);
        reply(s, "NO not an administrator");
        goto out;
    }
    if (worker_note_login(ws, user) < 0) {
        csasl_free(&sasl);
        reply(s, "NO too many connections");
        goto out;
    }
    *admin_r = xstrdup(user);
    csasl_free(&sasl);
    log_set_user(*admin_r);
    log_info("login", "mech=PLAIN tls=%d", stream_is_tls(s));
    reply(s, "OK authenticated");
    ok = 1;
    goto out;
bad:
    log_notice("auth_failed", "reason=malformed");
    reply(s, "NO malformed PLAIN response");
out:
    buf_fini(&dec);
    return ok;
}

/* ---- children ---- */

/* A child running one store command with stdin, stdout and stderr on the fds given. */
struct child {
    pid_t pid;
    int in_w;                           /* RESTORE: the dump goes here; else -1 */
    int out_r;                          /* DUMP: the dump comes from here; else -1 */
    int out_mem;                        /* VERIFY, REMOVE: their output (a memfd); else -1 */
    int err_mem;                        /* stderr (a memfd): the reason of a failure */
};

static int child_body(struct worker_session *ws, enum admin_verb verb, const char *user)
{
    char *argv_restore[] = { "--user", (char *)user, NULL };
    char *argv_user[] = { (char *)user, NULL };
    struct tool t;
    memset(&t, 0, sizeof t);
    t.conf_path = g_cfg->path;
    t.cfg = (struct config *)g_cfg;
    (void)ws;
    switch (verb) {
    case ADMIN_DUMP:
        t.sub = "dump";
        t.argc = 1;
        t.argv = argv_user;
        return cmd_dump(&t);
    case ADMIN_RESTORE:
        t.sub = "restore";
        t.argc = 2;
        t.argv = argv_restore;
        return cmd_restore(&t);
    case ADMIN_VERIFY:
        t.sub = "verify";
        return account_verify(&t, user, stdout);
    case ADMIN_REMOVE:
        t.sub = "remove";
        return account_remove(&t, user, stdout);
    default:
        return EXIT_USAGE;
    }
}

/* child_start: fork the child for verb; 0 with *c filled, or -1 (logged) */
static int child_start(struct worker_session *ws, enum admin_verb verb, const char *user,
                       struct child *c)
{
    int p[2] = { -1, -1 };
    c->in_w = c->out_r = c->out_mem = -1;
    c->err_mem = memfd_create("admind-stderr", MFD_CLOEXEC);
    if (c->err_mem < 0) goto fail;
    if (verb == ADMIN_DUMP || verb == ADMIN_RESTORE) {
        if (pipe2(p, O_CLOEXEC) < 0) goto fail;
    } else if ((c->out_mem = memfd_create("admind-stdout", MFD_CLOEXEC)) < 0) {
        goto fail;
    }
    pid_t parent = getpid();
    c->pid = fork();
    if (c->pid < 0) goto fail;
    if (c->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(EXIT_FAIL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        close(stream_fd(ws->stream));   /* the connection is the parent's alone */
        int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        int in = verb == ADMIN_RESTORE ? p[0] : devnull;
        int out = verb == ADMIN_DUMP ? p[1] : verb == ADMIN_RESTORE ? devnull : c->out_mem;
        if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(c->err_mem, 2) < 0) _exit(EXIT_FAIL);
        int rc = child_body(ws, verb, user);
        fflush(stdout);
        fflush(stderr);
        _exit(rc);
    }
    if (verb == ADMIN_RESTORE) {
        close(p[0]);
        c->in_w = p[1];
    } else if (verb == ADMIN_DUMP) {
        close(p[1]);
        c->out_r = p[0];
    }
    return 0;
fail:
    log_err("admin_child_failed", "error=%s", log_quote(strerror(errno)));
    if (p[0] >= 0) close(p[0]);
    if (p[1] >= 0) close(p[1]);
    if (c->err_mem >= 0) close(c->err_mem);
    if (c->out_mem >= 0) close(c->out_mem);
    return -1;
}

/* mem_text: a memfd's text (NUL-terminated, at most max bytes and a read more) into out */
static void mem_text(int fd, size_t max, struct buf *out)
{
    char tmp[4096];
    ssize_t n;
    lseek(fd, 0, SEEK_SET);
    while ((n = read(fd, tmp, sizeof tmp)) > 0 && out->len < max)
        buf_append(out, tmp, (size_t)n);
    buf_cstr(out);
}

/* child_finish: close what is left, wait for the child; its exit code (EXIT_FAIL when it was
 * killed) and in why the last line it wrote to stderr (may be empty) */
static int child_finish(struct child *c, int kill_it, struct buf *why)
{
    if (c->in_w >= 0) close(c->in_w);
    if (c->out_r >= 0) close(c->out_r);
    c->in_w = c->out_r = -1;
    if (kill_it) kill(c->pid, SIGKILL);
    int st = 0;
    while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR) {}
    struct buf err = BUF_INIT;
    mem_text(c->err_mem, 1u << 20, &err);
    close(c->err_mem);
    /* the last non-empty line, without the tool's "coffer SUB: " prefix */
    while (err.len && (err.s[err.len - 1] == '\n' || err.s[err.len - 1] == '\r')) err.len--;
    buf_cstr(&err);
    const char *last = strrchr(err.s ? err.s : "", '\n');
    last = last ? last + 1 : (err.s ? err.s : "");
    if (!strncmp(last, "coffer ", 7) && strstr(last, ": ")) last = strstr(last, ": ") + 2;
    buf_reset(why);
    buf_appends(why, last);
    if (why->len > 300) why->len = 300;
    buf_cstr(why);
    buf_fini(&err);
    return WIFEXITED(st) ? WEXITSTATUS(st) : EXIT_FAIL;
}

/* ---- commands ---- */

/* test_stall: for test/test_move.py: with $COFFER_TEST_ADMIND_STALL naming a file that does
 * not exist yet, the first RESTORE to get a chunk writes its worker's pid there and waits to
 * be killed (kill -9 of an admin endpoint worker in the middle of a copy, at a known point).
 * Once: the file exists afterwards. */
static void test_stall(void)
{
    const char *path = getenv("COFFER_TEST_ADMIND_STALL");
    if (!path || !*path) return;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return;
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    write_all(fd, pid, (size_t)n);
    close(fd);
    log_warn("admin_test_stall", "pid=%d", (int)getpid());
    for (;;) pause();
}

/* do_dump: the dump as chunks "+ LEN" LF-free bytes, then OK or NO. NULL, or the session's
 * end reason when the connection failed. */
static const char *do_dump(struct worker_session *ws, const char *user)
{
    struct stream *s = ws->stream;
    struct child c;
    if (child_start(ws, ADMIN_DUMP, user, &c)) {
        reply(s, "NO internal error");
        return NULL;
    }
    char *buf = xmalloc(ADMIN_RELAY_BUF);
    const char *end = NULL;
    unsigned long long total = 0;
    for (;;) {
        ssize_t n = read(c.out_r, buf, ADMIN_RELAY_BUF);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        stream_printf(s, "+ %zd\r\n", n);
        stream_write(s, buf, (size_t)n);
        if (stream_flush(s)) {
            end = "io";
            break;
        }
        total += (unsigned long long)n;
    }
    free(buf);
    struct buf why = BUF_INIT;
    int rc = child_finish(&c, end != NULL, &why);
    log_info("admin_dump", "target=%s bytes=%llu exit=%d", log_quote(user), total, rc);
    if (!end) {
        if (rc == EXIT_OK) reply(s, "OK dumped %llu bytes", total);
        else reply(s, "NO %s%s(exit %d)", buf_cstr(&why), why.len ? " " : "", rc);
    }
    buf_fini(&why);
    return end;
}

/* do_restore: GO, then chunks from the client until "+ 0", fed to the restoring child; then
 * OK or NO. A client gone midway kills the child (what it restored stays: the move removes
 * it before it restores again). NULL, or the session's end reason. */
static const char *do_restore(struct worker_session *ws, const char *user)
{
    struct stream *s = ws->stream;
    struct child c;
    if (child_start(ws, ADMIN_RESTORE, user, &c)) {
        reply(s, "NO internal error");
        return NULL;
    }
    reply(s, "GO send the dump as chunks, then + 0");
    struct buf line = BUF_INIT, data = BUF_INIT;
    const char *end = NULL;
    int child_gone = 0;
    unsigned long long total = 0;
    for (;;) {
        int r = stream_read_line(s, &line);
        if (r) {
            end = worker_read_end(s, r, &(struct line_texts){ NULL, "NO timeout", "NO shutdown" });
            break;
        }
        size_t n = 0;
        int cr = admin_parse_chunk(line.s ? line.s : "", line.len, &n);
        if (cr != 1) {
            reply(s, "NO expected a chunk header + LEN%s", cr == CF_E_LIMIT ? " (too large)" : "");
            end = "protocol";
            break;
        }
        if (!n) break;
        buf_reset(&data);
        r = stream_read_exact(s, n, &data);
        if (r) {
            end = worker_read_end(s, r, &(struct line_texts){ NULL, "NO timeout", "NO shutdown" });
            break;
        }
        total += n;
        test_stall();
        /* a child that refused the dump stops reading: the rest is read and dropped, so the
         * reply comes in its place in the stream */
        if (!child_gone && write_all(c.in_w, data.s, data.len) < 0) child_gone = 1;
    }
    buf_fini(&line);
    buf_fini(&data);
    struct buf why = BUF_INIT;
    int rc = child_finish(&c, end != NULL, &why);
    log_info("admin_restore", "target=%s bytes=%llu exit=%d", log_quote(user), total, rc);
    if (!end) {
        if (rc == EXIT_OK) reply(s, "OK restored %llu bytes", total);
        else reply(s, "NO %s%s(exit %d)", buf_cstr(&why), why.len ? " " : "", rc);
    }
    buf_fini(&why);
    return end;
}

/* do_text: VERIFY and REMOVE: the child's output lines as "* LINE", then OK or NO */
static void do_text(struct worker_session *ws, enum admin_verb verb, const char *user)
{
    struct stream *s = ws->stream;
    struct child c;
    if (child_start(ws, verb, user, &c)) {
        reply(s, "NO internal error");
        return;
    }
    struct buf why = BUF_INIT, out = BUF_INIT;
    int rc = child_finish(&c, 0, &why);
    /* VERIFY: a line per mailbox (RESTORE_MAX_BOXES of them at most) */
    mem_text(c.out_mem, (size_t)1 << 30, &out);
    close(c.out_mem);
    log_info(verb == ADMIN_VERIFY ? "admin_verify" : "admin_remove", "target=%s exit=%d",
             log_quote(user), rc);
    if (rc == EXIT_OK) {
        for (char *p = out.s, *nl; p && *p; p = nl + 1) {
            nl = strchr(p, '\n');
            if (!nl) break;
            *nl = '\0';
            stream_printf(s, "* %s\r\n", p);
        }
        reply(s, "OK %s", verb == ADMIN_VERIFY ? "verified" : "removed");
    } else {
        reply(s, "NO %s%s(exit %d)", buf_cstr(&why), why.len ? " " : "", rc);
    }
    buf_fini(&why);
    buf_fini(&out);
}

/* do_fence: fence the user, then end its sessions, waiting up to ADMIN_KICK_WAIT_MS for them
 * to go (SIGTERM: they say goodbye at their next read), then SIGKILL what is left: once OK is
 * sent, no session of the user is open here and no delivery to it is in progress */
static void do_fence(struct worker_session *ws, const char *user)
{
    struct stream *s = ws->stream;
    if (userfence_set(g_cfg, user)) {
        reply(s, "NO cannot write the fence file");
        return;
    }
    int first = worker_kick_user(user, SIGTERM), n = first, waited = 0;
    while (n > 0 && waited < ADMIN_KICK_WAIT_MS) {
        struct timespec ts = { 0, 100 * 1000000L };
        nanosleep(&ts, NULL);
        waited += 100;
        n = worker_kick_user(user, SIGTERM);
    }
    /* sessions still there after the wait are in a command that does not read (a huge
     * FETCH to a client that does not take it): killed, and waited for again */
    for (int k = 0; n > 0 && k < 50; k++) {
        if (!k) log_warn("admin_fence_kill", "target=%s sessions=%d", log_quote(user), n);
        n = worker_kick_user(user, SIGKILL);
        struct timespec ts = { 0, 100 * 1000000L };
        nanosleep(&ts, NULL);
    }
    if (n > 0) {
        log_err("admin_fence_failed", "target=%s sessions=%d", log_quote(user), n);
        reply(s, "NO %d session%s of the user would not end", n, n == 1 ? "" : "s");
        return;
    }
    log_info("admin_fence", "target=%s sessions=%d", log_quote(user), first > 0 ? first : 0);
    reply(s, "OK fenced, %d session%s ended", first > 0 ? first : 0, first == 1 ? "" : "s");
}

static void admind_session(struct worker_session *ws)
{
    struct stream *s = ws->stream;
    struct buf line = BUF_INIT;
    char *admin = NULL;
    int fails = 0;
    const struct line_texts texts = { "NO line too long", "NO idle timeout", "NO shutting down" };
    stream_set_max_line(s, ADMIN_MAX_LINE);
    reply(s, "OK coffer-admin 1 ready");
    for (;;) {
        int r = worker_next_line(s, &line, &texts, &ws->end_reason);
        if (r < 0) break;
        if (r == 0) continue;
        struct admin_cmd cmd;
        const char *why = NULL;
        if (admin_parse(line.s ? line.s : "", line.len, &cmd, &why)) {
            reply(s, "BAD %s", why);
            continue;
        }
        if (cmd.verb == ADMIN_QUIT) {
            reply(s, "OK bye");
            ws->end_reason = "logout";
            break;
        }
        if (!admin) {
            if (cmd.verb != ADMIN_AUTH) {
                reply(s, "NO authenticate first");
                continue;
            }
            if (auth(ws, cmd.arg + 6, &admin)) {
                stream_set_timeout(s, config_int(g_cfg, CFG_IDLE_TIMEOUT));
                continue;
            }
            if (++fails >= ADMIN_MAX_AUTH_FAILS) {
                ws->end_reason = "auth_failures";
                break;
            }
            continue;
        }
        const char *end = NULL;
        if (cmd.verb != ADMIN_AUTH)
            log_info("admin_command", "line=%s", log_quote(buf_cstr(&line)));
        switch (cmd.verb) {
        case ADMIN_AUTH: reply(s, "NO already authenticated"); break;
        case ADMIN_FENCE: do_fence(ws, cmd.arg); break;
        case ADMIN_UNFENCE:
            if (userfence_clear(g_cfg, cmd.arg)) reply(s, "NO cannot remove the fence file");
            else reply(s, "OK unfenced");
            break;
        case ADMIN_DUMP: end = do_dump(ws, cmd.arg); break;
        case ADMIN_RESTORE: end = do_restore(ws, cmd.arg); break;
        case ADMIN_VERIFY: do_text(ws, ADMIN_VERIFY, cmd.arg); break;
        case ADMIN_REMOVE:
            /* never the mail of a user this server serves: only a fenced account goes */
            if (userfence_check(g_cfg, cmd.arg) != 1) reply(s, "NO not fenced here: FENCE first");
            else do_text(ws, ADMIN_REMOVE, cmd.arg);
            break;
        case ADMIN_QUIT: break;
        }
        if (end) {
            ws->end_reason = end;
            break;
        }
    }
    free(admin);
    buf_fini(&line);
}

static const struct worker_ops admind_ops = {
    .name = "admind",
    .init = admind_init,
    .session = admind_session,
    .too_many = "NO too many connections from your address",
};

int main(int argc, char **argv)
{
    int rc = worker_main(argc, argv, &admind_ops);
    csasl_done();
    return rc;
}
