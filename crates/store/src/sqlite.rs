//! The SQLite backend (the zero-set-up default): one node, one file.
//!
//! Writes go through a pool of one connection: SQLite admits one writer at a time anyway, and
//! queueing writers in-process instead of in SQLite's busy handler means a read-then-write
//! transaction can never fail with `SQLITE_BUSY` halfway. That single writer is also what
//! makes the key and row locks of `sql.rs` free here: a transaction holds the only write
//! connection, so nothing else writes until it ends. Reads use their own pool and, in WAL
//! mode, never wait for the writer.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqliteOperation, SqlitePoolOptions, SqliteSynchronous,
};

use super::cache::{ReadCache, Row};

use super::{DbError, StoreError, StoreResult};

/// How often [`checkpoint_in_background`] copies what was committed into the database file.
/// Under a sustained load the WAL cannot start over (new commits land while a copy runs), so
/// the writer's backstop still checkpoints at 16,384 pages, but only what was committed since
/// the last copy: the shorter the period, the shorter that stall. Stream bench, 64 senders,
/// 3 runs each, alternated: every 500 ms p99 76 ms, every 100 ms 48 ms, at 239 -> 255 µs of
/// CPU per message (within noise: 16 senders 290 -> 289).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Copies committed WAL frames back into the database file on a connection of its own, so
/// the writer does not: SQLite checkpoints in the connection whose commit crosses
/// `wal_autocheckpoint`, and that commit, and every request waiting on the group behind it,
/// then waited for the copy and its fsync (stream bench, 64 concurrent senders: p99 114-136
/// ms). PASSIVE never waits for the writer or a reader: it copies what no reader still needs,
/// and the writer starts the WAL again from its beginning once all of it was copied. The
/// writer's own checkpoint stays as the backstop should this one fall behind.
async fn checkpoint_in_background(
    options: SqliteConnectOptions,
    stop: tokio_util::sync::CancellationToken,
) {
    use sqlx::ConnectOptions as _;
    let mut conn = match options.connect().await {
        Ok(conn) => conn,
        Err(e) => {
            tracing::warn!(error = %e, "checkpointer: no connection; the writer checkpoints alone");
            return;
        }
    };
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&mut conn)
            .await
        {
            tracing::warn!(error = %e, "checkpointer: checkpoint failed; trying again");
        }
    }
}

/// The backend's whole surface for `sql.rs` (its macros are in scope from here on).
#[macro_use]
mod dialect;

// Intentional: the one SQL implementation, compiled for this backend (see sql.rs).
#[allow(clippy::duplicate_mod)]
#[path = "sql.rs"]
mod sql;

pub use sql::SqlStore as SqliteStore;

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://PATH` or `sqlite::memory:`)
    /// and brings its schema up to date.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode: a commit survives a crash of the process; only a power loss
            // can drop the last transactions, never corrupt the file.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // Reads map the file instead of copying pages: each connection's page cache is
            // invalidated by every commit of another connection, so copies would be redone
            // on nearly every read.
            .pragma("mmap_size", "268435456")
            // A multi-row statement inside a transaction keeps a statement journal (to undo
            // just itself); in memory, not as a temp file made and unlinked per group commit.
            .pragma("temp_store", "memory")
            // The WAL is copied back into the file by `checkpoint_in_background`; the writer
            // does it only if that falls behind by 16,384 pages (64 MiB), not SQLite's 1,000: a
            // message dirties pages that the next ones dirty again (index roots, the heads, the
            // table's last leaf), and one copy of each per checkpoint replaces one per 1,000
            // pages, with one fsync instead of sixteen. The stream bench, medians of 3 and 4
            // runs: 4,969 -> 5,969 messages/s, 169 -> 158 µs of CPU each, p99 13.4 -> 4.9 ms
            // (4,096 pages: 5,131/s, no better). The price is a WAL of up to 64 MiB on disk...
            .pragma("wal_autocheckpoint", "16384")
            // ...and no more: once a burst made it longer, it is cut back at the next reset.
            .pragma("journal_size_limit", "67108864");
        if let Some(parent) = Path::new(options.get_filename()).parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Database(DbError::setup(format!("{}: {e}", parent.display())))
            })?;
        }
        let cache = Arc::new(ReadCache::default());
        let (noting, settling) = (cache.clone(), cache.clone());
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            // Every row of `accounts` and `sessions` this connection changes is noted for the
            // read cache, whatever statement changes it (see `store/cache.rs`)...
            .after_connect(move |conn, _| {
                let cache = noting.clone();
                Box::pin(async move {
                    conn.lock_handle().await?.set_update_hook(move |change| {
                        let deleted = matches!(change.operation, SqliteOperation::Delete);
                        match change.table {
                            "accounts" => {
                                cache.noted(Row::Account(change.rowid));
                                if deleted {
                                    cache.noted(Row::AccountDeleted);
                                }
                            }
                            "sessions" => cache.noted(Row::Session(change.rowid)),
                            _ => {}
                        }
                    });
                    Ok(())
                })
            })
            // ...and dropped from it once the connection is back: committed or rolled back.
            .after_release(move |_, _| {
                settling.settled();
                Box::pin(async { Ok(true) })
            })
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&write)
            .await
            .map_err(|e| StoreError::Database(DbError::setup(format!("migrating: {e}"))))?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone().read_only(true))
            .await?;
        let messages = sql::spawn_message_writer(write.clone());
        let stop = tokio_util::sync::CancellationToken::new();
        // A database in memory is this connection's alone: there is no file to copy into.
        let _background = (options.get_filename() != Path::new(":memory:")).then(|| {
            tokio::spawn(checkpoint_in_background(options, stop.clone()));
            stop.drop_guard()
        });
        Ok(Self {
            write,
            read,
            messages,
            cache: Some(cache),
            _background,
        })
    }
}
