//! The admin surface: `/metrics` on its own listener, never on the public port, with labels
//! from a fixed set however odd the requests.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::collections::BTreeSet;

use reqwest::Method;
use switchboard_server::testing::TestServer;

async fn scrape(s: &TestServer) -> String {
    let resp = reqwest::get(format!("http://{}/metrics", s.admin))
        .await
        .expect("the admin listener answers");
    assert_eq!(
        resp.status(),
        200,
        "/metrics is served on the admin listener"
    );
    resp.text().await.unwrap()
}

/// The label sets of `http_requests_total`, without their counts.
async fn request_series(s: &TestServer) -> BTreeSet<String> {
    scrape(s)
        .await
        .lines()
        .filter(|l| l.starts_with("http_requests_total{"))
        .map(|l| {
            l.rsplit_once(' ')
                .expect("a sample has a value")
                .0
                .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_on_the_admin_listener_only() {
    let s = TestServer::start().await;
    assert_ne!(s.admin, s.addr);
    s.call(Method::GET, "/healthz", None, None)
        .await
        .expect(200);

    let public = s.call(Method::GET, "/metrics", None, None).await;
    public.expect_error(404, "not_found");

    let text = scrape(&s).await;
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/healthz",status="200"} 1"#),
        "the public request is counted: {text}"
    );
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="unmatched",status="404"} 1"#),
        "the refused /metrics is an unmatched request like any other: {text}"
    );
    assert!(
        !text.contains(r#"route="/metrics""#),
        "scrapes of the admin listener are not public requests: {text}"
    );

    // The admin listener serves nothing of the API.
    let r = reqwest::get(format!("http://{}/healthz", s.admin))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = reqwest::get(format!("http://{}/v1/users/alice_w", s.admin))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// 100 requests with random methods to random paths add no series once each label value the
/// fixed sets allow has been seen: an unknown method is `other`, an unknown path `unmatched`,
/// and a path inside a route counts under the route's template.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_methods_and_paths_do_not_grow_the_series() {
    let s = TestServer::start().await;
    let http = reqwest::Client::new();
    let send = |method: Method, path: String| {
        let req = http.request(method, format!("{}{path}", s.base));
        async move { req.send().await.expect("the service answers").status() }
    };
    let fixed = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::from_bytes(b"FOO").unwrap(),
    ];
    for m in &fixed {
        assert_eq!(send(m.clone(), "/warm-up".into()).await, 404);
    }
    assert_eq!(send(Method::GET, "/v1/users/warm_up".into()).await, 401);
    let before = request_series(&s).await;
    assert_eq!(
        before.len(),
        fixed.len() + 1,
        "one series per method label on unknown paths, one for the route: {before:#?}"
    );

    for i in 0..100 {
        let r = *uuid::Uuid::new_v4().as_bytes();
        let method = match r[0] % 4 {
            0 => fixed[usize::from(r[1]) % fixed.len()].clone(),
            // Methods no one has heard of, each new.
            1 => Method::from_bytes(format!("X{:02X}{:02X}{:02X}", r[2], r[3], i).as_bytes())
                .unwrap(),
            2 => Method::from_bytes(b"PROPFIND").unwrap(),
            _ => Method::TRACE,
        };
        let id = uuid::Uuid::from_bytes(r).simple().to_string();
        let (method, path, status) = match r[4] % 3 {
            0 => (method, format!("/{id}"), 404),
            1 => (method, format!("/v1/{id}/{i}?q={id}"), 404),
            // Inside a route: counted under `/v1/users/{public_id}`, never the raw path.
            _ => (Method::GET, format!("/v1/users/u{}", &id[..12]), 401),
        };
        assert_eq!(
            send(method.clone(), path.clone()).await,
            status,
            "{method} {path}"
        );
    }
    let after = request_series(&s).await;
    assert_eq!(
        after, before,
        "random methods and paths add no series (the label values are a fixed set)"
    );
    let text = scrape(&s).await;
    assert!(
        text.contains(r#"route="/v1/users/{public_id}""#),
        "a matched route is its template: {text}"
    );
}
