"""bcrypt does not starve the cheap routes (defect 6): login and register run in a pool of their
own (crm-login), so /api/health and /api/auth/me answer while a wave of logins is being hashed,
instead of queueing behind it. Judged by order, not by a time limit: the health checks must all
be answered while most of the logins are still in flight."""
import crypt
import threading
import time

from conftest import login, register, request, sql, unique_email

LOGINS = 16


def test_health_answers_during_a_wave_of_logins(admin):
    address, password = unique_email("bcrypt"), "slow-hash-123"
    assert register(email=address, password=password).status == 201
    # A real deployment's cost (the test stack hashes with cost 4): verifying takes ~0.1-0.3 s.
    slow = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 11))
    sql("UPDATE users SET password_hash = :'p1' WHERE lower(email) = lower(:'p2')", slow, address)
    done = []
    lock = threading.Lock()

    def one():
        r = login(address, password)
        with lock:
            done.append((time.time(), r.status))

    threads = [threading.Thread(target=one) for _ in range(LOGINS)]
    for t in threads:
        t.start()
    time.sleep(0.3)  # every login is sent and waiting for a worker
    for _ in range(5):
        assert request("GET", "/api/health").status == 200
        assert request("GET", "/api/auth/me", token=admin["token"]).status == 200
    with lock:
        finished = len(done)
    for t in threads:
        t.join(60)
    assert sorted(s for _, s in done) == [200] * LOGINS
    assert finished <= LOGINS // 2, \
        "the cheap routes waited for %d of %d logins" % (finished, LOGINS)
