//! Broadcast metadata (title, description, tags, disclaimer) and search
//! over it. Every configured stream has a row (made at start with its name
//! as the title); tags are kept lower-case, comma-joined.

use super::{now_ms, Backend, BroadcastMeta, Store, StoreError};

/// At most this many tags, each at most [`MAX_TAG`] characters.
pub const MAX_TAGS: usize = 10;
pub const MAX_TAG: usize = 32;
pub const MAX_TITLE: usize = 120;
pub const MAX_DESCRIPTION: usize = 2000;
pub const MAX_DISCLAIMER: usize = 1000;

/// A broadcaster's edit of its broadcast's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastUpdate {
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub disclaimer: Option<String>,
}

impl BroadcastUpdate {
    /// Trims and lower-cases; says what is wrong in words for the client.
    pub fn normalized(mut self) -> Result<BroadcastUpdate, String> {
        self.title = self.title.trim().to_owned();
        self.description = self.description.trim().to_owned();
        if self.title.is_empty() || self.title.chars().count() > MAX_TITLE {
            return Err(format!("title must be 1-{MAX_TITLE} characters"));
        }
        crate::text::label(&self.title).map_err(|why| format!("the title {why}"))?;
        crate::text::prose(&self.description).map_err(|why| format!("the description {why}"))?;
        if self.description.chars().count() > MAX_DESCRIPTION {
            return Err(format!(
                "description must be at most {MAX_DESCRIPTION} characters"
            ));
        }
        let mut tags: Vec<String> = Vec::new();
        for tag in &self.tags {
            let tag = tag.trim().to_lowercase();
            if tag.is_empty() {
                continue;
            }
            if tag.chars().count() > MAX_TAG || tag.contains(',') {
                return Err(format!(
                    "tags are at most {MAX_TAG} characters, without commas"
                ));
            }
            crate::text::label(&tag).map_err(|why| format!("the tag {tag:?} {why}"))?;
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        if tags.len() > MAX_TAGS {
            return Err(format!("at most {MAX_TAGS} tags"));
        }
        self.tags = tags;
        self.disclaimer = self
            .disclaimer
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty());
        if self
            .disclaimer
            .as_ref()
            .is_some_and(|d| d.chars().count() > MAX_DISCLAIMER)
        {
            return Err(format!(
                "disclaimer must be at most {MAX_DISCLAIMER} characters"
            ));
        }
        if let Some(d) = &self.disclaimer {
            crate::text::prose(d).map_err(|why| format!("the disclaimer {why}"))?;
        }
        Ok(self)
    }
}

/// What to look for in the catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchQuery {
    /// Free text over title, description and tags.
    pub text: Option<String>,
    /// Only broadcasts with this tag.
    pub tag: Option<String>,
}

type MetaRow = (String, String, String, String, Option<String>);

fn meta(row: MetaRow) -> BroadcastMeta {
    let (id, title, description, tags, disclaimer) = row;
    BroadcastMeta {
        id,
        title,
        description,
        tags: tags
            .split(',')
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
        disclaimer,
    }
}

/// The words of a search, letters and digits only, lower-case: safe to put
/// in an FTS5 or tsquery expression.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(8)
        .map(str::to_lowercase)
        .collect()
}

const COLUMNS: &str = "id, title, description, tags, disclaimer";

impl Store {
    /// Makes sure `id` has a metadata row (its name as the title).
    pub async fn ensure_broadcast(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO broadcasts (id, title, updated_ms) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(id)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn broadcast_meta(&self, id: &str) -> Result<Option<BroadcastMeta>, StoreError> {
        let row: Option<MetaRow> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM broadcasts WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(meta))
    }

    /// Replaces a broadcast's metadata (validated by the caller with
    /// [`BroadcastUpdate::normalized`]).
    pub async fn update_broadcast(
        &self,
        id: &str,
        update: &BroadcastUpdate,
    ) -> Result<Option<BroadcastMeta>, StoreError> {
        sqlx::query(
            "UPDATE broadcasts SET title = $1, description = $2, tags = $3, disclaimer = $4, updated_ms = $5 WHERE id = $6",
        )
        .bind(&update.title)
        .bind(&update.description)
        .bind(update.tags.join(","))
        .bind(update.disclaimer.clone())
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.broadcast_meta(id).await
    }

    /// Broadcasts matching `query`, best match first (an exact title match
    /// before anything else); without text, all of them by id.
    pub async fn search_broadcasts(
        &self,
        query: &SearchQuery,
    ) -> Result<Vec<BroadcastMeta>, StoreError> {
        let text = query.text.as_deref().map(str::trim).unwrap_or("");
        let words = words(text);
        let rows: Vec<MetaRow> = if words.is_empty() {
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM broadcasts ORDER BY id"))
                .fetch_all(&self.pool)
                .await?
        } else {
            match self.backend {
                Backend::Sqlite => {
                    let expr = words
                        .iter()
                        .map(|w| format!("\"{w}\"*"))
                        .collect::<Vec<_>>()
                        .join(" ");
                    sqlx::query_as(
                        "SELECT b.id, b.title, b.description, b.tags, b.disclaimer \
                         FROM broadcasts_fts JOIN broadcasts b ON b.rowid = broadcasts_fts.rowid \
                         WHERE broadcasts_fts MATCH $1 \
                         ORDER BY CASE WHEN lower(b.title) = lower($2) THEN 0 ELSE 1 END, bm25(broadcasts_fts), b.id",
                    )
                    .bind(expr)
                    .bind(text)
                    .fetch_all(&self.pool)
                    .await?
                }
                Backend::Postgres => {
                    let expr = words
                        .iter()
                        .map(|w| format!("{w}:*"))
                        .collect::<Vec<_>>()
                        .join(" & ");
                    sqlx::query_as(
                        "SELECT id, title, description, tags, disclaimer FROM broadcasts \
                         WHERE to_tsvector('simple', title || ' ' || description || ' ' || tags) @@ to_tsquery('simple', $1) \
                         ORDER BY CASE WHEN lower(title) = lower($2) THEN 0 ELSE 1 END, \
                         ts_rank(to_tsvector('simple', title || ' ' || description || ' ' || tags), to_tsquery('simple', $1)) DESC, id",
                    )
                    .bind(expr)
                    .bind(text)
                    .fetch_all(&self.pool)
                    .await?
                }
            }
        };
        let tag = query.tag.as_deref().map(|t| t.trim().to_lowercase());
        Ok(rows
            .into_iter()
            .map(meta)
            .filter(|m| tag.as_ref().is_none_or(|t| m.tags.contains(t)))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_words_are_letters_and_digits_only() {
        assert_eq!(
            words("Late-night \"jazz\"* OR 2"),
            ["late", "night", "jazz", "or", "2"]
        );
        assert!(words("  *** ").is_empty());
    }

    #[test]
    fn table_of_broadcast_updates() {
        let base = BroadcastUpdate {
            title: " Evening news ".into(),
            description: String::new(),
            tags: vec!["News".into(), " news".into(), "".into(), "Live".into()],
            disclaimer: Some("  ".into()),
        };
        let ok = base.clone().normalized().unwrap();
        assert_eq!(ok.title, "Evening news");
        assert_eq!(ok.tags, ["news", "live"]);
        assert_eq!(ok.disclaimer, None);
        let cases = [
            BroadcastUpdate {
                title: " ".into(),
                ..base.clone()
            },
            BroadcastUpdate {
                title: "x".repeat(MAX_TITLE + 1),
                ..base.clone()
            },
            BroadcastUpdate {
                tags: vec!["a,b".into()],
                ..base.clone()
            },
            BroadcastUpdate {
                tags: (0..11).map(|i| format!("t{i}")).collect(),
                ..base.clone()
            },
            BroadcastUpdate {
                disclaimer: Some("x".repeat(MAX_DISCLAIMER + 1)),
                ..base.clone()
            },
        ];
        for case in cases {
            assert!(case.clone().normalized().is_err(), "{case:?}");
        }
    }
}
