/* buf.c: growable byte buffer. */
#include "core/buf.h"
#include "core/error.h"
#include "core/xmalloc.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b)
{
    memset(b, 0, sizeof *b);
}

void buf_fini(struct buf *b)
{
    free(b->s);
    b->s = NULL;
    b->len = b->alloc = 0;
}

void buf_set_cap(struct buf *b, size_t cap)
{
    b->cap = cap;
}

void buf_reset(struct buf *b)
{
    b->len = 0;
}

void buf_truncate(struct buf *b, size_t len)
{
    if (len < b->len) b->len = len;
}

int buf_ensure(struct buf *b, size_t n)
{
    if (b->cap && (n > b->cap || b->len > b->cap - n)) return CF_E_LIMIT;
    if (b->len + n + 1 <= b->alloc) return 0;
    size_t want = b->alloc ? b->alloc : 64;
    while (want < b->len + n + 1) {
        if (want > ((size_t)-1) / 2) { want = b->len + n + 1; break; }
        want *= 2;
    }
    b->s = xrealloc(b->s, want);
    b->alloc = want;
    return 0;
}

int buf_append_slow(struct buf *b, const void *p, size_t n)
{
    int r = buf_ensure(b, n);
    if (r) return r;
    if (n) memcpy(b->s + b->len, p, n);
    b->len += n;
    return 0;
}

int buf_appends(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_putc_slow(struct buf *b, char c)
{
    return buf_append_slow(b, &c, 1);
}

int buf_putu32(struct buf *b, uint32_t v)
{
    return buf_putu64(b, v);
}

int buf_putu64(struct buf *b, uint64_t v)
{
    char t[20];
    size_t i = sizeof t;
    do {
        t[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return buf_append(b, t + i, sizeof t - i);
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) return CF_E_INTERNAL;
    int r = buf_ensure(b, (size_t)n);
    if (r) return r;
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return r;
}

const char *buf_cstr(struct buf *b)
{
    if (!b->s) {
        b->s = xmalloc(16);
        b->alloc = 16;
    }
    b->s[b->len] = '\0';
    return b->s;
}

char *buf_release(struct buf *b)
{
    buf_cstr(b);
    char *s = b->s;
    b->s = NULL;
    b->len = b->alloc = 0;
    return s;
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) { b->len = 0; return; }
    memmove(b->s, b->s + n, b->len - n);
    b->len -= n;
}
