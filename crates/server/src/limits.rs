//! Per-account budgets (`[limits]`): how much one account may make the service do for it in
//! a while, so that one account (or a stolen session) cannot flood other people's logs and
//! devices. Each budget is a sliding window in the store, decided under the account's key, so
//! it holds across nodes and under concurrent requests: of N+10 requests racing for a budget
//! of N, exactly N get through.

use switchboard_protocol::ErrorCode;

use crate::error::{Error, Result};
use crate::state::App;
use switchboard_service::clock::{Millis, secs_until};
use switchboard_store::{Charge, RateTake};

const MINUTE_MS: Millis = 60 * 1000;
const DAY_MS: Millis = 24 * 3600 * 1000;

/// What a budget limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// Messages sent (`limits.messages_per_minute`).
    Messages,
    /// Contact requests sent (`limits.contact_requests_per_day`).
    ContactRequests,
    /// Deliveries to group members, one per member's log (`limits.group_fanout_per_minute`).
    GroupFanout,
    /// Requests made with one official account's API key (`official.api_per_minute`); the
    /// key, not an account, is what is charged.
    OfficialApi,
}

impl Budget {
    /// The store's scope, the configured limit, the window and what is counted.
    fn rule(self, app: &App) -> (&'static str, u32, Millis, &'static str) {
        let l = &app.config.limits;
        match self {
            Budget::Messages => (
                "messages",
                l.messages_per_minute,
                MINUTE_MS,
                "messages a minute",
            ),
            Budget::ContactRequests => (
                "contact_requests",
                l.contact_requests_per_day,
                DAY_MS,
                "contact requests a day",
            ),
            Budget::GroupFanout => (
                "group_fanout",
                l.group_fanout_per_minute,
                MINUTE_MS,
                "deliveries to group members a minute",
            ),
            Budget::OfficialApi => (
                "official_api",
                app.config.official.api_per_minute,
                MINUTE_MS,
                "requests a minute",
            ),
        }
    }
}

/// A charge of `units` against `account`'s `budget`, for [`take`] or for a write that takes
/// it in its own transaction ([`Store::message_insert`](switchboard_store::Store::message_insert)).
pub fn charge(app: &App, account_id: &str, budget: Budget, units: usize) -> Charge {
    let (scope, limit, window, _) = budget.rule(app);
    let now = app.clock.now_ms();
    Charge {
        scope,
        key: account_id.to_string(),
        units: u32::try_from(units).unwrap_or(u32::MAX),
        limit: u64::from(limit),
        now,
        since: now - window,
    }
}

/// Takes `units` of `account`'s `budget`, or answers 429 `rate_limited` with `Retry-After`
/// (nothing taken).
pub async fn take(app: &App, account_id: &str, budget: Budget, units: usize) -> Result<()> {
    let c = charge(app, account_id, budget, units);
    let took = app.store.rate_take(&c).await?;
    if took.taken {
        return Ok(());
    }
    Err(refused(app, budget, &c, took))
}

/// The 429 for a charge of `budget` that did not fit, with when to try again.
pub fn refused(app: &App, budget: Budget, c: &Charge, took: RateTake) -> Error {
    let (_, limit, window, what) = budget.rule(app);
    let who = match budget {
        Budget::OfficialApi => "an API key",
        _ => "an account",
    };
    let units = c.units;
    app.metrics.count("rate_limited_total");
    let window_secs = u64::try_from(window / 1000).unwrap_or(60);
    if units > limit {
        return Error::new(
            ErrorCode::RateLimited,
            format!("this is {units} at once, and {who} may cause at most {limit} {what}"),
        )
        .retry_after(window_secs);
    }
    // When the oldest units leave the window; more may have to leave for a large request, and
    // the answer to the retry says so.
    let retry = took
        .oldest
        .map_or(window_secs, |t| secs_until(t + window, c.now));
    Error::new(
        ErrorCode::RateLimited,
        format!("{who} may cause at most {limit} {what}; try again in {retry} s"),
    )
    .retry_after(retry)
}
