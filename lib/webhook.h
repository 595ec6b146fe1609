/*
 * webhook.h: what the webhook routes and crm-webhooks share: which addresses a webhook may reach
 * (no loopback, private, link-local... unless WEBHOOK_ALLOW_NETS lists them), the check of a URL
 * when it is registered, and the signature receivers verify (README "Webhooks").
 */
#ifndef CRM_WEBHOOK_H
#define CRM_WEBHOOK_H

#include <stddef.h>
#include <sys/socket.h>

/*
 * 1 when a webhook may not connect to sa: an address that is not public (loopback, private,
 * shared, link-local, unique-local, multicast, unspecified, reserved; IPv4-mapped IPv6 as its
 * IPv4) and not inside a network of allow (WEBHOOK_ALLOW_NETS: addresses or CIDR networks
 * separated by spaces or commas); 0 when it may. Any family but IPv4 and IPv6 is refused.
 */
int crm_webhook_addr_refused(const struct sockaddr *sa, const char *allow);

/*
 * Checks a URL to register: http or https, a host, no user name or password, at most 2000
 * bytes, and every address the host resolves to allowed (crm_webhook_addr_refused). Returns 0,
 * or -1 with a sentence for the client in why. crm-webhooks checks the address again at each
 * connect, as a name may resolve elsewhere later.
 */
int crm_webhook_url_check(const char *url, const char *allow, char *why, size_t whysz);

/*
 * The signature of a delivery: "v1=" and the hex HMAC-SHA256, under secret, of the decimal
 * timestamp, a '.', and the body. out holds 68 bytes. Returns 0, or -1.
 */
int crm_webhook_sign(const char *secret, long long ts, const char *body, char out[68]);

#endif
