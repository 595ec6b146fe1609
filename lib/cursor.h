/*
 * cursor.h: opaque keyset-paging cursors. A cursor holds the sort key and id of a page's last
 * row, base64url JSON, and a MAC that binds it to the query it pages (its sort and filters), so
 * a cursor that was altered, or is sent with another sort or filter, is refused.
 */
#ifndef CRM_CURSOR_H
#define CRM_CURSOR_H

#include <stddef.h>

#include "arena.h"

/* Longer than any cursor we make (a name sort key is at most 200 characters). */
#define CRM_CURSOR_MAX 2048

/*
 * Writes into out the cursor for the row (key, id) of the query bind, signed with secret.
 * Returns 0, or -1 when out is too small or out of memory.
 */
int crm_cursor_make(const unsigned char *secret, size_t slen, const char *bind, const char *key,
                    const char *id, char *out, size_t outsz);

/*
 * Reads a cursor made for the query bind: 0 with *key and *id (in arena), or -1 when it is
 * malformed, altered, made with another secret or for another query.
 */
int crm_cursor_read(const unsigned char *secret, size_t slen, const char *bind, const char *cursor,
                    struct crm_arena *arena, const char **key, const char **id);

#endif
