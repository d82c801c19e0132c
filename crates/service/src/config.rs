//! Configuration: defaults < TOML file < environment < command-line flags.
//!
//! Every key can come from the environment as `SWITCHBOARD_<SECTION>_<KEY>` (upper case), and
//! the top-level keys as `SWITCHBOARD_<KEY>` (`SWITCHBOARD_LISTEN`,
//! `SWITCHBOARD_DATABASE_URL`, `SWITCHBOARD_DEV`). The variable names are derived from the
//! defaults themselves, so a new key is overridable the moment it exists (and matched against
//! the known keys, since keys contain underscores too). figment layers the sources and keeps
//! where each value came from, so an error names the file or the variable.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};
use serde::{Deserialize, Serialize};

use crate::proxies::TrustedProxies;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the HTTP API listens.
    pub listen: SocketAddr,
    /// `sqlite://PATH` (created if missing); empty means a file in the platform data dir.
    pub database_url: String,
    /// Development mode: the console SMS gateway and the dev SMS outbox endpoint.
    pub dev: bool,
    /// Where `/metrics` is served: an operator's listener, never the public port.
    pub admin_listen: SocketAddr,
    /// CIDRs of reverse proxies whose `X-Forwarded-For` is believed; from any other peer the
    /// connection's own address counts.
    pub trusted_proxies: Vec<String>,
    pub tls: Tls,
    pub cluster: Cluster,
    pub registration: Registration,
    pub accounts: Accounts,
    pub sms: Sms,
    pub sessions: Sessions,
    pub wallet: WalletConfig,
    pub funding: Funding,
    pub identity: Identity,
    pub limits: Limits,
    pub official: Official,
    pub media: Media,
    pub log: Log,
}

/// A configured secret: read like any value, never shown. Its `Debug` prints `<redacted>`
/// (or that it is unset), so a `{:?}` of the configuration in a log or an error leaks
/// nothing.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_string())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "<unset>"
        } else {
            "<redacted>"
        })
    }
}

/// Real-name verification.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Identity {
    /// The key ID numbers are hashed with (HMAC-SHA256), at least 32 characters; the same on
    /// every node and kept across restarts (hashes made under another key match nothing).
    /// Required outside development mode; in development mode an empty one is replaced by a
    /// random key for the life of the process.
    pub hmac_secret: Secret,
    /// How many accounts one ID number may verify: a person's work and personal accounts and
    /// a few more, not a farm of verified accounts behind one identity.
    pub accounts_per_id: u32,
}

impl Default for Identity {
    fn default() -> Self {
        Self {
            hmac_secret: Secret::default(),
            accounts_per_id: 5,
        }
    }
}

/// The least length of `identity.hmac_secret`, in bytes.
pub const IDENTITY_SECRET_MIN: usize = 32;

/// Per-account budgets, each over a sliding window; past one a request answers 429
/// `rate_limited` with `Retry-After`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Messages one account may send per minute.
    pub messages_per_minute: u32,
    /// Contact requests one account may send per 24 hours.
    pub contact_requests_per_day: u32,
    /// Deliveries to group members one account may cause per minute: a message to a group of
    /// 300 is 300, creating a group or adding members is one per member told. Below the
    /// largest group (500) nobody can write to a full group at all.
    pub group_fanout_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // Ten a second, every minute: far beyond a person typing, well short of a flood.
            messages_per_minute: 600,
            contact_requests_per_day: 100,
            // Forty messages a minute to full 500-member groups.
            group_fanout_per_minute: 20_000,
        }
    }
}

/// Uploaded images (SPEC §1.6).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Media {
    /// An upload's pixels at most (width × height, from its header, before anything is
    /// decoded); never above 16,384 a side either.
    pub max_pixels: u64,
    /// The directory images are kept in, by content hash. Empty: `media/` beside a SQLite
    /// database file, else in the platform data dir. Several nodes must share it (a network
    /// file system), since each may be asked for any image; or they use a bucket (`s3_bucket`).
    pub dir: String,
    /// An S3-compatible bucket to keep images in instead of `dir` (what several nodes share).
    pub s3_bucket: String,
    /// The bucket's service, for one that is not AWS (MinIO, Ceph, R2, …): its URL, e.g.
    /// `https://minio.internal:9000`. Requests name the bucket in the path.
    pub s3_endpoint: String,
    /// Empty: `AWS_REGION`/`AWS_DEFAULT_REGION`, else `us-east-1`.
    pub s3_region: String,
    /// Empty: the environment's credentials (`AWS_ACCESS_KEY_ID`, …, or the instance's role).
    pub s3_access_key_id: String,
    pub s3_secret_access_key: Secret,
    /// Allows an `http://` endpoint (a bucket on the same private network only).
    pub s3_allow_http: bool,
}

/// Official accounts (SPEC §1.5).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Official {
    /// Operators of one official account, its owner included.
    pub max_operators: u32,
    /// Official accounts one account may operate (own or be an operator of).
    pub max_per_operator: u32,
    /// Requests one API key may make per minute.
    pub api_per_minute: u32,
}

impl Default for Official {
    fn default() -> Self {
        Self {
            max_operators: 20,
            max_per_operator: 50,
            api_per_minute: 600,
        }
    }
}

/// HTTPS/WSS served by the service itself: both files set, or neither (plain HTTP, e.g. behind
/// a proxy that terminates TLS).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tls {
    /// PEM certificate chain, leaf first. Re-read on SIGHUP.
    pub cert_file: String,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1). Re-read on SIGHUP.
    pub key_file: String,
}

/// Several nodes on one PostgreSQL: how they wake each other's sockets.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cluster {
    /// `batched` (one NOTIFY per node per short window) or `per_write` (one per committed
    /// write; for comparison in the scale benchmark).
    pub notify: String,
    /// How long a node gathers wake-up hints before sending them as one NOTIFY.
    pub notify_batch_ms: u64,
    /// The safety poll that catches a lost hint: every socket's account is checked this often.
    pub safety_poll_ms: u64,
}

impl Default for Cluster {
    fn default() -> Self {
        Self {
            notify: "batched".into(),
            notify_batch_ms: 2,
            safety_poll_ms: 5000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WalletConfig {
    /// How often expired red envelopes are looked for and refunded.
    pub refund_sweep_ms: u64,
}

impl Default for WalletConfig {
    fn default() -> Self {
        Self {
            refund_sweep_ms: 1000,
        }
    }
}

/// Where top-up money comes from. Outside development mode a provider must be named, or
/// top-ups answer 503 `funding_unavailable`: the development sandbox pays every charge.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Funding {
    /// Where the service POSTs each charge (`{account_id, amount, currency, idempotency_key}`,
    /// signed), crediting only what the answer confirms. A secret, like the SMS webhook's.
    pub webhook_url: Secret,
    /// The HMAC-SHA256 key each charge request is signed with (`X-Switchboard-Signature:
    /// sha256=<hex of the body's MAC>`), so the provider can tell the service from anyone else.
    pub webhook_secret: Secret,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Registration {
    /// ISO 3166 region codes of the phone numbers served; `["*"]` serves all.
    pub allowed_regions: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Accounts {
    /// How many accounts one phone number may hold (the first is primary).
    pub per_phone: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sms {
    /// `console` (development only) or `webhook`.
    pub gateway: String,
    /// Where the webhook gateway POSTs `{phone, purpose, code, sent_at}`. A secret: providers
    /// put their API key in it, so it is never logged nor shown in an error.
    pub webhook_url: Secret,
    pub code_ttl_secs: u64,
    pub resend_cooldown_secs: u64,
    pub per_number_per_day: u32,
    pub per_ip_per_hour: u32,
    /// Wrong tries after which a code is burned.
    pub max_attempts: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sessions {
    pub ttl_secs: u64,
    /// Sign-in attempts (password or SMS) allowed from one IP address per hour.
    pub login_per_ip_per_hour: u32,
    /// Consecutive failures after which each further try must wait.
    pub throttle_after: u32,
    pub throttle_base_secs: u64,
    pub throttle_max_secs: u64,
    /// Consecutive failures after which the account is locked until recovered by SMS.
    pub lock_after: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// `tracing` filter, e.g. `info,switchboard_server=debug`.
    pub filter: String,
    /// Folder of the rotating log file; empty means the platform state dir.
    pub dir: String,
    /// Write the rotating file at all (stderr is always on).
    pub file: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8750)),
            database_url: String::new(),
            dev: false,
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 8751)),
            trusted_proxies: Vec::new(),
            tls: Tls::default(),
            cluster: Cluster::default(),
            registration: Registration::default(),
            accounts: Accounts::default(),
            sms: Sms::default(),
            sessions: Sessions::default(),
            wallet: WalletConfig::default(),
            funding: Funding::default(),
            identity: Identity::default(),
            limits: Limits::default(),
            official: Official::default(),
            media: Media::default(),
            log: Log::default(),
        }
    }
}

impl Default for Media {
    fn default() -> Self {
        Self {
            max_pixels: switchboard_protocol::moments::MEDIA_MAX_PIXELS,
            dir: String::new(),
            s3_bucket: String::new(),
            s3_endpoint: String::new(),
            s3_region: String::new(),
            s3_access_key_id: String::new(),
            s3_secret_access_key: Secret::default(),
            s3_allow_http: false,
        }
    }
}

impl Default for Registration {
    fn default() -> Self {
        Self {
            allowed_regions: vec!["*".into()],
        }
    }
}

impl Default for Accounts {
    fn default() -> Self {
        Self { per_phone: 2 }
    }
}

impl Default for Sms {
    fn default() -> Self {
        Self {
            gateway: "console".into(),
            webhook_url: Secret::default(),
            code_ttl_secs: 600,
            resend_cooldown_secs: 60,
            per_number_per_day: 10,
            per_ip_per_hour: 200,
            max_attempts: 5,
        }
    }
}

impl Default for Sessions {
    fn default() -> Self {
        Self {
            ttl_secs: 30 * 24 * 3600,
            login_per_ip_per_hour: 300,
            throttle_after: 5,
            throttle_base_secs: 30,
            throttle_max_secs: 3600,
            lock_after: 100,
        }
    }
}

impl Default for Log {
    fn default() -> Self {
        Self {
            filter: "info".into(),
            dir: String::new(),
            file: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Defaults, then `file` if given, then the environment; validated for serving.
    pub fn load(file: Option<&Path>, env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let config = Self::parse(file, env)?;
        config.validate()?;
        Ok(config)
    }

    /// Like [`load`](Self::load) without the checks that only serving needs (offline tools
    /// such as `ledger check` need no SMS gateway).
    pub fn parse(file: Option<&Path>, env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            // Checked here: figment would report a missing or unreadable file as a parse error.
            if let Err(source) = std::fs::metadata(path) {
                return Err(ConfigError::Read {
                    path: path.into(),
                    source,
                });
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(Environment { vars: env });
        figment
            .extract()
            .map_err(|e| ConfigError::from_figment(&figment, e))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if self.accounts.per_phone == 0 {
            return bad("accounts.per_phone must be at least 1");
        }
        if self.identity.accounts_per_id == 0 {
            return bad("identity.accounts_per_id must be at least 1");
        }
        if self.sms.max_attempts == 0 || self.sms.code_ttl_secs == 0 {
            return bad("sms.max_attempts and sms.code_ttl_secs must be at least 1");
        }
        match self.sms.gateway.as_str() {
            "console" if !self.dev => {
                return bad(
                    "the console SMS gateway exists only in development mode (--dev); \
                     set sms.gateway = \"webhook\" and sms.webhook_url for a real SMS provider",
                );
            }
            "console" => {}
            "webhook" if self.sms.webhook_url.is_empty() => {
                return bad("sms.gateway = \"webhook\" needs sms.webhook_url");
            }
            "webhook" => {}
            other => {
                return Err(ConfigError::Invalid(format!(
                    "sms.gateway must be \"console\" or \"webhook\", not {other:?}"
                )));
            }
        }
        // The dev outbox hands every SMS code to whoever can reach the port: a development
        // service is for this machine only.
        if self.dev && !self.listen.ip().is_loopback() {
            return Err(ConfigError::Invalid(format!(
                "development mode (--dev) serves every SMS code at /v1/dev/sms-outbox, so it \
                 listens only on a loopback address (127.0.0.1 or [::1]), not {}; \
                 without --dev, set sms.gateway = \"webhook\" to serve other machines",
                self.listen
            )));
        }
        let secret = &self.identity.hmac_secret;
        if secret.is_empty() && !self.dev {
            return bad(
                "identity.hmac_secret (env SWITCHBOARD_IDENTITY_HMAC_SECRET) must be set outside \
                 development mode: ID numbers are stored hashed with it. Use a random string of \
                 at least 32 characters, the same on every node and kept across restarts",
            );
        }
        if !secret.is_empty() && secret.expose().len() < IDENTITY_SECRET_MIN {
            return bad(
                "identity.hmac_secret (env SWITCHBOARD_IDENTITY_HMAC_SECRET) must be at least 32 \
                 characters long",
            );
        }
        if !self.funding.webhook_url.is_empty()
            && self.funding.webhook_secret.expose().len() < IDENTITY_SECRET_MIN
        {
            return bad("funding.webhook_url needs funding.webhook_secret (env \
                 SWITCHBOARD_FUNDING_WEBHOOK_SECRET), at least 32 characters: every charge \
                 request is signed with it, so the provider can refuse anyone else's");
        }
        let l = &self.limits;
        if l.messages_per_minute == 0
            || l.contact_requests_per_day == 0
            || l.group_fanout_per_minute == 0
        {
            return bad(
                "limits.messages_per_minute, limits.contact_requests_per_day and \
                 limits.group_fanout_per_minute must be at least 1",
            );
        }
        let o = &self.official;
        if o.max_operators == 0 || o.max_per_operator == 0 || o.api_per_minute == 0 {
            return bad(
                "official.max_operators, official.max_per_operator and official.api_per_minute \
                 must be at least 1",
            );
        }
        if self.tls.cert_file.is_empty() != self.tls.key_file.is_empty() {
            return bad("tls.cert_file and tls.key_file go together: set both, or neither");
        }
        // Port 0 asks for any free port, so two of them never collide.
        if self.admin_listen == self.listen && self.listen.port() != 0 {
            return bad(
                "admin_listen must differ from listen: /metrics is never served on the public port",
            );
        }
        self.trusted_proxy_nets()?;
        if !matches!(self.cluster.notify.as_str(), "batched" | "per_write") {
            return bad("cluster.notify must be \"batched\" or \"per_write\"");
        }
        if self.cluster.safety_poll_ms < 100 {
            return bad("cluster.safety_poll_ms must be at least 100");
        }
        if self.registration.allowed_regions.is_empty() {
            return bad("registration.allowed_regions must name at least one region, or \"*\"");
        }
        Ok(())
    }

    /// `trusted_proxies` parsed: a bare address is a network of one.
    pub fn trusted_proxy_nets(&self) -> Result<TrustedProxies, ConfigError> {
        TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|e| ConfigError::Invalid(format!("trusted_proxies: {e}")))
    }

    /// Whether phone numbers of `region` (ISO 3166 alpha-2) may register.
    pub fn serves_region(&self, region: &str) -> bool {
        self.registration
            .allowed_regions
            .iter()
            .any(|r| r == "*" || r.eq_ignore_ascii_case(region))
    }
}

impl ConfigError {
    /// Names where the offending value came from: the file, or the environment variable.
    fn from_figment(figment: &Figment, error: figment::Error) -> Self {
        // figment chains every error it met; the first is the one to fix first.
        let Some(error) = error.into_iter().next() else {
            return ConfigError::Invalid("invalid configuration".into());
        };
        let path = &error.path;
        let (metadata, message) = match &error.kind {
            // Found by the key's own source: its section may have come from several.
            figment::error::Kind::UnknownField(field, expected) => (
                figment
                    .find_metadata(&path.join("."))
                    .or(error.metadata.as_ref()),
                format!("unknown key `{field}` (known: {})", expected.join(", ")),
            ),
            kind => (error.metadata.as_ref(), kind.to_string()),
        };
        match metadata {
            // The key too: a flag arrives as its variable, and its user knows it by the key.
            Some(md) if md.name == ENV_SOURCE => ConfigError::Env {
                name: env_name(path),
                message: format!("{message} (key `{}`)", path.join(".")),
            },
            Some(Metadata {
                source: Some(Source::File(file)),
                ..
            }) => ConfigError::Parse {
                path: file.clone(),
                message: if path.is_empty() {
                    message
                } else {
                    format!("{}: {message}", path.join("."))
                },
            },
            _ => ConfigError::Invalid(error.to_string()),
        }
    }
}

/// figment's name for values that came from the environment.
const ENV_SOURCE: &str = "environment";

/// `SWITCHBOARD_<SECTION>_<KEY>` for the key at `path` (`SWITCHBOARD_<KEY>` at the top).
fn env_name<S: AsRef<str>>(path: &[S]) -> String {
    let mut name = String::from("SWITCHBOARD");
    for part in path {
        name.push('_');
        name.push_str(&part.as_ref().to_ascii_uppercase());
    }
    name
}

/// The environment as a figment provider.
///
/// figment's own `Env` cannot be used: it reads only the process environment (the service is
/// given the environment as a map, with the flags already layered in, and tests pass their
/// own), and it finds the nesting by splitting names on a separator, while sections and keys
/// here contain underscores (`SWITCHBOARD_SMS_RESEND_COOLDOWN_SECS`). So each variable name is
/// derived from a known key of the defaults, and the value is read as the type that key has.
struct Environment<'a> {
    vars: &'a HashMap<String, String>,
}

impl Provider for Environment<'_> {
    fn metadata(&self) -> Metadata {
        Metadata::named(ENV_SOURCE).interpolater(|_: &Profile, path: &[&str]| env_name(path))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let defaults = Value::serialize(Config::default())?
            .into_dict()
            .ok_or_else(|| figment::Error::from("the defaults are not a table".to_string()))?;
        let mut found = Dict::new();
        for (key, default) in defaults {
            match default {
                Value::Dict(_, section) => {
                    let mut set = Dict::new();
                    for (sub, template) in section {
                        if let Some(raw) = self.vars.get(&env_name(&[&key, &sub])) {
                            set.insert(sub, from_env(&template, raw));
                        }
                    }
                    if !set.is_empty() {
                        found.insert(key, set.into());
                    }
                }
                template => {
                    if let Some(raw) = self.vars.get(&env_name(&[&key])) {
                        found.insert(key, from_env(&template, raw));
                    }
                }
            }
        }
        Ok(Profile::Default.collect(found))
    }
}

/// Reads an environment value as the type the key's default has: lists are comma-separated,
/// switches take 1/0 or true/false. A value that does not fit stays a string, so extracting
/// fails with the expected type and the variable's name.
fn from_env(template: &Value, raw: &str) -> Value {
    let trimmed = raw.trim();
    match template {
        Value::Num(..) => trimmed
            .parse::<u64>()
            .map(Value::from)
            .or_else(|_| trimmed.parse::<i64>().map(Value::from))
            .unwrap_or_else(|_| Value::from(raw)),
        Value::Bool(..) => match trimmed.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Value::from(true),
            "0" | "false" | "no" | "off" | "" => Value::from(false),
            _ => Value::from(raw),
        },
        Value::Array(..) => Value::from(
            trimmed
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>(),
        ),
        _ => Value::from(raw),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_follow_the_spec() {
        let c = Config::load(None, &env(&[("SWITCHBOARD_DEV", "1")])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8750");
        assert_eq!(c.accounts.per_phone, 2);
        assert_eq!(c.sms.resend_cooldown_secs, 60);
        assert_eq!(c.sms.code_ttl_secs, 600);
        assert_eq!(c.sms.per_number_per_day, 10);
        assert_eq!(c.sms.per_ip_per_hour, 200);
        assert_eq!(c.registration.allowed_regions, vec!["*"]);
    }

    #[test]
    fn environment_overrides_file_and_lists_are_comma_separated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        std::fs::write(
            &path,
            "dev = true\n[accounts]\nper_phone = 3\n[sms]\nresend_cooldown_secs = 5\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&path),
            &env(&[
                ("SWITCHBOARD_REGISTRATION_ALLOWED_REGIONS", "CN, HK"),
                ("SWITCHBOARD_SMS_RESEND_COOLDOWN_SECS", "7"),
                ("SWITCHBOARD_LISTEN", "127.0.0.1:9999"),
            ]),
        )
        .unwrap();
        assert_eq!(c.accounts.per_phone, 3, "file beats default");
        assert_eq!(c.sms.resend_cooldown_secs, 7, "environment beats file");
        assert_eq!(c.registration.allowed_regions, vec!["CN", "HK"]);
        assert_eq!(c.listen.to_string(), "127.0.0.1:9999");
        assert!(c.serves_region("hk") && !c.serves_region("US"));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        std::fs::write(&path, "dev = true\n[sms]\nresend_cooldown = 5\n").unwrap();
        let e = Config::load(Some(&path), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("resend_cooldown"),
            "the unknown key must be named: {e}"
        );

        let e = Config::load(None, &env(&[("SWITCHBOARD_ACCOUNTS_PER_PHONE", "two")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("SWITCHBOARD_ACCOUNTS_PER_PHONE"), "{e}");
    }

    #[test]
    fn console_gateway_needs_dev_mode() {
        let e = Config::load(None, &env(&[])).unwrap_err().to_string();
        assert!(e.contains("--dev"), "{e}");
        let c = Config::load(
            None,
            &env(&[
                ("SWITCHBOARD_SMS_GATEWAY", "webhook"),
                ("SWITCHBOARD_SMS_WEBHOOK_URL", "http://127.0.0.1:1/sms"),
                ("SWITCHBOARD_IDENTITY_HMAC_SECRET", SECRET),
            ]),
        )
        .unwrap();
        assert!(!c.dev);
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef-secret";

    #[test]
    fn outside_dev_mode_the_identity_key_is_required_and_long() {
        let webhook = [
            ("SWITCHBOARD_SMS_GATEWAY", "webhook"),
            ("SWITCHBOARD_SMS_WEBHOOK_URL", "http://127.0.0.1:1/sms"),
        ];
        let e = Config::load(None, &env(&webhook)).unwrap_err().to_string();
        assert!(
            e.contains("identity.hmac_secret") && e.contains("SWITCHBOARD_IDENTITY_HMAC_SECRET"),
            "names the key and its variable: {e}"
        );
        let mut short = webhook.to_vec();
        short.push(("SWITCHBOARD_IDENTITY_HMAC_SECRET", "too short"));
        let e = Config::load(None, &env(&short)).unwrap_err().to_string();
        assert!(e.contains("at least 32"), "{e}");
        assert!(
            !e.contains("too short"),
            "the value itself is never repeated: {e}"
        );
        let mut ok = webhook.to_vec();
        ok.push(("SWITCHBOARD_IDENTITY_HMAC_SECRET", SECRET));
        let c = Config::load(None, &env(&ok)).unwrap();
        assert_eq!(c.identity.hmac_secret.expose(), SECRET);
        // Development mode makes one up for the process when none is set.
        let d = Config::load(None, &env(&[("SWITCHBOARD_DEV", "1")])).unwrap();
        assert!(d.identity.hmac_secret.is_empty());
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let c = Config::load(
            None,
            &env(&[
                ("SWITCHBOARD_SMS_GATEWAY", "webhook"),
                (
                    "SWITCHBOARD_SMS_WEBHOOK_URL",
                    "https://sms.example/send?api_key=provider-key-123",
                ),
                ("SWITCHBOARD_IDENTITY_HMAC_SECRET", SECRET),
            ]),
        )
        .unwrap();
        for shown in [format!("{c:?}"), format!("{c:#?}")] {
            assert!(!shown.contains(SECRET), "{shown}");
            assert!(!shown.contains("provider-key-123"), "{shown}");
            assert!(shown.contains("hmac_secret: <redacted>"), "{shown}");
        }
    }

    #[test]
    fn dev_mode_listens_on_loopback_only() {
        for listen in ["0.0.0.0:8750", "192.168.1.5:8750", "[::]:8750"] {
            let e = Config::load(
                None,
                &env(&[("SWITCHBOARD_DEV", "1"), ("SWITCHBOARD_LISTEN", listen)]),
            )
            .unwrap_err()
            .to_string();
            assert!(
                e.contains("loopback") && e.contains(listen),
                "{listen}: {e}"
            );
        }
        for listen in ["127.0.0.1:8750", "127.0.0.2:0", "[::1]:8750"] {
            Config::load(
                None,
                &env(&[("SWITCHBOARD_DEV", "1"), ("SWITCHBOARD_LISTEN", listen)]),
            )
            .unwrap_or_else(|e| panic!("{listen}: {e}"));
        }
    }

    #[test]
    fn limits_have_generous_defaults_and_come_from_the_environment() {
        let d = Config::load(None, &env(&[("SWITCHBOARD_DEV", "1")])).unwrap();
        assert_eq!(
            (
                d.limits.messages_per_minute,
                d.limits.contact_requests_per_day,
                d.limits.group_fanout_per_minute
            ),
            (600, 100, 20_000)
        );
        let c = Config::load(
            None,
            &env(&[
                ("SWITCHBOARD_DEV", "1"),
                ("SWITCHBOARD_LIMITS_MESSAGES_PER_MINUTE", "5"),
                ("SWITCHBOARD_LIMITS_CONTACT_REQUESTS_PER_DAY", "3"),
                ("SWITCHBOARD_LIMITS_GROUP_FANOUT_PER_MINUTE", "1000"),
            ]),
        )
        .unwrap();
        assert_eq!(c.limits.messages_per_minute, 5);
        assert_eq!(c.limits.contact_requests_per_day, 3);
        assert_eq!(c.limits.group_fanout_per_minute, 1000);
        let e = Config::load(
            None,
            &env(&[
                ("SWITCHBOARD_DEV", "1"),
                ("SWITCHBOARD_LIMITS_MESSAGES_PER_MINUTE", "0"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("limits.messages_per_minute"), "{e}");
    }

    #[test]
    fn the_new_keys_come_from_the_environment() {
        let c = Config::load(
            None,
            &env(&[
                ("SWITCHBOARD_DEV", "true"),
                ("SWITCHBOARD_DATABASE_URL", "postgres://sb@db/switchboard"),
                ("SWITCHBOARD_ADMIN_LISTEN", "0.0.0.0:9100"),
                (
                    "SWITCHBOARD_TRUSTED_PROXIES",
                    "10.0.0.0/8, 127.0.0.1 ,2001:db8::/32",
                ),
                ("SWITCHBOARD_TLS_CERT_FILE", "/etc/sb/cert.pem"),
                ("SWITCHBOARD_TLS_KEY_FILE", "/etc/sb/key.pem"),
                ("SWITCHBOARD_CLUSTER_NOTIFY", "per_write"),
                ("SWITCHBOARD_CLUSTER_NOTIFY_BATCH_MS", "5"),
                ("SWITCHBOARD_CLUSTER_SAFETY_POLL_MS", "250"),
                ("SWITCHBOARD_LOG_FILE", "0"),
                // A string key keeps a value that looks like a number as it is.
                ("SWITCHBOARD_LOG_DIR", "2024"),
                // Not a key: ignored, as any variable of another program would be.
                ("SWITCHBOARD_NO_SUCH_KEY", "1"),
            ]),
        )
        .unwrap();
        assert!(c.dev);
        assert_eq!(c.database_url, "postgres://sb@db/switchboard");
        assert_eq!(c.admin_listen.to_string(), "0.0.0.0:9100");
        assert_eq!(
            c.trusted_proxies,
            vec!["10.0.0.0/8", "127.0.0.1", "2001:db8::/32"]
        );
        let nets = c.trusted_proxy_nets().unwrap();
        assert!(nets.contains("10.1.2.3".parse().unwrap()));
        assert!(nets.contains("2001:db8:5::1".parse().unwrap()));
        assert!(!nets.contains("127.0.0.2".parse().unwrap()));
        assert_eq!(c.tls.cert_file, "/etc/sb/cert.pem");
        assert_eq!(c.tls.key_file, "/etc/sb/key.pem");
        assert_eq!(c.cluster.notify, "per_write");
        assert_eq!(c.cluster.notify_batch_ms, 5);
        assert_eq!(c.cluster.safety_poll_ms, 250);
        assert!(!c.log.file);
        assert_eq!(c.log.dir, "2024");

        let d = Config::load(None, &env(&[("SWITCHBOARD_DEV", "1")])).unwrap();
        assert_eq!(d.admin_listen.to_string(), "127.0.0.1:8751");
        assert!(d.trusted_proxies.is_empty() && d.trusted_proxy_nets().unwrap().is_empty());
        assert_eq!(
            (
                d.cluster.notify.as_str(),
                d.cluster.notify_batch_ms,
                d.cluster.safety_poll_ms
            ),
            ("batched", 2, 5000)
        );
    }

    #[test]
    fn every_key_has_one_variable_name() {
        let defaults = Value::serialize(Config::default())
            .unwrap()
            .into_dict()
            .unwrap();
        let mut names = Vec::new();
        for (key, value) in &defaults {
            match value {
                Value::Dict(_, section) => {
                    names.extend(section.keys().map(|sub| env_name(&[key, sub])));
                }
                _ => names.push(env_name(&[key])),
            }
        }
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(
            names.len(),
            count,
            "a section key and a top-level key must not map to one variable"
        );
        for documented in [
            "SWITCHBOARD_LISTEN",
            "SWITCHBOARD_DATABASE_URL",
            "SWITCHBOARD_DEV",
            "SWITCHBOARD_ADMIN_LISTEN",
            "SWITCHBOARD_TRUSTED_PROXIES",
            "SWITCHBOARD_TLS_CERT_FILE",
            "SWITCHBOARD_SMS_RESEND_COOLDOWN_SECS",
            "SWITCHBOARD_REGISTRATION_ALLOWED_REGIONS",
            "SWITCHBOARD_CLUSTER_SAFETY_POLL_MS",
            "SWITCHBOARD_IDENTITY_HMAC_SECRET",
            "SWITCHBOARD_LIMITS_MESSAGES_PER_MINUTE",
            "SWITCHBOARD_LIMITS_CONTACT_REQUESTS_PER_DAY",
            "SWITCHBOARD_LIMITS_GROUP_FANOUT_PER_MINUTE",
        ] {
            assert!(names.iter().any(|n| n == documented), "{documented}");
        }
    }

    #[test]
    fn errors_name_the_file_or_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        let shown = path.display().to_string();

        std::fs::write(&path, "dev = true\n[accounts]\nper_phone = \"two\"\n").unwrap();
        let e = Config::load(Some(&path), &env(&[])).unwrap_err();
        assert!(matches!(e, ConfigError::Parse { .. }), "{e:?}");
        let e = e.to_string();
        assert!(
            e.contains(&shown) && e.contains("accounts.per_phone"),
            "{e}"
        );

        // An unknown key in the file names the file even when the environment sets its section.
        std::fs::write(&path, "dev = true\n[tls]\ncert = \"x.pem\"\n").unwrap();
        let e = Config::load(Some(&path), &env(&[("SWITCHBOARD_TLS_KEY_FILE", "k.pem")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&shown) && e.contains("unknown key `cert`") && e.contains("cert_file"),
            "{e}"
        );
        std::fs::write(&path, "dev = true\nadmin = \"0.0.0.0:1\"\n").unwrap();
        let e = Config::load(Some(&path), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains(&shown) && e.contains("`admin`"), "{e}");

        std::fs::write(&path, "dev = [\n").unwrap();
        let e = Config::load(Some(&path), &env(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains(&shown), "a syntax error names the file: {e}");

        let missing = dir.path().join("missing.toml");
        let e = Config::load(Some(&missing), &env(&[])).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e:?}");
        assert!(e.to_string().contains("missing.toml"), "{e}");

        for (name, value) in [
            ("SWITCHBOARD_DEV", "maybe"),
            ("SWITCHBOARD_SMS_RESEND_COOLDOWN_SECS", "-5"),
            ("SWITCHBOARD_ADMIN_LISTEN", "localhost"),
            ("SWITCHBOARD_CLUSTER_SAFETY_POLL_MS", "soon"),
        ] {
            let e =
                Config::load(None, &env(&[("SWITCHBOARD_DEV", "1"), (name, value)])).unwrap_err();
            assert!(matches!(e, ConfigError::Env { .. }), "{name}: {e:?}");
            assert!(e.to_string().contains(name), "{e}");
        }
    }

    #[test]
    fn a_bad_trusted_proxy_is_named() {
        let e = Config::load(
            None,
            &env(&[
                ("SWITCHBOARD_DEV", "1"),
                ("SWITCHBOARD_TRUSTED_PROXIES", "10.0.0.0/8, 10.0.0.300"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("trusted_proxies") && e.contains("10.0.0.300"),
            "{e}"
        );
    }

    #[test]
    fn the_admin_listener_is_never_the_public_one() {
        let e = Config::load(
            None,
            &env(&[
                ("SWITCHBOARD_DEV", "1"),
                ("SWITCHBOARD_ADMIN_LISTEN", "127.0.0.1:8750"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("admin_listen"), "{e}");
    }
}
