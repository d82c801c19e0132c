//! The SMS gateway port: what delivers a code to a phone (a webhook to the operator's
//! provider, or the console in development), and the deliveries in flight, owned so that
//! none is spawned and forgotten. Issuing and checking codes is the domain's part, above.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use switchboard_protocol::auth::{DevSms, SmsPurpose};
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;

use crate::clock::{Millis, to_datetime};
use crate::webhook::Webhook;

/// One message for the gateway to deliver.
#[derive(Clone)]
pub struct OutgoingSms {
    pub phone: String,
    pub purpose: SmsPurpose,
    pub code: String,
    pub sent_at: Millis,
}

#[async_trait]
pub trait SmsGateway: Send + Sync + 'static {
    /// Delivers the message or says why not (the reason is logged, never shown to clients).
    async fn send(&self, sms: &OutgoingSms) -> Result<(), String>;
}

/// Development only: prints each code on stdout and keeps the recent ones for the dev outbox
/// endpoint. The codes never go to the log.
#[derive(Default)]
pub struct ConsoleGateway {
    outbox: Mutex<VecDeque<DevSms>>,
}

/// The dev outbox keeps this many recent messages.
const OUTBOX_KEEP: usize = 1000;

impl ConsoleGateway {
    /// Messages sent to `phone` (canonical E.164), oldest first.
    pub fn outbox(&self, phone: &str) -> Vec<DevSms> {
        let outbox = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
        outbox
            .iter()
            .filter(|m| m.phone == phone)
            .cloned()
            .collect()
    }
}

#[async_trait]
impl SmsGateway for ConsoleGateway {
    async fn send(&self, sms: &OutgoingSms) -> Result<(), String> {
        println!(
            "[dev sms] {} {}: {}",
            sms.phone,
            sms.purpose.as_str(),
            sms.code
        );
        let mut outbox = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
        if outbox.len() == OUTBOX_KEEP {
            outbox.pop_front();
        }
        outbox.push_back(DevSms {
            phone: sms.phone.clone(),
            purpose: sms.purpose,
            code: sms.code.clone(),
            sent_at: to_datetime(sms.sent_at),
        });
        Ok(())
    }
}

/// POSTs `{phone, purpose, code, sent_at}` as JSON to a provider's URL; any 2xx is delivery.
/// The URL is a secret: see [`Webhook`].
pub struct WebhookGateway {
    hook: Webhook,
}

/// How long the provider has to take a message.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

impl WebhookGateway {
    pub fn new(url: crate::config::Secret) -> Result<Self, String> {
        Ok(Self {
            hook: Webhook::new(url, WEBHOOK_TIMEOUT, "the SMS webhook")?,
        })
    }
}

#[async_trait]
impl SmsGateway for WebhookGateway {
    async fn send(&self, sms: &OutgoingSms) -> Result<(), String> {
        let body = DevSms {
            phone: sms.phone.clone(),
            purpose: sms.purpose,
            code: sms.code.clone(),
            sent_at: to_datetime(sms.sent_at),
        };
        let response = self.hook.post(self.hook.request().json(&body)).await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("webhook answered {}", response.status()))
        }
    }
}

/// The SMS deliveries in flight: every one a task owned here, never spawned and forgotten.
/// Dropping this cancels them; [`drain`](Self::drain) lets them finish first.
pub struct Deliveries {
    tasks: TaskTracker,
    cancel: CancellationToken,
    _cancel_on_drop: DropGuard,
}

impl Default for Deliveries {
    fn default() -> Self {
        let cancel = CancellationToken::new();
        Self {
            tasks: TaskTracker::new(),
            _cancel_on_drop: cancel.clone().drop_guard(),
            cancel,
        }
    }
}

impl Deliveries {
    /// Runs `delivery` in the background until it ends or the service stops.
    pub fn spawn<F>(&self, delivery: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let cancel = self.cancel.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                () = delivery => {}
                () = cancel.cancelled() => {
                    tracing::warn!("an SMS delivery was cut short: the service is stopping");
                }
            }
        });
    }

    /// Deliveries still in flight.
    pub fn in_flight(&self) -> usize {
        self.tasks.len()
    }

    /// Waits (at most `limit`) until no delivery is in flight. The dev outbox waits so, so
    /// that reading it right after a request finds the code, as a phone would.
    pub async fn settled(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while !self.tasks.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// When the service stops: deliveries in flight get `grace` to finish, the rest are
    /// cancelled; returns once none is left.
    pub async fn drain(&self, grace: Duration) {
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.tasks.len(),
                "SMS deliveries still running at shutdown; cancelling them"
            );
            self.cancel.cancel();
            self.tasks.wait().await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn sms() -> OutgoingSms {
        OutgoingSms {
            phone: "+8613800138000".into(),
            purpose: SmsPurpose::Login,
            code: "123456".into(),
            sent_at: 0,
        }
    }

    /// Providers put their key in the URL; a failed delivery is logged with its reason, so
    /// the reason must carry no part of the URL, whatever went wrong.
    #[tokio::test]
    async fn a_failed_delivery_never_names_the_webhook_url() {
        // Nothing listens on port 1 of loopback: the connection is refused.
        let url =
            "http://user:hunter2-password@127.0.0.1:1/v2/send/acct-777?api_key=provider-key-123";
        let gw = WebhookGateway::new(url.into()).unwrap();
        let reason = gw.send(&sms()).await.unwrap_err();
        assert!(reason.starts_with("webhook could not connect"), "{reason}");
        for secret in [
            "provider-key-123",
            "hunter2-password",
            "acct-777",
            "/v2/send",
            "127.0.0.1:1",
        ] {
            assert!(!reason.contains(secret), "{secret} leaked: {reason}");
        }

        // A URL the client cannot even use says so, and no more.
        let gw = WebhookGateway::new("not a url provider-key-123".into()).unwrap();
        let reason = gw.send(&sms()).await.unwrap_err();
        assert!(!reason.contains("provider-key-123"), "{reason}");
    }
}
