-- The audit log's partitions (partitions.c calls psk_audit_maintain from
-- the background worker; sites without it call it from a scheduler).
--
-- One partition per week, Monday 00:00 UTC to the next, named
-- audit_log_pYYYYMMDD after its first day: a week keeps the number of
-- partitions small when everything is kept (52 a year: planning a reader
-- that spans them all stays cheap), while psk.audit_retention removes rows
-- at most a week after they fall out of it.  Partitions are made two
-- weeks ahead; a row past them goes to psk.audit_log_default, and the next
-- maintenance moves it to a partition of its week.  Partitions made here
-- are not members of the extension, so pg_dump dumps them, their rows
-- included, like any table of the database.

-- The partitions of psk.audit_log with their bounds (the default one and
-- any with other bounds are left out).
CREATE FUNCTION psk.audit_partitions()
RETURNS TABLE (part regclass, lower_bound timestamptz, upper_bound timestamptz)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.oid::regclass, m[1]::timestamptz, m[2]::timestamptz
      FROM pg_catalog.pg_inherits i
      JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid,
           pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid),
                                   '^FOR VALUES FROM \(''([^'']*)''\) TO \(''([^'']*)''\)$') m
     WHERE i.inhparent = 'psk.audit_log'::regclass AND m IS NOT NULL
     ORDER BY 2
$$;

-- The indexes of every partition of the log, the default one included:
-- each one a reader needs, and no other, for each costs every audit row an
-- index entry (two rows a reserve + release cycle).  Named after the
-- partition (renew.c opens <partition>_code_idx).
--   code_idx      (code COLLATE "C", id): a code's history (renew),
--                 psk_log's code filter (a prefix is a range of it: "C",
--                 so in any database collation; every reader compares with
--                 COLLATE "C" to use it, the same equality), migrate's
--                 last row of each code
--   user_idx      (user_id, logged_at DESC, id DESC): psk_user_log
--   time_idx      (logged_at, id): psk_log's pages, newest first (read
--                 backwards), and its since/until
--   releases_idx  (id) WHERE action = 'RELEASED': psk_recent_releases,
--                 with a code_type too (the releases of a rare pool would
--                 be looked for row by row along the time index)
-- Ascending, read backwards: rows arrive in (logged_at, id) order, so each
-- entry goes to the index's last page, which a btree insert finds without
-- a descent and splits leaving the full page behind; in descending order
-- every entry went to the first page, split in halves (twice the pages).
--   id_brin       BRIN (id): the rows past an id (psk.metrics and
--                 psk.metrics_refresh count the rows past folded_to).  Rows
--                 arrive in id order, so a range of ids is a range of pages;
--                 an insert into the last, unsummarised range writes no
--                 index entry (autosummarize: summarised once the next
--                 range starts).
-- No primary key on id: ids come from the identity sequence, and no reader
-- looks a row up by id (it cost two index entries a cycle).  For logical
-- replication the whole row identifies it instead (REPLICA IDENTITY FULL):
-- the log only ever takes inserts, which need none, but the upkeep deletes
-- the rows it moves out of the default partition.  IF NOT EXISTS, and an
-- old primary key dropped: the same call brings a partition made with an
-- earlier index set to this one.
CREATE FUNCTION psk.audit_partition_indexes(part regclass)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning  -- (no notice for each index there is)
AS $$
DECLARE
    name text := (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = part);
    idx regclass;
BEGIN
    -- the descending time and releases indexes of an earlier index set,
    -- and its code index in the database's collation
    FOR idx IN SELECT i.indexrelid::regclass FROM pg_catalog.pg_index i
                 JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
                WHERE i.indrelid = part
                  AND ((c.relname IN (name || '_time_idx', name || '_releases_idx')
                        AND EXISTS (SELECT FROM pg_catalog.unnest(i.indoption::int2[]) o
                                     WHERE o & 1 = 1))
                       OR (c.relname = name || '_code_idx'
                           AND i.indcollation[0] <> 'pg_catalog."C"'::regcollation))
    LOOP
        EXECUTE pg_catalog.format('DROP INDEX %s', idx);
    END LOOP;
    EXECUTE pg_catalog.format('ALTER TABLE %s REPLICA IDENTITY FULL', part);
    EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I',
                              part, name || '_pkey');
    EXECUTE pg_catalog.format('CREATE INDEX IF NOT EXISTS %I ON %s (code COLLATE "C", id)',
                              name || '_code_idx', part);
    EXECUTE pg_catalog.format('CREATE INDEX IF NOT EXISTS %I ON %s (user_id, logged_at DESC, id DESC)',
                              name || '_user_idx', part);
    EXECUTE pg_catalog.format('CREATE INDEX IF NOT EXISTS %I ON %s (logged_at, id)',
                              name || '_time_idx', part);
    EXECUTE pg_catalog.format('CREATE INDEX IF NOT EXISTS %I ON %s (id) WHERE action = ''RELEASED''',
                              name || '_releases_idx', part);
    EXECUTE pg_catalog.format('CREATE INDEX IF NOT EXISTS %I ON %s USING brin (id) WITH (autosummarize = on)',
                              name || '_id_brin', part);
END
$$;
SELECT psk.audit_partition_indexes('psk.audit_log_default');

-- psk.audit_partition_width (a week unless a test or the soak of make
-- bench-scale shortens it) as an interval, and the start of the partition
-- that holds ts at that width: partitions tile each week from Monday 00:00
-- UTC (the setting divides a week evenly).
CREATE FUNCTION psk.audit_partition_width()
RETURNS interval
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.make_interval(secs => pg_catalog.date_part(
        'epoch', pg_catalog.current_setting('psk.audit_partition_width')::interval))
$$;

CREATE FUNCTION psk.audit_partition_start(ts timestamptz)
RETURNS timestamptz
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT w + pg_catalog.floor(pg_catalog.date_part('epoch', ts - w)
                                / pg_catalog.date_part('epoch', psk.audit_partition_width()))
               * psk.audit_partition_width()
      FROM pg_catalog.date_trunc('week', ts, 'UTC') w
$$;

-- The partition that starts at week_start (a Monday 00:00 UTC at the
-- default width) and spans psk.audit_partition_width, unless there is one:
-- append-only like its parent, with the indexes of every partition
-- (psk.audit_partition_indexes).  Named after its first day (and, when shorter than a
-- week, its first second).
CREATE FUNCTION psk.audit_partition_create(week_start timestamptz)
RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    width interval := psk.audit_partition_width();
    name text := 'audit_log_p' || pg_catalog.to_char(week_start AT TIME ZONE 'UTC',
        CASE WHEN width = interval '168 hours' THEN 'YYYYMMDD' ELSE 'YYYYMMDD_HH24MISS' END);
BEGIN
    IF pg_catalog.to_regclass('psk.' || pg_catalog.quote_ident(name)) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE pg_catalog.format(
        'CREATE TABLE psk.%I PARTITION OF psk.audit_log FOR VALUES FROM (%L) TO (%L)',
        name, week_start, week_start + width);
    PERFORM psk.audit_partition_indexes(pg_catalog.format('psk.%I', name)::regclass);
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON psk.%I'
        ' FOR EACH STATEMENT EXECUTE FUNCTION psk.audit_log_is_append_only()', name);
    EXECUTE pg_catalog.format('REVOKE ALL ON psk.%I FROM PUBLIC', name);
    RETURN true;
END
$$;

-- Make the partitions from now to weeks_ahead weeks ahead, move any row of
-- the default partition to its week's, add the TRUNCATE trigger to any
-- partition without one, and drop the partitions whose every row is older
-- than psk.audit_retention (when > 0): whole tables, never a row deleted.
-- One row per partition made, filled or dropped.
CREATE FUNCTION @extschema@.psk_audit_maintain(weeks_ahead int DEFAULT 2)
RETURNS TABLE (partition_name text, action text, n bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- in seconds (GUC units), not days: the same in every time zone
    retention interval := pg_catalog.make_interval(secs => pg_catalog.date_part(
        'epoch', pg_catalog.current_setting('psk.audit_retention')::interval));
    -- partitions of psk.audit_partition_width: "week" below is one of them
    width interval := psk.audit_partition_width();
    this_week timestamptz := psk.audit_partition_start(pg_catalog.now());
    first_week timestamptz;
    last_week timestamptz;
    wk timestamptz;
    r record;
    moved bigint;
    detached boolean := false;
BEGIN
    IF weeks_ahead IS NULL OR weeks_ahead < 0 OR weeks_ahead > 52 THEN
        RAISE EXCEPTION 'weeks_ahead must be between 0 and 52'
            USING ERRCODE = 'PK001';
    END IF;
    last_week := this_week + weeks_ahead * width;

    -- Rows that found no partition: the default partition is detached (it
    -- loses the cloned row triggers, and new partitions need not be checked
    -- against it), partitions are made for their weeks, the rows go there
    -- and the default partition comes back empty.  Rare (a fresh install,
    -- a worker stopped for weeks) and short: the log is locked meanwhile.
    SELECT pg_catalog.min(logged_at), pg_catalog.max(logged_at)
      INTO first_week, wk FROM psk.audit_log_default;
    IF first_week IS NOT NULL THEN
        LOCK TABLE psk.audit_log IN ACCESS EXCLUSIVE MODE;
        SELECT pg_catalog.min(logged_at), pg_catalog.max(logged_at)
          INTO first_week, wk FROM psk.audit_log_default;
    END IF;
    IF first_week IS NOT NULL THEN
        ALTER TABLE psk.audit_log DETACH PARTITION psk.audit_log_default;
        detached := true;
        first_week := psk.audit_partition_start(first_week);
        last_week := GREATEST(last_week, psk.audit_partition_start(wk));
    ELSE
        first_week := this_week;
    END IF;

    FOR wk IN SELECT g FROM pg_catalog.generate_series(first_week, last_week, width) g
    LOOP
        IF NOT EXISTS (SELECT FROM psk.audit_partitions() p
                        WHERE p.lower_bound < wk + width AND p.upper_bound > wk)
           AND psk.audit_partition_create(wk) THEN
            partition_name := (SELECT p.part::text FROM psk.audit_partitions() p
                                WHERE p.lower_bound = wk);
            action := 'created'; n := 0;
            RETURN NEXT;
        END IF;
    END LOOP;

    IF detached THEN
        INSERT INTO psk.audit_log OVERRIDING SYSTEM VALUE SELECT * FROM psk.audit_log_default;
        GET DIAGNOSTICS moved = ROW_COUNT;
        DELETE FROM psk.audit_log_default;
        ALTER TABLE psk.audit_log ATTACH PARTITION psk.audit_log_default DEFAULT;
        partition_name := 'psk.audit_log_default'; action := 'moved'; n := moved;
        RETURN NEXT;
    END IF;

    FOR r IN SELECT c.oid::regclass AS part FROM pg_catalog.pg_inherits i
               JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
              WHERE i.inhparent = 'psk.audit_log'::regclass
                AND NOT EXISTS (SELECT FROM pg_catalog.pg_trigger t
                                 WHERE t.tgrelid = c.oid AND t.tgtype & 32 <> 0
                                   AND t.tgfoid = 'psk.audit_log_is_append_only()'::regprocedure)
    LOOP
        EXECUTE pg_catalog.format(
            'CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON %s'
            ' FOR EACH STATEMENT EXECUTE FUNCTION psk.audit_log_is_append_only()', r.part);
        partition_name := r.part::text; action := 'made append-only'; n := 0;
        RETURN NEXT;
    END LOOP;

    IF retention > interval '0' THEN
        FOR r IN SELECT p.part FROM psk.audit_partitions() p
                  WHERE p.upper_bound <= pg_catalog.now() - retention
        LOOP
            -- n: the planner's estimate (a count would read the whole week)
            partition_name := r.part::text; action := 'dropped';
            n := (SELECT GREATEST(c.reltuples, 0)::bigint
                    FROM pg_catalog.pg_class c WHERE c.oid = r.part);
            EXECUTE pg_catalog.format('DROP TABLE %s', r.part);
            RETURN NEXT;
        END LOOP;
    END IF;
END
$$;
