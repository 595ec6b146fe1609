"""A stack of scripts/stack.sh with its own state directory and port, for the tools that start
one of the optimised build (make screenshots, make bench-console): start it afresh, run crmctl
and psql in it, sign in its first ADMIN, stop it."""
import glob
import json
import os
import subprocess
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PGBIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]


def sh(cmd, **kw):
    """Runs cmd; its stdout, or an error that carries what it said on stderr."""
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise SystemExit("%s failed (%d): %s" % (" ".join(cmd), r.returncode, r.stderr.strip()))
    return r.stdout


def as_owner(cmd):
    """Runs as the stack's service user when root (PostgreSQL's socket is the crm user's)."""
    if os.getuid() == 0:
        return ["setpriv", "--reuid=crm", "--regid=crm", "--init-groups", "--"] + cmd
    return cmd


class Stack:
    def __init__(self, name, port, **settings):
        self.var = os.path.join(ROOT, "var", name)
        self.port = port
        self.base = "http://127.0.0.1:%d/" % port
        self.env = dict(os.environ, CRM_VAR=self.var, CRM_PORT=str(port),
                        CRM_BIN=os.path.join(ROOT, "build"), **settings)

    def stack(self, cmd):
        return sh([os.path.join(ROOT, "scripts", "stack.sh"), cmd], env=self.env)

    def start(self):
        """A fresh stack: what an earlier run left is wiped first."""
        self.stack("wipe")
        self.stack("start")

    def stop(self):
        self.stack("stop")

    def crmctl(self, *args):
        var = os.path.realpath(self.var)
        return sh(as_owner([os.path.join(var, "bin", "crmctl"), *args]),
                  env=dict(os.environ, CRM_ENV_FILE=os.path.join(var, "crm.env")))

    def psql(self, query):
        return sh(as_owner([os.path.join(PGBIN, "psql"), "-h",
                            os.path.join(os.path.realpath(self.var), "run"), "-d", "crm", "-XtAq",
                            "-c", query])).strip()

    def admin(self):
        """The first ADMIN's {"email": ..., "password": ...} (stack.sh wrote them)."""
        with open(os.path.join(self.var, "admin.txt")) as f:
            return dict(line.strip().split("=", 1) for line in f if "=" in line)

    def api(self, method, path, body=None, token=None):
        """One JSON request to the stack's API (path from /api/ on); its JSON answer."""
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = "Bearer " + token
        req = urllib.request.Request(self.base + "api/" + path.lstrip("/"),
                                     None if body is None else json.dumps(body).encode(),
                                     headers, method=method)
        with urllib.request.urlopen(req) as r:
            return json.load(r) if r.status != 204 else None

    def login(self):
        """Signs the first ADMIN in through the API: (token, user)."""
        body = self.api("POST", "auth/login", self.admin())
        return body["token"], body["user"]
