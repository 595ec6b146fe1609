/* err.h: the error codes every libcrm call returns, and their HTTP mapping. */
#ifndef CRM_ERR_H
#define CRM_ERR_H

/* One value per row of API.md's error table; CRM_OK is 0. */
enum crm_err {
    CRM_OK = 0,
    CRM_EJSON,      /* 400 invalid_json */
    CRM_EQUERY,     /* 400 invalid_query */
    CRM_ECSV,       /* 400 invalid_csv: a CSV body that cannot be read (POST /api/leads/import) */
    CRM_EAUTH,      /* 401 unauthenticated */
    CRM_ECRED,      /* 401 invalid_credentials */
    CRM_EFORBIDDEN, /* 403 forbidden */
    CRM_ENOTFOUND,  /* 404 not_found */
    CRM_EMETHOD,    /* 405 method_not_allowed */
    CRM_ECONFLICT,  /* 409 conflict */
    CRM_EPRECOND,   /* 412 precondition_failed */
    CRM_ETOOBIG,    /* 413 payload_too_large */
    CRM_EMEDIA,     /* 415 unsupported_media_type */
    CRM_EINVAL,     /* 422 validation_failed */
    CRM_ERATE,      /* 429 rate_limited */
    CRM_ESTREAMS,   /* 429 too_many_streams: the caller holds SSE_MAX_STREAMS_PER_USER streams */
    CRM_EINTERNAL,  /* 500 internal */
    CRM_ENOMEM,     /* 500 internal: out of memory */
    CRM_EDB,        /* 500 internal: a database error that is not an outage */
    CRM_EUNAVAIL,   /* 503 unavailable: the database is down */
    CRM_EFULL,      /* 503 unavailable: crm-events holds SSE_MAX_STREAMS streams */
};

/* The HTTP status for err (200 for CRM_OK). */
int crm_err_status(enum crm_err err);

/* The API error code string for err ("internal" for unknown values). */
const char *crm_err_code(enum crm_err err);

/* A short default message for err, safe to show to any client. */
const char *crm_err_message(enum crm_err err);

/* The seconds a client should wait before trying again (Retry-After), or 0 for no header. */
int crm_err_retry_after(enum crm_err err);

#endif
