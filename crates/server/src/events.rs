//! The per-account event log as the client sees it: paged sync, and a WebSocket that replays
//! everything after the client's cursor and then pushes live events.
//!
//! Exactly once, in order, with no gap at the switch from replay to live: the socket keeps a
//! cursor (the last sequence sent) and only ever sends `cursor + 1`. Live events arrive
//! through the [`Hub`]; one that is already sent is skipped, and one that skips ahead makes
//! the socket read the missing range from the database first. The hub never blocks a
//! publisher: each socket has a bounded queue, and a socket that lets it fill is closed with
//! a reason (the client resumes from its cursor), so one slow client never grows the
//! service's memory.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use switchboard_protocol::events::{SyncPage, SyncQuery, close_code};
use switchboard_protocol::{ApiError, ErrorBody, ErrorCode};

use crate::auth::Auth;
use crate::error::{Error, Json, Query, Result};
use crate::hub::{Live, LiveEvent, to_event};
use crate::state::App;

const PAGE: i64 = 500;
const PING_EVERY: Duration = Duration::from_secs(20);
/// A client silent (no pong, no frame) this long is gone.
const SILENT_LIMIT: Duration = Duration::from_secs(60);
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest frame, and message, a client may send on the stream. The stream only sends:
/// a client legitimately sends pongs, pings and a close, control frames of at most 125 bytes
/// (RFC 6455), and at worst a stray short text frame, which is answered with an error. Both
/// caps matter: the message cap alone is checked only after a whole frame has been read, so
/// one frame announcing 16 MiB (the library's default frame cap) would be buffered first.
pub const CLIENT_FRAME_MAX: usize = 4 * 1024;

/// A cursor must be one the service handed out: 0 up to the account's newest event. One past
/// the end means the client holds events this service does not (a restored backup, another
/// service): answering "nothing new" forever would hide that, so it is an error.
async fn check_since(app: &App, account: &str, since: i64) -> Result<i64> {
    if since < 0 {
        return Err(Error::invalid_request(
            "since is a sequence number: 0 or more",
        ));
    }
    let head = app.store.event_head(account).await?;
    if since > head {
        return Err(Error::invalid_request(format!(
            "since={since} is past this account's newest event ({head}); resume from {head} or earlier"
        )));
    }
    Ok(head)
}

/// Page through the event log
///
/// Events after `since`, oldest first. Pass `next` as `since` to continue; `more` says whether
/// more are waiting already.
#[utoipa::path(get, path = "/v1/sync", tag = "events", security(("bearer" = [])), params(SyncQuery),
    responses((status = 200, body = SyncPage),
              (status = 400, description = "invalid_request (since negative or past the newest event, bad limit)", body = switchboard_protocol::ErrorBody),
              (status = 401, body = switchboard_protocol::ErrorBody)))]
pub async fn sync(
    State(app): State<App>,
    auth: Auth,
    Query(q): Query<SyncQuery>,
) -> Result<Json<SyncPage>> {
    let head = check_since(&app, &auth.account.id, q.since).await?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Error::invalid_request("limit must be between 1 and 1000"));
    }
    // One more than asked tells whether there are more, without a second query.
    let mut rows = app
        .store
        .events_after(&auth.account.id, q.since, limit + 1)
        .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = rows.last().map_or(q.since, |r| r.seq);
    let events = rows.iter().map(to_event).collect::<Result<Vec<_>>>()?;
    Ok(Json(SyncPage {
        events,
        next,
        more,
        head: head.max(next),
    }))
}

/// Live event stream (WebSocket)
///
/// Upgrades to a WebSocket that first sends every event after `since`, then live ones: one
/// JSON text frame (`Event`) per event. The service pings every 20 s. Close codes: 4000 too
/// slow (resume from your cursor), 4001 session revoked, 4002 session expired, 1001 shutting
/// down.
#[utoipa::path(get, path = "/v1/events", tag = "events", security(("bearer" = [])), params(SyncQuery),
    responses((status = 101, description = "switching to the WebSocket protocol"),
              (status = 400, description = "invalid_request", body = switchboard_protocol::ErrorBody),
              (status = 401, body = switchboard_protocol::ErrorBody)))]
pub async fn events(
    State(app): State<App>,
    auth: Auth,
    Query(q): Query<SyncQuery>,
    upgrade: std::result::Result<
        WebSocketUpgrade,
        axum::extract::ws::rejection::WebSocketUpgradeRejection,
    >,
) -> Result<Response> {
    check_since(&app, &auth.account.id, q.since).await?;
    let upgrade = upgrade.map_err(|r| {
        Error::invalid_request(format!("this endpoint is a WebSocket: {}", r.body_text()))
    })?;
    Ok(upgrade
        // Small buffers: an idle socket should cost kilobytes, not the default 128 KiB.
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .max_frame_size(CLIENT_FRAME_MAX)
        .max_message_size(CLIENT_FRAME_MAX)
        .on_upgrade(move |socket| async move {
            let session = auth.session.id.clone();
            if let Err(reason) = stream(&app, auth, q.since, socket).await {
                tracing::debug!(%session, %reason, "event stream ended");
            }
        }))
}

/// Sends frames with one flush at the end: a replay of thousands of events would otherwise
/// pay a write to the socket per event.
async fn send(
    sink: &mut futures_util::stream::SplitSink<WebSocket, WsMessage>,
    msgs: impl IntoIterator<Item = WsMessage>,
) -> std::result::Result<(), String> {
    let all = async {
        for msg in msgs {
            sink.feed(msg).await?;
        }
        sink.flush().await
    };
    match tokio::time::timeout(SEND_TIMEOUT, all).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("send failed: {e}")),
        Err(_) => Err("client too slow to read".into()),
    }
}

async fn close(
    sink: &mut futures_util::stream::SplitSink<WebSocket, WsMessage>,
    code: u16,
    reason: String,
) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = send(sink, [WsMessage::Close(Some(frame))]).await;
}

async fn stream(
    app: &App,
    auth: Auth,
    since: i64,
    socket: WebSocket,
) -> std::result::Result<(), String> {
    let account = auth.account.id.clone();
    let session = auth.session.id.clone();
    let (mut sink, mut incoming) = socket.split();
    let mut cursor = since;

    // Sends everything in the database after the cursor; false once this session is revoked.
    macro_rules! catch_up {
        () => {{
            let mut open = true;
            loop {
                let rows = app
                    .store
                    .events_after(&account, cursor, PAGE)
                    .await
                    .map_err(|e| e.to_string())?;
                let mut page = Vec::with_capacity(rows.len());
                for row in &rows {
                    let ev = LiveEvent::from_row(row).map_err(|e| e.0.message)?;
                    page.push(WsMessage::Text(ev.json.into()));
                    cursor = row.seq;
                    if ev.revoked_session.as_deref() == Some(session.as_str()) {
                        open = false;
                        break;
                    }
                }
                send(&mut sink, page).await?;
                if !open || (rows.len() as i64) < PAGE {
                    break;
                }
            }
            open
        }};
    }

    // Replay first, then subscribe, then replay what committed in between: from here on
    // every event is either in the queue or already sent.
    if !catch_up!() {
        close(
            &mut sink,
            close_code::SESSION_REVOKED,
            "session revoked".into(),
        )
        .await;
        return Ok(());
    }
    let mut sub = app.hub.subscribe(&account);
    if !catch_up!() {
        close(
            &mut sink,
            close_code::SESSION_REVOKED,
            "session revoked".into(),
        )
        .await;
        return Ok(());
    }

    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut heard = tokio::time::Instant::now();
    let expires_in = Duration::from_millis(
        u64::try_from(auth.session.expires_at - app.clock.now_ms()).unwrap_or(0),
    );
    let expiry = tokio::time::sleep(expires_in);
    tokio::pin!(expiry);
    loop {
        tokio::select! {
            live = sub.rx.recv() => {
                let ev = match live {
                    None => {
                        close(&mut sink, close_code::TOO_SLOW, format!("too slow; resume with since={cursor}")).await;
                        return Ok(());
                    }
                    Some(Live::Wake(head)) => {
                        if head > cursor && !catch_up!() {
                            close(&mut sink, close_code::SESSION_REVOKED, "session revoked".into()).await;
                            return Ok(());
                        }
                        continue;
                    }
                    Some(Live::Event(ev)) => ev,
                };
                if ev.seq <= cursor {
                    continue;
                }
                if ev.seq > cursor + 1 && !catch_up!() {
                    close(&mut sink, close_code::SESSION_REVOKED, "session revoked".into()).await;
                    return Ok(());
                }
                if ev.seq == cursor + 1 {
                    send(&mut sink, [WsMessage::Text(ev.json.clone().into())]).await?;
                    cursor = ev.seq;
                    if ev.revoked_session.as_deref() == Some(session.as_str()) {
                        close(&mut sink, close_code::SESSION_REVOKED, "session revoked".into()).await;
                        return Ok(());
                    }
                }
            }
            frame = incoming.next() => {
                match frame {
                    None | Some(Err(_)) | Some(Ok(WsMessage::Close(_))) => return Ok(()),
                    Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => heard = tokio::time::Instant::now(),
                    Some(Ok(WsMessage::Text(_) | WsMessage::Binary(_))) => {
                        heard = tokio::time::Instant::now();
                        let reply = ErrorBody {
                            error: ApiError {
                                code: ErrorCode::InvalidRequest,
                                message: "this stream only sends; to resume, reconnect with ?since=<last seq>".into(),
                                public_ids: None,
                            },
                        };
                        let reply = serde_json::to_string(&reply).map_err(|e| e.to_string())?;
                        send(&mut sink, [WsMessage::Text(reply.into())]).await?;
                    }
                }
            }
            _ = ping.tick() => {
                if heard.elapsed() > SILENT_LIMIT {
                    return Err("client silent for too long".into());
                }
                send(&mut sink, [WsMessage::Ping(Vec::new().into())]).await?;
            }
            () = &mut expiry => {
                close(&mut sink, close_code::SESSION_EXPIRED, "session expired; sign in again".into()).await;
                return Ok(());
            }
            () = app.shutdown.cancelled() => {
                close(&mut sink, close_code::SHUTTING_DOWN, "service shutting down; reconnect shortly".into()).await;
                return Ok(());
            }
        }
    }
}
