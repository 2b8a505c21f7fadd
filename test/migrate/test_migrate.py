#!/usr/bin/env python3
"""psk_migrate_legacy on the old service's database (test/migrate/run.sh
made its data with old_service.py): the refusals change nothing, the
README's steps run as written, and then every old user logs in over HTTP
with the old password, holds the same codes with the same tokens, the
counts per pool and status are the old ones, psk_log shows the old
history, and the log replays to every code's state.  Prints
"N passed, M failed" last.
"""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "../.."))
WORK = os.environ["PSK_MIGRATE_WORK"]
OLD = os.path.join(WORK, "old")
SHIM = os.path.abspath(os.path.join(ROOT, os.environ.get("PSK_SHIM", "shim/psk-shim")))
USERS = json.load(open(os.path.join(OLD, "users.json")))
TESTS = []
STATE = {}


def test(fn):
    TESTS.append(fn)
    return fn


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def psql(db, query, check=True, user=None):
    cmd = ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-F", "\x1f", "-d", db, "-c", query]
    if user:
        cmd += ["-U", user]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError(p.stderr)
    return p


def rows(db, query):
    return [tuple(line.split("\x1f")) for line in psql(db, query).stdout.splitlines() if line != ""]


def one(db, query):
    r = rows(db, query)
    expect(len(r) == 1 and len(r[0]) == 1, r)
    return r[0][0]


def sqlstate(db, query, user=None):
    """The SQLSTATE and message of a statement that must fail."""
    p = subprocess.run(["psql", "-X", "-q", "-v", "VERBOSITY=verbose", "-d", db, "-c", query]
                       + (["-U", user] if user else []), capture_output=True, text=True)
    expect(p.returncode != 0, (query, p.stdout))
    m = re.search(r"ERROR:  ([0-9A-Z]{5}): (.*)", p.stderr)
    expect(m, p.stderr)
    return m.group(1), m.group(2)


def load_old(db):
    psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    psql("postgres", f"CREATE DATABASE {db}")
    for f in ("schema.sql", "load.sql"):
        p = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-f",
                            os.path.join(OLD, f)], capture_output=True, text=True)
        expect(p.returncode == 0, p.stderr)


OLD_TABLES = ("regions", "countries", "users", "codes", "code_countries", "logs")


def old_fingerprint(db):
    return one(db, "SELECT md5(concat_ws('|', " + ", ".join(
        f"(SELECT string_agg(t::text, ',' ORDER BY t::text) FROM public.{t} t)" for t in OLD_TABLES) + "))")


def psk_fingerprint(db):
    return one(db, """SELECT concat_ws('/', (SELECT count(*) FROM psk.users), (SELECT count(*) FROM psk.codes),
        (SELECT count(*) FROM psk.regions), (SELECT count(*) FROM psk.countries),
        (SELECT count(*) FROM psk.code_countries), (SELECT count(*) FROM psk.audit_log))""")


# --- refusals ---------------------------------------------------------------------

REF = "promo_refusals"


@test
def refusals_change_nothing():
    load_old(REF)
    psql(REF, "SET client_min_messages = warning; CREATE EXTENSION psk CASCADE")
    before_old, before_psk = old_fingerprint(REF), psk_fingerprint(REF)
    expect(before_psk == "0/0/0/0/0/0", before_psk)

    # who first: no EXECUTE for anyone else; granted, still not a superuser
    psql("postgres", "DROP ROLE IF EXISTS regress_migrate_app")
    psql("postgres", "CREATE ROLE regress_migrate_app LOGIN")
    st, msg = sqlstate(REF, "SELECT * FROM psk_migrate_legacy()", user="regress_migrate_app")
    expect(st == "42501", (st, msg))
    psql(REF, "GRANT EXECUTE ON FUNCTION psk_migrate_legacy(text) TO regress_migrate_app")
    st, msg = sqlstate(REF, "SELECT * FROM psk_migrate_legacy(NULL)", user="regress_migrate_app")
    expect(st == "PK003" and "superuser" in msg, (st, msg))
    psql(REF, "REVOKE EXECUTE ON FUNCTION psk_migrate_legacy(text) FROM regress_migrate_app")

    cases = [
        ("SELECT * FROM psk_migrate_legacy(NULL)", None, "PK007", "source_schema is required"),
        ("SELECT * FROM psk_migrate_legacy('nope')", None, "PK007", 'schema "nope" does not exist'),
        ("SELECT * FROM psk_migrate_legacy('psk')", None, "PK007", "not psk"),
        ("SELECT * FROM psk_migrate_legacy('pg_catalog')", None, "PK007", 'has no table "regions"'),
        # two old codes that become one
        ("SELECT * FROM psk_migrate_legacy()",
         "INSERT INTO codes (code, status, code_type) VALUES ('osv-0000001 ', 'CAN_BE_USED', 'OSV')",
         "PK009", '"OSV-0000001" and "osv-0000001 " become one code "OSV-0000001"'),
        # two old e-mails that become one
        ("SELECT * FROM psk_migrate_legacy()",
         "INSERT INTO users (team_name, user_name, contact_email, password_hash)"
         " SELECT 'X', 'x', ' Admin@Example.com', password_hash FROM users WHERE id = 1",
         "PK009", '" Admin@Example.com" and "admin@example.com" are one e-mail'),
        # a hash that is not bcrypt
        ("SELECT * FROM psk_migrate_legacy()",
         "UPDATE users SET password_hash = 'pbkdf2:sha256:1000$abc' WHERE id = 7",
         "PK007", "password_hash is not bcrypt"),
        # a reservation without its token
        ("SELECT * FROM psk_migrate_legacy()",
         "UPDATE codes SET reservation_token = NULL WHERE code = (SELECT min(code) FROM codes"
         " WHERE status = 'RESERVED')", "PK007", "RESERVED without its holder"),
        # a code psk cannot store
        ("SELECT * FROM psk_migrate_legacy()",
         "INSERT INTO codes (code, status, code_type) VALUES ('BAD CODE', 'CAN_BE_USED', 'COMMON')",
         "PK007", '"BAD CODE"'),
    ]
    for call, change, want, text in cases:
        if change:
            psql(REF, "BEGIN; " + change + "; COMMIT")
        fp = old_fingerprint(REF)
        try:
            st, msg = sqlstate(REF, call)
            expect(st == want and text in msg, (call, change, st, msg))
            expect(psk_fingerprint(REF) == before_psk, (call, "changed psk"))
            expect(old_fingerprint(REF) == fp, (call, "changed the old tables"))
        finally:
            if change:
                load_old(REF)
                psql(REF, "SET client_min_messages = warning; CREATE EXTENSION psk CASCADE")
    psql("postgres", f"DROP DATABASE {REF} WITH (FORCE)")
    psql("postgres", "DROP ROLE regress_migrate_app")


# --- the README's steps -------------------------------------------------------------

DB = "promo"


def readme_steps():
    text = open(os.path.join(ROOT, "README.md")).read()
    m = re.search(r"<!-- migrate-steps -->\s*```sh\n(.*?)```", text, re.S)
    expect(m, "README has no migrate-steps block")
    return [line for line in m.group(1).splitlines() if line.strip() and not line.startswith("#")]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@test
def readme_steps_run_as_written():
    load_old(DB)
    STATE["old_fp"] = old_fingerprint(DB)
    steps = readme_steps()
    expect(len(steps) == 5 and steps[-1].startswith("psk-shim "), steps)
    os.makedirs(os.path.join(WORK, "run"), exist_ok=True)
    link = os.path.join(WORK, "run", "scripts")
    if not os.path.exists(link):
        os.symlink(os.path.join(ROOT, "scripts"), link)
    for line in steps[:-1]:
        t0 = time.time()
        p = subprocess.run(line, shell=True, cwd=os.path.join(WORK, "run"), capture_output=True, text=True)
        took = time.time() - t0
        expect(p.returncode == 0, (line, p.stdout, p.stderr))
        if "psk_migrate_legacy" in line:
            STATE["migrate_out"] = p.stdout
            STATE["migrate_seconds"] = took
            print(f"# psk_migrate_legacy: {took:.2f} s for {one(DB, 'SELECT count(*) FROM public.codes')} "
                  f"codes and {one(DB, 'SELECT count(*) FROM public.logs')} log rows")
    # the shim as the README starts it, on a free port of our own
    port = free_port()
    cmd = steps[-1].replace("psk-shim", SHIM, 1) + f" --listen 127.0.0.1:{port} --threads 1"
    out = open(os.path.join(WORK, "shim.out"), "w")
    proc = subprocess.Popen(cmd, shell=True, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    with open(os.path.join(WORK, "shim.pid"), "w") as f:
        f.write(str(proc.pid))
    STATE["shim"], STATE["port"] = proc, port
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    expect(call("GET", "/healthz")[0] == 200, "shim not up")


def call(method, path, body=None, token=None, form=False, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", STATE["port"], timeout=30)
    hdrs = dict(headers or {})
    data = None
    if token:
        hdrs["Authorization"] = "Bearer " + token
    if body is not None:
        if form:
            from urllib.parse import urlencode
            data = urlencode(body).encode()
            hdrs["Content-Type"] = "application/x-www-form-urlencoded;charset=UTF-8"
        else:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=hdrs)
    r = conn.getresponse()
    raw = r.read()
    conn.close()
    return r.status, (json.loads(raw) if raw else None), dict((k.lower(), v) for k, v in r.getheaders())


# --- what moved ----------------------------------------------------------------------

@test
def counts_are_the_old_ones():
    out = dict(line.split("|")[0].strip(), ) if False else {}
    for line in STATE["migrate_out"].splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    old = {t: int(one(DB, f"SELECT count(*) FROM public.{t}")) for t in OLD_TABLES}
    expect(out == {"regions": 3, "countries": old["countries"], "users": old["users"],
                   "codes": old["codes"], "code_countries": old["code_countries"],
                   "logs": old["logs"]}, (out, old))
    expect(old["regions"] == 4, "the old data has Europe twice")
    # per pool and status, as the old tables count them
    want = {(p, s): int(n) for p, s, n in rows(DB, "SELECT code_type::text, status::text, count(*)"
                                              " FROM public.codes GROUP BY 1, 2")}
    got = {(p, s): int(n) for p, s, n in rows(DB, "SELECT * FROM psk_counts()") if int(n) > 0}
    expect(got == want, (got, want))
    expect(old_fingerprint(DB) == STATE["old_fp"], "the old tables changed")


@test
def users_keep_email_names_team_admin_and_hashes():
    got = rows(DB, """SELECT o.contact_email, u.user_name = o.user_name, u.team_name = o.team_name,
                             u.is_admin = o.is_admin, u.pool = psk.pool_for_team(o.team_name),
                             u.password_hash = '$2a$' || substr(o.password_hash, 5),
                             o.password_hash LIKE '$2b$%', u.created_at = o.created_at
                        FROM public.users o JOIN psk.users u ON u.email = o.contact_email""")
    expect(len(got) == len(USERS), got)
    for r in got:
        expect(r[1:] == ("t",) * 7, r)
    # one USER_CREATED row each, at the time the old service made the user
    n = one(DB, """SELECT count(*) FROM psk.audit_log a JOIN psk.users u ON u.id = a.subject_user_id
                    WHERE a.action = 'USER_CREATED' AND a.logged_at = u.created_at""")
    expect(int(n) == len(USERS), n)


@test
def held_codes_stay_with_holder_tester_token_and_time():
    got = rows(DB, """SELECT o.code, c.code = psk.normalize_code(o.code), c.status, u.email = ou.contact_email,
                             c.tester_name = o.tester_name, c.reservation_token = o.reservation_token,
                             c.reserved_at = o.requested_at, c.expires_at IS NULL
                        FROM public.codes o JOIN public.users ou ON ou.id = o.user_id
                        JOIN psk.codes c ON c.code = psk.normalize_code(o.code)
                        JOIN psk.users u ON u.id = c.holder_id
                       WHERE o.status = 'RESERVED'""")
    n = int(one(DB, "SELECT count(*) FROM public.codes WHERE status = 'RESERVED'"))
    expect(len(got) == n and n > 50, (len(got), n))
    for r in got:
        expect(r[1:] == ("t", "RESERVED", "t", "t", "t", "t", "t"), r)
    # and each in psk_my_codes of its holder, with the same token
    for email in {u["email"] for u in USERS if not u["is_admin"]}:
        mine = set(rows(DB, f"SELECT code, reservation_token::text, tester_name FROM psk_my_codes('{email}')"))
        old = set(rows(DB, f"""SELECT psk.normalize_code(c.code), c.reservation_token::text, c.tester_name
                                FROM public.codes c JOIN public.users u ON u.id = c.user_id
                               WHERE c.status = 'RESERVED' AND u.contact_email = '{email}'"""))
        expect(mine == old, (email, mine ^ old))
    # free codes keep when they were last freed: the order reserve takes them in
    bad = one(DB, """SELECT count(*) FROM public.codes o JOIN psk.codes c ON c.code = psk.normalize_code(o.code)
                      WHERE o.status = 'CAN_BE_USED' AND c.freed_at IS DISTINCT FROM o.released_at""")
    expect(bad == "0", bad)
    # countries come along
    expect(one(DB, """SELECT count(*) FROM public.code_countries cc JOIN public.countries k ON k.id = cc.country_id
                       WHERE NOT EXISTS (SELECT 1 FROM psk.code_countries pc JOIN psk.codes c ON c.id = pc.code_id
                                          JOIN psk.countries pk ON pk.id = pc.country_id
                                         WHERE c.code = psk.normalize_code(cc.code) AND pk.name = k.name)""") == "0",
           "a country of a code was lost")


LOG_COLS = "action, logged_at, code, user_name, contact_email, tester_name, country, region, note"


@test
def the_old_log_is_the_audit_log():
    old = rows(DB, f"""SELECT action::text, logged_at, psk.normalize_code(code), user_name, contact_email,
                              tester_name, country_name, region_name, note
                         FROM public.logs ORDER BY id""")
    new = rows(DB, f"""SELECT {LOG_COLS} FROM psk.audit_log
                        WHERE action <> 'USER_CREATED' AND coalesce(note, '') NOT LIKE 'psk_migrate_legacy:%'
                        ORDER BY id""")
    expect(len(old) == len(new) and len(old) > 1000, (len(old), len(new)))
    for a, b in zip(old, new):
        expect(a == b, (a, b))
    # the actor is the moved user
    expect(one(DB, """SELECT count(*) FROM public.logs l JOIN public.users o ON o.id = l.user_id
                       JOIN psk.users u ON u.email = o.contact_email
                       WHERE NOT EXISTS (SELECT 1 FROM psk.audit_log a WHERE a.logged_at = l.logged_at
                                          AND a.user_id = u.id AND a.action = l.action::text)""") == "0",
           "an actor was lost")
    # psk_log shows it, newest first, filters and all
    total = one(DB, "SELECT total_count FROM psk_log(page_size => 1)")
    expect(total == one(DB, "SELECT count(*) FROM psk.audit_log"), total)
    first = rows(DB, "SELECT action, code, note FROM psk_log(page_size => 100, action => 'RELEASED')")
    expect(first and all(r[0] == "RELEASED" for r in first), first[:3])


@test
def the_log_replays_to_every_code():
    # status and holder of each code, from its last audit row
    bad = rows(DB, """WITH last AS (
            SELECT DISTINCT ON (code) code, action, user_id FROM psk.audit_log
             WHERE code IS NOT NULL ORDER BY code, id DESC)
        SELECT coalesce(c.code, l.code), l.action, c.status
          FROM psk.codes c FULL JOIN last l ON l.code = c.code
         WHERE (CASE l.action WHEN 'DELETED' THEN NULL WHEN 'RESERVED' THEN 'RESERVED'
                              ELSE 'CAN_BE_USED' END) IS DISTINCT FROM c.status
            OR (CASE WHEN l.action = 'RESERVED' THEN l.user_id END) IS DISTINCT FROM c.holder_id""")
    expect(bad == [], bad[:5])
    # the codes the old log never mentioned got one ADDED row each, said so
    unlogged = int(one(DB, """SELECT count(*) FROM public.codes c
                               WHERE NOT EXISTS (SELECT 1 FROM public.logs l WHERE l.code = c.code)"""))
    bridged = rows(DB, """SELECT action, count(*) FROM psk.audit_log
                           WHERE note LIKE 'psk_migrate_legacy:%' GROUP BY 1""")
    expect(unlogged > 10 and bridged == [("ADDED", str(unlogged))], (unlogged, bridged))


@test
def a_second_run_is_refused():
    before = psk_fingerprint(DB)
    st, msg = sqlstate(DB, "SELECT * FROM psk_migrate_legacy()")
    expect(st == "PK009" and "already has users or codes" in msg, (st, msg))
    expect(psk_fingerprint(DB) == before, "changed psk")


@test
def not_granted_to_the_shim_or_the_app():
    for role in ("psk_shim",):
        st, _ = sqlstate(DB, "SELECT * FROM psk_migrate_legacy()", user=role)
        expect(st == "42501", st)


# --- over HTTP ------------------------------------------------------------------------

def login(email, password):
    st, body, _ = call("POST", "/auth/login", {"username": email, "password": password}, form=True)
    expect(st == 200, (email, st, body))
    return body["access_token"]


@test
def every_old_user_logs_in_with_the_old_password():
    for u in USERS:
        tok = login(u["email"], u["password"])
        st, me, _ = call("GET", "/auth/me", token=tok)
        expect(st == 200 and me["contact_email"] == u["email"] and me["is_admin"] == u["is_admin"]
               and me["pool"] == u["pool"] and me["user_name"] == u["user_name"], me)
        STATE.setdefault("tokens", {})[u["email"]] = tok
    st, body, _ = call("POST", "/auth/login", {"username": USERS[5]["email"], "password": "wrong"}, form=True)
    expect(st == 401 and body["error"] == "unauthorized", body)
    expect(any(re.search(r"[^\x00-\x7f]", u["password"]) for u in USERS), "no non-ASCII password tried")


@test
def migrated_users_reserve_release_and_read_their_log():
    testers = [u for u in USERS if not u["is_admin"]]
    for u in testers:
        tok = STATE["tokens"][u["email"]]
        st, mine, _ = call("GET", "/users/my", token=tok)
        expect(st == 200, mine)
        old = {(c, t) for c, t in rows(DB, f"""SELECT psk.normalize_code(c.code), c.reservation_token::text
                FROM public.codes c JOIN public.users u ON u.id = c.user_id
               WHERE c.status = 'RESERVED' AND u.contact_email = '{u['email']}'""")}
        expect({(c["code"], c["reservation_token"]) for c in mine} == old, (u["email"], mine))
    u = next(x for x in testers if x["pool"] == "OSV")
    tok = STATE["tokens"][u["email"]]
    # a new reservation from the user's pool, with a country the old admins typed
    st, r, _ = call("POST", "/users/reserve", {"tester_name": "after the move", "country": "Germany"},
                    token=tok)
    expect(st == 200 and r["code_type"] == "OSV", r)
    expect("Germany" in one(DB, f"""SELECT string_agg(k.name, ',') FROM psk.code_countries cc
              JOIN psk.countries k ON k.id = cc.country_id JOIN psk.codes c ON c.id = cc.code_id
             WHERE c.code = '{r['code']}'"""), r)
    st, rel, _ = call("POST", "/users/release", {"code": r["code"], "clearance_id": "CLR-1"}, token=tok)
    expect(st == 200 and rel["released"] == r["code"], rel)
    # a code held since the old service: confirmed with its old token, then released
    st, mine, _ = call("GET", "/users/my", token=tok)
    held = mine[0]
    st, c, _ = call("POST", "/users/confirm", {"code": held["code"],
                                               "reservation_token": held["reservation_token"]}, token=tok)
    expect(st == 200 and c["status"] == "IN_USE", c)
    # only its holder may release it now (the old service let anyone)
    other = next(x for x in testers if x["email"] != u["email"])
    st, body, _ = call("POST", "/users/release", {"code": held["code"]}, token=STATE["tokens"][other["email"]])
    expect(st == 403 and body["error"] == "not_allowed", body)
    st, rel, _ = call("POST", "/users/release", {"code": held["code"], "note": "done"}, token=tok)
    expect(st == 200, rel)
    expect(rows(DB, f"SELECT status, holder_id FROM psk.codes WHERE code = '{held['code']}'")
           == [("CAN_BE_USED", "")], held)
    # the user's log: newest first, old history below the new rows
    st, logs, _ = call("GET", "/users/logs", token=tok)
    actions = [x["action"] for x in logs["logs"]]
    expect(actions[:4] == ["RELEASED", "CONFIRMED", "RELEASED", "RESERVED"], actions)
    old_n = int(one(DB, f"""SELECT count(*) FROM public.logs l JOIN public.users u ON u.id = l.user_id
                            WHERE u.contact_email = '{u['email']}'"""))
    expect(len(logs["logs"]) == min(20, old_n + 4), (len(logs["logs"]), old_n))
    expect(all(re.match(r"^\d\d-\d\d-\d{4} \d\d:\d\d:\d\d [AP]M$", x["logged_at_str"]) for x in logs["logs"]),
           logs["logs"][:2])
    # the admin's view
    admin = STATE["tokens"]["admin@example.com"]
    st, page, _ = call("GET", f"/admin/logs?code={held['code']}&page_size=100", token=admin)
    old_rows = int(one(DB, f"SELECT count(*) FROM public.logs WHERE psk.normalize_code(code) = '{held['code']}'"))
    expect(st == 200 and page["total_count"] == old_rows + 2, (page["total_count"], old_rows))
    st, count, _ = call("GET", "/admin/count", token=admin)
    expect(st == 200 and count["total"] == int(one(DB, "SELECT count(*) FROM psk.codes")), count)
    # and the old web client's preflight is answered (--cors-origins of the README)
    st, _, hdrs = call("OPTIONS", "/users/reserve", headers={
        "Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    expect(st == 204 and hdrs.get("access-control-allow-origin") == "http://localhost:5173", hdrs)


def main():
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
        proc = STATE.get("shim")
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        sys.stdout.flush()
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
