/* strarr.c: growable array of strings. */
#include "core/strarr.h"
#include "core/buf.h"
#include "core/xmalloc.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void strarr_init(struct strarr *a)
{
    memset(a, 0, sizeof *a);
}

void strarr_fini(struct strarr *a)
{
    for (size_t i = 0; i < a->count; i++) free(a->v[i]);
    free(a->v);
    memset(a, 0, sizeof *a);
}

void strarr_take(struct strarr *a, char *s)
{
    if (a->count + 2 > a->alloc) {
        a->alloc = a->alloc ? a->alloc * 2 : 8;
        a->v = xreallocarray(a->v, a->alloc, sizeof *a->v);
    }
    a->v[a->count++] = s;
    a->v[a->count] = NULL;
}

void strarr_add(struct strarr *a, const char *s)
{
    strarr_take(a, xstrdup(s));
}

const char *strarr_get(const struct strarr *a, size_t i)
{
    return i < a->count ? a->v[i] : NULL;
}

int strarr_find(const struct strarr *a, const char *s)
{
    for (size_t i = 0; i < a->count; i++)
        if (!strcmp(a->v[i], s)) return (int)i;
    return -1;
}

int strarr_find_case(const struct strarr *a, const char *s)
{
    for (size_t i = 0; i < a->count; i++)
        if (!strcasecmp(a->v[i], s)) return (int)i;
    return -1;
}

void strarr_remove(struct strarr *a, size_t i)
{
    if (i >= a->count) return;
    free(a->v[i]);
    memmove(&a->v[i], &a->v[i + 1], (a->count - i) * sizeof *a->v); /* includes the NULL slot */
    a->count--;
}

static int cmp(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

void strarr_sort(struct strarr *a)
{
    if (a->count > 1) qsort(a->v, a->count, sizeof *a->v, cmp);
}

void strarr_split(struct strarr *a, const char *s, const char *seps, int trim)
{
    while (*s) {
        size_t n = strcspn(s, seps);
        const char *p = s, *e = s + n;
        if (trim) {
            while (p < e && (*p == ' ' || *p == '\t')) p++;
            while (e > p && (e[-1] == ' ' || e[-1] == '\t')) e--;
        }
        if (e > p) strarr_take(a, xstrndup(p, (size_t)(e - p)));
        s += n;
        if (*s) s++;
    }
}

char *strarr_join(const struct strarr *a, const char *sep)
{
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < a->count; i++) {
        if (i) buf_appends(&b, sep);
        buf_appends(&b, a->v[i]);
    }
    return buf_release(&b);
}
