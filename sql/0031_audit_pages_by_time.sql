-- The audit log's pages oldest first by the time of each entry, read along an index whatever
-- their filters ask (as the request and case lists, sql/0030).
--
-- /v1/audit (and the console's audit page) went oldest first by id and filtered on the time,
-- the action and the actor as it went: entries from a date months into the log were reached
-- only after every older entry was read and skipped (at 1 M targets, 300,000 entries: from
-- September 63 ms, filings from September 78 ms), and an action or actor with few entries was
-- a sequential scan of the log (38–61 ms); at 10 M ten times that. Each index here ends in
-- (at, id), the pages' order. The acknowledgements (`ack.applied`, an entry per order, the
-- bulk of the log) are left out of the action's index: a page of them is found at once in
-- time order, and dispatch writes no more index entries per order for the action. The actor's
-- index takes every entry, an index entry more per order acknowledged. Built in seconds at
-- 10 M targets (3 M entries), holding appends meanwhile.

CREATE INDEX audit_log_at_id_idx ON audit_log (at, id);
CREATE INDEX audit_log_action_at_idx ON audit_log (action, at, id) WHERE action <> 'ack.applied';
CREATE INDEX audit_log_actor_at_idx ON audit_log (actor, at, id);
DROP INDEX audit_log_at_idx;
