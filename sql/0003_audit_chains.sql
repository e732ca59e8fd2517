-- The audit log as 16 hash chains instead of one.
--
-- With one chain, every writer waited for the head row's lock, and held it through its own
-- commit, so filings were appended one commit at a time. Now a writer takes whichever chain
-- head no one else holds (FOR UPDATE SKIP LOCKED) and keeps it to the end of its transaction.
-- Each chain is linear, its ids ascend, and each starts at the zero hash. Existing rows are
-- chain 0. Altering, inserting or removing a row inside a chain still breaks it.

ALTER TABLE audit_log ADD COLUMN chain smallint NOT NULL DEFAULT 0;
ALTER TABLE audit_log ALTER COLUMN chain DROP DEFAULT;

ALTER TABLE audit_head DROP CONSTRAINT audit_head_pkey;
ALTER TABLE audit_head DROP CONSTRAINT audit_head_singleton_check;
ALTER TABLE audit_head ADD COLUMN chain smallint NOT NULL DEFAULT 0;
ALTER TABLE audit_head DROP COLUMN singleton;
ALTER TABLE audit_head ADD PRIMARY KEY (chain);
ALTER TABLE audit_head ALTER COLUMN chain DROP DEFAULT;
INSERT INTO audit_head (chain, last_id, hash)
SELECT k, 0, '\x0000000000000000000000000000000000000000000000000000000000000000'
FROM generate_series(1, 15) AS k;

-- Append entries (JSON, in order; `canonical` is each entry's canonical encoding, made by
-- service.audit.canonical) to one chain: the one this transaction already holds, else any
-- chain no one holds, else (all 16 busy) wait for one. Each entry is hashed as
-- sha256(previous hash || encoding). The head stays locked until the commit, so callers
-- append last (service.store.Tx.commit_with).
DROP FUNCTION audit_append(json);
CREATE FUNCTION audit_append(entries json) RETURNS bigint LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    k smallint := nullif(current_setting('fraudblock.audit_chain', true), '')::smallint;
    head bytea;
    last bigint;
BEGIN
    IF k IS NULL THEN
        SELECT h.chain, h.hash INTO k, head FROM audit_head h
        ORDER BY h.chain LIMIT 1 FOR UPDATE SKIP LOCKED;
        IF k IS NULL THEN
            SELECT h.chain, h.hash INTO k, head FROM audit_head h
            WHERE h.chain = pg_backend_pid() % 16 FOR UPDATE;
        END IF;
        PERFORM set_config('fraudblock.audit_chain', k::text, true);
    ELSE
        SELECT h.hash INTO head FROM audit_head h WHERE h.chain = k;
    END IF;
    WITH RECURSIVE items AS (
        SELECT * FROM ROWS FROM (json_to_recordset(entries)
             AS (at timestamptz, actor text, role text, action text, entity_type text,
                 entity_id text, details jsonb, canonical text)) WITH ORDINALITY
             AS e(at, actor, role, action, entity_type, entity_id, details, canonical, n)
    ), encodings AS (
        SELECT array_agg(convert_to(i.canonical, 'UTF8') ORDER BY i.n) AS a FROM items i
    ), links (n, prev, hash) AS (
        SELECT 0::bigint, NULL::bytea, head
        UNION ALL
        SELECT l.n + 1, l.hash, sha256(l.hash || (SELECT e.a[l.n + 1] FROM encodings e))
        FROM links l WHERE l.n < (SELECT cardinality(e.a) FROM encodings e)
    ), inserted AS (
        INSERT INTO audit_log (at, actor, role, action, entity_type, entity_id, details,
                               prev_hash, hash, chain)
        SELECT i.at, i.actor, i.role, i.action, i.entity_type, i.entity_id, i.details, l.prev,
               l.hash, k
        FROM items i JOIN links l ON l.n = i.n
        ORDER BY i.n
        RETURNING id
    )
    UPDATE audit_head h SET hash = (SELECT l.hash FROM links l ORDER BY l.n DESC LIMIT 1),
                            last_id = (SELECT max(id) FROM inserted)
    WHERE h.chain = k
    RETURNING h.last_id INTO last;
    RETURN last;
END
$fn$;
