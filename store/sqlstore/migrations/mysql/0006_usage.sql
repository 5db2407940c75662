CREATE TABLE IF NOT EXISTS {prefix}usage (
    subject_kind  VARCHAR(32) NOT NULL,
    subject_id    BINARY(16) NOT NULL,
    hour_start    DATETIME(6) NOT NULL,
    outcome       VARCHAR(32) NOT NULL,
    verifications BIGINT NOT NULL,
    PRIMARY KEY (subject_kind, subject_id, hour_start, outcome),
    INDEX {prefix}usage_hour_idx (hour_start)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
