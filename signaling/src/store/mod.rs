//! [`Store`]: the control-plane database. SQLite by default (a file in the
//! data dir, WAL, `synchronous = FULL` so a row acknowledged to a client
//! survives a crash or power cut); PostgreSQL when given a `postgres://`
//! URL, for several nodes sharing one database. Only control data lives
//! here (sessions, accounts, broadcast metadata, comments, likes, alerts,
//! the chat log, the recordings' index, ads and entitlements);
//! media never does.
//!
//! Both run the same queries through sqlx's `Any` driver, written with
//! `$1, $2, …` placeholders in order of first use (SQLite numbers `$N`
//! parameters by first appearance); only search differs by dialect (FTS5
//! with bm25 vs a `tsvector` match with `ts_rank`). Migrations are embedded,
//! one directory per backend.

mod ads;
mod alerts;
mod broadcasts;
mod channels;
mod chat_log;
mod comments;
mod likes;
mod passwords;
mod recordings;
mod types;
mod users;

pub use ads::{inventory_for, Ad, AdBreak, AdEvent, AdFigures, NewAd, NewBreak};
pub use broadcasts::{BroadcastUpdate, SearchQuery};
pub use channels::{Channel, ChannelError};
pub use chat_log::{ChatLogEntry, LoggedLine};
pub use passwords::{Busy, PasswordLimits, PasswordPool};
pub use recordings::{RecordedLayer, RecordingRow, VideoQuery};
pub use types::{
    Alert, BroadcastMeta, Comment, LikeCounts, NewAlert, Severity, MAX_ALERT_TEXT, MAX_ALERT_TTL,
};
pub use users::{Account, UserError};

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use sqlx::{Connection, Executor};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The password pool's queue is full (see [`PasswordPool`]).
    #[error("{}", Busy)]
    Busy,
}

impl From<Busy> for StoreError {
    fn from(_: Busy) -> Self {
        StoreError::Busy
    }
}

/// Which database is behind the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    passwords: PasswordPool,
}

/// Milliseconds since the Unix epoch, the store's unit of time.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` and applies
    /// the embedded migrations.
    pub async fn open_sqlite(path: &Path) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let url = format!("sqlite://{}?mode=rwc", path.display());
        // A corrupt or read-only file fails here, with SQLite's own words.
        let mut probe = probe(&url).await?;
        sqlite_setup(&mut probe).await?;
        probe.execute("BEGIN IMMEDIATE").await?;
        probe.execute("ROLLBACK").await?;
        probe.close().await?;
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(|conn, _| Box::pin(sqlite_setup(conn)))
            .connect(&url)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Store {
            pool,
            backend: Backend::Sqlite,
            passwords: PasswordPool::new(PasswordLimits::default()),
        })
    }

    /// Connects to PostgreSQL at `url` and applies the embedded migrations.
    pub async fn open_postgres(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        probe(url).await?.close().await?;
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .connect(url)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Store {
            pool,
            backend: Backend::Postgres,
            passwords: PasswordPool::new(PasswordLimits::default()),
        })
    }

    /// The same store with its password checks bounded by `limits`.
    pub fn with_password_limits(mut self, limits: PasswordLimits) -> Store {
        self.passwords = PasswordPool::new(limits);
        self
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Copies SQLite's write-ahead log into the database file and empties
    /// it (`wal_checkpoint(TRUNCATE)`), so the WAL stays small however many
    /// writes arrive; nothing to do on PostgreSQL. `Ok(false)`: a reader
    /// kept it from finishing; the next one catches up.
    pub async fn checkpoint(&self) -> Result<bool, StoreError> {
        if self.backend != Backend::Sqlite {
            return Ok(true);
        }
        let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&self.pool)
            .await?;
        Ok(busy == 0)
    }

    /// At shutdown: checkpoints, then closes every connection (SQLite
    /// removes the WAL when its last connection closes).
    pub async fn close(&self) {
        if let Err(e) = self.checkpoint().await {
            tracing::warn!(error = %e, "checkpointing the database at shutdown");
        }
        self.pool.close().await;
    }

    /// Records that a publisher session of `broadcast` started.
    pub async fn session_started(&self, broadcast: &str, session: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO broadcast_sessions (broadcast, session, started_at) VALUES ($1, $2, $3)",
        )
        .bind(broadcast)
        .bind(session)
        .bind(now_ms().to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records that a publisher session ended (DELETE).
    pub async fn session_ended(&self, session: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE broadcast_sessions SET ended_at = $1 WHERE session = $2 AND ended_at IS NULL",
        )
        .bind(now_ms().to_string())
        .bind(session)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// How many publisher sessions a broadcast has had.
    pub async fn session_count(&self, broadcast: &str) -> Result<i64, StoreError> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM broadcast_sessions WHERE broadcast = $1")
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

/// One connection outside the pool: a database that cannot be opened
/// fails at once with its own error, where the pool would retry for 30 s
/// and report only that it timed out.
async fn probe(url: &str) -> Result<sqlx::AnyConnection, StoreError> {
    Ok(sqlx::AnyConnection::connect(url).await?)
}

/// Every SQLite connection's settings: WAL lets readers run beside the
/// writer; FULL makes a commit durable before it is acknowledged.
async fn sqlite_setup(conn: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
    conn.execute("PRAGMA journal_mode = WAL").await?;
    conn.execute("PRAGMA synchronous = FULL").await?;
    conn.execute("PRAGMA busy_timeout = 5000").await?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
