CREATE TABLE IF NOT EXISTS {prefix}retired (
    hash       BYTEA PRIMARY KEY,
    pepper_id  TEXT NOT NULL DEFAULT '',
    retired_at TIMESTAMPTZ NOT NULL
);
