CREATE TABLE IF NOT EXISTS {prefix}keys (
    id              UUID PRIMARY KEY,
    name            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    owner           TEXT NOT NULL DEFAULT '',
    workspace       TEXT NOT NULL DEFAULT '',
    role            TEXT NOT NULL DEFAULT '',
    scopes          JSONB,
    metadata        JSONB,
    hash            BYTEA NOT NULL,
    pepper_id       TEXT NOT NULL DEFAULT '',
    prev_hash       BYTEA,
    prev_pepper_id  TEXT NOT NULL DEFAULT '',
    prev_expires_at TIMESTAMPTZ,
    hint            TEXT NOT NULL DEFAULT '',
    rate_limit      BIGINT NOT NULL DEFAULT 0,
    rate_window_ns  BIGINT NOT NULL DEFAULT 0,
    remaining_uses  BIGINT,
    allowed_cidrs   JSONB,
    created_at      TIMESTAMPTZ,
    updated_at      TIMESTAMPTZ,
    expires_at      TIMESTAMPTZ,
    last_used_at    TIMESTAMPTZ,
    revoked_at      TIMESTAMPTZ,
    version         BIGINT NOT NULL DEFAULT 1,
    CONSTRAINT {prefix}keys_hash_key UNIQUE (hash),
    CONSTRAINT {prefix}keys_workspace_name_key UNIQUE (workspace, name)
);
CREATE INDEX IF NOT EXISTS {prefix}keys_prev_hash_idx ON {prefix}keys (prev_hash);
CREATE INDEX IF NOT EXISTS {prefix}keys_workspace_id_idx ON {prefix}keys (workspace, id);
CREATE INDEX IF NOT EXISTS {prefix}keys_owner_id_idx ON {prefix}keys (owner, id);
