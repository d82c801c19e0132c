//! The operator's side of HTTP: the request-counting middleware and the admin listener that
//! serves `/metrics` (never on the public port).

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use crate::error::Error;
use crate::state::App;

/// Middleware: counts every request under its route template.
pub async fn track(State(app): State<App>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    app.metrics.request(
        &method,
        route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

pub async fn render(State(app): State<App>) -> Response {
    match app.metrics.render() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => Error::internal("the metrics could not be encoded").into_response(),
    }
}

/// The operator's router, for the admin listener: `/metrics`, never on the public port.
pub fn admin_router(app: App) -> Router {
    Router::new().route("/metrics", get(render)).with_state(app)
}

/// Serves [`admin_router`] on `listener` until the service stops (a task `app::serve` owns).
pub async fn serve_admin(app: App, listener: TcpListener) {
    let shutdown = app.shutdown.clone();
    let served = axum::serve(listener, admin_router(app))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "the admin listener stopped");
    }
}
