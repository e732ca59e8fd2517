-- Counters by month, and the open orders per operator.
--
-- At 10 M targets a year of the zone's day rows (sql/0018) is ~48,000 per table, and /v1/stats
-- summing them took 15–65 ms per statement. Each day table now keeps a month table beside it
-- (a row trigger moves every change of a day row into its month's row), and the stats read
-- whole months from the month tables and only the partial months at the edges of the period
-- from the day tables: a year grouped by unit, category and month sums ~1,600 rows.
--
-- /v1/operators counted each operator's open orders through orders_due_idx, which holds every
-- operator's: 160 ms with a backlog of 290,000. A partial index per operator and status, with
-- the deadlines included, answers each count from the index alone.

CREATE TABLE target_state_months (
    unit_code text NOT NULL,
    category text NOT NULL,
    kind text NOT NULL,
    month date NOT NULL,
    pending bigint NOT NULL DEFAULT 0,
    blocked bigint NOT NULL DEFAULT 0,
    partially_blocked bigint NOT NULL DEFAULT 0,
    unblocked bigint NOT NULL DEFAULT 0,
    rejected bigint NOT NULL DEFAULT 0,
    dead bigint NOT NULL DEFAULT 0,
    unroutable bigint NOT NULL DEFAULT 0,
    cancelled bigint NOT NULL DEFAULT 0,
    retained bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (unit_code, category, kind, month)
);
INSERT INTO target_state_months (unit_code, category, kind, month, pending, blocked,
    partially_blocked, unblocked, rejected, dead, unroutable, cancelled, retained)
SELECT unit_code, category, kind, date_trunc('month', day::timestamp)::date, sum(pending),
    sum(blocked), sum(partially_blocked), sum(unblocked), sum(rejected), sum(dead), sum(unroutable),
    sum(cancelled), sum(retained)
FROM target_state_days GROUP BY 1, 2, 3, 4;

CREATE FUNCTION target_state_days_to_months() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO target_state_months AS m (unit_code, category, kind, month, pending,
            blocked, partially_blocked, unblocked, rejected, dead, unroutable, cancelled, retained)
        VALUES (OLD.unit_code, OLD.category, OLD.kind, date_trunc('month',
            OLD.day::timestamp)::date, -OLD.pending, -OLD.blocked, -OLD.partially_blocked,
            -OLD.unblocked, -OLD.rejected, -OLD.dead, -OLD.unroutable, -OLD.cancelled,
            -OLD.retained)
        ON CONFLICT (unit_code, category, kind, month) DO UPDATE SET
            pending = m.pending + excluded.pending,
            blocked = m.blocked + excluded.blocked,
            partially_blocked = m.partially_blocked + excluded.partially_blocked,
            unblocked = m.unblocked + excluded.unblocked,
            rejected = m.rejected + excluded.rejected,
            dead = m.dead + excluded.dead,
            unroutable = m.unroutable + excluded.unroutable,
            cancelled = m.cancelled + excluded.cancelled,
            retained = m.retained + excluded.retained;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO target_state_months AS m (unit_code, category, kind, month, pending,
            blocked, partially_blocked, unblocked, rejected, dead, unroutable, cancelled, retained)
        VALUES (NEW.unit_code, NEW.category, NEW.kind, date_trunc('month',
            NEW.day::timestamp)::date, NEW.pending, NEW.blocked, NEW.partially_blocked,
            NEW.unblocked, NEW.rejected, NEW.dead, NEW.unroutable, NEW.cancelled, NEW.retained)
        ON CONFLICT (unit_code, category, kind, month) DO UPDATE SET
            pending = m.pending + excluded.pending,
            blocked = m.blocked + excluded.blocked,
            partially_blocked = m.partially_blocked + excluded.partially_blocked,
            unblocked = m.unblocked + excluded.unblocked,
            rejected = m.rejected + excluded.rejected,
            dead = m.dead + excluded.dead,
            unroutable = m.unroutable + excluded.unroutable,
            cancelled = m.cancelled + excluded.cancelled,
            retained = m.retained + excluded.retained;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER target_state_days_to_months AFTER INSERT OR UPDATE OR DELETE ON target_state_days
    FOR EACH ROW EXECUTE FUNCTION target_state_days_to_months();

CREATE TABLE target_event_months (
    unit_code text NOT NULL,
    category text NOT NULL,
    kind text NOT NULL,
    month date NOT NULL,
    blocked bigint NOT NULL DEFAULT 0,
    partially_blocked bigint NOT NULL DEFAULT 0,
    unblocked bigint NOT NULL DEFAULT 0,
    rejected bigint NOT NULL DEFAULT 0,
    dead bigint NOT NULL DEFAULT 0,
    unroutable bigint NOT NULL DEFAULT 0,
    cancelled bigint NOT NULL DEFAULT 0,
    retained bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (unit_code, category, kind, month)
);
INSERT INTO target_event_months (unit_code, category, kind, month, blocked, partially_blocked,
    unblocked, rejected, dead, unroutable, cancelled, retained)
SELECT unit_code, category, kind, date_trunc('month', day::timestamp)::date, sum(blocked),
    sum(partially_blocked), sum(unblocked), sum(rejected), sum(dead), sum(unroutable),
    sum(cancelled), sum(retained)
FROM target_event_days GROUP BY 1, 2, 3, 4;

CREATE FUNCTION target_event_days_to_months() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO target_event_months AS m (unit_code, category, kind, month, blocked,
            partially_blocked, unblocked, rejected, dead, unroutable, cancelled, retained)
        VALUES (OLD.unit_code, OLD.category, OLD.kind, date_trunc('month',
            OLD.day::timestamp)::date, -OLD.blocked, -OLD.partially_blocked, -OLD.unblocked,
            -OLD.rejected, -OLD.dead, -OLD.unroutable, -OLD.cancelled, -OLD.retained)
        ON CONFLICT (unit_code, category, kind, month) DO UPDATE SET
            blocked = m.blocked + excluded.blocked,
            partially_blocked = m.partially_blocked + excluded.partially_blocked,
            unblocked = m.unblocked + excluded.unblocked,
            rejected = m.rejected + excluded.rejected,
            dead = m.dead + excluded.dead,
            unroutable = m.unroutable + excluded.unroutable,
            cancelled = m.cancelled + excluded.cancelled,
            retained = m.retained + excluded.retained;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO target_event_months AS m (unit_code, category, kind, month, blocked,
            partially_blocked, unblocked, rejected, dead, unroutable, cancelled, retained)
        VALUES (NEW.unit_code, NEW.category, NEW.kind, date_trunc('month',
            NEW.day::timestamp)::date, NEW.blocked, NEW.partially_blocked, NEW.unblocked,
            NEW.rejected, NEW.dead, NEW.unroutable, NEW.cancelled, NEW.retained)
        ON CONFLICT (unit_code, category, kind, month) DO UPDATE SET
            blocked = m.blocked + excluded.blocked,
            partially_blocked = m.partially_blocked + excluded.partially_blocked,
            unblocked = m.unblocked + excluded.unblocked,
            rejected = m.rejected + excluded.rejected,
            dead = m.dead + excluded.dead,
            unroutable = m.unroutable + excluded.unroutable,
            cancelled = m.cancelled + excluded.cancelled,
            retained = m.retained + excluded.retained;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER target_event_days_to_months AFTER INSERT OR UPDATE OR DELETE ON target_event_days
    FOR EACH ROW EXECUTE FUNCTION target_event_days_to_months();

CREATE TABLE order_state_months (
    operator_code text NOT NULL,
    unit_code text NOT NULL,
    category text NOT NULL,
    kind text NOT NULL,
    month date NOT NULL,
    pending bigint NOT NULL DEFAULT 0,
    blocked bigint NOT NULL DEFAULT 0,
    unblocked bigint NOT NULL DEFAULT 0,
    not_subscriber bigint NOT NULL DEFAULT 0,
    rejected bigint NOT NULL DEFAULT 0,
    retained bigint NOT NULL DEFAULT 0,
    dead bigint NOT NULL DEFAULT 0,
    cancelled bigint NOT NULL DEFAULT 0,
    withdrawn bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (operator_code, unit_code, category, kind, month)
);
INSERT INTO order_state_months (operator_code, unit_code, category, kind, month, pending,
    blocked, unblocked, not_subscriber, rejected, retained, dead, cancelled, withdrawn)
SELECT operator_code, unit_code, category, kind, date_trunc('month', day::timestamp)::date,
    sum(pending), sum(blocked), sum(unblocked), sum(not_subscriber), sum(rejected), sum(retained),
    sum(dead), sum(cancelled), sum(withdrawn)
FROM order_state_days GROUP BY 1, 2, 3, 4, 5;

CREATE FUNCTION order_state_days_to_months() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO order_state_months AS m (operator_code, unit_code, category, kind, month,
            pending, blocked, unblocked, not_subscriber, rejected, retained, dead, cancelled,
            withdrawn)
        VALUES (OLD.operator_code, OLD.unit_code, OLD.category, OLD.kind, date_trunc('month',
            OLD.day::timestamp)::date, -OLD.pending, -OLD.blocked, -OLD.unblocked,
            -OLD.not_subscriber, -OLD.rejected, -OLD.retained, -OLD.dead, -OLD.cancelled,
            -OLD.withdrawn)
        ON CONFLICT (operator_code, unit_code, category, kind, month) DO UPDATE SET
            pending = m.pending + excluded.pending,
            blocked = m.blocked + excluded.blocked,
            unblocked = m.unblocked + excluded.unblocked,
            not_subscriber = m.not_subscriber + excluded.not_subscriber,
            rejected = m.rejected + excluded.rejected,
            retained = m.retained + excluded.retained,
            dead = m.dead + excluded.dead,
            cancelled = m.cancelled + excluded.cancelled,
            withdrawn = m.withdrawn + excluded.withdrawn;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO order_state_months AS m (operator_code, unit_code, category, kind, month,
            pending, blocked, unblocked, not_subscriber, rejected, retained, dead, cancelled,
            withdrawn)
        VALUES (NEW.operator_code, NEW.unit_code, NEW.category, NEW.kind, date_trunc('month',
            NEW.day::timestamp)::date, NEW.pending, NEW.blocked, NEW.unblocked, NEW.not_subscriber,
            NEW.rejected, NEW.retained, NEW.dead, NEW.cancelled, NEW.withdrawn)
        ON CONFLICT (operator_code, unit_code, category, kind, month) DO UPDATE SET
            pending = m.pending + excluded.pending,
            blocked = m.blocked + excluded.blocked,
            unblocked = m.unblocked + excluded.unblocked,
            not_subscriber = m.not_subscriber + excluded.not_subscriber,
            rejected = m.rejected + excluded.rejected,
            retained = m.retained + excluded.retained,
            dead = m.dead + excluded.dead,
            cancelled = m.cancelled + excluded.cancelled,
            withdrawn = m.withdrawn + excluded.withdrawn;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER order_state_days_to_months AFTER INSERT OR UPDATE OR DELETE ON order_state_days
    FOR EACH ROW EXECUTE FUNCTION order_state_days_to_months();

CREATE INDEX orders_open_idx ON orders (operator_code, status, due_at)
    INCLUDE (ack_due_at, overdue_at) WHERE status IN ('queued', 'in_flight', 'sent');

-- The whole months inside days [from_day, to_day) (NULL: unbounded) that the stats read from
-- the month tables; none when the period asked for is a day or a week.
CREATE FUNCTION whole_months(from_day date, to_day date, period text, OUT lo date, OUT hi date)
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN period IN ('day', 'week') THEN 'infinity'::date
                ELSE coalesce((date_trunc('month', (from_day - 1)::timestamp)
                               + interval '1 month')::date, '-infinity') END,
           CASE WHEN period IN ('day', 'week') THEN 'infinity'::date
                ELSE coalesce(date_trunc('month', to_day::timestamp)::date, 'infinity') END
$$;
