/* db.c: the statement table, lazy connection, reconnect and re-prepare, error mapping. */
#include "db.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "evorder.h"
#include "http.h"
#include "log.h"
#include "metrics.h"

struct crm_db {
    PGconn *conn;
    char *url;
    int in_tx;                 /* inside BEGIN: a lost connection must not be silently replaced */
    unsigned generation;       /* counts the connections made, so a LISTENer sees a new one */
    const struct crm_req *req; /* the request being served, whose id the log lines carry */
    const char *streaming;     /* what crm_db_stream or crm_db_copy_begin started, to its end */
};

struct crm_stmt {
    const char *name;
    const char *sql;
    /*
     * Planned on every call with its values (sent unnamed) instead of prepared once: for the
     * statements whose optional filters ("$n IS NULL OR ...") only a plan made for the actual
     * values turns into index scans.
     */
    int per_call;
};

/* Columns of a User, in the order crm_user_from_row() reads them. */
#define USER_COLS "id, name, email, role, active, crm_ts(created_at)"
/* What crm_auth_row admits a caller by, in its order, from the users row t. */
#define AUTH_COLS(t) t "role, " t "active, " t "token_epoch"

/*
 * Leads. OWN_n is the row filter: $n is the caller's id for a SALES_EXECUTIVE (only its own
 * leads exist for it), NULL for the roles that see every lead.
 */
#define OWN_1 "($1::bigint IS NULL OR l.owner_id = $1)"
#define OWN_2 "($2::bigint IS NULL OR l.owner_id = $2)"
/* Writes insert their events row and notify in the same statement, so in the same transaction. */
#define EVENT " e AS (INSERT INTO events (type, lead_id, owner_id, actor_id, payload) SELECT "
#define NOTIFY "pg_notify('crm_events', e.id::text) IS NULL"
/*
 * PATCH /api/leads/:id: a member present in the body $2 sets its column (null clears it). The
 * columns and their new values as two rows, to set them and to compare them in one statement.
 */
#define PATCH_IF(key, col, expr) "CASE WHEN $2::jsonb ? '" key "' THEN " expr " ELSE " col " END"
#define PATCH(col, expr) PATCH_IF(col, col, expr)
#define PATCH_TEXT(col) PATCH(col, "$2::jsonb->>'" col "'")
/* PATCH /api/tasks/:id: the same, as the SET list of an UPDATE. */
#define SET_PATCH(col, expr) col " = " PATCH(col, expr) ", "
#define LEAD_PATCH_COLS "(name, email, phone, company, notes, source, value)"
/* Left unformatted: clang-format finds no stable layout for this list. */
// clang-format off
#define LEAD_PATCH                                                                                 \
    "ROW(" PATCH_TEXT("name") ", " PATCH_TEXT("email") ", " PATCH_TEXT("phone") ", "               \
    PATCH_TEXT("company") ", " PATCH_TEXT("notes") ", "                                            \
    PATCH("source", "coalesce($2::jsonb->>'source', 'OTHER')") ", "                                \
    PATCH("value", "coalesce(($2::jsonb->>'value')::numeric(14,2), 0)") ")"
// clang-format on
/*
 * The activity a change records, with the fields it changed (schema.sql crm_lead_changes) in
 * its meta: o the lead before, l after, a the activity, put on the event too.
 */
#define CHANGES "'changes', crm_lead_changes(o.r, l.r)"
#define CHANGE_EVENT(type, prev_owner, actor)                                                      \
    " e AS (INSERT INTO events (type, lead_id, owner_id, prev_owner_id, actor_id, payload,"        \
    " activity) SELECT '" type "', (l.r).id, (l.r).owner_id, " prev_owner ", " actor ","           \
    " crm_lead_json(l.r), crm_activity_json(a.r) FROM o, l, a RETURNING id)"
/*
 * Reads of many leads, activities or tasks join the users these refer to and pass them to
 * crm_lead_json, crm_activity_json or crm_task_json, which PostgreSQL then inlines; the
 * one-argument forms look each user up in a function call, about half the time of a page of 20
 * leads (schema.sql version 16; bench/results.md). LEAD_USERS(l) joins lead l's owner and creator
 * for LEAD_JSON(l); ACTIVITY_ROWS gives activities a with their actors r, for ACTIVITY_JSON(t) of
 * a row t of the two.
 */
#define LEAD_USERS(l)                                                                              \
    "LEFT JOIN users lo ON lo.id = " l ".owner_id LEFT JOIN users lc ON lc.id = " l ".created_by"
#define LEAD_JSON(l) "crm_lead_json(" l ", crm_user_ref(lo), crm_user_ref(lc))"
#define ACTIVITY_ROWS " FROM activities a LEFT JOIN users r ON r.id = a.actor_id"
#define ACTIVITY_JSON(t) "crm_activity_json(" t ".a, crm_user_ref(" t ".r))"
/* A page p of tasks t: the JSON of each, with its assignee and creator joined. */
#define TASK_USERS                                                                                 \
    "LEFT JOIN users tu ON tu.id = (p.t).user_id LEFT JOIN users tc ON tc.id = (p.t).created_by"
#define TASK_JSON "crm_task_json(p.t, crm_user_ref(tu), crm_user_ref(tc))"
/* A page of the caller's inbox, narrowed by the condition which (below). */
#define NOTIFICATION_PAGE(name, which)                                                             \
    STMT(name, "SELECT crm_notification_json(n, crm_user_ref(a)), n.event_id FROM notifications n" \
               " LEFT JOIN users a ON a.id = n.actor_id WHERE n.user_id = $1" which                \
               " AND n.event_id < coalesce($3::bigint, 9223372036854775807)"                       \
               " ORDER BY n.event_id DESC LIMIT $2")
/*
 * GET /api/leads: $1 the row filter, $2..$7 the optional filters. The count stops at $8 rows
 * (the bound + 1), so it costs at most that many index entries: its second column says whether
 * it is exact. A list takes $8 limit, $9 offset, and $10 $11 the sort key and id of the row
 * its page starts after (a cursor, lib/cursor.h), or NULL; each row comes with its sort key and
 * id to make the next cursor from.
 */
#define LEAD_ROWS                                                                                  \
    " FROM leads l WHERE " OWN_1 " AND ($2::text[] IS NULL OR l.status = ANY ($2))"                \
    " AND ($3::text IS NULL OR l.source = $3) AND ($4::bigint IS NULL OR l.owner_id = $4)"         \
    " AND ($6::timestamptz IS NULL OR l.created_at >= $6)"                                         \
    " AND ($7::timestamptz IS NULL OR l.created_at <= $7)"
#define LEAD_FILTER LEAD_ROWS " AND ($5::text IS NULL OR l.search LIKE lower($5))"
/* The rows after the cursor's key $10 and id $11, if any. */
#define AFTER(r, col, type, after)                                                                 \
    " ($10::text IS NULL OR (" r "." col ", " r ".id) " after " ($10::" type ", $11::bigint))"
#define SORTED(key, id, dir) " ORDER BY " key dir ", " id dir
/* How many rows of the sort's order lead_walk looks through for a search's page at most. */
#define WALK_MAX "5000"
/*
 * Three plans of one page's sort keys and ids; cgi-src/leads/list.c picks one by the count, so
 * that the planner never chooses on a guess of how many rows a search matches (a rare term's page
 * walking the whole sort index, a common term's sorting every match). lead_few, when the count
 * found every match (at most its bound): the matches' sort keys and ids gathered by whatever
 * index the filters suit (the search's trigram index for q) and sorted. lead_walk, for a search
 * with more matches: the first WALK_MAX rows of the sort's index, searched as they come; a page
 * it does not fill (matches rare at the head of that order) is made by lead_few instead.
 * lead_list, with no search: the sort's index, filtered as it goes. lead_search, a search's
 * first statement: lead_count and lead_few in one, so that the matches are gathered once (a
 * rare term's trigram scan is most of its cost): its up to $12 (the count's bound + 1) matches,
 * counted, then, when that is every match, the page: each row the count's two columns, then the
 * sort key and id; one row with NULL in those when the page is empty or there are more matches
 * (lead_walk's case). Each answers sort keys and ids only: lead_page then reads the leads. These
 * are planned on every call, and planning the lead's JSON (its functions inlined) cost twice
 * what running the rest did; lead_page is prepared, so it is planned once a connection.
 */
/* Left unformatted: clang-format finds no stable layout for SQL built with these macros. */
// clang-format off
#define LEAD_LIST(key, col, type, dir, after)                                                      \
    PER_CALL("lead_list:" key,                                                                     \
             "SELECT l." col "::text, l.id" LEAD_FILTER " AND" AFTER("l", col, type, after)        \
             SORTED("l." col, "l.id", dir) " LIMIT $8 OFFSET $9"),                                 \
    PER_CALL("lead_few:" key,                                                                      \
             "WITH m AS MATERIALIZED (SELECT l." col ", l.id" LEAD_FILTER ") SELECT m." col        \
             "::text, m.id FROM m WHERE" AFTER("m", col, type, after)                              \
             SORTED("m." col, "m.id", dir) " LIMIT $8 OFFSET $9"),                                 \
    PER_CALL("lead_walk:" key,                                                                     \
             "SELECT w.k::text, w.i FROM (SELECT l." col " AS k, l.id AS i, l.search AS s"         \
             LEAD_ROWS " AND" AFTER("l", col, type, after) SORTED("l." col, "l.id", dir)           \
             " LIMIT " WALK_MAX ") w WHERE w.s LIKE lower($5::text)" SORTED("w.k", "w.i", dir)     \
             " LIMIT $8 OFFSET $9"),                                                               \
    PER_CALL("lead_search:" key,                                                                   \
             "WITH m AS MATERIALIZED (SELECT l." col ", l.id" LEAD_FILTER " LIMIT $12),"           \
             " c AS (SELECT count(*) AS n FROM m), p AS (SELECT * FROM m"                          \
             " WHERE (SELECT c.n FROM c) < $12 AND" AFTER("m", col, type, after)                   \
             SORTED("m." col, "m.id", dir) " LIMIT $8 OFFSET $9)"                                  \
             " SELECT least(c.n, $12 - 1), c.n < $12, p." col "::text, p.id"                       \
             " FROM c LEFT JOIN p ON true" SORTED("p." col, "p.id", dir))
// clang-format on
/*
 * GET /api/leads.csv: every lead the list's filters $1..$7 match, in its sort, as the export's
 * columns (cgi-src/leads/export.c names them), read row by row (crm_db_stream).
 */
#define LEAD_EXPORT(key, col, dir)                                                                 \
    PER_CALL("lead_export:" key,                                                                   \
             "SELECT l.id, l.name, l.email, l.phone, l.company, l.source, l.status, l.value,"      \
             " l.notes, l.owner_id, (SELECT u.name FROM users u WHERE u.id = l.owner_id),"         \
             " crm_ts(l.created_at), crm_ts(l.updated_at)" LEAD_FILTER " ORDER BY l." col dir      \
             ", l.id" dir)

/*
 * Dashboard: top sales executives, won figures from won/won_value, with from joining them; t is
 * the user's user_totals added up over its stripes.
 */
#define TOP_SALES(won, won_value, from)                                                            \
    "SELECT coalesce(json_agg(json_build_object('user', json_build_object('id', x.id, 'name',"     \
    " x.name), 'won', x.won, 'won_value', x.won_value, 'leads', x.leads, 'activities',"            \
    " x.activities) ORDER BY x.won_value DESC, x.won DESC, x.id), '[]') FROM (SELECT u.id,"        \
    " u.name, " won " AS won, " won_value " AS won_value, coalesce(t.leads, 0) AS leads,"          \
    " coalesce(t.activities, 0) AS activities FROM users u CROSS JOIN LATERAL (SELECT"             \
    " sum(s.leads) AS leads, sum(s.won) AS won, sum(s.won_value) AS won_value,"                    \
    " sum(s.activities) AS activities FROM user_totals s WHERE s.user_id = u.id) t " from          \
    " WHERE u.role = 'SALES_EXECUTIVE' AND u.active"                                               \
    " ORDER BY 4 DESC, 3 DESC, 1 LIMIT $1) x"

/*
 * A dashboard statement: the figures of json, then the caller ($n) re-read in the same statement
 * for crm_auth_row, in one round trip. The figures are computed only for an active ADMIN or
 * MANAGER; for anyone else the column is NULL and crm_auth_row refuses.
 */
#define DASH(json, n)                                                                              \
    "SELECT CASE WHEN u.active AND u.role IN ('ADMIN', 'MANAGER') THEN (" json                     \
    ") END, " AUTH_COLS("u.") " FROM users u WHERE u.id = $" n

#define STMT(name, sql)                                                                            \
    {                                                                                              \
        name, sql, 0                                                                               \
    }
#define PER_CALL(name, sql)                                                                        \
    {                                                                                              \
        name, sql, 1                                                                               \
    }

/* Every statement any program runs: prepared once per connection, and again after reconnecting. */
static const struct crm_stmt stmts[] = {
    STMT("health", "SELECT 1"),
    /* The caller re-read by lib/auth.c: its User, then AUTH_COLS. */
    STMT("user_get", "SELECT " USER_COLS ", " AUTH_COLS("") " FROM users WHERE id = $1"),
    STMT("user_login", "SELECT " USER_COLS ", password_hash, token_epoch FROM users"
                       " WHERE lower(email) = lower($1)"),
    /* $1 e-mail, $2..$4 the lockout settings: seconds locked out, or 0 and the attempt counted. */
    STMT("login_attempt", "SELECT crm_login_attempt(lower($1), $2, $3, $4)"),
    STMT("login_succeeded", "DELETE FROM login_failures WHERE email = lower($1)"),
    /* POST /api/auth/password: the caller's e-mail and hash, then the new hash $2 set if the
     * hash is still $3, with a new token epoch. */
    STMT("user_password_get", "SELECT email, password_hash FROM users WHERE id = $1"),
    STMT("user_password_set",
         "UPDATE users SET password_hash = $2, token_epoch = token_epoch + 1, updated_at = now()"
         " WHERE id = $1 AND password_hash = $3 RETURNING " USER_COLS ", token_epoch"),
    STMT("user_logout_all",
         "UPDATE users SET token_epoch = token_epoch + 1, updated_at = now() WHERE id = $1"),
    /*
     * POST /api/auth/password-reset: $1 the client's address, $2 the e-mail, $3 $4 the requests
     * allowed per e-mail and per address in $5 seconds. Counts the request (crm_rate_hit) and,
     * within the limits and for an active account only, queues the reset and its e-mail; the
     * same statement either way, so the answer and its time do not tell whether the account
     * exists. Returns the seconds to wait (0: within the limits).
     */
    STMT("reset_request",
         "WITH w AS (SELECT greatest(crm_rate_hit('reset-ip:' || $1, $4, $5),"
         " crm_rate_hit('reset-email:' || lower($2), $3, $5)) AS wait),"
         " r AS (INSERT INTO password_resets (user_id) SELECT u.id FROM users u, w"
         " WHERE w.wait = 0 AND lower(u.email) = lower($2) AND u.active RETURNING id, user_id),"
         " m AS (INSERT INTO mail_outbox (kind, user_id, to_addr, to_name, data)"
         " SELECT 'password_reset', u.id, u.email, u.name, jsonb_build_object('reset_id', r.id)"
         " FROM r JOIN users u ON u.id = r.user_id RETURNING id)"
         " SELECT w.wait, (SELECT count(*) FROM m WHERE pg_notify('mail_outbox', m.id::text)"
         " IS NULL) FROM w"),
    /* crm-mailer: the hash $2 of the secret it is sending for reset $1, if still usable. */
    STMT("reset_arm", "UPDATE password_resets SET token_hash = $2 WHERE id = $1"
                      " AND used_at IS NULL AND expires_at > now() RETURNING id"),
    /*
     * POST /api/auth/password-reset/confirm: uses the reset whose secret hashes to $1 (once,
     * within its hour), and every other open one of its user; sets the password hash $2 of an
     * active user with a new token epoch, and clears its login lockout. No row: not usable.
     */
    STMT("reset_use",
         "WITH r AS (UPDATE password_resets SET used_at = now() WHERE token_hash = $1"
         " AND used_at IS NULL AND expires_at > now() RETURNING id, user_id),"
         " o AS (UPDATE password_resets p SET used_at = now() FROM r WHERE p.user_id = r.user_id"
         " AND p.used_at IS NULL AND p.id <> r.id),"
         " u AS (UPDATE users SET password_hash = $2, token_epoch = token_epoch + 1,"
         " updated_at = now() FROM r WHERE users.id = r.user_id AND users.active"
         " RETURNING users.id, users.email),"
         " l AS (DELETE FROM login_failures f USING u WHERE f.email = lower(u.email))"
         " SELECT id FROM u"),
    /* One statement, so the user and its welcome e-mail commit together or not at all. */
    STMT("user_register", "WITH u AS (INSERT INTO users (name, email, password_hash, role)"
                          " VALUES ($1, $2, $3, $4) RETURNING *),"
                          " m AS (INSERT INTO mail_outbox (kind, user_id, to_addr, to_name)"
                          " SELECT 'welcome', u.id, u.email, u.name FROM u RETURNING id AS mail_id)"
                          " SELECT u.id, u.name, u.email, u.role, u.active, crm_ts(u.created_at),"
                          " pg_notify('mail_outbox', m.mail_id::text) IS NULL, u.token_epoch"
                          " FROM u, m"),
    STMT("user_count", "SELECT count(*) FROM users"),
    STMT("user_list", "SELECT " USER_COLS " FROM users ORDER BY id LIMIT $1 OFFSET $2"),
    STMT("user_update", "UPDATE users SET name = coalesce($2, name), role = coalesce($3, role),"
                        " active = coalesce($4::boolean, active), updated_at = now()"
                        " WHERE id = $1 RETURNING " USER_COLS),

    /*
     * Personal API tokens (cgi-src/auth/tokens.c). token_use finds a live token by the hash $1
     * of its secret for lib/auth.c, and marks it used at most once a minute, so a busy script
     * does not write on every request.
     */
    STMT("token_use",
         "WITH t AS (SELECT id, user_id, epoch, scope, expires_at, last_used_at FROM api_tokens"
         " WHERE token_hash = $1 AND (expires_at IS NULL OR expires_at > now())),"
         " u AS (UPDATE api_tokens a SET last_used_at = now() FROM t WHERE a.id = t.id"
         " AND (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute'))"
         " SELECT id, user_id, epoch, scope, floor(extract(epoch FROM expires_at))::bigint FROM t"),
    /* $1 user, $2 name, $3 scope, $4 hash, $5 hint, $6 epoch, $7 expiry: no row when it is past. */
    STMT("token_create",
         "INSERT INTO api_tokens (user_id, name, scope, token_hash, hint, epoch, expires_at)"
         " SELECT $1, $2, $3, $4, $5, $6, $7 WHERE $7::timestamptz IS NULL OR $7 > now()"
         " RETURNING crm_token_json(api_tokens), id"),
    /* $1 the user whose tokens, or NULL for all; $2 limit, $3 offset. */
    STMT("token_page",
         "SELECT (SELECT count(*) FROM api_tokens WHERE $1::bigint IS NULL OR user_id = $1),"
         " (SELECT coalesce(json_agg(crm_token_json(p.t) ORDER BY (p.t).id), '[]') FROM"
         " (SELECT t FROM api_tokens t WHERE $1::bigint IS NULL OR t.user_id = $1"
         " ORDER BY t.id LIMIT $2 OFFSET $3) p)"),
    /* $1 token, $2 its user or NULL (ADMIN). Its user's streams close (crm-events). */
    STMT("token_delete",
         "WITH d AS (DELETE FROM api_tokens WHERE id = $1 AND ($2::bigint IS NULL OR user_id = $2)"
         " RETURNING user_id) SELECT pg_notify('crm_users', user_id::text) IS NULL FROM d"),
    STMT("admin_count", "SELECT count(*) FROM users WHERE role = 'ADMIN' AND active"),
    /* Serialises the changes that may remove an ADMIN (cgi-src/auth/users.c); ids in one order. */
    STMT("admin_lock",
         "SELECT id FROM users WHERE role = 'ADMIN' AND active ORDER BY id FOR UPDATE"),

    /*
     * The lead and its 50 newest activities, and the caller re-read (crm_auth_row), in one
     * round trip: $1 lead, $2 the caller's user id. The lead is NULL when the caller may not
     * see it (inactive, or a SALES_EXECUTIVE who does not own it); no row when it is gone.
     */
    // clang-format off
    STMT("lead_get",
         "SELECT CASE WHEN l.id IS NOT NULL THEN " LEAD_JSON("l") " END,"
         " (SELECT coalesce(json_agg(" ACTIVITY_JSON("t") " ORDER BY (t.a).id DESC), '[]')"
         " FROM (SELECT a, r" ACTIVITY_ROWS " WHERE a.lead_id = l.id ORDER BY a.id DESC LIMIT 50)"
         " t), " AUTH_COLS("u.") " FROM users u LEFT JOIN leads l ON l.id = $1 AND u.active"
         " AND (u.role <> 'SALES_EXECUTIVE' OR l.owner_id = u.id) " LEAD_USERS("l")
         " WHERE u.id = $2"),
    // clang-format on
    /* Every change to a lead starts here, in a transaction: $1 lead, $2 row filter. */
    STMT("lead_lock", "SELECT l.version, l.status, l.owner_id FROM leads l"
                      " WHERE l.id = $1 AND " OWN_2 " FOR UPDATE"),
    /*
     * A page's leads from their ids $1 ("7,3,9", in the page's order), with the row filter $2
     * again: a lead given to another owner since its id was read is left out, not shown. Split
     * by string_to_table, whose estimate of rows does not depend on the value: with unnest of
     * an array, a plan for a page of few leads looked cheaper than the plan kept, so PostgreSQL
     * planned every such page again (the cost this statement is apart to avoid).
     */
    // clang-format off
    STMT("lead_page",
         "SELECT " LEAD_JSON("l") " FROM string_to_table($1, ',') WITH ORDINALITY AS x (id, n)"
         " JOIN leads l ON l.id = x.id::bigint " LEAD_USERS("l") " WHERE " OWN_2 " ORDER BY x.n"),
    // clang-format on
    PER_CALL("lead_count",
             "SELECT least(count(*), $8 - 1), count(*) < $8 FROM (SELECT 1" LEAD_FILTER
             " LIMIT $8) c"),
    LEAD_LIST("created_at", "created_at", "timestamptz", "", ">"),
    LEAD_LIST("-created_at", "created_at", "timestamptz", " DESC", "<"),
    LEAD_LIST("updated_at", "updated_at", "timestamptz", "", ">"),
    LEAD_LIST("-updated_at", "updated_at", "timestamptz", " DESC", "<"),
    LEAD_LIST("value", "value", "numeric", "", ">"),
    LEAD_LIST("-value", "value", "numeric", " DESC", "<"),
    LEAD_LIST("name", "name", "text", "", ">"),
    LEAD_LIST("-name", "name", "text", " DESC", "<"),
    LEAD_EXPORT("created_at", "created_at", ""),
    LEAD_EXPORT("-created_at", "created_at", " DESC"),
    LEAD_EXPORT("updated_at", "updated_at", ""),
    LEAD_EXPORT("-updated_at", "updated_at", " DESC"),
    LEAD_EXPORT("value", "value", ""),
    LEAD_EXPORT("-value", "value", " DESC"),
    LEAD_EXPORT("name", "name", ""),
    LEAD_EXPORT("-name", "name", " DESC"),
    /* $1 the validated body, $2 the actor, $3 the owner, which must be active (else no row). */
    STMT("lead_create",
         "WITH l AS (INSERT INTO leads (name, email, phone, company, source, status, won_at,"
         " value, notes, owner_id, created_by) SELECT $1::jsonb->>'name', $1::jsonb->>'email',"
         " $1::jsonb->>'phone', $1::jsonb->>'company', coalesce($1::jsonb->>'source', 'OTHER'),"
         " coalesce($1::jsonb->>'status', 'NEW'),"
         " CASE WHEN $1::jsonb->>'status' = 'WON' THEN now() END,"
         " coalesce(($1::jsonb->>'value')::numeric, 0), $1::jsonb->>'notes', $3, $2"
         " WHERE $3::bigint IS NULL OR EXISTS (SELECT 1 FROM users WHERE id = $3 AND active)"
         " RETURNING leads AS r),"
         " a AS (INSERT INTO activities (lead_id, type, actor_id)"
         " SELECT (r).id, 'CREATED', $2 FROM l)," EVENT
         "'lead.created', (r).id, (r).owner_id, $2, crm_lead_json(r) FROM l RETURNING id)"
         " SELECT crm_lead_json(r), (r).id, " NOTIFY " FROM l, e"),
    /* The writes below run after lead_lock, in its transaction. $1 lead, $2 body, $3 actor. */
    /*
     * A PATCH that changes no value writes nothing and returns no row (the caller answers the
     * lead as it is); else the UPDATED activity with what changed.
     */
    STMT("lead_update",
         "WITH o AS (SELECT leads AS r FROM leads WHERE id = $1),"
         " l AS (UPDATE leads SET " LEAD_PATCH_COLS " = " LEAD_PATCH ", version = version + 1,"
         " updated_at = now() WHERE id = $1 AND " LEAD_PATCH_COLS " IS DISTINCT FROM " LEAD_PATCH
         " RETURNING leads AS r),"
         " a AS (INSERT INTO activities (lead_id, type, actor_id, meta)"
         " SELECT (l.r).id, 'UPDATED', $3, jsonb_build_object(" CHANGES ") FROM o, l"
         " RETURNING activities AS r)," CHANGE_EVENT(
             "lead.updated", "NULL::bigint",
             "$3") " SELECT crm_lead_json(l.r), crm_activity_json(a.r), " NOTIFY " FROM l, a, e"),
    /* $1 lead, $2 new status, $3 note, $4 actor. */
    STMT("lead_status",
         "WITH o AS (SELECT leads AS r FROM leads WHERE id = $1),"
         " l AS (UPDATE leads SET status = $2, won_at = CASE WHEN $2 = 'WON' THEN now() END,"
         " version = version + 1, updated_at = now() WHERE id = $1 RETURNING leads AS r),"
         " a AS (INSERT INTO activities (lead_id, type, content, actor_id, meta)"
         " SELECT (l.r).id, 'STATUS_CHANGE', $3, $4,"
         " jsonb_build_object('from', (o.r).status, 'to', $2::text, " CHANGES ") FROM o, l"
         " RETURNING activities AS r)," CHANGE_EVENT(
             "lead.status_changed", "NULL::bigint",
             "$4") " SELECT crm_lead_json(l.r), crm_activity_json(a.r), " NOTIFY " FROM l, a, e"),
    /* $1 lead, $2 new owner, which must be active (else no row), $3 actor. */
    STMT("lead_assign",
         "WITH o AS (SELECT leads AS r FROM leads WHERE id = $1),"
         " l AS (UPDATE leads SET owner_id = $2, version = version + 1, updated_at = now()"
         " WHERE id = $1 AND EXISTS (SELECT 1 FROM users WHERE id = $2 AND active)"
         " RETURNING leads AS r),"
         " a AS (INSERT INTO activities (lead_id, type, actor_id, meta) SELECT (l.r).id,"
         " 'ASSIGNMENT', $3, jsonb_build_object('from_owner_id', (o.r).owner_id, 'to_owner_id',"
         " $2::bigint, " CHANGES ") FROM o, l RETURNING activities AS r)," CHANGE_EVENT(
             "lead.assigned", "(o.r).owner_id",
             "$3") " SELECT crm_lead_json(l.r), crm_activity_json(a.r), " NOTIFY " FROM l, a, e"),
    /* $1 lead, $2 actor; ADMIN and MANAGER only, so no row filter. */
    STMT("lead_delete", "WITH l AS (DELETE FROM leads WHERE id = $1 RETURNING id, owner_id)," EVENT
                        "'lead.deleted', id, owner_id, $2, jsonb_build_object('id', id)"
                        " FROM l RETURNING id) SELECT " NOTIFY " FROM e"),
    /*
     * POST /api/leads/import (cgi-src/leads/import.c), in one transaction: the rows checked in C
     * are copied into a temporary table, the checks that need the database (schema.sql
     * crm_import_check) list their problems, then crm_import_leads inserts them all. n is the
     * row's number in the file; the other columns are those of the leads it becomes.
     */
    STMT("lead_import_table",
         "CREATE TEMPORARY TABLE lead_import (n integer PRIMARY KEY, name text NOT NULL,"
         " email text, phone text, company text, source text, status text, value numeric(14,2),"
         " notes text, owner_id bigint) ON COMMIT DROP"),
    STMT("lead_import_copy", "COPY lead_import FROM STDIN"),
    /* $1 the caller's row filter (duplicates are of the leads it sees), $2 skip duplicates. */
    STMT("lead_import_check", "SELECT r_row, r_field, r_problem, r_skipped"
                              " FROM crm_import_check($1::bigint, $2::boolean)"),
    /* $1 the actor. */
    STMT("lead_import", "SELECT crm_import_leads($1::bigint)"),
    /* $1 lead, $2 row filter, $3 type, $4 content, $5 occurred_at, $6 actor. */
    STMT("activity_add",
         "WITH l AS (SELECT l.id, l.owner_id FROM leads l WHERE l.id = $1 AND " OWN_2
         " FOR SHARE), a AS (INSERT INTO activities (lead_id, type, content, occurred_at,"
         " actor_id) SELECT id, $3, $4, coalesce($5::timestamptz, now()), $6 FROM l"
         " RETURNING activities AS r)," EVENT
         "'activity.created', (r).lead_id, l.owner_id, $6, crm_activity_json(r)"
         " FROM a, l RETURNING id) SELECT crm_activity_json(r), " NOTIFY " FROM a, e"),
    /*
     * A timeline page, newest first: $1 lead, $2 row filter, $3 before this id, $4 limit, and
     * optional filters: $5 a type, $6 a field the activity records a change of.
     */
    // clang-format off
    STMT("activity_page",
         "SELECT coalesce(json_agg(" ACTIVITY_JSON("t") " ORDER BY (t.a).id DESC)"
         " FILTER (WHERE (t.a).id IS NOT NULL), '[]'), count((t.a).id), min((t.a).id)"
         " FROM leads l LEFT JOIN LATERAL (SELECT a, r" ACTIVITY_ROWS " WHERE a.lead_id = l.id"
         " AND ($3::bigint IS NULL OR a.id < $3) AND ($5::text IS NULL OR a.type = $5)"
         " AND ($6::text IS NULL OR a.meta @> jsonb_build_object('changes',"
         " jsonb_build_array(jsonb_build_object('field', $6::text))))"
         " ORDER BY a.id DESC LIMIT $4) t ON true"
         " WHERE l.id = $1 AND " OWN_2 " GROUP BY l.id"),
// clang-format on

/*
 * Tasks (cgi-src/leads/tasks.c). TASK_OWN_n is their row filter: a SALES_EXECUTIVE ($n its
 * id) sees the tasks on its own leads and the tasks assigned to it; the other roles all.
 */
#define TASK_OWN_2 "($2::bigint IS NULL OR t.user_id = $2 OR l.owner_id = $2)"
/* A due time that is past when it is set has no reminder to send: it is marked sent. */
#define TASK_PAST(due) "CASE WHEN " due " <= now() THEN " due " END"
/* A task event: the lead's owner and the task's assignee (prev_owner_id) are told. */
#define TASK_EVENT(type, actor, payload)                                                           \
    " e AS (INSERT INTO events (type, lead_id, owner_id, prev_owner_id, actor_id, payload)"        \
    " SELECT '" type "', (r).lead_id, l.owner_id, (r).user_id, " actor ", " payload                \
    " FROM t JOIN leads l ON l.id = (t.r).lead_id RETURNING id)"
#define TASK_DUE_NEW "($2::jsonb->>'due_at')::timestamptz"
    /* $1 task, $2 row filter. */
    STMT("task_get", "SELECT crm_task_json(t) FROM tasks t JOIN leads l ON l.id = t.lead_id"
                     " WHERE t.id = $1 AND " TASK_OWN_2),
    /* Every change to a task starts here, in a transaction: $1 task, $2 row filter. */
    STMT("task_lock",
         "SELECT t.version, t.done_at IS NOT NULL FROM tasks t"
         " JOIN leads l ON l.id = t.lead_id WHERE t.id = $1 AND " TASK_OWN_2 " FOR UPDATE OF t"),
    /* Left unformatted: clang-format finds no stable layout for SQL built with these macros. */
    // clang-format off
    /*
     * $1 lead, $2 the lead row filter, $3 the validated body, $4 the assignee (NULL: the lead's
     * owner, else the actor), which must be active, $5 actor. No row: no such lead (for the
     * caller); a row with a NULL id: the assignee is not an active user.
     */
    STMT("task_create",
         "WITH l AS (SELECT l.id, l.owner_id FROM leads l WHERE l.id = $1 AND " OWN_2
         " FOR SHARE), u AS (SELECT id FROM users WHERE active"
         " AND id = (SELECT coalesce($4::bigint, l.owner_id, $5::bigint) FROM l)),"
         " t AS (INSERT INTO tasks (lead_id, user_id, title, notes, due_at, reminded_at,"
         " created_by) SELECT l.id, u.id, $3::jsonb->>'title', $3::jsonb->>'notes',"
         " ($3::jsonb->>'due_at')::timestamptz,"
         " " TASK_PAST("($3::jsonb->>'due_at')::timestamptz") ", $5"
         " FROM l, u RETURNING tasks AS r),"
         TASK_EVENT("task.created", "$5", "crm_task_json(r)")
         " SELECT crm_task_json(t.r), (t.r).id, (SELECT " NOTIFY " FROM e)"
         " FROM l LEFT JOIN t ON true"),
    /* The writes below run after task_lock, in its transaction. $1 task, $2 body, $3 actor. */
    STMT("task_update",
         "WITH t AS (UPDATE tasks SET " SET_PATCH("title", "$2::jsonb->>'title'")
         SET_PATCH("notes", "$2::jsonb->>'notes'")
         SET_PATCH("user_id", "($2::jsonb->>'user_id')::bigint")
         SET_PATCH("due_at", TASK_DUE_NEW)
         /* A due time moved into the past counts as reminded: it sends nothing. */
         "reminded_at = " PATCH_IF("due_at", "reminded_at",
                                   "coalesce(" TASK_PAST(TASK_DUE_NEW) ", reminded_at)") ", "
         " version = version + 1, updated_at = now() WHERE id = $1"
         " AND ($2::jsonb->>'user_id' IS NULL OR EXISTS (SELECT 1 FROM users"
         " WHERE id = ($2::jsonb->>'user_id')::bigint AND active)) RETURNING tasks AS r),"
         TASK_EVENT("task.updated", "$3", "crm_task_json(r)")
         " SELECT crm_task_json(r), " NOTIFY " FROM t, e"),
    /* $1 task, $2 actor: done now, and on the lead's timeline. */
    STMT("task_complete",
         "WITH t AS (UPDATE tasks SET done_at = now(), version = version + 1, updated_at = now()"
         " WHERE id = $1 AND done_at IS NULL RETURNING tasks AS r),"
         " a AS (INSERT INTO activities (lead_id, type, content, actor_id, meta)"
         " SELECT (r).lead_id, 'TASK_COMPLETED', (r).title, $2,"
         " jsonb_build_object('task_id', (r).id) FROM t RETURNING activities AS r),"
         TASK_EVENT("task.completed", "$2", "crm_task_json(r)")
         " SELECT crm_task_json(t.r), crm_activity_json(a.r), " NOTIFY " FROM t, a, e"),
    /* $1 task, $2 actor: open again; a due time already past has no reminder to send. */
    STMT("task_reopen",
         "WITH t AS (UPDATE tasks SET done_at = NULL,"
         " reminded_at = coalesce(" TASK_PAST("due_at") ", reminded_at),"
         " version = version + 1, updated_at = now()"
         " WHERE id = $1 AND done_at IS NOT NULL RETURNING tasks AS r),"
         TASK_EVENT("task.reopened", "$2", "crm_task_json(r)")
         " SELECT crm_task_json(r), " NOTIFY " FROM t, e"),
    /* $1 task, $2 actor. */
    STMT("task_delete",
         "WITH t AS (DELETE FROM tasks WHERE id = $1 RETURNING tasks AS r),"
         TASK_EVENT("task.deleted", "$2", "jsonb_build_object('id', (r).id, 'lead_id', (r).lead_id)")
         " SELECT " NOTIFY " FROM e"),
    /*
     * crm-mailer: claims up to $1 tasks whose reminder is due (no other mailer holds them) and,
     * in this one statement, marks each reminded for its due time, queues the e-mail to an
     * active assignee and writes the task.due event: exactly one reminder per due time.
     */
    STMT("task_remind",
         "WITH d AS (SELECT id FROM tasks WHERE done_at IS NULL AND due_at <= now()"
         " AND reminded_at IS DISTINCT FROM due_at ORDER BY due_at, id LIMIT $1"
         " FOR UPDATE SKIP LOCKED),"
         " t AS (UPDATE tasks SET reminded_at = due_at FROM d WHERE tasks.id = d.id"
         " RETURNING tasks AS r),"
         " m AS (INSERT INTO mail_outbox (kind, user_id, to_addr, to_name, data)"
         " SELECT 'task_due', u.id, u.email, u.name, jsonb_build_object('task_id', (r).id,"
         " 'title', (r).title, 'lead', l.name, 'due_at', crm_ts((r).due_at)) FROM t"
         " JOIN users u ON u.id = (t.r).user_id JOIN leads l ON l.id = (t.r).lead_id"
         " WHERE u.active RETURNING id),"
         TASK_EVENT("task.due", "(r).user_id", "crm_task_json(r)")
         " SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM m),"
         " count(*) FILTER (WHERE pg_notify('crm_events', e.id::text) IS NOT NULL) FROM e"),
    // clang-format on
    /* A lead's tasks by due time: $1 lead, $2 the lead row filter, $3 limit, $4 offset. */
    STMT("task_lead_page",
         "SELECT (SELECT count(*) FROM tasks t WHERE t.lead_id = l.id),"
         " (SELECT coalesce(json_agg(" TASK_JSON " ORDER BY (p.t).due_at, (p.t).id), '[]')"
         " FROM (SELECT t FROM tasks t WHERE t.lead_id = l.id ORDER BY t.due_at, t.id"
         " LIMIT $3 OFFSET $4) p " TASK_USERS ") FROM leads l WHERE l.id = $1 AND " OWN_2),
    /*
     * GET /api/tasks: the tasks assigned to $1 by due time, $2 the row filter, $3 which (open,
     * overdue, today, upcoming, done, all; "today" is the UTC day), $4 limit, $5 offset.
     */
    STMT("task_page",
         "WITH m AS (SELECT t FROM tasks t JOIN leads l ON l.id = t.lead_id"
         " WHERE t.user_id = $1 AND " TASK_OWN_2 " AND CASE $3::text"
         " WHEN 'open' THEN t.done_at IS NULL"
         " WHEN 'overdue' THEN t.done_at IS NULL AND t.due_at < now()"
         " WHEN 'today' THEN t.done_at IS NULL AND t.due_at >= date_trunc('day', now(), 'UTC')"
         " AND t.due_at < date_trunc('day', now(), 'UTC') + interval '1 day'"
         " WHEN 'upcoming' THEN t.done_at IS NULL AND t.due_at >= now()"
         " WHEN 'done' THEN t.done_at IS NOT NULL ELSE true END)"
         " SELECT (SELECT count(*) FROM m), (SELECT coalesce(json_agg(" TASK_JSON
         " ORDER BY (p.t).due_at, (p.t).id), '[]') FROM (SELECT t FROM m"
         " ORDER BY (t).due_at, (t).id LIMIT $4 OFFSET $5) p " TASK_USERS ")"),

    /*
     * The notification inbox (cgi-src/leads/notifications.c; schema.sql fills it). $1 is always
     * the caller: an inbox is personal, for every role. A page, newest first: $2 limit, $3 the
     * id its page starts below (a cursor) or NULL; each row with its id, to make the next cursor
     * from. Two statements, all and unread only, each planned once a connection, not on every
     * call as the JSON made the lead pages' costlier (lead_page), and the unread page reads the
     * unread index; the cursor's bound is an index condition with or without a cursor.
     */
    NOTIFICATION_PAGE("notification_page", ""),
    NOTIFICATION_PAGE("notification_unread_page", " AND n.read_at IS NULL"),
    STMT("notification_unread",
         "SELECT count(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL"),
    /* $2 the notification: read now, or kept as read when it was (no row: not the caller's). */
    STMT("notification_read",
         "UPDATE notifications n SET read_at = coalesce(n.read_at, now())"
         " WHERE n.user_id = $1 AND n.event_id = $2 RETURNING crm_notification_json(n)"),
    /* The unread ones up to id $2 (NULL: all), read now; how many. */
    STMT("notification_read_all",
         "WITH r AS (UPDATE notifications SET read_at = now() WHERE user_id = $1"
         " AND read_at IS NULL AND ($2::bigint IS NULL OR event_id <= $2) RETURNING 1)"
         " SELECT count(*) FROM r"),

    /*
     * The e-mail outbox. A claim takes the oldest due row no other mailer holds and leases it:
     * its next attempt moves $1 seconds ahead, so a mailer that dies mid-send delays it only.
     */
    STMT("mail_listen", "LISTEN mail_outbox"),
    STMT(
        "mail_claim",
        "UPDATE mail_outbox SET attempts = attempts + 1,"
        " next_attempt_at = now() + make_interval(secs => $1::int)"
        " WHERE id = (SELECT id FROM mail_outbox WHERE status = 'pending'"
        " AND next_attempt_at <= now() ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)"
        " RETURNING id, to_addr, to_name, attempts, kind, data->>'title', data->>'lead',"
        " data->>'due_at', data->>'reset_id'"),
    STMT("mail_sent", "UPDATE mail_outbox SET status = 'sent', sent_at = now(), last_error = NULL"
                      " WHERE id = $1"),
    /* $1 id, $2 error, $3 seconds to the next attempt, $4 the attempts allowed. */
    STMT("mail_failed", "UPDATE mail_outbox SET last_error = $2, next_attempt_at = now()"
                        " + make_interval(secs => $3::int), status = CASE WHEN attempts >= $4::int"
                        " THEN 'failed' ELSE 'pending' END WHERE id = $1"),
    /* Seconds to the next pending message or task reminder, whichever comes first; NULL: none. */
    STMT("mail_next_due",
         "SELECT ceil(extract(epoch FROM least((SELECT min(next_attempt_at) FROM mail_outbox"
         " WHERE status = 'pending'), (SELECT min(due_at) FROM tasks WHERE done_at IS NULL"
         " AND reminded_at IS DISTINCT FROM due_at)) - now()))"),
    /* crmctl mail list: $1 a status or NULL, $2 limit. */
    /* /metrics/crm-mailer: the outbox by state, and how long the oldest pending one has waited. */
    STMT("metrics_outbox",
         "SELECT s.status, (SELECT count(*) FROM mail_outbox o WHERE o.status = s.status),"
         " (SELECT coalesce(round(extract(epoch FROM now() - min(created_at)), 3), 0)"
         " FROM mail_outbox WHERE status = 'pending')"
         " FROM (VALUES ('pending'), ('sent'), ('failed')) AS s (status)"),
    STMT("mail_list", "SELECT id, status, attempts, to_addr, crm_ts(created_at),"
                      " crm_ts(next_attempt_at), coalesce(crm_ts(sent_at), '-'),"
                      " coalesce(last_error, '') FROM mail_outbox"
                      " WHERE $1::text IS NULL OR status = $1 ORDER BY id DESC LIMIT $2"),
    /* crmctl mail retry: a failed (or pending) message goes again now, with fresh attempts. */
    STMT("mail_retry", "WITH m AS (UPDATE mail_outbox SET status = 'pending', attempts = 0,"
                       " next_attempt_at = now() WHERE id = $1 AND status <> 'sent' RETURNING id)"
                       " SELECT pg_notify('mail_outbox', m.id::text) IS NULL FROM m"),

    /* Webhooks (README "Webhooks"), the ADMIN routes. $2 of create and update: a text[]. */
    STMT("webhook_create", "INSERT INTO webhooks (url, events, secret, created_by)"
                           " VALUES ($1, $2::text[], $3, $4) RETURNING crm_webhook_json(webhooks)"),
    STMT("webhook_page", "SELECT (SELECT count(*) FROM webhooks), (SELECT coalesce(json_agg("
                         "crm_webhook_json(p.w) ORDER BY (p.w).id), '[]') FROM (SELECT w FROM"
                         " webhooks w ORDER BY w.id LIMIT $1 OFFSET $2) p)"),
    STMT("webhook_get", "SELECT crm_webhook_json(w) FROM webhooks w WHERE w.id = $1"),
    STMT("webhook_delete", "DELETE FROM webhooks WHERE id = $1 RETURNING id"),
    /* $2 url, $3 events, $4 active (NULL: unchanged). Enabling again retries at once. */
    STMT("webhook_update",
         "UPDATE webhooks SET url = coalesce($2, url), events = coalesce($3::text[], events),"
         " active = coalesce($4::boolean, active),"
         " failures = CASE WHEN $4::boolean AND NOT active THEN 0 ELSE failures END,"
         " next_attempt_at = CASE WHEN $4::boolean AND NOT active THEN now()"
         " ELSE next_attempt_at END, disabled_at = CASE WHEN $4::boolean THEN NULL"
         " WHEN NOT $4::boolean THEN coalesce(disabled_at, now()) ELSE disabled_at END"
         " WHERE id = $1 RETURNING crm_webhook_json(webhooks)"),
    /* An endpoint's deliveries, newest first: $2 a status or NULL, $3 limit, $4 offset. */
    STMT("webhook_delivery_page",
         "SELECT (SELECT count(*) FROM webhook_deliveries d WHERE d.webhook_id = w.id"
         " AND ($2::text IS NULL OR d.status = $2)), (SELECT coalesce(json_agg("
         "crm_webhook_delivery_json(p.d) ORDER BY (p.d).id DESC), '[]') FROM (SELECT d FROM"
         " webhook_deliveries d WHERE d.webhook_id = w.id AND ($2::text IS NULL OR d.status = $2)"
         " ORDER BY d.id DESC LIMIT $3 OFFSET $4) p) FROM webhooks w WHERE w.id = $1"),
    /*
     * crm-webhooks. A claim leases up to $3 active endpoints, due for an attempt, that no other
     * daemon holds and that have a delivery of an event up to $1, the newest final event id
     * (lib/evorder), for $2 seconds; it is renewed with each delivery and released when their
     * queue is empty or an attempt fails.
     */
    STMT("webhook_claim",
         "UPDATE webhooks w SET lease_until = now() + make_interval(secs => $2::int)"
         " WHERE w.id IN (SELECT v.id FROM webhooks v WHERE v.active AND v.next_attempt_at <= now()"
         " AND v.lease_until < now() AND EXISTS (SELECT 1 FROM webhook_deliveries d"
         " WHERE d.webhook_id = v.id AND d.status = 'pending' AND d.event_id <= $1)"
         " ORDER BY v.next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)"
         " RETURNING w.id, w.url, w.secret, w.failures"),
    /* The oldest pending delivery of endpoint $1 up to event $2, while the endpoint is active. */
    STMT("webhook_next", "SELECT d.id, d.event_id, d.event_type, d.body FROM webhook_deliveries d"
                         " JOIN webhooks w ON w.id = d.webhook_id AND w.active"
                         " WHERE d.webhook_id = $1 AND d.status = 'pending' AND d.event_id <= $2"
                         " ORDER BY d.event_id LIMIT 1"),
    /*
     * Delivery $1 answered $2 (2xx): the endpoint's lease is renewed for $3 seconds, and its next
     * delivery up to event $4 returned as webhook_next does, in the same round trip (the query
     * sees the rows as before the update: the next is after the one just delivered).
     */
    STMT("webhook_delivered",
         "WITH d AS (UPDATE webhook_deliveries SET status = 'delivered', attempts = attempts + 1,"
         " last_status = $2::int, last_error = NULL, delivered_at = now() WHERE id = $1"
         " AND status = 'pending' RETURNING webhook_id, event_id),"
         " w AS (UPDATE webhooks SET failures = 0,"
         " lease_until = now() + make_interval(secs => $3::int)"
         " WHERE id = (SELECT webhook_id FROM d) RETURNING id, active)"
         " SELECT n.id, n.event_id, n.event_type, n.body FROM d, w, webhook_deliveries n"
         " WHERE w.active AND n.webhook_id = w.id AND n.status = 'pending'"
         " AND n.event_id > d.event_id AND n.event_id <= $4 ORDER BY n.event_id LIMIT 1"),
    /*
     * Delivery $1 failed, with HTTP status $2 (or NULL) and error $3: the endpoint waits $4
     * seconds, and is disabled at its $5th failure in a row. Returns the failures, the state.
     */
    STMT("webhook_failed",
         "WITH d AS (UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = $2::int,"
         " last_error = $3 WHERE id = $1 RETURNING webhook_id) UPDATE webhooks SET"
         " failures = failures + 1, last_error = $3, lease_until = '-infinity',"
         " next_attempt_at = now() + make_interval(secs => $4::int),"
         " active = failures + 1 < $5::int,"
         " disabled_at = CASE WHEN failures + 1 >= $5::int THEN now() END"
         " WHERE id = (SELECT webhook_id FROM d) RETURNING failures, active"),
    STMT("webhook_release", "UPDATE webhooks SET lease_until = '-infinity' WHERE id = $1"),

    /*
     * crm-events. events_read returns the snapshot it read under (one row even when no event
     * is new), the events after $1, and, only when they leave a gap after $1, an xid assigned
     * after the snapshot, for lib/evorder to decide which are final.
     */
    STMT("events_listen", "LISTEN crm_events"),
    STMT("events_listen_users", "LISTEN crm_users"),
    STMT("events_read",
         "WITH e AS (SELECT id, type, owner_id, prev_owner_id, crm_event_json(events)::text AS msg"
         " FROM events WHERE id > $1 ORDER BY id LIMIT $2)"
         " SELECT s::text, CASE WHEN (SELECT max(id) - $1 > count(*) FROM e)"
         " THEN pg_current_xact_id()::text END, e.id, e.type, e.owner_id, e.prev_owner_id, e.msg"
         " FROM pg_current_snapshot() s LEFT JOIN e ON true ORDER BY e.id"),
    /* A resuming stream's missed events: ids in ($1, $2], $3 the row filter, $4 limit. */
    STMT("events_replay", "SELECT id, type, crm_event_json(events)::text FROM events"
                          " WHERE id > $1 AND id <= $2 AND ($3::bigint IS NULL OR owner_id = $3"
                          " OR prev_owner_id = $3) ORDER BY id LIMIT $4"),
    /* Where delivery starts: the snapshot, an xid assigned after it, the newest id it sees. */
    STMT("events_head", "SELECT s::text, pg_current_xact_id()::text,"
                        " (SELECT coalesce(max(id), 0) FROM events) FROM pg_current_snapshot() s"),
    /* Retention: at most $1 events older than 24 hours, oldest first. */
    STMT("events_purge", "WITH d AS (DELETE FROM events WHERE id IN (SELECT id FROM events"
                         " WHERE created_at < now() - interval '24 hours' ORDER BY created_at"
                         " LIMIT $1) RETURNING 1) SELECT count(*) FROM d"),

    /*
     * Dashboard: every figure comes from the summaries the triggers keep (schema.sql), added up
     * over their stripes, plus at most half an hour (7-day counts) or the edge days (top-sales
     * periods) read through an index, so no route scans the leads or activities tables.
     */
    STMT(
        "dash_stats",
        DASH("SELECT json_build_object('total_leads', t.total, 'new_leads_7d',"
             " c.leads, 'won', t.won,"
             " 'lost', t.lost, 'open', t.total - t.won - t.lost, 'conversion_rate',"
             " CASE WHEN t.won + t.lost = 0 THEN 0 ELSE round(t.won::numeric / (t.won + t.lost), 4)"
             " END, 'pipeline_value', t.pipeline, 'won_value', t.won_value, 'activities_7d',"
             " c.activities,"
             " 'users', (SELECT json_build_object('ADMIN', count(*) FILTER (WHERE role = 'ADMIN'),"
             " 'MANAGER', count(*) FILTER (WHERE role = 'MANAGER'), 'SALES_EXECUTIVE', count(*)"
             " FILTER (WHERE role = 'SALES_EXECUTIVE')) FROM users WHERE active))"
             " FROM (SELECT coalesce(sum(leads), 0) AS total,"
             " coalesce(sum(leads) FILTER (WHERE status = 'WON'), 0) AS won,"
             " coalesce(sum(leads) FILTER (WHERE status = 'LOST'), 0) AS lost,"
             " coalesce(sum(value) FILTER (WHERE status NOT IN ('WON', 'LOST')), 0) AS pipeline,"
             " coalesce(sum(value) FILTER (WHERE status = 'WON'), 0) AS won_value"
             " FROM lead_totals) t, crm_created_since(now() - interval '7 days') c",
             "1")),
    STMT("dash_by_status",
         DASH("SELECT json_agg(json_build_object('status', s.status, 'count',"
              " coalesce(t.leads, 0)) ORDER BY s.n) FROM unnest(ARRAY['NEW', 'CONTACTED',"
              " 'QUALIFIED', 'PROPOSAL', 'NEGOTIATION', 'WON', 'LOST']) WITH ORDINALITY"
              " s (status, n) LEFT JOIN (SELECT status, sum(leads) AS leads FROM lead_totals"
              " GROUP BY status) t ON t.status = s.status",
              "1")),
    /* $1 limit, $2 the caller; all time, from the summary. */
    STMT("dash_top_sales",
         DASH(TOP_SALES("coalesce(t.won, 0)", "coalesce(t.won_value, 0)", ""), "2")),
    /* $1 limit, $2 and $3 the period of the won status change (each optional), $4 the caller. */
    STMT("dash_top_sales_period",
         DASH(TOP_SALES("coalesce(w.won, 0)", "coalesce(w.won_value, 0)",
                        "LEFT JOIN crm_won_by_owner($2, $3) w ON w.user_id = u.id"),
              "4")),
};

struct crm_db *
crm_db_open(const char *url)
{
    struct crm_db *db = calloc(1, sizeof(*db));

    if (db == NULL || (db->url = strdup(url)) == NULL) {
        free(db);
        return NULL;
    }
    return db;
}

void
crm_db_close(struct crm_db *db)
{
    if (db == NULL)
        return;
    PQfinish(db->conn);
    free(db->url);
    free(db);
}

#define NSTMTS (sizeof(stmts) / sizeof(stmts[0]))

/* The session every statement expects: our schema, and times read and shown in UTC. */
static int
prepare_all(const struct crm_db *db)
{
    PGresult *res = PQexec(db->conn, "SET search_path TO public; SET TIME ZONE 'UTC'");
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;

    PQclear(res);
    for (size_t i = 0; ok && i < NSTMTS; i++) {
        if (stmts[i].per_call)
            continue;
        res = PQprepare(db->conn, stmts[i].name, stmts[i].sql, 0, NULL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            crm_log(CRM_LOG_ERR, db->req, "db: prepare %s: %s", stmts[i].name,
                    PQresultErrorMessage(res));
            ok = 0;
        }
        PQclear(res);
    }
    return ok ? 0 : -1;
}

/*
 * An idle connection that the server closed (a restart, an idle timeout) turns readable. Noticing
 * that before sending a statement lets the statement go to a new connection instead of failing.
 */
static int
idle_conn_alive(PGconn *conn)
{
    struct pollfd p = {.fd = PQsocket(conn), .events = POLLIN};

    /* A server going away sends its FATAL message, then closes: the close may need a 2nd read. */
    for (int i = 0; i < 4 && poll(&p, 1, 0) > 0; i++)
        if (!PQconsumeInput(conn) || PQstatus(conn) != CONNECTION_OK)
            return 0;
    return 1;
}

enum crm_err
crm_db_connect(struct crm_db *db)
{
    if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK &&
        (db->in_tx || idle_conn_alive(db->conn)))
        return CRM_OK;
    /* A new connection would run the rest of a transaction outside it. */
    if (db->in_tx)
        return CRM_EUNAVAIL;
    PQfinish(db->conn);
    db->conn = PQconnectdb(db->url);
    if (PQstatus(db->conn) != CONNECTION_OK) {
        crm_log(CRM_LOG_WARN, db->req, "db: connect: %s", PQerrorMessage(db->conn));
        crm_metrics_db(CRM_METRICS_DB_CONNECT_FAILED);
        PQfinish(db->conn);
        db->conn = NULL;
        return CRM_EUNAVAIL;
    }
    if (prepare_all(db) != 0) {
        PQfinish(db->conn);
        db->conn = NULL;
        return CRM_EUNAVAIL;
    }
    if (++db->generation > 1)
        crm_metrics_db(CRM_METRICS_DB_RECONNECT);
    crm_log(CRM_LOG_INFO, db->req, "db: connected");
    return CRM_OK;
}

enum crm_err
crm_db_check(struct crm_db *db, int *nstmts)
{
    enum crm_err err = crm_db_connect(db);

    for (size_t i = 0; err == CRM_OK && i < NSTMTS; i++) {
        PGresult *res;

        if (!stmts[i].per_call)
            continue;
        res = PQprepare(db->conn, "", stmts[i].sql, 0, NULL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            crm_log(CRM_LOG_ERR, db->req, "db: prepare %s: %s", stmts[i].name,
                    PQresultErrorMessage(res));
            err = CRM_EDB;
        }
        PQclear(res);
    }
    *nstmts = (int)NSTMTS;
    return err;
}

/* Maps a failed result to an error; logs what is not the client's doing. */
static enum crm_err
result_err(struct crm_db *db, const char *name, const PGresult *res)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

    if (PQstatus(db->conn) != CONNECTION_OK || (state != NULL && strncmp(state, "08", 2) == 0) ||
        (state != NULL && strncmp(state, "57P", 3) == 0)) {
        crm_log(CRM_LOG_WARN, db->req, "db: %s: connection lost", name);
        crm_metrics_db(CRM_METRICS_DB_ERR_CONNECTION);
        return CRM_EUNAVAIL;
    }
    if (state != NULL && strcmp(state, "23505") == 0) {
        crm_metrics_db(CRM_METRICS_DB_ERR_CONFLICT);
        return CRM_ECONFLICT;
    }
    crm_metrics_db(CRM_METRICS_DB_ERR_OTHER);
    crm_log(CRM_LOG_ERR, db->req, "db: %s: %s", name, PQresultErrorMessage(res));
    return CRM_EDB;
}

void
crm_db_set_req(struct crm_db *db, const struct crm_req *req)
{
    db->req = req;
}

PGconn *
crm_db_conn(struct crm_db *db)
{
    return db->conn;
}

unsigned
crm_db_generation(const struct crm_db *db)
{
    return db->generation;
}

int
crm_db_listen(struct crm_db *db, unsigned *listened, const char *const *names, int n)
{
    unsigned gen;

    if (crm_db_connect(db) != CRM_OK)
        return -1;
    if (*listened == db->generation)
        return 0;
    gen = db->generation;
    for (int i = 0; i < n; i++)
        if (crm_db_run(db, names[i], 0, NULL) != CRM_OK)
            return -1;
    /* A reconnect between two LISTENs took the earlier ones with the old connection. */
    if (db->generation != gen)
        return -1;
    *listened = gen;
    return 1;
}

const char *
crm_db_sql(const char *name)
{
    for (size_t i = 0; i < NSTMTS; i++)
        if (strcmp(stmts[i].name, name) == 0)
            return stmts[i].sql;
    return NULL;
}

static const struct crm_stmt *
find_per_call(const char *name)
{
    for (size_t i = 0; i < NSTMTS; i++)
        if (stmts[i].per_call && strcmp(stmts[i].name, name) == 0)
            return &stmts[i];
    return NULL;
}

enum crm_err
crm_db_exec(struct crm_db *db, const char *name, int n, const char *const *params, PGresult **out)
{
    const struct crm_stmt *s;
    PGresult *res;
    ExecStatusType st;
    enum crm_err err;

    if ((err = crm_db_connect(db)) != CRM_OK)
        return err;
    if ((s = find_per_call(name)) != NULL)
        res = PQexecParams(db->conn, s->sql, n, NULL, params, NULL, NULL, 0);
    else
        res = PQexecPrepared(db->conn, name, n, params, NULL, NULL, 0);
    st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        err = res == NULL ? CRM_EUNAVAIL : result_err(db, name, res);
        PQclear(res);
        return err;
    }
    *out = res;
    return CRM_OK;
}

enum crm_err
crm_db_stream(struct crm_db *db, const char *name, int n, const char *const *params)
{
    const struct crm_stmt *s;
    enum crm_err err;
    int sent;

    if ((err = crm_db_connect(db)) != CRM_OK)
        return err;
    if ((s = find_per_call(name)) != NULL)
        sent = PQsendQueryParams(db->conn, s->sql, n, NULL, params, NULL, NULL, 0);
    else
        sent = PQsendQueryPrepared(db->conn, name, n, params, NULL, NULL, 0);
    if (!sent) {
        crm_log(CRM_LOG_WARN, db->req, "db: %s: %s", name, PQerrorMessage(db->conn));
        return PQstatus(db->conn) == CONNECTION_OK ? CRM_EDB : CRM_EUNAVAIL;
    }
    db->streaming = name;
    if (!PQsetSingleRowMode(db->conn)) {
        crm_db_stream_cancel(db);
        return CRM_EDB;
    }
    return CRM_OK;
}

/* Reads what is left of the stream's results, so the connection is ready for the next. */
static void
stream_drain(struct crm_db *db)
{
    PGresult *res;

    while ((res = PQgetResult(db->conn)) != NULL)
        PQclear(res);
    db->streaming = NULL;
}

enum crm_err
crm_db_stream_row(struct crm_db *db, PGresult **row)
{
    PGresult *res = PQgetResult(db->conn);
    ExecStatusType st = PQresultStatus(res);
    enum crm_err err = CRM_OK;

    *row = NULL;
    if (st == PGRES_SINGLE_TUPLE) {
        *row = res;
        return CRM_OK;
    }
    if (res != NULL && st != PGRES_TUPLES_OK)
        err = result_err(db, db->streaming, res);
    else if (res == NULL && PQstatus(db->conn) != CONNECTION_OK)
        err = CRM_EUNAVAIL;
    PQclear(res);
    stream_drain(db);
    return err;
}

void
crm_db_stream_cancel(struct crm_db *db)
{
    PGcancel *cancel = PQgetCancel(db->conn);
    char why[256];

    if (cancel != NULL && !PQcancel(cancel, why, sizeof(why)))
        crm_log(CRM_LOG_WARN, db->req, "db: cancel %s: %s", db->streaming, why);
    PQfreeCancel(cancel);
    stream_drain(db);
}

enum crm_err
crm_db_copy_begin(struct crm_db *db, const char *name)
{
    PGresult *res;
    enum crm_err err;

    if ((err = crm_db_connect(db)) != CRM_OK)
        return err;
    res = PQexecPrepared(db->conn, name, 0, NULL, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COPY_IN)
        err = res == NULL ? CRM_EUNAVAIL : result_err(db, name, res);
    else
        db->streaming = name;
    PQclear(res);
    return err;
}

enum crm_err
crm_db_copy_put(struct crm_db *db, const char *data, size_t len)
{
    /* PQputCopyData takes an int length: a larger piece goes in parts. */
    while (len > 0) {
        int n = len > (1u << 20) ? 1 << 20 : (int)len;

        if (db->streaming == NULL || PQputCopyData(db->conn, data, n) != 1)
            return PQstatus(db->conn) == CONNECTION_OK ? CRM_EDB : CRM_EUNAVAIL;
        data += n;
        len -= (size_t)n;
    }
    return CRM_OK;
}

enum crm_err
crm_db_copy_end(struct crm_db *db, int abort)
{
    const char *name = db->streaming;
    enum crm_err err = CRM_OK;
    PGresult *res;

    if (name == NULL)
        return db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK ? CRM_EDB : CRM_EUNAVAIL;
    if (PQputCopyEnd(db->conn, abort ? "the import was abandoned" : NULL) != 1)
        err = CRM_EUNAVAIL;
    while ((res = PQgetResult(db->conn)) != NULL) {
        /* An abandoned COPY fails by design: not a database error to log. */
        if (PQresultStatus(res) != PGRES_COMMAND_OK && err == CRM_OK)
            err = abort ? CRM_EINVAL : result_err(db, name, res);
        PQclear(res);
    }
    db->streaming = NULL;
    return err;
}

enum crm_err
crm_db_run(struct crm_db *db, const char *name, int n, const char *const *params)
{
    PGresult *res;
    enum crm_err err = crm_db_exec(db, name, n, params, &res);

    if (err == CRM_OK)
        PQclear(res);
    return err;
}

/* Runs a fixed command with no user data in it. */
static enum crm_err
command(struct crm_db *db, const char *sql)
{
    PGresult *res;
    enum crm_err err = CRM_OK;

    if ((err = crm_db_connect(db)) != CRM_OK)
        return err;
    res = PQexec(db->conn, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        err = res == NULL ? CRM_EUNAVAIL : result_err(db, sql, res);
    PQclear(res);
    return err;
}

cJSON *
crm_db_json(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return cJSON_CreateNull();
    return cJSON_CreateRaw(PQgetvalue(res, row, col));
}

cJSON *
crm_db_json_object(const PGresult *res, int row, const char *const *keys, int n)
{
    cJSON *obj = cJSON_CreateObject();

    for (int i = 0; obj != NULL && i < n; i++) {
        cJSON *item = crm_db_json(res, row, i);

        if (item == NULL || !cJSON_AddItemToObject(obj, keys[i], item)) {
            cJSON_Delete(item);
            cJSON_Delete(obj);
            obj = NULL;
        }
    }
    return obj;
}

cJSON *
crm_db_page_json(const PGresult *count, const PGresult *rows, int col, long limit, long offset,
                 cJSON *(*item)(const PGresult *res, int row, int col))
{
    cJSON *data = cJSON_CreateArray();

    /* A list may read one row more than its page, to know whether another page follows. */
    for (int i = 0; data != NULL && i < PQntuples(rows) && i < limit && !PQgetisnull(rows, i, col);
         i++) {
        cJSON *it = item(rows, i, col);

        if (it == NULL || !cJSON_AddItemToArray(data, it)) {
            cJSON_Delete(it);
            cJSON_Delete(data);
            data = NULL;
        }
    }
    if (data == NULL)
        return NULL;
    return crm_page_json(data, limit, offset, strtoll(PQgetvalue(count, 0, 0), NULL, 10));
}

enum crm_err
crm_db_begin(struct crm_db *db)
{
    enum crm_err err = command(db, "BEGIN");

    db->in_tx = err == CRM_OK;
    return err;
}

enum crm_err
crm_db_commit(struct crm_db *db)
{
    enum crm_err err = command(db, "COMMIT");

    if (err != CRM_OK)
        crm_db_rollback(db);
    db->in_tx = 0;
    return err;
}

void
crm_db_rollback(struct crm_db *db)
{
    if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK)
        (void)command(db, "ROLLBACK");
    db->in_tx = 0;
}

int
crm_resp_page(struct crm_resp *resp, enum crm_err err, PGresult *res, long limit, long offset)
{
    cJSON *body = NULL;

    if (err == CRM_OK && (body = crm_page_json(crm_db_json(res, 0, 1), limit, offset,
                                               strtoll(PQgetvalue(res, 0, 0), NULL, 10))) == NULL)
        err = CRM_ENOMEM;
    PQclear(res);
    if (err != CRM_OK)
        return crm_resp_error(resp, err);
    return crm_resp_json(resp, 200, body);
}

int
crm_db_snapshot(const PGresult *res, struct crm_snap *snap)
{
    if (PQntuples(res) < 1 || crm_snap_parse(PQgetvalue(res, 0, 0), snap) != 0) {
        crm_log(CRM_LOG_ERR, NULL, "unreadable snapshot");
        return -1;
    }
    snap->next = PQgetisnull(res, 0, 1) ? 0 : strtoull(PQgetvalue(res, 0, 1), NULL, 10);
    return 0;
}
