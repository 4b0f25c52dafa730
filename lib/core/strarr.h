/* strarr.h: a growable array of owned C strings, always with a NULL end slot (usable as argv). */
#ifndef COFFER_CORE_STRARR_H
#define COFFER_CORE_STRARR_H
#include <stddef.h>

struct strarr {
    char **v;      /* v[count] == NULL once anything was added */
    size_t count;
    size_t alloc;
};

#define STRARR_INIT { NULL, 0, 0 }

void strarr_init(struct strarr *a);
void strarr_fini(struct strarr *a);                 /* frees every string */
void strarr_add(struct strarr *a, const char *s);   /* copies s */
void strarr_take(struct strarr *a, char *s);        /* takes ownership of s */
const char *strarr_get(const struct strarr *a, size_t i); /* NULL when out of range */
int strarr_find(const struct strarr *a, const char *s);   /* index, or -1 */
int strarr_find_case(const struct strarr *a, const char *s); /* ASCII case-insensitive */
void strarr_remove(struct strarr *a, size_t i);     /* frees that string, keeps order */
void strarr_sort(struct strarr *a);                 /* strcmp order */

/* strarr_split: append the pieces of s separated by any of seps; empty pieces are dropped and
 * each piece trimmed of spaces and tabs when trim is set. */
void strarr_split(struct strarr *a, const char *s, const char *seps, int trim);

/* strarr_join: a new string with the elements separated by sep (caller frees). */
char *strarr_join(const struct strarr *a, const char *sep);

#endif
