#!/usr/bin/env python3
"""CSV in and out over HTTP (API.md, "Bulk in and out: CSV"): POST
/admin/codes/import, GET /admin/codes/export and GET /admin/logs/export.

Values are checked from outside, through psql: an imported file's outcomes
line by line and the rows, countries, batch ids and audit rows it left; a
malformed file refused with the line where the fault starts and nothing
inserted, also after some batches had gone to the database; an exported
row equal to psk_codes' row and an exported log equal to psk_log's rows;
one snapshot while reserves go on; the limits, the order of the checks,
the body's framings (Content-Length, chunked, Expect: 100-continue, a kept-
alive connection) and the README's "An admin's day" run as written.

Run by test/http/run.sh on a fresh psk_http database (setup.sql); reuses
test_http.py's helpers.  Prints "N passed, M failed" last.
"""
import csv
import datetime
import gzip
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_http as h  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
CODES_HEADER = ["code", "code_type", "status", "holder", "tester_name", "reserved_at",
                "expires_at", "released_at", "note", "countries"]
LOG_HEADER = ["id", "logged_at", "action", "code", "user_name", "contact_email",
              "tester_name", "country", "region", "note"]
TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def admin():
    return h.token("admin")


def imp(data, query="code_type=COMMON", tok=None, ctype="text/csv", shim=None):
    """An import on a connection of its own (the first request on it)."""
    if isinstance(data, str):
        data = data.encode()
    return h.call("POST", "/admin/codes/import?" + query, raw=data, ctype=ctype,
                  token=admin() if tok is None else tok, shim=shim, timeout=120)


def raw_request(head, body=b"", port=None, chunks=None, expect_continue=False, timeout=60):
    """A request written by hand on a socket of its own: the head's lines,
    then body (or chunks, chunked); with expect_continue, the body only
    after the interim 100.  Returns (status, headers, body bytes, interim)."""
    s = socket.create_connection(("127.0.0.1", port or h.MAIN.port), timeout=timeout)
    lines = list(head)
    if chunks is not None:
        lines.append("Transfer-Encoding: chunked")
    else:
        lines.append(f"Content-Length: {len(body)}")
    if expect_continue:
        lines.append("Expect: 100-continue")
    s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    interim = None
    got = b""
    if expect_continue:
        while b"\r\n\r\n" not in got:
            part = s.recv(65536)
            if not part:
                break
            got += part
        interim = got.split(b"\r\n", 1)[0]
        if not interim.startswith(b"HTTP/1.1 100"):
            return finish_read(s, got) + (interim,)
        got = got.split(b"\r\n\r\n", 1)[1]
    try:
        if chunks is not None:
            for c in chunks:
                s.sendall(b"%x\r\n%s\r\n" % (len(c), c))
            s.sendall(b"0\r\n\r\n")
        else:
            s.sendall(body)
    except OSError:
        pass
    return finish_read(s, got) + (interim,)


def finish_read(s, got):
    while True:
        part = s.recv(65536)
        if not part:
            break
        got += part
    s.close()
    head, _, body = got.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower().decode()] = v.strip().decode()
    if headers.get("transfer-encoding") == "chunked":
        body = dechunk(body)
    return status, headers, body


def dechunk(data):
    out = b""
    while True:
        size, _, rest = data.partition(b"\r\n")
        n = int(size.split(b";")[0], 16)
        if n == 0:
            return out
        out += rest[:n]
        data = rest[n + 2:]


def csv_rows(data):
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def export(path, tok=None, headers=None, port=None):
    """GET an export: (status, headers, body, gunzipped)."""
    hdrs = ["Host: x", f"Authorization: Bearer {tok or admin()}", "Connection: close"]
    hdrs += headers or []
    status, hd, body = raw_request([f"GET {path} HTTP/1.1"] + hdrs, b"", port=port)[:3]
    if hd.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    return status, hd, body


def codes_like(prefix):
    return int(h.one(f"SELECT count(*) FROM psk.codes WHERE code LIKE '{prefix}%'"))


def state():
    return h.fingerprint(), h.audit_count()


def bulk_connections():
    return int(h.one("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'psk-shim bulk'"))


def wait_for(cond, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


# --- import: outcomes and what they leave ------------------------------------

@test
def import_outcomes_line_by_line():
    """A vendor's file as spreadsheets write them: a BOM, CRLF, the columns
    in another order and one more, an empty line, a quoted note over two
    lines; every row's outcome at its line, and what each inserted row left."""
    rows = [
        "\ufeffnote,Code,vendor_sku,countries",       # 1
        "first,T1-A,x1,DE",                          # 2
        "",                                          # 3: empty
        "\"multi\r\nline, \"\"quoted\"\" note\",t1-b ,x2,",  # 4-5
        ",T1-A,x3,",                                 # 6: seen at line 2
        ",OSV-001,x4,",                              # 7: in the database
        ",bad code,x5,",                             # 8: a space inside
        ",,x6,",                                     # 9: empty
        ",\"T1-C\",x7,\"Narnia; de ;UK\"",            # 10
        "," + "X" * 129 + ",x8,",                    # 11: too long
        ",t1-b,x9,Atlantis",                         # 12: seen at line 4
        ",T1-D,x10,narnia",                          # 13
    ]
    before = h.audit_count()
    r = imp("\r\n".join(rows) + "\r\n", "code_type=COMMON&countries=UK,Mordor")
    expect(r.status == 200, r)
    b = r.body
    expect(set(b) == {"batch_id", "inserted", "failed", "unknown_countries"}, b)
    expect(UUID.match(b["batch_id"]), b)
    expect(b["inserted"] == 4, b)
    expect(b["failed"] == [[6, "T1-A", "duplicate_in_batch"], [7, "OSV-001", "duplicate_in_db"],
                           [8, "BAD CODE", "invalid"], [9, "", "invalid"],
                           [11, "X" * 129, "invalid"], [12, "T1-B", "duplicate_in_batch"]], b["failed"])
    # the query string's first, then in the order of the file, each once
    expect(b["unknown_countries"] == ["Mordor", "Narnia", "Atlantis"], b["unknown_countries"])
    got = h.sql("""SELECT c.code, c.pool, c.status, c.batch_id::text, encode(convert_to(coalesce(c.note, ''), 'UTF8'), 'hex'),
                          coalesce((SELECT string_agg(k.name, ';' ORDER BY k.name) FROM psk.code_countries cc
                                    JOIN psk.countries k ON k.id = cc.country_id WHERE cc.code_id = c.id), '')
                     FROM psk.codes c WHERE c.code LIKE 'T1-%' ORDER BY c.id""")
    hexed = lambda s: s.encode().hex()  # noqa: E731
    bid = b["batch_id"]
    expect(got == [("T1-A", "COMMON", "CAN_BE_USED", bid, hexed("first"), "DE;UK"),
                   ("T1-B", "COMMON", "CAN_BE_USED", bid, hexed('multi\r\nline, "quoted" note'), "UK"),
                   ("T1-C", "COMMON", "CAN_BE_USED", bid, "", "DE;UK"),
                   ("T1-D", "COMMON", "CAN_BE_USED", bid, "", "UK")], got)
    audit = h.sql(f"""SELECT action, code, code_type, contact_email, encode(convert_to(note, 'UTF8'), 'hex')
                        FROM psk.audit_log WHERE id > (SELECT max(id) FROM psk.audit_log) - {h.audit_count() - before}
                       ORDER BY id""")
    expect(h.audit_count() - before == 4, audit)
    expect([a[:4] for a in audit] == [("ADDED", c, "COMMON", "admin@example.com")
                                      for c in ("T1-A", "T1-B", "T1-C", "T1-D")], audit)
    notes = [bytes.fromhex(a[4]).decode() for a in audit]
    expect(notes == [f"batch {bid}; countries: DE, UK; note: first",
                     f"batch {bid}; countries: UK; note: multi\r\nline, \"quoted\" note",
                     f"batch {bid}; countries: DE, UK",
                     f"batch {bid}; countries: UK"], notes)


@test
def import_in_many_batches_chunked_and_split():
    """12,000 rows (three batches), sent chunked in pieces that cut rows,
    quotes and UTF-8 sequences: a code seen 10,000 lines before is still
    duplicate_in_batch; the countries and notes of the last rows arrive."""
    lines = ["code,countries,note"] + [f"BT-{i:05d},DE,\"n{i} ünï\"" for i in range(12000)]
    lines[11000] = "bt-00001,DE,again"        # line 11001: BT-00001 is line 3
    lines[6000] = "OSV-002,,"                 # line 6001
    data = ("\n".join(lines) + "\n").encode()
    cuts, at, step = [], 0, 1
    while at < len(data):
        cuts.append(data[at:at + step])
        at += step
        step = step * 3 % 9973 + 1
    status, hd, body, _ = raw_request(
        ["POST /admin/codes/import?code_type=HSV HTTP/1.1", "Host: x",
         f"Authorization: Bearer {admin()}", "Content-Type: text/csv; charset=utf-8"], chunks=cuts)
    expect(status == 200, (status, body[:300]))
    r = json.loads(body)
    expect(r["inserted"] == 11998, r["inserted"])
    expect(r["failed"] == [[6001, "OSV-002", "duplicate_in_db"],
                           [11001, "BT-00001", "duplicate_in_batch"]], r["failed"])
    row = h.sql("SELECT c.batch_id::text, c.note, c.pool FROM psk.codes c WHERE c.code = 'BT-11999'")
    expect(row == [(r["batch_id"], "n11999 ünï", "HSV")], row)
    n = h.one(f"SELECT count(*) FROM psk.codes c JOIN psk.code_countries cc ON cc.code_id = c.id "
              f"WHERE c.batch_id = '{r['batch_id']}'")
    expect(n == "11998", n)


@test
def import_expect_100_continue_and_a_kept_alive_connection():
    head = ["POST /admin/codes/import?code_type=COMMON HTTP/1.1", "Host: x",
            "Content-Type: text/csv"]
    body = b"code\nEX-1\n"
    # the interim 100 only once the token has passed
    status, _, reply, interim = raw_request(head + [f"Authorization: Bearer {admin()}"], body,
                                            expect_continue=True)
    expect(interim.startswith(b"HTTP/1.1 100"), interim)
    expect(status == 200 and json.loads(reply)["inserted"] == 1, (status, reply))
    status, _, reply, interim = raw_request(head + ["Authorization: Bearer nope"], body,
                                            expect_continue=True)
    expect(not interim.startswith(b"HTTP/1.1 100") and status == 401, (interim, status))
    # an import after another request on the same connection: h2o read
    # the body, under --body-limit; a larger one is 413, saying why
    conn = h.http.client.HTTPConnection("127.0.0.1", h.MAIN.port, timeout=30)
    conn.request("GET", "/auth/me", headers={"Authorization": "Bearer " + admin()})
    r = conn.getresponse()
    expect(r.status == 200, r.status)
    r.read()
    conn.request("POST", "/admin/codes/import?code_type=COMMON", body=b"code\nKA-1\nKA-2\n",
                 headers={"Authorization": "Bearer " + admin(), "Content-Type": "text/csv"})
    r = conn.getresponse()
    reply = json.loads(r.read())
    expect(r.status == 200 and reply["inserted"] == 2, reply)
    conn.close()
    conn = h.http.client.HTTPConnection("127.0.0.1", h.MAIN.port, timeout=30)
    conn.request("GET", "/auth/me", headers={"Authorization": "Bearer " + admin()})
    conn.getresponse().read()
    big = b"code\n" + b"".join(b"KB-%06d\n" % i for i in range(10000))
    before = state()
    conn.request("POST", "/admin/codes/import?code_type=COMMON", body=big,
                 headers={"Authorization": "Bearer " + admin(), "Content-Type": "text/csv"})
    r = conn.getresponse()
    reply = json.loads(r.read())
    conn.close()
    expect(r.status == 413 and reply["error"] == "payload_too_large"
           and "first request of a new connection" in reply["message"], reply)
    expect(state() == before, "a refused import changed something")
    # the same file as the first request of its connection
    r = imp(big)
    expect(r.status == 200 and r.body["inserted"] == 10000, r)


# --- import: refusals --------------------------------------------------------

MALFORMED = [
    # (name, body, line named)
    ("an unclosed quote", 'code,note\nM-1,a\nM-2,"never\nclosed\nM-3,b\n', 3),
    ("a quote inside an unquoted field", 'code,note\nM-1,a\nM-2,5" screen\n', 3),
    ("text after a closing quote", 'code,note\n\nM-1,"a"b\n', 3),
    ("no code column", "\ufeffkode,note\nM-1,a\n", 1),
    ("the code column twice", "code,Code\nM-1,M-2\n", 1),
    ("more fields than the header", "code,note\nM-1,a\nM-2,b,c\n", 3),
    ("fewer fields than the header", "code,note\r\nM-1,a\r\nM-2\r\n", 3),
    ("not UTF-8, in a field over two lines", b'code,note\nM-1,"ok\nbad \xff"\n', 3),
    ("a NUL byte", b"code\nM-1\nM-\x002\n", 3),
    ("a row over 64 KiB", "code,note\nM-1,a\nM-2," + "x" * 70000 + "\n", 3),
    ("an empty file", "", 1),
    ("blank lines only", "\r\n\r\n", 1),
    ("a note over 1,000 characters", "code,note\nM-1,a\nM-2," + "n" * 1001 + "\n", 3),
    ("a country name over 128 characters", "code,countries\nM-1,DE\nM-2,UK;" + "c" * 129 + "\n", 3),
]


@test
def import_malformed_refused_whole_with_its_line():
    for name, body, line in MALFORMED:
        before = state()
        r = imp(body)
        try:
            h.expect_error(r, 400, "invalid_input")
            expect(f"line {line}:" in r.body["message"], r.body["message"])
            expect(state() == before, "it changed something")
            expect(codes_like("M-") == 0, "codes were inserted")
        except AssertionError as e:
            raise AssertionError(f"{name}: {e}") from None


@test
def import_malformed_after_batches_went_in_inserts_nothing():
    """The fault on line 12,003, after two batches of 5,000 were inserted
    in the transaction: all rolled back, seen from another session."""
    lines = ["code"] + [f"MB-{i:05d}" for i in range(12001)] + ['MB-"x']
    before = state()
    r = imp("\n".join(lines) + "\n")
    h.expect_error(r, 400, "invalid_input")
    expect("line 12003:" in r.body["message"], r.body)
    expect(state() == before and codes_like("MB-") == 0, "the import left rows")
    expect(wait_for(lambda: bulk_connections() == 0), "the import's connection stayed open")


@test
def import_checks_in_the_contracts_order():
    body = 'code\nORD-1\n"broken\n'
    # no token, or a user's: 401 and 403 whatever the body
    h.expect_error(imp(body, tok=""), 401, "unauthorized")
    h.expect_error(imp(body, tok=h.token("osv")), 403, "not_allowed")
    h.expect_error(imp(body, tok=h.token("osv"), ctype="application/json"), 403, "not_allowed")
    h.expect_error(imp(body, ctype="text/plain"), 415, "unsupported_media_type")
    h.expect_error(imp(body, ctype="text/csv; charset=latin1"), 415, "unsupported_media_type")
    h.expect_error(imp(body, tok="", ctype="text/plain"), 401, "unauthorized")
    h.expect_error(imp("code\nORD-1\n", query="countries=UK"), 400, "invalid_input")
    h.expect_error(imp("code\nORD-1\n", query="code_type=NOPE"), 400, "invalid_input")
    h.expect_error(imp("code\nORD-1\n", query="code_type=OSV&countries=" + "x" * 129), 400,
                   "invalid_input")
    expect(codes_like("ORD-") == 0, "inserted")
    # no Content-Type is taken as CSV, as a JSON route takes it as JSON
    r = imp("code\nORD-2\n", ctype=None)
    expect(r.status == 200 and r.body["inserted"] == 1, r)


@test
def import_limit_is_413_before_the_token():
    shim = h.Shim(name="limit", args=["--import-limit", "100"])
    try:
        before = state()
        body = "code\n" + "".join(f"LIM-{i:03d}\n" for i in range(40))
        r = imp(body, tok="", shim=shim)
        h.expect_error(r, 413, "payload_too_large")
        expect("100 bytes" in r.body["message"], r.body)
        # chunked: found while it is read; nothing stays
        status, _, reply, _ = raw_request(
            ["POST /admin/codes/import?code_type=COMMON HTTP/1.1", "Host: x",
             f"Authorization: Bearer {admin()}", "Content-Type: text/csv"],
            chunks=[body[:60].encode(), body[60:].encode()], port=shim.port)
        expect(status == 413 and json.loads(reply)["error"] == "payload_too_large", (status, reply))
        expect(state() == before, "over the limit, something changed")
        r = imp("code\nLIM-OK\n", shim=shim)
        expect(r.status == 200 and r.body["inserted"] == 1, r)
    finally:
        expect(shim.stop() == 0, "the shim did not stop cleanly")


@test
def import_client_gone_mid_body_inserts_nothing():
    body = ("code\n" + "".join(f"GONE-{i:05d}\n" for i in range(20000))).encode()
    s = socket.create_connection(("127.0.0.1", h.MAIN.port), timeout=10)
    s.sendall((f"POST /admin/codes/import?code_type=COMMON HTTP/1.1\r\nHost: x\r\n"
               f"Authorization: Bearer {admin()}\r\nContent-Type: text/csv\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body[:len(body) // 2])
    time.sleep(1)
    s.close()
    expect(wait_for(lambda: bulk_connections() == 0), "the import's connection stayed open")
    expect(codes_like("GONE-") == 0, "a broken upload left codes")
    expect(h.call("GET", "/healthz").status == 200, "the shim stopped serving")


# --- export ------------------------------------------------------------------

def psk_codes_rows(where="NULL, NULL"):
    """psk_codes' rows, every column as text comparable with the CSV's, all
    its pages (psk_codes pages by code, 10,000 at most)."""
    rows, after = [], "NULL"
    while True:
        page = h.sql(f"""SELECT code, code_type, status, coalesce(holder, ''), coalesce(tester_name, ''),
                                coalesce(extract(epoch FROM reserved_at)::text, ''),
                                coalesce(extract(epoch FROM expires_at)::text, ''),
                                coalesce(extract(epoch FROM released_at)::text, ''),
                                encode(convert_to(coalesce(note, ''), 'UTF8'), 'hex'),
                                array_to_string(countries, ';')
                           FROM psk_codes({where}, {after}, 10000) ORDER BY code""")
        rows += page
        if len(page) < 10000:
            return rows
        after = "'" + page[-1][0] + "'"


BIG = []


def big_table():
    """100,000 codes of 70 characters: an export of about 10 MB, more than
    the kernel's socket buffers take (4 MB), so that a reader who does not
    read keeps the export's cursor open."""
    if not BIG:
        h.sql("SELECT count(*) FROM psk_add_codes('admin@example.com', 'COMMON', "
              "ARRAY(SELECT format('SNAP-%s-%s', lpad(g::text, 6, '0'), repeat('X', 58)) "
              "      FROM generate_series(1, 100000) g))")
        BIG.append(True)


def epoch(iso):
    if iso == "":
        return ""
    expect(h.ISO.match(iso), iso)
    return datetime.datetime.fromisoformat(iso).timestamp()


def same_row(csv_row, sql_row):
    for i, (a, b) in enumerate(zip(csv_row, sql_row)):
        if i in (5, 6, 7):
            if (a == "") != (b == "") or (a and abs(epoch(a) - float(b)) > 1e-5):
                return False
        elif i == 8:
            if a.encode().hex() != b:
                return False
        elif a != b:
            return False
    return len(csv_row) == len(sql_row)


@test
def export_codes_rows_equal_psk_codes():
    """Codes in every state, with holders, testers, times, notes that need
    quoting (comma, quote, CR LF, spaces around) and countries."""
    osv = h.token("osv")
    held = h.reserve("osv", tester_name='tester, "the" one')
    conf = h.reserve("osv")
    expect(h.call("POST", "/users/confirm", {"code": conf["code"],
                                             "reservation_token": conf["reservation_token"]},
                  token=osv).status == 200, "confirm")
    rel = h.reserve("osv")
    expect(h.call("POST", "/users/release", {"code": rel["code"], "note": " spaced, \"quoted\"\r\nnote "},
                  token=osv).status == 200, "release")
    h.sql("SELECT FROM psk_mark_non_usable('admin@example.com', 'OSV-020', 'broken;bad')")
    status, hd, body = export("/admin/codes/export?code_type=OSV")
    expect(status == 200 and hd["content-type"] == "text/csv; charset=utf-8", (status, hd))
    expect(hd.get("transfer-encoding") == "chunked" and "content-length" not in hd, hd)
    expect(body.endswith(b"\r\n") and b"\r\n" in body.split(b"\n")[0] + b"\n", body[:200])
    rows = csv_rows(body)
    expect(rows[0] == CODES_HEADER, rows[0])
    want = psk_codes_rows("'OSV', NULL")
    expect(len(rows) - 1 == len(want), (len(rows), len(want)))
    for got, sql_row in zip(rows[1:], want):
        expect(same_row(got, sql_row), (got, sql_row))
    by_code = {r[0]: r for r in rows[1:]}
    expect(by_code[held["code"]][2:5] == ["RESERVED", "osv@example.com", 'tester, "the" one'],
           by_code[held["code"]])
    expect(by_code[conf["code"]][2] == "IN_USE", by_code[conf["code"]])
    expect(by_code[rel["code"]][8] == ' spaced, "quoted"\r\nnote ', by_code[rel["code"]])
    expect(by_code["OSV-020"][2] == "NON_USABLE" and by_code["OSV-020"][9] == "DE;UK",
           by_code["OSV-020"])
    # the raw bytes: RFC 4180 quoting, NULL as nothing
    expect(b'" spaced, ""quoted""\r\nnote "' in body, body)
    # a status filter, and gzip (the same bytes, decompressed)
    _, _, free_only = export("/admin/codes/export?code_type=OSV&status=CAN_BE_USED")
    expect({r[2] for r in csv_rows(free_only)[1:]} == {"CAN_BE_USED"}, "status filter")
    s2, hd2, zipped = export("/admin/codes/export?code_type=OSV", headers=["Accept-Encoding: gzip"])
    expect(s2 == 200 and hd2.get("content-encoding") == "gzip" and zipped == body,
           "gzip changed the export")
    h.sql(f"SELECT FROM psk_release('osv@example.com', '{held['code']}')")
    h.sql(f"SELECT FROM psk_release('osv@example.com', '{conf['code']}')")
    h.sql("SELECT FROM psk_restore('admin@example.com', 'OSV-020')")


@test
def export_refusals():
    for path, status, kind in [("/admin/codes/export?code_type=NOPE", 400, "invalid_input"),
                               ("/admin/codes/export?status=NOPE", 400, "invalid_input"),
                               ("/admin/logs/export?action=NOPE", 400, "invalid_input"),
                               ("/admin/logs/export?start_date=garbage", 400, "invalid_input"),
                               ("/admin/logs/export?start_date=2030-01-02&end_date=2030-01-01", 400,
                                "invalid_input")]:
        r = h.call("GET", path, token=admin())
        h.expect_error(r, status, kind)
    h.expect_error(h.call("GET", "/admin/codes/export", token=h.token("osv")), 403, "not_allowed")
    h.expect_error(h.call("GET", "/admin/logs/export"), 401, "unauthorized")
    h.expect_error(h.call("POST", "/admin/codes/export", token=admin()), 405, "method_not_allowed")
    expect(wait_for(lambda: bulk_connections() == 0), "a refused export kept its connection")


@test
def export_log_rows_equal_psk_log_oldest_first():
    imp("code,note\nLOGX-1,\"a, b\"\nLOGX-2,\n", "code_type=COMMON")
    h.sql("SELECT FROM psk_delete_code('admin@example.com', 'LOGX-2')")
    h.sql("SELECT FROM psk_mark_non_usable('admin@example.com', 'LOGX-1', 'x\"y')")
    status, _, body = export("/admin/logs/export?code=logx")
    expect(status == 200, status)
    rows = csv_rows(body)
    expect(rows[0] == LOG_HEADER, rows[0])
    want = h.sql("""SELECT id, extract(epoch FROM logged_at)::text, action, coalesce(code, ''),
                           coalesce(user_name, ''), coalesce(contact_email, ''), coalesce(tester_name, ''),
                           coalesce(country, ''), coalesce(region, ''),
                           encode(convert_to(coalesce(note, ''), 'UTF8'), 'hex')
                      FROM psk_log(1, 100, code => 'logx') ORDER BY logged_at, id""")
    expect(len(rows) - 1 == len(want) == 4, (rows, want))
    for got, w in zip(rows[1:], want):
        expect(got[0] == w[0] and abs(epoch(got[1]) - float(w[1])) < 1e-5 and got[2:9] == list(w[2:9])
               and got[9].encode().hex() == w[9], (got, w))
    expect([r[2] for r in rows[1:]] == ["ADDED", "ADDED", "DELETED", "MARKED_NON_USABLE"], rows)
    # the filters of GET /admin/logs: action, user_name, dates (a date alone
    # as the end is that whole day)
    today = h.one("SELECT (now() AT TIME ZONE 'UTC')::date")
    _, _, body = export(f"/admin/logs/export?action=ADDED&user_name=ADM&start_date={today}&end_date={today}")
    added = csv_rows(body)[1:]
    expect(added and all(r[2] == "ADDED" and r[4] == "admin" for r in added), added[:3])
    n = int(h.one(f"SELECT count(*) FROM psk.audit_log WHERE action = 'ADDED' AND user_name ILIKE '%adm%' "
                  f"AND logged_at >= '{today}' AND logged_at < '{today}'::date + 1"))
    expect(len(added) == n, (len(added), n))
    ids = [int(r[0]) for r in added]
    expect(ids == sorted(ids), "not oldest first")
    _, _, body = export("/admin/logs/export")
    expect(len(csv_rows(body)) - 1 == h.audit_count(), "the whole log")


def slow_export(path, out, rcvbuf=4096):
    """Read an export slowly: headers first (the cursor is open then), then
    the rest after out['go'] is set."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(120)
    s.connect(("127.0.0.1", out.get("port", h.MAIN.port)))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {out['token']}\r\n"
              "Connection: close\r\n\r\n".encode())
    got = b""
    while b"\r\n\r\n" not in got:
        got += s.recv(1024)
    out["started"].set()
    out["go"].wait(120)
    while True:
        part = s.recv(rcvbuf)
        if not part:
            break
        got += part
        if out.get("pause"):
            time.sleep(out["pause"])
    s.close()
    out["status"], out["headers"], out["body"] = finish_read_bytes(got)


def finish_read_bytes(got):
    head, _, body = got.partition(b"\r\n\r\n")
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower().decode()] = v.strip().decode()
    if headers.get("transfer-encoding") == "chunked":
        body = dechunk(body)
    return int(head.split(b" ")[1]), headers, body


@test
def export_is_one_snapshot_while_reserves_go_on():
    """An export of 100,000 codes read slowly: meanwhile codes are
    reserved, added, deleted and released; the export is the state at its
    start, every reserve answers while it runs (no lock stops them), and
    the slow reader holds no snapshot (the rows were written out first)."""
    big_table()
    before = psk_codes_rows()
    out = {"token": admin(), "started": threading.Event(), "go": threading.Event()}
    reader = threading.Thread(target=slow_export, args=("/admin/codes/export", out))
    reader.start()
    try:
        expect(out["started"].wait(30), "the export did not start")
        # the snapshot is taken, the export waits for its reader: change
        # things meanwhile; each reserve answers while the export is open
        held = [h.reserve("osv")["code"] for _ in range(3)]
        expect(imp("code\nSNAP-NEW-1\nSNAP-NEW-2\n").status == 200, "import")
        deleted = h.one("SELECT code FROM psk.codes WHERE code LIKE 'SNAP-000007-%'")
        h.sql(f"SELECT FROM psk_delete_code('admin@example.com', '{deleted}')")
        h.sql(f"SELECT FROM psk_release('osv@example.com', '{held[0]}')")
        expect(bulk_connections() == 1, "the export's cursor is not open any more")
        # its rows are written out and its transaction is over: the slow
        # reader holds no snapshot that would keep VACUUM from the dead
        # row versions of the reserves
        held_by = h.sql("SELECT state, coalesce(backend_xmin::text, ''), coalesce(backend_xid::text, '') "
                        "FROM pg_stat_activity WHERE application_name = 'psk-shim bulk'")
        expect(held_by == [("idle", "", "")], held_by)
    finally:
        out["go"].set()
        reader.join(120)
    expect(not reader.is_alive() and out["status"] == 200, out.get("status"))
    rows = csv_rows(out["body"])
    expect(len(rows) - 1 == len(before), (len(rows), len(before)))
    for got, want in zip(rows[1:], before):
        expect(same_row(got, want), (got, want))
    for c in held:
        h.sql(f"SELECT FROM psk_release('osv@example.com', '{c}') WHERE EXISTS "
              f"(SELECT FROM psk.codes WHERE code = '{c}' AND status = 'RESERVED')")


@test
def export_limits_client_gone_and_bulk_max():
    """--bulk-max 1: a second transfer while one runs is 503; a client
    that goes away frees its connection at once."""
    big_table()
    shim = h.Shim(name="bulkmax", args=["--bulk-max", "1"])
    try:
        out = {"token": admin(), "started": threading.Event(), "go": threading.Event(),
               "port": shim.port}
        reader = threading.Thread(target=slow_export, args=("/admin/codes/export", out))
        reader.start()
        expect(out["started"].wait(30), "the export did not start")
        expect(bulk_connections() == 1, "the export is not running")
        r = h.call("GET", "/admin/logs/export", token=admin(), shim=shim)
        h.expect_error(r, 503, "unavailable")
        expect("--bulk-max" in r.body["message"], r.body)
        r = imp("code\nBM-1\n", shim=shim)
        h.expect_error(r, 503, "unavailable")
        out["go"].set()
        reader.join(60)
        expect(out["status"] == 200, out["status"])
        status, _, body = export("/admin/logs/export", port=shim.port)
        expect(status == 200 and len(csv_rows(body)) - 1 == h.audit_count(), status)
        # a client that stops reading and goes: the connection is freed
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", shim.port))
        s.sendall(f"GET /admin/codes/export HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin()}"
                  "\r\n\r\n".encode())
        s.recv(100)
        expect(wait_for(lambda: bulk_connections() == 1), "no export running")
        s.close()
        expect(wait_for(lambda: bulk_connections() == 0), "the export's connection stayed open")
        r = imp("code\nBM-2\n", shim=shim)
        expect(r.status == 200 and r.body["inserted"] == 1, r)
    finally:
        expect(shim.stop() == 0, "the shim did not stop cleanly")


# --- the README --------------------------------------------------------------

@test
def readme_an_admins_day_runs_as_written():
    """README, "An admin's day with CSV": the block run by bash as written
    (only its first line, the shim's address, points at the test's shim),
    in a directory of its own; then what it printed and wrote is checked."""
    text = open(os.path.join(ROOT, "README.md")).read()
    m = re.search(r"<!-- admin-day -->\s*```sh\n(.*?)```", text, re.S)
    expect(m, "README has no admin-day block")
    script = m.group(1)
    first, rest = script.split("\n", 1)
    expect(first == "PSK=127.0.0.1:8000", first)
    work = os.path.join(h.WORK, "admin-day")
    os.makedirs(work, exist_ok=True)
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", f"PSK=127.0.0.1:{h.MAIN.port}\n" + rest],
                         cwd=work, capture_output=True, text=True, timeout=120)
    expect(run.returncode == 0, (run.returncode, run.stdout, run.stderr))
    report = json.load(open(os.path.join(work, "report.json")))
    expect(report["inserted"] == 3 and report["unknown_countries"] == ["FR"], report)
    expect(report["failed"] == [[5, "VND-0002", "duplicate_in_batch"], [6, "OSV-001", "duplicate_in_db"],
                                [7, "VND 0005", "invalid"]], report["failed"])
    expect("line 5: VND-0002 duplicate_in_batch" in run.stdout, run.stdout)
    codes = csv_rows(open(os.path.join(work, "osv-codes.csv"), "rb").read())
    expect(codes[0] == CODES_HEADER, codes[0])
    mine = {r[0]: r for r in codes[1:] if r[0].startswith("VND-")}
    expect(sorted(mine) == ["VND-0001", "VND-0002", "VND-0003"], sorted(mine))
    expect(mine["VND-0001"][8] == "Vendor X, box 7" and mine["VND-0001"][9] == "DE;UK", mine["VND-0001"])
    added = csv_rows(open(os.path.join(work, "added-today.csv"), "rb").read())
    expect(added[0] == LOG_HEADER, added[0])
    expect({r[3] for r in added[1:] if r[3].startswith("VND-")} == set(mine), added[-3:])
    expect(all(f"batch {report['batch_id']}" in r[9] for r in added[1:] if r[3].startswith("VND-")),
           added[-3:])


def main():
    h.MAIN = h.Shim(name="csv")
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
        rc = h.MAIN.stop()
        if rc != 0:
            failed += 1
            print(f"not ok - csv shim exited {rc}")
        sys.stdout.flush()
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
