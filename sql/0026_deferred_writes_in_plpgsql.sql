-- The deferred writes (sql/0023, sql/0025) as PL/pgSQL. A transaction sends them as plain
-- SQL text with its COMMIT (service.store.Tx.defer), so each call is planned anew, and
-- planning a call of a LANGUAGE sql function first parses and analyses the function's whole
-- body to see whether it can be inlined (it cannot: it writes). For targets_settle that cost
-- about 0.15 ms of Postgres CPU per call, more than its work on a batch of one order. A
-- PL/pgSQL function is never inlined, and keeps its statements' plans for the session.
-- The bodies are unchanged.

CREATE OR REPLACE FUNCTION holds_release(releases json) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    n bigint;
BEGIN
    WITH u AS (
        SELECT * FROM json_to_recordset(releases) AS u(target_id bigint, request_id bigint)
    ), released AS (
        UPDATE request_targets rt SET holds = false, released_by = u.request_id
        FROM u JOIN block_requests ub ON ub.id = u.request_id, block_requests b
        WHERE rt.target_id = u.target_id AND rt.holds AND b.id = rt.request_id
          AND (ub.force OR (b.unit_code = ub.unit_code AND b.case_ref = ub.case_ref))
        RETURNING 1
    )
    SELECT count(*) INTO n FROM released;
    RETURN n;
END
$fn$;

CREATE OR REPLACE FUNCTION targets_settle(settling json) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    n bigint;
BEGIN
    WITH changed AS (
        SELECT * FROM json_to_recordset(settling -> 'changed')
             AS u(id bigint, action text, state text)
    ), settled_now AS (
        SELECT * FROM json_to_recordset(settling -> 'settled') AS u(target_id bigint, state text)
    ), states AS (
        UPDATE targets t SET action = u.action, state = u.state, state_changed_at = now(),
                             updated_at = now()
        FROM changed u
        WHERE t.id = u.id AND t.id = ANY(ARRAY(SELECT id FROM changed))
          AND (t.state <> u.state OR t.action <> u.action)
        RETURNING 1
    ), settled AS (
        UPDATE request_targets rt SET done = true
        FROM settled_now u
        WHERE rt.target_id = u.target_id
          AND rt.target_id = ANY(ARRAY(SELECT target_id FROM settled_now)) AND NOT rt.done
        RETURNING rt.request_id, rt.outcome, u.state
    ), agg AS (
        SELECT s.request_id, count(*) AS n,
               count(*) FILTER (WHERE link_failed(b.action, s.outcome, s.state)) AS f
        FROM settled s JOIN block_requests b ON b.id = s.request_id GROUP BY s.request_id
    ), requests AS (
        UPDATE block_requests r SET
            open_targets = greatest(r.open_targets - agg.n, 0),
            failed_targets = r.failed_targets + agg.f,
            status = request_status(r.status, (r.open_targets - agg.n)::int,
                                    (r.failed_targets + agg.f)::int),
            updated_at = now()
        FROM agg
        WHERE r.id = agg.request_id
          AND r.id = ANY(ARRAY(SELECT id FROM block_requests
                               WHERE id = ANY(ARRAY(SELECT request_id FROM agg))
                               ORDER BY id FOR UPDATE))
        RETURNING 1
    )
    SELECT count(*) INTO n FROM states;  -- (every CTE that writes runs to completion)
    RETURN n;
END
$fn$;

CREATE OR REPLACE FUNCTION routes_learn(learned json) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    n bigint;
BEGIN
    WITH stored AS (
        INSERT INTO msisdn_routes (msisdn, operator_code, serves)
        SELECT u.msisdn, u.operator_code, u.serves
        FROM json_to_recordset(learned) AS u(msisdn text, operator_code text, serves bool)
        ORDER BY 1, 2
        ON CONFLICT (msisdn, operator_code) DO UPDATE SET serves = EXCLUDED.serves,
                                                          learned_at = now()
        RETURNING 1
    )
    SELECT count(*) INTO n FROM stored;
    RETURN n;
END
$fn$;

CREATE OR REPLACE FUNCTION orders_notify(operators json) RETURNS void
LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
    PERFORM pg_notify('fraudblock_orders', string_agg(o, ',' ORDER BY o))
    FROM (SELECT DISTINCT json_array_elements_text(operators) AS o) codes
    HAVING count(*) > 0;
END
$fn$;

CREATE OR REPLACE FUNCTION idempotency_put(entries json) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    n bigint;
BEGIN
    WITH stored AS (
        INSERT INTO idempotency_keys (token_id, key, body_hash, request_id, response)
        SELECT u.token_id, u.key, decode(u.body_hash, 'hex'), u.request_id, u.response
        FROM json_to_recordset(entries) AS u(token_id bigint, key text, body_hash text,
                                             request_id bigint, response jsonb)
        RETURNING 1
    )
    SELECT count(*) INTO n FROM stored;
    RETURN n;
END
$fn$;
