//! `cargo xtask run | test | setup`: the commands the README gives (and `bench`, `bundle`, `pg`).
//!
//! Each installs what it needs first (Debian/Ubuntu packages through apt, with sudo when not
//! root; Rust components and cargo-nextest through rustup and cargo), so that both work on a
//! fresh machine with nothing but a Rust toolchain.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use anyhow::{Context, Result, bail};

mod windows;

/// Debian packages the build and the tests need: a C toolchain for the bundled SQLCipher (its
/// crypto from libssl-dev) and ring; WebKitGTK and friends for the Tauri shell; a private D-Bus
/// session with gnome-keyring for the keyring tests; plain sqlite3 to show profile databases
/// are unreadable without their key; a virtual X display with dunst for the native-notification and
/// window tests; WebKitWebDriver for driving the app's window; PostgreSQL (Debian 12's, 15) for
/// the service's PostgreSQL backend, run as a throwaway cluster (see [`PgCluster`]).
const APT_PACKAGES: &[&str] = &[
    "libwebkit2gtk-4.1-dev",
    "libayatana-appindicator3-dev",
    "librsvg2-dev",
    "libssl-dev",
    "libxdo-dev",
    "libsoup-3.0-dev",
    "libjavascriptcoregtk-4.1-dev",
    "webkit2gtk-driver",
    "xauth",
    "build-essential",
    "pkg-config",
    "curl",
    "dbus-daemon",
    "dbus-session-bus-common",
    "dbus-bin",
    "gnome-keyring",
    "procps",
    "dunst",
    "xvfb",
    // xwd: the window test's screenshots, read from the X server (see app_window.rs).
    "x11-apps",
    "postgresql",
    // The system's plain SQLite, to prove a profile database is unreadable without its key.
    "sqlite3",
    // A virtual environment for the S3-compatible server the media tests store images in.
    "python3-venv",
];

/// Debian packages of the Windows pass (see [`windows`]): Rust 1.96 with its standard library's
/// source (rustup cannot fetch another target here, so the std is built from that source),
/// mingw-w64 for the C parts (SQLCipher, OpenSSL, ring) and Wine to run the result.
const WINDOWS_PACKAGES: &[&str] = &[
    "rustc-web",
    "cargo-web",
    "rust-web-src",
    "gcc-mingw-w64-x86-64",
    "wine64",
];

/// The S3-compatible server of the media tests: moto's, from PyPI, pinned.
const MOTO: &str = "moto[server]==5.2.5";

/// Where `setup` keeps moto's virtual environment: outside the checkout, so a fresh clone
/// reuses it (as `cargo install` reuses `~/.cargo/bin`).
fn moto_dir() -> PathBuf {
    let data = std::env::var_os("XDG_DATA_HOME").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".local/share"),
        PathBuf::from,
    );
    data.join("switchboard-dev/moto-5.2.5")
}

fn moto_server() -> PathBuf {
    moto_dir().join("bin/moto_server")
}

/// The per-user directories a test run gets its own of: variable, path under its temp root.
const HOME_DIRS: [(&str, &str); 6] = [
    ("HOME", "home"),
    ("XDG_DATA_HOME", "home/.local/share"),
    ("XDG_CONFIG_HOME", "home/.config"),
    ("XDG_STATE_HOME", "home/.local/state"),
    ("XDG_CACHE_HOME", "home/.cache"),
    ("XDG_RUNTIME_DIR", "runtime"),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup(),
        Some("run") => run(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("bundle") => bundle(),
        Some("pg") => pg(),
        Some("icons") => icons(),
        Some("windows") => setup().and_then(|()| build_ui()).and_then(|()| {
            let pass = windows::Pass::start(root())?;
            status({
                let mut c = cargo();
                c.args(["build", "--package", "switchboard-server"]);
                c
            })?;
            pass.native_ready();
            pass.finish()
        }),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n  \
                 run     build and start switchboard-server in development mode\n  \
                 test    formatting, lints and every test (hermetic)\n  \
                 bench   [service|scale|official|moments|core|app] print performance figures (release build)\n  \
                 bundle  build the desktop app's .deb (target/release/bundle)\n  \
                 windows build the workspace for Windows and run the core's and the CLI's tests under Wine\n  \
                 icons   make the platform icons (.png, .ico, .icns) in src-tauri/icons from icons/switchboard.svg\n  \
                 pg      start a throwaway PostgreSQL and print SWITCHBOARD_TEST_PG (Ctrl-C stops it)\n  \
                 setup   install what the other two need"
            );
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("xtask: {e:#}");
        std::process::exit(1);
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

fn status(mut cmd: Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let st = cmd
        .status()
        .with_context(|| format!("cannot start {shown}"))?;
    if !st.success() {
        bail!("{shown} failed ({st})");
    }
    Ok(())
}

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"))
}

fn apt_install(packages: &[&str]) -> Result<()> {
    if !Path::new("/usr/bin/apt-get").exists() {
        eprintln!("xtask: not a Debian/Ubuntu system; make sure these are installed: {packages:?}");
        return Ok(());
    }
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    let sudo = |args: &[&str]| {
        let mut c = if is_root() {
            Command::new(args[0])
        } else {
            Command::new("sudo")
        };
        if is_root() {
            c.args(&args[1..]);
        } else {
            c.args(args);
        }
        c.env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    status(sudo(&["apt-get", "update", "-q"]))?;
    let mut install = vec!["apt-get", "install", "-y", "-q", "--no-install-recommends"];
    install.extend(&missing);
    status(sudo(&install))
}

fn setup() -> Result<()> {
    apt_install(APT_PACKAGES)?;
    apt_install(WINDOWS_PACKAGES)?;
    for component in ["rustfmt", "clippy"] {
        let probe = if component == "rustfmt" {
            ["fmt", "--version"]
        } else {
            ["clippy", "--version"]
        };
        if !succeeds("cargo", &probe) {
            status({
                let mut c = Command::new("rustup");
                c.args(["component", "add", component]);
                c
            })?;
        }
    }
    if !succeeds("node", &["--version"]) {
        apt_install(&["nodejs", "npm"])?;
    }
    if !succeeds("tauri-driver", &["--help"]) {
        eprintln!("xtask: installing tauri-driver");
        status({
            let mut c = cargo();
            c.args(["install", "tauri-driver", "--version", "^2", "--locked"]);
            c
        })?;
    }
    if !moto_server().exists() {
        eprintln!("xtask: installing {MOTO} into {}", moto_dir().display());
        status({
            let mut c = Command::new("/usr/bin/python3");
            c.args(["-m", "venv"]).arg(moto_dir());
            c
        })?;
        status({
            let mut c = Command::new(moto_dir().join("bin/pip"));
            c.args(["install", "--quiet", MOTO]);
            c
        })?;
    }
    if !succeeds("cargo", &["nextest", "--version"]) {
        eprintln!("xtask: installing cargo-nextest");
        status({
            let mut c = cargo();
            c.args(["install", "cargo-nextest", "--locked"]);
            c
        })?;
    }
    Ok(())
}

fn npm(args: &[&str]) -> Command {
    let mut c = Command::new("npm");
    c.current_dir(root().join("ui")).args(args);
    c
}

/// Installs the UI's packages (exactly the lock file's) and builds `ui/dist`.
///
/// `@tauri-apps/cli` is pinned to an exact version whose per-platform packages all exist in
/// the registry: with one missing, `npm install` writes a lock file that `npm ci` refuses.
fn build_ui() -> Result<()> {
    let ui = root().join("ui");
    let stamp = ui.join("node_modules/.package-lock.json");
    let stale = match (
        std::fs::metadata(&stamp),
        std::fs::metadata(ui.join("package-lock.json")),
    ) {
        (Ok(a), Ok(b)) => a.modified()? < b.modified()?,
        _ => true,
    };
    if stale {
        status(npm(&["ci", "--no-audit", "--no-fund"]))?;
    }
    status(npm(&["run", "build"]))
}

/// The desktop app with the UI embedded (the crate's default feature), as `run` starts it.
fn build_app() -> Result<PathBuf> {
    build_ui()?;
    status({
        let mut c = cargo();
        c.args(["build", "--package", "switchboard-app"]);
        c
    })?;
    Ok(root().join("target/debug/switchboard-app"))
}

fn run(extra: &[String]) -> Result<()> {
    setup()?;
    status({
        let mut c = cargo();
        c.args(["build", "--package", "switchboard-server"]);
        c
    })?;
    let app = build_app()?;
    let bin = root().join("target/debug/switchboard-server");
    let listen = "127.0.0.1:8750";
    println!("Starting the service in development mode and the app (closing the app stops both).");
    println!("SMS codes appear below, and the app offers to fill them in.");
    let mut server = Command::new(bin)
        .args(["--dev", "--listen", listen])
        .args(extra)
        .spawn()
        .context("cannot start switchboard-server")?;
    let result = Command::new(app)
        .env("SWITCHBOARD_SERVICE_URL", format!("http://{listen}"))
        .status()
        .context("cannot start switchboard-app");
    let _ = server.kill();
    let _ = server.wait();
    result.map(|_| ())
}

fn test(extra: &[String]) -> Result<()> {
    setup()?;
    status({
        let mut c = cargo();
        c.args(["fmt", "--all", "--check"]);
        c
    })?;
    // The UI first: the app crate embeds ui/dist at compile time, in clippy's check too.
    build_ui()?;
    status(npm(&["test"]))?;
    status({
        let mut c = cargo();
        c.args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ]);
        c
    })?;

    // The Windows pass builds beside the native passes (its build overlaps their test runs)
    // and runs its tests under Wine once the native service binary is there.
    let windows = windows::Pass::start(root())?;

    // Hermetic: the tests get a home and XDG dirs of their own, and afterwards that home must
    // still be empty: nothing may have written to "the user's" files.
    let sandbox = tempfile::Builder::new()
        .prefix("switchboard-test-home")
        .tempdir()?;
    let home = sandbox.path().join("home");
    let real_home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let cargo_home =
        std::env::var_os("CARGO_HOME").map_or_else(|| real_home.join(".cargo"), PathBuf::from);
    let rustup_home =
        std::env::var_os("RUSTUP_HOME").map_or_else(|| real_home.join(".rustup"), PathBuf::from);
    // The environment of both nextest passes below: the sandbox's home and XDG dirs, the real
    // cargo and rustup homes (the toolchain lives there) and the throwaway PostgreSQL.
    let mut env: Vec<(&str, OsString)> = Vec::new();
    let mut made = BTreeSet::new();
    for (var, sub) in HOME_DIRS {
        let dir = sandbox.path().join(sub);
        std::fs::create_dir_all(&dir)?;
        made.insert(dir.clone());
        env.push((var, dir.into()));
    }
    env.push(("CARGO_HOME", cargo_home.clone().into()));
    env.push(("RUSTUP_HOME", rustup_home.clone().into()));
    // Stopped and removed when dropped: after the passes, on every way out of this function.
    let postgres = PgCluster::start()?;
    env.push(("SWITCHBOARD_TEST_PG", postgres.url().into()));
    env.push(("SWITCHBOARD_TEST_S3_SERVER", moto_server().into()));
    let nextest = |args: &[&str]| {
        let mut c = cargo();
        c.envs(env.iter().map(|(var, value)| (var, value)))
            .args(["nextest", "run", "--locked", "--no-fail-fast"])
            .args(args)
            .args(extra);
        c
    };
    // The tests' build first, as nextest builds them (same profile and features, so nextest
    // finds it fresh): the Windows pass needs the native service binary it makes.
    status({
        let mut c = cargo();
        c.args(["test", "--no-run", "--workspace", "--locked"]);
        c
    })?;
    windows.native_ready();
    // Everything, on the default backend (SQLite); the tests that exercise both backends
    // themselves (the server's `store` and `concurrency`) use SWITCHBOARD_TEST_PG.
    let on_default = status(nextest(&["--workspace"]));
    // The service's integration tests again, with the service on PostgreSQL.
    let filter = postgres_pass_filter();
    let mut pass = nextest(&["--package", "switchboard-server", "-E", &filter]);
    pass.env("SWITCHBOARD_TEST_BACKEND", "postgres");
    let on_postgres = status(pass);
    drop(postgres);
    let failed: Vec<String> = [on_default, on_postgres]
        .into_iter()
        .filter_map(Result::err)
        .map(|e| format!("{e:#}"))
        .collect();
    if !failed.is_empty() {
        bail!("{}", failed.join("\n"));
    }

    // The app in a real window: Xvfb, a private D-Bus session (dunst is activated on it for
    // notifications, gnome-keyring unlocked for tokens), driven through WebDriver. The binary
    // is the one the workspace build above made (the app's integration tests need it), so
    // `--workspace` again: the same feature set, nothing rebuilt.
    let app = root().join("target/debug/switchboard-app");
    let window_home = tempfile::Builder::new()
        .prefix("switchboard-app-home")
        .tempdir()?;
    let mut window = Command::new("xvfb-run");
    window
        .current_dir(root())
        .args([
            "-a",
            "-s",
            "-screen 0 1280x800x24",
            "dbus-run-session",
            "--",
            "sh",
            "-c",
            "eval \"$(printf switchboard | gnome-keyring-daemon --unlock --components=secrets)\" && \
             exec cargo nextest run --workspace --locked -E 'package(switchboard-e2e) and test(/^app_window::/)' --run-ignored only --no-fail-fast",
        ])
        .env("SWITCHBOARD_APP", &app)
        .env("CARGO_HOME", &cargo_home)
        .env("RUSTUP_HOME", &rustup_home);
    for (var, sub) in HOME_DIRS {
        // A throwaway home of its own: the keyring daemon and WebKit write there by design.
        let dir = window_home.path().join(sub);
        std::fs::create_dir_all(&dir)?;
        window.env(var, dir);
    }
    let on_screen = status(window);
    let on_windows = windows.finish();
    let failed: Vec<String> = [on_screen, on_windows]
        .into_iter()
        .filter_map(Result::err)
        .map(|e| format!("{e:#}"))
        .collect();
    if !failed.is_empty() {
        bail!("{}", failed.join("\n"));
    }

    let mut written = Vec::new();
    collect_files(&home, &made, &mut written);
    if !written.is_empty() {
        bail!("hermeticity: the tests wrote into the home directory: {written:?}");
    }
    println!("hermeticity: the tests left the home and XDG directories untouched");
    Ok(())
}

/// The PostgreSQL pass's filterset: the service's integration tests (one binary, a module per
/// suite) except the suites that choose their backends themselves and already ran on
/// PostgreSQL in the first pass: the `on_every_backend!` suites, and the several-node suites
/// (`Backend::Postgres` only).
fn postgres_pass_filter() -> String {
    let suites = root().join("crates/server/tests/it");
    let mut own: Vec<String> = std::fs::read_dir(&suites)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let path = entry.path();
            let name = path.file_stem()?.to_str()?.to_string();
            if path.extension()? != "rs" || name == "main" || name == "common" {
                return None;
            }
            let source = std::fs::read_to_string(&path).ok()?;
            let own = source.contains("on_every_backend!") || source.contains("Backend::Postgres");
            own.then_some(name)
        })
        .collect();
    own.sort();
    let mut filter = String::from("kind(test)");
    for suite in own {
        filter.push_str(&format!(" and not test(/^{suite}::/)"));
    }
    filter
}

fn bench(which: &[String]) -> Result<()> {
    setup()?;
    let all = which.is_empty();
    if all || which.iter().any(|w| w == "service") {
        let postgres = PgCluster::start()?;
        status({
            let mut c = cargo();
            c.args([
                "bench",
                "--package",
                "switchboard-server",
                "--bench",
                "service",
                "--bench",
                "stream",
            ])
            .env("SWITCHBOARD_TEST_PG", postgres.url());
            c
        })?;
    }
    if all || which.iter().any(|w| w == "scale") {
        let postgres = PgCluster::start()?;
        status({
            let mut c = cargo();
            c.args([
                "bench",
                "--package",
                "switchboard-server",
                "--bench",
                "scale",
            ])
            .env("SWITCHBOARD_TEST_PG", postgres.url());
            c
        })?;
    }
    if all || which.iter().any(|w| w == "official") {
        let postgres = PgCluster::start()?;
        status({
            let mut c = cargo();
            c.args([
                "bench",
                "--package",
                "switchboard-e2e",
                "--bench",
                "official",
            ])
            .env("SWITCHBOARD_TEST_PG", postgres.url());
            c
        })?;
    }
    if all || which.iter().any(|w| w == "moments") {
        status({
            let mut c = cargo();
            c.args([
                "bench",
                "--package",
                "switchboard-e2e",
                "--bench",
                "moments",
            ]);
            c
        })?;
    }
    if all || which.iter().any(|w| w == "core") {
        status({
            let mut c = cargo();
            c.args(["bench", "--package", "switchboard-e2e", "--bench", "core"]);
            c
        })?;
    }
    if all || which.iter().any(|w| w == "app") {
        build_ui()?;
        status({
            let mut c = cargo();
            // The app as shipped: the `dist` profile, as `bundle` builds it.
            c.args([
                "build",
                "--profile",
                "dist",
                "--package",
                "switchboard-app",
                "--package",
                "switchboard-cli",
            ]);
            c
        })?;
        apt_install(&["procps", "util-linux"])?;
        let mut c = Command::new("xvfb-run");
        c.current_dir(root())
            .args(["-a", "-s", "-screen 0 1280x800x24"])
            .arg(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["bench", "--package", "switchboard-e2e", "--bench", "app"])
            .env("SWITCHBOARD_RELEASE_DIR", root().join("target/dist"));
        status(c)?;
    }
    Ok(())
}

/// A throwaway PostgreSQL for a developer running nextest by hand: prints the variable to set
/// and keeps it up until Ctrl-C (or a kill), then stops it and removes its directory.
fn pg() -> Result<()> {
    apt_install(&["postgresql"])?;
    let postgres = PgCluster::start()?;
    println!("SWITCHBOARD_TEST_PG={}", postgres.url());
    eprintln!(
        "xtask: PostgreSQL is running in {}; Ctrl-C stops it",
        postgres.dir.path().display()
    );
    loop {
        std::thread::park();
    }
}

/// A throwaway PostgreSQL cluster: a temp dir of its own, `initdb -U sb --auth=trust`, postgres
/// on a free loopback port with its socket in that dir and durability off (the data is thrown
/// away). It never touches the machine's own clusters (no PGDATA, nothing under /etc or
/// /var/lib/postgresql) nor the real home. As root it runs as the `postgres` user (postgres
/// refuses root).
///
/// Stopping it is the job of a small shell ("the reaper") that waits for the write end of a
/// pipe only xtask holds to close, then runs `pg_ctl stop -m immediate` and removes the dir.
/// [`Drop`] closes it and waits; so does xtask dying on Ctrl-C or a kill, which no `Drop` would
/// see. The reaper ignores SIGINT, and pg_ctl starts postgres in a session of its own, so a
/// Ctrl-C at the terminal reaches neither.
struct PgCluster {
    reaper_pipe: Option<ChildStdin>,
    reaper: Child,
    /// Runs a PostgreSQL program as the cluster's owner, with HOME in the cluster's dir.
    prefix: Vec<OsString>,
    bin: Option<PathBuf>,
    port: u16,
    /// Removed by the reaper; the `TempDir` covers a start that failed before the reaper ran.
    dir: tempfile::TempDir,
}

impl PgCluster {
    fn start() -> Result<Self> {
        let as_postgres = is_root();
        // As root, /tmp rather than TMPDIR, which the postgres user may not be able to enter.
        let base = if as_postgres {
            PathBuf::from("/tmp")
        } else {
            std::env::temp_dir()
        };
        let dir = tempfile::Builder::new()
            .prefix("switchboard-pg")
            .tempdir_in(base)?;
        let path = dir.path().to_path_buf();
        if path.to_str().is_none_or(|p| p.contains('\'')) {
            bail!("unusable temp dir for PostgreSQL: {}", path.display());
        }
        // Its own and the cluster owner's only (the socket lives there too).
        #[cfg(unix)]
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        let mut prefix: Vec<OsString> = Vec::new();
        if as_postgres {
            if !succeeds("id", &["-u", "postgres"]) {
                bail!(
                    "no `postgres` user to run PostgreSQL as (is the postgresql package installed?)"
                );
            }
            status({
                let mut c = Command::new("chown");
                c.arg("postgres").arg(&path);
                c
            })?;
            prefix.extend(["runuser", "-u", "postgres", "--"].map(OsString::from));
        }
        prefix.push("env".into());
        prefix.push(format!("HOME={}", path.display()).into());
        let bin = pg_bindir();
        let data = path.join("data");

        let mut stop = prefix.clone();
        stop.push(program(bin.as_deref(), "pg_ctl").into());
        stop.extend(["stop", "-s", "-m", "immediate", "-D"].map(OsString::from));
        stop.push(data.clone().into());
        let mut reaper = Command::new("sh")
            .args([
                "-c",
                "trap '' INT HUP TERM QUIT; cat >/dev/null; \"$@\" >/dev/null 2>&1; rm -rf -- \"$0\"",
            ])
            .arg(&path)
            .args(&stop)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start sh")?;
        let mut cluster = PgCluster {
            reaper_pipe: reaper.stdin.take(),
            reaper,
            prefix,
            bin,
            port: 0,
            dir,
        };

        status({
            let mut c = cluster.command("initdb");
            c.arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    "sb",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ])
                .stdout(Stdio::null());
            c
        })?;
        let log = path.join("postgres.log");
        // The port is free when asked for, not necessarily when postgres binds it: retry.
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let options = format!(
                "-k '{}' -p {port} -c listen_addresses=127.0.0.1 -c fsync=off \
                 -c synchronous_commit=off -c full_page_writes=off -c max_connections=400",
                path.display()
            );
            let mut c = cluster.command("pg_ctl");
            c.args(["start", "-w", "-s", "-D"])
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-o", &options]);
            if c.status()
                .with_context(|| format!("cannot start {c:?}"))?
                .success()
            {
                cluster.port = port;
                return Ok(cluster);
            }
        }
        bail!(
            "PostgreSQL did not start; its log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    }

    fn command(&self, name: &str) -> Command {
        let mut c = Command::new(&self.prefix[0]);
        c.args(&self.prefix[1..])
            .arg(program(self.bin.as_deref(), name))
            .current_dir(self.dir.path());
        c
    }

    fn url(&self) -> String {
        format!("postgres://sb@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // EOF for the reaper: it stops the cluster and removes the dir.
        drop(self.reaper_pipe.take());
        let _ = self.reaper.wait();
    }
}

/// The newest installed PostgreSQL's programs (Debian keeps them in /usr/lib/postgresql/<major>/
/// bin, off PATH); `None`: take them from PATH.
fn pg_bindir() -> Option<PathBuf> {
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let major: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((major, bin))
        })
        .max_by_key(|(major, _)| *major)
        .map(|(_, bin)| bin)
}

fn program(bin: Option<&Path>, name: &str) -> PathBuf {
    bin.map_or_else(|| PathBuf::from(name), |b| b.join(name))
}

/// The .deb through the Tauri CLI (an AppImage needs linuxdeploy, which the bundler downloads
/// from GitHub: not possible offline).
fn bundle() -> Result<()> {
    setup()?;
    build_ui()?;
    let mut c = Command::new(root().join("ui/node_modules/.bin/tauri"));
    c.current_dir(root().join("src-tauri")).args([
        "build",
        "--bundles",
        "deb",
        "--",
        "--profile",
        "dist",
    ]);
    status(c)
}

/// The icons each platform's bundle and the tray use, made by the Tauri CLI from the one
/// source drawing (`icons/switchboard.svg`); the results are committed, so a build needs no
/// Node.js.
const ICONS: [&str; 7] = [
    "32x32.png",
    "64x64.png",
    "128x128.png",
    "128x128@2x.png",
    "icon.png",
    "icon.ico",
    "icon.icns",
];

fn icons() -> Result<()> {
    build_ui()?;
    let out = tempfile::tempdir()?;
    status({
        let mut c = Command::new(root().join("ui/node_modules/.bin/tauri"));
        c.current_dir(root())
            .args(["icon", "icons/switchboard.svg", "-o"])
            .arg(out.path());
        c
    })?;
    for name in ICONS {
        std::fs::copy(
            out.path().join(name),
            root().join("src-tauri/icons").join(name),
        )
        .with_context(|| format!("icon {name}"))?;
    }
    println!("xtask: {} icons written to src-tauri/icons", ICONS.len());
    Ok(())
}

fn collect_files(dir: &Path, made: &BTreeSet<PathBuf>, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if !made.contains(&path)
                && std::fs::read_dir(&path).is_ok_and(|mut d| d.next().is_none())
            {
                out.push(path.clone());
            }
            collect_files(&path, made, out);
        } else {
            out.push(path);
        }
    }
}
