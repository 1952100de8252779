//! The chat log (`chat_log` table): chat lines as rooms sent them, read
//! back by time for replay beside a recording.
//!
//! Invariant: a line is found again by (broadcast, room opening, line id),
//! the only key a moderator's deletion has.

use super::{Store, StoreError};

/// One logged line (a row of `chat_log`, read by column name).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct LoggedLine {
    /// Insertion order; the replay's paging cursor.
    pub seq: i64,
    pub broadcast: String,
    /// When the room was opened (its line ids restart then).
    pub room_ms: i64,
    pub line_id: i64,
    pub sent_ms: i64,
    pub user_id: String,
    pub user_name: String,
    pub user_role: String,
    pub text: String,
}

/// What the writer applies, in the order the rooms did it.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatLogEntry {
    /// `seq` is ignored: the store assigns it.
    Sent(LoggedLine),
    Deleted {
        broadcast: String,
        room_ms: i64,
        line_id: i64,
    },
}

const COLUMNS: &str =
    "seq, broadcast, room_ms, line_id, sent_ms, user_id, user_name, user_role, text";

impl Store {
    /// Applies entries in one transaction.
    pub async fn log_chat(&self, entries: &[ChatLogEntry]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for entry in entries {
            match entry {
                ChatLogEntry::Sent(l) => {
                    sqlx::query(
                        "INSERT INTO chat_log (broadcast, room_ms, line_id, sent_ms, user_id, \
                         user_name, user_role, text) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(&l.broadcast)
                    .bind(l.room_ms)
                    .bind(l.line_id)
                    .bind(l.sent_ms)
                    .bind(&l.user_id)
                    .bind(&l.user_name)
                    .bind(&l.user_role)
                    .bind(&l.text)
                    .execute(&mut *tx)
                    .await?;
                }
                ChatLogEntry::Deleted {
                    broadcast,
                    room_ms,
                    line_id,
                } => {
                    sqlx::query(
                        "DELETE FROM chat_log WHERE broadcast = $1 AND room_ms = $2 AND line_id = $3",
                    )
                    .bind(broadcast)
                    .bind(room_ms)
                    .bind(line_id)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Up to `limit` lines of `broadcast` sent in `[from_ms, to_ms]`, after
    /// `after` (a `seq`) when given, in the order the room sent them (which
    /// is `seq` order: one writer, fed in room order).
    pub async fn chat_lines(
        &self,
        broadcast: &str,
        from_ms: i64,
        to_ms: i64,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<LoggedLine>, StoreError> {
        Ok(sqlx::query_as::<_, LoggedLine>(&format!(
            "SELECT {COLUMNS} FROM chat_log WHERE broadcast = $1 AND sent_ms >= $2 \
             AND sent_ms <= $3 AND seq > $4 ORDER BY seq LIMIT $5"
        ))
        .bind(broadcast)
        .bind(from_ms)
        .bind(to_ms)
        .bind(after.unwrap_or(0))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Deletes `broadcast`'s lines sent in `[from_ms, to_ms]` (a deleted
    /// video's replay); how many.
    pub async fn forget_chat_between(
        &self,
        broadcast: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM chat_log WHERE broadcast = $1 AND sent_ms >= $2 AND sent_ms <= $3",
        )
        .bind(broadcast)
        .bind(from_ms)
        .bind(to_ms)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Deletes lines sent before `cutoff_ms` (retention); how many.
    pub async fn forget_chat_before(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM chat_log WHERE sent_ms < $1")
            .bind(cutoff_ms)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
