/* dump-read.c: the tar stream and manifest JSON reader of `coffer restore` (dump-read.h). */
#include "dump-read.h"
#include "core/fileutil.h"
#include "core/xmalloc.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int read_block(FILE *f, unsigned char *b)
{
    return fread(b, 1, TAR_BLOCK, f) == TAR_BLOCK ? 0 : -1;
}

/* tar_next: the next header. 1 found, 0 end of archive, -1 malformed. */
int tar_next(FILE *f, struct tar_entry *e)
{
    unsigned char h[TAR_BLOCK];
    if (read_block(f, h) < 0) return -1;
    int zero = 1;
    for (int i = 0; i < TAR_BLOCK && zero; i++) zero = h[i] == 0;
    if (zero) return 0;
    unsigned want = 0, sum = 0;
    for (int i = 0; i < TAR_BLOCK; i++) sum += (i >= 148 && i < 156) ? ' ' : h[i];
    char tmp[16];
    memcpy(tmp, h + 148, 8);
    tmp[8] = 0;
    want = (unsigned)strtoul(tmp, NULL, 8);
    if (want != sum) return -1;
    char name[101], prefix[156];
    memcpy(name, h, 100);
    name[100] = 0;
    memcpy(prefix, h + 345, 155);
    prefix[155] = 0;
    if (!memcmp(h + 257, "ustar", 5) && *prefix) snprintf(e->name, sizeof e->name, "%s/%s", prefix, name);
    else snprintf(e->name, sizeof e->name, "%s", name);
    memcpy(tmp, h + 124, 12);
    tmp[12] = 0;
    /* plain octal only (no base-256 sizes): padded with spaces or NULs (review M5) */
    size_t d = 0;
    while (d < 12 && tmp[d] == ' ') d++;
    if (d == 12 || tmp[d] < '0' || tmp[d] > '7') return -1;
    char *end;
    e->size = strtoull(tmp + d, &end, 8);
    if (*end && *end != ' ') return -1;
    e->type = h[156] ? (char)h[156] : '0';
    return 1;
}

/* tar_read: the entry's data into out (at most max bytes), padding skipped. 0 or -1. */
int tar_read(FILE *f, const struct tar_entry *e, struct buf *out, size_t max)
{
    if (e->size > max) return -1;
    buf_reset(out);
    buf_ensure(out, (size_t)e->size);
    if (e->size && fread(out->s, 1, (size_t)e->size, f) != e->size) return -1;
    out->len = (size_t)e->size;
    size_t pad = (size_t)((TAR_BLOCK - e->size % TAR_BLOCK) % TAR_BLOCK);
    unsigned char junk[TAR_BLOCK];
    return pad && fread(junk, 1, pad, f) != pad ? -1 : 0;
}

/* tar_copy: the entry's data into fd, padding skipped. 0 or -1. */
int tar_copy(FILE *f, const struct tar_entry *e, int fd)
{
    uint64_t left = e->size;
    char buf[65536];
    while (left) {
        size_t n = left < sizeof buf ? (size_t)left : sizeof buf;
        if (fread(buf, 1, n, f) != n) return -1;
        if (fd >= 0 && write_all(fd, buf, n) < 0) return -1;
        left -= n;
    }
    size_t pad = (size_t)((TAR_BLOCK - e->size % TAR_BLOCK) % TAR_BLOCK);
    unsigned char junk[TAR_BLOCK];
    return pad && fread(junk, 1, pad, f) != pad ? -1 : 0;
}

/* ---- a small JSON reader for the manifest ---- */

void jfree(struct jval *j)
{
    for (size_t i = 0; i < j->n; i++) {
        jfree(&j->v[i]);
        if (j->keys) free(j->keys[i]);
    }
    free(j->v);
    free(j->keys);
    free(j->str);
    memset(j, 0, sizeof *j);
}

static void jskip(struct jparser *jp)
{
    while (jp->p < jp->end && (*jp->p == ' ' || *jp->p == '\n' || *jp->p == '\r' || *jp->p == '\t')) jp->p++;
}

static void put_utf8(struct buf *b, unsigned long c)
{
    if (c < 0x80) buf_putc(b, (char)c);
    else if (c < 0x800) { buf_putc(b, (char)(0xc0 | c >> 6)); buf_putc(b, (char)(0x80 | (c & 0x3f))); }
    else if (c < 0x10000) {
        buf_putc(b, (char)(0xe0 | c >> 12)); buf_putc(b, (char)(0x80 | ((c >> 6) & 0x3f)));
        buf_putc(b, (char)(0x80 | (c & 0x3f)));
    } else {
        buf_putc(b, (char)(0xf0 | c >> 18)); buf_putc(b, (char)(0x80 | ((c >> 12) & 0x3f)));
        buf_putc(b, (char)(0x80 | ((c >> 6) & 0x3f))); buf_putc(b, (char)(0x80 | (c & 0x3f)));
    }
}

static int jhex4(struct jparser *jp, unsigned long *out)
{
    if (jp->end - jp->p < 4) return -1;
    char t[5];
    memcpy(t, jp->p, 4);
    t[4] = 0;
    char *e;
    *out = strtoul(t, &e, 16);
    if (*e) return -1;
    jp->p += 4;
    return 0;
}

static int jstring(struct jparser *jp, char **out)
{
    if (jp->p >= jp->end || *jp->p != '"') return -1;
    jp->p++;
    struct buf b = BUF_INIT;
    while (jp->p < jp->end && *jp->p != '"') {
        unsigned char c = (unsigned char)*jp->p++;
        if (c < 0x20) goto bad;
        if (c != '\\') { buf_putc(&b, (char)c); continue; }
        if (jp->p >= jp->end) goto bad;
        char esc = *jp->p++;
        const char *m = strchr("\"\\/bfnrt", esc);
        if (esc && m) { buf_putc(&b, "\"\\/\b\f\n\r\t"[m - "\"\\/bfnrt"]); continue; }
        if (esc != 'u') goto bad;
        unsigned long u, lo;
        if (jhex4(jp, &u) < 0) goto bad;
        if (u >= 0xd800 && u < 0xdc00) {
            if (jp->end - jp->p < 2 || jp->p[0] != '\\' || jp->p[1] != 'u') goto bad;
            jp->p += 2;
            if (jhex4(jp, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff) goto bad;
            u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
        } else if (u >= 0xdc00 && u < 0xe000) {
            goto bad;
        }
        if (!u) goto bad;   /* a NUL cannot live in our C strings */
        put_utf8(&b, u);
    }
    if (jp->p >= jp->end) goto bad;
    jp->p++;
    *out = buf_release(&b);
    if (!*out) *out = xstrdup("");
    return 0;
bad:
    buf_fini(&b);
    return -1;
}

int jvalue(struct jparser *jp, struct jval *j)
{
    memset(j, 0, sizeof *j);
    jskip(jp);
    if (jp->p >= jp->end || ++jp->depth > 32) return -1;
    int r = 0;
    char c = *jp->p;
    if (c == '"') {
        j->t = J_STR;
        r = jstring(jp, &j->str);
    } else if (c == '[' || c == '{') {
        int obj = c == '{';
        j->t = obj ? J_OBJ : J_ARR;
        jp->p++;
        size_t alloc = 0;
        jskip(jp);
        if (jp->p < jp->end && *jp->p == (obj ? '}' : ']')) { jp->p++; goto done; }
        for (;;) {
            if (j->n == alloc) {
                alloc = alloc ? alloc * 2 : 8;
                j->v = xreallocarray(j->v, alloc, sizeof *j->v);
                if (obj) j->keys = xreallocarray(j->keys, alloc, sizeof *j->keys);
            }
            if (obj) {
                jskip(jp);
                if (jstring(jp, &j->keys[j->n]) < 0) return -1;
                jskip(jp);
                if (jp->p >= jp->end || *jp->p++ != ':') { free(j->keys[j->n]); return -1; }
            }
            if (jvalue(jp, &j->v[j->n]) < 0) {
                jfree(&j->v[j->n]);
                if (obj) free(j->keys[j->n]);
                return -1;
            }
            j->n++;
            jskip(jp);
            if (jp->p < jp->end && *jp->p == ',') { jp->p++; continue; }
            if (jp->p < jp->end && *jp->p == (obj ? '}' : ']')) { jp->p++; break; }
            return -1;
        }
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        /* the bytes are not NUL-terminated (tar_read leaves them as they came), so strtoll
         * gets a copy of the digits: given jp->p it could read past the end */
        j->t = J_NUM;
        char num[24], *e;
        size_t k = 0;
        const char *q = jp->p;
        if (*q == '-') num[k++] = *q++;
        while (q < jp->end && *q >= '0' && *q <= '9' && k < sizeof num - 1) num[k++] = *q++;
        if (q < jp->end && *q >= '0' && *q <= '9') return -1;  /* too long for a long long */
        num[k] = '\0';
        errno = 0;
        j->num = strtoll(num, &e, 10);
        if (errno || e == num || *e) return -1;
        jp->p = q;
    } else if (jp->end - jp->p >= 4 && !memcmp(jp->p, "null", 4)) {
        jp->p += 4;
    } else if (jp->end - jp->p >= 4 && !memcmp(jp->p, "true", 4)) {
        j->t = J_BOOL; j->num = 1; jp->p += 4;
    } else if (jp->end - jp->p >= 5 && !memcmp(jp->p, "false", 5)) {
        j->t = J_BOOL; jp->p += 5;
    } else {
        r = -1;
    }
done:
    jp->depth--;
    return r;
}

const struct jval *jget(const struct jval *o, const char *key)
{
    if (!o || o->t != J_OBJ) return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (!strcmp(o->keys[i], key)) return &o->v[i];
    return NULL;
}

long long jnum(const struct jval *o, const char *key, long long def)
{
    const struct jval *v = jget(o, key);
    return v && v->t == J_NUM ? v->num : def;
}

const char *jstr(const struct jval *o, const char *key)
{
    const struct jval *v = jget(o, key);
    return v && v->t == J_STR ? v->str : NULL;
}
