//! What crosses IPC besides the core's own types: the error the UI branches on, and the
//! check that a window acts only for the profiles it may.

use serde::Serialize;
use switchboard_core::CoreError;
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

/// The label of a profile's own window.
pub fn profile_window_label(profile_id: &str) -> String {
    format!("profile-{profile_id}")
}

/// Who is calling, from the calling window's label (set by Rust when the window was made; a
/// page cannot change it): the main window acts for every profile, a profile's own window
/// only for that profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Main,
    Profile(String),
}

impl Caller {
    pub fn of<R: Runtime>(window: &WebviewWindow<R>) -> Self {
        Self::from_label(window.label())
    }

    pub fn from_label(label: &str) -> Self {
        match label.strip_prefix("profile-") {
            Some(id) => Caller::Profile(id.to_string()),
            // Any other window (there is none today) gets the narrowest scope: no profile.
            None if label == "main" => Caller::Main,
            None => Caller::Profile(String::new()),
        }
    }

    /// Refuses a call for `profile` from a window that does not show it.
    pub fn may_act_for(&self, profile: &str) -> IpcResult<()> {
        match self {
            Caller::Main => Ok(()),
            Caller::Profile(own) if own == profile => Ok(()),
            Caller::Profile(_) => Err(forbidden("this window acts only for its own profile")),
        }
    }

    /// Refuses what only the main window may do (add, remove, reorder profiles, ...).
    pub fn must_be_main(&self) -> IpcResult<()> {
        match self {
            Caller::Main => Ok(()),
            Caller::Profile(_) => Err(forbidden("only the main window can do this")),
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

    #[test]
    fn a_profile_window_acts_only_for_its_profile() {
        let c = Caller::from_label(&profile_window_label("p_1"));
        assert!(c.may_act_for("p_1").is_ok());
        assert_eq!(c.may_act_for("p_2").unwrap_err().code, "forbidden_profile");
        assert!(
            c.must_be_main().is_err(),
            "a profile window cannot manage profiles"
        );
        assert!(Caller::from_label("main").may_act_for("p_2").is_ok());
        assert!(
            Caller::from_label("settings").may_act_for("p_1").is_err(),
            "an unknown window gets no profile"
        );
    }
}
