-- Console sign-in sessions. The browser holds only a random session id (its SHA-256 is the key);
-- the row names the token it was opened with, so a revoked token ends its sessions at once.
CREATE TABLE console_sessions (
    id_hash    bytea PRIMARY KEY,
    token_id   bigint NOT NULL REFERENCES tokens (id),
    csrf       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX console_sessions_expiry_idx ON console_sessions (expires_at);
