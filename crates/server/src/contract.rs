//! The statuses every operation can answer whatever its handler does, added to the OpenAPI
//! document from the router's own layers, so the document lists every status a client can
//! meet (a test checks the router's real answers stay within it).
//!
//! A handler's own outcomes (`404 group_not_found`, `409 …`) are declared on the handler; what
//! the extractors and layers in front of every handler answer is declared here, once:
//! - `401` on every operation that takes the bearer token (no token, a bad, revoked or expired
//!   one);
//! - `400 invalid_request` on every operation that takes a body, a path or query parameters
//!   (malformed JSON, a NUL, a bad parameter);
//! - `413 payload_too_large` on every operation that takes a body (the 64 KiB body limit);
//! - `500 internal` and `503 unavailable` everywhere (a bug caught by the panic layer; the
//!   database out of reach).

use utoipa::openapi::path::Operation;
use utoipa::openapi::{OpenApi, RefOr, Response, ResponseBuilder};

fn error_response(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                utoipa::openapi::content::ContentBuilder::new()
                    .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}

fn declare(op: &mut Operation, status: &str, description: &str) {
    op.responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| error_response(description));
}

/// Adds the statuses of the layers in front of every handler to each operation of `doc`.
pub fn complete_responses(doc: &mut OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let ops = [
            item.get.as_mut(),
            item.put.as_mut(),
            item.post.as_mut(),
            item.delete.as_mut(),
            item.patch.as_mut(),
            item.head.as_mut(),
            item.options.as_mut(),
        ];
        for op in ops.into_iter().flatten() {
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            let has_body = op.request_body.is_some();
            let has_params =
                path.contains('{') || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
            if secured {
                declare(
                    op,
                    "401",
                    "unauthorized, session_revoked or session_expired: no valid bearer token",
                );
            }
            if has_body || has_params {
                declare(op, "400", "invalid_request: a malformed body or parameter");
            }
            if has_body {
                declare(op, "413", "payload_too_large: the body is over 64 KiB");
            }
            declare(op, "500", "internal: a fault in the service, logged");
            declare(
                op,
                "503",
                "unavailable: the database is out of reach; retry",
            );
        }
    }
}
