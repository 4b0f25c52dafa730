/* buf.h: a growable byte buffer with an optional hard size cap. Always NUL-terminated after
 * buf_cstr(), so text can be handed to C string functions; binary data may contain NULs. */
#ifndef COFFER_CORE_BUF_H
#define COFFER_CORE_BUF_H
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct buf {
    char *s;        /* the bytes (NULL until the first append) */
    size_t len;     /* bytes in use */
    size_t alloc;   /* bytes allocated */
    size_t cap;     /* hard limit on len; 0 means unlimited */
};

#define BUF_INIT { NULL, 0, 0, 0 }

void buf_init(struct buf *b);
void buf_fini(struct buf *b);                 /* frees the bytes; b can be reused after init */
void buf_set_cap(struct buf *b, size_t cap);  /* 0 = unlimited */
void buf_reset(struct buf *b);                /* len = 0, keeps the allocation */
void buf_truncate(struct buf *b, size_t len); /* len = min(len, b->len) */

/* Appends return 0, or CF_E_LIMIT (and leave b unchanged) when the cap would be passed.
 * buf_append is inline while the bytes fit (a line-by-line DATA loop calls it twice a line);
 * buf_append_slow grows the buffer or checks the cap. */
int buf_append_slow(struct buf *b, const void *p, size_t n);
static inline int buf_append(struct buf *b, const void *p, size_t n)
{
    if (!b->cap && n < b->alloc - b->len) {     /* room for n bytes and the NUL */
        if (n) memcpy(b->s + b->len, p, n);
        b->len += n;
        return 0;
    }
    return buf_append_slow(b, p, n);
}
int buf_appends(struct buf *b, const char *s);
/* buf_putc: one byte. Inline while it fits (the common case in per-byte loops: a call chain
 * per byte was a tenth of lmtpd's time); buf_putc_slow grows the buffer or checks the cap. */
int buf_putc_slow(struct buf *b, char c);
static inline int buf_putc(struct buf *b, char c)
{
    if (b->len + 1 < b->alloc && (!b->cap || b->len < b->cap)) {
        b->s[b->len++] = c;
        return 0;
    }
    return buf_putc_slow(b, c);
}
/* buf_putu32: v in decimal (no printf: for responses that are mostly numbers) */
int buf_putu32(struct buf *b, uint32_t v);
int buf_putu64(struct buf *b, uint64_t v);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap);

/* buf_ensure: make room for n more bytes (plus a NUL); CF_E_LIMIT past the cap. */
int buf_ensure(struct buf *b, size_t n);

/* buf_cstr: the bytes as a NUL-terminated string (never NULL; "" when empty). */
const char *buf_cstr(struct buf *b);

/* buf_release: hand the NUL-terminated bytes to the caller (who frees them); b becomes empty. */
char *buf_release(struct buf *b);

/* buf_consume: drop the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);

#endif
