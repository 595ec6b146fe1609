-- schema.sql: the whole Next-Gen CRM database schema.
-- Idempotent: `crmctl migrate` applies it on every start and upgrade; every statement is
-- CREATE ... IF NOT EXISTS or CREATE OR REPLACE, and schema_version records what is in place.

CREATE TABLE IF NOT EXISTS schema_version (
    version    integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- The hash of every schema.sql text crmctl migrate applied: the same text is not run again, so
-- a restart takes no table lock against a running deployment.
CREATE TABLE IF NOT EXISTS schema_applied (
    sha256     text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- RFC 3339 UTC with milliseconds, the one time format of the API. STABLE as to_char is, so
-- that PostgreSQL inlines it: called as a function it cost 1.5 us more a time (version 16).
CREATE OR REPLACE FUNCTION crm_ts(t timestamptz) RETURNS text
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    AS $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;

-- Version 1: users and the e-mail outbox.
CREATE TABLE IF NOT EXISTS users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    email         text NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('ADMIN', 'MANAGER', 'SALES_EXECUTIVE')),
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- E-mail addresses are unique regardless of case.
CREATE UNIQUE INDEX IF NOT EXISTS users_email_key ON users (lower(email));

-- The transactional outbox: registration inserts here in its own transaction, crm-mailer sends.
CREATE TABLE IF NOT EXISTS mail_outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('welcome')),
    user_id         bigint REFERENCES users (id) ON DELETE SET NULL,
    to_addr         text NOT NULL,
    to_name         text NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE INDEX IF NOT EXISTS mail_outbox_due ON mail_outbox (next_attempt_at) WHERE status = 'pending';


INSERT INTO schema_version (version) VALUES (1) ON CONFLICT DO NOTHING;

-- Version 2: leads, their activity timeline, the events feed and the dashboard summaries.
-- pg_trgm is a trusted extension: the database owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE IF NOT EXISTS leads (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    email      text CHECK (char_length(email) <= 254),
    phone      text CHECK (char_length(phone) <= 40),
    company    text CHECK (char_length(company) <= 200),
    source     text NOT NULL DEFAULT 'OTHER' CHECK (source IN
                   ('WEBSITE', 'REFERRAL', 'SOCIAL', 'EMAIL', 'COLD_CALL', 'EVENT', 'OTHER')),
    status     text NOT NULL DEFAULT 'NEW' CHECK (status IN
                   ('NEW', 'CONTACTED', 'QUALIFIED', 'PROPOSAL', 'NEGOTIATION', 'WON', 'LOST')),
    value      numeric(14,2) NOT NULL DEFAULT 0 CHECK (value >= 0),
    notes      text CHECK (char_length(notes) <= 10000),
    owner_id   bigint REFERENCES users (id),
    created_by bigint NOT NULL REFERENCES users (id),
    won_at     timestamptz, -- when it last became WON; NULL unless status is WON
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    version    integer NOT NULL DEFAULT 1
);
-- One index per sort key of GET /api/leads (id breaks ties), and the sales executive's own list.
CREATE INDEX IF NOT EXISTS leads_created ON leads (created_at, id);
CREATE INDEX IF NOT EXISTS leads_updated ON leads (updated_at, id);
CREATE INDEX IF NOT EXISTS leads_value ON leads (value, id);
CREATE INDEX IF NOT EXISTS leads_name ON leads (name, id);
CREATE INDEX IF NOT EXISTS leads_owner_created ON leads (owner_id, created_at, id);
CREATE INDEX IF NOT EXISTS leads_status ON leads (status, created_at);
-- q searches leads.search, added with its index by version 8 below.
-- top-sales over a period: the won leads by the time they were won (its partial end days).
CREATE INDEX IF NOT EXISTS leads_won_at ON leads (won_at) INCLUDE (owner_id, value)
    WHERE status = 'WON';

CREATE TABLE IF NOT EXISTS activities (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lead_id     bigint NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    type        text NOT NULL CHECK (type IN
                    ('NOTE', 'CALL', 'MEETING', 'EMAIL', 'STATUS_CHANGE', 'ASSIGNMENT', 'CREATED')),
    content     text CHECK (char_length(content) <= 10000),
    occurred_at timestamptz NOT NULL DEFAULT now(),
    actor_id    bigint NOT NULL REFERENCES users (id),
    meta        jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS activities_lead ON activities (lead_id, id);
CREATE INDEX IF NOT EXISTS activities_created ON activities (created_at);

-- Every change that clients are told about, written in the change's own transaction. crm-events
-- delivers them; xid lets it tell which ids may still commit behind the newest one it has seen.
-- No foreign key to leads: a lead.deleted event outlives its lead.
CREATE TABLE IF NOT EXISTS events (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type          text NOT NULL CHECK (type IN ('lead.created', 'lead.updated',
                      'lead.status_changed', 'lead.assigned', 'lead.deleted', 'activity.created')),
    lead_id       bigint NOT NULL,
    owner_id      bigint,  -- the lead's owner when the event happened
    prev_owner_id bigint,  -- lead.assigned: the owner before, who is told too
    actor_id      bigint NOT NULL,
    payload       jsonb NOT NULL,
    xid           xid8 NOT NULL DEFAULT pg_current_xact_id(),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS events_created ON events (created_at);

-- The API representations, defined once: the handlers and the events payloads both use them.
-- A user as others refer to it, from its row: NULL for none (a LEFT JOIN that found no user).
-- PostgreSQL inlines it, where the lookup by id below is a function call (4.7 us a time), so
-- the reads of many leads or activities join their users and pass them (version 16).
CREATE OR REPLACE FUNCTION crm_user_ref(u users) RETURNS json
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN u.id IS NOT NULL THEN json_build_object('id', u.id, 'name', u.name)
          END $$;

CREATE OR REPLACE FUNCTION crm_user_ref(uid bigint) RETURNS json
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT crm_user_ref(u) FROM users u WHERE u.id = uid $$;

-- A lead with its owner's and creator's crm_user_ref.
CREATE OR REPLACE FUNCTION crm_lead_json(l leads, owner json, created_by json) RETURNS json
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT json_build_object('id', l.id, 'name', l.name, 'email', l.email,
              'phone', l.phone, 'company', l.company, 'source', l.source, 'status', l.status,
              'value', l.value, 'notes', l.notes, 'owner', owner, 'created_by', created_by,
              'created_at', crm_ts(l.created_at), 'updated_at', crm_ts(l.updated_at),
              'version', l.version) $$;

CREATE OR REPLACE FUNCTION crm_lead_json(l leads) RETURNS json
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT crm_lead_json(l, crm_user_ref(l.owner_id), crm_user_ref(l.created_by)) $$;

-- An activity with its actor's crm_user_ref.
CREATE OR REPLACE FUNCTION crm_activity_json(a activities, actor json) RETURNS json
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT json_build_object('id', a.id, 'lead_id', a.lead_id, 'type', a.type,
              'content', a.content, 'occurred_at', crm_ts(a.occurred_at), 'actor', actor,
              'meta', a.meta, 'created_at', crm_ts(a.created_at)) $$;

CREATE OR REPLACE FUNCTION crm_activity_json(a activities) RETURNS json
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT crm_activity_json(a, crm_user_ref(a.actor_id)) $$;

-- Dashboard summaries, kept exact by statement-level triggers in the writing transaction, so
-- the dashboard reads a handful of rows instead of scanning a million leads.
-- The rows every creation moves (the NEW status, the current hour, an active user) are striped
-- (version 13): a connection adds its deltas to its own stripe (crm_stripe), so concurrent
-- writers do not queue on one row until each other's commit; readers add the stripes up.
CREATE TABLE IF NOT EXISTS lead_totals (
    status text NOT NULL,
    stripe smallint NOT NULL DEFAULT 0,
    leads  bigint NOT NULL DEFAULT 0,
    value  numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (status, stripe)
);
INSERT INTO lead_totals (status)
    SELECT unnest(ARRAY['NEW', 'CONTACTED', 'QUALIFIED', 'PROPOSAL', 'NEGOTIATION', 'WON', 'LOST'])
    ON CONFLICT DO NOTHING;

CREATE TABLE IF NOT EXISTS user_totals (
    user_id    bigint NOT NULL REFERENCES users (id),
    stripe     smallint NOT NULL DEFAULT 0,
    leads      bigint NOT NULL DEFAULT 0,  -- leads owned
    won        bigint NOT NULL DEFAULT 0,  -- of them WON
    won_value  numeric NOT NULL DEFAULT 0,
    activities bigint NOT NULL DEFAULT 0,  -- activities logged by the user
    PRIMARY KEY (user_id, stripe)
);

-- Rolling windows ("the last 7 days") add up hours instead of counting rows; only the first,
-- partial hour of a window is counted from the table itself (crm_created_since).
CREATE TABLE IF NOT EXISTS hourly_totals (
    hour       timestamptz NOT NULL,  -- UTC hour
    stripe     smallint NOT NULL DEFAULT 0,
    leads      bigint NOT NULL DEFAULT 0,  -- leads created in it
    activities bigint NOT NULL DEFAULT 0,  -- activities created in it
    PRIMARY KEY (hour, stripe)
);

-- Won leads per owner and UTC day of the win, so a top-sales period adds up days, not leads.
-- Not striped: only a won lead moves it (won, un-won, or created or changed as WON), never an
-- activity, and two writers meet on a row only with won leads of the same owner on the same
-- day: the pace of one salesperson's wins, not a row that every writer shares.
CREATE TABLE IF NOT EXISTS won_daily (
    user_id   bigint NOT NULL REFERENCES users (id),
    day       timestamptz NOT NULL,  -- UTC midnight
    won       bigint NOT NULL DEFAULT 0,
    won_value numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, day)
);
CREATE INDEX IF NOT EXISTS won_daily_day ON won_daily (day);
-- The same per UTC month, so a long period adds up months and at most two months' days.
CREATE TABLE IF NOT EXISTS won_monthly (
    user_id   bigint NOT NULL REFERENCES users (id),
    month     timestamptz NOT NULL,  -- UTC midnight of the month's first day
    won       bigint NOT NULL DEFAULT 0,
    won_value numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, month)
);
CREATE INDEX IF NOT EXISTS won_monthly_month ON won_monthly (month);

-- A database from before version 13 gets the stripe column (its rows become stripe 0) and the
-- primary key with it, here, before the functions below, whose ON CONFLICT names that key.
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES ('lead_totals', 'status'), ('user_totals', 'user_id'),
                                   ('hourly_totals', 'hour')) v (tbl, keycol)
             WHERE NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = v.tbl::regclass
                               AND attname = 'stripe' AND NOT attisdropped) LOOP
        EXECUTE format('ALTER TABLE %I ADD COLUMN stripe smallint NOT NULL DEFAULT 0,'
                       ' DROP CONSTRAINT %I, ADD PRIMARY KEY (%I, stripe)',
                       t.tbl, t.tbl || '_pkey', t.keycol);
    END LOOP;
END $$;

-- The stripe of this connection's summary rows: one of 16 by its backend's pid, so a program's
-- connection keeps to one stripe and two connections rarely share one.
CREATE OR REPLACE FUNCTION crm_stripe() RETURNS smallint
    LANGUAGE sql STABLE PARALLEL RESTRICTED
    AS $$ SELECT (pg_backend_pid() % 16)::smallint $$;

-- Taken before a transaction's first summary row, held to its end: the transactions of one
-- stripe write its rows one at a time. The upserts of each statement are in key order, but a
-- transaction's triggers take rows of several tables in turn (a lead's user_totals row, then the
-- hour, then its CREATED activity's actor), so two writers of a stripe could each hold a row the
-- other waits for (a lead created for someone by A while A logs an activity: a deadlock).
CREATE OR REPLACE FUNCTION crm_stripe_lock() RETURNS void
    LANGUAGE sql
    AS $$ SELECT pg_advisory_xact_lock(13, crm_stripe()) $$;

DO $$ BEGIN
    CREATE TYPE crm_lead_delta AS (status text, owner_id bigint, value numeric,
                                   hour timestamptz, won_day timestamptz, n integer);
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

-- One +1 (new row) or -1 (old row) delta of a lead.
CREATE OR REPLACE FUNCTION crm_lead_delta(l leads, n integer) RETURNS crm_lead_delta
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT (l.status, l.owner_id, l.value, date_trunc('hour', l.created_at, 'UTC'),
                  CASE WHEN l.status = 'WON' THEN date_trunc('day', l.won_at, 'UTC') END,
                  n)::crm_lead_delta $$;

-- Applies the deltas of one statement to this connection's stripe. Rows are upserted in key
-- order; a change that moves nothing (a note edited) locks nothing, not even the stripe.
CREATE OR REPLACE FUNCTION crm_apply_lead_deltas(ds crm_lead_delta[]) RETURNS void
    LANGUAGE sql AS $$
    SELECT crm_stripe_lock() FROM (SELECT FROM unnest(ds)
        GROUP BY status, owner_id, hour, won_day HAVING sum(n) <> 0 OR sum(n * value) <> 0
        LIMIT 1) moved;
    INSERT INTO lead_totals AS t (status, stripe, leads, value)
        SELECT status, crm_stripe(), sum(n), sum(n * value) FROM unnest(ds) GROUP BY status
        HAVING sum(n) <> 0 OR sum(n * value) <> 0 ORDER BY status
        ON CONFLICT (status, stripe) DO UPDATE
            SET leads = t.leads + excluded.leads, value = t.value + excluded.value;
    INSERT INTO user_totals AS t (user_id, stripe, leads, won, won_value)
        SELECT owner_id, crm_stripe(), sum(n), coalesce(sum(n) FILTER (WHERE status = 'WON'), 0),
               coalesce(sum(n * value) FILTER (WHERE status = 'WON'), 0)
        FROM unnest(ds) WHERE owner_id IS NOT NULL GROUP BY owner_id
        HAVING sum(n) <> 0 OR sum(n * value) <> 0
            OR coalesce(sum(n) FILTER (WHERE status = 'WON'), 0) <> 0 ORDER BY owner_id
        ON CONFLICT (user_id, stripe) DO UPDATE
            SET leads = t.leads + excluded.leads, won = t.won + excluded.won,
                won_value = t.won_value + excluded.won_value;
    INSERT INTO hourly_totals AS t (hour, stripe, leads)
        SELECT hour, crm_stripe(), sum(n) FROM unnest(ds) GROUP BY hour HAVING sum(n) <> 0
        ORDER BY hour
        ON CONFLICT (hour, stripe) DO UPDATE SET leads = t.leads + excluded.leads;
    INSERT INTO won_daily AS t (user_id, day, won, won_value)
        SELECT owner_id, won_day, sum(n), sum(n * value) FROM unnest(ds)
        WHERE won_day IS NOT NULL AND owner_id IS NOT NULL GROUP BY owner_id, won_day
        HAVING sum(n) <> 0 OR sum(n * value) <> 0 ORDER BY owner_id, won_day
        ON CONFLICT (user_id, day) DO UPDATE
            SET won = t.won + excluded.won, won_value = t.won_value + excluded.won_value;
    INSERT INTO won_monthly AS t (user_id, month, won, won_value)
        SELECT owner_id, date_trunc('month', won_day, 'UTC') AS m, sum(n), sum(n * value)
        FROM unnest(ds) WHERE won_day IS NOT NULL AND owner_id IS NOT NULL GROUP BY owner_id, m
        HAVING sum(n) <> 0 OR sum(n * value) <> 0 ORDER BY owner_id, m
        ON CONFLICT (user_id, month) DO UPDATE
            SET won = t.won + excluded.won, won_value = t.won_value + excluded.won_value;
$$;

CREATE OR REPLACE FUNCTION crm_leads_totals() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM crm_apply_lead_deltas(array_agg(crm_lead_delta(r, 1))) FROM new_rows r;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM crm_apply_lead_deltas(array_agg(crm_lead_delta(r, -1))) FROM old_rows r;
    ELSE
        PERFORM crm_apply_lead_deltas(array_agg(d)) FROM (
            SELECT crm_lead_delta(r, 1) AS d FROM new_rows r
            UNION ALL
            SELECT crm_lead_delta(r, -1) FROM old_rows r) x;
    END IF;
    RETURN NULL;
END $$;

-- Adds n (1: inserted, -1: deleted) for each activity, by its actor and its created_at's hour,
-- to this connection's stripe, rows in key order. A deletion too goes to the deleting
-- connection's stripe: a stripe's row may go below zero, their sum cannot.
CREATE OR REPLACE FUNCTION crm_apply_activity_deltas(actors bigint[], hours timestamptz[],
                                                     n integer) RETURNS void
    LANGUAGE sql AS $$
    SELECT crm_stripe_lock() WHERE cardinality(actors) > 0;
    INSERT INTO user_totals AS t (user_id, stripe, activities)
        SELECT actor_id, crm_stripe(), n * count(*) FROM unnest(actors) AS d (actor_id)
        GROUP BY actor_id ORDER BY actor_id
        ON CONFLICT (user_id, stripe) DO UPDATE SET activities = t.activities + excluded.activities;
    INSERT INTO hourly_totals AS t (hour, stripe, activities)
        SELECT hour, crm_stripe(), n * count(*) FROM unnest(hours) AS d (hour)
        GROUP BY hour ORDER BY hour
        ON CONFLICT (hour, stripe) DO UPDATE SET activities = t.activities + excluded.activities;
$$;

CREATE OR REPLACE FUNCTION crm_activities_totals() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM crm_apply_activity_deltas(array_agg(actor_id),
                                          array_agg(date_trunc('hour', created_at, 'UTC')), 1)
            FROM new_rows;
    ELSE
        PERFORM crm_apply_activity_deltas(array_agg(actor_id),
                                          array_agg(date_trunc('hour', created_at, 'UTC')), -1)
            FROM old_rows;
    END IF;
    RETURN NULL;
END $$;

-- The UTC hour boundary nearest to t (a half hour rounds up).
CREATE OR REPLACE FUNCTION crm_nearest_hour(t timestamptz) RETURNS timestamptz
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT date_trunc('hour', t + interval '30 minutes', 'UTC') $$;

-- How many leads and activities were created since t: the whole hours from the boundary e
-- nearest to t, from hourly_totals (all their stripes), plus the rows from t to e when e is
-- later, less those from e to t when it is earlier, counted through their created_at indexes.
-- A busy hour's rows cost what they count (14 000 activities: 3.7 ms at 10 M seeded leads), so
-- this reads at most half an hour of them, not a whole one. A single SELECT returning a table
-- (and a STABLE helper, as date_trunc with a zone is), so the planner inlines it into the
-- caller and sees the bound: run as a function of an unknown t, it guessed a third of
-- hourly_totals and read every row of it (a table that gains an hour's stripes every hour:
-- 273 ms at 1 M seeded leads).
CREATE OR REPLACE FUNCTION crm_created_since(t timestamptz)
    RETURNS TABLE (leads bigint, activities bigint)
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT (coalesce(sum(h.leads), 0)
                  + CASE WHEN t < crm_nearest_hour(t) THEN 1 ELSE -1 END
                    * (SELECT count(*) FROM leads WHERE created_at >= least(t, crm_nearest_hour(t))
                       AND created_at < greatest(t, crm_nearest_hour(t))))::bigint,
                 (coalesce(sum(h.activities), 0)
                  + CASE WHEN t < crm_nearest_hour(t) THEN 1 ELSE -1 END
                    * (SELECT count(*) FROM activities
                       WHERE created_at >= least(t, crm_nearest_hour(t))
                       AND created_at < greatest(t, crm_nearest_hour(t))))::bigint
            FROM hourly_totals h WHERE h.hour >= crm_nearest_hour(t) $$;

-- Each owner's won leads and their value, won between t1 and t2 inclusive (either may be NULL:
-- open), in UTC. The period is taken as [lo, hx) with hx one microsecond after t2 (the finest
-- time there is), then cut into: whole months from won_monthly; whole days before the first and
-- after the last whole month from won_daily; the partial days at either end from the leads_won_at
-- index. A period of whole days or months therefore reads no lead, and any period at most one
-- row per owner and month and about 60 day rows per owner, each part one index range over every
-- owner at once (a range per owner cost 5 index probes an owner: 2 ms for 90 owners). Open bounds
-- are infinities. A single SELECT returning a table, so the planner inlines it.
CREATE OR REPLACE FUNCTION crm_won_by_owner(t1 timestamptz, t2 timestamptz)
    RETURNS TABLE (user_id bigint, won bigint, won_value numeric)
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ WITH b AS (SELECT coalesce(t1, '-infinity') AT TIME ZONE 'UTC' AS lo,
                            coalesce(t2 + interval '1 microsecond', 'infinity') AT TIME ZONE 'UTC'
                                AS hx),
               d AS (SELECT lo, hx,
                            date_trunc('day', lo - interval '1 microsecond') + interval '1 day'
                                AS dlo,
                            date_trunc('day', hx) AS dhi FROM b),
               p AS (SELECT lo AT TIME ZONE 'UTC' AS lo, hx AT TIME ZONE 'UTC' AS hx,
                            dlo AT TIME ZONE 'UTC' AS dlo, dhi AT TIME ZONE 'UTC' AS dhi,
                            (date_trunc('month', dlo - interval '1 microsecond')
                                + interval '1 month') AT TIME ZONE 'UTC' AS mlo,
                            date_trunc('month', dhi) AT TIME ZONE 'UTC' AS mhi FROM d),
               x AS (SELECT m.user_id, m.won, m.won_value FROM won_monthly m, p
                      WHERE m.month >= p.mlo AND m.month < p.mhi
                     UNION ALL
                     SELECT w.user_id, w.won, w.won_value FROM won_daily w, p
                      WHERE w.day >= p.dlo AND w.day < least(p.mlo, p.dhi)
                     UNION ALL
                     SELECT w.user_id, w.won, w.won_value FROM won_daily w, p
                      WHERE w.day >= greatest(p.mhi, least(p.mlo, p.dhi)) AND w.day < p.dhi
                     UNION ALL
                     SELECT l.owner_id, 1, l.value FROM leads l, p
                      WHERE l.status = 'WON' AND l.won_at >= p.lo
                        AND l.won_at < least(p.dlo, p.hx)
                     UNION ALL
                     SELECT l.owner_id, 1, l.value FROM leads l, p
                      WHERE l.status = 'WON' AND l.won_at >= greatest(p.dhi, p.dlo)
                        AND l.won_at < p.hx)
          SELECT x.user_id, sum(x.won)::bigint, sum(x.won_value) FROM x
           WHERE x.user_id IS NOT NULL GROUP BY x.user_id $$;

CREATE OR REPLACE TRIGGER leads_totals_ins AFTER INSERT ON leads
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm_leads_totals();
CREATE OR REPLACE TRIGGER leads_totals_upd AFTER UPDATE ON leads
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION crm_leads_totals();
CREATE OR REPLACE TRIGGER leads_totals_del AFTER DELETE ON leads
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm_leads_totals();
CREATE OR REPLACE TRIGGER activities_totals_ins AFTER INSERT ON activities
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION crm_activities_totals();
CREATE OR REPLACE TRIGGER activities_totals_del AFTER DELETE ON activities
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION crm_activities_totals();
-- Activities are never edited (the API has no such route); refuse it, so the summaries hold.
CREATE OR REPLACE FUNCTION crm_activities_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'activities are not updated';
END $$;
CREATE OR REPLACE TRIGGER activities_no_update BEFORE UPDATE ON activities
    FOR EACH STATEMENT EXECUTE FUNCTION crm_activities_immutable();

INSERT INTO schema_version (version) VALUES (2) ON CONFLICT DO NOTHING;

-- Version 3: what crm-events needs.
-- Delivery order relies on ids taken one at a time from the sequence, in the order they are
-- asked for (lib/evorder.h): no per-session cache.
ALTER TABLE events ALTER COLUMN id SET CACHE 1;

-- The message an SSE client receives for an event (API.md "Real-time").
CREATE OR REPLACE FUNCTION crm_event_json(e events) RETURNS json
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT json_build_object('id', e.id, 'type', e.type, 'lead_id', e.lead_id,
              'actor', crm_user_ref(e.actor_id), 'at', crm_ts(e.created_at),
              'data', e.payload) $$;

-- A role change or a deactivation reaches crm-events, which closes that user's streams.
CREATE OR REPLACE FUNCTION crm_users_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('crm_users', NEW.id::text);
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER users_notify AFTER UPDATE OF role, active ON users
    FOR EACH ROW WHEN (OLD.role IS DISTINCT FROM NEW.role OR OLD.active IS DISTINCT FROM NEW.active)
    EXECUTE FUNCTION crm_users_notify();

INSERT INTO schema_version (version) VALUES (3) ON CONFLICT DO NOTHING;

-- Version 4: the per-account login lockout (README "Login limits").
-- Checked login attempts per e-mail address, lowercased as typed, whether or not an account has
-- it (so answers and timing do not tell which accounts exist). An attempt counts as a failure
-- from the moment its password is checked, and a success deletes the row.
CREATE TABLE IF NOT EXISTS login_failures (
    email           text PRIMARY KEY,
    failures        integer NOT NULL DEFAULT 0,
    last_failure_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS login_failures_last ON login_failures (last_failure_at);

-- Until when f's e-mail is locked out: from the max_failures-th failure on, first_lock seconds
-- after the last one, doubling with each further failure, at most max_lock seconds.
CREATE OR REPLACE FUNCTION crm_login_locked_until(f login_failures, max_failures integer,
                                                  first_lock integer, max_lock integer)
    RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN f.failures < max_failures THEN '-infinity'::timestamptz
                 ELSE f.last_failure_at + interval '1 second'
                      * least(max_lock, first_lock * 2 ^ least(f.failures - max_failures, 30))
                 END $$;

-- A login attempt for e-mail addr (lowercased): while it is locked out, the seconds left, and the
-- attempt is neither counted nor to be checked; else 0, and the attempt is counted before its
-- password is checked, so parallel guesses cannot all slip in before the first is recorded.
-- Failures a day old are forgotten, and each attempt deletes two such rows: the table holds
-- about a day of failed e-mails.
CREATE OR REPLACE FUNCTION crm_login_attempt(addr text, max_failures integer, first_lock integer,
                                             max_lock integer) RETURNS integer
    LANGUAGE plpgsql AS $$
DECLARE
    f login_failures;
    until timestamptz;
BEGIN
    INSERT INTO login_failures (email) VALUES (addr) ON CONFLICT DO NOTHING;
    SELECT * INTO f FROM login_failures WHERE email = addr FOR UPDATE;
    until := crm_login_locked_until(f, max_failures, first_lock, max_lock);
    IF until > now() THEN
        RETURN ceil(extract(epoch FROM until - now()));
    END IF;
    UPDATE login_failures
        SET failures = CASE WHEN last_failure_at < now() - interval '1 day' THEN 1
                            ELSE failures + 1 END,
            last_failure_at = now()
        WHERE email = addr;
    DELETE FROM login_failures WHERE email IN (
        SELECT email FROM login_failures WHERE last_failure_at < now() - interval '1 day'
        ORDER BY last_failure_at LIMIT 2 FOR UPDATE SKIP LOCKED);
    RETURN 0;
END $$;

INSERT INTO schema_version (version) VALUES (4) ON CONFLICT DO NOTHING;

-- Version 5: follow-up tasks and their reminders (README "Follow-up tasks").
-- A task belongs to a lead and to the user who is to do it (default: the lead's owner). Its
-- reminder is due at due_at; reminded_at is the due_at whose reminder was queued, so there is
-- exactly one per due time: moving due_at makes a new one due, completing it first makes none.
CREATE TABLE IF NOT EXISTS tasks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lead_id     bigint NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    user_id     bigint NOT NULL REFERENCES users (id),
    title       text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    notes       text CHECK (char_length(notes) <= 10000),
    due_at      timestamptz NOT NULL,
    done_at     timestamptz,
    reminded_at timestamptz,
    created_by  bigint NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    version     integer NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS tasks_lead ON tasks (lead_id, due_at, id);
CREATE INDEX IF NOT EXISTS tasks_user_due ON tasks (user_id, due_at, id);
-- Only the reminders still to send: what crm-mailer looks for stays small however many tasks.
CREATE INDEX IF NOT EXISTS tasks_remind ON tasks (due_at)
    WHERE done_at IS NULL AND reminded_at IS DISTINCT FROM due_at;

-- A task with its assignee's and creator's crm_user_ref; pages join them (version 16).
CREATE OR REPLACE FUNCTION crm_task_json(t tasks, assignee json, created_by json) RETURNS json
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT json_build_object('id', t.id, 'lead_id', t.lead_id, 'title', t.title,
              'notes', t.notes, 'due_at', crm_ts(t.due_at), 'done_at', crm_ts(t.done_at),
              'user', assignee, 'created_by', created_by,
              'created_at', crm_ts(t.created_at), 'updated_at', crm_ts(t.updated_at),
              'version', t.version) $$;

CREATE OR REPLACE FUNCTION crm_task_json(t tasks) RETURNS json
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT crm_task_json(t, crm_user_ref(t.user_id), crm_user_ref(t.created_by)) $$;

-- A reminder that became due sooner than crm-mailer's next wake-up wakes it now (it LISTENs on
-- mail_outbox and sleeps until the earliest due outbox row or task).
CREATE OR REPLACE FUNCTION crm_tasks_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('mail_outbox', 'task');
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER tasks_notify AFTER INSERT OR UPDATE OF due_at, done_at ON tasks
    FOR EACH ROW WHEN (NEW.done_at IS NULL AND NEW.reminded_at IS DISTINCT FROM NEW.due_at)
    EXECUTE FUNCTION crm_tasks_notify();

-- Widens a CHECK constraint to def, once: a migration that finds it in place scans nothing
-- (adding a CHECK reads the whole table under an exclusive lock).
CREATE OR REPLACE FUNCTION crm_set_check(tbl regclass, name text, def text) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = tbl AND conname = name
                   AND pg_get_constraintdef(oid) = def) THEN
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', tbl, name);
        EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I %s', tbl, name, def);
    END IF;
END $$;

-- The outbox carries reminders too: data holds what the message says, as of when it was queued.
-- It carries password resets too (version 11): one check with every kind, so that no later block
-- narrows it again and each migrate finds it in place and scans nothing.
ALTER TABLE mail_outbox ADD COLUMN IF NOT EXISTS data jsonb NOT NULL DEFAULT '{}';
SELECT crm_set_check('mail_outbox', 'mail_outbox_kind_check',
    'CHECK ((kind = ANY (ARRAY[''welcome''::text, ''task_due''::text, ''password_reset''::text])))');

-- A completed task is on the lead's timeline (TASK_COMPLETED), and so is a lead's edit (UPDATED,
-- version 6): one check with every type, so that no later block narrows it again and each
-- migrate finds it in place and scans nothing.
SELECT crm_set_check('activities', 'activities_type_check',
    'CHECK ((type = ANY (ARRAY[''NOTE''::text, ''CALL''::text, ''MEETING''::text, '
    '''EMAIL''::text, ''STATUS_CHANGE''::text, ''ASSIGNMENT''::text, ''CREATED''::text, '
    '''TASK_COMPLETED''::text, ''UPDATED''::text])))');

-- Task events. Their prev_owner_id is the task's assignee, who is told too (crm-events sends an
-- event to a SALES_EXECUTIVE that is its owner_id or prev_owner_id).
SELECT crm_set_check('events', 'events_type_check',
    'CHECK ((type = ANY (ARRAY[''lead.created''::text, ''lead.updated''::text, '
    '''lead.status_changed''::text, ''lead.assigned''::text, ''lead.deleted''::text, '
    '''activity.created''::text, ''task.created''::text, ''task.updated''::text, '
    '''task.completed''::text, ''task.reopened''::text, ''task.deleted''::text, '
    '''task.due''::text, ''leads.imported''::text])))');
COMMENT ON COLUMN events.prev_owner_id IS
    'lead.assigned: the owner before; task.*: the task''s assignee. Told too.';

INSERT INTO schema_version (version) VALUES (5) ON CONFLICT DO NOTHING;

-- Version 6: field history (an UPDATED activity per lead edit, the changed fields in every
-- edit's, status change's and assignment's meta) and the activity on the stream's lead events.
-- The activity types gain UPDATED in version 5's check above (crm_set_check).

-- What a write changed, field by field in this order (the lead's API members, owner by id):
-- [{"field", "from", "to"}] of the fields whose values differ between a and b; [] for none.
CREATE OR REPLACE FUNCTION crm_lead_changes(a leads, b leads) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT coalesce(jsonb_agg(jsonb_build_object('field', f.name, 'from', ja -> f.name,
                                                       'to', jb -> f.name) ORDER BY f.n), '[]')
          FROM (SELECT to_jsonb(a) AS ja, to_jsonb(b) AS jb) j,
               unnest(ARRAY['name', 'email', 'phone', 'company', 'source', 'status', 'value',
                            'notes', 'owner_id']) WITH ORDINALITY AS f (name, n)
          WHERE ja -> f.name IS DISTINCT FROM jb -> f.name $$;

-- lead.updated, lead.status_changed and lead.assigned carry the activity their write recorded,
-- so a stream shows what changed, not only the lead after it.
ALTER TABLE events ADD COLUMN IF NOT EXISTS activity jsonb;

-- Replaces version 3's: the message has "activity" when its event recorded one.
CREATE OR REPLACE FUNCTION crm_event_json(e events) RETURNS json
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN e.activity IS NULL
                 THEN json_build_object('id', e.id, 'type', e.type, 'lead_id', e.lead_id,
                          'actor', crm_user_ref(e.actor_id), 'at', crm_ts(e.created_at),
                          'data', e.payload)
                 ELSE json_build_object('id', e.id, 'type', e.type, 'lead_id', e.lead_id,
                          'actor', crm_user_ref(e.actor_id), 'at', crm_ts(e.created_at),
                          'data', e.payload, 'activity', e.activity) END $$;

INSERT INTO schema_version (version) VALUES (6) ON CONFLICT DO NOTHING;

-- Version 8: q searches one lower-cased column (issue 14). ILIKE over name, email and company
-- lower-cased every candidate row three times, the cost of a common-term search; LIKE on a
-- column lower-cased once, when the row is written, is several times cheaper, and one trigram
-- index replaces three. The unit separator between the fields is a character q may not hold
-- (lib/valid.c), so a match never spans two fields. Adding the column rewrites the table once.
ALTER TABLE leads ADD COLUMN IF NOT EXISTS search text GENERATED ALWAYS AS
    (lower(coalesce(name, '') || E'\x1f' || coalesce(email, '') || E'\x1f' || coalesce(company, '')))
    STORED;
CREATE INDEX IF NOT EXISTS leads_search_trgm ON leads USING gin (search gin_trgm_ops);
DROP INDEX IF EXISTS leads_name_trgm;
DROP INDEX IF EXISTS leads_email_trgm;
DROP INDEX IF EXISTS leads_company_trgm;

INSERT INTO schema_version (version) VALUES (8) ON CONFLICT DO NOTHING;

-- Version 9: the notification inbox (README "Notifications"). Each user's inbox holds the events
-- that concern it, materialised when the event is written, in its transaction: an event is kept
-- for 24 hours only (crm-events' replay), an inbox for good, and the unread count is an index
-- count. A notification's id is its event's, so a client marks read what the stream pushed it.
CREATE TABLE IF NOT EXISTS notifications (
    user_id    bigint NOT NULL REFERENCES users (id),
    event_id   bigint NOT NULL,  -- no foreign key: the event is purged, its notification stays
    type       text NOT NULL,    -- the event's
    reason     text NOT NULL CHECK (reason IN
                   ('ASSIGNED', 'UNASSIGNED', 'STATUS_CHANGED', 'ACTIVITY', 'TASK_DUE')),
    lead_id    bigint NOT NULL,
    actor_id   bigint NOT NULL,
    payload    jsonb NOT NULL,
    activity   jsonb,
    created_at timestamptz NOT NULL,
    read_at    timestamptz,
    PRIMARY KEY (user_id, event_id)
);
-- The unread count and the unread=1 page read this small index only.
CREATE INDEX IF NOT EXISTS notifications_unread ON notifications (user_id, event_id)
    WHERE read_at IS NULL;

-- The inbox rows of event e, one per user it concerns: the owner it assigns a lead to (also at
-- its creation) and the owner it takes one from, the owner of a lead whose status changes or
-- that gets an activity, each unless that user did it; the assignee of a task that falls due
-- (its own reminder).
CREATE OR REPLACE FUNCTION crm_event_notifications(e events) RETURNS SETOF notifications
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT r.user_id, e.id, e.type, r.reason, e.lead_id, e.actor_id, e.payload, e.activity,
                 e.created_at, NULL::timestamptz
          FROM (VALUES
              (CASE WHEN e.type IN ('lead.created', 'lead.assigned') THEN e.owner_id END,
               'ASSIGNED', true),
              (CASE WHEN e.type = 'lead.assigned' THEN e.prev_owner_id END, 'UNASSIGNED', true),
              (CASE WHEN e.type = 'lead.status_changed' THEN e.owner_id END, 'STATUS_CHANGED',
               true),
              (CASE WHEN e.type = 'activity.created' THEN e.owner_id END, 'ACTIVITY', true),
              (CASE WHEN e.type = 'task.due' THEN e.prev_owner_id END, 'TASK_DUE', false))
              AS r (user_id, reason, others_only)
          WHERE r.user_id IS NOT NULL AND NOT (r.others_only AND r.user_id = e.actor_id) $$;

-- Every statement that writes events fills the inboxes in its transaction.
CREATE OR REPLACE FUNCTION crm_events_notifications() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO notifications SELECT n.* FROM new_rows e, crm_event_notifications(e) n;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER events_notifications AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION crm_events_notifications();

-- A notification with its actor's crm_user_ref; the inbox page joins it (version 16).
CREATE OR REPLACE FUNCTION crm_notification_json(n notifications, actor json) RETURNS json
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT json_build_object('id', n.event_id, 'type', n.type, 'reason', n.reason,
              'lead_id', n.lead_id, 'actor', actor, 'data', n.payload,
              'activity', n.activity, 'created_at', crm_ts(n.created_at),
              'read_at', crm_ts(n.read_at)) $$;

CREATE OR REPLACE FUNCTION crm_notification_json(n notifications) RETURNS json
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT crm_notification_json(n, crm_user_ref(n.actor_id)) $$;

-- An upgraded database's inbox starts with the events it still holds (the last 24 hours), once.
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM schema_version WHERE version = 9) THEN
        INSERT INTO notifications SELECT n.* FROM events e, crm_event_notifications(e) n
            WHERE EXISTS (SELECT 1 FROM users u WHERE u.id = n.user_id);
    END IF;
END $$;

INSERT INTO schema_version (version) VALUES (9) ON CONFLICT DO NOTHING;

-- Version 10: CSV import (POST /api/leads/import, cgi-src/leads/import.c). The rows are copied
-- into a temporary table lead_import of the import's transaction (lib/db.c lead_import_table),
-- which these functions read: plpgsql, so that they are planned when called, when the table
-- exists. An import of many leads writes one leads.imported event per owner instead of a
-- lead.created per lead: every open stream would be sent each of up to 100 000 messages (more
-- than crm-events lets a stream fall behind, so the streams would be dropped), the events table
-- would grow by as many rows, and every lead created for someone else would fill its inbox. Such
-- an event is about many leads, so it has no lead_id.
-- The event type leads.imported is in version 5's check above (one check, set once by
-- crm_set_check: two blocks setting it in turn would rebuild it at every migrate).
-- Guarded, so that a migrate of a database that has it takes no lock on events.
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'events'::regclass
               AND attname = 'lead_id' AND attnotnull) THEN
        ALTER TABLE events ALTER COLUMN lead_id DROP NOT NULL;
    END IF;
END $$;

-- Duplicates are found by e-mail, case-insensitively; this index keeps a small import against a
-- large table from reading all of it.
CREATE INDEX IF NOT EXISTS leads_email_lower ON leads (lower(email)) WHERE email IS NOT NULL;

-- The problems of the rows in lead_import that only the database can see: an owner that is not
-- an active user; an e-mail that an earlier row of the file has, or a lead the caller sees
-- (own: its row filter, NULL for every lead). With skip, the duplicates are taken out of
-- lead_import and returned with r_skipped set, and their other problems are not reported.
CREATE OR REPLACE FUNCTION crm_import_check(own bigint, skip boolean)
    RETURNS TABLE (r_row integer, r_field text, r_problem text, r_skipped boolean)
    LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
    WITH d AS (SELECT i.n, CASE WHEN i.first < i.n THEN 'the same e-mail as row ' || i.first
                               ELSE 'a lead with this e-mail exists' END AS problem
               FROM (SELECT x.n, x.email, min(x.n) OVER (PARTITION BY lower(x.email)) AS first
                     FROM lead_import x WHERE x.email IS NOT NULL) i
               WHERE i.first < i.n OR EXISTS (SELECT 1 FROM leads l
                   WHERE lower(l.email) = lower(i.email) AND l.email IS NOT NULL
                   AND (own IS NULL OR l.owner_id = own))),
         gone AS (DELETE FROM lead_import x WHERE skip AND x.n IN (SELECT d.n FROM d)),
         o AS (SELECT i.n FROM lead_import i WHERE i.owner_id IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = i.owner_id AND u.active))
    SELECT d.n, 'email'::text, d.problem, skip FROM d
    UNION ALL
    SELECT o.n, 'owner_id'::text, 'must be an active user'::text, false FROM o
    WHERE NOT (skip AND o.n IN (SELECT d.n FROM d))
    ORDER BY 1, 2;
END $$;

-- Inserts every row of lead_import as a lead created by actor, in the file's order, each with
-- its CREATED activity, and one leads.imported event per owner. Returns the number inserted.
CREATE OR REPLACE FUNCTION crm_import_leads(actor bigint) RETURNS bigint
    LANGUAGE plpgsql AS $$
DECLARE
    total bigint;
BEGIN
    WITH l AS (INSERT INTO leads (name, email, phone, company, source, status, won_at, value,
                                  notes, owner_id, created_by)
               SELECT i.name, i.email, i.phone, i.company, coalesce(i.source, 'OTHER'),
                      coalesce(i.status, 'NEW'), CASE WHEN i.status = 'WON' THEN now() END,
                      coalesce(i.value, 0), i.notes, i.owner_id, actor
               FROM lead_import i ORDER BY i.n RETURNING id, owner_id),
         a AS (INSERT INTO activities (lead_id, type, actor_id, meta)
               SELECT l.id, 'CREATED', actor, '{"import": true}' FROM l),
         g AS (SELECT l.owner_id, count(*) AS leads FROM l GROUP BY l.owner_id),
         e AS (INSERT INTO events (type, lead_id, owner_id, actor_id, payload)
               SELECT 'leads.imported', NULL, g.owner_id, actor,
                      jsonb_build_object('count', g.leads, 'owner', crm_user_ref(g.owner_id))
               FROM g ORDER BY g.owner_id RETURNING id)
    SELECT coalesce((SELECT sum(g.leads) FROM g), 0)
    INTO total FROM (SELECT bool_and(pg_notify('crm_events', e.id::text) IS NULL) FROM e) n;
    RETURN total;
END $$;

INSERT INTO schema_version (version) VALUES (10) ON CONFLICT DO NOTHING;

-- Version 11: accounts for people and scripts (issue 17): the token epoch that ends sessions,
-- personal API tokens, password reset by e-mail.
-- A user's token epoch: every token (a login's JWT, an API token) carries the epoch it was made
-- in and is refused once the user's has moved on (lib/auth.c). Logout-all and a password change
-- move it, which ends every session and API token of the user at once.
ALTER TABLE users ADD COLUMN IF NOT EXISTS token_epoch bigint NOT NULL DEFAULT 0;

-- Replaces version 3's trigger: an epoch moved on also closes the user's SSE streams.
CREATE OR REPLACE TRIGGER users_notify AFTER UPDATE OF role, active, token_epoch ON users
    FOR EACH ROW WHEN (OLD.role IS DISTINCT FROM NEW.role OR OLD.active IS DISTINCT FROM NEW.active
                       OR OLD.token_epoch IS DISTINCT FROM NEW.token_epoch)
    EXECUTE FUNCTION crm_users_notify();

-- Personal API tokens: only the SHA-256 of the secret is kept (hex), found by that hash; hint is
-- the secret's first characters, for people to tell their tokens apart. A revoked token's row is
-- deleted. epoch is the user's token_epoch when it was made.
CREATE TABLE IF NOT EXISTS api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    scope        text NOT NULL CHECK (scope IN ('read', 'write')),
    token_hash   text NOT NULL UNIQUE,
    hint         text NOT NULL,
    epoch        bigint NOT NULL,
    expires_at   timestamptz,
    last_used_at timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS api_tokens_user ON api_tokens (user_id, id);

-- The API's Token object (never the secret nor its hash).
CREATE OR REPLACE FUNCTION crm_token_json(t api_tokens) RETURNS json
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT json_build_object('id', t.id, 'user_id', t.user_id, 'name', t.name,
              'scope', t.scope, 'hint', t.hint, 'created_at', crm_ts(t.created_at),
              'expires_at', crm_ts(t.expires_at), 'last_used_at', crm_ts(t.last_used_at)) $$;

-- Password resets: a row per request for an active account. crm-mailer makes the link's secret
-- when it sends the e-mail and keeps only its SHA-256 here (token_hash), so the secret is never
-- stored; a retried send makes a new one. Single use (used_at), an hour to use it.
CREATE TABLE IF NOT EXISTS password_resets (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash text UNIQUE,
    expires_at timestamptz NOT NULL DEFAULT now() + interval '1 hour',
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS password_resets_user ON password_resets (user_id) WHERE used_at IS NULL;
-- Their e-mails are the outbox's kind 'password_reset', in version 5's check of the kinds.

-- Fixed-window rate limits by key (a reset request per e-mail address and per client address):
-- counts the hit and returns 0 while the window holds at most max_hits, else the seconds until
-- it ends. A couple of day-old keys go with each call, so the table stays small.
CREATE TABLE IF NOT EXISTS rate_hits (
    key          text PRIMARY KEY,
    hits         integer NOT NULL,
    window_start timestamptz NOT NULL
);
CREATE OR REPLACE FUNCTION crm_rate_hit(k text, max_hits integer, window_secs integer)
    RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    r rate_hits;
BEGIN
    INSERT INTO rate_hits AS h (key, hits, window_start) VALUES (k, 1, now())
        ON CONFLICT (key) DO UPDATE SET
            hits = CASE WHEN h.window_start <= now() - make_interval(secs => window_secs)
                        THEN 1 ELSE h.hits + 1 END,
            window_start = CASE WHEN h.window_start <= now() - make_interval(secs => window_secs)
                                THEN now() ELSE h.window_start END
        RETURNING * INTO r;
    DELETE FROM rate_hits WHERE key IN (
        SELECT key FROM rate_hits WHERE window_start < now() - interval '1 day'
        ORDER BY window_start LIMIT 2 FOR UPDATE SKIP LOCKED);
    IF r.hits <= max_hits THEN
        RETURN 0;
    END IF;
    RETURN greatest(1, ceil(extract(epoch FROM
        r.window_start + make_interval(secs => window_secs) - now())))::integer;
END $$;

INSERT INTO schema_version (version) VALUES (11) ON CONFLICT DO NOTHING;

-- Version 12: webhooks (README "Webhooks"). An ADMIN registers an endpoint for event types; every
-- such event queues a delivery in the event's own transaction (an outbox, as mail_outbox), with
-- its message as SSE clients get it, so no event is lost whatever the daemon or the receiver do.
-- crm-webhooks claims an endpoint at a time (FOR UPDATE SKIP LOCKED, a lease) and delivers its
-- queue in event id order; the endpoint's row holds the retry state, as only its oldest pending
-- delivery is ever tried.
CREATE TABLE IF NOT EXISTS webhooks (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url             text NOT NULL CHECK (char_length(url) BETWEEN 8 AND 2000),
    events          text[] NOT NULL CHECK (cardinality(events) > 0),
    secret          text NOT NULL,
    active          boolean NOT NULL DEFAULT true,
    failures        integer NOT NULL DEFAULT 0,  -- failed attempts in a row
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz NOT NULL DEFAULT '-infinity',
    last_error      text,
    disabled_at     timestamptz,
    created_by      bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id   bigint NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id     bigint NOT NULL,
    event_type   text NOT NULL,
    body         text NOT NULL,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered')),
    attempts     integer NOT NULL DEFAULT 0,
    last_status  integer,  -- the HTTP status of the last attempt, if it got one
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_pending ON webhook_deliveries (webhook_id, event_id)
    WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id);

-- One delivery per subscribed active endpoint for each event of the statement.
CREATE OR REPLACE FUNCTION crm_webhooks_queue() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, body)
    SELECT w.id, e.id, e.type, crm_event_json(e)::text
      FROM new_events e JOIN webhooks w ON w.active AND e.type = ANY (w.events)
     ORDER BY w.id, e.id;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER events_webhooks AFTER INSERT ON events
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION crm_webhooks_queue();

-- The API representation of an endpoint (never its secret).
CREATE OR REPLACE FUNCTION crm_webhook_json(w webhooks) RETURNS json
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT json_build_object('id', w.id, 'url', w.url, 'events', w.events,
              'active', w.active, 'failures', w.failures, 'last_error', w.last_error,
              'disabled_at', crm_ts(w.disabled_at), 'created_by', crm_user_ref(w.created_by),
              'created_at', crm_ts(w.created_at),
              'pending', (SELECT count(*) FROM webhook_deliveries d
                           WHERE d.webhook_id = w.id AND d.status = 'pending')) $$;

CREATE OR REPLACE FUNCTION crm_webhook_delivery_json(d webhook_deliveries) RETURNS json
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT json_build_object('id', d.id, 'event_id', d.event_id, 'event_type', d.event_type,
              'status', d.status, 'attempts', d.attempts, 'last_status', d.last_status,
              'last_error', d.last_error, 'created_at', crm_ts(d.created_at),
              'delivered_at', crm_ts(d.delivered_at)) $$;

INSERT INTO schema_version (version) VALUES (12) ON CONFLICT DO NOTHING;

-- Version 13: the dashboard summaries' hot rows are striped (lead_totals, user_totals and
-- hourly_totals have a stripe in their keys; see "Dashboard summaries" in version 2's block,
-- where the tables of an older database are converted before the functions that write them).
INSERT INTO schema_version (version) VALUES (13) ON CONFLICT DO NOTHING;

-- Version 14: won_monthly (defined with won_daily above) filled from the days won so far. The
-- lock waits for lead writers that started with the old crm_apply_lead_deltas (which does not
-- keep won_monthly) and holds new ones until this commits; readers are not held. crm_won_between
-- gave way to crm_won_by_owner (and the index leads_won to leads_won_at), crm_leads_since and
-- crm_activities_since to crm_created_since.
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM schema_version WHERE version = 14) THEN
        LOCK TABLE leads IN SHARE MODE;
        DELETE FROM won_monthly;
        INSERT INTO won_monthly (user_id, month, won, won_value)
            SELECT user_id, date_trunc('month', day, 'UTC') AS m, sum(won), sum(won_value)
              FROM won_daily GROUP BY user_id, m HAVING sum(won) <> 0 OR sum(won_value) <> 0;
    END IF;
END $$;
DROP FUNCTION IF EXISTS crm_won_between(bigint, timestamptz, timestamptz);
DROP FUNCTION IF EXISTS crm_won_in(bigint, timestamptz, timestamptz);
DROP INDEX IF EXISTS leads_won;
DROP FUNCTION IF EXISTS crm_leads_since(timestamptz);
DROP FUNCTION IF EXISTS crm_activities_since(timestamptz);

INSERT INTO schema_version (version) VALUES (14) ON CONFLICT DO NOTHING;

-- Version 15: crm_created_since (above) counts from the hour boundary nearest to t.
INSERT INTO schema_version (version) VALUES (15) ON CONFLICT DO NOTHING;

-- Version 16: crm_ts STABLE, and crm_user_ref, crm_lead_json, crm_activity_json, crm_task_json
-- and crm_notification_json taking the users a read has joined (above), so that PostgreSQL
-- inlines them.
INSERT INTO schema_version (version) VALUES (16) ON CONFLICT DO NOTHING;
