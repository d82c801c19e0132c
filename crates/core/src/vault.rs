//! A profile's secrets live only in the OS keyring (Secret Service, Keychain, Credential
//! Manager), in one entry per profile (`switchboard` / `<profile-id>/session`): its session
//! token and the key of its encrypted database. One entry, so platforms that ask the user per
//! item ask once per profile. Behind a small trait so unit tests use an in-memory store. A
//! secret never reaches a file, a log or `Debug` output.

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

/// The key of a profile's SQLCipher database: 32 random bytes, given to SQLCipher as a raw key.
/// It is random already, so no passphrase derivation (PBKDF2 would add ~0.5 s to every open
/// of every profile for nothing). `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseKey([u8; 32]);

impl DatabaseKey {
    pub fn generate() -> Result<Self> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|e| CoreError::Vault(format!("no randomness for a database key: {e}")))?;
        Ok(Self(key))
    }

    fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 64 || !hex.is_ascii() {
            return None;
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Self(key))
    }

    /// The value of SQLCipher's `PRAGMA key` (and `ATTACH … KEY`) for this raw key: a quoted
    /// blob literal, `"x'…'"`. Hex digits only, so it is safe inside SQL text. Like
    /// [`Token::expose`] it hands out the secret: only to open the database with.
    pub fn sql_literal(&self) -> String {
        format!("\"x'{}'\"", self.to_hex())
    }
}

impl std::fmt::Debug for DatabaseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseKey(<redacted>)")
    }
}

/// What the keyring holds for one profile. A signed-out profile keeps its database key (its
/// local data stays readable); a profile from before encryption has a token and no key yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    pub token: Option<Token>,
    pub database_key: Option<DatabaseKey>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    database_key: Option<String>,
}

impl Secrets {
    pub fn is_empty(&self) -> bool {
        self.token.is_none() && self.database_key.is_none()
    }

    /// The entry's text: a small JSON object.
    fn encode(&self) -> String {
        serde_json::to_string(&Stored {
            token: self.token.as_ref().map(|t| t.expose().to_string()),
            database_key: self.database_key.as_ref().map(DatabaseKey::to_hex),
        })
        .unwrap_or_default()
    }

    /// Reads an entry. Before databases were encrypted the entry held the bare token, which
    /// is never JSON (tokens are URL-safe characters), so it still reads as a token alone.
    fn decode(text: &str) -> Result<Self> {
        if !text.starts_with('{') {
            return Ok(Self {
                token: Some(Token::new(text.to_string())),
                database_key: None,
            });
        }
        // The parser's message is never shown: it could quote the secret.
        let unreadable = || CoreError::Vault("the profile's keyring entry is not readable".into());
        let stored: Stored = serde_json::from_str(text).map_err(|_| unreadable())?;
        let database_key = match stored.database_key {
            Some(hex) => Some(DatabaseKey::from_hex(&hex).ok_or_else(unreadable)?),
            None => None,
        };
        Ok(Self {
            token: stored.token.map(Token::new),
            database_key,
        })
    }
}

/// One entry per profile, read and written whole.
pub trait Vault: Send + Sync + 'static {
    /// Replaces the profile's entry (an empty `Secrets` removes it).
    fn store(&self, profile_id: &ProfileId, secrets: &Secrets) -> Result<()>;
    /// Empty when the profile has no entry.
    fn load(&self, profile_id: &ProfileId) -> Result<Secrets>;
    fn delete(&self, profile_id: &ProfileId) -> Result<()>;
}

fn user(profile_id: &ProfileId) -> String {
    format!("{profile_id}/session")
}

/// The OS keyring, through keyring-core's default store (set once at start by [`os`]:
/// Secret Service on Linux, Keychain on macOS, Credential Manager on Windows).
///
/// [`os`]: KeyringVault::os
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyringVault;

impl KeyringVault {
    /// The platform's keyring as the default store (Secret Service over D-Bus on Linux;
    /// Keychain and Credential Manager elsewhere), once per process, before any profile call.
    pub fn os() -> Result<std::sync::Arc<dyn Vault>> {
        crate::platform::install_secret_store()?;
        Ok(std::sync::Arc::new(KeyringVault))
    }
}

impl Vault for KeyringVault {
    fn store(&self, profile_id: &ProfileId, secrets: &Secrets) -> Result<()> {
        if secrets.is_empty() {
            return self.delete(profile_id);
        }
        let entry = keyring_core::Entry::new(SERVICE, &user(profile_id)).map_err(vault_err)?;
        entry.set_password(&secrets.encode()).map_err(vault_err)
    }

    fn load(&self, profile_id: &ProfileId) -> Result<Secrets> {
        let entry = keyring_core::Entry::new(SERVICE, &user(profile_id)).map_err(vault_err)?;
        match entry.get_password() {
            Ok(text) => Secrets::decode(&text),
            Err(keyring_core::Error::NoEntry) => Ok(Secrets::default()),
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

/// In memory, for tests. It keeps each entry's text as the keyring would, so the encoding is
/// exercised by every test that uses it.
#[derive(Debug, Default)]
pub struct MemoryVault {
    entries: Mutex<HashMap<String, String>>,
}

impl MemoryVault {
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes an entry's raw text, e.g. the bare token an older version stored.
    pub fn put_raw(&self, profile_id: &ProfileId, text: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(user(profile_id), text.to_string());
    }
}

impl Vault for MemoryVault {
    fn store(&self, profile_id: &ProfileId, secrets: &Secrets) -> Result<()> {
        if secrets.is_empty() {
            return self.delete(profile_id);
        }
        self.put_raw(profile_id, &secrets.encode());
        Ok(())
    }

    fn load(&self, profile_id: &ProfileId) -> Result<Secrets> {
        let text = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&user(profile_id))
            .cloned();
        text.map_or_else(|| Ok(Secrets::default()), |t| Secrets::decode(&t))
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
    fn database_keys_never_print_and_differ_per_profile() {
        let (a, b) = (
            DatabaseKey::generate().unwrap(),
            DatabaseKey::generate().unwrap(),
        );
        assert_ne!(a, b);
        assert!(!format!("{a:?}").contains(&a.to_hex()));
        assert!(
            !format!(
                "{:?}",
                Secrets {
                    token: None,
                    database_key: Some(a.clone())
                }
            )
            .contains(&a.to_hex())
        );
        assert_eq!(a.sql_literal().len(), 64 + 5);
    }

    #[test]
    fn an_entry_keeps_token_and_key_and_reads_an_older_bare_token() {
        let v = MemoryVault::default();
        let id = ProfileId::new("p_x");
        assert!(v.load(&id).unwrap().is_empty());
        let both = Secrets {
            token: Some(Token::new("tok".into())),
            database_key: Some(DatabaseKey::generate().unwrap()),
        };
        v.store(&id, &both).unwrap();
        assert_eq!(v.load(&id).unwrap(), both);
        let signed_out = Secrets {
            token: None,
            ..both.clone()
        };
        v.store(&id, &signed_out).unwrap();
        assert_eq!(
            v.load(&id).unwrap(),
            signed_out,
            "the key outlives the session"
        );
        // What an older version wrote: the bare token.
        v.put_raw(&id, "AbC-123_tok");
        assert_eq!(
            v.load(&id).unwrap(),
            Secrets {
                token: Some(Token::new("AbC-123_tok".into())),
                database_key: None
            }
        );
        v.put_raw(&id, "{\"database_key\":\"zz\"}");
        assert_eq!(
            v.load(&id).unwrap_err().code(),
            "vault",
            "a damaged entry is refused, not half-read"
        );
        v.store(&id, &Secrets::default()).unwrap();
        assert!(v.is_empty());
    }

    #[test]
    fn the_keyring_vault_round_trips_through_keyring_core() {
        // keyring-core's mock store stands in for the OS store in unit tests; the real
        // Secret Service is exercised by the CLI's tests.
        keyring_core::set_default_store(keyring_core::mock::Store::new().unwrap());
        let v = KeyringVault;
        let id = ProfileId::new("p_x");
        assert!(v.load(&id).unwrap().is_empty());
        v.store(
            &id,
            &Secrets {
                token: Some(Token::new("tok".into())),
                database_key: None,
            },
        )
        .unwrap();
        v.delete(&id).unwrap();
        v.delete(&id).unwrap();
    }
}
