//! The Windows pass: the whole workspace, the app included, built for `x86_64-pc-windows-gnu`
//! on this Linux machine, and the protocol's, the core's and the CLI's tests run as Windows
//! programs under Wine against the service running natively on loopback.
//!
//! rustup cannot fetch another target's standard library here, so Debian's Rust (`rustc-web`,
//! `cargo-web`) builds it from its source (`rust-web-src`) with `-Zbuild-std`; mingw-w64
//! compiles the C parts. Wine 8 lacks `bcryptprimitives.dll`, whose `ProcessPrng` Rust's std
//! draws its randomness from: a six-line one, built here with mingw over `RtlGenRandom`, goes
//! into the Wine prefix's system folder.
//!
//! The pass builds on a thread of its own beside the native passes (its build overlaps their
//! test runs, on a target dir of its own so neither waits for the other's lock), then waits for
//! [`Pass::native_ready`] (the native service binary exists) before it runs anything.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::{Context, Result, bail};

const TARGET: &str = "x86_64-pc-windows-gnu";
const WINE: &str = "/usr/lib/wine/wine64";
/// The crates whose tests run under Wine: the wire types, the client engine and its CLI.
const TESTED: [&str; 3] = [
    "switchboard-protocol",
    "switchboard-core",
    "switchboard-cli",
];

/// `ProcessPrng`, as Windows 10+ exports it, over the `RtlGenRandom` Wine does have.
const PROCESS_PRNG_C: &str = r#"#include <windows.h>
#define SystemFunction036 NTAPI SystemFunction036
#include <ntsecapi.h>
#undef SystemFunction036
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) { return RtlGenRandom(data, (ULONG)len); }
"#;
const PROCESS_PRNG_DEF: &str = "LIBRARY bcryptprimitives\nEXPORTS\n    ProcessPrng\n";

/// The running pass: a thread, the child it is waiting on (killed if the pass is dropped
/// unfinished), and the signal that the native binaries are built.
pub struct Pass {
    thread: Option<JoinHandle<Result<()>>>,
    ready: Option<mpsc::Sender<bool>>,
    child: Arc<Mutex<Option<Child>>>,
    log: PathBuf,
}

impl Pass {
    /// Starts building at once; its output goes to `target/windows/pass.log`.
    pub fn start(root: PathBuf) -> Result<Self> {
        let dir = root.join("target/windows");
        std::fs::create_dir_all(&dir)?;
        let log = dir.join("pass.log");
        let file = std::fs::File::create(&log)?;
        let (ready, native) = mpsc::channel();
        let child = Arc::new(Mutex::new(None));
        let running = Runner {
            root,
            log: file,
            child: child.clone(),
        };
        eprintln!(
            "xtask: the Windows pass builds beside the native passes; its log: {}",
            log.display()
        );
        let thread = std::thread::Builder::new()
            .name("windows-pass".into())
            .spawn(move || running.run(&native))?;
        Ok(Self {
            thread: Some(thread),
            ready: Some(ready),
            child,
            log,
        })
    }

    /// The native `switchboard-server` is built: the pass may run its tests once its own
    /// build is done.
    pub fn native_ready(&self) {
        if let Some(ready) = &self.ready {
            let _ = ready.send(true);
        }
    }

    /// Waits for the pass and says how it went; on failure, the end of its log.
    pub fn finish(mut self) -> Result<()> {
        let result = self.thread.take().map_or(Ok(()), |t| {
            t.join().unwrap_or_else(|_| bail!("the pass panicked"))
        });
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        // The test summaries, whatever the outcome: what ran under Wine and how it went.
        for line in log
            .lines()
            .filter(|l| l.starts_with("test result:") || l.starts_with("     Running "))
        {
            println!("windows: {line}");
        }
        if let Err(e) = &result {
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            eprintln!("--- the Windows pass's log, last lines ---");
            for l in tail.into_iter().rev() {
                eprintln!("{l}");
            }
            bail!(
                "the Windows pass failed: {e:#} (whole log: {})",
                self.log.display()
            );
        }
        println!("windows: the workspace built for {TARGET}; the tests above passed under Wine");
        Ok(())
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        // Unfinished (an earlier pass failed): no tests, and no build left running.
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(false);
        }
        if let Some(mut c) = self.child.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Runner {
    root: PathBuf,
    log: std::fs::File,
    child: Arc<Mutex<Option<Child>>>,
}

impl Runner {
    fn run(mut self, native: &mpsc::Receiver<bool>) -> Result<()> {
        let target_dir = self.root.join("target/windows");
        let build = self.cargo(&target_dir, &["build", "--workspace", "--locked"]);
        self.status(build)?;
        let mut tests = self.cargo(&target_dir, &["test", "--no-run", "--tests", "--locked"]);
        tests.args(TESTED.iter().flat_map(|p| ["--package", p]));
        self.status(tests)?;
        // From here on the native binaries are needed.
        if !native.recv().unwrap_or(false) {
            bail!("not run: the native build did not finish");
        }

        let scratch = tempfile::Builder::new()
            .prefix("switchboard-windows")
            .tempdir()?;
        let prefix = self.wine_prefix(scratch.path())?;
        let home = scratch.path().join("home");
        std::fs::create_dir_all(&home)?;
        let (mut server, url) = self.native_server(&home)?;

        let mut run = self.cargo(
            &target_dir,
            &["test", "--tests", "--locked", "--no-fail-fast"],
        );
        run.args(TESTED.iter().flat_map(|p| ["--package", p]))
            .env("CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER", WINE)
            .env("SWITCHBOARD_TEST_SERVER", &url);
        wine_env(&mut run, &prefix, &home);
        let result = self.status(run);
        let _ = server.kill();
        let _ = server.wait();
        // Wine's server lingers a few seconds after its last program; stop it before its
        // prefix is removed.
        let mut stop = Command::new("wineserver");
        stop.arg("-k");
        wine_env(&mut stop, &prefix, &home);
        let _ = stop.status();
        result
    }

    /// Debian's cargo and rustc for the Windows target, on a target dir of their own.
    fn cargo(&self, target_dir: &Path, args: &[&str]) -> Command {
        let mut c = Command::new("/usr/bin/cargo");
        c.current_dir(&self.root)
            .args(&args[..1])
            .args(["-Zbuild-std=std,panic_abort", "--target", TARGET])
            .args(&args[1..])
            .env("RUSTC", "/usr/bin/rustc")
            // -Zbuild-std is unstable: Debian's stable compiler allows it with this.
            .env("RUSTC_BOOTSTRAP", "1")
            // No debug info and no incremental caches: mingw's linker spends most of a test
            // binary's link on debug info, and this build is always a clean one in CI.
            .env("CARGO_PROFILE_DEV_DEBUG", "false")
            .env("CARGO_INCREMENTAL", "0")
            .env("CARGO_TARGET_DIR", target_dir)
            // The real cargo home (its registry), also when the run below gives Wine a home
            // of its own.
            .env("CARGO_HOME", cargo_home())
            // What rustup's cargo (running xtask) set for its own toolchain.
            .env_remove("RUSTUP_TOOLCHAIN")
            .env_remove("CARGO");
        c
    }

    /// Runs `cmd` with its output in the log; the running child is the pass's to kill.
    fn status(&mut self, mut cmd: Command) -> Result<()> {
        let shown = format!(
            "{:?} {:?}",
            cmd.get_program(),
            cmd.get_args().collect::<Vec<_>>()
        );
        writeln!(self.log, "$ {shown}")?;
        let child = cmd
            .stdout(self.log.try_clone()?)
            .stderr(self.log.try_clone()?)
            .spawn()
            .with_context(|| format!("cannot start {shown}"))?;
        *self.child.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        let status = loop {
            let mut slot = self.child.lock().unwrap_or_else(|p| p.into_inner());
            let Some(c) = slot.as_mut() else {
                bail!("stopped: {shown}");
            };
            if let Some(status) = c.try_wait()? {
                slot.take();
                break status;
            }
            drop(slot);
            std::thread::sleep(std::time::Duration::from_millis(200));
        };
        if !status.success() {
            bail!("{shown} failed ({status})");
        }
        Ok(())
    }

    /// A Wine prefix of the pass's own, initialised, with `bcryptprimitives.dll` in its
    /// system folder.
    fn wine_prefix(&mut self, scratch: &Path) -> Result<PathBuf> {
        let prefix = scratch.join("wine");
        let home = scratch.join("home");
        std::fs::create_dir_all(&home)?;
        let dll = self.process_prng_dll(scratch)?;
        let mut init = Command::new(WINE);
        init.args(["wineboot", "--init"]);
        wine_env(&mut init, &prefix, &home);
        self.status(init)?;
        let system32 = prefix.join("drive_c/windows/system32");
        std::fs::copy(&dll, system32.join("bcryptprimitives.dll"))
            .with_context(|| format!("into {}", system32.display()))?;
        Ok(prefix)
    }

    fn process_prng_dll(&mut self, scratch: &Path) -> Result<PathBuf> {
        let (c, def, dll) = (
            scratch.join("prng.c"),
            scratch.join("prng.def"),
            scratch.join("bcryptprimitives.dll"),
        );
        std::fs::write(&c, PROCESS_PRNG_C)?;
        std::fs::write(&def, PROCESS_PRNG_DEF)?;
        let mut gcc = Command::new("x86_64-w64-mingw32-gcc");
        gcc.args(["-shared", "-O2", "-o"])
            .arg(&dll)
            .arg(&c)
            .arg(&def)
            .arg("-ladvapi32");
        self.status(gcc)?;
        Ok(dll)
    }

    /// The native service in development mode on a free port, with a home of its own (its
    /// database goes there); its URL from the line it prints once it listens.
    fn native_server(&mut self, home: &Path) -> Result<(Child, String)> {
        let bin = self.root.join("target/debug/switchboard-server");
        let mut child = Command::new(&bin)
            .args(["--dev", "--listen", "127.0.0.1:0"])
            .env("HOME", home)
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_STATE_HOME", home.join(".local/state"))
            .env("SWITCHBOARD_ADMIN_LISTEN", "127.0.0.1:0")
            .env("SWITCHBOARD_LOG_FILE", "0")
            .stdout(Stdio::piped())
            .stderr(self.log.try_clone()?)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let mut line = String::new();
        let stdout = child.stdout.take().context("the service's stdout")?;
        let mut stdout = BufReader::new(stdout);
        stdout.read_line(&mut line)?;
        let Some(url) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            bail!("the native service did not start: {line:?}");
        };
        writeln!(self.log, "the native service listens on {url}")?;
        // The rest of what it prints (development mode's SMS codes) into the log: a closed
        // pipe would fail its writes.
        let mut log = self.log.try_clone()?;
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut log));
        Ok((child, url.to_string()))
    }
}

fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo"),
        PathBuf::from,
    )
}

/// Wine in `prefix`, quiet, with the home and XDG dirs under `home` (Wine writes menu entries
/// and caches there), and without its menu builder, so nothing reaches the real home.
fn wine_env(cmd: &mut Command, prefix: &Path, home: &Path) {
    cmd.env("WINEPREFIX", prefix)
        .env("WINEDEBUG", "-all")
        .env(
            "WINEDLLOVERRIDES",
            "winemenubuilder.exe=d;mshtml=d;mscoree=d",
        )
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY");
}
