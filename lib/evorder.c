/* evorder.c: the delivery order of events (see evorder.h for the reasoning). */
#include "evorder.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int
parse_u64(const char **p, uint64_t *out)
{
    char *end;

    if (**p < '0' || **p > '9')
        return -1;
    errno = 0;
    *out = strtoull(*p, &end, 10);
    if (errno != 0)
        return -1;
    *p = end;
    return 0;
}

int
crm_snap_parse(const char *text, struct crm_snap *out)
{
    struct crm_snap s = {0};
    const char *p = text;
    size_t cap = 1;

    if (parse_u64(&p, &s.xmin) != 0 || *p++ != ':' || parse_u64(&p, &s.xmax) != 0 || *p++ != ':')
        return -1;
    for (const char *q = p; *q != '\0'; q++)
        cap += *q == ',';
    if ((s.xip = calloc(cap, sizeof(*s.xip))) == NULL)
        return -1;
    while (*p != '\0') {
        if (s.nxip == cap || parse_u64(&p, &s.xip[s.nxip++]) != 0)
            break;
        if (*p == ',' && p[1] != '\0')
            p++;
        else if (*p != '\0')
            break;
    }
    if (*p != '\0') {
        free(s.xip);
        return -1;
    }
    *out = s;
    return 0;
}

void
crm_snap_free(struct crm_snap *s)
{
    free(s->xip);
    memset(s, 0, sizeof(*s));
}

int
crm_snap_ended(const struct crm_snap *s, uint64_t xid)
{
    if (xid < s->xmin)
        return 1;
    if (xid >= s->xmax)
        return 0;
    for (size_t i = 0; i < s->nxip; i++)
        if (s->xip[i] == xid)
            return 0;
    return 1;
}

/*
 * 1 when every transaction that could have held an id missing under then has ended by now:
 * those then listed in progress, and those whose xid came after then's xmax but before then's
 * next (they were running then, though a snapshot does not list xids at or above its xmax).
 */
static int
all_ended(const struct crm_snap *then, const struct crm_snap *now)
{
    /* An xid at or above now's xmax is above every completed one: still running. */
    if (then->next == 0 || then->next > now->xmax)
        return 0;
    for (size_t i = 0; i < now->nxip; i++) {
        uint64_t x = now->xip[i];

        if (x < then->next && (x >= then->xmax || !crm_snap_ended(then, x)))
            return 0;
    }
    return 1;
}

/* 1 when nothing at all was running when s was taken, so every missing id is final. */
static int
quiet(const struct crm_snap *s)
{
    return s->nxip == 0 && s->next == s->xmax;
}

static int
copy_snap(struct crm_snap *dst, const struct crm_snap *src)
{
    *dst = *src;
    dst->xip = calloc(src->nxip + 1, sizeof(*dst->xip));
    if (dst->xip == NULL)
        return -1;
    if (src->nxip > 0)
        memcpy(dst->xip, src->xip, src->nxip * sizeof(*dst->xip));
    return 0;
}

size_t
crm_evorder_next(struct crm_evorder *o, const struct crm_snap *s, const int64_t *ids, size_t n,
                 int *again)
{
    int64_t safe = o->cursor;
    size_t k = 0;

    *again = 0;
    if (o->barrier && all_ended(&o->pending, s)) {
        safe = o->horizon;
        o->barrier = 0;
        crm_snap_free(&o->pending);
    }
    /* Final: below a horizon whose transactions have all ended, or no gap before it. */
    while (k < n && (ids[k] <= safe || ids[k] == o->cursor + 1))
        o->cursor = ids[k++];
    if (k < n && quiet(s)) {
        /* Nothing was running: every missing id below the newest visible one is aborted. */
        o->cursor = ids[n - 1];
        k = n;
    }
    /* A barrier needs next; without it the caller reads again, and the next read has it. */
    if (k < n && !o->barrier && s->next != 0) {
        if (copy_snap(&o->pending, s) != 0)
            return (size_t)-1;
        o->barrier = 1;
        o->horizon = ids[n - 1];
    }
    *again = k < n || o->barrier;
    return k;
}

int
crm_evorder_start(struct crm_evorder *o, const struct crm_snap *s, int64_t head)
{
    if (!o->barrier) {
        if (quiet(s)) {
            o->cursor = head;
            return 1;
        }
        if (s->next == 0)
            return 0;
        if (copy_snap(&o->pending, s) != 0)
            return -1;
        o->barrier = 1;
        o->horizon = head;
        return 0;
    }
    if (!all_ended(&o->pending, s))
        return 0;
    o->cursor = o->horizon;
    crm_evorder_free(o);
    return 1;
}

void
crm_evorder_free(struct crm_evorder *o)
{
    crm_snap_free(&o->pending);
    o->barrier = 0;
}
