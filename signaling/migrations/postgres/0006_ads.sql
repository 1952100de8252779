-- Ads (VAST 4.2 pods served by relaycast's own ad server), the breaks that
-- ran, what viewers' players reported, and the ad-free tier.
--
-- An ad is an uploaded creative (creative_path in the media store) or an
-- external VAST tag (vast_tag_url, served as a Wrapper); an uploaded one
-- may have a companion banner image. An ad with a broadcast runs only in
-- that broadcast's breaks (a channel's own ad server, say), and a broadcast
-- with such ads runs only them. Retired ads stay for their reports.
CREATE TABLE ads (
    id            BIGSERIAL PRIMARY KEY,
    title         TEXT NOT NULL,
    broadcast     TEXT,
    creative_path TEXT,
    vast_tag_url  TEXT,
    mime_type     TEXT NOT NULL DEFAULT '',
    size_bytes    BIGINT NOT NULL DEFAULT 0,
    width         BIGINT NOT NULL DEFAULT 0,
    height        BIGINT NOT NULL DEFAULT 0,
    duration_ms   BIGINT NOT NULL DEFAULT 0,
    click_url     TEXT NOT NULL DEFAULT '',
    skip_after_s  BIGINT,
    companion_path TEXT,
    companion_mime TEXT NOT NULL DEFAULT '',
    companion_width BIGINT NOT NULL DEFAULT 0,
    companion_height BIGINT NOT NULL DEFAULT 0,
    weight        BIGINT NOT NULL DEFAULT 1,
    starts_ms     BIGINT,
    ends_ms       BIGINT,
    created_ms    BIGINT NOT NULL,
    retired_ms    BIGINT
);
-- A break that ran: live (recording names the recording it fell in, with
-- position_ms its offset there, for the on-demand schedule) and its pod.
CREATE TABLE ad_breaks (
    id           BIGSERIAL PRIMARY KEY,
    broadcast    TEXT NOT NULL,
    recording    TEXT,
    triggered_by TEXT NOT NULL,
    started_ms   BIGINT NOT NULL,
    position_ms  BIGINT NOT NULL DEFAULT 0,
    duration_ms  BIGINT NOT NULL,
    pod          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX ad_breaks_broadcast ON ad_breaks (broadcast, started_ms);
CREATE INDEX ad_breaks_recording ON ad_breaks (recording, position_ms);
-- One row per (break, ad, viewer session, event): a tracking URL hit twice
-- adds nothing.
CREATE TABLE ad_events (
    id         BIGSERIAL PRIMARY KEY,
    break_id   BIGINT NOT NULL,
    ad_id      BIGINT NOT NULL,
    session    TEXT NOT NULL,
    event      TEXT NOT NULL,
    error_code BIGINT,
    at_ms      BIGINT NOT NULL,
    UNIQUE (break_id, ad_id, session, event)
);
CREATE INDEX ad_events_ad ON ad_events (ad_id, event);
-- Plans an account holds (today: ad-free) and until when.
CREATE TABLE entitlements (
    user_id    TEXT NOT NULL,
    plan       TEXT NOT NULL,
    until_ms   BIGINT NOT NULL,
    granted_by TEXT NOT NULL,
    granted_ms BIGINT NOT NULL,
    PRIMARY KEY (user_id, plan)
);
