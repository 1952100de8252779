-- Channels any account may create (operator streams from the config have
-- no row). The stream key is kept only as a keyed hash; a deleted channel
-- keeps its row so its name is never given to someone else (its comments
-- and likes stay attached to it).
CREATE TABLE channels (
    name       TEXT PRIMARY KEY,
    owner_id   TEXT NOT NULL,
    owner_name TEXT NOT NULL,
    key_hash   TEXT NOT NULL,
    -- Set (the reason, shown to the publisher) while an admin suspends it.
    suspended  TEXT,
    created_ms BIGINT NOT NULL,
    deleted_ms BIGINT
);
CREATE INDEX channels_owner ON channels (owner_id);
