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

/* xfree_ptr: free(*pp) and set *pp to NULL. */
#define xfree_ptr(pp) do { free(*(pp)); *(pp) = NULL; } while (0)

#endif
