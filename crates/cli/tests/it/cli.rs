//! The `switchboard` binary against a real service on loopback and a real Secret Service
//! keyring (gnome-keyring) on a private D-Bus session: nothing touches the user's home,
//! data dir or keyring.

// Linux's desktop parts (D-Bus, gnome-keyring, dunst); Windows has its own in `remote.rs`.
#![cfg(all(unix, not(target_os = "macos")))]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use switchboard_server::testing::{TEST_PASSWORD, TestServer, TwoAccountsOnePhone};

use crate::common::{LiveRun, files_under, output_of, text};

/// A private session bus with an unlocked gnome-keyring on it; both stop on drop.
struct PrivateKeyring {
    bus: Child,
    address: String,
    home: tempfile::TempDir,
}

impl PrivateKeyring {
    fn start() -> Self {
        Self::start_with_display(None)
    }

    /// With a display, the bus can start a notification server (dunst) on demand.
    fn start_with_display(display: Option<&str>) -> Self {
        let home = tempfile::tempdir().unwrap();
        // The bus gets the private home too: a service it activates stays inside it.
        let mut bus = Command::new("dbus-daemon");
        if let Some(d) = display {
            bus.env("DISPLAY", d);
        } else {
            bus.env_remove("DISPLAY");
        }
        let bus = bus
            .args(["--session", "--nofork", "--print-address=1"])
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("XDG_RUNTIME_DIR", home.path())
            .stdout(Stdio::piped())
            .spawn()
            .expect("dbus-daemon (package dbus-daemon) is installed by cargo xtask test");
        // From here on, Drop stops the bus whatever happens.
        let mut me = Self {
            bus,
            address: String::new(),
            home,
        };
        let mut address = String::new();
        BufReader::new(me.bus.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        me.address = address.trim().to_string();
        let mut keyring = Command::new("gnome-keyring-daemon")
            .args(["--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &me.address)
            .env("HOME", me.home.path())
            .env("XDG_DATA_HOME", me.home.path().join("data"))
            .env("XDG_RUNTIME_DIR", me.home.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect(
                "gnome-keyring-daemon (package gnome-keyring) is installed by cargo xtask test",
            );
        let _ = keyring
            .stdin
            .take()
            .map(|mut i| i.write_all(b"test-keyring-password"));
        assert!(keyring.wait().unwrap().success(), "gnome-keyring started");
        // The daemon claims the Secret Service name a moment after it forks; asking earlier
        // would make the bus start a second, locked one.
        for _ in 0..200 {
            let names = Command::new("dbus-send")
                .args([
                    "--session",
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/",
                    "org.freedesktop.DBus.ListNames",
                ])
                .env("DBUS_SESSION_BUS_ADDRESS", &me.address)
                .output()
                .expect("dbus-send (package dbus-bin)");
            if text(&names.stdout).contains("org.freedesktop.secrets") {
                return me;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("gnome-keyring never took the Secret Service name");
    }
}

impl Drop for PrivateKeyring {
    fn drop(&mut self) {
        // The keyring daemon leaves with its bus.
        let _ = self.bus.kill();
        let _ = self.bus.wait();
    }
}

struct Cli<'a> {
    keyring: &'a PrivateKeyring,
    data: PathBuf,
}

impl Cli<'_> {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        let home = self.keyring.home.path();
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("XDG_DATA_HOME", home.join("xdg-data"))
            .env("XDG_RUNTIME_DIR", home)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.keyring.address)
            .env("SWITCHBOARD_DATA_DIR", &self.data);
        c
    }

    /// Adds alice_work and alice_home (password [`TEST_PASSWORD`]) as "Work" and "Personal".
    fn add_work_and_personal(&self, server: &str) {
        let pw = format!("{TEST_PASSWORD}\n");
        for (login, name) in [("alice_work", "Work"), ("alice_home", "Personal")] {
            let out = self.run(
                &[
                    "profile",
                    "add",
                    "--server",
                    server,
                    "--login",
                    login,
                    "--password-stdin",
                    "--name",
                    name,
                ],
                Some(&pw),
            );
            assert!(out.status.success(), "{}", text(&out.stderr));
        }
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        self.run_cmd(self.cmd(args), stdin)
    }

    fn run_cmd(&self, cmd: Command, stdin: Option<&str>) -> Output {
        output_of(cmd, stdin)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn profiles_send_and_run_through_the_cli_with_tokens_only_in_the_keyring() {
    let s = TestServer::start().await;
    let phone = "+8613800138000";
    let TwoAccountsOnePhone { work, bob, .. } = s.two_accounts_one_phone().await;

    let keyring = PrivateKeyring::start();
    let data = tempfile::tempdir().unwrap();
    let cli = Cli {
        keyring: &keyring,
        data: data.path().to_path_buf(),
    };
    let pw = format!("{TEST_PASSWORD}\n");

    let out = cli.run(
        &[
            "profile",
            "add",
            "--server",
            &s.base,
            "--login",
            "alice_work",
            "--password-stdin",
            "--name",
            "Work",
            "--color",
            "#2f6fed",
        ],
        Some(&pw),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // By phone number the service asks which account; the CLI says so in one line.
    let out = cli.run(
        &[
            "profile",
            "add",
            "--server",
            &s.base,
            "--login",
            phone,
            "--password-stdin",
        ],
        Some(&pw),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("public ID"), "{err}");
    let out = cli.run(
        &[
            "profile",
            "add",
            "--server",
            &s.base,
            "--login",
            "alice_home",
            "--password-stdin",
            "--name",
            "Personal",
        ],
        Some(&pw),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = cli.run(
        &[
            "profile",
            "add",
            "--server",
            &s.base,
            "--login",
            "alice_home",
            "--password-stdin",
            "--color",
            "blue",
        ],
        Some(&pw),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "a bad colour is refused before signing in"
    );

    let list = text(&cli.run(&["profile", "list"], None).stdout);
    let rows: Vec<Vec<&str>> = list.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 2, "{list}");
    assert_eq!(
        (rows[0][1], rows[0][2], rows[0][4]),
        ("Work", "alice_work", "ready"),
        "{list}"
    );
    assert_eq!((rows[1][1], rows[1][2]), ("Personal", "alice_home"));

    // The CLI's sessions exist on the service; their tokens are in no file of the data dir.
    let sessions = s.get("/v1/sessions", &work.token).await.body;
    assert_eq!(
        sessions["sessions"].as_array().unwrap().len(),
        2,
        "the test's own and the CLI's"
    );
    for f in files_under(data.path()) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(!text(&bytes).contains("Bearer"), "{}", f.display());
    }

    let out = cli.run(
        &[
            "send",
            "--profile",
            "work",
            "--to",
            "bob_the_2nd",
            "hello from the cli",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bobs = s.get("/v1/sync?limit=1000", &bob.token).await.body;
    let got: Vec<_> = bobs["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["data"]["body"] == "hello from the cli")
        .collect();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["data"]["from"], "alice_work");
    let out = cli.run(
        &["send", "--profile", "work", "--to", "nobody_here", "x"],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "a refused message is a failure: {}",
        text(&out.stdout)
    );

    // `run`: every profile live at once, one line per event.
    let run = LiveRun::start(cli.cmd(&["run"]));
    let wait_for = |needle: &str| run.wait_for(needle, Duration::from_secs(5));
    wait_for("Work state live");
    wait_for("Personal state live");
    for (n, to, body) in [(1, "alice_work", "for work"), (2, "alice_home", "for home")] {
        s.post_as(&bob, "/v1/messages", serde_json::json!({"client_id": format!("00000000-0000-4000-8000-00000000000{n}"), "to": to, "body": body}))
            .await
            .expect(201);
    }
    wait_for("Work message.new bob_the_2nd: for work");
    wait_for("Personal message.new bob_the_2nd: for home");
    drop(run);

    // Each profile's database is SQLCipher under a key only the keyring holds (every run
    // above read it from there): the system's plain sqlite3 cannot open it, and no message
    // is in any file of the data dir.
    for f in files_under(data.path()) {
        let bytes = text(&std::fs::read(&f).unwrap());
        assert!(
            !bytes.contains("for work") && !bytes.contains("hello from the cli"),
            "{} holds a message",
            f.display()
        );
    }
    let databases: Vec<PathBuf> = files_under(data.path())
        .into_iter()
        .filter(|f| f.ends_with("profile.db"))
        .collect();
    assert_eq!(databases.len(), 2);
    for db in databases {
        let out = Command::new("sqlite3")
            .arg(&db)
            .arg("SELECT count(*) FROM messages")
            .output()
            .expect("sqlite3 (package sqlite3) is installed by cargo xtask test");
        assert!(
            !out.status.success() && text(&out.stderr).contains("not a database"),
            "plain SQLite read {}: {}",
            db.display(),
            text(&out.stdout)
        );
    }

    let out = cli.run(&["profile", "remove", "Work"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sessions = s.get("/v1/sessions", &work.token).await.body;
    assert_eq!(
        sessions["sessions"].as_array().unwrap().len(),
        1,
        "the CLI's session was signed out"
    );
    let list = text(&cli.run(&["profile", "list"], None).stdout);
    assert_eq!(list.lines().count(), 1);
    let out = cli.run(&["profile", "remove", "Work"], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr).lines().count(), 1);
    let out = cli.run(&["profile", "frobnicate"], None);
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
    // What is typed after --to becomes an id at the edge: a malformed one is a usage error,
    // never sent on as some other kind of id.
    let out = cli.run(&["send", "--profile", "Home", "--to", "g_", "hi"], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("not a group id"),
        "the refusal says why: {}",
        text(&out.stderr)
    );
}

/// HTTPS with a private CA: refused (and said why, naming the host) until the CA is trusted,
/// by `--ca-file` or `SWITCHBOARD_CA_FILE`; plain http to another host is refused with the way
/// to allow it.
#[tokio::test(flavor = "multi_thread")]
async fn the_cli_speaks_tls_trusting_a_given_ca_and_says_when_it_cannot() {
    let s = TestServer::start_tls(|_| {}).await;
    let TwoAccountsOnePhone { bob, .. } = s.two_accounts_one_phone().await;
    let host = s.base.trim_start_matches("https://").to_string();
    let keyring = PrivateKeyring::start();
    let data = tempfile::tempdir().unwrap();
    let ca_file = data.path().join("test-ca.pem");
    std::fs::write(&ca_file, s.ca_pem.as_deref().unwrap()).unwrap();
    let ca = ca_file.to_str().unwrap();
    let cli = Cli {
        keyring: &keyring,
        data: data.path().join("switchboard"),
    };
    let pw = format!("{TEST_PASSWORD}\n");
    let add = [
        "profile",
        "add",
        "--server",
        &s.base,
        "--login",
        "alice_work",
        "--password-stdin",
        "--name",
        "Work",
    ];

    let out = cli.run(&add, Some(&pw));
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("certificate") && err.contains(&host), "{err}");

    let out = cli.run(&[&["--ca-file", ca][..], &add[..]].concat(), Some(&pw));
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Without the CA, `run` shows the profile's certificate state, not "offline".
    let mut run = cli
        .cmd(&["run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(run.stdout.take().unwrap()).lines();
    let line = loop {
        let l = lines.next().expect("a state line").unwrap();
        if l.starts_with("Work state ") && l != "Work state connecting" {
            break l;
        }
    };
    let _ = run.kill();
    let _ = run.wait();
    assert!(line.starts_with("Work state certificate error ("), "{line}");
    assert!(line.contains(&host), "{line}");

    // With it from the environment, the profile sends over HTTPS/WSS.
    let mut send = cli.cmd(&[
        "send",
        "--profile",
        "work",
        "--to",
        "bob_the_2nd",
        "over tls",
    ]);
    send.env("SWITCHBOARD_CA_FILE", ca);
    let out = cli.run_cmd(send, None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bobs = s.get("/v1/sync?limit=1000", &bob.token).await.body;
    assert!(
        bobs["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["data"]["body"] == "over tls"),
        "{bobs}"
    );
    let list = text(&cli.run(&["profile", "list"], None).stdout);
    let row: Vec<&str> = list.lines().next().unwrap().split('\t').collect();
    assert_eq!(
        row[3], s.base,
        "an https profile carries no cleartext mark: {list}"
    );

    // Plain http to another host: refused, and the flag that allows it is named.
    let lan = [
        "profile",
        "add",
        "--server",
        "http://10.0.0.5:8750",
        "--login",
        "alice_home",
        "--password-stdin",
    ];
    let out = cli.run(&lan, Some(&pw));
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("10.0.0.5:8750") && err.contains("--allow-insecure-http"),
        "{err}"
    );
}

/// A virtual X display (for the notification server); stops on drop.
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Self {
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1024x768x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb (package xvfb) is installed by cargo xtask test");
        let mut n = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut n)
            .unwrap();
        Self {
            child,
            display: format!(":{}", n.trim()),
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn run_raises_native_notifications_on_a_real_notification_server() {
    let s = TestServer::start().await;
    let TwoAccountsOnePhone { bob, .. } = s.two_accounts_one_phone().await;
    let x = Xvfb::start();
    let keyring = PrivateKeyring::start_with_display(Some(&x.display));
    // Record every call to the notification server on the private bus.
    let mut monitor = Command::new("dbus-monitor")
        .args([
            "--address",
            &keyring.address,
            "interface='org.freedesktop.Notifications'",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("dbus-monitor (package dbus-bin)");
    let recorded = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let (out, recorded) = (monitor.stdout.take().unwrap(), recorded.clone());
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let mut r = recorded.lock().unwrap();
                r.push_str(&l);
                r.push('\n');
            }
        })
    };
    let data = tempfile::tempdir().unwrap();
    let cli = Cli {
        keyring: &keyring,
        data: data.path().to_path_buf(),
    };
    cli.add_work_and_personal(&s.base);
    let mut run = cli
        .cmd(&["run"])
        .env("DISPLAY", &x.display)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let run_reader = {
        let (out, lines) = (run.stdout.take().unwrap(), lines.clone());
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                lines.lock().unwrap().push_str(&(l + "\n"));
            }
        })
    };
    let wait_for = |buf: &std::sync::Mutex<String>, needle: &str| {
        for _ in 0..1000 {
            if buf.lock().unwrap().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("never saw {needle:?} in:\n{}", buf.lock().unwrap());
    };
    wait_for(&lines, "Work state live");
    wait_for(&lines, "Personal state live");
    for (n, to, body) in [(1, "alice_work", "for work"), (2, "alice_home", "for home")] {
        s.post_as(&bob, "/v1/messages", serde_json::json!({"client_id": format!("00000000-0000-4000-8000-00000000000{n}"), "to": to, "body": body}))
            .await
            .expect(201);
    }
    wait_for(&recorded, "string \"Work · bob_the_2nd\"");
    wait_for(&recorded, "string \"Personal · bob_the_2nd\"");
    let calls = recorded.lock().unwrap().clone();
    assert!(calls.contains("member=Notify"), "{calls}");
    assert!(
        calls.contains("string \"for work\"") && calls.contains("string \"for home\""),
        "bodies: {calls}"
    );
    assert!(
        calls.contains("|bob_the_2nd\""),
        "the action names the conversation to open: {calls}"
    );
    assert_eq!(
        calls.matches("member=Notify").count(),
        2,
        "one notification per message: {calls}"
    );
    let _ = run.kill();
    let _ = run.wait();
    run_reader.join().unwrap();
    let _ = monitor.kill();
    let _ = monitor.wait();
    reader.join().unwrap();
}

/// Two profiles operate one official account each; the CLI lists both, shows one inbox,
/// answers as the official account from the profile that operates it, and publishes one
/// article to both (a rerun publishes nothing twice).
#[tokio::test(flavor = "multi_thread")]
async fn official_accounts_of_every_profile_are_listed_answered_and_published_to() {
    let s = TestServer::start().await;
    s.two_accounts_one_phone().await;
    let boss = s.verified_user(20, "acme_boss").await;
    let carol = s.user(21, "carol_c").await;
    let mut ids = Vec::new();
    for (name, operator) in [("Acme Coffee", "alice_work"), ("Acme Tea", "alice_home")] {
        ids.push(
            s.official(&boss, name, &[(operator, "admin")], &[&carol])
                .await,
        );
    }
    s.post_as(
        &carol,
        "/v1/messages",
        serde_json::json!({"client_id": "1b4e28ba-2fa1-41d2-883f-0016d3cca427", "to": ids[0], "body": "open on Sunday?"}),
    )
    .await
    .expect(201);

    let keyring = PrivateKeyring::start();
    let data = tempfile::tempdir().unwrap();
    let cli = Cli {
        keyring: &keyring,
        data: data.path().to_path_buf(),
    };
    cli.add_work_and_personal(&s.base);

    let out = cli.run(&["official", "list"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list = text(&out.stdout);
    assert!(
        list.contains(&format!("Work\t{}\tAcme Coffee\tadmin\t1", ids[0]))
            && list.contains(&format!("Personal\t{}\tAcme Tea\tadmin\t0", ids[1])),
        "{list}"
    );
    let out = cli.run(&["official", "inbox", "--unclaimed"], None);
    let inbox = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(inbox.lines().count(), 1, "{inbox}");
    assert!(
        inbox.starts_with("Work\tAcme Coffee\tcarol_c\t1\t-\topen on Sunday?"),
        "{inbox}"
    );

    let out = cli.run(
        &[
            "official",
            "reply",
            "--as",
            &ids[0],
            "--to",
            "carol_c",
            "from noon",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("from Work"),
        "{}",
        text(&out.stdout)
    );
    let out = cli.run(
        &[
            "official", "reply", "--as", "o_nobody", "--to", "carol_c", "hi",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no profile operates o_nobody"));

    let body = data.path().join("article.txt");
    std::fs::write(&body, "New beans.\n\nRoasted on Friday.").unwrap();
    let publish = [
        "official",
        "publish",
        "--to",
        &ids[0],
        "--to",
        &ids[1],
        "--title",
        "This week",
        "--body-file",
        body.to_str().unwrap(),
    ];
    let first = cli.run(&publish, None);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let again = cli.run(&publish, None);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(
        text(&first.stdout).lines().count(),
        2,
        "{}",
        text(&first.stdout)
    );
    assert_eq!(
        text(&first.stdout),
        text(&again.stdout),
        "the same articles"
    );
    let page = s.get("/v1/sync?limit=1000", &carol.token).await.body;
    let articles = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "article.new")
        .count();
    assert_eq!(articles, 2, "one per official account, none twice");
    let answers = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "message.new" && e["data"]["from"] == ids[0].as_str())
        .count();
    assert_eq!(answers, 1);
}
