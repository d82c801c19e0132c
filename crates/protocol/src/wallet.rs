//! The wallet (SPEC §1.4): each account's own, in CNY, counted in integer fen.
//!
//! Amounts in requests are taken as raw JSON and checked by the service, so that `0`, `-5`,
//! `1.5`, `"100"` and `1e30` all get the same clear `invalid_amount` instead of a parser error.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::Timestamp;

/// `GET /v1/wallet`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Wallet {
    /// In fen (0.01 CNY).
    pub balance: i64,
    pub currency: String,
    /// Real-name verification done (needed to top up, send and claim).
    pub verified: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Transaction {
    pub id: String,
    /// `topup`, `transfer`, `red_envelope`, `red_envelope_claim`, `red_envelope_refund`.
    pub kind: String,
    /// Signed, in fen: + credit, − debit.
    pub amount: i64,
    /// The other account's public ID, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterparty: Option<String>,
    pub note: String,
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
}

/// `GET /v1/wallet/transactions?before=&limit=`
#[derive(Debug, Clone, Serialize, Deserialize, IntoParams)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct TransactionQuery {
    /// The `next_before` of the previous page; absent for the newest.
    #[serde(default)]
    pub before: Option<i64>,
    /// 1–200, default 50.
    #[serde(default)]
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TransactionPage {
    /// Newest first.
    pub transactions: Vec<Transaction>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

/// `POST /v1/wallet/topups`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct TopUp {
    /// Fen, a whole number > 0.
    #[schema(value_type = i64)]
    pub amount: serde_json::Value,
    pub idempotency_key: String,
}

/// `POST /v1/wallet/transfers`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    /// A contact's public ID.
    pub to: String,
    #[schema(value_type = i64)]
    pub amount: serde_json::Value,
    #[serde(default)]
    pub note: String,
    pub idempotency_key: String,
}

/// The answer to a top-up or a transfer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct MoneyMoved {
    pub transaction_id: String,
    pub amount: i64,
    /// The caller's balance right after.
    pub balance: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum EnvelopeMode {
    /// Random shares.
    Lucky,
    /// The same share each (the remainder goes to the first shares, one fen each).
    Equal,
}

/// `POST /v1/red-envelopes`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct NewRedEnvelope {
    /// A contact's public ID (count 1) or a group id (count 1–100).
    pub to: String,
    /// Fen, at most 20000 (200.00 CNY).
    #[schema(value_type = i64)]
    pub total: serde_json::Value,
    pub count: u32,
    pub mode: EnvelopeMode,
    #[serde(default)]
    pub greeting: String,
    pub idempotency_key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct EnvelopeClaim {
    pub public_id: String,
    pub amount: i64,
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
}

/// A red envelope; also the data of `red_envelope.new` events (without claims).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RedEnvelope {
    pub id: String,
    pub from: String,
    pub to: String,
    pub total: i64,
    pub count: u32,
    pub mode: EnvelopeMode,
    pub greeting: String,
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Unclaimed money goes back to the sender then.
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    pub claims: Vec<EnvelopeClaim>,
    /// Returned to the sender at expiry (0 until then, and when all was claimed).
    pub refunded: i64,
}

/// `POST /v1/red-envelopes/{id}/claim`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Claimed {
    pub amount: i64,
}

/// Data of `wallet.credit` and `wallet.debit` events: one movement of this account's money.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct WalletMovement {
    pub transaction_id: String,
    /// As [`Transaction::kind`]: `topup`, `transfer`, `red_envelope`, …
    pub kind: String,
    /// Signed, in fen: + credit, − debit.
    pub amount: i64,
    /// This account's balance right after, in fen.
    pub balance: Option<i64>,
    /// The other account's public ID (or, for a red envelope, its target); `null` when there
    /// is none.
    pub counterparty: Option<String>,
    pub note: String,
}

/// Data of `red_envelope.claimed` events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct EnvelopeClaimed {
    pub envelope_id: String,
    /// Who claimed.
    pub public_id: String,
    /// Their share, in fen.
    pub amount: i64,
}

/// Data of `red_envelope.refunded` events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct EnvelopeRefunded {
    pub envelope_id: String,
    /// What went back to the sender, in fen (0 when every share was claimed).
    pub amount: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_taken_raw_so_the_service_can_judge_them() {
        let t: TopUp =
            serde_json::from_str(r#"{"amount": "100", "idempotency_key": "k"}"#).unwrap();
        assert_eq!(t.amount, serde_json::json!("100"));
    }
}
