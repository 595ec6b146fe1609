"""The API contract as the tests hold every response to it: docs/openapi.yaml, read once.

check() takes one exchange (method, path, status, headers, body) and returns what in it the spec
does not allow: an undocumented status for the route and method, a header the response must
carry and lacks, or a body that fails the response's JSON Schema (Draft 2020-12, so a missing
required member or an extra one where the spec says additionalProperties: false fails).
conftest.request() checks every response it gets; sse.Stream checks every event it parses.
"""
import json
import os
import re
import threading
from urllib.parse import urlsplit

import yaml
from jsonschema import Draft202012Validator, RefResolver

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC_PATH = os.path.join(ROOT, "docs", "openapi.yaml")

with open(SPEC_PATH, "rb") as _f:
    SPEC = yaml.safe_load(_f)

# jsonschema 4.10 (Debian 12) resolves "#/components/..." through a RefResolver on the document.
_resolver = RefResolver("", SPEC)
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _template_regex(template):
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")


ROUTES = [(_template_regex(p), p) for p in SPEC["paths"]]


def operations():
    """(METHOD, path template) of every operation in the spec."""
    return {(m.upper(), p) for p, item in SPEC["paths"].items() for m in item if m in _METHODS}


def schema(name):
    return SPEC["components"]["schemas"][name]


def validate(sch, value):
    """The messages of every way value fails schema sch (empty when it conforms)."""
    v = Draft202012Validator(sch, resolver=_resolver)
    return ["%s at /%s" % (e.message, "/".join(str(p) for p in e.absolute_path))
            for e in v.iter_errors(value)]


def _deref(obj):
    while isinstance(obj, dict) and "$ref" in obj:
        node = SPEC
        for part in obj["$ref"].lstrip("#/").split("/"):
            node = node[part]
        obj = node
    return obj


def route(path):
    """The spec's path template for a request path, or None."""
    for rx, template in ROUTES:
        if rx.match(path):
            return template
    return None


def _check_headers(spec_headers, headers):
    problems = []
    for name, h in (spec_headers or {}).items():
        h = _deref(h)
        value = headers.get(name.lower())
        if value is None:
            if h.get("required"):
                problems.append("header %s missing" % name)
            continue
        sch = _deref(h.get("schema", {}))
        if sch.get("type") == "integer":
            try:
                value = int(value)
            except ValueError:
                problems.append("header %s: %r is not an integer" % (name, value))
                continue
        problems += ["header %s: %s" % (name, m) for m in validate(sch, value)]
    return problems


def _check_body(resp_spec, status, headers, body):
    content = resp_spec.get("content")
    if not content:
        return [] if not body else ["status %s has no body in the spec, got %r" % (status, body[:80])]
    ctype = headers.get("content-type", "").split(";")[0].strip()
    if ctype not in content:
        return ["content type %r is not one of %s" % (ctype, sorted(content))]
    if ctype != "application/json":
        return []
    try:
        value = json.loads(body)
    except ValueError:
        return ["body is not JSON: %r" % body[:80]]
    return validate(content[ctype]["schema"], value)


# nginx's own refusals, before any program runs (info.description of the spec): they may answer
# any path, a documented operation's too, with the error body.
NGINX_REFUSALS = {"400": "Error", "411": "Error", "413": "ErrorPayloadTooLarge", "414": "Error"}


def _check_error_body(method, body, name):
    if method == "HEAD":
        return []
    try:
        value = json.loads(body)
    except ValueError:
        return ["body is not JSON: %r" % body[:80]]
    return validate(schema(name), value)


def check(method, url, status, headers, body):
    """What the spec does not allow in this exchange: a list of messages (empty: conforms).

    headers has lower-case names; body is bytes. Paths outside /api/ are not the API's."""
    path = urlsplit(url).path
    if not path.startswith("/api/"):
        return []
    problems = []
    if "x-request-id" not in headers:
        problems.append("header X-Request-Id missing")
    template = route(path)
    if method == "OPTIONS" and status == 204:
        # A CORS preflight, answered by nginx for any path (info.description of the spec).
        preflight = SPEC["components"]["responses"]["CorsPreflight"]
        return problems + _check_headers(preflight["headers"], headers) + (
            ["a preflight answer with a body"] if body else [])
    item = SPEC["paths"].get(template, {})
    op_method = "get" if method == "HEAD" else method.lower()
    op = item.get(op_method)
    if template is None or op is None:
        # No such path: 404. A path under another method: 405 with Allow. Either way the error
        # body; nginx's own refusals (info.description of the spec) may come anywhere.
        allowed = dict(NGINX_REFUSALS, **{"404": "ErrorNotFound", "405": "ErrorMethodNotAllowed",
                                          "403": "ErrorForbidden", "500": "ErrorInternal",
                                          "503": "ErrorUnavailable"})
        if template is not None:
            allowed.pop("404")
        if str(status) not in allowed:
            return problems + ["%s %s: status %s, but the path %s" % (
                method, path, status, "has no such method" if template else "is not in the spec")]
        if status == 405 and "allow" not in headers:
            problems.append("405 without an Allow header")
        return problems + _check_error_body(method, body, allowed[str(status)])
    responses = op["responses"]
    resp_spec = responses.get(str(status))
    if resp_spec is None and str(status) in NGINX_REFUSALS:
        return problems + _check_error_body(method, body, NGINX_REFUSALS[str(status)])
    if resp_spec is None:
        return problems + ["%s %s: status %s is not documented (only %s)" % (
            method, template, status, ", ".join(sorted(responses)))]
    resp_spec = _deref(resp_spec)
    problems += _check_headers(resp_spec.get("headers"), headers)
    if method != "HEAD":
        problems += _check_body(resp_spec, status, headers, body)
    return problems


# Violations seen, from any thread; conftest fails the test they happened in.
_lock = threading.Lock()
violations = []


def record(what, problems):
    if problems:
        with _lock:
            violations.append("%s: %s" % (what, "; ".join(problems)))


def take_violations():
    with _lock:
        out = violations[:]
        del violations[:]
    return out
