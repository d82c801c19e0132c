//! Several nodes on one PostgreSQL: how a message accepted by one node reaches a socket held
//! by another.
//!
//! The per-account event log in the database stays the only truth. What crosses nodes is a
//! hint, "account X has events up to N", which may be lost without harm:
//! - every node gathers the heads its own commits moved and sends them as one `NOTIFY` per
//!   short window (`cluster.notify_batch_ms`), not one per transaction;
//! - every node `LISTEN`s and wakes the sockets of the accounts named (they read what they
//!   lack from the database, from their own cursor, so a hint can neither double nor reorder
//!   anything);
//! - when the listening connection is lost and comes back, every local socket re-reads from
//!   its cursor (hints sent meanwhile are gone);
//! - a slow safety poll compares the heads in the database with what the local sockets were
//!   told, which catches a hint lost any other way.
//!
//! The same module keeps the node's clock on the database's time, so expiries are judged
//! alike on every node. On SQLite (one node) none of this runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPoolOptions};

use crate::state::App;
use switchboard_service::clock::{Clock, DatabaseTime, SystemClock};

/// The channel every node of one database listens on.
const CHANNEL: &str = "switchboard_events";
/// PostgreSQL refuses payloads from 8000 bytes; a batch longer than this goes as several.
const PAYLOAD_MAX: usize = 7000;
/// How often the node's clock is compared with the database's.
const CLOCK_SYNC: Duration = Duration::from_secs(60);

/// Runs the node's cluster tasks until the service stops.
pub async fn run(app: App) {
    let Some(node) = app.cluster.as_ref() else {
        return;
    };
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(send(app.clone()));
    tasks.spawn(listen(app.clone()));
    tasks.spawn(safety_poll(app.clone()));
    if app.clock_from_database {
        tasks.spawn(sync_clock(app.clone(), node.time.clone()));
    }
    while tasks.join_next().await.is_some() {}
}

/// `node heads…` with heads as `account:seq`, split so each payload fits.
pub fn encode(node: &str, heads: &HashMap<String, i64>) -> Vec<String> {
    let mut payloads = Vec::new();
    let mut current = node.to_string();
    for (account, seq) in heads {
        let item = format!(" {account}:{seq}");
        if current.len() + item.len() > PAYLOAD_MAX && current.len() > node.len() {
            payloads.push(std::mem::replace(&mut current, node.to_string()));
        }
        current.push_str(&item);
    }
    if current.len() > node.len() {
        payloads.push(current);
    }
    payloads
}

/// The sender and the heads of a payload; `None` for one this version cannot read.
pub fn decode(payload: &str) -> Option<(&str, Vec<(String, i64)>)> {
    let mut parts = payload.split(' ');
    let node = parts.next().filter(|n| !n.is_empty())?;
    let heads = parts
        .map(|item| {
            let (account, seq) = item.rsplit_once(':')?;
            Some((account.to_string(), seq.parse().ok()?))
        })
        .collect::<Option<Vec<_>>>()?;
    Some((node, heads))
}

fn merge(batches: Vec<Vec<(String, i64)>>) -> HashMap<String, i64> {
    let mut heads = HashMap::new();
    for (account, seq) in batches.into_iter().flatten() {
        let head = heads.entry(account).or_insert(seq);
        *head = (*head).max(seq);
    }
    heads
}

async fn send(app: App) {
    let Some(node) = app.cluster.as_ref() else {
        return;
    };
    let pool = match node.options("notify") {
        Ok(options) => PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(options),
        Err(e) => {
            tracing::error!(error = %e, "cluster: bad database URL; no wake-ups will be sent");
            return;
        }
    };
    let per_write = app.config.cluster.notify == "per_write";
    let window = Duration::from_millis(app.config.cluster.notify_batch_ms);
    loop {
        tokio::select! {
            () = node.outbox.ready.notified() => {}
            () = app.shutdown.cancelled() => break,
        }
        if !per_write && !window.is_zero() {
            // Gather what the other requests in flight commit meanwhile: one NOTIFY for all.
            tokio::time::sleep(window).await;
        }
        let batches = node.outbox.take();
        let payloads: Vec<Vec<String>> = if per_write {
            batches
                .into_iter()
                .map(|b| encode(&node.id, &merge(vec![b])))
                .collect()
        } else {
            vec![encode(&node.id, &merge(batches))]
        };
        for group in payloads.into_iter().filter(|p| !p.is_empty()) {
            // One round trip for a whole batch, however many payloads it takes.
            let sent = sqlx::query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
                .bind(CHANNEL)
                .bind(&group)
                .execute(&pool)
                .await;
            match sent {
                Ok(_) => app.metrics.count("cluster_notify_total"),
                // Lost hints are what the safety poll is for; the events themselves are safe.
                Err(e) => tracing::warn!(error = %e, "cluster: could not send wake-ups"),
            }
        }
    }
    pool.close().await;
}

async fn listen(app: App) {
    let Some(node) = app.cluster.as_ref() else {
        return;
    };
    let mut backoff = Duration::from_millis(100);
    loop {
        let connected = async {
            let options = node.options("listen")?;
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .max_lifetime(None)
                .idle_timeout(None)
                .connect_with(options)
                .await?;
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>((pool, listener))
        };
        let (pool, mut listener) = tokio::select! {
            c = connected => match c {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "cluster: cannot listen for wake-ups; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = app.shutdown.cancelled() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            },
            () = app.shutdown.cancelled() => return,
        };
        backoff = Duration::from_millis(100);
        // Listening again: whatever was hinted while we were not is lost, so every socket
        // looks for itself.
        app.hub.wake_all();
        loop {
            tokio::select! {
                received = listener.try_recv() => match received {
                    Ok(Some(n)) => match decode(n.payload()) {
                        Some((from, _)) if from == node.id => {}
                        Some((_, heads)) => app.hub.wake(&heads),
                        None => tracing::warn!("cluster: a wake-up this node cannot read; is every node the same version?"),
                    },
                    // Lost and already re-established by the listener.
                    Ok(None) => {
                        tracing::info!("cluster: wake-up connection re-established");
                        app.hub.wake_all();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cluster: wake-up connection lost; reconnecting");
                        break;
                    }
                },
                () = app.shutdown.cancelled() => {
                    drop(listener);
                    pool.close().await;
                    return;
                }
            }
        }
        drop(listener);
        pool.close().await;
    }
}

async fn safety_poll(app: App) {
    let period = Duration::from_millis(app.config.cluster.safety_poll_ms);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = app.shutdown.cancelled() => return,
        }
        let known: HashMap<String, i64> = app.hub.known_heads().into_iter().collect();
        if known.is_empty() {
            continue;
        }
        let accounts: Vec<String> = known.keys().cloned().collect();
        match app.store.event_heads(&accounts).await {
            Ok(heads) => {
                let stale: Vec<(String, i64)> = heads
                    .into_iter()
                    .filter(|(account, head)| known.get(account).is_some_and(|k| head > k))
                    .collect();
                if !stale.is_empty() {
                    tracing::debug!(
                        accounts = stale.len(),
                        "cluster: safety poll found events no wake-up announced"
                    );
                    app.hub.wake(&stale);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cluster: safety poll failed"),
        }
    }
}

/// Measures the offset between this machine's clock and the database's, halving the round
/// trip, and keeps `time` on the database's.
async fn sync_clock(app: App, time: Arc<DatabaseTime>) {
    loop {
        let before = SystemClock.now_ms();
        match app.store.db_now_ms().await {
            Ok(db) => {
                let after = SystemClock.now_ms();
                let offset = db - (before + after) / 2;
                if (offset - time.offset_ms()).abs() > 1000 {
                    tracing::warn!(
                        offset_ms = offset,
                        "this machine's clock is off the database's; expiries follow the database"
                    );
                }
                time.set_offset_ms(offset);
            }
            Err(e) => tracing::warn!(error = %e, "cluster: cannot read the database's clock"),
        }
        tokio::select! {
            () = tokio::time::sleep(CLOCK_SYNC) => {}
            () = app.shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_stay_under_the_limit() {
        let heads: HashMap<String, i64> = (0..2000)
            .map(|i| (format!("acc_{i:016}"), i64::from(i) * 7 + 1))
            .collect();
        let payloads = encode("node1", &heads);
        assert!(payloads.len() > 1, "2000 heads need several payloads");
        let mut back = HashMap::new();
        for p in &payloads {
            assert!(p.len() < 8000, "PostgreSQL refuses 8000 bytes and more");
            let (node, items) = decode(p).unwrap();
            assert_eq!(node, "node1");
            back.extend(items);
        }
        assert_eq!(back, heads);
        assert!(encode("node1", &HashMap::new()).is_empty());
        assert!(decode("node1 acc_x:notanumber").is_none());
    }

    #[test]
    fn a_batch_carries_each_account_once_at_its_newest_head() {
        let merged = merge(vec![
            vec![("a".into(), 3), ("b".into(), 1)],
            vec![("a".into(), 5)],
            vec![("a".into(), 4)],
        ]);
        assert_eq!(merged, HashMap::from([("a".into(), 5), ("b".into(), 1)]));
    }
}
