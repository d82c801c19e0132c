//! What a signed-in profile does on its service besides messaging: contacts, groups, the
//! wallet, real-name verification; and the ways a new account comes to be (SMS code,
//! registration). Each is one call to the service with the profile's own token, so the
//! desktop app and the CLI reach the service only through here.

use serde::Serialize;
use switchboard_protocol::auth::{AccountSummary, SmsCodeRequest, SmsCodeSent, SmsPurpose};
use switchboard_protocol::messaging::{
    Contact, ContactList, ContactRequestList, ContactRequestState, Group, GroupList,
    NewContactRequest, NewGroup, UserProfile,
};
use switchboard_protocol::wallet::{
    Claimed, EnvelopeMode, MoneyMoved, NewRedEnvelope, RedEnvelope, TopUp, TransactionPage,
    Transfer, Wallet,
};

use crate::client::Client;
use crate::error::{CoreError, Result};
use crate::ids::{ConversationId, PublicId};
use crate::{Engine, ProfileId, ProfileInfo, SignIn};

/// How to add a profile by registering a new account (the number's first, or its secondary).
#[derive(Clone, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Register {
    pub server: String,
    pub phone: String,
    pub sms_code: String,
    /// The public ID asked for. Left as typed: whether it may be had is the service's rule,
    /// and its `public_id_invalid` answer is what the form explains.
    pub public_id: String,
    pub password: String,
    pub display_name: String,
    /// The profile's name in the sidebar; the display name when absent.
    pub name: Option<String>,
    pub color: Option<String>,
    /// As [`SignIn::allow_insecure_http`]: plain http to a service not on this computer.
    #[serde(default)]
    pub allow_insecure_http: bool,
}

impl std::fmt::Debug for Register {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Register")
            .field("server", &self.server)
            .field("phone", &self.phone)
            .field("public_id", &self.public_id)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .finish_non_exhaustive()
    }
}

/// A red envelope to send.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Envelope {
    pub to: ConversationId,
    /// In fen.
    pub total: i64,
    pub count: u32,
    pub mode: EnvelopeMode,
    pub greeting: String,
}

/// A profile added by registering: the account the service made, and the live profile.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Registered {
    pub account: AccountSummary,
    pub profile: ProfileInfo,
}

/// A payment the user made, as the core keeps it until the service has answered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Payment {
    /// `amount` fen from the sandbox funding source.
    TopUp {
        amount: i64,
    },
    /// `amount` fen to a contact.
    Transfer {
        to: PublicId,
        amount: i64,
        note: String,
    },
    RedEnvelope {
        envelope: Envelope,
    },
}

/// A payment whose answer never came (a timeout, a cut connection, the app closed): it may
/// or may not have been made. Trying it again sends the same idempotency key, so the service
/// makes it at most once; abandoning it only forgets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PendingPayment {
    /// The idempotency key it is sent with, also what names it to `retry_payment` and
    /// `abandon_payment`.
    pub id: String,
    pub payment: Payment,
    /// Unix seconds.
    pub created_at: i64,
    /// Why the last attempt got no answer.
    pub last_error: String,
}

/// What the service answered to a payment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "kind", content = "answer", rename_all = "snake_case")]
pub enum Paid {
    /// A top-up or a transfer.
    Moved(MoneyMoved),
    Envelope(RedEnvelope),
}

/// How long after moving money from one profile a money action from another asks first.
const IDENTITY_GUARD: std::time::Duration = std::time::Duration::from_secs(10 * 60);

impl Engine {
    /// Asks the service to text a code to `phone` (registering, signing in, recovering).
    /// `allow_insecure_http`: as [`SignIn::allow_insecure_http`].
    pub async fn request_sms_code(
        &self,
        server: &str,
        phone: &str,
        purpose: SmsPurpose,
        allow_insecure_http: bool,
    ) -> Result<SmsCodeSent> {
        let req = SmsCodeRequest {
            phone: phone.to_string(),
            purpose,
        };
        Client::new(server, &self.tls, allow_insecure_http)?
            .post_anonymous("/v1/sms/codes", &req)
            .await
    }

    /// A development service's newest code for `phone` and `purpose` (its SMS outbox); an
    /// error on any other service, which has no such outbox.
    pub async fn dev_sms_code(
        &self,
        server: &str,
        phone: &str,
        purpose: SmsPurpose,
        allow_insecure_http: bool,
    ) -> Result<Option<String>> {
        Client::new(server, &self.tls, allow_insecure_http)?
            .dev_sms_code(phone, purpose)
            .await
    }

    /// Registers a new account (the number's secondary one if it has one already) and adds it
    /// as a profile, signed in and live.
    pub async fn register_profile(&self, req: Register) -> Result<Registered> {
        let client = Client::new(&req.server, &self.tls, req.allow_insecure_http)?;
        let body = switchboard_protocol::auth::RegisterRequest {
            phone: req.phone.clone(),
            sms_code: req.sms_code.clone(),
            public_id: req.public_id.clone(),
            password: req.password.clone(),
            display_name: req.display_name.clone(),
        };
        let account: AccountSummary = client.post_anonymous("/v1/accounts", &body).await?;
        let profile = self
            .add_profile(SignIn {
                server: req.server,
                login: account.public_id.clone(),
                password: req.password,
                name: req.name,
                color: req.color,
                totp_code: None,
                allow_insecure_http: req.allow_insecure_http,
            })
            .await?;
        Ok(Registered { account, profile })
    }

    pub async fn find_user(
        &self,
        profile: &ProfileId,
        public_id: &PublicId,
    ) -> Result<UserProfile> {
        let path = format!("/v1/users/{}", path_segment(public_id.as_str())?);
        self.online(profile, |c, t| async move { c.get_as(&t, &path).await })
            .await
    }

    pub async fn contacts(&self, profile: &ProfileId) -> Result<Vec<Contact>> {
        let list: ContactList = self
            .online(
                profile,
                |c, t| async move { c.get_as(&t, "/v1/contacts").await },
            )
            .await?;
        Ok(list.contacts)
    }

    pub async fn contact_requests(&self, profile: &ProfileId) -> Result<ContactRequestList> {
        self.online(profile, |c, t| async move {
            c.get_as(&t, "/v1/contacts/requests").await
        })
        .await
    }

    pub async fn request_contact(
        &self,
        profile: &ProfileId,
        public_id: &PublicId,
        note: &str,
    ) -> Result<ContactRequestState> {
        let body = NewContactRequest {
            public_id: public_id.to_string(),
            note: note.to_string(),
        };
        self.online(profile, |c, t| async move {
            c.post_as(&t, "/v1/contacts/requests", &body).await
        })
        .await
    }

    pub async fn accept_contact(&self, profile: &ProfileId, request_id: &str) -> Result<()> {
        let path = format!("/v1/contacts/requests/{}/accept", path_segment(request_id)?);
        self.online(profile, |c, t| async move {
            c.post_as::<_, serde_json::Value>(&t, &path, &serde_json::json!({}))
                .await
                .map(|_| ())
        })
        .await
    }

    pub async fn groups(&self, profile: &ProfileId) -> Result<Vec<Group>> {
        let list: GroupList = self
            .online(
                profile,
                |c, t| async move { c.get_as(&t, "/v1/groups").await },
            )
            .await?;
        Ok(list.groups)
    }

    pub async fn create_group(
        &self,
        profile: &ProfileId,
        name: &str,
        members: Vec<PublicId>,
    ) -> Result<Group> {
        let body = NewGroup {
            name: name.to_string(),
            members: members.into_iter().map(PublicId::into_string).collect(),
        };
        self.online(profile, |c, t| async move {
            c.post_as(&t, "/v1/groups", &body).await
        })
        .await
    }

    pub async fn wallet(&self, profile: &ProfileId) -> Result<Wallet> {
        self.online(
            profile,
            |c, t| async move { c.get_as(&t, "/v1/wallet").await },
        )
        .await
    }

    /// One page of the wallet's history, newest first; `before` is the previous page's
    /// `next_before`.
    pub async fn transactions(
        &self,
        profile: &ProfileId,
        before: Option<i64>,
    ) -> Result<TransactionPage> {
        let path = match before {
            Some(b) => format!("/v1/wallet/transactions?limit=50&before={b}"),
            None => "/v1/wallet/transactions?limit=50".to_string(),
        };
        self.online(profile, |c, t| async move { c.get_as(&t, &path).await })
            .await
    }

    pub async fn verify_identity(
        &self,
        profile: &ProfileId,
        legal_name: &str,
        id_number: &str,
    ) -> Result<()> {
        let body = switchboard_protocol::auth::VerifyIdentity {
            legal_name: legal_name.to_string(),
            id_number: id_number.to_string(),
        };
        self.online(profile, |c, t| async move {
            c.post_as::<_, serde_json::Value>(&t, "/v1/me/identity", &body)
                .await
                .map(|_| ())
        })
        .await
    }

    /// Adds `amount` fen from the sandbox funding source. Like every payment: if its answer
    /// is lost it is kept as pending (see [`Engine::pending_payments`]) and the call fails
    /// with [`CoreError::PaymentPending`]; the same call again is the same payment.
    pub async fn top_up(
        &self,
        profile: &ProfileId,
        amount: i64,
        confirmed: bool,
    ) -> Result<MoneyMoved> {
        match self
            .pay(profile, confirmed, Payment::TopUp { amount })
            .await?
        {
            Paid::Moved(moved) => Ok(moved),
            Paid::Envelope(_) => Err(answer_mismatch()),
        }
    }

    /// Sends `amount` fen to a contact. `confirmed`: the user has confirmed this profile after
    /// the wrong-identity guard asked (see [`CoreError::ConfirmProfile`]).
    pub async fn transfer(
        &self,
        profile: &ProfileId,
        to: &PublicId,
        amount: i64,
        note: &str,
        confirmed: bool,
    ) -> Result<MoneyMoved> {
        let payment = Payment::Transfer {
            to: to.clone(),
            amount,
            note: note.to_string(),
        };
        match self.pay(profile, confirmed, payment).await? {
            Paid::Moved(moved) => Ok(moved),
            Paid::Envelope(_) => Err(answer_mismatch()),
        }
    }

    pub async fn send_red_envelope(
        &self,
        profile: &ProfileId,
        envelope: Envelope,
        confirmed: bool,
    ) -> Result<RedEnvelope> {
        match self
            .pay(profile, confirmed, Payment::RedEnvelope { envelope })
            .await?
        {
            Paid::Envelope(envelope) => Ok(envelope),
            Paid::Moved(_) => Err(answer_mismatch()),
        }
    }

    /// The profile's payments whose answer never came, oldest first (they outlive a restart).
    pub async fn pending_payments(&self, profile: &ProfileId) -> Result<Vec<PendingPayment>> {
        self.runtime(profile).await?.store.pending_payments().await
    }

    /// Sends a pending payment again, with the idempotency key it was first sent with: if the
    /// first attempt went through, the service answers as it did then and moves nothing.
    pub async fn retry_payment(
        &self,
        profile: &ProfileId,
        payment_id: &str,
        confirmed: bool,
    ) -> Result<Paid> {
        let id = self.guard_money(profile, confirmed).await?;
        let rt = self.runtime(&id).await?;
        let pending = rt
            .store
            .pending_payments()
            .await?
            .into_iter()
            .find(|p| p.id == payment_id)
            .ok_or_else(|| {
                CoreError::Invalid(format!("no pending payment {payment_id:?} in this profile"))
            })?;
        self.send_payment(&id, &rt, &pending).await
    }

    /// Forgets a pending payment: nothing is sent, and whatever the service did with it
    /// stands (the wallet's history tells).
    pub async fn abandon_payment(&self, profile: &ProfileId, payment_id: &str) -> Result<()> {
        if self
            .runtime(profile)
            .await?
            .store
            .settle_payment(payment_id)
            .await?
        {
            Ok(())
        } else {
            Err(CoreError::Invalid(format!(
                "no pending payment {payment_id:?} in this profile"
            )))
        }
    }

    pub async fn claim_red_envelope(
        &self,
        profile: &ProfileId,
        envelope_id: &str,
    ) -> Result<Claimed> {
        let path = format!("/v1/red-envelopes/{}/claim", path_segment(envelope_id)?);
        self.online(profile, |c, t| async move {
            c.post_as(&t, &path, &serde_json::json!({})).await
        })
        .await
    }

    /// A payment the user makes: the wrong-identity guard first; then the payment is kept,
    /// with a fresh idempotency key, before it is sent. An identical payment that is still
    /// pending is not made anew but tried again with its own key: the user pressing "Pay"
    /// again after a timeout means the same payment, and must never pay twice.
    async fn pay(&self, profile: &ProfileId, confirmed: bool, payment: Payment) -> Result<Paid> {
        let id = self.guard_money(profile, confirmed).await?;
        let rt = self.runtime(&id).await?;
        let pending = {
            // Two identical calls at once (a double click) find or make one row, and so send
            // one key: the service makes that payment once and answers both.
            let _one_at_a_time = rt.payments.lock().await;
            let pending = rt.store.pending_payments().await?;
            match pending.into_iter().find(|p| p.payment == payment) {
                Some(pending) => pending,
                None => {
                    let key = uuid::Uuid::new_v4().to_string();
                    let now = time::OffsetDateTime::now_utc().unix_timestamp();
                    rt.store.add_pending_payment(&key, &payment, now).await?
                }
            }
        };
        self.send_payment(&id, &rt, &pending).await
    }

    /// Sends a kept payment under its key. An answer settles it (paid, or refused: either
    /// way the service has decided); no answer keeps it pending for a retry.
    async fn send_payment(
        &self,
        id: &ProfileId,
        rt: &crate::profile::ProfileRuntime,
        pending: &PendingPayment,
    ) -> Result<Paid> {
        let key = pending.id.clone();
        let (client, token) = (&rt.client, &rt.token);
        let answer = match &pending.payment {
            Payment::TopUp { amount } => {
                let body = TopUp {
                    amount: (*amount).into(),
                    idempotency_key: key.clone(),
                };
                client
                    .post_as(token, "/v1/wallet/topups", &body)
                    .await
                    .map(Paid::Moved)
            }
            Payment::Transfer { to, amount, note } => {
                let body = Transfer {
                    to: to.to_string(),
                    amount: (*amount).into(),
                    note: note.clone(),
                    idempotency_key: key.clone(),
                };
                client
                    .post_as(token, "/v1/wallet/transfers", &body)
                    .await
                    .map(Paid::Moved)
            }
            Payment::RedEnvelope { envelope } => {
                let body = NewRedEnvelope {
                    to: envelope.to.to_string(),
                    total: envelope.total.into(),
                    count: envelope.count,
                    mode: envelope.mode,
                    greeting: envelope.greeting.clone(),
                    idempotency_key: key.clone(),
                };
                client
                    .post_as(token, "/v1/red-envelopes", &body)
                    .await
                    .map(Paid::Envelope)
            }
        };
        match answer {
            Ok(paid) => {
                self.moved_money(id);
                if let Err(e) = rt.store.settle_payment(&key).await {
                    // Paid all the same: left pending, a retry is answered "paid" again.
                    tracing::warn!(profile = %id, code = e.code(), "a paid payment stays listed as pending");
                }
                Ok(paid)
            }
            Err(e) if answer_lost(&e) => {
                rt.store.note_payment_error(&key, &e.to_string()).await?;
                Err(CoreError::PaymentPending(e.to_string()))
            }
            Err(e) => {
                rt.store.settle_payment(&key).await?;
                Err(e)
            }
        }
    }

    /// Money moves only from the profile the user moved it from a moment ago, or after they
    /// confirmed: two accounts side by side make sending from the wrong one easy.
    async fn guard_money(&self, profile: &ProfileId, confirmed: bool) -> Result<ProfileId> {
        let record = self.registry.find(profile).await?;
        let last = self
            .last_money
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some((other, at)) = last
            && other != record.id
            && at.elapsed() < IDENTITY_GUARD
            && !confirmed
        {
            return Err(CoreError::ConfirmProfile(record.name));
        }
        Ok(record.id)
    }

    fn moved_money(&self, profile_id: &ProfileId) {
        *self.last_money.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((profile_id.clone(), std::time::Instant::now()));
    }
}

/// Whether a failed payment may have been made all the same: no answer came (the request
/// may have arrived), or the service failed inside. Any other answer is the service's
/// decision, and the payment was not made.
fn answer_lost(e: &CoreError) -> bool {
    match e {
        CoreError::Network(_) => true,
        CoreError::Api(api) => matches!(
            api.code,
            switchboard_protocol::ErrorCode::Internal
                | switchboard_protocol::ErrorCode::Unavailable
        ),
        _ => false,
    }
}

/// The service answered a payment with another kind of answer than it makes for it.
fn answer_mismatch() -> CoreError {
    CoreError::Network("unexpected answer: not the kind this payment gets".into())
}

/// A value put into a URL path: ids and public IDs never contain `/`, `?` or `#`, and one
/// that does is refused rather than sent somewhere else.
pub(crate) fn path_segment(s: &str) -> Result<&str> {
    if s.is_empty()
        || s.chars()
            .any(|c| matches!(c, '/' | '?' | '#' | '%') || c.is_whitespace())
    {
        return Err(CoreError::Invalid(format!("{s:?} is not a valid id")));
    }
    Ok(s)
}
