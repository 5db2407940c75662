CREATE TABLE IF NOT EXISTS {prefix}retired (
    hash       BLOB NOT NULL PRIMARY KEY,
    pepper_id  TEXT NOT NULL DEFAULT '',
    retired_at TEXT NOT NULL
);
