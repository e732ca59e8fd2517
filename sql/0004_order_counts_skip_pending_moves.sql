-- Claims, lease renewals and sends move orders between states that all count as 'pending'
-- (held, queued, in_flight, sent). The counting trigger now sees that from the transition
-- tables alone and returns before joining them: it was a fifth of a claim's time.

CREATE OR REPLACE FUNCTION orders_count_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM new_rows WHERE status NOT IN ('held', 'queued', 'in_flight', 'sent'))
       AND NOT EXISTS (SELECT 1 FROM old_rows
                       WHERE status NOT IN ('held', 'queued', 'in_flight', 'sent')) THEN
        RETURN NULL;
    END IF;
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
