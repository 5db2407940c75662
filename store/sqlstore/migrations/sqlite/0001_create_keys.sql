CREATE TABLE IF NOT EXISTS {prefix}keys (
    id              BLOB NOT NULL PRIMARY KEY,
    name            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    owner           TEXT NOT NULL DEFAULT '',
    workspace       TEXT NOT NULL DEFAULT '',
    role            TEXT NOT NULL DEFAULT '',
    scopes          TEXT,
    metadata        TEXT,
    hash            BLOB NOT NULL,
    pepper_id       TEXT NOT NULL DEFAULT '',
    prev_hash       BLOB,
    prev_pepper_id  TEXT NOT NULL DEFAULT '',
    prev_expires_at TEXT,
    hint            TEXT NOT NULL DEFAULT '',
    rate_limit      INTEGER NOT NULL DEFAULT 0,
    rate_window_ns  INTEGER NOT NULL DEFAULT 0,
    remaining_uses  INTEGER,
    allowed_cidrs   TEXT,
    created_at      TEXT,
    updated_at      TEXT,
    expires_at      TEXT,
    last_used_at    TEXT,
    revoked_at      TEXT,
    version         INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX IF NOT EXISTS {prefix}keys_hash_key ON {prefix}keys (hash);
CREATE UNIQUE INDEX IF NOT EXISTS {prefix}keys_workspace_name_key ON {prefix}keys (workspace, name);
CREATE INDEX IF NOT EXISTS {prefix}keys_prev_hash_idx ON {prefix}keys (prev_hash);
CREATE INDEX IF NOT EXISTS {prefix}keys_workspace_id_idx ON {prefix}keys (workspace, id);
CREATE INDEX IF NOT EXISTS {prefix}keys_owner_id_idx ON {prefix}keys (owner, id);
