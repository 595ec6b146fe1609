/*
 * test_csv.c: CSV records as RFC 4180 has them, formula cells neutralised, put failures; and
 * read back: quoting, line ends, broken quoting, and every written cell read back as it was.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "csv.h"

/* A sink that collects what it is given, and refuses everything after `fail_after` calls. */
struct sink {
    char buf[512];
    size_t len;
    int calls, fail_after;
};

static int
put_buf(void *p, const char *data, size_t len)
{
    struct sink *s = p;

    if (s->fail_after >= 0 && s->calls++ >= s->fail_after)
        return -1;
    assert_true(s->len + len < sizeof(s->buf));
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    s->buf[s->len] = '\0';
    return 0;
}

static const char *
record(const char *const *cells, int n)
{
    static struct sink s;

    memset(&s, 0, sizeof(s));
    s.fail_after = -1;
    assert_int_equal(crm_csv_record(cells, n, put_buf, &s), 0);
    return s.buf;
}

static void
test_plain_cells_and_null(void **state)
{
    const char *cells[] = {"1", "Asha Rao", NULL, "", "12500.50"};

    (void)state;
    assert_string_equal(record(cells, 5), "1,Asha Rao,,,12500.50\r\n");
}

static void
test_quoting(void **state)
{
    const char *cells[] = {"a,b", "say \"hi\"", "line\nbreak", "cr\rhere", "\"", "ünï 東京"};

    (void)state;
    assert_string_equal(record(cells, 6), "\"a,b\",\"say \"\"hi\"\"\",\"line\nbreak\","
                                          "\"cr\rhere\",\"\"\"\",ünï 東京\r\n");
}

static void
test_formulas_are_neutralised(void **state)
{
    const char *cells[] = {"=1+1", "+1 555", "-2", "@SUM(A1)", "\tx", "\rx", "a=b", " =x"};

    (void)state;
    assert_string_equal(record(cells, 8), "'=1+1,'+1 555,'-2,'@SUM(A1),'\tx,\"'\rx\",a=b, =x\r\n");
    /* Quoted and neutralised: the quote goes inside the cell's own quotes. */
    cells[0] = "=HYPERLINK(\"http://x\",\"a,b\")";
    assert_string_equal(record(cells, 1), "\"'=HYPERLINK(\"\"http://x\"\",\"\"a,b\"\")\"\r\n");
}

static void
test_a_failing_put_fails_the_record(void **state)
{
    const char *cells[] = {"a", "say \"hi\"", "=x"};
    struct sink s;

    (void)state;
    /* Whichever write fails, the record fails, and nothing is written after the failure. */
    for (int i = 0; i < 12; i++) {
        memset(&s, 0, sizeof(s));
        s.fail_after = i;
        assert_int_equal(crm_csv_record(cells, 3, put_buf, &s), -1);
        assert_int_equal(s.calls, i + 1);
    }
}

static void
test_quoted_formulas_keep_one_to_one(void **state)
{
    const char *cells[] = {"'=x", "''+1", "'tis", "'", "x'=", "'a=b"};

    (void)state;
    /* Quotes before a formula character get one more; other quotes stay as they are. */
    assert_string_equal(record(cells, 6), "''=x,'''+1,'tis,',x'=,'a=b\r\n");
}

/* Reads every record of text; returns the records' cells joined by | and records by /. */
static const char *
read_all(const char *text, int *rc)
{
    static char buf[512], out[512];
    struct crm_csv c;
    char *cells[8];
    int n;

    strcpy(buf, text);
    out[0] = '\0';
    crm_csv_init(&c, buf, strlen(text));
    while ((n = crm_csv_read(&c, cells, 8)) > 0) {
        for (int i = 0; i < n && i < 8; i++) {
            strcat(out, i > 0 ? "|" : out[0] != '\0' ? "/" : "");
            strcat(out, cells[i]);
        }
    }
    *rc = n == 0 ? (int)c.record : -(int)c.record;
    return out;
}

static void
test_read_records(void **state)
{
    int rc;

    (void)state;
    assert_string_equal(read_all("a,b\r\nc,d\r\n", &rc), "a|b/c|d");
    assert_int_equal(rc, 2);
    /* LF alone, no end at all, empty cells, empty lines skipped, a byte order mark. */
    assert_string_equal(read_all("\xEF\xBB\xBF"
                                 "a,,b\n\n\r\n,x",
                                 &rc),
                        "a||b/|x");
    assert_int_equal(rc, 2);
    assert_string_equal(read_all("\"a,b\",\"say \"\"hi\"\"\",\"l\r\nn\"\r\n\"\"", &rc),
                        "a,b|say \"hi\"|l\r\nn/");
    assert_int_equal(rc, 2);
    assert_string_equal(read_all("a,\"\"\n", &rc), "a|");
    assert_string_equal(read_all("", &rc), "");
    assert_int_equal(rc, 0);
}

static void
test_read_counts_ragged_records(void **state)
{
    char buf[] = "a,b,c,d\r\n";
    struct crm_csv c;
    char *cells[2];

    (void)state;
    crm_csv_init(&c, buf, strlen(buf));
    assert_int_equal(crm_csv_read(&c, cells, 2), 4);
    assert_string_equal(cells[1], "b");
    assert_int_equal(crm_csv_read(&c, cells, 2), 0);
}

static void
test_read_refuses_broken_quoting(void **state)
{
    static const char *const bad[] = {"a,b\"c\n", "\"open\n", "\"x\"y,z\n", "ok\nx,\"a\"\"",
                                      "a\rb\n",   "a,b\r",    "x\n\"\"\"\n"};
    int rc;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        read_all(bad[i], &rc);
        assert_true(rc < 0);
    }
    read_all("ok\nok\n\"bad\n", &rc);
    assert_int_equal(rc, -3); /* the record where it broke */
}

static void
test_written_cells_read_back(void **state)
{
    const char *cells[] = {"=1+1", "'=x",   "''-y", "a,\"b\"\r\n", "\tTab", "\rCR",
                           "'tis", "plain", "",     "@at",         "-",     "ünï"};
    const int n = (int)(sizeof(cells) / sizeof(cells[0]));
    struct sink s;
    struct crm_csv c;
    char *got[16];

    (void)state;
    memset(&s, 0, sizeof(s));
    s.fail_after = -1;
    assert_int_equal(crm_csv_record(cells, n, put_buf, &s), 0);
    crm_csv_init(&c, s.buf, s.len);
    assert_int_equal(crm_csv_read(&c, got, 16), n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(crm_csv_cell_text(&got[i]), 0);
        assert_string_equal(got[i], cells[i]);
    }
}

static void
test_formula_cells_are_refused(void **state)
{
    static const char *const formulas[] = {"=1", "+1", "-1", "@x", "\tx", "\rx"};
    char buf[8];
    char *cell;

    (void)state;
    for (size_t i = 0; i < sizeof(formulas) / sizeof(formulas[0]); i++) {
        strcpy(buf, formulas[i]);
        cell = buf;
        assert_int_equal(crm_csv_cell_text(&cell), -1);
    }
    strcpy(buf, "a=1");
    cell = buf;
    assert_int_equal(crm_csv_cell_text(&cell), 0);
    assert_string_equal(cell, "a=1");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_cells_and_null),
        cmocka_unit_test(test_quoting),
        cmocka_unit_test(test_formulas_are_neutralised),
        cmocka_unit_test(test_a_failing_put_fails_the_record),
        cmocka_unit_test(test_quoted_formulas_keep_one_to_one),
        cmocka_unit_test(test_read_records),
        cmocka_unit_test(test_read_counts_ragged_records),
        cmocka_unit_test(test_read_refuses_broken_quoting),
        cmocka_unit_test(test_written_cells_read_back),
        cmocka_unit_test(test_formula_cells_are_refused),
    };

    return cmocka_run_group_tests(tests, 0, NULL);
}
