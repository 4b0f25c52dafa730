/* imap-hibstate.c: an IDLE session's state as text and back (imap-hibstate.h). */
#include "imap/imap-hibstate.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include <stdlib.h>
#include <string.h>

void imap_hibstate_init(struct imap_hibstate *s)
{
    memset(s, 0, sizeof *s);
    imap_seqset_init(&s->uids);
    imap_seqset_init(&s->recent);
    imap_seqset_init(&s->saved);
}

void imap_hibstate_fini(struct imap_hibstate *s)
{
    free(s->user);
    free(s->authid);
    free(s->tag);
    free(s->mailbox);
    free(s->partition_path);
    imap_seqset_fini(&s->uids);
    imap_seqset_fini(&s->recent);
    imap_seqset_fini(&s->saved);
    imap_hibstate_init(s);
}

/* str_ok: s may be written as a value: no NUL (by construction), CR or LF. */
static int str_ok(const char *s) { return s && !strpbrk(s, "\r\n"); }

static void put_str(struct buf *out, const char *key, const char *v)
{
    buf_printf(out, "%s %s\n", key, v);
}

static void put_num(struct buf *out, const char *key, unsigned long long v)
{
    buf_printf(out, "%s %llu\n", key, v);
}

static void put_set(struct buf *out, const char *key, const struct imap_seqset *set)
{
    buf_printf(out, "%s ", key);
    imap_seqset_format(set, out);
    buf_putc(out, '\n');
}

int imap_hibstate_format(const struct imap_hibstate *s, struct buf *out)
{
    if (!str_ok(s->user) || !str_ok(s->authid) || !str_ok(s->tag) || !s->tag[0] ||
        !s->user[0] || !str_ok(s->session) || s->deadline_ms < 0 || s->started_ms < 0)
        return CF_E_PARSE;
    if (s->mailbox && (!str_ok(s->mailbox) || !str_ok(s->partition_path) ||
                       !s->partition_path[0] || !s->uniqueid[0] || !str_ok(s->uniqueid) ||
                       !str_ok(s->rights) || s->uids.star || s->recent.star || s->saved.star ||
                       s->uids.saved || s->recent.saved || s->saved.saved))
        return CF_E_PARSE;
    put_num(out, "v", IMAP_HIBSTATE_VERSION);
    put_str(out, "session", s->session);
    put_str(out, "user", s->user);
    put_str(out, "authid", s->authid);
    put_num(out, "admin", (unsigned)!!s->is_admin);
    put_num(out, "enabled", s->enabled);
    put_str(out, "tag", s->tag);
    put_num(out, "deadline", (unsigned long long)s->deadline_ms);
    put_num(out, "started", (unsigned long long)s->started_ms);
    if (s->mailbox) {
        put_str(out, "mailbox", s->mailbox);
        put_str(out, "uniqueid", s->uniqueid);
        put_str(out, "partition", s->partition_path);
        put_num(out, "uidvalidity", s->uidvalidity);
        put_num(out, "readonly", (unsigned)!!s->readonly);
        put_num(out, "norecent", (unsigned)!!s->no_recent);
        put_str(out, "rights", s->rights);
        put_set(out, "uids", &s->uids);
        put_num(out, "maxuid", s->maxuid);
        put_num(out, "modseq", s->modseq);
        put_set(out, "recent", &s->recent);
        put_num(out, "recentfrom", s->recent_from);
        put_num(out, "exists", s->told_exists);
        put_num(out, "toldrecent", s->told_recent);
        put_num(out, "keywords", s->told_keywords);
        put_set(out, "saved", &s->saved);
    }
    return 0;
}

/* The keys, in one table: which are required, which belong to the mailbox part. */
enum hib_key {
    K_V, K_SESSION, K_USER, K_AUTHID, K_ADMIN, K_ENABLED, K_TAG, K_DEADLINE, K_STARTED,
    K_MAILBOX, K_UNIQUEID, K_PARTITION, K_UIDVALIDITY, K_READONLY, K_NORECENT, K_RIGHTS,
    K_UIDS, K_MAXUID, K_MODSEQ, K_RECENT, K_RECENTFROM, K_EXISTS, K_TOLDRECENT, K_KEYWORDS,
    K_SAVED, K_COUNT
};
static const char *const key_names[K_COUNT] = {
    "v", "session", "user", "authid", "admin", "enabled", "tag", "deadline", "started",
    "mailbox", "uniqueid", "partition", "uidvalidity", "readonly", "norecent", "rights",
    "uids", "maxuid", "modseq", "recent", "recentfrom", "exists", "toldrecent", "keywords",
    "saved",
};
#define K_FIRST_MAILBOX K_MAILBOX

/* parse_num: v[0, n) as a decimal number <= max (no sign, no leading zeros but "0"). */
static int parse_num(const char *v, size_t n, uint64_t max, uint64_t *out)
{
    if (n == 0 || n > 20 || (n > 1 && v[0] == '0')) return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9') return -1;
        unsigned d = (unsigned)(v[i] - '0');
        if (x > (UINT64_MAX - d) / 10) return -1;
        x = x * 10 + d;
    }
    if (x > max) return -1;
    *out = x;
    return 0;
}

/* parse_set: a concrete sequence set ("" is empty); no "*", no "$". */
static int parse_set(const char *v, size_t n, struct imap_seqset *set)
{
    imap_seqset_clear(set);
    if (n == 0) return 0;
    const char *why;
    if (imap_seqset_parse(set, v, n, &why) < 0) return -1;
    if (set->star || set->saved) return -1;
    return 0;
}

/* parse_str: a string value; empty allowed only when empty_ok */
static int parse_str(const char *v, size_t n, int empty_ok, char **out)
{
    if ((!n && !empty_ok) || memchr(v, '\0', n) || memchr(v, '\r', n)) return -1;
    *out = xstrndup(v, n);
    return 0;
}

/* parse_fixed: a string into a fixed buffer of size cap; printable ASCII only */
static int parse_fixed(const char *v, size_t n, char *out, size_t cap)
{
    if (n == 0 || n >= cap) return -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f) return -1;
    memcpy(out, v, n);
    out[n] = '\0';
    return 0;
}

/* parse_line: one "KEY VALUE" into s; 0, or -1 with *err set */
static int parse_line(struct imap_hibstate *s, const char *line, size_t n, unsigned *seen,
                      const char **err)
{
    const char *sp = memchr(line, ' ', n);
    if (!sp) {
        *err = "line without a value";
        return -1;
    }
    size_t kl = (size_t)(sp - line);
    const char *v = sp + 1;
    size_t vl = n - kl - 1;
    int k = -1;
    for (int i = 0; i < K_COUNT; i++)
        if (strlen(key_names[i]) == kl && !memcmp(key_names[i], line, kl)) k = i;
    if (k < 0) {
        *err = "unknown key";
        return -1;
    }
    if (*seen & (1u << k)) {
        *err = "key given twice";
        return -1;
    }
    *seen |= 1u << k;
    uint64_t x = 0;
    int bad = 0;
    switch ((enum hib_key)k) {
    case K_V:
        bad = parse_num(v, vl, UINT32_MAX, &x) || x != IMAP_HIBSTATE_VERSION;
        if (bad) *err = "unsupported version";
        return bad ? -1 : 0;
    case K_SESSION: bad = parse_fixed(v, vl, s->session, sizeof s->session); break;
    case K_USER: bad = parse_str(v, vl, 0, &s->user); break;
    case K_AUTHID: bad = parse_str(v, vl, 0, &s->authid); break;
    case K_ADMIN: bad = parse_num(v, vl, 1, &x); s->is_admin = (int)x; break;
    case K_ENABLED: bad = parse_num(v, vl, UINT32_MAX, &x); s->enabled = (unsigned)x; break;
    case K_TAG:
        bad = parse_str(v, vl, 0, &s->tag) || strpbrk(s->tag, " \t");
        break;
    case K_DEADLINE:
        bad = parse_num(v, vl, INT64_MAX, &x);
        s->deadline_ms = (int64_t)x;
        break;
    case K_STARTED:
        bad = parse_num(v, vl, INT64_MAX, &x);
        s->started_ms = (int64_t)x;
        break;
    case K_MAILBOX: bad = parse_str(v, vl, 0, &s->mailbox); break;
    case K_UNIQUEID: bad = parse_fixed(v, vl, s->uniqueid, sizeof s->uniqueid); break;
    case K_PARTITION: bad = parse_str(v, vl, 0, &s->partition_path) || v[0] != '/'; break;
    case K_UIDVALIDITY: bad = parse_num(v, vl, UINT32_MAX, &x); s->uidvalidity = (uint32_t)x; break;
    case K_READONLY: bad = parse_num(v, vl, 1, &x); s->readonly = (int)x; break;
    case K_NORECENT: bad = parse_num(v, vl, 1, &x); s->no_recent = (int)x; break;
    case K_RIGHTS:
        /* empty rights are possible in form (a view kept while 'r' was being revoked) */
        if (vl >= sizeof s->rights) bad = 1;
        else {
            for (size_t i = 0; i < vl; i++)
                if (v[i] < 'a' || v[i] > 'z') bad = 1;
            if (!bad) {
                memcpy(s->rights, v, vl);
                s->rights[vl] = '\0';
            }
        }
        break;
    case K_UIDS: bad = parse_set(v, vl, &s->uids); break;
    case K_MAXUID: bad = parse_num(v, vl, UINT32_MAX, &x); s->maxuid = (uint32_t)x; break;
    case K_MODSEQ: bad = parse_num(v, vl, INT64_MAX, &x); s->modseq = x; break;
    case K_RECENT: bad = parse_set(v, vl, &s->recent); break;
    case K_RECENTFROM: bad = parse_num(v, vl, UINT32_MAX, &x); s->recent_from = (uint32_t)x; break;
    case K_EXISTS: bad = parse_num(v, vl, UINT32_MAX, &x); s->told_exists = (uint32_t)x; break;
    case K_TOLDRECENT: bad = parse_num(v, vl, UINT32_MAX, &x); s->told_recent = (uint32_t)x; break;
    case K_KEYWORDS: bad = parse_num(v, vl, UINT32_MAX, &x); s->told_keywords = (uint32_t)x; break;
    case K_SAVED: bad = parse_set(v, vl, &s->saved); break;
    case K_COUNT: break;
    }
    if (bad) *err = "malformed value";
    return bad ? -1 : 0;
}

int imap_hibstate_parse(struct imap_hibstate *s, const char *text, size_t len, const char **err)
{
    imap_hibstate_fini(s);
    unsigned seen = 0;
    *err = "empty";
    if (len > IMAP_HIBSTATE_MAX) {
        *err = "too long";
        goto fail;
    }
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        if (!nl) {
            *err = "last line without a newline";
            goto fail;
        }
        size_t n = (size_t)(nl - (text + pos));
        if (seen == 0 && (n < 2 || memcmp(text + pos, "v ", 2))) {
            *err = "does not begin with the version";
            goto fail;
        }
        if (parse_line(s, text + pos, n, &seen, err) < 0) goto fail;
        pos += n + 1;
    }
    unsigned base = (1u << K_FIRST_MAILBOX) - 1;
    unsigned mbox = ((1u << K_COUNT) - 1) & ~base;
    if ((seen & base) != base) {
        *err = "a required field is missing";
        goto fail;
    }
    if ((seen & mbox) && (seen & mbox) != mbox) {
        *err = "the selected mailbox is incomplete";
        goto fail;
    }
    /* the view's uids lie at or below the highest uid it held; \Recent only names known uids */
    if (s->mailbox) {
        if (s->uids.count && s->uids.r[s->uids.count - 1].hi > s->maxuid) {
            *err = "a uid above maxuid";
            goto fail;
        }
        if (imap_seqset_size(&s->uids) > UINT32_MAX - 1) {
            *err = "too many uids";
            goto fail;
        }
    }
    return 0;
fail:
    imap_hibstate_fini(s);
    return CF_E_PARSE;
}

int imap_hibstate_field(const char *text, size_t len, const char *key, char *out, size_t outlen)
{
    size_t kl = strlen(key);
    if (outlen) out[0] = '\0';
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        if (n > kl && !memcmp(text + pos, key, kl) && text[pos + kl] == ' ') {
            size_t vl = n - kl - 1;
            if (outlen) {
                if (vl >= outlen) vl = outlen - 1;
                memcpy(out, text + pos + kl + 1, vl);
                out[vl] = '\0';
            }
            return 1;
        }
        pos += n + 1;
    }
    return 0;
}

const char *hibernate_kind_name(uint32_t kind)
{
    switch (kind) {
    case HIBERNATE_KIND_SLEEP: return "sleep";
    case HIBERNATE_KIND_INPUT: return "input";
    case HIBERNATE_KIND_CHANGE: return "change";
    case HIBERNATE_KIND_RETIRE: return "retire";
    case HIBERNATE_KIND_TIMEOUT: return "timeout";
    default: return "unknown";
    }
}
