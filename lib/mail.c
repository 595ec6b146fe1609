/*
 * mail.c: builds the outbox's messages (welcome, task reminder, password reset) and the retry
 * schedule.
 */
#include "mail.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "util.h"

#define SUBJECT "Welcome to Next-Gen CRM"
#define BACKOFF_MAX (6L * 3600)

/* A growing string; any failure sticks, and the result is then NULL. */
struct buf {
    char *p;
    size_t len, cap;
    int failed;
};

static void
put(struct buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *p = realloc(b->p, cap);

        if (p == NULL) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void __attribute__((format(printf, 2, 3))) putf(struct buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        b->failed = 1;
    else
        put(b, tmp, (size_t)n);
}

static void
puts_(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* base64 of s, in lines of 76 characters ending in CRLF (RFC 2045). */
static void
put_base64(struct buf *b, const char *s, size_t n)
{
    for (size_t off = 0; off < n; off += 57) {
        unsigned char out[80];
        size_t chunk = n - off < 57 ? n - off : 57;
        int len = EVP_EncodeBlock(out, (const unsigned char *)s + off, (int)chunk);

        put(b, (const char *)out, (size_t)len);
        put(b, "\r\n", 2);
    }
}

int
crm_mail_addr(const char *mailbox, char *out, size_t outsz)
{
    const char *lt = strrchr(mailbox, '<'), *start = lt != NULL ? lt + 1 : mailbox;
    size_t n = lt != NULL ? strcspn(start, ">") : strlen(start);

    while (n > 0 && (*start == ' ' || *start == '\t'))
        start++, n--;
    while (n > 0 && (start[n - 1] == ' ' || start[n - 1] == '\t'))
        n--;
    if (n == 0 || n >= outsz || memchr(start, '@', n) == NULL)
        return -1;
    memcpy(out, start, n);
    out[n] = '\0';
    return 0;
}

/* s as RFC 2047 encoded words (B, UTF-8), at most 45 bytes (75 characters) each, folded. */
static void
put_encoded_words(struct buf *b, const char *s)
{
    size_t n = strlen(s), off = 0;

    /* Never splitting a UTF-8 character. */
    while (off < n) {
        size_t chunk = n - off < 45 ? n - off : 45;
        unsigned char out[64];
        int len;

        while (off + chunk < n && ((unsigned char)s[off + chunk] & 0xc0) == 0x80)
            chunk--;
        len = EVP_EncodeBlock(out, (const unsigned char *)s + off, (int)chunk);
        if (off > 0)
            puts_(b, "\r\n ");
        puts_(b, "=?UTF-8?B?");
        put(b, (const char *)out, (size_t)len);
        puts_(b, "?=");
        off += chunk;
    }
}

/* A display name as is when it is plain words, else as encoded words. */
static void
put_display_name(struct buf *b, const char *name)
{
    int plain = *name != '\0';

    for (const char *p = name; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == ' '))
            plain = 0;
    if (plain)
        puts_(b, name);
    else
        put_encoded_words(b, name);
}

/* A Subject as is when it is short printable ASCII that cannot be taken for an encoded word. */
static void
put_subject(struct buf *b, const char *subject)
{
    int plain = strlen(subject) <= 70 && strstr(subject, "=?") == NULL;

    for (const char *p = subject; *p != '\0'; p++)
        if (*p < 0x20 || *p > 0x7e)
            plain = 0;
    if (plain)
        puts_(b, subject);
    else
        put_encoded_words(b, subject);
}

static void
put_html_escaped(struct buf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '&':
            puts_(b, "&amp;");
            break;
        case '<':
            puts_(b, "&lt;");
            break;
        case '>':
            puts_(b, "&gt;");
            break;
        case '"':
            puts_(b, "&quot;");
            break;
        case '\'':
            puts_(b, "&#39;");
            break;
        default:
            put(b, s, 1);
        }
    }
}

static void
put_part(struct buf *b, const char *boundary, const char *type, const struct buf *body)
{
    putf(b,
         "--%s\r\nContent-Type: %s; charset=UTF-8\r\n"
         "Content-Transfer-Encoding: base64\r\n\r\n",
         boundary, type);
    if (body->failed || body->p == NULL)
        b->failed = 1;
    else
        put_base64(b, body->p, body->len);
}

/*
 * The message around its two bodies (which it frees): headers for outbox row id of kind (its
 * Message-ID <kind-id@domain>), the subject (RFC 2047-encoded when it is not plain words), and the
 * text and HTML parts. NULL when out of memory or an argument is unusable.
 */
static char *
compose(const char *from, const char *to_addr, const char *to_name, const char *kind, long long id,
        time_t now, const char *subject, struct buf *text, struct buf *html)
{
    struct buf b = {0};
    char date[64], from_addr[256], boundary[64];
    struct tm tm;

    if (crm_mail_addr(from, from_addr, sizeof(from_addr)) != 0 || strpbrk(to_addr, "\r\n<>") ||
        strpbrk(from, "\r\n") || !crm_utf8_valid(to_name, strlen(to_name)) ||
        !crm_utf8_valid(subject, strlen(subject))) {
        free(text->p);
        free(html->p);
        return NULL;
    }
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    snprintf(boundary, sizeof(boundary), "=_crm_%s_%lld", kind, id);
    putf(&b, "Date: %s\r\nFrom: %s\r\nTo: ", date, from);
    put_display_name(&b, to_name);
    putf(&b, " <%s>\r\nSubject: ", to_addr);
    put_subject(&b, subject);
    putf(&b, "\r\nMessage-ID: <%s-%lld@%s>\r\n", kind, id, strchr(from_addr, '@') + 1);
    putf(&b, "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n",
         boundary);
    put_part(&b, boundary, "text/plain", text);
    put_part(&b, boundary, "text/html", html);
    putf(&b, "--%s--\r\n", boundary);
    free(text->p);
    free(html->p);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

char *
crm_mail_welcome(const char *from, const char *to_addr, const char *to_name, long long id,
                 time_t now)
{
    struct buf text = {0}, html = {0};

    /* The name is put apart from putf: it may be longer than putf's buffer. */
    puts_(&text, "Hello ");
    puts_(&text, to_name);
    puts_(&text, ",\r\n\r\nWelcome to Next-Gen CRM! Your account for ");
    puts_(&text, to_addr);
    puts_(&text, " is ready: sign in with this e-mail address.\r\n\r\nThe Next-Gen CRM team\r\n");
    puts_(&html, "<!DOCTYPE html>\r\n<html><body>\r\n<p>Hello <strong>");
    put_html_escaped(&html, to_name);
    puts_(&html, "</strong>,</p>\r\n<p>Welcome to Next-Gen CRM! Your account for ");
    put_html_escaped(&html, to_addr);
    puts_(&html, " is ready: sign in with this e-mail address.</p>\r\n"
                 "<p>The Next-Gen CRM team</p>\r\n</body></html>\r\n");
    return compose(from, to_addr, to_name, "welcome", id, now, SUBJECT, &text, &html);
}

char *
crm_mail_task_due(const char *from, const char *to_addr, const char *to_name, long long id,
                  time_t now, const char *title, const char *lead, const char *due_at)
{
    struct buf text = {0}, html = {0}, subject = {0};
    char *msg;

    if (!crm_utf8_valid(title, strlen(title)) || !crm_utf8_valid(lead, strlen(lead)) ||
        !crm_utf8_valid(due_at, strlen(due_at)) || strpbrk(title, "\r\n"))
        return NULL;
    puts_(&subject, "Reminder: ");
    puts_(&subject, title);
    puts_(&text, "Hello ");
    puts_(&text, to_name);
    puts_(&text, ",\r\n\r\nYour task \"");
    puts_(&text, title);
    puts_(&text, "\" on the lead \"");
    puts_(&text, lead);
    puts_(&text, "\" is due at ");
    puts_(&text, due_at);
    puts_(&text, " (UTC).\r\n\r\nThe Next-Gen CRM team\r\n");
    puts_(&html, "<!DOCTYPE html>\r\n<html><body>\r\n<p>Hello <strong>");
    put_html_escaped(&html, to_name);
    puts_(&html, "</strong>,</p>\r\n<p>Your task <strong>");
    put_html_escaped(&html, title);
    puts_(&html, "</strong> on the lead <strong>");
    put_html_escaped(&html, lead);
    puts_(&html, "</strong> is due at ");
    put_html_escaped(&html, due_at);
    puts_(&html, " (UTC).</p>\r\n<p>The Next-Gen CRM team</p>\r\n</body></html>\r\n");
    msg = subject.failed
              ? NULL
              : compose(from, to_addr, to_name, "task_due", id, now, subject.p, &text, &html);
    if (subject.failed) {
        free(text.p);
        free(html.p);
    }
    free(subject.p);
    return msg;
}

char *
crm_mail_password_reset(const char *from, const char *to_addr, const char *to_name, long long id,
                        time_t now, const char *link)
{
    struct buf text = {0}, html = {0};

    if (strpbrk(link, " \t\r\n\"<>") != NULL || !crm_utf8_valid(link, strlen(link)))
        return NULL;
    puts_(&text, "Hello ");
    puts_(&text, to_name);
    puts_(&text, ",\r\n\r\nSomeone asked to reset the password of your Next-Gen CRM account ");
    puts_(&text, to_addr);
    puts_(&text, ". To choose a new one, open this link within an hour (it works once):\r\n\r\n");
    puts_(&text, link);
    puts_(&text, "\r\n\r\nIf it was not you, ignore this e-mail: your password stays as it is."
                 "\r\n\r\nThe Next-Gen CRM team\r\n");
    puts_(&html, "<!DOCTYPE html>\r\n<html><body>\r\n<p>Hello <strong>");
    put_html_escaped(&html, to_name);
    puts_(&html, "</strong>,</p>\r\n<p>Someone asked to reset the password of your Next-Gen CRM"
                 " account ");
    put_html_escaped(&html, to_addr);
    puts_(&html, ". To choose a new one, open this link within an hour (it works once):</p>"
                 "\r\n<p><a href=\"");
    put_html_escaped(&html, link);
    puts_(&html, "\">");
    put_html_escaped(&html, link);
    puts_(&html, "</a></p>\r\n<p>If it was not you, ignore this e-mail: your password stays as it"
                 " is.</p>\r\n<p>The Next-Gen CRM team</p>\r\n</body></html>\r\n");
    return compose(from, to_addr, to_name, "password_reset", id, now,
                   "Reset your Next-Gen CRM password", &text, &html);
}

long
crm_mail_backoff(int attempts, long base, double r)
{
    double delay = (double)base;

    for (int i = 1; i < attempts && delay < (double)BACKOFF_MAX; i++)
        delay *= 2;
    if (delay > (double)BACKOFF_MAX)
        delay = (double)BACKOFF_MAX;
    delay *= 0.8 + 0.4 * r;
    return delay < 1 ? 1 : lround(delay);
}
