/* routes.h: the routes of crm-dashboard, X(method, pattern, handler) (see cgi-src/auth/routes.h).
 */
#ifndef CRM_DASHBOARD_ROUTES_H
#define CRM_DASHBOARD_ROUTES_H

#define CRM_DASHBOARD_ROUTES(X)                                                                    \
    X("GET", "/api/dashboard/stats", dashboard_stats)                                              \
    X("GET", "/api/dashboard/leads-by-status", dashboard_by_status)                                \
    X("GET", "/api/dashboard/top-sales", dashboard_top_sales)

#endif
