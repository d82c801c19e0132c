//! Real node processes on one throwaway PostgreSQL database: `kill -9` the node holding a
//! socket mid-stream, and the one a message was sent to before its answer came back.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::time::Duration;

use crate::common::{
    NodeProcess, assert_once_in_order, connect, head, next_event, send_message, sync_all,
};
use serde_json::json;
use switchboard_server::testing::{Backend, TestDb, register_remote};

/// Three nodes. The safety poll is slowed down, so cross-node delivery is the hints' doing.
fn three_nodes(db: &TestDb) -> Vec<NodeProcess> {
    (0..3)
        .map(|_| {
            NodeProcess::spawn(
                &db.url,
                db.dir(),
                &[("SWITCHBOARD_CLUSTER_SAFETY_POLL_MS", "600000")],
            )
        })
        .collect()
}

/// A reader and `n` senders who are its contacts, registered through `base`.
async fn accounts(http: &reqwest::Client, base: &str, n: usize) -> Vec<String> {
    let mut tokens = vec![register_remote(http, base, "+8613800138001", "reader_r").await];
    for i in 0..n {
        tokens.push(
            register_remote(
                http,
                base,
                &format!("+86138001380{:02}", 10 + i),
                &format!("sender_{i}"),
            )
            .await,
        );
        let req: serde_json::Value = http
            .post(format!("{base}/v1/contacts/requests"))
            .bearer_auth(&tokens[i + 1])
            .json(&json!({"public_id": "reader_r"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = req["id"].as_str().unwrap();
        let r = http
            .post(format!("{base}/v1/contacts/requests/{id}/accept"))
            .bearer_auth(&tokens[0])
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    tokens
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_dash_nine_of_the_node_holding_a_socket_loses_and_doubles_nothing() {
    let db = TestDb::new(Backend::Postgres).await;
    let mut nodes = three_nodes(&db);
    let http = reqwest::Client::new();
    let tokens = accounts(&http, &nodes[0].base, 2).await;
    let reader = tokens[0].clone();
    let since = head(&http, &nodes[1].base, &reader).await;
    let mut ws = connect(nodes[1].addr, &reader, since).await.unwrap();

    const EACH: usize = 100;
    let mut senders = tokio::task::JoinSet::new();
    for (i, token) in tokens[1..].iter().enumerate() {
        // Sender 0 through node A, sender 1 through node C.
        let base = nodes[if i == 0 { 0 } else { 2 }].base.clone();
        let (token, http) = (token.clone(), http.clone());
        senders.spawn(async move {
            for k in 0..EACH {
                let id = uuid::Uuid::new_v4().to_string();
                let status =
                    send_message(&http, &base, &token, &id, "reader_r", &format!("s{i}-{k}")).await;
                assert_eq!(status, 201);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
    }
    let mut got = Vec::new();
    while got.len() < 60 {
        got.push(next_event(&mut ws).await.unwrap());
    }
    nodes[1].kill();
    // The stream ends (cut, not closed); the client resumes on node A from its cursor.
    while let Ok(e) = next_event(&mut ws).await {
        got.push(e);
    }
    let cursor = got.last().unwrap()["seq"].as_i64().unwrap();
    let mut ws = connect(nodes[0].addr, &reader, cursor).await.unwrap();
    while got.len() < 2 * EACH {
        got.push(next_event(&mut ws).await.unwrap());
    }
    while let Some(done) = senders.join_next().await {
        done.unwrap();
    }
    assert_once_in_order(&got, since, 2, EACH);
    assert_eq!(
        sync_all(&http, &nodes[2].base, &reader, since).await,
        got,
        "/v1/sync agrees"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_id_retried_on_another_node_after_the_first_died_is_one_message() {
    let db = TestDb::new(Backend::Postgres).await;
    let mut nodes = three_nodes(&db);
    let http = reqwest::Client::new();
    let tokens = accounts(&http, &nodes[0].base, 1).await;
    let since = head(&http, &nodes[0].base, &tokens[0]).await;
    // Each try kills its node at another moment of the request: before it reached the
    // database, during, or after the commit with the answer lost.
    for k in 0..6u64 {
        let id = uuid::Uuid::new_v4().to_string();
        let victim = NodeProcess::spawn(&db.url, db.dir(), &[]);
        let (base, http2, token, id2) = (
            victim.base.clone(),
            http.clone(),
            tokens[1].clone(),
            id.clone(),
        );
        let first = tokio::spawn(async move {
            send_message(&http2, &base, &token, &id2, "reader_r", &format!("s0-{k}")).await
        });
        tokio::time::sleep(Duration::from_millis(k * 3)).await;
        drop(victim);
        let _ = first.await;
        let again = send_message(
            &http,
            &nodes[(k % 3) as usize].base,
            &tokens[1],
            &id,
            "reader_r",
            &format!("s0-{k}"),
        )
        .await;
        assert_eq!(
            again, 201,
            "the retry is accepted (or recognised) by another node"
        );
    }
    let events = sync_all(&http, &nodes[2].base, &tokens[0], since).await;
    assert_once_in_order(&events, since, 1, 6);
    nodes.clear();
}
