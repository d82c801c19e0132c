//! What every request reads, kept in memory where one process owns every write (SQLite): a
//! session with its account (each authenticated request), an account by its public ID (each
//! message to a contact) and that two accounts are contacts (likewise). A message used to pay
//! three reads for them, each a round trip to a SQLite worker thread.
//!
//! The database tells the cache what changed, so no write path can forget to: an update hook on
//! the one write connection notes every row of `accounts` and `sessions` that a statement
//! changes, and when that connection goes back to its pool (its transaction committed or
//! rolled back) the entries those rows made are dropped. In between, nothing is answered from
//! memory: the answer to the write may be out before its connection is back. Contacts are only
//! ever added (and removed with their account), so only "these two are contacts" is kept:
//! nothing can turn it false but an account's deletion, which empties it.
//!
//! A read that raced a write must not keep what it read: a read takes a ticket (the
//! generation) before it asks the database, and keeps its answer only if no watched row
//! changed since and none is being changed now. Between a change and its commit, and until the
//! connection is back, nothing is kept; so an entry is never older than a committed change.
//!
//! PostgreSQL has no such cache: several nodes write to it, and one node's hook cannot see
//! another's writes.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::{AccountRow, SessionRow};

/// Entries kept per map; a full map is emptied (they are refilled by the next reads).
const CAP: usize = 100_000;

/// A watched table's row, as the update hook names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Row {
    Account(i64),
    Session(i64),
    /// An account deleted: contacts may have gone with it.
    AccountDeleted,
}

/// A session with its account, and the rows they came from.
#[derive(Clone)]
pub struct CachedSession {
    pub session: SessionRow,
    pub account: AccountRow,
    pub session_row: i64,
    pub account_row: i64,
}

#[derive(Default)]
struct Entries {
    /// By token hash.
    sessions: HashMap<String, CachedSession>,
    /// By lower-cased public ID: (row, account).
    accounts: HashMap<String, (i64, AccountRow)>,
    /// (account, contact) pairs known to be contacts.
    contacts: HashSet<(String, String)>,
}

#[derive(Default)]
pub struct ReadCache {
    /// Moves on every change to a watched row, noted and settled.
    generation: AtomicU64,
    /// A watched row was changed and its connection is not back yet.
    changing: AtomicBool,
    /// The rows changed since the connection was last back.
    changed: Mutex<Vec<Row>>,
    entries: Mutex<Entries>,
}

/// Taken before a read; `None` while a change is in flight (nothing read then is kept).
#[derive(Clone, Copy)]
pub struct Ticket(u64);

impl ReadCache {
    /// From the update hook, on the write connection's thread: `row` is being changed.
    pub fn noted(&self, row: Row) {
        self.changing.store(true, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
        lock(&self.changed).push(row);
    }

    /// The write connection is back in its pool: what changed is committed (or rolled back),
    /// so the entries it made stale go, and reads may keep what they read again.
    pub fn settled(&self) {
        if !self.changing.load(Ordering::SeqCst) {
            return;
        }
        let changed = std::mem::take(&mut *lock(&self.changed));
        let (mut sessions, mut accounts) = (HashSet::new(), HashSet::new());
        for row in &changed {
            match *row {
                Row::Session(id) => sessions.insert(id),
                Row::Account(id) => accounts.insert(id),
                Row::AccountDeleted => false,
            };
        }
        {
            let mut e = lock(&self.entries);
            if !sessions.is_empty() || !accounts.is_empty() {
                e.sessions.retain(|_, s| {
                    !sessions.contains(&s.session_row) && !accounts.contains(&s.account_row)
                });
            }
            if !accounts.is_empty() {
                e.accounts.retain(|_, (row, _)| !accounts.contains(row));
            }
            if changed.contains(&Row::AccountDeleted) {
                e.contacts.clear();
            }
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.changing.store(false, Ordering::SeqCst);
    }

    pub fn ticket(&self) -> Option<Ticket> {
        if self.changing.load(Ordering::SeqCst) {
            return None;
        }
        Some(Ticket(self.generation.load(Ordering::SeqCst)))
    }

    /// Keeps what a read found, if nothing it read changed meanwhile.
    fn keep(&self, ticket: Option<Ticket>, put: impl FnOnce(&mut Entries)) {
        let Some(Ticket(generation)) = ticket else {
            return;
        };
        let mut e = lock(&self.entries);
        // Checked under the entries' lock, which `settled` takes before it moves on: a change
        // that settles after this check finds the entry and drops it.
        if self.changing.load(Ordering::SeqCst)
            || self.generation.load(Ordering::SeqCst) != generation
        {
            return;
        }
        put(&mut e);
    }

    /// The entries, unless a watched row is being changed: its connection goes back to the
    /// pool a moment after the commit (the answer to the write may already be out), and until
    /// then the entries it makes stale are still here; the database answers meanwhile.
    fn settled_entries(&self) -> Option<std::sync::MutexGuard<'_, Entries>> {
        let e = lock(&self.entries);
        (!self.changing.load(Ordering::SeqCst)).then_some(e)
    }

    pub fn session(&self, token_hash: &str) -> Option<CachedSession> {
        self.settled_entries()?.sessions.get(token_hash).cloned()
    }

    pub fn keep_session(&self, ticket: Option<Ticket>, token_hash: &str, s: CachedSession) {
        self.keep(ticket, |e| {
            bounded(&mut e.sessions);
            e.sessions.insert(token_hash.to_string(), s);
        });
    }

    pub fn account(&self, public_id_lower: &str) -> Option<AccountRow> {
        self.settled_entries()?
            .accounts
            .get(public_id_lower)
            .map(|(_, a)| a.clone())
    }

    pub fn keep_account(
        &self,
        ticket: Option<Ticket>,
        public_id_lower: &str,
        row: i64,
        a: AccountRow,
    ) {
        self.keep(ticket, |e| {
            bounded(&mut e.accounts);
            e.accounts.insert(public_id_lower.to_string(), (row, a));
        });
    }

    pub fn are_contacts(&self, a: &str, b: &str) -> bool {
        self.settled_entries()
            .is_some_and(|e| e.contacts.contains(&(a.to_string(), b.to_string())))
    }

    pub fn keep_contacts(&self, ticket: Option<Ticket>, a: &str, b: &str) {
        self.keep(ticket, |e| {
            if e.contacts.len() >= CAP {
                e.contacts.clear();
            }
            e.contacts.insert((a.to_string(), b.to_string()));
        });
    }
}

fn bounded<V>(map: &mut HashMap<String, V>) {
    if map.len() >= CAP {
        map.clear();
    }
}

/// A poisoned lock still holds consistent maps (every update is a single insert or retain).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn account(id: &str) -> AccountRow {
        AccountRow {
            id: id.into(),
            phone: "+8613800138000".into(),
            slot: 0,
            public_id: format!("user_{id}"),
            display_name: id.into(),
            password_hash: String::new(),
            created_at: 0,
            public_id_changed_at: None,
            legal_name: None,
            id_number_masked: None,
            identity_verified_at: None,
            totp_secret: None,
            totp_pending_secret: None,
            totp_last_step: 0,
        }
    }

    fn session(id: &str, account_id: &str, session_row: i64, account_row: i64) -> CachedSession {
        CachedSession {
            session: SessionRow {
                id: id.into(),
                account_id: account_id.into(),
                token_hash: format!("hash_{id}"),
                device_name: String::new(),
                created_at: 0,
                last_seen_at: 0,
                expires_at: i64::MAX,
                revoked_at: None,
            },
            account: account(account_id),
            session_row,
            account_row,
        }
    }

    #[test]
    fn a_changed_row_is_never_answered_from_memory_again() {
        let c = ReadCache::default();
        c.keep_session(c.ticket(), "t1", session("s1", "a1", 1, 10));
        c.keep_session(c.ticket(), "t2", session("s2", "a1", 2, 10));
        c.keep_session(c.ticket(), "t3", session("s3", "a2", 3, 20));
        c.keep_account(c.ticket(), "user_a1", 10, account("a1"));
        assert!(c.session("t1").is_some());

        // Session 1 revoked: from the hook on, before the commit and until the connection is
        // back, nothing is answered from memory (the answer to the write may already be out).
        c.noted(Row::Session(1));
        assert!(c.session("t1").is_none() && c.session("t3").is_none());
        assert!(c.ticket().is_none(), "nothing read now may be kept");
        c.settled();
        assert!(c.session("t1").is_none(), "the revoked session is gone");
        assert!(c.session("t2").is_some() && c.session("t3").is_some());

        // Account a1 changed (a new name): its sessions and its lookup go, a2's stay.
        c.noted(Row::Account(10));
        c.settled();
        assert!(c.session("t2").is_none() && c.account("user_a1").is_none());
        assert!(c.session("t3").is_some());
    }

    #[test]
    fn a_read_that_raced_a_change_is_not_kept() {
        let c = ReadCache::default();
        // Read before the change, kept after it settled: stale, dropped.
        let ticket = c.ticket();
        c.noted(Row::Account(10));
        c.settled();
        c.keep_account(ticket, "user_a1", 10, account("a1"));
        assert!(c.account("user_a1").is_none());
        // Read while a change is in flight, kept after it settled: dropped too.
        c.noted(Row::Session(1));
        let ticket = c.ticket();
        c.settled();
        c.keep_session(ticket, "t1", session("s1", "a1", 1, 10));
        assert!(c.session("t1").is_none());
        // A read with nothing changing meanwhile is kept.
        c.keep_contacts(c.ticket(), "a1", "a2");
        assert!(c.are_contacts("a1", "a2") && !c.are_contacts("a2", "a1"));
        // An account deleted takes its contacts with it.
        c.noted(Row::AccountDeleted);
        c.settled();
        assert!(!c.are_contacts("a1", "a2"));
    }
}
