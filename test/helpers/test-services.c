/* test-services.c: runs the built imapd, pop3d and lmtpd in inetd mode (-i) on one end of a
 * socketpair and checks their exact replies: greetings, capabilities, pipelining, literals,
 * limits, unknown commands, idle timeout and SIGTERM.
 * Usage: test-services IMAPD POP3D LMTPD */
#include "core/buf.h"
#include "core/fileutil.h"
#include "core/unit.h"
#include "core/xmalloc.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[] = "/tmp/coffer-svctest-XXXXXX";
static const char *prog_imapd, *prog_pop3d, *prog_lmtpd;

struct peer {
    int fd;
    pid_t pid;
    struct buf in;
};

static void put(const char *name, const char *text)
{
    char *p = xasprintf("%s/%s", dir, name);
    file_write_atomic(p, text, strlen(text), 0600);
    free(p);
}

/* start: prog -C dir/conf -S svc -i with stdin and stdout on a socket; its log to a file. */
static void start(struct peer *p, const char *prog, const char *conf, const char *svc)
{
    int sv[2];
    memset(p, 0, sizeof *p);
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) abort();
    char *confpath = xasprintf("%s/%s", dir, conf);
    char *logpath = xasprintf("%s/%s.log", dir, svc);
    p->pid = fork();
    if (p->pid == 0) {
        int log = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(sv[1], 0);
        dup2(sv[1], 1);
        if (log >= 0) dup2(log, 2);
        close(sv[0]);
        close(sv[1]);
        execl(prog, prog, "-C", confpath, "-S", svc, "-i", (char *)NULL);
        _exit(127);
    }
    close(sv[1]);
    p->fd = sv[0];
    free(confpath);
    free(logpath);
}

static void finish(struct peer *p)
{
    close(p->fd);
    int st;
    while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR) {}
    buf_fini(&p->in);
}

static void send_str(struct peer *p, const char *s)
{
    UNIT_EQ_INT(write_all(p->fd, s, strlen(s)), 0);
}

/* line: the next line without CRLF (static storage), or NULL on EOF or after 5 seconds. */
static const char *line(struct peer *p)
{
    static char out[2048];
    for (;;) {
        char *lf = p->in.len ? memchr(p->in.s, '\n', p->in.len) : NULL;
        if (lf) {
            size_t n = (size_t)(lf - p->in.s);
            size_t m = n && p->in.s[n - 1] == '\r' ? n - 1 : n;
            if (m >= sizeof out) m = sizeof out - 1;
            memcpy(out, p->in.s, m);
            out[m] = '\0';
            buf_consume(&p->in, n + 1);
            return out;
        }
        struct pollfd pfd = { p->fd, POLLIN, 0 };
        if (poll(&pfd, 1, 5000) <= 0) return NULL;
        char b[4096];
        ssize_t r = read(p->fd, b, sizeof b);
        if (r <= 0) return NULL;
        buf_append(&p->in, b, (size_t)r);
    }
}

/* expect: the next lines are exactly those of want ("\n" separated). */
static void expect(struct peer *p, const char *want)
{
    char *copy = xstrdup(want), *save = NULL;
    for (char *w = strtok_r(copy, "\n", &save); w; w = strtok_r(NULL, "\n", &save)) {
        const char *got = line(p);
        UNIT_EQ_STR(got, w);
    }
    free(copy);
}

static void expect_prefix(struct peer *p, const char *prefix)
{
    const char *got = line(p);
    UNIT_CHECK(got && !strncmp(got, prefix, strlen(prefix)));
    if (!got || strncmp(got, prefix, strlen(prefix)))
        fprintf(stderr, "got '%s', want prefix '%s'\n", got ? got : "(eof)", prefix);
}

/* expect_caps: the next line starts with prefix and lists every word of want (space
 * separated) and none of unwanted: capability lists grow with the server, so no exact text. */
static void expect_caps(struct peer *p, const char *prefix, const char *want, const char *unwanted)
{
    const char *got = line(p);
    UNIT_CHECK(got && !strncmp(got, prefix, strlen(prefix)));
    if (!got) return;
    char *line_copy = xasprintf(" %s ", got);
    for (char *q = line_copy; *q; q++)
        if (*q == '[' || *q == ']') *q = ' ';
    for (int pass = 0; pass < 2; pass++) {
        char *words = xstrdup(pass ? unwanted : want), *save = NULL;
        for (char *w = strtok_r(words, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
            char *needle = xasprintf(" %s%s", w, w[strlen(w) - 1] == '=' ? "" : " ");
            int present = strstr(line_copy, needle) != NULL;
            if (present == pass) {
                fprintf(stderr, "capabilities '%s': %s '%s'\n", got, pass ? "unwanted" : "missing", w);
                UNIT_CHECK(0);
            } else {
                unit_passed++;
            }
            free(needle);
        }
        free(words);
    }
    free(line_copy);
}

static void expect_eof(struct peer *p)
{
    UNIT_CHECK(line(p) == NULL);
}

static void test_imapd(void)
{
    struct peer p;
    start(&p, prog_imapd, "coffer.conf", "imap");
    /* without TLS and allow_plaintext: LOGINDISABLED, no plaintext SASL mechanisms */
    expect_caps(&p, "* OK [CAPABILITY IMAP4rev1 ", "LITERAL+ LOGINDISABLED SASL-IR AUTH=SCRAM-SHA-256 IDLE",
                "STARTTLS AUTH=PLAIN AUTH=LOGIN");
    /* pipelined commands, any case, all answered in order */
    send_str(&p, "a1 capability\r\na2 NOOP\r\na3 SELECT INBOX\r\na4 noop extra\r\n"
                 "a5 UID FETCH 1:* (FLAGS)\r\na6 STARTTLS\r\na7 FROB\r\n");
    expect_caps(&p, "* CAPABILITY IMAP4rev1 ", "LITERAL+ LOGINDISABLED", "STARTTLS AUTH=PLAIN");
    expect(&p, "a1 OK CAPABILITY completed\n"
               "a2 OK NOOP completed\na3 BAD Not authenticated\n"
               "a4 BAD NOOP takes no arguments\na5 BAD No mailbox selected\n"
               "a6 BAD STARTTLS is not available\na7 BAD Unknown command FROB");
    /* a synchronizing literal gets "+", a non-synchronizing one does not */
    send_str(&p, "b1 LOGIN {4}\r\n");
    expect(&p, "+ Ready for literal data");
    send_str(&p, "fred {6+}\r\nsecret\r\n");
    expect(&p, "b1 NO [PRIVACYREQUIRED] LOGIN is disabled before STARTTLS");
    /* too large: a synchronizing APPEND literal is refused before "+" with NO [TOOBIG]
     * (RFC 7889 section 4); before login a non-synchronizing one is not read at all: BAD,
     * BYE and close (RFC 7888 section 4; after login it is skipped with its command,
     * test_hostile_parser.py) */
    send_str(&p, "b2 APPEND INBOX {1001}\r\n");
    expect(&p, "b2 NO [TOOBIG] Literal too large (limit 1000 bytes)");
    struct buf big = BUF_INIT;
    buf_appends(&big, "b3 APPEND INBOX {1001+}\r\n");
    for (int i = 0; i < 1001; i++) buf_putc(&big, 'x');
    buf_appends(&big, " (and more)\r\nb4 NOOP\r\n");
    send_str(&p, buf_cstr(&big));
    expect(&p, "b3 BAD [TOOBIG] Literal too large (limit 1000 bytes)\n"
               "* BYE [TOOBIG] Non-synchronizing literal too large");
    expect_eof(&p);
    finish(&p);
    start(&p, prog_imapd, "coffer.conf", "imap");
    expect_prefix(&p, "* OK [CAPABILITY IMAP4rev1 ");
    /* an overlong line, then syntax errors; the session goes on */
    buf_reset(&big);
    buf_appends(&big, "c1 NOOP ");
    for (int i = 0; i < 300; i++) buf_putc(&big, 'y');
    buf_appends(&big, "\r\nc2 X \"open\r\n* NOOP\r\nc3 X (a\r\nc4 FETCH 1 BODY[HEADER.FIELDS ()]\r\n"
                      "c5 FETCH 1 BODY.PEEK[HEADER.FIELDS (From)]<0.10>\r\n");
    send_str(&p, buf_cstr(&big));
    expect(&p, "* BAD Line too long\nc2 BAD Unterminated quoted string\n"
               "* BAD Missing or invalid tag\nc3 BAD Missing ')'\nc4 BAD Empty header field list\n"
               "c5 BAD No mailbox selected");
    buf_fini(&big);
    send_str(&p, "z LOGOUT\r\n");
    expect(&p, "* BYE Coffer IMAP4rev1 server logging out\nz OK LOGOUT completed");
    expect_eof(&p);
    finish(&p);

    /* allow_plaintext: no LOGINDISABLED (loopback or not, only the setting counts) */
    start(&p, prog_imapd, "plain.conf", "imap");
    expect_caps(&p, "* OK [CAPABILITY IMAP4rev1 ", "LITERAL+ AUTH=PLAIN AUTH=LOGIN", "LOGINDISABLED STARTTLS");
    finish(&p);

    start(&p, prog_imapd, "short.conf", "imap");
    expect_prefix(&p, "* OK [CAPABILITY");
    expect(&p, "* BYE Autologout; idle for too long");
    expect_eof(&p);
    finish(&p);

    start(&p, prog_imapd, "coffer.conf", "imap");
    expect_prefix(&p, "* OK [CAPABILITY");
    kill(p.pid, SIGTERM);
    expect(&p, "* BYE Server shutting down");
    expect_eof(&p);
    finish(&p);
}

static void test_pop3d(void)
{
    struct peer p;
    start(&p, prog_pop3d, "coffer.conf", "pop3");
    expect(&p, "+OK Coffer POP3 server ready");
    send_str(&p, "capa\r\nNOOP\r\nUSER fred\r\nnoop x\r\nSTLS\r\n\r\n");
    expect(&p, "+OK Capability list follows\nTOP\nUIDL\nSASL SCRAM-SHA-256 SCRAM-SHA-1\nRESP-CODES\n"
               "AUTH-RESP-CODE\nPIPELINING\nEXPIRE NEVER\nLOGIN-DELAY 0\nIMPLEMENTATION Coffer\n.\n"
               "-ERR NOOP is only allowed after login\n"
               "-ERR [AUTH] Plaintext authentication is disallowed without TLS (use STLS)\n"
               "-ERR NOOP is only allowed after login\n-ERR TLS is not available\n-ERR Unknown command");
    struct buf big = BUF_INIT;
    for (int i = 0; i < 300; i++) buf_putc(&big, 'y');
    buf_appends(&big, "\r\nQUIT\r\n");
    send_str(&p, buf_cstr(&big));
    buf_fini(&big);
    expect(&p, "-ERR Line too long\n+OK Coffer POP3 server signing off");
    expect_eof(&p);
    finish(&p);

    start(&p, prog_pop3d, "short.conf", "pop3");
    expect_prefix(&p, "+OK");
    expect(&p, "-ERR Autologout; idle for too long");
    finish(&p);

    start(&p, prog_pop3d, "coffer.conf", "pop3");
    expect_prefix(&p, "+OK");
    kill(p.pid, SIGTERM);
    expect(&p, "-ERR Server shutting down");
    finish(&p);
}

static void test_lmtpd(void)
{
    struct peer p;
    start(&p, prog_lmtpd, "coffer.conf", "lmtp");
    expect(&p, "220 test.host LMTP Coffer ready");
    send_str(&p, "LHLO mta.test\r\nhelo x\r\nEHLO x\r\nmail FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"
                 "noop\r\nRSET\r\nRSET x\r\nSTARTTLS\r\nLHLO\r\nFROB\r\n");
    expect(&p, "250-test.host\n250-PIPELINING\n250-ENHANCEDSTATUSCODES\n250-8BITMIME\n250-CHUNKING\n"
               /* -i is a local pipe, trusted like a UNIX socket: no AUTH (H4) */
               "250 SIZE 1000\n"
               "500 5.5.1 This is an LMTP server: use LHLO, not HELO\n"
               "500 5.5.1 This is an LMTP server: use LHLO, not EHLO\n"
               "250 2.1.0 Sender OK\n550 5.1.1 <c@d> User unknown\n503 5.5.1 No valid recipients\n"
               "250 2.0.0 OK\n250 2.0.0 OK\n501 5.5.4 Syntax: RSET takes no parameters\n"
               "454 4.7.0 TLS not available\n501 5.5.4 Syntax: LHLO hostname\n500 5.5.2 Unknown command");
    struct buf big = BUF_INIT;
    for (int i = 0; i < 300; i++) buf_putc(&big, 'y');
    buf_appends(&big, "\r\nQUIT\r\n");
    send_str(&p, buf_cstr(&big));
    buf_fini(&big);
    expect(&p, "500 5.5.2 Line too long\n221 2.0.0 test.host closing connection");
    expect_eof(&p);
    finish(&p);

    start(&p, prog_lmtpd, "short.conf", "lmtp");
    expect_prefix(&p, "220 ");
    expect(&p, "421 4.4.2 Idle timeout");
    finish(&p);

    start(&p, prog_lmtpd, "coffer.conf", "lmtp");
    expect_prefix(&p, "220 ");
    kill(p.pid, SIGTERM);
    expect(&p, "421 4.3.2 Server shutting down");
    finish(&p);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: test-services IMAPD POP3D LMTPD\n");
        return 2;
    }
    prog_imapd = argv[1];
    prog_pop3d = argv[2];
    prog_lmtpd = argv[3];
    signal(SIGPIPE, SIG_IGN);
    if (!mkdtemp(dir)) return 2;
    static const char services[] =
        "[service imap]\nprogram = imapd\nlisten = 127.0.0.1:1\n"
        "[service pop3]\nprogram = pop3d\nlisten = 127.0.0.1:2\n"
        "[service lmtp]\nprogram = lmtpd\nlisten = 127.0.0.1:3\n";
    static const char common[] = "configdir = conf\nhostname = test.host\nlog_target = stderr\n"
                                 "max_line = 200\nmax_literal = 1000\n";
    char *conf = xasprintf("%sidle_timeout = 30s\n%s", common, services);
    char *plain = xasprintf("%sallow_plaintext = yes\n%s", common, services);
    char *shortc = xasprintf("%sidle_timeout = 1s\n%s", common, services);
    put("coffer.conf", conf);
    put("plain.conf", plain);
    put("short.conf", shortc);
    free(conf);
    free(plain);
    free(shortc);
    char *parts = xasprintf("default %s/spool\n", dir);
    put("partitions.conf", parts);
    free(parts);

    test_imapd();
    test_pop3d();
    test_lmtpd();

    if (unit_failed) fprintf(stderr, "logs are in %s\n", dir);
    else {
        char *cmd = xasprintf("rm -rf %s", dir);
        if (system(cmd)) unit_failed++;
        free(cmd);
    }
    UNIT_DONE();
}
