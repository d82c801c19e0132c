//! What crosses IPC besides the core's own types: the error the UI branches on, and the
//! check that a window acts only for the profiles it may.

use serde::Serialize;
use switchboard_core::{CoreError, ProfileId};
use tauri::ipc::{CommandArg, CommandItem, InvokeError};
use tauri::{Runtime, WebviewWindow};

/// An error as the UI sees it: a stable `code` to branch on (the service's own codes, core's,
/// or the shell's `forbidden_profile`) and a message to show.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
pub struct IpcError {
    pub code: String,
    pub message: String,
    /// With `account_choice_required`: the accounts of that phone number to choose from.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub public_ids: Option<Vec<String>>,
}

impl From<CoreError> for IpcError {
    fn from(e: CoreError) -> Self {
        let public_ids = match &e {
            CoreError::Api(api) => api.public_ids.clone(),
            _ => None,
        };
        Self {
            code: e.code().to_string(),
            message: e.to_string(),
            public_ids,
        }
    }
}

pub type IpcResult<T> = Result<T, IpcError>;

/// A command's argument, read as Tauri reads it (missing keys, `null` for `Option`), but
/// refused as an [`IpcError`] with the code `invalid`, not Tauri's bare string: a malformed id
/// (a group id without its `g_`, a public ID with a space) is refused as it crosses IPC, and
/// the UI can branch on that like on any other error.
pub struct Arg<T>(pub T);

impl<'de, R: Runtime, T: CommandArg<'de, R>> CommandArg<'de, R> for Arg<T> {
    fn from_command(command: CommandItem<'de, R>) -> Result<Self, InvokeError> {
        T::from_command(command).map(Arg).map_err(|e| {
            let message = match e.0 {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            InvokeError::from(IpcError {
                code: "invalid".into(),
                message,
                public_ids: None,
            })
        })
    }
}

/// The label of a profile's own window: it names the profile by id.
pub fn profile_window_label(profile_id: &ProfileId) -> String {
    format!("profile-{profile_id}")
}

/// Who is calling, from the calling window's label (set by Rust when the window was made; a
/// page cannot change it): the main window acts for every profile, a profile's own window
/// only for that profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Main,
    /// A profile's own window, and the id its label names.
    Profile(ProfileId),
    /// Any other window (there is none today): the narrowest scope, no profile at all.
    Other,
}

impl Caller {
    pub fn of<R: Runtime>(window: &WebviewWindow<R>) -> Self {
        Self::from_label(window.label())
    }

    pub fn from_label(label: &str) -> Self {
        match label.strip_prefix("profile-") {
            Some(id) if !id.is_empty() => Caller::Profile(ProfileId::new(id)),
            Some(_) => Caller::Other,
            None if label == "main" => Caller::Main,
            None => Caller::Other,
        }
    }

    /// The profile a call acts for: the one the page asked for, if this window may act for
    /// it. Ids are compared, and what comes back is an id the core resolves by id only: a
    /// profile named like another's id can never stand in for it.
    pub fn act_for(&self, profile: ProfileId) -> IpcResult<ProfileId> {
        self.may_act_for(&profile)?;
        Ok(profile)
    }

    /// Refuses a call for `profile` from a window that does not show it.
    pub fn may_act_for(&self, profile: &ProfileId) -> IpcResult<()> {
        match self {
            Caller::Main => Ok(()),
            Caller::Profile(own) if own == profile => Ok(()),
            Caller::Profile(_) | Caller::Other => {
                Err(forbidden("this window acts only for its own profile"))
            }
        }
    }

    /// Refuses what only the main window may do (add, remove, reorder profiles, ...).
    pub fn must_be_main(&self) -> IpcResult<()> {
        match self {
            Caller::Main => Ok(()),
            Caller::Profile(_) | Caller::Other => {
                Err(forbidden("only the main window can do this"))
            }
        }
    }
}

fn forbidden(message: &str) -> IpcError {
    IpcError {
        code: "forbidden_profile".into(),
        message: message.into(),
        public_ids: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ProfileId {
        ProfileId::new(s)
    }

    #[test]
    fn a_profile_window_acts_only_for_its_profile() {
        let c = Caller::from_label(&profile_window_label(&id("p_1")));
        assert_eq!(c, Caller::Profile(id("p_1")));
        assert_eq!(c.act_for(id("p_1")).unwrap(), id("p_1"));
        assert_eq!(c.act_for(id("p_2")).unwrap_err().code, "forbidden_profile");
        assert!(
            c.must_be_main().is_err(),
            "a profile window cannot manage profiles"
        );
        assert!(Caller::from_label("main").may_act_for(&id("p_2")).is_ok());
        for label in ["settings", "profile-", "Main"] {
            let other = Caller::from_label(label);
            assert_eq!(other, Caller::Other, "{label}");
            assert!(
                other.may_act_for(&id("p_1")).is_err() && other.may_act_for(&id("")).is_err(),
                "an unknown window ({label:?}) gets no profile"
            );
        }
    }
}
