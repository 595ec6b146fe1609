/*
 * fuzz_csv.c: CSV files as POST /api/leads/import reads them, through crm_csv_read and
 * crm_csv_cell_text. Properties: every cell lies within the file's buffer and ends there; a
 * record has at least one cell; and a record read, written again by crm_csv_record (what the
 * export writes), reads back the same cells. Input: the file.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "fuzz.h"

#define MAX_CELLS 16

/* A sink collecting what crm_csv_record writes. */
struct sink {
    char *buf;
    size_t len, cap;
};

static int
put(void *p, const char *data, size_t len)
{
    struct sink *s = p;

    if (s->len + len + 1 > s->cap) {
        s->cap = (s->len + len + 1) * 2;
        if ((s->buf = realloc(s->buf, s->cap)) == NULL)
            abort();
    }
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    return 0;
}

/* The cells of a record, written and read again, are the same (their text, quotes taken off). */
static void
check_round_trip(char **cells, int n)
{
    struct sink s = {NULL, 0, 0};
    struct crm_csv c;
    char *again[MAX_CELLS];
    const char *text[MAX_CELLS];

    for (int i = 0; i < n; i++) {
        char *t = cells[i];

        if (crm_csv_cell_text(&t) != 0)
            return; /* a formula: refused, never written */
        text[i] = t;
    }
    /* One empty cell is an empty line, which a reader skips. */
    if (n == 1 && text[0][0] == '\0')
        return;
    /* After a header, as in an export (a byte order mark in front of it would be skipped). */
    fuzz_check(put(&s, "h\r\n", 3) == 0 && crm_csv_record(text, n, put, &s) == 0,
               "a record is written");
    crm_csv_init(&c, s.buf, s.len);
    fuzz_check(crm_csv_read(&c, again, MAX_CELLS) == 1, "the header reads back");
    fuzz_check(crm_csv_read(&c, again, MAX_CELLS) == n, "a written record reads back whole");
    for (int i = 0; i < n; i++) {
        char *t = again[i];

        fuzz_check(crm_csv_cell_text(&t) == 0 && strcmp(t, text[i]) == 0,
                   "a written cell reads back as it was");
    }
    fuzz_check(crm_csv_read(&c, again, MAX_CELLS) == 0, "one record written, one read");
    free(s.buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = fuzz_cstr(data, size);
    struct crm_csv c;
    char *cells[MAX_CELLS];
    long records = 0;
    int n;

    crm_csv_init(&c, buf, size);
    while ((n = crm_csv_read(&c, cells, MAX_CELLS)) > 0) {
        fuzz_check(c.record == ++records, "records are numbered from 1");
        for (int i = 0; i < n && i < MAX_CELLS; i++)
            fuzz_check(cells[i] >= buf && cells[i] + strlen(cells[i]) <= buf + size,
                       "a cell lies within the file");
        if (n <= MAX_CELLS)
            check_round_trip(cells, n);
    }
    fuzz_check(n == 0 || n == -1, "the end, or broken quoting");
    free(buf);
    return 0;
}
