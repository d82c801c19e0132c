//! The SQLite backend (the zero-set-up default).
//!
//! Writes go through a pool of one connection: SQLite admits one writer at a time anyway, and
//! queueing writers in-process instead of in SQLite's busy handler means a read-then-write
//! transaction can never fail with `SQLITE_BUSY` halfway. Reads use their own pool and, in WAL
//! mode, never wait for the writer.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{FromRow, SqlitePool};

use super::*;

mod wallet;

pub struct SqliteStore {
    write: SqlitePool,
    read: SqlitePool,
}

fn db(e: sqlx::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

/// Maps a unique-constraint failure on `accounts` to the domain error it means.
fn account_conflict(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(d) = &e {
        let msg = d.message();
        if msg.contains("public_id_lower") {
            return StoreError::PublicIdTaken;
        }
        if msg.contains("accounts.phone") {
            return StoreError::PhoneAccountLimit;
        }
    }
    db(e)
}

#[derive(FromRow)]
struct AccountSql {
    id: String,
    phone: String,
    slot: i64,
    public_id: String,
    display_name: String,
    password_hash: String,
    created_at: i64,
    public_id_changed_at: Option<i64>,
    legal_name: Option<String>,
    id_number_masked: Option<String>,
    identity_verified_at: Option<i64>,
    totp_secret: Option<String>,
    totp_pending_secret: Option<String>,
    totp_last_step: i64,
}

impl From<AccountSql> for AccountRow {
    fn from(a: AccountSql) -> Self {
        AccountRow {
            id: a.id,
            phone: a.phone,
            slot: a.slot,
            public_id: a.public_id,
            display_name: a.display_name,
            password_hash: a.password_hash,
            created_at: a.created_at,
            public_id_changed_at: a.public_id_changed_at,
            legal_name: a.legal_name,
            id_number_masked: a.id_number_masked,
            identity_verified_at: a.identity_verified_at,
            totp_secret: a.totp_secret,
            totp_pending_secret: a.totp_pending_secret,
            totp_last_step: a.totp_last_step,
        }
    }
}

// Macros rather than consts: sqlx takes only literal SQL, and `concat!` needs literals.
macro_rules! account_columns {
    () => {
        "id, phone, slot, public_id, display_name, password_hash, created_at, \
         public_id_changed_at, legal_name, id_number_masked, identity_verified_at, totp_secret, \
         totp_pending_secret, totp_last_step"
    };
}

#[derive(FromRow)]
struct SmsSql {
    id: String,
    phone: String,
    purpose: String,
    code_hash: String,
    ip: String,
    created_at: i64,
    expires_at: i64,
    attempts: i64,
    consumed_at: Option<i64>,
}

impl From<SmsSql> for SmsCodeRow {
    fn from(s: SmsSql) -> Self {
        SmsCodeRow {
            id: s.id,
            phone: s.phone,
            purpose: s.purpose,
            code_hash: s.code_hash,
            ip: s.ip,
            created_at: s.created_at,
            expires_at: s.expires_at,
            attempts: s.attempts,
            consumed_at: s.consumed_at,
        }
    }
}

#[derive(FromRow)]
struct SessionSql {
    id: String,
    account_id: String,
    token_hash: String,
    device_name: String,
    created_at: i64,
    last_seen_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
}

impl From<SessionSql> for SessionRow {
    fn from(s: SessionSql) -> Self {
        SessionRow {
            id: s.id,
            account_id: s.account_id,
            token_hash: s.token_hash,
            device_name: s.device_name,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at,
            revoked_at: s.revoked_at,
        }
    }
}

macro_rules! session_columns {
    () => {
        "id, account_id, token_hash, device_name, created_at, last_seen_at, expires_at, revoked_at"
    };
}

/// A session and its account from one query (every authenticated request needs both).
#[derive(FromRow)]
struct SessionAccountSql {
    s_id: String,
    account_id: String,
    token_hash: String,
    device_name: String,
    s_created_at: i64,
    last_seen_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
    #[sqlx(flatten)]
    account: AccountSql,
}

macro_rules! request_columns {
    () => {
        "id, from_account, to_account, note, status, created_at"
    };
}

#[derive(FromRow)]
struct RequestSql {
    id: String,
    from_account: String,
    to_account: String,
    note: String,
    status: String,
    created_at: i64,
}

impl From<RequestSql> for ContactRequestRow {
    fn from(r: RequestSql) -> Self {
        ContactRequestRow {
            id: r.id,
            from_account: r.from_account,
            to_account: r.to_account,
            note: r.note,
            status: r.status,
            created_at: r.created_at,
        }
    }
}

async fn insert_member(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    group_id: &str,
    account_id: &str,
    now: Millis,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO group_members (group_id, account_id, joined_at) VALUES (?, ?, ?) \
         ON CONFLICT DO NOTHING",
    )
    .bind(group_id)
    .bind(account_id)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(db)?;
    Ok(())
}

#[derive(FromRow)]
struct LoginSql {
    failures: i64,
    throttled_until: i64,
    locked: bool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `url` (`sqlite://PATH` or `sqlite::memory:`)
    /// and brings its schema up to date.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(db)?
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
            .pragma("mmap_size", "268435456");
        if let Some(parent) = Path::new(options.get_filename()).parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| StoreError::Database(format!("{}: {e}", parent.display())))?;
            }
        }
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(db)?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&write)
            .await
            .map_err(|e| StoreError::Database(format!("migrating: {e}")))?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await
            .map_err(db)?;
        Ok(Self { write, read })
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn sms_insert(&self, code: &SmsCodeRow) -> StoreResult<()> {
        let mut tx = self.write.begin().await.map_err(db)?;
        sqlx::query(
            "UPDATE sms_codes SET consumed_at = ? \
             WHERE phone = ? AND purpose = ? AND consumed_at IS NULL",
        )
        .bind(code.created_at)
        .bind(&code.phone)
        .bind(&code.purpose)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        sqlx::query(
            "INSERT INTO sms_codes (id, phone, purpose, code_hash, ip, created_at, expires_at, \
             attempts, consumed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&code.id)
        .bind(&code.phone)
        .bind(&code.purpose)
        .bind(&code.code_hash)
        .bind(&code.ip)
        .bind(code.created_at)
        .bind(code.expires_at)
        .bind(code.attempts)
        .bind(code.consumed_at)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn sms_delete(&self, id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sms_codes WHERE id = ?")
            .bind(id)
            .execute(&self.write)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn sms_latest(&self, phone: &str, purpose: &str) -> StoreResult<Option<SmsCodeRow>> {
        let row: Option<SmsSql> = sqlx::query_as(
            "SELECT id, phone, purpose, code_hash, ip, created_at, expires_at, attempts, \
             consumed_at FROM sms_codes WHERE phone = ? AND purpose = ? \
             ORDER BY created_at DESC, rowid DESC LIMIT 1",
        )
        .bind(phone)
        .bind(purpose)
        .fetch_optional(&self.read)
        .await
        .map_err(db)?;
        Ok(row.map(Into::into))
    }

    async fn sms_count_for_number(
        &self,
        phone: &str,
        purpose: &str,
        since: Millis,
    ) -> StoreResult<WindowCount> {
        let (count, oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(created_at) FROM sms_codes \
             WHERE phone = ? AND purpose = ? AND created_at > ?",
        )
        .bind(phone)
        .bind(purpose)
        .bind(since)
        .fetch_one(&self.read)
        .await
        .map_err(db)?;
        Ok(WindowCount {
            count: u32::try_from(count).unwrap_or(u32::MAX),
            oldest,
        })
    }

    async fn sms_count_for_ip(&self, ip: &str, since: Millis) -> StoreResult<WindowCount> {
        let (count, oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(created_at) FROM sms_codes WHERE ip = ? AND created_at > ?",
        )
        .bind(ip)
        .bind(since)
        .fetch_one(&self.read)
        .await
        .map_err(db)?;
        Ok(WindowCount {
            count: u32::try_from(count).unwrap_or(u32::MAX),
            oldest,
        })
    }

    async fn sms_record_failure(&self, id: &str) -> StoreResult<i64> {
        let (attempts,): (i64,) = sqlx::query_as(
            "UPDATE sms_codes SET attempts = attempts + 1 WHERE id = ? RETURNING attempts",
        )
        .bind(id)
        .fetch_one(&self.write)
        .await
        .map_err(db)?;
        Ok(attempts)
    }

    async fn sms_consume(&self, id: &str, now: Millis) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE sms_codes SET consumed_at = ? WHERE id = ? AND consumed_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&self.write)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn account_create(&self, code_id: &str, new: &NewAccount) -> StoreResult<AccountRow> {
        let mut tx = self.write.begin().await.map_err(db)?;
        let consumed = sqlx::query(
            "UPDATE sms_codes SET consumed_at = ? WHERE id = ? AND consumed_at IS NULL",
        )
        .bind(new.created_at)
        .bind(code_id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if consumed.rows_affected() != 1 {
            return Err(StoreError::CodeUsed);
        }
        let (slot,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM accounts WHERE phone = ?")
            .bind(&new.phone)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
        if slot >= i64::from(new.per_phone) {
            return Err(StoreError::PhoneAccountLimit);
        }
        sqlx::query(
            "INSERT INTO accounts (id, phone, slot, public_id, public_id_lower, display_name, \
             password_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&new.id)
        .bind(&new.phone)
        .bind(slot)
        .bind(&new.public_id)
        .bind(new.public_id.to_lowercase())
        .bind(&new.display_name)
        .bind(&new.password_hash)
        .bind(new.created_at)
        .execute(&mut *tx)
        .await
        .map_err(account_conflict)?;
        tx.commit().await.map_err(db)?;
        Ok(AccountRow {
            id: new.id.clone(),
            phone: new.phone.clone(),
            slot,
            public_id: new.public_id.clone(),
            display_name: new.display_name.clone(),
            password_hash: new.password_hash.clone(),
            created_at: new.created_at,
            public_id_changed_at: None,
            legal_name: None,
            id_number_masked: None,
            identity_verified_at: None,
            totp_secret: None,
            totp_pending_secret: None,
            totp_last_step: 0,
        })
    }

    async fn account_by_id(&self, id: &str) -> StoreResult<Option<AccountRow>> {
        let row: Option<AccountSql> = sqlx::query_as(concat!(
            "SELECT ",
            account_columns!(),
            " FROM accounts WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.read)
        .await
        .map_err(db)?;
        Ok(row.map(Into::into))
    }

    async fn account_by_public_id(&self, public_id: &str) -> StoreResult<Option<AccountRow>> {
        let row: Option<AccountSql> = sqlx::query_as(concat!(
            "SELECT ",
            account_columns!(),
            " FROM accounts WHERE public_id_lower = ?"
        ))
        .bind(public_id.to_lowercase())
        .fetch_optional(&self.read)
        .await
        .map_err(db)?;
        Ok(row.map(Into::into))
    }

    async fn accounts_by_phone(&self, phone: &str) -> StoreResult<Vec<AccountRow>> {
        let rows: Vec<AccountSql> = sqlx::query_as(concat!(
            "SELECT ",
            account_columns!(),
            " FROM accounts WHERE phone = ? ORDER BY slot"
        ))
        .bind(phone)
        .fetch_all(&self.read)
        .await
        .map_err(db)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn account_set_display_name(&self, id: &str, name: &str) -> StoreResult<()> {
        sqlx::query("UPDATE accounts SET display_name = ? WHERE id = ?")
            .bind(name)
            .bind(id)
            .execute(&self.write)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn account_change_public_id(
        &self,
        id: &str,
        public_id: &str,
        now: Millis,
        not_before_last_change: Millis,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE accounts SET public_id = ?, public_id_lower = ?, public_id_changed_at = ? \
             WHERE id = ? AND (public_id_changed_at IS NULL OR public_id_changed_at <= ?)",
        )
        .bind(public_id)
        .bind(public_id.to_lowercase())
        .bind(now)
        .bind(id)
        .bind(not_before_last_change)
        .execute(&self.write)
        .await
        .map_err(account_conflict)?;
        Ok(done.rows_affected() == 1)
    }

    async fn account_set_password(
        &self,
        id: &str,
        hash: &str,
        keep: Option<&str>,
        now: Millis,
    ) -> StoreResult<Vec<EventRow>> {
        let mut tx = self.write.begin().await.map_err(db)?;
        sqlx::query("UPDATE accounts SET password_hash = ? WHERE id = ?")
            .bind(hash)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let revoked = revoke_all(&mut tx, id, keep, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(revoked)
    }

    async fn account_recover(
        &self,
        code_id: &str,
        account_id: &str,
        hash: &str,
        now: Millis,
    ) -> StoreResult<Vec<EventRow>> {
        let mut tx = self.write.begin().await.map_err(db)?;
        let consumed = sqlx::query(
            "UPDATE sms_codes SET consumed_at = ? WHERE id = ? AND consumed_at IS NULL",
        )
        .bind(now)
        .bind(code_id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if consumed.rows_affected() != 1 {
            return Err(StoreError::CodeUsed);
        }
        sqlx::query("UPDATE accounts SET password_hash = ? WHERE id = ?")
            .bind(hash)
            .bind(account_id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let revoked = revoke_all(&mut tx, account_id, None, now).await?;
        sqlx::query("DELETE FROM login_failures WHERE key = ?")
            .bind(crate::sessions::account_key(account_id))
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(revoked)
    }

    async fn account_set_identity(
        &self,
        id: &str,
        legal_name: &str,
        id_number_hash: &str,
        id_number_masked: &str,
        now: Millis,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE accounts SET legal_name = ?, id_number_hash = ?, id_number_masked = ?, \
             identity_verified_at = ? WHERE id = ? AND identity_verified_at IS NULL",
        )
        .bind(legal_name)
        .bind(id_number_hash)
        .bind(id_number_masked)
        .bind(now)
        .bind(id)
        .execute(&self.write)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn totp_set_pending(&self, id: &str, secret: &str) -> StoreResult<()> {
        sqlx::query("UPDATE accounts SET totp_pending_secret = ? WHERE id = ?")
            .bind(secret)
            .bind(id)
            .execute(&self.write)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn totp_enable(
        &self,
        id: &str,
        recovery_hashes: &[String],
        step: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.write.begin().await.map_err(db)?;
        let done = sqlx::query(
            "UPDATE accounts SET totp_secret = totp_pending_secret, totp_pending_secret = NULL, \
             totp_last_step = ? WHERE id = ? AND totp_pending_secret IS NOT NULL \
             AND totp_secret IS NULL",
        )
        .bind(step)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM totp_recovery_codes WHERE account_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        for hash in recovery_hashes {
            sqlx::query("INSERT INTO totp_recovery_codes (account_id, code_hash) VALUES (?, ?)")
                .bind(id)
                .bind(hash)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(true)
    }

    async fn totp_disable(&self, id: &str) -> StoreResult<()> {
        let mut tx = self.write.begin().await.map_err(db)?;
        sqlx::query(
            "UPDATE accounts SET totp_secret = NULL, totp_pending_secret = NULL WHERE id = ?",
        )
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        sqlx::query("DELETE FROM totp_recovery_codes WHERE account_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn totp_use_step(&self, id: &str, step: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE accounts SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?",
        )
        .bind(step)
        .bind(id)
        .bind(step)
        .execute(&self.write)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn totp_use_recovery(&self, id: &str, hash: &str, now: Millis) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE totp_recovery_codes SET used_at = ? \
             WHERE account_id = ? AND code_hash = ? AND used_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .bind(hash)
        .execute(&self.write)
        .await
        .map_err(db)?;
        Ok(done.rows_affected() == 1)
    }

    async fn login_states(&self, keys: &[String]) -> StoreResult<Vec<LoginState>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let row: Option<LoginSql> = sqlx::query_as(
                "SELECT failures, throttled_until, locked FROM login_failures WHERE key = ?",
            )
            .bind(key)
            .fetch_optional(&self.read)
            .await
            .map_err(db)?;
            out.push(row.map_or_else(LoginState::default, |r| LoginState {
                failures: r.failures,
                throttled_until: r.throttled_until,
                locked: r.locked,
            }));
        }
        Ok(out)
    }

    async fn login_failure(
        &self,
        keys: &[String],
        now: Millis,
        policy: ThrottlePolicy,
    ) -> StoreResult<Vec<LoginState>> {
        let mut tx = self.write.begin().await.map_err(db)?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let (failures,): (i64,) = sqlx::query_as(
                "INSERT INTO login_failures (key, failures) VALUES (?, 1) \
                 ON CONFLICT (key) DO UPDATE SET failures = failures + 1 RETURNING failures",
            )
            .bind(key)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
            let state = policy.after_failure(failures, now);
            sqlx::query("UPDATE login_failures SET throttled_until = ?, locked = ? WHERE key = ?")
                .bind(state.throttled_until)
                .bind(state.locked)
                .bind(key)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
            out.push(state);
        }
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    async fn login_reset(&self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM login_failures WHERE key = ?")
            .bind(key)
            .execute(&self.write)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn rate_hit(
        &self,
        scope: &str,
        key: &str,
        now: Millis,
        since: Millis,
    ) -> StoreResult<WindowCount> {
        let mut tx = self.write.begin().await.map_err(db)?;
        sqlx::query("INSERT INTO rate_events (scope, key, at) VALUES (?, ?, ?)")
            .bind(scope)
            .bind(key)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let (count, oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(at) FROM rate_events WHERE scope = ? AND key = ? AND at > ?",
        )
        .bind(scope)
        .bind(key)
        .bind(since)
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(WindowCount {
            count: u32::try_from(count).unwrap_or(u32::MAX),
            oldest,
        })
    }

    async fn session_create(&self, row: &SessionRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (id, account_id, token_hash, device_name, created_at, \
             last_seen_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&row.id)
        .bind(&row.account_id)
        .bind(&row.token_hash)
        .bind(&row.device_name)
        .bind(row.created_at)
        .bind(row.last_seen_at)
        .bind(row.expires_at)
        .bind(row.revoked_at)
        .execute(&self.write)
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn session_with_account(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<(SessionRow, AccountRow)>> {
        let row: Option<SessionAccountSql> = sqlx::query_as(concat!(
            "SELECT s.id AS s_id, s.account_id, s.token_hash, s.device_name, s.created_at AS s_created_at, \
             s.last_seen_at, s.expires_at, s.revoked_at, a.",
            "id, a.phone, a.slot, a.public_id, a.display_name, a.password_hash, a.created_at, \
             a.public_id_changed_at, a.legal_name, a.id_number_masked, a.identity_verified_at, \
             a.totp_secret, a.totp_pending_secret, a.totp_last_step \
             FROM sessions s JOIN accounts a ON a.id = s.account_id WHERE s.token_hash = ?"
        ))
        .bind(token_hash)
        .fetch_optional(&self.read)
        .await
        .map_err(db)?;
        Ok(row.map(|r| {
            let session = SessionRow {
                id: r.s_id,
                account_id: r.account_id,
                token_hash: r.token_hash,
                device_name: r.device_name,
                created_at: r.s_created_at,
                last_seen_at: r.last_seen_at,
                expires_at: r.expires_at,
                revoked_at: r.revoked_at,
            };
            (session, r.account.into())
        }))
    }

    async fn session_touch(&self, id: &str, now: Millis) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = ? WHERE id = ?")
            .bind(now)
            .bind(id)
            .execute(&self.write)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn sessions_live(&self, account_id: &str, now: Millis) -> StoreResult<Vec<SessionRow>> {
        let rows: Vec<SessionSql> = sqlx::query_as(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE account_id = ? AND revoked_at IS NULL \
             AND expires_at > ? ORDER BY created_at DESC, id"
        ))
        .bind(account_id)
        .bind(now)
        .fetch_all(&self.read)
        .await
        .map_err(db)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn session_revoke(
        &self,
        account_id: &str,
        id: &str,
        now: Millis,
    ) -> StoreResult<Option<EventRow>> {
        let mut tx = self.write.begin().await.map_err(db)?;
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = ? \
             WHERE id = ? AND account_id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .bind(account_id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        let mut events = append(&mut tx, &[revoked_event(account_id, id)], now).await?;
        tx.commit().await.map_err(db)?;
        Ok(events.pop())
    }

    async fn are_contacts(&self, a: &str, b: &str) -> StoreResult<bool> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT 1 FROM contacts WHERE account_id = ? AND contact_id = ?")
                .bind(a)
                .bind(b)
                .fetch_optional(&self.read)
                .await
                .map_err(db)?;
        Ok(row.is_some())
    }

    async fn contacts_of(&self, account_id: &str) -> StoreResult<Vec<ContactRow>> {
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT a.id, a.public_id, a.display_name, c.since FROM contacts c \
             JOIN accounts a ON a.id = c.contact_id WHERE c.account_id = ? \
             ORDER BY a.display_name, a.public_id_lower",
        )
        .bind(account_id)
        .fetch_all(&self.read)
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(account_id, public_id, display_name, since)| ContactRow {
                account_id,
                public_id,
                display_name,
                since,
            })
            .collect())
    }

    async fn contact_request_insert(
        &self,
        row: &ContactRequestRow,
        events: &[NewEvent],
    ) -> StoreResult<Vec<EventRow>> {
        let mut tx = self.write.begin().await.map_err(db)?;
        sqlx::query(
            "INSERT INTO contact_requests (id, from_account, to_account, note, status, created_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&row.id)
        .bind(&row.from_account)
        .bind(&row.to_account)
        .bind(&row.note)
        .bind(&row.status)
        .bind(row.created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Duplicate
            } else {
                db(e)
            }
        })?;
        let out = append(&mut tx, events, row.created_at).await?;
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    async fn contact_request_by_id(&self, id: &str) -> StoreResult<Option<ContactRequestRow>> {
        let row: Option<RequestSql> = sqlx::query_as(concat!(
            "SELECT ",
            request_columns!(),
            " FROM contact_requests WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.read)
        .await
        .map_err(db)?;
        Ok(row.map(Into::into))
    }

    async fn contact_request_pending(
        &self,
        from: &str,
        to: &str,
    ) -> StoreResult<Option<ContactRequestRow>> {
        let row: Option<RequestSql> = sqlx::query_as(concat!(
            "SELECT ",
            request_columns!(),
            " FROM contact_requests WHERE from_account = ? AND to_account = ? \
             AND status = 'pending'"
        ))
        .bind(from)
        .bind(to)
        .fetch_optional(&self.read)
        .await
        .map_err(db)?;
        Ok(row.map(Into::into))
    }

    async fn contact_requests_pending_for(
        &self,
        account_id: &str,
    ) -> StoreResult<Vec<ContactRequestRow>> {
        let rows: Vec<RequestSql> = sqlx::query_as(concat!(
            "SELECT ",
            request_columns!(),
            " FROM contact_requests WHERE status = 'pending' \
             AND (from_account = ? OR to_account = ?) ORDER BY created_at, id"
        ))
        .bind(account_id)
        .bind(account_id)
        .fetch_all(&self.read)
        .await
        .map_err(db)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn contact_request_accept(
        &self,
        id: &str,
        now: Millis,
        events: &[NewEvent],
    ) -> StoreResult<Vec<EventRow>> {
        let mut tx = self.write.begin().await.map_err(db)?;
        let pair: Option<(String, String)> = sqlx::query_as(
            "UPDATE contact_requests SET status = 'accepted', decided_at = ? \
             WHERE id = ? AND status = 'pending' RETURNING from_account, to_account",
        )
        .bind(now)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let Some((a, b)) = pair else {
            return Err(StoreError::NotPending);
        };
        for (x, y) in [(&a, &b), (&b, &a)] {
            sqlx::query(
                "INSERT INTO contacts (account_id, contact_id, since) VALUES (?, ?, ?) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(x)
            .bind(y)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        }
        // A request the other way is answered by this acceptance too.
        sqlx::query(
            "UPDATE contact_requests SET status = 'accepted', decided_at = ? \
             WHERE from_account = ? AND to_account = ? AND status = 'pending'",
        )
        .bind(now)
        .bind(&b)
        .bind(&a)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        let out = append(&mut tx, events, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    async fn group_create(
        &self,
        group: &GroupRow,
        members: &[String],
        events: &[NewEvent],
    ) -> StoreResult<Vec<EventRow>> {
        let mut tx = self.write.begin().await.map_err(db)?;
        sqlx::query("INSERT INTO groups (id, name, owner_id, created_at) VALUES (?, ?, ?, ?)")
            .bind(&group.id)
            .bind(&group.name)
            .bind(&group.owner_id)
            .bind(group.created_at)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        for m in members {
            insert_member(&mut tx, &group.id, m, group.created_at).await?;
        }
        let out = append(&mut tx, events, group.created_at).await?;
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    async fn group_by_id(&self, id: &str) -> StoreResult<Option<GroupRow>> {
        let row: Option<(String, String, String, i64)> =
            sqlx::query_as("SELECT id, name, owner_id, created_at FROM groups WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.read)
                .await
                .map_err(db)?;
        Ok(row.map(|(id, name, owner_id, created_at)| GroupRow {
            id,
            name,
            owner_id,
            created_at,
        }))
    }

    async fn group_members(&self, id: &str) -> StoreResult<Vec<MemberRow>> {
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT a.id, a.public_id, a.display_name, m.joined_at FROM group_members m \
             JOIN accounts a ON a.id = m.account_id WHERE m.group_id = ? \
             ORDER BY m.joined_at, a.public_id_lower",
        )
        .bind(id)
        .fetch_all(&self.read)
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(
                |(account_id, public_id, display_name, joined_at)| MemberRow {
                    account_id,
                    public_id,
                    display_name,
                    joined_at,
                },
            )
            .collect())
    }

    async fn groups_of(&self, account_id: &str) -> StoreResult<Vec<GroupRow>> {
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT g.id, g.name, g.owner_id, g.created_at FROM group_members m \
             JOIN groups g ON g.id = m.group_id WHERE m.account_id = ? ORDER BY g.created_at, g.id",
        )
        .bind(account_id)
        .fetch_all(&self.read)
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(id, name, owner_id, created_at)| GroupRow {
                id,
                name,
                owner_id,
                created_at,
            })
            .collect())
    }

    async fn group_add_members(
        &self,
        id: &str,
        accounts: &[String],
        now: Millis,
        max: u32,
        events: &[NewEvent],
    ) -> StoreResult<Vec<EventRow>> {
        let mut tx = self.write.begin().await.map_err(db)?;
        for a in accounts {
            insert_member(&mut tx, id, a, now).await?;
        }
        let (count,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM group_members WHERE group_id = ?")
                .bind(id)
                .fetch_one(&mut *tx)
                .await
                .map_err(db)?;
        if count > i64::from(max) {
            return Err(StoreError::GroupFull);
        }
        let out = append(&mut tx, events, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    async fn group_remove_member(
        &self,
        id: &str,
        account_id: &str,
        new_owner: Option<&str>,
        now: Millis,
        events: &[NewEvent],
    ) -> StoreResult<Vec<EventRow>> {
        let mut tx = self.write.begin().await.map_err(db)?;
        sqlx::query("DELETE FROM group_members WHERE group_id = ? AND account_id = ?")
            .bind(id)
            .bind(account_id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        if let Some(owner) = new_owner {
            sqlx::query("UPDATE groups SET owner_id = ? WHERE id = ?")
                .bind(owner)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        let out = append(&mut tx, events, now).await?;
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    async fn message_by_client_id(
        &self,
        sender_id: &str,
        client_id: &str,
    ) -> StoreResult<Option<MessageRow>> {
        let row: Option<(String, String, String, String, String, i64, String)> = sqlx::query_as(
            "SELECT id, sender_id, client_id, target, body, sent_at, data FROM messages \
             WHERE sender_id = ? AND client_id = ?",
        )
        .bind(sender_id)
        .bind(client_id)
        .fetch_optional(&self.read)
        .await
        .map_err(db)?;
        Ok(row.map(
            |(id, sender_id, client_id, target, body, sent_at, data)| MessageRow {
                id,
                sender_id,
                client_id,
                target,
                body,
                sent_at,
                data,
            },
        ))
    }

    async fn message_insert(
        &self,
        row: &MessageRow,
        events: &[NewEvent],
    ) -> StoreResult<Vec<EventRow>> {
        let mut tx = self.write.begin().await.map_err(db)?;
        sqlx::query(
            "INSERT INTO messages (id, sender_id, client_id, target, body, sent_at, data) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&row.id)
        .bind(&row.sender_id)
        .bind(&row.client_id)
        .bind(&row.target)
        .bind(&row.body)
        .bind(row.sent_at)
        .bind(&row.data)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Duplicate
            } else {
                db(e)
            }
        })?;
        let out = append(&mut tx, events, row.sent_at).await?;
        tx.commit().await.map_err(db)?;
        Ok(out)
    }

    async fn event_head(&self, account_id: &str) -> StoreResult<i64> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT last_seq FROM event_heads WHERE account_id = ?")
                .bind(account_id)
                .fetch_optional(&self.read)
                .await
                .map_err(db)?;
        Ok(row.map_or(0, |(seq,)| seq))
    }

    async fn events_after(
        &self,
        account_id: &str,
        since: i64,
        limit: i64,
    ) -> StoreResult<Vec<EventRow>> {
        let rows: Vec<(i64, String, i64, String)> = sqlx::query_as(
            "SELECT seq, kind, at, data FROM events WHERE account_id = ? AND seq > ? \
             ORDER BY seq LIMIT ?",
        )
        .bind(account_id)
        .bind(since)
        .bind(limit)
        .fetch_all(&self.read)
        .await
        .map_err(db)?;
        Ok(rows
            .into_iter()
            .map(|(seq, kind, at, data)| EventRow {
                account_id: account_id.to_string(),
                seq,
                kind,
                at,
                data,
            })
            .collect())
    }

    async fn idempotent_answer(
        &self,
        account_id: &str,
        key: &str,
    ) -> StoreResult<Option<IdempotentAnswer>> {
        self.idempotent_answer_impl(account_id, key).await
    }

    async fn ledger_apply(
        &self,
        op: &LedgerOp,
        journal_id: &str,
        note: &str,
        now: Millis,
        idempotency: Option<&IdempotencyRecord>,
        finish: Finish<'_>,
    ) -> StoreResult<(String, Vec<EventRow>)> {
        self.ledger_apply_impl(op, journal_id, note, now, idempotency, finish)
            .await
    }

    async fn book_balance(&self, book: &str) -> StoreResult<i64> {
        self.book_balance_impl(book).await
    }

    async fn wallet_history(
        &self,
        account_id: &str,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<HistoryRow>> {
        self.wallet_history_impl(account_id, before, limit).await
    }

    async fn envelope(&self, id: &str) -> StoreResult<Option<(EnvelopeRow, Vec<ShareRow>)>> {
        self.envelope_impl(id).await
    }

    async fn envelopes_due(&self, now: Millis, limit: i64) -> StoreResult<Vec<String>> {
        self.envelopes_due_impl(now, limit).await
    }

    async fn ledger_check(&self) -> StoreResult<Option<String>> {
        self.ledger_check_impl().await
    }

    async fn prune(&self, before: Millis) -> StoreResult<u64> {
        let mut tx = self.write.begin().await.map_err(db)?;
        let a = sqlx::query("DELETE FROM sms_codes WHERE created_at < ?")
            .bind(before)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        let b = sqlx::query("DELETE FROM rate_events WHERE at < ?")
            .bind(before)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(a.rows_affected() + b.rows_affected())
    }

    async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

async fn revoke_all(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    account_id: &str,
    keep: Option<&str>,
    now: Millis,
) -> StoreResult<Vec<EventRow>> {
    let revoked: Vec<(String,)> = sqlx::query_as(
        "UPDATE sessions SET revoked_at = ? \
         WHERE account_id = ? AND revoked_at IS NULL AND id IS NOT ? RETURNING id",
    )
    .bind(now)
    .bind(account_id)
    .bind(keep)
    .fetch_all(&mut **tx)
    .await
    .map_err(db)?;
    let events: Vec<NewEvent> = revoked
        .iter()
        .map(|(id,)| revoked_event(account_id, id))
        .collect();
    append(tx, &events, now).await
}

fn revoked_event(account_id: &str, session_id: &str) -> NewEvent {
    NewEvent {
        account_id: account_id.to_string(),
        kind: "session.revoked",
        data: serde_json::json!({ "session_id": session_id }).to_string(),
    }
}

/// Appends events to their accounts' logs inside `tx`, each with its account's next sequence
/// number.
async fn append(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    events: &[NewEvent],
    now: Millis,
) -> StoreResult<Vec<EventRow>> {
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let (seq,): (i64,) = sqlx::query_as(
            "INSERT INTO event_heads (account_id, last_seq) VALUES (?, 1) \
             ON CONFLICT (account_id) DO UPDATE SET last_seq = last_seq + 1 RETURNING last_seq",
        )
        .bind(&e.account_id)
        .fetch_one(&mut **tx)
        .await
        .map_err(db)?;
        sqlx::query("INSERT INTO events (account_id, seq, kind, at, data) VALUES (?, ?, ?, ?, ?)")
            .bind(&e.account_id)
            .bind(seq)
            .bind(e.kind)
            .bind(now)
            .bind(&e.data)
            .execute(&mut **tx)
            .await
            .map_err(db)?;
        out.push(EventRow {
            account_id: e.account_id.clone(),
            seq,
            kind: e.kind.to_string(),
            at: now,
            data: e.data.clone(),
        });
    }
    Ok(out)
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}
