"""make install and make deb: the production layout, units systemd accepts, a site nginx accepts."""
import os
import shutil
import stat
import subprocess

import pytest

from conftest import ROOT

PROGRAMS = ["crm-auth", "crm-leads", "crm-dashboard", "crm-mailer"]
UNITS = ["crm-auth.service", "crm-leads.service", "crm-dashboard.service", "crm-mailer.service",
         "crm-migrate.service", "crm.target"]
EXPECTED = sorted(
    ["etc/crm/crm.env", "etc/nginx/sites-available/crm.conf",
     "etc/nginx/snippets/crm-fastcgi.conf", "usr/bin/crmctl", "usr/share/crm/schema.sql",
     "usr/lib/tmpfiles.d/crm.conf", "usr/lib/sysusers.d/crm.conf"]
    + ["usr/sbin/" + p for p in PROGRAMS] + ["usr/lib/systemd/system/" + u for u in UNITS])


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
    assert set(EXPECTED) | {"usr/share/doc/crm/README.md"} <= paths
    fields = subprocess.run(["dpkg-deb", "-f", deb, "Package", "Version", "Depends"],
                            capture_output=True, text=True, check=True).stdout
    assert "Package: crm" in fields and "Version: " + version in fields
    for dep in ("libfcgi0ldbl", "libpq5", "libesmtp6", "spawn-fcgi", "nginx"):
        assert dep in fields
    control = subprocess.run(["dpkg-deb", "-I", deb], capture_output=True, text=True,
                             check=True).stdout
    assert "postinst" in control and "conffiles" in control
