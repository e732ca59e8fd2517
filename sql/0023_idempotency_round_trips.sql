-- An Idempotency-Key costs a filing no round trip of its own: the keys are locked and read by
-- one call, and the responses stored with the audit append that commits the transaction.

-- Lock callers' keys until the transaction ends, in the order given (callers sort them, so
-- concurrent transactions do not deadlock). The lock is on 'token_id:key'.
CREATE FUNCTION idempotency_lock(token_ids bigint[], keys text[]) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(u.t || ':' || u.k, 0))
    FROM unnest(token_ids, keys) WITH ORDINALITY AS u(t, k, n) ORDER BY u.n;
END $$;

-- Lock the keys, then read the responses already stored under them. The read is a statement
-- of its own in a VOLATILE function, so its snapshot is taken after the locks are held: a
-- transaction that stored one of the keys and let go of its lock has committed by then.
-- One primary-key lookup per key, whatever the plan.
CREATE FUNCTION idempotency_claim(token_ids bigint[], keys text[])
RETURNS TABLE (token_id bigint, key text, body_hash bytea, response jsonb)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM idempotency_lock(token_ids, keys);
    RETURN QUERY
    SELECT i.token_id, i.key, i.body_hash, i.response
    FROM unnest(token_ids, keys) AS u(t, k)
    CROSS JOIN LATERAL (SELECT * FROM idempotency_keys x WHERE x.token_id = u.t AND x.key = u.k) i;
END $$;

-- Store responses under their keys. entries: JSON array of {token_id, key, body_hash (hex),
-- request_id, response}. Sent with the audit append and the COMMIT (service.store.Tx.commit_with).
CREATE FUNCTION idempotency_put(entries json) RETURNS bigint LANGUAGE sql VOLATILE AS $fn$
WITH stored AS (
    INSERT INTO idempotency_keys (token_id, key, body_hash, request_id, response)
    SELECT u.token_id, u.key, decode(u.body_hash, 'hex'), u.request_id, u.response
    FROM json_to_recordset(entries) AS u(token_id bigint, key text, body_hash text,
                                         request_id bigint, response jsonb)
    RETURNING 1
)
SELECT count(*) FROM stored;
$fn$;
