CREATE TABLE IF NOT EXISTS {prefix}retired (
    hash       VARBINARY(64) NOT NULL,
    pepper_id  VARCHAR(255) NOT NULL DEFAULT '',
    retired_at DATETIME(6) NOT NULL,
    PRIMARY KEY (hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
