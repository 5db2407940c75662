CREATE TABLE IF NOT EXISTS {prefix}exercises (
    key_id     BLOB NOT NULL,
    permission TEXT NOT NULL,
    workspace  TEXT NOT NULL DEFAULT '',
    last_at    TEXT NOT NULL,
    PRIMARY KEY (key_id, permission, workspace)
);
