//! The desktop's own notifications through notify-rust, on each platform in its own way:
//! freedesktop over D-Bus (Linux), toasts under the app's AppUserModelID (Windows), Notification
//! Center under the app's bundle id (macOS). A click on one opens its profile's exact chat.
//! [`NotificationSink`] is the seam the notifier talks to; tests use a recording sink.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::Os;
use crate::notify::{Notification, NotificationSink};
use crate::registry::ProfileId;

/// The app's identity to the notification system: the installer registers it as the Start
/// menu shortcut's AppUserModelID on Windows (Tauri's NSIS and MSI bundles use the bundle
/// identifier), and it is the bundle id on macOS. It must equal `identifier` in
/// `src-tauri/tauri.conf.json` (a test of the shell checks it).
pub const APP_ID: &str = "app.switchboard.desktop";

/// What a click on a notification opens: (profile id, conversation).
pub type OnClick = Arc<dyn Fn(&ProfileId, Option<&str>) + Send + Sync>;

/// Notifications whose click is waited for at once.
const CLICK_WATCHERS: usize = 32;

/// The desktop's notification server via notify-rust.
#[derive(Default)]
pub struct DesktopSink {
    failed_once: AtomicBool,
    on_click: Option<OnClick>,
    /// Threads waiting for a click; bounded, so a flood of unanswered notifications cannot
    /// pile up threads (past the bound a notification still shows, without click-through).
    watchers: Arc<AtomicUsize>,
    /// The Windows toast identity: [`APP_ID`] for the installed app. Windows drops a toast
    /// posted under an id no Start menu shortcut carries, so the CLI (which has none) keeps
    /// notify-rust's default.
    app_id: Option<&'static str>,
}

impl DesktopSink {
    /// A sink whose notifications, when clicked, call `on_click` with their profile and
    /// conversation (the app brings that exact chat to front).
    pub fn with_click(on_click: OnClick) -> Self {
        claim_app_identity();
        Self {
            on_click: Some(on_click),
            app_id: Some(APP_ID),
            ..Self::default()
        }
    }

    /// A sink without click-through (the CLI: nothing to bring to front).
    pub fn plain() -> Self {
        claim_app_identity();
        Self::default()
    }
}

/// On macOS, notifications are posted as whichever app's bundle id is set, Finder's by
/// default: set the app's own, once. Other platforms name the app on each notification.
fn claim_app_identity() {
    #[cfg(target_os = "macos")]
    {
        static CLAIMED: std::sync::Once = std::sync::Once::new();
        CLAIMED.call_once(|| {
            if let Err(e) = notify_rust::set_application(APP_ID) {
                // An app that is not installed as a bundle (a development build, the CLI)
                // keeps the default sender; the notifications still show.
                tracing::info!(error = %e, "notifications are posted under the default app");
            }
        });
    }
}

/// Text as the platform's notification server shows it literally. freedesktop servers read
/// the body (and some the title) as markup, so a message saying `<b>hi</b>` would turn bold,
/// and one saying `&amp;` would show `&`: there `&`, `<` and `>` are escaped. Other platforms
/// show text as it is, so there it is left alone.
pub fn desktop_text(os: Os, text: &str) -> String {
    if os.notification_markup() {
        escape_markup(text)
    } else {
        text.to_string()
    }
}

/// `&`, `<` and `>` as entities: what freedesktop's body markup needs for text to stay text
/// (quotes matter only inside tags, and no text is ever put inside one).
fn escape_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Whether a notification's outcome asks to open what it is about: a click on its body
/// (freedesktop's "default" action, a toast's activation, Notification Center's click) or
/// on its "Open" button (Windows shows the action as one).
fn opens(response: &notify_rust::NotificationResponse) -> bool {
    use notify_rust::NotificationResponse as R;
    match response {
        R::Default => true,
        R::Action(key) => key == OPEN_ACTION,
        R::Reply(_) | R::Closed(_) => false,
    }
}

/// The action a click on the notification itself invokes on freedesktop servers.
const OPEN_ACTION: &str = "default";

/// A notification in the platform's terms, before notify-rust gets it: what each platform
/// is handed is a plain value, so every platform's is tested on any of them.
#[derive(Debug, Clone, PartialEq, Eq)]
// Each platform's build reads the fields that platform has.
#[allow(dead_code)]
struct DesktopNote {
    title: String,
    body: String,
    /// The platform's name of the sound to play, if any.
    sound: Option<&'static str>,
    /// The identity a Windows toast is posted under; elsewhere the app is named otherwise.
    app_id: Option<&'static str>,
    /// "profile|conversation": what a click opens, as a freedesktop hint (visible on the bus).
    target: Option<String>,
}

fn desktop_note(os: Os, app_id: Option<&'static str>, n: &Notification) -> DesktopNote {
    DesktopNote {
        title: desktop_text(os, &n.title),
        body: desktop_text(os, &n.body),
        sound: n.sound.then(|| os.message_sound()),
        app_id: app_id.filter(|_| os == Os::Windows),
        target: os
            .notification_markup()
            .then(|| format!("{}|{}", n.profile, n.conversation.as_deref().unwrap_or(""))),
    }
}

impl DesktopNote {
    fn to_notify_rust(&self) -> notify_rust::Notification {
        let mut note = notify_rust::Notification::new();
        note.appname("Switchboard")
            .summary(&self.title)
            .body(&self.body);
        note.action(OPEN_ACTION, "Open");
        #[cfg(windows)]
        if let Some(id) = self.app_id {
            note.app_id(id);
        }
        #[cfg(all(unix, not(target_os = "macos")))]
        if let Some(target) = &self.target {
            note.hint(notify_rust::Hint::Custom(
                "x-switchboard-target".into(),
                target.clone(),
            ));
        }
        if let Some(sound) = self.sound {
            note.sound_name(sound);
        }
        note
    }
}

impl NotificationSink for DesktopSink {
    fn show(&self, n: &Notification) -> Result<(), String> {
        match desktop_note(Os::current(), self.app_id, n)
            .to_notify_rust()
            .show()
        {
            Ok(handle) => {
                if let Some(on_click) = self.on_click.clone() {
                    self.watch_click(handle, on_click, n.profile.clone(), n.conversation.clone());
                }
                Ok(())
            }
            Err(e) => {
                // Logged once: a desktop with no notification server should not flood the log.
                if !self.failed_once.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "no notification server; counting in the app only");
                }
                Err(e.to_string())
            }
        }
    }
}

impl DesktopSink {
    /// Waits on a thread of its own for the notification's click or close (notify-rust's wait
    /// is blocking on every platform); the thread ends when the notification does.
    fn watch_click(
        &self,
        handle: notify_rust::NotificationHandle,
        on_click: OnClick,
        profile: ProfileId,
        conversation: Option<String>,
    ) {
        if self.watchers.fetch_add(1, Ordering::SeqCst) >= CLICK_WATCHERS {
            self.watchers.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        let watchers = self.watchers.clone();
        let spawned = std::thread::Builder::new()
            .name("notification-click".into())
            .spawn(move || {
                let clicked = |response: &notify_rust::NotificationResponse| {
                    if opens(response) {
                        on_click(&profile, conversation.as_deref());
                    }
                };
                // freedesktop's handle takes its own handler trait; the others a closure.
                #[cfg(all(unix, not(target_os = "macos")))]
                handle.wait_for_action(|action| {
                    let response = if action == OPEN_ACTION {
                        notify_rust::NotificationResponse::Default
                    } else {
                        notify_rust::NotificationResponse::Action(action.to_string())
                    };
                    clicked(&response);
                });
                #[cfg(not(all(unix, not(target_os = "macos"))))]
                if let Err(e) = handle.wait_for_response(clicked) {
                    tracing::debug!(error = %e, "a notification's answer never came");
                }
                watchers.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            self.watchers.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify_rust::{CloseReason, NotificationResponse as R};

    #[test]
    fn a_click_on_the_body_or_on_open_opens_and_nothing_else_does() {
        assert!(
            opens(&R::Default),
            "a body click (toast activation, Notification Center)"
        );
        assert!(opens(&R::Action(OPEN_ACTION.into())), "the Open button");
        assert!(!opens(&R::Action("mute".into())));
        assert!(!opens(&R::Closed(CloseReason::Dismissed)));
        assert!(!opens(&R::Closed(CloseReason::Expired)));
        assert!(!opens(&R::Reply("hi".into())));
    }

    #[test]
    fn markup_is_escaped_only_where_the_server_reads_it() {
        assert_eq!(
            escape_markup("<b>x</b> & &amp; <a href=\"u\">y</a>"),
            "&lt;b&gt;x&lt;/b&gt; &amp; &amp;amp; &lt;a href=\"u\"&gt;y&lt;/a&gt;"
        );
        assert_eq!(
            escape_markup("Work · 张三"),
            "Work · 张三",
            "only & < > change"
        );
        assert_eq!(desktop_text(Os::Linux, "a <b>"), "a &lt;b&gt;");
        assert_eq!(desktop_text(Os::Windows, "a <b>"), "a <b>");
        assert_eq!(desktop_text(Os::MacOs, "a &amp;"), "a &amp;");
    }

    #[test]
    fn each_platform_gets_the_text_as_sent_its_own_sound_and_identity() {
        let n = Notification {
            profile: ProfileId::new("p1"),
            title: "R&D <team> · bob".into(),
            body: "<b>x</b> costs &amp; more".into(),
            conversation: Some("u_bob".into()),
            sound: true,
        };
        let linux = desktop_note(Os::Linux, Some(APP_ID), &n);
        assert_eq!(
            linux.title, "R&amp;D &lt;team&gt; · bob",
            "the title is escaped too: some servers read it as markup"
        );
        assert_eq!(
            linux.body, "&lt;b&gt;x&lt;/b&gt; costs &amp;amp; more",
            "a freedesktop server reads the body as markup: the text must come out as sent"
        );
        assert_eq!(linux.sound, Some("message-new-instant"));
        assert_eq!(linux.target.as_deref(), Some("p1|u_bob"));
        assert_eq!(linux.app_id, None);

        let windows = desktop_note(Os::Windows, Some(APP_ID), &n);
        assert_eq!(
            windows.body, "<b>x</b> costs &amp; more",
            "toasts show text as is"
        );
        assert_eq!(
            windows.app_id,
            Some(APP_ID),
            "a toast under the app's own id, not PowerShell's"
        );
        assert_eq!(windows.sound, Some("IM"), "a toast sound Windows has");

        let mac = desktop_note(Os::MacOs, Some(APP_ID), &n);
        assert_eq!(mac.title, "R&D <team> · bob");
        assert_eq!(mac.sound, Some("NSUserNotificationDefaultSoundName"));
        assert_eq!(
            mac.app_id, None,
            "macOS names the app by its bundle id, set once"
        );

        let quiet = Notification { sound: false, ..n };
        let cli = desktop_note(Os::Windows, None, &quiet);
        assert_eq!(cli.sound, None);
        assert_eq!(cli.app_id, None, "no shortcut carries an id for the CLI");
        // What the build's own platform is handed converts (no panic, the text kept).
        let native = desktop_note(Os::current(), None, &quiet).to_notify_rust();
        assert_eq!(native.summary, desktop_text(Os::current(), &quiet.title));
    }
}
