-- Cases, fraud categories as data, money per case, and days counted in the zone's time zone.

-- Fraud categories are data an admin extends (`fraudblock category add`, POST /v1/categories);
-- a request's category must be one of them.
CREATE TABLE categories (
    code       text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_]{1,31}$'),
    label      text NOT NULL CHECK (length(label) BETWEEN 1 AND 100),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO categories (code, label) VALUES
    ('kyc_update',       'KYC update scam'),
    ('olx_marketplace',  'OLX / marketplace fraud'),
    ('fake_loan_app',    'Fake loan app'),
    ('investment',       'Investment fraud'),
    ('social_media',     'Social media'),
    ('other',            'Other'),
    ('electricity_bill', 'Electricity bill scam'),
    ('job',              'Job fraud'),
    ('impersonation',    'Impersonation');
ALTER TABLE block_requests DROP CONSTRAINT block_requests_category_check;
ALTER TABLE block_requests ADD CONSTRAINT block_requests_category_fkey
    FOREIGN KEY (category) REFERENCES categories (code);

-- A case is (unit, case_ref): FIR details, and the money its entries hold, release and refund
-- (kept by money_entries_apply; what is still on hold never goes below zero).
CREATE TABLE cases (
    id             bigserial UNIQUE,
    unit_code      text NOT NULL REFERENCES units (code),
    case_ref       text NOT NULL CHECK (length(case_ref) BETWEEN 1 AND 64),
    category       text REFERENCES categories (code),  -- its first block request's
    police_station text,
    fir_date       date,
    ncrp_ack       text,
    loss_paise     bigint CHECK (loss_paise >= 0),
    held_paise     bigint NOT NULL DEFAULT 0 CHECK (held_paise >= 0),
    released_paise bigint NOT NULL DEFAULT 0 CHECK (released_paise >= 0),
    refunded_paise bigint NOT NULL DEFAULT 0 CHECK (refunded_paise >= 0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (unit_code, case_ref),
    CONSTRAINT cases_hold_not_overdrawn CHECK (held_paise - released_paise - refunded_paise >= 0)
);

INSERT INTO cases (unit_code, case_ref, category, created_at)
SELECT DISTINCT ON (unit_code, case_ref) unit_code, case_ref, category, created_at
FROM block_requests WHERE action = 'block' ORDER BY unit_code, case_ref, id;

-- A block request names its case; the first one creates it. DO NOTHING takes no lock on a case
-- that exists, so filings never wait on a money entry. (An unblock creates no case: it only
-- releases holds of one.)
CREATE FUNCTION cases_from_requests() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO cases (unit_code, case_ref, category)
    SELECT DISTINCT ON (unit_code, case_ref) unit_code, case_ref, category
    FROM new_rows WHERE action = 'block' ORDER BY unit_code, case_ref, id
    ON CONFLICT (unit_code, case_ref) DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER block_requests_make_cases AFTER INSERT ON block_requests
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cases_from_requests();

-- Money held (lien marked), released and refunded for a case. Entries are never edited: a
-- mistake is reversed by a compensating entry (`reverses`), which carries the original's kind,
-- amount and category and takes it back out of every total.
CREATE TABLE money_entries (
    id           bigserial PRIMARY KEY,
    unit_code    text NOT NULL,
    case_ref     text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('hold', 'release', 'refund')),
    amount_paise bigint NOT NULL CHECK (amount_paise > 0),
    bank         text NOT NULL CHECK (length(bank) BETWEEN 1 AND 200),
    account_ref  text,  -- masked beyond its last four characters
    entry_date   date NOT NULL,
    note         text,
    reverses     bigint UNIQUE REFERENCES money_entries (id),
    category     text NOT NULL,  -- the case's, counted under
    created_by   bigint NOT NULL REFERENCES tokens (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (unit_code, case_ref) REFERENCES cases (unit_code, case_ref)
);
CREATE INDEX money_entries_case_idx ON money_entries (unit_code, case_ref, id);

CREATE FUNCTION money_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'money_entries are never edited: % is not allowed; reverse the entry', TG_OP;
END $$;
CREATE TRIGGER money_entries_no_update BEFORE UPDATE OR DELETE ON money_entries
    FOR EACH ROW EXECUTE FUNCTION money_entries_append_only();

-- Money counters, by the day the entry names (a reversal takes its original's day back).
-- Rows are deltas, like the other counters.
CREATE TABLE money_counts (
    unit_code text NOT NULL,
    category  text NOT NULL,
    day       date NOT NULL,
    kind      text NOT NULL,
    amount    bigint NOT NULL,
    entries   bigint NOT NULL
);
CREATE INDEX money_counts_day_idx ON money_counts (day);

-- What entries do to their case's totals and to the counters: the one owner of that rule.
CREATE FUNCTION money_entries_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH effects AS MATERIALIZED (
        SELECT n.unit_code, n.case_ref, n.category, coalesce(o.entry_date, n.entry_date) AS day,
               n.kind,
               CASE WHEN n.reverses IS NULL THEN n.amount_paise ELSE -n.amount_paise END AS amount,
               CASE WHEN n.reverses IS NULL THEN 1 ELSE -1 END AS entries
        FROM new_rows n LEFT JOIN money_entries o ON o.id = n.reverses
    ), totals AS (
        UPDATE cases c SET
            held_paise = c.held_paise + s.held, released_paise = c.released_paise + s.released,
            refunded_paise = c.refunded_paise + s.refunded, updated_at = now()
        FROM (SELECT unit_code, case_ref,
                     coalesce(sum(amount) FILTER (WHERE kind = 'hold'), 0) AS held,
                     coalesce(sum(amount) FILTER (WHERE kind = 'release'), 0) AS released,
                     coalesce(sum(amount) FILTER (WHERE kind = 'refund'), 0) AS refunded
              FROM effects GROUP BY 1, 2) s
        WHERE c.unit_code = s.unit_code AND c.case_ref = s.case_ref
    )
    INSERT INTO money_counts (unit_code, category, day, kind, amount, entries)
    SELECT unit_code, category, day, kind, sum(amount), sum(entries)
    FROM effects GROUP BY 1, 2, 3, 4;
    RETURN NULL;
END $$;
CREATE TRIGGER money_entries_applied AFTER INSERT ON money_entries
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION money_entries_apply();

-- The zone's time zone: the counters' days are its days (FRAUDBLOCK_REPORT_TZ; report_zone_set
-- moves the counters when it changes). Rows counted so far were counted by UTC day.
CREATE TABLE report_zone (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    zone      text NOT NULL
);
INSERT INTO report_zone (zone) VALUES ('UTC');

-- The day a moment falls on in the zone's time zone. report_zone_set writes the zone into the
-- body, so the function stays one expression that the planner inlines (a sub-select reading
-- report_zone would cost a function call per counted row).
CREATE FUNCTION report_day(ts timestamptz) RETURNS date LANGUAGE sql STABLE AS
$$ SELECT (ts AT TIME ZONE 'UTC')::date $$;

-- Count by another time zone's days: targets and orders are counted again from their rows;
-- each target's latest state change moves to its new day (earlier changes are not kept, so they
-- stay on the day they were counted on). Returns whether anything changed.
CREATE FUNCTION report_zone_set(tz text) RETURNS boolean LANGUAGE plpgsql AS $fn$
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
    INSERT INTO target_state_counts (unit_code, category, kind, day, state, n)
    SELECT unit_code, category, kind, (created_at AT TIME ZONE tz)::date, state, count(*)
    FROM targets GROUP BY 1, 2, 3, 4, 5;
    DELETE FROM order_state_counts;
    INSERT INTO order_state_counts (operator_code, unit_code, category, kind, day, state, n)
    SELECT operator_code, unit_code, category, kind, (created_at AT TIME ZONE tz)::date,
           order_count_state(status, ack_status), count(*)
    FROM orders GROUP BY 1, 2, 3, 4, 5, 6;
    RETURN true;
END $fn$;

CREATE OR REPLACE FUNCTION targets_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO target_state_counts (unit_code, category, kind, day, state, n)
    SELECT unit_code, category, kind, report_day(created_at), state, count(*)
    FROM new_rows GROUP BY 1, 2, 3, 4, 5;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION targets_count_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO target_state_counts (unit_code, category, kind, day, state, n)
    SELECT unit_code, category, kind, day, state, sum(n) FROM (
        SELECT o.unit_code, o.category, o.kind, report_day(o.created_at) AS day, o.state,
               -1 AS n
        FROM old_rows o JOIN new_rows w ON w.id = o.id WHERE w.state <> o.state
        UNION ALL
        SELECT w.unit_code, w.category, w.kind, report_day(w.created_at), w.state, 1
        FROM old_rows o JOIN new_rows w ON w.id = o.id WHERE w.state <> o.state
    ) d GROUP BY 1, 2, 3, 4, 5 HAVING sum(n) <> 0;
    INSERT INTO target_event_counts (unit_code, category, kind, day, event, n)
    SELECT w.unit_code, w.category, w.kind, report_day(w.state_changed_at), w.state, count(*)
    FROM old_rows o JOIN new_rows w ON w.id = o.id
    WHERE w.state <> o.state AND w.state <> 'pending'
    GROUP BY 1, 2, 3, 4, 5;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION orders_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO order_state_counts (operator_code, unit_code, category, kind, day, state, n)
    SELECT operator_code, unit_code, category, kind, report_day(created_at),
           order_count_state(status, ack_status), count(*)
    FROM new_rows GROUP BY 1, 2, 3, 4, 5, 6;
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
    RETURN NULL;
END $$;

SELECT report_zone_set('Asia/Kolkata');
