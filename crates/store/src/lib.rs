//! switchboard-store: the service's storage behind one trait, so the domain never names a
//! database.
//!
//! Every method is one atomic step of the domain (a registration consumes its SMS code and
//! creates the account in one transaction; a recovery consumes its code, sets the password and
//! revokes every session in one), so a backend is correct if each method is, and a failure
//! between two steps can never leave half-written state. Each method is also correct under any
//! number of concurrent callers, on one node or many: what a step reads to decide is locked
//! before it writes (see `sql.rs`). No domain rule lives here: limits, throttling
//! policies and events come from the caller.
//!
//! SQLite is the default backend, PostgreSQL the one for several nodes; both run one SQL
//! implementation (`sql.rs`, compiled once against each backend's `dialect.rs`, which is the
//! whole of what it may use of that backend) and the same conformance suite
//! (`tests/it/conformance.rs`, through [`on_every_backend!`]).

/// How often a transaction aborted for a deadlock or a serialization conflict is run again
/// before the error reaches the caller.
pub const RETRIES: u32 = 8;

pub mod cache;
pub mod moments;
pub mod official;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(feature = "test-support")]
pub mod testing;

pub use moments::*;
pub use official::*;

use std::sync::Arc;

use async_trait::async_trait;

/// Wall-clock time in milliseconds since the Unix epoch: what every row's time is stored as.
pub type Millis = i64;

/// Opens the store a database URL names: `sqlite:…` or `postgres://…` / `postgresql://…`.
pub async fn open(url: &str) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        #[cfg(feature = "sqlite")]
        return Ok(Arc::new(sqlite::SqliteStore::open(url).await?));
    } else if is_shared(url) {
        #[cfg(feature = "postgres")]
        return Ok(Arc::new(postgres::PgStore::open(url).await?));
    } else {
        return Err(StoreError::Database(DbError::setup(
            "the database URL must start with sqlite: or postgres://",
        )));
    }
    #[allow(unreachable_code)]
    Err(StoreError::Database(DbError::setup(
        "this build of the store leaves that backend out (its cargo feature is off)",
    )))
}

/// Whether `url` names a database several nodes can share (PostgreSQL), so this process
/// must act as one node of a cluster.
pub fn is_shared(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// What kind of failure the database reported, kept so callers can tell a conflict or a
/// retryable abort from an outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbErrorKind {
    UniqueViolation,
    ForeignKeyViolation,
    CheckViolation,
    /// The database aborted the transaction to break a deadlock or a serialization conflict;
    /// running it again is safe.
    Retryable,
    /// A value the database cannot store (PostgreSQL refuses NUL in text): bad input.
    InvalidValue,
    /// Could not reach the database, or the pool is exhausted.
    Unavailable,
    /// Opening or migrating the database.
    Setup,
    Other,
}

#[derive(Debug, Clone)]
pub struct DbError {
    pub kind: DbErrorKind,
    /// The violated constraint or index, when the database names it.
    pub constraint: Option<String>,
    pub message: String,
}

impl DbError {
    pub fn setup(message: impl Into<String>) -> Self {
        DbError {
            kind: DbErrorKind::Setup,
            constraint: None,
            message: message.into(),
        }
    }

    /// A rule of the store itself that did not hold (a bug, not bad input).
    pub fn invariant(message: impl Into<String>) -> Self {
        DbError {
            kind: DbErrorKind::Other,
            constraint: None,
            message: message.into(),
        }
    }

    /// Whether the violated constraint's name (or, where the database gives no name, its
    /// message) mentions `what`.
    pub fn concerns(&self, what: &str) -> bool {
        self.constraint
            .as_deref()
            .map_or(self.message.contains(what), |c| c.contains(what))
    }
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        let kind = match &e {
            sqlx::Error::Database(d) => match d.kind() {
                sqlx::error::ErrorKind::UniqueViolation => DbErrorKind::UniqueViolation,
                sqlx::error::ErrorKind::ForeignKeyViolation => DbErrorKind::ForeignKeyViolation,
                sqlx::error::ErrorKind::CheckViolation => DbErrorKind::CheckViolation,
                _ => match d.code().as_deref() {
                    // PostgreSQL: serialization_failure, deadlock_detected. SQLite: BUSY and
                    // LOCKED (another process holds the file; one node never sees them).
                    Some("40001" | "40P01" | "5" | "6" | "517" | "262") => DbErrorKind::Retryable,
                    // character_not_in_repertoire / untranslatable_character: NUL in text.
                    Some("22021" | "22P05") => DbErrorKind::InvalidValue,
                    _ => DbErrorKind::Other,
                },
            },
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                DbErrorKind::Unavailable
            }
            sqlx::Error::Tls(_) => DbErrorKind::Unavailable,
            _ => DbErrorKind::Other,
        };
        let constraint = match &e {
            sqlx::Error::Database(d) => d.constraint().map(str::to_string),
            _ => None,
        };
        DbError {
            kind,
            constraint,
            message: e.to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("public ID taken")]
    PublicIdTaken,
    #[error("phone number has the most accounts allowed")]
    PhoneAccountLimit,
    #[error("ID number verifies the most accounts allowed")]
    IdentityLimit,
    /// Another official account's name has the same lookalike key.
    #[error("official account name taken")]
    OfficialNameTaken,
    /// The SMS code was used (or superseded) between checking and using it.
    #[error("SMS code used meanwhile")]
    CodeUsed,
    /// The group would pass its member limit.
    #[error("group full")]
    GroupFull,
    /// The contact request is no longer pending.
    #[error("request not pending")]
    NotPending,
    /// A unique key (a message's client id, a pending request) exists already.
    #[error("duplicate")]
    Duplicate,
    /// A charge given with a write did not fit its budget (the index of the charge, and the
    /// budget's state): nothing was written.
    #[error("over budget")]
    OverBudget { charge: usize, take: RateTake },
    /// A wallet would go below zero.
    #[error("insufficient funds")]
    InsufficientFunds,
    /// The red envelope has no unclaimed share left, or it expired.
    #[error("envelope empty")]
    EnvelopeEmpty,
    /// The account claimed this red envelope already.
    #[error("already claimed")]
    AlreadyClaimed,
    /// No such red envelope (or, for a refund, not due).
    #[error("no such envelope")]
    NoEnvelope,
    /// An operator change would pass a limit: nothing was written.
    #[error("official account limit")]
    OfficialLimit(OfficialLimit),
    /// The operator's (or key's) role on the official account does not allow the step, or it
    /// no longer operates it at all.
    #[error("not allowed")]
    NotAllowed,
    /// No conversation between this customer and this official account.
    #[error("no conversation")]
    NoConversation,
    /// No such post (not deleted) that the account may see.
    #[error("no such post")]
    NoMoment,
    /// Another operator (public ID) holds the conversation until then.
    #[error("claimed")]
    ClaimHeld { by: String, until: Millis },
    /// The caller could not build what the store was to write (an event or answer that did
    /// not serialise): nothing was written.
    #[error("encoding: {0}")]
    Encoding(String),
    #[error("database: {0}")]
    Database(DbError),
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Database(d) if d.kind == DbErrorKind::Retryable)
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e.into())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, PartialEq)]
pub struct AccountRow {
    pub id: String,
    /// E.164.
    pub phone: String,
    /// 0 for the primary account of the phone number, 1.. for the others.
    pub slot: i64,
    pub public_id: String,
    pub display_name: String,
    pub password_hash: String,
    pub created_at: Millis,
    pub public_id_changed_at: Option<Millis>,
    pub legal_name: Option<String>,
    pub id_number_masked: Option<String>,
    pub identity_verified_at: Option<Millis>,
    pub totp_secret: Option<String>,
    pub totp_pending_secret: Option<String>,
    pub totp_last_step: i64,
}

impl AccountRow {
    pub fn is_secondary(&self) -> bool {
        self.slot > 0
    }
}

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub id: String,
    pub phone: String,
    pub public_id: String,
    pub display_name: String,
    pub password_hash: String,
    pub created_at: Millis,
    /// The most accounts the phone number may hold, the new one included.
    pub per_phone: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SmsCodeRow {
    pub id: String,
    pub phone: String,
    pub purpose: String,
    pub code_hash: String,
    pub ip: String,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub attempts: i64,
    pub consumed_at: Option<Millis>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    pub id: String,
    pub account_id: String,
    pub token_hash: String,
    pub device_name: String,
    pub created_at: Millis,
    pub last_seen_at: Millis,
    pub expires_at: Millis,
    pub revoked_at: Option<Millis>,
}

/// Consecutive sign-in failures of one key (an account, or an unknown login).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoginState {
    pub failures: i64,
    pub throttled_until: Millis,
    pub locked: bool,
}

/// How failures turn into waiting and locking.
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    pub after: u32,
    pub base_secs: u64,
    pub max_secs: u64,
    pub lock_after: u32,
}

impl ThrottlePolicy {
    /// The state after the `failures`-th consecutive failure at `now`: from the `after`-th on,
    /// the next try must wait `base · 2^(failures − after)` seconds, capped at `max`.
    pub fn after_failure(&self, failures: i64, now: Millis) -> LoginState {
        let over = failures - i64::from(self.after);
        let throttled_until = if over >= 0 {
            let factor = 1u64.checked_shl(over.min(40) as u32).unwrap_or(u64::MAX);
            let secs = self.base_secs.saturating_mul(factor).min(self.max_secs);
            now.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000))
        } else {
            0
        };
        LoginState {
            failures,
            throttled_until,
            locked: failures >= i64::from(self.lock_after),
        }
    }
}

/// The event announcing that a session (account id, session id) was revoked.
pub type Revoked<'a> = &'a (dyn Fn(&str, &str) -> StoreResult<NewEvent> + Send + Sync);

/// What a recovery changes, for [`Store::account_recover`].
#[derive(Debug, Clone)]
pub struct Recovery<'a> {
    pub code_id: &'a str,
    pub account_id: &'a str,
    pub password_hash: &'a str,
    /// Sign-in throttling keys whose failures and lock the recovery lifts.
    pub login_keys: &'a [String],
    /// Appended (before the revocations, so every device reads it before it is signed out)
    /// if two-step verification was on and the recovery turned it off.
    pub totp_notice: &'a NewEvent,
}

/// What [`Store::account_recover`] did.
#[derive(Debug, Clone)]
pub struct Recovered {
    /// The events appended: the TOTP notice, if any, then one `session.revoked` per session.
    pub events: Vec<EventRow>,
    pub sessions_revoked: u64,
    pub totp_disabled: bool,
}

/// A verified identity as stored, for [`Store::account_set_identity`]: never the number
/// itself, only its keyed hash (and which kind of hash that is) and a masked form.
#[derive(Debug, Clone, Copy)]
pub struct IdentityRecord<'a> {
    pub legal_name: &'a str,
    pub id_number_hash: &'a str,
    /// `hmac-sha256`; rows written before the keyed hash hold `sha256`.
    pub id_number_hash_kind: &'a str,
    pub id_number_masked: &'a str,
}

/// The limits an SMS code request must pass, for [`Store::sms_issue`].
#[derive(Debug, Clone, Copy)]
pub struct SmsLimits {
    /// No new code for the number and purpose before the last one is this old.
    pub cooldown_ms: i64,
    /// At most `per_number` codes for the number and purpose created after `number_since`.
    pub per_number: u32,
    pub number_since: Millis,
    /// At most `per_ip` codes for the client address created after `ip_since`.
    pub per_ip: u32,
    pub ip_since: Millis,
}

/// The outcome of [`Store::sms_issue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsIssue {
    Issued,
    /// The client address used up its limit; the oldest code counted.
    IpLimit {
        oldest: Option<Millis>,
    },
    /// The last code is too recent; a new one may be asked for at `ready_at`.
    Cooldown {
        ready_at: Millis,
    },
    /// The number used up its limit for the purpose; the oldest code counted.
    NumberLimit {
        oldest: Option<Millis>,
    },
}

/// The outcome of [`Store::login_reserve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginGate {
    /// The attempt is reserved (and counted as a failure until settled).
    Open,
    Locked,
    Throttled {
        until: Millis,
    },
}

/// An event to append to an account's log, in the same transaction as the change it reports.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub account_id: String,
    pub kind: &'static str,
    /// JSON.
    pub data: String,
}

/// An event as stored, with its sequence number.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub account_id: String,
    pub seq: i64,
    pub kind: String,
    pub at: Millis,
    pub data: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContactRequestRow {
    pub id: String,
    pub from_account: String,
    pub to_account: String,
    pub note: String,
    pub status: String,
    pub created_at: Millis,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContactRow {
    pub account_id: String,
    pub public_id: String,
    pub display_name: String,
    pub since: Millis,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupRow {
    pub id: String,
    pub name: String,
    pub owner_id: String,
    pub created_at: Millis,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MemberRow {
    pub account_id: String,
    pub public_id: String,
    pub display_name: String,
    pub joined_at: Millis,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MessageRow {
    pub id: String,
    pub sender_id: String,
    pub client_id: String,
    pub target: String,
    pub body: String,
    pub sent_at: Millis,
    /// The delivered message as JSON.
    pub data: String,
    /// Media ids it carries: every account its events go to may fetch them. Written with the
    /// message; a row read back leaves it empty (`data` holds the message as sent).
    pub media: Vec<String>,
}

/// A book's id: `wallet:<account>`, `escrow:<envelope>` or the funding source.
pub fn wallet_book(account_id: &str) -> String {
    format!("wallet:{account_id}")
}

pub fn escrow_book(envelope_id: &str) -> String {
    format!("escrow:{envelope_id}")
}

pub const FUNDING_BOOK: &str = "funding:sandbox";

#[derive(Debug, Clone, PartialEq)]
pub struct EnvelopeRow {
    pub id: String,
    pub sender_id: String,
    /// What the sender addressed: a public ID or a group id.
    pub target: String,
    pub group_id: Option<String>,
    pub total: i64,
    pub count: i64,
    pub mode: String,
    pub greeting: String,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub refunded_at: Option<Millis>,
    pub refunded: i64,
    /// The envelope as announced (JSON).
    pub data: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShareRow {
    pub idx: i64,
    pub amount: i64,
    pub claimed_by: Option<String>,
    pub claimed_at: Option<Millis>,
}

/// One money movement; the store turns it into a balanced journal transaction.
#[derive(Debug, Clone)]
pub enum LedgerOp {
    TopUp {
        account_id: String,
        amount: i64,
    },
    Transfer {
        from: String,
        to: String,
        from_public_id: String,
        to_public_id: String,
        amount: i64,
    },
    CreateEnvelope {
        envelope: EnvelopeRow,
        shares: Vec<i64>,
        /// The accounts that may claim it, fixed now: a group's members as it is sent, a
        /// direct envelope's recipient by account.
        audience: Vec<String>,
    },
    Claim {
        envelope_id: String,
        claimer: String,
    },
    Refund {
        envelope_id: String,
    },
}

/// The request this movement answers, for idempotent retries.
#[derive(Debug, Clone)]
pub struct IdempotencyRecord {
    pub account_id: String,
    pub key: String,
    pub fingerprint: String,
    pub status: u16,
}

/// What a movement did, for building its answer and events inside the same transaction.
#[derive(Debug, Clone, Default)]
pub struct Posted {
    pub journal_id: String,
    /// Every touched book's balance after the movement.
    pub balances: std::collections::HashMap<String, i64>,
    /// The amount moved (for a claim, the share taken; for a refund, what went back).
    pub amount: i64,
    /// For a claim or a refund: the envelope's sender.
    pub envelope_sender: Option<String>,
}

/// Builds the answer (JSON) and the events of a movement from what it did, inside the
/// movement's transaction: an error rolls the movement back.
pub type Finish<'a> = &'a (dyn Fn(&Posted) -> StoreResult<(String, Vec<NewEvent>)> + Send + Sync);

#[derive(Debug, Clone, PartialEq)]
pub struct IdempotentAnswer {
    pub fingerprint: String,
    pub status: u16,
    pub response: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    pub seq: i64,
    pub journal_id: String,
    pub kind: String,
    pub amount: i64,
    pub counterparty: Option<String>,
    pub note: String,
    pub at: Millis,
}

/// A count within a window and when its oldest member leaves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCount {
    pub count: u32,
    pub oldest: Option<Millis>,
}

/// `units` of `key`'s budget of `limit` units of `scope` within the window after `since`,
/// taken at `now`: by [`Store::rate_take`] alone, or with the write it pays for (one
/// transaction, so a refused write costs no budget and a charge costs no commit of its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub scope: &'static str,
    pub key: String,
    pub units: u32,
    pub limit: u64,
    pub now: Millis,
    pub since: Millis,
}

/// The outcome of [`Store::rate_take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateTake {
    /// Whether the units fitted and were recorded.
    pub taken: bool,
    /// Units used in the window, these included when taken.
    pub used: u64,
    /// When the oldest recorded units of the window were taken.
    pub oldest: Option<Millis>,
}

#[async_trait]
pub trait Store: OfficialStore + MomentStore + Send + Sync + 'static {
    // --- SMS codes ---------------------------------------------------------------------
    /// Stores a new code if every limit allows it, deciding and recording in one step (so
    /// concurrent requests cannot all pass a limit); any earlier live code of the same number
    /// and purpose stops working.
    async fn sms_issue(&self, code: &SmsCodeRow, limits: &SmsLimits) -> StoreResult<SmsIssue>;
    /// Forgets a code whose delivery failed, so it does not count against any limit.
    async fn sms_delete(&self, id: &str) -> StoreResult<()>;
    /// The newest code of a number and purpose, used or not.
    async fn sms_latest(&self, phone: &str, purpose: &str) -> StoreResult<Option<SmsCodeRow>>;
    /// Reserves one try of a live code before it is compared: the tries so far, this one
    /// included, or None when the code has had `max` tries or was used.
    async fn sms_try(&self, id: &str, max: i64) -> StoreResult<Option<i64>>;
    /// Marks a code used; false if it was used (or superseded) meanwhile.
    async fn sms_consume(&self, id: &str, now: Millis) -> StoreResult<bool>;

    // --- accounts ------------------------------------------------------------------------
    /// Consumes the registration code and creates the account, in one transaction.
    async fn account_create(&self, code_id: &str, new: &NewAccount) -> StoreResult<AccountRow>;
    async fn account_by_id(&self, id: &str) -> StoreResult<Option<AccountRow>>;
    /// Case-insensitive.
    async fn account_by_public_id(&self, public_id: &str) -> StoreResult<Option<AccountRow>>;
    /// Oldest (primary) first.
    async fn accounts_by_phone(&self, phone: &str) -> StoreResult<Vec<AccountRow>>;
    async fn account_set_display_name(&self, id: &str, name: &str) -> StoreResult<()>;
    /// False when the last change was after `not_before_last_change`.
    async fn account_change_public_id(
        &self,
        id: &str,
        public_id: &str,
        now: Millis,
        not_before_last_change: Millis,
    ) -> StoreResult<bool>;
    /// Sets the password and revokes every session but `keep`; returns the events `revoked`
    /// made, one per revoked session.
    async fn account_set_password(
        &self,
        id: &str,
        hash: &str,
        keep: Option<&str>,
        now: Millis,
        revoked: Revoked<'_>,
    ) -> StoreResult<Vec<EventRow>>;
    /// Consumes the recovery code, sets the password, turns two-step verification off
    /// (appending `totp_notice` if it was on), revokes every session and forgets the
    /// throttling keys `login_keys` (failures and lock), in one transaction.
    async fn account_recover(
        &self,
        recovery: &Recovery<'_>,
        now: Millis,
        revoked: Revoked<'_>,
    ) -> StoreResult<Recovered>;
    /// False when the account is verified already; [`StoreError::IdentityLimit`] when the
    /// number verifies `per_id` accounts already (counted under the number's lock, so racing
    /// verifications of one number never pass the limit).
    async fn account_set_identity(
        &self,
        id: &str,
        identity: &IdentityRecord<'_>,
        per_id: u32,
        now: Millis,
    ) -> StoreResult<bool>;

    // --- two-factor ------------------------------------------------------------------------
    async fn totp_set_pending(&self, id: &str, secret: &str) -> StoreResult<()>;
    /// Turns the pending secret on with these recovery codes; `step` counts as used.
    async fn totp_enable(
        &self,
        id: &str,
        recovery_hashes: &[String],
        step: i64,
    ) -> StoreResult<bool>;
    /// Turns two-step verification off and appends `notice`, in one transaction; `None` (and
    /// nothing written) when it was not on.
    async fn totp_disable(
        &self,
        id: &str,
        notice: &NewEvent,
        now: Millis,
    ) -> StoreResult<Option<EventRow>>;
    /// Accepts a time step once: true only if `step` is later than every step used before.
    async fn totp_use_step(&self, id: &str, step: i64) -> StoreResult<bool>;
    /// Uses a recovery code once.
    async fn totp_use_recovery(&self, id: &str, hash: &str, now: Millis) -> StoreResult<bool>;

    // --- sign-in throttling and rate limits ----------------------------------------------------
    /// The state of every key (missing keys are clean).
    async fn login_states(&self, keys: &[String]) -> StoreResult<Vec<LoginState>>;
    /// Reserves one sign-in attempt on every key before the password is checked: refused
    /// (nothing written) while any key is locked or waiting; otherwise the attempt is counted
    /// as a failure at once, so concurrent attempts see it and at most `policy.after` of them
    /// get through. The caller settles it with [`login_reset`](Self::login_reset) (success) or
    /// [`login_refund`](Self::login_refund) (it was no failure).
    async fn login_reserve(
        &self,
        keys: &[String],
        now: Millis,
        policy: ThrottlePolicy,
    ) -> StoreResult<LoginGate>;
    /// Takes back one reserved failure from every key (the password was right, but no session
    /// was opened: a second factor or an account choice is still needed).
    async fn login_refund(&self, keys: &[String], policy: ThrottlePolicy) -> StoreResult<()>;
    /// Counts a failure on every key; returns their new states.
    async fn login_failure(
        &self,
        keys: &[String],
        now: Millis,
        policy: ThrottlePolicy,
    ) -> StoreResult<Vec<LoginState>>;
    async fn login_reset(&self, key: &str) -> StoreResult<()>;
    /// Records one event of `scope` for `key` and counts those after `since`, this one included.
    async fn rate_hit(
        &self,
        scope: &str,
        key: &str,
        now: Millis,
        since: Millis,
    ) -> StoreResult<WindowCount>;
    /// Takes `units` of `key`'s budget of `limit` units of `scope` within the window after
    /// `since`, if they fit: decided and recorded in one step under the key's lock, so
    /// concurrent takers never pass the limit together. Units that do not fit are not
    /// recorded (a refused request costs nothing of the budget).
    async fn rate_take(&self, charge: &Charge) -> StoreResult<RateTake>;

    // --- sessions ----------------------------------------------------------------------------
    async fn session_create(&self, row: &SessionRow) -> StoreResult<()>;
    /// The session with this token hash and its account, in one read.
    async fn session_with_account(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<(SessionRow, AccountRow)>>;
    async fn session_touch(&self, id: &str, now: Millis) -> StoreResult<()>;
    /// Sessions neither revoked nor expired, newest first.
    async fn sessions_live(&self, account_id: &str, now: Millis) -> StoreResult<Vec<SessionRow>>;
    /// The event `revoked` made, or None if there is no such live session of that account.
    async fn session_revoke(
        &self,
        account_id: &str,
        id: &str,
        now: Millis,
        revoked: Revoked<'_>,
    ) -> StoreResult<Option<EventRow>>;

    // --- contacts ------------------------------------------------------------------------------
    async fn are_contacts(&self, a: &str, b: &str) -> StoreResult<bool>;
    /// By display name.
    async fn contacts_of(&self, account_id: &str) -> StoreResult<Vec<ContactRow>>;
    /// `Duplicate` if the same request is pending already.
    async fn contact_request_insert(
        &self,
        row: &ContactRequestRow,
        events: &[NewEvent],
    ) -> StoreResult<Vec<EventRow>>;
    async fn contact_request_by_id(&self, id: &str) -> StoreResult<Option<ContactRequestRow>>;
    async fn contact_request_pending(
        &self,
        from: &str,
        to: &str,
    ) -> StoreResult<Option<ContactRequestRow>>;
    /// Pending requests from or to the account, oldest first.
    async fn contact_requests_pending_for(
        &self,
        account_id: &str,
    ) -> StoreResult<Vec<ContactRequestRow>>;
    /// Accepts a pending request and makes both accounts contacts; `NotPending` otherwise.
    async fn contact_request_accept(
        &self,
        id: &str,
        now: Millis,
        events: &[NewEvent],
    ) -> StoreResult<Vec<EventRow>>;

    // --- groups ----------------------------------------------------------------------------------
    async fn group_create(
        &self,
        group: &GroupRow,
        members: &[String],
        events: &[NewEvent],
    ) -> StoreResult<Vec<EventRow>>;
    async fn group_by_id(&self, id: &str) -> StoreResult<Option<GroupRow>>;
    /// Oldest member first.
    async fn group_members(&self, id: &str) -> StoreResult<Vec<MemberRow>>;
    async fn groups_of(&self, account_id: &str) -> StoreResult<Vec<GroupRow>>;
    /// Adds members (ignoring ones already in); `GroupFull` past `max`.
    async fn group_add_members(
        &self,
        id: &str,
        accounts: &[String],
        now: Millis,
        max: u32,
        events: &[NewEvent],
    ) -> StoreResult<Vec<EventRow>>;
    /// Removes a member, handing ownership to `new_owner` when given.
    async fn group_remove_member(
        &self,
        id: &str,
        account_id: &str,
        new_owner: Option<&str>,
        now: Millis,
        events: &[NewEvent],
    ) -> StoreResult<Vec<EventRow>>;

    // --- messages and the event log ------------------------------------------------------------
    async fn message_by_client_id(
        &self,
        sender_id: &str,
        client_id: &str,
    ) -> StoreResult<Option<MessageRow>>;
    /// `Duplicate` if the sender used the client id already; `OverBudget` if one of `charges`
    /// (taken first, as [`rate_take`](Self::rate_take) would) does not fit. Either way nothing
    /// is written.
    async fn message_insert(
        &self,
        row: &MessageRow,
        events: &[NewEvent],
        charges: &[Charge],
    ) -> StoreResult<Vec<EventRow>>;
    /// The account's newest sequence number (0 before its first event).
    async fn event_head(&self, account_id: &str) -> StoreResult<i64>;
    /// The newest sequence number of each of `account_ids` that has any event, in one query
    /// (the cluster's safety poll checks every live socket's account at once).
    async fn event_heads(&self, account_ids: &[String]) -> StoreResult<Vec<(String, i64)>>;
    /// Events with `seq > since`, oldest first, at most `limit`.
    async fn events_after(
        &self,
        account_id: &str,
        since: i64,
        limit: i64,
    ) -> StoreResult<Vec<EventRow>>;

    // --- wallet -----------------------------------------------------------------------------
    async fn idempotent_answer(
        &self,
        account_id: &str,
        key: &str,
    ) -> StoreResult<Option<IdempotentAnswer>>;
    /// Applies one movement as a balanced journal transaction, with its idempotency record and
    /// events, in one database transaction. Returns the answer `finish` built and the events.
    async fn ledger_apply(
        &self,
        op: &LedgerOp,
        journal_id: &str,
        note: &str,
        now: Millis,
        idempotency: Option<&IdempotencyRecord>,
        finish: Finish<'_>,
    ) -> StoreResult<(String, Vec<EventRow>)>;
    async fn book_balance(&self, book: &str) -> StoreResult<i64>;
    /// A wallet's history, newest first, entries older than `before` (journal seq).
    async fn wallet_history(
        &self,
        account_id: &str,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<HistoryRow>>;
    async fn envelope(&self, id: &str) -> StoreResult<Option<(EnvelopeRow, Vec<ShareRow>)>>;
    /// Whether `account` was among those the envelope was sent to.
    async fn envelope_sent_to(&self, id: &str, account: &str) -> StoreResult<bool>;
    /// Envelopes past expiry and not yet refunded.
    async fn envelopes_due(&self, now: Millis, limit: i64) -> StoreResult<Vec<String>>;
    /// Every invariant of the ledger; the first violation, if any.
    async fn ledger_check(&self) -> StoreResult<Option<String>>;

    // --- housekeeping ----------------------------------------------------------------------------
    /// Deletes SMS codes and rate events created before `before`; returns rows deleted, or
    /// `None` when another node is pruning right now (one at a time across nodes).
    async fn prune(&self, before: Millis) -> StoreResult<Option<u64>>;
    /// The database's own clock: on several nodes, the one time every expiry is judged by.
    async fn db_now_ms(&self) -> StoreResult<Millis>;
    /// Closes the pools (on shutdown).
    async fn close(&self);
}
