-- The same tables as the SQLite schema; search uses a tsvector expression
-- index instead of FTS5.
CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL DEFAULT 'viewer',
    created_ms    BIGINT NOT NULL
);

CREATE TABLE broadcasts (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    tags        TEXT NOT NULL DEFAULT '',
    disclaimer  TEXT,
    updated_ms  BIGINT NOT NULL
);
CREATE INDEX broadcasts_search ON broadcasts
    USING GIN (to_tsvector('simple', title || ' ' || description || ' ' || tags));

CREATE TABLE comments (
    id         BIGSERIAL PRIMARY KEY,
    comment    TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    user_name  TEXT NOT NULL,
    video_id   TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX comments_by_video ON comments (video_id, id);

CREATE TABLE likes (
    video_id     TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    liked        BOOLEAN NOT NULL,
    timestamp_ms BIGINT NOT NULL,
    PRIMARY KEY (video_id, user_id)
);

CREATE TABLE alerts (
    id          BIGSERIAL PRIMARY KEY,
    severity    TEXT NOT NULL,
    text        TEXT NOT NULL,
    scope       TEXT NOT NULL,
    ttl_secs    BIGINT NOT NULL,
    created_ms  BIGINT NOT NULL,
    expires_ms  BIGINT NOT NULL,
    sender_id   TEXT NOT NULL,
    sender_name TEXT NOT NULL
);
CREATE INDEX alerts_by_expiry ON alerts (expires_ms);
