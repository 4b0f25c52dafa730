/* xmalloc.c: allocation wrappers; on failure they log to stderr and abort. */
#include "core/xmalloc.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static void oom(size_t n)
{
    fprintf(stderr, "coffer: out of memory allocating %zu bytes\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *xzmalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n);
    return q;
}

void *xreallocarray(void *p, size_t nmemb, size_t size)
{
    if (size && nmemb > (size_t)-1 / size) oom((size_t)-1);
    return xrealloc(p, nmemb * size);
}

char *xstrdup(const char *s)
{
    return s ? xmemdup(s, strlen(s) + 1) : NULL;
}

char *xstrndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = xmalloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void *xmemdup(const void *p, size_t n)
{
    void *q = xmalloc(n);
    if (n) memcpy(q, p, n);
    return q;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) oom(strlen(fmt));
    return s;
}

#define XBIG_PAGE ((size_t)2 << 20)

void *xbig_alloc(size_t n)
{
    if (n < XBIG_MIN) return xmalloc(n);
    size_t len = (n + XBIG_PAGE - 1) & ~(XBIG_PAGE - 1);
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) oom(n);
    (void)madvise(p, len, MADV_HUGEPAGE);    /* a hint only */
    return p;
}

void xbig_free(void *p, size_t n)
{
    if (!p) return;
    if (n < XBIG_MIN) free(p);
    else munmap(p, (n + XBIG_PAGE - 1) & ~(XBIG_PAGE - 1));
}
