"""crmctl doctor against the real stack: all ok, and the named fault when one part is broken."""
import os
import socket
import ssl
import subprocess
import time

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from conftest import PORT, ROOT, VAR, request
from test_crmctl import CRMCTL, ENV, migrate, schema_before, schema_versions, scratch_db

SITE = ["--sockets", os.path.join(VAR, "run"), "--url", "http://127.0.0.1:%d" % PORT]


def doctor(env=None, args=SITE):
    r = subprocess.run([CRMCTL, "doctor", *args], capture_output=True, text=True,
                       env=dict(ENV, **(env or {})), cwd=ROOT)
    return r.returncode, r.stdout.splitlines()


def failed(lines):
    return [line for line in lines if line.startswith("FAIL")]


def test_doctor_passes_on_the_test_stack():
    rc, lines = doctor()
    assert rc == 0, lines
    assert not failed(lines)
    checks = [line.split(":", 1)[0].split(None, 1)[1] for line in lines[:-1]]
    assert checks == ["env file", "database", "schema", "extension", "statements", "smtp relay",
                      "smtp STARTTLS", "smtp AUTH"] + ["fastcgi"] * 5 + ["site"]
    assert lines[-1] == "all checks passed"


def broken_env(tmp_path, change):
    """A copy of the stack's env file with change(text) applied; returns its path."""
    with open(ENV["CRM_ENV_FILE"]) as f:
        text = change(f.read())
    path = tmp_path / "crm.env"
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_doctor_names_a_short_jwt_secret(tmp_path):
    path = broken_env(tmp_path, lambda t: "\n".join(
        "JWT_SECRET=too-short" if line.startswith("JWT_SECRET=") else line
        for line in t.splitlines()))
    rc, lines = doctor({"CRM_ENV_FILE": str(path)})
    assert rc == 1
    assert failed(lines) == [lines[0]]
    assert lines[0].startswith("FAIL env file: JWT_SECRET is shorter than 32 bytes")


def test_doctor_names_a_world_readable_env_file(tmp_path):
    path = broken_env(tmp_path, lambda t: t)
    path.chmod(0o644)
    rc, lines = doctor({"CRM_ENV_FILE": str(path)})
    assert rc == 1
    assert "readable by others (chmod o-r)" in lines[0] and lines[0].startswith("FAIL env file")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_doctor_names_an_unreachable_smtp_relay():
    port = free_port()
    rc, lines = doctor({"MAIL_PORT": str(port)})
    assert rc == 1
    assert failed(lines) == ["FAIL smtp relay: cannot connect to 127.0.0.1 port %d: Connection "
                             "refused; check MAIL_HOST and MAIL_PORT, and that the relay runs"
                             % port]


def test_doctor_names_starttls_the_relay_does_not_offer():
    """The tests' relay offers no STARTTLS: fine for MAIL_TLS=auto, a fault for required."""
    rc, lines = doctor({"MAIL_TLS": "required"})
    assert rc == 1
    assert [line.split(":")[0] for line in failed(lines)] == ["FAIL smtp STARTTLS"]
    rc, lines = doctor({"MAIL_USER": "someone", "MAIL_PASS": "secret"})
    assert rc == 1
    assert [line.split(":")[0] for line in failed(lines)] == ["FAIL smtp AUTH"]


def test_doctor_names_a_stopped_database_and_missing_sockets():
    stack = os.path.join(ROOT, "scripts", "stack.sh")
    subprocess.run([stack, "pg-stop"], check=True, capture_output=True)
    try:
        rc, lines = doctor(args=["--sockets", os.path.join(VAR, "nowhere"), "--url",
                                 "http://127.0.0.1:%d" % PORT])
    finally:
        subprocess.run([stack, "pg-start"], check=True, capture_output=True)
    assert rc == 1
    fails = failed(lines)
    assert fails[0].startswith("FAIL database: cannot connect: ")
    assert "start PostgreSQL" in fails[0]
    # With no database the schema is not looked at; the site's health says the database is down.
    assert not [line for line in lines if line.split(":")[0].endswith("schema")]
    assert sum(line.startswith("FAIL fastcgi: ") for line in fails) == 5
    assert fails[-1].startswith("FAIL site: ") and "503" in fails[-1]
    deadline = time.time() + 15
    while request("GET", "/api/health").status != 200 and time.time() < deadline:
        time.sleep(0.2)
    assert doctor()[0] == 0


def test_doctor_names_a_schema_that_is_behind(tmp_path):
    *before, latest = schema_versions()
    with scratch_db("doctor") as url:
        migrate(url, schema_before(tmp_path, latest))
        rc, lines = doctor({"DATABASE_URL": url})
    assert rc == 1
    assert ("FAIL schema: version %d, this release needs %d; run crmctl migrate"
            % (before[-1], latest)) in lines


class Sink:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"


def relay_login(server, session, envelope, mechanism, auth_data):
    ok = (auth_data.login, auth_data.password) == (b"crm", b"relay-pw")
    return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535 itself


@pytest.fixture
def tls_relay(tmp_path):
    """A relay with STARTTLS (a self-signed certificate for localhost) and AUTH after it only;
    yields its port and the certificate's file."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    port = free_port()
    relay = Controller(Sink(), hostname="127.0.0.1", port=port, tls_context=context,
                       authenticator=relay_login, auth_require_tls=True)
    relay.start()
    yield port, str(cert)
    relay.stop()


def smtp_lines(env):
    rc, lines = doctor(env)
    return rc, [line for line in lines if line.split(":")[0].split(None, 1)[1].startswith("smtp")]


def test_doctor_speaks_starttls_and_auth(tls_relay):
    port, cert = tls_relay
    relay = {"MAIL_HOST": "localhost", "MAIL_PORT": str(port)}
    # A certificate no CA of this host vouches for: the mailer could not send through it.
    rc, lines = smtp_lines(relay)
    assert rc == 1
    assert lines[1].startswith("FAIL smtp STARTTLS: TLSv1.3, but the certificate of localhost "
                               "is not accepted (self-signed certificate)"), lines
    # Trusted (as if from a CA of this host): verified, and AUTH after STARTTLS.
    trusted = dict(relay, SSL_CERT_FILE=cert, MAIL_USER="crm", MAIL_PASS="relay-pw")
    rc, lines = smtp_lines(trusted)
    assert rc == 0, lines
    assert lines == ["ok   smtp relay: localhost:%d answers" % port,
                     "ok   smtp STARTTLS: TLSv1.3, certificate verified for localhost",
                     "ok   smtp AUTH: accepted for crm"]
    rc, lines = smtp_lines(dict(trusted, MAIL_PASS="wrong"))
    assert rc == 1 and lines[2].startswith("FAIL smtp AUTH: refused for crm (535 "), lines
    # Without TLS this relay offers no AUTH at all.
    rc, lines = smtp_lines(dict(trusted, MAIL_TLS="off"))
    assert rc == 1 and lines[1] == "ok   smtp STARTTLS: not used (MAIL_TLS=off)"
    assert lines[2].startswith("FAIL smtp AUTH: MAIL_USER is set but the relay offers no AUTH")
