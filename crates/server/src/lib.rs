//! switchboard-server: the Switchboard service.
//!
//! HTTP + JSON under `/v1` (axum), OpenAPI at `/openapi.json` generated from the routes,
//! storage behind `switchboard_store::Store` (SQLite by default). Start it with [`launch`].

pub mod account_rules;
pub mod accounts;
pub mod admin;
pub mod app;
pub mod auth;
pub mod cluster;
pub mod contacts;
pub mod contract;
pub mod error;
pub mod events;
pub mod groups;
pub mod hub;
pub mod limits;
pub mod me;
pub mod messages;
pub mod metrics;
pub mod moments;
pub mod net;
pub mod node;
pub mod official;
pub mod sessions;
pub mod sms;
pub mod state;
pub mod tls;
pub mod wallet;

#[cfg(feature = "test-support")]
pub mod testing;

pub use app::{LaunchError, Services, build, launch};
pub use switchboard_service::Config;
