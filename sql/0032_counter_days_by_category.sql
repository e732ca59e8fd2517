-- Day counters without the unit, for the stats that group by category but not by unit.
--
-- At 10 M targets a year of the zone's day rows is ~48,000 per target table (11 units × 6
-- categories × 2 kinds × 365 days) and ~190,000 for orders (× 4 operators). /v1/stats grouped
-- by category and day (or week) read them all, and the state and change rows apart: 122 ms
-- for 2,190 groups, by operator, category and day 295 ms. These tables hold the same counts
-- per category, kind and day (and operator), the states and the changes inside the period in
-- one row: a year is ~4,400 rows for targets, ~17,500 for orders. They are kept as
-- target_unit_days and order_unit_days are (sql/0029): a row trigger on each day table moves
-- every change of a day row into its category's row, so upkeep's fold still costs in
-- proportion to the new deltas.

-- No rows move into the day tables while these are filled from them.
LOCK TABLE target_state_days, target_event_days, order_state_days IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE target_category_days (
    day                 date NOT NULL,
    category            text NOT NULL,
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
    PRIMARY KEY (day, category, kind)
);

INSERT INTO target_category_days (day, category, kind, pending, blocked, partially_blocked,
    unblocked, rejected, dead, unroutable, cancelled, retained, blocked_in_period,
    unblocked_in_period)
SELECT day, category, kind, sum(pending), sum(blocked), sum(partially_blocked), sum(unblocked),
       sum(rejected), sum(dead), sum(unroutable), sum(cancelled), sum(retained),
       sum(blocked_in_period), sum(unblocked_in_period)
FROM (
    SELECT day, category, kind, pending, blocked, partially_blocked, unblocked, rejected, dead,
           unroutable, cancelled, retained, 0 AS blocked_in_period, 0 AS unblocked_in_period
    FROM target_state_days
    UNION ALL
    SELECT day, category, kind, 0, 0, 0, 0, 0, 0, 0, 0, 0, blocked, unblocked
    FROM target_event_days
) AS d
GROUP BY 1, 2, 3;

-- Add a day row's counts, signed, to its category's row.
CREATE FUNCTION target_category_days_add(d target_state_days, sign int) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO target_category_days AS c (day, category, kind, pending, blocked,
        partially_blocked, unblocked, rejected, dead, unroutable, cancelled, retained)
    VALUES (d.day, d.category, d.kind, sign * d.pending, sign * d.blocked,
        sign * d.partially_blocked, sign * d.unblocked, sign * d.rejected, sign * d.dead,
        sign * d.unroutable, sign * d.cancelled, sign * d.retained)
    ON CONFLICT (day, category, kind) DO UPDATE SET
        pending = c.pending + excluded.pending,
        blocked = c.blocked + excluded.blocked,
        partially_blocked = c.partially_blocked + excluded.partially_blocked,
        unblocked = c.unblocked + excluded.unblocked,
        rejected = c.rejected + excluded.rejected,
        dead = c.dead + excluded.dead,
        unroutable = c.unroutable + excluded.unroutable,
        cancelled = c.cancelled + excluded.cancelled,
        retained = c.retained + excluded.retained
$$;

CREATE FUNCTION target_state_days_to_categories() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM target_category_days_add(OLD, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM target_category_days_add(NEW, 1);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER target_state_days_to_categories
    AFTER INSERT OR UPDATE OR DELETE ON target_state_days
    FOR EACH ROW EXECUTE FUNCTION target_state_days_to_categories();

-- The changes to blocked and unblocked are all the stats read of target_event_days.
CREATE FUNCTION target_category_events_add(d target_event_days, sign int) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO target_category_days AS c (day, category, kind, blocked_in_period,
        unblocked_in_period)
    VALUES (d.day, d.category, d.kind, sign * d.blocked, sign * d.unblocked)
    ON CONFLICT (day, category, kind) DO UPDATE SET
        blocked_in_period = c.blocked_in_period + excluded.blocked_in_period,
        unblocked_in_period = c.unblocked_in_period + excluded.unblocked_in_period
$$;

CREATE FUNCTION target_event_days_to_categories() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (OLD.day, OLD.category, OLD.kind, OLD.blocked, OLD.unblocked)
                            = (NEW.day, NEW.category, NEW.kind, NEW.blocked, NEW.unblocked) THEN
        RETURN NULL;  -- another change counted: nothing here moves
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM target_category_events_add(OLD, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM target_category_events_add(NEW, 1);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER target_event_days_to_categories
    AFTER INSERT OR UPDATE OR DELETE ON target_event_days
    FOR EACH ROW EXECUTE FUNCTION target_event_days_to_categories();

CREATE TABLE order_category_days (
    day            date NOT NULL,
    operator_code  text NOT NULL,
    category       text NOT NULL,
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
    PRIMARY KEY (day, operator_code, category, kind)
);

INSERT INTO order_category_days (day, operator_code, category, kind, pending, blocked,
    unblocked, not_subscriber, rejected, retained, dead, cancelled, withdrawn)
SELECT day, operator_code, category, kind, sum(pending), sum(blocked), sum(unblocked),
       sum(not_subscriber), sum(rejected), sum(retained), sum(dead), sum(cancelled),
       sum(withdrawn)
FROM order_state_days GROUP BY 1, 2, 3, 4;

CREATE FUNCTION order_category_days_add(d order_state_days, sign int) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO order_category_days AS c (day, operator_code, category, kind, pending,
        blocked, unblocked, not_subscriber, rejected, retained, dead, cancelled, withdrawn)
    VALUES (d.day, d.operator_code, d.category, d.kind, sign * d.pending, sign * d.blocked,
        sign * d.unblocked, sign * d.not_subscriber, sign * d.rejected, sign * d.retained,
        sign * d.dead, sign * d.cancelled, sign * d.withdrawn)
    ON CONFLICT (day, operator_code, category, kind) DO UPDATE SET
        pending = c.pending + excluded.pending,
        blocked = c.blocked + excluded.blocked,
        unblocked = c.unblocked + excluded.unblocked,
        not_subscriber = c.not_subscriber + excluded.not_subscriber,
        rejected = c.rejected + excluded.rejected,
        retained = c.retained + excluded.retained,
        dead = c.dead + excluded.dead,
        cancelled = c.cancelled + excluded.cancelled,
        withdrawn = c.withdrawn + excluded.withdrawn
$$;

CREATE FUNCTION order_state_days_to_categories() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM order_category_days_add(OLD, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM order_category_days_add(NEW, 1);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER order_state_days_to_categories
    AFTER INSERT OR UPDATE OR DELETE ON order_state_days
    FOR EACH ROW EXECUTE FUNCTION order_state_days_to_categories();

-- The planner's row counts for the stats' first read, before autovacuum comes by.
ANALYZE target_category_days, order_category_days;
