//! The `switchboard` binary's tests, one binary: against a real service and the platform's
//! own secret store (`cli` on Linux with gnome-keyring and dunst; `remote` on Windows, under
//! Wine in `cargo xtask test`). Each module is compiled on its platform only.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod cli;
mod common;
mod remote;
