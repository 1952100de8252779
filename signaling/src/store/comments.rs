//! Comments under a broadcast (the brief's `comments` table), newest first
//! with an id cursor.

use super::{now_ms, Comment, Store, StoreError};

type CommentRow = (i64, String, String, String, String, i64);

fn comment(row: CommentRow) -> Comment {
    let (id, comment, user_id, user_name, video_id, created_ms) = row;
    Comment {
        id,
        comment,
        user_id,
        user_name,
        video_id,
        created_ms,
    }
}

const COLUMNS: &str = "id, comment, user_id, user_name, video_id, created_ms";

impl Store {
    /// Persists a comment; durable when it returns.
    pub async fn add_comment(
        &self,
        broadcast: &str,
        user_id: &str,
        user_name: &str,
        text: &str,
    ) -> Result<Comment, StoreError> {
        let row: CommentRow = sqlx::query_as(&format!(
            "INSERT INTO comments (comment, user_id, user_name, video_id, created_ms) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
        ))
        .bind(text)
        .bind(user_id)
        .bind(user_name)
        .bind(broadcast)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        Ok(comment(row))
    }

    /// Up to `limit` comments older than `before` (an id), newest first.
    pub async fn comments(
        &self,
        broadcast: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Comment>, StoreError> {
        let rows: Vec<CommentRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM comments WHERE video_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
        ))
        .bind(broadcast)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(comment).collect())
    }

    pub async fn comment(&self, broadcast: &str, id: i64) -> Result<Option<Comment>, StoreError> {
        let row: Option<CommentRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM comments WHERE video_id = $1 AND id = $2"
        ))
        .bind(broadcast)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(comment))
    }

    /// Deletes a comment; whether it existed.
    pub async fn delete_comment(&self, broadcast: &str, id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM comments WHERE video_id = $1 AND id = $2")
            .bind(broadcast)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
