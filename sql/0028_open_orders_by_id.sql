-- The open orders in id order, with what says whether each is overdue (order_overdue, sql/0006)
-- and whose it is. The overdue list (/v1/overdue, the dashboard) and the escalation of overdue
-- orders read them oldest first and stop at a page: through orders_due_idx (due_at) they
-- collected every open order and sorted them by id, 41 ms for the first 25 of a backlog of
-- 72,700 at 10 M targets. This index takes orders_due_idx's place, with the same predicate,
-- so an order's way through its states writes no more index entries than before. The service
-- levels' count of orders past their deadline filters the open orders on the included due_at.
-- Built in 5 s at 10 M targets (17 M orders, the table in memory), holding writes to orders.

CREATE INDEX orders_open_id_idx ON orders (id)
    INCLUDE (status, operator_code, due_at, ack_due_at, overdue_at)
    WHERE status IN ('queued', 'in_flight', 'sent');
DROP INDEX orders_due_idx;
