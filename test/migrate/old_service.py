#!/usr/bin/python3
"""The old service's database, as ../../../shared/seed/SEED-DATA.md
describes it, filled with a realistic history: what psk_migrate_legacy
moves in the migration test (test/migrate) and in its timing.

    /usr/bin/python3 test/migrate/old_service.py DIR [CODES] [SEED]

writes DIR/schema.sql (the old tables, as SQLAlchemy made them), one CSV
per table, DIR/load.sql (\\copy of each, then the sequences set past the
ids) and DIR/users.json (each user's e-mail and password in clear, for
logging in after the move).  Debian's python3 (python3-passlib) makes the
password hashes passlib's way: bcrypt "$2b$".

The history is simulated in time order, as the old service wrote it:
admins add codes in batches (an ADDED row per code, as /admin/codes/add
did), testers reserve from their pool (with a country for OSV and HSV
half of the time) and release, now and then someone releases a code held
by another (the old service allowed it), admins delete free codes; some
codes were loaded by a seeding script with no log row at all, some codes
were typed in lower case or with spaces around them, and at the end some
codes are still reserved.
"""
import csv
import json
import os
import random
import sys
import uuid
from datetime import datetime, timedelta, timezone

SCHEMA = """\
CREATE TYPE code_status AS ENUM ('CAN_BE_USED', 'RESERVED');
CREATE TYPE code_type AS ENUM ('OSV', 'HSV', 'COMMON');
CREATE TYPE code_action AS ENUM ('RESERVED', 'RELEASED', 'DELETED', 'ADDED');
CREATE TABLE regions (
    id bigserial PRIMARY KEY,
    name varchar(128) NOT NULL
);
CREATE TABLE countries (
    id bigserial PRIMARY KEY,
    name varchar(128) NOT NULL,
    region_id bigint NOT NULL REFERENCES regions (id)
);
CREATE TABLE users (
    id bigserial PRIMARY KEY,
    team_name varchar(100) NOT NULL,
    user_name varchar(320) NOT NULL,
    contact_email varchar(320) NOT NULL UNIQUE,
    password_hash text NOT NULL,
    is_admin boolean NOT NULL DEFAULT false,
    created_at timestamptz DEFAULT now()
);
CREATE TABLE codes (
    code varchar(64) PRIMARY KEY,
    user_id bigint REFERENCES users (id) ON DELETE SET NULL,
    tester_name text,
    requested_at timestamptz,
    released_at timestamptz,
    reservation_token uuid,
    status code_status,
    code_type code_type,
    note text
);
CREATE TABLE code_countries (
    code varchar(64) REFERENCES codes (code) ON DELETE CASCADE,
    country_id bigint REFERENCES countries (id),
    PRIMARY KEY (code, country_id)
);
CREATE TABLE logs (
    id bigserial PRIMARY KEY,
    code varchar(64) NOT NULL,
    user_id bigint REFERENCES users (id) ON DELETE SET NULL,
    user_name varchar(320),
    contact_email varchar(320),
    tester_name text,
    action code_action,
    region_name varchar(128),
    country_name varchar(128),
    note text,
    logged_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX logs_code_action_idx ON logs (code, action);
CREATE INDEX logs_user_action_time_idx ON logs (user_id, action, logged_at);
"""

# as the admins typed them: one region twice, in another case
REGIONS = ["Europe", "Asia", "Americas", "europe "]
COUNTRIES = [("United Kingdom", 1), ("Germany", 1), ("France", 1), ("Spain", 4),
             ("Italy", 1), ("India", 2), ("Japan", 2), ("Singapore", 2),
             ("United States", 3), ("Brazil", 3), ("Canada", 3), ("Mexico", 3)]
# (team, user, e-mail, is_admin, bcrypt rounds): the three the old service
# made at start-up, two more admins, and testers of every pool
TEAMS = ["Trillium OSV", "Zeus HSV", "Apollo", "Hermes osv", "Athena HSV", "QA Common"]


def users_spec(n_testers=18):
    out = [("Admin", "admin", "admin@example.com", True, 12),
           ("Trillium", "osv", "osv@example.com", False, 12),
           ("Zeus", "hsv", "hsv@example.com", False, 12),
           ("Admin", "Priya Nair", "priya.nair@corp.example", True, 4),
           ("Ops", "Jon Berg", "jon.berg@corp.example", True, 4)]
    for i in range(n_testers):
        team = TEAMS[i % len(TEAMS)]
        out.append((team, f"Tester {i + 1}", f"tester{i + 1}@corp.example", False, 4))
    return out


def pool_of(team):
    t = team.lower()
    return "OSV" if "osv" in t else "HSV" if "hsv" in t else "COMMON"


def generate(out, n_codes=3000, seed=42, n_testers=18, hash_cost=None):
    from passlib.hash import bcrypt

    rnd = random.Random(seed)
    os.makedirs(out, exist_ok=True)
    t = datetime(2025, 1, 6, 8, 30, tzinfo=timezone.utc)

    def tick(lo=5, hi=900):
        nonlocal t
        t += timedelta(seconds=rnd.randint(lo, hi), microseconds=rnd.randint(0, 999999))
        return t

    users, clear = [], []
    for i, (team, name, email, admin, rounds) in enumerate(users_spec(n_testers), 1):
        pw = "Rdl@12345" if i <= 3 else ("Grüße-€-%d" % i if i % 7 == 0 else f"Old-{i}-pass!")
        h = bcrypt.using(rounds=hash_cost or rounds).hash(pw)
        assert h.startswith("$2b$"), h
        users.append([i, team, name, email, h, "t" if admin else "f", tick(60, 3600).isoformat()])
        clear.append({"email": email, "password": pw, "is_admin": admin, "pool": pool_of(team),
                      "id": i, "user_name": name})
    admins = [u for u in users if u[5] == "t"]
    testers = [u for u in users if u[5] == "f"]

    codes = {}                  # code -> row
    cc = []                     # (code, country_id)
    logs = []
    free = {"OSV": [], "HSV": [], "COMMON": []}
    held = {}                   # code -> user row
    deleted = 0

    def log(code, user, action, tester=None, country=None, note=None):
        region = None
        if country is not None:
            region = REGIONS[COUNTRIES[country - 1][1] - 1].strip()
        logs.append([len(logs) + 1, code, user[0] if user else "", user[2] if user else "",
                     user[3] if user else "", tester or "", action, region or "",
                     COUNTRIES[country - 1][0] if country else "", note or "", tick(1, 120).isoformat()])

    # codes, added in batches by admins (a few loaded by a script, unlogged)
    pools = ["OSV"] * 5 + ["HSV"] * 3 + ["COMMON"] * 2
    for i in range(1, n_codes + 1):
        pool = pools[i % len(pools)]
        code = f"{pool}-{i:07d}" if pool != "COMMON" else f"COM-{i:07d}"
        if i % 23 == 0:
            code = code.lower()
        elif i % 29 == 0:
            code = f" {code} "
        codes[code] = [code, "", "", "", "", "", "CAN_BE_USED", pool, ""]
        if pool != "COMMON":
            for c in rnd.sample(range(1, len(COUNTRIES) + 1), rnd.randint(1, 3)):
                cc.append((code, c))
        free[pool].append(code)
        if i % 37 == 0:
            continue            # loaded by the seeding script: no ADDED row
        log(code, rnd.choice(admins), "ADDED")

    def take(pool):
        lst = free[pool]
        if not lst:
            return None
        k = rnd.randrange(len(lst))
        lst[k], lst[-1] = lst[-1], lst[k]
        return lst.pop()

    by_code = {}
    for k, c in cc:
        by_code.setdefault(k, []).append(c)

    def countries_of(code):
        return by_code.get(code, [])

    # a history: reserve and release cycles
    for _ in range(int(n_codes * 1.5)):
        user = rnd.choice(testers)
        if held and rnd.random() < 0.45:
            code = rnd.choice(list(held)) if len(held) < 5000 else next(iter(held))
            holder = held.pop(code)
            row = codes[code]
            # the old service let anyone release (about one in ten)
            actor = holder if rnd.random() < 0.9 else rnd.choice(testers)
            clearance = f"CLR-{rnd.randint(1000, 9999)}" if rnd.random() < 0.3 else None
            note = clearance or rnd.choice(["", "done", "flashed OK", "label torn"])
            log(code, actor, "RELEASED", tester=row[2], note=note)
            row[1:6] = ["", "", "", t.isoformat(), ""]
            row[6] = "CAN_BE_USED"
            if note:
                row[8] = note
            free[row[7]].append(code)
            continue
        pool = pool_of(user[1])
        code = take(pool) or take("COMMON")
        if code is None:
            continue
        country = None
        if pool != "COMMON" and rnd.random() < 0.5:
            cs = countries_of(code)
            country = rnd.choice(cs) if cs else None
        tester = rnd.choice(["alice", "bob", "rig-7", "night run", "QA bench 3"])
        log(code, user, "RESERVED", tester=tester, country=country)
        row = codes[code]
        row[1:6] = [user[0], tester, t.isoformat(), "", str(uuid.UUID(int=rnd.getrandbits(128), version=4))]
        row[6] = "RESERVED"
        held[code] = user

    # admins delete a few free codes
    for pool in free:
        for _ in range(max(1, n_codes // 200)):
            code = take(pool)
            if code is None:
                break
            log(code, rnd.choice(admins), "DELETED")
            del codes[code]
            deleted += 1
    cc = [(k, c) for k, c in cc if k in codes]

    def write(name, rows):
        with open(os.path.join(out, name + ".csv"), "w", newline="") as f:
            w = csv.writer(f)
            for r in rows:
                w.writerow(r)

    write("regions", [[i, n] for i, n in enumerate(REGIONS, 1)])
    write("countries", [[i, n, r] for i, (n, r) in enumerate(COUNTRIES, 1)])
    write("users", users)
    write("codes", codes.values())
    write("code_countries", cc)
    write("logs", logs)
    with open(os.path.join(out, "schema.sql"), "w") as f:
        f.write(SCHEMA)
    cols = {"regions": "id, name", "countries": "id, name, region_id",
            "users": "id, team_name, user_name, contact_email, password_hash, is_admin, created_at",
            "codes": "code, user_id, tester_name, requested_at, released_at, reservation_token, "
                     "status, code_type, note",
            "code_countries": "code, country_id",
            "logs": "id, code, user_id, user_name, contact_email, tester_name, action, "
                    "region_name, country_name, note, logged_at"}
    with open(os.path.join(out, "load.sql"), "w") as f:
        for table in ("regions", "countries", "users", "codes", "code_countries", "logs"):
            # empty fields are NULL, as the old service left them
            f.write(f"\\copy {table} ({cols[table]}) FROM '{os.path.abspath(out)}/{table}.csv' "
                    f"WITH (FORMAT csv, NULL '')\n")
        for table in ("regions", "countries", "users", "logs"):
            f.write(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}));\n")
    with open(os.path.join(out, "users.json"), "w") as f:
        json.dump(clear, f, ensure_ascii=False)
    return {"codes": len(codes), "logs": len(logs), "held": len(held), "deleted": deleted,
            "users": len(users)}


if __name__ == "__main__":
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 42
    print(json.dumps(generate(out, n, seed, hash_cost=4 if n > 20000 else None)))
