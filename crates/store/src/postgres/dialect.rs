//! What `sql.rs` needs to know about PostgreSQL, and all it may use of this backend: the
//! database type and its transaction, the row- and key-locking fragments (`for_update!`,
//! `skip_locked!`), how a row names itself to the read cache (`row_id!`), the database's clock
//! (`db_now_sql!`), and the two lock steps (`lock_keys`, `try_lock_job`). The other dialect's
//! `dialect.rs` exports exactly the same names; `sql.rs` is compiled once against each.

use crate::StoreResult;

/// The transaction every step of `sql.rs` runs in.
pub type Tx = sqlx::Transaction<'static, Db>;

pub type Db = sqlx::Postgres;

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
pub async fn try_lock_job(tx: &mut Tx, name: &str) -> StoreResult<bool> {
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
pub async fn lock_keys(tx: &mut Tx, keys: &[String]) -> StoreResult<()> {
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
