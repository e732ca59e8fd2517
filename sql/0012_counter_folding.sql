-- Counter folding in proportion to the new deltas only.
--
-- Upkeep used to delete and re-insert every counter row every few seconds, so its cost grew
-- with the history kept (a year of days × units × categories × kinds × states). Now each row
-- says whether it is a folded total; upkeep folds only the groups that have new delta rows
-- (found through a small partial index), each into one folded row.

ALTER TABLE target_state_counts ADD COLUMN folded boolean NOT NULL DEFAULT false;
ALTER TABLE target_event_counts ADD COLUMN folded boolean NOT NULL DEFAULT false;
ALTER TABLE order_state_counts ADD COLUMN folded boolean NOT NULL DEFAULT false;

CREATE INDEX target_state_counts_new_idx ON target_state_counts (day) WHERE NOT folded;
CREATE INDEX target_event_counts_new_idx ON target_event_counts (day) WHERE NOT folded;
CREATE INDEX order_state_counts_new_idx ON order_state_counts (day) WHERE NOT folded;
