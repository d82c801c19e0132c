//! The `switchboard` binary as a Windows program (under Wine in `cargo xtask test`) against a
//! service running natively on loopback (`SWITCHBOARD_TEST_SERVER`): two profiles added and
//! live at once, their secrets in the Credential Manager and nowhere in the data folder, their
//! SQLCipher databases unreadable when copied, messages both ways. On Linux the same paths
//! run against a real Secret Service in `cli.rs`; this is the Windows build's own proof.

#![cfg(windows)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use switchboard_core::ProfileId;
use switchboard_core::vault::KeyringVault;
use switchboard_server::testing::{TEST_PASSWORD, register_remote};

use crate::common::{LiveRun, files_under, output_of, text};

fn server() -> String {
    std::env::var("SWITCHBOARD_TEST_SERVER").expect(
        "SWITCHBOARD_TEST_SERVER: the URL of a service in development mode (cargo xtask test \
         starts one for the Windows pass)",
    )
}

struct Cli {
    data: PathBuf,
}

impl Cli {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        c.args(args).env("SWITCHBOARD_DATA_DIR", &self.data);
        c
    }

    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = output_of(self.cmd(args), stdin);
        assert!(
            out.status.success(),
            "switchboard {args:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }
}

/// A public id and phone number of this run's own, so reruns against one service never clash.
fn unique(prefix: &str) -> (String, String) {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros()
        % 100_000_000;
    (format!("{prefix}_{n}"), format!("+86139{n:08}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn two_profiles_live_at_once_with_secrets_in_the_credential_manager() {
    let base = server();
    let http = reqwest::Client::new();
    let (alice, alice_phone) = unique("wa");
    tokio::time::sleep(Duration::from_millis(2)).await;
    let (bob, bob_phone) = unique("wb");
    let alice_token = register_remote(&http, &base, &alice_phone, &alice).await;
    let bob_token = register_remote(&http, &base, &bob_phone, &bob).await;
    // Contacts, so either may write to the other.
    let request: serde_json::Value = http
        .post(format!("{base}/v1/contacts/requests"))
        .bearer_auth(&alice_token)
        .json(&serde_json::json!({"public_id": bob}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = request["id"].as_str().expect("a contact request id");
    let accepted = http
        .post(format!("{base}/v1/contacts/requests/{id}/accept"))
        .bearer_auth(&bob_token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert!(accepted.status().is_success());

    let data = tempfile::tempdir().unwrap();
    let cli = Cli {
        data: data.path().to_path_buf(),
    };
    let pw = format!("{TEST_PASSWORD}\n");
    for (login, name) in [(alice.as_str(), "Work"), (bob.as_str(), "Personal")] {
        cli.ok(
            &[
                "profile",
                "add",
                "--server",
                &base,
                "--login",
                login,
                "--password-stdin",
                "--name",
                name,
            ],
            Some(&pw),
        );
    }
    let list = cli.ok(&["profile", "list"], None);
    let rows: Vec<Vec<&str>> = list.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 2, "{list}");
    assert_eq!((rows[0][1], rows[0][2]), ("Work", alice.as_str()), "{list}");
    assert_eq!(
        (rows[1][1], rows[1][2]),
        ("Personal", bob.as_str()),
        "{list}"
    );

    // Each profile's token and database key are in the Credential Manager (read back here
    // through the same store the CLI used), and neither is in any file of the data folder.
    let vault = KeyringVault::os().expect("the Credential Manager");
    let mut secrets = Vec::new();
    for row in &rows {
        let s = vault.load(&ProfileId::new(row[0])).unwrap();
        let token = s
            .token
            .expect("the profile's session token is in the keyring");
        let key = s
            .database_key
            .expect("the profile's database key is in the keyring");
        secrets.push(token.expose().to_string());
        // The key as SQLCipher is given it: x'<64 hex digits>'.
        secrets.push(key.sql_literal().trim_matches(['"', 'x', '\'']).to_string());
    }
    assert_eq!(secrets.len(), 4);

    // Sent while no profile is live: Personal finds it in its backlog.
    cli.ok(
        &["send", "--profile", "Work", "--to", &bob, "hello from work"],
        None,
    );

    // `run`: both profiles live at once; each sees what the other's account writes.
    // (Wine starts a process in about a second: a longer wait than on Linux.)
    let run = LiveRun::start(cli.cmd(&["run"]));
    let wait_for = |needle: &str| run.wait_for(needle, Duration::from_secs(30));
    wait_for("Work state live");
    wait_for("Personal state live");
    wait_for(&format!("Personal message.new {alice}: hello from work"));
    // Both ways while both are live: the event stream, not only the backlog, reaches each.
    for (n, token, to, body) in [
        (1, &bob_token, &alice, "hello back"),
        (2, &alice_token, &bob, "live one"),
    ] {
        let sent = http
            .post(format!("{base}/v1/messages"))
            .bearer_auth(token)
            .json(&serde_json::json!({
                "client_id": format!("00000000-0000-4000-8000-00000000000{n}"),
                "to": to, "body": body
            }))
            .send()
            .await
            .unwrap();
        assert!(sent.status().is_success(), "{}", sent.status());
    }
    wait_for(&format!("Work message.new {bob}: hello back"));
    wait_for(&format!("Personal message.new {alice}: live one"));
    drop(run);

    // Nothing secret, and no message, in any file of the data folder; the databases copied
    // elsewhere are not SQLite anyone can read without the key.
    let files = files_under(data.path());
    for f in &files {
        let bytes = text(&std::fs::read(f).unwrap());
        for s in &secrets {
            assert!(
                !bytes.contains(s.as_str()),
                "{} holds a secret",
                f.display()
            );
        }
        for message in ["hello from work", "hello back", "live one"] {
            assert!(!bytes.contains(message), "{} holds a message", f.display());
        }
    }
    let databases: Vec<&PathBuf> = files.iter().filter(|f| f.ends_with("profile.db")).collect();
    assert_eq!(databases.len(), 2, "{files:?}");
    let elsewhere = tempfile::tempdir().unwrap();
    for db in databases {
        let copy = elsewhere.path().join("copied.db");
        std::fs::copy(db, &copy).unwrap();
        let head = std::fs::read(&copy).unwrap();
        assert!(
            !head.starts_with(b"SQLite format 3\0"),
            "{} is plain SQLite",
            db.display()
        );
    }

    // Removal signs out, deletes the Credential Manager's entry and the profile's folder.
    let work_id = ProfileId::new(rows[0][0]);
    cli.ok(&["profile", "remove", "Work"], None);
    assert!(
        vault.load(&work_id).unwrap().is_empty(),
        "the removed profile's entry is gone from the Credential Manager"
    );
    assert!(!data.path().join("profiles").join(rows[0][0]).exists());
    assert_eq!(cli.ok(&["profile", "list"], None).lines().count(), 1);
}
