//! The OpenAPI document is the contract: every status the router really answers must be one
//! the document declares for that operation. Each operation is fired at with what a client
//! (or a fuzzer such as schemathesis) would send: no token, a bad token, a valid token with
//! an empty, a malformed, a wrongly typed, an oversized body and odd path parameters.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::collections::BTreeSet;

use serde_json::Value;
use switchboard_server::testing::TestServer;

/// (method, path template, declared statuses) of every operation in the document.
fn operations(doc: &Value) -> Vec<(String, String, BTreeSet<String>)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let declared = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            ops.push((method.to_uppercase(), path.clone(), declared));
        }
    }
    ops
}

/// The path with every `{param}` replaced by `value`.
fn fill(path: &str, value: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').unwrap() + start;
        out.push_str(value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_status_the_router_answers_is_declared_in_the_document() {
    let s = TestServer::start().await;
    let user = s.user(1, "alice_w").await;
    let doc: Value = s
        .client()
        .get(s.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ops = operations(&doc);
    assert!(ops.len() > 25, "the document lists the API: {}", ops.len());
    // A fresh connection for every request: the service may close one after answering a
    // request whose body it did not read (an oversized one), and a pooled connection reused
    // just then would fail the next request before it is even sent.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let big = "x".repeat(70 * 1024);
    let mut undeclared = Vec::new();
    let mut tried = 0;
    for (method, path, declared) in &ops {
        for param in ["x", "%00", "0", "-1", "acc_nonexistent00000"] {
            let url = s.url(&fill(path, param));
            let url = if path.contains("sync")
                || path.contains("events")
                || path.contains("transactions")
            {
                format!("{url}?since=-1&limit=abc")
            } else {
                url
            };
            let bodies: Vec<(Option<&str>, Option<String>)> = vec![
                (None, None),
                (Some("application/json"), Some("{}".into())),
                (Some("application/json"), Some("{".into())),
                (Some("application/json"), Some("[1, \"\\u0000\"]".into())),
                (Some("text/plain"), Some("hello".into())),
                (
                    Some("application/json"),
                    Some(format!("{{\"a\": \"{big}\"}}")),
                ),
            ];
            for token in [None, Some("not-a-token"), Some(user.token.as_str())] {
                for (content_type, body) in &bodies {
                    let mut req = http.request(method.parse().unwrap(), &url);
                    if let Some(t) = token {
                        req = req.bearer_auth(t);
                    }
                    if let Some(ct) = content_type {
                        req = req.header("content-type", *ct);
                    }
                    if let Some(b) = body {
                        req = req.body(b.clone());
                    }
                    let r = req.send().await.unwrap();
                    let status = r.status().as_u16().to_string();
                    tried += 1;
                    if !declared.contains(&status) && !declared.contains("default") {
                        let text = r.text().await.unwrap_or_default();
                        undeclared.push(format!(
                            "{method} {path} ({param}, token {}, body {:?}) -> {status} {text}",
                            token.is_some(),
                            body.as_deref().map(|b| &b[..b.len().min(20)])
                        ));
                    }
                }
            }
        }
    }
    undeclared.sort();
    undeclared.dedup();
    assert!(
        undeclared.is_empty(),
        "{} of {tried} answers are not in the document:\n{}",
        undeclared.len(),
        undeclared.join("\n")
    );
}
