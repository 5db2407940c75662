ALTER TABLE {prefix}keys ADD COLUMN rate_limits JSON NULL;
ALTER TABLE {prefix}keys ADD COLUMN refill_amount BIGINT NULL;
ALTER TABLE {prefix}keys ADD COLUMN refill_every VARCHAR(8) NOT NULL DEFAULT '';
ALTER TABLE {prefix}keys ADD COLUMN refill_day INT NOT NULL DEFAULT 0;
ALTER TABLE {prefix}keys ADD COLUMN refilled_at DATETIME(6) NULL;
ALTER TABLE {prefix}keys ADD COLUMN refill_due_at DATETIME(6) NULL;
ALTER TABLE {prefix}identities ADD COLUMN credits_refill_due_at DATETIME(6) NULL;
