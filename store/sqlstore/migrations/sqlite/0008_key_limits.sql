ALTER TABLE {prefix}keys ADD COLUMN rate_limits TEXT;
ALTER TABLE {prefix}keys ADD COLUMN refill_amount INTEGER;
ALTER TABLE {prefix}keys ADD COLUMN refill_every TEXT NOT NULL DEFAULT '';
ALTER TABLE {prefix}keys ADD COLUMN refill_day INTEGER NOT NULL DEFAULT 0;
ALTER TABLE {prefix}keys ADD COLUMN refilled_at TEXT;
ALTER TABLE {prefix}keys ADD COLUMN refill_due_at TEXT;
ALTER TABLE {prefix}identities ADD COLUMN credits_refill_due_at TEXT;
