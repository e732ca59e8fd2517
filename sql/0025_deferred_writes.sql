-- Writes whose result nobody reads, as functions of one JSON document: a transaction makes
-- them with its next round trip (Tx.defer), usually the one that commits. Settling's writes,
-- the routes an acknowledgement teaches and the wake-up of the lanes travel so with the audit
-- append and the COMMIT instead of in round trips of their own.

-- An unblock takes effect: release the holds of the case it names (every hold with force).
-- $1: JSON [{target_id, request_id}] (request_id: the unblock request). Returns how many.
CREATE FUNCTION holds_release(releases json) RETURNS bigint LANGUAGE sql VOLATILE AS $fn$
WITH u AS (
    SELECT * FROM json_to_recordset(releases) AS u(target_id bigint, request_id bigint)
), released AS (
    UPDATE request_targets rt SET holds = false, released_by = u.request_id
    FROM u JOIN block_requests ub ON ub.id = u.request_id, block_requests b
    WHERE rt.target_id = u.target_id AND rt.holds AND b.id = rt.request_id
      AND (ub.force OR (b.unit_code = ub.unit_code AND b.case_ref = ub.case_ref))
    RETURNING 1
)
SELECT count(*) FROM released;
$fn$;

-- New target states, then the open links of settled targets marked done and folded into
-- their requests' counters and status (link_failed, request_status: sql/0006).
-- $1: JSON {changed: [{id, action, state}] of changed targets, settled: [{target_id, state}]}.
-- Returns the targets changed.
CREATE FUNCTION targets_settle(settling json) RETURNS bigint LANGUAGE sql VOLATILE AS $fn$
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
SELECT count(*) FROM states;  -- (every CTE that writes runs to completion, read or not)
$fn$;

-- What acknowledgements taught of numbers' operators. $1: JSON [{msisdn, operator_code,
-- serves}], one entry per (msisdn, operator_code). Returns how many were stored.
CREATE FUNCTION routes_learn(learned json) RETURNS bigint LANGUAGE sql VOLATILE AS $fn$
WITH stored AS (
    INSERT INTO msisdn_routes (msisdn, operator_code, serves)
    SELECT u.msisdn, u.operator_code, u.serves
    FROM json_to_recordset(learned) AS u(msisdn text, operator_code text, serves bool)
    ORDER BY 1, 2
    ON CONFLICT (msisdn, operator_code) DO UPDATE SET serves = EXCLUDED.serves,
                                                      learned_at = now()
    RETURNING 1
)
SELECT count(*) FROM stored;
$fn$;

-- Wake the lanes of these operators ($1: JSON array of codes) once the transaction commits.
CREATE FUNCTION orders_notify(operators json) RETURNS void LANGUAGE sql VOLATILE AS $fn$
SELECT pg_notify('fraudblock_orders', string_agg(o, ',' ORDER BY o))
FROM (SELECT DISTINCT json_array_elements_text(operators) AS o) codes
HAVING count(*) > 0;
$fn$;
