-- Recordings: the index of every broadcast's on-demand video. The media
-- (segments, playlists) lives in the recordings store, never here.
-- status: 'recording' while the broadcast runs, then 'ready'; 'failed'
-- when a crash left nothing playable. layers: JSON array of renditions
-- (name, width, height, bytes, bitrate_bps, segments, seconds).
CREATE TABLE recordings (
    id                TEXT PRIMARY KEY,
    broadcast         TEXT NOT NULL,
    title             TEXT NOT NULL,
    publisher_session TEXT,
    status            TEXT NOT NULL,
    started_ms        INTEGER NOT NULL,
    ended_ms          INTEGER,
    duration_ms       INTEGER NOT NULL DEFAULT 0,
    layers            TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX recordings_broadcast ON recordings (broadcast, started_ms);
CREATE INDEX recordings_started ON recordings (started_ms);
CREATE INDEX recordings_status ON recordings (status);
