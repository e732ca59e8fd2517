-- The day counters with the changes inside the period beside the states, one row per unit,
-- category, kind and day, for the stats grouped (or filtered) by unit and by category.
--
-- Those stats read target_state_days and target_event_days, a row each per unit, category,
-- kind and day (~48,000 each for a year at 10 M targets), and summed them together: grouped by
-- unit, category and week over a year, 106–115 ms of Postgres; by unit, category and day,
-- 110–144 ms. One table holding both, as target_unit_days (sql/0029) and target_category_days
-- (sql/0032) do, halves the rows read: 47–57 and 61–63 ms, the same counts. It is kept as
-- they are: a row trigger on each day table moves every change of a day row into it, so
-- upkeep's fold still costs in proportion to the new deltas.

-- No rows move into the day tables while this is filled from them.
LOCK TABLE target_state_days, target_event_days IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE target_days (
    day                 date NOT NULL,
    unit_code           text NOT NULL,
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
    PRIMARY KEY (day, unit_code, category, kind)
);

INSERT INTO target_days (day, unit_code, category, kind, pending, blocked, partially_blocked,
    unblocked, rejected, dead, unroutable, cancelled, retained, blocked_in_period,
    unblocked_in_period)
SELECT day, unit_code, category, kind, sum(pending), sum(blocked), sum(partially_blocked),
       sum(unblocked), sum(rejected), sum(dead), sum(unroutable), sum(cancelled), sum(retained),
       sum(blocked_in_period), sum(unblocked_in_period)
FROM (
    SELECT day, unit_code, category, kind, pending, blocked, partially_blocked, unblocked,
           rejected, dead, unroutable, cancelled, retained, 0 AS blocked_in_period,
           0 AS unblocked_in_period
    FROM target_state_days
    UNION ALL
    SELECT day, unit_code, category, kind, 0, 0, 0, 0, 0, 0, 0, 0, 0, blocked, unblocked
    FROM target_event_days
) AS d
GROUP BY 1, 2, 3, 4;

-- Add a day row's counts, signed, to its row here.
CREATE FUNCTION target_days_add(d target_state_days, sign int) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO target_days AS t (day, unit_code, category, kind, pending, blocked,
        partially_blocked, unblocked, rejected, dead, unroutable, cancelled, retained)
    VALUES (d.day, d.unit_code, d.category, d.kind, sign * d.pending, sign * d.blocked,
        sign * d.partially_blocked, sign * d.unblocked, sign * d.rejected, sign * d.dead,
        sign * d.unroutable, sign * d.cancelled, sign * d.retained)
    ON CONFLICT (day, unit_code, category, kind) DO UPDATE SET
        pending = t.pending + excluded.pending,
        blocked = t.blocked + excluded.blocked,
        partially_blocked = t.partially_blocked + excluded.partially_blocked,
        unblocked = t.unblocked + excluded.unblocked,
        rejected = t.rejected + excluded.rejected,
        dead = t.dead + excluded.dead,
        unroutable = t.unroutable + excluded.unroutable,
        cancelled = t.cancelled + excluded.cancelled,
        retained = t.retained + excluded.retained
$$;

CREATE FUNCTION target_state_days_to_days() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM target_days_add(OLD, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM target_days_add(NEW, 1);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER target_state_days_to_days
    AFTER INSERT OR UPDATE OR DELETE ON target_state_days
    FOR EACH ROW EXECUTE FUNCTION target_state_days_to_days();

-- The changes to blocked and unblocked are all the stats read of target_event_days.
CREATE FUNCTION target_days_events_add(d target_event_days, sign int) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO target_days AS t (day, unit_code, category, kind, blocked_in_period,
        unblocked_in_period)
    VALUES (d.day, d.unit_code, d.category, d.kind, sign * d.blocked, sign * d.unblocked)
    ON CONFLICT (day, unit_code, category, kind) DO UPDATE SET
        blocked_in_period = t.blocked_in_period + excluded.blocked_in_period,
        unblocked_in_period = t.unblocked_in_period + excluded.unblocked_in_period
$$;

CREATE FUNCTION target_event_days_to_days() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND (OLD.day, OLD.unit_code, OLD.category, OLD.kind, OLD.blocked, OLD.unblocked)
         = (NEW.day, NEW.unit_code, NEW.category, NEW.kind, NEW.blocked, NEW.unblocked) THEN
        RETURN NULL;  -- another change counted: nothing here moves
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM target_days_events_add(OLD, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM target_days_events_add(NEW, 1);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER target_event_days_to_days
    AFTER INSERT OR UPDATE OR DELETE ON target_event_days
    FOR EACH ROW EXECUTE FUNCTION target_event_days_to_days();

-- The planner's row counts for the stats' first read, before autovacuum comes by.
ANALYZE target_days;
