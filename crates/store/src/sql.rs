//! The store in SQL, one implementation for every backend.
//!
//! This file is compiled once per backend, as a child module of `sqlite.rs` and of
//! `postgres.rs`: each parent names its database (`Db`), how to take a transaction-scoped lock
//! on a key (`lock_keys`) and how to lock a row it reads (`for_update!`), and this module is
//! written in the SQL both understand (`$n` placeholders, `ON CONFLICT`, `RETURNING`). So every
//! rule of concurrency below is written once and holds on both.
//!
//! Concurrency, for any number of writers (PostgreSQL nodes; SQLite has one writer per
//! process, where the locks cost nothing):
//! - what a step reads to decide is locked before it writes: a phone number's key before its
//!   slots are counted, the group row before its members are, the envelope row before a claim
//!   or a refund, an SMS number and client address before their limits are counted, a sign-in
//!   key before its state is judged;
//! - locks are taken in one global order so no two steps wait on each other: keys before rows,
//!   keys sorted, books sorted by id, event heads last and sorted by account;
//! - conditional updates are counted (`rows_affected`, `RETURNING`) rather than trusted;
//! - a transaction the database aborts for a deadlock or a serialization conflict is run
//!   again from the start (see `in_tx!`).

use std::collections::BTreeMap;

use async_trait::async_trait;
use sqlx::{FromRow, Pool};

use super::dialect::{Db, Tx, lock_keys, try_lock_job};
use crate::Millis;
use crate::*;

#[allow(clippy::duplicate_mod)]
#[path = "sql/wallet.rs"]
mod wallet;

#[allow(clippy::duplicate_mod)]
#[path = "sql/official.rs"]
mod official;

#[allow(clippy::duplicate_mod)]
#[path = "sql/moments.rs"]
mod moments;

/// Runs `$body` in a transaction of `$store`'s write pool (`$tx` names it inside), commits,
/// and runs it all again when the database aborted it as retryable. `$body` is an async
/// block's contents ending in a `StoreResult`.
macro_rules! in_tx {
    ($store:expr, |$tx:ident| $body:block) => {{
        let mut attempt = 0u32;
        loop {
            let mut $tx = $store.write.begin().await?;
            let outcome: StoreResult<_> = async { $body }.await;
            let outcome = match outcome {
                Ok(v) => $tx.commit().await.map(|()| v).map_err(StoreError::from),
                Err(e) => {
                    // Dropping the transaction rolls it back.
                    drop($tx);
                    Err(e)
                }
            };
            match outcome {
                Err(e) if e.is_retryable() && attempt < $crate::RETRIES => {
                    attempt += 1;
                    tracing::debug!(attempt, error = %e, "transaction aborted; running it again");
                    // A little wait, growing, so the transactions that collided do not
                    // collide again in lockstep.
                    let jitter = u64::from(getrandom::u32().unwrap_or(0) % 5);
                    tokio::time::sleep(std::time::Duration::from_millis(
                        (1 << attempt.min(6)) + jitter,
                    ))
                    .await;
                }
                other => break other,
            }
        }
    }};
}
pub(super) use in_tx;

pub struct SqlStore {
    /// Writes. On SQLite a pool of one connection (SQLite has one writer; queueing in-process
    /// beats its busy handler); on PostgreSQL the same pool as `read`.
    pub(super) write: Pool<Db>,
    pub(super) read: Pool<Db>,
    /// The group-commit writer's queue: messages are written by one task per node, many to a
    /// transaction.
    pub(super) messages: tokio::sync::mpsc::Sender<MessageJob>,
    /// What every request reads, where one process owns every write (SQLite; see
    /// `store/cache.rs`). `None`: every read asks the database.
    pub(super) cache: Option<std::sync::Arc<crate::cache::ReadCache>>,
    /// Stops the store's background work besides the writer (SQLite's checkpointer) when the
    /// store goes.
    pub(super) _background: Option<tokio_util::sync::DropGuard>,
}

/// The group-commit writer each backend's store runs (one per node).
mod group_commit {
    use super::*;

    /// A message waiting for the group-commit writer, and where its answer goes.
    pub(in super::super) struct MessageJob {
        pub(super) row: MessageRow,
        pub(super) events: Vec<NewEvent>,
        pub(super) charges: Vec<Charge>,
        pub(super) done: tokio::sync::oneshot::Sender<StoreResult<Vec<EventRow>>>,
    }

    /// Most messages in one group commit: enough to amortise a commit, few enough that one
    /// transaction never holds the only write connection for long.
    const GROUP_MAX: usize = 256;

    /// The group-commit writer: takes every message waiting (up to [`GROUP_MAX`]; it never waits
    /// for more, the queue fills while the previous commit runs), writes them in one transaction
    /// and answers each only after the commit, so an acknowledged message is durable as before.
    /// Each message's checks (its budgets, its `client_id`) come before any of its writes, so a
    /// refused one leaves nothing behind and the others commit. The task ends when the store,
    /// which holds the queue's only sender, is dropped.
    pub(in super::super) fn spawn_message_writer(
        write: Pool<Db>,
    ) -> tokio::sync::mpsc::Sender<MessageJob> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<MessageJob>(4 * GROUP_MAX);
        tokio::spawn(async move {
            let mut group = Vec::with_capacity(GROUP_MAX);
            while rx.recv_many(&mut group, GROUP_MAX).await > 0 {
                commit_group(&write, std::mem::take(&mut group)).await;
            }
        });
        tx
    }

    async fn commit_group(write: &Pool<Db>, group: Vec<MessageJob>) {
        // Through `in_tx!`, so a group PostgreSQL aborts for a deadlock or a serialization
        // conflict is written again from the start (SQLite's one writer never sees either).
        struct Writer<'a> {
            write: &'a Pool<Db>,
        }
        let store = Writer { write };
        let outcome: StoreResult<(Vec<Staged>, Vec<EventRow>)> = async {
            in_tx!(store, |tx| {
                let outgoing: Vec<Outgoing<'_>> = group
                    .iter()
                    .map(|j| Outgoing {
                        row: &j.row,
                        events: &j.events,
                        charges: &j.charges,
                    })
                    .collect();
                let staged = stage_messages(&mut tx, &outgoing).await?;
                let mut stamped = Vec::new();
                for (job, staged) in group.iter().zip(&staged) {
                    if staged.is_ok() {
                        stamped.extend(job.events.iter().map(|e| (e, job.row.sent_at)));
                    }
                }
                let rows = append_stamped(&mut tx, &stamped).await?;
                Ok((staged, rows))
            })
        }
        .await;
        match outcome {
            Ok((staged, rows)) => {
                let mut rows = rows.into_iter();
                for (job, staged) in group.into_iter().zip(staged) {
                    let answer = staged.map(|()| rows.by_ref().take(job.events.len()).collect());
                    // A caller that stopped waiting (its client went away) still had its
                    // message committed, as with a direct write.
                    let _ = job.done.send(answer);
                }
            }
            Err(e) => {
                // Nothing of the group was committed: every message gets the failure (a retry of
                // any of them with its client_id is safe).
                let failure = match &e {
                    StoreError::Database(d) => d.clone(),
                    other => DbError::invariant(other.to_string()),
                };
                for job in group {
                    let _ = job.done.send(Err(StoreError::Database(failure.clone())));
                }
            }
        }
    }
}
pub(super) use group_commit::MessageJob;
pub(super) use group_commit::spawn_message_writer;

/// How one message of a group fared: written, or refused with nothing of it written.
type Staged = Result<(), StoreError>;

/// A message to write, with its events and the budgets it is charged to.
struct Outgoing<'a> {
    row: &'a MessageRow,
    events: &'a [NewEvent],
    charges: &'a [Charge],
}

/// Writes `group`'s messages in `tx`, in order, all but their events; says of each whether it
/// was written or refused (`Duplicate`: its `client_id` was used; `OverBudget`). A refused
/// message leaves nothing behind; the outer `Err` is a database failure that ends the
/// transaction. A statement per step for the whole group, never one per message: the group
/// commit's cost was a few statements per message (a budget read, the insert, a budget write),
/// and each statement is a round trip to SQLite's worker thread.
///
/// Budget keys are locked first, sorted (keys before rows, for concurrent PostgreSQL writers);
/// every message is inserted at once, its `client_id` deciding which are new; each budget is
/// read once and the new messages judged against it in order, as they would be one at a time;
/// the ones over budget are deleted again, and what the rest take is recorded.
async fn stage_messages(tx: &mut Tx, group: &[Outgoing<'_>]) -> StoreResult<Vec<Staged>> {
    let mut keys: Vec<String> = group
        .iter()
        .flat_map(|m| {
            m.charges
                .iter()
                .map(|c| format!("rate:{}:{}", c.scope, c.key))
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    lock_keys(tx, &keys).await?;

    let mut new = std::collections::HashSet::new();
    for slice in group.chunks(MESSAGE_SLICE) {
        let mut query = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO messages (id, sender_id, client_id, target, body, sent_at, data) ",
        );
        query.push_values(slice, |mut b, m| {
            b.push_bind(&m.row.id)
                .push_bind(&m.row.sender_id)
                .push_bind(&m.row.client_id)
                .push_bind(&m.row.target)
                .push_bind(&m.row.body)
                .push_bind(m.row.sent_at)
                .push_bind(&m.row.data);
        });
        // A later copy of a client_id (in the database, or earlier in this group) is no row.
        query.push(" ON CONFLICT (sender_id, client_id) DO NOTHING RETURNING id");
        new.extend(
            query
                .build_query_scalar::<String>()
                .fetch_all(&mut **tx)
                .await?,
        );
    }

    // Each budget as it stands, read once. Its window is the earliest of the group's (a few
    // milliseconds apart): units that leave the window within the group still count, so a
    // budget may refuse a little early, never let more through than its limit.
    let mut budgets: BTreeMap<(&str, &str), (Millis, u64, Option<Millis>)> = BTreeMap::new();
    for c in group.iter().flat_map(|m| m.charges) {
        let since = &mut budgets
            .entry((c.scope, &c.key))
            .or_insert((c.since, 0, None))
            .0;
        *since = (*since).min(c.since);
    }
    // Every budget in one statement per slice, not one each: a group's messages come from as
    // many accounts as sent at once, and each statement is a round trip.
    let wanted: Vec<((&str, &str), Millis)> = budgets
        .iter()
        .map(|(budget, (since, _, _))| (*budget, *since))
        .collect();
    let mut read = std::collections::HashMap::new();
    for slice in wanted.chunks(MESSAGE_SLICE) {
        let mut query =
            sqlx::QueryBuilder::<Db>::new("WITH wanted (scope, key, since) AS (VALUES ");
        let mut rows = query.separated(", ");
        for ((scope, key), since) in slice {
            rows.push("(")
                .push_bind_unseparated(*scope)
                .push_unseparated(", ")
                .push_bind_unseparated(*key)
                .push_unseparated(", ")
                .push_bind_unseparated(*since)
                .push_unseparated(")");
        }
        query.push(
            ") SELECT wanted.scope, wanted.key, CAST(SUM(r.units) AS BIGINT), MIN(r.last_at) \
             FROM wanted LEFT JOIN rate_budgets r ON r.scope = wanted.scope \
             AND r.key = wanted.key AND r.last_at > wanted.since \
             GROUP BY wanted.scope, wanted.key",
        );
        read.extend(
            query
                .build_query_as::<(String, String, Option<i64>, Option<i64>)>()
                .fetch_all(&mut **tx)
                .await?
                .into_iter()
                .map(|(scope, key, sum, first)| ((scope, key), (sum, first))),
        );
    }
    for ((scope, key), (_, used, oldest)) in &mut budgets {
        let (sum, first) = read
            .remove(&((*scope).to_string(), (*key).to_string()))
            .ok_or_else(|| StoreError::Database(DbError::invariant("budget not read")))?;
        *used = u64::try_from(sum.unwrap_or(0)).unwrap_or(0);
        *oldest = first;
    }

    let mut outcome = Vec::with_capacity(group.len());
    let mut refused = Vec::new();
    // What the written messages take, per budget slice: (units, newest).
    let mut takes: BTreeMap<(&str, &str, i64), (i64, Millis)> = BTreeMap::new();
    for m in group {
        if !new.contains(&m.row.id) {
            outcome.push(Err(StoreError::Duplicate));
            continue;
        }
        let over = m.charges.iter().enumerate().find_map(|(i, c)| {
            let (_, used, oldest) = budgets[&(c.scope, c.key.as_str())];
            (used.saturating_add(u64::from(c.units)) > c.limit).then_some(StoreError::OverBudget {
                charge: i,
                take: RateTake {
                    taken: false,
                    used,
                    oldest,
                },
            })
        });
        if let Some(over) = over {
            refused.push(m.row.id.as_str());
            outcome.push(Err(over));
            continue;
        }
        for c in m.charges {
            let budget = budgets
                .get_mut(&(c.scope, c.key.as_str()))
                .ok_or_else(|| StoreError::Database(DbError::invariant("budget not read")))?;
            budget.1 += u64::from(c.units);
            budget.2 = Some(budget.2.map_or(c.now, |o| o.min(c.now)));
            let take = takes
                .entry((c.scope, &c.key, slice_of(c)))
                .or_insert((0, c.now));
            take.0 += i64::from(c.units);
            take.1 = take.1.max(c.now);
        }
        grant_media(tx, m.row, m.events).await?;
        outcome.push(Ok(()));
    }

    for slice in refused.chunks(MESSAGE_SLICE) {
        let mut query = sqlx::QueryBuilder::<Db>::new("DELETE FROM messages WHERE id IN (");
        let mut list = query.separated(", ");
        for id in slice {
            list.push_bind(*id);
        }
        query.push(")");
        query.build().execute(&mut **tx).await?;
    }
    let takes: Vec<_> = takes.into_iter().collect();
    for slice in takes.chunks(MESSAGE_SLICE) {
        let mut query = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO rate_budgets (scope, key, slice, units, last_at) ",
        );
        query.push_values(slice, |mut b, ((scope, key, slice), (units, last))| {
            b.push_bind(*scope)
                .push_bind(*key)
                .push_bind(*slice)
                .push_bind(*units)
                .push_bind(*last);
        });
        query.push(RATE_BUDGET_UPSERT);
        query.build().execute(&mut **tx).await?;
    }
    Ok(outcome)
}

/// Most rows in one statement of [`stage_messages`]: 7 parameters a row stays far below either
/// backend's bound-parameter limit.
const MESSAGE_SLICE: usize = 256;

/// Lets everyone `row` reached (the sender's own devices included) fetch its images, as they
/// were when it was sent: a later group member sees no earlier image.
async fn grant_media(tx: &mut Tx, row: &MessageRow, events: &[NewEvent]) -> StoreResult<()> {
    if row.media.is_empty() {
        return Ok(());
    }
    let mut accounts: Vec<&str> = events.iter().map(|e| e.account_id.as_str()).collect();
    accounts.sort_unstable();
    accounts.dedup();
    let mut query =
        sqlx::QueryBuilder::<Db>::new("INSERT INTO media_grants (media_id, account_id) ");
    let pairs = row
        .media
        .iter()
        .flat_map(|m| accounts.iter().map(move |a| (m, *a)));
    query.push_values(pairs, |mut b, (m, a)| {
        b.push_bind(m).push_bind(a);
    });
    query.push(" ON CONFLICT DO NOTHING");
    query.build().execute(&mut **tx).await?;
    Ok(())
}

fn count(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// Maps a unique-constraint failure on `accounts` to the domain error it means.
fn account_conflict(e: sqlx::Error) -> StoreError {
    let e = DbError::from(e);
    if e.kind == DbErrorKind::UniqueViolation {
        if e.concerns("public_id_lower") {
            return StoreError::PublicIdTaken;
        }
        if e.concerns("phone") {
            return StoreError::PhoneAccountLimit;
        }
    }
    StoreError::Database(e)
}

/// A unique violation is `Duplicate`; anything else a database error.
fn duplicate(e: sqlx::Error) -> StoreError {
    let e = DbError::from(e);
    if e.kind == DbErrorKind::UniqueViolation {
        StoreError::Duplicate
    } else {
        StoreError::Database(e)
    }
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

/// A row with its id where the backend has one (see `row_id!`).
#[derive(FromRow)]
struct RowAnd<T> {
    row_id: i64,
    #[sqlx(flatten)]
    inner: T,
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
    /// The rows' own ids where the backend has them (SQLite), for the read cache.
    s_row: i64,
    a_row: i64,
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

#[derive(FromRow)]
struct LoginSql {
    failures: i64,
    throttled_until: i64,
    locked: bool,
}

impl From<LoginSql> for LoginState {
    fn from(r: LoginSql) -> Self {
        LoginState {
            failures: r.failures,
            throttled_until: r.throttled_until,
            locked: r.locked,
        }
    }
}

/// The throttling key's lock name, apart from every other kind of key.
fn login_lock(key: &str) -> String {
    format!("login:{key}")
}

async fn insert_member(
    tx: &mut Tx,
    group_id: &str,
    account_id: &str,
    now: Millis,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO group_members (group_id, account_id, joined_at) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind(group_id)
    .bind(account_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Locks the group's row (its member count is about to be decided); false if there is none.
async fn lock_group(tx: &mut Tx, id: &str) -> StoreResult<bool> {
    let row: Option<(String,)> = sqlx::query_as(concat!(
        "SELECT id FROM groups WHERE id = $1",
        for_update!()
    ))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.is_some())
}

async fn count_since(
    tx: &mut Tx,
    sql: &'static str,
    key: &str,
    purpose: Option<&str>,
    since: Millis,
) -> StoreResult<WindowCount> {
    let mut q = sqlx::query_as::<_, (i64, Option<i64>)>(sql).bind(key);
    if let Some(p) = purpose {
        q = q.bind(p);
    }
    let (n, oldest) = q.bind(since).fetch_one(&mut **tx).await?;
    Ok(WindowCount {
        count: count(n),
        oldest,
    })
}

async fn load_login(tx: &mut Tx, key: &str) -> StoreResult<LoginState> {
    let row: Option<LoginSql> = sqlx::query_as(
        "SELECT failures, throttled_until, locked FROM login_failures WHERE key = $1",
    )
    .bind(key)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map_or_else(LoginState::default, Into::into))
}

async fn save_login(tx: &mut Tx, key: &str, state: LoginState) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO login_failures (key, failures, throttled_until, locked) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO UPDATE SET \
         failures = excluded.failures, throttled_until = excluded.throttled_until, \
         locked = excluded.locked",
    )
    .bind(key)
    .bind(state.failures)
    .bind(state.throttled_until)
    .bind(state.locked)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Counts one failure on a locked key; a throttle already running is never shortened.
fn counted_failure(before: LoginState, now: Millis, policy: ThrottlePolicy) -> LoginState {
    let mut after = policy.after_failure(before.failures + 1, now);
    after.throttled_until = after.throttled_until.max(before.throttled_until);
    after.locked |= before.locked;
    after
}

/// Turns two-step verification off inside `tx` (secrets and recovery codes); whether it was
/// on.
async fn disable_totp(tx: &mut Tx, account_id: &str) -> StoreResult<bool> {
    let was_on = sqlx::query(
        "UPDATE accounts SET totp_secret = NULL, totp_pending_secret = NULL \
         WHERE id = $1 AND totp_secret IS NOT NULL",
    )
    .bind(account_id)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    // A setup begun but never confirmed is dropped too.
    sqlx::query("UPDATE accounts SET totp_pending_secret = NULL WHERE id = $1")
        .bind(account_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM totp_recovery_codes WHERE account_id = $1")
        .bind(account_id)
        .execute(&mut **tx)
        .await?;
    Ok(was_on)
}

/// Consumes an SMS code inside `tx`; `CodeUsed` if it was used (or superseded) meanwhile.
async fn consume_code(tx: &mut Tx, code_id: &str, now: Millis) -> StoreResult<()> {
    let consumed =
        sqlx::query("UPDATE sms_codes SET consumed_at = $1 WHERE id = $2 AND consumed_at IS NULL")
            .bind(now)
            .bind(code_id)
            .execute(&mut **tx)
            .await?;
    if consumed.rows_affected() != 1 {
        return Err(StoreError::CodeUsed);
    }
    Ok(())
}

#[async_trait]
impl Store for SqlStore {
    async fn sms_issue(&self, code: &SmsCodeRow, limits: &SmsLimits) -> StoreResult<SmsIssue> {
        in_tx!(self, |tx| {
            // The number (and purpose) before the address, always: one order, no deadlock.
            lock_keys(
                &mut tx,
                &[
                    format!("sms:{}:{}", code.phone, code.purpose),
                    format!("sms-ip:{}", code.ip),
                ],
            )
            .await?;
            let by_ip = count_since(
                &mut tx,
                "SELECT COUNT(*), MIN(created_at) FROM sms_codes WHERE ip = $1 AND created_at > $2",
                &code.ip,
                None,
                limits.ip_since,
            )
            .await?;
            if by_ip.count >= limits.per_ip {
                return Ok(SmsIssue::IpLimit {
                    oldest: by_ip.oldest,
                });
            }
            let last: Option<(i64,)> = sqlx::query_as(
                "SELECT MAX(created_at) FROM sms_codes WHERE phone = $1 AND purpose = $2 \
                 HAVING COUNT(*) > 0",
            )
            .bind(&code.phone)
            .bind(&code.purpose)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((last,)) = last {
                let ready_at = last.saturating_add(limits.cooldown_ms);
                if code.created_at < ready_at {
                    return Ok(SmsIssue::Cooldown { ready_at });
                }
            }
            let by_number = count_since(
                &mut tx,
                "SELECT COUNT(*), MIN(created_at) FROM sms_codes \
                 WHERE phone = $1 AND purpose = $2 AND created_at > $3",
                &code.phone,
                Some(&code.purpose),
                limits.number_since,
            )
            .await?;
            if by_number.count >= limits.per_number {
                return Ok(SmsIssue::NumberLimit {
                    oldest: by_number.oldest,
                });
            }
            sqlx::query(
                "UPDATE sms_codes SET consumed_at = $1 \
                 WHERE phone = $2 AND purpose = $3 AND consumed_at IS NULL",
            )
            .bind(code.created_at)
            .bind(&code.phone)
            .bind(&code.purpose)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO sms_codes (id, phone, purpose, code_hash, ip, created_at, \
                 expires_at, attempts, consumed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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
            .await?;
            Ok(SmsIssue::Issued)
        })
    }

    async fn sms_delete(&self, id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sms_codes WHERE id = $1")
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn sms_latest(&self, phone: &str, purpose: &str) -> StoreResult<Option<SmsCodeRow>> {
        // Of two codes made in the same millisecond the live one is the newer: issuing a code
        // uses up every earlier one.
        let row: Option<SmsSql> = sqlx::query_as(
            "SELECT id, phone, purpose, code_hash, ip, created_at, expires_at, attempts, \
             consumed_at FROM sms_codes WHERE phone = $1 AND purpose = $2 \
             ORDER BY created_at DESC, (consumed_at IS NULL) DESC LIMIT 1",
        )
        .bind(phone)
        .bind(purpose)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(Into::into))
    }

    async fn sms_try(&self, id: &str, max: i64) -> StoreResult<Option<i64>> {
        let row: Option<(i64,)> = sqlx::query_as(
            "UPDATE sms_codes SET attempts = attempts + 1 \
             WHERE id = $1 AND attempts < $2 AND consumed_at IS NULL RETURNING attempts",
        )
        .bind(id)
        .bind(max)
        .fetch_optional(&self.write)
        .await?;
        Ok(row.map(|(n,)| n))
    }

    async fn sms_consume(&self, id: &str, now: Millis) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE sms_codes SET consumed_at = $1 WHERE id = $2 AND consumed_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn account_create(&self, code_id: &str, new: &NewAccount) -> StoreResult<AccountRow> {
        in_tx!(self, |tx| {
            // The number's slots are counted under its lock: two registrations racing for the
            // last slot are decided here, one after the other.
            lock_keys(&mut tx, &[format!("phone:{}", new.phone)]).await?;
            consume_code(&mut tx, code_id, new.created_at).await?;
            let (slot,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM accounts WHERE phone = $1")
                .bind(&new.phone)
                .fetch_one(&mut *tx)
                .await?;
            if slot >= i64::from(new.per_phone) {
                return Err(StoreError::PhoneAccountLimit);
            }
            sqlx::query(
                "INSERT INTO accounts (id, phone, slot, public_id, public_id_lower, display_name, \
                 password_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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
        })
    }

    async fn account_by_id(&self, id: &str) -> StoreResult<Option<AccountRow>> {
        let row: Option<AccountSql> = sqlx::query_as(concat!(
            "SELECT ",
            account_columns!(),
            " FROM accounts WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(Into::into))
    }

    async fn account_by_public_id(&self, public_id: &str) -> StoreResult<Option<AccountRow>> {
        let key = public_id.to_lowercase();
        let ticket = self.cache.as_ref().and_then(|c| c.ticket());
        if let Some(hit) = self.cache.as_ref().and_then(|c| c.account(&key)) {
            return Ok(Some(hit));
        }
        let row: Option<(i64, AccountSql)> = sqlx::query_as::<_, RowAnd<AccountSql>>(concat!(
            "SELECT ",
            account_columns!(),
            ", ",
            row_id!("accounts"),
            " AS row_id FROM accounts WHERE public_id_lower = $1"
        ))
        .bind(&key)
        .fetch_optional(&self.read)
        .await?
        .map(|r| (r.row_id, r.inner));
        Ok(row.map(|(row_id, a)| {
            let account: AccountRow = a.into();
            if let Some(cache) = &self.cache {
                cache.keep_account(ticket, &key, row_id, account.clone());
            }
            account
        }))
    }

    async fn accounts_by_phone(&self, phone: &str) -> StoreResult<Vec<AccountRow>> {
        let rows: Vec<AccountSql> = sqlx::query_as(concat!(
            "SELECT ",
            account_columns!(),
            " FROM accounts WHERE phone = $1 ORDER BY slot"
        ))
        .bind(phone)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn account_set_display_name(&self, id: &str, name: &str) -> StoreResult<()> {
        sqlx::query("UPDATE accounts SET display_name = $1 WHERE id = $2")
            .bind(name)
            .bind(id)
            .execute(&self.write)
            .await?;
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
            "UPDATE accounts SET public_id = $1, public_id_lower = $2, public_id_changed_at = $3 \
             WHERE id = $4 AND (public_id_changed_at IS NULL OR public_id_changed_at <= $5)",
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
        revoked: Revoked<'_>,
    ) -> StoreResult<Vec<EventRow>> {
        in_tx!(self, |tx| {
            sqlx::query("UPDATE accounts SET password_hash = $1 WHERE id = $2")
                .bind(hash)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            revoke_all(&mut tx, id, keep, now, revoked).await
        })
    }

    async fn account_recover(
        &self,
        r: &Recovery<'_>,
        now: Millis,
        revoked: Revoked<'_>,
    ) -> StoreResult<Recovered> {
        in_tx!(self, |tx| {
            let locks: Vec<String> = r.login_keys.iter().map(|k| login_lock(k)).collect();
            lock_keys(&mut tx, &locks).await?;
            consume_code(&mut tx, r.code_id, now).await?;
            sqlx::query("UPDATE accounts SET password_hash = $1 WHERE id = $2")
                .bind(r.password_hash)
                .bind(r.account_id)
                .execute(&mut *tx)
                .await?;
            let totp_disabled = disable_totp(&mut tx, r.account_id).await?;
            // The notice first: a device reads it, then its session.revoked, then the stream
            // closes.
            let mut events = if totp_disabled {
                append(&mut tx, std::slice::from_ref(r.totp_notice), now).await?
            } else {
                Vec::new()
            };
            let revocations = revoke_all(&mut tx, r.account_id, None, now, revoked).await?;
            let sessions_revoked = revocations.len() as u64;
            events.extend(revocations);
            for key in r.login_keys {
                sqlx::query("DELETE FROM login_failures WHERE key = $1")
                    .bind(key)
                    .execute(&mut *tx)
                    .await?;
            }
            Ok(Recovered {
                events,
                sessions_revoked,
                totp_disabled,
            })
        })
    }

    async fn account_set_identity(
        &self,
        id: &str,
        identity: &IdentityRecord<'_>,
        per_id: u32,
        now: Millis,
    ) -> StoreResult<bool> {
        in_tx!(self, |tx| {
            lock_keys(&mut tx, &[format!("id_number:{}", identity.id_number_hash)]).await?;
            let (already,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM accounts WHERE id_number_hash = $1 AND id <> $2",
            )
            .bind(identity.id_number_hash)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            if already >= i64::from(per_id) {
                return Err(StoreError::IdentityLimit);
            }
            let done = sqlx::query(
                "UPDATE accounts SET legal_name = $1, id_number_hash = $2, id_number_hash_kind = $3, \
                 id_number_masked = $4, identity_verified_at = $5 \
                 WHERE id = $6 AND identity_verified_at IS NULL",
            )
            .bind(identity.legal_name)
            .bind(identity.id_number_hash)
            .bind(identity.id_number_hash_kind)
            .bind(identity.id_number_masked)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    async fn totp_set_pending(&self, id: &str, secret: &str) -> StoreResult<()> {
        sqlx::query("UPDATE accounts SET totp_pending_secret = $1 WHERE id = $2")
            .bind(secret)
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn totp_enable(
        &self,
        id: &str,
        recovery_hashes: &[String],
        step: i64,
    ) -> StoreResult<bool> {
        in_tx!(self, |tx| {
            let done = sqlx::query(
                "UPDATE accounts SET totp_secret = totp_pending_secret, \
                 totp_pending_secret = NULL, totp_last_step = $1 \
                 WHERE id = $2 AND totp_pending_secret IS NOT NULL AND totp_secret IS NULL",
            )
            .bind(step)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Ok(false);
            }
            sqlx::query("DELETE FROM totp_recovery_codes WHERE account_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            for hash in recovery_hashes {
                sqlx::query(
                    "INSERT INTO totp_recovery_codes (account_id, code_hash) VALUES ($1, $2)",
                )
                .bind(id)
                .bind(hash)
                .execute(&mut *tx)
                .await?;
            }
            Ok(true)
        })
    }

    async fn totp_disable(
        &self,
        id: &str,
        notice: &NewEvent,
        now: Millis,
    ) -> StoreResult<Option<EventRow>> {
        in_tx!(self, |tx| {
            if !disable_totp(&mut tx, id).await? {
                return Ok(None);
            }
            let mut events = append(&mut tx, std::slice::from_ref(notice), now).await?;
            Ok(events.pop())
        })
    }

    async fn totp_use_step(&self, id: &str, step: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE accounts SET totp_last_step = $1 WHERE id = $2 AND totp_last_step < $1",
        )
        .bind(step)
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn totp_use_recovery(&self, id: &str, hash: &str, now: Millis) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE totp_recovery_codes SET used_at = $1 \
             WHERE account_id = $2 AND code_hash = $3 AND used_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .bind(hash)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn login_states(&self, keys: &[String]) -> StoreResult<Vec<LoginState>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let row: Option<LoginSql> = sqlx::query_as(
                "SELECT failures, throttled_until, locked FROM login_failures WHERE key = $1",
            )
            .bind(key)
            .fetch_optional(&self.read)
            .await?;
            out.push(row.map_or_else(LoginState::default, Into::into));
        }
        Ok(out)
    }

    async fn login_reserve(
        &self,
        keys: &[String],
        now: Millis,
        policy: ThrottlePolicy,
    ) -> StoreResult<LoginGate> {
        in_tx!(self, |tx| {
            let locks: Vec<String> = keys.iter().map(|k| login_lock(k)).collect();
            lock_keys(&mut tx, &locks).await?;
            let mut states = Vec::with_capacity(keys.len());
            for key in keys {
                states.push(load_login(&mut tx, key).await?);
            }
            if states.iter().any(|s| s.locked) {
                return Ok(LoginGate::Locked);
            }
            if let Some(until) = states
                .iter()
                .map(|s| s.throttled_until)
                .max()
                .filter(|u| *u > now)
            {
                return Ok(LoginGate::Throttled { until });
            }
            for (key, state) in keys.iter().zip(states) {
                save_login(&mut tx, key, counted_failure(state, now, policy)).await?;
            }
            Ok(LoginGate::Open)
        })
    }

    async fn login_refund(&self, keys: &[String], policy: ThrottlePolicy) -> StoreResult<()> {
        in_tx!(self, |tx| {
            let locks: Vec<String> = keys.iter().map(|k| login_lock(k)).collect();
            lock_keys(&mut tx, &locks).await?;
            for key in keys {
                let before = load_login(&mut tx, key).await?;
                let failures = (before.failures - 1).max(0);
                // Below the threshold no wait is due; above it, the running wait stays (other
                // attempts may have earned it).
                let throttled_until = if failures < i64::from(policy.after) {
                    0
                } else {
                    before.throttled_until
                };
                let state = LoginState {
                    failures,
                    throttled_until,
                    locked: failures >= i64::from(policy.lock_after),
                };
                save_login(&mut tx, key, state).await?;
            }
            Ok(())
        })
    }

    async fn login_failure(
        &self,
        keys: &[String],
        now: Millis,
        policy: ThrottlePolicy,
    ) -> StoreResult<Vec<LoginState>> {
        in_tx!(self, |tx| {
            let locks: Vec<String> = keys.iter().map(|k| login_lock(k)).collect();
            lock_keys(&mut tx, &locks).await?;
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                let state = counted_failure(load_login(&mut tx, key).await?, now, policy);
                save_login(&mut tx, key, state).await?;
                out.push(state);
            }
            Ok(out)
        })
    }

    async fn login_reset(&self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM login_failures WHERE key = $1")
            .bind(key)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn rate_hit(
        &self,
        scope: &str,
        key: &str,
        now: Millis,
        since: Millis,
    ) -> StoreResult<WindowCount> {
        in_tx!(self, |tx| {
            lock_keys(&mut tx, &[format!("rate:{scope}:{key}")]).await?;
            sqlx::query("INSERT INTO rate_events (scope, key, at) VALUES ($1, $2, $3)")
                .bind(scope)
                .bind(key)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let (n, oldest): (i64, Option<i64>) = sqlx::query_as(
                "SELECT COUNT(*), MIN(at) FROM rate_events \
                 WHERE scope = $1 AND key = $2 AND at > $3",
            )
            .bind(scope)
            .bind(key)
            .bind(since)
            .fetch_one(&mut *tx)
            .await?;
            Ok(WindowCount {
                count: count(n),
                oldest,
            })
        })
    }

    async fn rate_take(&self, c: &Charge) -> StoreResult<RateTake> {
        in_tx!(self, |tx| { charge(&mut tx, c).await })
    }

    async fn session_create(&self, row: &SessionRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (id, account_id, token_hash, device_name, created_at, \
             last_seen_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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
        .await?;
        Ok(())
    }

    async fn session_with_account(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<(SessionRow, AccountRow)>> {
        let ticket = self.cache.as_ref().and_then(|c| c.ticket());
        if let Some(hit) = self.cache.as_ref().and_then(|c| c.session(token_hash)) {
            return Ok(Some((hit.session, hit.account)));
        }
        let row: Option<SessionAccountSql> = sqlx::query_as(concat!(
            "SELECT s.id AS s_id, s.account_id, s.token_hash, s.device_name, \
             s.created_at AS s_created_at, s.last_seen_at, s.expires_at, s.revoked_at, \
             a.id, a.phone, a.slot, a.public_id, a.display_name, a.password_hash, a.created_at, \
             a.public_id_changed_at, a.legal_name, a.id_number_masked, a.identity_verified_at, \
             a.totp_secret, a.totp_pending_secret, a.totp_last_step, ",
            row_id!("s"),
            " AS s_row, ",
            row_id!("a"),
            " AS a_row FROM sessions s JOIN accounts a ON a.id = s.account_id WHERE s.token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.read)
        .await?;
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
            let account: AccountRow = r.account.into();
            if let Some(cache) = &self.cache {
                cache.keep_session(
                    ticket,
                    token_hash,
                    crate::cache::CachedSession {
                        session: session.clone(),
                        account: account.clone(),
                        session_row: r.s_row,
                        account_row: r.a_row,
                    },
                );
            }
            (session, account)
        }))
    }

    async fn session_touch(&self, id: &str, now: Millis) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn sessions_live(&self, account_id: &str, now: Millis) -> StoreResult<Vec<SessionRow>> {
        let rows: Vec<SessionSql> = sqlx::query_as(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE account_id = $1 AND revoked_at IS NULL \
             AND expires_at > $2 ORDER BY created_at DESC, id"
        ))
        .bind(account_id)
        .bind(now)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn session_revoke(
        &self,
        account_id: &str,
        id: &str,
        now: Millis,
        revoked: Revoked<'_>,
    ) -> StoreResult<Option<EventRow>> {
        in_tx!(self, |tx| {
            let done = sqlx::query(
                "UPDATE sessions SET revoked_at = $1 \
                 WHERE id = $2 AND account_id = $3 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(id)
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Ok(None);
            }
            let mut events = append(&mut tx, &[revoked(account_id, id)?], now).await?;
            Ok(events.pop())
        })
    }

    async fn are_contacts(&self, a: &str, b: &str) -> StoreResult<bool> {
        let ticket = self.cache.as_ref().and_then(|c| c.ticket());
        if self.cache.as_ref().is_some_and(|c| c.are_contacts(a, b)) {
            return Ok(true);
        }
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT contact_id FROM contacts WHERE account_id = $1 AND contact_id = $2",
        )
        .bind(a)
        .bind(b)
        .fetch_optional(&self.read)
        .await?;
        // Only "yes" is kept: it stays true (contacts are never removed but with their
        // account), while "no" turns true with the next accepted request.
        if let (Some(cache), Some(_)) = (&self.cache, &row) {
            cache.keep_contacts(ticket, a, b);
        }
        Ok(row.is_some())
    }

    async fn contacts_of(&self, account_id: &str) -> StoreResult<Vec<ContactRow>> {
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT a.id, a.public_id, a.display_name, c.since FROM contacts c \
             JOIN accounts a ON a.id = c.contact_id WHERE c.account_id = $1 \
             ORDER BY a.display_name, a.public_id_lower",
        )
        .bind(account_id)
        .fetch_all(&self.read)
        .await?;
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
        in_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO contact_requests (id, from_account, to_account, note, status, \
                 created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&row.id)
            .bind(&row.from_account)
            .bind(&row.to_account)
            .bind(&row.note)
            .bind(&row.status)
            .bind(row.created_at)
            .execute(&mut *tx)
            .await
            .map_err(duplicate)?;
            append(&mut tx, events, row.created_at).await
        })
    }

    async fn contact_request_by_id(&self, id: &str) -> StoreResult<Option<ContactRequestRow>> {
        let row: Option<RequestSql> = sqlx::query_as(concat!(
            "SELECT ",
            request_columns!(),
            " FROM contact_requests WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
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
            " FROM contact_requests WHERE from_account = $1 AND to_account = $2 \
             AND status = 'pending'"
        ))
        .bind(from)
        .bind(to)
        .fetch_optional(&self.read)
        .await?;
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
             AND (from_account = $1 OR to_account = $1) ORDER BY created_at, id"
        ))
        .bind(account_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn contact_request_accept(
        &self,
        id: &str,
        now: Millis,
        events: &[NewEvent],
    ) -> StoreResult<Vec<EventRow>> {
        in_tx!(self, |tx| {
            let pair: Option<(String, String)> = sqlx::query_as(
                "UPDATE contact_requests SET status = 'accepted', decided_at = $1 \
                 WHERE id = $2 AND status = 'pending' RETURNING from_account, to_account",
            )
            .bind(now)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((a, b)) = pair else {
                return Err(StoreError::NotPending);
            };
            for (x, y) in [(&a, &b), (&b, &a)] {
                sqlx::query(
                    "INSERT INTO contacts (account_id, contact_id, since) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(x)
                .bind(y)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            // A request the other way is answered by this acceptance too.
            sqlx::query(
                "UPDATE contact_requests SET status = 'accepted', decided_at = $1 \
                 WHERE from_account = $2 AND to_account = $3 AND status = 'pending'",
            )
            .bind(now)
            .bind(&b)
            .bind(&a)
            .execute(&mut *tx)
            .await?;
            append(&mut tx, events, now).await
        })
    }

    async fn group_create(
        &self,
        group: &GroupRow,
        members: &[String],
        events: &[NewEvent],
    ) -> StoreResult<Vec<EventRow>> {
        in_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO groups (id, name, owner_id, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(&group.id)
            .bind(&group.name)
            .bind(&group.owner_id)
            .bind(group.created_at)
            .execute(&mut *tx)
            .await?;
            for m in members {
                insert_member(&mut tx, &group.id, m, group.created_at).await?;
            }
            append(&mut tx, events, group.created_at).await
        })
    }

    async fn group_by_id(&self, id: &str) -> StoreResult<Option<GroupRow>> {
        let row: Option<(String, String, String, i64)> =
            sqlx::query_as("SELECT id, name, owner_id, created_at FROM groups WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.read)
                .await?;
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
             JOIN accounts a ON a.id = m.account_id WHERE m.group_id = $1 \
             ORDER BY m.joined_at, a.public_id_lower",
        )
        .bind(id)
        .fetch_all(&self.read)
        .await?;
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
             JOIN groups g ON g.id = m.group_id WHERE m.account_id = $1 \
             ORDER BY g.created_at, g.id",
        )
        .bind(account_id)
        .fetch_all(&self.read)
        .await?;
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
        in_tx!(self, |tx| {
            // Adds racing for the last seats count one after the other.
            lock_group(&mut tx, id).await?;
            for a in accounts {
                insert_member(&mut tx, id, a, now).await?;
            }
            let (n,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM group_members WHERE group_id = $1")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
            if n > i64::from(max) {
                return Err(StoreError::GroupFull);
            }
            append(&mut tx, events, now).await
        })
    }

    async fn group_remove_member(
        &self,
        id: &str,
        account_id: &str,
        new_owner: Option<&str>,
        now: Millis,
        events: &[NewEvent],
    ) -> StoreResult<Vec<EventRow>> {
        in_tx!(self, |tx| {
            lock_group(&mut tx, id).await?;
            sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND account_id = $2")
                .bind(id)
                .bind(account_id)
                .execute(&mut *tx)
                .await?;
            if let Some(owner) = new_owner {
                sqlx::query("UPDATE groups SET owner_id = $1 WHERE id = $2")
                    .bind(owner)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            append(&mut tx, events, now).await
        })
    }

    async fn message_by_client_id(
        &self,
        sender_id: &str,
        client_id: &str,
    ) -> StoreResult<Option<MessageRow>> {
        let row: Option<(String, String, String, String, String, i64, String)> = sqlx::query_as(
            "SELECT id, sender_id, client_id, target, body, sent_at, data FROM messages \
             WHERE sender_id = $1 AND client_id = $2",
        )
        .bind(sender_id)
        .bind(client_id)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(
            |(id, sender_id, client_id, target, body, sent_at, data)| MessageRow {
                id,
                sender_id,
                client_id,
                target,
                body,
                sent_at,
                data,
                media: Vec::new(),
            },
        ))
    }

    async fn message_insert(
        &self,
        row: &MessageRow,
        events: &[NewEvent],
        charges: &[Charge],
    ) -> StoreResult<Vec<EventRow>> {
        let (done, answer) = tokio::sync::oneshot::channel();
        let job = MessageJob {
            row: row.clone(),
            events: events.to_vec(),
            charges: charges.to_vec(),
            done,
        };
        let gone = || {
            StoreError::Database(DbError {
                kind: DbErrorKind::Unavailable,
                constraint: None,
                message: "the message writer stopped".into(),
            })
        };
        self.messages.send(job).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    async fn event_head(&self, account_id: &str) -> StoreResult<i64> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT last_seq FROM event_heads WHERE account_id = $1")
                .bind(account_id)
                .fetch_optional(&self.read)
                .await?;
        Ok(row.map_or(0, |(seq,)| seq))
    }

    async fn event_heads(&self, account_ids: &[String]) -> StoreResult<Vec<(String, i64)>> {
        let mut heads = Vec::with_capacity(account_ids.len());
        // In slices, so the statement stays far below either backend's bound-parameter limit.
        for chunk in account_ids.chunks(500) {
            let mut query = sqlx::QueryBuilder::<Db>::new(
                "SELECT account_id, last_seq FROM event_heads WHERE account_id IN (",
            );
            let mut list = query.separated(", ");
            for id in chunk {
                list.push_bind(id);
            }
            query.push(")");
            heads.extend(
                query
                    .build_query_as::<(String, i64)>()
                    .fetch_all(&self.read)
                    .await?,
            );
        }
        Ok(heads)
    }

    async fn events_after(
        &self,
        account_id: &str,
        since: i64,
        limit: i64,
    ) -> StoreResult<Vec<EventRow>> {
        let rows: Vec<(i64, String, i64, String)> = sqlx::query_as(
            "SELECT seq, kind, at, data FROM events WHERE account_id = $1 AND seq > $2 \
             ORDER BY seq LIMIT $3",
        )
        .bind(account_id)
        .bind(since)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
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

    async fn envelope_sent_to(&self, id: &str, account: &str) -> StoreResult<bool> {
        self.envelope_sent_to_impl(id, account).await
    }

    async fn envelopes_due(&self, now: Millis, limit: i64) -> StoreResult<Vec<String>> {
        self.envelopes_due_impl(now, limit).await
    }

    async fn ledger_check(&self) -> StoreResult<Option<String>> {
        self.ledger_check_impl().await
    }

    async fn prune(&self, before: Millis) -> StoreResult<Option<u64>> {
        in_tx!(self, |tx| {
            if !try_lock_job(&mut tx, "prune").await? {
                return Ok(None);
            }
            let a = sqlx::query("DELETE FROM sms_codes WHERE created_at < $1")
                .bind(before)
                .execute(&mut *tx)
                .await?;
            let b = sqlx::query("DELETE FROM rate_events WHERE at < $1")
                .bind(before)
                .execute(&mut *tx)
                .await?;
            let c = sqlx::query("DELETE FROM rate_budgets WHERE last_at < $1")
                .bind(before)
                .execute(&mut *tx)
                .await?;
            Ok(Some(
                a.rows_affected() + b.rows_affected() + c.rows_affected(),
            ))
        })
    }

    async fn db_now_ms(&self) -> StoreResult<Millis> {
        let (now,): (i64,) = sqlx::query_as(db_now_sql!()).fetch_one(&self.read).await?;
        Ok(now)
    }

    async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

async fn revoke_all(
    tx: &mut Tx,
    account_id: &str,
    keep: Option<&str>,
    now: Millis,
    revoked: Revoked<'_>,
) -> StoreResult<Vec<EventRow>> {
    let ids: Vec<(String,)> = sqlx::query_as(
        "UPDATE sessions SET revoked_at = $1 \
         WHERE account_id = $2 AND revoked_at IS NULL AND id IS DISTINCT FROM $3 RETURNING id",
    )
    .bind(now)
    .bind(account_id)
    .bind(keep)
    .fetch_all(&mut **tx)
    .await?;
    let events = ids
        .iter()
        .map(|(id,)| revoked(account_id, id))
        .collect::<StoreResult<Vec<_>>>()?;
    append(tx, &events, now).await
}

/// Appends events to their accounts' logs inside `tx`, each with its account's next sequence
/// number. Each account's head is moved once, by the number of its events, and the heads are
/// taken in account order: two transactions appending to the same accounts wait for each
/// other instead of deadlocking.
/// Takes `c`'s units if they fit the budget, under the budget key's lock; records nothing
/// when they do not. Units are summed per slice of the window (a twentieth of it), and a
/// slice counts while its newest unit is in the window (see migration 0004).
async fn charge(tx: &mut Tx, c: &Charge) -> StoreResult<RateTake> {
    let take = charge_check(tx, c).await?;
    if take.taken {
        charge_write(tx, c).await?;
    }
    Ok(take)
}

/// Whether `c` fits its budget (locking the budget's key until the transaction ends), writing
/// nothing: `taken` says what [`charge_write`] would make of it.
async fn charge_check(tx: &mut Tx, c: &Charge) -> StoreResult<RateTake> {
    lock_keys(tx, &[format!("rate:{}:{}", c.scope, c.key)]).await?;
    let (used, oldest): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT CAST(SUM(units) AS BIGINT), MIN(last_at) FROM rate_budgets \
         WHERE scope = $1 AND key = $2 AND last_at > $3",
    )
    .bind(c.scope)
    .bind(&c.key)
    .bind(c.since)
    .fetch_one(&mut **tx)
    .await?;
    let used = u64::try_from(used.unwrap_or(0)).unwrap_or(0);
    if used.saturating_add(u64::from(c.units)) > c.limit {
        return Ok(RateTake {
            taken: false,
            used,
            oldest,
        });
    }
    Ok(RateTake {
        taken: true,
        used: used + u64::from(c.units),
        oldest: Some(oldest.map_or(c.now, |o| o.min(c.now))),
    })
}

/// The twentieth of its window that `c` falls in.
fn slice_of(c: &Charge) -> i64 {
    c.now / ((c.now - c.since) / 20).max(1)
}

/// Adds a budget row's units to its slice's.
macro_rules! rate_budget_upsert {
    () => {
        " ON CONFLICT (scope, key, slice) DO UPDATE SET units = rate_budgets.units + excluded.units, \
         last_at = CASE WHEN excluded.last_at > rate_budgets.last_at \
                   THEN excluded.last_at ELSE rate_budgets.last_at END"
    };
}
const RATE_BUDGET_UPSERT: &str = rate_budget_upsert!();

/// Records `c`'s units in the current twentieth of its window.
async fn charge_write(tx: &mut Tx, c: &Charge) -> StoreResult<()> {
    sqlx::query(concat!(
        "INSERT INTO rate_budgets (scope, key, slice, units, last_at) VALUES ($1, $2, $3, $4, $5)",
        rate_budget_upsert!()
    ))
    .bind(c.scope)
    .bind(&c.key)
    .bind(slice_of(c))
    .bind(i64::from(c.units))
    .bind(c.now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) async fn append(
    tx: &mut Tx,
    events: &[NewEvent],
    now: Millis,
) -> StoreResult<Vec<EventRow>> {
    let stamped: Vec<(&NewEvent, Millis)> = events.iter().map(|e| (e, now)).collect();
    append_stamped(tx, &stamped).await
}

/// Appends events, each at its own time (a group commit writes many messages' events at
/// once), in the order given; their rows come back in that order.
async fn append_stamped(tx: &mut Tx, events: &[(&NewEvent, Millis)]) -> StoreResult<Vec<EventRow>> {
    let mut per_account: BTreeMap<&str, i64> = BTreeMap::new();
    for (e, _) in events {
        *per_account.entry(e.account_id.as_str()).or_default() += 1;
    }
    // Two statements per slice whatever the number of accounts, never two per event: a group
    // message to 500 members was 1,000 round trips to the database, and a direct message 4.
    // Heads in account order, so concurrent writers on PostgreSQL lock rows in one order.
    let mut next: BTreeMap<&str, i64> = BTreeMap::new();
    let accounts: Vec<(&str, i64)> = per_account.into_iter().collect();
    for slice in accounts.chunks(APPEND_SLICE) {
        let mut query =
            sqlx::QueryBuilder::<Db>::new("INSERT INTO event_heads (account_id, last_seq) ");
        query.push_values(slice, |mut row, (account, n)| {
            row.push_bind(*account).push_bind(*n);
        });
        query.push(
            " ON CONFLICT (account_id) DO UPDATE SET last_seq = event_heads.last_seq + excluded.last_seq \
             RETURNING account_id, last_seq",
        );
        // RETURNING's row order is unspecified: match the heads up by account.
        let heads: BTreeMap<String, i64> = query
            .build_query_as::<(String, i64)>()
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .collect();
        for (account, n) in slice {
            let last = heads.get(*account).ok_or_else(|| {
                StoreError::Database(DbError::invariant("event head missing for an account"))
            })?;
            next.insert(account, last - n + 1);
        }
    }
    let mut out = Vec::with_capacity(events.len());
    for (e, at) in events {
        let slot = next.get_mut(e.account_id.as_str()).ok_or_else(|| {
            StoreError::Database(DbError::invariant("event head missing for an account"))
        })?;
        out.push(EventRow {
            account_id: e.account_id.clone(),
            seq: *slot,
            kind: e.kind.to_string(),
            at: *at,
            data: e.data.clone(),
        });
        *slot += 1;
    }
    for slice in out.chunks(APPEND_SLICE) {
        let mut query =
            sqlx::QueryBuilder::<Db>::new("INSERT INTO events (account_id, seq, kind, at, data) ");
        query.push_values(slice, |mut row, e| {
            row.push_bind(&e.account_id)
                .push_bind(e.seq)
                .push_bind(&e.kind)
                .push_bind(e.at)
                .push_bind(&e.data);
        });
        query.build().execute(&mut **tx).await?;
    }
    Ok(out)
}

/// Rows per multi-row statement in [`append`]: 5 parameters a row stays far below either
/// backend's bound-parameter limit (SQLite 32,766, PostgreSQL 65,535).
const APPEND_SLICE: usize = 1_000;
