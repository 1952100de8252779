//! Alerts (news flash / emergency), persisted with who sent them.

use super::{now_ms, Alert, NewAlert, Severity, Store, StoreError};

type AlertRow = (i64, String, String, String, i64, i64, String);

fn alert(row: AlertRow) -> Alert {
    let (id, severity, text, scope, created_ms, expires_ms, sender_name) = row;
    Alert {
        id,
        // Only the three known values are ever written.
        severity: severity.parse().unwrap_or(Severity::Info),
        text,
        scope,
        created_ms,
        expires_ms,
        sender_name,
    }
}

const COLUMNS: &str = "id, severity, text, scope, created_ms, expires_ms, sender_name";

impl Store {
    /// Persists a validated alert; it is active from now for its ttl.
    pub async fn insert_alert(&self, new: &NewAlert) -> Result<Alert, StoreError> {
        let created = now_ms();
        let expires = created + i64::from(new.ttl_secs) * 1000;
        let row: AlertRow = sqlx::query_as(&format!(
            "INSERT INTO alerts (severity, text, scope, ttl_secs, created_ms, expires_ms, sender_id, sender_name) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
        ))
        .bind(new.severity.as_str())
        .bind(new.text.trim())
        .bind(&new.scope)
        .bind(i64::from(new.ttl_secs))
        .bind(created)
        .bind(expires)
        .bind(&new.sender.id)
        .bind(&new.sender.name)
        .fetch_one(&self.pool)
        .await?;
        Ok(alert(row))
    }

    /// Alerts not yet expired at `now_ms`, oldest first.
    pub async fn active_alerts(&self, now_ms: i64) -> Result<Vec<Alert>, StoreError> {
        let rows: Vec<AlertRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM alerts WHERE expires_ms > $1 ORDER BY id"
        ))
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(alert).collect())
    }

    /// The most recent alerts, newest first.
    pub async fn recent_alerts(&self, limit: i64) -> Result<Vec<Alert>, StoreError> {
        let rows: Vec<AlertRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM alerts ORDER BY id DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(alert).collect())
    }
}
