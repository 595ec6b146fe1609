/* test_csv.c: CSV records as RFC 4180 has them, formula cells neutralised, put failures. */
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_cells_and_null),
        cmocka_unit_test(test_quoting),
        cmocka_unit_test(test_formulas_are_neutralised),
        cmocka_unit_test(test_a_failing_put_fails_the_record),
    };

    return cmocka_run_group_tests(tests, 0, NULL);
}
