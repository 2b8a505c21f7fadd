#!/usr/bin/env python3
"""The login flood of issue 13, measured (bench/login-flood.sh runs it).

    login_flood.py ROLE PORT SECONDS [ARGS]

Each role runs in a process of its own, so that the flood's threads never
hold the interpreter lock while a measurement waits for its reply:

  flood THREADS SOURCE   THREADS threads POST /auth/login (the OAuth2 form)
                         with random e-mails, one after the other, as fast
                         as the replies come, from the local address SOURCE
                         (another loopback address than the legitimate
                         clients', so that a cap per client address can
                         tell them apart).  Prints the count of each status.
  legit EVERY            a good login (the demo accounts in turn) every
                         EVERY seconds from 127.0.0.1.  Prints the statuses.
  me EVERY TOKEN         GET /auth/me every EVERY seconds on one kept-alive
                         connection.  Prints the latencies (ms), one a line.

The roles print JSON on their last line.
"""
import http.client
import json
import os
import sys
import threading
import time

ROLE, PORT, SECONDS = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
ARGS = sys.argv[4:]
DEMO = ["osv@example.com", "hsv@example.com", "admin@example.com"]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def connect(source=None):
    return http.client.HTTPConnection(
        "127.0.0.1", PORT, timeout=30,
        source_address=(source, 0) if source else None)


def post_login(conn, email, password):
    conn.request("POST", "/auth/login", f"username={email}&password={password}", FORM)
    r = conn.getresponse()
    r.read()
    return r.status, r.getheader("Connection", "")


def flood():
    threads, source = int(ARGS[0]), ARGS[1]
    counts = {}
    lock = threading.Lock()
    stop = time.monotonic() + SECONDS

    def one():
        conn = connect(source)
        mine = {}
        while time.monotonic() < stop:
            email = f"flood-{os.urandom(6).hex()}@example.com"
            try:
                status, connection = post_login(conn, email, "Wrong-pass-1")
            except (OSError, http.client.HTTPException):
                status, connection = "error", "close"
            mine[status] = mine.get(status, 0) + 1
            if connection.lower() == "close" or status == "error":
                conn.close()
                conn = connect(source)
        conn.close()
        with lock:
            for k, v in mine.items():
                counts[str(k)] = counts.get(str(k), 0) + v

    ts = [threading.Thread(target=one) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print(json.dumps(counts))


def legit():
    every = float(ARGS[0])
    statuses = []
    stop = time.monotonic() + SECONDS
    i = 0
    while time.monotonic() < stop:
        t0 = time.monotonic()
        conn = connect("127.0.0.1")
        try:
            status, _ = post_login(conn, DEMO[i % len(DEMO)], "Rdl@12345")
        except (OSError, http.client.HTTPException):
            status = "error"
        conn.close()
        statuses.append(status)
        i += 1
        time.sleep(max(0.0, every - (time.monotonic() - t0)))
    print(json.dumps(statuses))


def me():
    every, token = float(ARGS[0]), ARGS[1]
    headers = {"Authorization": "Bearer " + token}
    conn = connect("127.0.0.1")
    lat = []
    bad = 0
    stop = time.monotonic() + SECONDS
    while time.monotonic() < stop:
        t0 = time.monotonic()
        try:
            conn.request("GET", "/auth/me", headers=headers)
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                bad += 1
        except (OSError, http.client.HTTPException):
            bad += 1
            conn.close()
            conn = connect("127.0.0.1")
            continue
        t1 = time.monotonic()
        lat.append((t1 - t0) * 1000)
        time.sleep(max(0.0, every - (t1 - t0)))
    print(json.dumps({"latencies_ms": lat, "not_200": bad}))


{"flood": flood, "legit": legit, "me": me}[ROLE]()
