//! Registered accounts: username + argon2id password hash. Hashing runs on
//! the store's [`super::PasswordPool`] (it is deliberately slow and
//! memory-hard) so it never stalls the runtime and a flood of logins is
//! refused instead of eating memory. Accounts made over HTTP are always
//! viewers.

use super::passwords::Busy;
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

impl From<Busy> for UserError {
    fn from(_: Busy) -> Self {
        UserError::Store(StoreError::Busy)
    }
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

impl Store {
    pub async fn create_account(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Account, UserError> {
        validate(username, password).map_err(UserError::Invalid)?;
        let hashed = self
            .passwords
            .hash(password.to_owned())
            .await?
            .ok_or_else(|| UserError::Invalid("that password cannot be hashed".into()))?;
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
            self.passwords.hash(password.to_owned()).await?;
            return Ok(None);
        };
        let matches = self.passwords.verify(password.to_owned(), stored).await?;
        Ok(matches.then(|| Account {
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
