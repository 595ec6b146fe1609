"""The embedded stack heals like production (defect 12): stack.sh's supervisor starts again a
pool master killed with SIGKILL, and `make run` (stack.sh start) right after such a kill, or
after the supervisor itself was killed, leaves every daemon running. And watching costs next to
nothing: the supervisor once took 40 % of a core doing it."""
import os
import signal
import subprocess
import time

from conftest import ROOT, VAR, request


def pid_of(name):
    with open(os.path.join(VAR, "run", "%s.pid" % name)) as f:
        return int(f.read())


def stat_fields(pid):
    """The fields of /proc/PID/stat after the command's name: [0] the state, [11:15] the CPU
    times of pid and of the children it has waited for."""
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def running(pid):
    """Alive and not a zombie."""
    try:
        return stat_fields(pid)[0] != "Z"
    except FileNotFoundError:
        return False


def wait_restarted(name, old, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            pid = pid_of(name)
        except (FileNotFoundError, ValueError):
            pid = old
        if pid != old and running(pid):
            return pid
        time.sleep(0.1)
    raise AssertionError("%s was not started again" % name)


def wait_ok(path, token, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = request("GET", path, token=token)
        if r.status == 200:
            return
        time.sleep(0.1)
    raise AssertionError("%s: %d %s" % (path, r.status, r.text))


def stack_start():
    r = subprocess.run([os.path.join(ROOT, "scripts", "stack.sh"), "start"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def cpu_seconds(pid):
    """The CPU time of pid and of its children it has waited for (the commands it ran)."""
    return sum(int(x) for x in stat_fields(pid)[11:15]) / os.sysconf("SC_CLK_TCK")


def test_an_idle_supervisor_costs_next_to_no_cpu():
    """It looks at every daemon twice a second and at the logs' sizes every second. It did so by
    running head, sed, stat and cat dozens of times a second: 3.9 s of CPU in 10 s with every
    daemon running and nothing to do, on a 2-core machine a fifth of it, beside whatever the
    stack serves (and make bench measures). The bound allows 5 % of one core."""
    sup = pid_of("supervisor")
    time.sleep(1)  # a daemon an earlier test killed has been waited for
    before = cpu_seconds(sup)
    time.sleep(5)
    used = cpu_seconds(sup) - before
    assert used < 0.25, "the supervisor and its commands used %.2f s of CPU in 5 s" % used


def test_killed_pool_master_is_started_again(admin):
    old = pid_of("crm-leads")
    os.kill(old, signal.SIGKILL)
    wait_restarted("crm-leads", old)
    wait_ok("/api/leads?limit=1", admin["token"])


def test_make_run_right_after_a_kill(admin):
    old = pid_of("crm-dashboard")
    os.kill(old, signal.SIGKILL)
    stack_start()  # at once: the killed master may still be a zombie
    new = pid_of("crm-dashboard")
    assert new != old and running(new)
    wait_ok("/api/dashboard/stats", admin["token"])


def test_supervisor_killed_then_make_run(admin):
    sup = pid_of("supervisor")
    os.kill(sup, signal.SIGKILL)
    time.sleep(0.2)
    stack_start()
    assert pid_of("supervisor") != sup and running(pid_of("supervisor"))
    old = pid_of("crm-auth")
    os.kill(old, signal.SIGKILL)
    wait_restarted("crm-auth", old)
    wait_ok("/api/auth/me", admin["token"])
