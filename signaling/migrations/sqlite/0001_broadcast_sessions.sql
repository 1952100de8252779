-- One row per publisher session: when a broadcast went live and ended.
CREATE TABLE IF NOT EXISTS broadcast_sessions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    broadcast   TEXT NOT NULL,
    session     TEXT NOT NULL UNIQUE,
    started_at  TEXT NOT NULL,
    ended_at    TEXT
);
CREATE INDEX IF NOT EXISTS broadcast_sessions_by_broadcast ON broadcast_sessions (broadcast, started_at);
