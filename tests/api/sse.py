"""A Server-Sent Events client for the tests: one socket, a thread that parses messages."""
import json
import socket
import threading
import time
import urllib.parse

import contract
from conftest import HOST, PORT, next_source


def check_event(msg):
    """Holds one message to docs/openapi.yaml: its data is an Event, of its id and event type."""
    try:
        data = json.loads(msg.get("data", ""))
    except ValueError:
        contract.record("event %s" % msg.get("id"), ["data is not JSON"])
        return
    problems = contract.validate(contract.schema("Event"), data)
    if isinstance(data, dict) and (str(data.get("id")) != msg.get("id") or
                                   data.get("type") != msg.get("event")):
        problems.append("id: and event: differ from the data's id and type")
    contract.record("event %s" % msg.get("id"), problems)


class Stream:
    """GET /api/events over HTTP/1.0 (no chunking to undo); messages collect in .messages as
    dicts with id, event, data, and the time they arrived; comments in .comments."""

    def __init__(self, token=None, query_token=None, last_id=None, last_id_query=None,
                 headers=None, rcvbuf=None, read=True, accept="text/event-stream", addr=None,
                 source=None):
        query = {}
        if query_token:
            query["access_token"] = query_token
        if last_id_query is not None:
            query["last_event_id"] = last_id_query
        path = "/api/events" + ("?" + urllib.parse.urlencode(query) if query else "")
        lines = ["GET %s HTTP/1.0" % path, "Host: localhost", "Accept: " + accept]
        if token:
            lines.append("Authorization: Bearer " + token)
        if last_id is not None:
            lines.append("Last-Event-ID: %s" % last_id)
        for k, v in (headers or {}).items():
            lines.append("%s: %s" % (k, v))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind((source or next_source(), 0))
        self.sock.settimeout(30)
        self.sock.connect(addr or (HOST, PORT))
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.messages, self.comments, self.retry, self.position = [], [], None, None
        self.closed = False
        self.cond = threading.Condition()
        self.status, self.headers, self.body = None, {}, b""
        if read:
            self._read_head()
            self.sock.settimeout(None)
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()

    def _read_head(self):
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            buf += chunk
        head, _, self.body = buf.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}

    def _run(self):
        buf = self.body
        while True:
            while b"\n\n" in buf:
                block, buf = buf.split(b"\n\n", 1)
                self._take(block.decode())
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buf += chunk
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def _take(self, block):
        msg = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                with self.cond:
                    self.comments.append(line)
                    self.cond.notify_all()
                continue
            field, _, value = line.partition(": ")
            if field == "retry":
                self.retry = int(value)
            elif field in ("id", "event", "data"):
                msg[field] = value
        if "id" in msg and "data" not in msg:
            # The stream's position: EventSource keeps it as its last id, dispatches nothing.
            self.position = int(msg["id"])
        elif msg:
            check_event(msg)
            msg["id"] = int(msg["id"])
            msg["at"] = time.time()
            with self.cond:
                self.messages.append(msg)
                self.cond.notify_all()

    def wait(self, pred, timeout=10):
        """Waits until pred(messages) holds or the stream ends; returns pred's last value."""
        deadline = time.time() + timeout
        with self.cond:
            while not pred(self.messages) and not self.closed and time.time() < deadline:
                self.cond.wait(max(0.01, deadline - time.time()))
            return pred(self.messages)

    def wait_id(self, event_id, timeout=10):
        return self.wait(lambda ms: any(m["id"] >= event_id for m in ms), timeout)

    def wait_closed(self, timeout=10):
        deadline = time.time() + timeout
        with self.cond:
            while not self.closed and time.time() < deadline:
                self.cond.wait(max(0.01, deadline - time.time()))
            return self.closed

    def ids(self):
        with self.cond:
            return [m["id"] for m in self.messages]

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
