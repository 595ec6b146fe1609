"""make install and make deb: the production layout, units systemd accepts, a site nginx accepts."""
import http.client
import json
import os
import pathlib
import shlex
import shutil
import signal
import stat
import subprocess
import time
import uuid

import pytest

from conftest import ROOT, VAR, env_file, unique_email

PROGRAMS = ["crm-auth", "crm-leads", "crm-dashboard", "crm-events", "crm-mailer", "crm-webhooks"]
UNITS = ["crm-auth.service", "crm-login.service", "crm-leads.service", "crm-dashboard.service", "crm-events.service",
         "crm-events@.service",
         "crm-mailer.service", "crm-webhooks.service", "crm-migrate.service", "crm-backup.service",
         "crm-backup.timer",
         "crm.target"]
EXPECTED = sorted(
    ["etc/crm/crm.env", "etc/nginx/sites-available/crm.conf",
     "etc/nginx/snippets/crm-error-headers.conf", "etc/nginx/snippets/crm-error-pages.conf",
     "etc/nginx/snippets/crm-fastcgi.conf", "etc/nginx/snippets/crm-security-headers.conf",
     "etc/nginx/snippets/crm-metrics.conf", "etc/nginx/snippets/crm-settings.conf",
     "usr/bin/crmctl", "usr/share/crm/schema.sql",
     "usr/lib/tmpfiles.d/crm.conf", "usr/lib/sysusers.d/crm.conf",
     "etc/logrotate.d/crm", "usr/lib/crm/crm-backup",
     "usr/share/crm/web/api/openapi.yaml", "usr/share/crm/web/api/openapi.json"]
    + ["usr/sbin/" + p for p in PROGRAMS] + ["usr/lib/systemd/system/" + u for u in UNITS]
    + ["usr/share/crm/web/" + os.path.relpath(os.path.join(d, f), os.path.join(ROOT, "web"))
       for d, _, names in os.walk(os.path.join(ROOT, "web")) for f in names])


def make(*args):
    r = subprocess.run(["make", "-s", "-C", ROOT, *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, names in os.walk(root) for f in names)


def test_install_layout(tmp_path):
    make("install", "PREFIX=/usr", "DESTDIR=%s" % tmp_path)
    assert files(tmp_path) == EXPECTED
    env = tmp_path / "etc/crm/crm.env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o640
    for p in PROGRAMS:
        assert os.access(tmp_path / "usr/sbin" / p, os.X_OK)
        out = subprocess.run([str(tmp_path / "usr/sbin" / p), "--help"], capture_output=True,
                             text=True)
        assert out.returncode == 0 and "Usage" in out.stdout + out.stderr, p
    unit = (tmp_path / "usr/lib/systemd/system/crm-leads.service").read_text()
    assert "ExecStart=/usr/bin/spawn-fcgi -n -s /run/crm/crm-leads.sock" in unit
    assert "/usr/sbin/crm-leads" in unit and "User=crm" in unit and "@" not in unit
    # The operator's settings survive a reinstall.
    env.write_text("JWT_SECRET=mine\n")
    make("install", "PREFIX=/usr", "DESTDIR=%s" % tmp_path)
    assert env.read_text() == "JWT_SECRET=mine\n"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_units_verify(tmp_path):
    """Installed under a prefix of their own (so the programs they name exist), every unit
    passes systemd-analyze verify."""
    make("install", "PREFIX=%s/usr" % tmp_path, "SYSCONFDIR=%s/etc" % tmp_path)
    units = [str(tmp_path / "usr/lib/systemd/system" / u) for u in UNITS]
    r = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout + r.stderr == "", r.stdout + r.stderr


def test_nginx_accepts_the_installed_site(tmp_path):
    make("install", "PREFIX=%s/usr" % tmp_path, "SYSCONFDIR=%s/etc" % tmp_path)
    (tmp_path / "logs").mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text("pid %s/nginx.pid;\nerror_log stderr;\nevents {}\nhttp {\n"
                    "    include /etc/nginx/mime.types;\n    access_log off;\n"
                    "    include %s/etc/nginx/sites-available/crm.conf;\n}\n"
                    % (tmp_path, tmp_path))
    r = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(conf)],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "test is successful" in r.stderr, r.stderr


def test_backup_unit_keeps_the_newest(tmp_path):
    """The script crm-backup.service runs makes a backup with the installed crmctl, then keeps
    the newest CRM_BACKUP_KEEP; a backup that fails removes nothing."""
    make("install", "PREFIX=%s/usr" % tmp_path, "SYSCONFDIR=%s/etc" % tmp_path)
    script = str(tmp_path / "usr/lib/crm/crm-backup")
    unit = (tmp_path / "usr/lib/systemd/system/crm-backup.service").read_text()
    assert "ExecStart=%s\n" % script in unit and "User=crm" in unit
    dumps = tmp_path / "backups"
    dumps.mkdir()
    for i, day in enumerate((3, 2, 1)):
        old = dumps / ("crm-2026010%dT021500Z.dump" % (i + 1))
        old.write_text("old")
        os.utime(old, (time.time() - day * 86400,) * 2)
    env = dict(os.environ, CRM_ENV_FILE=os.path.join(VAR, "crm.env"), CRM_BACKUP_DIR=str(dumps),
               CRM_BACKUP_KEEP="2")
    r = subprocess.run([script], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    left = sorted(p.name for p in dumps.iterdir())
    assert len(left) == 2 and left[0] == "crm-20260103T021500Z.dump", left
    assert subprocess.run(["pg_restore", "--list", str(dumps / left[1])],
                          capture_output=True).returncode == 0
    r = subprocess.run([script], capture_output=True, text=True,
                       env=dict(env, DATABASE_URL="postgresql:///crm?host=/nonexistent"))
    assert r.returncode != 0 and "no backup written" in r.stderr
    assert sorted(p.name for p in dumps.iterdir()) == left


@pytest.mark.skipif(shutil.which("logrotate") is None, reason="needs logrotate")
def test_logrotate_accepts_the_rule(tmp_path):
    make("install", "PREFIX=%s/usr" % tmp_path, "SYSCONFDIR=%s/etc" % tmp_path)
    r = subprocess.run(["logrotate", "-d", "-s", str(tmp_path / "state"),
                        str(tmp_path / "etc/logrotate.d/crm")], capture_output=True, text=True)
    assert r.returncode == 0 and "error" not in (r.stdout + r.stderr).lower(), r.stderr
    assert "/var/log/crm/*.log" in r.stdout + r.stderr


def test_deb():
    out = make("deb")
    version = open(os.path.join(ROOT, "VERSION")).read().strip()
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                          text=True).stdout.strip()
    deb = os.path.join(ROOT, "build", "crm_%s_%s.deb" % (version, arch))
    assert os.path.exists(deb), out
    listing = subprocess.run(["dpkg", "-c", deb], capture_output=True, text=True,
                             check=True).stdout
    paths = {line.split()[-1].lstrip("./") for line in listing.splitlines()}
    assert set(EXPECTED) | {"usr/share/doc/crm/README.md", "usr/share/doc/crm/API.md"} <= paths
    fields = subprocess.run(["dpkg-deb", "-f", deb, "Package", "Version", "Depends"],
                            capture_output=True, text=True, check=True).stdout
    assert "Package: crm" in fields and "Version: " + version in fields
    for dep in ("libfcgi0ldbl", "libpq5", "libesmtp6", "spawn-fcgi", "nginx"):
        assert dep in fields
    control = subprocess.run(["dpkg-deb", "-I", deb], capture_output=True, text=True,
                             check=True).stdout
    assert "postinst" in control and "conffiles" in control


def unit_command(path):
    """A unit's ExecStart as argv, its ${VAR}s expanded from its Environment= lines."""
    env, command = {}, None
    for line in open(path):
        if line.startswith("Environment="):
            env.update(kv.split("=", 1) for kv in shlex.split(line[len("Environment="):]))
        elif line.startswith("ExecStart="):
            command = line[len("ExecStart="):].strip()
    for k, v in env.items():
        command = command.replace("${%s}" % k, v)
    return shlex.split(command), env


def as_crm(argv):
    return ["setpriv", "--reuid=crm", "--regid=crm", "--init-groups", "--"] + argv


@pytest.mark.skipif(os.getuid() != 0, reason="starts programs as the crm user")
def test_installed_units_serve_through_the_installed_site():
    """The programs started exactly as the installed units' ExecStart lines say, as the crm
    user with the installed env file, serve the API through the installed nginx site."""
    base = pathlib.Path(VAR, "inst-%s" % uuid.uuid4().hex[:8])
    port = int(os.environ.get("CRM_PORT", "18080")) + 15
    make("install", "PREFIX=%s/usr" % base, "SYSCONFDIR=%s/etc" % base, "RUNDIR=%s/run" % base,
         "LISTEN=127.0.0.1:%d" % port, "ACCESS_LOG=%s/crm-access.log" % base)
    for d in ("run", "mail"):
        (base / d).mkdir()
        shutil.chown(base / d, "crm", "crm")
    test_env = env_file()
    env_path = base / "etc/crm/crm.env"
    env_path.write_text("DATABASE_URL=%s\nJWT_SECRET=%s\nBCRYPT_COST=4\nMAIL_DIR=%s/mail\n"
                        % (test_env["DATABASE_URL"], test_env["JWT_SECRET"], base))
    shutil.chown(env_path, "root", "crm")  # as the package's postinst leaves it
    units = base / "usr/lib/systemd/system"
    argv, env = unit_command(units / "crm-migrate.service")
    r = subprocess.run(as_crm(argv), env=dict(os.environ, **env), capture_output=True, text=True)
    assert r.returncode == 0 and "schema version" in r.stdout, r.stderr
    procs = []
    log = open(base / "programs.log", "w")
    # The stack's own mailer is paused, so the installed one is the one that sends.
    stack_mailer = int(open(os.path.join(VAR, "run", "crm-mailer.pid")).read())
    os.kill(stack_mailer, signal.SIGSTOP)
    try:
        for unit in ("crm-auth", "crm-login", "crm-leads", "crm-dashboard", "crm-events",
                     "crm-mailer"):
            argv, env = unit_command(units / ("%s.service" % unit))
            procs.append(subprocess.Popen(as_crm(argv), env=dict(os.environ, **env),
                                          stdout=log, stderr=subprocess.STDOUT))
        (base / "ngx/logs").mkdir(parents=True)
        conf = base / "ngx/nginx.conf"
        conf.write_text("user crm;\ndaemon off;\npid %s/ngx/nginx.pid;\nerror_log stderr;\n"
                        "events {}\nhttp {\n    include /etc/nginx/mime.types;\n"
                        "    access_log off;\n    include %s/etc/nginx/sites-available/crm.conf;\n}\n"
                        % (base, base))
        procs.append(subprocess.Popen(["nginx", "-p", str(base / "ngx"), "-c", str(conf)],
                                      stdout=log, stderr=subprocess.STDOUT))
        deadline = time.time() + 10
        while time.time() < deadline and not all(
                (base / "run" / ("%s.sock" % p)).exists()
                for p in ("crm-auth", "crm-login", "crm-leads", "crm-dashboard", "crm-events")):
            time.sleep(0.1)

        def call(method, path, body=None, token=None):
            headers = {"Content-Type": "application/json"} if body is not None else {}
            if token:
                headers["Authorization"] = "Bearer " + token
            for _ in range(50):  # nginx may still be binding
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                try:
                    conn.request(method, path, json.dumps(body) if body else None, headers)
                    break
                except ConnectionRefusedError:
                    time.sleep(0.1)
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read() or b"null")

        assert call("GET", "/api/health") == (200, {"status": "ok", "database": "ok"})
        # The installed site serves the installed contract, as it is in the repository.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/api/openapi.yaml")
        served = conn.getresponse()
        with open(os.path.join(ROOT, "docs", "openapi.yaml"), "rb") as f:
            assert (served.status, served.read()) == (200, f.read())
        address = unique_email("installed")
        status, body = call("POST", "/api/auth/register",
                            {"name": "Ina Stalled", "email": address, "password": "password123"})
        assert status == 201, body
        token = body["token"]
        events = subprocess.Popen(["curl", "-sN", "--max-time", "3", "http://127.0.0.1:%d"
                                   "/api/events?access_token=%s" % (port, token)],
                                  stdout=subprocess.PIPE, text=True)
        time.sleep(0.7)
        status, body = call("POST", "/api/leads", {"name": "From the installed site"}, token)
        assert status == 201 and body["lead"]["owner"]["name"] == "Ina Stalled"
        stream = events.communicate(timeout=10)[0]
        assert stream.startswith("retry: 3000\n\n") and "event: lead.created" in stream, stream
        assert call("GET", "/api/dashboard/stats", token=token)[0] == 403
        deadline = time.time() + 15
        while time.time() < deadline and not list((base / "mail").glob("*.eml")):
            time.sleep(0.2)
        emls = [p.read_text() for p in (base / "mail").glob("*.eml")]
        assert any(address in e for e in emls)
    finally:
        os.kill(stack_mailer, signal.SIGCONT)
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            assert p.wait(timeout=15) == 0
        shutil.rmtree(base, ignore_errors=True)
