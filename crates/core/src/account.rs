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
use crate::{Engine, ProfileInfo, SignIn};

/// How to add a profile by registering a new account (the number's first, or its secondary).
#[derive(Clone, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Register {
    pub server: String,
    pub phone: String,
    pub sms_code: String,
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
#[derive(Debug, Clone, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Envelope {
    /// A contact's public ID or a group id.
    pub to: String,
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

    pub async fn find_user(&self, profile: &str, public_id: &str) -> Result<UserProfile> {
        let path = format!("/v1/users/{}", path_segment(public_id)?);
        self.online(profile, |c, t| async move { c.get_as(&t, &path).await })
            .await
    }

    pub async fn contacts(&self, profile: &str) -> Result<Vec<Contact>> {
        let list: ContactList = self
            .online(
                profile,
                |c, t| async move { c.get_as(&t, "/v1/contacts").await },
            )
            .await?;
        Ok(list.contacts)
    }

    pub async fn contact_requests(&self, profile: &str) -> Result<ContactRequestList> {
        self.online(profile, |c, t| async move {
            c.get_as(&t, "/v1/contacts/requests").await
        })
        .await
    }

    pub async fn request_contact(
        &self,
        profile: &str,
        public_id: &str,
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

    pub async fn accept_contact(&self, profile: &str, request_id: &str) -> Result<()> {
        let path = format!("/v1/contacts/requests/{}/accept", path_segment(request_id)?);
        self.online(profile, |c, t| async move {
            c.post_as::<_, serde_json::Value>(&t, &path, &serde_json::json!({}))
                .await
                .map(|_| ())
        })
        .await
    }

    pub async fn groups(&self, profile: &str) -> Result<Vec<Group>> {
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
        profile: &str,
        name: &str,
        members: Vec<String>,
    ) -> Result<Group> {
        let body = NewGroup {
            name: name.to_string(),
            members,
        };
        self.online(profile, |c, t| async move {
            c.post_as(&t, "/v1/groups", &body).await
        })
        .await
    }

    pub async fn wallet(&self, profile: &str) -> Result<Wallet> {
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
        profile: &str,
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
        profile: &str,
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

    /// Adds `amount` fen from the sandbox funding source.
    pub async fn top_up(&self, profile: &str, amount: i64, confirmed: bool) -> Result<MoneyMoved> {
        let body = TopUp {
            amount: amount.into(),
            idempotency_key: uuid::Uuid::new_v4().to_string(),
        };
        self.pay(profile, confirmed, "/v1/wallet/topups", &body)
            .await
    }

    /// Sends `amount` fen to a contact. `confirmed`: the user has confirmed this profile after
    /// the wrong-identity guard asked (see [`CoreError::ConfirmProfile`]).
    pub async fn transfer(
        &self,
        profile: &str,
        to: &str,
        amount: i64,
        note: &str,
        confirmed: bool,
    ) -> Result<MoneyMoved> {
        let body = Transfer {
            to: to.to_string(),
            amount: amount.into(),
            note: note.to_string(),
            idempotency_key: uuid::Uuid::new_v4().to_string(),
        };
        self.pay(profile, confirmed, "/v1/wallet/transfers", &body)
            .await
    }

    pub async fn send_red_envelope(
        &self,
        profile: &str,
        envelope: Envelope,
        confirmed: bool,
    ) -> Result<RedEnvelope> {
        let body = NewRedEnvelope {
            to: envelope.to,
            total: envelope.total.into(),
            count: envelope.count,
            mode: envelope.mode,
            greeting: envelope.greeting,
            idempotency_key: uuid::Uuid::new_v4().to_string(),
        };
        self.pay(profile, confirmed, "/v1/red-envelopes", &body)
            .await
    }

    pub async fn claim_red_envelope(&self, profile: &str, envelope_id: &str) -> Result<Claimed> {
        let path = format!("/v1/red-envelopes/{}/claim", path_segment(envelope_id)?);
        self.online(profile, |c, t| async move {
            c.post_as(&t, &path, &serde_json::json!({})).await
        })
        .await
    }

    /// One money call: the wrong-identity guard first, the profile remembered after.
    async fn pay<B: Serialize, T: serde::de::DeserializeOwned>(
        &self,
        profile: &str,
        confirmed: bool,
        path: &str,
        body: &B,
    ) -> Result<T> {
        let id = self.guard_money(profile, confirmed).await?;
        let moved = self
            .online(&id, |c, t| async move { c.post_as(&t, path, body).await })
            .await?;
        self.moved_money(&id);
        Ok(moved)
    }

    /// Money moves only from the profile the user moved it from a moment ago, or after they
    /// confirmed: two accounts side by side make sending from the wrong one easy.
    async fn guard_money(&self, profile: &str, confirmed: bool) -> Result<String> {
        let record = self.registry.find(profile).await?;
        let last = self
            .last_money
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some((other, at)) = last {
            if other != record.id && at.elapsed() < IDENTITY_GUARD && !confirmed {
                return Err(CoreError::ConfirmProfile(record.name));
            }
        }
        Ok(record.id)
    }

    fn moved_money(&self, profile_id: &str) {
        *self.last_money.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((profile_id.to_string(), std::time::Instant::now()));
    }
}

/// A value put into a URL path: ids and public IDs never contain `/`, `?` or `#`, and one
/// that does is refused rather than sent somewhere else.
fn path_segment(s: &str) -> Result<&str> {
    if s.is_empty()
        || s.chars()
            .any(|c| matches!(c, '/' | '?' | '#' | '%') || c.is_whitespace())
    {
        return Err(CoreError::Invalid(format!("{s:?} is not a valid id")));
    }
    Ok(s)
}
