#!/usr/bin/env python3
"""Access control over HTTP: every route of the shim against every kind of
caller, one cell each, with its expected status and error kind.

Rows are the routes `psk-shim --routes` prints: a route without a row (or
a row without a route) fails, so a new route must say who may call it.
Columns:

  none       no Authorization header                           401 unauthorized
  malformed  "Bearer" with characters no token has             401 unauthorized
  unknown    a well-formed token that no login made            401 unauthorized
  revoked    a token of the row's role, logged out             401 unauthorized
  expired    a token of the row's role, past its expires_at    401 unauthorized
  admin      an admin on a /users/* route                      403 not_allowed
  user       a user on an /admin/* route                       403 not_allowed
  other      code routes: a user of another pool, not holder   403 not_allowed
  peer       code routes: a user of the same pool, not holder  403 not_allowed
  cross      a user asking for another pool's codes            200 (the contract allows it)
  right      the row's role: its 2xx, and the audit rows it writes

Public routes answer without a token and ignore a dead one.  A refused call
must change nothing: the fingerprint of codes, users, countries of codes
and the count of audit rows is the same before and after.

Run by test/http/run.sh on a fresh psk_http database (setup.sql), after
test_http.py; reuses its helpers.  Prints "N passed, M failed" last, one
test per cell plus the coverage check.
"""
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_http as h  # noqa: E402

MALFORMED = "not a token!"
UNKNOWN = "A" * 43                      # the shape of a real token
COLUMNS = ["none", "malformed", "unknown", "revoked", "expired",
           "admin", "user", "other", "peer", "cross", "right"]


class Req:
    """The request of a row, made from fixtures of its own: path (with {code}
    filled in) plus query string, JSON body; what the right caller gets
    (the action of the one audit row it writes, a check of the reply)."""

    def __init__(self, path, body=None, action=None, check=None, json=True, raw=None,
                 ctype="application/json"):
        self.path = path
        self.body = body
        self.raw = raw                  # a body sent as it is (CSV), with ctype
        self.ctype = ctype
        self.json = json                # the reply is JSON (not /docs, not CSV)
        self.action = action            # the one audit row it writes, if any
        self.check = check or (lambda r: None)


# --- fixtures, as the superuser through psql --------------------------------

def hold(who="osv"):
    """A code reserved by who: (code, reservation_token)."""
    return h.sql(f"SELECT code, reservation_token FROM psk_reserve('{who}@example.com', 'acl')")[0]


def free_code(n=[0]):
    n[0] += 1
    code = f"ACL-{n[0]:03d}"
    h.sql(f"SELECT FROM psk_add_codes('admin@example.com', 'COMMON', ARRAY['{code}'])")
    return code


def new_user(n=[0]):
    n[0] += 1
    return h.one(f"""SELECT id FROM psk_create_user('admin@example.com', 'Acl', 'acl{n[0]}',
                                                  'acl{n[0]}@example.com', 'Rdl@12345')""")


def status_of(code):
    row = h.code_row(code)
    return row[:2] if row else None


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


# --- the rows ----------------------------------------------------------------
# Each row: (method, path) -> a function making its Req.  Who may call the
# route comes from the route table itself (public, session, user, admin).

def r_login():
    return Req("/auth/login", {"username": "osv2@example.com", "password": h.PASSWORD},
               check=lambda r: expect(r.body["token_type"] == "bearer", r))


def r_me():
    return Req("/auth/me", check=lambda r: expect("@example.com" in r.body["contact_email"], r))


def r_logout():
    return Req("/auth/logout", check=lambda r: expect(r.body == {"msg": "logged out"}, r))


def r_reserve():
    return Req("/users/reserve", {"tester_name": "acl"}, "RESERVED",
               check=lambda r: expect(r.body["code_type"] == "OSV"
                                      and status_of(r.body["code"]) == ("RESERVED", "osv@example.com"), r))


def r_confirm():
    code, token = hold()
    return Req("/users/confirm", {"code": code, "reservation_token": token}, "CONFIRMED",
               check=lambda r: expect(status_of(code) == ("IN_USE", "osv@example.com"), r))


def r_renew():
    code, token = hold()
    return Req("/users/renew", {"code": code, "reservation_token": token}, "RENEWED",
               check=lambda r: expect(r.body == {"code": code, "status": "RESERVED", "expires_at": None}, r))


def r_overdue():
    code, _ = hold()
    h.sql(f"UPDATE psk.codes SET reserved_at = now() - interval '30 days' WHERE code = '{code}'")
    return Req("/admin/codes/overdue?older_than=29%20days",
               check=lambda r: expect([c["code"] for c in r.body["codes"]] == [code], r))


def r_release():
    code, _ = hold()
    return Req("/users/release", {"code": code}, "RELEASED",
               check=lambda r: expect(status_of(code) == ("CAN_BE_USED", ""), r))


def r_user_mark():
    code, _ = hold()
    return Req("/users/mark-non-usable", {"code": code, "reason": "acl"}, "MARKED_NON_USABLE",
               check=lambda r: expect(status_of(code)[0] == "NON_USABLE", r))


def r_comment():
    code, _ = hold()
    return Req("/users/comment", {"code": code, "comment": "acl"}, "COMMENTED",
               check=lambda r: expect(h.code_row(code)[4] == "acl", r))


def r_list(path, kind=list):
    return lambda: Req(path, check=lambda r: expect(isinstance(r.body, kind), r))


def r_recent():
    code, _ = hold()
    h.sql(f"SELECT FROM psk_release('osv@example.com', '{code}')")
    return Req("/users/recent-releases?code_type=OSV&n=5",
               check=lambda r: expect(r.body and all(x["code_type"] == "OSV" for x in r.body), r))


def r_create_user():
    return Req("/admin/users/create", {"team_name": "Acl", "user_name": "acl-new",
                                       "contact_email": "acl-new@example.com",
                                       "password": "S3cret-pass"}, "USER_CREATED",
               check=lambda r: expect(h.one("SELECT count(*) FROM psk.users WHERE email = "
                                            "'acl-new@example.com'") == "1", r))


def r_update_user():
    uid = new_user()
    return Req("/admin/users/update", {"id": int(uid), "user_name": "renamed"}, "USER_UPDATED",
               check=lambda r: expect(h.one(f"SELECT user_name FROM psk.users WHERE id = {uid}")
                                      == "renamed", r))


def r_delete_user():
    uid = new_user()
    return Req("/admin/users/delete", {"id": int(uid)}, "USER_DELETED",
               check=lambda r: expect(h.one(f"SELECT count(*) FROM psk.users WHERE id = {uid}")
                                      == "0", r))


def r_add_codes():
    return Req("/admin/codes/add", {"code_type": "COMMON", "codes": ["ACL-ADDED"]}, "ADDED",
               check=lambda r: expect(r.body["inserted"] == ["ACL-ADDED"], r))


def r_disassociate():
    code, _ = hold()
    return Req("/admin/codes/disassociate", {"code": code, "note": "acl"}, "DISASSOCIATED",
               check=lambda r: expect(r.body["previous_holder"] == "osv@example.com"
                                      and status_of(code) == ("CAN_BE_USED", ""), r))


def r_admin_mark():
    code, _ = hold()
    return Req("/admin/codes/mark-non-usable", {"code": code, "reason": "acl"}, "MARKED_NON_USABLE",
               check=lambda r: expect(status_of(code)[0] == "NON_USABLE", r))


def r_restore():
    code = free_code()
    h.sql(f"SELECT FROM psk_mark_non_usable('admin@example.com', '{code}', 'acl')")
    return Req("/admin/codes/restore", {"code": code}, "RESTORED",
               check=lambda r: expect(status_of(code) == ("CAN_BE_USED", ""), r))


def r_delete_code():
    code = free_code()
    return Req(f"/admin/codes/{code}", action="DELETED",
               check=lambda r: expect(status_of(code) is None, r))


def r_import():
    def check(r):
        expect(r.body["inserted"] == 1 and r.body["failed"] == [], r)
        expect(h.one("SELECT batch_id FROM psk.codes WHERE code = 'ACL-IMPORTED'")
               == r.body["batch_id"], r)
    return Req("/admin/codes/import?code_type=COMMON", raw="code\nACL-IMPORTED\n",
               ctype="text/csv", action="ADDED", check=check)


def r_export(path, first_column, count_sql):
    def check(r):
        lines = r.body.decode().split("\r\n")
        expect(lines[0].split(",")[0] == first_column and lines[-1] == "", lines[:2])
        expect(len(lines) - 2 == int(h.one(count_sql)), (len(lines), count_sql))
    return lambda: Req(path, json=False, check=check)


ROWS = {
    ("POST", "/auth/login"): r_login,
    ("GET", "/auth/me"): r_me,
    ("POST", "/auth/me"): r_me,
    ("POST", "/auth/logout"): r_logout,
    ("POST", "/users/reserve"): r_reserve,
    ("POST", "/users/confirm"): r_confirm,
    ("POST", "/users/renew"): r_renew,
    ("POST", "/users/release"): r_release,
    ("POST", "/users/mark-non-usable"): r_user_mark,
    ("POST", "/users/comment"): r_comment,
    ("GET", "/users/my"): r_list("/users/my"),
    ("GET", "/users/logs"): r_list("/users/logs", dict),
    ("GET", "/users/recent-releases"): r_recent,
    ("GET", "/users/countries"): r_list("/users/countries"),
    ("GET", "/admin/countries"): r_list("/admin/countries"),
    ("GET", "/admin/count"): r_list("/admin/count", dict),
    ("POST", "/admin/users/create"): r_create_user,
    ("GET", "/admin/users/get-users"): r_list("/admin/users/get-users"),
    ("PATCH", "/admin/users/update"): r_update_user,
    ("DELETE", "/admin/users/delete"): r_delete_user,
    ("POST", "/admin/codes/add"): r_add_codes,
    ("GET", "/admin/codes/all"): r_list("/admin/codes/all", dict),
    ("GET", "/admin/codes"): r_list("/admin/codes?code_type=OSV&page_size=5", dict),
    ("GET", "/admin/codes/overdue"): r_overdue,
    ("POST", "/admin/codes/disassociate"): r_disassociate,
    ("POST", "/admin/codes/mark-non-usable"): r_admin_mark,
    ("POST", "/admin/codes/restore"): r_restore,
    ("DELETE", "/admin/codes/{code}"): r_delete_code,
    ("GET", "/admin/logs"): r_list("/admin/logs?page=1&page_size=5", dict),
    ("POST", "/admin/codes/import"): r_import,
    ("GET", "/admin/codes/export"): r_export("/admin/codes/export?code_type=OSV", "code",
                                             "SELECT count(*) FROM psk.codes WHERE pool = 'OSV'"),
    ("GET", "/admin/logs/export"): r_export("/admin/logs/export?action=ADDED", "id",
                                            "SELECT count(*) FROM psk.audit_log WHERE action = 'ADDED'"),
    ("GET", "/healthz"): lambda: Req("/healthz", check=lambda r: expect(r.body == {"status": "ok"}, r)),
    ("GET", "/openapi.json"): lambda: Req("/openapi.json",
                                          check=lambda r: expect("paths" in r.body, r)),
    ("GET", "/docs"): lambda: Req("/docs", json=False,
                                  check=lambda r: expect(b"SwaggerUIBundle(" in r.body, r)),
    ("GET", "/docs/{file}"): lambda: Req("/docs/swagger-ui.css", json=False,
                                         check=lambda r: expect(b".swagger-ui" in r.body, r)),
}

# the routes that act on a code its caller must hold
HOLDER_ROUTES = {"/users/confirm", "/users/renew", "/users/release", "/users/mark-non-usable",
                 "/users/comment"}


# --- tokens ------------------------------------------------------------------

def revoked(who):
    t = h.login(f"{who}@example.com")
    r = h.call("POST", "/auth/logout", token=t)
    expect(r.status == 200, r)
    return t


def expired(who):
    t = h.login(f"{who}@example.com")
    n = h.sql(f"""UPDATE psk.sessions
                     SET created_at = now() - interval '1 hour', expires_at = now() - interval '1 s'
                   WHERE token_hash = sha256(convert_to('{t}', 'UTF8')) RETURNING 1""")
    expect(len(n) == 1, "no session row for the token")
    return t


def setup():
    """osv2: a second OSV user, the peer of osv who never holds its codes."""
    h.sql("SELECT FROM psk_create_user('admin@example.com', 'Trillium', 'osv2', "
          "'osv2@example.com', 'Rdl@12345', pool => 'OSV')")
    dead = {}
    for who in ("osv", "admin"):
        dead[who] = {"revoked": revoked(who), "expired": expired(who)}
    return dead


# --- the cells ---------------------------------------------------------------

REFUSED = {401: "unauthorized", 403: "not_allowed"}


def cells(role, path, dead):
    """(column, token or a function making one, expected status) of a row,
    refusals first: the last cell (right) may change state."""
    owner = "admin" if role == "admin" else "osv"
    out = [("none", None, 401), ("malformed", MALFORMED, 401), ("unknown", UNKNOWN, 401),
           ("revoked", dead[owner]["revoked"], 401), ("expired", dead[owner]["expired"], 401)]
    if role == "public":
        return [(c, t, 200) for c, t, _ in out]
    if role == "user":
        out.append(("admin", h.token("admin"), 403))
        if path in HOLDER_ROUTES:
            out += [("other", h.token("hsv"), 403), ("peer", h.token("osv2"), 403)]
    elif role == "admin":
        out.append(("user", h.token("osv"), 403))
    if role == "session":
        # logout ends the token: a fresh one per cell
        fresh = path == "/auth/logout"
        out += [("user", (lambda: h.login("osv@example.com")) if fresh else h.token("osv"), 200),
                ("right", (lambda: h.login("admin@example.com")) if fresh else h.token("admin"), 200)]
    else:
        out.append(("right", h.token("osv" if role == "user" else "admin"), 200))
    return out


def run_cell(method, role, column, tok, expected, req):
    if callable(tok):
        tok = tok()
    before = h.fingerprint()
    audit = h.audit_count()
    r = h.call(method, req.path, req.body, token=tok, json_reply=req.json, raw=req.raw,
               ctype=req.ctype)
    got = r.status
    if expected in REFUSED:
        h.expect_error(r, expected, REFUSED[expected])
        if expected == 401:
            expect(r.headers.get("www-authenticate") == "Bearer", r.headers)
        expect(h.fingerprint() == before, "a refused call changed psk's state")
        expect(h.audit_count() == audit, "a refused call wrote audit rows")
        return got
    expect(got == expected, (got, expected, r))
    if column == "right" or (role == "session" and column == "user"):
        wrote = h.audit_count() - audit
        expect(wrote == (1 if req.action else 0), f"{wrote} audit rows, expected {req.action}")
        if req.action:
            last = h.one("SELECT action FROM psk.audit_log ORDER BY id DESC LIMIT 1")
            expect(last == req.action, f"audit action {last}, expected {req.action}")
        req.check(r)
        if method == "POST" and req.path == "/auth/logout":
            h.expect_error(h.call("GET", "/auth/me", token=tok), 401, "unauthorized")
    elif role == "public":
        req.check(r)
    return got


def cross_reserve():
    """A user of HSV asks for another pool's codes: allowed by the contract."""
    r = h.call("POST", "/users/reserve", {"tester_name": "acl", "code_type": "OSV"},
               token=h.token("hsv"))
    expect(r.status == 200 and r.body["code_type"] == "OSV", r)
    expect(status_of(r.body["code"]) == ("RESERVED", "hsv@example.com"), r)
    return r.status


def cross_recent():
    r = h.call("GET", "/users/recent-releases?code_type=OSV", token=h.token("hsv"))
    expect(r.status == 200 and r.body and all(x["code_type"] == "OSV" for x in r.body), r)
    return r.status


CROSS = {("POST", "/users/reserve"): cross_reserve,
         ("GET", "/users/recent-releases"): cross_recent}


def main():
    h.MAIN = h.Shim(name="acl")
    passed = failed = 0
    table = {}
    try:
        routes = {(m, p): who for m, p, who, _ in h.routes()}
        missing, extra = set(routes) - set(ROWS), set(ROWS) - set(routes)
        if missing or extra:
            failed += 1
            print(f"not ok - rows = routes: no row for {sorted(missing)}, no route for {sorted(extra)}")
        else:
            passed += 1
            print(f"ok - a row for each of the {len(routes)} routes")
        dead = setup()
        for (method, path), role in routes.items():
            if (method, path) not in ROWS:
                continue
            statuses = table.setdefault((method, path), {})
            plan = cells(role, path, dead)
            req = ROWS[(method, path)]()
            if (method, path) in CROSS:
                plan.insert(len(plan) - 1, ("cross", CROSS[(method, path)], 200))
            for column, tok, expected in plan:
                name = f"{method} {path} [{column}] -> {expected}"
                try:
                    if column == "cross":
                        statuses[column] = tok()
                    else:
                        statuses[column] = run_cell(method, role, column, tok, expected, req)
                    passed += 1
                except Exception:
                    failed += 1
                    statuses[column] = "!"
                    print(f"not ok - {name}")
                    traceback.print_exc(file=sys.stdout)
    finally:
        rc = h.MAIN.stop()
        if rc != 0:
            failed += 1
            print(f"not ok - acl shim exited {rc}")
    width = max(len(f"{m} {p}") for m, p in table) if table else 0
    print(f"{'route':<{width}}  " + " ".join(f"{c:>9}" for c in COLUMNS))
    for (m, p), st in table.items():
        print(f"{m + ' ' + p:<{width}}  " + " ".join(f"{str(st.get(c, '-')):>9}" for c in COLUMNS))
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
