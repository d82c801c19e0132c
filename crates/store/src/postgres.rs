//! The PostgreSQL backend, for several nodes on one database.
//!
//! Transactions run at READ COMMITTED with explicit locks, taken in the one order `sql.rs`
//! describes: keys (a phone number, an SMS number and address, a sign-in key) as
//! transaction-scoped advisory locks, rows (a group, a red envelope) with `FOR UPDATE`, books
//! and event heads by the updates that move them. A deadlock or serialization failure the
//! database still reports is retried by `in_tx!`.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::{DbError, StoreError, StoreResult};

/// The backend's whole surface for `sql.rs` (its macros are in scope from here on).
#[macro_use]
mod dialect;

// Intentional: the one SQL implementation, compiled for this backend (see sql.rs).
#[allow(clippy::duplicate_mod)]
#[path = "sql.rs"]
mod sql;

pub use sql::SqlStore as PgStore;

/// Connections per node. Each in-flight write transaction holds one; reads borrow one briefly.
const POOL_SIZE: u32 = 16;

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`) and brings its schema up to date
    /// (several nodes starting at once migrate one after the other: sqlx holds an advisory
    /// lock while migrating).
    pub async fn open(url: &str) -> StoreResult<Self> {
        let options = PgConnectOptions::from_str(url)?.application_name("switchboard-server");
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Database(DbError::setup(format!("migrating: {e}"))))?;
        let writer = sql::spawn_message_writer(pool.clone());
        Ok(Self {
            write: pool.clone(),
            read: pool,
            // A group-commit writer per node, as on SQLite: a message's budget keys are locked
            // sorted before anything is written and event heads last, sorted, so two nodes'
            // groups queue on a shared key instead of deadlocking (and `in_tx!` runs a group
            // again should the database still abort one).
            messages: writer,
            // Several nodes write here; one node's memory cannot see another's writes.
            cache: None,
            _background: None,
        })
    }
}
