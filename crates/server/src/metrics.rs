//! `/metrics` in the Prometheus text format: request counts by route and status, request
//! time, and domain counters. Small and dependency-free on purpose: a handful of counters
//! behind one mutex is far below the cost of a request.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::App;

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// (method, route, status) → count
    requests: BTreeMap<(String, String, u16), u64>,
    duration_sum_secs: f64,
    duration_count: u64,
    counters: BTreeMap<&'static str, u64>,
}

impl Metrics {
    pub fn count(&self, name: &'static str) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *inner.counters.entry(name).or_default() += 1;
    }

    fn request(&self, method: &str, route: &str, status: u16, secs: f64) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *inner
            .requests
            .entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
        inner.duration_sum_secs += secs;
        inner.duration_count += 1;
    }

    pub fn render(&self) -> String {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP http_requests_total HTTP requests by route and status."
        );
        let _ = writeln!(out, "# TYPE http_requests_total counter");
        for ((method, route, status), n) in &inner.requests {
            let _ = writeln!(
                out,
                "http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP http_request_duration_seconds Time spent answering requests."
        );
        let _ = writeln!(out, "# TYPE http_request_duration_seconds summary");
        let _ = writeln!(
            out,
            "http_request_duration_seconds_sum {}",
            inner.duration_sum_secs
        );
        let _ = writeln!(
            out,
            "http_request_duration_seconds_count {}",
            inner.duration_count
        );
        for (name, n) in &inner.counters {
            let _ = writeln!(out, "# TYPE switchboard_{name} counter");
            let _ = writeln!(out, "switchboard_{name} {n}");
        }
        out
    }
}

/// Middleware: counts every request under its route template (never the raw path, which would
/// put user IDs in label values and grow without bound).
pub async fn track(State(app): State<App>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    app.metrics.request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

pub async fn render(State(app): State<App>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        app.metrics.render(),
    )
}
