-- fraudblock schema: reference data, requests, targets, the order queue,
-- attempts, audit log and the counters supervisors read.

CREATE TABLE units (
    code        text PRIMARY KEY CHECK (code ~ '^[a-z0-9][a-z0-9-]{1,31}$'),
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('district', 'zone')),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE operators (
    code                  text PRIMARY KEY CHECK (code ~ '^[a-z0-9][a-z0-9-]{1,31}$'),
    name                  text NOT NULL,
    active                boolean NOT NULL DEFAULT true,
    adapter_kind          text NOT NULL DEFAULT 'pull',
    adapter_config        jsonb NOT NULL DEFAULT '{}',
    rate_limit_per_s      double precision NOT NULL DEFAULT 0 CHECK (rate_limit_per_s >= 0),
    breaker_threshold     integer NOT NULL DEFAULT 5 CHECK (breaker_threshold > 0),
    breaker_cooldown_s    double precision NOT NULL DEFAULT 30 CHECK (breaker_cooldown_s > 0),
    ack_deadline_s        integer NOT NULL DEFAULT 86400 CHECK (ack_deadline_s > 0),
    urgent_ack_deadline_s integer NOT NULL DEFAULT 3600 CHECK (urgent_ack_deadline_s > 0),
    breaker_state         text NOT NULL DEFAULT 'closed'
                          CHECK (breaker_state IN ('closed', 'open', 'half_open')),
    breaker_failures      integer NOT NULL DEFAULT 0,
    breaker_opened_at     timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

-- Number-series prefixes (E.164, with '+') and the operator that holds them.
CREATE TABLE number_series (
    prefix        text PRIMARY KEY CHECK (prefix ~ '^\+[0-9]{2,14}$'),
    operator_code text NOT NULL REFERENCES operators (code),
    label         text NOT NULL DEFAULT '',
    loaded_at     timestamptz NOT NULL DEFAULT now()
);

-- What operators told us about an MSISDN: serves (blocked it) or not (not_subscriber).
CREATE TABLE msisdn_routes (
    msisdn        text NOT NULL,
    operator_code text NOT NULL REFERENCES operators (code),
    serves        boolean NOT NULL,
    learned_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (msisdn, operator_code)
);

CREATE TABLE tokens (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL,
    role          text NOT NULL CHECK (role IN ('investigator', 'supervisor', 'operator', 'admin')),
    unit_code     text REFERENCES units (code),
    operator_code text REFERENCES operators (code),
    token_hash    bytea NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz,
    CHECK (role <> 'investigator' OR unit_code IS NOT NULL),
    CHECK ((role = 'operator') = (operator_code IS NOT NULL))
);

CREATE TABLE block_requests (
    id              bigserial PRIMARY KEY,
    unit_code       text NOT NULL REFERENCES units (code),
    case_ref        text NOT NULL CHECK (length(case_ref) BETWEEN 1 AND 64),
    category        text NOT NULL CHECK (category IN ('kyc_update', 'olx_marketplace',
                        'fake_loan_app', 'investment', 'social_media', 'other')),
    action          text NOT NULL CHECK (action IN ('block', 'unblock')),
    priority        text NOT NULL CHECK (priority IN ('normal', 'urgent')),
    legal_basis     text,
    note            text,
    reason          text,
    force           boolean NOT NULL DEFAULT false,
    status          text NOT NULL CHECK (status IN ('pending_approval', 'dispatching', 'completed',
                        'partially_completed', 'rejected', 'cancelled')),
    target_count    integer NOT NULL,
    open_targets    integer NOT NULL DEFAULT 0,
    failed_targets  integer NOT NULL DEFAULT 0,
    created_by      bigint NOT NULL REFERENCES tokens (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    decided_by      bigint REFERENCES tokens (id),
    decided_at      timestamptz,
    decision_reason text
);
CREATE INDEX block_requests_unit_idx ON block_requests (unit_code, id);
CREATE INDEX block_requests_case_idx ON block_requests (case_ref);
CREATE INDEX block_requests_status_idx ON block_requests (status, id);
CREATE INDEX block_requests_created_idx ON block_requests (created_at);

-- The same key from the same caller returns the stored response.
CREATE TABLE idempotency_keys (
    token_id    bigint NOT NULL REFERENCES tokens (id),
    key         text NOT NULL,
    body_hash   bytea NOT NULL,
    request_id  bigint NOT NULL REFERENCES block_requests (id),
    response    jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (token_id, key)
);

-- One row per distinct target; counted under the unit and category that first named it.
CREATE TABLE targets (
    id               bigserial PRIMARY KEY,
    kind             text NOT NULL CHECK (kind IN ('msisdn', 'imei')),
    value            text NOT NULL,
    unit_code        text NOT NULL REFERENCES units (code),
    category         text NOT NULL,
    first_request_id bigint NOT NULL,
    action           text NOT NULL CHECK (action IN ('block', 'unblock')),
    state            text NOT NULL CHECK (state IN ('pending', 'blocked', 'partially_blocked',
                         'unblocked', 'rejected', 'dead', 'unroutable', 'cancelled')),
    state_changed_at timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, value)
);

-- Which requests named which targets, and whether a block case still holds the target.
CREATE TABLE request_targets (
    request_id      bigint NOT NULL REFERENCES block_requests (id),
    target_id       bigint NOT NULL REFERENCES targets (id),
    position        integer NOT NULL,
    submitted_value text NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('queued', 'in_progress', 'already_blocked',
                        'already_unblocked', 'held', 'not_blocked', 'unroutable')),
    holds           boolean NOT NULL DEFAULT false,
    done            boolean NOT NULL DEFAULT false,
    PRIMARY KEY (request_id, target_id)
);
CREATE INDEX request_targets_target_idx ON request_targets (target_id);

-- The durable queue: one row per (target, operator, action) to deliver.
CREATE TABLE orders (
    id               bigserial PRIMARY KEY,
    target_id        bigint NOT NULL REFERENCES targets (id),
    kind             text NOT NULL,
    value            text NOT NULL,
    operator_code    text NOT NULL REFERENCES operators (code),
    action           text NOT NULL CHECK (action IN ('block', 'unblock')),
    request_id       bigint NOT NULL REFERENCES block_requests (id),
    unit_code        text NOT NULL,
    category         text NOT NULL,
    urgent           boolean NOT NULL,
    status           text NOT NULL CHECK (status IN ('held', 'queued', 'in_flight', 'sent',
                         'acked', 'dead', 'cancelled')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_expires_at timestamptz,
    leased_by        text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    due_at           timestamptz,
    first_sent_at    timestamptz,
    sent_at          timestamptz,
    ack_due_at       timestamptz,
    overdue_at       timestamptz,
    acked_at         timestamptz,
    ack_status       text CHECK (ack_status IN ('blocked', 'unblocked', 'already_blocked',
                         'not_subscriber', 'rejected')),
    ack_reason       text,
    operator_ref     text,
    dead_at          timestamptz,
    retry_from       timestamptz,
    last_error       text
);
CREATE INDEX orders_claim_idx ON orders (operator_code, urgent DESC, next_attempt_at, id)
    WHERE status = 'queued';
CREATE INDEX orders_lease_idx ON orders (lease_expires_at) WHERE status = 'in_flight';
CREATE INDEX orders_awaiting_idx ON orders (operator_code, ack_due_at) WHERE status = 'sent';
CREATE INDEX orders_dead_idx ON orders (dead_at) WHERE status = 'dead';
CREATE INDEX orders_target_idx ON orders (target_id, operator_code, id);
CREATE INDEX orders_request_idx ON orders (request_id);
CREATE INDEX orders_acked_idx ON orders (operator_code, acked_at) WHERE status = 'acked';

-- Every delivery attempt, so a supervisor can see why an order is late.
CREATE TABLE attempts (
    id              bigserial PRIMARY KEY,
    order_id        bigint NOT NULL,  -- orders are never deleted; no per-row key check
    attempt_no      integer NOT NULL,
    worker          text NOT NULL,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('accepted', 'acknowledged', 'transient',
                        'permanent', 'released')),
    error           text,
    operator_status text,
    http_status     integer
);
CREATE INDEX attempts_order_idx ON attempts (order_id);

-- Append-only, hash-chained record of every action by a person or an operator.
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    role        text NOT NULL,
    action      text NOT NULL,
    entity_type text NOT NULL,
    entity_id   text NOT NULL,
    details     jsonb NOT NULL DEFAULT '{}',
    prev_hash   bytea NOT NULL,
    hash        bytea NOT NULL
);
CREATE INDEX audit_log_entity_idx ON audit_log (entity_type, entity_id);

-- The chain's head: writers lock this one row, so the chain stays linear under concurrency.
CREATE TABLE audit_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_id   bigint NOT NULL DEFAULT 0,
    hash      bytea NOT NULL
);
INSERT INTO audit_head (hash) VALUES ('\x0000000000000000000000000000000000000000000000000000000000000000');
CREATE INDEX audit_log_at_idx ON audit_log (at);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP;
END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- Append entries (JSON, in order; `canonical` is each entry's canonical encoding, made by
-- service.audit.canonical) to the chain: lock the head row, hash each as sha256(previous hash
-- || encoding), insert them and move the head. The lock keeps the chain linear; it is held
-- until the commit, so callers append last (service.store.Tx.commit_with).
CREATE FUNCTION audit_append(entries json) RETURNS bigint LANGUAGE sql VOLATILE AS $fn$
WITH RECURSIVE entries AS (
    SELECT * FROM ROWS FROM (json_to_recordset(entries)
         AS (at timestamptz, actor text, role text, action text, entity_type text,
             entity_id text, details jsonb, canonical text)) WITH ORDINALITY
         AS e(at, actor, role, action, entity_type, entity_id, details, canonical, n)
), encodings AS (
    SELECT array_agg(convert_to(canonical, 'UTF8') ORDER BY n) AS a FROM entries
), head AS (
    SELECT hash FROM audit_head FOR UPDATE
), chain (n, prev, hash) AS (
    SELECT 0::bigint, NULL::bytea, (SELECT hash FROM head)
    UNION ALL
    SELECT c.n + 1, c.hash, sha256(c.hash || (SELECT a[c.n + 1] FROM encodings))
    FROM chain c WHERE c.n < (SELECT cardinality(a) FROM encodings)
), rows AS (
    INSERT INTO audit_log (at, actor, role, action, entity_type, entity_id, details, prev_hash,
                           hash)
    SELECT e.at, e.actor, e.role, e.action, e.entity_type, e.entity_id, e.details, c.prev,
           c.hash
    FROM entries e JOIN chain c ON c.n = e.n
    ORDER BY e.n
    RETURNING id
)
UPDATE audit_head SET hash = (SELECT hash FROM chain ORDER BY n DESC LIMIT 1),
                      last_id = (SELECT max(id) FROM rows)
RETURNING last_id;
$fn$;

-- Counters, kept by triggers in the same transaction as the change they count.
-- Rows are deltas; compaction folds them together without changing any sum.
CREATE TABLE target_state_counts (
    unit_code text NOT NULL,
    category  text NOT NULL,
    kind      text NOT NULL,
    day       date NOT NULL,
    state     text NOT NULL,
    n         bigint NOT NULL
);
CREATE INDEX target_state_counts_day_idx ON target_state_counts (day);

CREATE TABLE target_event_counts (
    unit_code text NOT NULL,
    category  text NOT NULL,
    kind      text NOT NULL,
    day       date NOT NULL,
    event     text NOT NULL,
    n         bigint NOT NULL
);
CREATE INDEX target_event_counts_day_idx ON target_event_counts (day);

CREATE TABLE order_state_counts (
    operator_code text NOT NULL,
    unit_code     text NOT NULL,
    category      text NOT NULL,
    kind          text NOT NULL,
    day           date NOT NULL,
    state         text NOT NULL,
    n             bigint NOT NULL
);
CREATE INDEX order_state_counts_day_idx ON order_state_counts (day);

CREATE FUNCTION utc_day(ts timestamptz) RETURNS date LANGUAGE sql IMMUTABLE AS
$$ SELECT (ts AT TIME ZONE 'UTC')::date $$;

-- The state an order counts under: pending until it ends, then its outcome.
CREATE FUNCTION order_count_state(status text, ack_status text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN status IN ('held', 'queued', 'in_flight', 'sent') THEN 'pending'
        WHEN status = 'acked' AND ack_status = 'already_blocked' THEN 'blocked'
        WHEN status = 'acked' THEN ack_status
        ELSE status
    END
$$;

CREATE FUNCTION targets_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO target_state_counts (unit_code, category, kind, day, state, n)
    SELECT unit_code, category, kind, utc_day(created_at), state, count(*)
    FROM new_rows GROUP BY 1, 2, 3, 4, 5;
    RETURN NULL;
END $$;

CREATE FUNCTION targets_count_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO target_state_counts (unit_code, category, kind, day, state, n)
    SELECT unit_code, category, kind, day, state, sum(n) FROM (
        SELECT o.unit_code, o.category, o.kind, utc_day(o.created_at) AS day, o.state, -1 AS n
        FROM old_rows o JOIN new_rows w ON w.id = o.id WHERE w.state <> o.state
        UNION ALL
        SELECT w.unit_code, w.category, w.kind, utc_day(w.created_at), w.state, 1
        FROM old_rows o JOIN new_rows w ON w.id = o.id WHERE w.state <> o.state
    ) d GROUP BY 1, 2, 3, 4, 5 HAVING sum(n) <> 0;
    INSERT INTO target_event_counts (unit_code, category, kind, day, event, n)
    SELECT w.unit_code, w.category, w.kind, utc_day(w.state_changed_at), w.state, count(*)
    FROM old_rows o JOIN new_rows w ON w.id = o.id
    WHERE w.state <> o.state AND w.state <> 'pending'
    GROUP BY 1, 2, 3, 4, 5;
    RETURN NULL;
END $$;

CREATE TRIGGER targets_counted_insert AFTER INSERT ON targets
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION targets_count_insert();
CREATE TRIGGER targets_counted_update AFTER UPDATE ON targets
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION targets_count_update();

CREATE FUNCTION orders_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO order_state_counts (operator_code, unit_code, category, kind, day, state, n)
    SELECT operator_code, unit_code, category, kind, utc_day(created_at),
           order_count_state(status, ack_status), count(*)
    FROM new_rows GROUP BY 1, 2, 3, 4, 5, 6;
    RETURN NULL;
END $$;

CREATE FUNCTION orders_count_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO order_state_counts (operator_code, unit_code, category, kind, day, state, n)
    SELECT operator_code, unit_code, category, kind, day, state, sum(n) FROM (
        SELECT o.operator_code, o.unit_code, o.category, o.kind, utc_day(o.created_at) AS day,
               order_count_state(o.status, o.ack_status) AS state, -1 AS n
        FROM old_rows o JOIN new_rows w ON w.id = o.id
        WHERE order_count_state(o.status, o.ack_status) <> order_count_state(w.status, w.ack_status)
        UNION ALL
        SELECT w.operator_code, w.unit_code, w.category, w.kind, utc_day(w.created_at),
               order_count_state(w.status, w.ack_status), 1
        FROM old_rows o JOIN new_rows w ON w.id = o.id
        WHERE order_count_state(o.status, o.ack_status) <> order_count_state(w.status, w.ack_status)
    ) d GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(n) <> 0;
    RETURN NULL;
END $$;

CREATE TRIGGER orders_counted_insert AFTER INSERT ON orders
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION orders_count_insert();
CREATE TRIGGER orders_counted_update AFTER UPDATE ON orders
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION orders_count_update();
