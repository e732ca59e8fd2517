-- Folded counters as one row per group and day, with a column per state.
--
-- With a row per (group, day, state), a year of the zone's days was ~150,000 rows per counter
-- table (11 units × 6 categories × 2 kinds × 365 days × the states), and order counts four
-- times that, whatever the number of targets: every /v1/stats summed them all, 50–800 ms.
-- Now the triggers still write their delta rows to the narrow tables (unchanged), and upkeep
-- folds them into these day tables, a state per column, so a year is ~48,000 rows per table
-- (order counts ~190,000) and the narrow tables hold only the deltas since the last fold.
-- A delta of a state that has no column here is never folded (it stays a delta row and is
-- still counted), so a new state can come before its column without losing a count.
--
-- Operators' service levels (GET /v1/reports/sla) used to read every acknowledged and dead
-- order of the period: 2–3 s for a year at a million targets. The order counting triggers now
-- also count each answered or dead order once under (operator, day, outcome, time-to-ack
-- bucket) in `ack_time_counts`, folded like the other counters; the report sums those rows and
-- reads the percentiles from the buckets (20 per decade: within 6% of the exact value). Orders
-- still unanswered past their deadline are read live (a small partial index: orders_due_idx).

CREATE TABLE target_state_days (
    unit_code         text NOT NULL,
    category          text NOT NULL,
    kind              text NOT NULL,
    day               date NOT NULL,
    pending           bigint NOT NULL DEFAULT 0,
    blocked           bigint NOT NULL DEFAULT 0,
    partially_blocked bigint NOT NULL DEFAULT 0,
    unblocked         bigint NOT NULL DEFAULT 0,
    rejected          bigint NOT NULL DEFAULT 0,
    dead              bigint NOT NULL DEFAULT 0,
    unroutable        bigint NOT NULL DEFAULT 0,
    cancelled         bigint NOT NULL DEFAULT 0,
    retained          bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (unit_code, category, kind, day)
);
CREATE INDEX target_state_days_day_idx ON target_state_days (day);

CREATE TABLE target_event_days (
    unit_code         text NOT NULL,
    category          text NOT NULL,
    kind              text NOT NULL,
    day               date NOT NULL,
    blocked           bigint NOT NULL DEFAULT 0,
    partially_blocked bigint NOT NULL DEFAULT 0,
    unblocked         bigint NOT NULL DEFAULT 0,
    rejected          bigint NOT NULL DEFAULT 0,
    dead              bigint NOT NULL DEFAULT 0,
    unroutable        bigint NOT NULL DEFAULT 0,
    cancelled         bigint NOT NULL DEFAULT 0,
    retained          bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (unit_code, category, kind, day)
);
CREATE INDEX target_event_days_day_idx ON target_event_days (day);

CREATE TABLE order_state_days (
    operator_code  text NOT NULL,
    unit_code      text NOT NULL,
    category       text NOT NULL,
    kind           text NOT NULL,
    day            date NOT NULL,
    pending        bigint NOT NULL DEFAULT 0,
    blocked        bigint NOT NULL DEFAULT 0,
    unblocked      bigint NOT NULL DEFAULT 0,
    not_subscriber bigint NOT NULL DEFAULT 0,
    rejected       bigint NOT NULL DEFAULT 0,
    retained       bigint NOT NULL DEFAULT 0,
    dead           bigint NOT NULL DEFAULT 0,
    cancelled      bigint NOT NULL DEFAULT 0,
    withdrawn      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (operator_code, unit_code, category, kind, day)
);
CREATE INDEX order_state_days_day_idx ON order_state_days (day);

-- The whole count, in the narrow shape (group, day, state, n): the day tables unpivoted plus
-- the deltas not folded yet. For checks and ad-hoc SQL; the stats queries sum the day tables
-- before unpivoting, which is what keeps them fast.
CREATE VIEW counted_target_states AS
SELECT d.unit_code, d.category, d.kind, d.day, s.state, s.n
FROM target_state_days d CROSS JOIN LATERAL (VALUES
    ('pending', d.pending), ('blocked', d.blocked), ('partially_blocked', d.partially_blocked),
    ('unblocked', d.unblocked), ('rejected', d.rejected), ('dead', d.dead),
    ('unroutable', d.unroutable), ('cancelled', d.cancelled), ('retained', d.retained)
) AS s(state, n)
WHERE s.n <> 0
UNION ALL
SELECT unit_code, category, kind, day, state, n FROM target_state_counts;

CREATE VIEW counted_target_events AS
SELECT d.unit_code, d.category, d.kind, d.day, s.event, s.n
FROM target_event_days d CROSS JOIN LATERAL (VALUES
    ('blocked', d.blocked), ('partially_blocked', d.partially_blocked),
    ('unblocked', d.unblocked), ('rejected', d.rejected), ('dead', d.dead),
    ('unroutable', d.unroutable), ('cancelled', d.cancelled), ('retained', d.retained)
) AS s(event, n)
WHERE s.n <> 0
UNION ALL
SELECT unit_code, category, kind, day, event, n FROM target_event_counts;

CREATE VIEW counted_order_states AS
SELECT d.operator_code, d.unit_code, d.category, d.kind, d.day, s.state, s.n
FROM order_state_days d CROSS JOIN LATERAL (VALUES
    ('pending', d.pending), ('blocked', d.blocked), ('unblocked', d.unblocked),
    ('not_subscriber', d.not_subscriber), ('rejected', d.rejected), ('retained', d.retained),
    ('dead', d.dead), ('cancelled', d.cancelled), ('withdrawn', d.withdrawn)
) AS s(state, n)
WHERE s.n <> 0
UNION ALL
SELECT operator_code, unit_code, category, kind, day, state, n FROM order_state_counts;

-- Acknowledgement times: a bucket per 20th of a decade of seconds, from 1 ms (0) to 10^9 s.
CREATE FUNCTION ack_bucket(seconds double precision) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT greatest(0, least(239, floor(20 * log(greatest(seconds, 0.001))) + 60))::smallint
$$;

-- What an order counts for in the service levels: answered in time or late (by its deadline
-- `due_at`), or dead; NULL while it is not final.
CREATE FUNCTION ack_outcome(status text, acked_at timestamptz, due_at timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE status WHEN 'acked' THEN
                CASE WHEN acked_at <= coalesce(due_at, acked_at) THEN 'in_time' ELSE 'late' END
           WHEN 'dead' THEN 'dead' END
$$;

-- The day an order counts under (NULL: not counted, also an answer without its time).
CREATE FUNCTION ack_day(status text, acked_at timestamptz, dead_at timestamptz) RETURNS date
LANGUAGE sql STABLE AS $$
    SELECT CASE status WHEN 'acked' THEN report_day(acked_at)
                       WHEN 'dead' THEN report_day(dead_at) END
$$;

-- Time to acknowledge runs from the decision (or the retry that restarted the deadline).
CREATE FUNCTION ack_time_bucket(status text, acked_at timestamptz, retry_from timestamptz,
                                created_at timestamptz) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN status = 'acked'
                THEN ack_bucket(extract(epoch FROM acked_at - coalesce(retry_from, created_at)))
                ELSE -1 END::smallint
$$;

CREATE TABLE ack_time_counts (
    operator_code text NOT NULL,
    day           date NOT NULL,
    outcome       text NOT NULL,      -- in_time, late, dead
    bucket        smallint NOT NULL,  -- ack_bucket of the time to acknowledge; -1 for dead
    n             bigint NOT NULL,
    folded        boolean NOT NULL DEFAULT false
);
CREATE INDEX ack_time_counts_group_idx ON ack_time_counts (day, operator_code, outcome, bucket);
CREATE INDEX ack_time_counts_new_idx ON ack_time_counts (day) WHERE NOT folded;

INSERT INTO ack_time_counts (operator_code, day, outcome, bucket, n)
SELECT operator_code, ack_day(status, acked_at, dead_at), ack_outcome(status, acked_at, due_at),
       ack_time_bucket(status, acked_at, retry_from, created_at), count(*)
FROM orders WHERE ack_day(status, acked_at, dead_at) IS NOT NULL GROUP BY 1, 2, 3, 4;

CREATE OR REPLACE FUNCTION orders_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO order_state_counts (operator_code, unit_code, category, kind, day, state, n)
    SELECT operator_code, unit_code, category, kind, report_day(created_at),
           order_count_state(status, ack_status), count(*)
    FROM new_rows GROUP BY 1, 2, 3, 4, 5, 6;
    INSERT INTO ack_time_counts (operator_code, day, outcome, bucket, n)
    SELECT operator_code, ack_day(status, acked_at, dead_at),
           ack_outcome(status, acked_at, due_at),
           ack_time_bucket(status, acked_at, retry_from, created_at), count(*)
    FROM new_rows WHERE ack_day(status, acked_at, dead_at) IS NOT NULL GROUP BY 1, 2, 3, 4;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION orders_count_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM new_rows WHERE status NOT IN ('held', 'queued', 'in_flight', 'sent'))
       AND NOT EXISTS (SELECT 1 FROM old_rows
                       WHERE status NOT IN ('held', 'queued', 'in_flight', 'sent')) THEN
        RETURN NULL;
    END IF;
    INSERT INTO order_state_counts (operator_code, unit_code, category, kind, day, state, n)
    SELECT operator_code, unit_code, category, kind, day, state, sum(n) FROM (
        SELECT o.operator_code, o.unit_code, o.category, o.kind, report_day(o.created_at) AS day,
               order_count_state(o.status, o.ack_status) AS state, -1 AS n
        FROM old_rows o JOIN new_rows w ON w.id = o.id
        WHERE order_count_state(o.status, o.ack_status) <> order_count_state(w.status, w.ack_status)
        UNION ALL
        SELECT w.operator_code, w.unit_code, w.category, w.kind, report_day(w.created_at),
               order_count_state(w.status, w.ack_status), 1
        FROM old_rows o JOIN new_rows w ON w.id = o.id
        WHERE order_count_state(o.status, o.ack_status) <> order_count_state(w.status, w.ack_status)
    ) d GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(n) <> 0;
    INSERT INTO ack_time_counts (operator_code, day, outcome, bucket, n)
    SELECT operator_code, day, outcome, bucket, sum(n) FROM (
        SELECT o.operator_code, ack_day(o.status, o.acked_at, o.dead_at) AS day,
               ack_outcome(o.status, o.acked_at, o.due_at) AS outcome,
               ack_time_bucket(o.status, o.acked_at, o.retry_from, o.created_at) AS bucket,
               -1 AS n
        FROM old_rows o JOIN new_rows w ON w.id = o.id
        WHERE ack_day(o.status, o.acked_at, o.dead_at) IS NOT NULL
          AND (o.status, o.acked_at, o.dead_at, o.due_at, o.retry_from)
              IS DISTINCT FROM (w.status, w.acked_at, w.dead_at, w.due_at, w.retry_from)
        UNION ALL
        SELECT w.operator_code, ack_day(w.status, w.acked_at, w.dead_at),
               ack_outcome(w.status, w.acked_at, w.due_at),
               ack_time_bucket(w.status, w.acked_at, w.retry_from, w.created_at), 1
        FROM old_rows o JOIN new_rows w ON w.id = o.id
        WHERE ack_day(w.status, w.acked_at, w.dead_at) IS NOT NULL
          AND (o.status, o.acked_at, o.dead_at, o.due_at, o.retry_from)
              IS DISTINCT FROM (w.status, w.acked_at, w.dead_at, w.due_at, w.retry_from)
    ) d GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0;
    RETURN NULL;
END $$;

-- Fold every delta of a known state into its day row (upkeep runs it: counts_compact).
CREATE FUNCTION counts_fold() RETURNS TABLE (folded bigint, kept bigint)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    t_del bigint; t_up bigint; e_del bigint; e_up bigint; o_del bigint; o_up bigint;
    a_del bigint; a_up bigint;
BEGIN
    WITH d AS (
        DELETE FROM target_state_counts
        WHERE state IN ('pending', 'blocked', 'partially_blocked', 'unblocked', 'rejected',
                        'dead', 'unroutable', 'cancelled', 'retained')
        RETURNING unit_code, category, kind, day, state, n
    ), g AS (
        SELECT unit_code, category, kind, day,
               coalesce(sum(n) FILTER (WHERE state = 'pending'), 0) AS pending,
               coalesce(sum(n) FILTER (WHERE state = 'blocked'), 0) AS blocked,
               coalesce(sum(n) FILTER (WHERE state = 'partially_blocked'), 0)
                   AS partially_blocked,
               coalesce(sum(n) FILTER (WHERE state = 'unblocked'), 0) AS unblocked,
               coalesce(sum(n) FILTER (WHERE state = 'rejected'), 0) AS rejected,
               coalesce(sum(n) FILTER (WHERE state = 'dead'), 0) AS dead,
               coalesce(sum(n) FILTER (WHERE state = 'unroutable'), 0) AS unroutable,
               coalesce(sum(n) FILTER (WHERE state = 'cancelled'), 0) AS cancelled,
               coalesce(sum(n) FILTER (WHERE state = 'retained'), 0) AS retained,
               count(*) AS rows_in
        FROM d GROUP BY 1, 2, 3, 4
    ), up AS (
        INSERT INTO target_state_days AS t (unit_code, category, kind, day, pending, blocked,
            partially_blocked, unblocked, rejected, dead, unroutable, cancelled, retained)
        SELECT unit_code, category, kind, day, pending, blocked, partially_blocked, unblocked,
               rejected, dead, unroutable, cancelled, retained
        FROM g ORDER BY 1, 2, 3, 4
        ON CONFLICT (unit_code, category, kind, day) DO UPDATE SET
            pending = t.pending + excluded.pending, blocked = t.blocked + excluded.blocked,
            partially_blocked = t.partially_blocked + excluded.partially_blocked,
            unblocked = t.unblocked + excluded.unblocked,
            rejected = t.rejected + excluded.rejected, dead = t.dead + excluded.dead,
            unroutable = t.unroutable + excluded.unroutable,
            cancelled = t.cancelled + excluded.cancelled,
            retained = t.retained + excluded.retained
        RETURNING 1
    )
    SELECT coalesce((SELECT sum(rows_in) FROM g), 0), (SELECT count(*) FROM up)
    INTO t_del, t_up;

    WITH d AS (
        DELETE FROM target_event_counts
        WHERE event IN ('blocked', 'partially_blocked', 'unblocked', 'rejected', 'dead',
                        'unroutable', 'cancelled', 'retained')
        RETURNING unit_code, category, kind, day, event, n
    ), g AS (
        SELECT unit_code, category, kind, day,
               coalesce(sum(n) FILTER (WHERE event = 'blocked'), 0) AS blocked,
               coalesce(sum(n) FILTER (WHERE event = 'partially_blocked'), 0)
                   AS partially_blocked,
               coalesce(sum(n) FILTER (WHERE event = 'unblocked'), 0) AS unblocked,
               coalesce(sum(n) FILTER (WHERE event = 'rejected'), 0) AS rejected,
               coalesce(sum(n) FILTER (WHERE event = 'dead'), 0) AS dead,
               coalesce(sum(n) FILTER (WHERE event = 'unroutable'), 0) AS unroutable,
               coalesce(sum(n) FILTER (WHERE event = 'cancelled'), 0) AS cancelled,
               coalesce(sum(n) FILTER (WHERE event = 'retained'), 0) AS retained,
               count(*) AS rows_in
        FROM d GROUP BY 1, 2, 3, 4
    ), up AS (
        INSERT INTO target_event_days AS t (unit_code, category, kind, day, blocked,
            partially_blocked, unblocked, rejected, dead, unroutable, cancelled, retained)
        SELECT unit_code, category, kind, day, blocked, partially_blocked, unblocked,
               rejected, dead, unroutable, cancelled, retained
        FROM g ORDER BY 1, 2, 3, 4
        ON CONFLICT (unit_code, category, kind, day) DO UPDATE SET
            blocked = t.blocked + excluded.blocked,
            partially_blocked = t.partially_blocked + excluded.partially_blocked,
            unblocked = t.unblocked + excluded.unblocked,
            rejected = t.rejected + excluded.rejected, dead = t.dead + excluded.dead,
            unroutable = t.unroutable + excluded.unroutable,
            cancelled = t.cancelled + excluded.cancelled,
            retained = t.retained + excluded.retained
        RETURNING 1
    )
    SELECT coalesce((SELECT sum(rows_in) FROM g), 0), (SELECT count(*) FROM up)
    INTO e_del, e_up;

    WITH d AS (
        DELETE FROM order_state_counts
        WHERE state IN ('pending', 'blocked', 'unblocked', 'not_subscriber', 'rejected',
                        'retained', 'dead', 'cancelled', 'withdrawn')
        RETURNING operator_code, unit_code, category, kind, day, state, n
    ), g AS (
        SELECT operator_code, unit_code, category, kind, day,
               coalesce(sum(n) FILTER (WHERE state = 'pending'), 0) AS pending,
               coalesce(sum(n) FILTER (WHERE state = 'blocked'), 0) AS blocked,
               coalesce(sum(n) FILTER (WHERE state = 'unblocked'), 0) AS unblocked,
               coalesce(sum(n) FILTER (WHERE state = 'not_subscriber'), 0) AS not_subscriber,
               coalesce(sum(n) FILTER (WHERE state = 'rejected'), 0) AS rejected,
               coalesce(sum(n) FILTER (WHERE state = 'retained'), 0) AS retained,
               coalesce(sum(n) FILTER (WHERE state = 'dead'), 0) AS dead,
               coalesce(sum(n) FILTER (WHERE state = 'cancelled'), 0) AS cancelled,
               coalesce(sum(n) FILTER (WHERE state = 'withdrawn'), 0) AS withdrawn,
               count(*) AS rows_in
        FROM d GROUP BY 1, 2, 3, 4, 5
    ), up AS (
        INSERT INTO order_state_days AS t (operator_code, unit_code, category, kind, day,
            pending, blocked, unblocked, not_subscriber, rejected, retained, dead, cancelled,
            withdrawn)
        SELECT operator_code, unit_code, category, kind, day, pending, blocked, unblocked,
               not_subscriber, rejected, retained, dead, cancelled, withdrawn
        FROM g ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (operator_code, unit_code, category, kind, day) DO UPDATE SET
            pending = t.pending + excluded.pending, blocked = t.blocked + excluded.blocked,
            unblocked = t.unblocked + excluded.unblocked,
            not_subscriber = t.not_subscriber + excluded.not_subscriber,
            rejected = t.rejected + excluded.rejected,
            retained = t.retained + excluded.retained, dead = t.dead + excluded.dead,
            cancelled = t.cancelled + excluded.cancelled,
            withdrawn = t.withdrawn + excluded.withdrawn
        RETURNING 1
    )
    SELECT coalesce((SELECT sum(rows_in) FROM g), 0), (SELECT count(*) FROM up)
    INTO o_del, o_up;

    -- Acknowledgement times: the groups with new deltas, each into one folded row.
    WITH g AS MATERIALIZED (
        SELECT DISTINCT operator_code, day, outcome, bucket FROM ack_time_counts
        WHERE NOT folded
    ), d AS (
        DELETE FROM ack_time_counts c USING g
        WHERE c.day = g.day AND c.operator_code = g.operator_code AND c.outcome = g.outcome
          AND c.bucket = g.bucket
        RETURNING c.operator_code, c.day, c.outcome, c.bucket, c.n
    ), up AS (
        INSERT INTO ack_time_counts (operator_code, day, outcome, bucket, n, folded)
        SELECT operator_code, day, outcome, bucket, sum(n), true FROM d
        GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0 RETURNING 1
    )
    SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM up) INTO a_del, a_up;

    RETURN QUERY SELECT t_del + e_del + o_del + a_del, t_up + e_up + o_up + a_up;
END $fn$;

-- Counting by another zone's days recounts states from the rows: the day rows go too.
CREATE OR REPLACE FUNCTION report_zone_set(tz text) RETURNS boolean LANGUAGE plpgsql AS $fn$
DECLARE
    old text;
BEGIN
    PERFORM now() AT TIME ZONE tz;  -- an unknown zone raises here
    SELECT zone INTO old FROM report_zone FOR UPDATE;
    IF old = tz THEN
        RETURN false;
    END IF;
    PERFORM pg_advisory_xact_lock(7201003);  -- no compaction meanwhile (counts_compact_lock)
    LOCK TABLE targets, orders IN SHARE MODE;  -- and no state change
    INSERT INTO target_event_counts (unit_code, category, kind, day, event, n)
    SELECT unit_code, category, kind, day, state, sum(n) FROM (
        SELECT unit_code, category, kind, (state_changed_at AT TIME ZONE old)::date AS day,
               state, -1 AS n
        FROM targets WHERE state <> 'pending'
        UNION ALL
        SELECT unit_code, category, kind, (state_changed_at AT TIME ZONE tz)::date, state, 1
        FROM targets WHERE state <> 'pending'
    ) d GROUP BY 1, 2, 3, 4, 5 HAVING sum(n) <> 0;
    UPDATE report_zone SET zone = tz;
    EXECUTE format($f$CREATE OR REPLACE FUNCTION report_day(ts timestamptz) RETURNS date
                      LANGUAGE sql STABLE AS $b$ SELECT (ts AT TIME ZONE %L)::date $b$$f$, tz);
    DELETE FROM target_state_counts;
    DELETE FROM target_state_days;
    INSERT INTO target_state_counts (unit_code, category, kind, day, state, n)
    SELECT unit_code, category, kind, (created_at AT TIME ZONE tz)::date, state, count(*)
    FROM targets GROUP BY 1, 2, 3, 4, 5;
    DELETE FROM order_state_counts;
    DELETE FROM order_state_days;
    INSERT INTO order_state_counts (operator_code, unit_code, category, kind, day, state, n)
    SELECT operator_code, unit_code, category, kind, (created_at AT TIME ZONE tz)::date,
           order_count_state(status, ack_status), count(*)
    FROM orders GROUP BY 1, 2, 3, 4, 5, 6;
    DELETE FROM ack_time_counts;
    INSERT INTO ack_time_counts (operator_code, day, outcome, bucket, n)
    SELECT operator_code, ack_day(status, acked_at, dead_at),
           ack_outcome(status, acked_at, due_at),
           ack_time_bucket(status, acked_at, retry_from, created_at), count(*)
    FROM orders WHERE ack_day(status, acked_at, dead_at) IS NOT NULL GROUP BY 1, 2, 3, 4;
    RETURN true;
END $fn$;


-- An operator's full blocklist is read in pages, in (kind, value) order as of one change
-- number (GET /v1/operator/blocklist): the latest change of each identifier, walked in order.
CREATE INDEX blocklist_log_page_idx ON blocklist_log (operator_code, kind, value, id DESC);

-- What was counted so far moves into the day rows now.
SELECT * FROM counts_fold();
