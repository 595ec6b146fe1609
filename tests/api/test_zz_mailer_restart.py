"""crm-mailer keeps hearing NOTIFY mail_outbox across a PostgreSQL restart (defect 1). It once
told a new connection from the old one by its PGconn address, which glibc's allocator hands out
again at once: so this runs the optimised build (make run's) as well as the sanitizer build,
whose allocator does not reuse addresses and hid the bug. Named to run last: it restarts the
database."""
import os
import signal
import subprocess
import time

import pytest

from conftest import ROOT, VAR, register, request, unique_email
from test_mail import MAILER_BUILDS as BUILDS, start_mailer, stop


def stack(cmd):
    subprocess.run([os.path.join(ROOT, "scripts", "stack.sh"), cmd], check=True,
                   capture_output=True)


def wait_healthy(timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline and request("GET", "/api/health").status != 200:
        time.sleep(0.2)
    assert request("GET", "/api/health").status == 200


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_mailer_listens_again_after_database_restart(build, smtp, tmp_path):
    """A welcome e-mail goes out within seconds after a restart, not at the 30 s poll. The
    stack's own mailer is paused so that the mailer under test is the only one."""
    binary = BUILDS[build]
    assert os.access(binary, os.X_OK), binary
    pid = int(open(os.path.join(VAR, "run", "crm-mailer.pid")).read())
    log = open(tmp_path / "mailer.log", "w")
    os.kill(pid, signal.SIGSTOP)
    try:
        mailer = start_mailer(log, binary=binary)
        try:
            before = unique_email("listen-before")
            assert register(email=before).status == 201
            assert len(smtp.inbox.wait_for(before, timeout=5)) == 1
            for _ in range(2):  # twice: the second new connection reuses the freed one's place
                stack("pg-stop")
                stack("pg-start")
                wait_healthy()
                after = unique_email("listen-after")
                sent = time.time()
                assert register(email=after).status == 201
                assert len(smtp.inbox.wait_for(after, timeout=5)) == 1, \
                    "no NOTIFY heard after the restart: the mail waited for the poll"
                assert time.time() - sent < 5
        finally:
            stop(mailer)
    finally:
        os.kill(pid, signal.SIGCONT)
