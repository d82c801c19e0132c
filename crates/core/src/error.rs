//! Errors as typed codes, so the CLI can print them and the app can branch on them.

use switchboard_protocol::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The service answered with an error.
    #[error("{0}")]
    Api(ApiError),
    /// The service could not be reached.
    #[error("cannot reach the service: {0}")]
    Network(String),
    /// The service was reached but its TLS certificate failed verification: not a network
    /// hiccup that retrying fixes, so it is told apart. The message names the host and what
    /// is wrong (see [`CoreError::certificate`]); a profile's `ConnState::Certificate` holds it.
    #[error("{0}")]
    Certificate(String),
    /// Plain `http://` to a host other than this computer, which the profile does not allow.
    #[error(
        "http://{0} is not encrypted: anyone on the network could read and change what is sent, \
         passwords included. Use https://, or explicitly allow unencrypted http for this profile"
    )]
    InsecureHttp(String),
    #[error("no profile named or numbered {0:?}")]
    NoSuchProfile(String),
    #[error("the keyring: {0}")]
    Vault(String),
    #[error("local storage: {0}")]
    Storage(String),
    /// The profile's database does not open with the key in the keyring: the folder was copied
    /// from another computer or user, or the keyring entry was replaced. Nothing is changed.
    #[error(
        "the profile's database ({0}) cannot be read with the key in this keyring; it may have \
         been copied from elsewhere"
    )]
    DatabaseKey(String),
    #[error("{0}")]
    Invalid(String),
    /// A payment's answer never came, so it may or may not have been made. It is kept as
    /// pending with its idempotency key: trying it again can never pay twice.
    #[error(
        "no answer to the payment ({0}); it is kept as pending: try it again (it cannot be paid \
         twice) or abandon it"
    )]
    PaymentPending(String),
    /// Money moved from another profile a moment ago: confirm this one is meant.
    #[error("you just moved money as another profile; confirm you mean to pay from {0}")]
    ConfirmProfile(String),
}

impl CoreError {
    /// A stable code: the service's own for API errors, else one of core's.
    pub fn code(&self) -> &str {
        match self {
            CoreError::Api(e) => e.code.as_str(),
            CoreError::Network(_) => "network",
            CoreError::Certificate(_) => "certificate",
            CoreError::InsecureHttp(_) => "insecure_http",
            CoreError::NoSuchProfile(_) => "no_such_profile",
            CoreError::Vault(_) => "vault",
            CoreError::Storage(_) => "storage",
            CoreError::DatabaseKey(_) => "database_key",
            CoreError::Invalid(_) => "invalid",
            CoreError::ConfirmProfile(_) => "confirm_profile",
            CoreError::PaymentPending(_) => "payment_pending",
        }
    }
}

impl CoreError {
    /// The certificate of `host` failed verification for `reason` ("it has expired", ...).
    pub fn certificate(host: &str, reason: &str) -> Self {
        CoreError::Certificate(format!(
            "the certificate of {host} cannot be trusted: {reason}"
        ))
    }
}

impl From<sqlx::Error> for CoreError {
    fn from(e: sqlx::Error) -> Self {
        CoreError::Storage(e.to_string())
    }
}

impl From<sqlx::migrate::MigrateError> for CoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        CoreError::Storage(e.to_string())
    }
}

impl From<std::io::Error> for CoreError {
    fn from(e: std::io::Error) -> Self {
        CoreError::Storage(e.to_string())
    }
}

pub type Result<T, E = CoreError> = std::result::Result<T, E>;
