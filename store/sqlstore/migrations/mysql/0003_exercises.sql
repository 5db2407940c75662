CREATE TABLE IF NOT EXISTS {prefix}exercises (
    key_id     BINARY(16) NOT NULL,
    permission VARCHAR(255) NOT NULL,
    workspace  VARCHAR(255) NOT NULL DEFAULT '',
    last_at    DATETIME(6) NOT NULL,
    PRIMARY KEY (key_id, permission, workspace)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
