-- The first day of the day, week (from Monday) or month a day falls in, for the stats, money
-- and service-level reads that group counter rows by period; NULL for no period. It is plain
-- date arithmetic: date_trunc on a date converts it to a timestamptz in the session's time
-- zone and back, row by row, which took a quarter of /v1/stats?group_by=week over all time.
-- A LANGUAGE sql IMMUTABLE function of one expression: the planner inlines it.

CREATE FUNCTION period_start(period text, day date) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE period WHEN 'day' THEN day
                       WHEN 'week' THEN day - ((day - DATE '2001-01-01') % 7 + 7) % 7
                       WHEN 'month' THEN date_trunc('month', day::timestamp)::date END
$$;  -- 2001-01-01 was a Monday
