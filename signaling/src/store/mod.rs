//! [`Store`]: the control-plane database (SQLite file by default, WAL mode,
//! migrations embedded). Only control data lives here; media never does.

mod types;

pub use types::{
    Alert, BroadcastMeta, Comment, LikeCounts, NewAlert, Severity, MAX_ALERT_TEXT, MAX_ALERT_TTL,
};

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and applies
    /// the embedded migrations.
    pub async fn open_sqlite(path: &Path) -> Result<Store, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a row acknowledged to a client survives a power cut.
            .synchronous(SqliteSynchronous::Full);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Store { pool })
    }

    /// Records that a publisher session of `broadcast` started.
    pub async fn session_started(&self, broadcast: &str, session: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO broadcast_sessions (broadcast, session, started_at) VALUES (?, ?, datetime('now'))")
            .bind(broadcast)
            .bind(session)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records that a publisher session ended (DELETE).
    pub async fn session_ended(&self, session: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE broadcast_sessions SET ended_at = datetime('now') WHERE session = ? AND ended_at IS NULL")
            .bind(session)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// How many publisher sessions a broadcast has had.
    pub async fn session_count(&self, broadcast: &str) -> Result<i64, StoreError> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM broadcast_sessions WHERE broadcast = ?")
                .bind(broadcast)
                .fetch_one(&self.pool)
                .await?;
        Ok(n)
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}
