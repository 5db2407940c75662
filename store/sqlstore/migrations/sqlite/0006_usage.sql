CREATE TABLE IF NOT EXISTS {prefix}usage (
    subject_kind  TEXT NOT NULL,
    subject_id    BLOB NOT NULL,
    hour_start    TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    verifications INTEGER NOT NULL,
    PRIMARY KEY (subject_kind, subject_id, hour_start, outcome)
);
CREATE INDEX IF NOT EXISTS {prefix}usage_hour_idx ON {prefix}usage (hour_start);
