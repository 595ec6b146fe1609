/* csv.c: one CSV record at a time, written straight to the response or read in place. */
#include "csv.h"

#include <string.h>

/* OWASP "CSV injection": these first characters make a cell a formula. */
static int
is_formula(const char *s)
{
    return *s != '\0' && strchr("=+-@\t\r", *s) != NULL;
}

/*
 * A cell the export neutralises: a formula, or quotes before one. Quoting the second kind as
 * well keeps the mapping one to one: the reader removes exactly one quote from both.
 */
static int
needs_quote_prefix(const char *s)
{
    return is_formula(s + strspn(s, "'"));
}

/* The cell's text between quotes, each quote doubled. */
static int
put_quoted(const char *s, crm_put_fn put, void *sink)
{
    for (const char *q; (q = strchr(s, '"')) != NULL; s = q + 1)
        if (put(sink, s, (size_t)(q - s) + 1) != 0 || put(sink, "\"", 1) != 0)
            return -1;
    return put(sink, s, strlen(s));
}

static int
put_cell(const char *s, crm_put_fn put, void *sink)
{
    int quote = strpbrk(s, ",\"\r\n") != NULL;

    if (quote && put(sink, "\"", 1) != 0)
        return -1;
    if (needs_quote_prefix(s) && put(sink, "'", 1) != 0)
        return -1;
    if ((quote ? put_quoted(s, put, sink) : put(sink, s, strlen(s))) != 0)
        return -1;
    return quote ? put(sink, "\"", 1) : 0;
}

int
crm_csv_record(const char *const *cells, int n, crm_put_fn put, void *sink)
{
    for (int i = 0; i < n; i++) {
        if (i > 0 && put(sink, ",", 1) != 0)
            return -1;
        if (cells[i] != NULL && put_cell(cells[i], put, sink) != 0)
            return -1;
    }
    return put(sink, "\r\n", 2);
}

void
crm_csv_init(struct crm_csv *c, char *buf, size_t len)
{
    c->p = buf;
    c->end = buf + len;
    c->record = 0;
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        c->p += 3;
}

/* 1 when p ends a record: LF, CRLF or the end of the text. */
static int
at_record_end(const struct crm_csv *c, const char *p)
{
    return p == c->end || *p == '\n' || (*p == '\r' && p + 1 < c->end && p[1] == '\n');
}

/*
 * Reads the quoted cell at c->p (its opening quote), writing its text from out. Returns the end
 * of the text written, or NULL when the quote is never closed or text follows the closing one.
 */
static char *
read_quoted(struct crm_csv *c, char *out)
{
    char *p = c->p + 1;

    for (;;) {
        if (p == c->end)
            return NULL;
        if (*p != '"') {
            *out++ = *p++;
        } else if (p + 1 < c->end && p[1] == '"') {
            *out++ = '"';
            p += 2;
        } else {
            p++;
            break;
        }
    }
    if (p != c->end && *p != ',' && !at_record_end(c, p))
        return NULL;
    c->p = p;
    return out;
}

/* Reads the unquoted cell at c->p. Returns its end, or NULL for a quote or a stray CR in it. */
static char *
read_plain(struct crm_csv *c)
{
    char *p = c->p;

    while (p != c->end && *p != ',' && !at_record_end(c, p)) {
        if (*p == '"' || *p == '\r')
            return NULL;
        p++;
    }
    c->p = p;
    return p;
}

int
crm_csv_read(struct crm_csv *c, char **cells, int max)
{
    int n = 0;

    while (c->p != c->end && (*c->p == '\n' || (*c->p == '\r' && at_record_end(c, c->p))))
        c->p += *c->p == '\r' ? 2 : 1;
    if (c->p == c->end)
        return 0;
    c->record++;
    for (;;) {
        char *start = c->p, *end = *start == '"' ? read_quoted(c, start) : read_plain(c);

        if (end == NULL)
            return -1;
        /* The delimiter is read before the NUL can overwrite it (a cell may fill its span). */
        char delim = c->p == c->end ? '\0' : *c->p;

        *end = '\0';
        if (n < max)
            cells[n] = start;
        n++;
        if (delim == ',') {
            c->p++;
            continue;
        }
        if (delim != '\0')
            c->p += delim == '\r' ? 2 : 1;
        return n;
    }
}

int
crm_csv_cell_text(char **cell)
{
    if (is_formula(*cell))
        return -1;
    if (needs_quote_prefix(*cell))
        ++*cell;
    return 0;
}
