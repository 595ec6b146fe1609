/* routes.h: the routes of crm-leads, X(method, pattern, handler) (see cgi-src/auth/routes.h). */
#ifndef CRM_LEADS_ROUTES_H
#define CRM_LEADS_ROUTES_H

#define CRM_LEADS_ROUTES(X)                                                                        \
    X("POST", "/api/leads", leads_create)                                                          \
    X("GET", "/api/leads", leads_list)                                                             \
    X("GET", "/api/leads.csv", leads_export)                                                       \
    X("POST", "/api/leads/import", leads_import)                                                   \
    X("GET", "/api/leads/:id", leads_get)                                                          \
    X("PATCH", "/api/leads/:id", leads_update)                                                     \
    X("DELETE", "/api/leads/:id", leads_delete)                                                    \
    X("PATCH", "/api/leads/:id/status", leads_status)                                              \
    X("PATCH", "/api/leads/:id/assign", leads_assign)                                              \
    X("POST", "/api/leads/:id/activity", activity_add)                                             \
    X("GET", "/api/leads/:id/activities", activity_list)                                           \
    X("POST", "/api/leads/:id/tasks", tasks_create)                                                \
    X("GET", "/api/leads/:id/tasks", tasks_of_lead)                                                \
    X("GET", "/api/tasks", tasks_mine)                                                             \
    X("GET", "/api/tasks/:id", tasks_get)                                                          \
    X("PATCH", "/api/tasks/:id", tasks_update)                                                     \
    X("DELETE", "/api/tasks/:id", tasks_delete)                                                    \
    X("POST", "/api/tasks/:id/complete", tasks_complete)                                           \
    X("POST", "/api/tasks/:id/reopen", tasks_reopen)                                               \
    X("GET", "/api/notifications", notifications_list)                                             \
    X("GET", "/api/notifications/unread-count", notifications_unread)                              \
    X("POST", "/api/notifications/:id/read", notifications_read)                                   \
    X("POST", "/api/notifications/read-all", notifications_read_all)

#endif
