CREATE TABLE IF NOT EXISTS {prefix}console_sessions (
    id         BLOB NOT NULL PRIMARY KEY,
    owner      TEXT NOT NULL,
    data       BLOB NOT NULL,
    flash      TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS {prefix}console_sessions_owner_idx ON {prefix}console_sessions (owner, created_at);
CREATE INDEX IF NOT EXISTS {prefix}console_sessions_expires_idx ON {prefix}console_sessions (expires_at);
CREATE TABLE IF NOT EXISTS {prefix}console_nonces (
    nonce      BLOB NOT NULL PRIMARY KEY,
    expires_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS {prefix}console_nonces_expires_idx ON {prefix}console_nonces (expires_at);
CREATE TABLE IF NOT EXISTS {prefix}console_owners (
    owner TEXT NOT NULL PRIMARY KEY
);
