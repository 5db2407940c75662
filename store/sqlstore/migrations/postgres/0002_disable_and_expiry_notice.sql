ALTER TABLE {prefix}keys ADD COLUMN IF NOT EXISTS disabled_at TIMESTAMPTZ;
ALTER TABLE {prefix}keys ADD COLUMN IF NOT EXISTS expiry_notified_at TIMESTAMPTZ;
CREATE INDEX IF NOT EXISTS {prefix}keys_expires_at_idx ON {prefix}keys (expires_at);
