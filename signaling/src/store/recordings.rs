//! The recordings index: one row per on-demand video, kept from the
//! recorder's events (`crate::recordings`). The media itself lives in the
//! recordings store; a row only says where and what.
//!
//! Invariants: a row is `recording` until the recorder finishes it (or
//! start-up repair closes it after a crash), then `ready` or `failed`;
//! `layers` is the JSON the recorder last reported (largest first).

use serde::{Deserialize, Serialize};

use super::{now_ms, Store, StoreError};

/// One rendition, as kept in `layers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedLayer {
    pub name: String,
    pub width: u16,
    pub height: u16,
    /// RFC 6381 codecs (`vp8,opus`); empty for rows from before it was kept.
    #[serde(default)]
    pub codecs: String,
    pub bytes: u64,
    pub bitrate_bps: u64,
    pub segments: usize,
    pub seconds: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordingRow {
    pub id: String,
    pub broadcast: String,
    pub title: String,
    pub publisher_session: Option<String>,
    pub status: String,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
    pub duration_ms: i64,
    pub layers: Vec<RecordedLayer>,
}

type Row = (
    String,
    String,
    String,
    Option<String>,
    String,
    i64,
    Option<i64>,
    i64,
    String,
);

const COLUMNS: &str =
    "id, broadcast, title, publisher_session, status, started_ms, ended_ms, duration_ms, layers";

fn recording(row: Row) -> RecordingRow {
    let (
        id,
        broadcast,
        title,
        publisher_session,
        status,
        started_ms,
        ended_ms,
        duration_ms,
        layers,
    ) = row;
    RecordingRow {
        id,
        broadcast,
        title,
        publisher_session,
        status,
        started_ms,
        ended_ms,
        duration_ms,
        layers: serde_json::from_str(&layers).unwrap_or_default(),
    }
}

/// Which recordings a list wants.
#[derive(Debug, Default, Clone)]
pub struct VideoQuery {
    /// Words the title must contain (case-insensitive).
    pub q: Option<String>,
    pub broadcast: Option<String>,
    /// Only those that started before this (paging, newest first).
    pub before_ms: Option<i64>,
    pub limit: i64,
}

impl Store {
    /// A recording began; its title is the broadcast's at that moment.
    pub async fn insert_recording(
        &self,
        id: &str,
        broadcast: &str,
        publisher_session: Option<&str>,
        started_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO recordings (id, broadcast, title, publisher_session, status, started_ms) \
             VALUES ($1, $2, COALESCE((SELECT title FROM broadcasts WHERE id = $2), $2), $3, 'recording', $4)",
        )
        .bind(id)
        .bind(broadcast)
        .bind(publisher_session)
        .bind(started_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The recorder's latest figures; `status` set when it finished.
    pub async fn update_recording(
        &self,
        id: &str,
        duration_ms: i64,
        layers: &[RecordedLayer],
        status: Option<&str>,
    ) -> Result<(), StoreError> {
        let layers = serde_json::to_string(layers).unwrap_or_else(|_| "[]".into());
        let ended = status.map(|_| now_ms());
        sqlx::query(
            "UPDATE recordings SET duration_ms = $1, layers = $2, status = COALESCE($3, status), \
             ended_ms = COALESCE($4, ended_ms) WHERE id = $5",
        )
        .bind(duration_ms)
        .bind(layers)
        .bind(status)
        .bind(ended)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delete_recording(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM recordings WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn recording(&self, id: &str) -> Result<Option<RecordingRow>, StoreError> {
        let row: Option<Row> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM recordings WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(recording))
    }

    /// Newest first.
    pub async fn list_recordings(
        &self,
        query: &VideoQuery,
    ) -> Result<Vec<RecordingRow>, StoreError> {
        let pattern = query
            .q
            .as_deref()
            .map(|q| format!("%{}%", q.trim().to_lowercase().replace(['%', '_'], "")));
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM recordings \
             WHERE ($1 IS NULL OR LOWER(title) LIKE $1) AND ($2 IS NULL OR broadcast = $2) \
             AND ($3 IS NULL OR started_ms < $3) AND status != 'failed' \
             ORDER BY started_ms DESC LIMIT $4"
        ))
        .bind(pattern)
        .bind(query.broadcast.as_deref())
        .bind(query.before_ms)
        .bind(query.limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(recording).collect())
    }

    /// Recordings a crash may have left open.
    pub async fn open_recordings(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT id FROM recordings WHERE status = 'recording'")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Ready recordings that started before `cutoff_ms` (retention).
    pub async fn recordings_before(&self, cutoff_ms: i64) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM recordings WHERE status != 'recording' AND started_ms < $1",
        )
        .bind(cutoff_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }
}
