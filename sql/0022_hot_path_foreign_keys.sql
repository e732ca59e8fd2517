-- Foreign keys checked row by row on the hot paths, dropped where the reference cannot
-- dangle. Postgres checks each reference of each inserted row by a query of its own (about
-- 13 µs each): a single-target filing made fifteen such checks for its four orders and its
-- link, and a keyed one two more, a seventh of Postgres's CPU per filing.
--
-- Every reference dropped here is copied from a row its own transaction read or wrote: an
-- order's target and request from the target and request rows intake, a review or a
-- reconciliation has just inserted or locked, its operator from the operators row the insert
-- joins; a link's from the same; a stored Idempotency-Key's from the caller's token and the
-- request filed with it; a target's unit from the request that first named it, whose own unit
-- is still checked; a learned route's operator from the acknowledged order's. None of the rows
-- named is ever deleted (targets, block requests, tokens, operators and units have no delete
-- path), so nothing can take one away afterwards.
-- targets.first_request_id has had no foreign key from the start, for the same reasons.
--
-- Kept: the references a caller's input decides (a request's unit, category and author,
-- checked as it is filed: an unknown category is a 422), and those off the hot path.
ALTER TABLE orders
    DROP CONSTRAINT orders_target_id_fkey,
    DROP CONSTRAINT orders_operator_code_fkey,
    DROP CONSTRAINT orders_request_id_fkey;
ALTER TABLE request_targets
    DROP CONSTRAINT request_targets_request_id_fkey,
    DROP CONSTRAINT request_targets_target_id_fkey;
ALTER TABLE idempotency_keys
    DROP CONSTRAINT idempotency_keys_token_id_fkey,
    DROP CONSTRAINT idempotency_keys_request_id_fkey;
ALTER TABLE targets DROP CONSTRAINT targets_unit_code_fkey;
ALTER TABLE msisdn_routes DROP CONSTRAINT msisdn_routes_operator_code_fkey;
