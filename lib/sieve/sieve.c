/* sieve.c: running and validating Sieve scripts through libsieve, and the per-user script files. */
#include "sieve/sieve.h"
#include "core/error.h"
#include "core/fileutil.h"
#include "core/log.h"
#include "core/xmalloc.h"
#include "mime/decode.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>     /* sieve2_error.h uses NULL without including it */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sieve2.h>

/* libsieve leaks a few small strings per run (its own allocations, e.g. in libsieve_strdup,
 * and its parse tree after a syntax error). Under LeakSanitizer those would fail every test
 * that runs a script, so its allocations are not tracked; ours still are. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define LIBSIEVE_ENTER() __lsan_disable()
#define LIBSIEVE_LEAVE() __lsan_enable()
#else
#define LIBSIEVE_ENTER() ((void)0)
#define LIBSIEVE_LEAVE() ((void)0)
#endif

/* The state of one libsieve run. Strings handed to libsieve stay alive until the run ends
 * (libsieve keeps pointers to them), so they are collected in keep. */
struct run {
    const char *script;
    const struct sieve_input *in;
    struct sieve_result *r;
    struct strarr keep;          /* strings handed to libsieve */
    char ***lists;               /* string lists handed to libsieve */
    size_t nlists;
    int parse_errors;
    struct buf *err;
};

static char *hold(struct run *u, char *s)
{
    strarr_take(&u->keep, s);
    return s;
}

static char **hold_list(struct run *u, char **l)
{
    u->lists = xrealloc(u->lists, (u->nlists + 1) * sizeof *u->lists);
    u->lists[u->nlists++] = l;
    return l;
}

/* action_flags: the IMAP flags an action carries (RFC 5232). libsieve 2.2 names the value
 * "flags" (its older imapflags support used "imapflags"); ask for both. */
static char **action_flags(sieve2_context_t *s)
{
    char **f = sieve2_getvalue_stringlist(s, "flags");
    return f ? f : sieve2_getvalue_stringlist(s, "imapflags");
}

static void copy_flags(struct strarr *out, char **flags)
{
    /* libsieve hands the flag strings over with their quoted-string escapes still in them (a
     * script's "\\\\Seen" arrives as two backslashes, then Seen): undo RFC 5228 section
     * 2.4.2's escaping here */
    for (; flags && *flags; flags++) {
        char *f = xstrdup(*flags), *w = f;
        for (const char *p = *flags; *p; p++) {
            if (*p == '\\' && (p[1] == '\\' || p[1] == '"')) p++;
            *w++ = *p;
        }
        *w = '\0';
        strarr_take(out, f);
    }
}

static int cb_getscript(sieve2_context_t *s, void *rock)
{
    struct run *u = rock;
    const char *path = sieve2_getvalue_string(s, "path");
    const char *name = sieve2_getvalue_string(s, "name");
    if ((path && *path) || (name && *name)) return SIEVE2_ERROR_UNSUPPORTED;   /* include */
    sieve2_setvalue_string(s, "script", (char *)u->script);
    return SIEVE2_OK;
}

static int cb_parse_error(sieve2_context_t *s, void *rock)
{
    struct run *u = rock;
    const char *m = sieve2_getvalue_string(s, "message");
    u->parse_errors++;
    buf_printf(u->err, "line %d: %s\n", sieve2_getvalue_int(s, "lineno"), m ? m : "error");
    return SIEVE2_OK;
}

static int cb_runtime_error(sieve2_context_t *s, void *rock)
{
    struct run *u = rock;
    const char *m = sieve2_getvalue_string(s, "message");
    int line = sieve2_getvalue_int(s, "lineno");
    u->r->error = 1;
    if (line > 0) buf_printf(&u->r->errors, "line %d: runtime: %s\n", line, m ? m : "error");
    else buf_printf(&u->r->errors, "runtime: %s\n", m ? m : "error");
    return SIEVE2_OK;
}

static int cb_keep(sieve2_context_t *s, void *rock)
{
    struct run *u = rock;
    u->r->keep = 1;
    copy_flags(&u->r->keep_flags, action_flags(s));
    return SIEVE2_OK;
}

static int cb_fileinto(sieve2_context_t *s, void *rock)
{
    struct run *u = rock;
    const char *mb = sieve2_getvalue_string(s, "mailbox");
    if (!mb) return SIEVE2_ERROR_BADARGS;
    struct sieve_result *r = u->r;
    r->fileinto = xrealloc(r->fileinto, (r->nfileinto + 1) * sizeof *r->fileinto);
    struct sieve_fileinto *f = &r->fileinto[r->nfileinto++];
    f->mailbox = xstrdup(mb);
    strarr_init(&f->flags);
    copy_flags(&f->flags, action_flags(s));
    return SIEVE2_OK;
}

static int cb_redirect(sieve2_context_t *s, void *rock)
{
    struct run *u = rock;
    const char *a = sieve2_getvalue_string(s, "address");
    if (!a) return SIEVE2_ERROR_BADARGS;
    if (u->in->max_redirects > 0 && u->r->redirect.count >= (size_t)u->in->max_redirects) {
        u->r->error = 1;
        buf_printf(&u->r->errors, "runtime: more than %d redirect actions\n",
                   u->in->max_redirects);
        return SIEVE2_ERROR_FAIL;
    }
    strarr_add(&u->r->redirect, a);
    return SIEVE2_OK;
}

static int cb_reject(sieve2_context_t *s, void *rock)
{
    struct run *u = rock;
    const char *m = sieve2_getvalue_string(s, "message");
    free(u->r->reject);
    u->r->reject = xstrdup(m && *m ? m : "Rejected");
    return SIEVE2_OK;
}

static int cb_discard(sieve2_context_t *s, void *rock)
{
    (void)s;
    ((struct run *)rock)->r->discard = 1;
    return SIEVE2_OK;
}

static char *dup_or_null(const char *s) { return s ? xstrdup(s) : NULL; }

/* first_header: the unfolded, decoded value of the first field name into out (empty when
 * there is none). */
static void first_header(const struct sieve_input *in, const char *name, struct buf *out)
{
    const char *v;
    size_t n;
    if (!mime_header_find(in->msg, in->len, name, &v, &n)) return;
    struct buf raw = BUF_INIT;
    mime_header_unfold(v, n, &raw);
    mime_decode_header(raw.s ? raw.s : "", raw.len, out);
    buf_fini(&raw);
}

/* notify_text: tmpl with draft-martin-sieve-notify-01 section 3.5's variables filled in:
 * $from$, $env-from$, $subject$, $text$ and $text[n]$ (the first n bytes of the body, 256
 * without n); control characters become spaces, and the text is cut at 1000 bytes. */
static char *notify_text(const char *tmpl, const struct sieve_input *in)
{
    struct buf out = BUF_INIT;
    for (const char *p = tmpl; *p;) {
        const char *end;
        size_t textn = 0;
        if (*p == '$' && !strncmp(p, "$from$", 6)) {
            first_header(in, "From", &out);
            p += 6;
        } else if (*p == '$' && !strncmp(p, "$env-from$", 10)) {
            buf_appends(&out, in->env_from ? in->env_from : "");
            p += 10;
        } else if (*p == '$' && !strncmp(p, "$subject$", 9)) {
            first_header(in, "Subject", &out);
            p += 9;
        } else if (*p == '$' && (!strncmp(p, "$text$", 6) ||
                   (!strncmp(p, "$text[", 6) && (textn = strtoul(p + 6, (char **)&end, 10)) &&
                    !strncmp(end, "]$", 2)))) {
            const char *body = memmem(in->msg, in->len, "\r\n\r\n", 4);
            size_t off = body ? (size_t)(body - in->msg) + 4 : in->len;
            size_t n = textn ? textn : 256;
            if (n > in->len - off) n = in->len - off;
            buf_append(&out, in->msg + off, n);
            p = textn ? end + 2 : p + 6;
        } else {
            buf_putc(&out, *p++);
        }
        if (out.len > 1000) break;
    }
    if (out.len > 1000) buf_truncate(&out, 1000);
    for (size_t i = 0; i < out.len; i++)
        if ((unsigned char)out.s[i] < 0x20 || out.s[i] == 0x7f) out.s[i] = ' ';
    return buf_release(&out);
}

static int cb_notify(sieve2_context_t *s, void *rock)
{
    struct run *u = rock;
    const char *method = sieve2_getvalue_string(s, "method");
    char **to = sieve2_getvalue_stringlist(s, "options");
    /* without :method, mailto: the only one there is (draft-martin-sieve-notify-01 leaves
     * the default to the implementation); sieve_check refuses any other at upload */
    if ((method && strcasecmp(method, "mailto")) || !to || !*to) {
        u->r->error = 1;
        buf_printf(&u->r->errors, "runtime: notify needs :method \"mailto\" and an address "
                   "in :options (got method %s)\n", method ? method : "none");
        return SIEVE2_ERROR_FAIL;
    }
    struct sieve_result *r = u->r;
    r->notify = xrealloc(r->notify, (r->nnotify + 1) * sizeof *r->notify);
    struct sieve_notify *n = &r->notify[r->nnotify++];
    strarr_init(&n->to);
    for (; *to; to++) {
        /* mailto:addr is the form RFC 5436 uses; the draft gives the bare address */
        const char *a = !strncasecmp(*to, "mailto:", 7) ? *to + 7 : *to;
        strarr_add(&n->to, a);
    }
    const char *prio = sieve2_getvalue_string(s, "priority");
    const char *msg = sieve2_getvalue_string(s, "message");
    n->priority = xstrdup(prio ? prio : "normal");
    n->message = notify_text(msg ? msg : "$from$: $subject$", u->in);
    return SIEVE2_OK;
}

static int cb_vacation(sieve2_context_t *s, void *rock)
{
    struct sieve_result *r = ((struct run *)rock)->r;
    const char *addr = sieve2_getvalue_string(s, "address");
    const char *msg = sieve2_getvalue_string(s, "message");
    if (!addr || !msg) return SIEVE2_ERROR_BADARGS;
    r->vacation = 1;
    free(r->vac_address);
    free(r->vac_from);
    free(r->vac_subject);
    free(r->vac_message);
    r->vac_address = xstrdup(addr);
    r->vac_from = dup_or_null(sieve2_getvalue_string(s, "fromaddr"));
    r->vac_subject = dup_or_null(sieve2_getvalue_string(s, "subject"));
    r->vac_message = xstrdup(msg);
    r->vac_days = sieve2_getvalue_int(s, "days");
    r->vac_mime = sieve2_getvalue_int(s, "mime");
    return SIEVE2_OK;
}

struct values_rock { const char *name; struct strarr out; };

static int values_cb(void *rock, const char *name, size_t name_len, const char *value,
                     size_t value_len)
{
    struct values_rock *vr = rock;
    if (name_len == strlen(vr->name) && !strncasecmp(name, vr->name, name_len)) {
        struct buf v = BUF_INIT;
        mime_header_unfold(value, value_len, &v);
        strarr_take(&vr->out, buf_release(&v));
    }
    return 0;
}

/* header_values: the unfolded values of every field called name in the header section, as a
 * NULL-terminated array (freed with the run), or NULL when there is none. */
static char **header_values(const char *msg, size_t len, const char *name)
{
    struct values_rock vr = { name, STRARR_INIT };
    mime_header_foreach(msg, len, values_cb, &vr);
    if (!vr.out.count) {
        strarr_fini(&vr.out);
        return NULL;
    }
    return vr.out.v;
}

static int cb_getheader(sieve2_context_t *s, void *rock)
{
    struct run *u = rock;
    const char *name = sieve2_getvalue_string(s, "header");
    if (!name) return SIEVE2_ERROR_BADARGS;
    char **v = header_values(u->in->msg, u->in->len, name);
    if (v) sieve2_setvalue_stringlist(s, "body", hold_list(u, v));
    return SIEVE2_OK;
}

static int cb_getenvelope(sieve2_context_t *s, void *rock)
{
    struct run *u = rock;
    sieve2_setvalue_string(s, "from", hold(u, xstrdup(u->in->env_from ? u->in->env_from : "")));
    sieve2_setvalue_string(s, "to", hold(u, xstrdup(u->in->env_to ? u->in->env_to : "")));
    return SIEVE2_OK;
}

static int cb_getsize(sieve2_context_t *s, void *rock)
{
    struct run *u = rock;
    sieve2_setvalue_int(s, "size", u->in->len > 0x7fffffff ? 0x7fffffff : (int)u->in->len);
    return SIEVE2_OK;
}

/* RFC 5233: user+detail@domain; the local part and domain split at the last '@'. */
static int cb_getsubaddress(sieve2_context_t *s, void *rock)
{
    struct run *u = rock;
    const char *a = sieve2_getvalue_string(s, "address");
    if (!a) return SIEVE2_ERROR_BADARGS;
    const char *at = strrchr(a, '@');
    char *local = hold(u, xstrndup(a, at ? (size_t)(at - a) : strlen(a)));
    char *plus = strchr(local, '+');
    sieve2_setvalue_string(s, "localpart", local);
    sieve2_setvalue_string(s, "domain", hold(u, xstrdup(at ? at + 1 : "")));
    sieve2_setvalue_string(s, "user", hold(u, xstrndup(local, plus ? (size_t)(plus - local)
                                                             : strlen(local))));
    if (plus) sieve2_setvalue_string(s, "detail", hold(u, xstrdup(plus + 1)));
    return SIEVE2_OK;
}

static sieve2_callback_t callbacks[] = {
    { SIEVE2_SCRIPT_GETSCRIPT, cb_getscript },
    { SIEVE2_ERRCALL_PARSE, cb_parse_error },
    { SIEVE2_ERRCALL_RUNTIME, cb_runtime_error },
    { SIEVE2_ACTION_KEEP, cb_keep },
    { SIEVE2_ACTION_FILEINTO, cb_fileinto },
    { SIEVE2_ACTION_REDIRECT, cb_redirect },
    { SIEVE2_ACTION_REJECT, cb_reject },
    { SIEVE2_ACTION_DISCARD, cb_discard },
    { SIEVE2_ACTION_VACATION, cb_vacation },
    { SIEVE2_ACTION_NOTIFY, cb_notify },
    { SIEVE2_MESSAGE_GETHEADER, cb_getheader },
    { SIEVE2_MESSAGE_GETENVELOPE, cb_getenvelope },
    { SIEVE2_MESSAGE_GETSIZE, cb_getsize },
    { SIEVE2_MESSAGE_GETSUBADDRESS, cb_getsubaddress },
    { SIEVE2_VALUE_FIRST, NULL },
};

void sieve_result_init(struct sieve_result *r)
{
    memset(r, 0, sizeof *r);
    strarr_init(&r->keep_flags);
    strarr_init(&r->redirect);
    buf_init(&r->errors);
}

void sieve_result_fini(struct sieve_result *r)
{
    strarr_fini(&r->keep_flags);
    for (size_t i = 0; i < r->nfileinto; i++) {
        free(r->fileinto[i].mailbox);
        strarr_fini(&r->fileinto[i].flags);
    }
    free(r->fileinto);
    free(r->reject);
    strarr_fini(&r->redirect);
    free(r->vac_address);
    free(r->vac_from);
    free(r->vac_subject);
    free(r->vac_message);
    for (size_t i = 0; i < r->nnotify; i++) {
        strarr_fini(&r->notify[i].to);
        free(r->notify[i].priority);
        free(r->notify[i].message);
    }
    free(r->notify);
    buf_fini(&r->errors);
    sieve_result_init(r);
}

static char g_extensions[512];

const char *sieve_extensions(void)
{
    if (!g_extensions[0]) {
        LIBSIEVE_ENTER();
        sieve2_context_t *c = NULL;
        if (sieve2_alloc(&c) == SIEVE2_OK && sieve2_callbacks(c, callbacks) == SIEVE2_OK) {
            const char *e = sieve2_listextensions(c);
            size_t n = strlen(e ? e : "");
            while (n && e[n - 1] == ' ') n--;
            if (n >= sizeof g_extensions) n = sizeof g_extensions - 1;
            memcpy(g_extensions, e, n);
            g_extensions[n] = '\0';
        }
        if (c) sieve2_free(&c);
        LIBSIEVE_LEAVE();
    }
    return g_extensions;
}

/* run: validate (in == NULL) or execute. Returns 0, CF_E_PARSE or CF_E_INTERNAL. */
static int run(const char *script, const struct sieve_input *in, struct sieve_result *r,
               struct buf *err)
{
    struct run u;
    memset(&u, 0, sizeof u);
    u.script = script;
    u.in = in;
    u.r = r;
    u.err = err;
    strarr_init(&u.keep);
    sieve2_context_t *c = NULL;
    int ret = 0;
    LIBSIEVE_ENTER();
    if (sieve2_alloc(&c) != SIEVE2_OK || sieve2_callbacks(c, callbacks) != SIEVE2_OK) {
        buf_appends(err, "libsieve: cannot set up\n");
        ret = CF_E_INTERNAL;
        goto done;
    }
    int sr = in ? sieve2_execute(c, &u) : sieve2_validate(c, &u);
    /* libsieve reports parse errors through the callback and may still return OK */
    if (u.parse_errors) ret = CF_E_PARSE;
    else if (sr != SIEVE2_OK) {
        buf_printf(err, "libsieve: %s\n", sieve2_errstr(sr));
        ret = sr == SIEVE2_ERROR_PARSE ? CF_E_PARSE : CF_E_INTERNAL;
    }
done:
    if (c) sieve2_free(&c);
    LIBSIEVE_LEAVE();
    for (size_t i = 0; i < u.nlists; i++) {
        for (char **p = u.lists[i]; *p; p++) free(*p);
        free(u.lists[i]);
    }
    free(u.lists);
    strarr_fini(&u.keep);
    return ret;
}

struct method_rock { struct buf *err; int bad; };

static void check_method(void *rock, const char *method, int line)
{
    struct method_rock *m = rock;
    if (!strcasecmp(method, "mailto")) return;
    buf_printf(m->err, "line %d: notify :method \"%s\" is not supported (only \"mailto\")\n",
               line, method);
    m->bad = 1;
}

int sieve_check(const char *script, struct buf *err)
{
    struct sieve_result r;
    sieve_result_init(&r);
    int ret = run(script, NULL, &r, err);
    sieve_result_fini(&r);
    if (ret == 0) {
        struct method_rock m = { err, 0 };
        sieve_scan_notify(script, strlen(script), check_method, &m);
        if (m.bad) ret = CF_E_PARSE;
    }
    return ret;
}

int sieve_run(const char *script, const struct sieve_input *in, struct sieve_result *r)
{
    sieve_result_fini(r);
    int ret = run(script, in, r, &r->errors);
    if (ret < 0 || r->error) {
        /* RFC 5228 section 2.10.6: an error cancels everything and keeps the message */
        struct buf keep = BUF_INIT;
        buf_append(&keep, r->errors.s ? r->errors.s : "", r->errors.len);
        sieve_result_fini(r);
        r->errors = keep;
        r->error = 1;
        r->keep = 1;
        return ret < 0 ? ret : CF_E_INTERNAL;
    }
    if (!r->keep && !r->nfileinto && !r->discard && !r->reject && !r->redirect.count)
        r->keep = 1;                               /* implicit keep, RFC 5228 section 2.10.2 */
    return 0;
}

/* ---- storage ---- */

/* utf8_char: the code point of the UTF-8 sequence at p (at most n bytes) and its length in
 * *len_r, or -1 for a malformed, overlong or surrogate sequence. */
static long utf8_char(const unsigned char *p, size_t n, size_t *len_r)
{
    static const long min[] = { 0, 0, 0x80, 0x800, 0x10000 };
    size_t len = p[0] < 0x80 ? 1 : (p[0] & 0xe0) == 0xc0 ? 2 : (p[0] & 0xf0) == 0xe0 ? 3
               : (p[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (!len || len > n) return -1;
    long c = len == 1 ? p[0] : p[0] & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) return -1;
        c = (c << 6) | (p[i] & 0x3f);
    }
    if (c < min[len] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return -1;
    *len_r = len;
    return c;
}

int sieve_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (!n || n > SIEVE_MAX_NAME || name[0] == '.' || !strcmp(name, "active")) return 0;
    const unsigned char *p = (const unsigned char *)name;
    for (size_t i = 0, len; i < n; i += len) {
        long c = utf8_char(p + i, n - i, &len);
        /* RFC 5804 section 1.6: no control characters (Cc), no line or paragraph separator;
         * '/' is ours: a name is one file name */
        if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x2028 || c == 0x2029 || c == '/')
            return 0;
    }
    return 1;
}

static int user_valid(const char *user)
{
    return *user && user[0] != '.' && !strchr(user, '/') && strlen(user) < 256;
}

static char *user_dir(const struct config *cfg, const char *user)
{
    return xasprintf("%s/sieve/%s", config_str(cfg, CFG_CONFIGDIR), user);
}

/* store_lock: the user's directory (made when missing), flock'ed exclusively, so that two
 * sessions changing one user's scripts (count limit, rename, delete of the active one) see
 * each other's changes whole. Readers (lmtpd) take no lock: every change they can see is one
 * rename. *fd_r is closed by the caller (which drops the lock). 0 or CF_E_IO (logged). */
static int store_lock(const char *dir, int *fd_r)
{
    if (mkdir_p(dir, 0700) < 0) {
        log_err("sieve_store_failed", "call=mkdir path=%s error=%s", log_quote(dir),
                log_quote(strerror(errno)));
        return CF_E_IO;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || flock(fd, LOCK_EX) < 0) {
        log_err("sieve_store_failed", "call=lock path=%s error=%s", log_quote(dir),
                log_quote(strerror(errno)));
        if (fd >= 0) close(fd);
        return CF_E_IO;
    }
    *fd_r = fd;
    return 0;
}

/* script_count: how many NAME.sieve files dir holds; *has_r: whether name is one of them. */
static size_t script_count(const char *dir, const char *name, int *has_r)
{
    *has_r = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t count = 0;
    while (d && (de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n <= 6 || strcmp(de->d_name + n - 6, ".sieve") || de->d_name[0] == '.') continue;
        count++;
        if (name && n - 6 == strlen(name) && !memcmp(de->d_name, name, n - 6)) *has_r = 1;
    }
    if (d) closedir(d);
    return count;
}

size_t sieve_max_size(const struct config *cfg)
{
    long long m = config_int(cfg, CFG_SIEVE_MAX_SCRIPT_SIZE);
    return m <= 0 || m > SIEVE_MAX_SCRIPT ? SIEVE_MAX_SCRIPT : (size_t)m;
}

/* space: the limits check of a put of name (size bytes) into dir, under the lock. */
static int space(const struct config *cfg, const char *dir, const char *name, size_t size)
{
    if (size > sieve_max_size(cfg)) return SIEVE_E_MAXSIZE;
    long long max = config_int(cfg, CFG_SIEVE_MAX_SCRIPTS);
    int has;
    size_t n = script_count(dir, name, &has);
    if (max > 0 && !has && n >= (size_t)max) return SIEVE_E_MAXSCRIPTS;
    return 0;
}

int sieve_havespace(const struct config *cfg, const char *user, const char *name, size_t size)
{
    if (!user_valid(user) || !sieve_name_valid(name)) return CF_E_PARSE;
    char *dir = user_dir(cfg, user);
    int r = space(cfg, dir, name, size);
    free(dir);
    return r;
}

int sieve_put(const struct config *cfg, const char *user, const char *name, const char *data,
              size_t len, unsigned flags, struct buf *err)
{
    if (!user_valid(user) || !sieve_name_valid(name)) {
        buf_appends(err, "invalid user or script name\n");
        return CF_E_PARSE;
    }
    if (len > SIEVE_MAX_SCRIPT) return SIEVE_E_MAXSIZE;
    if (memchr(data, '\0', len)) {
        buf_appends(err, "a script is text: it holds no NUL byte\n");
        return CF_E_PARSE;
    }
    char *text = xstrndup(data, len);
    int r = sieve_check(text, err);
    free(text);
    if (r < 0) return r;
    char *dir = user_dir(cfg, user);
    char *path = xasprintf("%s/%s.sieve", dir, name);
    int fd = -1;
    r = store_lock(dir, &fd);
    if (!r && (flags & SIEVE_PUT_LIMITS)) r = space(cfg, dir, name, len);
    /* a new file renamed over the old one: a delivery reads the old script or the new one */
    if (!r) r = file_write_atomic(path, data, len, 0600);
    if (fd >= 0) close(fd);
    free(dir);
    free(path);
    return r;
}

int sieve_get(const struct config *cfg, const char *user, const char *name, char **data_r,
              size_t *len_r)
{
    if (!user_valid(user) || !sieve_name_valid(name)) return CF_E_PARSE;
    char *dir = user_dir(cfg, user);
    char *path = xasprintf("%s/%s.sieve", dir, name);
    int r = file_read_all(path, SIEVE_MAX_SCRIPT, data_r, len_r);
    free(dir);
    free(path);
    return r;
}

/* active_name: the script "active" points to, or NULL. */
static char *active_name(const char *dir)
{
    char *link = xasprintf("%s/active", dir);
    char target[512];
    ssize_t n = readlink(link, target, sizeof target - 1);
    free(link);
    if (n <= 0) return NULL;
    target[n] = '\0';
    size_t tl = (size_t)n;
    if (tl <= 6 || strcmp(target + tl - 6, ".sieve")) return NULL;
    target[tl - 6] = '\0';
    return xstrdup(target);
}

int sieve_list(const struct config *cfg, const char *user, struct strarr *names,
               char **active_r)
{
    if (active_r) *active_r = NULL;
    if (!user_valid(user)) return CF_E_PARSE;
    char *dir = user_dir(cfg, user);
    DIR *d = opendir(dir);
    if (!d) {
        int e = errno;
        free(dir);
        return e == ENOENT ? 0 : CF_E_IO;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n > 6 && !strcmp(de->d_name + n - 6, ".sieve") && de->d_name[0] != '.')
            strarr_take(names, xstrndup(de->d_name, n - 6));
    }
    closedir(d);
    strarr_sort(names);
    if (active_r) *active_r = active_name(dir);
    free(dir);
    return 0;
}

/* ---- "no active script", remembered ----
 *
 * Every delivery looked for the recipient's "active" link, and for a user without one that
 * was a failing open per delivery. A process now remembers a user's "none" together with the
 * value of a change counter, configdir/sieve/.changes (8 bytes, mapped shared by every
 * process that reads or changes links; not a user name: those never start with '.'). Every
 * change of a link (set_active, sieve_deactivate) adds one to it after the change, so a
 * "none" remembered under an older value is looked up again. The value is read before the
 * lookup: a link made during the lookup is followed by an increment the next delivery sees.
 * Remembered for at most SIEVE_NONE_TTL seconds besides (a counter file removed or replaced
 * under a running process, a writer that died between its rename and its increment). Found
 * scripts are read every time, as before. */
#define SIEVE_CHANGES_FILE ".changes"
#define SIEVE_NONE_TTL 60
#define SIEVE_NONE_SLOTS 64

struct sieve_stats sieve_stats;

static uint64_t *changes_map;
static char *changes_dir;       /* the configdir it was mapped for */
static time_t changes_failed;   /* when it last could not be had (retried a minute later) */

static time_t now_coarse(void);

/* changes_counter: the mapped counter of cfg's store (made when missing), or NULL when it
 * cannot be had (then nothing is remembered). */
static uint64_t *changes_counter(const struct config *cfg)
{
    const char *cd = config_str(cfg, CFG_CONFIGDIR);
    if (changes_map && changes_dir && !strcmp(changes_dir, cd)) return changes_map;
    time_t now = now_coarse();
    if (changes_failed && now - changes_failed < SIEVE_NONE_TTL && now >= changes_failed)
        return NULL;   /* not a failing open and a log line per delivery */
    if (changes_map) munmap(changes_map, sizeof *changes_map);
    changes_map = NULL;
    free(changes_dir);
    changes_dir = NULL;
    char *root = xasprintf("%s/sieve", cd);
    char *path = xasprintf("%s/%s", root, SIEVE_CHANGES_FILE);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && errno == ENOENT && mkdir_p(root, 0700) == 0)
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
        (st.st_size >= (off_t)sizeof *changes_map ||
         ftruncate(fd, (off_t)sizeof *changes_map) == 0)) {
        void *m = mmap(NULL, sizeof *changes_map, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m != MAP_FAILED) {
            changes_map = m;
            changes_dir = xstrdup(cd);
        }
    }
    changes_failed = 0;
    if (!changes_map) {
        log_warn("sieve_changes_unavailable", "path=%s error=%s", log_quote(path),
                 log_quote(fd < 0 ? strerror(errno) : "not usable"));
        changes_failed = now ? now : 1;
    }
    if (fd >= 0) close(fd);
    free(path);
    free(root);
    return changes_map;
}

/* changes_note: after a change of a user's link, the increment every process's remembered
 * "none" is checked against. */
static void changes_note(const struct config *cfg)
{
    changes_failed = 0;   /* a change always tries: the others' "none" depends on it */
    uint64_t *c = changes_counter(cfg);
    if (c) __atomic_add_fetch(c, 1, __ATOMIC_SEQ_CST);
}

static struct none_slot {
    char *user;
    uint64_t changes;
    time_t at;
} none_slots[SIEVE_NONE_SLOTS];
static unsigned none_next;

static time_t now_coarse(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);   /* the vDSO: no system call */
    return ts.tv_sec;
}

static struct none_slot *none_find(const char *user)
{
    for (unsigned i = 0; i < SIEVE_NONE_SLOTS; i++)
        if (none_slots[i].user && !strcmp(none_slots[i].user, user)) return &none_slots[i];
    return NULL;
}

/* set_active: point dir/active at NAME.sieve: a new link renamed over the old one, so there is
 * never a moment without an active script. 0 or CF_E_IO (logged). */
static int set_active(const struct config *cfg, const char *dir, const char *name)
{
    char *target = xasprintf("%s.sieve", name);
    char *tmp = xasprintf("%s/active.tmp.%d", dir, (int)getpid());
    char *link = xasprintf("%s/active", dir);
    int r = 0;
    unlink(tmp);
    if (symlink(target, tmp) < 0 || rename(tmp, link) < 0 || fsync_dir(dir, 1) < 0) {
        log_err("sieve_activate_failed", "path=%s error=%s", log_quote(link),
                log_quote(strerror(errno)));
        unlink(tmp);
        r = CF_E_IO;
    }
    changes_note(cfg);   /* also after a failure: the rename may have been done */
    free(target);
    free(tmp);
    free(link);
    return r;
}

int sieve_activate(const struct config *cfg, const char *user, const char *name)
{
    if (!user_valid(user) || !sieve_name_valid(name)) return CF_E_PARSE;
    char *dir = user_dir(cfg, user);
    char *path = xasprintf("%s/%s.sieve", dir, name);
    int fd = -1, r = store_lock(dir, &fd);
    struct stat sb;
    if (!r && stat(path, &sb) < 0) r = CF_E_NOTFOUND;
    if (!r) r = set_active(cfg, dir, name);
    if (fd >= 0) close(fd);
    free(dir);
    free(path);
    return r;
}

int sieve_deactivate(const struct config *cfg, const char *user)
{
    if (!user_valid(user)) return CF_E_PARSE;
    char *dir = user_dir(cfg, user);
    char *link = xasprintf("%s/active", dir);
    int fd = -1, r = store_lock(dir, &fd);
    if (!r) r = unlink(link) < 0 ? (errno == ENOENT ? CF_E_NOTFOUND : CF_E_IO) : 0;
    if (!r) fsync_dir(dir, 1);
    changes_note(cfg);
    if (fd >= 0) close(fd);
    free(dir);
    free(link);
    return r;
}

int sieve_delete(const struct config *cfg, const char *user, const char *name)
{
    if (!user_valid(user) || !sieve_name_valid(name)) return CF_E_PARSE;
    char *dir = user_dir(cfg, user);
    char *path = xasprintf("%s/%s.sieve", dir, name);
    int fd = -1, r = store_lock(dir, &fd);
    char *act = r ? NULL : active_name(dir);
    if (r) {
    } else if (act && !strcmp(act, name)) {
        r = CF_E_PERM;                                     /* deactivate it first */
    } else if (unlink(path) < 0) {
        r = errno == ENOENT ? CF_E_NOTFOUND : CF_E_IO;
    } else {
        fsync_dir(dir, 1);
    }
    if (fd >= 0) close(fd);
    free(act);
    free(dir);
    free(path);
    return r;
}

int sieve_rename(const struct config *cfg, const char *user, const char *oldname,
                 const char *newname)
{
    if (!user_valid(user) || !sieve_name_valid(oldname) || !sieve_name_valid(newname))
        return CF_E_PARSE;
    char *dir = user_dir(cfg, user);
    char *from = xasprintf("%s/%s.sieve", dir, oldname);
    char *to = xasprintf("%s/%s.sieve", dir, newname);
    int fd = -1, r = store_lock(dir, &fd);
    char *act = r ? NULL : active_name(dir);
    struct stat sb;
    if (r) {
    } else if (stat(from, &sb) < 0) {
        r = CF_E_NOTFOUND;
    } else if (link(from, to) < 0) {
        /* link, not rename: it never replaces an existing script (RFC 5804 section 2.11.1) */
        if (errno == EEXIST) r = CF_E_EXISTS;
        else {
            log_err("sieve_rename_failed", "path=%s error=%s", log_quote(to),
                    log_quote(strerror(errno)));
            r = CF_E_IO;
        }
    } else {
        /* the active script stays active under its new name: both names exist until the link
         * has moved, so a delivery finds the script throughout */
        if (act && !strcmp(act, oldname)) r = set_active(cfg, dir, newname);
        if (!r && unlink(from) < 0) r = CF_E_IO;
        if (r) unlink(to);
        else fsync_dir(dir, 1);
    }
    if (fd >= 0) close(fd);
    free(act);
    free(dir);
    free(from);
    free(to);
    return r;
}

int sieve_notify_allowed(const struct config *cfg, const char *user, long long now)
{
    if (!user_valid(user)) return CF_E_PARSE;
    char *dir = user_dir(cfg, user);
    char *path = xasprintf("%s/.notify", dir);
    long long interval = config_int(cfg, CFG_SIEVE_NOTIFY_INTERVAL);
    int fd = -1, r = store_lock(dir, &fd);
    struct stat sb;
    if (r) {
    } else if (interval > 0 && stat(path, &sb) == 0 && now - (long long)sb.st_mtime < interval &&
               now >= (long long)sb.st_mtime) {
        r = 0;
    } else {
        int f = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        struct timespec ts[2] = { { (time_t)now, 0 }, { (time_t)now, 0 } };
        if (f < 0 || futimens(f, ts) < 0) {
            log_err("sieve_store_failed", "call=notify_stamp path=%s error=%s",
                    log_quote(path), log_quote(strerror(errno)));
            r = CF_E_IO;
        } else {
            r = 1;
        }
        if (f >= 0) close(f);
    }
    if (fd >= 0) close(fd);
    free(dir);
    free(path);
    return r;
}

int sieve_active_script(const struct config *cfg, const char *user, char **data_r,
                        char **name_r)
{
    *data_r = NULL;
    if (name_r) *name_r = NULL;
    if (!user_valid(user)) return 0;
    /* "none" remembered under the counter's present value: no lookup */
    uint64_t *cnt = changes_counter(cfg), seen = 0;
    time_t now = now_coarse();
    struct none_slot *ns = none_find(user);
    if (cnt) {
        seen = __atomic_load_n(cnt, __ATOMIC_SEQ_CST);
        if (ns && ns->changes == seen && now - ns->at < SIEVE_NONE_TTL && now >= ns->at) {
            sieve_stats.none_remembered++;
            return 0;
        }
    }
    char *dir = user_dir(cfg, user);
    char *link = xasprintf("%s/active", dir);
    size_t len;
    /* one open through the link: the whole text of the script it pointed to at that moment */
    sieve_stats.lookups++;
    int r = file_read_all(link, SIEVE_MAX_SCRIPT, data_r, &len);
    if (r == 0 && name_r) *name_r = active_name(dir);
    free(link);
    free(dir);
    if (r == CF_E_NOTFOUND && cnt) {
        if (!ns) {
            ns = &none_slots[none_next++ % SIEVE_NONE_SLOTS];
            free(ns->user);
            ns->user = xstrdup(user);
        }
        ns->changes = seen;
        ns->at = now;
    } else if (ns) {
        free(ns->user);
        ns->user = NULL;
    }
    if (r == CF_E_NOTFOUND) return 0;
    return r < 0 ? r : 1;
}
