/* mail.c: builds the welcome message and computes the retry schedule. */
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

/* A display name as is when it is plain words, else as RFC 2047 encoded words (B, UTF-8). */
static void
put_display_name(struct buf *b, const char *name)
{
    size_t n = strlen(name), off = 0;
    int plain = n > 0;

    for (const char *p = name; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == ' '))
            plain = 0;
    if (plain) {
        puts_(b, name);
        return;
    }
    /* At most 45 bytes per word (75 characters encoded), never splitting a UTF-8 character. */
    while (off < n) {
        size_t chunk = n - off < 45 ? n - off : 45;
        unsigned char out[64];
        int len;

        while (off + chunk < n && ((unsigned char)name[off + chunk] & 0xc0) == 0x80)
            chunk--;
        len = EVP_EncodeBlock(out, (const unsigned char *)name + off, (int)chunk);
        if (off > 0)
            puts_(b, "\r\n ");
        puts_(b, "=?UTF-8?B?");
        put(b, (const char *)out, (size_t)len);
        puts_(b, "?=");
        off += chunk;
    }
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

char *
crm_mail_welcome(const char *from, const char *to_addr, const char *to_name, long long id,
                 time_t now)
{
    struct buf b = {0}, text = {0}, html = {0};
    char date[64], from_addr[256], boundary[64];
    const char *domain;
    struct tm tm;

    if (crm_mail_addr(from, from_addr, sizeof(from_addr)) != 0 || strpbrk(to_addr, "\r\n<>") ||
        strpbrk(from, "\r\n") || !crm_utf8_valid(to_name, strlen(to_name)))
        return NULL;
    domain = strchr(from_addr, '@') + 1;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    snprintf(boundary, sizeof(boundary), "=_crm_welcome_%lld", id);

    /* The name is put apart from putf: it may be longer than putf's buffer. */
    puts_(&text, "Hello ");
    puts_(&text, to_name);
    putf(&text,
         ",\r\n\r\nWelcome to Next-Gen CRM! Your account for %s is ready: sign in with "
         "this e-mail address.\r\n\r\nThe Next-Gen CRM team\r\n",
         to_addr);
    puts_(&html, "<!DOCTYPE html>\r\n<html><body>\r\n<p>Hello <strong>");
    put_html_escaped(&html, to_name);
    puts_(&html, "</strong>,</p>\r\n<p>Welcome to Next-Gen CRM! Your account for ");
    put_html_escaped(&html, to_addr);
    puts_(&html, " is ready: sign in with this e-mail address.</p>\r\n"
                 "<p>The Next-Gen CRM team</p>\r\n</body></html>\r\n");

    putf(&b, "Date: %s\r\nFrom: %s\r\nTo: ", date, from);
    put_display_name(&b, to_name);
    putf(&b, " <%s>\r\nSubject: " SUBJECT "\r\nMessage-ID: <welcome-%lld@%s>\r\n", to_addr, id,
         domain);
    putf(&b, "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n",
         boundary);
    put_part(&b, boundary, "text/plain", &text);
    put_part(&b, boundary, "text/html", &html);
    putf(&b, "--%s--\r\n", boundary);
    free(text.p);
    free(html.p);
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return b.p;
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
