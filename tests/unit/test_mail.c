/* test_mail.c: the outbox's messages (headers, MIME parts, encodings) and the retry schedule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail.h"
#include "util.h"

#define FROM "Next-Gen CRM <no-reply@crm.example>"
#define NOW 1795564800 /* Wed, 25 Nov 2026 00:00:00 +0000 */

/* Decodes base64 lines (CRLF-separated) from s up to the next "--" boundary into out. */
static size_t
decode_part(const char *s, char *out, size_t outsz)
{
    char joined[8192];
    size_t n = 0;
    int len;

    while (*s != '\0' && !(s[0] == '-' && s[1] == '-')) {
        size_t line = strcspn(s, "\r");

        assert_true(n + line < sizeof(joined));
        memcpy(joined + n, s, line);
        n += line;
        s += line;
        assert_memory_equal(s, "\r\n", 2);
        s += 2;
    }
    assert_true(n / 4 * 3 < outsz);
    len = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)joined, (int)n);
    assert_true(len >= 0);
    while (n > 0 && joined[n - 1] == '=')
        n--, len--;
    out[len] = '\0';
    return (size_t)len;
}

/* The decoded body of the part whose Content-Type is type. */
static void
part(const char *msg, const char *type, char *out, size_t outsz)
{
    const char *p = strstr(msg, type);

    assert_non_null(p);
    p = strstr(p, "\r\n\r\n");
    assert_non_null(p);
    decode_part(p + 4, out, outsz);
}

/* The text of a header from after start to before end, its encoded words decoded and joined. */
static void
header_text(const char *msg, const char *start, const char *stop, char *out, size_t outsz)
{
    const char *p = strstr(msg, start) + strlen(start), *end = strstr(p, stop);
    size_t n = 0;

    out[0] = '\0';
    while (p < end) {
        const char *w = strstr(p, "=?UTF-8?B?"), *q;
        char buf[128];
        int len;

        if (w == NULL || w > end) {
            snprintf(out, outsz, "%.*s", (int)(end - p), p);
            return;
        }
        w += 10;
        q = strstr(w, "?=");
        assert_true(q - w <= 65); /* the whole word stays within 75 characters */
        len = EVP_DecodeBlock((unsigned char *)buf, (const unsigned char *)w, (int)(q - w));
        for (const char *e = q; e > w && e[-1] == '='; e--)
            len--;
        assert_true(n + (size_t)len < outsz);
        memcpy(out + n, buf, (size_t)len);
        n += (size_t)len;
        out[n] = '\0';
        p = q + 2;
        if (strncmp(p, "\r\n ", 3) == 0)
            p += 3;
    }
}

static void
test_mail_addr(void **state)
{
    char out[64];

    (void)state;
    assert_int_equal(crm_mail_addr(FROM, out, sizeof(out)), 0);
    assert_string_equal(out, "no-reply@crm.example");
    assert_int_equal(crm_mail_addr("a@b.io", out, sizeof(out)), 0);
    assert_string_equal(out, "a@b.io");
    assert_int_equal(crm_mail_addr("Name < a@b.io >", out, sizeof(out)), 0);
    assert_string_equal(out, "a@b.io");
    assert_int_equal(crm_mail_addr("Name <>", out, sizeof(out)), -1);
    assert_int_equal(crm_mail_addr("nobody", out, sizeof(out)), -1);
    assert_int_equal(crm_mail_addr("a@b.io", out, 4), -1);
}

static void
test_password_reset_carries_the_link(void **state)
{
    static const char link[] = "https://crm.example/reset-password#token=crm_rst_abc-_x";
    char *msg = crm_mail_password_reset(FROM, "asha@example.com", "Asha <Rao>", 7, NOW, link);
    char body[4096];

    (void)state;
    assert_non_null(msg);
    assert_non_null(strstr(msg, "\r\nSubject: Reset your Next-Gen CRM password\r\n"));
    assert_non_null(strstr(msg, "\r\nMessage-ID: <password_reset-7@crm.example>\r\n"));
    part(msg, "text/plain; charset=UTF-8", body, sizeof(body));
    assert_non_null(strstr(body, "\r\n\r\n"
                                 "https://crm.example/reset-password#token=crm_rst_abc-_x\r\n"));
    part(msg, "text/html; charset=UTF-8", body, sizeof(body));
    assert_non_null(
        strstr(body, "<a href=\"https://crm.example/reset-password#token=crm_rst_abc-_x\">"));
    assert_non_null(strstr(body, "<strong>Asha &lt;Rao&gt;</strong>"));
    free(msg);
    /* A link that could break out of the href is refused. */
    assert_null(
        crm_mail_password_reset(FROM, "asha@example.com", "Asha", 7, NOW, "https://x/\"><script>"));
}

static void
test_welcome_headers_and_parts(void **state)
{
    char *msg = crm_mail_welcome(FROM, "asha@example.com", "Asha Rao", 42, NOW);
    char body[4096];

    (void)state;
    assert_non_null(msg);
    assert_non_null(strstr(msg, "Date: Wed, 25 Nov 2026 00:00:00 +0000\r\n"));
    assert_non_null(strstr(msg, "\r\nFrom: " FROM "\r\n"));
    assert_non_null(strstr(msg, "\r\nTo: Asha Rao <asha@example.com>\r\n"));
    assert_non_null(strstr(msg, "\r\nSubject: Welcome to Next-Gen CRM\r\n"));
    assert_non_null(strstr(msg, "\r\nMessage-ID: <welcome-42@crm.example>\r\n"));
    assert_non_null(strstr(msg, "\r\nMIME-Version: 1.0\r\n"));
    assert_non_null(
        strstr(msg, "Content-Type: multipart/alternative; boundary=\"=_crm_welcome_42\""));
    assert_non_null(strstr(msg, "\r\n--=_crm_welcome_42--\r\n"));
    /* Every line ends in CRLF and none is longer than 78 characters. */
    for (const char *p = msg; *p != '\0'; p++) {
        if (*p == '\n')
            assert_true(p > msg && p[-1] == '\r');
    }
    for (const char *p = msg; *p != '\0'; p += strcspn(p, "\n") + (p[strcspn(p, "\n")] != '\0'))
        assert_true(strcspn(p, "\r") <= 78);
    part(msg, "text/plain; charset=UTF-8", body, sizeof(body));
    assert_non_null(strstr(body, "Hello Asha Rao,\r\n"));
    assert_non_null(strstr(body, "asha@example.com"));
    part(msg, "text/html; charset=UTF-8", body, sizeof(body));
    assert_non_null(strstr(body, "<strong>Asha Rao</strong>"));
    free(msg);
}

static void
test_welcome_non_ascii_and_html_name(void **state)
{
    const char *name = "Zoë <b>&amp; \"Ünal\"";
    char *msg = crm_mail_welcome(FROM, "zoe@example.com", name, 7, NOW);
    char body[4096], decoded[512];

    (void)state;
    assert_non_null(msg);
    assert_non_null(strstr(msg, "\r\nTo: =?UTF-8?B?"));
    header_text(msg, "\r\nTo: ", " <", decoded, sizeof(decoded));
    assert_string_equal(decoded, name);
    part(msg, "text/plain", body, sizeof(body));
    assert_non_null(strstr(body, "Hello Zoë <b>&amp; \"Ünal\","));
    part(msg, "text/html", body, sizeof(body));
    assert_non_null(strstr(body, "<strong>Zoë &lt;b&gt;&amp;amp; &quot;Ünal&quot;</strong>"));
    assert_null(strstr(body, "<b>"));
    free(msg);
}

static void
test_welcome_long_name_splits_words(void **state)
{
    char name[256] = "", decoded[512];
    char *msg;

    (void)state;
    for (int i = 0; i < 100; i++)
        strcat(name, i % 3 ? "é" : "x"); /* 2-byte characters at every offset */
    msg = crm_mail_welcome(FROM, "long@example.com", name, 9, NOW);
    assert_non_null(msg);
    header_text(msg, "\r\nTo: ", " <", decoded, sizeof(decoded));
    assert_string_equal(decoded, name);
    free(msg);
}

static void
test_welcome_refuses_injection(void **state)
{
    (void)state;
    assert_null(crm_mail_welcome(FROM, "a@b.io\r\nBcc: x@y.z", "A", 1, NOW));
    assert_null(crm_mail_welcome("Evil\r\nBcc: x@y.z <a@b.io>", "a@b.io", "A", 1, NOW));
    assert_null(crm_mail_welcome("no address", "a@b.io", "A", 1, NOW));
    assert_null(crm_mail_welcome(FROM, "a@b.io", "bad \xff utf-8", 1, NOW));
}

static void
test_task_due_reminder(void **state)
{
    char *msg = crm_mail_task_due(FROM, "asha@example.com", "Asha Rao", 5, NOW, "Call Globex",
                                  "Globex renewal", "2026-11-25T09:30:00.000Z");
    char body[4096], decoded[512];

    (void)state;
    assert_non_null(msg);
    assert_non_null(strstr(msg, "\r\nTo: Asha Rao <asha@example.com>\r\n"));
    assert_non_null(strstr(msg, "\r\nSubject: Reminder: Call Globex\r\n"));
    assert_non_null(strstr(msg, "\r\nMessage-ID: <task_due-5@crm.example>\r\n"));
    assert_non_null(strstr(msg, "boundary=\"=_crm_task_due_5\""));
    part(msg, "text/plain", body, sizeof(body));
    assert_non_null(strstr(body, "Your task \"Call Globex\" on the lead \"Globex renewal\" is due"
                                 " at 2026-11-25T09:30:00.000Z (UTC)."));
    free(msg);
    /* A title that is not plain ASCII is encoded words; the HTML escapes title and lead. */
    msg = crm_mail_task_due(FROM, "zoe@example.com", "Zoë", 6, NOW, "Ring Zoë <b> =?x?= & co",
                            "A&B <Ltd>", "2026-11-25T09:30:00.000Z");
    assert_non_null(msg);
    assert_non_null(strstr(msg, "\r\nSubject: =?UTF-8?B?"));
    header_text(msg, "\r\nSubject: ", "\r\nMessage-ID", decoded, sizeof(decoded));
    assert_string_equal(decoded, "Reminder: Ring Zoë <b> =?x?= & co");
    part(msg, "text/html", body, sizeof(body));
    assert_non_null(strstr(body, "<strong>Ring Zoë &lt;b&gt; =?x?= &amp; co</strong>"));
    assert_non_null(strstr(body, "<strong>A&amp;B &lt;Ltd&gt;</strong>"));
    free(msg);
    /* ASCII that could be taken for an encoded word is encoded too. */
    msg = crm_mail_task_due(FROM, "a@b.io", "A", 7, NOW, "=?UTF-8?B?eA==?=", "L", "t");
    assert_non_null(msg);
    header_text(msg, "\r\nSubject: ", "\r\nMessage-ID", decoded, sizeof(decoded));
    assert_string_equal(decoded, "Reminder: =?UTF-8?B?eA==?=");
    assert_null(strstr(msg, "Subject: Reminder: =?UTF-8?B?eA==?="));
    free(msg);
    /* No header injection through the title, no bad UTF-8. */
    assert_null(crm_mail_task_due(FROM, "a@b.io", "A", 1, NOW, "x\r\nBcc: x@y.z", "L", "t"));
    assert_null(crm_mail_task_due(FROM, "a@b.io", "A", 1, NOW, "bad \xff", "L", "t"));
    assert_null(crm_mail_task_due(FROM, "a@b.io", "A", 1, NOW, "T", "bad \xff", "t"));
    assert_null(crm_mail_task_due(FROM, "a@b.io\r\nBcc: x@y.z", "A", 1, NOW, "T", "L", "t"));
}

static void
test_backoff_schedule(void **state)
{
    (void)state;
    /* r = 0.5 is the middle of the jitter: the pure exponential schedule. */
    assert_int_equal(crm_mail_backoff(1, 30, 0.5), 30);
    assert_int_equal(crm_mail_backoff(2, 30, 0.5), 60);
    assert_int_equal(crm_mail_backoff(3, 30, 0.5), 120);
    assert_int_equal(crm_mail_backoff(8, 30, 0.5), 3840);
    /* Capped at 6 hours, even for absurd attempt counts. */
    assert_int_equal(crm_mail_backoff(20, 30, 0.5), 21600);
    assert_int_equal(crm_mail_backoff(1000, 30, 0.5), 21600);
    /* The jitter spreads +/-20%. */
    assert_int_equal(crm_mail_backoff(2, 30, 0.0), 48);
    assert_int_equal(crm_mail_backoff(2, 30, 0.999), 72);
    /* Never zero. */
    assert_int_equal(crm_mail_backoff(1, 1, 0.0), 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mail_addr),
        cmocka_unit_test(test_welcome_headers_and_parts),
        cmocka_unit_test(test_password_reset_carries_the_link),
        cmocka_unit_test(test_welcome_non_ascii_and_html_name),
        cmocka_unit_test(test_welcome_long_name_splits_words),
        cmocka_unit_test(test_welcome_refuses_injection),
        cmocka_unit_test(test_task_due_reminder),
        cmocka_unit_test(test_backoff_schedule),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
