/* cursor.c: keyset-paging cursors, "payload.mac", both base64url (see cursor.h). */
#include "cursor.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "jwt.h"
#include "util.h"

/*
 * The MAC key of the cursors of one query: HMAC(secret, "cursor\n" bind). Deriving it binds the
 * cursor to its query, and keeps cursors and tokens (signed with the secret itself) apart.
 */
static int
query_key(const unsigned char *secret, size_t slen, const char *bind, unsigned char out[32])
{
    size_t n = strlen(bind);
    char *data = malloc(n + 8);
    int rc;

    if (data == NULL)
        return -1;
    memcpy(data, "cursor\n", 7);
    memcpy(data + 7, bind, n + 1);
    rc = crm_jwt_hs256(secret, slen, data, n + 7, out);
    free(data);
    return rc;
}

int
crm_cursor_make(const unsigned char *secret, size_t slen, const char *bind, const char *key,
                const char *id, char *out, size_t outsz)
{
    unsigned char qkey[32], mac[32];
    cJSON *arr = cJSON_CreateArray();
    char *json = NULL;
    long n = -1;

    if (arr != NULL && cJSON_AddItemToArray(arr, cJSON_CreateString(key)) &&
        cJSON_AddItemToArray(arr, cJSON_CreateString(id)))
        json = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    if (json != NULL)
        n = crm_b64url_encode((const unsigned char *)json, strlen(json), out, outsz);
    free(json);
    if (n < 0 || (size_t)n + 1 >= outsz || query_key(secret, slen, bind, qkey) != 0 ||
        crm_jwt_hs256(qkey, sizeof(qkey), out, (size_t)n, mac) != 0)
        return -1;
    out[n] = '.';
    return crm_b64url_encode(mac, sizeof(mac), out + n + 1, outsz - (size_t)n - 1) < 0 ? -1 : 0;
}

/* The two strings of the JSON array [key, id] in the n bytes at s; the id must be an id. */
static int
payload_read(const unsigned char *s, size_t n, struct crm_arena *arena, const char **key,
             const char **id)
{
    cJSON *arr = cJSON_ParseWithLength((const char *)s, n);
    const cJSON *k = cJSON_GetArrayItem(arr, 0), *i = cJSON_GetArrayItem(arr, 1);
    int64_t v;
    int rc = -1;

    if (cJSON_IsArray(arr) && cJSON_GetArraySize(arr) == 2 && cJSON_IsString(k) &&
        cJSON_IsString(i) && crm_parse_id(i->valuestring, &v) == 0 &&
        (*key = crm_arena_strndup(arena, k->valuestring, strlen(k->valuestring))) != NULL &&
        (*id = crm_arena_strndup(arena, i->valuestring, strlen(i->valuestring))) != NULL)
        rc = 0;
    cJSON_Delete(arr);
    return rc;
}

int
crm_cursor_read(const unsigned char *secret, size_t slen, const char *bind, const char *cursor,
                struct crm_arena *arena, const char **key, const char **id)
{
    unsigned char qkey[32], json[CRM_CURSOR_MAX];
    const char *dot = strchr(cursor, '.');
    size_t len = strlen(cursor);
    long n;

    if (dot == NULL || len >= CRM_CURSOR_MAX || query_key(secret, slen, bind, qkey) != 0 ||
        !crm_jwt_hs256_ok(qkey, sizeof(qkey), cursor, (size_t)(dot - cursor), dot + 1,
                          len - (size_t)(dot + 1 - cursor)) ||
        (n = crm_b64url_decode(cursor, (size_t)(dot - cursor), json, sizeof(json))) < 0)
        return -1;
    return payload_read(json, (size_t)n, arena, key, id);
}
