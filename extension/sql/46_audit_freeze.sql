-- Freezing the audit log (freeze.c, after each upkeep of the partitions).
-- The log is insert-only, so a page once frozen never needs a vacuum
-- again, and anti-wraparound autovacuum skips it:
--  * every partition freezes as it fills: autovacuum_freeze_min_age = 0
--    on it, so that each insert-triggered autovacuum freezes the pages it
--    visits and moves the partition's relfrozenxid up (with the default,
--    nothing is frozen until an anti-wraparound pass rereads the week);
--  * once closed, the worker runs VACUUM (FREEZE) on it (no function can
--    run VACUUM), for the rows written since the last autovacuum, and
--    records that with autovacuum_freeze_table_age = 0: done once;
--  * the default partition, whenever it is the table that holds
--    age(datfrozenxid) back (psk.audit_default_to_freeze).

-- Set autovacuum_freeze_min_age = 0 on every partition (the default one
-- left out: its rows are moved away) that lacks it, mostly those just
-- made ahead, still empty.  The partitions it set.
CREATE FUNCTION psk.audit_partitions_freeze_as_filled()
RETURNS SETOF regclass
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT p.part FROM psk.audit_partitions() p
               JOIN pg_catalog.pg_class c ON c.oid = p.part
              WHERE NOT coalesce('autovacuum_freeze_min_age=0' = ANY (c.reloptions), false)
              ORDER BY p.lower_bound
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s SET (autovacuum_freeze_min_age = 0)', r.part);
        RETURN NEXT r.part;
    END LOOP;
END
$$;

-- The partitions to freeze, oldest first: closed (their upper bound a
-- minute past, so that a transaction that began inside it has ended),
-- not frozen yet (no autovacuum_freeze_table_age = 0, the record that
-- psk.audit_partition_frozen leaves), and not about to be dropped by
-- psk.audit_retention.
CREATE FUNCTION psk.audit_partitions_to_freeze()
RETURNS TABLE (part regclass, lower_bound timestamptz, upper_bound timestamptz)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.part, p.lower_bound, p.upper_bound
      FROM psk.audit_partitions() p
      JOIN pg_catalog.pg_class c ON c.oid = p.part,
           pg_catalog.date_part('epoch', pg_catalog.current_setting('psk.audit_retention')::interval) r
     WHERE p.upper_bound <= pg_catalog.now() - interval '1 minute'
       AND NOT coalesce('autovacuum_freeze_table_age=0' = ANY (c.reloptions), false)
       AND NOT (r > 0 AND p.upper_bound <= pg_catalog.now() - r * interval '1 second')
     ORDER BY p.lower_bound
$$;

-- The record that part was frozen: autovacuum_freeze_table_age = 0 (and
-- autovacuum_freeze_min_age = 0) on it.  Any autovacuum of it is then
-- aggressive and freezes all it visits: a row that still comes in (a late
-- transaction, the upkeep moving rows out of the default partition, a
-- restore's COPY) is frozen by the next one, and the partition stays
-- all-frozen.
CREATE FUNCTION psk.audit_partition_frozen(part regclass)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_inherits i
                    WHERE i.inhparent = 'psk.audit_log'::regclass AND i.inhrelid = part) THEN
        RAISE EXCEPTION '% is not a partition of psk.audit_log', part
            USING ERRCODE = 'PK001';
    END IF;
    EXECUTE pg_catalog.format(
        'ALTER TABLE %s SET (autovacuum_freeze_min_age = 0, autovacuum_freeze_table_age = 0)', part);
END
$$;

-- The default partition, when its relfrozenxid is the oldest of the
-- database's tables: it is then what holds age(datfrozenxid) back.  It is
-- normally empty or a few pages (its rows are moved to their week's
-- partition) that no insert-triggered autovacuum visits, so only an
-- anti-wraparound pass would freeze it; the worker's VACUUM (FREEZE) of it
-- reads those few pages and moves its relfrozenxid to the newest there is,
-- and it is not due again until every other table has been vacuumed since.
CREATE FUNCTION psk.audit_default_to_freeze()
RETURNS SETOF regclass
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$
    SELECT d.oid::regclass FROM pg_catalog.pg_class d
     WHERE d.oid = 'psk.audit_log_default'::regclass
       AND pg_catalog.age(d.relfrozenxid) >=
           (SELECT pg_catalog.max(pg_catalog.age(c.relfrozenxid))
              FROM pg_catalog.pg_class c WHERE c.relkind IN ('r', 'm', 't'))
$$;
