-- The dashboard summaries as schema version 12 had them (one row per key, no stripe), for
-- test_crmctl.py's upgrade to version 13: run on a database of this release, it puts the three
-- tables and their writers back as they were, and forgets version 13, so that crmctl migrate
-- finds a version 12 database. The definitions below are version 12's, verbatim: do not edit.
DROP TABLE lead_totals, user_totals, hourly_totals;
DROP FUNCTION crm_apply_activity_deltas, crm_stripe_lock, crm_stripe;
DELETE FROM schema_version WHERE version = 13;
DELETE FROM schema_applied;

CREATE TABLE IF NOT EXISTS lead_totals (
    status text PRIMARY KEY,
    leads  bigint NOT NULL DEFAULT 0,
    value  numeric NOT NULL DEFAULT 0
);
INSERT INTO lead_totals (status)
    SELECT unnest(ARRAY['NEW', 'CONTACTED', 'QUALIFIED', 'PROPOSAL', 'NEGOTIATION', 'WON', 'LOST'])
    ON CONFLICT DO NOTHING;

CREATE TABLE IF NOT EXISTS user_totals (
    user_id    bigint PRIMARY KEY REFERENCES users (id),
    leads      bigint NOT NULL DEFAULT 0,  -- leads owned
    won        bigint NOT NULL DEFAULT 0,  -- of them WON
    won_value  numeric NOT NULL DEFAULT 0,
    activities bigint NOT NULL DEFAULT 0   -- activities logged by the user
);

CREATE TABLE IF NOT EXISTS hourly_totals (
    hour       timestamptz PRIMARY KEY,  -- UTC hour
    leads      bigint NOT NULL DEFAULT 0,  -- leads created in it
    activities bigint NOT NULL DEFAULT 0   -- activities created in it
);

CREATE OR REPLACE FUNCTION crm_apply_lead_deltas(ds crm_lead_delta[]) RETURNS void
    LANGUAGE sql AS $$
    INSERT INTO lead_totals AS t (status, leads, value)
        SELECT status, sum(n), sum(n * value) FROM unnest(ds) GROUP BY status
        HAVING sum(n) <> 0 OR sum(n * value) <> 0 ORDER BY status
        ON CONFLICT (status) DO UPDATE
            SET leads = t.leads + excluded.leads, value = t.value + excluded.value;
    INSERT INTO user_totals AS t (user_id, leads, won, won_value)
        SELECT owner_id, sum(n), coalesce(sum(n) FILTER (WHERE status = 'WON'), 0),
               coalesce(sum(n * value) FILTER (WHERE status = 'WON'), 0)
        FROM unnest(ds) WHERE owner_id IS NOT NULL GROUP BY owner_id
        HAVING sum(n) <> 0 OR sum(n * value) <> 0
            OR coalesce(sum(n) FILTER (WHERE status = 'WON'), 0) <> 0 ORDER BY owner_id
        ON CONFLICT (user_id) DO UPDATE
            SET leads = t.leads + excluded.leads, won = t.won + excluded.won,
                won_value = t.won_value + excluded.won_value;
    INSERT INTO hourly_totals AS t (hour, leads)
        SELECT hour, sum(n) FROM unnest(ds) GROUP BY hour HAVING sum(n) <> 0 ORDER BY hour
        ON CONFLICT (hour) DO UPDATE SET leads = t.leads + excluded.leads;
    INSERT INTO won_daily AS t (user_id, day, won, won_value)
        SELECT owner_id, won_day, sum(n), sum(n * value) FROM unnest(ds)
        WHERE won_day IS NOT NULL AND owner_id IS NOT NULL GROUP BY owner_id, won_day
        HAVING sum(n) <> 0 OR sum(n * value) <> 0 ORDER BY owner_id, won_day
        ON CONFLICT (user_id, day) DO UPDATE
            SET won = t.won + excluded.won, won_value = t.won_value + excluded.won_value;
$$;

CREATE OR REPLACE FUNCTION crm_activities_totals() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO user_totals AS t (user_id, activities)
            SELECT actor_id, count(*) FROM new_rows GROUP BY actor_id ORDER BY actor_id
            ON CONFLICT (user_id) DO UPDATE SET activities = t.activities + excluded.activities;
        INSERT INTO hourly_totals AS t (hour, activities)
            SELECT date_trunc('hour', created_at, 'UTC') AS h, count(*) FROM new_rows
            GROUP BY h ORDER BY h
            ON CONFLICT (hour) DO UPDATE SET activities = t.activities + excluded.activities;
    ELSE
        UPDATE user_totals t SET activities = t.activities - d.n
            FROM (SELECT actor_id, count(*) AS n FROM old_rows GROUP BY actor_id) d
            WHERE t.user_id = d.actor_id;
        UPDATE hourly_totals t SET activities = t.activities - d.n
            FROM (SELECT date_trunc('hour', created_at, 'UTC') AS h, count(*) AS n
                  FROM old_rows GROUP BY h) d
            WHERE t.hour = d.h;
    END IF;
    RETURN NULL;
END $$;
