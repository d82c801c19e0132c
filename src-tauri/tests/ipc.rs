//! IPC through Tauri itself (its mock runtime, no display), with the app's real capability
//! files: a profile's own window can act only for its profile, by both the capability ACL and
//! the shell's check of the calling window, and receives only its own profile's events.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_core::vault::MemoryVault;
use switchboard_core::{ConnState, Engine, Event, ProfileEvent, ProfileEventKind, ProfileId};
use tauri::ipc::InvokeResponseBody;
use tauri::test::{INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder};
use tauri::webview::InvokeRequest;
use tauri::{App, Listener, Manager, WebviewWindow, WebviewWindowBuilder};

/// What arrived through the windows' event channels: (window label, message).
type Delivered = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

fn app(dir: &std::path::Path) -> App<MockRuntime> {
    app_recording(dir).0
}

/// The app, with every message sent through a window's IPC channel recorded with the label
/// of the window it went to (the mock runtime has no page to run the channel's callback).
fn app_recording(dir: &std::path::Path) -> (App<MockRuntime>, Delivered) {
    let engine =
        tauri::async_runtime::block_on(Engine::open(dir, Arc::new(MemoryVault::default())))
            .unwrap();
    let delivered = Delivered::default();
    let record = delivered.clone();
    let builder = mock_builder().channel_interceptor(move |webview, _callback, _index, body| {
        let InvokeResponseBody::Json(json) = body else {
            panic!("the shell sends JSON through channels");
        };
        record.lock().unwrap().push((
            webview.label().to_string(),
            serde_json::from_str(json).unwrap(),
        ));
        true
    });
    let app = switchboard_app::install(builder, Arc::new(engine), "http://127.0.0.1:9".into())
        .build(tauri::generate_context!("tauri.conf.json", test = true))
        .unwrap();
    (app, delivered)
}

fn window(
    app: &App<MockRuntime>,
    label: &str,
    dir: &std::path::Path,
) -> WebviewWindow<MockRuntime> {
    WebviewWindowBuilder::new(app, label, Default::default())
        .data_directory(dir.join("webview"))
        .build()
        .unwrap()
}

fn call(
    window: &WebviewWindow<MockRuntime>,
    cmd: &str,
    args: serde_json::Value,
) -> Result<serde_json::Value, serde_json::Value> {
    get_ipc_response(
        window,
        InvokeRequest {
            cmd: cmd.into(),
            callback: tauri::ipc::CallbackFn(0),
            error: tauri::ipc::CallbackFn(1),
            url: "tauri://localhost".parse().unwrap(),
            body: tauri::ipc::InvokeBody::Json(args),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        },
    )
    .map(|b| b.deserialize::<serde_json::Value>().unwrap())
}

#[test]
fn a_profile_window_cannot_act_for_another_profile() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let main = WebviewWindowBuilder::new(&app, "main", Default::default())
        .data_directory(dir.path().join("webview"))
        .build()
        .unwrap();
    let own = WebviewWindowBuilder::new(&app, "profile-p_a", Default::default())
        .data_directory(dir.path().join("webview"))
        .build()
        .unwrap();

    // The shell refuses a call for profile B from profile A's window, by the window's label.
    let refused = call(&own, "conversations", serde_json::json!({"profile": "p_b"})).unwrap_err();
    assert_eq!(refused["code"], "forbidden_profile", "{refused}");

    // The same call from the main window passes the check and reaches the core, which has no
    // such profile: a different, typed error.
    let from_main = call(
        &main,
        "conversations",
        serde_json::json!({"profile": "p_b"}),
    )
    .unwrap_err();
    assert_eq!(from_main["code"], "no_such_profile", "{from_main}");

    // Managing profiles is not even in a profile window's capability: Tauri's ACL refuses it
    // before any Rust runs.
    let acl = call(
        &own,
        "remove_profile",
        serde_json::json!({"profile": "p_a"}),
    )
    .unwrap_err();
    assert!(
        acl.to_string().contains("not allowed"),
        "the ACL refuses, not the shell: {acl}"
    );

    // What a profile window may call works: it sees only its own profile.
    let listed = call(&own, "list_profiles", serde_json::json!({})).unwrap();
    assert_eq!(listed, serde_json::json!([]));
    let info = call(&own, "app_info", serde_json::json!({})).unwrap();
    assert_eq!(info["window_profile"], "p_a");
}

/// A profile window reaches neither another profile's images nor its Moments: each command
/// is refused for profile B from A's window, and the merged feed it asks for (no profile)
/// covers its own profile only (here none is signed in, so it is empty rather than B's).
#[test]
fn a_profile_window_cannot_see_another_profiles_images_or_moments() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let own = window(&app, "profile-p_a", dir.path());
    let png = serde_json::json!([{"data": "iVBORw0KGgo="}]);
    for (cmd, args) in [
        (
            "media",
            serde_json::json!({"profile": "p_b", "key": "med_1", "full": true}),
        ),
        (
            "moments_feed",
            serde_json::json!({"profile": "p_b", "before": null}),
        ),
        (
            "post_moment",
            serde_json::json!({"profile": "p_b", "text": "hi", "images": png, "visibility": "contacts"}),
        ),
        (
            "like_moment",
            serde_json::json!({"profile": "p_b", "moment_id": "mo_1"}),
        ),
        (
            "comment_moment",
            serde_json::json!({"profile": "p_b", "moment_id": "mo_1", "text": "x", "reply_to": null}),
        ),
        (
            "delete_moment",
            serde_json::json!({"profile": "p_b", "moment_id": "mo_1"}),
        ),
        (
            "send_message",
            serde_json::json!({"profile": "p_b", "to": "bob", "body": "", "images": png}),
        ),
    ] {
        let refused = call(&own, cmd, args).unwrap_err();
        assert_eq!(refused["code"], "forbidden_profile", "{cmd}: {refused}");
    }
    let merged = call(
        &own,
        "moments_feed",
        serde_json::json!({"profile": null, "before": null}),
    )
    .unwrap();
    assert_eq!(merged, serde_json::json!([]));
    // A visibility the page made up is a typed error, not a crash.
    let main = window(&app, "main", dir.path());
    let bad = call(
        &main,
        "post_moment",
        serde_json::json!({"profile": "p_a", "text": "hi", "images": [], "visibility": "everyone"}),
    )
    .unwrap_err();
    assert_eq!(bad["code"], "invalid", "{bad}");
}

/// A profile window cannot answer customers or publish as an official account through
/// another profile, even one article among several; the main window may.
#[test]
fn a_profile_window_cannot_act_as_another_profiles_official_account() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let main = window(&app, "main", dir.path());
    let own = window(&app, "profile-p_a", dir.path());
    for (cmd, args) in [
        (
            "reply_as",
            serde_json::json!({"profile": "p_b", "official_id": "o_x", "customer": "carol_c", "body": "hi"}),
        ),
        (
            "claim_conversation",
            serde_json::json!({"profile": "p_b", "official_id": "o_x", "customer": "carol_c"}),
        ),
        (
            "customer_messages",
            serde_json::json!({"profile": "p_b", "official_id": "o_x", "customer": "carol_c"}),
        ),
        (
            "publish_article",
            serde_json::json!({"targets": [
                {"profile": "p_a", "official_id": "o_a"},
                {"profile": "p_b", "official_id": "o_x"}
            ], "title": "t", "body": "b", "key": "k"}),
        ),
    ] {
        let refused = call(&own, cmd, args.clone()).unwrap_err();
        assert_eq!(refused["code"], "forbidden_profile", "{cmd}: {refused}");
        // From the main window the check passes; the core has no such profile.
        match call(&main, cmd, args) {
            Err(e) => assert_eq!(e["code"], "no_such_profile", "{cmd}: {e}"),
            // Publishing answers per account: each target's outcome names its error.
            Ok(outcomes) => assert!(
                outcomes
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|o| o["error"][0] == "no_such_profile"),
                "{cmd}: {outcomes}"
            ),
        }
    }
    // Listing is filtered, not refused: a profile window sees its own profile's only.
    assert_eq!(
        call(&own, "official_accounts", serde_json::json!({})).unwrap(),
        serde_json::json!([])
    );
}

#[test]
fn errors_cross_ipc_as_a_code_and_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let main = WebviewWindowBuilder::new(&app, "main", Default::default())
        .data_directory(dir.path().join("webview"))
        .build()
        .unwrap();
    let bad = call(
        &main,
        "rename_profile",
        serde_json::json!({"profile": "nobody", "name": "x"}),
    )
    .unwrap_err();
    assert_eq!(bad["code"], "no_such_profile");
    assert!(bad["message"].as_str().unwrap().contains("nobody"), "{bad}");
}

/// An id the page sends is checked as it crosses IPC, before any core call: a malformed group
/// id is refused with the typed `invalid` code the UI branches on, never sent on as a public
/// ID (it has no `g_` shape) nor passed to the service.
#[test]
fn a_malformed_group_id_from_the_page_is_refused_with_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let main = window(&app, "main", dir.path());
    let refused = |cmd: &str, args: serde_json::Value| {
        let err = call(&main, cmd, args).unwrap_err();
        assert_eq!(err["code"], "invalid", "{cmd}: {err}");
        assert!(
            err["message"].as_str().unwrap().contains("not a group id"),
            "{cmd}: the message says what is wrong: {err}"
        );
    };
    refused(
        "send_message",
        serde_json::json!({"profile": "p_a", "to": "g_", "body": "hi", "images": []}),
    );
    refused(
        "messages",
        serde_json::json!({"profile": "p_a", "conversation": "g_x/../y"}),
    );
    refused(
        "send_red_envelope",
        serde_json::json!({"profile": "p_a", "confirmed": false, "envelope": {
            "to": "g_ team", "total": 100, "count": 1, "mode": "equal", "greeting": ""
        }}),
    );
    // A public ID is no group id, and a group id no public ID.
    let err = call(
        &main,
        "transfer",
        serde_json::json!({"profile": "p_a", "to": "g_team", "amount": 1, "note": "", "confirmed": false}),
    )
    .unwrap_err();
    assert_eq!(err["code"], "invalid", "{err}");

    // Well-formed ids pass and reach the core, which has no such profile.
    let passed = call(
        &main,
        "send_message",
        serde_json::json!({"profile": "p_a", "to": "g_team", "body": "hi", "images": []}),
    )
    .unwrap_err();
    assert_eq!(passed["code"], "no_such_profile", "{passed}");
}

/// A message to profile `profile` from the service, with `body`.
fn message(profile: &str, seq: i64, body: &str) -> ProfileEvent {
    let event: Event = serde_json::from_value(serde_json::json!({
        "seq": seq,
        "at": "2026-11-23T10:00:00Z",
        "kind": "message.new",
        "data": {
            "id": format!("m{seq}"), "client_id": "c", "from": "bob", "from_display_name": "Bob",
            "to": "alice", "body": body, "sent_at": "2026-11-23T10:00:00Z"
        }
    }))
    .unwrap();
    ProfileEvent {
        profile: ProfileId::new(profile),
        kind: ProfileEventKind::Event(event),
    }
}

/// Money arriving in `profile`'s wallet.
fn credit(profile: &str, seq: i64, amount: i64) -> ProfileEvent {
    let event: Event = serde_json::from_value(serde_json::json!({
        "seq": seq,
        "at": "2026-11-23T10:00:00Z",
        "kind": "wallet.credit",
        "data": {
            "transaction_id": format!("tx_{seq}"), "kind": "transfer", "amount": amount,
            "balance": amount, "counterparty": "bob", "note": ""
        }
    }))
    .unwrap();
    ProfileEvent {
        profile: ProfileId::new(profile),
        kind: ProfileEventKind::Event(event),
    }
}

fn subscribe(window: &WebviewWindow<MockRuntime>, channel: u32) {
    call(
        window,
        "subscribe_events",
        serde_json::json!({"on_event": format!("__CHANNEL__:{channel}")}),
    )
    .unwrap();
}

/// Waits until `want` messages were delivered (all of them, whichever windows they went to).
fn delivered_at_least(delivered: &Delivered, want: usize) -> Vec<(String, serde_json::Value)> {
    for _ in 0..500 {
        if delivered.lock().unwrap().len() >= want {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // A little longer, so that a message that should not arrive has had its chance to.
    std::thread::sleep(Duration::from_millis(100));
    delivered.lock().unwrap().clone()
}

#[test]
fn a_profile_window_receives_only_its_own_profiles_events() {
    let dir = tempfile::tempdir().unwrap();
    let (app, delivered) = app_recording(dir.path());
    let main = window(&app, "main", dir.path());
    let own = window(&app, "profile-p_a", dir.path());
    // What any listener of any window would hear (a page's `listen()` hears every target):
    // nothing of a profile may travel that way.
    let global = Arc::new(Mutex::new(Vec::new()));
    for name in ["profile-event", "profiles-changed", "open-conversation"] {
        let heard = global.clone();
        app.listen_any(name, move |e| {
            heard.lock().unwrap().push(e.payload().to_string())
        });
    }
    subscribe(&main, 1);
    subscribe(&own, 2);

    let (bus, rx) = tokio::sync::broadcast::channel(16);
    switchboard_app::start_forwarding_from(app.handle(), rx);
    let events = [
        message("p_a", 1, "for A only"),
        message("p_b", 1, "B's secret"),
        credit("p_b", 2, 12_345),
        ProfileEvent {
            profile: ProfileId::new("p_b"),
            kind: ProfileEventKind::State(ConnState::Live),
        },
    ];
    for ev in &events {
        bus.send(ev.clone()).unwrap();
    }
    let got = delivered_at_least(&delivered, events.len() + 1);

    let to = |label: &str| -> Vec<serde_json::Value> {
        got.iter()
            .filter(|(l, _)| l == label)
            .map(|(_, m)| m.clone())
            .collect()
    };
    let to_main = to("main");
    assert_eq!(
        to_main.len(),
        events.len(),
        "the main window sees every profile's events: {to_main:#?}"
    );
    assert!(
        to_main.iter().all(|m| m["type"] == "profile"),
        "{to_main:#?}"
    );
    let to_own = to("profile-p_a");
    assert_eq!(
        to_own.len(),
        1,
        "profile A's window gets its own event and nothing of B's: {to_own:#?}"
    );
    assert_eq!(to_own[0]["profile"], "p_a");
    assert_eq!(to_own[0]["kind"]["data"]["body"], "for A only");
    let text = serde_json::to_string(&to_own).unwrap();
    assert!(
        !text.contains("secret") && !text.contains("12345") && !text.contains("p_b"),
        "no body, amount or id of B reaches A's window: {text}"
    );
    assert!(
        got.iter().all(|(l, _)| l == "main" || l == "profile-p_a"),
        "only subscribed windows get anything: {got:#?}"
    );

    // A notification click for B's chat goes to the main window only.
    delivered.lock().unwrap().clear();
    switchboard_app::shell::bring_to_front(
        app.handle(),
        Some(switchboard_app::shell::OpenConversation {
            profile: ProfileId::new("p_b"),
            conversation: Some("bob".into()),
        }),
    );
    let got = delivered.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].0, "main");
    assert_eq!(got[0].1["type"], "open_conversation");
    assert_eq!(got[0].1["profile"], "p_b");

    // Events were dropped on the way: every window re-reads, and is told nothing else.
    delivered.lock().unwrap().clear();
    app.state::<switchboard_app::shell::Shell>()
        .profiles_changed();
    let got = delivered.lock().unwrap().clone();
    let mut labels: Vec<&str> = got.iter().map(|(l, _)| l.as_str()).collect();
    labels.sort();
    assert_eq!(labels, ["main", "profile-p_a"]);
    assert!(
        got.iter()
            .all(|(_, m)| *m == serde_json::json!({"type": "profiles_changed"}))
    );

    assert!(
        global.lock().unwrap().is_empty(),
        "nothing went out as a global event, which every window's listeners hear: {:?}",
        global.lock().unwrap()
    );
}

/// In the tray the main window is gone (and its web process with it); a notification click
/// opens it again, and the page is told which conversation to show once it listens, not
/// before (it would miss it), and only once (a reload does not jump back there). (Tauri's mock
/// runtime cannot run a window's close; it starts with none, as the app launched `--tray`.)
#[test]
fn a_notification_click_opens_the_closed_main_window_on_its_conversation() {
    use switchboard_app::shell::{OpenConversation, bring_to_front};
    let dir = tempfile::tempdir().unwrap();
    // The app as it is in the tray: the main window closed (or never opened, `--tray`).
    let (app, delivered) = app_recording(dir.path());
    assert!(app.get_webview_window("main").is_none());

    bring_to_front(
        app.handle(),
        Some(OpenConversation {
            profile: ProfileId::new("p_b"),
            conversation: Some("bob".into()),
        }),
    );
    let main = app
        .get_webview_window("main")
        .expect("the click opened the main window again");
    assert!(
        delivered.lock().unwrap().is_empty(),
        "nothing is sent before the page listens: {:?}",
        delivered.lock().unwrap()
    );
    subscribe(&main, 2);
    let got = delivered_at_least(&delivered, 1);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].0, "main");
    assert_eq!(got[0].1["type"], "open_conversation");
    assert_eq!(got[0].1["profile"], "p_b");
    assert_eq!(got[0].1["conversation"], "bob");

    subscribe(&main, 3);
    let got = delivered_at_least(&delivered, 2);
    assert_eq!(got.len(), 1, "told once, not again on a reload: {got:#?}");
}

#[test]
fn a_profile_window_may_not_use_tauris_events_tray_or_windows() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path());
    let main = window(&app, "main", dir.path());
    let own = window(&app, "profile-p_a", dir.path());
    let refused = |w: &WebviewWindow<MockRuntime>, cmd: &str, args: serde_json::Value| {
        let err = call(w, cmd, args).unwrap_err();
        assert!(
            err.to_string().contains("not allowed"),
            "the ACL refuses {cmd} in {}: {err}",
            w.label()
        );
    };
    // A fake "open this conversation" to the main window, or a listener that hears every
    // window's events.
    refused(
        &own,
        "plugin:event|emit_to",
        serde_json::json!({
            "target": {"kind": "AnyLabel", "label": "main"},
            "event": "open-conversation",
            "payload": {"profile": "p_b", "conversation": "bob"}
        }),
    );
    refused(
        &own,
        "plugin:event|emit",
        serde_json::json!({"event": "open-conversation", "payload": null}),
    );
    refused(
        &own,
        "plugin:event|listen",
        serde_json::json!({"event": "open-conversation", "target": {"kind": "Any"}, "handler": 7}),
    );
    // The tray, its menu, and other windows.
    refused(
        &own,
        "plugin:tray|set_tooltip",
        serde_json::json!({"rid": 1, "tooltip": "pwned"}),
    );
    refused(
        &own,
        "plugin:menu|new",
        serde_json::json!({"kind": "Menu", "options": {}}),
    );
    refused(
        &own,
        "plugin:window|set_title",
        serde_json::json!({"label": "main", "value": "pwned"}),
    );
    // The main window does not need Tauri's core either: its events come by channel too.
    refused(
        &main,
        "plugin:event|listen",
        serde_json::json!({"event": "profile-event", "target": {"kind": "Any"}, "handler": 7}),
    );
    refused(
        &main,
        "plugin:tray|set_tooltip",
        serde_json::json!({"rid": 1, "tooltip": "x"}),
    );
}

/// Two profiles where one's name is the other's id (names are free text): every window still
/// gets its own profile, because the shell passes ids and the core resolves only ids.
#[test]
fn a_profile_named_like_another_profiles_id_never_stands_in_for_it() {
    use switchboard_core::ProfileRecord;
    use switchboard_core::notify::Policy;
    use switchboard_core::registry::Registry;
    let dir = tempfile::tempdir().unwrap();
    tauri::async_runtime::block_on(async {
        let registry = Registry::open(&dir.path().join("profiles.db"))
            .await
            .unwrap();
        let record = |id: &str, name: &str| ProfileRecord {
            id: ProfileId::new(id),
            name: name.into(),
            color: "#2f6fed".into(),
            position: 0,
            server_url: "http://127.0.0.1:9".into(),
            account_id: format!("a_{id}").parse().unwrap(),
            public_id: format!("{id}_pid").parse().unwrap(),
            session_id: "s".into(),
            created_at: 0,
            history_until: 0,
            allow_insecure_http: false,
        };
        // First in the sidebar: A, named after B's id, with a policy of its own.
        for id in ["p_a", "p_b"] {
            std::fs::create_dir_all(dir.path().join("profiles").join(id)).unwrap();
        }
        registry.insert(&record("p_a", "p_b")).await.unwrap();
        registry.insert(&record("p_b", "Bee")).await.unwrap();
        let quiet = Policy {
            enabled: false,
            ..Policy::default()
        };
        registry
            .set_policy(&ProfileId::new("p_a"), &quiet)
            .await
            .unwrap();
        registry.close().await;
    });
    let app = app(dir.path());
    let main = window(&app, "main", dir.path());
    let b = window(&app, "profile-p_b", dir.path());

    let policy = call(
        &b,
        "notification_policy",
        serde_json::json!({"profile": "p_b"}),
    )
    .unwrap();
    assert_eq!(
        policy["enabled"], true,
        "B's window reads B's policy, not that of A (whose name is B's id): {policy}"
    );
    let listed = call(&b, "list_profiles", serde_json::json!({})).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["id"], "p_b");
    assert_eq!(listed[0]["name"], "Bee");

    // The main window names profiles by id too: a name is no id.
    let by_name = call(
        &main,
        "notification_policy",
        serde_json::json!({"profile": "Bee"}),
    )
    .unwrap_err();
    assert_eq!(by_name["code"], "no_such_profile", "{by_name}");
    let a = call(
        &main,
        "notification_policy",
        serde_json::json!({"profile": "p_a"}),
    )
    .unwrap();
    assert_eq!(a["enabled"], false, "{a}");
}
