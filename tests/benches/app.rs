//! `cargo xtask bench app`: the desktop app's memory, size and start-up, printed, never
//! asserted. Run by xtask under Xvfb with the release app and CLI built.
//!
//! Each app instance runs in a D-Bus session of its own with its own unlocked gnome-keyring
//! and home (so five copies do not hand over to each other through the single-instance
//! lock); its profiles are added with the `switchboard` CLI inside that session, then the app
//! starts on the same data dir. Memory is PSS summed over the app and its WebKit processes.
//! P1: 1 vs 10 live profiles; five copies with one profile each vs one app with five. P6:
//! release binary size. Start-up: launch to the UI's first call into Rust (page loaded and
//! running), from the app's own log line.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench that cannot run should stop loudly

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use switchboard_server::testing::{TEST_PASSWORD, TestServer};

struct Instance {
    child: Child,
    _home: tempfile::TempDir,
    ready_ms: std::sync::mpsc::Receiver<u64>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        // The session's processes are this shell's children; end them all.
        let _ = Command::new("pkill")
            .args(["-TERM", "-s", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn target(name: &str) -> PathBuf {
    PathBuf::from(std::env::var("SWITCHBOARD_RELEASE_DIR").expect("set by cargo xtask bench app"))
        .join(name)
}

/// Starts one app in a fresh session with `logins` as its profiles.
fn launch(server: &str, logins: &[String]) -> Instance {
    launch_with(server, logins, &[], "")
}

/// [`launch`], with `env` set for the app (and so for its WebKit processes) and `args` on its
/// command line.
fn launch_with(server: &str, logins: &[String], env: &[(&str, &str)], args: &str) -> Instance {
    let home = tempfile::tempdir().unwrap();
    let cli = target("switchboard");
    let mut script = String::from(
        "eval \"$(printf switchboard | gnome-keyring-daemon --unlock --components=secrets)\" >/dev/null\n",
    );
    for login in logins {
        script.push_str(&format!(
            "printf '%s' '{TEST_PASSWORD}' | {} --data-dir \"$HOME/data\" profile add --server {server} --login {login} --password-stdin --name {login} >/dev/null || exit 1\n",
            cli.display()
        ));
    }
    script.push_str(&format!(
        "exec {} {args}\n",
        target("switchboard-app").display()
    ));
    let mut child = Command::new("setsid")
        .args(["dbus-run-session", "--", "sh", "-c", &script])
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path().join("share"))
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_CACHE_HOME", home.path().join("cache"))
        .env("XDG_RUNTIME_DIR", home.path())
        .env("SWITCHBOARD_DATA_DIR", home.path().join("data"))
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("setsid, dbus-run-session");
    let err = child.stderr.take().unwrap();
    let (tx, ready_ms) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            if let Some(ms) = l.split("ui_ready_ms=").nth(1) {
                let _ = tx.send(ms.trim().parse().unwrap_or(0));
            }
        }
    });
    Instance {
        child,
        _home: home,
        ready_ms,
    }
}

/// PSS in kB of the app and its WebKit processes in this instance's session.
fn pss_kb(instance: &Instance) -> u64 {
    let sid = instance.child.id();
    let mut total = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Field 6 (after the parenthesised name) is the session id.
        let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let session: u32 = after
            .split_whitespace()
            .nth(3)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let ours = comm.starts_with("switchboard-app") || comm.starts_with("WebKit");
        if session != sid || !ours {
            continue;
        }
        total += switchboard_core::stats::pss_bytes(pid).unwrap_or(0) / 1024;
    }
    total
}

/// Waits for the UI's first call, then lets the profiles connect and memory settle.
fn settle(instance: &Instance) -> u64 {
    let ms = instance
        .ready_ms
        .recv_timeout(Duration::from_secs(60))
        .expect("the app's UI came up");
    std::thread::sleep(Duration::from_secs(8));
    ms
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

#[tokio::main]
async fn main() {
    let s = TestServer::start_with(|c| {
        c.sms.per_ip_per_hour = 100_000;
        c.limits.messages_per_minute = u32::MAX;
        c.sessions.login_per_ip_per_hour = 100_000;
    })
    .await;
    let mut logins = Vec::new();
    for n in 0..10u32 {
        let id = format!("bench_user_{n:02}");
        s.user(n + 20, &id).await;
        logins.push(id);
    }
    let size = std::fs::metadata(target("switchboard-app")).unwrap().len();
    println!(
        "P6 release binary: {:.1} MB ({size} bytes)",
        size as f64 / 1e6
    );

    let one = launch(&s.base, &logins[..1]);
    let ready = settle(&one);
    let p1 = pss_kb(&one);
    drop(one);
    println!("start-up: launch to the UI's first call {ready} ms (1 profile)");
    let ten = launch(&s.base, &logins[..10]);
    let ready10 = settle(&ten);
    let p10 = pss_kb(&ten);
    drop(ten);
    println!("start-up: launch to the UI's first call {ready10} ms (10 profiles)");
    println!(
        "P1 PSS, app + WebKit: 1 profile {:.1} MB, 10 profiles {:.1} MB: ratio {:.2} (goal ≤ 1.15), {:.2} MB per extra profile",
        mb(p1),
        mb(p10),
        p10 as f64 / p1 as f64,
        mb(p10.saturating_sub(p1)) / 9.0
    );

    // P1b: the web process's settings, one at a time, then together: 10 live profiles each.
    println!("P1b PSS, app + WebKit, 10 live profiles, per setting of the web process:");
    let settings: [(&str, &[(&str, &str)]); 5] = [
        (
            "as shipped (compositing mode off, DMA-BUF renderer off)",
            &[],
        ),
        (
            "compositing mode on (WEBKIT_DISABLE_COMPOSITING_MODE=0)",
            &[("WEBKIT_DISABLE_COMPOSITING_MODE", "0")],
        ),
        (
            "DMA-BUF renderer on (WEBKIT_DISABLE_DMABUF_RENDERER=0)",
            &[("WEBKIT_DISABLE_DMABUF_RENDERER", "0")],
        ),
        (
            "as shipped, no JavaScript JIT (JSC_useJIT=0)",
            &[("JSC_useJIT", "0")],
        ),
        (
            "as shipped, two malloc arenas (MALLOC_ARENA_MAX=2)",
            &[("MALLOC_ARENA_MAX", "2")],
        ),
    ];
    for (name, env) in settings {
        let app = launch_with(&s.base, &logins[..10], env, "");
        settle(&app);
        println!("  {name:<58} {:>7.1} MB (goal ≤ 200)", mb(pss_kb(&app)));
    }
    // The window closed to the tray is destroyed, its web process with it; `--tray` starts
    // the app that way (no UI, so no start-up line to wait for: the same 8 s for the profiles).
    let tray = launch_with(&s.base, &logins[..10], &[], "--tray");
    std::thread::sleep(Duration::from_secs(10));
    println!(
        "  {:<58} {:>7.1} MB (goal ≤ 200)",
        "in the tray, no window (--tray)",
        mb(pss_kb(&tray))
    );
    drop(tray);

    // P1 at 100 live profiles.
    let mut hundred = logins.clone();
    for n in 10..100u32 {
        let id = format!("bench_user_{n:02}");
        s.register(&format!("+8613900{n:06}"), &id, TEST_PASSWORD)
            .await;
        hundred.push(id);
    }
    let app = launch(&s.base, &hundred);
    let ready100 = settle(&app);
    std::thread::sleep(Duration::from_secs(10));
    let p100 = pss_kb(&app);
    drop(app);
    println!(
        "P1 PSS, app + WebKit: 100 live profiles {:.1} MB, {:.2} MB per profile over the first; launch to the UI's first call {ready100} ms",
        mb(p100),
        mb(p100.saturating_sub(p1)) / 99.0
    );

    let five = launch(&s.base, &logins[..5]);
    settle(&five);
    let p5 = pss_kb(&five);
    drop(five);
    let copies: Vec<Instance> = logins[..5]
        .iter()
        .map(|l| launch(&s.base, std::slice::from_ref(l)))
        .collect();
    for c in &copies {
        settle(c);
    }
    let pc: u64 = copies.iter().map(pss_kb).sum();
    drop(copies);
    println!(
        "P1 one app with five profiles {:.1} MB vs five copies with one each {:.1} MB: ratio {:.2} (goal ≤ 0.25)",
        mb(p5),
        mb(pc),
        p5 as f64 / pc as f64
    );
}
