//! switchboard-app: the desktop shell over switchboard-core. It owns windows, the tray and
//! notification click-through; every command translates to one core call (see
//! `commands.rs`), and the window a call comes from decides which profiles it may touch.

pub mod bindings;
pub mod commands;
pub mod ipc;
pub mod shell;
pub mod tray;

use std::process::ExitCode;
use std::sync::Arc;

use switchboard_core::notify::DesktopSink;
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
                WindowEvent::Focused(true) => shell.window_focus(Some(window.label().to_string())),
                WindowEvent::Focused(false) => shell.window_focus(None),
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
fn keep_running_in_the_tray<R: Runtime>(_: &AppHandle<R>, event: tauri::RunEvent) {
    if let tauri::RunEvent::ExitRequested {
        code: None, api, ..
    } = event
    {
        api.prevent_exit();
    }
}

fn data_dir() -> anyhow::Result<std::path::PathBuf> {
    let explicit = std::env::var_os("SWITCHBOARD_DATA_DIR").map(std::path::PathBuf::from);
    Ok(switchboard_core::data_dir(explicit.as_deref())?)
}

/// The WebKitGTK settings the app runs with, each unless the user set it either way. With 10
/// live profiles (PSS of the app and its WebKit processes, `cargo xtask bench app`): both on,
/// WebKit's defaults, 303 MB; accelerated compositing mode off 226 MB; the DMA-BUF renderer off
/// 222 MB, with compositing mode on or off (once that renderer is off, compositing mode changes
/// nothing measurable). Neither buys anything for a UI of text, lists and images. Compositing
/// mode is set off too, so the app stays off it should a later WebKit composite another way.
///
/// Both are read from the environment, which the web processes inherit, so they must be there
/// before WebKit starts: the app runs itself again (`exec`: same process, same arguments) with
/// the missing ones set. (Setting them in place is `unsafe` since Rust 2024, and this crate
/// forbids `unsafe`.)
#[cfg(target_os = "linux")]
const WEBKIT_SETTINGS: [(&str, &str); 2] = [
    ("WEBKIT_DISABLE_COMPOSITING_MODE", "1"),
    ("WEBKIT_DISABLE_DMABUF_RENDERER", "1"),
];

#[cfg(target_os = "linux")]
fn with_webkit_settings() {
    use std::os::unix::process::CommandExt;
    let missing: Vec<_> = WEBKIT_SETTINGS
        .iter()
        .filter(|(var, _)| std::env::var_os(var).is_none())
        .collect();
    if missing.is_empty() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let error = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .envs(missing.iter().map(|(var, value)| (var, value)))
        .exec();
    // Only reached when the exec failed (the binary replaced by an upgrade, say): run as is.
    eprintln!("switchboard-app: starting with WebKit's defaults ({error})");
}

pub fn main() -> ExitCode {
    #[cfg(target_os = "linux")]
    with_webkit_settings();
    let _ = shell::LAUNCHED.set(std::time::Instant::now());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        // Colour only on a terminal: a piped log (a launcher's journal, the bench reading the
        // start-up figure) must stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let opened = tauri::async_runtime::block_on(async {
        let vault = KeyringVault::os()?;
        // The system's roots, and a private deployment's CA from SWITCHBOARD_CA_FILE.
        let tls = switchboard_core::TlsConfig::from_env()?;
        anyhow::Ok(Engine::open_with_tls(&data_dir()?, vault, tls).await?)
    });
    let engine = match opened {
        Ok(e) => Arc::new(e),
        Err(e) => {
            eprintln!("switchboard-app: {e:#}");
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
        .plugin(tauri_plugin_window_state::Builder::default().build());
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
            eprintln!("switchboard-app: {e}");
            ExitCode::FAILURE
        }
    }
}
