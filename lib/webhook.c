/* webhook.c: the addresses webhooks may reach, the check of a URL, and the delivery signature. */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "config.h"
#include "jwt.h"
#include "util.h"
#include "webhook.h"

/* Whether the IPv4 address a (host order) is one webhooks may not reach. */
static int
v4_refused(uint32_t a)
{
    static const struct {
        uint32_t net;
        int bits;
    } nets[] = {
        {0x00000000, 8},  /* "this network", 0.0.0.0 */
        {0x0a000000, 8},  /* private */
        {0x64400000, 10}, /* shared (carrier-grade NAT) */
        {0x7f000000, 8},  /* loopback */
        {0xa9fe0000, 16}, /* link-local: 169.254.169.254 is the cloud metadata service */
        {0xac100000, 12}, /* private */
        {0xc0000000, 24}, /* IETF protocol assignments */
        {0xc0000200, 24}, /* documentation */
        {0xc0a80000, 16}, /* private */
        {0xc6120000, 15}, /* benchmarking */
        {0xc6336400, 24}, /* documentation */
        {0xcb007100, 24}, /* documentation */
        {0xe0000000, 4},  /* multicast */
        {0xf0000000, 4},  /* reserved, broadcast */
    };

    for (size_t i = 0; i < sizeof(nets) / sizeof(nets[0]); i++)
        if ((a >> (32 - nets[i].bits)) == (nets[i].net >> (32 - nets[i].bits)))
            return 1;
    return 0;
}

/* Whether the 16 bytes of an IPv6 address are one webhooks may not reach (mapped: its IPv4). */
static int
v6_refused(const unsigned char *b)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char zero[15] = {0};

    if (memcmp(b, mapped, 12) == 0)
        return v4_refused((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 |
                          b[15]);
    if (memcmp(b, zero, 15) == 0) /* :: and ::1 */
        return 1;
    /* Only global unicast (2000::/3) is public; 2001:db8::/32 is documentation. */
    return (b[0] & 0xe0) != 0x20 || (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8);
}

/* The first bits bits of a and b are equal. */
static int
prefix_equal(const unsigned char *a, const unsigned char *b, int bits)
{
    int whole = bits / 8, rest = bits % 8;

    if (memcmp(a, b, (size_t)whole) != 0)
        return 0;
    return rest == 0 || ((a[whole] ^ b[whole]) & (0xff << (8 - rest))) == 0;
}

struct addr {
    int family;
    unsigned char bytes[16];
};

/* 1 when item (an address or CIDR network of WEBHOOK_ALLOW_NETS) holds the address arg. */
static int
net_holds(const char *item, size_t len, void *arg)
{
    const struct addr *a = arg;
    const char *slash = memchr(item, '/', len);
    size_t alen = slash != NULL ? (size_t)(slash - item) : len;
    unsigned char net[16];
    char text[64];
    long long bits;
    int v6;

    if (alen == 0 || alen >= sizeof(text))
        return 0;
    memcpy(text, item, alen);
    text[alen] = '\0';
    v6 = strchr(text, ':') != NULL;
    if ((v6 ? AF_INET6 : AF_INET) != a->family || inet_pton(a->family, text, net) != 1)
        return 0;
    bits = v6 ? 128 : 32;
    if (slash != NULL) {
        if (len - alen - 1 >= sizeof(text))
            return 0;
        memcpy(text, slash + 1, len - alen - 1);
        text[len - alen - 1] = '\0';
        if (crm_parse_int(text, 0, v6 ? 128 : 32, &bits) != 0)
            return 0;
    }
    return prefix_equal(a->bytes, net, (int)bits);
}

int
crm_webhook_addr_refused(const struct sockaddr *sa, const char *allow)
{
    struct addr a = {.family = sa->sa_family};
    int refused;

    if (sa->sa_family == AF_INET) {
        memcpy(a.bytes, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        refused =
            v4_refused(ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr));
    } else if (sa->sa_family == AF_INET6) {
        memcpy(a.bytes, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        refused = v6_refused(a.bytes);
    } else {
        return 1;
    }
    return refused && crm_config_each(allow, net_holds, &a) == 0;
}

/* Every address host resolves to may be reached. Returns 0, or -1 with why. */
static int
host_check(const char *host, const char *allow, char *why, size_t whysz)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
    int rc = 0;

    if (getaddrinfo(host, NULL, &hints, &res) != 0) {
        snprintf(why, whysz, "url: the host %s does not resolve", host);
        return -1;
    }
    for (ai = res; ai != NULL && rc == 0; ai = ai->ai_next)
        if (crm_webhook_addr_refused(ai->ai_addr, allow)) {
            snprintf(why, whysz,
                     "url: %s resolves to a loopback, private or link-local address, which "
                     "webhooks may not reach (WEBHOOK_ALLOW_NETS)",
                     host);
            rc = -1;
        }
    freeaddrinfo(res);
    return rc;
}

int
crm_webhook_url_check(const char *url, const char *allow, char *why, size_t whysz)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *user = NULL, *pass = NULL;
    int rc = -1;

    /* curl's own parser, so the host checked is the host crm-webhooks connects to. */
    if (u == NULL || strlen(url) > 2000 || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        snprintf(why, whysz, "url: must be an absolute http or https URL of at most 2000 bytes");
    else if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
        snprintf(why, whysz, "url: must be http or https");
    else if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
             curl_url_get(u, CURLUPART_PASSWORD, &pass, 0) == CURLUE_OK)
        snprintf(why, whysz, "url: must not carry a user name or password");
    else {
        /* A bracketed IPv6 host comes back in its brackets. */
        size_t n = strlen(host);

        if (n > 2 && host[0] == '[' && host[n - 1] == ']') {
            memmove(host, host + 1, n - 2);
            host[n - 2] = '\0';
        }
        rc = host_check(host, allow, why, whysz);
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(pass);
    curl_url_cleanup(u);
    return rc;
}

int
crm_webhook_sign(const char *secret, long long ts, const char *body, char out[68])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char mac[32];
    char prefix[24];
    size_t plen = (size_t)snprintf(prefix, sizeof(prefix), "%lld.", ts), blen = strlen(body);
    char *data = malloc(plen + blen);

    if (data == NULL)
        return -1;
    memcpy(data, prefix, plen);
    memcpy(data + plen, body, blen);
    if (crm_jwt_hs256((const unsigned char *)secret, strlen(secret), data, plen + blen, mac) != 0) {
        free(data);
        return -1;
    }
    free(data);
    memcpy(out, "v1=", 3);
    for (int i = 0; i < 32; i++) {
        out[3 + 2 * i] = hex[mac[i] >> 4];
        out[4 + 2 * i] = hex[mac[i] & 15];
    }
    out[67] = '\0';
    return 0;
}
