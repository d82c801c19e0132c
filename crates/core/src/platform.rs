//! What differs between Windows, macOS and Linux, in one place: where data lives, the
//! machine's name, the secret store, the notification server's conventions, what the app's
//! memory is, and how a folder a web view still holds is removed. Each is chosen once, here;
//! the rest of the core (and the shell) never reads `cfg(target_os)`.
//!
//! The mappings that do not need the platform itself ([`Os`] in, a name or a text out) are
//! plain functions of an [`Os`] value, so every platform's answer is unit-tested on any of them.

pub mod notifications;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{CoreError, Result};

/// The desktop platforms the app is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    Linux,
    MacOs,
    Windows,
    /// Anything else the core happens to compile on (a BSD, say): freedesktop conventions,
    /// no secret store of its own.
    Other,
}

impl Os {
    /// The platform this build runs on.
    pub const fn current() -> Self {
        if cfg!(target_os = "linux") {
            Self::Linux
        } else if cfg!(target_os = "macos") {
            Self::MacOs
        } else if cfg!(windows) {
            Self::Windows
        } else {
            Self::Other
        }
    }

    /// Whether the notification server reads a notification's text as markup (freedesktop
    /// servers do: `<b>` would turn bold), so text has to be escaped to stay text.
    pub const fn notification_markup(self) -> bool {
        matches!(self, Self::Linux | Self::Other)
    }

    /// The sound a message notification plays, in the platform's own vocabulary: a
    /// freedesktop sound-theme name, a Windows toast sound (`ms-winsoundevent:Notification.IM`,
    /// which notify-rust names "IM"), macOS's own alert sound
    /// (`NSUserNotificationDefaultSoundName`, whichever the user chose). A name the platform does not know is
    /// silence, not a fallback (a toast without a known sound is posted `silent`), so each is
    /// one that exists there.
    pub const fn message_sound(self) -> &'static str {
        match self {
            Self::Linux | Self::Other => "message-new-instant",
            Self::Windows => "IM",
            Self::MacOs => "NSUserNotificationDefaultSoundName",
        }
    }

    /// How a shortcut's primary modifier is written in hints: ⌘ on macOS, Ctrl elsewhere.
    pub const fn primary_modifier(self) -> &'static str {
        match self {
            Self::MacOs => "⌘",
            _ => "Ctrl",
        }
    }
}

/// The text of an unread badge (the Dock's, the taskbar overlay's, the tray's title): nothing
/// for none, the count up to 99, then "99+", as the platforms' own apps write it.
pub fn badge_text(unread: i64) -> Option<String> {
    match unread {
        ..=0 => None,
        1..=99 => Some(unread.to_string()),
        _ => Some("99+".into()),
    }
}

/// The identifier of a profile's own web data store in WKWebView (macOS 14+): WebKit there
/// ignores a data *directory*, so each profile's windows name a store of their own instead
/// (16 bytes, taken from a hash of the profile id: the same profile gets the same store after
/// a restart, two profiles never share one). On Windows and Linux the profile's folder holds
/// its web data ([`data_directory`]) and this id is not used. macOS 13 has no per-store API:
/// there the profile windows share the app's store, and the app keeps no profile data in it.
///
/// [`data_directory`]: https://docs.rs/tauri/2/tauri/webview/struct.WebviewWindowBuilder.html#method.data_directory
pub fn web_data_store_id(profile: &crate::registry::ProfileId) -> [u8; 16] {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("switchboard web data store {profile}"));
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    id
}

/// `<data dir>/switchboard` in the platform's *local* data folder: `%LOCALAPPDATA%` on
/// Windows (profile databases and WebView2's caches must not roam with the user's profile),
/// `~/Library/Application Support` on macOS, `$XDG_DATA_HOME` on Linux.
pub fn local_data_dir() -> Result<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "switchboard")
        .ok_or_else(|| CoreError::Invalid("no home directory; pass --data-dir".into()))?;
    Ok(dirs.data_local_dir().to_path_buf())
}

/// The machine's name, as the device a session is listed under on the service ("Switchboard
/// on LAPTOP-7"). From the OS itself: `$HOSTNAME` is a shell variable that a desktop launcher
/// (and Windows) never sets.
pub fn device_name() -> String {
    let host = gethostname::gethostname()
        .to_string_lossy()
        .trim()
        .to_string();
    if host.is_empty() {
        "desktop".into()
    } else {
        host
    }
}

/// Makes the platform's secret store keyring-core's default, once per process before any
/// profile call: Secret Service over D-Bus on Linux, the login Keychain on macOS, Credential
/// Manager on Windows. A platform without one is an error here, at start, rather than every
/// profile failing later with "no default store".
pub fn install_secret_store() -> Result<()> {
    #[cfg(target_os = "linux")]
    {
        let store = zbus_secret_service_keyring_store::Store::new().map_err(|e| {
            CoreError::Vault(format!("the Secret Service keyring is not available: {e}"))
        })?;
        keyring_core::set_default_store(store);
        Ok(())
    }
    #[cfg(target_os = "macos")]
    {
        let store = apple_native_keyring_store::keychain::Store::new()
            .map_err(|e| CoreError::Vault(format!("the Keychain is not available: {e}")))?;
        keyring_core::set_default_store(store);
        Ok(())
    }
    #[cfg(windows)]
    {
        let store = windows_native_keyring_store::Store::new().map_err(|e| {
            CoreError::Vault(format!("the Credential Manager is not available: {e}"))
        })?;
        keyring_core::set_default_store(store);
        Ok(())
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
    {
        Err(CoreError::Vault(
            "this platform has no secret store Switchboard can keep sessions in".into(),
        ))
    }
}

/// What the app and its web views cost in memory, in bytes, and how it was measured (the
/// resource view shows the label beside the figure). `None` when it cannot be read.
pub fn app_memory() -> Option<(u64, MemoryMeasure)> {
    #[cfg(target_os = "linux")]
    {
        crate::stats::process_tree_memory().map(|b| (b, MemoryMeasure::Proportional))
    }
    #[cfg(not(target_os = "linux"))]
    {
        resident_tree_memory().map(|b| (b, MemoryMeasure::Resident))
    }
}

/// How [`app_memory`] counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum MemoryMeasure {
    /// Linux: proportional set size, shared pages split fairly between the processes.
    Proportional,
    /// Windows (working set) and macOS (resident size): a page shared by two of the app's
    /// processes counts twice, so the sum is an upper bound.
    Resident,
}

/// The resident memory of this process and its descendants (WebView2's browser, renderer and
/// GPU processes on Windows; WebKit's on macOS): the working set from
/// `GetProcessMemoryInfo` on Windows, `proc_pidinfo`'s resident size on macOS.
#[cfg(not(target_os = "linux"))]
fn resident_tree_memory() -> Option<u64> {
    use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System};
    let mut system = System::new();
    system.refresh_processes_specifics(
        ProcessesToUpdate::All,
        true,
        ProcessRefreshKind::nothing().with_memory(),
    );
    let me = sysinfo::Pid::from_u32(std::process::id());
    let parents: Vec<(sysinfo::Pid, Option<sysinfo::Pid>, u64)> = system
        .processes()
        .iter()
        .map(|(pid, p)| (*pid, p.parent(), p.memory()))
        .collect();
    let total = tree_total(me, &parents);
    (total > 0).then_some(total)
}

/// The sum of `root`'s and its descendants' figures, from (process, parent, figure) rows.
#[cfg_attr(target_os = "linux", allow(dead_code))]
fn tree_total<P: Copy + PartialEq>(root: P, rows: &[(P, Option<P>, u64)]) -> u64 {
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            rows.iter()
                .filter(|(child, p, _)| *p == Some(parent) && !tree.contains(child))
                .map(|(c, _, _)| *c)
                .collect::<Vec<_>>(),
        );
        i += 1;
    }
    rows.iter()
        .filter(|(pid, _, _)| tree.contains(pid))
        .map(|(_, _, bytes)| *bytes)
        .sum()
}

/// Makes a folder its owner's alone: mode 0700 on Unix. On Windows a folder under
/// `%LOCALAPPDATA%` inherits an ACL that already grants only the user (and SYSTEM and
/// administrators), so there is nothing to narrow.
pub fn make_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Makes a rename inside `dir` durable (Unix: the folder itself is synced). Windows cannot
/// open a folder for syncing; NTFS journals the rename.
pub fn sync_folder(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Removes a profile's folder, waiting for whoever still holds a file in it to let go: on
/// Windows WebView2's browser process keeps its user-data folder open for a moment after its
/// window closed, and a file another process holds cannot be deleted there (elsewhere the
/// first attempt succeeds). Gives up after about five seconds with the last error.
pub async fn remove_dir_when_released(dir: &Path) -> Result<()> {
    remove_retrying(
        || std::fs::remove_dir_all(dir),
        Duration::from_millis(50),
        7,
    )
    .await
}

/// `remove` until it succeeds, or finds nothing to remove, or has failed `tries` times for a
/// reason that may pass (a file in use: `PermissionDenied` or Windows' sharing violation),
/// doubling the wait each time.
async fn remove_retrying(
    mut remove: impl FnMut() -> std::io::Result<()>,
    first_wait: Duration,
    tries: u32,
) -> Result<()> {
    let mut wait = first_wait;
    for attempt in 1..=tries {
        match remove() {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if attempt < tries && in_use(&e) => {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Windows' ERROR_SHARING_VIOLATION (32) and ERROR_LOCK_VIOLATION (33), and the access denied
/// a file pending deletion answers with.
fn in_use(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::PermissionDenied
        || (cfg!(windows) && matches!(e.raw_os_error(), Some(32 | 33)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_platform_gets_a_sound_it_has_and_markup_only_where_it_is_read() {
        assert_eq!(Os::Linux.message_sound(), "message-new-instant");
        assert_eq!(Os::Windows.message_sound(), "IM");
        assert_eq!(
            Os::MacOs.message_sound(),
            "NSUserNotificationDefaultSoundName"
        );
        assert!(Os::Linux.notification_markup());
        assert!(!Os::Windows.notification_markup());
        assert!(!Os::MacOs.notification_markup());
        assert_eq!(Os::MacOs.primary_modifier(), "⌘");
        assert_eq!(Os::Windows.primary_modifier(), "Ctrl");
    }

    #[test]
    fn each_profile_has_a_web_store_of_its_own_that_survives_a_restart() {
        use crate::registry::ProfileId;
        let (a, b) = (ProfileId::new("p_a"), ProfileId::new("p_b"));
        assert_eq!(web_data_store_id(&a), web_data_store_id(&a));
        assert_ne!(web_data_store_id(&a), web_data_store_id(&b));
        assert_ne!(
            web_data_store_id(&a),
            [0; 16],
            "the nil id is WebKit's default store"
        );
    }

    #[test]
    fn badges_count_to_ninety_nine_then_say_more() {
        assert_eq!(badge_text(0), None);
        assert_eq!(badge_text(-3), None, "a count never shows negative");
        assert_eq!(badge_text(7).as_deref(), Some("7"));
        assert_eq!(badge_text(99).as_deref(), Some("99"));
        assert_eq!(badge_text(100).as_deref(), Some("99+"));
    }

    #[test]
    fn the_device_is_named_after_the_machine() {
        let name = device_name();
        assert!(!name.is_empty());
        assert_ne!(name, "desktop", "this machine has a host name");
    }

    #[test]
    fn the_tree_counts_descendants_once_and_nothing_else() {
        // 1 ─ 2 ─ 4, 1 ─ 3; 5 is another tree; 6 claims to be its own parent.
        let rows = [
            (1, None, 10),
            (2, Some(1), 20),
            (3, Some(1), 30),
            (4, Some(2), 40),
            (5, None, 500),
            (6, Some(6), 600),
        ];
        assert_eq!(tree_total(1, &rows), 100);
        assert_eq!(tree_total(2, &rows), 60);
        assert_eq!(tree_total(6, &rows), 600, "a cycle ends");
    }

    #[tokio::test]
    async fn a_folder_in_use_is_removed_once_it_is_released() {
        let mut calls = 0;
        let in_use = || std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        remove_retrying(
            || {
                calls += 1;
                if calls < 3 { Err(in_use()) } else { Ok(()) }
            },
            Duration::from_millis(1),
            7,
        )
        .await
        .unwrap();
        assert_eq!(calls, 3, "two refusals while held, then gone");

        let mut calls = 0;
        let held = remove_retrying(
            || {
                calls += 1;
                Err(in_use())
            },
            Duration::from_millis(1),
            4,
        )
        .await;
        assert_eq!(calls, 4);
        assert_eq!(
            held.unwrap_err().code(),
            "storage",
            "held for good: the error, not Ok"
        );

        let gone = remove_retrying(
            || Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
            Duration::from_millis(1),
            4,
        )
        .await;
        assert!(gone.is_ok(), "nothing to remove is done");
    }

    #[tokio::test]
    async fn a_real_folder_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("p_1");
        std::fs::create_dir_all(profile.join("webview")).unwrap();
        std::fs::write(profile.join("profile.db"), b"x").unwrap();
        remove_dir_when_released(&profile).await.unwrap();
        assert!(!profile.exists());
        remove_dir_when_released(&profile).await.unwrap();
    }
}
