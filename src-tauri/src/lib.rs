//! switchboard-app: the desktop shell over switchboard-core. It owns windows, the tray and
//! notification click-through; every command translates to one core call (see
//! `commands.rs`), and the window a call comes from decides which profiles it may touch.

pub mod bindings;
pub mod commands;
pub mod ipc;
pub mod platform;
pub mod shell;
pub mod tray;

use std::process::ExitCode;
use std::sync::Arc;

use switchboard_core::platform::notifications::DesktopSink;
use switchboard_core::vault::KeyringVault;
use switchboard_core::{Engine, ProfileEvent, ProfileId};
use tauri::{AppHandle, Manager, Runtime, WindowEvent};

use crate::shell::{DEFAULT_SERVICE, OpenConversation, Shell};

/// Forwards the core's events to the windows that may see them (each through its own
/// channel, see [`Shell::subscribe`]) and keeps the tray's count current. Ends when the bus
/// closes (the engine shut down) or the shell that owns it is dropped.
async fn forward_events<R: Runtime>(
    app: AppHandle<R>,
    mut bus: tokio::sync::broadcast::Receiver<ProfileEvent>,
) {
    loop {
        let received = bus.recv().await;
        let Some(shell) = app.try_state::<Shell>() else {
            return;
        };
        match received {
            Ok(ev) => shell.dispatch(&ev),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                // The windows re-read what they show on any event; one is enough.
                shell.profiles_changed();
                continue;
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
        // A burst of events redraws the tray once.
        while let Ok(ev) = bus.try_recv() {
            shell.dispatch(&ev);
        }
        shell.refresh_tray(&app).await;
    }
}

/// Stops every profile (flushing and closing their databases), then exits.
pub fn quit<R: Runtime>(app: AppHandle<R>) {
    tauri::async_runtime::spawn(async move {
        if let Some(shell) = app.try_state::<Shell>() {
            shell.engine.shutdown().await;
        }
        app.exit(0);
    });
}

/// Sets the app up around an engine: state, event forwarding, window focus tracking. Shared
/// by the real app and the IPC tests (which use Tauri's mock runtime).
pub fn install<R: Runtime>(
    builder: tauri::Builder<R>,
    engine: Arc<Engine>,
    default_server: String,
) -> tauri::Builder<R> {
    builder
        .manage(Shell::new(engine, default_server))
        .invoke_handler(commands::handler())
        .on_window_event(|window, event| {
            let Some(shell) = window.try_state::<Shell>() else {
                return;
            };
            match event {
                WindowEvent::Focused(true) => {
                    platform::set_view_idle(window, false);
                    shell.window_focus(Some(window.label().to_string()));
                }
                WindowEvent::Focused(false) => {
                    platform::set_view_idle(window, true);
                    shell.window_focus(None);
                }
                // Closing the main window keeps every profile running, in the tray, but not
                // the window: it goes, and its WebKit web process with it (see
                // [`keep_running_in_the_tray`]), until the tray, a notification or a second
                // launch opens it again (`shell::bring_to_front`).
                WindowEvent::Destroyed => shell.window_closed(window.label()),
                _ => {}
            }
        })
}

/// Starts forwarding the core's events to the windows and the tray (from `setup`).
pub fn start_forwarding<R: Runtime>(app: &AppHandle<R>, engine: &Engine) {
    start_forwarding_from(app, engine.subscribe());
}

/// Forwards what arrives on `bus` as [`start_forwarding`] forwards the engine's events (the
/// IPC tests feed it events of their own). The shell owns the task.
pub fn start_forwarding_from<R: Runtime>(
    app: &AppHandle<R>,
    bus: tokio::sync::broadcast::Receiver<ProfileEvent>,
) {
    let task = tauri::async_runtime::spawn(forward_events(app.clone(), bus));
    if let Some(shell) = app.try_state::<Shell>() {
        shell.own_forwarding(task);
    }
}

/// The app lives on in the tray when its last window closes: it exits only when asked to
/// (the tray's Quit, which passes an exit code). A closed window is destroyed rather than
/// hidden, because a hidden one keeps its web process: with 10 live profiles the app holds
/// 222 MB with its window open and 101 MB in the tray (`cargo xtask bench app`).
///
/// A click on the Dock icon with no window open brings the main window back (macOS).
fn keep_running_in_the_tray<R: Runtime>(app: &AppHandle<R>, event: tauri::RunEvent) {
    if platform::asks_for_a_window(&event) {
        shell::bring_to_front(app, None);
        return;
    }
    if let tauri::RunEvent::ExitRequested {
        code: None, api, ..
    } = event
    {
        api.prevent_exit();
    }
}

/// The log: stderr (a terminal, a launcher's journal) and, because a GUI app on Windows and
/// macOS has no stderr anyone reads, a daily file in `<data dir>/logs` (a week of them).
/// No secret is ever logged (tokens and keys have redacting `Debug`).
fn init_logging(
    dir: Option<std::path::PathBuf>,
) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter =
        || tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // Colour only on a terminal: a piped log (a launcher's journal, the bench reading the
    // start-up figure) must stay plain text.
    let stderr = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let appender = dir.and_then(|dir| {
        tracing_appender::rolling::Builder::new()
            .rotation(tracing_appender::rolling::Rotation::DAILY)
            .filename_prefix("switchboard-app")
            .filename_suffix("log")
            .max_log_files(7)
            .build(&dir)
            .ok()
    });
    let Some(appender) = appender else {
        tracing_subscriber::registry()
            .with(filter())
            .with(stderr)
            .init();
        return None;
    };
    let (writer, guard) = tracing_appender::non_blocking(appender);
    tracing_subscriber::registry()
        .with(filter())
        .with(stderr)
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(writer),
        )
        .init();
    Some(guard)
}

fn data_dir() -> anyhow::Result<std::path::PathBuf> {
    let explicit = std::env::var_os("SWITCHBOARD_DATA_DIR").map(std::path::PathBuf::from);
    Ok(switchboard_core::data_dir(explicit.as_deref())?)
}

pub fn main() -> ExitCode {
    platform::prepare_web_engine();
    let _ = shell::LAUNCHED.set(std::time::Instant::now());
    let data = data_dir();
    // Held to the end: it flushes the log file's last lines.
    let _log = init_logging(data.as_ref().ok().map(|d| d.join("logs")));
    let opened = tauri::async_runtime::block_on(async {
        let vault = KeyringVault::os()?;
        // The system's roots, and a private deployment's CA from SWITCHBOARD_CA_FILE.
        let tls = switchboard_core::TlsConfig::from_env()?;
        anyhow::Ok(Engine::open_with_tls(&data?, vault, tls).await?)
    });
    let engine = match opened {
        Ok(e) => Arc::new(e),
        Err(e) => {
            platform::fatal(&format!("{e:#}"));
            return ExitCode::FAILURE;
        }
    };
    let server =
        std::env::var("SWITCHBOARD_SERVICE_URL").unwrap_or_else(|_| DEFAULT_SERVICE.to_string());
    // `--tray`: start with every profile live and no window (a login session's autostart);
    // the tray, a notification or a second launch opens it.
    let in_the_tray = std::env::args().skip(1).any(|a| a == "--tray");
    let builder = tauri::Builder::default()
        // First: a second launch hands over to this one and exits.
        .plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            // A second `--tray` (autostart while the app runs) leaves the window as it is.
            if !argv.iter().skip(1).any(|a| a == "--tray") {
                shell::bring_to_front(app, None);
            }
        }))
        .plugin(tauri_plugin_window_state::Builder::default().build())
        // Start at login (a switch in Settings) with every profile live and no window.
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            Some(vec!["--tray"]),
        ));
    let started = engine.clone();
    let app = install(builder, engine, server)
        .setup(move |app| {
            // The core spawns its tasks on Tauri's tokio runtime.
            let runtime = tauri::async_runtime::handle();
            let _entered = runtime.inner().enter();
            let handle = app.handle().clone();
            let click = handle.clone();
            started.enable_notifications(Arc::new(DesktopSink::with_click(Arc::new(
                move |profile: &ProfileId, conversation: Option<&str>| {
                    shell::bring_to_front(
                        &click,
                        Some(OpenConversation {
                            profile: profile.clone(),
                            conversation: conversation.map(str::to_string),
                        }),
                    );
                },
            ))));
            start_forwarding(&handle, &started);
            tray::create(&handle)?;
            if !in_the_tray {
                shell::bring_to_front(&handle, None);
            }
            let engine = started.clone();
            tauri::async_runtime::spawn(async move {
                if let Err(e) = engine.start_all().await {
                    tracing::error!(code = e.code(), "cannot start the profiles");
                }
                if let Some(shell) = handle.try_state::<Shell>() {
                    shell.refresh_tray(&handle).await;
                }
            });
            Ok(())
        })
        .build(tauri::generate_context!());
    match app {
        Ok(app) => {
            app.run(keep_running_in_the_tray);
            ExitCode::SUCCESS
        }
        Err(e) => {
            platform::fatal(&e.to_string());
            ExitCode::FAILURE
        }
    }
}
