//! This process as a node of a cluster (PostgreSQL): its id, the heads its commits moved
//! waiting to go out as hints, and its clock on the database's time. What `cluster` runs and
//! the event hub feeds; nothing here reaches for the service's state.

use std::str::FromStr;
use std::sync::{Arc, Mutex};

use sqlx::postgres::PgConnectOptions;
use switchboard_service::clock::{Clock, DatabaseTime};
use tokio::sync::Notify;

/// Hint batches held while a NOTIFY is in flight; past this they are dropped (the safety
/// poll delivers what they announced), so an unreachable database cannot grow memory.
const PENDING_MAX: usize = 100_000;

/// This node's heads waiting to go out.
pub struct Outbox {
    pending: Mutex<Vec<Vec<(String, i64)>>>,
    pub(crate) ready: Notify,
}

impl Outbox {
    fn new() -> Self {
        Self {
            pending: Mutex::new(Vec::new()),
            ready: Notify::new(),
        }
    }

    /// Queues the heads one commit moved; never waits.
    pub fn push(&self, heads: Vec<(String, i64)>) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.len() < PENDING_MAX {
            pending.push(heads);
        }
        drop(pending);
        self.ready.notify_one();
    }

    pub(crate) fn take(&self) -> Vec<Vec<(String, i64)>> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// A node of a cluster: what `build` sets up when the database is PostgreSQL.
pub struct Node {
    /// Random per process: a node skips its own hints (its sockets had the events already).
    pub id: String,
    pub(crate) url: String,
    pub outbox: Arc<Outbox>,
    pub time: Arc<DatabaseTime>,
}

impl Node {
    pub fn new(url: &str) -> Self {
        Self {
            id: uuid::Uuid::new_v4().simple().to_string(),
            url: url.to_string(),
            outbox: Arc::new(Outbox::new()),
            time: Arc::new(DatabaseTime::default()),
        }
    }

    pub(crate) fn options(&self, role: &str) -> Result<PgConnectOptions, sqlx::Error> {
        Ok(PgConnectOptions::from_str(&self.url)?
            .application_name(&format!("switchboard-server {role}")))
    }
}

/// The clock a node serves by: the database's on a cluster unless a test drives its own.
pub fn clock(node: Option<&Node>, given: Arc<dyn Clock>, from_database: bool) -> Arc<dyn Clock> {
    match node {
        Some(node) if from_database => node.time.clone(),
        _ => given,
    }
}
