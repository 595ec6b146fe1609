/* csv.h: CSV records as RFC 4180 writes them, safe to open in a spreadsheet. */
#ifndef CRM_CSV_H
#define CRM_CSV_H

#include "http.h"

/*
 * Writes one record of n cells to put: cells separated by commas, ended by CRLF. A cell that
 * holds a comma, a quote, CR or LF is quoted, its quotes doubled; NULL is an empty cell. A cell
 * a spreadsheet would run as a formula (its first character =, +, -, @, TAB or CR) gets a single
 * quote in front, which the spreadsheet shows as text and does not run. Bytes are written as
 * they are (UTF-8 stays UTF-8). Returns 0, or -1 when put failed.
 */
int crm_csv_record(const char *const *cells, int n, crm_put_fn put, void *sink);

#endif
