"""crmctl against the test database: idempotent migrate, create-user with either password source."""
import contextlib
import functools
import os
import re
import select
import subprocess
import time

from conftest import CRMCTL, ENV, VAR, crmctl, env_file, login, sql, unique_email


def schema_versions():
    """The versions schema.sql records, in order."""
    with open(os.path.join(VAR, "schema.sql")) as f:
        return sorted(int(v) for v in re.findall(r"INSERT INTO schema_version \(version\) VALUES \((\d+)\)",
                                                   f.read()))


def again(tmp_path):
    """schema.sql with a comment added: another text, so migrate runs all of it again."""
    with open(os.path.join(VAR, "schema.sql")) as f:
        text = f.read()
    path = tmp_path / "again.sql"
    path.write_text(text + "\n-- applied again\n")
    os.chmod(tmp_path, 0o755)
    os.chmod(path, 0o644)
    return str(path)


def test_migrate_is_idempotent(tmp_path):
    """The stack's start applied schema.sql: the same text is not run again; another text (the
    same statements) runs all of them again and changes nothing."""
    versions = schema_versions()
    assert versions[:4] == [1, 2, 3, 4]
    before = sql("SELECT count(*) FROM users")
    for schema, skipped in ((os.path.join(VAR, "schema.sql"), True), (again(tmp_path), False)):
        r = crmctl("migrate", "--schema", schema)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert (lines[0] == "%s: applied before, not run again" % schema) == skipped
        lines = lines[1:] if skipped else lines
        assert lines[0] == "schema version %d" % versions[-1]
        assert lines[1].startswith("statements: ") and lines[1].endswith(" prepared")
        assert int(lines[1].split()[1]) >= 30
    assert sql("SELECT count(*) FROM users") == before
    assert sql("SELECT version FROM schema_version ORDER BY version") == [[str(v)] for v in versions]


@contextlib.contextmanager
def scratch_db(name):
    """A new, empty database beside the test one; yields its URL."""
    db = "crm_%s_%d" % (name, os.getpid())
    sql("CREATE DATABASE " + db)
    try:
        yield env_file()["DATABASE_URL"].replace("/crm?", "/%s?" % db)
    finally:
        sql("DROP DATABASE " + db)


def schema_before(tmp_path, version):
    """A file with schema.sql up to (not including) version; returns its path."""
    with open(os.path.join(VAR, "schema.sql")) as f:
        text = f.read().split("-- Version %d" % version)[0]
    path = tmp_path / ("before-v%d.sql" % version)
    path.write_text(text)
    os.chmod(tmp_path, 0o755)
    os.chmod(path, 0o644)
    return str(path)


def migrate(url, schema):
    return subprocess.run([CRMCTL, "migrate", "--schema", schema], capture_output=True,
                          text=True, env=dict(ENV, DATABASE_URL=url))


def test_migrate_refuses_a_schema_the_programs_do_not_fit(tmp_path):
    """A schema without version 2 and later (no leads, no login lockout) applies, but statements
    cannot prepare against it (the first in the table: user_get, which reads the token epoch of
    version 11), and migrate says so instead of letting the first request find out."""
    with scratch_db("v1") as url:
        r = migrate(url, schema_before(tmp_path, 2))
        assert r.returncode == 1
        assert r.stdout.splitlines() == ["schema version 1"]
        assert "prepare user_get" in r.stderr and "does not prepare" in r.stderr


def test_migrate_upgrades_an_existing_database(tmp_path):
    """A database of version 3, from before the login lockout, upgrades in place to the latest."""
    with scratch_db("v3") as url:
        assert migrate(url, schema_before(tmp_path, 4)).stdout.splitlines() == [
            "schema version 3"]
        r = migrate(url, os.path.join(VAR, "schema.sql"))
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[0] == "schema version %d" % schema_versions()[-1]


def scratch_psql(url, query):
    """psql's run of query in the scratch database at url (its exit status, output, errors)."""
    return subprocess.run(["psql", url, "-XtAq", "-v", "ON_ERROR_STOP=1", "-c", query],
                          capture_output=True, text=True)


def scratch_sql(url, query):
    r = scratch_psql(url, query)
    r.check_returncode()
    return r.stdout.split()


def test_migrate_to_the_search_column(tmp_path):
    """Version 8 replaces version 1's three trigram indexes with one lower-cased search column:
    the leads already there become searchable through it and the old indexes are dropped."""
    with scratch_db("v7") as url:
        # It applies, though this build's statements do not prepare against it.
        r = migrate(url, schema_before(tmp_path, 8))
        assert r.stdout.splitlines()[0] == "schema version %d" % max(
            v for v in schema_versions() if v < 8)
        scratch_sql(url, "CREATE INDEX leads_name_trgm ON leads USING gin (name gin_trgm_ops);"
                         " INSERT INTO users (name, email, password_hash, role)"
                         " VALUES ('A', 'a@x.example', 'x', 'ADMIN');"
                         " INSERT INTO leads (name, email, company, created_by)"
                         " SELECT 'Old Lead', 'Old@Mail.example', 'Acme', id FROM users")
        r = migrate(url, os.path.join(VAR, "schema.sql"))
        assert r.returncode == 0, r.stderr
        assert scratch_sql(url, "SELECT search = E'old lead\\x1fold@mail.example\\x1facme'"
                                " FROM leads") == ["t"]
        assert scratch_sql(url, "SELECT indexname FROM pg_indexes WHERE indexname LIKE"
                                " 'leads_%trgm' ORDER BY 1") == ["leads_search_trgm"]


def test_migrate_to_tasks_keeps_the_rows_and_widens_the_checks(tmp_path):
    """Version 4 with rows in it (a welcome e-mail, a lead, its activity and event) upgrades to 5
    (tasks): the rows stay, the outbox, timeline and events take the new kinds, and a second
    migrate changes nothing."""
    with scratch_db("v4") as url:
        assert migrate(url, schema_before(tmp_path, 5)).stdout.splitlines() == [
            "schema version 4"]

        q = functools.partial(scratch_psql, url)

        seed = q("INSERT INTO users (name, email, password_hash, role) VALUES ('A', 'a@b.io',"
                 " 'x', 'ADMIN'); INSERT INTO mail_outbox (kind, to_addr, to_name)"
                 " VALUES ('welcome', 'a@b.io', 'A'); INSERT INTO leads (name, created_by)"
                 " VALUES ('L', 1); INSERT INTO activities (lead_id, type, actor_id)"
                 " VALUES (1, 'CREATED', 1); INSERT INTO events (type, lead_id, actor_id,"
                 " payload) VALUES ('lead.created', 1, 1, '{}')")
        assert seed.returncode == 0, seed.stderr
        # Version 4 refuses what version 5 brings.
        assert q("INSERT INTO events (type, lead_id, actor_id, payload)"
                 " VALUES ('task.due', 1, 1, '{}')").returncode != 0
        checks = []
        for schema in (os.path.join(VAR, "schema.sql"), again(tmp_path)):
            r = migrate(url, schema)
            assert r.returncode == 0, r.stderr
            assert r.stdout.splitlines()[0] == "schema version %d" % schema_versions()[-1]
            checks.append(q("SELECT oid FROM pg_constraint WHERE conname IN ('events_type_check',"
                            " 'activities_type_check', 'mail_outbox_kind_check') ORDER BY 1").stdout)
        assert len(checks[0].split()) == 3
        assert checks[0] == checks[1]  # the second migrate left the constraints (no table scan)
        rows = q("SELECT (SELECT count(*) FROM mail_outbox WHERE data = '{}'),"
                 " (SELECT count(*) FROM activities), (SELECT count(*) FROM events),"
                 " (SELECT count(*) FROM tasks)")
        assert rows.stdout.strip() == "1|1|1|0"
        added = q("INSERT INTO tasks (lead_id, user_id, title, due_at, created_by)"
                  " VALUES (1, 1, 'T', now(), 1); INSERT INTO mail_outbox (kind, to_addr,"
                  " to_name) VALUES ('task_due', 'a@b.io', 'A'); INSERT INTO activities"
                  " (lead_id, type, actor_id) VALUES (1, 'TASK_COMPLETED', 1); INSERT INTO"
                  " events (type, lead_id, actor_id, payload) VALUES ('task.due', 1, 1, '{}')")
        assert added.returncode == 0, added.stderr
        assert q("INSERT INTO mail_outbox (kind, to_addr, to_name)"
                 " VALUES ('spam', 'a@b.io', 'A')").returncode != 0


def test_migrate_upgrades_to_field_history(tmp_path):
    """A database from before versions 5 and 6 with a timeline and events: it takes UPDATED
    activities afterwards, its old activities and events read as before (no activity on old
    events), and a second migrate leaves the type check as it is (no new scan of the
    activities)."""
    with scratch_db("v4h") as url:
        assert migrate(url, schema_before(tmp_path, 5)).stdout.splitlines() == [
            "schema version 4"]

        q = functools.partial(scratch_psql, url)

        r = q("INSERT INTO users (name, email, password_hash, role) VALUES ('A', 'a@x.io', 'x',"
              " 'ADMIN'); INSERT INTO leads (name, created_by) VALUES ('L', 1);"
              " INSERT INTO activities (lead_id, type, actor_id) VALUES (1, 'CREATED', 1);"
              " INSERT INTO events (type, lead_id, actor_id, payload)"
              " VALUES ('lead.created', 1, 1, '{}')")
        assert r.returncode == 0, r.stderr
        assert "activities_type_check" in q("INSERT INTO activities (lead_id, type, actor_id)"
                                            " VALUES (1, 'UPDATED', 1)").stderr
        r = migrate(url, os.path.join(VAR, "schema.sql"))
        assert r.returncode == 0, r.stderr
        oid = q("SELECT oid FROM pg_constraint WHERE conname = 'activities_type_check'").stdout
        assert migrate(url, again(tmp_path)).returncode == 0
        assert q("SELECT oid FROM pg_constraint WHERE conname = 'activities_type_check'"
                 ).stdout == oid
        r = q("INSERT INTO activities (lead_id, type, actor_id) VALUES (1, 'UPDATED', 1)")
        assert r.returncode == 0, r.stderr
        assert "activity" not in q("SELECT crm_event_json(e) FROM events e").stdout
        assert q("SELECT crm_lead_changes(a, b) FROM leads a, leads b").stdout.strip() == "[]"


def test_migrate_fills_the_monthly_wins_from_the_daily_ones(tmp_path):
    """Version 14 adds won_monthly: a database from before it, with wins in two months and a
    lost lead, gets each owner's months filled from the days already won (the table it had
    none of is empty until then), and a second migrate does not count them twice."""
    with scratch_db("v13w") as url:
        r = migrate(url, schema_before(tmp_path, 14))
        assert r.stdout.splitlines()[0] == "schema version %d" % max(
            v for v in schema_versions() if v < 14)
        q = functools.partial(scratch_sql, url)
        q("INSERT INTO users (name, email, password_hash, role) VALUES ('A', 'a@x.io', 'x',"
          " 'SALES_EXECUTIVE');"
          " INSERT INTO leads (name, created_by, owner_id, status, value, won_at) VALUES"
          " ('a', 1, 1, 'WON', 10, '2024-01-31T23:59:59Z'), ('b', 1, 1, 'WON', 5, '2024-01-02Z'),"
          " ('c', 1, 1, 'WON', 7, '2024-02-01Z'), ('d', 1, 1, 'LOST', 100, NULL);"
          " DELETE FROM won_monthly")
        assert q("SELECT count(*) FROM won_daily") == ["3"]
        for schema in (os.path.join(VAR, "schema.sql"), again(tmp_path)):
            r = migrate(url, schema)
            assert r.returncode == 0, r.stderr
            assert q("SELECT month::date || '/' || won || '/' || won_value FROM won_monthly"
                     " ORDER BY month") == ["2024-01-01/2/15.00", "2024-02-01/1/7.00"]
        assert q("SELECT count(*) FROM pg_proc WHERE proname = 'crm_won_between'") == ["0"]


@contextlib.contextmanager
def reader(url):
    """A transaction reading leads, as a running program's would, held open until the block
    ends; yields its psql process."""
    p = subprocess.Popen(["psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1"], text=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    p.stdin.write("BEGIN;\nLOCK TABLE leads IN ACCESS SHARE MODE;\n\\echo locked\n")
    p.stdin.flush()
    assert p.stdout.readline().strip() == "locked"
    try:
        yield p
    finally:
        p.stdin.close()
        p.wait(timeout=10)


def read_until(stream, text, seconds):
    """What stream said until it said text, or until seconds passed."""
    said, end = "", time.monotonic() + seconds
    while text not in said and select.select([stream], [], [], max(0, end - time.monotonic()))[0]:
        line = stream.readline()
        if not line:
            break
        said += line
    return said


def test_migrate_of_an_applied_schema_takes_no_lock(tmp_path):
    """Restarting against running programs: the schema they run on is not applied again, so
    migrate does not wait for (or deadlock with) their transactions. It once ran every ALTER
    TABLE again, waiting here for the reader to end."""
    with scratch_db("lock") as url:
        assert migrate(url, os.path.join(VAR, "schema.sql")).returncode == 0
        with reader(url):
            r = subprocess.run([CRMCTL, "migrate", "--schema", os.path.join(VAR, "schema.sql")],
                               capture_output=True, text=True, env=dict(ENV, DATABASE_URL=url),
                               timeout=30)
            assert r.returncode == 0, r.stderr
            assert "applied before, not run again" in r.stdout


def test_migrate_of_a_new_schema_waits_for_the_programs(tmp_path):
    """A new schema against running programs: a table held past lock_timeout rolls the schema
    back and tries again (no program waits behind it for longer than that), and it is applied
    once the table is free."""
    with scratch_db("wait") as url:
        assert migrate(url, os.path.join(VAR, "schema.sql")).returncode == 0
        with reader(url) as holder:
            p = subprocess.Popen([CRMCTL, "migrate", "--schema", again(tmp_path)], text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 env=dict(ENV, DATABASE_URL=url))
            said = read_until(p.stderr, "trying again (2 of 15)", 30)
            holder.stdin.write("COMMIT;\n")
            holder.stdin.flush()
            out, err = p.communicate(timeout=30)
            assert "lock timeout" in said and "trying again (2 of 15)" in said, said + err
            assert p.returncode == 0, err
            assert out.splitlines()[0] == "schema version %d" % schema_versions()[-1]
        assert scratch_sql(url, "SELECT count(*) FROM schema_applied") == ["2"]


def test_migrate_to_csv_import(tmp_path):
    """A database from before version 10, with an event, upgrades: events take leads.imported
    without a lead, the old event stays, duplicates find an index, and a second migrate leaves
    the type check alone."""
    with scratch_db("v10") as url:
        assert migrate(url, schema_before(tmp_path, 10)).stdout.splitlines()[0].startswith(
            "schema version")

        q = functools.partial(scratch_psql, url)

        r = q("INSERT INTO users (name, email, password_hash, role) VALUES ('A', 'a@x.io', 'x',"
              " 'ADMIN'); INSERT INTO leads (name, created_by) VALUES ('L', 1);"
              " INSERT INTO events (type, lead_id, actor_id, payload)"
              " VALUES ('lead.created', 1, 1, '{}')")
        assert r.returncode == 0, r.stderr
        imported = ("INSERT INTO events (type, lead_id, owner_id, actor_id, payload)"
                    " VALUES ('leads.imported', NULL, 1, 1, '{\"count\": 2}')")
        assert q(imported).returncode != 0
        r = migrate(url, os.path.join(VAR, "schema.sql"))
        assert r.returncode == 0, r.stderr
        oid = q("SELECT oid FROM pg_constraint WHERE conname = 'events_type_check'").stdout
        assert migrate(url, again(tmp_path)).returncode == 0
        assert q("SELECT oid FROM pg_constraint WHERE conname = 'events_type_check'"
                 ).stdout == oid
        r = q(imported)
        assert r.returncode == 0, r.stderr
        assert q("SELECT type, lead_id FROM events ORDER BY id").stdout.split() == [
            "lead.created|1", "leads.imported|"]
        assert q("SELECT count(*) FROM pg_indexes WHERE indexname = 'leads_email_lower'"
                 ).stdout.strip() == "1"


def test_migrate_to_the_inbox_fills_it_from_the_events_once(tmp_path):
    """A database of version 8 with events upgrades to 9 (the notification inbox): the events it
    holds fill the inboxes they concern (an assignment: the new and the previous owner, not the
    actor), later events fill them as they are written, and a second migrate neither adds rows
    nor undoes a read."""
    with scratch_db("v8") as url:
        r = migrate(url, schema_before(tmp_path, 9))
        assert r.stdout.splitlines()[0] == "schema version 8"
        scratch_sql(url, "INSERT INTO users (name, email, password_hash, role) VALUES"
                         " ('M', 'm@x.example', 'x', 'MANAGER'), ('A', 'a@x.example', 'x',"
                         " 'SALES_EXECUTIVE'), ('B', 'b@x.example', 'x', 'SALES_EXECUTIVE');"
                         " INSERT INTO leads (name, owner_id, created_by) VALUES ('L', 3, 1);"
                         " INSERT INTO events (type, lead_id, owner_id, prev_owner_id, actor_id,"
                         " payload) VALUES ('lead.assigned', 1, 3, 2, 1, '{}'),"
                         " ('lead.updated', 1, 3, NULL, 1, '{}')")
        inbox = "SELECT user_id || ':' || event_id || ':' || reason || ':' ||" \
                " CASE WHEN read_at IS NULL THEN 'unread' ELSE 'read' END" \
                " FROM notifications ORDER BY user_id, event_id"
        expected = ["2:1:UNASSIGNED:unread", "3:1:ASSIGNED:unread"]
        # The second time another text: all of it runs again (the same text would not).
        for schema in (os.path.join(VAR, "schema.sql"), again(tmp_path)):
            r = migrate(url, schema)
            assert r.returncode == 0, r.stderr
            assert r.stdout.splitlines()[0] == "schema version %d" % schema_versions()[-1]
            assert scratch_sql(url, inbox) == expected
            scratch_sql(url, "UPDATE notifications SET read_at = now() WHERE user_id = 2")
            expected = ["2:1:UNASSIGNED:read", "3:1:ASSIGNED:unread"]
        # From now on, the trigger: an activity by the manager on B's lead.
        scratch_sql(url, "INSERT INTO events (type, lead_id, owner_id, actor_id, payload)"
                         " VALUES ('activity.created', 1, 3, 1, '{}')")
        assert scratch_sql(url, inbox) == expected + ["3:3:ACTIVITY:unread"]


# Each summary added up by its key, in either layout (a row per key, or per key and stripe).
TOTALS = ("SELECT status, sum(leads), round(sum(value), 2) FROM lead_totals GROUP BY 1 ORDER BY 1;"
          " SELECT user_id, sum(leads), sum(won), round(sum(won_value), 2), sum(activities)"
          " FROM user_totals GROUP BY 1 ORDER BY 1;"
          " SELECT hour, sum(leads), sum(activities) FROM hourly_totals GROUP BY 1 ORDER BY 1")
# The same counted from the leads and activities themselves.
RECOUNT = ("SELECT s, count(l.id), round(coalesce(sum(l.value), 0), 2)"
           " FROM unnest(ARRAY['CONTACTED', 'LOST', 'NEGOTIATION', 'NEW', 'PROPOSAL', 'QUALIFIED', 'WON']) s"
           " LEFT JOIN leads l ON l.status = s GROUP BY 1 ORDER BY 1;"
           " SELECT u.id, (SELECT count(*) FROM leads WHERE owner_id = u.id),"
           " (SELECT count(*) FROM leads WHERE owner_id = u.id AND status = 'WON'),"
           " (SELECT round(coalesce(sum(value), 0), 2) FROM leads WHERE owner_id = u.id"
           " AND status = 'WON'),"
           " (SELECT count(*) FROM activities WHERE actor_id = u.id) FROM users u ORDER BY 1;"
           " SELECT h, sum(l), sum(a) FROM (SELECT date_trunc('hour', created_at, 'UTC') h, 1 l,"
           " 0 a FROM leads UNION ALL SELECT date_trunc('hour', created_at, 'UTC'), 0, 1"
           " FROM activities) x GROUP BY 1 ORDER BY 1")


def test_migrate_stripes_the_summaries_and_keeps_their_totals(tmp_path):
    """A database of version 12, whose summaries have one row per key (their tables and writers
    as version 12 had them: schema_v12_totals.sql), with leads, activities and their totals,
    upgrades to 13: the summary tables take their stripe in their keys, the totals stay as they
    were, later writes add to them, and a second migrate changes nothing."""
    with scratch_db("v12") as url:
        q = functools.partial(scratch_sql, url)
        assert migrate(url, os.path.join(VAR, "schema.sql")).returncode == 0
        with open(os.path.join(os.path.dirname(__file__), "schema_v12_totals.sql")) as f:
            q(f.read())
        q("INSERT INTO users (name, email, password_hash, role) VALUES ('A', 'a@x.io', 'x',"
          " 'ADMIN'), ('S', 's@x.io', 'x', 'SALES_EXECUTIVE');"
          " INSERT INTO leads (name, status, won_at, value, owner_id, created_by) VALUES"
          " ('L1', 'NEW', NULL, 10.5, 2, 1), ('L2', 'WON', now(), 99, 2, 1),"
          " ('L3', 'LOST', NULL, 3, NULL, 1);"
          " INSERT INTO activities (lead_id, type, actor_id) SELECT id, 'CREATED', 1 FROM leads;"
          " INSERT INTO activities (lead_id, type, actor_id) VALUES (1, 'CALL', 2);"
          " DELETE FROM leads WHERE name = 'L3'")
        before = q(TOTALS)
        assert before == q(RECOUNT) and "2|2|1|99.00|1" in before
        for schema in (os.path.join(VAR, "schema.sql"), again(tmp_path)):
            r = migrate(url, schema)
            assert r.returncode == 0, r.stderr
            assert r.stdout.splitlines()[0] == "schema version %d" % schema_versions()[-1]
            assert q("SELECT conrelid::regclass || ':' || pg_get_constraintdef(oid)"
                     " FROM pg_constraint WHERE contype = 'p' AND conrelid IN"
                     " ('lead_totals'::regclass, 'user_totals'::regclass,"
                     " 'hourly_totals'::regclass) ORDER BY 1") == [
                "hourly_totals:PRIMARY", "KEY", "(hour,", "stripe)",
                "lead_totals:PRIMARY", "KEY", "(status,", "stripe)",
                "user_totals:PRIMARY", "KEY", "(user_id,", "stripe)"]
            assert q(TOTALS) == before
        q("INSERT INTO leads (name, owner_id, created_by) VALUES ('L4', 2, 2);"
          " INSERT INTO activities (lead_id, type, actor_id) VALUES (1, 'NOTE', 2);"
          " UPDATE leads SET status = 'WON', won_at = now() WHERE name = 'L1'")
        assert q(TOTALS) == q(RECOUNT) != before


def test_create_user_generated_password():
    email = unique_email("ctl")
    r = crmctl("create-user", "--role", "MANAGER", "--email", email, "--name", "Mo")
    assert r.returncode == 0, r.stderr
    lines = dict(line.split("=", 1) for line in r.stdout.splitlines())
    assert lines["email"] == email and len(lines["password"]) >= 16
    res = login(email, lines["password"])
    assert res.status == 200 and res.json["user"]["role"] == "MANAGER"


def test_create_user_password_from_stdin():
    email = unique_email("ctl")
    r = crmctl("create-user", "--role", "SALES_EXECUTIVE", "--email", email, "--name", "Sam",
               "--password-stdin", stdin="a-long-password\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""  # nothing secret printed
    assert login(email, "a-long-password").status == 200


def test_create_user_refuses_bad_input():
    for args in (["--role", "KING", "--email", unique_email(), "--name", "X"],
                 ["--role", "ADMIN", "--email", "nope", "--name", "X"],
                 ["--role", "ADMIN", "--email", unique_email()]):
        r = crmctl("create-user", *args)
        assert r.returncode == 2, (args, r.stderr)
    r = crmctl("create-user", "--role", "ADMIN", "--email", unique_email(), "--name", "X",
               "--password-stdin", stdin="short\n")
    assert r.returncode == 2 and "8 to 72 bytes" in r.stderr


def test_refuses_unsafe_config():
    r = subprocess.run([CRMCTL, "migrate"], capture_output=True, text=True,
                       env=dict(ENV, JWT_SECRET="too-short"))
    assert r.returncode == 1
    assert r.stderr.strip() == "crmctl: JWT_SECRET is shorter than 32 bytes"


def test_worker_refuses_unsafe_config():
    r = subprocess.run([os.path.join(VAR, "bin", "crm-auth")], capture_output=True, text=True,
                       env=dict(ENV, DATABASE_URL="mysql://db/crm"), stdin=subprocess.DEVNULL)
    assert r.returncode == 1
    assert r.stderr.strip() == "crm-auth: DATABASE_URL must be a postgresql:// URL"


def test_seed_goes_in_chunks_that_add_up():
    """crmctl seed writes --chunk leads (and their activities) per COPY (100 000 unless told), so
    no statement trigger sees millions of rows at once: 25 000 leads in chunks of 10 000 are three
    chunks, the last one partial. Every
    lead of every chunk is there once (its number in its e-mail address), with its CREATED
    activity, and the summaries count them all."""
    with scratch_db("chunks") as url:
        assert migrate(url, os.path.join(VAR, "schema.sql")).returncode == 0
        r = subprocess.run([CRMCTL, "seed", "--leads", "25000", "--users", "5", "--seed", "3",
                            "--chunk", "10000"],
                           capture_output=True, text=True, env=dict(ENV, DATABASE_URL=url))
        assert r.returncode == 0, r.stderr
        assert scratch_sql(url, "SELECT count(*) || '/' || count(DISTINCT n) || '/' || min(n)"
                                " || '/' || max(n) FROM (SELECT substring(email FROM"
                                " '\\.(\\d+)@')::int AS n FROM leads) x") == ["25000/25000/0/24999"]
        assert scratch_sql(url, "SELECT count(DISTINCT lead_id) FROM activities"
                                " WHERE type = 'CREATED'") == ["25000"]
        assert scratch_sql(url, "SELECT sum(leads) FROM lead_totals") == ["25000"]


def test_seed_timelines_run_forwards_in_time():
    """crmctl seed: a timeline lists a lead's activities newest first by the order they were
    added, so the seeded ones must have happened in that order too (or the demo's timelines
    jump back and forth in time), between the lead's creation and now."""
    with scratch_db("seed") as url:
        assert migrate(url, os.path.join(VAR, "schema.sql")).returncode == 0
        r = subprocess.run([CRMCTL, "seed", "--leads", "60", "--users", "4", "--seed", "7"],
                           capture_output=True, text=True, env=dict(ENV, DATABASE_URL=url))
        assert r.returncode == 0, r.stderr
        out = subprocess.run(
            ["psql", url, "-XtAq", "-F", "|", "-c",
             "SELECT count(*), count(*) FILTER (WHERE a.occurred_at < lag),"
             " count(*) FILTER (WHERE a.occurred_at < l.created_at OR a.occurred_at > now())"
             " FROM (SELECT *, lag(occurred_at) OVER (PARTITION BY lead_id ORDER BY id)"
             " FROM activities) a JOIN leads l ON l.id = a.lead_id"],
            capture_output=True, text=True, check=True).stdout
        total, backwards, outside = (int(x) for x in out.strip().split("|"))
        assert total > 60 * 3, total  # about ten a lead: the check saw real timelines
        assert (backwards, outside) == (0, 0)


def test_seed_rebuilding_the_indexes_leaves_them_as_they_were():
    """crmctl seed --indexes rebuild drops the indexes of leads and activities that check nothing
    and builds them again at the end: every index is there after, with the same definition, valid,
    and the unique ones checked the rows as they went in. A value but keep or rebuild is refused."""
    indexes = ("SELECT string_agg(d || ' ' || v, E'\\n' ORDER BY d) FROM (SELECT"
               " pg_get_indexdef(i.indexrelid) AS d, i.indisvalid AS v FROM pg_index i"
               " WHERE i.indrelid IN ('leads'::regclass, 'activities'::regclass)) x")
    with scratch_db("rebuild") as url:
        assert migrate(url, os.path.join(VAR, "schema.sql")).returncode == 0
        before = " ".join(scratch_sql(url, indexes))
        assert "gin_trgm_ops" in before and "false" not in before
        r = subprocess.run([CRMCTL, "seed", "--leads", "3000", "--users", "4", "--seed", "5",
                            "--chunk", "1000", "--indexes", "rebuild"],
                           capture_output=True, text=True, env=dict(ENV, DATABASE_URL=url))
        assert r.returncode == 0, r.stderr
        assert " ".join(scratch_sql(url, indexes)) == before
        assert scratch_sql(url, "SELECT count(*) FROM leads") == ["3000"]
        assert scratch_sql(url, "SELECT count(DISTINCT lead_id) FROM activities") == ["3000"]
        assert scratch_sql(url, "SELECT sum(leads) FROM lead_totals") == ["3000"]
        # The rebuilt trigram index finds what a scan of the table finds.
        for term in ("okafor", "acme", "müller"):
            count = "SELECT count(*) FROM leads WHERE search LIKE '%%%s%%'" % term
            by_index = scratch_sql(url, "SET enable_seqscan = off; " + count)
            assert by_index == scratch_sql(url, "SET enable_bitmapscan = off; " + count)
            assert int(by_index[0]) > 0
        bad = subprocess.run([CRMCTL, "seed", "--leads", "10", "--users", "2", "--indexes",
                              "drop"], capture_output=True, text=True,
                             env=dict(ENV, DATABASE_URL=url))
        assert bad.returncode == 2 and "Usage" in bad.stderr
