//! The shell's state: the engine, which conversation each window shows, the tray, and the
//! windows themselves. Everything here translates between windows and the core; the rules
//! (what raises a notification, what counts as unread) stay in the core.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use switchboard_core::store::StoredMessage;
use switchboard_core::{ConversationId, CoreError, Engine, ProfileEvent, ProfileId};
use tauri::ipc::Channel;
use tauri::{AppHandle, Manager, Runtime, WebviewUrl, WebviewWindowBuilder};

use crate::ipc::{Caller, IpcError, IpcResult, profile_window_label};

/// The service a new profile signs in to unless the form says otherwise.
pub const DEFAULT_SERVICE: &str = "http://127.0.0.1:8750";

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct AppInfo {
    pub version: String,
    pub default_server: String,
    /// The profile a profile window shows; absent in the main window.
    pub window_profile: Option<ProfileId>,
    /// How shortcut hints write the primary modifier: "⌘" on macOS, "Ctrl" elsewhere.
    pub primary_modifier: String,
}

/// One search result and the profile it belongs to.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct SearchHit {
    pub profile: ProfileId,
    pub message: StoredMessage,
}

/// What the shell tells a window, through that window's own channel (see
/// [`Shell::subscribe`]): never a global event, which every listener of every window hears.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum UiEvent {
    /// Something happened in a profile this window may see.
    Profile(ProfileEvent),
    /// Events were dropped (the window fell behind): re-read everything shown. It carries no
    /// data, and what a window re-reads is filtered by its own commands.
    ProfilesChanged,
    /// A notification (or the tray) asks the main window for this profile and conversation.
    OpenConversation(OpenConversation),
}

/// The `Channel` a window passes to `subscribe_events`, as a command argument. A newtype only
/// so that the generated TypeScript names it (`Channel<UiEvent>`); Tauri binds the channel
/// to the webview that made the call, so it can reach no other window.
pub struct EventChannel(pub Channel<UiEvent>);

impl<'de, R: Runtime> tauri::ipc::CommandArg<'de, R> for EventChannel {
    fn from_command(
        command: tauri::ipc::CommandItem<'de, R>,
    ) -> Result<Self, tauri::ipc::InvokeError> {
        <Channel<UiEvent> as tauri::ipc::CommandArg<'de, R>>::from_command(command).map(Self)
    }
}

impl ts_rs::TS for EventChannel {
    type WithoutGenerics = Self;
    type OptionInnerType = Self;

    fn name(cfg: &ts_rs::Config) -> String {
        format!("Channel<{}>", UiEvent::name(cfg))
    }

    fn inline(cfg: &ts_rs::Config) -> String {
        Self::name(cfg)
    }

    fn visit_dependencies(v: &mut impl ts_rs::TypeVisitor)
    where
        Self: 'static,
    {
        v.visit::<UiEvent>();
    }
}

/// A window's open event channel, and who that window is.
struct Subscriber {
    caller: Caller,
    channel: Channel<UiEvent>,
}

pub struct Shell {
    pub engine: Arc<Engine>,
    default_server: String,
    /// Window label → the channel its page opened (a reload replaces it, closing drops it).
    subscribers: Mutex<HashMap<String, Subscriber>>,
    /// The task forwarding the core's events to the windows; stopped with the shell.
    forwarding: Mutex<Option<OwnedTask>>,
    /// Window label → (profile, open conversation), reported by each window.
    open: Mutex<HashMap<String, (ProfileId, Option<ConversationId>)>>,
    /// The window that has focus, if any of ours.
    focused: Mutex<Option<String>>,
    do_not_disturb: Mutex<bool>,
    /// The tray's words: the UI's language.
    words: Mutex<&'static crate::tray::Words>,
    ui_up: std::sync::atomic::AtomicBool,
    /// What a notification or the tray asked the main window to show while it had no page to
    /// tell (closed to the tray, or still loading): told as soon as its page subscribes.
    pending_open: Mutex<Option<OpenConversation>>,
}

/// When the process started, for the start-up figure.
pub static LAUNCHED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

impl Shell {
    pub fn new(engine: Arc<Engine>, default_server: String) -> Self {
        Self {
            engine,
            default_server,
            subscribers: Mutex::default(),
            forwarding: Mutex::default(),
            open: Mutex::default(),
            focused: Mutex::default(),
            do_not_disturb: Mutex::new(false),
            words: Mutex::new(&crate::tray::ENGLISH),
            ui_up: std::sync::atomic::AtomicBool::new(false),
            pending_open: Mutex::default(),
        }
    }

    pub fn info(&self, caller: &Caller) -> AppInfo {
        if let Some(launched) = LAUNCHED.get()
            && !self.ui_up.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            // The page has loaded and run its script: the start-up figure benches read.
            let ui_ready_ms = launched.elapsed().as_millis() as u64;
            tracing::info!(ui_ready_ms, "the UI is up");
        }
        AppInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            default_server: self.default_server.clone(),
            window_profile: match caller {
                Caller::Main | Caller::Other => None,
                Caller::Profile(id) => Some(id.clone()),
            },
            primary_modifier: switchboard_core::platform::Os::current()
                .primary_modifier()
                .to_string(),
        }
    }

    /// The label of the calling window; none for a window that is neither ours nor a
    /// profile's (it has nothing to report and nothing to receive).
    fn label_of(caller: &Caller) -> Option<String> {
        match caller {
            Caller::Main => Some("main".into()),
            Caller::Profile(id) => Some(profile_window_label(id)),
            Caller::Other => None,
        }
    }

    /// Opens the calling window's event stream: from now on it receives, through `channel`,
    /// the events of the profiles it may act for (every profile for the main window, its own
    /// for a profile window) and nothing of any other. A reloaded page subscribes again and
    /// replaces its window's old channel.
    pub fn subscribe(&self, caller: &Caller, channel: Channel<UiEvent>) -> IpcResult<()> {
        let label = Self::label_of(caller).ok_or_else(|| IpcError {
            code: "forbidden_profile".into(),
            message: "this window shows no profile and gets no events".into(),
            public_ids: None,
        })?;
        let pending = match caller {
            Caller::Main => lock(&self.pending_open).take(),
            _ => None,
        };
        let caller = caller.clone();
        lock(&self.subscribers).insert(label, Subscriber { caller, channel });
        if let Some(target) = pending {
            self.open_conversation(target);
        }
        Ok(())
    }

    /// A window closed: its channel goes with it, and what it showed no longer counts as
    /// seen (a conversation open in a window that is gone must notify again, even if the
    /// window's focus-out never arrived).
    pub fn window_closed(&self, label: &str) {
        lock(&self.subscribers).remove(label);
        lock(&self.open).remove(label);
        {
            let mut focused = lock(&self.focused);
            if focused.as_deref() == Some(label) {
                *focused = None;
            }
        }
        self.update_focus();
    }

    /// Sends `make()` to every subscribed window `to` accepts, and says how many it reached. A
    /// window whose channel fails (its page is gone) is dropped; it subscribes again when it
    /// loads.
    fn send_where(&self, to: impl Fn(&Caller) -> bool, make: impl Fn() -> UiEvent) -> usize {
        // Sent outside the lock: a send evaluates script in the web view.
        let targets: Vec<(String, Channel<UiEvent>)> = lock(&self.subscribers)
            .iter()
            .filter(|(_, s)| to(&s.caller))
            .map(|(label, s)| (label.clone(), s.channel.clone()))
            .collect();
        let mut reached = 0;
        for (label, channel) in targets {
            match channel.send(make()) {
                Ok(()) => reached += 1,
                Err(e) => {
                    tracing::debug!(window = %label, error = %e, "a window's event channel failed; dropped");
                    let mut subscribers = lock(&self.subscribers);
                    // Only if it is still that channel: the page may have subscribed anew since.
                    if subscribers
                        .get(&label)
                        .is_some_and(|s| s.channel.id() == channel.id())
                    {
                        subscribers.remove(&label);
                    }
                }
            }
        }
        reached
    }

    /// A core event, to the windows that may see its profile (and no other).
    pub fn dispatch(&self, ev: &ProfileEvent) {
        let _ = self.send_where(
            |caller| caller.may_act_for(&ev.profile).is_ok(),
            || UiEvent::Profile(ev.clone()),
        );
    }

    /// Every window should re-read what it shows (through its own, filtered commands).
    pub fn profiles_changed(&self) {
        let _ = self.send_where(|_| true, || UiEvent::ProfilesChanged);
    }

    /// Asks the main window, only, to show a profile's conversation; if it has no page
    /// listening yet, as soon as it has (the latest ask wins).
    pub fn open_conversation(&self, target: OpenConversation) {
        let reached = self.send_where(
            |caller| *caller == Caller::Main,
            || UiEvent::OpenConversation(target.clone()),
        );
        if reached == 0 {
            *lock(&self.pending_open) = Some(target);
        }
    }

    /// Keeps the event-forwarding task, which stops when the shell does (or when replaced).
    pub fn own_forwarding(&self, task: tauri::async_runtime::JoinHandle<()>) {
        *lock(&self.forwarding) = Some(OwnedTask(task));
    }

    pub fn set_open_conversation(
        &self,
        caller: &Caller,
        profile: ProfileId,
        conversation: Option<ConversationId>,
    ) {
        if let Some(label) = Self::label_of(caller) {
            lock(&self.open).insert(label, (profile, conversation));
            self.update_focus();
        }
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

/// A task that is cancelled when its owner drops it.
struct OwnedTask(tauri::async_runtime::JoinHandle<()>);

impl Drop for OwnedTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Opens the profile in its own window (or focuses it). Its label names the profile, which
/// is what the commands check; its web storage lives in the profile's own folder.
pub fn open_profile_window<R: Runtime>(
    app: &AppHandle<R>,
    id: &ProfileId,
    name: &str,
) -> IpcResult<()> {
    let label = profile_window_label(id);
    if let Some(w) = app.get_webview_window(&label) {
        let _ = w.unminimize();
        let _ = w.set_focus();
        return Ok(());
    }
    let mut builder = WebviewWindowBuilder::new(app, &label, WebviewUrl::App("index.html".into()))
        .title(format!("{name} · Switchboard"))
        .inner_size(900.0, 680.0)
        .min_inner_size(520.0, 420.0)
        // Images dropped on a chat or a post go to the page (HTML5 drag and drop), not to
        // Tauri's file-drop events, which would hand the page paths instead of bytes.
        .disable_drag_drop_handler();
    if let Some(shell) = app.try_state::<Shell>() {
        // Windows and Linux keep web data in a folder; WKWebView (macOS) ignores the folder
        // and keeps it in a store named by id (see `platform::web_data_store_id`).
        builder = builder
            .data_directory(shell.engine.profile_dir(id).join("webview"))
            .data_store_identifier(switchboard_core::platform::web_data_store_id(id));
    }
    builder.build().map(|_| ()).map_err(|e| IpcError {
        code: "window".into(),
        message: format!("cannot open the profile's window: {e}"),
        public_ids: None,
    })
}

pub fn close_profile_window<R: Runtime>(app: &AppHandle<R>, id: &ProfileId) {
    if let Some(w) = app.get_webview_window(&profile_window_label(id)) {
        let _ = w.destroy();
    }
}

/// What a notification click asks for: the main window, on that profile and conversation.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct OpenConversation {
    pub profile: ProfileId,
    pub conversation: Option<String>,
}

/// Shows the main window, opening it again if it was closed to the tray, on `target`'s
/// profile and conversation when given (a notification click, the tray's profile entry),
/// through the main window's own channel only.
pub fn bring_to_front<R: Runtime>(app: &AppHandle<R>, target: Option<OpenConversation>) {
    match app.get_webview_window("main") {
        Some(w) => {
            let _ = w.show();
            let _ = w.unminimize();
            let _ = w.set_focus();
        }
        None => {
            if let Err(e) = open_main_window(app) {
                tracing::error!(error = %e, "cannot open the main window again");
            }
        }
    }
    if let (Some(target), Some(shell)) = (target, app.try_state::<Shell>()) {
        shell.open_conversation(target);
    }
}

/// The main window as the app's configuration describes it (its label, size and settings; the
/// window-state plugin puts it back where the user left it). Its web storage (the UI's chosen
/// language) lives in the app's data folder, beside the profiles, as each profile window's
/// lives in its profile's: so `SWITCHBOARD_DATA_DIR` holds all of it.
fn open_main_window<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    let config = app
        .config()
        .app
        .windows
        .iter()
        .find(|w| w.label == "main")
        .cloned()
        .unwrap_or_default();
    let mut builder = WebviewWindowBuilder::from_config(app, &config)?;
    if let Some(shell) = app.try_state::<Shell>() {
        builder = builder.data_directory(shell.engine.data_dir().join("webview"));
    }
    builder.build().map(|_| ())
}
