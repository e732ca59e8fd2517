-- Ten jobs' lifecycle, ten jobs per transaction: insert, claim (SKIP LOCKED), complete.
-- Each statement commits on its own, as a queue's producer, claimer and completer would.
\set n 10
INSERT INTO bench_jobs (payload) SELECT '{"noop": true}' FROM generate_series(1, :n);
UPDATE bench_jobs SET status = 'running', worker = :client_id, attempts = attempts + 1,
       started_at = now()
WHERE id IN (SELECT id FROM bench_jobs WHERE status = 'queued' ORDER BY id
             LIMIT :n FOR UPDATE SKIP LOCKED);
UPDATE bench_jobs SET status = 'done', finished_at = now()
WHERE status = 'running' AND worker = :client_id;
