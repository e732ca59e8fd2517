-- Escalations: events that need a person (an order overdue or dead, a new SIM in a blocked
-- handset, a reconciliation that found differences, a grievance past its deadline) are posted,
-- signed per Standard Webhooks, to the endpoints an admin subscribed. Each event is stored with
-- one delivery row per subscribed endpoint, in the transaction that raised it (an outbox); the
-- workers claim due deliveries like orders and retry them with backoff until they give up.

CREATE TABLE escalation_endpoints (
    id          bigserial PRIMARY KEY,
    url         text NOT NULL CHECK (length(url) BETWEEN 1 AND 2000),
    secret      text NOT NULL,
    event_types text[] NOT NULL CHECK (cardinality(event_types) > 0 AND event_types <@ ARRAY[
                    'order.overdue', 'order.dead', 'alert.sim_in_blocked_handset',
                    'reconciliation.mismatch', 'grievance.overdue']),
    description text NOT NULL DEFAULT '',
    active      boolean NOT NULL DEFAULT true,
    created_by  bigint REFERENCES tokens (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz
);

CREATE TABLE escalation_events (
    id         bigserial PRIMARY KEY,
    type       text NOT NULL,
    data       jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE escalation_deliveries (
    id               bigserial PRIMARY KEY,
    event_id         bigint NOT NULL REFERENCES escalation_events (id),
    endpoint_id      bigint NOT NULL REFERENCES escalation_endpoints (id),
    status           text NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'in_flight', 'delivered', 'dead', 'cancelled')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_expires_at timestamptz,
    leased_by        text,
    last_error       text,
    last_http_status integer,
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    dead_at          timestamptz,
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX escalation_deliveries_due_idx ON escalation_deliveries (next_attempt_at, id)
    WHERE status = 'queued';
CREATE INDEX escalation_deliveries_lease_idx ON escalation_deliveries (lease_expires_at)
    WHERE status = 'in_flight';
CREATE INDEX escalation_deliveries_endpoint_idx ON escalation_deliveries (endpoint_id, id);

-- Conditions that arise by the clock (an order or a grievance past its deadline) are found by
-- the workers' sweeps (while someone subscribed to them); each is raised once per subject.
CREATE TABLE escalations_raised (
    type       text NOT NULL,
    subject_id bigint NOT NULL,
    raised_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (type, subject_id)
);

-- Times in events: ISO 8601 in UTC, whatever the session's time zone.
CREATE FUNCTION escalation_time(at timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
$$;

-- Events carry references (ids, operator, kinds, counts, times), never the numbers, handsets or
-- case references themselves: endpoints are an admin's configuration, and admins read no case
-- data; the receiver looks the details up with a token of its own.

-- The one way an event is raised: one event per document of `docs` (a JSON array), each with
-- a delivery to every active endpoint subscribed to its type. Nothing is stored when nobody
-- subscribed. Returns the number of events stored.
CREATE FUNCTION escalation_raise(event_type text, docs jsonb) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    stored integer;
BEGIN
    IF jsonb_array_length(docs) = 0 OR NOT EXISTS (
        SELECT 1 FROM escalation_endpoints WHERE active AND event_type = ANY(event_types)
    ) THEN
        RETURN 0;
    END IF;
    WITH events AS (
        INSERT INTO escalation_events (type, data)
        SELECT event_type, d FROM jsonb_array_elements(docs) WITH ORDINALITY AS x(d, n)
        ORDER BY n
        RETURNING id
    ), deliveries AS (
        INSERT INTO escalation_deliveries (event_id, endpoint_id)
        SELECT e.id, p.id FROM events e
        CROSS JOIN escalation_endpoints p
        WHERE p.active AND event_type = ANY(p.event_types)
        ORDER BY e.id, p.id
    )
    SELECT count(*) INTO stored FROM events;
    RETURN stored;
END $$;

-- An order that dies, by any path (a delivery given up, its maximum age), raises `order.dead`
-- in the same transaction. The WHEN clause keeps every other update of orders free of it.
CREATE FUNCTION orders_escalate_dead() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM escalation_raise('order.dead', jsonb_build_array(jsonb_build_object(
        'order_id', NEW.id, 'request_id', NEW.request_id, 'operator', NEW.operator_code,
        'action', NEW.action, 'kind', NEW.kind, 'attempts', NEW.attempts,
        'created_at', escalation_time(NEW.created_at),
        'dead_at', escalation_time(NEW.dead_at))));
    RETURN NULL;
END $$;
CREATE TRIGGER orders_dead_escalated AFTER UPDATE OF status ON orders
    FOR EACH ROW WHEN (NEW.status = 'dead' AND OLD.status IS DISTINCT FROM 'dead')
    EXECUTE FUNCTION orders_escalate_dead();
