CREATE TABLE IF NOT EXISTS {prefix}identities (
    id                    UUID PRIMARY KEY,
    external_id           TEXT NOT NULL,
    workspace             TEXT NOT NULL DEFAULT '',
    metadata              JSONB,
    rate_limits           JSONB,
    credits_remaining     BIGINT,
    credits_refill_amount BIGINT,
    credits_refill_every  TEXT NOT NULL DEFAULT '',
    credits_refill_day    INTEGER NOT NULL DEFAULT 0,
    credits_refilled_at   TIMESTAMPTZ,
    created_at            TIMESTAMPTZ,
    updated_at            TIMESTAMPTZ,
    version               BIGINT NOT NULL DEFAULT 1,
    CONSTRAINT {prefix}identities_external_key UNIQUE (workspace, external_id)
);
CREATE INDEX IF NOT EXISTS {prefix}identities_workspace_id_idx ON {prefix}identities (workspace, id);
ALTER TABLE {prefix}keys ADD COLUMN IF NOT EXISTS identity_id UUID;
CREATE INDEX IF NOT EXISTS {prefix}keys_identity_id_idx ON {prefix}keys (identity_id, id);
