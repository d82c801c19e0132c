//! SPEC §1.1 through HTTP: SMS codes and their limits, registration, public IDs, passwords,
//! two accounts per phone number, recovery.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use serde_json::json;
use switchboard_server::testing::TestServer;

const PHONE: &str = "+8613800138000";
const PASSWORD: &str = "correct horse battery";

async fn request_code(
    s: &TestServer,
    phone: &str,
    purpose: &str,
) -> switchboard_server::testing::Reply {
    s.post("/v1/sms/codes", json!({"phone": phone, "purpose": purpose}))
        .await
}

fn register_body(code: &str, public_id: &str) -> serde_json::Value {
    json!({"phone": PHONE, "sms_code": code, "public_id": public_id,
           "password": PASSWORD, "display_name": "Alice"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_accounts_per_phone_the_second_secondary_and_a_third_refused() {
    let s = TestServer::start().await;
    let first = s.register(PHONE, "alice_work", PASSWORD).await;
    let second = s
        .register("+86 138 0013 8000", "alice_home", "another good secret")
        .await;
    assert_eq!(
        first["is_secondary"], false,
        "the first account of a number is its primary"
    );
    assert_eq!(second["is_secondary"], true, "the second one is secondary");
    assert_ne!(first["account_id"], second["account_id"]);

    // Both are signed in at once, each seeing its own account.
    let t1 = s.sign_in("alice_work", PASSWORD).await;
    let t2 = s.sign_in("alice_home", "another good secret").await;
    assert_eq!(
        s.get("/v1/me", &t1).await.expect(200).body["public_id"],
        "alice_work"
    );
    let me2 = s.get("/v1/me", &t2).await.expect(200).body;
    assert_eq!(
        (me2["public_id"].as_str(), me2["is_secondary"].as_bool()),
        (Some("alice_home"), Some(true))
    );
    assert_eq!(
        me2["phone"], PHONE,
        "the number is stored in canonical E.164"
    );

    // A third: the code request is answered (and the code sent) as for any number, so the
    // answer tells no stranger what the number holds; the registration, with the code that
    // proves the phone, is refused.
    let code = s.sms_code(PHONE, "register").await;
    s.post("/v1/accounts", register_body(&code, "alice_third"))
        .await
        .expect_error(409, "phone_account_limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limit_holds_at_registration_even_with_a_code_in_hand() {
    let s = TestServer::start_with(|c| c.accounts.per_phone = 1).await;
    let code = s.sms_code(PHONE, "register").await;
    s.register("+8613800138001", "someone_else", PASSWORD).await;
    // Racing a registration of the same number in between the code and its use.
    let other_code = {
        s.clock.advance_secs(60);
        s.sms_code(PHONE, "register").await
    };
    assert_ne!(code, other_code);
    s.post("/v1/accounts", register_body(&other_code, "first_one"))
        .await
        .expect(201);
    s.clock.advance_secs(60);
    let code = s.sms_code(PHONE, "register").await;
    s.post("/v1/accounts", register_body(&code, "second_one"))
        .await
        .expect_error(409, "phone_account_limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_ids_clash_case_insensitively_and_follow_the_format() {
    let s = TestServer::start().await;
    s.register(PHONE, "Alice_W", PASSWORD).await;
    let code = s.sms_code("+8613800138001", "register").await;
    let mut body = register_body(&code, "alice_w");
    body["phone"] = json!("+8613800138001");
    s.post("/v1/accounts", body.clone())
        .await
        .expect_error(409, "public_id_taken");
    for bad in ["ab", "1alice", "alice!x", "g_group1"] {
        body["public_id"] = json!(bad);
        s.post("/v1/accounts", body.clone())
            .await
            .expect_error(400, "public_id_invalid");
    }
    // None of those refusals used up the code.
    body["public_id"] = json!("bob_the_2nd");
    s.post("/v1/accounts", body).await.expect(201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weak_passwords_and_bad_names_are_refused_without_burning_the_code() {
    let s = TestServer::start().await;
    let code = s.sms_code(PHONE, "register").await;
    for weak in ["short", "password123", "iloveyou", &"x".repeat(129)] {
        let mut body = register_body(&code, "alice_w");
        body["password"] = json!(weak);
        s.post("/v1/accounts", body)
            .await
            .expect_error(400, "password_too_weak");
    }
    let mut body = register_body(&code, "alice_w");
    body["display_name"] = json!("   ");
    s.post("/v1/accounts", body)
        .await
        .expect_error(400, "invalid_display_name");
    // Long Unicode passphrases are fine, and the code still works.
    let mut body = register_body(&code, "alice_w");
    body["password"] = json!("长城长城长城长城");
    s.post("/v1/accounts", body).await.expect(201);
    s.sign_in("alice_w", "长城长城长城长城").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_is_burned_after_five_wrong_tries() {
    let s = TestServer::start().await;
    let code = s.sms_code(PHONE, "register").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for left in (1..=4).rev() {
        let r = s
            .post("/v1/accounts", register_body(wrong, "alice_w"))
            .await;
        let r = r.expect_error(400, "sms_code_invalid");
        assert!(
            r.message().contains(&left.to_string()),
            "says how many tries are left: {}",
            r.message()
        );
    }
    s.post("/v1/accounts", register_body(wrong, "alice_w"))
        .await
        .expect_error(400, "sms_code_expired");
    // The fifth wrong try burned it: the right code no longer works.
    s.post("/v1/accounts", register_body(&code, "alice_w"))
        .await
        .expect_error(400, "sms_code_expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_is_single_use_purpose_bound_and_expires() {
    let s = TestServer::start().await;
    let code = s.sms_code(PHONE, "register").await;
    s.post("/v1/accounts", register_body(&code, "alice_w"))
        .await
        .expect(201);
    s.post("/v1/accounts", register_body(&code, "alice_h"))
        .await
        .expect_error(400, "sms_code_expired");

    // A login code does not register.
    let login = s.sms_code(PHONE, "login").await;
    s.post("/v1/accounts", register_body(&login, "alice_h"))
        .await
        .expect_error(400, "sms_code_expired");
    // ...but signs in.
    s.post(
        "/v1/sessions/sms",
        json!({"phone": PHONE, "sms_code": login}),
    )
    .await
    .expect(201);

    // Ten minutes later a code is dead.
    s.clock.advance_secs(60);
    let code = s.sms_code(PHONE, "register").await;
    s.clock.advance_secs(600);
    s.post("/v1/accounts", register_body(&code, "alice_h"))
        .await
        .expect_error(400, "sms_code_expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_code_replaces_the_old_one() {
    let s = TestServer::start().await;
    let old = s.sms_code(PHONE, "register").await;
    s.clock.advance_secs(60);
    let new = s.sms_code(PHONE, "register").await;
    if old != new {
        s.post("/v1/accounts", register_body(&old, "alice_w"))
            .await
            .expect_error(400, "sms_code_invalid");
    }
    s.post("/v1/accounts", register_body(&new, "alice_w"))
        .await
        .expect(201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resend_cooldown_per_number_and_purpose_with_retry_after() {
    let s = TestServer::start().await;
    request_code(&s, PHONE, "register").await.expect(202);
    let r = request_code(&s, PHONE, "register")
        .await
        .expect_error(429, "rate_limited");
    assert_eq!(r.retry_after, Some(60), "Retry-After says when");
    // Another purpose, or another number, is not held back.
    request_code(&s, PHONE, "login").await.expect(202);
    request_code(&s, "+8613800138001", "register")
        .await
        .expect(202);
    s.clock.advance_secs(45);
    let r = request_code(&s, PHONE, "register")
        .await
        .expect_error(429, "rate_limited");
    assert_eq!(r.retry_after, Some(15));
    s.clock.advance_secs(15);
    request_code(&s, PHONE, "register").await.expect(202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_ten_codes_per_number_and_purpose_a_day() {
    let s = TestServer::start().await;
    for _ in 0..10 {
        request_code(&s, PHONE, "register").await.expect(202);
        s.clock.advance_secs(61);
    }
    let r = request_code(&s, PHONE, "register")
        .await
        .expect_error(429, "rate_limited");
    let wait = r.retry_after.expect("Retry-After");
    assert!(
        wait > 23 * 3600 && wait <= 24 * 3600,
        "until the first code leaves the window: {wait}"
    );
    request_code(&s, PHONE, "login").await.expect(202);
    s.clock.advance_secs(i64::try_from(wait).unwrap());
    request_code(&s, PHONE, "register").await.expect(202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_ip_hourly_limit_across_numbers() {
    let s = TestServer::start_with(|c| c.sms.per_ip_per_hour = 3).await;
    for i in 0..3 {
        request_code(&s, &format!("+861380013800{i}"), "register")
            .await
            .expect(202);
    }
    let r = request_code(&s, "+8613800138009", "register")
        .await
        .expect_error(429, "rate_limited");
    assert!(r.retry_after.is_some());
    s.clock.advance_secs(3601);
    request_code(&s, "+8613800138009", "register")
        .await
        .expect(202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_numbers_are_validated_and_regions_enforced() {
    let s =
        TestServer::start_with(|c| c.registration.allowed_regions = vec!["CN".into(), "HK".into()])
            .await;
    for bad in ["13800138000", "+86 123", "+1 212 012 3456", "phone"] {
        request_code(&s, bad, "register")
            .await
            .expect_error(400, "invalid_phone");
    }
    let r = request_code(&s, "+1 650 253 0000", "register")
        .await
        .expect_error(403, "region_not_supported");
    assert!(
        r.message().contains("CN") && r.message().contains("HK"),
        "names the regions served: {}",
        r.message()
    );
    request_code(&s, "+852 5123 4567", "register")
        .await
        .expect(202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_codes_do_not_reveal_whether_a_number_is_registered() {
    let s = TestServer::start().await;
    s.register(PHONE, "alice_w", PASSWORD).await;
    let known = request_code(&s, PHONE, "login").await.expect(202);
    let unknown = request_code(&s, "+8613800138009", "login")
        .await
        .expect(202);
    assert_eq!(known.body, unknown.body, "the same answer for both");
    let outbox = s
        .call(
            reqwest::Method::GET,
            "/v1/dev/sms-outbox?phone=%2B8613800138009",
            None,
            None,
        )
        .await
        .expect(200);
    assert_eq!(
        outbox.body["messages"],
        json!([]),
        "but nothing is sent to an unregistered number"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_sets_a_new_password_and_revokes_every_session() {
    let s = TestServer::start().await;
    s.register(PHONE, "alice_w", PASSWORD).await;
    let a = s.sign_in("alice_w", PASSWORD).await;
    let b = s.sign_in(PHONE, PASSWORD).await;
    let code = s.sms_code(PHONE, "recover").await;
    let body = json!({"phone": PHONE, "sms_code": code, "public_id": "ALICE_W", "new_password": "a brand new secret"});
    let done = s.post("/v1/recovery", body.clone()).await.expect(200);
    assert_eq!(done.body["sessions_revoked"], 2);
    for t in [&a, &b] {
        s.get("/v1/me", t)
            .await
            .expect_error(401, "session_revoked");
    }
    s.post(
        "/v1/sessions",
        json!({"login": "alice_w", "password": PASSWORD, "device_name": "x"}),
    )
    .await
    .expect_error(401, "invalid_credentials");
    s.sign_in("alice_w", "a brand new secret").await;
    // The code was used up.
    s.post("/v1/recovery", body)
        .await
        .expect_error(400, "sms_code_expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_only_for_an_account_of_that_number() {
    let s = TestServer::start().await;
    s.register(PHONE, "alice_w", PASSWORD).await;
    s.register("+8613800138001", "bob_is_here", PASSWORD).await;
    let code = s.sms_code(PHONE, "recover").await;
    s.post("/v1/recovery", json!({"phone": PHONE, "sms_code": code, "public_id": "bob_is_here", "new_password": "a brand new secret"}))
        .await
        .expect_error(404, "account_not_found");
    s.sign_in("bob_is_here", PASSWORD).await;
}
