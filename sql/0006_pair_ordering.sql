-- The block/unblock lifecycle per (target, operator).
--
-- Every decision (a filing without approval, or an approval) takes a number from one sequence;
-- its orders carry it as `seq`. For each (target, operator) the order with the highest `seq`
-- that was decided and not taken back is the pair's latest decision; an operator receives the
-- pair's orders in `seq` order, one outstanding at a time (service/queries.sql, orders_claim).
-- Held orders (awaiting approval) have no `seq` yet.
--
-- A newer decision withdraws the pair's unsent older orders (status 'withdrawn', `withdrawn_by`
-- names the request whose decision did it, so cancelling that request can restore them).
-- An unblock releases a case's hold only when it takes effect; `released_by` names the unblock
-- request that released a hold, for the same reason.

CREATE SEQUENCE order_decisions;
SELECT setval('order_decisions', greatest((SELECT max(id) FROM orders), 1));

ALTER TABLE orders ADD COLUMN seq bigint;
ALTER TABLE orders ADD COLUMN withdrawn_by bigint;
UPDATE orders SET seq = id WHERE status <> 'held';
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check CHECK (
    status IN ('held', 'queued', 'in_flight', 'sent', 'acked', 'dead', 'cancelled', 'withdrawn'));
-- every order that is not final has a deadline; the overdue list reads it
UPDATE orders o SET due_at = coalesce(o.retry_from, o.created_at) + make_interval(
        secs => CASE WHEN o.urgent THEN p.urgent_ack_deadline_s ELSE p.ack_deadline_s END)
FROM operators p WHERE p.code = o.operator_code AND o.due_at IS NULL
  AND o.status IN ('queued', 'in_flight', 'sent');
CREATE INDEX orders_due_idx ON orders (due_at) WHERE status IN ('queued', 'in_flight', 'sent');
-- the upkeep's search for orders past their maximum age (orders_expiring)
CREATE INDEX orders_age_idx ON orders ((coalesce(retry_from, created_at)))
    WHERE status IN ('queued', 'sent');

ALTER TABLE request_targets ADD COLUMN released_by bigint;

-- Whether an order has been superseded: its pair has a newer decision still in force.
CREATE FUNCTION order_superseded(p_target bigint, p_operator text, p_seq bigint)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT p_seq IS NOT NULL AND EXISTS (
        SELECT 1 FROM orders n
        WHERE n.target_id = p_target AND n.operator_code = p_operator AND n.seq > p_seq
          AND n.status NOT IN ('held', 'cancelled', 'withdrawn'))
$$;

-- Whether an order may go to its operator now: it is its pair's latest decision and no other
-- order of the pair is outstanding (in flight, or sent and not yet answered).
CREATE FUNCTION order_may_go(p_target bigint, p_operator text, p_id bigint, p_seq bigint)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT NOT EXISTS (
        SELECT 1 FROM orders n
        WHERE n.target_id = p_target AND n.operator_code = p_operator AND n.id <> p_id
          AND (n.status IN ('in_flight', 'sent')
               OR (n.seq > p_seq AND n.status NOT IN ('held', 'cancelled', 'withdrawn'))))
$$;

-- Whether a settled target counts against a request that named it (partially completed).
-- `held`: an unblock that released its own case's hold while others still hold the target;
-- `not_blocked`, `already_unblocked`: nothing was left to undo. Neither is a failure.
CREATE FUNCTION link_failed(request_action text, outcome text, state text)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT outcome NOT IN ('held', 'not_blocked', 'already_unblocked')
       AND CASE WHEN request_action = 'unblock' THEN state <> 'unblocked'
                ELSE state IN ('partially_blocked', 'rejected', 'dead', 'unroutable',
                               'cancelled') END
$$;

-- A request's status from its counters; decided statuses stay as they are.
CREATE FUNCTION request_status(status text, open_targets integer, failed_targets integer)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN status NOT IN ('dispatching', 'completed', 'partially_completed') THEN status
        WHEN open_targets > 0 THEN 'dispatching'
        WHEN failed_targets > 0 THEN 'partially_completed'
        ELSE 'completed'
    END
$$;

-- An unblock awaiting approval has decided nothing yet: its targets wait with this outcome.
ALTER TABLE request_targets DROP CONSTRAINT request_targets_outcome_check;
ALTER TABLE request_targets ADD CONSTRAINT request_targets_outcome_check CHECK (
    outcome IN ('queued', 'in_progress', 'already_blocked', 'already_unblocked', 'held',
                'not_blocked', 'unroutable', 'awaiting_approval'));

-- Each pair's latest decision: the one order every reader of "what this operator was last
-- told to do" goes through (settling, planning an unblock, the views).
CREATE FUNCTION pair_latest(target_ids bigint[]) RETURNS SETOF orders
LANGUAGE sql STABLE AS $$
    SELECT DISTINCT ON (target_id, operator_code) *
    FROM orders
    WHERE target_id = ANY(target_ids) AND status NOT IN ('held', 'cancelled', 'withdrawn')
    ORDER BY target_id, operator_code, seq DESC, id DESC
$$;

-- Whether an order that is not final is late: past its deadline, or sent and unanswered past
-- its acknowledgement deadline (once, and then until it ends: overdue_at).
CREATE FUNCTION order_overdue(status text, due_at timestamptz, ack_due_at timestamptz,
                              overdue_at timestamptz)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT status IN ('queued', 'in_flight', 'sent')
       AND (due_at < now() OR overdue_at IS NOT NULL
            OR (status = 'sent' AND ack_due_at < now()))
$$;

-- The one way an acknowledgement lands on its order, for the ack API (worker NULL) and for a
-- worker recording an operator's synchronous answers (only orders it holds in flight).
-- $answers: JSON [{id, status, reason, ref, at, attempts}]. Returns the orders acknowledged.
CREATE FUNCTION orders_ack(answers json, worker text) RETURNS SETOF bigint
LANGUAGE sql VOLATILE AS $$
    WITH u AS MATERIALIZED (
        SELECT * FROM json_to_recordset(answers) AS u(id bigint, status text, reason text,
                                                      ref text, at timestamptz, attempts int)
    )
    UPDATE orders o SET status = 'acked', ack_status = u.status, ack_reason = u.reason,
           operator_ref = coalesce(u.ref, o.operator_ref), acked_at = coalesce(u.at, now()),
           first_sent_at = coalesce(o.first_sent_at, now()), sent_at = coalesce(o.sent_at, now()),
           attempts = coalesce(u.attempts, o.attempts), lease_expires_at = NULL, leased_by = NULL
    FROM u
    WHERE o.id = u.id AND o.id = ANY(ARRAY(SELECT id FROM u))
      AND o.status IN ('queued', 'in_flight', 'sent', 'dead')
      AND (worker IS NULL OR (o.status = 'in_flight' AND o.leased_by = worker))
    RETURNING o.id
$$;
