/* log.c: event logging to syslog or stderr. */
#include "core/log.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static char *g_ident;
static int g_stderr = 1;
static enum log_level g_min = LOG_LVL_INFO;
static char *g_session, *g_user, *g_mailbox;

void log_init(const char *ident, int to_stderr, enum log_level min_level)
{
    free(g_ident);
    g_ident = xstrdup(ident);
    g_stderr = to_stderr;
    g_min = min_level;
    if (!to_stderr) openlog(g_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void log_set_level(enum log_level min_level) { g_min = min_level; }
int log_to_stderr(void) { return g_stderr; }

int log_level_parse(const char *s, enum log_level *out)
{
    static const char *names[] = { "debug", "info", "notice", "warning", "error" };
    for (int i = 0; i < 5; i++)
        if (!strcasecmp(s, names[i])) { *out = (enum log_level)i; return 0; }
    return CF_E_PARSE;
}

static void setstr(char **slot, const char *v)
{
    free(*slot);
    *slot = v ? xstrdup(v) : NULL;
}

void log_set_session(const char *id) { setstr(&g_session, id); }
void log_set_user(const char *user) { setstr(&g_user, user); }
void log_set_mailbox(const char *mailbox) { setstr(&g_mailbox, mailbox); }
const char *log_session(void) { return g_session; }

const char *log_new_session_id(void)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char raw[12];
    char id[13];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, raw, sizeof raw) != (ssize_t)sizeof raw) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        unsigned long x = (unsigned long)tv.tv_usec ^ ((unsigned long)getpid() << 20) ^
                          (unsigned long)tv.tv_sec;
        for (size_t i = 0; i < sizeof raw; i++) { raw[i] = (unsigned char)x; x = x * 6364136223846793005UL + 1; }
    }
    if (fd >= 0) close(fd);
    for (size_t i = 0; i < sizeof raw; i++) id[i] = alphabet[raw[i] % 36];
    id[12] = '\0';
    log_set_session(id);
    return g_session;
}

/* quote_into: the quoting of log_quote, into out (LOG_QUOTE_SLOT bytes). */
enum { LOG_QUOTE_SLOT = 512, LOG_QUOTE_SLOTS = 32 };
static void quote_into(char *out, const char *v);

/* The ring used to have 4 slots and log_vevent took two of them for user= and mailbox=, so an
 * event with three quoted arguments logged one of them with another's value (review L9). Now
 * the event builder quotes into its own stack buffer and the ring is long enough for any one
 * event: the arguments of a call are all evaluated before the call. */
const char *log_quote(const char *v)
{
    static char slots[LOG_QUOTE_SLOTS][LOG_QUOTE_SLOT];
    static unsigned next;
    if (!v) return "-";
    char *out = slots[next];
    next = (next + 1) % LOG_QUOTE_SLOTS;
    quote_into(out, v);
    return out;
}

static void quote_into(char *out, const char *v)
{
    int bare = *v != '\0';
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f) { bare = 0; break; }
    size_t o = 0, max = 200;
    if (bare) {
        size_t n = strlen(v);
        if (n > max) n = max;
        memcpy(out, v, n);
        out[n] = '\0';
        return;
    }
    out[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)v; *p && o < max; p++) {
        if (*p == '"' || *p == '\\') { out[o++] = '\\'; out[o++] = (char)*p; }
        else if (*p < ' ' || *p == 0x7f) o += (size_t)snprintf(out + o, 8, "\\x%02x", *p);
        else out[o++] = (char)*p;
    }
    out[o++] = '"';
    out[o] = '\0';
}

void log_vevent(enum log_level lvl, const char *event, const char *fmt, va_list ap)
{
    if (lvl < g_min) return;
    static const int prio[] = { LOG_DEBUG, LOG_INFO, LOG_NOTICE, LOG_WARNING, LOG_ERR };
    static const char *names[] = { "debug", "info", "notice", "warning", "error" };
    struct buf b = BUF_INIT;
    buf_printf(&b, "event=%s", event);
    if (g_session) buf_printf(&b, " session=%s", g_session);
    char q[LOG_QUOTE_SLOT];
    if (g_user) {
        quote_into(q, g_user);
        buf_printf(&b, " user=%s", q);
    }
    size_t ctx = b.len;
    if (g_mailbox) {
        quote_into(q, g_mailbox);
        buf_printf(&b, " mailbox=%s", q);
    }
    size_t fields = b.len;
    if (fmt && *fmt) {
        buf_putc(&b, ' ');
        buf_vprintf(&b, fmt, ap);
    }
    /* an event whose first field names its own mailbox (APPEND to another one, SETACL) says it
     * once: its field wins over the selected mailbox of the session */
    if (g_mailbox && b.len > fields + 8 && !strncmp(buf_cstr(&b) + fields + 1, "mailbox=", 8)) {
        memmove(b.s + ctx, b.s + fields, b.len - fields + 1);   /* with the NUL buf_cstr put */
        b.len -= fields - ctx;
    }
    /* never let a newline from data split one event over two lines */
    for (size_t i = 0; i < b.len; i++)
        if (b.s[i] == '\n' || b.s[i] == '\r') b.s[i] = ' ';
    if (g_stderr) {
        struct timeval tv;
        struct tm tm;
        char ts[32];
        gettimeofday(&tv, NULL);
        localtime_r(&tv.tv_sec, &tm);
        strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
        fprintf(stderr, "%s.%03ld %s[%d] %s: %s\n", ts, (long)tv.tv_usec / 1000,
                g_ident ? g_ident : "coffer", (int)getpid(), names[lvl], buf_cstr(&b));
    } else {
        syslog(prio[lvl], "%s", buf_cstr(&b));
    }
    buf_fini(&b);
}

void log_event(enum log_level lvl, const char *event, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vevent(lvl, event, fmt, ap);
    va_end(ap);
}
