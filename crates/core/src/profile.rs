//! A profile's task: it owns the profile's connection and cursor. It sends the outbox, holds
//! the event stream, applies each event (and the cursor) in one transaction, publishes it on
//! the core's bus, and reconnects with exponential back-off and jitter. A revoked or expired
//! session stops it in the `SignedOut` state with the local data kept.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use serde::Serialize;
use switchboard_protocol::ErrorCode;
use switchboard_protocol::events::{Event, EventBody, close_code};
use tokio::sync::{Notify, broadcast, watch};
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_util::sync::CancellationToken;

use crate::client::Client;
use crate::error::{CoreError, Result};
use crate::registry::ProfileId;
use crate::store::{Applied, ProfileStore};
use crate::vault::Token;

/// Where a profile's connection stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum ConnState {
    Connecting,
    Live,
    /// Offline, retrying; the reason.
    Offline(String),
    /// The service's TLS certificate failed verification (unknown authority, expired, issued
    /// for another name): the message names the host and what is wrong. Still retrying, as a
    /// renewed certificate or a trusted CA fixes it, but never shown as a mere "offline".
    Certificate(String),
    /// The session was revoked or expired: sign in again. Local data is kept.
    SignedOut,
    /// Signed in, but not running in this process.
    Stopped,
    /// The profile's database does not open with the key in this keyring (the folder was
    /// copied from elsewhere, or the keyring was replaced): nothing runs and nothing is
    /// changed. The detail says so; removing the profile and signing in again is the way out.
    Locked(String),
}

/// What the core tells its front ends.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ProfileEvent {
    pub profile: ProfileId,
    pub kind: ProfileEventKind,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProfileEventKind {
    /// An event from the service, applied to the profile's database.
    Event(Event),
    State(ConnState),
}

/// Shared with the profile's task.
pub struct ProfileRuntime {
    pub id: ProfileId,
    pub public_id: crate::ids::PublicId,
    pub session_id: String,
    pub client: Client,
    pub token: Token,
    pub store: ProfileStore,
    pub bus: broadcast::Sender<ProfileEvent>,
    pub state: watch::Sender<ConnState>,
    /// Poked when a message is queued.
    pub outbox_ready: Notify,
    /// Held while a payment is looked up among the pending ones or added to them.
    pub payments: tokio::sync::Mutex<()>,
    /// Queued messages the service refused for good, by client id, with its reason.
    pub refused:
        std::sync::Mutex<std::collections::HashMap<String, switchboard_protocol::ApiError>>,
    /// Fault injection for the supervisor's tests: the task panics when it next wakes.
    #[cfg(feature = "fault-injection")]
    pub poisoned: std::sync::atomic::AtomicBool,
}

enum End {
    Cancelled,
    SignedOut,
}

const BACKOFF_START: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

impl ProfileRuntime {
    fn set_state(&self, s: ConnState) {
        if *self.state.borrow() != s {
            self.client.stats().state(&s);
            self.state.send_replace(s.clone());
            let _ = self.bus.send(ProfileEvent {
                profile: self.id.clone(),
                kind: ProfileEventKind::State(s),
            });
        }
    }

    /// Runs until cancelled or signed out.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        let mut backoff = BACKOFF_START;
        loop {
            // A certificate problem stays on show while it is retried: flashing "connecting"
            // every few seconds would bury the one thing the user has to act on.
            if !matches!(*self.state.borrow(), ConnState::Certificate(_)) {
                self.set_state(ConnState::Connecting);
            }
            let outcome = self.session(&cancel, &mut backoff).await;
            match outcome {
                Ok(End::Cancelled) => return,
                Ok(End::SignedOut) => {
                    self.set_state(ConnState::SignedOut);
                    return;
                }
                Err(CoreError::Certificate(why)) => self.set_state(ConnState::Certificate(why)),
                Err(e) => self.set_state(ConnState::Offline(e.to_string())),
            }
            // Full jitter: many profiles (or clients) never retry in lockstep.
            let wait = backoff.mul_f64(0.5 + jitter() / 2.0);
            backoff = (backoff * 2).min(BACKOFF_MAX);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn signed_out(e: &CoreError) -> bool {
        matches!(e, CoreError::Api(a) if matches!(a.code,
            ErrorCode::SessionRevoked | ErrorCode::SessionExpired | ErrorCode::Unauthorized))
    }

    /// Sends queued messages in order; a refusal other than signed-out drops that message
    /// (it can never succeed), a network failure stops and leaves the rest for later.
    async fn flush_outbox(&self) -> Result<bool> {
        for entry in self.store.outbox().await? {
            let sent = match self.upload_images(&entry.media).await {
                Ok(media) => {
                    self.client
                        .send_message(
                            &self.token,
                            &entry.client_id,
                            entry.to_id.as_str(),
                            &entry.body,
                            &media,
                        )
                        .await
                }
                Err(e) => Err(e),
            };
            match sent {
                Ok(_) => {}
                Err(e) if Self::signed_out(&e) => return Ok(false),
                Err(CoreError::Api(e)) => {
                    tracing::warn!(profile = %self.id, code = %e.code, "the service refused a queued message");
                    self.store.drop_from_outbox(&entry.client_id).await?;
                    self.refused
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(entry.client_id.clone(), e);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// The media ids of a queued message's images, uploading those not uploaded yet. An
    /// upload is noted as soon as it succeeds, so a failure later in the message (or in the
    /// send itself) never uploads an image twice.
    async fn upload_images(&self, keys: &[String]) -> Result<Vec<String>> {
        let mut ids = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(id) = self.store.uploaded_as(key).await? {
                ids.push(id);
                continue;
            }
            // Never evicted while queued; gone only if the database was edited by hand. The
            // message can never go as written: refused, like one the service turns down.
            let (mime, bytes) = self.store.cache_full(key).await?.ok_or_else(|| {
                CoreError::Api(switchboard_protocol::ApiError {
                    code: switchboard_protocol::ErrorCode::MediaNotFound,
                    message: "an image of this message is no longer on this computer".into(),
                    public_ids: None,
                })
            })?;
            let uploaded = self.client.upload_media(&self.token, &mime, bytes).await?;
            self.store.cache_link(key, &uploaded.media_id).await?;
            ids.push(uploaded.media_id);
        }
        Ok(ids)
    }

    async fn session(&self, cancel: &CancellationToken, backoff: &mut Duration) -> Result<End> {
        let cursor = self.store.cursor().await?;
        let Some(ws) = self.client.connect_events(cursor, &self.token).await? else {
            return Ok(End::SignedOut);
        };
        let (_, mut incoming) = ws.split();
        self.set_state(ConnState::Live);
        *backoff = BACKOFF_START;
        if !self.flush_outbox().await? {
            return Ok(End::SignedOut);
        }
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return Ok(End::Cancelled),
                _ = self.outbox_ready.notified() => {
                    #[cfg(feature = "fault-injection")]
                    if self.poisoned.swap(false, std::sync::atomic::Ordering::SeqCst) {
                        panic!("injected fault in profile {}", self.id);
                    }
                    if !self.flush_outbox().await? {
                        return Ok(End::SignedOut);
                    }
                }
                frame = incoming.next() => {
                    let first = match self.frame(frame) {
                        Frame::Event(e) => e,
                        Frame::Skip => continue,
                        Frame::End(end) => return end,
                    };
                    // Take every frame that is already here (a backlog arrives in bursts) and
                    // apply them in one transaction.
                    let mut batch = vec![first];
                    let mut end = None;
                    while batch.len() < MAX_BATCH {
                        let Some(frame) = incoming.next().now_or_never() else { break };
                        match self.frame(frame) {
                            Frame::Event(e) => batch.push(e),
                            Frame::Skip => {}
                            Frame::End(e) => {
                                end = Some(e);
                                break;
                            }
                        }
                    }
                    let applied = self.store.apply_all(&batch, self.public_id.as_str()).await?;
                    self.client
                        .stats()
                        .applied(applied.iter().filter(|a| **a == Applied::New).count());
                    for (event, applied) in batch.into_iter().zip(applied) {
                        if applied != Applied::New {
                            continue;
                        }
                        let revoked_me = matches!(&event.body,
                            EventBody::SessionRevoked(r) if r.session_id == self.session_id);
                        let _ = self.bus.send(ProfileEvent { profile: self.id.clone(), kind: ProfileEventKind::Event(event) });
                        if revoked_me {
                            return Ok(End::SignedOut);
                        }
                    }
                    if let Some(end) = end {
                        return end;
                    }
                }
            }
        }
    }

    /// What one frame of the stream means for the session.
    fn frame(
        &self,
        frame: Option<std::result::Result<Ws, tokio_tungstenite::tungstenite::Error>>,
    ) -> Frame {
        if let Some(Ok(f)) = &frame {
            self.client.stats().received(f.len());
        }
        match frame {
            // Each frame is parsed once, payload included. A kind this version does not know
            // reads as `Unknown`; a known kind whose payload does not fit is an error: skipping
            // it would leave a gap in the log (which the store refuses anyway), so say why.
            Some(Ok(Ws::Text(t))) => match serde_json::from_str::<Event>(&t) {
                Ok(e) => Frame::Event(e),
                Err(e) => Frame::End(Err(CoreError::Invalid(format!(
                    "the service sent an event this version cannot read ({e}); an update may be needed"
                )))),
            },
            Some(Ok(Ws::Close(c))) => {
                if c.as_ref()
                    .is_some_and(|c| close_code::ends_session(u16::from(c.code)))
                {
                    Frame::End(Ok(End::SignedOut))
                } else {
                    Frame::End(Err(CoreError::Network(
                        "the service closed the stream".into(),
                    )))
                }
            }
            Some(Ok(_)) => Frame::Skip,
            Some(Err(e)) => Frame::End(Err(CoreError::Network(e.to_string()))),
            None => Frame::End(Err(CoreError::Network("the stream ended".into()))),
        }
    }
}

enum Frame {
    Event(Event),
    Skip,
    End(Result<End>),
}

/// Events applied in one transaction at most: four of the service's replay pages, so a profile
/// far behind commits a few times per 2,000 events, not per 500 (a 100,000-event backlog:
/// 29,386 → 48,186 events/s). Live, a batch is what arrived together, a handful.
const MAX_BATCH: usize = 2048;

/// A uniform number in [0, 1).
fn jitter() -> f64 {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0)
}
