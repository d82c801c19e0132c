//! Configuration: defaults < TOML file < environment < command-line flags.
//!
//! Every key can come from the environment as `SWITCHBOARD_<SECTION>_<KEY>` (upper case), and
//! the top-level keys as `SWITCHBOARD_<KEY>` (`SWITCHBOARD_LISTEN`,
//! `SWITCHBOARD_DATABASE_URL`, `SWITCHBOARD_DEV`). The variable names are derived from the
//! defaults themselves, so a new key is overridable the moment it exists.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
    pub log: Log,
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
    /// Where the webhook gateway POSTs `{phone, purpose, code, sent_at}`.
    pub webhook_url: String,
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
            log: Log::default(),
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
            webhook_url: String::new(),
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
        let mut tree = toml::Value::try_from(Config::default())
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.into(),
                source,
            })?;
            let parsed: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::Parse {
                        path: path.into(),
                        message: e.message().to_string(),
                    })?;
            merge(&mut tree, toml::Value::Table(parsed));
            // Deserialise once here so an unknown key names the file, not the environment.
            tree.clone()
                .try_into::<Config>()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    path: path.into(),
                    message: e.message().to_string(),
                })?;
        }
        apply_env(&mut tree, env)?;
        tree.try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.to_string()))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if self.accounts.per_phone == 0 {
            return bad("accounts.per_phone must be at least 1");
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
        if self.tls.cert_file.is_empty() != self.tls.key_file.is_empty() {
            return bad("tls.cert_file and tls.key_file go together: set both, or neither");
        }
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

    /// Whether phone numbers of `region` (ISO 3166 alpha-2) may register.
    pub fn serves_region(&self, region: &str) -> bool {
        self.registration
            .allowed_regions
            .iter()
            .any(|r| r == "*" || r.eq_ignore_ascii_case(region))
    }
}

fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(base), toml::Value::Table(over)) => {
            for (k, v) in over {
                match base.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        base.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

fn apply_env(tree: &mut toml::Value, env: &HashMap<String, String>) -> Result<(), ConfigError> {
    let toml::Value::Table(root) = tree else {
        return Ok(());
    };
    for (key, value) in root.iter_mut() {
        match value {
            toml::Value::Table(section) => {
                for (sub, slot) in section.iter_mut() {
                    let name = format!("SWITCHBOARD_{}_{}", key, sub).to_uppercase();
                    if let Some(raw) = env.get(&name) {
                        *slot = parse_like(slot, raw, &name)?;
                    }
                }
            }
            slot => {
                let name = format!("SWITCHBOARD_{key}").to_uppercase();
                if let Some(raw) = env.get(&name) {
                    *slot = parse_like(slot, raw, &name)?;
                }
            }
        }
    }
    Ok(())
}

/// Parses an environment value as the type the default has: lists are comma-separated.
fn parse_like(template: &toml::Value, raw: &str, name: &str) -> Result<toml::Value, ConfigError> {
    let err = |m: &str| ConfigError::Env {
        name: name.to_string(),
        message: m.to_string(),
    };
    Ok(match template {
        toml::Value::Integer(_) => toml::Value::Integer(
            raw.trim()
                .parse()
                .map_err(|_| err("expected a whole number"))?,
        ),
        toml::Value::Boolean(_) => toml::Value::Boolean(match raw.trim() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" | "" => false,
            _ => return Err(err("expected 1/0 or true/false")),
        }),
        toml::Value::Array(_) => toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        ),
        _ => toml::Value::String(raw.to_string()),
    })
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
            ]),
        )
        .unwrap();
        assert!(!c.dev);
    }
}
