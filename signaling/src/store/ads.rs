//! Ads, ad breaks, ad events and entitlements (`0006_ads.sql`).
//!
//! Invariants: an event is unique per (break, ad, session, event), so a
//! player that fires a tracking URL twice, or a replayed hit, adds no row
//! ([`Store::record_ad_event`] says whether it was new); reports are
//! computed from the rows, never kept as counters that could drift; an ad
//! is retired, not deleted, so its figures stay.

use super::{now_ms, Store, StoreError};

/// One ad (a row of `ads`, read by column name).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct Ad {
    pub id: i64,
    pub title: String,
    /// Runs only in this broadcast's breaks (`None`: in any broadcast's
    /// that has no ads of its own).
    pub broadcast: Option<String>,
    /// The uploaded creative's path in the media store.
    #[serde(skip)]
    pub creative_path: Option<String>,
    /// An external VAST tag this ad wraps instead.
    pub vast_tag_url: Option<String>,
    pub mime_type: String,
    pub size_bytes: i64,
    pub width: i64,
    pub height: i64,
    pub duration_ms: i64,
    pub click_url: String,
    /// Skippable after this many seconds (`None`: not skippable).
    pub skip_after_s: Option<i64>,
    /// A companion banner image in the media store, shown beside the
    /// player while the ad plays.
    #[serde(skip)]
    pub companion_path: Option<String>,
    pub companion_mime: String,
    pub companion_width: i64,
    pub companion_height: i64,
    /// Relative chance of being picked for a pod.
    pub weight: i64,
    pub starts_ms: Option<i64>,
    pub ends_ms: Option<i64>,
    pub created_ms: i64,
    pub retired_ms: Option<i64>,
}

/// The ads that may fill a break of `broadcast`: its own, when it has
/// active ones, else the active ads of no broadcast.
pub fn inventory_for<'a>(ads: &'a [Ad], broadcast: &str, now: i64) -> Vec<&'a Ad> {
    let own: Vec<&Ad> = ads
        .iter()
        .filter(|a| a.active(now) && a.broadcast.as_deref() == Some(broadcast))
        .collect();
    if !own.is_empty() {
        return own;
    }
    ads.iter()
        .filter(|a| a.active(now) && a.broadcast.is_none())
        .collect()
}

impl Ad {
    /// May be picked at `now`: not retired, inside its dates.
    pub fn active(&self, now: i64) -> bool {
        self.retired_ms.is_none()
            && self.starts_ms.is_none_or(|s| s <= now)
            && self.ends_ms.is_none_or(|e| now < e)
            && self.weight > 0
    }
}

/// What an admin creates; the id and creation time are the store's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewAd {
    pub title: String,
    pub broadcast: Option<String>,
    pub creative_path: Option<String>,
    pub vast_tag_url: Option<String>,
    pub mime_type: String,
    pub size_bytes: i64,
    pub width: i64,
    pub height: i64,
    pub duration_ms: i64,
    pub click_url: String,
    pub skip_after_s: Option<i64>,
    pub companion_path: Option<String>,
    pub companion_mime: String,
    pub companion_width: i64,
    pub companion_height: i64,
    pub weight: i64,
    pub starts_ms: Option<i64>,
    pub ends_ms: Option<i64>,
}

/// A break that ran (a row of `ad_breaks`); `pod` lists its ads' ids in
/// play order, comma-separated.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AdBreak {
    pub id: i64,
    pub broadcast: String,
    pub recording: Option<String>,
    pub triggered_by: String,
    pub started_ms: i64,
    pub position_ms: i64,
    pub duration_ms: i64,
    pub pod: String,
}

impl AdBreak {
    /// The pod's ad ids, in play order.
    pub fn pod_ids(&self) -> Vec<i64> {
        self.pod
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect()
    }
}

/// A break before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewBreak {
    pub broadcast: String,
    pub recording: Option<String>,
    pub triggered_by: String,
    pub started_ms: i64,
    pub position_ms: i64,
    pub duration_ms: i64,
    pub pod: Vec<i64>,
}

/// One tracking hit as recorded.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct AdEvent {
    pub session: String,
    pub ad_id: i64,
    pub event: String,
    pub error_code: Option<i64>,
    pub at_ms: i64,
}

/// One ad's figures (per ad, or per ad within a broadcast).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct AdFigures {
    pub ad_id: i64,
    pub title: String,
    pub impressions: i64,
    pub starts: i64,
    pub completes: i64,
    pub skips: i64,
    pub clicks: i64,
    pub errors: i64,
}

const AD_COLUMNS: &str =
    "id, title, broadcast, creative_path, vast_tag_url, mime_type, size_bytes, width, \
     height, duration_ms, click_url, skip_after_s, companion_path, companion_mime, \
     companion_width, companion_height, weight, starts_ms, ends_ms, created_ms, retired_ms";
const BREAK_COLUMNS: &str =
    "id, broadcast, recording, triggered_by, started_ms, position_ms, duration_ms, pod";

/// Counts per event name, summed per ad (the events filter is the caller's).
const FIGURES: &str = "SELECT a.id AS ad_id, a.title AS title, \
     CAST(COALESCE(SUM(CASE WHEN e.event = 'impression' THEN 1 ELSE 0 END), 0) AS BIGINT) AS impressions, \
     CAST(COALESCE(SUM(CASE WHEN e.event = 'start' THEN 1 ELSE 0 END), 0) AS BIGINT) AS starts, \
     CAST(COALESCE(SUM(CASE WHEN e.event = 'complete' THEN 1 ELSE 0 END), 0) AS BIGINT) AS completes, \
     CAST(COALESCE(SUM(CASE WHEN e.event = 'skip' THEN 1 ELSE 0 END), 0) AS BIGINT) AS skips, \
     CAST(COALESCE(SUM(CASE WHEN e.event = 'click' THEN 1 ELSE 0 END), 0) AS BIGINT) AS clicks, \
     CAST(COALESCE(SUM(CASE WHEN e.event = 'error' THEN 1 ELSE 0 END), 0) AS BIGINT) AS errors \
     FROM ads a";

impl Store {
    pub async fn insert_ad(&self, ad: &NewAd) -> Result<Ad, StoreError> {
        Ok(sqlx::query_as(&format!(
            "INSERT INTO ads (title, broadcast, creative_path, vast_tag_url, mime_type, size_bytes, width, \
             height, duration_ms, click_url, skip_after_s, companion_path, companion_mime, \
             companion_width, companion_height, weight, starts_ms, ends_ms, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
             $18, $19) RETURNING {AD_COLUMNS}"
        ))
        .bind(&ad.title)
        .bind(&ad.broadcast)
        .bind(&ad.creative_path)
        .bind(&ad.vast_tag_url)
        .bind(&ad.mime_type)
        .bind(ad.size_bytes)
        .bind(ad.width)
        .bind(ad.height)
        .bind(ad.duration_ms)
        .bind(&ad.click_url)
        .bind(ad.skip_after_s)
        .bind(&ad.companion_path)
        .bind(&ad.companion_mime)
        .bind(ad.companion_width)
        .bind(ad.companion_height)
        .bind(ad.weight)
        .bind(ad.starts_ms)
        .bind(ad.ends_ms)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?)
    }

    /// Every ad, newest first (retired ones too: they have reports).
    pub async fn list_ads(&self) -> Result<Vec<Ad>, StoreError> {
        Ok(
            sqlx::query_as(&format!("SELECT {AD_COLUMNS} FROM ads ORDER BY id DESC"))
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn ad(&self, id: i64) -> Result<Option<Ad>, StoreError> {
        Ok(
            sqlx::query_as(&format!("SELECT {AD_COLUMNS} FROM ads WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Retires an ad (it is never picked again); `false` if there is none.
    pub async fn retire_ad(&self, id: i64) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE ads SET retired_ms = COALESCE(retired_ms, $1) WHERE id = $2")
                .bind(now_ms())
                .bind(id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn insert_break(&self, b: &NewBreak) -> Result<AdBreak, StoreError> {
        let pod = b
            .pod
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        Ok(sqlx::query_as(&format!(
            "INSERT INTO ad_breaks (broadcast, recording, triggered_by, started_ms, position_ms, \
             duration_ms, pod) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {BREAK_COLUMNS}"
        ))
        .bind(&b.broadcast)
        .bind(&b.recording)
        .bind(&b.triggered_by)
        .bind(b.started_ms)
        .bind(b.position_ms)
        .bind(b.duration_ms)
        .bind(pod)
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn ad_break(&self, id: i64) -> Result<Option<AdBreak>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {BREAK_COLUMNS} FROM ad_breaks WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The breaks that ran during a recording, by offset.
    pub async fn breaks_of_recording(&self, recording: &str) -> Result<Vec<AdBreak>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {BREAK_COLUMNS} FROM ad_breaks WHERE recording = $1 ORDER BY position_ms, id"
        ))
        .bind(recording)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The latest break of a broadcast (for the schedule and the console).
    pub async fn last_break(&self, broadcast: &str) -> Result<Option<AdBreak>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {BREAK_COLUMNS} FROM ad_breaks WHERE broadcast = $1 \
             ORDER BY started_ms DESC, id DESC LIMIT 1"
        ))
        .bind(broadcast)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Records one tracking hit; `false` when that (break, ad, session,
    /// event) was already recorded.
    pub async fn record_ad_event(
        &self,
        break_id: i64,
        ad_id: i64,
        session: &str,
        event: &str,
        error_code: Option<i64>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO ad_events (break_id, ad_id, session, event, error_code, at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (break_id, ad_id, session, event) DO NOTHING",
        )
        .bind(break_id)
        .bind(ad_id)
        .bind(session)
        .bind(event)
        .bind(error_code)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// A session's events of a break, in the order they arrived:
    /// (ad, event, error code).
    pub async fn ad_events(
        &self,
        break_id: i64,
        session: &str,
    ) -> Result<Vec<(i64, String, Option<i64>)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT ad_id, event, error_code FROM ad_events WHERE break_id = $1 AND session = $2 \
             ORDER BY id",
        )
        .bind(break_id)
        .bind(session)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every event of a break, in the order they arrived.
    pub async fn break_events(&self, break_id: i64) -> Result<Vec<AdEvent>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT session, ad_id, event, error_code, at_ms FROM ad_events WHERE break_id = $1 \
             ORDER BY id",
        )
        .bind(break_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every ad's figures over all breaks.
    pub async fn ad_figures(&self) -> Result<Vec<AdFigures>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "{FIGURES} LEFT JOIN ad_events e ON e.ad_id = a.id GROUP BY a.id, a.title ORDER BY a.id"
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Each ad's figures within one broadcast's breaks (ads it never ran
    /// are absent).
    pub async fn broadcast_ad_figures(
        &self,
        broadcast: &str,
    ) -> Result<Vec<AdFigures>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "{FIGURES} JOIN ad_events e ON e.ad_id = a.id \
             JOIN ad_breaks b ON b.id = e.break_id WHERE b.broadcast = $1 \
             GROUP BY a.id, a.title ORDER BY a.id"
        ))
        .bind(broadcast)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Grants (or extends, or shortens) `plan` to `user_id` until `until_ms`.
    pub async fn grant_entitlement(
        &self,
        user_id: &str,
        plan: &str,
        until_ms: i64,
        granted_by: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO entitlements (user_id, plan, until_ms, granted_by, granted_ms) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, plan) DO UPDATE SET \
             until_ms = excluded.until_ms, granted_by = excluded.granted_by, \
             granted_ms = excluded.granted_ms",
        )
        .bind(user_id)
        .bind(plan)
        .bind(until_ms)
        .bind(granted_by)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Ends a plan at once; `false` if the user did not hold it.
    pub async fn revoke_entitlement(&self, user_id: &str, plan: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM entitlements WHERE user_id = $1 AND plan = $2")
            .bind(user_id)
            .bind(plan)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Until when `user_id` holds `plan`, if it holds it at `now`.
    pub async fn entitlement(
        &self,
        user_id: &str,
        plan: &str,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT until_ms FROM entitlements WHERE user_id = $1 AND plan = $2 AND until_ms > $3",
        )
        .bind(user_id)
        .bind(plan)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(u,)| u))
    }

    /// The identity id (`u-<n>`) of the account named `username`.
    pub async fn account_identity(&self, username: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(id,)| format!("u-{id}")))
    }
}
