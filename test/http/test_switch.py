#!/usr/bin/env python3
"""What the old service's users need of the HTTP layer (API.md, "Switching
from the old service"): CORS for their web client on another origin, gzip,
logged_at_str in the log items, login with spaces around the e-mail, and
GET /docs.

CORS is checked with real preflights, header by header, on every route of
`psk-shim --routes`, from a listed origin, an unlisted one and none, and
on the replies that follow them (errors too, h2o's own 413 among them).
The browser's side of it is test/browser.

Run by test/http/run.sh on a fresh psk_http database (setup.sql); reuses
test_http.py's helpers.  Prints "N passed, M failed" last.
"""
import gzip
import http.client
import json
import os
import re
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_http as h  # noqa: E402

WEB = "http://localhost:5173"           # the old web client's Vite origin
WEB2 = "http://127.0.0.1:4173"
STRANGER = "http://evil.example"
ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key"
CORS_SHIM = None                        # --cors-origins WEB,WEB2
TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


class Raw:
    """A reply as it came: status, headers in order (names lower-cased), body."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def get(self, name):
        vals = [v for k, v in self.headers if k == name]
        expect(len(vals) <= 1, f"{name} sent {len(vals)} times: {self.headers}")
        return vals[0] if vals else None

    def cors(self):
        return {k: v for k, v in self.headers if k.startswith("access-control-")}

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.headers} {self.body[:200]!r}>"


def raw(method, path, headers=None, body=None, shim=None, conn=None):
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", (shim or CORS_SHIM).port, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    if own:
        conn.close()
    return Raw(r.status, [(k.lower(), v) for k, v in r.getheaders()], data)


def route_methods():
    """path -> "GET, POST" as the shim's Allow header lists them."""
    out = {}
    for m, p, _, _ in h.routes():
        out.setdefault(p, []).append(m)
    return {p: ", ".join(ms) for p, ms in out.items()}


def sample_path(path):
    return path.replace("{code}", "OSV-001").replace("{file}", "swagger-ui.css")


def preflight(path, origin, method="POST", req_headers="authorization,content-type", shim=None):
    hdrs = {"Origin": origin, "Access-Control-Request-Method": method}
    if req_headers is not None:
        hdrs["Access-Control-Request-Headers"] = req_headers
    return raw("OPTIONS", path, hdrs, shim=shim)


def expect_preflight_ok(r, origin, methods):
    expect(r.status == 204, r)
    expect(r.cors() == {
        "access-control-allow-origin": origin,
        "access-control-allow-methods": methods,
        "access-control-allow-headers": ALLOW_HEADERS,
        "access-control-allow-credentials": "true",
        "access-control-max-age": "600",
    }, r)
    expect(r.get("vary") == "Origin", r)
    expect(r.body == b"", r)
    # 204: no body, so no Content-Length and no Content-Type
    expect(r.get("content-length") is None and r.get("content-type") is None, r)


def expect_cors_reply(r, origin):
    expect(r.cors() == {
        "access-control-allow-origin": origin,
        "access-control-allow-credentials": "true",
        "access-control-expose-headers": "Retry-After",
    }, r)
    expect("Origin" in [v.strip() for v in (r.get("vary") or "").split(",")], r)


# --- CORS ----------------------------------------------------------------------

@test
def cors_preflight_on_every_route_from_a_listed_origin():
    methods = route_methods()
    expect(len(methods) >= 25, methods)
    for path, allow in methods.items():
        for origin in (WEB, WEB2):
            for m in allow.split(", "):
                # with the headers the old client asks for, and with none
                for rh in ("authorization,content-type", None, "idempotency-key"):
                    expect_preflight_ok(preflight(sample_path(path), origin, m, rh), origin, allow)


@test
def cors_preflight_comes_before_every_other_check():
    # no token, a dead token, a wrong body type, an admin route: still 204,
    # and no database call (the preflight carries no credentials)
    for hdrs in ({}, {"Authorization": "Bearer nope"}, {"Content-Type": "text/plain"}):
        r = raw("OPTIONS", "/admin/users/update",
                dict(hdrs, Origin=WEB, **{"Access-Control-Request-Method": "PATCH"}))
        expect_preflight_ok(r, WEB, "PATCH")
    # a method the route does not take: the browser decides, from Allow-Methods
    expect_preflight_ok(preflight("/users/reserve", WEB, "DELETE"), WEB, "POST")
    # the origin as the browser wrote it is echoed; scheme and host match
    # case-insensitively
    expect_preflight_ok(preflight("/users/my", "HTTP://LOCALHOST:5173", "GET"),
                        "HTTP://LOCALHOST:5173", "GET")


@test
def cors_preflight_from_elsewhere_is_not_answered():
    methods = route_methods()
    for path, allow in methods.items():
        for origin in (STRANGER, "http://localhost:5174", "https://localhost:5173", "null"):
            r = preflight(sample_path(path), origin)
            h.expect_error(h.Resp(r.status, dict(r.headers), r.json()), 405, "method_not_allowed")
            expect(r.get("allow") == allow, r)
            expect(r.cors() == {}, r)
    # no Origin at all: an OPTIONS is a 405 as ever
    r = raw("OPTIONS", "/users/reserve", {"Access-Control-Request-Method": "POST"})
    expect(r.status == 405 and r.cors() == {} and r.get("allow") == "POST", r)
    # an OPTIONS from a listed origin that is no preflight: 405, with CORS
    r = raw("OPTIONS", "/users/reserve", {"Origin": WEB})
    expect(r.status == 405 and r.get("allow") == "POST", r)
    expect_cors_reply(r, WEB)
    # a preflight on a path that is no route: 404, with CORS
    r = preflight("/nope", WEB)
    expect(r.status == 404 and r.json()["error"] == "not_found", r)
    expect_cors_reply(r, WEB)


@test
def cors_headers_on_every_reply_to_a_listed_origin():
    # every route, as a caller without a token would call it: 401 for the
    # protected ones, 200 for the public ones; each with the CORS headers
    for m, p, who, _ in h.routes():
        r = raw(m, sample_path(p), {"Origin": WEB, "Content-Type": "application/json"},
                body=b"{}" if m in ("POST", "PATCH", "DELETE") else None)
        if who == "public":
            expect(r.status in (200, 400, 401), (m, p, r))
        else:
            expect(r.status == 401, (m, p, r))
        expect_cors_reply(r, WEB)
        # from elsewhere: the same reply, no CORS header
        r2 = raw(m, sample_path(p), {"Origin": STRANGER, "Content-Type": "application/json"},
                 body=b"{}" if m in ("POST", "PATCH", "DELETE") else None)
        expect(r2.status == r.status and r2.cors() == {}, (m, p, r2))
        expect(r2.get("vary") is not None and "Origin" in r2.get("vary"), r2)


@test
def cors_with_credentials_the_whole_cycle():
    # what the old client does, each call as the browser sends it after its
    # preflight: the form login (no preflight: a simple request), then
    # bearer calls with JSON bodies
    r = raw("POST", "/auth/login", {"Origin": WEB,
            "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"},
            body=b"username=osv%40example.com&password=Rdl%4012345")
    expect(r.status == 200, r)
    expect_cors_reply(r, WEB)
    tok = r.json()["access_token"]
    auth = {"Origin": WEB, "Authorization": f"Bearer {tok}", "Content-Type": "application/json"}
    for path, method in (("/auth/me", "GET"), ("/users/reserve", "POST"), ("/users/my", "GET"),
                         ("/users/release", "POST"), ("/auth/logout", "POST")):
        expect_preflight_ok(preflight(path, WEB, method), WEB, route_methods()[path])
    r = raw("GET", "/auth/me", auth)
    expect(r.status == 200 and r.json()["contact_email"] == "osv@example.com", r)
    expect_cors_reply(r, WEB)
    r = raw("POST", "/users/reserve", auth, body=json.dumps({"tester_name": "web"}).encode())
    expect(r.status == 200, r)
    expect_cors_reply(r, WEB)
    code = r.json()["code"]
    expect(h.code_row(code)[:3] == ("RESERVED", "osv@example.com", "web"), h.code_row(code))
    r = raw("GET", "/users/my", auth)
    expect(r.status == 200 and code in [c["code"] for c in r.json()], r)
    expect_cors_reply(r, WEB)
    r = raw("POST", "/users/release", auth, body=json.dumps({"code": code, "note": "web"}).encode())
    expect(r.status == 200 and r.json()["released"] == code, r)
    expect_cors_reply(r, WEB)
    expect(h.code_row(code)[0] == "CAN_BE_USED", h.code_row(code))
    expect(h.last_audit(code)[:2] == ("RELEASED", "osv@example.com"), h.last_audit(code))
    # logout as the old client sends it: JSON content type, no body
    r = raw("POST", "/auth/logout", auth)
    expect(r.status == 200, r)
    expect_cors_reply(r, WEB)
    r = raw("GET", "/auth/me", auth)
    expect(r.status == 401 and r.get("www-authenticate") == "Bearer", r)
    expect_cors_reply(r, WEB)


@test
def cors_on_errors_h2o_makes_and_on_429():
    # a body over the limit: h2o refuses it before any handler; the reply
    # still names the origin
    r = raw("POST", "/users/reserve", {"Origin": WEB, "Content-Type": "application/json"},
            body=b"x" * (64 * 1024 + 1))
    expect(r.status == 413 and r.json()["error"] == "payload_too_large", r)
    expect_cors_reply(r, WEB)
    # locked out: Retry-After is there, and exposed to the page
    for _ in range(5):
        raw("POST", "/auth/login", {"Origin": WEB, "Content-Type": "application/json"},
            body=json.dumps({"username": "cors-lock@example.com", "password": "wrong-pass"}).encode())
    r = raw("POST", "/auth/login", {"Origin": WEB, "Content-Type": "application/json"},
            body=json.dumps({"username": "cors-lock@example.com", "password": "wrong-pass"}).encode())
    expect(r.status == 429 and r.get("retry-after") is not None, r)
    expect_cors_reply(r, WEB)


@test
def cors_off_by_default():
    # the main shim of these tests has no --cors-origins
    r = preflight("/users/reserve", WEB, shim=h.MAIN)
    expect(r.status == 405 and r.get("allow") == "POST", r)
    expect(r.cors() == {} and r.get("vary") is None, r)
    r = raw("GET", "/healthz", {"Origin": WEB}, shim=h.MAIN)
    expect(r.status == 200 and r.cors() == {} and r.get("vary") is None, r)


@test
def cors_origins_from_the_environment_and_bad_values():
    shim = h.Shim(name="cors-env", env={"PSK_CORS_ORIGINS": "http://a.test:8080"})
    try:
        expect_preflight_ok(preflight("/users/my", "http://a.test:8080", "GET", shim=shim),
                            "http://a.test:8080", "GET")
        expect(preflight("/users/my", WEB, "GET", shim=shim).status == 405, "WEB not listed")
    finally:
        expect(shim.stop() == 0, "cors-env shim exit status")
    # the flag wins over the environment
    shim = h.Shim(name="cors-flag", args=["--cors-origins", WEB],
                  env={"PSK_CORS_ORIGINS": "http://a.test:8080"})
    try:
        expect_preflight_ok(preflight("/users/my", WEB, "GET", shim=shim), WEB, "GET")
        expect(preflight("/users/my", "http://a.test:8080", "GET", shim=shim).status == 405, "env used")
    finally:
        expect(shim.stop() == 0, "cors-flag shim exit status")
    for bad in ("localhost:5173", "http://localhost:5173/", "http://x/app", "*", "ftp://x"):
        p = h.subprocess.run([h.SHIM, "--cors-origins", bad, "--routes"], capture_output=True, text=True)
        expect(p.returncode == 2 and "not an origin" in p.stderr, (bad, p.returncode, p.stderr))


# --- gzip -------------------------------------------------------------------------

def gz_pair(method, path, headers=None, body=None, accept="gzip, deflate, br"):
    plain = raw(method, path, dict(headers or {}), body)
    comp = raw(method, path, dict(headers or {}, **{"Accept-Encoding": accept}), body)
    return plain, comp


def expect_gzipped(plain, comp):
    expect(plain.get("content-encoding") is None, plain)
    expect(comp.get("content-encoding") == "gzip", comp)
    expect(int(comp.get("content-length")) == len(comp.body), comp.headers)
    expect(comp.get("transfer-encoding") is None, comp.headers)
    expect(len(comp.body) < len(plain.body), (len(comp.body), len(plain.body)))
    expect(gzip.decompress(comp.body) == plain.body, "the decompressed body differs")
    for r in (plain, comp):
        expect("Accept-Encoding" in (r.get("vary") or ""), r.headers)


@test
def gzip_large_replies_when_accepted():
    # the document, a list of every code, a page of the log
    admin = {"Authorization": "Bearer " + h.token("admin")}
    for path in ("/openapi.json", "/admin/logs?page_size=50",
                 "/admin/codes?page_size=100"):
        plain, comp = gz_pair("GET", path, admin)
        expect(plain.status == comp.status == 200, (path, plain, comp))
        expect(len(plain.body) > 1000, (path, len(plain.body)))
        expect_gzipped(plain, comp)
        expect(plain.get("content-type") == comp.get("content-type") == "application/json", comp)
    # an error over 1,000 bytes too (the JSON parser quotes the bad token)
    osv = {"Authorization": "Bearer " + h.token("osv"), "Content-Type": "application/json"}
    bad = b'{"code": ' + b"x" * 1500 + b"}"
    plain, comp = gz_pair("POST", "/users/release", osv, bad)
    expect(plain.status == comp.status == 400 and len(plain.body) > 1000, (plain.status, len(plain.body)))
    expect_gzipped(plain, comp)
    expect(json.loads(gzip.decompress(comp.body))["error"] == "invalid_input", comp)


@test
def gzip_only_over_1000_bytes_and_only_when_accepted():
    admin = {"Authorization": "Bearer " + h.token("admin")}
    # small: never compressed, no Vary: Accept-Encoding (Vary: Origin, as
    # CORS is on in this shim)
    r = raw("GET", "/healthz", {"Accept-Encoding": "gzip"})
    expect(r.status == 200 and r.get("content-encoding") is None and r.get("vary") == "Origin", r)
    # exactly at the edge: /admin/logs pages whose length straddles 1,000
    sizes = {}
    for n in range(1, 12):
        r = raw("GET", f"/admin/logs?page_size={n}", admin)
        sizes[n] = len(r.body)
        c = raw("GET", f"/admin/logs?page_size={n}", dict(admin, **{"Accept-Encoding": "gzip"}))
        expect((c.get("content-encoding") == "gzip") == (len(r.body) > 1000), (n, len(r.body), c.headers))
    expect(min(sizes.values()) <= 1000 < max(sizes.values()), sizes)
    # what a client refuses or does not name is not used
    for accept, gz in (("gzip;q=0", False), ("gzip; q=0.000", False), ("identity", False),
                       ("deflate, br", False), ("*", True), ("*;q=0", False),
                       ("GZIP;q=0.5", True), ("br, gzip;q=1.0", True), ("x-gzip", True),
                       ("gzip;q=0, *", False), ("", False)):
        r = raw("GET", "/openapi.json", {"Accept-Encoding": accept})
        expect((r.get("content-encoding") == "gzip") == gz, (accept, r.headers))
        if gz:
            expect(json.loads(gzip.decompress(r.body))["openapi"].startswith("3."), accept)
        else:
            expect(json.loads(r.body)["openapi"].startswith("3."), accept)


@test
def gzip_keeps_the_connection():
    # Content-Length is the compressed size: the next request on the same
    # connection is read right
    conn = http.client.HTTPConnection("127.0.0.1", CORS_SHIM.port, timeout=10)
    for _ in range(3):
        r = raw("GET", "/openapi.json", {"Accept-Encoding": "gzip", "Origin": WEB}, conn=conn)
        expect(r.status == 200 and r.get("content-encoding") == "gzip", r.headers)
        expect(r.get("connection") == "keep-alive", r.headers)
        expect_cors_reply(r, WEB)
        r = raw("GET", "/healthz", {"Accept-Encoding": "gzip"}, conn=conn)
        expect(r.status == 200 and json.loads(r.body) == {"status": "ok"}, r)
    conn.close()


# --- logged_at_str ----------------------------------------------------------------

STR = re.compile(r"^\d\d-\d\d-\d{4} (0[1-9]|1[0-2]):[0-5]\d:[0-5]\d (AM|PM)$")


def expected_str(iso, zone):
    return h.one(f"SELECT to_char('{iso}'::timestamptz AT TIME ZONE '{zone}', "
                 f"'DD-MM-YYYY HH12:MI:SS AM')")


def check_log_items(shim, zone):
    osv = h.login("osv@example.com")
    r = h.call("GET", "/users/logs", token=osv, shim=shim)
    expect(r.status == 200 and r.body["logs"], r)
    for item in r.body["logs"]:
        expect(STR.match(item["logged_at_str"]), item)
        expect(item["logged_at_str"] == expected_str(item["logged_at"], zone), (item, zone))
        expect(list(item)[:3] == ["id", "logged_at", "logged_at_str"], list(item))
    r = h.call("GET", "/admin/logs?page_size=100", token=h.login("admin@example.com"), shim=shim)
    expect(r.status == 200 and len(r.body["logs"]) > 5, r)
    for item in r.body["logs"]:
        expect(item["logged_at_str"] == expected_str(item["logged_at"], zone), (item, zone))
    return r.body["logs"]


@test
def logged_at_str_in_utc_by_default_and_in_the_set_zone():
    # a known moment: a reservation logged at 21:05:09 UTC, which is
    # 02:35:09 AM the next day in India
    code = h.reserve("osv")["code"]
    h.sql("ALTER TABLE psk.audit_log DISABLE TRIGGER audit_log_no_update")
    try:
        h.sql(f"UPDATE psk.audit_log SET logged_at = '2026-03-04 21:05:09.75+00' "
              f"WHERE code = '{code}' AND action = 'RESERVED'")
    finally:
        h.sql("ALTER TABLE psk.audit_log ENABLE TRIGGER audit_log_no_update")
    logs = check_log_items(CORS_SHIM, "UTC")
    mine = [x for x in logs if x["code"] == code and x["action"] == "RESERVED"]
    expect([x["logged_at_str"] for x in mine] == ["04-03-2026 09:05:09 PM"], mine)
    h.sql("ALTER DATABASE psk_http SET psk.display_timezone = 'Asia/Kolkata'")
    shim = h.Shim(name="tz")              # new connections take the setting
    try:
        logs = check_log_items(shim, "Asia/Kolkata")
        mine = [x for x in logs if x["code"] == code and x["action"] == "RESERVED"]
        expect([x["logged_at_str"] for x in mine] == ["05-03-2026 02:35:09 AM"], mine)
        expect(mine[0]["logged_at"] == "2026-03-04T21:05:09.75+00:00", mine)
    finally:
        h.sql("ALTER DATABASE psk_http RESET psk.display_timezone")
        expect(shim.stop() == 0, "tz shim exit status")
    h.call("POST", "/users/release", {"code": code}, token=h.token("osv"))


@test
def display_timezone_is_checked_and_only_for_superusers():
    for bad in ("Mars/Olympus_Mons", "", "UTC+99:99:99"):
        p = h.subprocess.run(["psql", "-X", "-c", "LOAD 'psk'", "-c",
                              f"SET psk.display_timezone = '{bad}'"], capture_output=True, text=True)
        expect(p.returncode != 0 and "invalid value" in p.stderr, (bad, p.stderr))
    p = h.subprocess.run(["psql", "-XAt", "-c", "LOAD 'psk'", "-c", "SHOW psk.display_timezone"],
                         capture_output=True, text=True)
    expect(p.stdout.split() == ["LOAD", "UTC"], ("default", p.stdout, p.stderr))
    p = h.subprocess.run(["psql", "-X", "-U", "psk_shim", "-c", "SELECT psk.http_healthz(NULL, NULL, '{}')",
                          "-c", "SET psk.display_timezone = 'Asia/Kolkata'"], capture_output=True, text=True)
    expect(p.returncode != 0 and "permission denied" in p.stderr, p.stderr)


# --- login trims the e-mail ------------------------------------------------------

@test
def login_trims_spaces_around_the_email():
    for form in ("username=+osv%40example.com+&password=Rdl%4012345",
                 "username=%09OSV%40example.com%0D%0A&password=Rdl%4012345"):
        r = h.call("POST", "/auth/login", raw=form, ctype="application/x-www-form-urlencoded")
        expect(r.status == 200 and r.body["token_type"] == "bearer", (form, r))
        me = h.call("GET", "/auth/me", token=r.body["access_token"])
        expect(me.body["contact_email"] == "osv@example.com", me)
    r = h.call("POST", "/auth/login", {"username": "  hsv@example.com ", "password": "Rdl@12345"})
    expect(r.status == 200, r)
    # the password is not trimmed
    h.expect_error(h.call("POST", "/auth/login", {"username": "hsv@example.com",
                                                  "password": " Rdl@12345 "}), 401, "unauthorized")
    # a failure counts against the account of the trimmed e-mail
    before = int(h.one("SELECT count(*) FROM psk.login_failures f JOIN psk.users u ON u.id = f.user_id WHERE u.email = 'hsv@example.com'"))
    h.expect_error(h.call("POST", "/auth/login", {"username": "\thsv@example.com  ",
                                                  "password": "wrong-password"}), 401, "unauthorized")
    after = int(h.one("SELECT count(*) FROM psk.login_failures f JOIN psk.users u ON u.id = f.user_id WHERE u.email = 'hsv@example.com'"))
    expect(after == before + 1, (before, after))
    # spaces only, or inside: still refused
    h.expect_error(h.call("POST", "/auth/login", {"username": "   ", "password": "Rdl@12345"}),
                   400, "invalid_input")
    h.expect_error(h.call("POST", "/auth/login", {"username": "hsv @example.com",
                                                  "password": "Rdl@12345"}), 401, "unauthorized")
    # in SQL too
    expect(h.one("SELECT token_type FROM psk_login(E' osv@example.com\\n', 'Rdl@12345')") == "bearer",
           "psk_login")
    h.sql("DELETE FROM psk.login_failures")


# --- GET /docs --------------------------------------------------------------------

@test
def docs_page_and_its_files():
    r = raw("GET", "/docs")
    expect(r.status == 200 and r.get("content-type") == "text/html; charset=utf-8", r)
    page = r.body.decode()
    for needle in ('href="docs/swagger-ui.css"', 'src="docs/swagger-ui-bundle.js"',
                   'url: "openapi.json"', "SwaggerUIBundle("):
        expect(needle in page, needle)
    expect("http://" not in page and "https://" not in page, "the page loads nothing from elsewhere")
    here = os.path.dirname(os.path.abspath(__file__))
    dist = os.path.join(here, "../../shim/docs/node_modules/swagger-ui-dist")
    for name, ctype in (("swagger-ui.css", "text/css; charset=utf-8"),
                        ("swagger-ui-bundle.js", "text/javascript; charset=utf-8")):
        with open(os.path.join(dist, name), "rb") as f:
            want = f.read()
        plain, comp = gz_pair("GET", f"/docs/{name}")
        expect(plain.status == 200 and plain.get("content-type") == ctype, plain.headers)
        expect(plain.body == want, f"{name} differs from the installed file")
        expect_gzipped(plain, comp)
    for bad in ("/docs/index.html", "/docs/../openapi.json", "/docs/swagger-ui.css.map",
                "/docs/package.json", "/docs/"):
        r = raw("GET", bad)
        expect(r.status == 404 and r.json()["error"] == "not_found", (bad, r))
    # no token needed, any method but GET is 405
    r = raw("POST", "/docs")
    expect(r.status == 405 and r.get("allow") == "GET", r)


@test
def docs_not_installed_is_503_and_the_api_still_works():
    shim = h.Shim(name="nodocs", args=["--docs-dir", "/nonexistent"])
    try:
        for path in ("/docs", "/docs/swagger-ui.css"):
            r = raw("GET", path, shim=shim)
            expect(r.status == 503 and r.json()["error"] == "unavailable", r)
            expect("scripts/deps.sh" in r.json()["message"], r)
        expect(raw("GET", "/healthz", shim=shim).status == 200, "healthz")
    finally:
        expect(shim.stop() == 0, "nodocs shim exit status")
    expect("swagger-ui-dist" in shim.log() or "/nonexistent" in shim.log(), shim.log())


def main():
    global CORS_SHIM
    h.MAIN = h.Shim(name="switch-main")
    CORS_SHIM = h.Shim(name="switch-cors", args=["--cors-origins", f"{WEB}, {WEB2}"])
    passed = failed = 0
    try:
        for fn in TESTS:
            try:
                fn()
                passed += 1
                print(f"ok - {fn.__name__}")
            except Exception:
                failed += 1
                print(f"not ok - {fn.__name__}")
                traceback.print_exc(file=sys.stdout)
    finally:
        for s in (CORS_SHIM, h.MAIN):
            rc = s.stop()
            if rc != 0:
                failed += 1
                print(f"not ok - {s.name} exited {rc}")
        sys.stdout.flush()
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
