"""crmctl backup and restore on the real stack: backup, wipe, restore gives back every row."""
import os
import stat
import subprocess
import time

from conftest import ROOT, register, request, sql
from test_crmctl import CRMCTL, ENV, crmctl

DAEMONS = ["crm-auth", "crm-login", "crm-leads", "crm-dashboard", "crm-events", "crm-mailer"]


def stack(*args):
    subprocess.run([os.path.join(ROOT, "scripts", "stack.sh"), *args], check=True,
                   capture_output=True)


def snapshot():
    """Every row of every table (as text, sorted) and every sequence's position."""
    tables = [r[0] for r in sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                                " ORDER BY 1")]
    rows = {t: sql("SELECT t::text FROM %s t ORDER BY 1" % t) for t in tables}
    seqs = sql("SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'"
               " ORDER BY 1")
    return rows, seqs


def wait_healthy():
    """Until every pool answers: the supervisor starts the released daemons one after the other,
    so crm-auth's /api/health may answer while crm-leads is not listening yet (a 503 from nginx;
    unauthenticated, a pool that is up answers 401)."""
    deadline = time.time() + 30
    while time.time() < deadline:
        if (request("GET", "/api/health").status == 200
                and request("GET", "/api/leads").status == 401
                and request("GET", "/api/dashboard/stats").status == 401):
            return
        time.sleep(0.2)
    raise AssertionError("the stack did not come back")


def some_data(admin):
    """A user (its outbox row), a lead of its, an activity by the ADMIN, their events and the
    user's notifications of them."""
    r = register()
    assert r.status == 201, r.text
    lead = request("POST", "/api/leads", {"name": "Backup Co", "email": "b@backup.example",
                                          "value": 42.5, "owner_id": r.json["user"]["id"]},
                   token=admin["token"])
    assert lead.status == 201, lead.text
    lead_id = lead.json["lead"]["id"]
    r = request("POST", "/api/leads/%d/activity" % lead_id, {"type": "NOTE", "content": "kept"},
                token=admin["token"])
    assert r.status == 201, r.text
    return lead_id


def test_backup_wipe_restore_round_trip(admin, tmp_path):
    lead_id = some_data(admin)
    dump = str(tmp_path / "crm.dump")
    # As README "Backups" says: the writers stop for a restore (and here for the backup too, so
    # that nothing changes between the snapshot and the dump).
    for d in DAEMONS:
        stack("hold", d)
    try:
        before = snapshot()
        for t in ("users", "leads", "activities", "events", "mail_outbox", "notifications"):
            assert before[0][t], t + " is empty: the round trip would show nothing"
        r = crmctl("backup", dump)
        assert r.returncode == 0, r.stderr
        assert stat.S_IMODE(os.stat(dump).st_mode) == 0o600
        sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        assert snapshot() == ({}, [])
        r = crmctl("restore", dump)
        assert r.returncode == 0, r.stderr
        assert snapshot() == before
    finally:
        for d in DAEMONS:
            stack("release", d)
    wait_healthy()
    # It serves what was restored, and new rows do not collide with restored ids.
    r = request("GET", "/api/leads/%d" % lead_id, token=admin["token"])
    assert r.status == 200, r.text
    assert r.json["lead"]["name"] == "Backup Co"
    assert [a["content"] for a in r.json["activities"] if a.get("content") == "kept"]
    r = request("POST", "/api/leads", {"name": "After restore"}, token=admin["token"])
    assert r.status == 201, r.text
    assert r.json["lead"]["id"] > lead_id


def test_restore_refuses_a_bad_file(tmp_path):
    before = snapshot()
    bad = tmp_path / "bad.dump"
    bad.write_bytes(b"PGDMP but not really a dump\n" * 10)
    for path in (str(bad), str(tmp_path / "missing.dump")):
        r = crmctl("restore", "--clean", path)
        assert r.returncode == 1
        assert "is not a readable backup" in r.stderr and "nothing was changed" in r.stderr
    assert snapshot() == before


def test_restore_refuses_a_database_that_is_not_empty(tmp_path):
    dump = str(tmp_path / "crm.dump")
    assert crmctl("backup", dump).returncode == 0
    r = crmctl("restore", dump)
    assert r.returncode == 1
    assert "the database is not empty" in r.stderr and "--clean" in r.stderr


def test_backup_passes_the_password_in_the_environment(tmp_path):
    """The password of DATABASE_URL reaches pg_dump as PGPASSWORD, not on its command line
    (which every local user can read in ps). A pg_dump of our own records what it got."""
    fake = tmp_path / "pg_dump"
    seen = tmp_path / "seen"
    fake.write_text("#!/bin/sh\nprintf 'argv=%%s\\n' \"$*\" >%s\nprintf 'env=%%s\\n' "
                    "\"$PGPASSWORD\" >>%s\nexit 3\n" % (seen, seen))
    fake.chmod(0o755)
    url = "postgresql://crm:s3cret-pw@localhost/crm"
    r = subprocess.run([CRMCTL, "backup", str(tmp_path / "x.dump")], capture_output=True,
                       text=True, env=dict(ENV, DATABASE_URL=url,
                                           PATH="%s:%s" % (tmp_path, os.environ["PATH"])))
    assert r.returncode == 1 and "no backup written" in r.stderr
    got = dict(line.split("=", 1) for line in seen.read_text().splitlines())
    assert "s3cret-pw" not in got["argv"] and "user='crm'" in got["argv"]
    assert got["env"] == "s3cret-pw"
    assert not os.path.exists(tmp_path / "x.dump")
