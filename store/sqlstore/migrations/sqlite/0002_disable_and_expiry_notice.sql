ALTER TABLE {prefix}keys ADD COLUMN disabled_at TEXT;
ALTER TABLE {prefix}keys ADD COLUMN expiry_notified_at TEXT;
CREATE INDEX IF NOT EXISTS {prefix}keys_expires_at_idx ON {prefix}keys (expires_at);
