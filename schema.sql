-- schema.sql: the whole Next-Gen CRM database schema.
-- Idempotent: `crmctl migrate` applies it on every start and upgrade; every statement is
-- CREATE ... IF NOT EXISTS or CREATE OR REPLACE, and schema_version records what is in place.

CREATE TABLE IF NOT EXISTS schema_version (
    version    integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- RFC 3339 UTC with milliseconds, the one time format of the API.
CREATE OR REPLACE FUNCTION crm_ts(t timestamptz) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
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
