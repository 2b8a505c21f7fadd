#!/usr/bin/env python3
"""The failover test's clients: N threads, each a user of its own, reserving,
confirming and releasing codes over HTTP through the shim, as a careful
client would across a failover:

- a call answered 503, or cut off (connection reset, timeout), is sent
  again until it gets an answer (a reserve with the same Idempotency-Key,
  so that a reserve that committed is replayed, not made twice);
- a retried confirm answered wrong_state, or a retried release answered
  wrong_state or not_allowed, means the cut-off attempt had committed.

Every attempt is logged (client, call, send and answer times, status, code,
token) to OUT/calls.jsonl.  The clients stop STOP_AFTER seconds after the
first reserve that succeeded after the kill (the kill's time is written by
run.sh into KILL_FILE), or at MAX_SECONDS; each then releases what it holds.
"""
import argparse
import http.client
import json
import os
import threading
import time
import urllib.parse
import uuid

ap = argparse.ArgumentParser()
ap.add_argument("--url", required=True)
ap.add_argument("--users", required=True, help="file: one e-mail a line")
ap.add_argument("--password", required=True)
ap.add_argument("--kill-file", required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--max-seconds", type=float, default=150)
ap.add_argument("--stop-after", type=float, default=8)
ap.add_argument("--retry-for", type=float, default=90)
args = ap.parse_args()

u = urllib.parse.urlparse(args.url)
HOST, PORT = u.hostname, u.port
start = time.time()
lock = threading.Lock()
log = open(os.path.join(args.out, "calls.jsonl"), "w")
first_after_kill = [None]


def kill_time():
    try:
        with open(args.kill_file) as f:
            return float(f.read().strip())
    except (OSError, ValueError):
        return None


def stopping():
    now = time.time()
    if now - start > args.max_seconds:
        return True
    f = first_after_kill[0]
    return f is not None and now - f > args.stop_after


class Client:
    def __init__(self, n, email):
        self.n = n
        self.email = email
        self.conn = None
        self.token = None

    def request(self, method, path, body, headers):
        """(status, parsed body or None); status 0: cut off (no answer)."""
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(HOST, PORT, timeout=15)
            self.conn.request(method, path, body=body, headers=headers)
            r = self.conn.getresponse()
            data = r.read()
            try:
                doc = json.loads(data) if data else None
            except ValueError:
                doc = None
            return r.status, doc
        except (OSError, http.client.HTTPException) as e:
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            return 0, {"error": "cut_off", "message": str(e)}

    def login(self):
        while not stopping():
            body = urllib.parse.urlencode({"username": self.email, "password": args.password})
            st, doc = self.request("POST", "/auth/login", body,
                                   {"Content-Type": "application/x-www-form-urlencoded"})
            if st == 200:
                self.token = doc["access_token"]
                return True
            time.sleep(0.2)
        return False

    def call(self, op, payload, key=None):
        """One logical call, retried while cut off.  Returns the final
        (status, doc, applied_by_cut_off)."""
        headers = {"Content-Type": "application/json",
                   "Authorization": "Bearer " + self.token}
        if key:
            headers["Idempotency-Key"] = key
        first_t0 = time.time()
        cut = 0
        while True:
            t0 = time.time()
            st, doc = self.request("POST", "/users/" + op, json.dumps(payload), headers)
            t1 = time.time()
            rec = {"c": self.n, "user": self.email, "op": op, "t0": t0, "t1": t1,
                   "first_t0": first_t0, "status": st, "retry": cut,
                   "code": payload.get("code") or (doc or {}).get("code"),
                   "token": payload.get("reservation_token") or (doc or {}).get("reservation_token"),
                   "key": key, "error": (doc or {}).get("error") if st != 200 else None}
            with lock:
                log.write(json.dumps(rec) + "\n")
                if (op == "reserve" and st == 200 and first_after_kill[0] is None):
                    k = kill_time()
                    if k is not None and t0 > k:
                        first_after_kill[0] = t1
            if st in (0, 503) and time.time() - first_t0 < args.retry_for:
                cut += 1
                time.sleep(0.2)
                continue
            return st, doc, cut

    def run(self):
        if not self.login():
            return
        held = None  # (code, token)
        while not stopping():
            st, doc, _ = self.call("reserve", {"tester_name": "failover%d" % self.n},
                                   key=str(uuid.uuid4()))
            if st == 404 and doc and doc.get("error") == "no_codes_available":
                time.sleep(0.05)
                continue
            if st != 200:
                time.sleep(0.2)
                continue
            held = (doc["code"], doc["reservation_token"])
            self.call("confirm", {"code": held[0], "reservation_token": held[1]})
            st, doc, _ = self.call("release", {"code": held[0]})
            held = None
        self.conn = None


users = [line.strip() for line in open(args.users) if line.strip()]
clients = [Client(i + 1, e) for i, e in enumerate(users)]
threads = [threading.Thread(target=c.run) for c in clients]
for t in threads:
    t.start()
for t in threads:
    t.join()
log.close()
with open(os.path.join(args.out, "clients.json"), "w") as f:
    json.dump({"start": start, "end": time.time(), "first_reserve_after_kill": first_after_kill[0],
               "kill": kill_time()}, f)
