CREATE TABLE IF NOT EXISTS {prefix}identities (
    id                    BINARY(16) NOT NULL,
    external_id           VARCHAR(255) NOT NULL,
    workspace             VARCHAR(255) NOT NULL DEFAULT '',
    metadata              JSON NULL,
    rate_limits           JSON NULL,
    credits_remaining     BIGINT NULL,
    credits_refill_amount BIGINT NULL,
    credits_refill_every  VARCHAR(8) NOT NULL DEFAULT '',
    credits_refill_day    INT NOT NULL DEFAULT 0,
    credits_refilled_at   DATETIME(6) NULL,
    created_at            DATETIME(6) NULL,
    updated_at            DATETIME(6) NULL,
    version               BIGINT NOT NULL DEFAULT 1,
    PRIMARY KEY (id),
    UNIQUE KEY {prefix}identities_external_key (workspace, external_id),
    KEY {prefix}identities_workspace_id_idx (workspace, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
ALTER TABLE {prefix}keys ADD COLUMN identity_id BINARY(16) NULL;
CREATE INDEX {prefix}keys_identity_id_idx ON {prefix}keys (identity_id, id);
