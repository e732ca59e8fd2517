-- Fewer index writes per order.
--
-- Targets and their request links change state in place once per acknowledgement; none of
-- those columns is indexed, so with room left on the page the update stays on it (HOT) and
-- no index gets a new entry. Pages filled later keep 10% free for that.
--
-- orders(request_id) was read only when a supervisor decides or cancels a request, and cost
-- an index entry on every order insert and every order update (claim, send, ack). Those few
-- statements now find the request's orders through request_targets and orders(target_id).

ALTER TABLE targets SET (fillfactor = 90);
ALTER TABLE request_targets SET (fillfactor = 90);
DROP INDEX orders_request_idx;
