ALTER TABLE {prefix}keys ADD COLUMN disabled_at DATETIME(6) NULL;
ALTER TABLE {prefix}keys ADD COLUMN expiry_notified_at DATETIME(6) NULL;
CREATE INDEX {prefix}keys_expires_at_idx ON {prefix}keys (expires_at);
