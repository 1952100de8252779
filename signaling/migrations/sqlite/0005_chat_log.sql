-- The chat log: every chat line a room sent, for replay beside the
-- broadcast's recordings. line_id is the room's own id, unique within one
-- opening of the room (room_ms), which is how a moderator's deletion finds
-- it. Written behind a bounded queue: a line the store could not take in
-- time is missing from replays, never from live chat.
CREATE TABLE chat_log (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    broadcast  TEXT NOT NULL,
    room_ms    INTEGER NOT NULL,
    line_id    INTEGER NOT NULL,
    sent_ms    INTEGER NOT NULL,
    user_id    TEXT NOT NULL,
    user_name  TEXT NOT NULL,
    user_role  TEXT NOT NULL,
    text       TEXT NOT NULL
);
CREATE INDEX chat_log_time ON chat_log (broadcast, sent_ms, seq);
CREATE INDEX chat_log_line ON chat_log (broadcast, room_ms, line_id);
