/*
 * routes.h: the one route of crm-events, X(method, pattern, handler) (see cgi-src/auth/routes.h).
 * Its handler is the stream server itself, so the table has none.
 */
#ifndef CRM_EVENTS_ROUTES_H
#define CRM_EVENTS_ROUTES_H

#define CRM_EVENTS_ROUTES(X) X("GET", "/api/events", NULL)

#endif
