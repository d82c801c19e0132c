//! A database per test on every backend, and the macro that runs one suite on each: for this
//! crate's conformance suite and the service's tests.
//!
//! SQLite: a file in a temp dir. PostgreSQL: a database of its own on the throwaway cluster
//! `SWITCHBOARD_TEST_PG` names (`cargo xtask test` starts one), dropped with the fixture.

// Test scaffolding: a failure here is a broken test set-up, and a panic says so best.
#![allow(clippy::expect_used, clippy::unwrap_used)]

/// Generates `sqlite::case` and `postgres::case` tests for each async `case(Backend)` listed:
/// one suite, every backend (as matrix-rust-sdk's store suites do).
#[macro_export]
macro_rules! on_every_backend {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case($crate::testing::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case($crate::testing::Backend::Postgres).await
                }
            )*
        }
    };
}

/// A storage backend the tests run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The env var naming the test cluster: `postgres://user@host:port/db` of a database the
/// tests may create databases from.
pub const TEST_PG_ENV: &str = "SWITCHBOARD_TEST_PG";
/// The env var choosing the backend of the service's test server (`TestServer::start`): `sqlite` (default) or `postgres`.
pub const TEST_BACKEND_ENV: &str = "SWITCHBOARD_TEST_BACKEND";

impl Backend {
    /// The backend `SWITCHBOARD_TEST_BACKEND` names (SQLite when unset).
    pub fn from_env() -> Self {
        match std::env::var(TEST_BACKEND_ENV).as_deref() {
            Ok("postgres") => Backend::Postgres,
            Ok("sqlite") | Err(_) => Backend::Sqlite,
            Ok(other) => panic!("{TEST_BACKEND_ENV}={other:?}: expected sqlite or postgres"),
        }
    }
}

/// The test cluster's URL, if one was given.
pub fn test_cluster() -> Option<String> {
    std::env::var(TEST_PG_ENV).ok().filter(|u| !u.is_empty())
}

/// A database for one test, gone when dropped: a SQLite file in a temp dir, or a database of
/// its own on the test cluster.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    dir: tempfile::TempDir,
    /// The cluster's admin URL and this database's name, to drop it afterwards.
    pg: Option<(String, String)>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the test database");
        match backend {
            Backend::Sqlite => TestDb {
                url: format!("sqlite://{}", dir.path().join("server.db").display()),
                backend,
                dir,
                pg: None,
            },
            Backend::Postgres => {
                let admin = test_cluster().unwrap_or_else(|| {
                    panic!(
                        "{TEST_PG_ENV} is not set: run the PostgreSQL tests through `cargo xtask \
                         test`, or start a throwaway cluster with `cargo xtask pg` and export \
                         the variable it prints"
                    )
                });
                let name = format!("t_{}", uuid::Uuid::new_v4().simple());
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                    .await
                    .expect("connecting to the test cluster");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("creating the test database");
                let _ = sqlx::Connection::close(conn).await;
                // The same cluster and user, this database: `scheme://authority[/db][?query]`.
                let (scheme, rest) = admin.split_once("://").expect("a postgres:// URL");
                let authority = rest.split(['/', '?']).next().unwrap_or(rest);
                let url = format!("{scheme}://{authority}/{name}");
                TestDb {
                    url,
                    backend,
                    dir,
                    pg: Some((admin, name)),
                }
            }
        }
    }

    /// Another handle on this same database, with a temp dir of its own, that leaves the
    /// database alone when dropped (another node of one service, a service restarted on it).
    pub fn sharing(&self) -> Self {
        TestDb {
            url: self.url.clone(),
            backend: self.backend,
            dir: tempfile::tempdir().expect("temp dir"),
            pg: None,
        }
    }

    /// The temp dir (the SQLite file lives there; PostgreSQL tests may keep files there too).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.pg.take() else {
            return;
        };
        // Drop is not async and may run inside a runtime: a thread of its own with a small
        // runtime drops the database (FORCE: the service's pool may still be closing).
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            rt.block_on(async move {
                if let Ok(mut conn) =
                    <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await
                {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}
