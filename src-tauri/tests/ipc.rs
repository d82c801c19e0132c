//! IPC through Tauri itself (its mock runtime, no display), with the app's real capability
//! files: a profile's own window can act only for its profile, by both the capability ACL and
//! the shell's check of the calling window.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::sync::Arc;

use switchboard_core::Engine;
use switchboard_core::vault::MemoryVault;
use tauri::test::{INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder};
use tauri::webview::InvokeRequest;
use tauri::{App, WebviewWindow, WebviewWindowBuilder};

fn app(dir: &std::path::Path) -> App<MockRuntime> {
    let engine =
        tauri::async_runtime::block_on(Engine::open(dir, Arc::new(MemoryVault::default())))
            .unwrap();
    switchboard_app::install(
        mock_builder(),
        Arc::new(engine),
        "http://127.0.0.1:9".into(),
    )
    .build(tauri::generate_context!("tauri.conf.json", test = true))
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
