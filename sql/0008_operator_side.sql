-- The operator side of blocking: the authority orders carry, staged outcomes, and which SIMs
-- were seen in which handsets.

-- Orders carry their authority: the officer behind a token (name and rank), so an operator's
-- compliance team sees who filed or approved what it is told to do.
ALTER TABLE tokens ADD COLUMN officer_name text CHECK (length(officer_name) BETWEEN 1 AND 200);
ALTER TABLE tokens ADD COLUMN officer_rank text CHECK (officer_rank IN (
    'Constable', 'Head Constable', 'ASI', 'SI', 'Inspector', 'DSP', 'SP', 'SSP', 'DIG', 'IGP',
    'ADGP', 'DGP'));

-- Staged outcomes. A block is carried out in stages (outgoing barred, incoming barred,
-- re-verification pending) before its final answer: `disconnected` (it counts as blocked) or
-- `retained` (the subscriber re-verified; the target's state is then `retained`). A stage
-- leaves its order pending; the order shows its latest stage and when it was reached, and
-- each (order, stage) is recorded once.
ALTER TABLE orders DROP CONSTRAINT orders_ack_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_ack_status_check CHECK (ack_status IN (
    'blocked', 'unblocked', 'already_blocked', 'not_subscriber', 'rejected', 'disconnected',
    'retained'));
ALTER TABLE orders ADD COLUMN stage text;
ALTER TABLE orders ADD COLUMN stage_at timestamptz;

CREATE TABLE order_stages (
    order_id    bigint NOT NULL,  -- orders are never deleted; no per-row key check
    stage       text NOT NULL CHECK (stage IN ('outgoing_barred', 'incoming_barred',
                    'reverification_pending')),
    at          timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, stage)
);

ALTER TABLE targets DROP CONSTRAINT targets_state_check;
ALTER TABLE targets ADD CONSTRAINT targets_state_check CHECK (state IN (
    'pending', 'blocked', 'partially_blocked', 'unblocked', 'rejected', 'dead', 'unroutable',
    'cancelled', 'retained'));

-- A disconnected number counts as blocked; a retained one under its own name.
CREATE OR REPLACE FUNCTION order_count_state(status text, ack_status text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN status IN ('held', 'queued', 'in_flight', 'sent') THEN 'pending'
        WHEN status = 'acked' AND ack_status IN ('already_blocked', 'disconnected') THEN 'blocked'
        WHEN status = 'acked' THEN ack_status
        ELSE status
    END
$$;

-- Handset <-> SIM linkage: each sighting an operator reports of a number used in a handset,
-- once per (handset, number, operator, time).
CREATE TABLE sightings (
    imei          text NOT NULL,
    msisdn        text NOT NULL,
    operator_code text NOT NULL REFERENCES operators (code),
    seen_at       timestamptz NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (imei, msisdn, operator_code, seen_at)
);
CREATE INDEX sightings_msisdn_idx ON sightings (msisdn, imei);

-- Handsets seen with more distinct numbers in one (Indian) day than the service allows: a
-- possible SIM box or cloned IMEI, shared by innocent phones; blocking one needs a supervisor.
CREATE TABLE handset_flags (
    imei       text PRIMARY KEY,
    day        date NOT NULL,
    numbers    integer NOT NULL,
    flagged_at timestamptz NOT NULL DEFAULT now()
);

-- What a supervisor should look at: a new SIM in a blocked handset, a handset flagged.
CREATE TABLE alerts (
    id            bigserial PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('sim_in_blocked_handset', 'handset_flagged')),
    imei          text NOT NULL,
    msisdn        text,
    operator_code text,
    seen_at       timestamptz,
    details       jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- What an operator is told about the request behind an order: the case, its legal basis and
-- the officers who filed and approved it (orders_claim and orders_pull read it).
CREATE VIEW order_authority AS
SELECT r.id AS request_id, r.unit_code AS request_unit, r.case_ref,
       r.category AS request_category, r.legal_basis,
       (r.decided_by IS NOT NULL AND r.status NOT IN ('rejected', 'cancelled')) AS approved,
       f.officer_name AS filer_name, f.officer_rank AS filer_rank,
       d.officer_name AS approver_name, d.officer_rank AS approver_rank
FROM block_requests r
JOIN tokens f ON f.id = r.created_by
LEFT JOIN tokens d ON d.id = r.decided_by;

-- Reconciliation. What each operator was confirmed to block, as a log of changes: an
-- acknowledged block that counts as blocked adds the identifier, an acknowledged unblock that
-- counts as unblocked removes it (order_count_state decides both). The full list is the log
-- replayed; an operator keeps its own list in step by reading the log from a cursor.
CREATE TABLE blocklist_log (
    id            bigserial PRIMARY KEY,
    operator_code text NOT NULL,
    kind          text NOT NULL,
    value         text NOT NULL,
    change        text NOT NULL CHECK (change IN ('added', 'removed')),
    order_id      bigint NOT NULL,
    at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX blocklist_log_operator_idx ON blocklist_log (operator_code, id);

INSERT INTO blocklist_log (operator_code, kind, value, change, order_id, at)
SELECT operator_code, kind, value, CASE WHEN action = 'block' THEN 'added' ELSE 'removed' END,
       id, coalesce(acked_at, now())
FROM orders
WHERE status = 'acked' AND order_count_state(status, ack_status)
      = CASE WHEN action = 'block' THEN 'blocked' ELSE 'unblocked' END
ORDER BY acked_at, id;

CREATE FUNCTION orders_blocklist_log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM new_rows WHERE status = 'acked') THEN
        RETURN NULL;  -- claims, leases and sends: nothing was confirmed
    END IF;
    -- an operator's changes are numbered in the order they commit, so a reader that has seen
    -- change n has seen every change before it: the lock is held until the commit
    PERFORM pg_advisory_xact_lock(hashtextextended('blocklist:' || c, 0))
    FROM (SELECT DISTINCT w.operator_code AS c FROM new_rows w JOIN old_rows o ON o.id = w.id
          WHERE w.status = 'acked' AND o.status <> 'acked' ORDER BY 1) ops;
    INSERT INTO blocklist_log (operator_code, kind, value, change, order_id)
    SELECT w.operator_code, w.kind, w.value,
           CASE WHEN w.action = 'block' THEN 'added' ELSE 'removed' END, w.id
    FROM new_rows w JOIN old_rows o ON o.id = w.id
    WHERE w.status = 'acked' AND o.status <> 'acked'
      AND order_count_state(w.status, w.ack_status)
          = CASE WHEN w.action = 'block' THEN 'blocked' ELSE 'unblocked' END
    ORDER BY w.id;
    RETURN NULL;
END $$;
CREATE TRIGGER orders_blocklist_logged AFTER UPDATE ON orders
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION orders_blocklist_log();

-- Why an order exists besides its request's decision: 'reconciliation' (the operator's own
-- list lacked an identifier it was confirmed to block, so the block goes again).
ALTER TABLE orders ADD COLUMN reason text;

-- Each reconciliation run: what the operator listed against what it was confirmed to block.
CREATE TABLE reconciliations (
    id            bigserial PRIMARY KEY,
    operator_code text NOT NULL REFERENCES operators (code),
    kind          text CHECK (kind IN ('msisdn', 'imei')),
    cursor        bigint NOT NULL,
    listed        integer NOT NULL,
    matched       integer NOT NULL,
    missing       jsonb NOT NULL,
    unexpected    jsonb NOT NULL,
    in_transit    jsonb NOT NULL,
    invalid       jsonb NOT NULL,
    requeued      bigint[] NOT NULL,
    created_by    bigint NOT NULL REFERENCES tokens (id),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reconciliations_operator_idx ON reconciliations (operator_code, id);

-- Number churn. A number re-allocated to a new subscriber, or permanently disconnected, is
-- retired: its target keeps its history under a value of its own (the number it was is kept
-- in `retired_value`), so a later request naming the number makes a new target with new orders.
ALTER TABLE targets ADD COLUMN retired_at timestamptz;
ALTER TABLE targets ADD COLUMN retired_as text
    CHECK (retired_as IN ('reallocated', 'permanently_disconnected'));
ALTER TABLE targets ADD COLUMN retired_value text;
CREATE INDEX targets_retired_idx ON targets (kind, retired_value) WHERE retired_value IS NOT NULL;
CREATE INDEX blocklist_log_identifier_idx ON blocklist_log (kind, value, id);
