//! The funding port: where a top-up's money comes from.
//!
//! Which source serves is decided once, from the configuration ([`from_config`]): the
//! operator's provider when `funding.webhook_url` is set (crediting what it confirms it took); the sandbox, which pays every charge,
//! only in development mode; otherwise none, and every top-up is refused as unavailable. A
//! production service never mints money because nobody configured where it comes from.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::config::{Funding, Secret};
use crate::webhook::Webhook;

/// Why a charge did not happen. Either way nothing was taken, so nothing may be credited.
#[derive(Debug, thiserror::Error)]
pub enum FundingError {
    /// No source is configured, or it could not be reached or answered nonsense: the payer
    /// can try again later (503 `funding_unavailable`).
    #[error("funding unavailable: {0}")]
    Unavailable(String),
    /// The provider refused this charge (402 `funding_failed`).
    #[error("funding refused: {0}")]
    Refused(String),
}

/// Where top-up money comes from. Real payment providers implement this.
#[async_trait]
pub trait FundingSource: Send + Sync + 'static {
    /// Takes up to `amount` fen from the account holder's payment method and says how much it
    /// took (`1..=amount`: what is credited); `key` makes retries safe (a provider charges one
    /// key once, however often it is asked).
    async fn charge(&self, account_id: &str, amount: i64, key: &str) -> Result<i64, FundingError>;
}

/// Accepts every charge: for development and tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct SandboxFunding;

#[async_trait]
impl FundingSource for SandboxFunding {
    async fn charge(&self, _: &str, amount: i64, _: &str) -> Result<i64, FundingError> {
        Ok(amount)
    }
}

/// No source configured: every charge is refused as unavailable.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoFunding;

#[async_trait]
impl FundingSource for NoFunding {
    async fn charge(&self, _: &str, _: i64, _: &str) -> Result<i64, FundingError> {
        Err(FundingError::Unavailable(
            "no funding source is configured (funding.webhook_url)".into(),
        ))
    }
}

/// What the service POSTs to the provider for one charge.
#[derive(Debug, Serialize, Deserialize)]
pub struct ChargeRequest {
    pub account_id: String,
    /// Fen.
    pub amount: i64,
    pub currency: String,
    /// The top-up's idempotency key: the provider charges one key once.
    pub idempotency_key: String,
}

/// The provider's answer: how much it charged, which is what is credited (a card with less
/// left may be charged less than asked; nothing, or more than asked, is no charge).
#[derive(Debug, Serialize, Deserialize)]
pub struct ChargeConfirmed {
    pub charged: i64,
}

/// The header carrying the body's HMAC-SHA256 under `funding.webhook_secret`.
pub const SIGNATURE_HEADER: &str = "x-switchboard-signature";

/// How long the provider has to answer a charge.
pub const CHARGE_TIMEOUT: Duration = Duration::from_secs(10);

/// `sha256=<hex>` of `body` under `secret`: what [`SIGNATURE_HEADER`] carries.
pub fn signature(secret: &Secret, body: &[u8]) -> Result<String, FundingError> {
    crate::mac::hmac_sha256_hex(secret.expose().as_bytes(), body)
        .map(|mac| format!("sha256={mac}"))
        .map_err(|e| FundingError::Unavailable(format!("signing the charge: {e}")))
}

/// The operator's payment provider, over a signed webhook: credits only what it confirms.
pub struct WebhookFunding {
    hook: Webhook,
    secret: Secret,
}

impl WebhookFunding {
    pub fn new(config: &Funding) -> Result<Self, String> {
        Ok(Self {
            hook: Webhook::new(
                config.webhook_url.clone(),
                CHARGE_TIMEOUT,
                "the funding webhook",
            )?,
            secret: config.webhook_secret.clone(),
        })
    }
}

#[async_trait]
impl FundingSource for WebhookFunding {
    async fn charge(&self, account_id: &str, amount: i64, key: &str) -> Result<i64, FundingError> {
        let body = serde_json::to_vec(&ChargeRequest {
            account_id: account_id.to_string(),
            amount,
            currency: "CNY".into(),
            idempotency_key: key.to_string(),
        })
        .map_err(|e| FundingError::Unavailable(format!("encoding the charge: {e}")))?;
        let request = self
            .hook
            .request()
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature(&self.secret, &body)?)
            .body(body);
        let response = self
            .hook
            .post(request)
            .await
            .map_err(FundingError::Unavailable)?;
        let status = response.status();
        if status.is_server_error() {
            return Err(FundingError::Unavailable(format!(
                "the provider answered {status}"
            )));
        }
        if !status.is_success() {
            return Err(FundingError::Refused(format!(
                "the provider answered {status}"
            )));
        }
        let confirmed: ChargeConfirmed = response.json().await.map_err(|e| {
            FundingError::Unavailable(format!(
                "the provider's answer is not a confirmation: {}",
                e.without_url()
            ))
        })?;
        if !(1..=amount).contains(&confirmed.charged) {
            return Err(FundingError::Refused(format!(
                "the provider confirmed {} fen of the {amount} asked",
                confirmed.charged
            )));
        }
        Ok(confirmed.charged)
    }
}

/// The source the configuration names (see the module's comment).
pub fn from_config(dev: bool, config: &Funding) -> Result<Arc<dyn FundingSource>, String> {
    if !config.webhook_url.is_empty() {
        Ok(Arc::new(WebhookFunding::new(config)?))
    } else if dev {
        Ok(Arc::new(SandboxFunding))
    } else {
        Ok(Arc::new(NoFunding))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[tokio::test]
    async fn outside_development_an_unconfigured_service_pays_nothing() {
        let source = from_config(false, &Funding::default()).unwrap();
        let refused = source.charge("acc_1", 100, "k").await.unwrap_err();
        assert!(
            matches!(refused, FundingError::Unavailable(_)),
            "no provider, no money: {refused:?}"
        );
        let sandbox = from_config(true, &Funding::default()).unwrap();
        let paid = sandbox
            .charge("acc_1", 100, "k")
            .await
            .expect("the sandbox pays in development mode");
        assert_eq!(paid, 100);
    }

    #[test]
    fn the_signature_is_the_bodys_mac_under_the_secret() {
        let secret = Secret::new("a".repeat(32));
        let one = signature(&secret, b"{\"amount\":1}").unwrap();
        assert!(one.starts_with("sha256=") && one.len() == 7 + 64, "{one}");
        assert_ne!(
            one,
            signature(&secret, b"{\"amount\":2}").unwrap(),
            "the body is signed"
        );
        assert_ne!(
            one,
            signature(&Secret::new("b".repeat(32)), b"{\"amount\":1}").unwrap(),
            "so is the key"
        );
    }
}
