#!/usr/bin/env python3
"""The findings of issue 13 ("Hold under attack"), replayed as a hostile but
unprivileged client would, each bounded in time and count, on loopback
only.  Run by test/attack/run.sh, which starts the cluster (psk preloaded,
psk.database = the database under attack) and loads the demo data;
PGHOST/PGPORT/PGDATABASE point at it.  Python's standard library only.
Prints "N passed, M failed" last.
"""
import http.client
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback

WORK = os.environ["PSK_ATTACK_WORK"]
SHIM = os.path.abspath(os.environ["PSK_SHIM"])
SERVER_LOG = os.environ["PSK_ATTACK_SERVER_LOG"]
PGPORT = int(os.environ["PGPORT"])
DB = os.environ["PGDATABASE"]
PASSWORD = "Rdl@12345"
FLOOD_SOURCE = "127.0.0.2"  # loopback too: the flood's own client address


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sql(query, user=None):
    """Rows of a query as tuples of strings."""
    cmd = ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-F", "\x1f", "-c", query]
    if user:
        cmd[1:1] = ["-U", user]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return [tuple(line.split("\x1f")) for line in out.splitlines() if line != ""]


def one(query, user=None):
    rows = sql(query, user)
    assert len(rows) == 1 and len(rows[0]) == 1, rows
    return rows[0][0]


def sqlstate(query, user=None):
    """The SQLSTATE a statement raises, or '' when it succeeds."""
    cmd = ["psql", "-X", "-q", "-v", "VERBOSITY=sqlstate", "-c", query]
    if user:
        cmd[1:1] = ["-U", user]
    p = subprocess.run(cmd, capture_output=True, text=True)
    m = re.search(r"ERROR:\s+([0-9A-Z]{5})", p.stderr)
    return m.group(1) if m else ""


class Shim:
    """A psk-shim on a free port of 127.0.0.1; its output kept in files."""

    def __init__(self, *args, name="shim"):
        self.port = free_port()
        self.out_path = os.path.join(WORK, f"{name}-{self.port}.out")
        self.err_path = os.path.join(WORK, f"{name}-{self.port}.err")
        self.pid_path = os.path.join(WORK, f"{name}-{self.port}.pid")
        cmd = [SHIM, "--listen", f"127.0.0.1:{self.port}",
               "--db", f"host=127.0.0.1 port={PGPORT} dbname={DB} user=psk_shim",
               "--threads", "2", "--pool", "4", *args]
        self.proc = subprocess.Popen(cmd, stdout=open(self.out_path, "w"),
                                     stderr=open(self.err_path, "w"), start_new_session=True)
        with open(self.pid_path, "w") as f:
            f.write(str(self.proc.pid))
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if request(self, "GET", "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"{name} did not start: {self.log()}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        finally:
            os.unlink(self.pid_path)

    def log(self):
        return open(self.out_path).read() + open(self.err_path).read()

    def sockets(self):
        """The shim's open sockets (its listeners and database connections too)."""
        fds = f"/proc/{self.proc.pid}/fd"
        n = 0
        for f in os.listdir(fds):
            try:
                n += os.readlink(f"{fds}/{f}").startswith("socket:")
            except OSError:
                pass
        return n

    def cpu_seconds(self):
        fields = open(f"/proc/{self.proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def request(shim, method, path, body=None, token=None, form=False, source=None, timeout=10):
    """(status, headers, parsed JSON body) of one request on a connection of its own."""
    conn = http.client.HTTPConnection("127.0.0.1", shim.port, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    headers = {}
    if token:
        headers["Authorization"] = "Bearer " + token
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded" if form else "application/json"
        if not isinstance(body, (str, bytes)):
            body = json.dumps(body)
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        text = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, json.loads(text) if text else None
    finally:
        conn.close()


def login(shim, email, password=PASSWORD, source=None):
    return request(shim, "POST", "/auth/login", f"username={email}&password={password}",
                   form=True, source=source)


def failures():
    return int(one("SELECT count(*) FROM psk.login_failures"))


TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


# --- finding 1: the login flood -----------------------------------------------

@test
def login_flood_gets_429_and_starves_nobody():
    """16 threads of logins with random e-mails from one address, for 5 s,
    against a shim as make run starts it: the flood gets 429s, every
    legitimate login (another address) succeeds, no more than one guard
    worker runs, and a parallel query gets all its workers every time."""
    shim = Shim(name="flood")
    try:
        before = failures()
        stop = time.monotonic() + 5
        flood, legit, samples = {}, [], []
        lock = threading.Lock()

        def flooder():
            conn = None
            mine = {}
            while time.monotonic() < stop:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", shim.port, timeout=10,
                                                      source_address=(FLOOD_SOURCE, 0))
                try:
                    conn.request("POST", "/auth/login",
                                 f"username=flood-{secrets.token_hex(6)}@example.com&password=Wrong-1",
                                 {"Content-Type": "application/x-www-form-urlencoded"})
                    r = conn.getresponse()
                    r.read()
                    status = r.status
                    if r.getheader("Connection", "").lower() == "close":
                        conn.close()
                        conn = None
                except (OSError, http.client.HTTPException):
                    status = "error"
                    conn.close()
                    conn = None
                mine[status] = mine.get(status, 0) + 1
            if conn:
                conn.close()
            with lock:
                for k, v in mine.items():
                    flood[k] = flood.get(k, 0) + v

        def legitimate():
            i = 0
            while time.monotonic() < stop:
                email = ("osv", "hsv", "admin")[i % 3] + "@example.com"
                legit.append(login(shim, email, source="127.0.0.1")[0])
                i += 1
                time.sleep(0.25)

        def sampler():
            while time.monotonic() < stop:
                plan = subprocess.run(
                    ["psql", "-X", "-A", "-t", "-c", "SET parallel_setup_cost = 0",
                     "-c", "SET parallel_tuple_cost = 0", "-c", "SET min_parallel_table_scan_size = 0",
                     "-c", "SET max_parallel_workers_per_gather = 2",
                     "-c", "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) "
                           "SELECT count(*) FROM public.attack_pq WHERE h LIKE 'ab%'"],
                    capture_output=True, text=True).stdout
                planned = re.search(r"Workers Planned: (\d+)", plan)
                launched = re.search(r"Workers Launched: (\d+)", plan)
                guards = int(one("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'psk login guard'"))
                samples.append((int(planned.group(1)) if planned else 0,
                                int(launched.group(1)) if launched else 0, guards))
                time.sleep(0.3)

        threads = [threading.Thread(target=flooder) for _ in range(16)]
        threads += [threading.Thread(target=legitimate), threading.Thread(target=sampler)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        print(f"# flood: {flood}; legitimate: {legit}; (planned, launched, guards): {samples}")
        assert flood.get(429, 0) > 0, flood
        assert all(k in (401, 429) for k in flood), flood
        assert legit and all(s == 200 for s in legit), legit
        assert samples and all(p == 2 and l == 2 for p, l, _ in samples), samples
        assert max(g for _, _, g in samples) <= 1, samples
        # every guess the database checked was counted
        time.sleep(0.5)
        assert failures() - before == flood.get(401, 0), (failures() - before, flood)
        assert int(one("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'psk login guard'")) == 1
    finally:
        shim.stop()


@test
def hung_up_logins_run_nothing_and_count_nothing():
    """40 logins whose client hangs up at once, against a shim that lets
    them all through: none is answered, none counts a failure (their
    statements are dropped from the queue or cancelled)."""
    shim = Shim("--login-limit", "64", "--login-limit-per-client", "64", name="hangup")
    try:
        before = failures()
        for i in range(40):
            s = socket.create_connection(("127.0.0.1", shim.port))
            body = f"username=gone-{i}-{secrets.token_hex(4)}@example.com&password=Wrong-1".encode()
            s.sendall(b"POST /auth/login HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: application/x-www-form-urlencoded\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body) + body)
            s.close()
        deadline = time.time() + 15
        while time.time() < deadline and shim.log().count(" POST /auth/login ") < 40:
            time.sleep(0.1)
        time.sleep(1)
        lines = [l for l in shim.log().splitlines() if " POST /auth/login " in l]
        assert len(lines) == 40 and all(" 499 " in l for l in lines), lines
        assert failures() - before == 0, failures() - before
    finally:
        shim.stop()


# --- finding 2: advisory-lock squatting ------------------------------------

@test
def advisory_lock_locks_no_account_out():
    """A role with no privilege on psk takes the advisory lock 0.2.1's
    logins of osv@ took, and holds it: osv still logs in; and the rows
    logins lock now are out of its reach."""
    sql("DROP ROLE IF EXISTS attack_squatter; CREATE ROLE attack_squatter LOGIN")
    shim = Shim(name="squat")
    squatter = subprocess.Popen(
        ["psql", "-X", "-q", "-U", "attack_squatter", "-c",
         "SELECT pg_advisory_lock(1347636993, hashtext('osv@example.com')), pg_sleep(8)"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if one("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                   "AND objid = hashtext('osv@example.com')::oid") == "1":
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the squatter did not get its lock")
        status, _, body = login(shim, "osv@example.com")
        assert status == 200, (status, body)
        assert sqlstate("SELECT * FROM psk.login_slots FOR UPDATE", user="attack_squatter") == "42501"
        assert sqlstate("SELECT * FROM psk_login('osv@example.com', 'x')", user="attack_squatter") == "42501"
    finally:
        squatter.kill()
        squatter.wait()
        shim.stop()


# --- finding 3: secrets in the logs and the tables --------------------------

@test
def no_secret_reaches_a_log_or_a_table():
    """The finding's own inputs: a login body without its closing brace or
    with a trailing comma, a malformed confirm body with a reservation
    token, a password in a refused psk_login typed into psql, and a
    password typed into the e-mail field."""
    password = "Pw-" + secrets.token_hex(8)
    tok = "Tk-" + secrets.token_hex(8)
    typed = "Typed-In-Psql-" + secrets.token_hex(4)
    in_email = "In-Email-" + secrets.token_hex(6)
    shim = Shim(name="secrets")
    try:
        _, _, t = login(shim, "osv@example.com")
        for body in ('{"username":"osv@example.com","password":"%s"' % password,
                     '{"username":"osv@example.com","password":"%s",}' % password):
            assert request(shim, "POST", "/auth/login", body)[0] == 400
        assert request(shim, "POST", "/users/confirm", '{"code": "X", "reservation_token": "%s"' % tok,
                       token=t["access_token"])[0] == 400
        assert sqlstate(f"SELECT * FROM psk_login('', '{typed}')") == "PK007"
        assert login(shim, in_email, "x")[0] == 401
        logs = open(SERVER_LOG, errors="replace").read() + shim.log()
        for secret in (password, tok, typed, in_email):
            assert secret not in logs, [l for l in logs.splitlines() if secret in l][:3]
        rows = "\n".join(r[0] for r in sql("SELECT f::text FROM psk.login_failures f"))
        for x in (in_email, in_email.lower(), in_email.lower().encode().hex()):
            assert x not in rows.lower(), x
    finally:
        shim.stop()


# --- finding 4: greedy clients -----------------------------------------------

@test
def connection_cap_holds():
    """80 idle connections against --max-connections 32: the shim holds at
    most 32 of them (the rest wait in the kernel's backlog), the idle ones
    are closed after --idle-timeout, and a new client is served."""
    shim = Shim("--max-connections", "32", "--idle-timeout", "2s", name="cap")
    hogs = []
    try:
        base = shim.sockets()
        hogs = [socket.create_connection(("127.0.0.1", shim.port)) for _ in range(80)]
        time.sleep(0.5)
        held = shim.sockets() - base
        assert held <= 32, held
        status = request(shim, "GET", "/healthz", timeout=15)[0]
        assert status == 200, status
        assert "not accepting for now" in shim.log()
    finally:
        for s in hogs:
            s.close()
        shim.stop()


@test
def descriptors_running_out_do_not_spin():
    """With the descriptor limit reached, accept() fails (EMFILE): the shim
    stops watching its listening socket for a while instead of spinning on
    it, says so once, and serves again once descriptors are free."""
    shim = Shim(name="emfile")
    hogs = []
    try:
        open_fds = len(os.listdir(f"/proc/{shim.proc.pid}/fd"))
        subprocess.run(["prlimit", "--pid", str(shim.proc.pid), f"--nofile={open_fds + 4}:"], check=True)
        hogs = [socket.create_connection(("127.0.0.1", shim.port)) for _ in range(30)]
        time.sleep(0.3)
        cpu = shim.cpu_seconds()
        time.sleep(2)
        used = shim.cpu_seconds() - cpu
        assert used < 0.5, f"{used:.2f} s of CPU in 2 s"
        assert 0 < shim.log().count("cannot accept: Too many open files") <= 4, shim.log()[-2000:]
    finally:
        for s in hogs:
            s.close()
        subprocess.run(["prlimit", "--pid", str(shim.proc.pid), "--nofile=4096:"], check=False)
    try:
        assert request(shim, "GET", "/healthz", timeout=15)[0] == 200
    finally:
        shim.stop()


@test
def slowloris_is_cut_by_the_idle_timeout():
    """A request trickled a header line at a time is cut --idle-timeout (2 s)
    after the connection opened, not served for ever."""
    shim = Shim("--idle-timeout", "2s", name="slowloris")
    try:
        s = socket.create_connection(("127.0.0.1", shim.port))
        s.settimeout(0.3)
        t0 = time.monotonic()
        closed = None
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        while time.monotonic() - t0 < 8 and closed is None:
            try:
                s.sendall(b"X-Slow: 1\r\n")
                if s.recv(1) == b"":
                    closed = time.monotonic() - t0
            except socket.timeout:
                pass
            except OSError:
                closed = time.monotonic() - t0
        s.close()
        assert closed is not None and closed < 6, closed
    finally:
        shim.stop()


@test
def pipelining_is_limited():
    """50 requests sent at once before reading any answer: --max-pipelined
    (4) of them, and the one in hand, are answered; then the connection
    ends."""
    shim = Shim("--max-pipelined", "4", name="pipeline")
    try:
        s = socket.create_connection(("127.0.0.1", shim.port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 50)
        s.settimeout(10)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        assert data.count(b"HTTP/1.1 200") == 5, data.count(b"HTTP/1.1 200")
        assert b"Connection: close" in data
    finally:
        shim.stop()


@test
def clients_that_never_read_are_cut():
    """20 connections each pipelining 50 GET /openapi.json and never reading
    (as in the finding, where they stayed ESTABLISHED with 560 MB in the
    kernel's send queues): cut after --write-timeout (2 s), their unsent
    answers dropped."""
    shim = Shim("--write-timeout", "2s", "--idle-timeout", "60s", "--max-pipelined", "1000",
                name="noread")
    hogs = []
    try:
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", shim.port))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n" * 50)
            hogs.append(s)
        time.sleep(1)
        established = subprocess.run(["ss", "-tnH", "state", "established", f"( sport = :{shim.port} )"],
                                     capture_output=True, text=True).stdout.splitlines()
        assert len(established) == 20, established
        time.sleep(4)
        out = subprocess.run(["ss", "-tnH", f"( sport = :{shim.port} )"],
                             capture_output=True, text=True).stdout.splitlines()
        left = [l for l in out if not l.startswith("LISTEN")]
        queued = sum(int(l.split()[2]) for l in left)
        assert queued < 1_000_000 and not [l for l in left if l.startswith("ESTAB")], out
        assert "(--write-timeout)" in shim.log()
    finally:
        for s in hogs:
            s.close()
        shim.stop()


# --- finding 5: a tampered table ---------------------------------------------

@test
def tampered_table_shape_is_an_error_not_a_crash():
    """The table owner changes a column's type under psk: reserve refuses
    with 42804 (over HTTP a 500), stores nothing, and the server does not
    restart."""
    started = one("SELECT pg_postmaster_start_time()")
    shim = Shim(name="shape")
    try:
        _, _, t = login(shim, "osv@example.com")
        fp = one("SELECT count(*) || ' ' || max(id) FROM psk.audit_log")
        for alter, undo in (("ALTER TABLE psk.codes ALTER tester_name TYPE varchar(5)",
                             "ALTER TABLE psk.codes ALTER tester_name TYPE text"),
                            ("ALTER TABLE psk.audit_log ALTER user_id TYPE text",
                             "ALTER TABLE psk.audit_log ALTER user_id TYPE bigint USING user_id::bigint")):
            sql(alter)
            try:
                assert sqlstate("SELECT * FROM psk_reserve('osv@example.com', 'twelve-chars')") == "42804"
                status, _, body = request(shim, "POST", "/users/reserve", {"tester_name": "twelve-chars"},
                                          token=t["access_token"])
                assert status == 500 and body["error"] == "internal", (status, body)
            finally:
                sql(undo)
        assert one("SELECT count(*) || ' ' || max(id) FROM psk.audit_log") == fp
        assert one("SELECT count(*) FROM psk.codes WHERE tester_name = 'twelve-chars'") == "0"
        assert one("SELECT pg_postmaster_start_time()") == started
        assert "terminated by signal" not in open(SERVER_LOG, errors="replace").read()
    finally:
        shim.stop()


def main():
    passed = failed = 0
    only = os.environ.get("PSK_ATTACK_ONLY")  # a test's name, to run it alone
    for fn in [t for t in TESTS if not only or t.__name__ == only]:
        try:
            fn()
            passed += 1
            print(f"ok - {fn.__name__}")
        except Exception:
            failed += 1
            print(f"not ok - {fn.__name__}")
            traceback.print_exc(file=sys.stdout)
        sys.stdout.flush()
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
