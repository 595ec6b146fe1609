/* test_fcgirec.c: FastCGI records: parsing, partial input, framing, name-value pairs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fcgirec.h"

static void
test_parse_whole_and_partial(void **state)
{
    /* PARAMS, request 1, 3 bytes of content, 2 of padding. */
    const unsigned char rec[] = {1, 4, 0, 1, 0, 3, 2, 0, 'a', 'b', 'c', 0, 0, 1};
    struct crm_fcgi_rec r;

    (void)state;
    assert_int_equal(crm_fcgi_rec_parse(rec, sizeof(rec), &r), 1);
    assert_int_equal(r.type, CRM_FCGI_PARAMS);
    assert_int_equal(r.id, 1);
    assert_int_equal(r.len, 3);
    assert_memory_equal(r.content, "abc", 3);
    assert_int_equal(r.total, 13);
    for (size_t n = 0; n < 13; n++)
        assert_int_equal(crm_fcgi_rec_parse(rec, n, &r), 0);
    unsigned char bad[8] = {2, 4, 0, 1, 0, 0, 0, 0};
    assert_int_equal(crm_fcgi_rec_parse(bad, sizeof(bad), &r), -1);
}

static void
test_frame_splits_at_65535(void **state)
{
    size_t n = 70000, len = crm_fcgi_framed_size(n);
    char *data = malloc(n);
    unsigned char *out = malloc(len);
    struct crm_fcgi_rec r;

    (void)state;
    assert_non_null(data);
    assert_non_null(out);
    memset(data, 'x', n);
    assert_int_equal(len, n + 16);
    crm_fcgi_frame(out, 7, data, n);
    assert_int_equal(crm_fcgi_rec_parse(out, len, &r), 1);
    assert_true(r.type == CRM_FCGI_STDOUT && r.id == 7 && r.len == 65535);
    assert_int_equal(crm_fcgi_rec_parse(out + r.total, len - r.total, &r), 1);
    assert_int_equal(r.len, n - 65535);
    assert_int_equal(crm_fcgi_framed_size(0), 0);
    crm_fcgi_set_id(out, len, 300);
    assert_int_equal(crm_fcgi_rec_parse(out, len, &r), 1);
    assert_int_equal(r.id, 300);
    assert_int_equal(crm_fcgi_rec_parse(out + r.total, len - r.total, &r), 1);
    assert_true(r.id == 300 && r.len == n - 65535);
    free(data);
    free(out);
}

static void
test_end_request(void **state)
{
    unsigned char end[CRM_FCGI_END_SIZE];
    struct crm_fcgi_rec r;

    (void)state;
    crm_fcgi_end(end, 1);
    assert_int_equal(crm_fcgi_rec_parse(end, sizeof(end), &r), 1);
    assert_true(r.type == CRM_FCGI_STDOUT && r.len == 0);
    assert_int_equal(crm_fcgi_rec_parse(end + 8, 16, &r), 1);
    assert_true(r.type == CRM_FCGI_END_REQUEST && r.len == 8 && r.content[4] == 0);
}

struct seen {
    int n;
    char last[300];
};

static int
collect(void *arg, const char *name, size_t nlen, const char *val, size_t vlen)
{
    struct seen *s = arg;

    s->n++;
    snprintf(s->last, sizeof(s->last), "%.*s=%.*s", (int)nlen, name, (int)vlen, val);
    return 0;
}

static void
test_params(void **state)
{
    unsigned char p[400] = {4, 3, 'P', 'A', 'T', 'H', '/', 'a', 'b'};
    size_t n = 9;
    struct seen s = {0};

    (void)state;
    /* A long value: four length bytes, top bit set. */
    p[n++] = 1;
    p[n++] = 0x80;
    p[n++] = 0;
    p[n++] = 1;
    p[n++] = 44; /* 300 */
    p[n++] = 'Q';
    memset(p + n, 'v', 300);
    n += 300;
    assert_int_equal(crm_fcgi_params(p, n, collect, &s), 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(strlen(s.last), 299); /* "Q=" and 297 of the 300 'v's fit */
    s.n = 0;
    assert_int_equal(crm_fcgi_params(p, 8, collect, &s), -1);  /* value runs past the end */
    assert_int_equal(crm_fcgi_params(p, 11, collect, &s), -1); /* a length cut short */
}

/*
 * A request whose first PARAMS record is the empty one that ends them has no stream at all:
 * crm-events hands over NULL and 0. Found by tests/fuzz/fuzz_fcgi (UBSan: NULL + 0).
 */
static void
test_params_none(void **state)
{
    struct seen s = {0};

    (void)state;
    assert_int_equal(crm_fcgi_params(NULL, 0, collect, &s), 0);
    assert_int_equal(s.n, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_whole_and_partial),
        cmocka_unit_test(test_frame_splits_at_65535),
        cmocka_unit_test(test_end_request),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_params_none),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
