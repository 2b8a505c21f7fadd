#!/usr/bin/env python3
"""HTTP tests of psk-shim: every endpoint of API.md over real HTTP, errors
included, and the state and audit rows each call leaves in the database.

Run by test/http/run.sh, which starts the cluster and loads setup.sql;
PGHOST/PGPORT/PGDATABASE point at it.  Python's standard library only.
Prints "N passed, M failed" last.
"""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback

WORK = os.environ["PSK_HTTP_WORK"]
SHIM = os.path.abspath(os.environ["PSK_SHIM"])
PGPORT = int(os.environ["PGPORT"])
DB = "psk_http"
PASSWORD = "Rdl@12345"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d$")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def conninfo(port=PGPORT):
    return f"host=127.0.0.1 port={port} dbname={DB} user=psk_shim"


# --- the database, through psql -------------------------------------------

def sql(query):
    """Rows of a query as tuples of strings ('' for NULL)."""
    out = subprocess.run(
        ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-F", "\x1f",
         "-c", query], capture_output=True, text=True, check=True).stdout
    return [tuple(line.split("\x1f")) for line in out.splitlines() if line != ""]


def one(query):
    rows = sql(query)
    assert len(rows) == 1 and len(rows[0]) == 1, rows
    return rows[0][0]


def audit_count():
    return int(one("SELECT count(*) FROM psk.audit_log"))


def fingerprint():
    """Everything psk holds: equal before and after a refused call."""
    return one("""SELECT md5(concat_ws('|',
        (SELECT string_agg(c::text, ',' ORDER BY c.id) FROM psk.codes c),
        (SELECT string_agg(u::text, ',' ORDER BY u.id) FROM psk.users u),
        (SELECT string_agg(cc::text, ',' ORDER BY cc.code_id, cc.country_id) FROM psk.code_countries cc),
        (SELECT count(*) FROM psk.audit_log)))""")


def code_row(code):
    rows = sql(f"""SELECT c.status, coalesce(u.email, ''), coalesce(c.tester_name, ''),
                          coalesce(c.reservation_token::text, ''), coalesce(c.note, '')
                     FROM psk.codes c LEFT JOIN psk.users u ON u.id = c.holder_id
                    WHERE c.code = '{code}'""")
    return rows[0] if rows else None


def last_audit(code):
    rows = sql(f"""SELECT action, coalesce(contact_email, ''), coalesce(tester_name, ''),
                          coalesce(country, ''), coalesce(region, ''), coalesce(note, ''),
                          coalesce(clearance_id, '')
                     FROM psk.audit_log WHERE code = '{code}' ORDER BY id DESC LIMIT 1""")
    return rows[0] if rows else None


# --- processes ---------------------------------------------------------------

class Shim:
    """A psk-shim process on a free port; stdout and stderr kept in files."""

    def __init__(self, db=None, args=(), env=None, name="shim", listen=True):
        self.port = free_port()
        self.name = name
        self.out_path = os.path.join(WORK, f"{name}-{self.port}.out")
        self.err_path = os.path.join(WORK, f"{name}-{self.port}.err")
        cmd = [SHIM, "--db", db or conninfo(), "--threads", "2", "--pool", "2", *args]
        if listen:
            cmd += ["--listen", f"127.0.0.1:{self.port}"]
        self.proc = subprocess.Popen(
            cmd, stdout=open(self.out_path, "w"), stderr=open(self.err_path, "w"),
            env=dict(os.environ, **(env or {})))
        with open(os.path.join(WORK, f"{name}-{self.port}.pid"), "w") as f:
            f.write(str(self.proc.pid))
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        raise RuntimeError(f"{name} did not start: {self.log()}")

    def stop(self, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            os.unlink(os.path.join(WORK, f"{self.name}-{self.port}.pid"))

    def log(self):
        return open(self.out_path).read() + open(self.err_path).read()


class Proxy:
    """A TCP relay in front of PostgreSQL that can be cut and restored."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.listener = None
        self.socks = []
        self.lock = threading.Lock()

    def up(self):
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(64)
        self.listener = ls
        threading.Thread(target=self._accept, args=(ls,), daemon=True).start()

    def _accept(self, ls):
        while True:
            try:
                client, _ = ls.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", PGPORT))
            except OSError:
                client.close()
                continue
            with self.lock:
                self.socks += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def down(self):
        if self.listener is not None:
            try:
                self.listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.listener.close()
            self.listener = None
        with self.lock:
            socks, self.socks = self.socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


# --- the HTTP client ---------------------------------------------------------

class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def __repr__(self):
        return f"<{self.status} {self.body!r}>"


MAIN = None                     # the shim most tests talk to


def call(method, path, body=None, token=None, ctype="application/json",
         raw=None, headers=None, shim=None, timeout=10, json_reply=True):
    """One request on a fresh connection.  Every reply must be JSON (but
    for a 200 with json_reply false: the /docs files; then body is bytes)."""
    port = (shim or MAIN).port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    hdrs = dict(headers or {})
    data = None
    if token is not None:
        hdrs["Authorization"] = "Bearer " + token
    if body is not None:
        data = json.dumps(body).encode()
    if raw is not None:
        data = raw.encode() if isinstance(raw, str) else raw
    if data is not None and ctype is not None:
        hdrs["Content-Type"] = ctype
    conn.request(method, path, body=data, headers=hdrs)
    r = conn.getresponse()
    text = r.read()
    conn.close()
    if not json_reply and r.status == 200:
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, text)
    assert r.getheader("Content-Type", "").startswith("application/json"), \
        (method, path, r.status, r.getheaders(), text[:200])
    return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, json.loads(text))


def expect_error(resp, status, kind):
    assert resp.status == status, (resp, status, kind)
    assert set(resp.body) == {"error", "message"}, resp
    assert resp.body["error"] == kind, (resp, kind)
    assert isinstance(resp.body["message"], str) and resp.body["message"], resp


TOKENS = {}


def login(email, password=PASSWORD):
    r = call("POST", "/auth/login", raw=f"username={email}&password={password}",
             ctype="application/x-www-form-urlencoded")
    assert r.status == 200, r
    return r.body["access_token"]


def token(who):
    if who not in TOKENS:
        TOKENS[who] = login(f"{who}@example.com")
    return TOKENS[who]


def reserve(who="osv", **fields):
    fields.setdefault("tester_name", "tester")
    r = call("POST", "/users/reserve", fields, token=token(who))
    assert r.status == 200, r
    return r.body


def routes():
    out = subprocess.run([SHIM, "--routes"], capture_output=True, text=True, check=True).stdout
    return [tuple(line.split()) for line in out.splitlines()]


# --- the tests ---------------------------------------------------------------

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


@test
def service_healthz():
    r = call("GET", "/healthz")
    assert r.status == 200 and r.body == {"status": "ok"}, r


@test
def service_openapi_matches_route_table():
    r = call("GET", "/openapi.json")
    assert r.status == 200 and r.body["openapi"].startswith("3."), r.status
    documented = {(m.upper(), p) for p, ops in r.body["paths"].items() for m in ops}
    table = {(m, p) for m, p, _, _ in routes()}
    assert documented == table, (documented ^ table)
    # every route but the public three needs the bearer token, in both
    for m, p, who, _ in routes():
        public = r.body["paths"][p][m.lower()].get("security") == []
        assert public == (who == "public"), (m, p, who)
    with open(os.path.join(os.path.dirname(__file__), "../../shim/openapi.json")) as f:
        assert json.load(f) == r.body


@test
def route_unknown_path_is_404():
    for path in ("/nope", "/users", "/users/my/", "/USERS/MY", "/admin/codes/A/B"):
        expect_error(call("GET", path), 404, "not_found")


@test
def route_wrong_method_is_405_with_allow():
    r = call("GET", "/users/reserve")
    expect_error(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "POST", r.headers
    r = call("PUT", "/auth/me")
    assert r.status == 405 and r.headers["allow"] == "GET, POST", r
    # fixed paths win over /admin/codes/{code}
    r = call("DELETE", "/admin/codes/all", token=token("admin"))
    assert r.status == 405 and r.headers["allow"] == "GET", r
    r = call("DELETE", "/admin/codes/add", token=token("admin"))
    assert r.status == 405 and r.headers["allow"] == "POST", r
    r = call("GET", "/admin/codes/OSV-001", token=token("admin"))
    assert r.status == 405 and r.headers["allow"] == "DELETE", r
    r = call("OPTIONS", "/healthz")
    assert r.status == 405 and r.headers["allow"] == "GET", r


@test
def size_limit_is_413_after_route_before_token():
    big = "x" * (64 * 1024 + 1)
    expect_error(call("POST", "/users/reserve", raw=big), 413, "payload_too_large")
    expect_error(call("POST", "/users/reserve", raw=big, token=token("osv")), 413,
                 "payload_too_large")
    expect_error(call("POST", "/nope", raw=big), 404, "not_found")
    r = call("PUT", "/users/reserve", raw=big)
    assert r.status == 405 and r.headers["allow"] == "POST", r
    # exactly at the limit: not too large (then the missing token: 401)
    expect_error(call("POST", "/users/reserve", raw="x" * 65536), 401, "unauthorized")


@test
def size_limit_with_chunked_body():
    s = socket.create_connection(("127.0.0.1", MAIN.port), timeout=10)
    chunk = b"y" * 40000
    req = (b"POST /users/reserve HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
           b"Content-Type: application/json\r\n\r\n")
    for _ in range(2):
        req += b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    req += b"0\r\n\r\n"
    try:
        s.sendall(req)
    except OSError:
        pass
    data = b""
    while True:
        try:
            part = s.recv(65536)
        except OSError:
            break
        if not part:
            break
        data += part
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), data[:300]
    assert b"application/json" in head.lower(), head
    assert json.loads(body)["error"] == "payload_too_large", body


@test
def malformed_http_gets_json_400():
    s = socket.create_connection(("127.0.0.1", MAIN.port), timeout=10)
    s.sendall(b"POST /users/reserve HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    data = s.recv(65536)
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), data
    assert json.loads(body)["error"] == "invalid_input", body


@test
def deeply_nested_json_is_400_not_500():
    # PostgreSQL's JSON parser runs out of stack (SQLSTATE 54001): the
    # client's input, so 400 invalid_input, never 500
    for body in ("[" * 65000, '{"tester_name": ' + "[" * 30000 + "]" * 30000 + "}"):
        expect_error(call("POST", "/users/reserve", raw=body, token=token("osv")), 400,
                     "invalid_input")


@test
def error_bodies_escape_the_message_and_append_the_detail():
    # the shim writes these itself: the message JSON-escaped, a detail
    # appended in parentheses
    t = token("osv")
    r = call("POST", "/users/release", raw='{"code": ', token=t)
    expect_error(r, 400, "invalid_input")
    assert r.body["message"] == "invalid input syntax for type json (The input string ended unexpectedly.)", r
    code = 'A"B\\C\nD\x01E\u00e9\u2603'
    r = call("POST", "/users/release", {"code": code}, token=t)
    expect_error(r, 404, "not_found")
    assert r.body["message"] == f'unknown code "{code}"', r


@test
def token_and_role_are_checked_before_the_body():
    bad = "not-a-live-token"
    expect_error(call("POST", "/users/reserve", raw="{}", ctype="text/plain"), 401, "unauthorized")
    expect_error(call("POST", "/users/reserve", raw="{}", ctype="text/plain", token=bad),
                 401, "unauthorized")
    expect_error(call("POST", "/users/reserve", raw="{nope", token=bad), 401, "unauthorized")
    expect_error(call("GET", "/users/recent-releases?n=1&n=2", token=bad), 401, "unauthorized")
    # a live token: the body's problem
    expect_error(call("POST", "/users/reserve", raw="{}", ctype="text/plain", token=token("osv")),
                 415, "unsupported_media_type")
    expect_error(call("POST", "/users/reserve", raw="{nope", token=token("osv")), 400,
                 "invalid_input")
    # role before body: an admin's malformed body is 403, not 400, and so
    # is a user's on an admin route, or a body of the wrong media type
    expect_error(call("POST", "/users/reserve", raw="[1]", token=token("admin")), 403,
                 "not_allowed")
    expect_error(call("POST", "/admin/codes/restore", raw="{nope", token=token("osv")), 403,
                 "not_allowed")
    expect_error(call("POST", "/users/reserve", raw="{}", ctype="text/plain", token=token("admin")),
                 403, "not_allowed")
    expect_error(call("POST", "/admin/codes/restore", raw="{}", ctype="text/plain",
                      token=token("osv")), 403, "not_allowed")
    expect_error(call("GET", "/admin/codes?page_size=1&page_size=2", token=token("osv")), 403,
                 "not_allowed")
    expect_error(call("POST", "/admin/codes/restore", raw="{}", ctype="text/plain",
                      token=token("admin")), 415, "unsupported_media_type")


@test
def auth_header_variants():
    r = call("GET", "/auth/me")
    expect_error(r, 401, "unauthorized")
    assert r.headers.get("www-authenticate") == "Bearer", r.headers
    expect_error(call("GET", "/auth/me", headers={"Authorization": "Basic eDp5"}), 401,
                 "unauthorized")
    expect_error(call("GET", "/auth/me", headers={"Authorization": "Bearer "}), 401,
                 "unauthorized")
    expect_error(call("GET", "/auth/me", headers={"Authorization": "Bearer a b"}), 401,
                 "unauthorized")
    r = call("GET", "/auth/me", headers={"Authorization": "bearer " + token("osv")})
    assert r.status == 200, r


@test
def auth_login_form_and_json():
    r = call("POST", "/auth/login", raw="username=OSV%40example.com&password=Rdl%4012345&grant_type=password",
             ctype="application/x-www-form-urlencoded")
    assert r.status == 200, r
    assert r.body["token_type"] == "bearer" and isinstance(r.body["expires_in"], int), r
    assert len(r.body["access_token"]) >= 20
    r = call("POST", "/auth/login", {"username": "osv@example.com", "password": PASSWORD})
    assert r.status == 200 and r.body["token_type"] == "bearer", r
    expect_error(call("POST", "/auth/login", {"username": "osv@example.com"}), 400, "invalid_input")
    expect_error(call("POST", "/auth/login", raw="username=osv%40example.com",
                      ctype="application/x-www-form-urlencoded"), 400, "invalid_input")
    expect_error(call("POST", "/auth/login", {"username": 1, "password": "x"}), 400, "invalid_input")
    expect_error(call("POST", "/auth/login", raw="username=a&username=b&password=x",
                      ctype="application/x-www-form-urlencoded"), 400, "invalid_input")
    expect_error(call("POST", "/auth/login", raw="x", ctype="text/plain"), 415,
                 "unsupported_media_type")
    wrong = call("POST", "/auth/login", {"username": "osv@example.com", "password": "wrong"})
    unknown = call("POST", "/auth/login", {"username": "nobody@example.com", "password": "wrong"})
    expect_error(wrong, 401, "unauthorized")
    expect_error(unknown, 401, "unauthorized")
    assert wrong.body == unknown.body, (wrong, unknown)


@test
def auth_lockout_is_429_with_retry_after():
    r = call("POST", "/admin/users/create", {"team_name": "Lock", "user_name": "lock",
             "contact_email": "lock@example.com", "password": PASSWORD}, token=token("admin"))
    assert r.status == 200, r
    max_failures = int(one("SELECT coalesce(current_setting('psk.login_max_failures', true), '5')"))
    for _ in range(max_failures):
        expect_error(call("POST", "/auth/login", {"username": "lock@example.com", "password": "bad"}),
                     401, "unauthorized")
    assert int(one("""SELECT count(*) FROM psk.login_failures f JOIN psk.users u ON u.id = f.user_id
                       WHERE u.email = 'lock@example.com'""")) == max_failures
    r = call("POST", "/auth/login", {"username": "lock@example.com", "password": PASSWORD})
    expect_error(r, 429, "locked_out")
    assert int(r.headers["retry-after"]) > 0, r.headers


@test
def auth_me_get_and_post():
    for method in ("GET", "POST"):
        r = call(method, "/auth/me", token=token("osv"))
        assert r.status == 200, r
        assert r.body == {"id": int(one("SELECT id FROM psk.users WHERE email = 'osv@example.com'")),
                          "user_name": "osv", "team_name": "Trillium",
                          "contact_email": "osv@example.com", "is_admin": False, "pool": "OSV"}, r
    r = call("GET", "/auth/me", token=token("admin"))
    assert r.status == 200 and r.body["is_admin"] is True, r


@test
def auth_logout_revokes():
    t = login("hsv@example.com")
    revoked = int(one("SELECT count(*) FROM psk.sessions WHERE revoked_at IS NOT NULL"))
    r = call("POST", "/auth/logout", token=t)
    assert r.status == 200 and isinstance(r.body["msg"], str), r
    expect_error(call("GET", "/auth/me", token=t), 401, "unauthorized")
    expect_error(call("POST", "/auth/logout", token=t), 401, "unauthorized")
    assert int(one("SELECT count(*) FROM psk.sessions WHERE revoked_at IS NOT NULL")) == revoked + 1


@test
def users_reserve_one():
    before = audit_count()
    r = call("POST", "/users/reserve", {"tester_name": "alice"}, token=token("osv"))
    assert r.status == 200, r
    b = r.body
    assert set(b) == {"code", "code_type", "reservation_token", "reserved_at", "expires_at"}, b
    assert b["code_type"] == "OSV" and ISO.match(b["reserved_at"]) and b["expires_at"] is None, b
    assert code_row(b["code"]) == ("RESERVED", "osv@example.com", "alice", b["reservation_token"], ""), \
        code_row(b["code"])
    assert audit_count() == before + 1
    assert last_audit(b["code"])[:3] == ("RESERVED", "osv@example.com", "alice")


@test
def users_reserve_many_and_country():
    before = audit_count()
    r = call("POST", "/users/reserve", {"tester_name": "bob", "how_many": 2, "country": "UK"},
             token=token("osv"))
    assert r.status == 200 and list(r.body) == ["codes"] and len(r.body["codes"]) == 2, r
    for c in r.body["codes"]:
        assert c["code_type"] == "OSV" and code_row(c["code"])[0] == "RESERVED", c
        assert last_audit(c["code"])[:5] == ("RESERVED", "osv@example.com", "bob", "UK", "Europe")
    assert audit_count() == before + 2
    # how_many given as 1 still answers with a list
    r = call("POST", "/users/reserve", {"tester_name": "bob", "how_many": 1}, token=token("hsv"))
    assert r.status == 200 and len(r.body["codes"]) == 1 and r.body["codes"][0]["code_type"] == "HSV", r


@test
def users_reserve_refusals_change_nothing():
    before = fingerprint()
    t = token("osv")
    for body, status, kind in (
            ({"tester_name": 5}, 400, "invalid_input"),
            ({}, 400, "invalid_input"),
            ({"tester_name": "x", "how_many": "2"}, 400, "invalid_input"),
            ({"tester_name": "x", "how_many": 2.5}, 400, "invalid_input"),
            ({"tester_name": "x", "how_many": 0}, 400, "invalid_input"),
            ({"tester_name": "x", "how_many": 101}, 400, "invalid_input"),
            ({"tester_name": "x", "code_type": "NOPE"}, 400, "invalid_input"),
            ({"tester_name": "x", "country": "Atlantis"}, 400, "invalid_input"),
            ({"tester_name": "x", "how_many": 100}, 404, "no_codes_available")):
        r = call("POST", "/users/reserve", body, token=t)
        expect_error(r, status, kind)
    expect_error(call("POST", "/users/reserve", raw="[1, 2]", token=t), 400, "invalid_input")
    expect_error(call("POST", "/users/reserve", raw='{"tester_name": "x"', token=t), 400,
                 "invalid_input")
    expect_error(call("POST", "/users/reserve", raw=b'{"tester_name": "\xff"}', token=t), 400,
                 "invalid_input")
    r = call("POST", "/users/reserve", {"tester_name": 5}, token=t)
    assert "tester_name" in r.body["message"], r
    assert fingerprint() == before


@test
def users_confirm():
    b = reserve(tester_name="carol")
    t = token("osv")
    expect_error(call("POST", "/users/confirm", {"code": b["code"],
                      "reservation_token": "00000000-0000-4000-8000-000000000000"}, token=t),
                 409, "token_mismatch")
    expect_error(call("POST", "/users/confirm", {"code": b["code"], "reservation_token": "zz"},
                      token=t), 400, "invalid_input")
    expect_error(call("POST", "/users/confirm", {"code": b["code"],
                      "reservation_token": b["reservation_token"]}, token=token("hsv")),
                 403, "not_allowed")
    before = audit_count()
    r = call("POST", "/users/confirm", {"code": b["code"].lower(),
             "reservation_token": b["reservation_token"]}, token=t)
    assert r.status == 200 and r.body == {"code": b["code"], "status": "IN_USE"}, r
    assert code_row(b["code"])[0] == "IN_USE" and last_audit(b["code"])[0] == "CONFIRMED"
    assert audit_count() == before + 1
    expect_error(call("POST", "/users/confirm", {"code": b["code"],
                      "reservation_token": b["reservation_token"]}, token=t), 409, "wrong_state")


@test
def users_confirm_expired_is_410():
    sql("ALTER ROLE psk_shim SET psk.reservation_ttl = '1s'")
    try:
        short = Shim(name="ttl")        # new connections see the setting
        try:
            r = call("POST", "/users/reserve", {"tester_name": "dave"}, token=token("osv"), shim=short)
            assert r.status == 200 and ISO.match(r.body["expires_at"]), r
            b = r.body
        finally:
            assert short.stop() == 0
    finally:
        sql("ALTER ROLE psk_shim RESET psk.reservation_ttl")
    time.sleep(1.2)
    before = fingerprint()
    expect_error(call("POST", "/users/confirm", {"code": b["code"],
                      "reservation_token": b["reservation_token"]}, token=token("osv")),
                 410, "reservation_expired")
    assert fingerprint() == before
    # its holder may still release it
    r = call("POST", "/users/release", {"code": b["code"]}, token=token("osv"))
    assert r.status == 200, r


@test
def users_release():
    b = reserve(tester_name="erin")
    before = audit_count()
    sent = "  " + b["code"].lower() + " "
    r = call("POST", "/users/release", {"code": sent, "clearance_id": "CL-7", "note": "done"},
             token=token("osv"))
    assert r.status == 200, r
    assert r.body == {"released": b["code"], "requested": sent, "clearance_id": "CL-7"}, r
    assert code_row(b["code"])[:4] == ("CAN_BE_USED", "", "", "")
    assert last_audit(b["code"])[0] == "RELEASED" and "CL-7" in last_audit(b["code"])
    assert audit_count() == before + 1
    r = call("POST", "/users/release", {"code": b["code"]}, token=token("osv"))
    expect_error(r, 409, "wrong_state")
    expect_error(call("POST", "/users/release", {"code": "NO-SUCH"}, token=token("osv")),
                 404, "not_found")
    other = reserve("hsv")
    before = fingerprint()
    expect_error(call("POST", "/users/release", {"code": other["code"]}, token=token("osv")),
                 403, "not_allowed")
    expect_error(call("POST", "/users/release", {}, token=token("osv")), 400, "invalid_input")
    assert fingerprint() == before
    r = call("POST", "/users/release", {"code": other["code"]}, token=token("hsv"))
    assert r.status == 200 and r.body["clearance_id"] is None, r


@test
def users_mark_non_usable_and_comment():
    b = reserve(tester_name="frank")
    t = token("osv")
    expect_error(call("POST", "/users/mark-non-usable", {"code": b["code"]}, token=t), 400,
                 "invalid_input")
    r = call("POST", "/users/comment", {"code": b["code"], "comment": "flaky device"}, token=t)
    assert r.status == 200, r
    assert r.body["code"] == b["code"] and r.body["comment"] == "flaky device" and r.body["message"], r
    assert code_row(b["code"])[4] == "flaky device" and last_audit(b["code"])[0] == "COMMENTED"
    expect_error(call("POST", "/users/comment", {"code": b["code"], "comment": 3}, token=t), 400,
                 "invalid_input")
    r = call("POST", "/users/mark-non-usable", {"code": b["code"], "reason": "broken"}, token=t)
    assert r.status == 200 and r.body == {"code": b["code"], "status": "NON_USABLE"}, r
    assert code_row(b["code"])[0] == "NON_USABLE" and last_audit(b["code"])[0] == "MARKED_NON_USABLE"


@test
def users_my_codes():
    b = reserve(tester_name="gina", country="DE")
    r = call("GET", "/users/my", token=token("osv"))
    assert r.status == 200 and isinstance(r.body, list), r
    held = {row[0] for row in sql("""SELECT c.code FROM psk.codes c JOIN psk.users u ON u.id = c.holder_id
                                      WHERE u.email = 'osv@example.com'""")}
    assert {c["code"] for c in r.body} == held, (r.body, held)
    mine = [c for c in r.body if c["code"] == b["code"]][0]
    assert set(mine) == {"code", "code_type", "status", "tester_name", "requested_at", "expires_at",
                         "reservation_token", "note", "countries", "regions"}, mine
    assert mine["requested_at"] == b["reserved_at"] and mine["tester_name"] == "gina", mine
    assert "DE" in mine["countries"] and "Europe" in mine["regions"], mine
    times = [c["requested_at"] for c in r.body]
    assert times == sorted(times, reverse=True), times


def release_all(who, codes):
    for c in codes:
        r = call("POST", "/users/release", {"code": c}, token=token(who))
        assert r.status == 200, r


def with_settings(settings, fn):
    """fn(shim) with a shim whose new connections run with settings
    (ALTER ROLE psk_shim SET ...), reset afterwards."""
    for name, value in settings.items():
        sql(f"ALTER ROLE psk_shim SET {name} = '{value}'")
    try:
        shim = Shim(name="settings")
        try:
            return fn(shim)
        finally:
            assert shim.stop() == 0
    finally:
        for name in settings:
            sql(f"ALTER ROLE psk_shim RESET {name}")


@test
def users_renew():
    t = token("osv")
    b = reserve(tester_name="renata")
    before = audit_count()
    # psk.reservation_ttl 0: held until released, renewed and logged all the same
    r = call("POST", "/users/renew", {"code": b["code"].lower(), "reservation_token": b["reservation_token"]},
             token=t)
    assert r.status == 200 and r.body == {"code": b["code"], "status": "RESERVED", "expires_at": None}, r
    assert audit_count() == before + 1
    assert last_audit(b["code"])[:3] == ("RENEWED", "osv@example.com", "renata")
    # the refusals, in the contract's order, each changing nothing
    other = reserve("hsv", tester_name="renata")
    free = one("SELECT code FROM psk.codes WHERE status = 'CAN_BE_USED' AND pool = 'OSV' ORDER BY code LIMIT 1")
    before = fingerprint()
    for body, who, status, kind in (
            ({}, "admin", 403, "not_allowed"),
            ({}, "osv", 400, "invalid_input"),
            ({"code": b["code"]}, "osv", 400, "invalid_input"),
            ({"code": b["code"], "reservation_token": "zz"}, "osv", 400, "invalid_input"),
            ({"code": "NO-SUCH", "reservation_token": b["reservation_token"]}, "osv", 404, "not_found"),
            ({"code": free, "reservation_token": b["reservation_token"]}, "osv", 409, "wrong_state"),
            ({"code": other["code"], "reservation_token": other["reservation_token"]}, "osv", 403,
             "not_allowed"),
            ({"code": b["code"], "reservation_token": other["reservation_token"]}, "osv", 409,
             "token_mismatch")):
        expect_error(call("POST", "/users/renew", body, token=token(who)), status, kind)
    assert fingerprint() == before
    # a lapsed hold: 410, swept or not
    sql(f"""UPDATE psk.codes SET reserved_at = now() - interval '1 hour',
                                 expires_at = now() - interval '1 second' WHERE code = '{b["code"]}'""")
    renew = {"code": b["code"], "reservation_token": b["reservation_token"]}
    expect_error(call("POST", "/users/renew", renew, token=t), 410, "reservation_expired")
    sql("SELECT psk_expire_reservations()")
    assert code_row(b["code"])[0] == "CAN_BE_USED"
    before = fingerprint()
    expect_error(call("POST", "/users/renew", renew, token=t), 410, "reservation_expired")
    assert fingerprint() == before
    release_all("hsv", [other["code"]])

    # with psk.in_use_ttl: confirm sets the expiry of the code in use, renew
    # starts it again from now; /users/my shows it
    def in_use(shim):
        b = call("POST", "/users/reserve", {"tester_name": "ursula"}, token=t, shim=shim).body
        r = call("POST", "/users/confirm", {"code": b["code"], "reservation_token": b["reservation_token"]},
                 token=t, shim=shim)
        assert r.status == 200, r
        exp = one(f"SELECT expires_at - confirmed_at FROM psk.codes WHERE code = '{b['code']}'")
        assert exp == "01:00:00", exp
        mine = [c for c in call("GET", "/users/my", token=t, shim=shim).body if c["code"] == b["code"]][0]
        assert mine["status"] == "IN_USE" and ISO.match(mine["expires_at"]), mine
        time.sleep(0.01)
        r = call("POST", "/users/renew", {"code": b["code"], "reservation_token": b["reservation_token"]},
                 token=t, shim=shim)
        assert r.status == 200 and r.body["status"] == "IN_USE" and ISO.match(r.body["expires_at"]), r
        assert r.body["expires_at"] > mine["expires_at"], (r.body, mine)
        return b["code"]
    code = with_settings({"psk.in_use_ttl": "1h"}, in_use)
    release_all("osv", [code])


@test
def admin_codes_overdue():
    b = reserve(tester_name="olga")
    h = reserve("hsv", tester_name="olga")
    sql(f"UPDATE psk.codes SET reserved_at = now() - interval '8 days' WHERE code = '{b['code']}'")
    sql(f"UPDATE psk.codes SET reserved_at = now() - interval '3 days' WHERE code = '{h['code']}'")
    a = token("admin")
    r = call("GET", "/admin/codes/overdue", token=a)
    assert r.status == 200 and list(r.body) == ["codes"], r
    assert [c["code"] for c in r.body["codes"]] == [b["code"]], r
    row = r.body["codes"][0]
    assert set(row) == {"code", "code_type", "status", "holder", "tester_name", "reserved_at", "expires_at",
                        "held_for"}, row
    assert (row["code_type"], row["status"], row["holder"], row["tester_name"]) == \
        ("OSV", "RESERVED", "osv@example.com", "olga"), row
    assert ISO.match(row["reserved_at"]) and row["expires_at"] is None, row
    assert row["held_for"].startswith("8 days"), row
    # older_than, a PostgreSQL interval; code_type; longest held first
    r = call("GET", "/admin/codes/overdue?older_than=2%20days", token=a)
    assert [c["code"] for c in r.body["codes"]] == [b["code"], h["code"]], r
    r = call("GET", "/admin/codes/overdue?older_than=P2D&code_type=HSV", token=a)
    assert [c["code"] for c in r.body["codes"]] == [h["code"]], r
    r = call("GET", "/admin/codes/overdue?older_than=1+year", token=a)
    assert r.status == 200 and r.body == {"codes": []}, r
    for q, word in (("older_than=soon", "older_than"), ("older_than=-1%20day", "older_than"),
                    ("code_type=NOPE", "NOPE"), ("older_than=1&older_than=2", "older_than")):
        r = call("GET", "/admin/codes/overdue?" + q, token=a)
        expect_error(r, 400, "invalid_input")
        assert word in r.body["message"], r
    release_all("osv", [b["code"]])
    release_all("hsv", [h["code"]])


def remembered(key):
    return int(one(f"SELECT count(*) FROM psk.reserve_requests WHERE request_id = '{key}'"))


@test
def users_reserve_idempotency_key():
    t = token("osv")
    key = {"Idempotency-Key": "http-retry-1"}
    r1 = call("POST", "/users/reserve", {"tester_name": "ida"}, token=t, headers=key)
    assert r1.status == 200 and set(r1.body) == {"code", "code_type", "reservation_token", "reserved_at",
                                                 "expires_at"}, r1
    before = fingerprint()
    r2 = call("POST", "/users/reserve", {"tester_name": "ida"}, token=t, headers=key)
    assert r2.status == 200 and r2.body == r1.body, (r1, r2)
    assert fingerprint() == before and remembered("http-retry-1") == 1
    # even after the code was released: the first reply again
    release_all("osv", [r1.body["code"]])
    r3 = call("POST", "/users/reserve", {"tester_name": "ida"}, token=t, headers=key)
    assert r3.status == 200 and r3.body == r1.body, (r1, r3)
    # another body with the key: 409 conflict; without the key: a new code
    before = fingerprint()
    expect_error(call("POST", "/users/reserve", {"tester_name": "ida", "how_many": 2}, token=t, headers=key),
                 409, "conflict")
    assert fingerprint() == before
    # how_many: {"codes": [...]}, the same again
    k2 = {"Idempotency-Key": "http-retry-2"}
    m1 = call("POST", "/users/reserve", {"tester_name": "ida", "how_many": 2}, token=t, headers=k2)
    m2 = call("POST", "/users/reserve", {"tester_name": "ida", "how_many": 2}, token=t, headers=k2)
    assert m1.status == 200 and len(m1.body["codes"]) == 2 and m2.body == m1.body, (m1, m2)
    release_all("osv", [c["code"] for c in m1.body["codes"]])
    # the key per user: hsv's "http-retry-1" is its own
    h = call("POST", "/users/reserve", {"tester_name": "ida"}, token=token("hsv"), headers=key)
    assert h.status == 200 and h.body["code"] != r1.body["code"], h
    release_all("hsv", [h.body["code"]])
    # bad keys, refused before anything: empty, too long, in the query
    # string, twice; an admin's is 403 whatever the key
    before = fingerprint()
    for hdrs, status, kind in (({"Idempotency-Key": ""}, 400, "invalid_input"),
                               ({"Idempotency-Key": "k" * 256}, 400, "invalid_input")):
        r = call("POST", "/users/reserve", {"tester_name": "ida"}, token=t, headers=hdrs)
        expect_error(r, status, kind)
        assert "Idempotency-Key" in r.body["message"], r
    expect_error(call("POST", "/users/reserve?Idempotency-Key=q", {"tester_name": "ida"}, token=t), 400,
                 "invalid_input")
    expect_error(call("POST", "/users/reserve", {"tester_name": "ida"}, token=token("admin"),
                      headers={"Idempotency-Key": ""}), 403, "not_allowed")
    s = socket.create_connection(("127.0.0.1", MAIN.port), timeout=10)
    body = b'{"tester_name": "ida"}'
    s.sendall(b"POST /users/reserve HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + t.encode() +
              b"\r\nContent-Type: application/json\r\nIdempotency-Key: a\r\nidempotency-key: b\r\n"
              b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
    data = b""
    while True:
        part = s.recv(65536)
        if not part:
            break
        data += part
    s.close()
    assert data.startswith(b"HTTP/1.1 400"), data[:200]
    assert fingerprint() == before and remembered("") == 0
    # 255 characters: a key
    k = {"Idempotency-Key": "k" * 255}
    r = call("POST", "/users/reserve", {"tester_name": "ida"}, token=t, headers=k)
    assert r.status == 200 and remembered("k" * 255) == 1, r
    release_all("osv", [r.body["code"]])


@test
def users_reserve_idempotency_key_concurrent():
    """Retries racing each other: one reservation, one reply for all.  A
    psql session holds osv's user row locked (FOR UPDATE: every reserve waits) while
    the requests arrive, so that they all wait and then run one by one."""
    t = token("osv")
    key = {"Idempotency-Key": "http-race-1"}
    audit = audit_count()
    locker = subprocess.Popen(["psql", "-X", "-q", "-c",
                               "BEGIN; SELECT FROM psk.users WHERE email = 'osv@example.com' FOR UPDATE;"
                               " SELECT pg_sleep(1); COMMIT"], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if one("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'") == "1":
                break
            time.sleep(0.02)
        results = []
        threads = [threading.Thread(target=lambda: results.append(
            call("POST", "/users/reserve", {"tester_name": "race"}, token=t, headers=key)))
            for _ in range(6)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(15)
    finally:
        locker.wait()
    assert len(results) == 6 and all(r.status == 200 for r in results), results
    assert all(r.body == results[0].body for r in results), results
    assert audit_count() == audit + 1, "more than one reservation"
    assert int(one("SELECT count(*) FROM psk.codes WHERE tester_name = 'race'")) == 1
    assert remembered("http-race-1") == 1
    # and without the lock: twelve at once, still one
    key = {"Idempotency-Key": "http-race-2"}
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        call("POST", "/users/reserve", {"tester_name": "race2"}, token=t, headers=key))) for _ in range(12)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(15)
    assert len(results) == 12 and all(r.status == 200 and r.body == results[0].body for r in results), results
    assert int(one("SELECT count(*) FROM psk.codes WHERE tester_name = 'race2'")) == 1
    release_all("osv", [results[0].body["code"],
                        one("SELECT code FROM psk.codes WHERE tester_name = 'race'")])


@test
def users_reserve_quota_is_409():
    held = int(one("""SELECT count(*) FROM psk.codes c JOIN psk.users u ON u.id = c.holder_id
                       WHERE u.email = 'osv@example.com'"""))

    def at_quota(shim):
        t = token("osv")
        r = call("POST", "/users/reserve", {"tester_name": "quinn"}, token=t, shim=shim)
        assert r.status == 200, r
        before = fingerprint()
        for body in ({"tester_name": "quinn"}, {"tester_name": "quinn", "how_many": 3}):
            r = call("POST", "/users/reserve", body, token=t, shim=shim)
            expect_error(r, 409, "quota_exceeded")
            assert "psk.max_held_per_user" in r.body["message"], r
        assert fingerprint() == before
        # another user is not held back
        h = call("POST", "/users/reserve", {"tester_name": "quinn"}, token=token("hsv"), shim=shim)
        assert h.status == 200, h
        return [h.body["code"]]
    hsv_codes = with_settings({"psk.max_held_per_user": held + 1}, at_quota)
    release_all("hsv", hsv_codes)
    release_all("osv", [c for (c,) in sql("SELECT code FROM psk.codes WHERE tester_name = 'quinn'")])


@test
def users_logs():
    for _ in range(4):          # more than 20 rows for osv by now
        b = reserve(tester_name="logger")
        assert call("POST", "/users/release", {"code": b["code"]}, token=token("osv")).status == 200
    r = call("GET", "/users/logs", token=token("osv"))
    assert r.status == 200 and list(r.body) == ["logs"], r
    logs = r.body["logs"]
    expected = [int(x[0]) for x in sql("""SELECT a.id FROM psk.audit_log a
        JOIN psk.users u ON u.id = a.user_id WHERE u.email = 'osv@example.com'
        ORDER BY a.logged_at DESC, a.id DESC LIMIT 20""")]
    assert [l["id"] for l in logs] == expected, ([l["id"] for l in logs], expected)
    assert len(logs) == 20 and ISO.match(logs[0]["logged_at"]), logs[:1]
    assert set(logs[0]) == {"id", "logged_at", "logged_at_str", "action", "code", "tester_name",
                            "country", "region", "note"}


@test
def users_recent_releases():
    t = token("osv")
    r = call("GET", "/users/recent-releases?n=2", token=t)
    assert r.status == 200 and len(r.body) == 2, r
    assert set(r.body[0]) == {"code", "code_type", "released_at", "released_by", "note"}
    last = sql("""SELECT code FROM psk.audit_log WHERE action = 'RELEASED' ORDER BY id DESC LIMIT 2""")
    assert [x["code"] for x in r.body] == [c[0] for c in last], (r.body, last)
    assert "@" in r.body[0]["released_by"]
    r = call("GET", "/users/recent-releases?code_type=HSV&n=10", token=t)
    assert r.status == 200 and r.body and all(x["code_type"] == "HSV" for x in r.body), r
    r = call("GET", "/users/recent-releases?code_type=", token=t)       # empty: no filter
    assert r.status == 200 and len(r.body) <= 5, r
    for q in ("n=0", "n=abc", "n=101", "n=1&n=2", "n=%zz", "code_type=NOPE"):
        expect_error(call("GET", "/users/recent-releases?" + q, token=t), 400, "invalid_input")


@test
def countries_for_users_and_admins():
    expected = [{"id": int(i), "country": c, "region": g} for i, c, g in sql(
        "SELECT c.id, c.name, r.name FROM psk.countries c JOIN psk.regions r ON r.id = c.region_id")]
    for path, who in (("/users/countries", "osv"), ("/admin/countries", "admin")):
        r = call("GET", path, token=token(who))
        assert r.status == 200, r
        assert sorted(r.body, key=lambda x: x["id"]) == sorted(expected, key=lambda x: x["id"]), r


@test
def roles_users_and_admins_refused_403():
    before = fingerprint()
    for method, path, who, _ in routes():
        p = path.replace("{code}", "OSV-001")
        if who == "user":
            r = call(method, p, token=token("admin"), raw="{}" if method != "GET" else None)
            expect_error(r, 403, "not_allowed")
        elif who == "admin":
            r = call(method, p, token=token("osv"), raw="{}" if method != "GET" else None)
            expect_error(r, 403, "not_allowed")
    assert fingerprint() == before


@test
def admin_count():
    r = call("GET", "/admin/count", token=token("admin"))
    assert r.status == 200, r
    keys = ["total", "can_be_used", "reserved", "in_use", "non_usable"]
    assert list(r.body) == keys + ["by_pool"] and list(r.body["by_pool"]) == ["OSV", "HSV", "COMMON"], r
    rows = sql("SELECT pool, status, count(*) FROM psk.codes GROUP BY 1, 2")
    for pool in ("OSV", "HSV", "COMMON"):
        mine = {s: int(n) for p, s, n in rows if p == pool}
        got = r.body["by_pool"][pool]
        assert got["total"] == sum(mine.values()), (pool, got, mine)
        for key, status in zip(keys[1:], ("CAN_BE_USED", "RESERVED", "IN_USE", "NON_USABLE")):
            assert got[key] == mine.get(status, 0), (pool, key, got, mine)
    assert r.body["total"] == int(one("SELECT count(*) FROM psk.codes"))


@test
def admin_users_create_update_delete():
    a = token("admin")
    before = audit_count()
    r = call("POST", "/admin/users/create", {"team_name": "OSV Lab", "user_name": "ivy",
             "contact_email": "Ivy@Example.com", "password": "Secret@123"}, token=a)
    assert r.status == 200, r
    uid = r.body["id"]
    assert r.body == {"id": uid, "user_name": "ivy", "team_name": "OSV Lab",
                      "contact_email": "ivy@example.com", "is_admin": False, "pool": "OSV"}, r
    assert sql(f"SELECT email, pool, is_admin FROM psk.users WHERE id = {uid}") == \
        [("ivy@example.com", "OSV", "f")]
    assert audit_count() == before + 1
    assert login("ivy@example.com", "Secret@123")
    fp = fingerprint()
    expect_error(call("POST", "/admin/users/create", {"team_name": "X", "user_name": "x",
                      "contact_email": "ivy@example.com", "password": "Secret@123"}, token=a),
                 409, "conflict")
    expect_error(call("POST", "/admin/users/create", {"team_name": "X", "user_name": "x",
                      "contact_email": "x@example.com", "password": "p", "is_admin": "yes"}, token=a),
                 400, "invalid_input")
    expect_error(call("POST", "/admin/users/create?user_name=y", {"team_name": "X", "user_name": "x",
                      "contact_email": "x@example.com", "password": "p"}, token=a), 400, "invalid_input")
    assert fingerprint() == fp
    # scalars from the query string
    r = call("POST", "/admin/users/create?team_name=Zeus%202&user_name=jack&contact_email=jack%40example.com"
             "&password=Secret%40123&is_admin=false&pool=COMMON", token=a)
    assert r.status == 200 and r.body["pool"] == "COMMON" and r.body["team_name"] == "Zeus 2", r
    jack = r.body["id"]

    r = call("PATCH", "/admin/users/update", {"id": uid, "team_name": "HSV Lab", "pool": "HSV"}, token=a)
    assert r.status == 200 and r.body["team_name"] == "HSV Lab" and r.body["pool"] == "HSV", r
    assert r.body["user_name"] == "ivy", r
    assert sql(f"SELECT team_name, pool FROM psk.users WHERE id = {uid}") == [("HSV Lab", "HSV")]
    r = call("PATCH", f"/admin/users/update?id={uid}&is_admin=true", token=a)
    assert r.status == 200 and r.body["is_admin"] is True, r
    r = call("PATCH", f"/admin/users/update?id={uid}", {"is_admin": False}, token=a)
    assert r.status == 200 and r.body["is_admin"] is False, r
    expect_error(call("PATCH", "/admin/users/update", {"team_name": "x"}, token=a), 400, "invalid_input")
    expect_error(call("PATCH", "/admin/users/update", {"id": "1"}, token=a), 400, "invalid_input")
    expect_error(call("PATCH", "/admin/users/update", {"id": 999999, "team_name": "x"}, token=a),
                 404, "not_found")
    expect_error(call("PATCH", f"/admin/users/update?id={uid}", {"id": uid}, token=a), 400,
                 "invalid_input")

    # ivy holds a code: delete refused
    ivy = login("ivy@example.com", "Secret@123")
    r = call("POST", "/users/reserve", {"tester_name": "t"}, token=ivy)
    assert r.status == 200, r
    expect_error(call("DELETE", "/admin/users/delete", {"id": uid}, token=a), 409, "conflict")
    assert call("POST", "/users/release", {"code": r.body["code"]}, token=ivy).status == 200
    r = call("DELETE", "/admin/users/delete", {"id": uid}, token=a)
    assert r.status == 200 and isinstance(r.body["message"], str), r
    assert one(f"SELECT count(*) FROM psk.users WHERE id = {uid}") == "0"
    r = call("DELETE", f"/admin/users/delete?id={jack}", token=a)
    assert r.status == 200, r
    expect_error(call("DELETE", f"/admin/users/delete?id={jack}", token=a), 404, "not_found")
    expect_error(call("DELETE", "/admin/users/delete", token=a), 400, "invalid_input")


@test
def admin_users_list():
    r = call("GET", "/admin/users/get-users", token=token("admin"))
    assert r.status == 200, r
    by_email = {u["contact_email"]: u for u in r.body}
    assert {u[0] for u in sql("SELECT email FROM psk.users")} == set(by_email)
    osv = by_email["osv@example.com"]
    held = sorted(c[0] for c in sql("""SELECT c.code FROM psk.codes c JOIN psk.users u ON u.id = c.holder_id
                                        WHERE u.email = 'osv@example.com'"""))
    assert osv["reserved_count"] == len(held) and sorted(osv["reserved_codes"]) == held, (osv, held)
    assert set(osv) == {"id", "user_name", "team_name", "contact_email", "is_admin", "pool",
                        "reserved_count", "reserved_codes"}


@test
def admin_codes_add():
    a = token("admin")
    before = audit_count()
    r = call("POST", "/admin/codes/add", {"code_type": "HSV", "countries": ["UK", "Mars"],
             "codes": [" new-1 ", "NEW-2", "new-1", "", "HSV-001"]}, token=a)
    assert r.status == 200, r
    assert r.body["inserted"] == ["NEW-1", "NEW-2"], r
    assert ["NEW-1", "duplicate_in_batch"] in r.body["failed"], r
    assert ["HSV-001", "duplicate_in_db"] in r.body["failed"], r
    assert r.body["unknown_countries"] == ["Mars"], r
    assert audit_count() == before + 2
    assert sql("""SELECT c.code, k.name FROM psk.codes c JOIN psk.code_countries cc ON cc.code_id = c.id
                  JOIN psk.countries k ON k.id = cc.country_id WHERE c.code LIKE 'NEW-%' ORDER BY 1""") == \
        [("NEW-1", "UK"), ("NEW-2", "UK")]
    assert last_audit("NEW-1")[0] == "ADDED"
    r = call("POST", "/admin/codes/add?code_type=COMMON", {"codes": ["NEW-3"]}, token=a)
    assert r.status == 200 and r.body["inserted"] == ["NEW-3"], r
    fp = fingerprint()
    expect_error(call("POST", "/admin/codes/add", {"code_type": "HSV", "codes": "NEW-4"}, token=a),
                 400, "invalid_input")
    expect_error(call("POST", "/admin/codes/add", {"code_type": "HSV", "codes": [4]}, token=a),
                 400, "invalid_input")
    expect_error(call("POST", "/admin/codes/add", {"code_type": "NOPE", "codes": ["NEW-4"]}, token=a),
                 400, "invalid_input")
    expect_error(call("POST", "/admin/codes/add?codes=NEW-4", {"code_type": "HSV"}, token=a),
                 400, "invalid_input")
    assert fingerprint() == fp


@test
def admin_codes_all():
    r = call("GET", "/admin/codes/all", token=token("admin"))
    assert r.status == 200 and list(r.body) == ["OSV", "HSV", "COMMON"], r
    rows = sql("SELECT pool, status, code FROM psk.codes")
    for pool in ("OSV", "HSV", "COMMON"):
        for key, status in (("reserved", "RESERVED"), ("in_use", "IN_USE"),
                            ("can_be_used", "CAN_BE_USED"), ("non_usable", "NON_USABLE")):
            expected = sorted(c for p, s, c in rows if p == pool and s == status)
            assert sorted(r.body[pool][key]) == expected, (pool, key)


@test
def admin_codes_paged():
    a = token("admin")
    seen = []
    after = None
    while True:
        q = "/admin/codes?code_type=OSV&page_size=7" + (f"&after={after}" if after else "")
        r = call("GET", q, token=a)
        assert r.status == 200 and set(r.body) == {"codes", "next_after"}, r
        seen += [c["code"] for c in r.body["codes"]]
        assert len(r.body["codes"]) <= 7
        after = r.body["next_after"]
        if after is None:
            break
        assert after == r.body["codes"][-1]["code"]
    expected = [c[0] for c in sql("SELECT code FROM psk.codes WHERE pool = 'OSV' ORDER BY code COLLATE \"C\"")]
    assert seen == expected, (seen, expected)
    r = call("GET", "/admin/codes?status=RESERVED", token=a)
    assert r.status == 200 and all(c["status"] == "RESERVED" and c["holder"] for c in r.body["codes"]), r
    assert set(r.body["codes"][0]) == {"code", "code_type", "status", "holder", "tester_name",
                                       "reserved_at", "expires_at", "released_at", "note", "countries"}
    for q in ("page_size=0", "page_size=x", "status=WHATEVER"):
        expect_error(call("GET", "/admin/codes?" + q, token=a), 400, "invalid_input")


@test
def admin_codes_delete():
    a = token("admin")
    before = audit_count()
    r = call("DELETE", "/admin/codes/new-3", token=a)           # normalised like any code
    assert r.status == 200 and isinstance(r.body["message"], str), r
    assert code_row("NEW-3") is None and last_audit("NEW-3")[0] == "DELETED"
    assert audit_count() == before + 1
    expect_error(call("DELETE", "/admin/codes/NEW-3", token=a), 404, "not_found")
    held = reserve(tester_name="hank")
    fp = fingerprint()
    expect_error(call("DELETE", "/admin/codes/" + held["code"], token=a), 409, "wrong_state")
    expect_error(call("DELETE", "/admin/codes/" + held["code"] + "?code=X", token=a), 400,
                 "invalid_input")
    expect_error(call("DELETE", "/admin/codes/%zz", token=a), 400, "invalid_input")
    assert fingerprint() == fp
    # percent-encoded
    assert call("POST", "/admin/codes/add", {"code_type": "COMMON", "codes": ["A+B"]}, token=a).status == 200
    r = call("DELETE", "/admin/codes/A%2BB", token=a)
    assert r.status == 200, r


@test
def admin_codes_disassociate_mark_restore():
    a = token("admin")
    held = reserve(tester_name="iris")
    r = call("POST", "/admin/codes/disassociate", {"code": held["code"], "note": "left"}, token=a)
    assert r.status == 200 and r.body == {"code": held["code"], "previous_holder": "osv@example.com"}, r
    assert code_row(held["code"])[:2] == ("CAN_BE_USED", "")
    assert last_audit(held["code"])[0] == "DISASSOCIATED"
    expect_error(call("POST", "/admin/codes/disassociate", {"code": held["code"]}, token=a), 409,
                 "wrong_state")
    r = call("POST", "/admin/codes/mark-non-usable", {"code": held["code"], "reason": "burnt"}, token=a)
    assert r.status == 200 and r.body == {"code": held["code"], "status": "NON_USABLE"}, r
    assert last_audit(held["code"])[0] == "MARKED_NON_USABLE"
    r = call("POST", f"/admin/codes/restore?code={held['code']}", token=a)
    assert r.status == 200 and r.body == {"code": held["code"], "status": "CAN_BE_USED"}, r
    assert code_row(held["code"])[0] == "CAN_BE_USED" and last_audit(held["code"])[0] == "RESTORED"
    expect_error(call("POST", "/admin/codes/restore", {"code": held["code"]}, token=a), 409,
                 "wrong_state")
    expect_error(call("POST", "/admin/codes/restore", {"code": "NOPE-1"}, token=a), 404, "not_found")
    expect_error(call("POST", f"/admin/codes/restore?code={held['code']}", {"code": held["code"]},
                      token=a), 400, "invalid_input")


@test
def admin_logs():
    a = token("admin")
    total = int(one("SELECT count(*) FROM psk.audit_log"))
    r = call("GET", "/admin/logs", token=a)
    assert r.status == 200 and r.body["total_count"] == total and len(r.body["logs"]) == 20, r
    assert r.body["total_is_estimate"] is False and list(r.body)[:2] == ["total_count", "total_is_estimate"], r
    newest = [int(x[0]) for x in sql("SELECT id FROM psk.audit_log ORDER BY logged_at DESC, id DESC LIMIT 20")]
    assert [l["id"] for l in r.body["logs"]] == newest
    assert set(r.body["logs"][0]) == {"id", "logged_at", "logged_at_str", "action", "code", "user_name",
                                      "contact_email", "tester_name", "country", "region", "note"}
    r = call("GET", "/admin/logs?action=RESERVED&user_name=OS&page_size=100", token=a)
    n = int(one("""SELECT count(*) FROM psk.audit_log WHERE action = 'RESERVED' AND user_name ILIKE '%os%'"""))
    assert r.body["total_count"] == n and all(l["action"] == "RESERVED" for l in r.body["logs"]), r
    r = call("GET", "/admin/logs?code=osv-00&page_size=100", token=a)
    assert r.status == 200 and r.body["logs"] and all(l["code"].startswith("OSV-00") for l in r.body["logs"]), r
    r = call("GET", f"/admin/logs?page={total}&page_size=100", token=a)      # past the end
    assert r.status == 200 and r.body == {"total_count": total, "total_is_estimate": False, "logs": []}, r
    today = one("SELECT (now() AT TIME ZONE 'UTC')::date")
    r = call("GET", f"/admin/logs?start_date={today}&end_date={today}", token=a)
    assert r.status == 200 and r.body["total_count"] == total, r           # the whole day
    r = call("GET", f"/admin/logs?end_date={today}T00:00:00Z", token=a)
    assert r.status == 200 and r.body["total_count"] == 0, r
    r = call("GET", "/admin/logs?start_date=2020-01-01T00:00:00%2B02:00", token=a)
    assert r.status == 200 and r.body["total_count"] == total, r
    for q in ("start_date=2030-01-02&end_date=2030-01-01", "start_date=yesterday",
              "end_date=2024-02-30", "page=0", "page_size=101", "page=x", "action=NOPE"):
        expect_error(call("GET", "/admin/logs?" + q, token=a), 400, "invalid_input")


@test
def timestamps_are_iso_8601_with_offset():
    r = call("GET", "/admin/logs?page_size=5", token=token("admin"))
    assert all(ISO.match(l["logged_at"]) for l in r.body["logs"]), r


@test
def privileges_only_the_route_functions():
    assert one("""SELECT count(*) FROM pg_proc WHERE pronamespace = 'psk'::regnamespace
                   AND proname LIKE 'http\\_%' AND has_function_privilege('public', oid, 'EXECUTE')""") == "0"
    assert one("SELECT has_table_privilege('psk_shim', 'psk.codes', 'SELECT')") == "f"
    n = int(one("""SELECT count(*) FROM pg_proc WHERE pronamespace = 'psk'::regnamespace
                    AND proname LIKE 'http\\_%' AND prosecdef"""))
    # the routes' functions, and those the CSV import calls besides its
    # route's: its batches and its report (shim/bulk.c)
    csv = {"psk.http_codes_import_rows", "psk.http_codes_import_report"}
    assert n == len({f for *_, f in routes() if f != "-"} | csv), n


@test
def edge_database_down_is_503_then_recovers():
    proxy = Proxy()
    proxy.up()
    shim = Shim(db=conninfo(proxy.port), name="proxied")
    try:
        t = token("osv")
        r = call("GET", "/healthz", shim=shim)
        assert r.status == 200, r
        # a request in flight when the connection is lost: 503
        locker = subprocess.Popen(["psql", "-X", "-q", "-c",
                                   "BEGIN; LOCK TABLE psk.codes; SELECT pg_sleep(3); COMMIT"],
                                  stdout=subprocess.DEVNULL)
        try:
            wait_for_lock()
            result = {}
            th = threading.Thread(target=lambda: result.update(r=call(
                "GET", "/users/my", token=t, shim=shim)))
            th.start()
            time.sleep(0.5)
            proxy.down()
            th.join(10)
            expect_error(result["r"], 503, "unavailable")
        finally:
            locker.wait()
        fp = fingerprint()
        expect_error(call("GET", "/healthz", shim=shim), 503, "unavailable")
        expect_error(call("POST", "/users/reserve", {"tester_name": "x"}, token=t, shim=shim),
                     503, "unavailable")
        expect_error(call("POST", "/auth/login", {"username": "osv@example.com", "password": PASSWORD},
                          shim=shim), 503, "unavailable")
        assert fingerprint() == fp
        # the shim itself keeps answering the routes without a database
        assert call("GET", "/openapi.json", shim=shim).status == 200
        expect_error(call("GET", "/nope", shim=shim), 404, "not_found")
        proxy.up()
        assert wait_healthy(shim, 15), shim.log()
        r = call("POST", "/users/reserve", {"tester_name": "back"}, token=t, shim=shim)
        assert r.status == 200, r
        assert call("POST", "/users/release", {"code": r.body["code"]}, token=t, shim=shim).status == 200
        assert "lost" in shim.log() and "re-established" in shim.log(), shim.log()
    finally:
        assert shim.stop() == 0
        proxy.down()


@test
def edge_database_absent_at_start():
    port = free_port()
    shim = Shim(db=conninfo(port), name="nodb")
    try:
        t0 = time.time()
        expect_error(call("GET", "/healthz", shim=shim), 503, "unavailable")
        assert time.time() - t0 < 3
        proxy = Proxy(port)
        proxy.up()
        try:
            assert wait_healthy(shim, 15), shim.log()
        finally:
            assert shim.stop() == 0
            proxy.down()
    finally:
        if shim.proc.poll() is None:
            shim.stop()


def wait_for_lock():
    for _ in range(100):
        if one("""SELECT count(*) FROM pg_locks WHERE relation = 'psk.codes'::regclass
                   AND mode = 'AccessExclusiveLock' AND granted""") == "1":
            return
        time.sleep(0.05)
    raise AssertionError("the lock was not taken")


def wait_healthy(shim, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if call("GET", "/healthz", shim=shim).status == 200:
            return True
        time.sleep(0.2)
    return False


@test
def edge_statement_timeout_and_queue_wait_are_503():
    shim = Shim(name="slow", args=("--timeout", "400ms", "--threads", "1", "--pool", "1"))
    locker = subprocess.Popen(["psql", "-X", "-q", "-c",
                               "BEGIN; LOCK TABLE psk.codes; SELECT pg_sleep(2); COMMIT"],
                              stdout=subprocess.DEVNULL)
    try:
        wait_for_lock()
        t = token("admin")
        results = []
        threads = [threading.Thread(target=lambda: results.append(
            call("GET", "/admin/count", token=t, shim=shim))) for _ in range(2)]
        t0 = time.time()
        for th in threads:
            th.start()
            time.sleep(0.05)
        for th in threads:
            th.join(10)
        assert time.time() - t0 < 1.5, "answered only after the lock went"
        messages = sorted(r.body["message"] for r in results)
        for r in results:
            expect_error(r, 503, "unavailable")
        # the statement timeout, or too long a wait for the one connection
        assert all(m in ("the database did not answer in time",
                         "no database connection became free in time") for m in messages), messages
    finally:
        locker.wait()
        assert shim.stop() == 0
    assert "unexpected" not in shim.log(), shim.log()


@test
def edge_sigterm_finishes_in_flight_then_exits_0():
    shim = Shim(name="drain")
    locker = subprocess.Popen(["psql", "-X", "-q", "-c",
                               "BEGIN; LOCK TABLE psk.codes; SELECT pg_sleep(1.5); COMMIT"],
                              stdout=subprocess.DEVNULL)
    try:
        wait_for_lock()
        t = token("admin")
        result = {}
        th = threading.Thread(target=lambda: result.update(r=call("GET", "/admin/count", token=t,
                                                                   shim=shim)))
        th.start()
        time.sleep(0.3)
        shim.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        try:
            socket.create_connection(("127.0.0.1", shim.port), timeout=1).close()
            refused = False
        except OSError:
            refused = True
        assert refused, "still accepting after SIGTERM"
        assert shim.proc.poll() is None, "exited with a request in flight"
        th.join(10)
        assert result["r"].status == 200 and "total" in result["r"].body, result
        assert shim.stop() == 0
    finally:
        locker.wait()
        if shim.proc.poll() is None:
            shim.stop()
    assert "SIGTERM" in shim.log()


@test
def config_help_and_environment():
    out = subprocess.run([SHIM, "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for flag in ("--listen", "--admin-listen", "--db", "--threads", "--pool", "--body-limit", "--timeout",
                 "--connect-timeout", "--shutdown-timeout", "--routes", "--help",
                 "--max-connections", "--idle-timeout", "--write-timeout", "--max-pipelined",
                 "--login-limit", "--login-limit-per-client",
                 "PSK_LISTEN", "PSK_DB", "DATABASE_URL", "PSK_MAX_CONNECTIONS", "PSK_IDLE_TIMEOUT",
                 "PSK_WRITE_TIMEOUT", "PSK_MAX_PIPELINED", "PSK_LOGIN_LIMIT",
                 "PSK_LOGIN_LIMIT_PER_CLIENT"):
        assert flag in out.stdout, flag
    bad = subprocess.run([SHIM, "--threads", "zero"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--threads" in bad.stderr
    for flag, value in (("--max-connections", "0"), ("--idle-timeout", "soon"),
                        ("--write-timeout", "-1s"), ("--max-pipelined", "x"),
                        ("--login-limit", "0"), ("--login-limit-per-client", "")):
        bad = subprocess.run([SHIM, flag, value], capture_output=True, text=True)
        assert bad.returncode == 2 and flag in bad.stderr, (flag, bad.stderr)
    # environment fallbacks: PSK_LISTEN, PSK_DB, PSK_BODY_LIMIT
    port = free_port()
    env = {"PSK_LISTEN": f"127.0.0.1:{port}", "PSK_DB": conninfo(), "PSK_BODY_LIMIT": "100"}
    proc_out = os.path.join(WORK, "env.out")
    proc = subprocess.Popen([SHIM, "--threads", "1"], stdout=open(proc_out, "w"),
                            stderr=subprocess.STDOUT, env=dict(os.environ, **env))
    try:
        fake = type("S", (), {"port": port})
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        assert call("GET", "/healthz", shim=fake).status == 200
        expect_error(call("POST", "/auth/login", raw="x" * 101, shim=fake), 413, "payload_too_large")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


def raw_get(path, tok, rcvbuf=None, pause=0.0):
    """GET path on a socket of its own; with rcvbuf and pause, a slow reader
    (a small receive window, and nothing read for a while): the shim's
    writes then stop part-way and resume.  Returns (head, body) as bytes."""
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", MAIN.port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\n"
              "Connection: close\r\n\r\n".encode())
    time.sleep(pause)
    data = b""
    while True:
        chunk = s.recv(rcvbuf or 65536)
        if not chunk:
            break
        data += chunk
        if pause:
            time.sleep(0.0005)
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    assert m and int(m.group(1)) == len(body), (head, len(body))
    return head, body


@test
def large_reply_reaches_a_slow_reader_whole():
    # The reply is the PGresult's own bytes (no copy): the result must live
    # until h2o has written it all, across partial writes (a reply larger
    # than the socket's send buffer), while other requests come and go
    # (and would reuse its memory, were it freed early).
    a = token("admin")
    sql("SELECT count(*) FROM psk_add_codes('admin@example.com', 'COMMON', "
        "ARRAY(SELECT format('BIG-%s-%s', lpad(g::text, 5, '0'), repeat('X', 118)) "
        "      FROM generate_series(1, 45000) g))")
    try:
        _, fast = raw_get("/admin/codes/all", a)
        # more than the kernel takes into a socket at once (tcp_wmem's 4 MB)
        assert len(fast) > 5_000_000, len(fast)
        slow = {}
        reader = threading.Thread(target=lambda: slow.update(
            zip(("head", "body"), raw_get("/admin/codes/all", a, rcvbuf=4096, pause=0.5))))
        reader.start()
        for _ in range(4):
            other = raw_get("/admin/codes?code_type=COMMON&page_size=10000", a)[1]
            assert len(json.loads(other)["codes"]) == 10000
            assert call("GET", "/users/my", token=token("osv")).status == 200
        reader.join(60)
        assert not reader.is_alive(), "the slow read did not finish"
        assert slow["head"].startswith(b"HTTP/1.1 200 "), slow["head"]
        assert slow["body"] == fast, "the slow reader got other bytes"
        assert len(json.loads(fast)["COMMON"]["can_be_used"]) >= 45000
    finally:
        sql("SELECT count(*) FROM psk.codes c, LATERAL psk_delete_code('admin@example.com', c.code) "
            "WHERE c.code LIKE 'BIG-%'")


@test
def access_log_lines_and_no_secrets():
    log = open(MAIN.out_path).read()
    lines = log.splitlines()
    assert any(re.search(r" POST /users/reserve 200 \d+\.\d{3}ms$", l) for l in lines), lines[:5]
    assert any(re.search(r" GET /admin/logs 200 ", l) for l in lines)
    assert not any("?" in l.split()[2] for l in lines if len(l.split()) > 2), "query strings logged"
    everything = MAIN.log()
    assert PASSWORD not in everything and "Secret@123" not in everything
    for t in TOKENS.values():
        assert t not in everything


@test
def malformed_input_leaves_no_secret_in_the_logs():
    """Passwords and tokens in every malformed body and bad argument we could
    think of, over HTTP and typed into psql, reach no log and no table:
    jsonb's errors quote the body (detail and context), uuid_in's quote the
    value, a statement that fails is logged with its literals, and a
    password typed into the e-mail field must not be kept as typed."""
    import secrets as rnd
    password = "Pw-" + rnd.token_hex(8)
    tok = "Tk-" + rnd.token_hex(8)
    uuid_tok = str(__import__("uuid").uuid4())
    bearer = "Br-" + rnd.token_hex(8)
    typed = "Typed-" + rnd.token_hex(8)
    secrets = (password, tok, uuid_tok, bearer, typed)
    hexed = [x.encode().hex() for x in (password, typed)]
    json_t = {"Content-Type": "application/json"}
    form = "application/x-www-form-urlencoded"
    nest = "[" * 10000 + "]" * 10000
    # (path, body, content type or None, expected status, token)
    osv, admin = token("osv"), token("admin")
    cases = [
        # login bodies that are not JSON, or not the JSON it takes
        ("/auth/login", '{"username": "osv@example.com", "password": "%s"' % password, json_t, 400, None),
        ("/auth/login", '{"username": "osv@example.com", "password": "%s",}' % password, json_t, 400, None),
        ("/auth/login", '{"username": "osv@example.com", "password": %s}' % password, json_t, 400, None),
        ("/auth/login", '{"username": "osv@example.com", "password": "%s\\u0000"}' % password, json_t, 400, None),
        ("/auth/login", '{"username": "osv@example.com", "password": "%s\\ud800"}' % password, json_t, 400, None),
        ("/auth/login", '{"username": "osv@example.com", "password": "%s\\q"}' % password, json_t, 400, None),
        ("/auth/login", '{"username": "osv@example.com", "password": "%s\n"}' % password, json_t, 400, None),
        ("/auth/login", '{"username": "osv@example.com", "password": "%s", "n": 1e999999999}' % password, json_t, 400, None),
        ("/auth/login", '{"username": "%s", "password": "x"' % password, json_t, 400, None),
        ("/auth/login", '{"password": "%s", "username": ' % password, json_t, 400, None),
        ("/auth/login", '[{"password": "%s"}, ' % password, json_t, 400, None),
        ("/auth/login", '["%s"]' % password, json_t, 400, None),
        ("/auth/login", '"%s"' % password, json_t, 400, None),
        ("/auth/login", '{"password": "%s", "x": %s}' % (password, nest), json_t, 400, None),
        ("/auth/login", '{"username": "osv@example.com", "password": ["%s"]}' % password, json_t, 400, None),
        ("/auth/login", '{"username": "osv@example.com", "password": {"p": "%s"}}' % password, json_t, 400, None),
        ("/auth/login", '{"username": ["%s"], "password": "%s"}' % (password, password), json_t, 400, None),
        ("/auth/login", '{"username": "osv@example.com", "password": "%s", "password": "%s"}' % (password, password), json_t, 401, None),
        ("/auth/login", '{"username": "osv@example.com", "password": "%s%s"}' % (password, "x" * 2000), json_t, 400, None),
        ("/auth/login", '{"username": "%s@", "password": "%s"}' % (password * 20, password), json_t, 400, None),
        ("/auth/login", '{"username": "", "password": "%s"}' % password, json_t, 400, None),
        ("/auth/login", '{"password": "%s"}' % password, json_t, 400, None),
        ("/auth/login", ('{"username": "osv@example.com", "password": "%s\xff"}' % password).encode("latin-1"),
         json_t, 400, None),
        ("/auth/login", "password=%s" % password, {"Content-Type": "text/plain"}, 415, None),
        # the form
        ("/auth/login", "username=osv%%40example.com&password=%s%%ZZ" % password, {"Content-Type": form}, 400, None),
        ("/auth/login", "username=osv%%40example.com&password=%s%%" % password, {"Content-Type": form}, 400, None),
        ("/auth/login", "username=osv%%40example.com&password=%s%%FF" % password, {"Content-Type": form}, 400, None),
        ("/auth/login", "username=osv%%40example.com&password=%s&password=%s" % (password, password),
         {"Content-Type": form}, 400, None),
        ("/auth/login", "username=%s" % password, {"Content-Type": form}, 400, None),
        ("/auth/login?password=%s" % password, "username=osv%%40example.com&password=%s" % password,
         {"Content-Type": form}, 401, None),
        # a password typed into the e-mail field: a failed login like any
        ("/auth/login", '{"username": "%s", "password": "x-wrong-1"}' % typed, json_t, 401, None),
        ("/auth/login", "username=%s&password=x-wrong-2" % typed, {"Content-Type": form}, 401, None),
        # reservation tokens
        ("/users/confirm", '{"code": "X-1", "reservation_token": "%s"' % tok, json_t, 400, osv),
        ("/users/confirm", '{"code": "X-1", "reservation_token": %s}' % tok, json_t, 400, osv),
        ("/users/confirm", '{"code": "X-1", "reservation_token": "%s"}' % tok, json_t, 400, osv),
        ("/users/confirm", '{"code": "X-1", "reservation_token": "{%s"}' % uuid_tok, json_t, 400, osv),
        ("/users/confirm", '{"code": "X-1", "reservation_token": "%s}"}' % uuid_tok, json_t, 400, osv),
        ("/users/confirm", '{"code": "X-1", "reservation_token": "%s-"}' % uuid_tok, json_t, 400, osv),
        ("/users/confirm", '{"code": "X-1", "reservation_token": ["%s"]}' % uuid_tok, json_t, 400, osv),
        ("/users/confirm", '{"code": "OSV-001", "reservation_token": "%s"}' % uuid_tok, json_t, 409, osv),
        # passwords of users made and changed by an admin
        ("/admin/users/create", '{"team_name": "T", "user_name": "n", "contact_email": "n@example.com", "password": "%s"'
         % password, json_t, 400, admin),
        ("/admin/users/create", '{"team_name": "T", "user_name": "n", "contact_email": "not an e-mail", "password": "%s"}'
         % password, json_t, 400, admin),
        ("/admin/users/create", '{"team_name": "T", "user_name": "n", "contact_email": "n@example.com", "password": "%s"}'
         % ("x" + password * 10), json_t, 400, admin),
        ("/admin/users/create", '{"team_name": "T", "user_name": "n", "contact_email": "n@example.com", "password": %s}'
         % password, json_t, 400, admin),
        ("/admin/users/create", '{"team_name": "T", "user_name": "n", "contact_email": "n@example.com", "password": "%s"}'
         % password, json_t, 403, osv),
        ("/admin/users/update", '{"id": 2, "password": "%s",}' % password, json_t, 400, admin),
        ("/admin/users/update", '{"id": -1, "password": "%s"}' % password, json_t, 400, admin),
        ("/admin/users/update", '{"id": 999999, "password": "%s"}' % password, json_t, 404, admin),
        ("/admin/users/update", '{"id": "x", "password": "%s"}' % password, json_t, 400, admin),
        ("/admin/users/update", '{"id": 2, "password": "short"}', json_t, 400, admin),
    ]
    for path, body, headers, status, tk in cases:
        method = "PATCH" if path.endswith("/update") else "POST"
        conn = http.client.HTTPConnection("127.0.0.1", MAIN.port, timeout=10)
        hdrs = dict(headers)
        if tk:
            hdrs["Authorization"] = "Bearer " + tk
        conn.request(method, path, body=body if isinstance(body, bytes) else body.encode(), headers=hdrs)
        r = conn.getresponse()
        text = r.read()
        conn.close()
        assert r.status == status, (path, body[:120], r.status, text[:200])
    # bearer tokens that are not well formed, or not known, on any route
    for value in ("Bearer " + bearer, "Bearer " + bearer + "!", "Bearer  " + bearer + " x",
                  "Basic " + __import__("base64").b64encode(("osv@example.com:" + password).encode()).decode(),
                  "bearer " + bearer * 40, bearer):
        r = call("GET", "/users/my", headers={"Authorization": value})
        expect_error(r, 401, "unauthorized")
    r = call("POST", "/auth/logout", headers={"Authorization": "Bearer " + bearer})
    assert r.status in (200, 401), r
    # psql, with the statements themselves not logged (log_statement)
    for stmt in (f"SELECT * FROM psk_login('', '{typed}')",
                 f"SELECT * FROM psk_login(NULL, '{typed}')",
                 f"SELECT * FROM psk_login(repeat('x', 300), '{typed}')",
                 f"SELECT * FROM psk_login('nobody@example.com', '{typed}')",
                 f"SELECT * FROM psk_login('osv@example.com', repeat('{typed}', 100))",
                 f"SELECT * FROM psk_login('{typed}', 'x')",
                 f"SELECT * FROM psk_create_user('admin@example.com', 'T', 'n', 'not an e-mail', '{typed}')",
                 f"SELECT * FROM psk_create_user('osv@example.com', 'T', 'n', 'n@example.com', '{typed}')",
                 f"SELECT * FROM psk_create_user('admin@example.com', 'T', 'n', 'n@example.com', repeat('{typed}', 10))",
                 f"SELECT * FROM psk_create_user('admin@example.com', NULL, 'n', 'n@example.com', '{typed}')",
                 f"SELECT * FROM psk_create_user('admin@example.com', 'T', 'n', 'osv@example.com', '{typed}')",
                 f"SELECT * FROM psk_update_user('admin@example.com', -1, password => '{typed}')",
                 f"SELECT * FROM psk_update_user('osv@example.com', 2, password => '{typed}')",
                 f"SELECT * FROM psk_update_user('admin@example.com', 2, password => repeat('{typed}', 10))",
                 f"SELECT * FROM psk_update_user('admin@example.com', 2, email => 'hsv@example.com', password => '{typed}')",
                 f"SELECT * FROM psk_session_user('{bearer}')",
                 f"SELECT * FROM psk_session_user('{typed}')",
                 f"BEGIN READ ONLY; SELECT * FROM psk_login('osv@example.com', '{typed}')"):
        p = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
                            "-c", "SET log_statement = none", "-c", stmt],
                           capture_output=True, text=True)
        assert p.returncode != 0 and "ERROR" in p.stderr, (stmt, p.stderr)
    log = MAIN.log()
    for secret in secrets:
        assert secret not in log, [l for l in log.splitlines() if secret in l][:4]
    path = os.environ.get("PSK_HTTP_SERVER_LOG")
    assert path, "no server log to read"
    log = open(path, errors="replace").read()
    assert "invalid input syntax for type json" in log, "the refusals are not in the log"
    for secret in secrets:
        assert secret not in log, [l for l in log.splitlines() if secret in l][:4]
    # nor in the table of failed logins, in any form
    rows = "\n".join("|".join(r) for r in sql("SELECT f::text FROM psk.login_failures f"))
    assert rows, "no failed login was recorded"
    for x in (typed, typed.lower(), *hexed):
        assert x not in rows.lower(), rows


@test
def server_log_has_no_secrets():
    path = os.environ.get("PSK_HTTP_SERVER_LOG")
    assert path, "no server log to read"
    # the lines of the shim's sessions (the fixture's own statements have literals)
    log = "\n".join(l for l in open(path, errors="replace").read().splitlines()
                    if " psk_shim " in l)
    assert "psk.http_login($1, $2, $3)" in log, "statements are not logged"
    for secret in (PASSWORD, "Secret@123"):
        assert secret not in log, [l for l in log.splitlines() if secret in l][:3]
    for t in TOKENS.values():
        assert t not in log


def main():
    global MAIN
    MAIN = Shim(name="main")
    passed = failed = 0
    only = os.environ.get("PSK_HTTP_ONLY")  # a test's name, to run it alone
    try:
        for fn in [t for t in TESTS if not only or t.__name__ == only]:
            try:
                fn()
                passed += 1
                print(f"ok - {fn.__name__}")
            except Exception:
                failed += 1
                print(f"not ok - {fn.__name__}")
                traceback.print_exc(file=sys.stdout)
    finally:
        rc = MAIN.stop()
        if rc != 0:
            failed += 1
            print(f"not ok - main shim exited {rc}")
        sys.stdout.flush()
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
