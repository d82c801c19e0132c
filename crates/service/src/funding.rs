//! The funding port: where a top-up's money comes from.

use async_trait::async_trait;

/// Where top-up money comes from. Real payment providers implement this.
#[async_trait]
pub trait FundingSource: Send + Sync + 'static {
    /// Takes `amount` fen from the account holder's payment method; `key` makes retries safe.
    async fn charge(
        &self,
        account_id: &str,
        amount: i64,
        key: &str,
    ) -> std::result::Result<(), String>;
}

/// Accepts every charge: for development and tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct SandboxFunding;

#[async_trait]
impl FundingSource for SandboxFunding {
    async fn charge(&self, _: &str, _: i64, _: &str) -> std::result::Result<(), String> {
        Ok(())
    }
}
