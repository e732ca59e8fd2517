-- What settling reads, in one round trip: the targets, locked in id order, then their pairs'
-- latest decisions. The second read is a statement of its own in a VOLATILE function, so its
-- snapshot is taken once the locks are held: a transaction that changed those orders and held
-- a target's lock has committed by then. (One statement doing both would read the orders as
-- they were before a lock it waited for.) Target rows come first, with no operator_code and
-- their state in `status`; then one row per pair.
CREATE FUNCTION settle_read(target_ids bigint[])
RETURNS TABLE (target_id bigint, operator_code text, action text, status text, ack_status text,
               request_id bigint, seq bigint)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN QUERY
    SELECT t.id, NULL::text, t.action, t.state, NULL::text, NULL::bigint, NULL::bigint
    FROM targets t WHERE t.id = ANY(target_ids) ORDER BY t.id FOR UPDATE;
    RETURN QUERY
    SELECT p.target_id, p.operator_code, p.action, p.status, p.ack_status, p.request_id, p.seq
    FROM pair_latest(target_ids) p;
END $$;
