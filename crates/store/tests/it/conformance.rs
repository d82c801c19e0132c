//! The storage conformance suite: every case runs on SQLite and on PostgreSQL (a database of
//! its own on the throwaway cluster `SWITCHBOARD_TEST_PG`), through the `Store` trait alone.
//! The concurrent cases are the ones a single-writer store would pass by accident and a
//! store with many writers fails unless every step locks what it decides on.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::sync::Arc;

use switchboard_store::testing::{Backend, TestDb};
use switchboard_store::*;

switchboard_store::on_every_backend!(
    concurrent_appends_keep_every_log_gapless,
    twenty_concurrent_code_requests_issue_one,
    forty_concurrent_tries_of_a_code_get_five,
    twenty_concurrent_sign_in_attempts_get_five,
    a_refunded_attempt_does_not_count,
    two_registrations_race_for_the_last_slot,
    verifications_racing_for_one_id_number_keep_its_limit,
    adds_racing_for_the_last_group_seat_keep_the_limit,
    ten_accounts_race_for_the_last_envelope_share,
    transfers_both_ways_at_once_never_deadlock,
    the_ledger_refuses_to_go_negative_and_stays_append_only,
    an_article_reaches_a_thousand_followers_once_each_however_often_it_is_retried,
    operators_racing_for_the_last_seats_keep_both_limits,
    operators_racing_for_one_conversation_get_one_claim,
    a_removal_or_revocation_that_committed_stops_the_next_step,
    a_removed_admin_writes_nothing_after_the_removal,
    lookalike_names_racing_get_one_official_account,
    official_accounts_from_before_name_keys_get_them_oldest_first,
);

struct Fixture {
    store: Arc<dyn Store>,
    _db: TestDb,
}

/// Runs one statement on the fixture's database behind the store's back (what an older
/// version of the service left there).
async fn raw(backend: Backend, url: &str, sql: &'static str) {
    match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query(sql).execute(&pool).await.unwrap();
            pool.close().await;
        }
    }
}

async fn fixture(backend: Backend) -> Fixture {
    let db = TestDb::new(backend).await;
    let store = open(&db.url).await.expect("the store opens and migrates");
    Fixture { store, _db: db }
}

const T0: i64 = 1_800_000_000_000;

fn code(id: &str, phone: &str, ip: &str, at: i64) -> SmsCodeRow {
    SmsCodeRow {
        id: id.into(),
        phone: phone.into(),
        purpose: "register".into(),
        code_hash: format!("hash-{id}"),
        ip: ip.into(),
        created_at: at,
        expires_at: at + 600_000,
        attempts: 0,
        consumed_at: None,
    }
}

fn limits(at: i64) -> SmsLimits {
    SmsLimits {
        cooldown_ms: 60_000,
        per_number: 10,
        number_since: at - 86_400_000,
        per_ip: 200,
        ip_since: at - 3_600_000,
    }
}

/// An account on its own number `+86138001380nn`.
async fn account(store: &dyn Store, n: u32) -> AccountRow {
    account_on(store, n, &format!("+86138001380{n:02}"), 2)
        .await
        .unwrap()
}

async fn account_on(
    store: &dyn Store,
    n: u32,
    phone: &str,
    per_phone: u32,
) -> StoreResult<AccountRow> {
    let c = code(&format!("sms_{n}"), phone, &format!("10.0.0.{n}"), T0);
    // Each account's code has a purpose of its own, so issuing one never uses up another's.
    let c = SmsCodeRow {
        purpose: format!("register-{n}"),
        ..c
    };
    assert_eq!(
        store.sms_issue(&c, &limits(T0)).await.unwrap(),
        SmsIssue::Issued
    );
    store
        .account_create(
            &c.id,
            &NewAccount {
                id: format!("acc_{n}"),
                phone: phone.into(),
                public_id: format!("user_{n:03}"),
                display_name: format!("User {n}"),
                password_hash: "x".into(),
                created_at: T0,
                per_phone,
            },
        )
        .await
}

fn event(account: &str, i: usize) -> NewEvent {
    NewEvent {
        account_id: account.into(),
        kind: "message.new",
        data: format!("{{\"i\":{i}}}"),
    }
}

async fn concurrent_appends_keep_every_log_gapless(backend: Backend) {
    let f = fixture(backend).await;
    let (a, b, c) = (
        account(&*f.store, 1).await,
        account(&*f.store, 2).await,
        account(&*f.store, 3).await,
    );
    // Messages whose events name the accounts in different orders: a store that took the
    // heads in event order would deadlock here.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let store = f.store.clone();
        let (a, b, c) = (a.id.clone(), b.id.clone(), c.id.clone());
        tasks.spawn(async move {
            let order = match i % 3 {
                0 => [a.clone(), b, c],
                1 => [c, b, a.clone()],
                _ => [b, a.clone(), c],
            };
            let events: Vec<NewEvent> = order.iter().map(|acc| event(acc, i)).collect();
            let row = MessageRow {
                id: format!("msg_{i}"),
                sender_id: a,
                client_id: format!("client-{i}"),
                target: "x".into(),
                body: "hi".into(),
                sent_at: T0,
                data: "{}".into(),
                media: Vec::new(),
            };
            store.message_insert(&row, &events, &[]).await
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap()
            .expect("every append commits (deadlocks are retried, never surfaced)");
    }
    for acc in [&a, &b, &c] {
        let events = f.store.events_after(&acc.id, 0, 1000).await.unwrap();
        let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            (1..=40).collect::<Vec<i64>>(),
            "each account's log numbers its 40 events 1..40 with no gap or repeat"
        );
        assert_eq!(f.store.event_head(&acc.id).await.unwrap(), 40);
    }
}

async fn twenty_concurrent_code_requests_issue_one(backend: Backend) {
    let f = fixture(backend).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let store = f.store.clone();
        tasks.spawn(async move {
            let c = code(&format!("sms_c{i}"), "+8613800138077", "10.1.1.1", T0 + i);
            store.sms_issue(&c, &limits(T0 + i)).await.unwrap()
        });
    }
    let mut issued = 0;
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            SmsIssue::Issued => issued += 1,
            SmsIssue::Cooldown { ready_at } => assert!(ready_at > T0),
            other => panic!("only the cooldown may refuse here: {other:?}"),
        }
    }
    assert_eq!(
        issued, 1,
        "one text within the cooldown, however many ask at once"
    );

    // The per-address limit holds the same way: 30 numbers from one address, limit 5.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..30 {
        let store = f.store.clone();
        tasks.spawn(async move {
            let c = code(
                &format!("sms_ip{i}"),
                &format!("+86139001390{i:02}"),
                "10.9.9.9",
                T0,
            );
            let l = SmsLimits {
                per_ip: 5,
                ..limits(T0)
            };
            store.sms_issue(&c, &l).await.unwrap()
        });
    }
    let mut issued = 0;
    while let Some(r) = tasks.join_next().await {
        if r.unwrap() == SmsIssue::Issued {
            issued += 1;
        }
    }
    assert_eq!(issued, 5, "the per-address limit holds under concurrency");
}

async fn forty_concurrent_tries_of_a_code_get_five(backend: Backend) {
    let f = fixture(backend).await;
    let c = code("sms_t", "+8613800138066", "10.1.1.2", T0);
    assert_eq!(
        f.store.sms_issue(&c, &limits(T0)).await.unwrap(),
        SmsIssue::Issued
    );
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..40 {
        let store = f.store.clone();
        tasks.spawn(async move { store.sms_try("sms_t", 5).await.unwrap() });
    }
    let mut granted = Vec::new();
    while let Some(r) = tasks.join_next().await {
        granted.extend(r.unwrap());
    }
    granted.sort_unstable();
    assert_eq!(
        granted,
        vec![1, 2, 3, 4, 5],
        "five tries, each counted once"
    );
}

fn policy() -> ThrottlePolicy {
    ThrottlePolicy {
        after: 5,
        base_secs: 30,
        max_secs: 3600,
        lock_after: 100,
    }
}

async fn twenty_concurrent_sign_in_attempts_get_five(backend: Backend) {
    let f = fixture(backend).await;
    let keys = vec!["acct:x".to_string()];
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (store, keys) = (f.store.clone(), keys.clone());
        tasks.spawn(async move { store.login_reserve(&keys, T0, policy()).await.unwrap() });
    }
    let mut open = 0;
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            LoginGate::Open => open += 1,
            LoginGate::Throttled { until } => assert!(until > T0),
            LoginGate::Locked => panic!("5 failures do not lock"),
        }
    }
    assert_eq!(
        open, 5,
        "at most five attempts are judged before the wait starts"
    );
    let state = f.store.login_states(&keys).await.unwrap()[0];
    assert_eq!(state.failures, 5);
    assert_eq!(state.throttled_until, T0 + 30_000);
}

async fn a_refunded_attempt_does_not_count(backend: Backend) {
    let f = fixture(backend).await;
    let keys = vec!["acct:a".to_string(), "acct:b".to_string()];
    for _ in 0..4 {
        assert_eq!(
            f.store.login_reserve(&keys, T0, policy()).await.unwrap(),
            LoginGate::Open
        );
    }
    // The fifth is reserved (throttling both keys), then turns out right: refunded.
    assert_eq!(
        f.store.login_reserve(&keys, T0, policy()).await.unwrap(),
        LoginGate::Open
    );
    f.store.login_refund(&keys, policy()).await.unwrap();
    for s in f.store.login_states(&keys).await.unwrap() {
        assert_eq!(s.failures, 4, "a right password leaves no failure behind");
        assert_eq!(s.throttled_until, 0, "and no wait it would have caused");
    }
}

async fn two_registrations_race_for_the_last_slot(backend: Backend) {
    let f = fixture(backend).await;
    let phone = "+8613800138055";
    account_on(&*f.store, 50, phone, 2).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for n in [51, 52, 53, 54] {
        let store = f.store.clone();
        tasks.spawn(async move { account_on(&*store, n, phone, 2).await });
    }
    let mut created = 0;
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(a) => {
                assert_eq!(a.slot, 1, "the second account takes the secondary slot");
                created += 1;
            }
            Err(StoreError::PhoneAccountLimit) => {}
            Err(e) => panic!("a lost race is phone_account_limit, not {e:?}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(f.store.accounts_by_phone(phone).await.unwrap().len(), 2);
}

/// One ID number verifies at most `per_id` accounts, however many verify it at once; a
/// verification refused for the limit writes nothing.
async fn verifications_racing_for_one_id_number_keep_its_limit(backend: Backend) {
    let f = fixture(backend).await;
    for n in 1..=8 {
        account(&*f.store, n).await;
    }
    let identity = IdentityRecord {
        legal_name: "张三",
        id_number_hash: "hmac-of-one-number",
        id_number_hash_kind: "hmac-sha256",
        id_number_masked: "**************002X",
    };
    let mut tasks = tokio::task::JoinSet::new();
    for n in 1..=8 {
        let store = f.store.clone();
        tasks.spawn(async move {
            let r = store
                .account_set_identity(&format!("acc_{n}"), &identity, 5, T0)
                .await;
            (n, r)
        });
    }
    let (mut verified, mut refused) = (Vec::new(), Vec::new());
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap() {
            (n, Ok(true)) => verified.push(n),
            (n, Err(StoreError::IdentityLimit)) => refused.push(n),
            (n, other) => panic!("account {n}: a lost race is identity_limit, not {other:?}"),
        }
    }
    assert_eq!(
        (verified.len(), refused.len()),
        (5, 3),
        "the limit holds under the race"
    );
    for n in refused {
        let row = f
            .store
            .account_by_id(&format!("acc_{n}"))
            .await
            .unwrap()
            .unwrap();
        assert!(
            row.identity_verified_at.is_none(),
            "a refused verification leaves the account unverified"
        );
    }
    // Verifying an account again is not a new use of the number.
    let again = f
        .store
        .account_set_identity(&format!("acc_{}", verified[0]), &identity, 5, T0)
        .await
        .unwrap();
    assert!(!again, "verified already");
}

async fn adds_racing_for_the_last_group_seat_keep_the_limit(backend: Backend) {
    let f = fixture(backend).await;
    let mut accounts = Vec::new();
    for n in 1..=9 {
        accounts.push(account(&*f.store, n).await.id);
    }
    let group = GroupRow {
        id: "g_race".into(),
        name: "race".into(),
        owner_id: accounts[0].clone(),
        created_at: T0,
    };
    f.store
        .group_create(&group, &accounts[..3], &[])
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for a in accounts[3..].iter().cloned() {
        let store = f.store.clone();
        tasks.spawn(async move { store.group_add_members("g_race", &[a], T0, 5, &[]).await });
    }
    let mut added = 0;
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(_) => added += 1,
            Err(StoreError::GroupFull) => {}
            Err(e) => panic!("a lost race is group_full, not {e:?}"),
        }
    }
    assert_eq!(added, 2, "two seats were left");
    assert_eq!(f.store.group_members("g_race").await.unwrap().len(), 5);
}

fn no_events(_: &Posted) -> StoreResult<(String, Vec<NewEvent>)> {
    Ok((String::new(), Vec::new()))
}

async fn top_up(store: &dyn Store, account: &str, amount: i64, n: &str) {
    store
        .ledger_apply(
            &LedgerOp::TopUp {
                account_id: account.into(),
                amount,
            },
            &format!("jrn_top_{n}"),
            "",
            T0,
            None,
            &no_events,
        )
        .await
        .unwrap();
}

async fn ten_accounts_race_for_the_last_envelope_share(backend: Backend) {
    let f = fixture(backend).await;
    let sender = account(&*f.store, 1).await;
    top_up(&*f.store, &sender.id, 1000, "s").await;
    // Eleven it was sent to, and three it was not (who joined the group since, say).
    let mut audience = Vec::new();
    for n in 2..=12 {
        audience.push(account(&*f.store, n).await.id);
    }
    let mut outsiders = Vec::new();
    for n in 13..=15 {
        outsiders.push(account(&*f.store, n).await.id);
    }
    let envelope = EnvelopeRow {
        id: "env_1".into(),
        sender_id: sender.id.clone(),
        target: "g_x".into(),
        group_id: None,
        total: 300,
        count: 2,
        mode: "equal".into(),
        greeting: String::new(),
        created_at: T0,
        expires_at: T0 + 86_400_000,
        refunded_at: None,
        refunded: 0,
        data: "{}".into(),
    };
    f.store
        .ledger_apply(
            &LedgerOp::CreateEnvelope {
                envelope,
                shares: vec![100, 200],
                audience: audience.clone(),
            },
            "jrn_env",
            "",
            T0,
            None,
            &no_events,
        )
        .await
        .unwrap();
    let claim = |claimer: String, journal: String| {
        let store = f.store.clone();
        async move {
            store
                .ledger_apply(
                    &LedgerOp::Claim {
                        envelope_id: "env_1".into(),
                        claimer,
                    },
                    &journal,
                    "",
                    T0 + 1,
                    None,
                    &no_events,
                )
                .await
        }
    };
    claim(audience[0].clone(), "jrn_c0".into()).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, claimer) in audience[1..].iter().enumerate() {
        tasks.spawn(claim(claimer.clone(), format!("jrn_c{}", i + 1)));
    }
    for (i, outsider) in outsiders.iter().enumerate() {
        let claimed = claim(outsider.clone(), format!("jrn_o{i}"));
        tasks.spawn(async move {
            match claimed.await {
                Err(StoreError::NoEnvelope) => Err(StoreError::NoEnvelope),
                other => panic!("one it was not sent to gets no_envelope, not {other:?}"),
            }
        });
    }
    let mut won = 0;
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(_) => won += 1,
            Err(StoreError::EnvelopeEmpty | StoreError::NoEnvelope) => {}
            Err(e) => panic!("a lost claim is envelope_empty, not {e:?}"),
        }
    }
    assert_eq!(won, 1, "one account wins the last share");
    for outsider in &outsiders {
        assert!(!f.store.envelope_sent_to("env_1", outsider).await.unwrap());
    }
    assert!(
        f.store
            .envelope_sent_to("env_1", &audience[3])
            .await
            .unwrap()
    );
    assert_eq!(
        f.store.book_balance(&escrow_book("env_1")).await.unwrap(),
        0
    );
    assert_eq!(f.store.ledger_check().await.unwrap(), None);
    // The refund after expiry finds nothing left and says so once.
    f.store
        .ledger_apply(
            &LedgerOp::Refund {
                envelope_id: "env_1".into(),
            },
            "jrn_ref",
            "",
            T0 + 86_400_000,
            None,
            &no_events,
        )
        .await
        .unwrap();
    assert_eq!(
        f.store
            .book_balance(&wallet_book(&sender.id))
            .await
            .unwrap(),
        700
    );
}

async fn transfers_both_ways_at_once_never_deadlock(backend: Backend) {
    let f = fixture(backend).await;
    let (a, b) = (account(&*f.store, 1).await, account(&*f.store, 2).await);
    top_up(&*f.store, &a.id, 10_000, "a").await;
    top_up(&*f.store, &b.id, 10_000, "b").await;
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..8 {
        let store = f.store.clone();
        let (from, to) = if client % 2 == 0 {
            (a.id.clone(), b.id.clone())
        } else {
            (b.id.clone(), a.id.clone())
        };
        tasks.spawn(async move {
            for i in 0..25 {
                store
                    .ledger_apply(
                        &LedgerOp::Transfer {
                            from: from.clone(),
                            to: to.clone(),
                            from_public_id: "x".into(),
                            to_public_id: "y".into(),
                            amount: 7,
                        },
                        &format!("jrn_t{client}_{i}"),
                        "",
                        T0,
                        None,
                        &no_events,
                    )
                    .await?;
            }
            StoreResult::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap()
            .expect("no transfer fails: deadlocks are avoided by lock order, and retried");
    }
    let total = f.store.book_balance(&wallet_book(&a.id)).await.unwrap()
        + f.store.book_balance(&wallet_book(&b.id)).await.unwrap();
    assert_eq!(total, 20_000, "money moved, none made or lost");
    assert_eq!(f.store.ledger_check().await.unwrap(), None);
}

async fn the_ledger_refuses_to_go_negative_and_stays_append_only(backend: Backend) {
    let f = fixture(backend).await;
    let (a, b) = (account(&*f.store, 1).await, account(&*f.store, 2).await);
    top_up(&*f.store, &a.id, 100, "a").await;
    // 10 concurrent transfers of 30 from a balance of 100: three fit.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..10 {
        let store = f.store.clone();
        let (from, to) = (a.id.clone(), b.id.clone());
        tasks.spawn(async move {
            store
                .ledger_apply(
                    &LedgerOp::Transfer {
                        from,
                        to,
                        from_public_id: "x".into(),
                        to_public_id: "y".into(),
                        amount: 30,
                    },
                    &format!("jrn_o{i}"),
                    "",
                    T0,
                    None,
                    &no_events,
                )
                .await
        });
    }
    let mut moved = 0;
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(_) => moved += 1,
            Err(StoreError::InsufficientFunds) => {}
            Err(e) => panic!("an overdraft is insufficient_funds, not {e:?}"),
        }
    }
    assert_eq!(moved, 3);
    assert_eq!(f.store.book_balance(&wallet_book(&a.id)).await.unwrap(), 10);
    assert_eq!(f.store.ledger_check().await.unwrap(), None);
}

// --- official accounts -----------------------------------------------------------------------

/// A name key of its own per official account (the service's would be its name's skeleton).
fn key_of(id: &str) -> String {
    format!("key of {id}")
}

fn official_row(id: &str, owner: &str) -> OfficialRow {
    OfficialRow {
        id: id.into(),
        name: format!("Official {id}"),
        description: String::new(),
        color: "#2b8a3e".into(),
        owner_id: owner.into(),
        created_at: T0,
        followers: 0,
    }
}

fn one_event_each(kind: &'static str) -> impl Fn(&[String]) -> StoreResult<Vec<NewEvent>> {
    move |accounts: &[String]| {
        Ok(accounts
            .iter()
            .map(|a| NewEvent {
                account_id: a.clone(),
                kind,
                data: "{}".into(),
            })
            .collect())
    }
}

const ROOMY: OperatorLimits = OperatorLimits {
    max_operators: 20,
    max_per_operator: 50,
};

/// An account on a number of its own, for suites that need hundreds.
async fn many_accounts(store: &dyn Store, from: u32, n: u32) -> Vec<String> {
    let mut out = Vec::new();
    for i in from..from + n {
        let a = account_on(store, i, &format!("+8613{i:09}"), 2)
            .await
            .unwrap();
        out.push(a.id);
    }
    out
}

async fn an_article_reaches_a_thousand_followers_once_each_however_often_it_is_retried(
    backend: Backend,
) {
    let f = fixture(backend).await;
    let owner = account(&*f.store, 1).await.id;
    f.store
        .official_create(&official_row("o_news", &owner), &key_of("o_news"), 50, &[])
        .await
        .unwrap();
    let followers = many_accounts(&*f.store, 100, 1_000).await;
    for a in &followers {
        f.store.official_follow("o_news", a, T0).await.unwrap();
    }
    // Following again changes nothing.
    f.store
        .official_follow("o_news", &followers[0], T0)
        .await
        .unwrap();
    assert_eq!(
        f.store
            .official_by_id("o_news")
            .await
            .unwrap()
            .unwrap()
            .followers,
        1_000
    );
    let row = ArticleRow {
        id: "art_1".into(),
        official_id: "o_news".into(),
        author: owner.clone(),
        idempotency_key: "launch".into(),
        title: "Launch".into(),
        body: "We open today.".into(),
        published_at: T0,
        data: "{}".into(),
    };
    // Five tries of one publish at once: one article, one event per follower.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..5 {
        let store = f.store.clone();
        let owner = owner.clone();
        let row = ArticleRow {
            id: format!("art_{i}"),
            ..row.clone()
        };
        tasks.spawn(async move {
            store
                .article_publish(
                    &row,
                    Sender::Operator(&owner),
                    &one_event_each("article.new"),
                )
                .await
        });
    }
    let mut published = 0;
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(events) => {
                published += 1;
                assert_eq!(events.len(), 1_000);
            }
            Err(StoreError::Duplicate) => {}
            Err(e) => panic!("a retried publish is a duplicate, not {e:?}"),
        }
    }
    assert_eq!(published, 1);
    assert_eq!(
        f.store.articles("o_news", None, 100).await.unwrap().len(),
        1
    );
    for a in &followers {
        let events = f.store.events_after(a, 0, 100).await.unwrap();
        assert_eq!(
            events.iter().filter(|e| e.kind == "article.new").count(),
            1,
            "{a} got the article exactly once"
        );
    }
    // The owner follows nothing and got nothing.
    assert!(
        f.store
            .events_after(&owner, 0, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn operators_racing_for_the_last_seats_keep_both_limits(backend: Backend) {
    let f = fixture(backend).await;
    let owner = account(&*f.store, 1).await.id;
    f.store
        .official_create(&official_row("o_shop", &owner), &key_of("o_shop"), 50, &[])
        .await
        .unwrap();
    let hopefuls = many_accounts(&*f.store, 10, 9).await;
    let limits = OperatorLimits {
        max_operators: 5,
        max_per_operator: 50,
    };
    let mut tasks = tokio::task::JoinSet::new();
    for a in hopefuls {
        let store = f.store.clone();
        let owner = owner.clone();
        tasks.spawn(async move {
            store
                .official_operator_set(
                    "o_shop",
                    &owner,
                    &a,
                    "support",
                    T0,
                    limits,
                    &one_event_each("official.operator_added"),
                )
                .await
        });
    }
    let mut added = 0;
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(_) => added += 1,
            Err(StoreError::OfficialLimit(OfficialLimit::Operators)) => {}
            Err(e) => panic!("a lost race is the operators limit, not {e:?}"),
        }
    }
    assert_eq!(added, 4, "the owner and four operators make five");
    assert_eq!(f.store.official_operators("o_shop").await.unwrap().len(), 5);

    // One account added to several official accounts at once, and creating one itself, never
    // operates more than its limit.
    let busy = account(&*f.store, 2).await.id;
    for i in 0..6 {
        f.store
            .official_create(
                &official_row(&format!("o_b{i}"), &owner),
                &key_of(&format!("o_b{i}")),
                50,
                &[],
            )
            .await
            .unwrap();
    }
    let limits = OperatorLimits {
        max_operators: 20,
        max_per_operator: 3,
    };
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..6 {
        let store = f.store.clone();
        let busy = busy.clone();
        let owner = owner.clone();
        tasks.spawn(async move {
            store
                .official_operator_set(
                    &format!("o_b{i}"),
                    &owner,
                    &busy,
                    "editor",
                    T0,
                    limits,
                    &one_event_each("official.operator_added"),
                )
                .await
                .map(|_| ())
        });
    }
    {
        let store = f.store.clone();
        let busy = busy.clone();
        tasks.spawn(async move {
            store
                .official_create(
                    &official_row("o_own", &busy),
                    &key_of("o_own"),
                    limits.max_per_operator,
                    &[],
                )
                .await
                .map(|_| ())
        });
    }
    let mut joined = 0;
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(()) => joined += 1,
            Err(StoreError::OfficialLimit(OfficialLimit::PerOperator)) => {}
            Err(e) => panic!("a lost race is the per-operator limit, not {e:?}"),
        }
    }
    assert_eq!(joined, 3);
    assert_eq!(f.store.officials_of(&busy, false).await.unwrap().len(), 3);
}

/// A customer writes to `o_help`, operated by the owner and `support` (all support).
async fn help_desk(store: &dyn Store, support: &[String]) -> (String, String) {
    let owner = account(store, 1).await.id;
    let customer = account(store, 2).await.id;
    store
        .official_create(&official_row("o_help", &owner), &key_of("o_help"), 50, &[])
        .await
        .unwrap();
    for a in support {
        store
            .official_operator_set(
                "o_help",
                &owner,
                a,
                "support",
                T0,
                ROOMY,
                &one_event_each("x"),
            )
            .await
            .unwrap();
    }
    store
        .official_follow("o_help", &customer, T0)
        .await
        .unwrap();
    write(store, &customer, Sender::Customer, "c1")
        .await
        .unwrap();
    (owner, customer)
}

async fn write(
    store: &dyn Store,
    customer: &str,
    sender: Sender<'_>,
    client_id: &str,
) -> StoreResult<Vec<EventRow>> {
    let actor = match sender {
        Sender::Customer => customer.to_string(),
        Sender::Operator(a) => a.to_string(),
        Sender::Key(k) => format!("key:{k}"),
    };
    let row = OfficialMessageRow {
        id: format!("m_{actor}_{client_id}"),
        official_id: "o_help".into(),
        customer_id: customer.into(),
        actor,
        client_id: client_id.into(),
        body: "hello".into(),
        sent_at: T0,
        data: r#"{"body":"hello"}"#.into(),
    };
    let to_operators =
        |serving: &[String], _unanswered: i64| one_event_each("official.message")(serving);
    store
        .official_message(&OfficialSend {
            row: &row,
            sender,
            customer_events: &[],
            fanout: &to_operators,
            charges: &[],
            claim_ms: 1_800_000,
        })
        .await
}

async fn operators_racing_for_one_conversation_get_one_claim(backend: Backend) {
    let f = fixture(backend).await;
    let support = many_accounts(&*f.store, 10, 8).await;
    let (_, customer) = help_desk(&*f.store, &support).await;
    let mut tasks = tokio::task::JoinSet::new();
    for a in support.iter().cloned() {
        let store = f.store.clone();
        let customer = customer.clone();
        tasks.spawn(async move {
            let claim = store
                .official_claim(
                    "o_help",
                    &customer,
                    &a,
                    T0,
                    1_800_000,
                    &one_event_each("official.claimed"),
                )
                .await;
            (a, claim)
        });
    }
    let mut winners = Vec::new();
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            (a, Ok(Claim::Claimed { .. })) => winners.push(a),
            (_, Ok(Claim::Held { .. })) => {}
            (_, Err(e)) => panic!("a lost claim is held by the winner, not {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "one operator holds the conversation");
    let winner = &winners[0];
    let loser = support.iter().find(|a| *a != winner).unwrap();
    // The others cannot answer while it lasts; the holder can.
    assert!(matches!(
        write(&*f.store, &customer, Sender::Operator(loser), "a1").await,
        Err(StoreError::ClaimHeld { .. })
    ));
    write(&*f.store, &customer, Sender::Operator(winner), "a2")
        .await
        .unwrap();
    // The holder's answer renewed the claim for another 30 minutes from then (T0): at
    // T0 + 31 min it has lapsed and another operator may claim.
    let later = T0 + 31 * 60 * 1000;
    let conv = f
        .store
        .official_conversation("o_help", &customer, later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(conv.claim, None, "the claim lapsed");
    assert!(matches!(
        f.store
            .official_claim(
                "o_help",
                &customer,
                loser,
                later,
                1_800_000,
                &one_event_each("official.claimed")
            )
            .await
            .unwrap(),
        Claim::Claimed { .. }
    ));
}

async fn a_removal_or_revocation_that_committed_stops_the_next_step(backend: Backend) {
    let f = fixture(backend).await;
    let support = many_accounts(&*f.store, 10, 2).await;
    let (owner, customer) = help_desk(&*f.store, &support).await;
    let (gone, stays) = (&support[0], &support[1]);
    f.store
        .official_operator_remove(
            "o_help",
            &owner,
            gone,
            false,
            T0,
            &one_event_each("official.operator_removed"),
        )
        .await
        .unwrap()
        .expect("was an operator");
    assert!(matches!(
        write(&*f.store, &customer, Sender::Operator(gone), "a1").await,
        Err(StoreError::NotAllowed)
    ));
    assert!(matches!(
        f.store
            .official_claim(
                "o_help",
                &customer,
                gone,
                T0,
                1_800_000,
                &one_event_each("x")
            )
            .await,
        Err(StoreError::NotAllowed)
    ));
    // The next customer message reaches the owner and the remaining operator only.
    let events = write(&*f.store, &customer, Sender::Customer, "c2")
        .await
        .unwrap();
    let mut reached: Vec<&str> = events.iter().map(|e| e.account_id.as_str()).collect();
    reached.sort_unstable();
    let mut expected = vec![owner.as_str(), stays.as_str()];
    expected.sort_unstable();
    assert_eq!(reached, expected);
    // The owner cannot be removed; removing someone twice finds nobody.
    assert!(
        f.store
            .official_operator_remove("o_help", &owner, &owner, false, T0, &one_event_each("x"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        f.store
            .official_operator_remove("o_help", &owner, gone, false, T0, &one_event_each("x"))
            .await
            .unwrap()
            .is_none()
    );

    // A key answers until it is revoked, then not.
    let key = ApiKeyRow {
        id: "key_1".into(),
        official_id: "o_help".into(),
        key_hash: "h".into(),
        name: "bot".into(),
        role: "support".into(),
        created_by: owner.clone(),
        created_at: T0,
        revoked_at: None,
        creator_public_id: String::new(),
    };
    f.store.api_key_create(&key).await.unwrap();
    write(&*f.store, &customer, Sender::Key("key_1"), "k1")
        .await
        .unwrap();
    assert!(
        f.store
            .api_key_revoke("o_help", &owner, "key_1", T0)
            .await
            .unwrap()
    );
    assert!(matches!(
        write(&*f.store, &customer, Sender::Key("key_1"), "k2").await,
        Err(StoreError::NotAllowed)
    ));
    // A retried client id is one message.
    assert!(matches!(
        write(&*f.store, &customer, Sender::Customer, "c2").await,
        Err(StoreError::Duplicate)
    ));
}

/// An admin's adds and keys in flight while the owner removes them: each is decided in its
/// own transaction against the roles as they are then, so none lands after the removal, and
/// the keys made before it are revoked with it.
async fn a_removed_admin_writes_nothing_after_the_removal(backend: Backend) {
    let f = fixture(backend).await;
    let owner = account(&*f.store, 1).await.id;
    f.store
        .official_create(&official_row("o_team", &owner), &key_of("o_team"), 50, &[])
        .await
        .unwrap();
    let admin = account(&*f.store, 2).await.id;
    f.store
        .official_operator_set(
            "o_team",
            &owner,
            &admin,
            "admin",
            T0,
            ROOMY,
            &one_event_each("official.operator_added"),
        )
        .await
        .unwrap();
    let key = |id: &str| ApiKeyRow {
        id: id.into(),
        official_id: "o_team".into(),
        key_hash: format!("hash_{id}"),
        name: "bot".into(),
        role: "support".into(),
        created_by: admin.clone(),
        created_at: T0 + 1,
        revoked_at: None,
        creator_public_id: String::new(),
    };
    f.store.api_key_create(&key("key_early")).await.unwrap();
    let recruits = many_accounts(&*f.store, 20, 8).await;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, r) in recruits.iter().enumerate() {
        let made = key(&format!("key_{i}"));
        let (store, admin, r) = (f.store.clone(), admin.clone(), r.clone());
        tasks.spawn(async move {
            let added = store
                .official_operator_set(
                    "o_team",
                    &admin,
                    &r,
                    "support",
                    T0 + 1,
                    ROOMY,
                    &one_event_each("official.operator_added"),
                )
                .await
                .map(|_| ());
            (added, store.api_key_create(&made).await)
        });
    }
    let removal = f
        .store
        .official_operator_remove(
            "o_team",
            &owner,
            &admin,
            false,
            T0 + 1,
            &one_event_each("official.operator_removed"),
        )
        .await
        .unwrap()
        .expect("the admin was an operator");
    let mut keys_made = 0;
    while let Some(r) = tasks.join_next().await {
        let (added, key) = r.unwrap();
        for (outcome, is_key) in [(added, false), (key, true)] {
            match outcome {
                Ok(()) => keys_made += u64::from(is_key),
                Err(StoreError::NotAllowed) => {}
                Err(e) => panic!("a write after the removal is not_allowed, not {e:?}"),
            }
        }
    }
    // The owner's log: every add the admin made comes before the removal.
    let removed_at = removal
        .events
        .iter()
        .find(|e| e.account_id == owner)
        .expect("the owner is told")
        .seq;
    let log = f.store.events_after(&owner, 0, 1_000).await.unwrap();
    let adds = |after: bool| {
        log.iter()
            .filter(|e| e.kind == "official.operator_added" && (e.seq > removed_at) == after)
            .count()
    };
    assert_eq!(
        adds(true),
        0,
        "nothing the removed admin asked for lands after the removal"
    );
    let operators = f.store.official_operators("o_team").await.unwrap();
    assert!(operators.iter().all(|o| o.account_id != admin));
    // The owner and each recruit added before the removal (the first add was the admin's own).
    assert_eq!(operators.len(), adds(false));
    assert!(
        f.store.api_keys("o_team").await.unwrap().is_empty(),
        "the keys made before the removal went with it"
    );
    assert_eq!(
        removal.keys_revoked,
        1 + keys_made,
        "the early key and any made in the race"
    );
}

/// Six owners create official accounts whose names look the same, all at once: one is made,
/// the others are told the name is taken, and nothing of theirs is written.
async fn lookalike_names_racing_get_one_official_account(backend: Backend) {
    let f = fixture(backend).await;
    let owners = many_accounts(&*f.store, 40, 6).await;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, owner) in owners.iter().enumerate() {
        let (store, owner) = (f.store.clone(), owner.clone());
        tasks.spawn(async move {
            store
                .official_create(
                    &official_row(&format!("o_l{i}"), &owner),
                    "acme coffee",
                    50,
                    &[],
                )
                .await
                .map(|_| owner)
        });
    }
    let mut made = Vec::new();
    while let Some(r) = tasks.join_next().await {
        match r.unwrap() {
            Ok(owner) => made.push(owner),
            Err(StoreError::OfficialNameTaken) => {}
            Err(e) => panic!("a lost race is official_name_taken, not {e:?}"),
        }
    }
    assert_eq!(made.len(), 1, "one name, one official account");
    for owner in &owners {
        let operates = f.store.officials_of(owner, false).await.unwrap().len();
        assert_eq!(
            operates,
            usize::from(made.contains(owner)),
            "no half-made account"
        );
    }
}

/// Official accounts made before names had keys: the oldest of two lookalikes gets the key,
/// the later one is named; a name made after that cannot copy either.
async fn official_accounts_from_before_name_keys_get_them_oldest_first(backend: Backend) {
    let f = fixture(backend).await;
    let url = f._db.url.clone();
    let owners = many_accounts(&*f.store, 50, 3).await;
    for (i, (id, name)) in [
        ("o_old", "Acme Coffee"),
        ("o_copy", "ACME coffee"),
        ("o_tea", "Acme Tea"),
    ]
    .into_iter()
    .enumerate()
    {
        let row = OfficialRow {
            name: name.into(),
            created_at: T0 + i as i64,
            ..official_row(id, &owners[i])
        };
        f.store
            .official_create(&row, &key_of(id), 50, &[])
            .await
            .unwrap();
    }
    raw(
        backend,
        &url,
        "UPDATE official_accounts SET name_key = NULL",
    )
    .await;
    let fold = |name: &str| name.to_lowercase();
    let left = f.store.official_name_keys_backfill(&fold).await.unwrap();
    assert_eq!(
        left,
        vec!["o_copy".to_string()],
        "the later lookalike is named"
    );
    assert_eq!(
        f.store.official_name_keys_backfill(&fold).await.unwrap(),
        left,
        "and stays so"
    );
    let copy = OfficialRow {
        name: "acme tea".into(),
        ..official_row("o_new", &owners[0])
    };
    assert!(matches!(
        f.store.official_create(&copy, "acme tea", 50, &[]).await,
        Err(StoreError::OfficialNameTaken)
    ));
}
