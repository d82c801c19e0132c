//! What `sql.rs` needs to know about SQLite, and all it may use of this backend: the
//! database type and its transaction, the row- and key-locking fragments (`for_update!`,
//! `skip_locked!`), how a row names itself to the read cache (`row_id!`), the database's clock
//! (`db_now_sql!`), and the two lock steps (`lock_keys`, `try_lock_job`). The other dialect's
//! `dialect.rs` exports exactly the same names; `sql.rs` is compiled once against each.

use crate::StoreResult;

/// The transaction every step of `sql.rs` runs in.
pub type Tx = sqlx::Transaction<'static, Db>;

pub type Db = sqlx::Sqlite;

/// SQLite has no row locks: the single write connection serialises every transaction.
macro_rules! for_update {
    () => {
        ""
    };
}

/// As `for_update!`: one writer, so nothing is ever locked by another.
macro_rules! skip_locked {
    () => {
        ""
    };
}

/// A row's own id (`rowid`), by which the update hook names it to the read cache.
macro_rules! row_id {
    ($table:literal) => {
        concat!($table, ".rowid")
    };
}

macro_rules! db_now_sql {
    () => {
        "SELECT CAST(unixepoch('subsec') * 1000 AS INTEGER)"
    };
}

/// One node: every job runs here.
pub async fn try_lock_job(_tx: &mut Tx, _name: &str) -> StoreResult<bool> {
    Ok(true)
}

/// No-op: see `for_update!`.
pub async fn lock_keys(_tx: &mut Tx, _keys: &[String]) -> StoreResult<()> {
    Ok(())
}
