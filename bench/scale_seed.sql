-- bench.scale's fast path: targets [$1, $2) of $3 with their requests, request links, orders,
-- attempts, acks, stages, blocklist changes and learned routes, written by set-based SQL
-- instead of the API (the API files about 6,000 targets/s here: 10 M would take half an hour
-- before a single order went out).
--
-- Target g: an IMEI when g % 5 = 4 (four orders, one per operator), else an MSISDN (one order,
-- operator g % 4). One block request per 10 targets; created_at spreads the rows over the
-- last year, oldest first. A target's history depends on p = (g * 7919) % 100 and on its age:
--   older than three days: 72 % blocked, 5 % already blocked, 5 % partially blocked handsets
--     (one operator rejected) or blocked numbers, 8 % blocked then unblocked by a later
--     unblock request, 5 % numbers retained after re-verification (handsets blocked),
--     4 % rejected, 2 % dead after nine failed attempts;
--   the last three days: half blocked, the rest pending — queued (some retried), sent and
--     awaiting an acknowledgement, or sent with re-verification pending — most of them
--     past their deadline, so /v1/overdue has tens of thousands of rows at 10 M.
-- Unblock requests take ids after every block request's (ids then do not follow created_at
-- for them; nothing reads ids as time). The counters are kept by the schema's own triggers
-- except target events, added in aggregate per state. Audit rows are appended afterwards by
-- bench.scale through audit_append (the real hash chains), one filing and one ack per request.

CREATE TEMP TABLE IF NOT EXISTS seed_t (
    g bigint, kind text, value text, unit text, category text, at timestamptz,
    p int, state text, unblocked_at timestamptz
) ON COMMIT DROP;

INSERT INTO seed_t
SELECT g, kind, value, unit, category, at, p,
       CASE WHEN recent THEN CASE WHEN p < 40 OR p >= 90 THEN 'blocked' ELSE 'pending' END
            WHEN p < 72 OR p >= 96 THEN 'blocked'
            WHEN p < 77 THEN CASE WHEN kind = 'imei' THEN 'partially_blocked' ELSE 'blocked' END
            WHEN p < 85 THEN 'unblocked'
            WHEN p < 90 THEN CASE WHEN kind = 'msisdn' THEN 'retained' ELSE 'blocked' END
            WHEN p < 94 THEN 'rejected'
            ELSE 'dead' END,
       at + (now() - at) / 2
FROM (
    SELECT g,
           CASE WHEN g % 5 = 4 THEN 'imei' ELSE 'msisdn' END AS kind,
           CASE WHEN g % 5 = 4 THEN bench_imei(g) ELSE '+9189' || lpad(g::text, 8, '0') END
               AS value,
           (ARRAY['jammu', 'samba', 'kathua', 'udhampur', 'reasi', 'doda', 'kishtwar', 'ramban',
                  'rajouri', 'poonch', 'cps-jammu'])[1 + (g / 10) % 11] AS unit,
           (ARRAY['kyc_update', 'olx_marketplace', 'fake_loan_app', 'investment',
                  'social_media', 'other'])[1 + (g / 10) % 6] AS category,
           now() - make_interval(secs => 365 * 86400 * ($3 - g)::double precision / $3) AS at,
           (($3 - g) * 365 < $3 * 3) AS recent,
           ((g * 7919) % 100)::int AS p
    FROM generate_series($1::bigint, $2::bigint - 1) AS g
) s;

-- one order per (target, operator): k is the operator's place, o_state what became of it
CREATE TEMP TABLE IF NOT EXISTS seed_o (
    id bigint, g bigint, k int, op text, status text, ack_status text, ack_reason text,
    stage text, attempts int
) ON COMMIT DROP;

INSERT INTO seed_o
SELECT g * 4 + k + 1, g, k, (ARRAY['jio', 'airtel', 'vi', 'bsnl'])[1 + (g + k) % 4],
       CASE WHEN state = 'dead' THEN 'dead'
            WHEN state <> 'pending' THEN 'acked'
            WHEN p < 60 THEN 'queued'
            ELSE 'sent' END,
       CASE state WHEN 'blocked' THEN CASE WHEN p >= 96 THEN 'already_blocked' ELSE 'blocked' END
                  WHEN 'partially_blocked' THEN CASE WHEN k = 3 THEN 'rejected' ELSE 'blocked' END
                  WHEN 'unblocked' THEN 'blocked'
                  WHEN 'retained' THEN 'retained'
                  WHEN 'rejected' THEN 'rejected' END,
       CASE WHEN state = 'rejected' OR (state = 'partially_blocked' AND k = 3)
            THEN 'subscriber details do not match the order' END,
       CASE WHEN state = 'pending' AND p >= 80 THEN 'reverification_pending' END,
       CASE WHEN state = 'dead' THEN 9 WHEN state = 'pending' AND p < 60 THEN p % 3 ELSE 1 END
FROM seed_t
CROSS JOIN LATERAL generate_series(0, CASE WHEN kind = 'imei' THEN 3 ELSE 0 END) AS k;

INSERT INTO block_requests (id, unit_code, case_ref, category, action, priority, legal_basis,
                            status, target_count, open_targets, failed_targets, created_by,
                            created_at, updated_at)
SELECT g / 10 + 1, min(unit), 'FIR-' || (g / 10 + 1) || '/seed', min(category), 'block',
       CASE WHEN (g / 10) % 10 = 0 THEN 'urgent' ELSE 'normal' END,
       'Section 69A, IT Act 2000',
       CASE WHEN count(*) FILTER (WHERE state = 'pending') > 0 THEN 'dispatching'
            WHEN count(*) FILTER (WHERE state IN ('rejected', 'dead')) > 0
                THEN 'partially_completed'
            ELSE 'completed' END,
       count(*), count(*) FILTER (WHERE state = 'pending'),
       count(*) FILTER (WHERE state IN ('rejected', 'dead')),
       (SELECT min(id) FROM tokens), min(at), max(at) + interval '2 seconds'
FROM seed_t GROUP BY g / 10;

-- the requests' trigger opened their cases now; a case opens when its first request is filed
UPDATE cases c SET created_at = s.at, updated_at = s.at
FROM (SELECT min(unit) AS unit, 'FIR-' || (g / 10 + 1) || '/seed' AS case_ref, min(at) AS at
      FROM seed_t GROUP BY g / 10) AS s
WHERE c.unit_code = s.unit AND c.case_ref = s.case_ref;

INSERT INTO block_requests (id, unit_code, case_ref, category, action, priority, reason,
                            status, target_count, open_targets, failed_targets, created_by,
                            created_at, updated_at)
SELECT ($3 + 9) / 10 + g / 10 + 1, min(unit), 'FIR-' || (g / 10 + 1) || '/seed',
       min(category), 'unblock', 'normal', 'subscriber verified, court order',
       'completed', count(*), 0, 0, (SELECT min(id) FROM tokens), min(unblocked_at),
       max(unblocked_at) + interval '2 seconds'
FROM seed_t WHERE state = 'unblocked' GROUP BY g / 10;

INSERT INTO targets (id, kind, value, unit_code, category, first_request_id, action, state,
                     state_changed_at, created_at, updated_at)
SELECT g + 1, kind, value, unit, category, g / 10 + 1,
       CASE WHEN state = 'unblocked' THEN 'unblock' ELSE 'block' END, state,
       CASE WHEN state = 'unblocked' THEN unblocked_at + interval '2 seconds'
            WHEN state = 'dead' THEN at + interval '3 days'
            WHEN state = 'pending' THEN at
            ELSE at + interval '2 seconds' END,
       at, at + interval '2 seconds'
FROM seed_t;

INSERT INTO target_event_counts (unit_code, category, kind, day, event, n)
SELECT unit, category, kind, report_day(day_at), event, count(*)
FROM (
    SELECT unit, category, kind, at + interval '2 seconds' AS day_at,
           CASE WHEN state = 'unblocked' THEN 'blocked' ELSE state END AS event
    FROM seed_t WHERE state NOT IN ('pending', 'dead')
    UNION ALL
    SELECT unit, category, kind, unblocked_at + interval '2 seconds', 'unblocked'
    FROM seed_t WHERE state = 'unblocked'
    UNION ALL
    SELECT unit, category, kind, at + interval '3 days', 'dead' FROM seed_t WHERE state = 'dead'
) e
GROUP BY 1, 2, 3, 4, 5;

INSERT INTO request_targets (request_id, target_id, position, submitted_value, outcome, holds,
                             done, released_by)
SELECT g / 10 + 1, g + 1, g % 10, value, 'queued', state <> 'unblocked', state <> 'pending',
       CASE WHEN state = 'unblocked' THEN ($3 + 9) / 10 + g / 10 + 1 END
FROM seed_t;

INSERT INTO request_targets (request_id, target_id, position, submitted_value, outcome, holds,
                             done)
SELECT ($3 + 9) / 10 + g / 10 + 1, g + 1, g % 10, value, 'queued', false, true
FROM seed_t WHERE state = 'unblocked';

INSERT INTO orders (id, seq, target_id, kind, value, operator_code, action, request_id,
                    unit_code, category, urgent, status, attempts, next_attempt_at, created_at,
                    due_at, first_sent_at, sent_at, ack_due_at, acked_at, ack_status,
                    ack_reason, operator_ref, dead_at, last_error, stage, stage_at)
SELECT o.id, o.id, o.g + 1, t.kind, t.value, o.op, 'block', o.g / 10 + 1, t.unit, t.category,
       (o.g / 10) % 10 = 0, o.status, o.attempts,
       CASE WHEN o.status = 'queued' THEN t.at + o.attempts * interval '30 seconds'
            ELSE t.at END,
       t.at,
       CASE WHEN o.status IN ('queued', 'sent') THEN t.at + interval '1 hour' END,
       CASE WHEN o.status <> 'queued' THEN t.at + interval '1 second' END,
       CASE WHEN o.status <> 'queued' THEN t.at + interval '1 second' END,
       CASE WHEN o.status = 'sent' THEN t.at + interval '1 hour' END,
       CASE WHEN o.status = 'acked' THEN t.at + interval '2 seconds' END,
       o.ack_status, o.ack_reason,
       CASE WHEN o.status = 'acked' THEN 'seed-' || o.id END,
       CASE WHEN o.status = 'dead' THEN t.at + interval '3 days' END,
       CASE WHEN o.status = 'dead' THEN 'HTTP 503 from the operator after 9 attempts'
            WHEN o.status = 'queued' AND o.attempts > 0 THEN 'HTTP 502 from the operator' END,
       o.stage, CASE WHEN o.stage IS NOT NULL THEN t.at + interval '10 minutes' END
FROM seed_o o JOIN seed_t t ON t.g = o.g;

-- the unblock orders of unblocked targets: after every block order, in ids and seq
INSERT INTO orders (id, seq, target_id, kind, value, operator_code, action, request_id,
                    unit_code, category, urgent, status, attempts, next_attempt_at, created_at,
                    first_sent_at, sent_at, acked_at, ack_status, operator_ref)
SELECT 4 * $3::bigint + o.id, 4 * $3::bigint + o.id, o.g + 1, t.kind, t.value, o.op, 'unblock',
       ($3 + 9) / 10 + o.g / 10 + 1, t.unit, t.category, false, 'acked', 1, t.unblocked_at,
       t.unblocked_at, t.unblocked_at + interval '1 second', t.unblocked_at + interval '1 second',
       t.unblocked_at + interval '2 seconds', 'unblocked', 'seed-' || (4 * $3::bigint + o.id)
FROM seed_o o JOIN seed_t t ON t.g = o.g WHERE t.state = 'unblocked';

INSERT INTO order_stages (order_id, stage, at, recorded_at)
SELECT o.id, s.stage, t.at + s.after, t.at + s.after
FROM seed_o o JOIN seed_t t ON t.g = o.g
CROSS JOIN (VALUES ('outgoing_barred', interval '2 minutes'),
                   ('incoming_barred', interval '5 minutes'),
                   ('reverification_pending', interval '10 minutes')) AS s(stage, after)
WHERE o.stage IS NOT NULL OR o.ack_status = 'retained';

INSERT INTO attempts (order_id, attempt_no, worker, started_at, finished_at, outcome, error,
                      operator_status, http_status)
SELECT o.id, a, 'seed', t.at + a * interval '1 second', t.at + a * interval '1 second',
       CASE WHEN o.status = 'dead' OR a < o.attempts THEN 'transient'
            WHEN o.status = 'acked' THEN 'acknowledged' ELSE 'accepted' END,
       CASE WHEN o.status = 'dead' OR a < o.attempts THEN 'HTTP 503 from the operator' END,
       CASE WHEN o.status = 'acked' AND a = o.attempts THEN o.ack_status END,
       CASE WHEN o.status = 'dead' OR a < o.attempts THEN 503 ELSE 200 END
FROM seed_o o JOIN seed_t t ON t.g = o.g
CROSS JOIN LATERAL generate_series(1, o.attempts) AS a;

INSERT INTO attempts (order_id, attempt_no, worker, started_at, finished_at, outcome,
                      operator_status, http_status)
SELECT 4 * $3::bigint + o.id, 1, 'seed', t.unblocked_at + interval '1 second',
       t.unblocked_at + interval '1 second', 'acknowledged', 'unblocked', 200
FROM seed_o o JOIN seed_t t ON t.g = o.g WHERE t.state = 'unblocked';

-- what each operator was confirmed to block, then to unblock (as the ack trigger logs it)
INSERT INTO blocklist_log (operator_code, kind, value, change, order_id, at)
SELECT operator_code, kind, value, CASE WHEN action = 'block' THEN 'added' ELSE 'removed' END,
       id, acked_at
FROM orders
WHERE target_id > $1 AND target_id <= $2 AND status = 'acked'
  AND order_count_state(status, ack_status)
      = CASE WHEN action = 'block' THEN 'blocked' ELSE 'unblocked' END
ORDER BY acked_at, id;

INSERT INTO msisdn_routes (msisdn, operator_code, serves, learned_at)
SELECT value, (ARRAY['jio', 'airtel', 'vi', 'bsnl'])[1 + g % 4], true, at + interval '2 seconds'
FROM seed_t WHERE kind = 'msisdn';

-- a filing per request and an acknowledgement per order would be ~15 M audit rows at 10 M
-- targets; one row per request filing plus one per ten acknowledgements keeps the chains'
-- shape (16 chains, ids ascending with time) at a third of that
SELECT audit_append(json_agg(e ORDER BY e.at))
FROM (
    SELECT min(t.at) AS at, 'seed-investigator' AS actor, 'investigator' AS role,
           'request.filed.block' AS action, 'block_request' AS entity_type,
           (t.g / 10 + 1)::text AS entity_id,
           jsonb_build_object('unit', min(t.unit), 'targets', count(*)) AS details,
           '{"seed":' || (t.g / 10 + 1) || '}' AS canonical
    FROM seed_t t GROUP BY t.g / 10
    UNION ALL
    SELECT t.at + interval '2 seconds', 'operator:' || o.op, 'operator', 'ack.applied', 'order',
           o.id::text, jsonb_build_object('status', o.ack_status), '{"seed":' || o.id || '}'
    FROM seed_o o JOIN seed_t t ON t.g = o.g
    WHERE o.status = 'acked' AND o.id % 10 = 0
) e;
