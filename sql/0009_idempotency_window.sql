-- Idempotency-Keys are kept for a window (settings.idempotency_window_s, 24 h by default) and
-- purged by the workers' upkeep, oldest first: this index finds them without a scan.

CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
