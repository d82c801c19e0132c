//! The profile registry (`profiles.db`): ids, names, colours, order, service URL and account,
//! and whether the profile may use plain http to its service. Never a secret.

use std::path::Path;

use sqlx::SqlitePool;

use crate::error::{CoreError, Result};
use crate::ids::{AccountId, PublicId};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/registry");

/// A profile's id (`p_` and 12 hex digits, minted when the profile is added): the one thing
/// that names a profile inside the engine and the app. A name is for people: it can repeat,
/// and it can be set to anything, even another profile's id, so it is never taken for an id.
/// A name becomes an id only where a person types one ([`Registry::find_by_name_or_id`], the
/// CLI's).
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    sqlx::Type,
)]
#[serde(transparent)]
#[sqlx(transparent)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ProfileId(String);

impl ProfileId {
    /// An id as stored or as a window's label carries it; it names a profile only if the
    /// registry has one with exactly this id.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// A fresh id for a new profile.
    pub(crate) fn mint() -> Self {
        Self(format!(
            "p_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ProfileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ProfileRecord {
    pub id: ProfileId,
    pub name: String,
    /// `#rrggbb`.
    pub color: String,
    pub position: i64,
    pub server_url: String,
    pub account_id: AccountId,
    pub public_id: PublicId,
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
            pool: crate::db::open(path, &MIGRATOR, None).await?,
        })
    }

    pub async fn list(&self) -> Result<Vec<ProfileRecord>> {
        Ok(
            sqlx::query_as("SELECT * FROM profiles ORDER BY position, created_at")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// The profile with exactly this id; never one that merely has it as its name.
    pub async fn find(&self, id: &ProfileId) -> Result<ProfileRecord> {
        sqlx::query_as("SELECT * FROM profiles WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| CoreError::NoSuchProfile(id.to_string()))
    }

    /// What a person typed (the CLI's `--profile Work`): a profile id, else a name
    /// (case-insensitively). An exact id wins over a name, and a name several profiles share
    /// is refused rather than guessed. Only front ends where a person types a profile use
    /// this; the app always knows the id.
    pub async fn find_by_name_or_id(&self, name_or_id: &str) -> Result<ProfileRecord> {
        let all = self.list().await?;
        if let Some(p) = all.iter().find(|p| p.id.as_str() == name_or_id) {
            return Ok(p.clone());
        }
        let mut named = all
            .into_iter()
            .filter(|p| p.name.eq_ignore_ascii_case(name_or_id));
        match (named.next(), named.next()) {
            (Some(p), None) => Ok(p),
            (Some(_), Some(_)) => Err(CoreError::Invalid(format!(
                "several profiles are named {name_or_id:?}; give the id instead"
            ))),
            (None, _) => Err(CoreError::NoSuchProfile(name_or_id.to_string())),
        }
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

    pub async fn rename(&self, id: &ProfileId, name: &str) -> Result<()> {
        sqlx::query("UPDATE profiles SET name = ? WHERE id = ?")
            .bind(name)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn recolor(&self, id: &ProfileId, color: &str) -> Result<()> {
        sqlx::query("UPDATE profiles SET color = ? WHERE id = ?")
            .bind(color)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Puts the profiles in the order given (ids); the others keep theirs, after these.
    pub async fn reorder(&self, ids: &[ProfileId]) -> Result<()> {
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

    pub async fn policy(&self, id: &ProfileId) -> Result<crate::notify::Policy> {
        let (json,): (String,) = sqlx::query_as("SELECT policy FROM profiles WHERE id = ?")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        // `{}` (the default) and any field a newer version added both read as sensible.
        Ok(serde_json::from_str(&json).unwrap_or_default())
    }

    pub async fn set_policy(&self, id: &ProfileId, policy: &crate::notify::Policy) -> Result<()> {
        let json = serde_json::to_string(policy).map_err(|e| CoreError::Invalid(e.to_string()))?;
        sqlx::query("UPDATE profiles SET policy = ? WHERE id = ?")
            .bind(json)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn remove(&self, id: &ProfileId) -> Result<()> {
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
            id: ProfileId::new(id),
            name: id.into(),
            color: "#2f6fed".into(),
            position: 0,
            server_url: url.into(),
            account_id: AccountId::parse(&format!("a_{id}")).unwrap(),
            public_id: PublicId::parse(&format!("{id}_pid")).unwrap(),
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
            .map(|p| (p.id.to_string(), p.allow_insecure_http))
            .collect();
        assert_eq!(
            flags,
            [("p_lan".to_string(), true), ("p_tls".to_string(), false)]
        );
        registry.close().await;
    }

    #[tokio::test]
    async fn a_profile_is_found_by_its_id_and_a_name_only_where_a_person_typed_it() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(&dir.path().join("profiles.db"))
            .await
            .unwrap();
        let named = |id: &str, name: &str| ProfileRecord {
            name: name.into(),
            ..record(id, "https://example.com", false)
        };
        // A first in order, named after B's id; C and D share a name.
        for (id, name) in [
            ("p_a", "p_b"),
            ("p_b", "Work"),
            ("p_c", "Home"),
            ("p_d", "home"),
        ] {
            registry.insert(&named(id, name)).await.unwrap();
        }
        let find = async |id: &str| registry.find(&ProfileId::new(id)).await.map(|p| p.id);
        assert_eq!(
            find("p_b").await.unwrap(),
            ProfileId::new("p_b"),
            "the id, never the profile named like it"
        );
        assert_eq!(
            find("Work").await.unwrap_err().code(),
            "no_such_profile",
            "a name is not an id"
        );
        let typed = async |s: &str| registry.find_by_name_or_id(s).await.map(|p| p.id);
        assert_eq!(
            typed("p_b").await.unwrap(),
            ProfileId::new("p_b"),
            "an id wins"
        );
        assert_eq!(typed("WORK").await.unwrap(), ProfileId::new("p_b"));
        assert_eq!(
            typed("home").await.unwrap_err().code(),
            "invalid",
            "a name two profiles share is refused, not guessed"
        );
        assert_eq!(typed("p_z").await.unwrap_err().code(), "no_such_profile");
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
