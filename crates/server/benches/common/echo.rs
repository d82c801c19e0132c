//! The reference for the stream bench: the same load through a plain `axum` + tungstenite
//! service that stores nothing. It answers the three routes the load uses — `POST
//! /v1/messages`, `GET /v1/events` (a WebSocket) and `GET /v1/sync?limit=1` (the head, always
//! 0) — with the same request and frame shapes and sizes as the service: the request is parsed
//! into the protocol's `SendMessage`, the answer is the protocol's `Message`, and the frame is
//! the protocol's `Event` serialised once. A bearer token is the account's public ID.
//!
//! What is left is what any service pays for HTTP, JSON and WebSockets on this machine, so
//! `service − echo` in the same run is what storage, authentication and the rules cost.
//!
//! It runs as its own process (the bench binary again, with [`ECHO_ENV`] set), so its CPU is
//! measured alone, like the service's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::ws::{Message as WsMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Json, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::{SinkExt, StreamExt};
use switchboard_protocol::events::{Event, EventBody};
use switchboard_protocol::messaging::{Message, SendMessage};
use tokio::sync::mpsc;

/// Set on the bench binary's own process to make it the echo service.
pub const ECHO_ENV: &str = "SWITCHBOARD_BENCH_ECHO";

#[derive(Clone, Default)]
struct Echo {
    /// Each account's open sockets.
    sockets: Arc<Mutex<HashMap<String, Vec<mpsc::UnboundedSender<Utf8Bytes>>>>>,
    seq: Arc<AtomicI64>,
}

fn caller(headers: &HeaderMap) -> Option<String> {
    headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::to_string)
}

async fn send(
    State(echo): State<Echo>,
    headers: HeaderMap,
    Json(req): Json<SendMessage>,
) -> Response {
    let Some(from) = caller(&headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let now = time::OffsetDateTime::now_utc();
    let message = Message {
        id: format!("m_{}", uuid::Uuid::new_v4().simple()),
        client_id: req.client_id,
        from_display_name: from.clone(),
        from,
        to: req.to,
        body: req.body,
        media: req.media,
        sent_at: now,
    };
    let event = Event {
        seq: echo.seq.fetch_add(1, Ordering::Relaxed) + 1,
        at: now,
        body: EventBody::MessageNew(message.clone()),
    };
    let Ok(frame) = serde_json::to_string(&event) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let frame = Utf8Bytes::from(frame);
    if let Some(sockets) = echo.sockets.lock().unwrap().get_mut(&message.to) {
        sockets.retain(|s| s.send(frame.clone()).is_ok());
    }
    (StatusCode::CREATED, Json(message)).into_response()
}

async fn events(State(echo): State<Echo>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    let Some(account) = caller(&headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    ws.on_upgrade(move |socket| stream(echo, account, socket))
}

async fn stream(echo: Echo, account: String, socket: WebSocket) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    echo.sockets
        .lock()
        .unwrap()
        .entry(account)
        .or_default()
        .push(tx);
    let (mut sink, mut incoming) = socket.split();
    loop {
        tokio::select! {
            frame = rx.recv() => match frame {
                Some(f) => if sink.send(WsMessage::Text(f)).await.is_err() { return },
                None => return,
            },
            frame = incoming.next() => if !matches!(frame, Some(Ok(_))) { return },
        }
    }
}

/// Serves until killed; announces its address the way the service does.
pub async fn serve() {
    let app = Router::new()
        .route("/v1/messages", post(send))
        .route("/v1/events", get(events))
        .route(
            "/v1/sync",
            get(|| async { Json(serde_json::json!({"events": [], "head": 0})) }),
        )
        .with_state(Echo::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("listening on http://{}", listener.local_addr().unwrap());
    axum::serve(listener, app).await.unwrap();
}

/// The echo service as a child process of this bench binary.
pub fn start() -> super::Service {
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .env(ECHO_ENV, "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    super::announced(child, false)
}
