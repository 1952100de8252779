//! Channels: streams any account may create, beside the operator's streams
//! from the config. A channel's stream key is stored only as a keyed hash
//! (see `crate::channels`); its metadata (title, description, tags,
//! disclaimer) is the `broadcasts` row of the same name. Deleting keeps the
//! row (`deleted_ms`), so a name is never reused by another owner.

use super::{now_ms, Store, StoreError};

/// A channel as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub name: String,
    pub owner_id: String,
    pub owner_name: String,
    pub key_hash: String,
    /// The reason, while suspended.
    pub suspended: Option<String>,
    pub created_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("the name is taken")]
    Taken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Row = (String, String, String, String, Option<String>, i64);

fn channel(row: Row) -> Channel {
    let (name, owner_id, owner_name, key_hash, suspended, created_ms) = row;
    Channel {
        name,
        owner_id,
        owner_name,
        key_hash,
        suspended,
        created_ms,
    }
}

const COLUMNS: &str = "name, owner_id, owner_name, key_hash, suspended, created_ms";

impl Store {
    /// Creates a channel and its metadata row (the name as the title).
    pub async fn create_channel(
        &self,
        name: &str,
        owner_id: &str,
        owner_name: &str,
        key_hash: &str,
    ) -> Result<Channel, ChannelError> {
        let now = now_ms();
        let result = sqlx::query(
            "INSERT INTO channels (name, owner_id, owner_name, key_hash, created_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(name)
        .bind(owner_id)
        .bind(owner_name)
        .bind(key_hash)
        .bind(now)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(ChannelError::Taken)
            }
            Err(e) => return Err(ChannelError::Store(e.into())),
        }
        self.ensure_broadcast(name).await?;
        Ok(Channel {
            name: name.to_owned(),
            owner_id: owner_id.to_owned(),
            owner_name: owner_name.to_owned(),
            key_hash: key_hash.to_owned(),
            suspended: None,
            created_ms: now,
        })
    }

    /// A channel that is not deleted.
    pub async fn channel(&self, name: &str) -> Result<Option<Channel>, StoreError> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM channels WHERE name = $1 AND deleted_ms IS NULL"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(channel))
    }

    /// Whether any channel, deleted or not, has this name.
    pub async fn channel_name_used(&self, name: &str) -> Result<bool, StoreError> {
        let row: Option<(String,)> = sqlx::query_as("SELECT name FROM channels WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// An owner's channels that are not deleted, oldest first.
    pub async fn channels_of(&self, owner_id: &str) -> Result<Vec<Channel>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM channels WHERE owner_id = $1 AND deleted_ms IS NULL ORDER BY created_ms, name"
        ))
        .bind(owner_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(channel).collect())
    }

    /// Every channel that is not deleted (for the catalog).
    pub async fn channels(&self) -> Result<Vec<Channel>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM channels WHERE deleted_ms IS NULL ORDER BY name"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(channel).collect())
    }

    /// Replaces the key hash; false when there is no such channel.
    pub async fn set_channel_key(&self, name: &str, key_hash: &str) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE channels SET key_hash = $1 WHERE name = $2 AND deleted_ms IS NULL")
                .bind(key_hash)
                .bind(name)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Suspends (with a reason) or reinstates; false when there is no such
    /// channel.
    pub async fn set_channel_suspended(
        &self,
        name: &str,
        reason: Option<&str>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE channels SET suspended = $1 WHERE name = $2 AND deleted_ms IS NULL",
        )
        .bind(reason)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes (keeps the row, so the name stays taken); false when there
    /// is no such channel.
    pub async fn delete_channel(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE channels SET deleted_ms = $1 WHERE name = $2 AND deleted_ms IS NULL",
        )
        .bind(now_ms())
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
