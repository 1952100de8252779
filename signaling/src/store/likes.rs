//! Likes and dislikes: one row per (broadcast, user), changeable; counts
//! are computed from the rows so they can never drift.

use std::collections::HashMap;

use super::{now_ms, LikeCounts, Store, StoreError};

impl Store {
    /// Sets (`Some`) or withdraws (`None`) `user`'s like of `broadcast`;
    /// returns the new counts. Durable when it returns.
    pub async fn set_like(
        &self,
        broadcast: &str,
        user: &str,
        liked: Option<bool>,
    ) -> Result<LikeCounts, StoreError> {
        match liked {
            Some(liked) => {
                sqlx::query(
                    "INSERT INTO likes (video_id, user_id, liked, timestamp_ms) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (video_id, user_id) DO UPDATE SET liked = excluded.liked, timestamp_ms = excluded.timestamp_ms",
                )
                .bind(broadcast)
                .bind(user)
                .bind(liked)
                .bind(now_ms())
                .execute(&self.pool)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM likes WHERE video_id = $1 AND user_id = $2")
                    .bind(broadcast)
                    .bind(user)
                    .execute(&self.pool)
                    .await?;
            }
        }
        self.like_counts(broadcast).await
    }

    pub async fn like_counts(&self, broadcast: &str) -> Result<LikeCounts, StoreError> {
        let (likes, dislikes): (i64, i64) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(CASE WHEN liked THEN 1 ELSE 0 END), 0) AS BIGINT), \
                    CAST(COALESCE(SUM(CASE WHEN liked THEN 0 ELSE 1 END), 0) AS BIGINT) \
             FROM likes WHERE video_id = $1",
        )
        .bind(broadcast)
        .fetch_one(&self.pool)
        .await?;
        Ok(LikeCounts { likes, dislikes })
    }

    /// Every broadcast's counts in one query (for the catalog, which would
    /// otherwise ask once per broadcast); broadcasts without likes are absent.
    pub async fn all_like_counts(&self) -> Result<HashMap<String, LikeCounts>, StoreError> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT video_id, \
                    CAST(COALESCE(SUM(CASE WHEN liked THEN 1 ELSE 0 END), 0) AS BIGINT), \
                    CAST(COALESCE(SUM(CASE WHEN liked THEN 0 ELSE 1 END), 0) AS BIGINT) \
             FROM likes GROUP BY video_id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, likes, dislikes)| (id, LikeCounts { likes, dislikes }))
            .collect())
    }

    /// `user`'s own like of `broadcast`, if any.
    pub async fn my_like(&self, broadcast: &str, user: &str) -> Result<Option<bool>, StoreError> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT CAST(CASE WHEN liked THEN 1 ELSE 0 END AS BIGINT) FROM likes \
             WHERE video_id = $1 AND user_id = $2",
        )
        .bind(broadcast)
        .bind(user)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(v,)| v == 1))
    }
}
