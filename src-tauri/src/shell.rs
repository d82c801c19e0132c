//! The shell's state: the engine, which conversation each window shows, the tray, and the
//! windows themselves. Everything here translates between windows and the core; the rules
//! (what raises a notification, what counts as unread) stay in the core.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use switchboard_core::store::StoredMessage;
use switchboard_core::{CoreError, Engine};
use tauri::{AppHandle, Emitter, Manager, Runtime, WebviewUrl, WebviewWindowBuilder};

use crate::ipc::{Caller, IpcResult, profile_window_label};

/// The service a new profile signs in to unless the form says otherwise.
pub const DEFAULT_SERVICE: &str = "http://127.0.0.1:8750";

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct AppInfo {
    pub version: String,
    pub default_server: String,
    /// The profile a profile window shows; absent in the main window.
    pub window_profile: Option<String>,
}

/// One search result and the profile it belongs to.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct SearchHit {
    pub profile: String,
    pub message: StoredMessage,
}

pub struct Shell {
    pub engine: Arc<Engine>,
    default_server: String,
    /// Window label → (profile, open conversation), reported by each window.
    open: Mutex<HashMap<String, (String, Option<String>)>>,
    /// The window that has focus, if any of ours.
    focused: Mutex<Option<String>>,
    do_not_disturb: Mutex<bool>,
    /// The tray's words: the UI's language.
    words: Mutex<&'static crate::tray::Words>,
    ui_up: std::sync::atomic::AtomicBool,
}

/// When the process started, for the start-up figure.
pub static LAUNCHED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

impl Shell {
    pub fn new(engine: Arc<Engine>, default_server: String) -> Self {
        Self {
            engine,
            default_server,
            open: Mutex::default(),
            focused: Mutex::default(),
            do_not_disturb: Mutex::new(false),
            words: Mutex::new(&crate::tray::ENGLISH),
            ui_up: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn info(&self, caller: &Caller) -> AppInfo {
        if let Some(launched) = LAUNCHED.get() {
            if !self.ui_up.swap(true, std::sync::atomic::Ordering::Relaxed) {
                // The page has loaded and run its script: the start-up figure benches read.
                let ui_ready_ms = launched.elapsed().as_millis() as u64;
                tracing::info!(ui_ready_ms, "the UI is up");
            }
        }
        AppInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            default_server: self.default_server.clone(),
            window_profile: match caller {
                Caller::Main => None,
                Caller::Profile(id) => Some(id.clone()),
            },
        }
    }

    fn label_of(caller: &Caller) -> String {
        match caller {
            Caller::Main => "main".into(),
            Caller::Profile(id) => profile_window_label(id),
        }
    }

    pub fn set_open_conversation(
        &self,
        caller: &Caller,
        profile: String,
        conversation: Option<String>,
    ) {
        let label = Self::label_of(caller);
        lock(&self.open).insert(label, (profile, conversation));
        self.update_focus();
    }

    /// A window gained (`Some`) or lost (`None`) focus.
    pub fn window_focus(&self, label: Option<String>) {
        *lock(&self.focused) = label;
        self.update_focus();
    }

    /// The core suppresses notifications for the conversation open in the focused window.
    fn update_focus(&self) {
        let focused = lock(&self.focused).clone();
        let focus = focused.and_then(|label| match lock(&self.open).get(&label) {
            Some((profile, Some(conv))) => Some((profile.clone(), conv.clone())),
            _ => None,
        });
        self.engine.set_focus(focus);
    }

    pub async fn set_do_not_disturb<R: Runtime>(&self, app: &AppHandle<R>, on: bool) {
        *lock(&self.do_not_disturb) = on;
        self.engine.set_do_not_disturb(on);
        self.refresh_tray(app).await;
    }

    /// The UI's language ("en" or "zh"), for the tray.
    pub async fn set_language<R: Runtime>(
        &self,
        app: &AppHandle<R>,
        lang: &str,
    ) -> Result<(), CoreError> {
        let words = crate::tray::words(lang)
            .ok_or_else(|| CoreError::Invalid(format!("no language {lang:?}: en or zh")))?;
        *lock(&self.words) = words;
        self.refresh_tray(app).await;
        Ok(())
    }

    pub fn do_not_disturb(&self) -> bool {
        *lock(&self.do_not_disturb)
    }

    /// Redraws the tray's count and menu from the core's unread counts.
    pub async fn refresh_tray<R: Runtime>(&self, app: &AppHandle<R>) {
        match self.engine.list_profiles().await {
            Ok(profiles) => {
                let words = *lock(&self.words);
                crate::tray::update(app, &profiles, self.do_not_disturb(), words);
            }
            Err(e) => tracing::warn!(code = e.code(), "cannot read unread counts for the tray"),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Opens the profile in its own window (or focuses it). Its label names the profile, which
/// is what the commands check; its web storage lives in the profile's own folder.
pub fn open_profile_window<R: Runtime>(app: &AppHandle<R>, id: &str, name: &str) -> IpcResult<()> {
    let label = profile_window_label(id);
    if let Some(w) = app.get_webview_window(&label) {
        let _ = w.unminimize();
        let _ = w.set_focus();
        return Ok(());
    }
    let mut builder = WebviewWindowBuilder::new(app, &label, WebviewUrl::App("index.html".into()))
        .title(format!("{name} · Switchboard"))
        .inner_size(900.0, 680.0)
        .min_inner_size(520.0, 420.0);
    if let Some(shell) = app.try_state::<Shell>() {
        builder = builder.data_directory(shell.engine.profile_dir(id).join("webview"));
    }
    builder
        .build()
        .map(|_| ())
        .map_err(|e| crate::ipc::IpcError {
            code: "window".into(),
            message: format!("cannot open the profile's window: {e}"),
            public_ids: None,
        })
}

pub fn close_profile_window<R: Runtime>(app: &AppHandle<R>, id: &str) {
    if let Some(w) = app.get_webview_window(&profile_window_label(id)) {
        let _ = w.destroy();
    }
}

/// What a notification click asks for: the main window, on that profile and conversation.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct OpenConversation {
    pub profile: String,
    pub conversation: Option<String>,
}

pub fn bring_to_front<R: Runtime>(app: &AppHandle<R>, target: OpenConversation) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
    }
    let _ = app.emit_to("main", "open-conversation", target);
}
