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

type Db = sqlx::Postgres;

macro_rules! for_update {
    () => {
        " FOR UPDATE"
    };
}

/// A row lock that passes over rows other transactions hold (work queues: every node sweeps).
macro_rules! skip_locked {
    () => {
        " FOR UPDATE SKIP LOCKED"
    };
}

/// No row ids here (and no read cache to key by them): a constant of the same type.
macro_rules! row_id {
    ($table:literal) => {
        "CAST(0 AS BIGINT)"
    };
}

/// The database's clock, in Unix milliseconds (`clock_timestamp`, not the transaction's start).
macro_rules! db_now_sql {
    () => {
        "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint"
    };
}

/// Whether this transaction may run the background job `name` now: a transaction-scoped
/// advisory lock, taken without waiting, so exactly one node runs it and the others skip.
async fn try_lock_job(tx: &mut sql::Tx, name: &str) -> StoreResult<bool> {
    let (got,): (bool,) =
        sqlx::query_as("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 1))")
            .bind(format!("job:{name}"))
            .fetch_one(&mut **tx)
            .await?;
    Ok(got)
}

/// Takes a transaction-scoped advisory lock on each key, in sorted order (so two
/// transactions locking overlapping keys queue instead of deadlocking). Keys are hashed to
/// PostgreSQL's 64-bit lock space; a collision only makes two unrelated steps wait for each
/// other. One statement whatever the number of keys (a group commit locks every sender's
/// budget): a scan of an array yields its elements in order, and each row's lock is taken as
/// the row is produced.
async fn lock_keys(tx: &mut sql::Tx, keys: &[String]) -> StoreResult<()> {
    let mut keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    keys.sort_unstable();
    keys.dedup();
    if keys.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended(key, 0)) FROM unnest($1::text[]) AS key",
    )
    .bind(keys)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

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
