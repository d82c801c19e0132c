//! The Switchboard wire contract: every request, response and error code that crosses between
//! `switchboard-server` and its clients. Types only: no I/O, no async, so that the server, the
//! client core and the app's bindings all compile against exactly one definition.
//!
//! Requests reject unknown fields (`deny_unknown_fields`): a typo in a client must fail loudly
//! instead of being silently ignored.

pub mod auth;
pub mod error;
pub mod events;
pub mod messaging;
pub mod moments;
pub mod official;
pub mod wallet;

pub use error::{ApiError, ErrorBody, ErrorCode};
pub use events::{Event, EventBody, EventKind};

/// RFC 3339 timestamps on the wire.
pub type Timestamp = time::OffsetDateTime;
