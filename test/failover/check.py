#!/usr/bin/env python3
"""The failover test's verdict, from what the clients were told
(OUT/calls.jsonl, clients.py) and from the new primary (OUT/audit.tsv:
id, logged_at epoch, action, code, contact_email of every audit row of a
code; OUT/codes.tsv: code, status, holder e-mail).  Prints "ok - ..." /
"not ok - ..." lines and "figure: ..." lines.

A logical call is a client's first attempt and its retries.  Its outcome:
applied (answered 200; or, after a cut-off attempt, a confirm answered
wrong_state or a release answered wrong_state or not_allowed: the cut-off
attempt had done it), refused (a definite error), or unresolved (still cut
off when the client gave up).  Checks:
- every applied call has exactly one audit row of its action, code and
  user between its first send and its last answer: none is a lost
  acknowledged change, two would be a change made twice;
- a refused call has none;
- no code in two hands: the spans in which a client knew it held a code
  (from the reserve's answer to the release's send) never overlap;
- each code's audit rows replay as legal transitions (who holds it, in
  which state) ending in the state the code is in now: nothing half done;
- no test user holds a code at the end (every client released all it had);
- the clients carried on: a reserve succeeded after the kill.
"""
import collections
import json
import sys

out = sys.argv[1]
EPS = 0.01
ACTION = {"reserve": "RESERVED", "confirm": "CONFIRMED", "release": "RELEASED"}

attempts = [json.loads(line) for line in open(out + "/calls.jsonl")]
meta = json.load(open(out + "/clients.json"))
audit = []
for line in open(out + "/audit.tsv"):
    i, t, action, code, email = line.rstrip("\n").split("\t")
    audit.append((int(i), float(t), action, code, None if email == "\\N" else email))
codes = {}
for line in open(out + "/codes.tsv"):
    code, status, holder = line.rstrip("\n").split("\t")
    codes[code] = (status, None if holder == "\\N" else holder)
users = {a["user"] for a in attempts}

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print("ok - " + name)
    else:
        failed += 1
        print("not ok - " + name + (": " + detail if detail else ""))


# logical calls, in each client's order
calls = collections.OrderedDict()
for a in attempts:
    calls.setdefault((a["c"], a["op"], a["first_t0"]), []).append(a)
logical = []
for (c, op, first_t0), tries in calls.items():
    last = tries[-1]
    cut = any(t["status"] in (0, 503) for t in tries)
    st = last["status"]
    if st == 200:
        outcome = "applied"
    elif st in (0, 503):
        outcome = "unresolved"
    elif cut and ((op == "confirm" and last["error"] == "wrong_state") or
                  (op == "release" and last["error"] in ("wrong_state", "not_allowed"))):
        outcome = "applied"
    else:
        outcome = "refused"
    code = last["code"]
    logical.append({"c": c, "user": last["user"], "op": op, "t0": first_t0, "t1": last["t1"],
                    "last_t0": last["t0"], "code": code, "outcome": outcome, "cut": cut,
                    "status": st, "error": last["error"], "acked": st == 200})
logical.sort(key=lambda x: (x["c"], x["t0"]))

by_key = collections.defaultdict(list)
for row in audit:
    by_key[(row[2], row[3], row[4])].append(row)


def rows_for(call):
    return [r for r in by_key[(ACTION[call["op"]], call["code"], call["user"])]
            if call["t0"] - EPS <= r[1] <= call["t1"] + EPS]


lost, twice, refused_wrote, anomalies = [], [], [], []
cut_calls = cut_committed = unresolved = 0
acked = collections.Counter()
for call in logical:
    if call["cut"]:
        cut_calls += 1
    if call["outcome"] == "unresolved":
        unresolved += 1
        continue
    if call["code"] is None:
        continue  # a reserve refused (no code free): nothing to match
    rows = rows_for(call)
    if call["outcome"] == "applied":
        if call["acked"]:
            acked[call["op"]] += 1
        if len(rows) == 0:
            lost.append(call)
        elif len(rows) > 1:
            twice.append(call)
        elif call["cut"] and rows[0][1] < call["last_t0"] - EPS:
            cut_committed += 1  # done by an attempt that was cut off
    else:
        if rows:
            refused_wrote.append(call)
        if call["op"] != "reserve":
            anomalies.append(call)

# spans in which a client knew it held a code
spans = collections.defaultdict(list)
holding = {}
for call in logical:
    key = call["c"]
    if call["op"] == "reserve" and call["outcome"] == "applied":
        holding[key] = (call["code"], call["t1"])
    elif call["op"] == "release" and key in holding and holding[key][0] == call["code"]:
        code, since = holding.pop(key)
        spans[code].append((since, call["t0"], key))
for key, (code, since) in holding.items():
    spans[code].append((since, float("inf"), key))
two_hands = []
for code, s in spans.items():
    s.sort()
    for a, b in zip(s, s[1:]):
        if b[0] < a[1] and a[2] != b[2]:
            two_hands.append((code, a, b))

# each code's audit rows as transitions
bad_replay = []
per_code = collections.defaultdict(list)
for row in audit:
    per_code[row[3]].append(row)
for code, rows in per_code.items():
    if code not in codes:
        bad_replay.append((code, "in the audit log, not in psk.codes"))
        continue
    state, holder = "CAN_BE_USED", None
    for i, t, action, _, email in sorted(rows):
        if action == "RESERVED" and state == "CAN_BE_USED":
            state, holder = "RESERVED", email
        elif action == "CONFIRMED" and state == "RESERVED" and holder == email:
            state = "IN_USE"
        elif action == "RELEASED" and state in ("RESERVED", "IN_USE") and holder == email:
            state, holder = "CAN_BE_USED", None
        elif action in ("EXPIRED", "DISASSOCIATED") and state in ("RESERVED", "IN_USE"):
            state, holder = "CAN_BE_USED", None
        elif action in ("ADDED", "COMMENTED", "RENEWED"):
            pass
        else:
            bad_replay.append((code, i, action, email, state, holder))
            break
    else:
        if (state, holder) != codes[code]:
            bad_replay.append((code, "end", state, holder, codes[code]))

still_held = sorted(c for c, (st, h) in codes.items() if h in users)

kill = meta["kill"]
first = meta["first_reserve_after_kill"]
after_kill = [c for c in logical if c["op"] == "reserve" and c["acked"] and kill and c["t0"] > kill]


def show(xs):
    return json.dumps(xs[:3])


check("the new primary has the test's codes and their audit rows", len(codes) > 0 and len(audit) > 0,
      "%d codes, %d audit rows" % (len(codes), len(audit)))
check("acknowledged changes: none lost (an audit row on the new primary for each)",
      not lost, "%d lost, e.g. %s" % (len(lost), show(lost)))
check("no change made twice (one audit row per applied call)", not twice,
      "%d, e.g. %s" % (len(twice), show(twice)))
check("a refused call wrote nothing", not refused_wrote, show(refused_wrote))
check("no code in two hands", not two_hands, "%d, e.g. %s" % (len(two_hands), show(two_hands)))
check("every code's audit rows replay to its state now (nothing half done)", not bad_replay,
      "%d, e.g. %s" % (len(bad_replay), show([list(map(str, b)) for b in bad_replay])))
check("no confirm or release of a held code refused", not anomalies,
      "%d, e.g. %s" % (len(anomalies), show(anomalies)))
check("no test user holds a code at the end", not still_held, " ".join(still_held[:10]))
check("every cut-off call resolved by its retries", unresolved == 0, "%d unresolved" % unresolved)
check("the clients carried on: reserves succeeded after the kill", len(after_kill) > 0,
      "none after the kill")

print("figure: calls answered 200: reserve %d, confirm %d, release %d"
      % (acked["reserve"], acked["confirm"], acked["release"]))
print("figure: calls cut off (503 or no answer, then retried): %d; committed by the cut-off attempt: %d; unresolved: %d"
      % (cut_calls, cut_committed, unresolved))
print("figure: acknowledged changes lost: %d; codes in two hands: %d" % (len(lost), len(two_hands)))
if kill and first:
    print("figure: kill to first successful reserve: %.1f s" % (first - kill))
sys.exit(1 if failed else 0)
