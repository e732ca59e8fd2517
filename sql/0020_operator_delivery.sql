-- An operator's rate limit holds across every worker process: its token bucket lives in the
-- operator's row. A lane takes tokens before it claims (operator_take_tokens) and gives back
-- what its claim did not use. The bucket holds at most max(rate, 1) tokens (the burst).

ALTER TABLE operators
    ADD COLUMN rate_tokens    double precision,  -- NULL: full
    ADD COLUMN rate_tokens_at timestamptz;

CREATE FUNCTION operator_take_tokens(p_code text, p_want integer,
                                     OUT granted integer, OUT wait_s double precision)
LANGUAGE plpgsql AS $$
DECLARE
    op    record;
    at    timestamptz;
    burst double precision;
    level double precision;
BEGIN
    SELECT rate_limit_per_s, rate_tokens, rate_tokens_at INTO op
    FROM operators WHERE code = p_code FOR UPDATE;
    IF NOT FOUND OR op.rate_limit_per_s <= 0 THEN
        granted := p_want;
        wait_s := 0;
        RETURN;
    END IF;
    at := clock_timestamp();  -- after the lock: the refill never counts a moment twice
    burst := greatest(op.rate_limit_per_s, 1);
    level := least(burst, coalesce(op.rate_tokens, burst)
                          + greatest(0, extract(epoch FROM at - coalesce(op.rate_tokens_at, at)))
                            * op.rate_limit_per_s);
    granted := least(p_want, floor(level))::integer;
    wait_s := CASE WHEN granted > 0 THEN 0 ELSE (1 - level) / op.rate_limit_per_s END;
    UPDATE operators SET rate_tokens = level - granted, rate_tokens_at = at WHERE code = p_code;
END
$$;

-- file_drop operators get a daily full blocklist file and delta files: how far each has got
-- (the day of its last full file, the cursor its last file ended at).
CREATE TABLE blocklist_drops (
    operator_code text PRIMARY KEY REFERENCES operators (code),
    full_on       date,
    cursor        bigint NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
