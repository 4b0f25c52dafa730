/* arena.h: a region allocator for per-session and per-command memory, freed in one call. */
#ifndef COFFER_CORE_ARENA_H
#define COFFER_CORE_ARENA_H
#include <stddef.h>

struct arena_block;
struct arena {
    struct arena_block *head;
    size_t block_size;
    size_t total;   /* bytes handed out since the last reset */
};

void arena_init(struct arena *a, size_t block_size); /* 0 picks 8 KiB */
void arena_fini(struct arena *a);                    /* frees everything */
void arena_reset(struct arena *a);                   /* frees all but the first block */
void *arena_alloc(struct arena *a, size_t n);        /* 16-byte aligned, never NULL */
void *arena_zalloc(struct arena *a, size_t n);
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);

#endif
