-- The request and case lists newest first by the time each was filed, read along an index
-- whatever their filters ask.
--
-- /v1/block-requests (its CSV, the console's list) and /v1/cases went newest first by id,
-- through (unit_code, id), (status, id) or the id's own index, and filtered on the time,
-- category, money on hold, police station or case reference prefix as they went. A period
-- that ended months ago, or a filter few rows meet, was reached only after every newer row was
-- read and skipped: at 1 M targets (180,000 requests, 100,000 cases) a month of requests in
-- March took 65 ms (148,000 rows read for 51 shown), everything before January 255 ms, cases
-- with money on hold 92 ms, a category without requests or a police station no case has a
-- sequential scan; at 10 M ten times that. Each index here ends in (created_at, id), the
-- lists' order, so a period is one range of it read from its end and the read stops at the
-- page. For requests they replace the three they extend (the same number of index entries per
-- request filed), and a fourth leads with the category. Built in seconds at 10 M, holding
-- writes to the two tables meanwhile.

CREATE INDEX block_requests_created_id_idx ON block_requests (created_at, id);
CREATE INDEX block_requests_unit_created_idx ON block_requests (unit_code, created_at, id);
CREATE INDEX block_requests_status_created_idx ON block_requests (status, created_at, id);
CREATE INDEX block_requests_category_created_idx ON block_requests (category, created_at, id);
DROP INDEX block_requests_created_idx, block_requests_unit_idx, block_requests_status_idx;

-- pg_trgm: a police station found by any part of its name (ILIKE '%…%'); shipped with
-- Postgres's contrib modules and trusted (a database owner may create it).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX cases_created_id_idx ON cases (created_at, id);
CREATE INDEX cases_unit_created_idx ON cases (unit_code, created_at, id);
CREATE INDEX cases_category_created_idx ON cases (category, created_at, id);
CREATE INDEX cases_on_hold_created_idx ON cases (created_at, id)
    WHERE held_paise - released_paise - refunded_paise > 0;
CREATE INDEX cases_case_ref_prefix_idx ON cases (case_ref text_pattern_ops);  -- starts_with
CREATE INDEX cases_police_station_trgm_idx ON cases USING gin (police_station gin_trgm_ops);
