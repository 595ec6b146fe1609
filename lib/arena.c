/* arena.c: a list of malloc'd blocks; small requests share a block, big ones get their own. */
#include "arena.h"

#include <stdlib.h>
#include <string.h>

#define BLOCK_SIZE 8192

struct crm_arena_block {
    struct crm_arena_block *next;
    size_t used, size;
    max_align_t data[];
};

void *
crm_arena_alloc(struct crm_arena *a, size_t sz)
{
    struct crm_arena_block *b = a->head;
    size_t need = (sz + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    char *p;

    if (need < sz)
        return NULL;
    if (b == NULL || b->size - b->used < need) {
        size_t size = need > BLOCK_SIZE ? need : BLOCK_SIZE;

        if ((b = malloc(sizeof(*b) + size)) == NULL)
            return NULL;
        b->used = 0;
        b->size = size;
        b->next = a->head;
        a->head = b;
    }
    p = (char *)b->data + b->used;
    b->used += need;
    memset(p, 0, sz);
    return p;
}

char *
crm_arena_strndup(struct crm_arena *a, const char *s, size_t n)
{
    char *p;

    if (n == (size_t)-1 || (p = crm_arena_alloc(a, n + 1)) == NULL)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void
crm_arena_reset(struct crm_arena *a)
{
    struct crm_arena_block *b = a->head, *next;

    for (; b != NULL; b = next) {
        next = b->next;
        free(b);
    }
    a->head = NULL;
}
