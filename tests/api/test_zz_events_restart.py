"""PostgreSQL restarts under open SSE streams: they stay open and lose nothing, including the
events committed while crm-events was not yet listening again. Runs last: it takes the
database away."""
import time

from conftest import request, sql
from sse import Stream
from test_events import last_event_id, new_lead, note
from test_zz_database_restart import stack


def test_restart_mid_stream_loses_nothing(admin):
    lead = new_lead(admin["token"])
    s = Stream(token=admin["token"])
    try:
        note(admin["token"], lead["id"], "before")
        assert s.wait_id(last_event_id())
        stack("pg-stop")
        stack("pg-start")
        # Write as soon as the API is back: crm-events may not be listening yet.
        deadline = time.time() + 15
        while request("GET", "/api/health").status != 200 and time.time() < deadline:
            time.sleep(0.05)
        for i in range(5):
            note(admin["token"], lead["id"], "after %d" % i)
        end = last_event_id()
        assert s.wait_id(end, 15)
        expected = [int(r[0]) for r in sql(
            "SELECT id FROM events WHERE id >= :'p1' AND id <= :'p2' ORDER BY id",
            s.ids()[0], end)]
        assert s.ids() == expected and len(expected) >= 6
        assert not s.closed
    finally:
        s.close()
