-- One-time tokens with which a user sets a first password (the admin created with the
-- tenant, or a user an admin created without one). Only a SHA-256 of the token is kept.
CREATE TABLE setup_tokens (
    token_hash BYTEA PRIMARY KEY,
    tenant_id VARCHAR(50) NOT NULL,
    user_id BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ
);
CREATE INDEX setup_tokens_user_idx ON setup_tokens (tenant_id, user_id);
