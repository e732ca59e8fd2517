-- bench.scale's fast path: targets [$1, $2) with their requests, request links, orders,
-- attempts, acks and learned routes, written by set-based SQL instead of the API.
-- Target g: an IMEI when g % 5 = 4 (four orders, one per operator), else an MSISDN (one
-- order, operator g % 4). One block request per 100 targets; created_at spreads the rows
-- over the last year, oldest first. Every order is acknowledged `blocked`. The counters are
-- kept by the schema's own triggers; state-change events are added in aggregate.
-- Audit rows are not seeded (the hash chain is sequential; no measured query reads it).

CREATE TEMP TABLE IF NOT EXISTS seed_t (
    g bigint, kind text, value text, unit text, category text, at timestamptz
) ON COMMIT DROP;

INSERT INTO seed_t
SELECT g,
       CASE WHEN g % 5 = 4 THEN 'imei' ELSE 'msisdn' END,
       CASE WHEN g % 5 = 4 THEN bench_imei(g) ELSE '+9189' || lpad(g::text, 8, '0') END,
       (ARRAY['jammu', 'samba', 'kathua', 'udhampur', 'reasi', 'doda', 'kishtwar', 'ramban',
              'rajouri', 'poonch', 'cps-jammu'])[1 + (g / 100) % 11],
       (ARRAY['kyc_update', 'olx_marketplace', 'fake_loan_app', 'investment', 'social_media',
              'other'])[1 + (g / 100) % 6],
       now() - make_interval(secs => 365 * 86400 * ($3 - g)::double precision / $3)
FROM generate_series($1::bigint, $2::bigint - 1) AS g;

INSERT INTO block_requests (id, unit_code, case_ref, category, action, priority, status,
                            target_count, open_targets, failed_targets, created_by, created_at,
                            updated_at)
SELECT g / 100 + 1, unit, 'FIR-' || (g / 100 + 1) || '/seed', category, 'block', 'normal',
       'completed', 100, 0, 0, (SELECT min(id) FROM tokens), at, at + interval '2 seconds'
FROM seed_t WHERE g % 100 = 0;

INSERT INTO targets (id, kind, value, unit_code, category, first_request_id, action, state,
                     state_changed_at, created_at, updated_at)
SELECT g + 1, kind, value, unit, category, g / 100 + 1, 'block', 'blocked',
       at + interval '2 seconds', at, at + interval '2 seconds'
FROM seed_t;

INSERT INTO target_event_counts (unit_code, category, kind, day, event, n)
SELECT unit, category, kind, report_day(at + interval '2 seconds'), 'blocked', count(*)
FROM seed_t GROUP BY 1, 2, 3, 4;

INSERT INTO request_targets (request_id, target_id, position, submitted_value, outcome, holds,
                             done)
SELECT g / 100 + 1, g + 1, g % 100, value, 'queued', true, true FROM seed_t;

INSERT INTO orders (id, target_id, kind, value, operator_code, action, request_id, unit_code,
                    category, urgent, status, attempts, next_attempt_at, created_at,
                    first_sent_at, sent_at, acked_at, ack_status, operator_ref)
SELECT g * 4 + k + 1, g + 1, kind, value, op, 'block', g / 100 + 1, unit, category, false,
       'acked', 1, at, at, at + interval '1 second', at + interval '1 second',
       at + interval '2 seconds', 'blocked', 'seed-' || (g * 4 + k + 1)
FROM seed_t
CROSS JOIN LATERAL (
    SELECT k, (ARRAY['jio', 'airtel', 'vi', 'bsnl'])[1 + (g + k) % 4] AS op
    FROM generate_series(0, CASE WHEN kind = 'imei' THEN 3 ELSE 0 END) AS k
) o;

INSERT INTO attempts (order_id, attempt_no, worker, started_at, finished_at, outcome,
                      operator_status)
SELECT g * 4 + k + 1, 1, 'seed', at + interval '1 second', at + interval '1 second',
       'acknowledged', 'blocked'
FROM seed_t
CROSS JOIN LATERAL generate_series(0, CASE WHEN kind = 'imei' THEN 3 ELSE 0 END) AS k;

INSERT INTO msisdn_routes (msisdn, operator_code, serves, learned_at)
SELECT value, (ARRAY['jio', 'airtel', 'vi', 'bsnl'])[1 + g % 4], true, at + interval '2 seconds'
FROM seed_t WHERE kind = 'msisdn';
