-- Accounts made from the web client (moderators and admins come from the
-- CLI as signed tokens and have no row here).
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL DEFAULT 'viewer',
    created_ms    INTEGER NOT NULL
);

-- What a broadcast says about itself; one row per configured stream.
CREATE TABLE broadcasts (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    tags        TEXT NOT NULL DEFAULT '',
    disclaimer  TEXT,
    updated_ms  INTEGER NOT NULL
);

-- Full-text search over title, description and tags (kept in step by the
-- triggers below), ranked with bm25.
CREATE VIRTUAL TABLE broadcasts_fts USING fts5(
    title, description, tags, content = 'broadcasts', content_rowid = 'rowid'
);
CREATE TRIGGER broadcasts_ai AFTER INSERT ON broadcasts BEGIN
    INSERT INTO broadcasts_fts (rowid, title, description, tags)
    VALUES (new.rowid, new.title, new.description, new.tags);
END;
CREATE TRIGGER broadcasts_ad AFTER DELETE ON broadcasts BEGIN
    INSERT INTO broadcasts_fts (broadcasts_fts, rowid, title, description, tags)
    VALUES ('delete', old.rowid, old.title, old.description, old.tags);
END;
CREATE TRIGGER broadcasts_au AFTER UPDATE ON broadcasts BEGIN
    INSERT INTO broadcasts_fts (broadcasts_fts, rowid, title, description, tags)
    VALUES ('delete', old.rowid, old.title, old.description, old.tags);
    INSERT INTO broadcasts_fts (rowid, title, description, tags)
    VALUES (new.rowid, new.title, new.description, new.tags);
END;

-- The brief's comments table (userID, videoID = the stream name).
CREATE TABLE comments (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    comment    TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    user_name  TEXT NOT NULL,
    video_id   TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX comments_by_video ON comments (video_id, id);

-- The brief's likes: one per user per broadcast, changeable.
CREATE TABLE likes (
    video_id     TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    liked        BOOLEAN NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    PRIMARY KEY (video_id, user_id)
);

-- Alerts, with who sent them.
CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    severity    TEXT NOT NULL,
    text        TEXT NOT NULL,
    scope       TEXT NOT NULL,
    ttl_secs    INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL,
    sender_id   TEXT NOT NULL,
    sender_name TEXT NOT NULL
);
CREATE INDEX alerts_by_expiry ON alerts (expires_ms);
