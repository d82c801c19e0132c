//! The profile registry (`profiles.db`): ids, names, colours, order, service URL and account,
//! and whether the profile may use plain http to its service. Never a secret.

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
    /// The user allowed plain http to a host other than this computer for this profile
    /// (set only when its URL needs it): it is marked "not encrypted" wherever it is shown.
    pub allow_insecure_http: bool,
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
             session_id, created_at, history_until, allow_insecure_http) \
             VALUES (?, ?, ?, (SELECT COALESCE(MAX(position), -1) + 1 FROM profiles), ?, ?, ?, ?, ?, ?, ?)",
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
        .bind(p.allow_insecure_http)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

    use super::*;

    fn record(id: &str, url: &str, allow_insecure_http: bool) -> ProfileRecord {
        ProfileRecord {
            id: id.into(),
            name: id.into(),
            color: "#2f6fed".into(),
            position: 0,
            server_url: url.into(),
            account_id: format!("a_{id}"),
            public_id: format!("{id}_pid"),
            session_id: "s".into(),
            created_at: 0,
            history_until: 0,
            allow_insecure_http,
        }
    }

    #[tokio::test]
    async fn the_cleartext_allowance_is_stored_with_the_profile() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(&dir.path().join("profiles.db"))
            .await
            .unwrap();
        registry
            .insert(&record("p_lan", "http://10.0.0.5:8750", true))
            .await
            .unwrap();
        registry
            .insert(&record("p_tls", "https://example.com", false))
            .await
            .unwrap();
        let flags: Vec<(String, bool)> = registry
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|p| (p.id, p.allow_insecure_http))
            .collect();
        assert_eq!(
            flags,
            [("p_lan".to_string(), true), ("p_tls".to_string(), false)]
        );
        registry.close().await;
    }

    /// The migration adds the flag to the rows already there: set for plain http to another
    /// host (those profiles had no https to choose), clear for https and loopback.
    #[tokio::test]
    async fn profiles_from_before_tls_keep_their_service_and_are_marked_when_in_cleartext() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        for sql in [
            include_str!("../migrations/registry/0001_profiles.sql"),
            include_str!("../migrations/registry/0002_notification_policy.sql"),
        ] {
            sqlx::raw_sql(sql).execute(&pool).await.unwrap();
        }
        let urls = [
            ("lan", "http://10.0.0.5:8750", true),
            ("name", "HTTP://Example.com", true),
            ("v4", "http://127.0.0.1:8750", false),
            ("v4_other", "http://127.8.0.1", false),
            ("v6", "http://[::1]:8750", false),
            ("localhost", "http://localhost:8750", false),
            ("localhost_bare", "http://localhost", false),
            ("localhost_lookalike", "http://localhost.example.com", true),
            ("tls", "https://example.com", false),
        ];
        for (id, url, _) in urls {
            sqlx::query(
                "INSERT INTO profiles (id, name, color, position, server_url, account_id, \
                 public_id, session_id, created_at) VALUES (?, ?, '#000000', 0, ?, ?, ?, 's', 0)",
            )
            .bind(id)
            .bind(id)
            .bind(url)
            .bind(id)
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
        }
        sqlx::raw_sql(include_str!(
            "../migrations/registry/0003_allow_insecure_http.sql"
        ))
        .execute(&pool)
        .await
        .unwrap();
        for (id, url, marked) in urls {
            let (flag,): (bool,) =
                sqlx::query_as("SELECT allow_insecure_http FROM profiles WHERE id = ?")
                    .bind(id)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            assert_eq!(flag, marked, "{url}");
            assert_eq!(
                crate::tls::transport(url).unwrap() == crate::tls::Transport::Cleartext,
                marked,
                "the migration agrees with the rule the client applies: {url}"
            );
        }
        pool.close().await;
    }
}
