//! Events as they go out: encoded once for every socket, and the hub that fans each one out
//! to the sockets of its account on this node (and, on a cluster, to the other nodes as a
//! hint). Below the handlers and the state: neither is imported here.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use switchboard_protocol::events::{Event, EventBody, EventKind};
use switchboard_protocol::messaging::SessionRevoked;
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use switchboard_service::clock::to_datetime;
use switchboard_store::{EventRow, NewEvent};

/// Events a socket may have queued before it counts as too slow.
pub const QUEUE: usize = 1024;
/// An event's kind and payload, serialised once however many logs it goes into (a message to
/// a group of 500 is one serialisation, not 500).
#[derive(Debug, Clone)]
pub struct Encoded {
    pub kind: &'static str,
    /// `data` as JSON text.
    pub data: String,
}

impl Encoded {
    pub fn new(event: &EventBody) -> Result<Self> {
        let kind = match event.kind() {
            // Only a client meets kinds it does not know; the service makes every kind it sends.
            EventKind::Unknown => {
                return Err(Error::internal(format!(
                    "refusing to log an event of unknown kind {:?}",
                    event.name()
                )));
            }
            known => known.as_str(),
        };
        let data = event
            .data_json()
            .map_err(|e| Error::internal(format!("{kind} event data did not serialise: {e}")))?;
        Ok(Encoded { kind, data })
    }

    /// This event for one account's log.
    pub fn to(&self, account_id: impl Into<String>) -> NewEvent {
        NewEvent {
            account_id: account_id.into(),
            kind: self.kind,
            data: self.data.clone(),
        }
    }
}

/// An event to append to `account_id`'s log, for the store.
pub fn new_event(account_id: &str, event: &EventBody) -> Result<NewEvent> {
    Ok(Encoded::new(event)?.to(account_id))
}

/// The same event for the logs of several accounts, serialised once.
pub fn new_events<I>(account_ids: I, event: &EventBody) -> Result<Vec<NewEvent>>
where
    I: IntoIterator,
    I::Item: Into<String>,
{
    let encoded = Encoded::new(event)?;
    Ok(account_ids.into_iter().map(|a| encoded.to(a)).collect())
}

/// An event ready to send: its JSON text is made once, whatever the number of sockets.
#[derive(Debug)]
pub struct LiveEvent {
    pub seq: i64,
    /// For `session.revoked`: which session, so that session's sockets close after it.
    pub revoked_session: Option<String>,
    pub json: String,
}

impl LiveEvent {
    /// Only a `session.revoked` payload is read here; every other one goes out as stored.
    pub(crate) fn from_row(row: &EventRow) -> Result<Self> {
        let revoked_session = if row.kind == EventKind::SessionRevoked.as_str() {
            let data: SessionRevoked = serde_json::from_str(&row.data).map_err(|e| {
                Error::internal(format!("stored session.revoked event {}: {e}", row.seq))
            })?;
            Some(data.session_id)
        } else {
            None
        };
        Ok(LiveEvent {
            seq: row.seq,
            revoked_session,
            json: event_json(row)?,
        })
    }
}

/// `{"seq", "kind", "at", "data"}` (the shape of [`Event`]); `data` is stored as JSON already
/// and goes out verbatim, so sending an event never parses its payload.
pub fn event_json(row: &EventRow) -> Result<String> {
    let kind = serde_json::to_string(&row.kind).map_err(Error::internal)?;
    let at = to_datetime(row.at)
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| Error::internal(format!("event {} time: {e}", row.seq)))?;
    Ok(format!(
        r#"{{"seq":{},"kind":{kind},"at":"{at}","data":{}}}"#,
        row.seq, row.data
    ))
}

pub fn to_event(row: &EventRow) -> Result<Event> {
    Ok(Event {
        seq: row.seq,
        at: to_datetime(row.at),
        body: EventBody::from_json(&row.kind, &row.data)
            .map_err(|e| Error::internal(format!("stored event {}: {e}", row.seq)))?,
    })
}

/// What a socket's queue carries.
#[derive(Debug, Clone)]
pub enum Live {
    /// An event this node committed, ready to send.
    Event(std::sync::Arc<LiveEvent>),
    /// The account has events up to this sequence number somewhere (another node committed
    /// them, or the safety poll found them): the socket reads what it lacks from the
    /// database. `i64::MAX` means "check": the hints of a while may have been lost.
    Wake(i64),
}

/// One socket's queue, with the id that finds it again on unsubscribe.
type Subscriber = (u64, mpsc::Sender<Live>);

struct Entry {
    subscribers: Vec<Subscriber>,
    /// The newest sequence number this node has announced to the account's sockets, so a
    /// hint for something they already have wakes nobody.
    known: i64,
}

/// Live fan-out of committed events to the sockets of their accounts, on this node. With
/// several nodes, every committed head also goes out as a hint ([`crate::cluster`]) and hints
/// from the other nodes come in through [`Hub::wake`].
#[derive(Default)]
pub struct Hub {
    subscribers: Mutex<HashMap<String, Entry>>,
    next_id: AtomicU64,
    /// Where this node's committed heads go for the other nodes; unset on one node.
    outbox: std::sync::OnceLock<std::sync::Arc<crate::node::Outbox>>,
}

/// A socket's place in the hub; leaving it (drop) unsubscribes.
pub struct Subscription<'a> {
    hub: &'a Hub,
    account: String,
    id: u64,
    pub rx: mpsc::Receiver<Live>,
}

impl Drop for Subscription<'_> {
    fn drop(&mut self) {
        let mut subs = self.hub.lock();
        if let Some(entry) = subs.get_mut(&self.account) {
            entry.subscribers.retain(|(id, _)| *id != self.id);
            if entry.subscribers.is_empty() {
                subs.remove(&self.account);
            }
        }
    }
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.subscribers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends this node's committed heads to the other nodes from now on.
    pub fn connect_outbox(&self, outbox: std::sync::Arc<crate::node::Outbox>) {
        let _ = self.outbox.set(outbox);
    }

    pub fn subscribe(&self, account: &str) -> Subscription<'_> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock()
            .entry(account.to_string())
            .or_insert_with(|| Entry {
                subscribers: Vec::new(),
                known: 0,
            })
            .subscribers
            .push((id, tx));
        Subscription {
            hub: self,
            account: account.to_string(),
            id,
            rx,
        }
    }

    /// Hands committed events to their accounts' sockets, never waiting: a socket whose queue
    /// is full is dropped from the hub (its stream then closes it as too slow). Then tells the
    /// other nodes, if any, how far each account's log now reaches.
    pub fn publish(&self, rows: &[EventRow]) {
        if rows.is_empty() {
            return;
        }
        {
            let mut subs = self.lock();
            for row in rows {
                let Some(entry) = subs.get_mut(&row.account_id) else {
                    continue;
                };
                entry.known = entry.known.max(row.seq);
                // A row that cannot be sent is logged (by `Error::internal`) and left out:
                // the sockets see the gap and read the range from the database, which answers
                // with the same error and ends those streams instead of skipping the event.
                let Ok(event) = LiveEvent::from_row(row) else {
                    continue;
                };
                let event = Live::Event(std::sync::Arc::new(event));
                entry
                    .subscribers
                    .retain(|(_, tx)| tx.try_send(event.clone()).is_ok());
            }
        }
        if let Some(outbox) = self.outbox.get() {
            let mut heads: Vec<(String, i64)> = Vec::new();
            for row in rows {
                match heads.iter_mut().find(|(a, _)| *a == row.account_id) {
                    Some((_, seq)) => *seq = (*seq).max(row.seq),
                    None => heads.push((row.account_id.clone(), row.seq)),
                }
            }
            outbox.push(heads);
        }
    }

    /// Hints from elsewhere: each account's sockets are woken if the hint is news to them.
    pub fn wake(&self, heads: &[(String, i64)]) {
        let mut subs = self.lock();
        for (account, seq) in heads {
            let Some(entry) = subs.get_mut(account) else {
                continue;
            };
            if *seq <= entry.known {
                continue;
            }
            entry.known = *seq;
            entry
                .subscribers
                .retain(|(_, tx)| tx.try_send(Live::Wake(*seq)).is_ok());
        }
    }

    /// Every socket re-reads from its cursor: hints may have been lost (the listener's
    /// connection dropped).
    pub fn wake_all(&self) {
        let mut subs = self.lock();
        for entry in subs.values_mut() {
            entry
                .subscribers
                .retain(|(_, tx)| tx.try_send(Live::Wake(i64::MAX)).is_ok());
        }
    }

    /// The accounts with live sockets here and how far this node has told them, for the
    /// safety poll.
    pub fn known_heads(&self) -> Vec<(String, i64)> {
        self.lock()
            .iter()
            .map(|(account, entry)| (account.clone(), entry.known))
            .collect()
    }

    /// Live sockets, for metrics.
    pub fn sockets(&self) -> usize {
        self.lock().values().map(|e| e.subscribers.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(account: &str, seq: i64) -> EventRow {
        EventRow {
            account_id: account.into(),
            seq,
            kind: EventKind::MessageNew.as_str().into(),
            at: 0,
            data: "{}".into(),
        }
    }

    fn seq_of(live: &Live) -> i64 {
        match live {
            Live::Event(e) => e.seq,
            Live::Wake(seq) => panic!("expected an event, got a wake-up to {seq}"),
        }
    }

    #[test]
    fn hints_wake_only_sockets_they_are_news_to() {
        let hub = Hub::default();
        let mut a = hub.subscribe("a");
        hub.publish(&[row("a", 1), row("a", 2)]);
        assert_eq!(seq_of(&a.rx.try_recv().unwrap()), 1);
        assert_eq!(seq_of(&a.rx.try_recv().unwrap()), 2);
        hub.wake(&[("a".into(), 2), ("nobody".into(), 9)]);
        assert!(a.rx.try_recv().is_err(), "seq 2 is known here: no wake-up");
        hub.wake(&[("a".into(), 5)]);
        assert!(matches!(a.rx.try_recv(), Ok(Live::Wake(5))));
        hub.wake(&[("a".into(), 4)]);
        assert!(
            a.rx.try_recv().is_err(),
            "an older hint arriving late is not news"
        );
        hub.wake_all();
        assert!(matches!(a.rx.try_recv(), Ok(Live::Wake(i64::MAX))));
        assert_eq!(hub.known_heads(), vec![("a".to_string(), 5)]);
    }

    #[test]
    fn a_subscriber_that_stops_reading_is_dropped_not_buffered_without_bound() {
        let hub = Hub::default();
        let mut slow = hub.subscribe("a");
        let mut other = hub.subscribe("b");
        for seq in 1..=(QUEUE as i64 + 10) {
            hub.publish(&[row("a", seq), row("b", seq)]);
            // "b" keeps up.
            assert_eq!(other.rx.try_recv().map(|e| seq_of(&e)).ok(), Some(seq));
        }
        let mut got = 0;
        while let Ok(ev) = slow.rx.try_recv() {
            got += 1;
            assert_eq!(seq_of(&ev), got, "what was queued is delivered in order");
        }
        assert_eq!(got, QUEUE as i64, "at most one queue's worth is held");
        assert!(
            slow.rx.is_closed(),
            "then the hub lets go, and the socket closes as too slow"
        );
        assert_eq!(hub.sockets(), 1, "only the reader stays subscribed");
    }

    #[test]
    fn event_json_is_the_wire_shape() {
        let mut r = row("a", 7);
        r.data = r#"{"session_id":"ses_x"}"#.into();
        r.kind = EventKind::SessionRevoked.as_str().into();
        let json = event_json(&r).unwrap();
        assert_eq!(
            json,
            r#"{"seq":7,"kind":"session.revoked","at":"1970-01-01T00:00:00Z","data":{"session_id":"ses_x"}}"#
        );
        let typed: Event = serde_json::from_str(&json).unwrap();
        assert_eq!(
            typed,
            to_event(&r).unwrap(),
            "the socket's spliced text and /v1/sync's typed event are one shape"
        );
        assert_eq!(
            LiveEvent::from_row(&r).unwrap().revoked_session.as_deref(),
            Some("ses_x")
        );
        r.data = r#"{"session":"ses_x"}"#.into();
        assert!(
            LiveEvent::from_row(&r).is_err(),
            "a revocation that cannot be read must not pass as an ordinary event"
        );
    }

    #[test]
    fn new_events_serialise_the_payload_once_for_every_log() {
        let body = EventBody::SessionRevoked(SessionRevoked {
            session_id: "ses_1".into(),
        });
        let events = new_events(["a", "b"], &body).unwrap();
        assert_eq!(events.len(), 2);
        for (e, account) in events.iter().zip(["a", "b"]) {
            assert_eq!(
                (e.account_id.as_str(), e.kind, e.data.as_str()),
                (
                    account,
                    EventKind::SessionRevoked.as_str(),
                    r#"{"session_id":"ses_1"}"#
                )
            );
        }
        let unknown = EventBody::Unknown(switchboard_protocol::events::UnknownEvent {
            kind: "sticker.new".into(),
            data: serde_json::Value::Null,
        });
        assert!(
            new_event("a", &unknown).is_err(),
            "the service logs only kinds it defines"
        );
    }
}
