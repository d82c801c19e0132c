//! The end-to-end tests, one binary: a real service on loopback and the client core together
//! (`moments`, `official`, `profiles`), and the desktop app in a real window (`app_window`,
//! `#[ignore]`d in the plain run; `cargo xtask test` runs it under Xvfb).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod app_window;
mod moments;
mod official;
mod profiles;
