-- The jobs table the pgbench lifecycle scripts work on: a minimal durable queue.
DROP TABLE IF EXISTS bench_jobs;
CREATE TABLE bench_jobs (
    id          bigserial PRIMARY KEY,
    status      text NOT NULL DEFAULT 'queued',
    payload     jsonb NOT NULL DEFAULT '{}',
    attempts    integer NOT NULL DEFAULT 0,
    worker      integer,
    created_at  timestamptz NOT NULL DEFAULT now(),
    started_at  timestamptz,
    finished_at timestamptz
);
CREATE INDEX bench_jobs_queued_idx ON bench_jobs (id) WHERE status = 'queued';
CREATE INDEX bench_jobs_running_idx ON bench_jobs (worker) WHERE status = 'running';
