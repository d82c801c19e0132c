//! Where top-up money comes from (SPEC §1.4): the operator's provider over a signed webhook,
//! run here as a real HTTP endpoint, and nothing at all outside development mode when none is
//! configured. Money is credited only for what the provider confirms, once per idempotency key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use switchboard_server::testing::{TEST_IDENTITY_SECRET, TestServer, TestUser};
use switchboard_service::config::Secret;
use switchboard_service::funding::{ChargeRequest, SIGNATURE_HEADER, signature};

const SECRET: &str = "provider-shared-secret, 32+ bytes long";

/// The provider's books: what it charged, by idempotency key (it charges a key once).
#[derive(Default)]
struct Provider {
    charged: Mutex<HashMap<String, ChargeRequest>>,
    requests: Mutex<usize>,
}

/// A payment provider as an operator would run one: refuses unsigned or wrongly signed
/// requests, declines 13.00, takes only 5.00 of a 7.00 charge (the card has no more), confirms
/// 0 of 9.00, charges each key once.
async fn charge(State(p): State<Arc<Provider>>, headers: HeaderMap, body: Bytes) -> Response {
    *p.requests.lock().unwrap() += 1;
    let signed = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == signature(&Secret::new(SECRET), &body).unwrap());
    if !signed {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let req: ChargeRequest = serde_json::from_slice(&body).unwrap();
    let charged = match req.amount {
        1300 => return StatusCode::PAYMENT_REQUIRED.into_response(),
        900 => return axum::Json(json!({ "charged": 0 })).into_response(),
        700 => 500,
        n => n,
    };
    p.charged
        .lock()
        .unwrap()
        .entry(req.idempotency_key.clone())
        .or_insert(req);
    axum::Json(json!({ "charged": charged })).into_response()
}

async fn provider() -> (String, Arc<Provider>, tokio::task::JoinHandle<()>) {
    let books = Arc::new(Provider::default());
    let app = axum::Router::new()
        .route("/charge", axum::routing::post(charge))
        .with_state(books.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/charge", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, books, task)
}

async fn balance(s: &TestServer, u: &TestUser) -> i64 {
    s.get("/v1/wallet", &u.token).await.expect(200).body["balance"]
        .as_i64()
        .unwrap()
}

async fn top_up(
    s: &TestServer,
    u: &TestUser,
    amount: i64,
    key: &str,
) -> switchboard_server::testing::Reply {
    s.post_as(
        u,
        "/v1/wallet/topups",
        json!({"amount": amount, "idempotency_key": key}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_top_up_credits_only_what_the_signed_provider_confirms_once_per_key() {
    let (url, books, provider_task) = provider().await;
    let s = TestServer::start_with(|c| {
        c.funding.webhook_url = url.into();
        c.funding.webhook_secret = SECRET.into();
    })
    .await;
    let alice = s.verified_user(1, "alice_w").await;

    top_up(&s, &alice, 500, "k-1").await.expect(201);
    assert_eq!(balance(&s, &alice).await, 500);
    {
        let charged = books.charged.lock().unwrap();
        let req = charged.get("k-1").expect("the provider was asked, signed");
        assert_eq!((req.amount, req.currency.as_str()), (500, "CNY"));
        assert!(req.account_id.starts_with("acc_"), "{}", req.account_id);
    }

    // The same key again: the first answer, no second charge, no second credit.
    top_up(&s, &alice, 500, "k-1").await.expect(201);
    assert_eq!(balance(&s, &alice).await, 500, "one key credits once");

    // Declined, or nothing confirmed: nothing is credited.
    top_up(&s, &alice, 1300, "k-2")
        .await
        .expect_error(402, "funding_failed");
    top_up(&s, &alice, 900, "k-3")
        .await
        .expect_error(402, "funding_failed");
    assert_eq!(
        balance(&s, &alice).await,
        500,
        "only confirmed money is credited"
    );
    // Less taken than asked (the card had no more): what was taken is credited, and said.
    let moved = top_up(&s, &alice, 700, "k-5").await.expect(201).body;
    assert_eq!(moved["amount"], 500, "the answer says what was credited");
    assert_eq!(balance(&s, &alice).await, 1000);

    // Eight tills retrying one top-up at once: one credit.
    let replies =
        futures_util::future::join_all((0..8).map(|_| top_up(&s, &alice, 200, "k-4"))).await;
    for r in replies {
        r.expect(201);
    }
    assert_eq!(
        balance(&s, &alice).await,
        1200,
        "concurrent retries of one key credit once"
    );
    assert_eq!(
        books.charged.lock().unwrap().len(),
        3,
        "k-1, k-5 and k-4 were charged"
    );
    provider_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_signature_is_refused_by_the_provider_and_credits_nothing() {
    let (url, books, provider_task) = provider().await;
    let s = TestServer::start_with(|c| {
        c.funding.webhook_url = url.into();
        c.funding.webhook_secret = "not the provider's secret, 32+ bytes long".into();
    })
    .await;
    let alice = s.verified_user(1, "alice_w").await;
    top_up(&s, &alice, 500, "k-1")
        .await
        .expect_error(402, "funding_failed");
    assert_eq!(balance(&s, &alice).await, 0);
    assert_eq!(*books.requests.lock().unwrap(), 1, "the provider was asked");
    assert!(
        books.charged.lock().unwrap().is_empty(),
        "and charged nothing"
    );
    provider_task.abort();
}

/// The sandbox pays every charge: outside development mode, with no provider configured,
/// a top-up must mint nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_provider_a_production_service_credits_nothing() {
    let mut s = TestServer::start().await;
    let alice = s.verified_user(1, "alice_w").await;
    // The same database as a production service: no --dev, a real SMS gateway, a fixed key.
    s.config.dev = false;
    s.config.sms.gateway = "webhook".into();
    s.config.sms.webhook_url = "http://127.0.0.1:1/sms".into();
    s.config.identity.hmac_secret = TEST_IDENTITY_SECRET.into();
    let s = s.restart().await;
    top_up(&s, &alice, 500, "k-1")
        .await
        .expect_error(503, "funding_unavailable");
    assert_eq!(balance(&s, &alice).await, 0, "nothing was minted");
}
