-- psk: metrics (API.md "Watching it: metrics").  psk.metrics() is the
-- database part of the shim's GET /metrics: one cheap query, whatever the
-- size of the pool or of the log.
--
-- Transition counters without counting the log on every scrape, and
-- without a counter row updated by every reserve (a hot row all writers
-- would queue on): the expiry worker folds the audit rows written since its
-- last fold into psk.transition_totals after each sweep, and psk.metrics()
-- adds the rows past the fold (a few seconds' worth, read through the
-- primary key).  A fold may only pass ids that no running transaction can
-- still commit below: it notes the highest id and the snapshot's xmax, and
-- folds up to that id at a later sweep, once every transaction older than
-- that xmax has ended.  (Ids are drawn in order, after each transaction's
-- first write: the audit row follows the code's change.)
CREATE TABLE psk.transition_totals (
    action text PRIMARY KEY,
    n      bigint NOT NULL CHECK (n >= 0)
);

-- One row, made by the first refresh.
CREATE TABLE psk.metrics_state (
    id           int PRIMARY KEY CHECK (id = 1),
    -- audit rows with id <= folded_to are counted in psk.transition_totals
    folded_to    bigint NOT NULL DEFAULT 0,
    -- the next fold, up to this id, once no transaction older than
    -- pending_xmax runs
    pending_to   bigint,
    pending_xmax xid8,
    -- psk.code_counts as of counted_at, counted in count_ms
    counted_at   timestamptz,
    count_ms     double precision
);

-- The codes by pool and status (country NULL), and the free codes by pool
-- and country: recounted by the worker every psk.expiry_interval (less
-- often when counting takes long: at most about 5% of its time), so that
-- a scrape reads a few rows instead of counting a pool of 10M codes.
CREATE TABLE psk.code_counts (
    code_type text NOT NULL,
    status    text NOT NULL,
    country   text NOT NULL, -- '': the row of the pool and status
    n         bigint NOT NULL,
    PRIMARY KEY (code_type, status, country)
);

-- A dump keeps the totals with the log they count (one snapshot), as it
-- keeps every table of psk (90_backup.sql).
SELECT pg_catalog.pg_extension_config_dump('psk.transition_totals', '');
SELECT pg_catalog.pg_extension_config_dump('psk.metrics_state', '');
SELECT pg_catalog.pg_extension_config_dump('psk.code_counts', '');
REVOKE ALL ON psk.transition_totals, psk.metrics_state, psk.code_counts FROM PUBLIC;

-- The expiry worker of this database, from shared memory (metrics.c).
CREATE FUNCTION psk.expiry_worker_state()
RETURNS TABLE (preloaded bool, running bool, pid int, started_at timestamptz,
               last_sweep_at timestamptz, sweeps bigint)
AS 'MODULE_PATHNAME', 'psk_expiry_worker_state'
LANGUAGE C VOLATILE STRICT;

-- Fold new audit rows into the totals; recount the codes when the last
-- count is older than recount_every (and than 20 times its duration).
-- Called by the worker after each sweep; by hand or a scheduler without it.
CREATE FUNCTION psk.metrics_refresh(recount_every interval DEFAULT '0')
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    snap pg_snapshot := pg_catalog.pg_current_snapshot();
    s    psk.metrics_state;
    t0   timestamptz;
BEGIN
    INSERT INTO psk.metrics_state (id) VALUES (1) ON CONFLICT DO NOTHING;
    SELECT * INTO s FROM psk.metrics_state WHERE id = 1 FOR UPDATE;
    -- restored from another cluster: its transaction ids mean nothing here
    IF s.pending_xmax > pg_catalog.pg_snapshot_xmax(snap) THEN
        s.pending_to := NULL;
    END IF;
    IF s.pending_to IS NOT NULL
       AND pg_catalog.pg_snapshot_xmin(snap) >= s.pending_xmax THEN
        INSERT INTO psk.transition_totals AS t (action, n)
        SELECT l.action, pg_catalog.count(*)
          FROM psk.audit_log l
         WHERE l.id > s.folded_to AND l.id <= s.pending_to
         GROUP BY l.action
        ON CONFLICT (action) DO UPDATE SET n = t.n + excluded.n;
        s.folded_to := s.pending_to;
        s.pending_to := NULL;
    END IF;
    IF s.pending_to IS NULL THEN
        -- at most 1M rows a fold: the first one after an update is bounded.
        -- Only the rows past folded_to are read (the log's BRIN index of
        -- ids, 45_audit_partitions.sql: there is no btree on id to take a
        -- max() from); none: nothing to fold.
        s.pending_to := (SELECT pg_catalog.max(LEAST(l.id, s.folded_to + 1000000))
                           FROM psk.audit_log l WHERE l.id > s.folded_to);
        s.pending_xmax := pg_catalog.pg_snapshot_xmax(snap);
        IF s.pending_to IS NULL OR s.pending_to <= s.folded_to THEN
            s.pending_to := NULL;
            s.pending_xmax := NULL;
        END IF;
    END IF;

    IF s.counted_at IS NULL
       OR pg_catalog.clock_timestamp() - s.counted_at >=
          GREATEST(recount_every,
                   pg_catalog.make_interval(secs => 0.02 * coalesce(s.count_ms, 0))) THEN
        t0 := pg_catalog.clock_timestamp();
        DELETE FROM psk.code_counts;
        INSERT INTO psk.code_counts (code_type, status, country, n)
        SELECT c.pool, c.status, '', pg_catalog.count(*)
          FROM psk.codes c GROUP BY c.pool, c.status;
        INSERT INTO psk.code_counts (code_type, status, country, n)
        SELECT c.pool, 'CAN_BE_USED', co.name, pg_catalog.count(*)
          FROM psk.codes c
          JOIN psk.code_countries cc ON cc.code_id = c.id
          JOIN psk.countries co ON co.id = cc.country_id
         WHERE c.status = 'CAN_BE_USED'
         GROUP BY c.pool, co.name;
        s.counted_at := t0;
        s.count_ms := EXTRACT(epoch FROM pg_catalog.clock_timestamp() - t0) * 1000;
    END IF;

    UPDATE psk.metrics_state
       SET folded_to = s.folded_to, pending_to = s.pending_to,
           pending_xmax = s.pending_xmax, counted_at = s.counted_at,
           count_ms = s.count_ms
     WHERE id = 1;
END
$$;

-- A Prometheus label value: backslash, double quote and newline escaped.
CREATE FUNCTION psk.prom_label(name text, value text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT name || '="' || replace(replace(replace(value, '\', '\\'), '"', '\"'),
                                 E'\n', '\n') || '"'
$$;

-- The database part of GET /metrics: rows (name, labels, value), labels
-- already in Prometheus' form (code_type="OSV",status="RESERVED").  The
-- shim adds HELP and TYPE.  Counts of codes come from psk.code_counts
-- while the worker keeps it fresh.  When it is stale (no worker) they are
-- counted here if psk.codes is small (under 100,000 rows: a few ms);
-- otherwise the last counts are given with their time, or none at all
-- (never a made-up 0).  No JIT: compiling the plan of the branches that
-- do not run cost more than running the rest.
CREATE FUNCTION psk.metrics()
RETURNS TABLE (name text, labels text, value double precision)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
WITH st0 AS (
    SELECT s.folded_to, s.counted_at,
           s.counted_at IS NULL
           OR s.counted_at < now() - GREATEST(
                  interval '1 minute',
                  3 * current_setting('psk.expiry_interval')::interval,
                  make_interval(secs => 0.04 * coalesce(s.count_ms, 0))) AS old
      FROM (SELECT 1) one LEFT JOIN psk.metrics_state s ON s.id = 1
), st AS (
    SELECT st0.folded_to, st0.counted_at,
           st0.old AND (SELECT c.reltuples < 100000 FROM pg_class c
                         WHERE c.oid = 'psk.codes'::regclass) AS stale
      FROM st0
), pools AS (
    SELECT l.name FROM psk.lists() l WHERE l.list = 'pool'
), counts AS (
    SELECT k.code_type, k.status, k.country, k.n
      FROM psk.code_counts k WHERE NOT (SELECT stale FROM st)
    UNION ALL
    SELECT c.pool, c.status, '', count(*)
      FROM psk.codes c WHERE (SELECT stale FROM st)
     GROUP BY c.pool, c.status
    UNION ALL
    SELECT c.pool, 'CAN_BE_USED', co.name, count(*)
      FROM psk.codes c
      JOIN psk.code_countries cc ON cc.code_id = c.id
      JOIN psk.countries co ON co.id = cc.country_id
     WHERE c.status = 'CAN_BE_USED' AND (SELECT stale FROM st)
     GROUP BY c.pool, co.name
), transitions AS (
    SELECT t.action, sum(t.n) AS n FROM (
        SELECT a.name AS action, 0::bigint AS n
          FROM psk.lists() a WHERE a.list = 'action'
        UNION ALL
        SELECT tt.action, tt.n FROM psk.transition_totals tt
        UNION ALL
        SELECT l.action, count(*) FROM psk.audit_log l
         WHERE l.id > coalesce((SELECT folded_to FROM st), 0)
         GROUP BY l.action) t
     GROUP BY t.action
), w AS (
    SELECT * FROM psk.expiry_worker_state()
)
SELECT 'psk_codes', psk.prom_label('code_type', p.name) || ','
                    || psk.prom_label('status', s.name),
       coalesce((SELECT sum(k.n) FROM counts k WHERE k.country = ''
                    AND k.code_type = p.name AND k.status = s.name), 0)
  FROM pools p CROSS JOIN psk.lists() s
 WHERE s.list = 'status'
   AND (SELECT st.stale OR st.counted_at IS NOT NULL FROM st)
UNION ALL
SELECT 'psk_free_codes', psk.prom_label('code_type', k.code_type) || ','
                         || psk.prom_label('country', k.country), k.n
  FROM counts k WHERE k.country <> ''
UNION ALL
SELECT 'psk_oldest_hold_seconds', psk.prom_label('code_type', p.name),
       coalesce(EXTRACT(epoch FROM now() - h.reserved_at)::double precision, 0)
  FROM pools p LEFT JOIN LATERAL (
       SELECT c.reserved_at FROM psk.codes c
        WHERE c.status IN ('RESERVED', 'IN_USE') AND c.pool = p.name
        ORDER BY c.reserved_at LIMIT 1) h ON true
UNION ALL
SELECT 'psk_transitions_total', psk.prom_label('action', t.action), t.n
  FROM transitions t
UNION ALL
SELECT 'psk_expiry_worker_up', '', CASE WHEN w.running THEN 1 ELSE 0 END FROM w
UNION ALL
SELECT 'psk_expiry_worker_last_sweep_timestamp_seconds', '',
       coalesce(EXTRACT(epoch FROM w.last_sweep_at)::double precision, 0) FROM w
UNION ALL
SELECT 'psk_expiry_worker_sweeps_total', '', w.sweeps FROM w
UNION ALL
SELECT 'psk_code_counts_timestamp_seconds', '',
       CASE WHEN st.stale THEN EXTRACT(epoch FROM now())::double precision
            ELSE coalesce(EXTRACT(epoch FROM st.counted_at)::double precision, 0) END
  FROM st
UNION ALL
SELECT 'psk_database_primary', '', CASE WHEN pg_is_in_recovery() THEN 0 ELSE 1 END
ORDER BY 1, 2
$$;

-- The shim's role gets EXECUTE on it in scripts/shim-role.sql.
REVOKE ALL ON FUNCTION psk.metrics(), psk.expiry_worker_state(),
    psk.metrics_refresh(interval), psk.prom_label(text, text) FROM PUBLIC;
