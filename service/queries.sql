-- Every statement the service runs, by name. Loaded by service.store.
--
-- One lock order, used by every path: Idempotency-Key advisory locks, then targets by id
-- ascending, then orders by id ascending, then operators' blocklist advisory locks by code (the
-- blocklist_log trigger takes them as an ack lands: sql/0008), then requests by id ascending,
-- then the operator row (breaker), then the audit chain head (last, held to the commit). Paths
-- that start from orders (acks, a worker recording its batch) lock those orders' targets first.

-- name: token_by_hash
SELECT id, name, role, unit_code, operator_code
FROM tokens WHERE token_hash = $1 AND revoked_at IS NULL;

-- name: token_insert
INSERT INTO tokens (name, role, unit_code, operator_code, token_hash, officer_name, officer_rank)
VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, created_at;

-- name: token_list
SELECT id, name, role, unit_code, operator_code, created_at, revoked_at, officer_name,
       officer_rank
FROM tokens ORDER BY id;

-- name: token_revoke
-- The tokens_notify_change trigger (sql/0010) notifies fraudblock_tokens in the same commit:
-- services drop the tokens they remember.
UPDATE tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL
RETURNING id, name, role;

-- name: unit_list
SELECT code, name, kind FROM units ORDER BY kind DESC, code;

-- name: unit_add
-- A new unit; no row when the code exists.
INSERT INTO units (code, name, kind) VALUES ($1, $2, $3)
ON CONFLICT (code) DO NOTHING RETURNING code, name, kind;

-- name: unit_lock
SELECT code, name, kind FROM units WHERE code = $1 FOR UPDATE;

-- name: unit_update
-- $2 name, $3 kind: NULL keeps the value.
UPDATE units SET name = coalesce($2, name), kind = coalesce($3, kind)
WHERE code = $1 RETURNING code, name, kind;

-- name: operator_list
SELECT code, name, active, adapter_kind, adapter_config, rate_limit_per_s, breaker_threshold,
       breaker_cooldown_s, ack_deadline_s, urgent_ack_deadline_s, breaker_state,
       breaker_failures, breaker_opened_at, updated_at
FROM operators ORDER BY code;

-- name: operator_active_codes
SELECT code FROM operators WHERE active ORDER BY code;

-- name: operator_upsert
INSERT INTO operators (code, name, adapter_kind, adapter_config, active)
VALUES ($1, coalesce($2, $1), $3, $4, true)
ON CONFLICT (code) DO UPDATE SET
    name = coalesce($2, operators.name),
    adapter_kind = EXCLUDED.adapter_kind,
    adapter_config = EXCLUDED.adapter_config,
    active = true,
    updated_at = now()
RETURNING code;

-- name: operator_set_limits
UPDATE operators SET
    rate_limit_per_s = coalesce($2, rate_limit_per_s),
    breaker_threshold = coalesce($3, breaker_threshold),
    breaker_cooldown_s = coalesce($4, breaker_cooldown_s),
    ack_deadline_s = coalesce($5, ack_deadline_s),
    urgent_ack_deadline_s = coalesce($6, urgent_ack_deadline_s),
    updated_at = now()
WHERE code = $1 RETURNING code;

-- name: operator_config_lock
-- The stored adapter config, locked while a new one replaces it (secret rotation reads it).
SELECT adapter_kind, adapter_config FROM operators WHERE code = $1 FOR UPDATE;

-- name: operator_disable
UPDATE operators SET active = false, updated_at = now() WHERE code = $1 RETURNING code;

-- name: series_upsert
INSERT INTO number_series (prefix, operator_code, label)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
ON CONFLICT (prefix) DO UPDATE SET
    operator_code = EXCLUDED.operator_code, label = EXCLUDED.label, loaded_at = now();

-- name: routes_for_msisdns
SELECT msisdn, operator_code, serves FROM msisdn_routes WHERE msisdn = ANY($1::text[]);

-- name: idempotency_lock
-- Lock callers' keys until the transaction ends (sql/0023: in the order given; callers sort).
SELECT idempotency_lock($1::bigint[], $2::text[]);

-- name: idempotency_claim
-- Lock callers' keys, then read the responses stored under them (sql/0023). Responses are
-- stored by idempotency_put, deferred to the audit append that commits (Tx.defer, Tx.commit).
SELECT token_id, key, body_hash, response FROM idempotency_claim($1::bigint[], $2::text[]);

-- name: intake_begin
-- Store an unblock request's head (an unblock is routed by the orders it undoes, not by
-- number series or learned routes).
INSERT INTO block_requests (unit_code, case_ref, category, action, priority, legal_basis,
                            note, reason, force, status, target_count, created_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'dispatching', $10, $11)
RETURNING id, created_at;

-- name: intake_lock_named
-- A transaction that files in several rounds locks every target it names first: the ones that
-- do not exist yet by an advisory lock per (kind, value), in hash order (so two such
-- transactions cannot each insert one the other needs next), the existing ones by id.
WITH named AS (
    SELECT DISTINCT k, v FROM unnest($1::text[], $2::text[]) AS u(k, v)
), adv AS MATERIALIZED (
    SELECT count(pg_advisory_xact_lock(h)) AS n
    FROM (SELECT hashtextextended('target:' || k || ':' || v, 0) AS h FROM named ORDER BY h) s
)
SELECT count(*) FROM (
    SELECT t.id FROM targets t
    WHERE t.id = ANY(ARRAY(SELECT (SELECT x.id FROM targets x WHERE x.kind = n.k AND x.value = n.v)
                           FROM named n))  -- one index lookup per name, whatever the plan
      AND (SELECT n FROM adv) >= 0
    ORDER BY t.id FOR UPDATE OF t
) locked;

-- name: intake_open_blocks
-- Block requests' first round trip, for one request or several that name no target in common:
-- number their heads (intake_close stores them, once their status is known), insert new
-- targets and lock every named one (in a stable order, so concurrent requests do not
-- deadlock), and read what routing needs and which of the handsets asked about are flagged.
-- $1: JSON array of heads, each with its targets as [kind, value] pairs; $2 number-series
-- prefixes, $3 MSISDNs, $4 IMEIs.
WITH heads AS MATERIALIZED (
    SELECT h.*, nextval('block_requests_id_seq') AS id
    FROM json_to_recordset($1::json) AS h(n int, unit text, category text, targets json)
), named AS (
    SELECT DISTINCT e->>0 AS kind, e->>1 AS value FROM heads h, json_array_elements(h.targets) e
), existing AS MATERIALIZED (  -- the lock order: targets by id, before any new one is inserted
    -- one index lookup per name: a join may be planned as a scan of every target when the
    -- statement's plan was made while the table was small
    SELECT t.id FROM targets t
    WHERE t.id = ANY(ARRAY(SELECT (SELECT x.id FROM targets x
                                   WHERE x.kind = n.kind AND x.value = n.value) FROM named n))
    ORDER BY t.id FOR UPDATE OF t
), up AS (
    INSERT INTO targets AS t (kind, value, unit_code, category, first_request_id, action, state)
    SELECT e->>0, e->>1, h.unit, h.category, h.id, 'block', 'pending'
    FROM heads h, json_array_elements(h.targets) AS e
    WHERE (SELECT count(*) FROM existing) >= 0
    ORDER BY 1, 2
    ON CONFLICT (kind, value) DO UPDATE SET updated_at = now()
    RETURNING t.id, t.kind, t.value, t.action, t.state, (t.xmax = 0) AS inserted
)
SELECT (SELECT array_agg(h.id ORDER BY h.n) FROM heads h) AS ids,
       now() AS created_at,  -- the requests' created_at: the transaction's time
       (SELECT coalesce(array_agg(code ORDER BY code), '{}') FROM operators WHERE active)
           AS active,
       s.prefixes, s.prefix_ops, r.msisdns, r.route_ops, r.serves,
       (SELECT json_agg(up) FROM up) AS targets,
       ARRAY(SELECT imei FROM handset_flags WHERE imei = ANY($4::text[]) ORDER BY imei) AS flagged
FROM (SELECT array_agg(prefix) AS prefixes, array_agg(operator_code) AS prefix_ops
      FROM number_series WHERE prefix = ANY($2::text[])) s,
     (SELECT array_agg(msisdn) AS msisdns, array_agg(operator_code) AS route_ops,
             array_agg(serves) AS serves
      FROM msisdn_routes WHERE msisdn = ANY($3::text[])) r;

-- name: intake_close
-- Requests' last round trip: their orders, their links to the targets, the targets' new states,
-- the requests themselves with their counters and status (a block request's head is stored
-- here, with its final status: updating a row inserted by the same transaction would write it
-- twice and check its foreign keys again; an unblock's was stored first, and is updated), the
-- workers' wake-up. Returns the new orders and, for targets that got none, their pairs' latest
-- decisions; then one row per request (no order id) with its status. $1 requests (`stored`:
-- whether the head is already stored), $2 links, $3 new states and $4 orders are JSON arrays;
-- $5 the operators to wake (comma-separated); $6 targets without new orders.
WITH reqs AS MATERIALIZED (
    SELECT r.*, CASE WHEN r.held THEN NULL ELSE nextval('order_decisions') END AS seq
    FROM json_to_recordset($1::json) AS r(id bigint, held bool, stored bool, action text,
         unit text, category text, urgent bool, case_ref text, priority text, legal_basis text,
         note text, reason text, force bool, target_count int, created_by bigint)
), new_orders AS (  -- [target_id, kind, value, operator, request_id] arrays: lighter than objects
    SELECT (e->>0)::bigint AS target_id, e->>1 AS kind, e->>2 AS value, e->>3 AS operator_code,
           (e->>4)::bigint AS request_id
    FROM json_array_elements($4::json) AS e
), ins AS (
    INSERT INTO orders (target_id, kind, value, operator_code, action, request_id, unit_code,
                        category, urgent, status, seq, due_at)
    SELECT u.target_id, u.kind, u.value, u.operator_code, r.action, u.request_id, r.unit,
           r.category, r.urgent, CASE WHEN r.held THEN 'held' ELSE 'queued' END, r.seq,
           CASE WHEN NOT r.held THEN now() + make_interval(secs => CASE WHEN r.urgent
               THEN p.urgent_ack_deadline_s ELSE p.ack_deadline_s END) END
    FROM new_orders u JOIN reqs r ON r.id = u.request_id JOIN operators p ON p.code = u.operator_code
    RETURNING id, target_id, operator_code, action, status, attempts, created_at,
              first_sent_at, sent_at, acked_at, ack_status, ack_reason, operator_ref, dead_at,
              last_error, request_id, seq
), link_rows AS (
    SELECT * FROM json_to_recordset($2::json) AS u(request_id bigint, target_id bigint,
         position int, submitted text, outcome text, state text, holds bool, done bool)
), links AS (
    INSERT INTO request_targets (request_id, target_id, position, submitted_value, outcome,
                                 holds, done)
    SELECT request_id, target_id, position, submitted, outcome, holds, done FROM link_rows
), counted AS (
    SELECT id, open, failed,
           CASE WHEN held THEN 'pending_approval'
                ELSE request_status('dispatching', open::int, failed::int) END AS status
    FROM (SELECT r.id, r.held, count(l.*) FILTER (WHERE NOT l.done) AS open,
                 count(l.*) FILTER (WHERE l.done AND link_failed(r.action, l.outcome, l.state))
                     AS failed
          FROM reqs r LEFT JOIN link_rows l ON l.request_id = r.id GROUP BY r.id, r.held) n
), fin AS (
    UPDATE block_requests b SET status = c.status, open_targets = c.open, failed_targets = c.failed
    FROM counted c WHERE b.id = c.id AND b.id = ANY(ARRAY(SELECT id FROM reqs WHERE stored))
    RETURNING b.id, b.status,
              CASE WHEN $5 <> '' THEN pg_notify('fraudblock_orders', $5) END AS woken
), born AS (
    INSERT INTO block_requests (id, unit_code, case_ref, category, action, priority,
                                legal_basis, note, reason, force, status, target_count,
                                open_targets, failed_targets, created_by)
    SELECT r.id, r.unit, r.case_ref, r.category, r.action, r.priority, r.legal_basis, r.note,
           r.reason, r.force, c.status, r.target_count, c.open, c.failed, r.created_by
    FROM reqs r JOIN counted c ON c.id = r.id WHERE NOT r.stored ORDER BY r.id
    RETURNING id, status,
              CASE WHEN $5 <> '' THEN pg_notify('fraudblock_orders', $5) END AS woken
), restated AS (
    SELECT * FROM json_to_recordset($3::json) AS u(id bigint, action text, state text)
), states AS (
    UPDATE targets t SET action = u.action, state = u.state, state_changed_at = now(),
                         updated_at = now()
    FROM restated u
    WHERE t.id = u.id AND t.id = ANY(ARRAY(SELECT id FROM restated))
      AND (t.state <> u.state OR t.action <> u.action)
), current AS (
    SELECT id, target_id, operator_code, action, status, attempts, created_at, first_sent_at,
           sent_at, acked_at, ack_status, ack_reason, operator_ref, dead_at, last_error,
           request_id, seq
    FROM pair_latest($6::bigint[])  -- the gate skips it in the usual case: every target got orders
    WHERE cardinality($6::bigint[]) > 0
)
SELECT * FROM ins UNION ALL SELECT * FROM current
UNION ALL
SELECT NULL, NULL, NULL, NULL, f.status, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, f.id, NULL
FROM (SELECT id, status FROM fin UNION ALL SELECT id, status FROM born) f;

-- name: targets_lock_existing
-- (one index lookup per name, as in intake_open_blocks)
SELECT t.id, t.kind, t.value, t.action, t.state, false AS inserted
FROM targets t
WHERE t.id = ANY(ARRAY(SELECT (SELECT x.id FROM targets x WHERE x.kind = u.k AND x.value = u.v)
                       FROM unnest($1::text[], $2::text[]) AS u(k, v)))
ORDER BY t.id FOR UPDATE OF t;

-- name: orders_latest_for_targets
-- Each pair's latest decision (sql/0006_pair_ordering.sql, pair_latest).
SELECT id, target_id, operator_code, action, status, attempts, created_at, first_sent_at,
       sent_at, acked_at, ack_status, ack_reason, operator_ref, dead_at, last_error, request_id,
       seq, stage, stage_at, reason
FROM pair_latest($1::bigint[]) ORDER BY target_id, operator_code;

-- name: settle_read
-- Settling's reads (sql/0024): the targets, locked, with no operator_code and their state in
-- `status`; then what settling needs of each pair's latest decision, and nothing more.
SELECT target_id, operator_code, action, status, ack_status, request_id, seq
FROM settle_read($1::bigint[]);

-- name: orders_for_target
SELECT id, target_id, operator_code, action, status, attempts, created_at, first_sent_at,
       sent_at, acked_at, ack_status, ack_reason, operator_ref, dead_at, last_error, request_id,
       seq, stage, stage_at, reason
FROM orders WHERE target_id = $1 ORDER BY id;

-- name: holds_of
-- The cases (unit, case_ref) that hold each target: block requests in force that named it.
SELECT DISTINCT rt.target_id, r.unit_code, r.case_ref
FROM request_targets rt JOIN block_requests r ON r.id = rt.request_id
WHERE rt.holds AND rt.target_id = ANY($1::bigint[])
  AND r.status NOT IN ('pending_approval', 'rejected', 'cancelled')
ORDER BY rt.target_id, r.unit_code, r.case_ref;

-- name: holds_restore
-- An unblock is cancelled: the holds it released are in force again.
UPDATE request_targets SET holds = true, released_by = NULL WHERE released_by = $1
RETURNING target_id;

-- name: orders_withdraw_unsent
-- A newer decision withdraws its pairs' unsent older orders. $1: JSON [{target_id,
-- operator_code, request_id}] (request_id: the request whose decision it is).
WITH u AS (
    SELECT * FROM json_to_recordset($1::json)
         AS u(target_id bigint, operator_code text, request_id bigint)
)
UPDATE orders o SET status = 'withdrawn', withdrawn_by = u.request_id,
       last_error = 'withdrawn: superseded by request ' || u.request_id
FROM u
WHERE o.target_id = u.target_id AND o.operator_code = u.operator_code
  AND o.target_id = ANY(ARRAY(SELECT target_id FROM u)) AND o.status = 'queued'
  AND o.request_id <> u.request_id
RETURNING o.id, o.target_id, o.operator_code, o.action, o.request_id, o.attempts,
          o.first_sent_at;

-- name: orders_restore_withdrawn
-- A cancelled request's withdrawals are undone, unless a newer decision has come since.
UPDATE orders SET status = 'queued', withdrawn_by = NULL, last_error = NULL,
       next_attempt_at = now()
WHERE withdrawn_by = $1 AND status = 'withdrawn'
  AND target_id IN (SELECT target_id FROM request_targets WHERE request_id = $1)
  AND NOT order_superseded(target_id, operator_code, seq)
RETURNING id, target_id, operator_code;

-- name: orders_withdraw_superseded
-- Orders given back to the queue (a retry, an expired lease) after a newer decision of their
-- pair was made are withdrawn: they must never reach the operator after it.
UPDATE orders o SET status = 'withdrawn',
       last_error = 'withdrawn: superseded by a newer decision'
WHERE o.id IN (SELECT id FROM orders WHERE status = 'queued' AND attempts > 0
                 AND order_superseded(target_id, operator_code, seq)
               LIMIT 5000 FOR UPDATE SKIP LOCKED)
RETURNING o.id, o.target_id;

-- name: replica_freshness
-- Asked of the read replica (service.read_store.replica_fresh decides): whether it is a
-- standby, whether it has replayed all it received while still streaming, and the age of the
-- last transaction it replayed.
SELECT pg_is_in_recovery() AS standby,
       coalesce(pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()
                AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'),
                false) AS caught_up,
       extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS lag_s;

-- name: request_get
SELECT id, unit_code, case_ref, category, action, priority, legal_basis, note, reason, force,
       status, target_count, created_at, updated_at, decided_at, decision_reason
FROM block_requests WHERE id = $1;

-- name: request_targets_of
-- A page of request $1's targets in submitted order: after position $2 (null: from the
-- first), at most $3.
SELECT rt.position, rt.submitted_value, rt.outcome, rt.target_id, t.kind, t.value, t.state
FROM request_targets rt JOIN targets t ON t.id = rt.target_id
WHERE rt.request_id = $1 AND ($2::integer IS NULL OR rt.position > $2)
ORDER BY rt.position LIMIT $3;

-- name: request_targets_named
-- Those of the targets ($2 kinds, $3 values) that request $1 named.
SELECT t.kind, t.value
FROM request_targets rt JOIN targets t ON t.id = rt.target_id
WHERE rt.request_id = $1
  AND (t.kind, t.value) IN (SELECT * FROM unnest($2::text[], $3::text[]))
ORDER BY rt.position;

-- name: request_list
-- plan: custom
-- Newest first by filing time (ties, a batch filed together, by id): every filter's index ends
-- in (created_at, id), so a period is read from its end and the read stops at the page
-- (sql/0030). $7, the last id seen, stands for its (created_at, id); planned for the filters
-- given, so the index of the one given is taken.
SELECT id, unit_code, case_ref, category, action, priority, status, target_count, created_at,
       updated_at
FROM block_requests
WHERE ($1::text IS NULL OR unit_code = $1)
  AND ($2::text IS NULL OR status = $2)
  AND ($3::text IS NULL OR category = $3)
  AND ($4::text IS NULL OR case_ref = $4)
  AND ($5::timestamptz IS NULL OR created_at >= $5)
  AND ($6::timestamptz IS NULL OR created_at < $6)
  AND ($7::bigint IS NULL
       OR (created_at, id) < (SELECT a.created_at, a.id FROM block_requests a WHERE a.id = $7))
ORDER BY created_at DESC, id DESC LIMIT $8;

-- name: target_get
SELECT id, kind, value, state, action, state_changed_at, created_at
FROM targets WHERE kind = $1 AND value = $2;

-- name: target_cases
SELECT r.id AS request_id, r.case_ref, r.unit_code, r.action, r.status, rt.holds, r.created_at
FROM request_targets rt JOIN block_requests r ON r.id = rt.request_id
WHERE rt.target_id = $1 ORDER BY r.id;

-- name: audit_append
-- $1: JSON entries; the chaining is the audit_append function (sql/0003_audit_chains.sql).
SELECT audit_append($1::json);

-- name: audit_snapshot
-- The first statement of audit verification's transaction: every page it reads, and the
-- heads, come from one snapshot (an append inserts its rows and moves its head in one commit).
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY;

-- name: audit_heads
SELECT chain, last_id, hash FROM audit_head ORDER BY chain;

-- name: audit_first_page
-- The log from its lowest id, whatever it is (audit_all then pages on from the last id read).
SELECT id, at, actor, role, action, entity_type, entity_id, details, chain, prev_hash, hash
FROM audit_log ORDER BY id LIMIT $1;

-- name: audit_all
SELECT id, at, actor, role, action, entity_type, entity_id, details, chain, prev_hash, hash
FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2;

-- name: dispatch_operators
SELECT code, adapter_kind, adapter_config, rate_limit_per_s, breaker_threshold,
       breaker_cooldown_s, ack_deadline_s, urgent_ack_deadline_s, breaker_state,
       breaker_opened_at, now() AS db_now
FROM operators WHERE active ORDER BY code;

-- name: operator_take_tokens
-- Up to $2 sends of the operator's shared rate limit (sql/0020), and when none may go, how
-- long until one may. Its own statement: the operator row is locked only for this moment.
SELECT granted, wait_s FROM operator_take_tokens($1, $2);

-- name: operator_return_tokens
-- Tokens a claim took but did not use ($2) go back into the bucket.
UPDATE operators SET rate_tokens = least(greatest(rate_limit_per_s, 1), rate_tokens + $2)
WHERE code = $1 AND rate_limit_per_s > 0 AND rate_tokens IS NOT NULL;

-- name: orders_claim
-- Claim due orders of one operator: urgent first, oldest first, under a lease; the batch is
-- returned in that order too. Only an order that may go now (its pair's latest decision, with
-- nothing of the pair outstanding: order_may_go, sql/0006) is taken.
-- Run on its own (autocommit, as the dispatcher does), the claim commits without waiting for
-- its WAL flush: one lost in a crash leaves its orders queued, to be sent again (delivery is
-- at least once, the order id its idempotency key), and the batch's record, which commits
-- durably, flushes the claim's WAL with its own. The setting ends with the transaction.
WITH unflushed AS MATERIALIZED (
    SELECT set_config('synchronous_commit', 'off', true)
), claimed AS (
    UPDATE orders o SET status = 'in_flight', attempts = o.attempts + 1,
           lease_expires_at = now() + make_interval(secs => $3), leased_by = $4
    WHERE (SELECT count(*) FROM unflushed) = 1 AND o.id = ANY(ARRAY(
        SELECT id FROM orders
        WHERE operator_code = $1 AND status = 'queued' AND next_attempt_at <= now()
          AND ($5::bool OR EXISTS (SELECT 1 FROM operators
                                   WHERE code = $1 AND breaker_state = 'closed'))
          AND order_may_go(target_id, operator_code, id, seq)
        ORDER BY urgent DESC, next_attempt_at, id
        LIMIT $2 FOR UPDATE SKIP LOCKED))
    RETURNING o.id, o.operator_code, o.action, o.kind, o.value, o.urgent, o.attempts,
              coalesce(o.retry_from, o.created_at) AS created_at, o.next_attempt_at,
              o.target_id, o.request_id, o.unit_code, o.category, o.status, o.ack_status, o.seq,
              o.reason
), authority AS MATERIALIZED (  -- once per request: a batch comes from a few
    SELECT * FROM order_authority
    WHERE request_id = ANY(ARRAY(SELECT DISTINCT request_id FROM claimed))
)
SELECT c.id, c.operator_code, c.action, c.kind, c.value, c.urgent, c.attempts, c.created_at,
       c.target_id, c.request_id, c.unit_code, c.category, c.status, c.ack_status, c.seq,
       a.request_unit, a.case_ref, a.request_category, a.legal_basis, a.approved, a.filer_name,
       a.filer_rank, a.approver_name, a.approver_rank, c.reason
FROM claimed c JOIN authority a ON a.request_id = c.request_id
ORDER BY c.urgent DESC, c.next_attempt_at, c.id;

-- name: orders_renew_lease
UPDATE orders SET lease_expires_at = now() + make_interval(secs => $3)
WHERE id = ANY($1::bigint[]) AND status = 'in_flight' AND leased_by = $2;

-- name: orders_release
-- Give unfinished orders back to the queue (shutdown), recording the interrupted attempt
-- (it may have reached the operator, so it keeps its number). $3: when it was claimed.
WITH released AS (
    UPDATE orders SET status = 'queued', lease_expires_at = NULL, leased_by = NULL
    WHERE id = ANY($1::bigint[]) AND status = 'in_flight' AND leased_by = $2
    RETURNING id, operator_code, attempts
), recorded AS (
    INSERT INTO attempts (order_id, attempt_no, worker, started_at, finished_at, outcome, error)
    SELECT id, attempts, $2, $3, now(), 'released', 'released unfinished at shutdown'
    FROM released
)
SELECT id, operator_code FROM released;

-- name: orders_release_orphans
-- Orders leased to one lane ($1 operator, $2 worker) that it does not hold ($3): a claim whose
-- answer was lost to a broken connection. They go back to the queue at once, the lost attempt
-- recorded as released, instead of waiting for their lease to run out.
WITH released AS (
    UPDATE orders SET status = 'queued', next_attempt_at = now(), lease_expires_at = NULL,
           leased_by = NULL, last_error = 'claim lost with its database connection'
    WHERE operator_code = $1 AND leased_by = $2 AND status = 'in_flight'
      AND id <> ALL($3::bigint[])
    RETURNING id, attempts, last_error
), recorded AS (
    INSERT INTO attempts (order_id, attempt_no, worker, started_at, finished_at, outcome, error)
    SELECT id, attempts, $2, now(), now(), 'released', last_error FROM released
)
SELECT id FROM released;

-- name: orders_reap_expired
-- Orders whose worker stopped renewing its lease come back to the queue; the lost attempt
-- is recorded as released, started when its lease ran out (the claim time is not kept).
WITH expired AS (
    SELECT id, leased_by, lease_expires_at FROM orders
    WHERE status = 'in_flight' AND lease_expires_at < now()
    ORDER BY lease_expires_at LIMIT 5000 FOR UPDATE SKIP LOCKED
), reaped AS (
    UPDATE orders o SET status = 'queued', next_attempt_at = now(), lease_expires_at = NULL,
           last_error = 'lease expired: worker ' || coalesce(e.leased_by, '?') || ' stopped',
           leased_by = NULL
    FROM expired e WHERE o.id = e.id AND o.id = ANY(ARRAY(SELECT id FROM expired))
    RETURNING o.id, o.operator_code, o.attempts, o.last_error, e.leased_by, e.lease_expires_at
), recorded AS (
    INSERT INTO attempts (order_id, attempt_no, worker, started_at, finished_at, outcome, error)
    SELECT id, attempts, coalesce(leased_by, '?'), lease_expires_at, now(), 'released', last_error
    FROM reaped
)
SELECT id, operator_code, attempts, last_error FROM reaped;

-- name: orders_mark_sent
-- Locks the orders in id order first, as the ack API does (orders_for_ack): an operator's acks
-- for this very batch can arrive while it is being recorded, and must not deadlock with it.
UPDATE orders o SET status = 'sent', sent_at = now(), first_sent_at = coalesce(first_sent_at, now()),
       ack_due_at = now() + make_interval(
           secs => CASE WHEN o.urgent THEN $4::double precision ELSE $3::double precision END),
       operator_ref = coalesce(u.ref, o.operator_ref), attempts = u.attempts,
       lease_expires_at = NULL, leased_by = NULL, last_error = NULL
FROM unnest($1::bigint[], $2::text[], $6::int[]) AS u(id, ref, attempts)
WHERE o.id = u.id
  AND o.id = ANY(ARRAY(SELECT id FROM orders WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE))
  AND o.status = 'in_flight' AND o.leased_by = $5;

-- name: orders_reschedule
UPDATE orders o SET status = 'queued', next_attempt_at = u.at, last_error = u.error,
       attempts = u.attempts, lease_expires_at = NULL, leased_by = NULL
FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::int[]) AS u(id, at, error, attempts)
WHERE o.id = u.id AND o.id = ANY($1::bigint[]) AND o.status = 'in_flight'
  AND o.leased_by = $5;

-- name: orders_mark_dead
UPDATE orders o SET status = 'dead', dead_at = now(), last_error = u.error,
       attempts = coalesce(u.attempts, o.attempts), lease_expires_at = NULL, leased_by = NULL,
       first_sent_at = CASE WHEN u.sent THEN coalesce(o.first_sent_at, now())
                            ELSE o.first_sent_at END
FROM unnest($1::bigint[], $2::text[], $3::int[], $4::bool[]) AS u(id, error, attempts, sent)
WHERE o.id = u.id AND o.id = ANY($1::bigint[]) AND o.status = 'in_flight'
  AND o.leased_by = $5
RETURNING o.id, o.target_id;

-- name: dispatch_record
-- One batch's attempts ($1, JSON), the acknowledgements it got back at once ($2, JSON) and the
-- breaker's verdict ($4: the batch failed; $7: the operator refused our credentials, which
-- opens the breaker at once, whatever its threshold), in one round trip. Returns the orders
-- whose ack was applied. JSON keeps thousands of values in one parameter. The batch's targets
-- ($6) are locked first, as every path does (the lock order).
WITH locked AS MATERIALIZED (
    SELECT id FROM targets WHERE id = ANY($6::bigint[]) ORDER BY id FOR UPDATE
), tried AS (
    INSERT INTO attempts (order_id, attempt_no, worker, started_at, finished_at, outcome, error,
                          operator_status, http_status)
    SELECT a.order_id, a.attempt_no, $3, a.started_at, a.finished_at, a.outcome, a.error,
           a.operator_status, a.http_status
    FROM json_to_recordset($1::json) AS a(order_id bigint, attempt_no int,
         started_at timestamptz, finished_at timestamptz, outcome text, error text,
         operator_status text, http_status int)
    WHERE (SELECT count(*) FROM locked) >= 0
    RETURNING 1
), acked AS (
    SELECT a.id FROM orders_ack(CASE WHEN (SELECT count(*) FROM locked) >= 0 THEN $2::json END,
                                $3) AS a(id)
), breaker AS (
    UPDATE operators SET
        breaker_failures = CASE WHEN $4::bool THEN breaker_failures + 1 ELSE 0 END,
        breaker_state = CASE
            WHEN NOT $4::bool THEN 'closed'
            WHEN $7::bool OR breaker_state = 'half_open'
                 OR breaker_failures + 1 >= breaker_threshold THEN 'open'
            ELSE breaker_state END,
        breaker_opened_at = CASE
            WHEN NOT $4::bool THEN NULL
            WHEN $7::bool OR breaker_state = 'half_open'
                 OR breaker_failures + 1 >= breaker_threshold THEN now()
            ELSE breaker_opened_at END
    WHERE code = $5 AND ($4::bool OR breaker_failures <> 0 OR breaker_state <> 'closed')
    RETURNING breaker_state
)
SELECT ARRAY(SELECT id FROM acked) AS applied, (SELECT breaker_state FROM breaker) AS breaker,
       (SELECT count(*) FROM tried) AS attempts;

-- name: breaker_state
SELECT breaker_state FROM operators WHERE code = $1;

-- name: breaker_try_half_open
-- Let one caller probe once the cooldown is over; a probe whose worker went quiet for a lease
-- ($2 seconds) may be taken over. While half-open, breaker_opened_at is when the probe began.
UPDATE operators SET breaker_state = 'half_open', breaker_opened_at = now()
WHERE code = $1
  AND (breaker_state = 'open'
       AND breaker_opened_at + make_interval(secs => breaker_cooldown_s) <= now()
    OR breaker_state = 'half_open'
       AND breaker_opened_at + make_interval(secs => $2::double precision) <= now())
RETURNING breaker_state;

-- name: orders_due_now
-- An operator's breaker closed: its queued orders waiting out a backoff are due at once (those
-- in another transaction's hands are skipped: they are moving anyway). Returns how many.
WITH due AS (
    UPDATE orders SET next_attempt_at = now()
    WHERE id = ANY(ARRAY(
        SELECT id FROM orders
        WHERE operator_code = $1 AND status = 'queued' AND next_attempt_at > now()
        ORDER BY id FOR UPDATE SKIP LOCKED))
    RETURNING id
)
SELECT count(*) FROM due;

-- name: breaker_probe_unused
-- A half-open breaker found nothing due to probe with: open again, ready to probe at once.
UPDATE operators SET breaker_state = 'open',
       breaker_opened_at = now() - make_interval(secs => breaker_cooldown_s)
WHERE code = $1 AND breaker_state = 'half_open' RETURNING breaker_state;

-- name: orders_overdue_resend
-- Sent and not acknowledged in time: marked overdue and sent again, once per acknowledgement
-- deadline, until the order's maximum age makes it dead (orders_expire).
UPDATE orders SET overdue_at = coalesce(overdue_at, now()), status = 'queued',
       next_attempt_at = now(), last_error = 'no acknowledgement by ' || ack_due_at
WHERE id IN (SELECT id FROM orders WHERE status = 'sent' AND ack_due_at < now()
             LIMIT 5000 FOR UPDATE SKIP LOCKED)
RETURNING id, operator_code;

-- name: orders_expiring
-- Orders past their maximum age ($1 seconds, counted from the decision or the last retry)
-- that are not final and not in a worker's hands, with why they never finished.
SELECT o.id, o.target_id,
       CASE WHEN o.status = 'sent' THEN 'no acknowledgement'
            WHEN NOT p.active THEN 'operator disabled'
            WHEN p.breaker_state <> 'closed' THEN 'operator unavailable (breaker open)'
            WHEN NOT order_may_go(o.target_id, o.operator_code, o.id, o.seq)
                THEN 'waiting behind an unanswered order of the same operator'
            ELSE 'not delivered' END
       || ' within the maximum age of ' || $1::bigint || ' s'
       || coalesce(': ' || o.last_error, '') AS reason
FROM orders o JOIN operators p ON p.code = o.operator_code
WHERE o.status IN ('queued', 'sent')
  AND coalesce(o.retry_from, o.created_at) + make_interval(secs => $1) < now()
ORDER BY o.id LIMIT 5000;

-- name: orders_expire
-- Declare them dead (their targets are locked by the caller first). $1: JSON [{id, reason}].
UPDATE orders o SET status = 'dead', dead_at = now(), last_error = u.reason,
       lease_expires_at = NULL, leased_by = NULL
FROM json_to_recordset($1::json) AS u(id bigint, reason text)
WHERE o.id = u.id AND o.id = ANY(ARRAY(SELECT id FROM json_to_recordset($1::json) AS v(id bigint)))
  AND o.status IN ('queued', 'sent')
RETURNING o.id, o.target_id, o.operator_code;

-- name: orders_for_ack
-- The orders an operator acknowledges, locked after their targets (the lock order), and
-- whether each was superseded by a newer decision of its pair.
WITH locked AS MATERIALIZED (
    SELECT t.id FROM targets t
    WHERE t.id = ANY(ARRAY(SELECT target_id FROM orders
                           WHERE id = ANY($1::bigint[]) AND operator_code = $2))
    ORDER BY t.id FOR UPDATE
)
SELECT o.id, o.target_id, o.kind, o.value, o.action, o.status, o.ack_status, o.request_id,
       o.unit_code, o.category, o.urgent, o.operator_ref, o.seq,
       order_superseded(o.target_id, o.operator_code, o.seq) AS superseded,
       ARRAY(SELECT s.stage FROM order_stages s WHERE s.order_id = o.id) AS stages,
       o.first_sent_at IS NULL AND o.attempts = 0 AND o.status = 'queued' AS never_sent,
       coalesce(o.first_sent_at, o.created_at) AS offered_at  -- since when the ack was awaited
FROM orders o WHERE o.id = ANY($1::bigint[]) AND o.operator_code = $2
  AND (SELECT count(*) FROM locked) >= 0
ORDER BY o.id FOR UPDATE;

-- name: orders_apply_ack
-- $1: JSON [{id, status, reason, ref, at, attempts}] (orders_ack, sql/0006).
SELECT a.id FROM orders_ack($1::json, NULL) AS a(id);

-- name: orders_record_late_ack
-- An answer to an order a newer decision superseded: kept in its history, nothing else moves.
UPDATE orders o SET ack_status = u.status, ack_reason = u.reason, acked_at = coalesce(u.at, now()),
       operator_ref = coalesce(u.ref, o.operator_ref)
FROM json_to_recordset($1::json) AS u(id bigint, status text, reason text, ref text,
                                       at timestamptz)
WHERE o.id = u.id AND o.id = ANY(ARRAY(SELECT id FROM json_to_recordset($1::json) AS v(id bigint)));

-- name: targets_for_settle
SELECT id, action, state FROM targets WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE;

-- name: orders_insert_each
-- Orders that differ row by row (re-routing after not_subscriber), queued as part of the
-- decision ($1 JSON rows carry its seq).
INSERT INTO orders (target_id, kind, value, operator_code, action, request_id, unit_code,
                    category, urgent, status, seq, due_at)
SELECT u.target_id, u.kind, u.value, u.operator_code, u.action, u.request_id, u.unit_code,
       u.category, u.urgent, 'queued', u.seq, now() + make_interval(secs => CASE WHEN u.urgent
           THEN p.urgent_ack_deadline_s ELSE p.ack_deadline_s END)
FROM json_to_recordset($1::json) AS u(target_id bigint, kind text, value text,
     operator_code text, action text, request_id bigint, unit_code text, category text,
     urgent bool, seq bigint)
JOIN operators p ON p.code = u.operator_code
RETURNING id, operator_code;

-- name: orders_pull
-- A pulling operator takes its due orders ($1 operator, $2 how many, $3 the worker name in
-- attempts): each becomes sent at once, with its acknowledgement deadline, and counts as an
-- accepted attempt. One statement, so no order is updated twice in the transaction (that
-- would make the second update check the target's key, against the lock order).
WITH due AS (
    SELECT id FROM orders
    WHERE operator_code = $1 AND status = 'queued' AND next_attempt_at <= now()
      AND order_may_go(target_id, operator_code, id, seq)
      AND EXISTS (SELECT 1 FROM operators WHERE code = $1 AND adapter_kind = 'pull')
    ORDER BY urgent DESC, next_attempt_at, id
    LIMIT $2 FOR UPDATE SKIP LOCKED
), taken AS (
    UPDATE orders o SET status = 'sent', attempts = o.attempts + 1, sent_at = now(),
           first_sent_at = coalesce(o.first_sent_at, now()),
           ack_due_at = now() + make_interval(secs => CASE WHEN o.urgent
               THEN p.urgent_ack_deadline_s ELSE p.ack_deadline_s END),
           lease_expires_at = NULL, leased_by = NULL, last_error = NULL
    FROM operators p
    WHERE o.id = ANY(ARRAY(SELECT id FROM due)) AND p.code = o.operator_code
    RETURNING o.id, o.action, o.kind, o.value, o.urgent, o.attempts, o.seq,
              extract(epoch FROM o.ack_due_at - now())::float8 AS ack_due_in_s, o.request_id,
              o.reason
), tried AS (
    INSERT INTO attempts (order_id, attempt_no, worker, started_at, finished_at, outcome)
    SELECT id, attempts, $3, now(), now(), 'accepted' FROM taken
), authority AS MATERIALIZED (  -- once per request: a batch comes from a few
    SELECT * FROM order_authority
    WHERE request_id = ANY(ARRAY(SELECT DISTINCT request_id FROM taken))
)
SELECT t.*, a.request_unit, a.case_ref, a.request_category, a.legal_basis, a.approved,
       a.filer_name, a.filer_rank, a.approver_name, a.approver_rank
FROM taken t JOIN authority a ON a.request_id = t.request_id
ORDER BY t.urgent DESC, t.id;

-- name: request_head
SELECT id, unit_code, status, action, case_ref, force, priority, created_by
FROM block_requests WHERE id = $1;

-- name: request_target_ids
SELECT target_id FROM request_targets WHERE request_id = $1 ORDER BY target_id;

-- name: targets_lock
SELECT id, kind, value, action, state FROM targets WHERE id = ANY($1::bigint[])
ORDER BY id FOR UPDATE;

-- name: request_lock
-- Taken after the request's targets (the lock order).
SELECT id, unit_code, status, action, case_ref, force, priority, category
FROM block_requests WHERE id = $1 FOR UPDATE;

-- name: request_decide
UPDATE block_requests SET status = $2, decided_by = $3, decided_at = now(),
       decision_reason = $4, updated_at = now()
WHERE id = $1;

-- name: unblocks_waiting_on_holds
-- Targets held by no case any more, still under a block, whose holds an unblock released while
-- another case held them: that (latest such) unblock, to decide now.
SELECT DISTINCT ON (t.id) t.id AS target_id, t.kind, t.value, t.action, t.state,
       u.id, u.unit_code, u.case_ref, u.force, u.priority, u.category
FROM targets t
JOIN request_targets rt ON rt.target_id = t.id AND rt.released_by IS NOT NULL
JOIN block_requests u ON u.id = rt.released_by AND u.status NOT IN ('rejected', 'cancelled')
WHERE t.id = ANY($1::bigint[]) AND t.action = 'block'
  AND NOT EXISTS (SELECT 1 FROM request_targets h JOIN block_requests b ON b.id = h.request_id
                  WHERE h.target_id = t.id AND h.holds
                    AND b.status NOT IN ('pending_approval', 'rejected', 'cancelled'))
ORDER BY t.id, u.id DESC;

-- name: orders_decide_held
-- An approval is the decision: the request's held orders get its seq, a deadline and a place
-- in the queue.
UPDATE orders o SET status = 'queued', next_attempt_at = now(), retry_from = now(),
       seq = $2, due_at = now() + make_interval(secs => CASE WHEN o.urgent
           THEN p.urgent_ack_deadline_s ELSE p.ack_deadline_s END)
FROM operators p
WHERE o.target_id IN (SELECT target_id FROM request_targets WHERE request_id = $1)
  AND o.request_id = $1 AND o.status = 'held' AND p.code = o.operator_code
RETURNING o.id, o.target_id, o.operator_code;

-- name: decision_next
SELECT nextval('order_decisions');

-- name: request_orders_lock
-- A request's orders, locked (after its targets) so no worker claims one while it is decided.
SELECT id, status, attempts, first_sent_at FROM orders
WHERE target_id IN (SELECT target_id FROM request_targets WHERE request_id = $1)
  AND request_id = $1
ORDER BY id FOR UPDATE;

-- name: orders_cancel_unsent
-- A request taken back: its unsent orders are cancelled ($2 says why), except where another
-- block request in force holds the target (it was linked to this one's orders): that request
-- takes the queued orders over, so its target stays on its way.
WITH mine AS (
    SELECT id, target_id, status, action FROM orders
    WHERE target_id IN (SELECT target_id FROM request_targets WHERE request_id = $1)
      AND request_id = $1 AND status IN ('held', 'queued')
), heir AS (
    SELECT DISTINCT ON (rt.target_id) rt.target_id, rt.request_id
    FROM request_targets rt JOIN block_requests b ON b.id = rt.request_id
    WHERE rt.target_id IN (SELECT target_id FROM mine WHERE status = 'queued'
                                                      AND action = 'block')
      AND rt.request_id <> $1 AND rt.holds AND b.action = 'block'
      AND b.status NOT IN ('pending_approval', 'rejected', 'cancelled')
    ORDER BY rt.target_id, rt.request_id
), moved AS (
    UPDATE orders o SET request_id = h.request_id
    FROM mine m JOIN heir h ON h.target_id = m.target_id
    WHERE o.id = m.id AND m.status = 'queued'
    RETURNING o.target_id
), gone AS (
    UPDATE orders o SET status = 'cancelled', leased_by = NULL, lease_expires_at = NULL,
           last_error = $2
    FROM mine m
    WHERE o.id = m.id
      AND NOT (m.status = 'queued' AND m.target_id IN (SELECT target_id FROM heir))
    RETURNING o.target_id
)
SELECT target_id FROM gone UNION SELECT target_id FROM moved;

-- name: request_links_close
UPDATE request_targets SET holds = false, done = true WHERE request_id = $1;

-- name: request_links_outcome
-- An unblock approved: its links get the outcomes of the decision. $2: JSON [{target_id,
-- outcome, done}].
UPDATE request_targets rt SET outcome = u.outcome, done = u.done
FROM json_to_recordset($2::json) AS u(target_id bigint, outcome text, done bool)
WHERE rt.request_id = $1 AND rt.target_id = u.target_id;

-- name: order_requeue_dead
-- Only while the dead order is still its pair's latest decision (order_superseded, sql/0006);
-- it gets a new life: a new deadline from now.
UPDATE orders o SET status = 'queued', next_attempt_at = now(), retry_from = now(),
       dead_at = NULL, overdue_at = NULL, due_at = now() + make_interval(secs => CASE
           WHEN o.urgent THEN p.urgent_ack_deadline_s ELSE p.ack_deadline_s END)
FROM operators p
WHERE o.id = $1 AND o.status = 'dead' AND p.code = o.operator_code
  AND NOT order_superseded(o.target_id, o.operator_code, o.seq)
RETURNING o.id, o.target_id, o.request_id, o.operator_code;

-- name: order_get
SELECT id, status, operator_code, request_id, target_id FROM orders WHERE id = $1;

-- name: requests_recount
-- Recompute requests' counters and status from their targets' current states.
UPDATE block_requests r SET
    open_targets = c.open, failed_targets = c.failed, updated_at = now(),
    status = request_status(r.status, c.open::int, c.failed::int)
FROM (
    SELECT rt.request_id,
           count(*) FILTER (WHERE NOT rt.done) AS open,
           count(*) FILTER (WHERE rt.done AND link_failed(q.action, rt.outcome, t.state))
               AS failed
    FROM request_targets rt
    JOIN targets t ON t.id = rt.target_id
    JOIN block_requests q ON q.id = rt.request_id
    WHERE rt.request_id = ANY($1::bigint[])
    GROUP BY rt.request_id
) c
WHERE r.id = c.request_id AND r.id = ANY($1::bigint[]);

-- name: request_links_reopen
UPDATE request_targets SET done = false WHERE request_id = $1 AND target_id = $2;

-- name: stats_targets
-- plan: custom
-- Targets by state, and the state changes to blocked and unblocked inside the period, a column
-- each, per group and kind: whole months from the *_months tables, the days around them from
-- target_days (sql/0033), or target_unit_days without the category unless grouped by it
-- (sql/0029), or target_category_days without the unit when grouped by category and neither
-- grouped nor filtered by unit (sql/0032); and the deltas not folded yet from the *_counts
-- tables. The counts come in the order of stats.TARGET_METRICS, so the caller only names them;
-- a group's two kinds are two rows, which the caller places side by side (pivoting them here
-- took a second aggregate and a sort, half the statement's time).
-- The sums are of int4 (a day's or a month's count is far below 2^31), which Postgres adds in
-- an int8; a sum of int8 would be a numeric, several times slower on a year of day rows.
-- A group and kind whose every count is zero is left out.
SELECT unit, category, kind, period,
       sum(blocked::int) AS blocked,
       sum(partially_blocked::int) AS partially_blocked,
       sum(pending::int) AS pending,
       sum(unblocked::int) AS unblocked,
       sum(rejected::int) AS rejected,
       sum(dead::int) AS dead,
       sum(unroutable::int) AS unroutable,
       sum(cancelled::int) AS cancelled,
       sum(retained::int) AS retained,
       sum(blocked_in_period::int) AS blocked_in_period,
       sum(unblocked_in_period::int) AS unblocked_in_period
FROM (
    SELECT CASE WHEN $3 THEN unit_code END AS unit,
           CASE WHEN $4 THEN category END AS category, kind,
           period_start($5, day) AS period,
           pending, blocked, partially_blocked, unblocked, rejected, dead, unroutable,
           cancelled, retained, blocked_in_period, unblocked_in_period
    FROM (
        SELECT t.unit_code, t.category, t.kind, t.day, t.pending, t.blocked,
               t.partially_blocked, t.unblocked, t.rejected, t.dead, t.unroutable, t.cancelled,
               t.retained, t.blocked_in_period, t.unblocked_in_period
        FROM target_days t, whole_months($1, $2, $5) w
        WHERE $4 AND ($3 OR $6::text IS NOT NULL OR $7::text IS NOT NULL)
          AND ($1::date IS NULL OR t.day >= $1) AND ($2::date IS NULL OR t.day < $2)
          AND NOT (t.day >= w.lo AND t.day < w.hi)
        UNION ALL
        SELECT t.unit_code, NULL, t.kind, t.day, t.pending, t.blocked, t.partially_blocked,
               t.unblocked, t.rejected, t.dead, t.unroutable, t.cancelled, t.retained,
               t.blocked_in_period, t.unblocked_in_period
        FROM target_unit_days t, whole_months($1, $2, $5) w
        WHERE NOT $4
          AND ($1::date IS NULL OR t.day >= $1) AND ($2::date IS NULL OR t.day < $2)
          AND NOT (t.day >= w.lo AND t.day < w.hi)
        UNION ALL
        SELECT NULL, t.category, t.kind, t.day, t.pending, t.blocked, t.partially_blocked,
               t.unblocked, t.rejected, t.dead, t.unroutable, t.cancelled, t.retained,
               t.blocked_in_period, t.unblocked_in_period
        FROM target_category_days t, whole_months($1, $2, $5) w
        WHERE $4 AND NOT $3 AND $6::text IS NULL AND $7::text IS NULL
          AND ($1::date IS NULL OR t.day >= $1) AND ($2::date IS NULL OR t.day < $2)
          AND NOT (t.day >= w.lo AND t.day < w.hi)
        UNION ALL
        SELECT m.*, 0, 0 FROM target_state_months m, whole_months($1, $2, $5) w
        WHERE m.month >= w.lo AND m.month < w.hi
        UNION ALL
        SELECT unit_code, category, kind, day,
               CASE state WHEN 'pending' THEN n ELSE 0 END,
               CASE state WHEN 'blocked' THEN n ELSE 0 END,
               CASE state WHEN 'partially_blocked' THEN n ELSE 0 END,
               CASE state WHEN 'unblocked' THEN n ELSE 0 END,
               CASE state WHEN 'rejected' THEN n ELSE 0 END,
               CASE state WHEN 'dead' THEN n ELSE 0 END,
               CASE state WHEN 'unroutable' THEN n ELSE 0 END,
               CASE state WHEN 'cancelled' THEN n ELSE 0 END,
               CASE state WHEN 'retained' THEN n ELSE 0 END, 0, 0
        FROM target_state_counts
        WHERE ($1::date IS NULL OR day >= $1) AND ($2::date IS NULL OR day < $2)
        UNION ALL
        SELECT m.unit_code, m.category, m.kind, m.month, 0, 0, 0, 0, 0, 0, 0, 0, 0, m.blocked,
               m.unblocked
        FROM target_event_months m, whole_months($1, $2, $5) w
        WHERE m.month >= w.lo AND m.month < w.hi
        UNION ALL
        SELECT unit_code, category, kind, day, 0, 0, 0, 0, 0, 0, 0, 0, 0,
               CASE event WHEN 'blocked' THEN n ELSE 0 END,
               CASE event WHEN 'unblocked' THEN n ELSE 0 END
        FROM target_event_counts
        WHERE ($1::date IS NULL OR day >= $1) AND ($2::date IS NULL OR day < $2)
          AND event IN ('blocked', 'unblocked')
    ) AS src
    WHERE ($6::text IS NULL OR unit_code = $6)
      AND ($7::text IS NULL OR unit_code IN (SELECT code FROM units WHERE kind = $7))
) AS g
GROUP BY unit, category, kind, period
HAVING sum(pending::int) <> 0 OR sum(blocked::int) <> 0 OR sum(partially_blocked::int) <> 0
    OR sum(unblocked::int) <> 0 OR sum(rejected::int) <> 0 OR sum(dead::int) <> 0
    OR sum(unroutable::int) <> 0 OR sum(cancelled::int) <> 0 OR sum(retained::int) <> 0
    OR sum(blocked_in_period::int) <> 0 OR sum(unblocked_in_period::int) <> 0;

-- name: stats_orders
-- plan: custom
-- Orders by operator and counted state, a column per state, per group: whole months from
-- order_state_months, the days around them from order_state_days (order_unit_days, without the
-- category, unless grouped by it: sql/0029; order_category_days, without the unit, when
-- grouped by category and not by unit, nor filtered by it: sql/0032), and the deltas not
-- folded yet from order_state_counts; a row per group and kind, the counts in the order of
-- stats.ORDER_STATES and then withdrawn. Groups whose every count is zero are left out. Sums
-- of int4, as in stats_targets.
SELECT operator_code AS operator, CASE WHEN $3 THEN unit_code END AS unit,
       CASE WHEN $4 THEN category END AS category, kind,
       period_start($5, day) AS period,
       sum(blocked::int) AS blocked,
       sum(unblocked::int) AS unblocked,
       sum(pending::int) AS pending,
       sum(rejected::int) AS rejected,
       sum(not_subscriber::int) AS not_subscriber,
       sum(dead::int) AS dead,
       sum(cancelled::int) AS cancelled,
       sum(retained::int) AS retained,
       sum(withdrawn::int) AS withdrawn
FROM (
    SELECT t.* FROM order_state_days t, whole_months($1, $2, $5) w
    WHERE $4 AND ($3 OR $6::text IS NOT NULL OR $7::text IS NOT NULL)
      AND ($1::date IS NULL OR t.day >= $1) AND ($2::date IS NULL OR t.day < $2)
      AND NOT (t.day >= w.lo AND t.day < w.hi)
    UNION ALL
    SELECT t.operator_code, t.unit_code, NULL, t.kind, t.day, t.pending, t.blocked,
           t.unblocked, t.not_subscriber, t.rejected, t.retained, t.dead, t.cancelled,
           t.withdrawn
    FROM order_unit_days t, whole_months($1, $2, $5) w
    WHERE NOT $4 AND ($1::date IS NULL OR t.day >= $1) AND ($2::date IS NULL OR t.day < $2)
      AND NOT (t.day >= w.lo AND t.day < w.hi)
    UNION ALL
    SELECT t.operator_code, NULL, t.category, t.kind, t.day, t.pending, t.blocked,
           t.unblocked, t.not_subscriber, t.rejected, t.retained, t.dead, t.cancelled,
           t.withdrawn
    FROM order_category_days t, whole_months($1, $2, $5) w
    WHERE $4 AND NOT $3 AND $6::text IS NULL AND $7::text IS NULL
      AND ($1::date IS NULL OR t.day >= $1) AND ($2::date IS NULL OR t.day < $2)
      AND NOT (t.day >= w.lo AND t.day < w.hi)
    UNION ALL
    SELECT m.* FROM order_state_months m, whole_months($1, $2, $5) w
    WHERE m.month >= w.lo AND m.month < w.hi
    UNION ALL
    SELECT operator_code, unit_code, category, kind, day,
           CASE state WHEN 'pending' THEN n ELSE 0 END,
           CASE state WHEN 'blocked' THEN n ELSE 0 END,
           CASE state WHEN 'unblocked' THEN n ELSE 0 END,
           CASE state WHEN 'not_subscriber' THEN n ELSE 0 END,
           CASE state WHEN 'rejected' THEN n ELSE 0 END,
           CASE state WHEN 'retained' THEN n ELSE 0 END,
           CASE state WHEN 'dead' THEN n ELSE 0 END,
           CASE state WHEN 'cancelled' THEN n ELSE 0 END,
           CASE state WHEN 'withdrawn' THEN n ELSE 0 END
    FROM order_state_counts
    WHERE ($1::date IS NULL OR day >= $1) AND ($2::date IS NULL OR day < $2)
) AS src
WHERE ($6::text IS NULL OR unit_code = $6)
  AND ($7::text IS NULL OR unit_code IN (SELECT code FROM units WHERE kind = $7))
GROUP BY 1, 2, 3, 4, 5
HAVING sum(pending::int) <> 0 OR sum(blocked::int) <> 0 OR sum(unblocked::int) <> 0
    OR sum(not_subscriber::int) <> 0 OR sum(rejected::int) <> 0 OR sum(retained::int) <> 0
    OR sum(dead::int) <> 0 OR sum(cancelled::int) <> 0 OR sum(withdrawn::int) <> 0;

-- name: counts_compact
-- Fold the counter deltas into their day rows (sql/0018: counts_fold); sums are unchanged, so
-- readers never see a jump, and the work follows the new deltas, not the history.
SELECT folded, kept FROM counts_fold();

-- name: counts_compact_lock
SELECT pg_try_advisory_xact_lock(7201003);

-- name: operator_health
-- An operator's breaker, open orders (one pass over them), dead orders (the month rows hold
-- every day's counts: a dozen rows per group a year, against a row a day) and its last 24
-- hours. One operator a statement, so the operators' are answered side by side.
SELECT o.code, o.name, o.active, o.adapter_kind, o.breaker_state, o.breaker_failures,
       o.breaker_opened_at, o.rate_limit_per_s,
       q.queued, q.in_flight, q.awaiting_ack, q.overdue,
       ((SELECT coalesce(sum(dead), 0) FROM order_state_months WHERE operator_code = o.code)
        + (SELECT coalesce(sum(n), 0) FROM order_state_counts
           WHERE operator_code = o.code AND state = 'dead'))::bigint AS dead,
       a.acked_24h, a.succeeded_24h, a.p50_ack_s, a.p95_ack_s,
       (SELECT count(*) FROM orders WHERE operator_code = o.code AND status = 'dead'
           AND dead_at > now() - interval '24 hours') AS dead_24h
FROM operators o
CROSS JOIN LATERAL (  -- the operator's open orders, read once for the four counts
    SELECT count(*) FILTER (WHERE status = 'queued') AS queued,
           count(*) FILTER (WHERE status = 'in_flight') AS in_flight,
           count(*) FILTER (WHERE status = 'sent') AS awaiting_ack,
           count(*) FILTER (WHERE order_overdue(status, due_at, ack_due_at, overdue_at))
               AS overdue
    FROM orders WHERE operator_code = o.code AND status IN ('queued', 'in_flight', 'sent')
) q
LEFT JOIN LATERAL (
    SELECT count(*) AS acked_24h,
           count(*) FILTER (WHERE ack_status IN ('blocked', 'unblocked', 'already_blocked',
                                                 'not_subscriber', 'disconnected', 'retained'))
               AS succeeded_24h,
           percentile_cont(0.5) WITHIN GROUP (
               ORDER BY extract(epoch FROM acked_at - coalesce(first_sent_at, created_at)))
               AS p50_ack_s,
           percentile_cont(0.95) WITHIN GROUP (
               ORDER BY extract(epoch FROM acked_at - coalesce(first_sent_at, created_at)))
               AS p95_ack_s
    FROM orders WHERE operator_code = o.code AND status = 'acked'
      AND acked_at > now() - interval '24 hours'
) a ON true
WHERE o.code = $1;

-- name: orders_overdue_list
SELECT id, target_id, operator_code, action, status, attempts, created_at, first_sent_at,
       sent_at, acked_at, ack_status, ack_reason, operator_ref, dead_at, last_error, request_id,
       kind, value, ack_due_at, overdue_at, seq
FROM orders
WHERE status IN ('queued', 'in_flight', 'sent') AND order_overdue(status, due_at, ack_due_at, overdue_at)
  AND ($1::text IS NULL OR operator_code = $1) AND ($2::bigint IS NULL OR id > $2)
ORDER BY id LIMIT $3;

-- name: orders_dead_list
SELECT id, target_id, operator_code, action, status, attempts, created_at, first_sent_at,
       sent_at, acked_at, ack_status, ack_reason, operator_ref, dead_at, last_error, request_id,
       kind, value, ack_due_at, overdue_at, seq
FROM orders WHERE status = 'dead'
  AND ($1::text IS NULL OR operator_code = $1) AND ($2::bigint IS NULL OR id > $2)
ORDER BY id LIMIT $3;

-- name: audit_page
-- plan: custom
-- Oldest first by the entry's time, then id, along an index ending in (at, id) (sql/0031);
-- $7, the last id seen, stands for its (at, id). Planned for the filters given.
SELECT id, at, actor, role, action, entity_type, entity_id, details, chain,
       encode(prev_hash, 'hex') AS prev_hash, encode(hash, 'hex') AS hash
FROM audit_log
WHERE ($1::text IS NULL OR action = $1) AND ($2::text IS NULL OR entity_type = $2)
  AND ($3::text IS NULL OR entity_id = $3) AND ($4::text IS NULL OR actor = $4)
  AND ($5::timestamptz IS NULL OR at >= $5) AND ($6::timestamptz IS NULL OR at < $6)
  AND ($7::bigint IS NULL OR (at, id) > (SELECT a.at, a.id FROM audit_log a WHERE a.id = $7))
  AND ($9::text[] IS NULL OR entity_type = ANY($9))
ORDER BY at, id LIMIT $8;

-- name: orders_requeue_dead_matching
-- Up to $5 dead orders, oldest first, back in the queue as order_requeue_dead puts one: of
-- operator $1, dead in [$2, $3), their last error containing $4 (any case); a null filter
-- matches all. A superseded order stays dead. Orders being changed right now are skipped.
-- Each row says whether more such orders remain (`more`).
WITH picked AS (
    SELECT o.id FROM orders o
    WHERE o.status = 'dead'
      AND ($1::text IS NULL OR o.operator_code = $1)
      AND ($2::timestamptz IS NULL OR o.dead_at >= $2)
      AND ($3::timestamptz IS NULL OR o.dead_at < $3)
      AND ($4::text IS NULL OR strpos(lower(o.last_error), lower($4)) > 0)
      AND NOT order_superseded(o.target_id, o.operator_code, o.seq)
    ORDER BY o.id LIMIT $5::int + 1
    FOR UPDATE OF o SKIP LOCKED
), requeued AS (
    UPDATE orders o SET status = 'queued', next_attempt_at = now(), retry_from = now(),
           dead_at = NULL, overdue_at = NULL, due_at = now() + make_interval(secs => CASE
               WHEN o.urgent THEN p.urgent_ack_deadline_s ELSE p.ack_deadline_s END)
    FROM operators p
    WHERE o.id = ANY(ARRAY(SELECT id FROM picked ORDER BY id LIMIT $5::int))
      AND p.code = o.operator_code
    RETURNING o.id, o.target_id, o.request_id, o.operator_code
)
SELECT id, target_id, request_id, operator_code, (SELECT count(*) FROM picked) > $5::int AS more
FROM requeued ORDER BY id;

-- name: request_links_reopen_each
-- $1: JSON [{request_id, target_id}] of request links to open again (their orders re-queued).
UPDATE request_targets rt SET done = false
FROM json_to_recordset($1::json) AS u(request_id bigint, target_id bigint)
WHERE rt.request_id = u.request_id AND rt.target_id = u.target_id AND rt.done;

-- cases, money and the zone report --
-- A money entry locks its case row first (nothing before it), then the audit chain head; a
-- filing never waits on a case row (sql/0007: cases are created with ON CONFLICT DO NOTHING).

-- name: category_list
SELECT code, label, created_at FROM categories ORDER BY code;

-- name: category_add
INSERT INTO categories (code, label) VALUES ($1, $2)
ON CONFLICT (code) DO NOTHING RETURNING code, label, created_at;

-- name: case_list
-- plan: custom
-- A page of cases newest first by creation time, then id (sql/0030, as request_list); $8: the
-- last id seen, standing for its (created_at, id).
SELECT c.id, c.unit_code, c.case_ref, c.category, c.police_station, c.fir_date, c.ncrp_ack,
       c.loss_paise, c.held_paise, c.released_paise, c.refunded_paise, c.created_at,
       c.updated_at,
       (SELECT count(*) FROM block_requests r
        WHERE r.case_ref = c.case_ref AND r.unit_code = c.unit_code) AS requests
FROM cases c
WHERE ($1::text IS NULL OR c.unit_code = $1)
  AND ($2::text IS NULL OR c.category = $2)
  AND ($3::text IS NULL OR starts_with(c.case_ref, $3))
  AND ($4::text IS NULL OR c.police_station ILIKE '%' || $4 || '%')
  AND ($5::timestamptz IS NULL OR c.created_at >= $5)
  AND ($6::timestamptz IS NULL OR c.created_at < $6)
  AND ($7::boolean IS NULL OR (c.held_paise - c.released_paise - c.refunded_paise > 0) = $7)
  AND ($8::bigint IS NULL
       OR (c.created_at, c.id) < (SELECT a.created_at, a.id FROM cases a WHERE a.id = $8))
ORDER BY c.created_at DESC, c.id DESC LIMIT $9;

-- name: case_get
SELECT id, unit_code, case_ref, category, police_station, fir_date, ncrp_ack, loss_paise,
       held_paise, released_paise, refunded_paise, created_at, updated_at
FROM cases WHERE unit_code = $1 AND case_ref = $2;

-- name: case_set_fir
-- Create the case or set its FIR details; a null leaves a detail as it was.
INSERT INTO cases (unit_code, case_ref, police_station, fir_date, ncrp_ack, loss_paise)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (unit_code, case_ref) DO UPDATE SET
    police_station = coalesce(EXCLUDED.police_station, cases.police_station),
    fir_date = coalesce(EXCLUDED.fir_date, cases.fir_date),
    ncrp_ack = coalesce(EXCLUDED.ncrp_ack, cases.ncrp_ack),
    loss_paise = coalesce(EXCLUDED.loss_paise, cases.loss_paise),
    updated_at = now()
RETURNING id, unit_code, case_ref, category, police_station, fir_date, ncrp_ack, loss_paise,
          held_paise, released_paise, refunded_paise, created_at, updated_at,
          (xmax = 0) AS created;

-- name: case_targets
-- Every target the case's requests named, with its current state.
SELECT DISTINCT ON (t.id) t.id, t.kind, t.value, t.state, t.action, t.state_changed_at
FROM block_requests r JOIN request_targets rt ON rt.request_id = r.id
JOIN targets t ON t.id = rt.target_id
WHERE r.unit_code = $1 AND r.case_ref = $2
ORDER BY t.id;

-- name: case_requests
SELECT id, unit_code, case_ref, category, action, priority, status, target_count, created_at,
       updated_at, decided_at
FROM block_requests WHERE unit_code = $1 AND case_ref = $2 ORDER BY id;

-- name: case_audit
SELECT id, at, actor, role, action, details FROM audit_log
WHERE entity_type = 'case' AND entity_id = $1 ORDER BY id;

-- name: case_lock
-- The case row, locked for a money entry; `count_category`: the category its money counts under
-- (its first block request's; 'other' for a case with none).
SELECT c.held_paise, c.released_paise, c.refunded_paise,
       coalesce(c.category, (SELECT r.category FROM block_requests r
                             WHERE r.case_ref = c.case_ref AND r.unit_code = c.unit_code
                             ORDER BY r.id LIMIT 1), 'other') AS count_category
FROM cases c WHERE c.unit_code = $1 AND c.case_ref = $2
FOR UPDATE OF c;

-- name: money_entry_get
SELECT e.id, e.unit_code, e.case_ref, e.kind, e.amount_paise, e.bank, e.account_ref,
       e.category, e.reverses,
       (SELECT x.id FROM money_entries x WHERE x.reverses = e.id) AS reversed_by
FROM money_entries e WHERE e.id = $1;

-- name: money_entry_insert
-- The case's totals and the counters follow by trigger (sql/0007, money_entries_apply).
INSERT INTO money_entries (unit_code, case_ref, kind, amount_paise, bank, account_ref,
                           entry_date, note, reverses, category, created_by)
VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, report_day(now())), $8, $9, $10, $11)
RETURNING id, kind, amount_paise, bank, account_ref, entry_date, note, reverses, created_at;

-- name: money_entries_of
SELECT e.id, e.kind, e.amount_paise, e.bank, e.account_ref, e.entry_date, e.note, e.reverses,
       e.created_at, (SELECT x.id FROM money_entries x WHERE x.reverses = e.id) AS reversed_by
FROM money_entries e WHERE e.unit_code = $1 AND e.case_ref = $2 ORDER BY e.id;

-- name: stats_money
-- Money by the stats dimensions it has (unit, category, period), in [$1, $2).
SELECT CASE WHEN $3 THEN unit_code END AS unit,
       CASE WHEN $4 THEN category END AS category,
       period_start($5, day) AS period,
       kind, sum(amount)::bigint AS amount
FROM money_counts
WHERE ($1::date IS NULL OR day >= $1) AND ($2::date IS NULL OR day < $2)
  AND ($6::text IS NULL OR unit_code = $6)
  AND ($7::text IS NULL OR unit_code IN (SELECT code FROM units WHERE kind = $7))
GROUP BY 1, 2, 3, 4 HAVING sum(amount) <> 0;

-- name: money_counts_compact
-- Fold money counter deltas together (under counts_compact_lock); sums are unchanged.
WITH m AS (DELETE FROM money_counts RETURNING *),
     mi AS (INSERT INTO money_counts
            SELECT unit_code, category, day, kind, sum(amount), sum(entries) FROM m
            GROUP BY 1, 2, 3, 4 HAVING sum(amount) <> 0 OR sum(entries) <> 0 RETURNING 1)
SELECT (SELECT count(*) FROM m) AS folded, (SELECT count(*) FROM mi) AS kept;

-- name: report_zone_get
SELECT zone FROM report_zone;

-- name: sla_orders
-- Operator $4's acknowledgements against their deadlines, per period ($3: day, week, month or
-- null), for days [$1, $2) of the zone, as (outcome, time-to-ack bucket, n): orders answered
-- then (in_time or late by their deadline `due_at`) and orders dead then, from the counters
-- (sql/0018), and orders still unanswered whose deadline passed then (open), live. One
-- operator a statement, so the operators' open backlogs are read side by side.
WITH bounds AS (
    SELECT coalesce($1::date::timestamp AT TIME ZONE z.zone, '-infinity') AS lo,
           coalesce($2::date::timestamp AT TIME ZONE z.zone, 'infinity') AS hi
    FROM report_zone z
)
SELECT operator,
       period_start($3, day) AS period,
       outcome, bucket, sum(n)::bigint AS n
FROM (
    SELECT operator_code AS operator, day, outcome, bucket, n FROM ack_time_counts
    WHERE operator_code = $4
      AND ($1::date IS NULL OR day >= $1) AND ($2::date IS NULL OR day < $2)
    UNION ALL
    SELECT o.operator_code, report_day(o.due_at), 'open', -1, 1
    FROM orders o CROSS JOIN bounds b
    WHERE o.operator_code = $4 AND o.status IN ('queued', 'in_flight', 'sent')
      AND o.due_at < now() AND o.due_at >= b.lo AND o.due_at < b.hi
) x
GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0 ORDER BY 1, 2;

-- name: grievance_open
-- $1 target, $2 operator, $3 subscriber reference, $4 reason, $5 seconds to decide; the cases
-- holding the target ($6: JSON [{unit, case_ref}]) each get a decision to make.
WITH g AS (
    INSERT INTO grievances (target_id, operator_code, subscriber_ref, reason, due_at)
    VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
    RETURNING id, due_at, created_at
), c AS (
    INSERT INTO grievance_cases (grievance_id, unit_code, case_ref)
    SELECT g.id, u.unit, u.case_ref
    FROM g, json_to_recordset($6::json) AS u(unit text, case_ref text)
)
SELECT id, due_at, created_at FROM g;

-- name: grievance_decide_case
-- One holding case decides; the grievance closes once every case has.
WITH decided AS (
    UPDATE grievance_cases SET decision = $4, reason = $5, decided_by = $6, decided_at = now(),
           unblock_request_id = $7
    WHERE grievance_id = $1 AND unit_code = $2 AND case_ref = $3 AND decision = 'pending'
    RETURNING grievance_id
), tally AS (
    SELECT count(*) FILTER (WHERE c.decision = 'pending'
                            AND NOT (c.unit_code = $2 AND c.case_ref = $3)) AS pending,
           count(*) FILTER (WHERE c.decision = 'upheld'
                            OR (c.unit_code = $2 AND c.case_ref = $3 AND $4 = 'upheld')) AS upheld,
           count(*) AS cases
    FROM grievance_cases c WHERE c.grievance_id = $1
)
UPDATE grievances g SET
    status = CASE WHEN t.pending > 0 THEN 'open'
                  WHEN t.upheld = t.cases THEN 'upheld'
                  WHEN t.upheld = 0 THEN 'dismissed'
                  ELSE 'partially_upheld' END,
    closed_at = CASE WHEN t.pending > 0 THEN NULL ELSE now() END
FROM tally t
WHERE g.id = $1 AND EXISTS (SELECT 1 FROM decided)
RETURNING g.status;

-- name: grievance_list
-- $1 unit (an investigator's: grievances with a case of that unit), $2 operator, $3 status,
-- $4 overdue only, $5 cursor, $6 limit, $7 one grievance by id.
SELECT g.id, g.target_id, g.operator_code, g.subscriber_ref, g.reason, g.status, g.due_at,
       g.created_at, g.closed_at, t.kind, t.value,
       (SELECT json_agg(json_build_object(
            'unit', c.unit_code, 'case_ref', c.case_ref, 'decision', c.decision,
            'reason', c.reason, 'decided_at', c.decided_at,
            'unblock_request_id', c.unblock_request_id) ORDER BY c.unit_code, c.case_ref)
        FROM grievance_cases c WHERE c.grievance_id = g.id) AS cases
FROM grievances g JOIN targets t ON t.id = g.target_id
WHERE ($1::text IS NULL OR EXISTS (SELECT 1 FROM grievance_cases c
                                   WHERE c.grievance_id = g.id AND c.unit_code = $1))
  AND ($2::text IS NULL OR g.operator_code = $2)
  AND ($3::text IS NULL OR g.status = $3)
  AND (NOT $4::bool OR (g.status = 'open' AND g.due_at < now()))
  AND ($5::bigint IS NULL OR g.id < $5)
  AND ($7::bigint IS NULL OR g.id = $7)
ORDER BY g.id DESC LIMIT $6;

-- name: case_category
SELECT coalesce((SELECT category FROM cases WHERE unit_code = $1 AND case_ref = $2), 'other');

-- console --

-- name: console_session_open
-- $1 session id hash, $2 token id, $3 CSRF token, $4 lifetime in seconds. Expired rows go too.
WITH gone AS (DELETE FROM console_sessions WHERE expires_at < now() - interval '1 day')
INSERT INTO console_sessions (id_hash, token_id, csrf, expires_at)
VALUES ($1, $2, $3, now() + make_interval(secs => $4));

-- name: console_session_principal
-- The session's token, only while the session is unexpired and the token unrevoked (the same
-- columns as token_by_hash).
SELECT t.id, t.name, t.role, t.unit_code, t.operator_code, s.csrf
FROM console_sessions s JOIN tokens t ON t.id = s.token_id
WHERE s.id_hash = $1 AND s.expires_at > now() AND t.revoked_at IS NULL;

-- name: console_session_close
DELETE FROM console_sessions WHERE id_hash = $1;

-- name: console_request_timeline
-- Attempts and acknowledgements of the orders of request $1's targets, newest first.
SELECT o.id AS order_id, o.operator_code, o.action, o.kind, o.value, a.attempt_no,
       a.finished_at AS at, a.outcome AS event, a.error AS detail
FROM request_targets rt
JOIN orders o ON o.target_id = rt.target_id
JOIN attempts a ON a.order_id = o.id
WHERE rt.request_id = $1
UNION ALL
SELECT o.id, o.operator_code, o.action, o.kind, o.value, NULL, o.acked_at,
       'ack: ' || o.ack_status, coalesce(o.ack_reason, o.operator_ref)
FROM request_targets rt
JOIN orders o ON o.target_id = rt.target_id
WHERE rt.request_id = $1 AND o.acked_at IS NOT NULL
ORDER BY at DESC, order_id DESC LIMIT $2;

-- name: console_operator_orders
-- The orders operator $1 can answer now: sent or being sent, or queued and next in line for
-- their (target, operator) pair (the rule orders_pull applies).
SELECT id, action, kind, value, urgent, status, attempts, seq, created_at, sent_at, ack_due_at,
       order_overdue(status, due_at, ack_due_at, overdue_at) AS overdue
FROM orders
WHERE operator_code = $1
  AND (status IN ('in_flight', 'sent')
       OR (status = 'queued' AND order_may_go(target_id, operator_code, id, seq)))
ORDER BY urgent DESC, id LIMIT $2;

-- name: metrics_orders
-- Orders by operator and counted state, from the counters (no scan of orders).
SELECT operator_code, state, sum(n)::bigint AS n
FROM counted_order_states GROUP BY operator_code, state HAVING sum(n) <> 0
ORDER BY operator_code, state;

-- name: metrics_operators
-- Per operator: breaker state and the age of its oldest order due for delivery.
SELECT o.code, o.breaker_state,
       coalesce(extract(epoch FROM now() - (
           SELECT min(next_attempt_at) FROM orders
           WHERE operator_code = o.code AND status = 'queued' AND next_attempt_at <= now()
       )), 0)::float8 AS oldest_due_s
FROM operators o ORDER BY o.code;
-- hardening: bad input, faults, hostile clients --

-- name: orders_ack_window
-- When each order was first sent (or made, if never), and now: an ack's `at` must fall between.
SELECT id, coalesce(first_sent_at, created_at) AS since, now() AS now
FROM orders WHERE id = ANY($1::bigint[]);

-- name: idempotency_purge
-- Forget Idempotency-Keys older than the window ($1 seconds), at most $2 a call.
WITH old AS (
    SELECT token_id, key FROM idempotency_keys
    WHERE created_at < now() - make_interval(secs => $1::float8)
    LIMIT $2
)
DELETE FROM idempotency_keys i USING old
WHERE i.token_id = old.token_id AND i.key = old.key;

-- visibility and access --

-- name: request_units
-- The unit of each request, to decide what a caller may see of its orders (service.visibility).
SELECT id, unit_code FROM block_requests WHERE id = ANY($1::bigint[]);


-- operator side: authority, staged outcomes, handset <-> SIM linkage --

-- name: orders_record_stage
-- Stages reached on the way to a block's final answer. $1: JSON [{id, stage, at}]. Each
-- (order, stage) is recorded once; an order not yet final shows its latest stage, and its
-- deadlines start again from now (the operator is working on it, and re-verification takes
-- days). The orders are locked by the caller (orders_for_ack). Returns the stages recorded now.
WITH u AS MATERIALIZED (
    SELECT * FROM json_to_recordset($1::json) AS u(id bigint, stage text, at timestamptz)
), ins AS (
    INSERT INTO order_stages (order_id, stage, at)
    SELECT id, stage, coalesce(at, now()) FROM u ORDER BY id, stage
    ON CONFLICT (order_id, stage) DO NOTHING
    RETURNING order_id, stage, at, array_position(
        ARRAY['outgoing_barred', 'incoming_barred', 'reverification_pending'], stage) AS step
), latest AS (
    SELECT DISTINCT ON (order_id) order_id, stage, at FROM ins
    ORDER BY order_id, at DESC, step DESC
), moved AS (
    UPDATE orders o SET stage = l.stage, stage_at = l.at, retry_from = now(),
           due_at = greatest(o.due_at, now() + make_interval(secs => CASE WHEN o.urgent
               THEN p.urgent_ack_deadline_s ELSE p.ack_deadline_s END)),
           ack_due_at = CASE WHEN o.status = 'sent' THEN greatest(o.ack_due_at, now()
               + make_interval(secs => CASE WHEN o.urgent THEN p.urgent_ack_deadline_s
                                            ELSE p.ack_deadline_s END))
                             ELSE o.ack_due_at END
    FROM latest l, operators p
    WHERE o.id = l.order_id AND o.id = ANY(ARRAY(SELECT order_id FROM latest))
      AND p.code = o.operator_code AND o.status IN ('queued', 'in_flight', 'sent')
      AND (o.stage_at IS NULL OR l.at >= o.stage_at)
    RETURNING o.id
)
SELECT order_id, stage, at, (SELECT count(*) FROM moved) AS moved FROM ins
ORDER BY order_id, at, step;

-- name: sightings_apply
-- An operator's sightings of numbers in handsets ($1: JSON [{n, imei, msisdn, seen_at}],
-- distinct, normalised; $2: the operator). Each new (handset, number, operator, time) is
-- stored; a number never seen before in a handset that is blocked raises an alert. One row
-- per item: whether it was new, and the alert it raised.
WITH u AS MATERIALIZED (
    SELECT * FROM json_to_recordset($1::json)
         AS u(n int, imei text, msisdn text, seen_at timestamptz)
), known AS MATERIALIZED (  -- pairs seen before this batch, by any operator
    SELECT DISTINCT s.imei, s.msisdn FROM sightings s JOIN u ON s.imei = u.imei
                                                     AND s.msisdn = u.msisdn
), ins AS (
    INSERT INTO sightings (imei, msisdn, operator_code, seen_at)
    SELECT imei, msisdn, $2, seen_at FROM u ORDER BY imei, msisdn, seen_at
    ON CONFLICT DO NOTHING
    RETURNING imei, msisdn, seen_at
), fresh AS (  -- a pair's first sighting ever: the earliest of this batch
    SELECT DISTINCT ON (i.imei, i.msisdn) i.imei, i.msisdn, i.seen_at FROM ins i
    WHERE NOT EXISTS (SELECT 1 FROM known k WHERE k.imei = i.imei AND k.msisdn = i.msisdn)
    ORDER BY i.imei, i.msisdn, i.seen_at
), raised AS (
    INSERT INTO alerts (kind, imei, msisdn, operator_code, seen_at, details)
    SELECT 'sim_in_blocked_handset', f.imei, f.msisdn, $2, f.seen_at,
           jsonb_build_object('handset_state', t.state)
    FROM fresh f JOIN targets t ON t.kind = 'imei' AND t.value = f.imei
    WHERE t.action = 'block' AND t.state IN ('blocked', 'partially_blocked')
    ORDER BY f.imei, f.msisdn
    RETURNING id, imei, msisdn, seen_at
)
SELECT u.n, i.imei IS NOT NULL AS applied, r.id AS alert_id
FROM u
LEFT JOIN ins i ON i.imei = u.imei AND i.msisdn = u.msisdn AND i.seen_at = u.seen_at
LEFT JOIN raised r ON r.imei = u.imei AND r.msisdn = u.msisdn AND r.seen_at = u.seen_at
ORDER BY u.n;

-- name: handsets_flag
-- Handsets seen with more than $2 distinct numbers in one Indian day (of those sighted now,
-- $1: JSON [{imei, seen_at}]) are flagged once, each with an alert: a possible SIM box or
-- cloned IMEI. Runs after sightings_apply, in its transaction, so it counts what that stored.
WITH days AS (
    SELECT DISTINCT u.imei, (u.seen_at AT TIME ZONE 'Asia/Kolkata')::date AS day
    FROM json_to_recordset($1::json) AS u(imei text, seen_at timestamptz)
    WHERE NOT EXISTS (SELECT 1 FROM handset_flags f WHERE f.imei = u.imei)
), counted AS (
    SELECT d.imei, d.day,
           (SELECT count(DISTINCT s.msisdn) FROM sightings s
            WHERE s.imei = d.imei
              AND s.seen_at >= d.day::timestamp AT TIME ZONE 'Asia/Kolkata'
              AND s.seen_at < (d.day + 1)::timestamp AT TIME ZONE 'Asia/Kolkata') AS numbers
    FROM days d
), flagged AS (
    INSERT INTO handset_flags (imei, day, numbers)
    SELECT DISTINCT ON (imei) imei, day, numbers FROM counted WHERE numbers > $2
    ORDER BY imei, numbers DESC, day
    ON CONFLICT (imei) DO NOTHING
    RETURNING imei, day, numbers
), raised AS (
    INSERT INTO alerts (kind, imei, details)
    SELECT 'handset_flagged', imei,
           jsonb_build_object('day', day, 'numbers', numbers, 'limit', $2::int)
    FROM flagged ORDER BY imei
    RETURNING id, imei
)
SELECT f.imei, f.day, f.numbers, r.id AS alert_id
FROM flagged f JOIN raised r ON r.imei = f.imei ORDER BY f.imei;

-- name: handset_flag_get
SELECT imei, day, numbers, flagged_at FROM handset_flags WHERE imei = $1;

-- name: linked_numbers
-- The numbers seen in a handset, per operator, with the number's state where it was named.
SELECT s.msisdn AS value, s.operator_code, min(s.seen_at) AS first_seen,
       max(s.seen_at) AS last_seen, count(*) AS sightings, t.state
FROM sightings s LEFT JOIN targets t ON t.kind = 'msisdn' AND t.value = s.msisdn
WHERE s.imei = $1
GROUP BY s.msisdn, s.operator_code, t.state
ORDER BY s.msisdn, s.operator_code;

-- name: linked_handsets
-- The handsets a number was used in, per operator, with each handset's state and flag.
SELECT s.imei AS value, s.operator_code, min(s.seen_at) AS first_seen,
       max(s.seen_at) AS last_seen, count(*) AS sightings, t.state,
       EXISTS (SELECT 1 FROM handset_flags f WHERE f.imei = s.imei) AS flagged
FROM sightings s LEFT JOIN targets t ON t.kind = 'imei' AND t.value = s.imei
WHERE s.msisdn = $1
GROUP BY s.imei, s.operator_code, t.state
ORDER BY s.imei, s.operator_code;

-- name: alerts_page
SELECT id, kind, imei, msisdn, operator_code, seen_at, details, created_at
FROM alerts
WHERE ($1::text IS NULL OR kind = $1) AND ($2::bigint IS NULL OR id > $2)
ORDER BY id LIMIT $3;

-- name: blocklist_full
-- What an operator was confirmed to block ($2: one kind, or NULL for both): its log replayed,
-- with the cursor to read changes from next (blocklist_changes).
WITH latest AS (
    SELECT DISTINCT ON (kind, value) kind, value, change FROM blocklist_log
    WHERE operator_code = $1 AND ($2::text IS NULL OR kind = $2)
    ORDER BY kind, value, id DESC
)
SELECT (SELECT coalesce(max(id), 0) FROM blocklist_log WHERE operator_code = $1) AS cursor,
       coalesce((SELECT json_agg(json_build_array(kind, value) ORDER BY kind, value)
                 FROM latest WHERE change = 'added'), '[]') AS items;

-- name: blocklist_head
-- The number of operator $1's latest blocklist change: the full list is read as of it.
SELECT coalesce(max(id), 0) FROM blocklist_log WHERE operator_code = $1;

-- name: blocklist_page
-- A page of what operator $1 was confirmed to block ($2: one kind, or NULL) as of change $3:
-- the identifiers after ($4, $5) in (kind, value) order whose latest change then was an
-- addition, at most $6 (blocklist_log_page_idx walks the keys in order and stops).
SELECT kind, value FROM (
    SELECT DISTINCT ON (kind, value) kind, value, change FROM blocklist_log
    WHERE operator_code = $1 AND ($2::text IS NULL OR kind = $2) AND id <= $3
      AND (kind, value) > ($4::text, $5::text)
    ORDER BY kind, value, id DESC
) latest
WHERE change = 'added'
ORDER BY kind, value LIMIT $6;

-- name: blocklist_changes
-- An operator's changes after cursor $2, oldest first, at most $4 ($3: one kind, or NULL).
SELECT id AS seq, kind, value, change, at FROM blocklist_log
WHERE operator_code = $1 AND id > $2 AND ($3::text IS NULL OR kind = $3)
ORDER BY id LIMIT $4;

-- name: blocklist_drop_init
INSERT INTO blocklist_drops (operator_code) VALUES ($1) ON CONFLICT DO NOTHING;

-- name: blocklist_drop_lock
-- How far an operator's blocklist files have got, held while the next file is written; none
-- when another worker is writing it.
SELECT full_on, cursor FROM blocklist_drops WHERE operator_code = $1 FOR UPDATE SKIP LOCKED;

-- name: blocklist_drop_done
UPDATE blocklist_drops SET full_on = coalesce($2, full_on), cursor = $3, updated_at = now()
WHERE operator_code = $1;

-- name: pairs_outstanding
-- Which of these identifiers have an order of this operator on its way (or awaiting approval):
-- a reconciliation leaves them alone. $2 kinds and $3 values, pairwise.
SELECT DISTINCT t.kind, t.value
FROM targets t JOIN unnest($2::text[], $3::text[]) AS u(k, v) ON t.kind = u.k AND t.value = u.v
JOIN orders o ON o.target_id = t.id AND o.operator_code = $1
WHERE o.status IN ('held', 'queued', 'in_flight', 'sent');

-- name: targets_lock_named
-- Targets by (kind, value), locked in id order (the lock order).
SELECT t.id, t.kind, t.value
FROM targets t JOIN unnest($1::text[], $2::text[]) AS u(k, v) ON t.kind = u.k AND t.value = u.v
ORDER BY t.id FOR UPDATE OF t;

-- name: orders_requeue_reconciled
-- Identifiers an operator was confirmed to block but no longer lists: where the pair's latest
-- decision is that block (pair_latest), the block goes again as a decision of its own, with
-- reason 'reconciliation'. The targets ($2) are locked by the caller.
WITH latest AS (
    SELECT * FROM pair_latest($2::bigint[])
    WHERE operator_code = $1 AND action = 'block' AND status = 'acked'
)
INSERT INTO orders (target_id, kind, value, operator_code, action, request_id, unit_code,
                    category, urgent, status, seq, due_at, reason)
SELECT l.target_id, l.kind, l.value, l.operator_code, 'block', l.request_id, l.unit_code,
       l.category, l.urgent, 'queued', nextval('order_decisions'),
       now() + make_interval(secs => CASE WHEN l.urgent THEN p.urgent_ack_deadline_s
                                          ELSE p.ack_deadline_s END), 'reconciliation'
FROM latest l JOIN operators p ON p.code = l.operator_code
ORDER BY l.target_id
RETURNING id, target_id, kind, value;

-- name: reconciliation_insert
INSERT INTO reconciliations (operator_code, kind, cursor, listed, matched, missing, unexpected,
                             in_transit, invalid, requeued, created_by)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8::jsonb, $9::jsonb, $10::bigint[], $11)
RETURNING id, created_at;

-- name: reconciliations_page
SELECT id, operator_code, kind, cursor, listed, matched, missing, unexpected, in_transit,
       invalid, requeued, created_at
FROM reconciliations
WHERE ($1::text IS NULL OR operator_code = $1) AND ($2::bigint IS NULL OR id < $2)
ORDER BY id DESC LIMIT $3;

-- name: operator_adapter_kind
SELECT adapter_kind FROM operators WHERE code = $1;

-- name: orders_unacknowledged
-- An operator's orders sent and not yet answered, without claiming them ($2: after this id).
SELECT id, action, kind, value, urgent, attempts, seq, sent_at, ack_due_at, request_id,
       reason, stage, stage_at
FROM orders
WHERE operator_code = $1 AND status = 'sent' AND ($2::bigint IS NULL OR id > $2)
ORDER BY id LIMIT $3;

-- name: targets_retire
-- Numbers re-allocated or permanently disconnected ($1: JSON [{value, event, at}], distinct):
-- their current targets, locked in id order, keep their history under a value of their own.
WITH u AS (
    SELECT * FROM json_to_recordset($1::json) AS u(value text, event text, at timestamptz)
), locked AS MATERIALIZED (
    SELECT t.id FROM targets t JOIN u ON t.kind = 'msisdn' AND t.value = u.value
    ORDER BY t.id FOR UPDATE OF t
)
UPDATE targets t SET retired_value = t.value, value = t.value || '~retired-' || t.id,
       retired_at = u.at, retired_as = u.event, updated_at = now()
FROM u
WHERE t.id = ANY(ARRAY(SELECT id FROM locked)) AND t.kind = 'msisdn' AND t.value = u.value
RETURNING t.id, u.value;

-- name: orders_cancel_retired
-- A retired number's orders not yet sent are cancelled: the number is someone else's now.
UPDATE orders SET status = 'cancelled', leased_by = NULL, lease_expires_at = NULL,
       last_error = 'number retired: ' || $2
WHERE target_id = ANY($1::bigint[]) AND status IN ('held', 'queued')
RETURNING id, target_id;

-- name: request_links_retire
-- A retired target holds nothing any more; its requests count it as settled.
UPDATE request_targets SET holds = false, done = true
WHERE target_id = ANY($1::bigint[]) AND (holds OR NOT done)
RETURNING request_id;

-- name: routes_forget
DELETE FROM msisdn_routes WHERE msisdn = ANY($1::text[]);

-- name: blocklist_retire
-- No operator is expected to block a retired number any more: each that was gets a `removed`
-- change (under every operator's blocklist lock, in code order: changes stay commit-ordered).
WITH locks AS MATERIALIZED (
    SELECT count(pg_advisory_xact_lock(hashtextextended('blocklist:' || code, 0)))
    FROM (SELECT code FROM operators ORDER BY code) o
), last AS (
    SELECT DISTINCT ON (operator_code, value) operator_code, kind, value, change, order_id
    FROM blocklist_log
    WHERE kind = 'msisdn' AND value = ANY($1::text[]) AND (SELECT * FROM locks) >= 0
    ORDER BY operator_code, value, id DESC
)
INSERT INTO blocklist_log (operator_code, kind, value, change, order_id)
SELECT operator_code, kind, value, 'removed', order_id FROM last
WHERE change = 'added' ORDER BY operator_code, value;

-- name: targets_retired_of
-- The earlier lives of a number, newest first.
SELECT id, kind, retired_value AS value, state, action, state_changed_at, created_at,
       retired_at, retired_as
FROM targets WHERE kind = $1 AND retired_value = $2
ORDER BY retired_at DESC, id DESC;

-- name: escalation_endpoint_insert
INSERT INTO escalation_endpoints (url, secret, event_types, description, created_by)
VALUES ($1, $2, $3::text[], $4, $5)
RETURNING id, url, event_types, description, active, created_at, disabled_at;

-- name: escalation_endpoint_list
-- Every endpoint with how many of its deliveries are in each state, newest first.
SELECT p.id, p.url, p.event_types, p.description, p.active, p.created_at, p.disabled_at,
       count(d.id) FILTER (WHERE d.status IN ('queued', 'in_flight')) AS pending,
       count(d.id) FILTER (WHERE d.status = 'delivered') AS delivered,
       count(d.id) FILTER (WHERE d.status = 'dead') AS dead,
       (SELECT d2.last_error FROM escalation_deliveries d2
        WHERE d2.endpoint_id = p.id AND d2.last_error IS NOT NULL
        ORDER BY d2.id DESC LIMIT 1) AS last_error
FROM escalation_endpoints p LEFT JOIN escalation_deliveries d ON d.endpoint_id = p.id
GROUP BY p.id ORDER BY p.id DESC;

-- name: escalation_endpoint_get
SELECT id, url, event_types, description, active, created_at, disabled_at
FROM escalation_endpoints WHERE id = $1;

-- name: escalation_endpoint_disable
-- Stop sending to an endpoint: it gets no new events, and its queued deliveries are cancelled
-- (one in a worker's hands finishes).
WITH disabled AS (
    UPDATE escalation_endpoints SET active = false, disabled_at = now()
    WHERE id = $1 AND active
    RETURNING id, url, event_types, description, active, created_at, disabled_at
), cancelled AS (
    UPDATE escalation_deliveries SET status = 'cancelled', last_error = 'endpoint disabled'
    WHERE endpoint_id = (SELECT id FROM disabled) AND status = 'queued'
    RETURNING id
)
SELECT d.*, (SELECT count(*) FROM cancelled) AS cancelled FROM disabled d;

-- name: escalation_deliveries_page
-- An endpoint's deliveries, newest first ($2: one status, $3: before this id).
SELECT d.id, d.event_id, e.type, d.status, d.attempts, d.next_attempt_at, d.last_error,
       d.last_http_status, d.created_at, d.delivered_at, d.dead_at
FROM escalation_deliveries d JOIN escalation_events e ON e.id = d.event_id
WHERE d.endpoint_id = $1 AND ($2::text IS NULL OR d.status = $2)
  AND ($3::bigint IS NULL OR d.id < $3)
ORDER BY d.id DESC LIMIT $4;

-- name: escalation_raise
-- Raise events of type $1, one per document of $2 (a JSON array): escalation_raise, sql/0019.
SELECT escalation_raise($1, $2::json::jsonb);

-- name: escalations_raise_overdue_orders
-- Orders that became overdue (order_overdue, sql/0006) and were not raised yet: each raises
-- `order.overdue` once. At most $1 per call; nothing is read while nobody subscribed (a new
-- subscriber hears of the orders overdue at the time).
WITH due AS (
    SELECT o.id, o.request_id, o.operator_code, o.action, o.kind, o.status, o.attempts,
           o.created_at, o.due_at, o.ack_due_at
    FROM orders o
    WHERE o.status IN ('queued', 'in_flight', 'sent')
      AND order_overdue(o.status, o.due_at, o.ack_due_at, o.overdue_at)
      AND NOT EXISTS (SELECT 1 FROM escalations_raised r
                      WHERE r.type = 'order.overdue' AND r.subject_id = o.id)
      AND EXISTS (SELECT 1 FROM escalation_endpoints
                  WHERE active AND 'order.overdue' = ANY(event_types))
    ORDER BY o.id LIMIT $1
), marked AS (
    INSERT INTO escalations_raised (type, subject_id)
    SELECT 'order.overdue', id FROM due ORDER BY id
    ON CONFLICT DO NOTHING
    RETURNING subject_id
)
SELECT count(*) AS raised, escalation_raise('order.overdue', coalesce(jsonb_agg(
           jsonb_build_object('order_id', d.id, 'request_id', d.request_id,
                              'operator', d.operator_code, 'action', d.action, 'kind', d.kind,
                              'status', d.status, 'attempts', d.attempts,
                              'created_at', escalation_time(d.created_at),
                              'due_at', escalation_time(d.due_at),
                              'ack_due_at', escalation_time(d.ack_due_at))
           ORDER BY d.id), '[]'::jsonb)) AS events
FROM due d JOIN marked m ON m.subject_id = d.id;

-- name: escalations_raise_overdue_grievances
-- Open grievances past their decision deadline not raised yet: each raises `grievance.overdue`
-- once. At most $1 per call, and only while someone subscribed.
WITH due AS (
    SELECT g.id, g.operator_code, g.due_at, g.created_at, t.kind,
           (SELECT count(*) FROM grievance_cases c
            WHERE c.grievance_id = g.id AND c.decision = 'pending') AS undecided
    FROM grievances g JOIN targets t ON t.id = g.target_id
    WHERE g.status = 'open' AND g.due_at < now()
      AND NOT EXISTS (SELECT 1 FROM escalations_raised r
                      WHERE r.type = 'grievance.overdue' AND r.subject_id = g.id)
      AND EXISTS (SELECT 1 FROM escalation_endpoints
                  WHERE active AND 'grievance.overdue' = ANY(event_types))
    ORDER BY g.id LIMIT $1
), marked AS (
    INSERT INTO escalations_raised (type, subject_id)
    SELECT 'grievance.overdue', id FROM due ORDER BY id
    ON CONFLICT DO NOTHING
    RETURNING subject_id
)
SELECT count(*) AS raised, escalation_raise('grievance.overdue', coalesce(jsonb_agg(
           jsonb_build_object('grievance_id', d.id, 'operator', d.operator_code,
                              'kind', d.kind,
                              'created_at', escalation_time(d.created_at),
                              'due_at', escalation_time(d.due_at), 'undecided_cases', d.undecided)
           ORDER BY d.id), '[]'::jsonb)) AS events
FROM due d JOIN marked m ON m.subject_id = d.id;

-- name: escalation_deliveries_claim
-- Up to $1 due deliveries, leased to worker $3 for $2 seconds, with their event and endpoint.
WITH claimed AS (
    UPDATE escalation_deliveries d SET status = 'in_flight', leased_by = $3,
           lease_expires_at = now() + make_interval(secs => $2::double precision)
    WHERE d.id IN (SELECT id FROM escalation_deliveries
                   WHERE status = 'queued' AND next_attempt_at <= now()
                   ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED)
    RETURNING d.id, d.event_id, d.endpoint_id, d.attempts, d.created_at
)
SELECT c.id, c.attempts, c.created_at, e.type, e.data, e.created_at AS occurred_at,
       p.url, p.secret
FROM claimed c JOIN escalation_events e ON e.id = c.event_id
JOIN escalation_endpoints p ON p.id = c.endpoint_id
ORDER BY c.id;

-- name: escalation_deliveries_record
-- What became of claimed deliveries ($1: JSON [{id, status, next_attempt_at, error,
-- http_status}]; status 'delivered', 'queued' (again later) or 'dead'), for worker $2.
UPDATE escalation_deliveries d SET status = u.status, attempts = d.attempts + 1,
       next_attempt_at = coalesce(u.next_attempt_at, d.next_attempt_at),
       last_error = u.error, last_http_status = u.http_status,
       lease_expires_at = NULL, leased_by = NULL,
       delivered_at = CASE WHEN u.status = 'delivered' THEN now() END,
       dead_at = CASE WHEN u.status = 'dead' THEN now() END
FROM json_to_recordset($1::json) AS u(id bigint, status text, next_attempt_at timestamptz,
                                       error text, http_status int)
WHERE d.id = u.id AND d.status = 'in_flight' AND d.leased_by = $2
RETURNING d.id, d.status;

-- name: escalation_deliveries_reap
-- Deliveries whose worker stopped before recording them go back to the queue.
UPDATE escalation_deliveries SET status = 'queued', next_attempt_at = now(),
       lease_expires_at = NULL, leased_by = NULL,
       last_error = 'lease expired: worker ' || coalesce(leased_by, '?') || ' stopped'
WHERE id IN (SELECT id FROM escalation_deliveries
             WHERE status = 'in_flight' AND lease_expires_at < now()
             ORDER BY id LIMIT 1000 FOR UPDATE SKIP LOCKED)
RETURNING id;

-- name: escalation_deliveries_release
-- A stopping worker gives back the deliveries it holds and did not record.
UPDATE escalation_deliveries SET status = 'queued', lease_expires_at = NULL, leased_by = NULL
WHERE id = ANY($1::bigint[]) AND status = 'in_flight' AND leased_by = $2;
