//! Session tokens live only in the OS keyring (Secret Service, Keychain, Credential Manager),
//! one entry per profile (`switchboard` / `<profile-id>/session`), behind a small trait so
//! unit tests use an in-memory store. A token never reaches a file, a log or `Debug` output.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::error::{CoreError, Result};
use crate::registry::ProfileId;

pub const SERVICE: &str = "switchboard";

/// A bearer token; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(token: String) -> Self {
        Self(token)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

pub trait Vault: Send + Sync + 'static {
    fn store(&self, profile_id: &ProfileId, token: &Token) -> Result<()>;
    /// None when the profile has no token (signed out).
    fn load(&self, profile_id: &ProfileId) -> Result<Option<Token>>;
    fn delete(&self, profile_id: &ProfileId) -> Result<()>;
}

fn user(profile_id: &ProfileId) -> String {
    format!("{profile_id}/session")
}

/// The OS keyring, through keyring-core's default store (set once at start by the binary:
/// Secret Service on Linux, Keychain on macOS, Credential Manager on Windows).
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyringVault;

impl KeyringVault {
    /// The platform's keyring as the default store (Secret Service over D-Bus on Linux;
    /// Keychain and Credential Manager elsewhere), once per process, before any profile call.
    pub fn os() -> Result<std::sync::Arc<dyn Vault>> {
        #[cfg(target_os = "linux")]
        {
            let store = zbus_secret_service_keyring_store::Store::new().map_err(|e| {
                CoreError::Vault(format!("the Secret Service keyring is not available: {e}"))
            })?;
            keyring_core::set_default_store(store);
        }
        Ok(std::sync::Arc::new(KeyringVault))
    }
}

impl Vault for KeyringVault {
    fn store(&self, profile_id: &ProfileId, token: &Token) -> Result<()> {
        let entry = keyring_core::Entry::new(SERVICE, &user(profile_id)).map_err(vault_err)?;
        entry.set_password(token.expose()).map_err(vault_err)
    }

    fn load(&self, profile_id: &ProfileId) -> Result<Option<Token>> {
        let entry = keyring_core::Entry::new(SERVICE, &user(profile_id)).map_err(vault_err)?;
        match entry.get_password() {
            Ok(t) => Ok(Some(Token::new(t))),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(vault_err(e)),
        }
    }

    fn delete(&self, profile_id: &ProfileId) -> Result<()> {
        let entry = keyring_core::Entry::new(SERVICE, &user(profile_id)).map_err(vault_err)?;
        match entry.delete_credential() {
            Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
            Err(e) => Err(vault_err(e)),
        }
    }
}

fn vault_err(e: keyring_core::Error) -> CoreError {
    // keyring errors describe the store, never the secret.
    CoreError::Vault(e.to_string())
}

/// In memory, for tests.
#[derive(Debug, Default)]
pub struct MemoryVault {
    entries: Mutex<HashMap<String, Token>>,
}

impl MemoryVault {
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Vault for MemoryVault {
    fn store(&self, profile_id: &ProfileId, token: &Token) -> Result<()> {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(user(profile_id), token.clone());
        Ok(())
    }

    fn load(&self, profile_id: &ProfileId) -> Result<Option<Token>> {
        Ok(self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&user(profile_id))
            .cloned())
    }

    fn delete(&self, profile_id: &ProfileId) -> Result<()> {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&user(profile_id));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_never_print() {
        let t = Token::new("very-secret-token".into());
        assert!(!format!("{t:?}").contains("very-secret"));
    }

    #[test]
    fn the_keyring_vault_round_trips_through_keyring_core() {
        // keyring-core's mock store stands in for the OS store in unit tests; the real
        // Secret Service is exercised by the native test.
        keyring_core::set_default_store(keyring_core::mock::Store::new().unwrap());
        let v = KeyringVault;
        let id = ProfileId::new("p_x");
        assert_eq!(v.load(&id).unwrap(), None);
        v.store(&id, &Token::new("tok".into())).unwrap();
        v.delete(&id).unwrap();
        v.delete(&id).unwrap();
    }
}
