/*
 * fcgirec.h: the FastCGI 1.0 record layer, for crm-events, which speaks the protocol itself on
 * its own event loop (libfcgi's accept loop serves one connection at a time per process).
 */
#ifndef CRM_FCGIREC_H
#define CRM_FCGIREC_H

#include <stddef.h>

#define CRM_FCGI_HEADER 8
#define CRM_FCGI_MAX_CONTENT 65535

enum crm_fcgi_type {
    CRM_FCGI_BEGIN_REQUEST = 1,
    CRM_FCGI_ABORT_REQUEST = 2,
    CRM_FCGI_END_REQUEST = 3,
    CRM_FCGI_PARAMS = 4,
    CRM_FCGI_STDIN = 5,
    CRM_FCGI_STDOUT = 6,
};

/* One record as it lies in a buffer: content points into that buffer. */
struct crm_fcgi_rec {
    int type;
    unsigned id;
    const unsigned char *content;
    size_t len;   /* content length */
    size_t total; /* header, content and padding: the bytes the record takes */
};

/*
 * Reads the record at the start of buf (n bytes). Returns 1 with *rec set, 0 when buf holds only
 * part of it, -1 when it is not a FastCGI version 1 record.
 */
int crm_fcgi_rec_parse(const unsigned char *buf, size_t n, struct crm_fcgi_rec *rec);

/* The bytes crm_fcgi_frame() writes for n bytes of data (records of at most 65535 bytes). */
size_t crm_fcgi_framed_size(size_t n);

/* Writes data as STDOUT records of request id into out, which has crm_fcgi_framed_size(n) bytes. */
void crm_fcgi_frame(unsigned char *out, unsigned id, const void *data, size_t n);

/* Relabels the records in buf (n bytes, whole records) as request id's. */
void crm_fcgi_set_id(unsigned char *buf, size_t n, unsigned id);

/* Writes the end of a response: an empty STDOUT record and END_REQUEST (24 bytes). */
#define CRM_FCGI_END_SIZE 24
void crm_fcgi_end(unsigned char out[CRM_FCGI_END_SIZE], unsigned id);

/*
 * Calls fn for every name-value pair of a PARAMS stream (p, n bytes), stopping when it returns
 * non-zero. Returns 0, or -1 when a length runs past the end.
 */
int crm_fcgi_params(const unsigned char *p, size_t n,
                    int (*fn)(void *arg, const char *name, size_t nlen, const char *val,
                              size_t vlen),
                    void *arg);

#endif
