//! What every handler shares: the service's state and the parts a test swaps out. Below the
//! handlers and the router alike, so neither has to import the other to name it.

use std::sync::Arc;

use switchboard_service::clock::{Clock, Entropy, OsEntropy, SystemClock};
use switchboard_service::config::Config;
use switchboard_service::identity::{ChecksumVerifier, IdentityVerifier};
use switchboard_service::password::Hasher;
use switchboard_service::sms::{ConsoleGateway, SmsGateway};
use switchboard_store::Store;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Everything a request handler may use.
pub struct AppState {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    pub sms: Arc<dyn SmsGateway>,
    /// SMS deliveries in flight: requests answer before delivery, so the answer cannot depend
    /// on what a number holds.
    pub sms_deliveries: switchboard_service::sms::Deliveries,
    /// The key ID numbers are hashed with (`identity.hmac_secret`, or a random one in
    /// development mode).
    pub id_number_key: switchboard_service::identity::IdNumberKey,
    /// The console gateway, in development mode only: the dev outbox reads it.
    pub dev_outbox: Option<Arc<ConsoleGateway>>,
    pub hasher: Hasher,
    pub identity: Arc<dyn IdentityVerifier>,
    pub funding: Arc<dyn switchboard_service::funding::FundingSource>,
    pub metrics: Metrics,
    /// `config.trusted_proxies`, parsed once for the client-address extractor.
    pub trusted_proxies: switchboard_service::proxies::TrustedProxies,
    /// Live event fan-out to the WebSockets.
    pub hub: crate::hub::Hub,
    /// Uploaded images, by content hash.
    pub blobs: Arc<dyn switchboard_service::blobs::BlobStore>,
    /// Set when the database is PostgreSQL: this process is one node of possibly several.
    pub cluster: Option<crate::node::Node>,
    /// Whether `clock` follows the database's time (always, except under a test's clock).
    pub clock_from_database: bool,
    /// The certificate of the public listener when the service serves HTTPS itself; reloading
    /// it changes what new connections get.
    pub tls: Option<crate::tls::TlsReloader>,
    /// Cancelled when the service stops: long-lived streams close on it.
    pub shutdown: CancellationToken,
}

pub type App = Arc<AppState>;

/// The parts of the service a test (or another deployment) swaps out.
pub struct Services {
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    pub identity: Arc<dyn IdentityVerifier>,
    /// `None`: the source the configuration names (`funding::from_config`: the operator's
    /// provider, the sandbox in development mode only, or none).
    pub funding: Option<Arc<dyn switchboard_service::funding::FundingSource>>,
    /// On PostgreSQL, serve by the database's time rather than `clock` (so every node judges
    /// expiries alike). Tests that drive `clock` by hand turn it off.
    pub clock_from_database: bool,
}

impl Default for Services {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            entropy: Arc::new(OsEntropy),
            identity: Arc::new(ChecksumVerifier),
            funding: None,
            clock_from_database: true,
        }
    }
}
