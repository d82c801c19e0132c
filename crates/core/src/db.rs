//! Opening SQLite databases the same way everywhere: WAL, foreign keys, created if missing.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::error::Result;

pub async fn open(path: &Path, migrator: &sqlx::migrate::Migrator) -> Result<SqlitePool> {
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    // Two connections: the profile's task writes while a front end reads (WAL lets both go
    // at once). With one, a read could wait the whole 30 s acquire timeout behind the task:
    // seen in 1 of 3 runs of the core bench while adding the 8th–16th of 20 profiles; not
    // seen in 5 runs since (the holder was not pinned down).
    let pool = SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await?;
    migrator.run(&pool).await?;
    Ok(pool)
}
