/* csv.h: CSV records as RFC 4180 writes them, safe to open in a spreadsheet, and read back. */
#ifndef CRM_CSV_H
#define CRM_CSV_H

#include <stddef.h>

#include "http.h"

/*
 * Writes one record of n cells to put: cells separated by commas, ended by CRLF. A cell that
 * holds a comma, a quote, CR or LF is quoted, its quotes doubled; NULL is an empty cell. A cell
 * a spreadsheet would run as a formula (its first character =, +, -, @, TAB or CR) gets a single
 * quote in front, which the spreadsheet shows as text and does not run; so does a cell that
 * already starts with such quotes before one of those characters, so that crm_csv_cell_text()
 * gives every cell back exactly. Bytes are written as they are (UTF-8 stays UTF-8). Returns 0,
 * or -1 when put failed.
 */
int crm_csv_record(const char *const *cells, int n, crm_put_fn put, void *sink);

/* A CSV text being read record by record, in place. */
struct crm_csv {
    char *p, *end;
    long record; /* the number of the record read last, from 1 (the header) */
};

/*
 * Starts reading the len bytes at buf, which must have one more writable byte after them (a
 * request body has its NUL there). A UTF-8 byte order mark in front is skipped.
 */
void crm_csv_init(struct crm_csv *c, char *buf, size_t len);

/*
 * Reads the next record, RFC 4180: cells separated by commas, records ended by CRLF or LF (or
 * the end of the text), a quoted cell may hold commas, CR, LF and doubled quotes. Empty lines
 * are skipped. The cells are unquoted in place and NUL-terminated; the first max are stored in
 * cells. Returns the number of cells the record has (more than max when it has more), 0 at the
 * end, or -1 when the quoting is broken (a quote inside an unquoted cell, text after a closing
 * quote, an unterminated quote, a CR outside quotes not before LF; c->record says where).
 */
int crm_csv_read(struct crm_csv *c, char **cells, int max);

/*
 * The text a cell of crm_csv_record stands for: a cell neutralised by crm_csv_record loses the
 * quote put in front (*cell then points past it). Returns 0; or -1 for a cell that a
 * spreadsheet would run as a formula, which crm_csv_record never writes.
 */
int crm_csv_cell_text(char **cell);

#endif
