CREATE TABLE IF NOT EXISTS {prefix}console_sessions (
    id         VARBINARY(64) NOT NULL,
    owner      VARCHAR(255) NOT NULL,
    data       BLOB NOT NULL,
    flash      TEXT NOT NULL,
    created_at DATETIME(6) NOT NULL,
    expires_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    KEY {prefix}console_sessions_owner_idx (owner, created_at),
    KEY {prefix}console_sessions_expires_idx (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE IF NOT EXISTS {prefix}console_nonces (
    nonce      VARBINARY(64) NOT NULL,
    expires_at DATETIME(6) NOT NULL,
    PRIMARY KEY (nonce),
    KEY {prefix}console_nonces_expires_idx (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE IF NOT EXISTS {prefix}console_owners (
    owner VARCHAR(255) NOT NULL,
    PRIMARY KEY (owner)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
