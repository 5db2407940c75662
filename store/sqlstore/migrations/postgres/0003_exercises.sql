CREATE TABLE IF NOT EXISTS {prefix}exercises (
    key_id     UUID NOT NULL,
    permission TEXT NOT NULL,
    workspace  TEXT NOT NULL DEFAULT '',
    last_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (key_id, permission, workspace)
);
