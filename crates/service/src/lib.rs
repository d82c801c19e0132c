//! switchboard-service: the service's domain without HTTP. What the rules are made of (the
//! domain's error, time and randomness as ports, phone numbers, shown text, passwords, TOTP,
//! real-name identity, image storage, SMS delivery, funding) and the service's configuration. Imports the protocol and
//! the store, never axum, tower or rustls: a rule here is tested without a socket.

pub mod blobs;
pub mod clock;
pub mod config;
pub mod error;
pub mod funding;
pub mod identity;
pub mod mac;
pub mod password;
pub mod phone;
pub mod proxies;
pub mod sms;
pub mod text;
pub mod totp;
pub mod webhook;

pub use config::Config;
pub use error::{Error, Result};
