-- Freezing the closed partitions of the audit log once (freeze.c: the
-- background worker runs VACUUM (FREEZE), which no function can, on the
-- first of these each round).  The log is insert-only: once a partition's
-- time is over and its pages are all-frozen, no vacuum has to read them
-- again, and anti-wraparound autovacuum skips them (without this, each
-- pass rereads every week kept).

-- The partitions to freeze, oldest first: closed (their upper bound a
-- minute past, so that a transaction that began inside it has ended),
-- not frozen yet (no autovacuum_freeze_min_age = 0, the record that
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
       AND NOT coalesce('autovacuum_freeze_min_age=0' = ANY (c.reloptions), false)
       AND NOT (r > 0 AND p.upper_bound <= pg_catalog.now() - r * interval '1 second')
     ORDER BY p.lower_bound
$$;

-- The record that part was frozen: autovacuum_freeze_min_age = 0 on it,
-- which also has autovacuum freeze at once any row that still comes in
-- (a late transaction, the upkeep moving rows out of the default
-- partition, a restore's COPY), so the partition stays all-frozen.
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
    EXECUTE pg_catalog.format('ALTER TABLE %s SET (autovacuum_freeze_min_age = 0)', part);
END
$$;
