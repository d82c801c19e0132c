//! The service's integration tests, one binary (it links once, not once per suite): each
//! module is a suite, through HTTP and WebSockets against a real router on port 0, on SQLite
//! and, in `cargo xtask test`'s second pass, on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

mod admin;
mod blobs_s3;
mod client_ip;
mod cluster;
mod concurrency;
mod contract;
mod crash;
mod deploy;
mod funding;
mod http;
mod messaging;
mod moments;
mod nodes;
mod official_http;
mod registration;
mod security;
mod sessions;
mod stream;
mod tls;
mod wallet;
