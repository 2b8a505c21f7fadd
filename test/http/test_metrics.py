#!/usr/bin/env python3
"""The admin port (API.md, "Watching it: metrics"): GET /metrics, /live and
/ready on --admin-listen, never on the public port; the numbers of
/metrics after known transitions, through both ways psk.metrics() counts
(the rows past the fold, and the folded totals; live counts and the
worker's counts); the 1 s cache; /ready while the database is cut off and
after; the text format, parsed by prometheus_client; and README's
"scrape metrics" example, run as written.

Run by test/http/run.sh on a fresh psk_http database (setup.sql); reuses
test_http.py's helpers.  Prints "N passed, M failed" last.
"""
import http.client
import os
import re
import subprocess
import sys
import time
import traceback

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    # Debian's python3-prometheus-client (scripts/deps.sh), for a python3
    # that is not Debian's own
    sys.path.append("/usr/lib/python3/dist-packages")
    from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_http as h  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TESTS = []
SHIM = None          # the shim most tests scrape, with its admin port


def test(fn):
    TESTS.append(fn)
    return fn


class AdminShim(h.Shim):
    """A shim with a known admin port."""

    def __init__(self, db=None, name="metrics"):
        self.admin_port = h.free_port()
        super().__init__(db=db, name=name,
                         args=("--admin-listen", f"127.0.0.1:{self.admin_port}"))


def get(port, path, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read().decode()
    conn.close()
    return r.status, dict((k.lower(), v) for k, v in r.getheaders()), body


def scrape(shim=None, wait=True):
    """Samples of /metrics as {(name, frozenset(labels)): value}, after the
    1 s cache has run out (wait), parsed by prometheus_client."""
    if wait:
        time.sleep(1.1)
    status, headers, body = get((shim or SHIM).admin_port, "/metrics")
    assert status == 200, (status, body)
    assert headers["content-type"].startswith("text/plain; version=0.0.4"), headers
    out = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def fold():
    """The worker's refresh, by hand (this cluster has no worker)."""
    h.sql("SELECT psk.metrics_refresh()")


# --- the tests ---------------------------------------------------------------

@test
def text_format_parses_with_every_family_and_type():
    # Without a worker psk.metrics() counts codes itself only while
    # pg_class.reltuples says psk.codes is small; the suites before this one
    # add and delete tens of thousands of codes, after which the estimate
    # can be anything until the table is analyzed.
    h.sql("ANALYZE psk.codes")
    status, _, body = get(SHIM.admin_port, "/metrics")
    assert status == 200
    types = {f.name: f.type for f in text_string_to_metric_families(body)}
    want = {"psk_codes": "gauge", "psk_free_codes": "gauge",
            "psk_oldest_hold_seconds": "gauge", "psk_transitions": "counter",
            "psk_http_requests": "counter",
            "psk_http_request_duration_seconds": "histogram",
            "psk_db_connections": "gauge", "psk_http_connections": "gauge",
            "psk_expiry_worker_up": "gauge",
            "psk_expiry_worker_last_sweep_timestamp_seconds": "gauge",
            "psk_database_up": "gauge"}
    for name, t in want.items():
        assert types.get(name) == t, (name, types.get(name))
    # every line is a comment or "name{labels} value"
    for line in body.splitlines():
        assert line.startswith("# ") or re.match(
            r'^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [-+0-9.e]+|NaN|[+-]Inf$', line), line


@test
def numbers_after_known_transitions():
    before = scrape()
    # three OSV codes reserved, one confirmed, one released
    got = h.call("POST", "/users/reserve", {"tester_name": "t", "how_many": 3},
                 token=h.token("osv"), shim=SHIM)
    assert got.status == 200, got
    codes = got.body["codes"] if "codes" in got.body else got.body
    a, b, c = [(x["code"], x["reservation_token"]) for x in codes]
    r = h.call("POST", "/users/confirm", {"code": a[0], "reservation_token": a[1]},
               token=h.token("osv"), shim=SHIM)
    assert r.status == 200, r
    r = h.call("POST", "/users/release", {"code": b[0], "reservation_token": b[1]},
               token=h.token("osv"), shim=SHIM)
    assert r.status == 200, r
    h.call("GET", "/no/such/path", shim=SHIM)

    for way in ("live counts, unfolded log", "counted, folded"):
        if way == "counted, folded":
            fold()
            fold()
            folded, pending = h.sql("SELECT folded_to, coalesce(pending_to, 0) FROM psk.metrics_state")[0]
            assert int(folded) == int(h.one("SELECT max(id) FROM psk.audit_log")), (folded, pending)
        m = scrape()
        assert value(m, "psk_codes", code_type="OSV", status="RESERVED") == 1, way
        assert value(m, "psk_codes", code_type="OSV", status="IN_USE") == 1, way
        assert value(m, "psk_codes", code_type="OSV", status="CAN_BE_USED") == 18, way
        assert value(m, "psk_codes", code_type="HSV", status="CAN_BE_USED") == 20, way
        assert value(m, "psk_codes", code_type="COMMON", status="NON_USABLE") == 0, way
        assert value(m, "psk_free_codes", code_type="OSV", country="UK") == 18, way
        assert value(m, "psk_free_codes", code_type="OSV", country="DE") == 18, way
        assert value(m, "psk_free_codes", code_type="HSV", country="DE") == 20, way
        assert value(m, "psk_oldest_hold_seconds", code_type="OSV") > 0, way
        assert value(m, "psk_oldest_hold_seconds", code_type="HSV") == 0, way
        for action, delta in (("RESERVED", 3), ("CONFIRMED", 1), ("RELEASED", 1), ("EXPIRED", 0)):
            assert value(m, "psk_transitions_total", action=action) == \
                value(before, "psk_transitions_total", action=action) + delta, (way, action)
        # the totals equal the log, action by action
        for action, n in h.sql("SELECT action, count(*) FROM psk.audit_log GROUP BY action"):
            assert value(m, "psk_transitions_total", action=action) == int(n), (way, action)
        # this shim's own requests, exactly
        assert value(m, "psk_http_requests_total", route="POST /users/reserve", status="200") == 1
        assert value(m, "psk_http_requests_total", route="POST /users/confirm", status="200") == 1
        assert value(m, "psk_http_requests_total", route="POST /users/release", status="200") == 1
        assert value(m, "psk_http_requests_total", route="unmatched", status="404") == 1
        n = value(m, "psk_http_request_duration_seconds_count", route="POST /users/reserve")
        assert n == 1 and value(m, "psk_http_request_duration_seconds_bucket",
                                route="POST /users/reserve", le="+Inf") == 1
        assert value(m, "psk_http_request_duration_seconds_sum", route="POST /users/reserve") > 0
        # two threads of two connections each, all of them up
        states = {s: value(m, "psk_db_connections", state=s)
                  for s in ("down", "connecting", "idle", "busy")}
        assert sum(states.values()) == 4 and states["down"] == 0, states
        assert value(m, "psk_database_up") == 1
        assert value(m, "psk_database_primary") == 1

    # after the fold: the new rows are counted past it, once
    reserve_after = h.call("POST", "/users/reserve", {"tester_name": "t"},
                           token=h.token("osv"), shim=SHIM)
    assert reserve_after.status == 200
    m = scrape()
    assert value(m, "psk_transitions_total", action="RESERVED") == \
        value(before, "psk_transitions_total", action="RESERVED") + 4
    fold()
    fold()
    m2 = scrape()
    assert value(m2, "psk_transitions_total", action="RESERVED") == \
        value(m, "psk_transitions_total", action="RESERVED")


@test
def connections_are_spread_over_the_threads():
    """A burst of connections, opened at once as a load generator does,
    lands on both threads by halves (one thread used to take nearly all,
    and served them with only its own database connections); each then
    answers, and closing them gives the places back."""
    import socket
    conns = [socket.create_connection(("127.0.0.1", SHIM.port)) for _ in range(20)]
    try:
        for s in conns:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        for s in conns:
            s.settimeout(10)
            assert s.recv(4096).startswith(b"HTTP/1.1 200"), "no answer"
        m = scrape(wait=False)
        per_thread = [value(m, "psk_http_connections", thread=str(t)) for t in (0, 1)]
        assert sum(per_thread) == 20 and abs(per_thread[0] - per_thread[1]) <= 1, per_thread
    finally:
        for s in conns:
            s.close()
    for _ in range(100):
        m = scrape(wait=False)
        if [value(m, "psk_http_connections", thread=str(t)) for t in (0, 1)] == [0, 0]:
            break
        time.sleep(0.05)
    assert [value(m, "psk_http_connections", thread=str(t)) for t in (0, 1)] == [0, 0], m


@test
def a_transaction_open_across_the_fold_is_counted_once():
    """A row whose transaction began before a fold and commits after it:
    the fold waits for it, so it is neither lost nor counted twice."""
    before = scrape()
    psql = subprocess.Popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    psql.stdin.write("BEGIN;\nSELECT FROM psk_reserve('hsv@example.com', 'slow');\n")
    psql.stdin.flush()
    time.sleep(0.5)
    # a later transition, committed first
    h.sql("SELECT FROM psk_reserve('hsv@example.com', 'quick')")
    fold()
    fold()
    fold()
    pending = h.sql("SELECT folded_to, (SELECT max(id) FROM psk.audit_log) FROM psk.metrics_state")[0]
    assert int(pending[0]) < int(pending[1]), ("the fold passed the open transaction", pending)
    psql.stdin.write("COMMIT;\n")
    psql.stdin.close()
    assert psql.wait(10) == 0, psql.stdout.read()
    fold()
    fold()
    m = scrape()
    assert value(m, "psk_transitions_total", action="RESERVED") == \
        value(before, "psk_transitions_total", action="RESERVED") + 2
    assert int(h.one("SELECT folded_to FROM psk.metrics_state")) == \
        int(h.one("SELECT max(id) FROM psk.audit_log"))


@test
def scrapes_within_a_second_are_one_query():
    m1 = scrape()
    h.sql("SELECT FROM psk_reserve('osv@example.com', 'cached')")
    m2 = scrape(wait=False)
    assert value(m2, "psk_transitions_total", action="RESERVED") == \
        value(m1, "psk_transitions_total", action="RESERVED"), "not cached"
    m3 = scrape()
    assert value(m3, "psk_transitions_total", action="RESERVED") == \
        value(m1, "psk_transitions_total", action="RESERVED") + 1


@test
def a_405_counts_under_its_path():
    before = scrape(wait=False)
    r = h.call("PUT", "/users/reserve", shim=SHIM)
    h.expect_error(r, 405, "method_not_allowed")
    m = scrape(wait=False)
    label = dict(route="POST /users/reserve", status="405")
    assert value(m, "psk_http_requests_total", **label) == \
        (value(before, "psk_http_requests_total", **label) or 0) + 1


@test
def live_and_ready():
    status, _, body = get(SHIM.admin_port, "/live")
    assert status == 200, body
    status, _, body = get(SHIM.admin_port, "/ready")
    assert status == 200, body
    # no worker in this cluster: ready all the same, and it says so
    assert '"expiry_worker":"not running"' in body, body
    m = scrape(wait=False)
    assert value(m, "psk_expiry_worker_up") == 0
    assert get(SHIM.admin_port, "/nothing")[0] == 404
    conn = http.client.HTTPConnection("127.0.0.1", SHIM.admin_port, timeout=5)
    conn.request("POST", "/metrics", body=b"{}")
    r = conn.getresponse()
    r.read()
    assert r.status == 405 and r.getheader("Allow") == "GET, HEAD"


@test
def admin_paths_are_not_on_the_public_port():
    for path in ("/metrics", "/live", "/ready"):
        r = h.call("GET", path, shim=SHIM)
        h.expect_error(r, 404, "not_found")
    # and the admin port serves no API route
    assert get(SHIM.admin_port, "/healthz")[0] == 404
    assert get(SHIM.admin_port, "/openapi.json")[0] == 404
    # one address for both is refused
    port = h.free_port()
    out = subprocess.run([h.SHIM, "--listen", f"127.0.0.1:{port}",
                          "--admin-listen", f"127.0.0.1:{port}"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 2 and "--admin-listen" in out.stderr, out
    helptext = subprocess.run([h.SHIM, "--help"], capture_output=True, text=True).stdout
    assert "--admin-listen" in helptext and "PSK_ADMIN_LISTEN" in helptext


@test
def ready_is_503_while_the_database_is_down_and_200_after():
    proxy = h.Proxy()
    proxy.up()
    shim = AdminShim(db=h.conninfo(proxy.port), name="metrics-proxied")
    try:
        deadline = time.time() + 10
        while get(shim.admin_port, "/ready")[0] != 200:
            assert time.time() < deadline, "never ready"
            time.sleep(0.2)
        proxy.down()
        deadline = time.time() + 10
        while True:
            status, _, body = get(shim.admin_port, "/ready")
            if status == 503:
                break
            assert time.time() < deadline, ("still ready with the database down", body)
            time.sleep(0.3)
        assert '"status":"not ready"' in body, body
        # alive all the same, and /metrics still answers, without the database
        assert get(shim.admin_port, "/live")[0] == 200
        m = scrape(shim)
        assert value(m, "psk_database_up") == 0
        assert value(m, "psk_codes", code_type="OSV", status="RESERVED") is None
        proxy.up()
        deadline = time.time() + 15
        while get(shim.admin_port, "/ready")[0] != 200:
            assert time.time() < deadline, "not ready again after the database came back"
            time.sleep(0.3)
        assert value(scrape(shim), "psk_database_up") == 1
    finally:
        proxy.down()
        assert shim.stop() == 0


@test
def readme_scrape_example_runs_as_written():
    """README, "Watching it: metrics": the operator's commands, with the
    example's admin address replaced by this shim's."""
    text = open(os.path.join(ROOT, "README.md")).read()
    block = re.search(r"<!-- scrape-example -->\s*```sh\n(.*?)```", text, re.S)
    assert block, "no scrape example in README.md"
    lines = [ln for ln in block.group(1).splitlines()
             if ln.startswith("curl ")]
    assert len(lines) >= 3, lines
    script = "\n".join(lines).replace("127.0.0.1:8001", f"127.0.0.1:{SHIM.admin_port}")
    time.sleep(1.1)
    out = subprocess.run(["bash", "-eo", "pipefail", "-c", script],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out
    assert '{"status":"ready"' in out.stdout, out.stdout
    assert re.search(r'^psk_free_codes\{code_type="HSV",country="UK"\} \d+$', out.stdout, re.M), out.stdout
    assert re.search(r'^psk_transitions_total\{action="RESERVED"\} \d+$', out.stdout, re.M), out.stdout


def main():
    global SHIM
    SHIM = AdminShim()
    h.MAIN = SHIM
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
        rc = SHIM.stop()
        if rc != 0:
            failed += 1
            print(f"not ok - the shim exited {rc}")
        sys.stdout.flush()
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
