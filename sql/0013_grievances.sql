-- Grievances: a subscriber cut off by a block complains through their operator. A grievance is
-- opened against every case that holds the target; each holding case decides for itself
-- (upheld: an unblock is filed for that case; dismissed, with a reason). The grievance is
-- closed once every case has decided.

CREATE TABLE grievances (
    id             bigserial PRIMARY KEY,
    target_id      bigint NOT NULL REFERENCES targets (id),
    operator_code  text NOT NULL REFERENCES operators (code),
    subscriber_ref text NOT NULL CHECK (length(subscriber_ref) BETWEEN 1 AND 200),
    reason         text NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    status         text NOT NULL DEFAULT 'open'
                   CHECK (status IN ('open', 'upheld', 'dismissed', 'partially_upheld')),
    due_at         timestamptz NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    closed_at      timestamptz
);
CREATE INDEX grievances_open_idx ON grievances (due_at) WHERE status = 'open';
CREATE INDEX grievances_target_idx ON grievances (target_id);

CREATE TABLE grievance_cases (
    grievance_id       bigint NOT NULL REFERENCES grievances (id),
    unit_code          text NOT NULL REFERENCES units (code),
    case_ref           text NOT NULL,
    decision           text NOT NULL DEFAULT 'pending'
                       CHECK (decision IN ('pending', 'upheld', 'dismissed')),
    reason             text,
    decided_by         bigint REFERENCES tokens (id),
    decided_at         timestamptz,
    unblock_request_id bigint REFERENCES block_requests (id),
    PRIMARY KEY (grievance_id, unit_code, case_ref)
);
CREATE INDEX grievance_cases_unit_idx ON grievance_cases (unit_code, grievance_id);
