/*
 * routes.h: the routes of crm-auth as an X-macro, X(method, pattern, handler): main.c builds its
 * routing table from it and `crmctl routes` lists it, so the listing is the table itself.
 */
#ifndef CRM_AUTH_ROUTES_H
#define CRM_AUTH_ROUTES_H

#define CRM_AUTH_ROUTES(X)                                                                         \
    X("POST", "/api/auth/register", auth_register)                                                 \
    X("POST", "/api/auth/login", auth_login)                                                       \
    X("GET", "/api/auth/me", auth_me)                                                              \
    X("POST", "/api/auth/password", auth_password)                                                 \
    X("POST", "/api/auth/logout-all", auth_logout_all)                                             \
    X("POST", "/api/auth/password-reset", auth_reset_request)                                      \
    X("POST", "/api/auth/password-reset/confirm", auth_reset_confirm)                              \
    X("POST", "/api/tokens", tokens_create)                                                        \
    X("GET", "/api/tokens", tokens_list)                                                           \
    X("DELETE", "/api/tokens/:id", tokens_delete)                                                  \
    X("GET", "/api/users", users_list)                                                             \
    X("PATCH", "/api/users/:id", users_update)                                                     \
    X("POST", "/api/webhooks", webhooks_create)                                                    \
    X("GET", "/api/webhooks", webhooks_list)                                                       \
    X("GET", "/api/webhooks/:id", webhooks_get)                                                    \
    X("PATCH", "/api/webhooks/:id", webhooks_update)                                               \
    X("DELETE", "/api/webhooks/:id", webhooks_delete)                                              \
    X("GET", "/api/webhooks/:id/deliveries", webhooks_deliveries)                                  \
    X("GET", "/api/health", auth_health)

#endif
