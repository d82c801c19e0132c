//! The profile registry (`profiles.db`): ids, names, colours, order, service URL and account.
//! Never a secret.

use std::path::Path;

use sqlx::SqlitePool;

use crate::error::{CoreError, Result};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/registry");

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ProfileRecord {
    pub id: String,
    pub name: String,
    /// `#rrggbb`.
    pub color: String,
    pub position: i64,
    pub server_url: String,
    pub account_id: String,
    pub public_id: String,
    /// The service's id of this profile's session (not the token).
    pub session_id: String,
    pub created_at: i64,
    /// Events up to this sequence number were history when the profile was added.
    pub history_until: i64,
}

pub struct Registry {
    pool: SqlitePool,
}

impl Registry {
    pub async fn open(path: &Path) -> Result<Self> {
        Ok(Self {
            pool: crate::db::open(path, &MIGRATOR).await?,
        })
    }

    pub async fn list(&self) -> Result<Vec<ProfileRecord>> {
        Ok(
            sqlx::query_as("SELECT * FROM profiles ORDER BY position, created_at")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Finds a profile by id, or by name (case-insensitively).
    pub async fn find(&self, id_or_name: &str) -> Result<ProfileRecord> {
        self.list()
            .await?
            .into_iter()
            .find(|p| p.id == id_or_name || p.name.eq_ignore_ascii_case(id_or_name))
            .ok_or_else(|| CoreError::NoSuchProfile(id_or_name.to_string()))
    }

    pub async fn insert(&self, p: &ProfileRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO profiles (id, name, color, position, server_url, account_id, public_id, \
             session_id, created_at, history_until) \
             VALUES (?, ?, ?, (SELECT COALESCE(MAX(position), -1) + 1 FROM profiles), ?, ?, ?, ?, ?, ?)",
        )
        .bind(&p.id)
        .bind(&p.name)
        .bind(&p.color)
        .bind(&p.server_url)
        .bind(&p.account_id)
        .bind(&p.public_id)
        .bind(&p.session_id)
        .bind(p.created_at)
        .bind(p.history_until)
        .execute(&self.pool)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                CoreError::Invalid("that account is signed in already in another profile".into())
            }
            _ => e.into(),
        })?;
        Ok(())
    }

    pub async fn rename(&self, id: &str, name: &str) -> Result<()> {
        sqlx::query("UPDATE profiles SET name = ? WHERE id = ?")
            .bind(name)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn recolor(&self, id: &str, color: &str) -> Result<()> {
        sqlx::query("UPDATE profiles SET color = ? WHERE id = ?")
            .bind(color)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Puts the profiles in the order given (ids); the others keep theirs, after these.
    pub async fn reorder(&self, ids: &[String]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for (i, id) in ids.iter().enumerate() {
            sqlx::query("UPDATE profiles SET position = ? WHERE id = ?")
                .bind(i as i64 - ids.len() as i64)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn policy(&self, id: &str) -> Result<crate::notify::Policy> {
        let (json,): (String,) = sqlx::query_as("SELECT policy FROM profiles WHERE id = ?")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        // `{}` (the default) and any field a newer version added both read as sensible.
        Ok(serde_json::from_str(&json).unwrap_or_default())
    }

    pub async fn set_policy(&self, id: &str, policy: &crate::notify::Policy) -> Result<()> {
        let json = serde_json::to_string(policy).map_err(|e| CoreError::Invalid(e.to_string()))?;
        sqlx::query("UPDATE profiles SET policy = ? WHERE id = ?")
            .bind(json)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn remove(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM profiles WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
