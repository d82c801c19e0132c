//! The service's API as the core uses it: typed requests, typed errors; HTTPS and the WSS
//! event stream through one rustls config (see `tls`).

use serde::Serialize;
use serde::de::DeserializeOwned;
use switchboard_protocol::ErrorBody;
use switchboard_protocol::auth::{SessionCreated, SignInRequest};
use switchboard_protocol::messaging::{Message, SendMessage};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::error::{CoreError, Result};
use crate::stats::Stats;
use crate::tls::{TlsConfig, Transport};
use crate::vault::Token;

/// A profile's live event stream (`ws://` to loopback, else `wss://`).
pub type EventStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    /// The host (and port) as the URL names it, for messages about this service.
    host: String,
    transport: Transport,
    tls: TlsConfig,
    /// The traffic of every call made through this client (and its clones).
    stats: std::sync::Arc<Stats>,
}

impl Client {
    /// A client of the service at `base`, verifying TLS with `tls`. Plain http to a host
    /// other than this computer is refused unless `allow_insecure_http` (the profile's
    /// explicit choice): nothing is sent before that check.
    pub fn new(base: &str, tls: &TlsConfig, allow_insecure_http: bool) -> Result<Self> {
        let transport = crate::tls::check_service_url(base, allow_insecure_http)?;
        let url =
            reqwest::Url::parse(base.trim()).map_err(|e| CoreError::Invalid(e.to_string()))?;
        // As parsed: the scheme and host in lower case, so `events_url` finds "http" in it.
        let base = url.as_str().trim_end_matches('/');
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(20))
            // The same rustls config as the event stream: one set of roots, one verifier.
            .use_preconfigured_tls(rustls::ClientConfig::clone(tls.rustls()))
            .build()
            .map_err(|e| CoreError::Network(e.to_string()))?;
        Ok(Self {
            http,
            base: base.to_string(),
            host: crate::tls::authority(&url),
            transport,
            tls: tls.clone(),
            stats: std::sync::Arc::default(),
        })
    }

    /// How this client reaches its service.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// A failed connection whose cause is the service's certificate, as its own error naming
    /// the host: retrying will not fix it, and "offline" would hide what is wrong.
    fn certificate_error(&self, e: &(dyn std::error::Error + 'static)) -> Option<CoreError> {
        crate::tls::certificate_problem(e).map(|reason| CoreError::certificate(&self.host, &reason))
    }

    /// Opens the event stream after `since`. `None`: the service refused the token (the
    /// session ended).
    pub async fn connect_events(&self, since: i64, token: &Token) -> Result<Option<EventStream>> {
        let mut req = self
            .events_url(since)
            .into_client_request()
            .map_err(|e| CoreError::Network(e.to_string()))?;
        let auth = format!("Bearer {}", token.expose())
            .parse()
            .map_err(|_| CoreError::Invalid("token is not a header value".into()))?;
        req.headers_mut().insert("authorization", auth);
        let connector = tokio_tungstenite::Connector::Rustls(self.tls.rustls().clone());
        match tokio_tungstenite::connect_async_tls_with_config(req, None, false, Some(connector))
            .await
        {
            Ok((ws, _)) => Ok(Some(ws)),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) if resp.status() == 401 => {
                Ok(None)
            }
            Err(e) => Err(self
                .certificate_error(&e)
                .unwrap_or_else(|| CoreError::Network(e.to_string()))),
        }
    }

    pub fn stats(&self) -> &std::sync::Arc<Stats> {
        &self.stats
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T> {
        let bytes = self.exchange(req).await?;
        let body: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
        serde_json::from_slice(body)
            .map_err(|e| CoreError::Network(format!("unexpected answer: {e}")))
    }

    /// Sends `req` and returns a success's body as bytes, or the service's typed error; the
    /// traffic is counted either way.
    async fn exchange(&self, req: reqwest::RequestBuilder) -> Result<Vec<u8>> {
        let (http, req) = req.build_split();
        let req = req.map_err(|e| CoreError::Invalid(e.without_url().to_string()))?;
        self.stats
            .sent(req.body().and_then(|b| b.as_bytes()).map_or(0, <[u8]>::len));
        let resp = http.execute(req).await.map_err(|e| {
            self.certificate_error(&e)
                .unwrap_or_else(|| CoreError::Network(e.without_url().to_string()))
        })?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| CoreError::Network(e.to_string()))?;
        self.stats.received(bytes.len());
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(e) => Err(CoreError::Api(e.error)),
            Err(_) => Err(CoreError::Network(format!("the service answered {status}"))),
        }
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        token: Option<&Token>,
        body: &B,
    ) -> Result<T> {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t.expose());
        }
        self.send(req).await
    }

    pub async fn sign_in(
        &self,
        login: &str,
        password: &str,
        totp_code: Option<&str>,
        device_name: &str,
    ) -> Result<(SessionCreated, Token)> {
        let req = SignInRequest {
            login: login.to_string(),
            password: password.to_string(),
            device_name: device_name.to_string(),
            totp_code: totp_code.map(str::to_string),
        };
        let created: SessionCreated = self.post("/v1/sessions", None, &req).await?;
        let token = Token::new(created.token.clone());
        Ok((created, token))
    }

    pub async fn sign_out(&self, token: &Token) -> Result<()> {
        let req = self
            .http
            .delete(format!("{}/v1/sessions/current", self.base))
            .bearer_auth(token.expose());
        self.send::<serde_json::Value>(req).await.map(|_| ())
    }

    pub async fn send_message(
        &self,
        token: &Token,
        client_id: &str,
        to: &str,
        body: &str,
        media: &[String],
    ) -> Result<Message> {
        let req = SendMessage {
            client_id: client_id.to_string(),
            to: to.to_string(),
            body: body.to_string(),
            media: media.to_vec(),
            from_official: None,
        };
        self.post("/v1/messages", Some(token), &req).await
    }

    /// Uploads an image (`POST /v1/media`, its raw bytes; the service reads the type from them).
    pub async fn upload_media(
        &self,
        token: &Token,
        mime: &str,
        bytes: Vec<u8>,
    ) -> Result<switchboard_protocol::moments::MediaUploaded> {
        let req = self
            .http
            .post(format!("{}/v1/media", self.base))
            .bearer_auth(token.expose())
            .header(reqwest::header::CONTENT_TYPE, mime)
            .body(bytes);
        self.send(req).await
    }

    /// An image's bytes (`GET /v1/media/{id}`), if this account may see it.
    pub async fn fetch_media(&self, token: &Token, media_id: &str) -> Result<Vec<u8>> {
        let req = self
            .http
            .get(format!("{}/v1/media/{media_id}", self.base))
            .bearer_auth(token.expose());
        self.exchange(req).await
    }

    /// `DELETE` with a bearer token.
    pub async fn delete_as(&self, token: &Token, path: &str) -> Result<()> {
        let req = self
            .http
            .delete(format!("{}{path}", self.base))
            .bearer_auth(token.expose());
        self.send::<serde_json::Value>(req).await.map(|_| ())
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, token: Option<&Token>) -> Result<T> {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t.expose());
        }
        self.send(req).await
    }

    /// `GET` with a bearer token: the calls a signed-in profile makes.
    pub async fn get_as<T: DeserializeOwned>(&self, token: &Token, path: &str) -> Result<T> {
        self.get(path, Some(token)).await
    }

    /// `POST` with a bearer token.
    pub async fn post_as<B: Serialize, T: DeserializeOwned>(
        &self,
        token: &Token,
        path: &str,
        body: &B,
    ) -> Result<T> {
        self.post(path, Some(token), body).await
    }

    /// `POST` without a session: SMS codes and registration.
    pub async fn post_anonymous<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        self.post(path, None, body).await
    }

    /// The newest SMS code the service sent to `phone` for `purpose`, from its development
    /// outbox: `None` when it has none, an error (404) when the service is not in dev mode.
    pub async fn dev_sms_code(
        &self,
        phone: &str,
        purpose: switchboard_protocol::auth::SmsPurpose,
    ) -> Result<Option<String>> {
        let mut url = reqwest::Url::parse(&format!("{}/v1/dev/sms-outbox", self.base))
            .map_err(|e| CoreError::Invalid(e.to_string()))?;
        url.query_pairs_mut().append_pair("phone", phone);
        let outbox: switchboard_protocol::auth::DevSmsOutbox =
            self.send(self.http.get(url)).await?;
        Ok(outbox
            .messages
            .into_iter()
            .rev()
            .find(|m| m.purpose == purpose)
            .map(|m| m.code))
    }

    /// The account's newest event sequence number.
    pub async fn head(&self, token: &Token) -> Result<i64> {
        let req = self
            .http
            .get(format!("{}/v1/sync?since=0&limit=1", self.base))
            .bearer_auth(token.expose());
        let page: switchboard_protocol::events::SyncPage = self.send(req).await?;
        Ok(page.head)
    }

    /// The WebSocket URL of the event stream after `since`.
    pub fn events_url(&self, since: i64) -> String {
        let ws = self.base.replacen("http", "ws", 1);
        format!("{ws}/v1/events?since={since}")
    }
}
