//! The shell's share of what differs by platform, in one place (the core's is
//! `switchboard_core::platform`): how the unread count is shown (a badge drawn on the tray
//! icon on Linux and Windows plus the taskbar's overlay on Windows; a template icon with the
//! count beside it in the menu bar and the Dock's badge on macOS), and what brings a closed
//! window back (a Dock click on macOS). Everything else in the shell is the same everywhere.

use switchboard_core::platform::{Os, badge_text};
use tauri::image::Image;
use tauri::tray::TrayIcon;
use tauri::{AppHandle, Manager, Runtime};

use crate::ipc::{IpcError, IpcResult};
use crate::tray;

/// Shows `total` unread on the tray (or menu-bar) icon and on the app's taskbar or Dock
/// entry. Best effort: a desktop without a tray or a badge still has the in-app counts.
pub fn show_unread<R: Runtime>(app: &AppHandle<R>, icon: &TrayIcon<R>, total: i64) {
    match Os::current() {
        Os::MacOs => {
            // A template image is tinted by the menu bar (light or dark), so it cannot carry
            // a red badge: the count is the icon's title, as macOS's own apps show it.
            let _ = icon.set_icon_with_as_template(Some(template_icon()), true);
            let _ = icon.set_title(badge_text(total));
        }
        _ => {
            let _ = icon.set_icon(Some(tray::icon(total)));
        }
    }
    let badge = (total > 0).then_some(total);
    for window in app.webview_windows().values() {
        // The Dock's badge on macOS, the launcher's on Linux (Unity's API); nothing on Windows.
        let _ = window.set_badge_count(badge);
        #[cfg(windows)]
        let _ = window.set_overlay_icon((total > 0).then(|| tray::badge_only(total)));
    }
}

/// The icon the tray starts with, before any count is known.
pub fn initial_icon() -> (Image<'static>, bool) {
    match Os::current() {
        Os::MacOs => (template_icon(), true),
        _ => (tray::icon(0), false),
    }
}

/// The menu-bar icon for macOS: the app icon's white speech bubbles as an opaque shape on
/// transparency (a template image: macOS draws it black or white to suit the menu bar).
pub fn template_icon() -> Image<'static> {
    let base = tray::icon(0);
    let (w, h) = (base.width(), base.height());
    Image::new_owned(template_of(base.rgba()), w, h)
}

/// Pixels of the icon that are (nearly) white become opaque black; everything else clear.
fn template_of(rgba: &[u8]) -> Vec<u8> {
    rgba.chunks(4)
        .flat_map(|p| {
            let white = p[0] > 0xe0 && p[1] > 0xe0 && p[2] > 0xe0 && p[3] > 0x80;
            if white { [0, 0, 0, 0xff] } else { [0; 4] }
        })
        .collect()
}

/// Sets up the web engine's process-wide settings before it starts: WebKitGTK's on Linux
/// (below); WebView2 and WKWebView need none.
pub fn prepare_web_engine() {
    #[cfg(target_os = "linux")]
    with_webkit_settings();
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

/// Tells the window's web view whether it is idle (its window unfocused or hidden) or in use.
/// On Windows an idle WebView2 is asked to keep little memory (its memory usage target set
/// low: it trims caches and working set, and is set back the moment the window is used);
/// WebKit on macOS and Linux has no such setting, and its web processes are what the tray
/// mode (closing the window) gives back.
pub fn set_view_idle<R: Runtime>(window: &tauri::Window<R>, idle: bool) {
    #[cfg(windows)]
    for view in window.webviews() {
        let _ = view.with_webview(move |platform| webview2::set_memory_target(&platform, idle));
    }
    #[cfg(not(windows))]
    let _ = (window, idle);
}

/// The one COM call the app makes itself: WebView2's memory target has no safe wrapper in
/// wry or Tauri.
#[cfg(windows)]
#[allow(unsafe_code)]
mod webview2 {
    use webview2_com::Microsoft::Web::WebView2::Win32::{
        COREWEBVIEW2_MEMORY_USAGE_TARGET_LEVEL_LOW, COREWEBVIEW2_MEMORY_USAGE_TARGET_LEVEL_NORMAL,
        ICoreWebView2_19,
    };
    use windows_core::Interface;

    pub fn set_memory_target(view: &tauri::webview::PlatformWebview, idle: bool) {
        let level = if idle {
            COREWEBVIEW2_MEMORY_USAGE_TARGET_LEVEL_LOW
        } else {
            COREWEBVIEW2_MEMORY_USAGE_TARGET_LEVEL_NORMAL
        };
        // SAFETY: the controller is wry's, alive for this callback (which runs on the thread
        // that owns it); both calls take and return plain values. A runtime older than the
        // interface (WebView2 < 1.0.1774) fails the cast, and the view keeps its default.
        let set = unsafe { view.controller().CoreWebView2() }
            .and_then(|core| core.cast::<ICoreWebView2_19>())
            .and_then(|core| unsafe { core.SetMemoryUsageTargetLevel(level) });
        if let Err(e) = set {
            tracing::debug!(error = %e, "WebView2 keeps its memory target");
        }
    }
}

/// Whether the app starts at login, as the OS has it (a registry Run key on Windows, a launch
/// agent on macOS, an XDG autostart entry on Linux), each starting it with `--tray`.
pub fn start_at_login<R: Runtime>(app: &AppHandle<R>) -> IpcResult<bool> {
    autostart(app)?.is_enabled().map_err(autostart_error)
}

/// Turns starting at login on or off; answers what the OS has afterwards.
pub fn set_start_at_login<R: Runtime>(app: &AppHandle<R>, on: bool) -> IpcResult<bool> {
    let launcher = autostart(app)?;
    let changed = if on {
        launcher.enable()
    } else {
        launcher.disable()
    };
    changed.map_err(autostart_error)?;
    launcher.is_enabled().map_err(autostart_error)
}

fn autostart<R: Runtime>(
    app: &AppHandle<R>,
) -> IpcResult<tauri::State<'_, tauri_plugin_autostart::AutoLaunchManager>> {
    app.try_state().ok_or_else(|| IpcError {
        code: "unavailable".into(),
        message: "starting at login is not available in this build".into(),
        public_ids: None,
    })
}

fn autostart_error(e: tauri_plugin_autostart::Error) -> IpcError {
    IpcError {
        code: "autostart".into(),
        message: format!("the system refused to change starting at login: {e}"),
        public_ids: None,
    }
}

/// A start-up failure the user must see: in the log (stderr and the log file) and, on Windows
/// and macOS, where a GUI app's stderr goes nowhere, in a native dialog. On Linux a launcher
/// keeps stderr in the journal, and a dialog would block the headless runs that start the app.
pub fn fatal(message: &str) {
    tracing::error!("cannot start: {message}");
    eprintln!("switchboard-app: {message}");
    #[cfg(any(windows, target_os = "macos"))]
    {
        let _ = rfd::MessageDialog::new()
            .set_level(rfd::MessageLevel::Error)
            .set_title("Switchboard cannot start")
            .set_description(message)
            .set_buttons(rfd::MessageButtons::Ok)
            .show();
    }
}

/// Whether a run event asks for the window back: a click on the Dock icon while no window is
/// visible (macOS; other platforms have no such event, the tray does it there).
pub fn asks_for_a_window(event: &tauri::RunEvent) -> bool {
    #[cfg(target_os = "macos")]
    if let tauri::RunEvent::Reopen {
        has_visible_windows,
        ..
    } = event
    {
        return !has_visible_windows;
    }
    let _ = event;
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(name: &str) -> serde_json::Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    #[test]
    fn notifications_claim_the_identity_the_installers_register() {
        // The NSIS/MSI installer sets the Start menu shortcut's AppUserModelID, and the .app
        // its bundle id, from `identifier`: a toast under any other id is dropped by Windows.
        assert_eq!(
            config("tauri.conf.json")["identifier"],
            switchboard_core::platform::notifications::APP_ID
        );
    }

    #[test]
    fn every_platform_bundles_with_icons_that_exist() {
        for (file, wanted) in [
            ("tauri.conf.json", ["deb", "appimage"].as_slice()),
            ("tauri.windows.conf.json", ["nsis", "msi"].as_slice()),
            ("tauri.macos.conf.json", ["app", "dmg"].as_slice()),
        ] {
            let c = config(file);
            let targets: Vec<&str> = c["bundle"]["targets"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|t| t.as_str())
                .collect();
            assert_eq!(targets, wanted, "{file}");
            for icon in c["bundle"]["icon"].as_array().unwrap() {
                let path =
                    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(icon.as_str().unwrap());
                assert!(path.is_file(), "{file} names {}", path.display());
            }
        }
    }

    #[test]
    fn the_template_keeps_the_bubbles_and_drops_the_tile() {
        let base = tray::icon(0);
        let template = template_icon();
        assert_eq!(
            (template.width(), template.height()),
            (base.width(), base.height())
        );
        let opaque = template.rgba().chunks(4).filter(|p| p[3] == 0xff).count();
        let all = template.rgba().len() / 4;
        assert!(
            opaque > all / 20 && opaque < all / 2,
            "the bubbles are a shape, neither nothing nor the whole tile ({opaque} of {all})"
        );
        assert!(
            template
                .rgba()
                .chunks(4)
                .all(|p| p == [0, 0, 0, 0xff] || p == [0; 4]),
            "a template is one colour on transparency"
        );
    }
}
