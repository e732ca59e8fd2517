-- Day counters without the category, for the stats that do not group by it.
--
-- At 10 M targets a year of the zone's day rows is ~48,000 per target table (11 units × 6
-- categories × 2 kinds × 365 days) and ~190,000 for orders (× 4 operators). /v1/stats grouped
-- by unit and day, by day alone or by operator and day summed them all: 60–125 ms of Postgres
-- for a few thousand groups. These tables hold the same counts per unit, kind and day (and
-- operator), the states and the changes inside the period in one row: a year is ~8,000 rows
-- for targets, ~32,000 for orders. A row trigger on each day table moves every change of a day
-- row into its unit's row, as the month tables are kept (sql/0021), so upkeep's fold still
-- costs in proportion to the new deltas. The stats read them unless they group by category.

-- No rows move into the day tables while these are filled from them.
LOCK TABLE target_state_days, target_event_days, order_state_days IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE target_unit_days (
    day                 date NOT NULL,
    unit_code           text NOT NULL,
    kind                text NOT NULL,
    pending             bigint NOT NULL DEFAULT 0,
    blocked             bigint NOT NULL DEFAULT 0,
    partially_blocked   bigint NOT NULL DEFAULT 0,
    unblocked           bigint NOT NULL DEFAULT 0,
    rejected            bigint NOT NULL DEFAULT 0,
    dead                bigint NOT NULL DEFAULT 0,
    unroutable          bigint NOT NULL DEFAULT 0,
    cancelled           bigint NOT NULL DEFAULT 0,
    retained            bigint NOT NULL DEFAULT 0,
    blocked_in_period   bigint NOT NULL DEFAULT 0,  -- target_event_days.blocked
    unblocked_in_period bigint NOT NULL DEFAULT 0,  -- target_event_days.unblocked
    PRIMARY KEY (day, unit_code, kind)
);

INSERT INTO target_unit_days (day, unit_code, kind, pending, blocked, partially_blocked,
    unblocked, rejected, dead, unroutable, cancelled, retained, blocked_in_period,
    unblocked_in_period)
SELECT day, unit_code, kind, sum(pending), sum(blocked), sum(partially_blocked), sum(unblocked),
       sum(rejected), sum(dead), sum(unroutable), sum(cancelled), sum(retained),
       sum(blocked_in_period), sum(unblocked_in_period)
FROM (
    SELECT day, unit_code, kind, pending, blocked, partially_blocked, unblocked, rejected, dead,
           unroutable, cancelled, retained, 0 AS blocked_in_period, 0 AS unblocked_in_period
    FROM target_state_days
    UNION ALL
    SELECT day, unit_code, kind, 0, 0, 0, 0, 0, 0, 0, 0, 0, blocked, unblocked
    FROM target_event_days
) AS d
GROUP BY 1, 2, 3;

-- Add a day row's counts, signed, to its unit's row.
CREATE FUNCTION target_unit_days_add(d target_state_days, sign int) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO target_unit_days AS u (day, unit_code, kind, pending, blocked,
        partially_blocked, unblocked, rejected, dead, unroutable, cancelled, retained)
    VALUES (d.day, d.unit_code, d.kind, sign * d.pending, sign * d.blocked,
        sign * d.partially_blocked, sign * d.unblocked, sign * d.rejected, sign * d.dead,
        sign * d.unroutable, sign * d.cancelled, sign * d.retained)
    ON CONFLICT (day, unit_code, kind) DO UPDATE SET
        pending = u.pending + excluded.pending,
        blocked = u.blocked + excluded.blocked,
        partially_blocked = u.partially_blocked + excluded.partially_blocked,
        unblocked = u.unblocked + excluded.unblocked,
        rejected = u.rejected + excluded.rejected,
        dead = u.dead + excluded.dead,
        unroutable = u.unroutable + excluded.unroutable,
        cancelled = u.cancelled + excluded.cancelled,
        retained = u.retained + excluded.retained
$$;

CREATE FUNCTION target_state_days_to_units() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM target_unit_days_add(OLD, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM target_unit_days_add(NEW, 1);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER target_state_days_to_units AFTER INSERT OR UPDATE OR DELETE ON target_state_days
    FOR EACH ROW EXECUTE FUNCTION target_state_days_to_units();

-- The changes to blocked and unblocked are all the stats read of target_event_days.
CREATE FUNCTION target_event_days_add(d target_event_days, sign int) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO target_unit_days AS u (day, unit_code, kind, blocked_in_period,
        unblocked_in_period)
    VALUES (d.day, d.unit_code, d.kind, sign * d.blocked, sign * d.unblocked)
    ON CONFLICT (day, unit_code, kind) DO UPDATE SET
        blocked_in_period = u.blocked_in_period + excluded.blocked_in_period,
        unblocked_in_period = u.unblocked_in_period + excluded.unblocked_in_period
$$;

CREATE FUNCTION target_event_days_to_units() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (OLD.day, OLD.unit_code, OLD.kind, OLD.blocked, OLD.unblocked)
                            = (NEW.day, NEW.unit_code, NEW.kind, NEW.blocked, NEW.unblocked) THEN
        RETURN NULL;  -- another change counted: nothing here moves
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM target_event_days_add(OLD, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM target_event_days_add(NEW, 1);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER target_event_days_to_units AFTER INSERT OR UPDATE OR DELETE ON target_event_days
    FOR EACH ROW EXECUTE FUNCTION target_event_days_to_units();

CREATE TABLE order_unit_days (
    day            date NOT NULL,
    operator_code  text NOT NULL,
    unit_code      text NOT NULL,
    kind           text NOT NULL,
    pending        bigint NOT NULL DEFAULT 0,
    blocked        bigint NOT NULL DEFAULT 0,
    unblocked      bigint NOT NULL DEFAULT 0,
    not_subscriber bigint NOT NULL DEFAULT 0,
    rejected       bigint NOT NULL DEFAULT 0,
    retained       bigint NOT NULL DEFAULT 0,
    dead           bigint NOT NULL DEFAULT 0,
    cancelled      bigint NOT NULL DEFAULT 0,
    withdrawn      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, operator_code, unit_code, kind)
);

INSERT INTO order_unit_days (day, operator_code, unit_code, kind, pending, blocked, unblocked,
    not_subscriber, rejected, retained, dead, cancelled, withdrawn)
SELECT day, operator_code, unit_code, kind, sum(pending), sum(blocked), sum(unblocked),
       sum(not_subscriber), sum(rejected), sum(retained), sum(dead), sum(cancelled),
       sum(withdrawn)
FROM order_state_days GROUP BY 1, 2, 3, 4;

CREATE FUNCTION order_unit_days_add(d order_state_days, sign int) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO order_unit_days AS u (day, operator_code, unit_code, kind, pending, blocked,
        unblocked, not_subscriber, rejected, retained, dead, cancelled, withdrawn)
    VALUES (d.day, d.operator_code, d.unit_code, d.kind, sign * d.pending, sign * d.blocked,
        sign * d.unblocked, sign * d.not_subscriber, sign * d.rejected, sign * d.retained,
        sign * d.dead, sign * d.cancelled, sign * d.withdrawn)
    ON CONFLICT (day, operator_code, unit_code, kind) DO UPDATE SET
        pending = u.pending + excluded.pending,
        blocked = u.blocked + excluded.blocked,
        unblocked = u.unblocked + excluded.unblocked,
        not_subscriber = u.not_subscriber + excluded.not_subscriber,
        rejected = u.rejected + excluded.rejected,
        retained = u.retained + excluded.retained,
        dead = u.dead + excluded.dead,
        cancelled = u.cancelled + excluded.cancelled,
        withdrawn = u.withdrawn + excluded.withdrawn
$$;

CREATE FUNCTION order_state_days_to_units() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM order_unit_days_add(OLD, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM order_unit_days_add(NEW, 1);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER order_state_days_to_units AFTER INSERT OR UPDATE OR DELETE ON order_state_days
    FOR EACH ROW EXECUTE FUNCTION order_state_days_to_units();

-- The planner's row counts for the stats' first read, before autovacuum comes by.
ANALYZE target_unit_days, order_unit_days;
