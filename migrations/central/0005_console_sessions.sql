-- Sessions of the operator console (src/auth/console_session.rs). The browser holds a
-- signed token naming the session; a session counts only while its row is here, not
-- ended and not expired, so signing out ends it on every replica at once.
CREATE TABLE console_sessions (
    session_id UUID PRIMARY KEY,
    subject VARCHAR(200) NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    ended_at TIMESTAMPTZ
);
CREATE INDEX console_sessions_expires_idx ON console_sessions (expires_at);
