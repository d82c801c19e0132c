//! Opening SQLite databases the same way everywhere: WAL, foreign keys, created if missing;
//! a profile's database encrypted with SQLCipher under its key from the keyring.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, SqlitePool};

use crate::error::{CoreError, Result};
use crate::vault::DatabaseKey;

/// The first 16 bytes of every unencrypted SQLite database. An encrypted one starts with
/// random salt instead.
const PLAIN_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// SQLite's SQLITE_NOTADB: what SQLCipher answers for a missing or wrong key.
const NOT_A_DATABASE: &str = "26";

fn options(path: &Path) -> Result<SqliteConnectOptions> {
    Ok(
        SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .busy_timeout(Duration::from_secs(10)),
    )
}

/// Opens (creating) the database at `path` and runs `migrator`. With a key the file is a
/// SQLCipher database; a plain one found there (written before profiles were encrypted) is
/// encrypted in place first.
pub async fn open(
    path: &Path,
    migrator: &sqlx::migrate::Migrator,
    key: Option<&DatabaseKey>,
) -> Result<SqlitePool> {
    let mut options = options(path)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true);
    if let Some(key) = key {
        if is_plain(path)? {
            encrypt_in_place(path, key).await?;
        }
        // sqlx runs `key` before every other pragma, as SQLCipher requires.
        options = options.pragma("key", key.sql_literal());
    }
    // One connection: a profile has one writer (its task), and reads are cheap.
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.code().as_deref() == Some(NOT_A_DATABASE) => {
                CoreError::DatabaseKey(path.display().to_string())
            }
            _ => CoreError::from(e),
        })?;
    migrator.run(&pool).await?;
    Ok(pool)
}

/// Whether `path` holds an unencrypted SQLite database (a missing or empty file does not).
pub(crate) fn is_plain(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut header = [0u8; 16];
    match std::fs::File::open(path) {
        Ok(mut f) => Ok(f.read_exact(&mut header).is_ok() && &header == PLAIN_HEADER),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Encrypts a plain database into a new file and renames it over the old one, so a crash at
/// any point leaves either the whole plain database or the whole encrypted one. The plain
/// file's WAL is folded in and removed first: a stale WAL beside the encrypted file would be
/// replayed into it.
async fn encrypt_in_place(path: &Path, key: &DatabaseKey) -> Result<()> {
    let staging = sibling(path, ".encrypting");
    remove_if_present(&staging)?;
    // ATTACH opens with the main connection's flags: it must be allowed to create the file.
    let mut conn = SqliteConnection::connect_with(&options(path)?.create_if_missing(true)).await?;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await?;
    sqlx::query("PRAGMA journal_mode = DELETE")
        .execute(&mut conn)
        .await?;
    // The key is hex digits in a fixed literal; the file name is bound.
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ATTACH DATABASE ?1 AS encrypted KEY {}",
        key.sql_literal()
    )))
    .bind(staging.display().to_string())
    .execute(&mut conn)
    .await?;
    sqlx::query("SELECT sqlcipher_export('encrypted')")
        .execute(&mut conn)
        .await?;
    sqlx::query("DETACH DATABASE encrypted")
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    // Opened for writing: Windows flushes a file only through a handle that may write
    // (FlushFileBuffers on a read-only one is "access denied").
    std::fs::OpenOptions::new()
        .write(true)
        .open(&staging)?
        .sync_all()?;
    std::fs::rename(&staging, path)?;
    for stale in ["-wal", "-shm"] {
        remove_if_present(&sibling(path, stale))?;
    }
    if let Some(dir) = path.parent() {
        crate::platform::sync_folder(dir)?;
    }
    tracing::info!("a plain profile database was encrypted in place");
    Ok(())
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/profile");

    async fn rows(pool: &SqlitePool) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
            .fetch_one(pool)
            .await
            .unwrap()
    }

    async fn add_rows(pool: &SqlitePool, n: i64) {
        for _ in 0..n {
            sqlx::query("INSERT INTO outbox (client_id, to_id, body, created_at) VALUES (?, 'u', 'hello', 0)")
                .bind(uuid::Uuid::new_v4().to_string())
                .execute(pool)
                .await
                .unwrap();
        }
    }

    /// A connection with no key at all, as plain SQLite (or anyone with a copy of the folder)
    /// would open the file.
    async fn open_without_key(path: &Path) -> std::result::Result<i64, sqlx::Error> {
        let mut conn = SqliteConnection::connect_with(&options(path).unwrap()).await?;
        sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master")
            .fetch_one(&mut conn)
            .await
    }

    #[tokio::test]
    async fn an_encrypted_database_is_unreadable_without_its_key_and_refused_with_another() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.db");
        let key = DatabaseKey::generate().unwrap();
        let pool = open(&path, &MIGRATOR, Some(&key)).await.unwrap();
        add_rows(&pool, 3).await;
        pool.close().await;

        let header = std::fs::read(&path).unwrap();
        assert_ne!(&header[..16], PLAIN_HEADER, "no SQLite header in the clear");
        let err = open_without_key(&path).await.unwrap_err();
        assert!(err.to_string().contains("not a database"), "{err}");

        let wrong = DatabaseKey::generate().unwrap();
        let err = open(&path, &MIGRATOR, Some(&wrong)).await.unwrap_err();
        assert_eq!(err.code(), "database_key", "{err}");
        assert!(!err.to_string().contains(&wrong.sql_literal()[3..67]));

        let pool = open(&path, &MIGRATOR, Some(&key)).await.unwrap();
        assert_eq!(rows(&pool).await, 3, "the right key reads every row");
        pool.close().await;
    }

    #[tokio::test]
    async fn a_plain_database_is_encrypted_in_place_without_losing_a_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.db");
        // Written as before encryption, rows still in the WAL (the pool is dropped unclosed).
        let plain = open(&path, &MIGRATOR, None).await.unwrap();
        add_rows(&plain, 250).await;
        drop(plain);
        assert!(is_plain(&path).unwrap());

        let key = DatabaseKey::generate().unwrap();
        let pool = open(&path, &MIGRATOR, Some(&key)).await.unwrap();
        assert_eq!(rows(&pool).await, 250);
        add_rows(&pool, 1).await;
        pool.close().await;
        assert!(!is_plain(&path).unwrap());
        assert!(open_without_key(&path).await.is_err());
        assert!(
            !sibling(&path, ".encrypting").exists(),
            "no staging file left"
        );

        // A second start finds it encrypted and leaves it be.
        let pool = open(&path, &MIGRATOR, Some(&key)).await.unwrap();
        assert_eq!(rows(&pool).await, 251);
        pool.close().await;
    }

    #[tokio::test]
    async fn a_staging_file_left_by_a_crash_is_discarded_and_the_plain_database_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.db");
        let plain = open(&path, &MIGRATOR, None).await.unwrap();
        add_rows(&plain, 5).await;
        plain.close().await;
        std::fs::write(sibling(&path, ".encrypting"), b"half an encrypted copy").unwrap();

        let key = DatabaseKey::generate().unwrap();
        let pool = open(&path, &MIGRATOR, Some(&key)).await.unwrap();
        assert_eq!(rows(&pool).await, 5);
        pool.close().await;
    }
}
