"""crm-mailer stops at once on SIGTERM, wherever in its loop the signal falls. It once checked its
stop flag, then asked the database when the next message is due, then slept that long (up to
30 s): a signal that came during that question was seen only when the sleep ended. strace holds
the mailer right after it sent that question, so the signal falls there every time. Both builds
run it: timing is the optimised build's own."""
import os
import signal
import subprocess
import time

import pytest

from conftest import sql
from test_mail import CRMCTL, MAILER_BUILDS as BUILDS, start_mailer


def wait_for_line(path, text, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in open(path, errors="replace").read():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(os.getuid() != 0, reason="strace attaches to a mailer run as the crm user")
@pytest.mark.parametrize("build", sorted(BUILDS))
def test_mailer_stops_at_once_when_the_signal_falls_before_its_sleep(build, tmp_path):
    binary = BUILDS[build]
    assert os.access(binary, os.X_OK), binary
    # The sleep that would hide the signal is as long as the next due message or task (30 s when
    # none): long enough for a late stop to show once what earlier tests queued has gone out.
    next_due = subprocess.run([CRMCTL, "statement", "mail_next_due"], capture_output=True,
                              text=True, check=True).stdout  # the mailer's own question
    deadline, due = time.time() + 60, "0"
    while time.time() < deadline and due != "" and int(due) < 10:
        time.sleep(0.5)
        due = (sql(next_due) or [[""]])[0][0]  # no row: NULL, nothing due
    assert due == "" or int(due) >= 10, "something is due in %s s: a late stop would not show" % due
    log = open(tmp_path / "mailer.log", "w")
    mailer = start_mailer(log, binary=binary)
    trace = tmp_path / "strace.out"
    try:
        assert wait_for_line(tmp_path / "mailer.log", "started")
        time.sleep(0.5)  # into its first sleep
        # Every statement the mailer sends is held for 2 s after it went out.
        attached = tmp_path / "strace.err"
        tracer = subprocess.Popen(["strace", "-p", str(mailer.pid), "-e", "trace=sendto",
                                   "-e", "inject=sendto:delay_exit=2000000", "-s", "256",
                                   "-o", str(trace)], stderr=open(attached, "w"))
        try:
            if not wait_for_line(attached, "attached"):
                why = open(attached).read()
                if "Operation not permitted" in why:  # a container without CAP_SYS_PTRACE
                    pytest.skip("strace cannot attach here: " + why.strip())
                pytest.fail("strace did not attach: " + why)
            sql("NOTIFY mail_outbox")  # wakes it: reminders, a claim, then the question
            assert wait_for_line(trace, "mail_next_due"), open(trace).read()
            mailer.send_signal(signal.SIGTERM)
        finally:
            tracer.send_signal(signal.SIGINT)  # detaches; the signal stays pending
            tracer.wait(timeout=10)
        sent = time.time()
        try:
            code = mailer.wait(timeout=20)
        except subprocess.TimeoutExpired:
            code = None
        took = time.time() - sent
        assert code == 0 and took < 4, "stopped after %.1f s (exit %s)" % (took, code)
    finally:
        if mailer.poll() is None:
            mailer.kill()
            mailer.wait()
