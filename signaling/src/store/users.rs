//! Registered accounts: username + argon2id password hash. Hashing runs on
//! the blocking pool (it is deliberately slow) so it never stalls the
//! runtime. Accounts made over HTTP are always viewers.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use super::{now_ms, Store, StoreError};

/// A registered account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    pub username: String,
    pub display_name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("{0}")]
    Invalid(String),
    #[error("the username is taken")]
    Taken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Usernames: 3-32 of a-z, A-Z, 0-9, '_' or '-'; passwords: 8-128 chars.
pub fn validate(username: &str, password: &str) -> Result<(), String> {
    let ok_name = (3..=32).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok_name {
        return Err("username must be 3-32 characters of a-z, A-Z, 0-9, '_' or '-'".into());
    }
    if !(8..=128).contains(&password.chars().count()) {
        return Err("password must be 8-128 characters".into());
    }
    Ok(())
}

async fn hash(password: String) -> Result<String, UserError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .map_err(|e| UserError::Invalid(format!("hashing failed: {e}")))?
    .map_err(|e| UserError::Invalid(format!("hashing failed: {e}")))
}

async fn verify(password: String, stored: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

impl Store {
    pub async fn create_account(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Account, UserError> {
        validate(username, password).map_err(UserError::Invalid)?;
        let hashed = hash(password.to_owned()).await?;
        let result: Result<(i64,), sqlx::Error> = sqlx::query_as(
            "INSERT INTO users (username, password_hash, display_name, role, created_ms) \
             VALUES ($1, $2, $3, 'viewer', $4) RETURNING id",
        )
        .bind(username)
        .bind(hashed)
        .bind(username)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await;
        match result {
            Ok((id,)) => Ok(Account {
                id,
                username: username.to_owned(),
                display_name: username.to_owned(),
            }),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(UserError::Taken),
            Err(e) => Err(UserError::Store(e.into())),
        }
    }

    /// The account, when `password` is its password.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<Account>, StoreError> {
        let row: Option<(i64, String, String)> =
            sqlx::query_as("SELECT id, password_hash, display_name FROM users WHERE username = $1")
                .bind(username)
                .fetch_optional(&self.pool)
                .await?;
        let Some((id, stored, display_name)) = row else {
            // Spend the same time as a wrong password, so usernames cannot
            // be probed by timing.
            let _ = hash(password.to_owned()).await;
            return Ok(None);
        };
        Ok(verify(password.to_owned(), stored).await.then(|| Account {
            id,
            username: username.to_owned(),
            display_name,
        }))
    }

    /// Renames an account's display name.
    pub async fn set_display_name(&self, id: i64, name: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET display_name = $1 WHERE id = $2")
            .bind(name)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_of_account_validation() {
        let cases = [
            ("alice", "longenough", true),
            ("al", "longenough", false),
            ("al ice", "longenough", false),
            ("alice", "short", false),
            ("a-b_c9", "12345678", true),
        ];
        for (user, pass, ok) in cases {
            assert_eq!(super::validate(user, pass).is_ok(), ok, "{user} {pass}");
        }
    }
}
