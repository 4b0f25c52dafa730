/* xmalloc.h: allocation wrappers that abort on out-of-memory, so callers never test for NULL. */
#ifndef COFFER_CORE_XMALLOC_H
#define COFFER_CORE_XMALLOC_H
#include <stddef.h>
#include <stdlib.h>   /* free, for xfree_ptr */

void *xmalloc(size_t n);
void *xzmalloc(size_t n);                 /* zero-filled */
void *xrealloc(void *p, size_t n);
void *xreallocarray(void *p, size_t nmemb, size_t size); /* aborts on overflow too */
char *xstrdup(const char *s);             /* xstrdup(NULL) returns NULL */
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* xbig_alloc: n bytes (> 0, uninitialized) for a big array that lives for one command, freed
 * with xbig_free(p, n). From XBIG_MIN bytes on it is a mapping of its own with 2 MiB pages
 * asked for (madvise MADV_HUGEPAGE, the kernel's "madvise" mode; 4 KiB pages when refused),
 * unmapped by xbig_free: a fault and a TLB entry per 2 MiB rather than per 4 KiB, and nothing
 * of it stays in the process afterwards (glibc would serve such an array from the heap, and
 * a heap grown by tens of MB stays up to its trim threshold). Below XBIG_MIN, xmalloc. */
#define XBIG_MIN ((size_t)2 << 20)
void *xbig_alloc(size_t n);
void xbig_free(void *p, size_t n);           /* xbig_free(NULL, n) does nothing */

/* xfree_ptr: free(*pp) and set *pp to NULL. */
#define xfree_ptr(pp) do { free(*(pp)); *(pp) = NULL; } while (0)

#endif
