//! What an operator copies from `deploy/` must work as it stands: the example configuration
//! and a node's environment file load and validate as the service would load them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::collections::HashMap;
use std::path::PathBuf;

use switchboard_server::Config;

fn deploy(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(file)
}

#[test]
fn the_example_configuration_and_node_environment_load_as_documented() {
    let mut env: HashMap<String, String> = std::fs::read_to_string(deploy("systemd/node.env"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    assert!(env.contains_key("SWITCHBOARD_DATABASE_URL"));
    // The ID-number key and the key charge requests to the payment provider are signed with
    // are secrets of the node's environment file, like the database password; one copied
    // without them must not start.
    require_secret(
        &mut env,
        "SWITCHBOARD_IDENTITY_HMAC_SECRET",
        switchboard_server::testing::TEST_IDENTITY_SECRET,
    );
    require_secret(
        &mut env,
        "SWITCHBOARD_FUNDING_WEBHOOK_SECRET",
        "provider-shared-secret, 32+ bytes long",
    );
    let c = Config::load(Some(&deploy("switchboard-server.toml")), &env).unwrap();
    assert!(
        !c.funding.webhook_url.is_empty(),
        "top-ups charge the operator's provider, not the sandbox"
    );
    assert!(
        c.database_url.starts_with("postgres://"),
        "the node's env names the database"
    );
    assert_eq!(c.listen.to_string(), "0.0.0.0:8750");
    assert_eq!(
        c.admin_listen.to_string(),
        "127.0.0.1:8751",
        "metrics stay private"
    );
    assert!(!c.tls.cert_file.is_empty() && !c.tls.key_file.is_empty());
    assert_eq!(
        c.sms.gateway, "webhook",
        "no console gateway outside development"
    );
    assert!(!c.dev);
}

/// Unless the environment file sets `var` (a secret left commented out in the example), the
/// configuration refuses to load and names it; then it is given `value`, as an operator would.
fn require_secret(env: &mut HashMap<String, String>, var: &str, value: &str) {
    if env.contains_key(var) {
        return;
    }
    let e = Config::load(Some(&deploy("switchboard-server.toml")), env)
        .unwrap_err()
        .to_string();
    assert!(e.contains(var), "a node without {var} must not start: {e}");
    env.insert(var.into(), value.into());
}
