/* arena.h: request-lifetime memory, released in one call after the response is written. */
#ifndef CRM_ARENA_H
#define CRM_ARENA_H

#include <stddef.h>

struct crm_arena_block;

struct crm_arena {
    struct crm_arena_block *head;
};

/* Returns sz zeroed bytes that live until crm_arena_reset(), or NULL when out of memory. */
void *crm_arena_alloc(struct crm_arena *a, size_t sz);

/* Copies n bytes of s and a terminating NUL into the arena; NULL when out of memory. */
char *crm_arena_strndup(struct crm_arena *a, const char *s, size_t n);

/* Frees everything allocated from a; a is then empty and reusable. */
void crm_arena_reset(struct crm_arena *a);

#endif
