"""The welcome e-mail through the outbox: crm-mailer against a real SMTP server on loopback
(aiosmtpd, see conftest). The test stack runs with MAIL_RETRY_SECONDS=1, MAIL_MAX_ATTEMPTS=3."""
import email
import email.header
import email.policy
import os
import pathlib
import signal
import subprocess
import time
import uuid

import pytest

from conftest import ROOT, VAR, register, sql, unique_email

MAILER = os.path.join(VAR, "bin", "crm-mailer")
# A timing test runs the optimised build (make run's) as well as the sanitizer build (MAILER).
MAILER_BUILDS = {"optimised": os.path.join(ROOT, "build", "crm-mailer"), "sanitizer": MAILER}
CRMCTL = os.path.join(VAR, "bin", "crmctl")


def as_crm(cmd):
    if os.getuid() == 0:
        return ["setpriv", "--reuid=crm", "--regid=crm", "--init-groups", "--"] + cmd
    return cmd


def start_mailer(log, binary=MAILER, **env):
    """Another crm-mailer on the same outbox, as the stack's service user."""
    full = dict(os.environ, CRM_ENV_FILE=os.path.join(VAR, "crm.env"), **env)
    return subprocess.Popen(as_crm([binary]), env=full, stdout=log, stderr=subprocess.STDOUT)


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0


def outbox(address):
    return sql("SELECT id, status, attempts, coalesce(last_error, '') FROM mail_outbox"
               " WHERE to_addr = :'p1'", address)


def wait_status(address, status, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        rows = outbox(address)
        if rows and rows[0][1] == status:
            return rows[0]
        time.sleep(0.2)
    return outbox(address)[0]


def check_welcome(raw, name, address):
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Subject"] == "Welcome to Next-Gen CRM"
    assert msg["From"].addresses[0].addr_spec == "no-reply@localhost"
    assert msg["To"].addresses[0].addr_spec == address
    assert msg["To"].addresses[0].display_name == name
    assert msg["Message-ID"].startswith("<welcome-") and msg["Date"]
    assert msg.get_content_type() == "multipart/alternative"
    parts = {p.get_content_type(): p for p in msg.iter_parts()}
    assert set(parts) == {"text/plain", "text/html"}
    assert parts["text/plain"].get_content_charset() == "utf-8"
    text, html = parts["text/plain"].get_content(), parts["text/html"].get_content()
    assert ("Hello %s," % name) in text
    return text, html


def test_registration_delivers_one_welcome(smtp):
    address, name = unique_email("welcome"), "Asha Rao"
    r = register(name=name, email=address)
    assert r.status == 201
    got = smtp.inbox.wait_for(address)
    assert len(got) == 1
    check_welcome(got[0], name, address)
    row = wait_status(address, "sent")
    assert row[1:] == ["sent", "1", ""]
    time.sleep(1.5)  # nothing more arrives later
    assert len(smtp.inbox.to(address)) == 1


def test_non_ascii_and_html_in_the_name(smtp):
    address, name = unique_email("zoe"), "Zoë <b>Ünal</b> & \"Co\""
    assert register(name=name, email=address).status == 201
    got = smtp.inbox.wait_for(address)
    assert len(got) == 1
    text, html = check_welcome(got[0], name, address)
    assert b"=?UTF-8?B?" in got[0].split(b"\r\n\r\n")[0]  # the header is encoded, not raw
    assert "Zoë &lt;b&gt;Ünal&lt;/b&gt; &amp; &quot;Co&quot;" in html
    assert "<b>" not in html


def test_smtp_down_at_registration(smtp):
    smtp.stop()
    try:
        address = unique_email("down")
        started = time.time()
        r = register(email=address)
        assert r.status == 201 and time.time() - started < 2  # never waits for SMTP
        row = wait_status(address, "pending")
        deadline = time.time() + 10
        while int(row[2]) < 1 and time.time() < deadline:  # a failed attempt is on record
            time.sleep(0.2)
            row = outbox(address)[0]
        assert row[1] == "pending" and int(row[2]) >= 1 and row[3] != ""
    finally:
        smtp.start()
    got = smtp.inbox.wait_for(address, timeout=30)
    assert len(got) == 1
    assert wait_status(address, "sent")[1] == "sent"


def test_two_mailers_never_send_twice(smtp, tmp_path):
    log = open(tmp_path / "mailer2.log", "w")
    second = start_mailer(log)
    try:
        addresses = [unique_email("pair") for _ in range(30)]
        for a in addresses:
            assert register(email=a).status == 201
        for a in addresses:
            smtp.inbox.wait_for(a)
        time.sleep(2)  # a duplicate would have arrived by now
        counts = {a: len(smtp.inbox.to(a)) for a in addresses}
        assert set(counts.values()) == {1}, counts
        assert [r[1] for a in addresses for r in outbox(a)] == ["sent"] * 30
    finally:
        stop(second)  # SIGTERM: it exits cleanly
    # Both mailers took part (the claim spreads the work); shown in the second one's log.
    assert "started" in open(tmp_path / "mailer2.log").read()


def test_permanent_failure_ends_failed_then_retry(smtp):
    address = "reject-%s@example.com" % uuid.uuid4().hex[:10]
    assert register(email=address).status == 201
    row = wait_status(address, "failed", timeout=30)
    assert row[1] == "failed" and row[2] == "3" and "550" in row[3]
    assert smtp.inbox.to(address) == []
    env = dict(os.environ, CRM_ENV_FILE=os.path.join(VAR, "crm.env"))
    out = subprocess.run(as_crm([CRMCTL, "mail", "list", "--status", "failed"]), env=env,
                         capture_output=True, text=True, check=True).stdout
    assert any(line.split()[0] == row[0] and address in line for line in out.splitlines()[1:])
    out = subprocess.run(as_crm([CRMCTL, "mail", "retry", row[0]]), env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0 and "queued again" in out.stdout
    row = wait_status(address, "failed", timeout=30)  # it goes again, and fails again
    assert row[2] == "3"
    out = subprocess.run(as_crm([CRMCTL, "mail", "retry", "999999999"]), env=env,
                         capture_output=True, text=True)
    assert out.returncode == 1


def test_eml_files_without_mail_host(tmp_path):
    """With no MAIL_HOST a mailer writes <id>.eml files. The stack's own mailer is paused
    meanwhile so that this one is sure to be the one that claims the message."""
    pid = int(open(os.path.join(VAR, "run", "crm-mailer.pid")).read())
    maildir = pathlib.Path(VAR, "mail-test-%s" % uuid.uuid4().hex[:8])  # the crm user's reach
    maildir.mkdir()
    os.chmod(maildir, 0o777)
    log = open(tmp_path / "eml.log", "w")
    os.kill(pid, signal.SIGSTOP)
    try:
        eml = start_mailer(log, MAIL_HOST="", MAIL_DIR=str(maildir))
        address, name = unique_email("eml"), "Élodie Eml"
        assert register(name=name, email=address).status == 201
        row = wait_status(address, "sent")
        stop(eml)
    finally:
        os.kill(pid, signal.SIGCONT)
    files = os.listdir(maildir)
    assert files == ["%s.eml" % row[0]]  # no temporary file left behind
    check_welcome((maildir / files[0]).read_bytes(), name, address)


def test_smtp_auth(tmp_path):
    """MAIL_USER and MAIL_PASS log in (AUTH) before sending; a wrong password is an error on
    record, not a sent message. The stack's mailer is paused, as above."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    from conftest import Inbox

    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((mechanism, auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cret-pass")

    inbox = Inbox()
    server = Controller(inbox, hostname="127.0.0.1", port=18026, authenticator=authenticator,
                        auth_require_tls=False, auth_required=True)
    server.start()
    pid = int(open(os.path.join(VAR, "run", "crm-mailer.pid")).read())
    log = open(tmp_path / "auth.log", "w")
    os.kill(pid, signal.SIGSTOP)
    try:
        good = start_mailer(log, MAIL_PORT="18026", MAIL_USER="crm-mailer",
                            MAIL_PASS="s3cret-pass")
        address = unique_email("auth")
        assert register(email=address).status == 201
        assert len(inbox.wait_for(address)) == 1
        stop(good)
        assert (b"crm-mailer", b"s3cret-pass") in [(l, p) for _, l, p in logins]
        bad = start_mailer(log, MAIL_PORT="18026", MAIL_USER="crm-mailer", MAIL_PASS="wrong")
        address = unique_email("badauth")
        assert register(email=address).status == 201
        deadline = time.time() + 20
        while time.time() < deadline and (not outbox(address) or outbox(address)[0][3] == ""):
            time.sleep(0.2)
        stop(bad)
        row = outbox(address)[0]
        assert row[1] in ("pending", "failed") and row[3] != "" and inbox.to(address) == []
    finally:
        os.kill(pid, signal.SIGCONT)
        server.stop()
