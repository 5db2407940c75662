CREATE TABLE IF NOT EXISTS {prefix}usage (
    subject_kind  TEXT NOT NULL,
    subject_id    UUID NOT NULL,
    hour_start    TIMESTAMPTZ NOT NULL,
    outcome       TEXT NOT NULL,
    verifications BIGINT NOT NULL,
    PRIMARY KEY (subject_kind, subject_id, hour_start, outcome)
);
CREATE INDEX IF NOT EXISTS {prefix}usage_hour_idx ON {prefix}usage (hour_start);
