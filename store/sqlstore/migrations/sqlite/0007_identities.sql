CREATE TABLE IF NOT EXISTS {prefix}identities (
    id                    BLOB NOT NULL PRIMARY KEY,
    external_id           TEXT NOT NULL,
    workspace             TEXT NOT NULL DEFAULT '',
    metadata              TEXT,
    rate_limits           TEXT,
    credits_remaining     INTEGER,
    credits_refill_amount INTEGER,
    credits_refill_every  TEXT NOT NULL DEFAULT '',
    credits_refill_day    INTEGER NOT NULL DEFAULT 0,
    credits_refilled_at   TEXT,
    created_at            TEXT,
    updated_at            TEXT,
    version               INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX IF NOT EXISTS {prefix}identities_external_key ON {prefix}identities (workspace, external_id);
CREATE INDEX IF NOT EXISTS {prefix}identities_workspace_id_idx ON {prefix}identities (workspace, id);
ALTER TABLE {prefix}keys ADD COLUMN identity_id BLOB;
CREATE INDEX IF NOT EXISTS {prefix}keys_identity_id_idx ON {prefix}keys (identity_id, id);
