//! The desktop app in a real window (Xvfb), driven through WebDriver (tauri-driver +
//! WebKitWebDriver), against a real service on loopback, with notifications recorded on the
//! private D-Bus session. `cargo xtask test` runs it inside `xvfb-run dbus-run-session` with an
//! unlocked gnome-keyring and `SWITCHBOARD_APP` pointing at the app built with its UI; it is
//! `#[ignore]`d in the plain test run, which has no display. Screenshots of every step go to
//! `target/e2e/`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator, key::Key};
use switchboard_e2e::picture;
use switchboard_server::testing::{TEST_PASSWORD, TEST_RESIDENT_ID, TestServer};

/// A child process killed on drop, whatever the test's outcome.
struct Owned(Child);

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn screenshots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/e2e");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The X screen the app draws on, as PNG, read from the X server with `xwd`. Not WebDriver's
/// Take Screenshot: that goes through WebKit's snapshot of the page, which never returns under
/// Xvfb when the app runs without accelerated compositing, as it ships (see the app's
/// `WEBKIT_SETTINGS`); and a WebDriver command that never returns blocks every later
/// one. Empty when the screen cannot be read: a screenshot is for a person, not an assertion.
fn screen_png() -> Vec<u8> {
    let xwd = Command::new("xwd")
        .args(["-root", "-silent"])
        .stderr(Stdio::inherit())
        .output();
    match xwd {
        Ok(out) if out.status.success() => xwd_to_png(&out.stdout).unwrap_or_else(|| {
            eprintln!("xwd wrote an image this test cannot read; no screenshot");
            Vec::new()
        }),
        Ok(out) => {
            eprintln!("xwd failed ({}); no screenshot", out.status);
            Vec::new()
        }
        Err(e) => {
            eprintln!("cannot run xwd ({e}); no screenshot");
            Vec::new()
        }
    }
}

/// An X window dump (XWD: a header of big-endian 32-bit fields, a colour map, then the
/// pixels) of a TrueColor or DirectColor screen of 3 or 4 bytes a pixel, as PNG; `None` for any
/// other kind. The pixel size is taken from the line length: under Xvfb, `xwd` reports 24 bits
/// a pixel for the app's 32-bit visual.
fn xwd_to_png(xwd: &[u8]) -> Option<Vec<u8>> {
    let field = |i: usize| -> Option<u32> {
        let b = xwd.get(i * 4..i * 4 + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let header_size = field(0)? as usize;
    let (width, height) = (field(4)?, field(5)?);
    let lsb_first = field(7)? == 0;
    let bytes_per_line = field(12)? as usize;
    let masks = [field(14)?, field(15)?, field(16)?];
    // Each colour-map entry is 12 bytes; a TrueColor dump carries one that is not used.
    let pixels = xwd.get(header_size + field(19)? as usize * 12..)?;
    let step = bytes_per_line.checked_div(width as usize)?;
    if !(3..=4).contains(&step) || masks.contains(&0) {
        return None;
    }
    let mut img = image::RgbImage::new(width, height);
    for (x, y, px) in img.enumerate_pixels_mut() {
        let at = y as usize * bytes_per_line + x as usize * step;
        let bytes = pixels.get(at..at + step)?;
        let v = if lsb_first {
            bytes.iter().rev().fold(0u32, |v, b| v << 8 | u32::from(*b))
        } else {
            bytes.iter().fold(0u32, |v, b| v << 8 | u32::from(*b))
        };
        *px = image::Rgb(masks.map(|m| ((v & m) >> m.trailing_zeros()) as u8));
    }
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .ok()?;
    Some(png)
}

struct Ui {
    c: Client,
    step: usize,
}

impl Ui {
    async fn el(&self, css: &str) -> fantoccini::elements::Element {
        self.c
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| {
                let _ = std::fs::write(screenshots_dir().join("failed-find.png"), screen_png());
                panic!("{css} never appeared: {e}")
            })
    }

    async fn click(&self, css: &str) {
        let mut last = String::new();
        for _ in 0..10 {
            let e = self.el(css).await;
            // Dialogs scroll: bring the element into view as a user would.
            let arg = serde_json::to_value(&e).unwrap();
            let _ = self
                .c
                .execute("arguments[0].scrollIntoView({block: 'center'})", vec![arg])
                .await;
            match e.click().await {
                Ok(()) => return,
                // Replaced by a re-render between finding and clicking: find it again.
                Err(err) => last = err.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = std::fs::write(screenshots_dir().join("failed-click.png"), screen_png());
        panic!("cannot click {css}: {last}");
    }

    async fn fill(&self, css: &str, text: &str) {
        // The view re-renders when an event arrives: a field found a moment ago may have been
        // replaced (the UI keeps what was typed); find it again then.
        for _ in 0..10 {
            let e = self.el(css).await;
            if e.clear().await.is_ok() && e.send_keys(text).await.is_ok() {
                let now = e.prop("value").await.ok().flatten();
                if now.as_deref() == Some(text) {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("cannot type into {css}");
    }

    /// Picks `value` in the `<select>` at `css`; its options come from the core, so wait for
    /// that one to be there first.
    async fn choose(&self, css: &str, value: &str) {
        let option = format!("{css} option[value=\"{value}\"]");
        for _ in 0..10 {
            self.el(&option).await;
            let select = self.el(css).await;
            if select.select_by_value(value).await.is_ok()
                && select.prop("value").await.ok().flatten().as_deref() == Some(value)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("cannot choose {value} in {css}");
    }

    /// Gives the `<input type=file>` at `css` one PNG, as the file dialog would.
    async fn pick_image(&self, css: &str, png: &[u8]) {
        self.el(css).await;
        let script = "const [sel, b64] = arguments; const bin = atob(b64); \
            const bytes = new Uint8Array(bin.length); \
            for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i); \
            const input = document.querySelector(sel); const dt = new DataTransfer(); \
            dt.items.add(new File([bytes], 'photo.png', {type: 'image/png'})); \
            input.files = dt.files; input.dispatchEvent(new Event('change', {bubbles: true}));";
        self.c
            .execute(
                script,
                vec![
                    serde_json::json!(css),
                    serde_json::json!(data_encoding::BASE64.encode(png)),
                ],
            )
            .await
            .unwrap();
    }

    /// Runs axe-core over the page as it is and returns its serious and critical violations
    /// (rule, impact, the first offending element).
    async fn audit(&self) -> Vec<String> {
        let axe = std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../ui/node_modules/axe-core/axe.min.js"),
        )
        .expect("axe-core (ui's dev dependency; cargo xtask installs it)");
        self.c.execute(&axe, vec![]).await.unwrap();
        let found = self
            .c
            .execute_async(
                "const done = arguments[arguments.length - 1]; \
                 axe.run(document, {resultTypes: ['violations']}).then((r) => done( \
                   r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical') \
                     .map((v) => v.id + ' (' + v.impact + '): ' + v.nodes.length + ' e.g. ' \
                       + v.nodes[0].html.slice(0, 160)))).catch((e) => done(['axe failed: ' + e]));",
                vec![],
            )
            .await
            .unwrap();
        serde_json::from_value(found).unwrap()
    }

    /// Shows the page in `theme` ("light" or "dark"), as the system's choice would.
    async fn theme(&self, theme: &str) {
        self.c
            .execute(
                "document.documentElement.dataset.theme = arguments[0];",
                vec![serde_json::json!(theme)],
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }

    async fn text(&self, css: &str) -> String {
        self.el(css).await.text().await.unwrap()
    }

    /// Waits until `css` holds `want` (the UI updates from core events, asynchronously).
    async fn wait_text(&self, css: &str, want: &str) {
        for _ in 0..200 {
            if let Ok(e) = self.c.find(Locator::Css(css)).await
                && e.text().await.is_ok_and(|t| t.contains(want))
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = std::fs::write(screenshots_dir().join("failed-wait.png"), screen_png());
        let seen = match self.c.find(Locator::Css(css)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(e) => format!("(not found: {e})"),
        };
        let page = self.c.source().await.unwrap_or_default();
        panic!("{css} never showed {want:?} (it shows {seen:?}); page: {page}");
    }

    async fn shot(&mut self, name: &str) {
        self.step += 1;
        std::fs::write(
            screenshots_dir().join(format!("{:02}-{name}.png", self.step)),
            screen_png(),
        )
        .unwrap();
    }

    async fn key_chord(&self, key: &str) {
        let body = self.el("body").await;
        body.send_keys(&format!(
            "{}{key}{}",
            char::from(Key::Control),
            char::from(Key::Null)
        ))
        .await
        .unwrap();
    }

    /// Clicks `button` until `opened` shows. The view re-renders as the new profile's events
    /// arrive; a click delivered at the moment its node is replaced can open nothing (CI saw
    /// the add-profile dialog not open once in many runs), and a user would click again.
    async fn open(&mut self, button: &str, opened: &str) {
        for _ in 0..3 {
            self.click(button).await;
            let shown = self
                .c
                .wait()
                .at_most(Duration::from_secs(5))
                .for_element(Locator::Css(opened))
                .await;
            if shown.is_ok() {
                return;
            }
            eprintln!("clicked {button} but {opened} did not show; clicking again");
            self.shot("not-opened").await;
        }
        panic!("{opened} never opened from {button}");
    }

    /// Registers an account through the add-profile dialog's SMS flow.
    async fn register(&mut self, tab: &str, phone: &str, public_id: &str, name: &str) {
        self.open(
            "[data-testid=add-profile]",
            "[data-testid=add-profile-dialog]",
        )
        .await;
        self.click(&format!("[data-testid=add-{tab}]")).await;
        self.fill("[data-testid=phone]", phone).await;
        self.click("[data-testid=send-code]").await;
        // A development service: the code field offers to fill itself from the dev outbox.
        let fill = self.el("[data-testid=fill-code]:not([hidden])").await;
        fill.click().await.unwrap();
        for _ in 0..50 {
            let code = self
                .el("[data-testid=sms-code]")
                .await
                .prop("value")
                .await
                .unwrap();
            if code.is_some_and(|c| c.len() == 6) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.fill("[data-testid=public-id]", public_id).await;
        self.fill("[data-testid=display-name]", &format!("Dana ({name})"))
            .await;
        self.fill("[data-testid=profile-name]", name).await;
        self.fill("[data-testid=password]", TEST_PASSWORD).await;
        self.shot(&format!("register-{name}")).await;
        self.click("[data-testid=submit]").await;
        self.wait_text("[data-testid=current-profile]", name).await;
        self.dialogs_closed().await;
    }

    /// Waits until no modal dialog is open: the profile shows in the sidebar a moment before
    /// its dialog closes, and a click meanwhile would land on the dialog's backdrop.
    async fn dialogs_closed(&self) {
        for _ in 0..100 {
            if self
                .c
                .find_all(Locator::Css("dialog[open]"))
                .await
                .is_ok_and(|d| d.is_empty())
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("a dialog stayed open");
    }
}

/// Waits until an event of `token`'s account matches `found` (up to 10 s), and returns it.
async fn in_log(
    s: &TestServer,
    token: &str,
    what: &str,
    found: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    for _ in 0..100 {
        let sync = s
            .get("/v1/sync?since=0&limit=1000", token)
            .await
            .expect(200)
            .body;
        if let Some(e) = sync["events"].as_array().unwrap().iter().find(|e| found(e)) {
            return e.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a display, a D-Bus session and the app binary: run by `cargo xtask test`"]
async fn two_accounts_of_one_phone_live_side_by_side_in_the_window() {
    let app = std::env::var("SWITCHBOARD_APP")
        .expect("SWITCHBOARD_APP names the app binary built with its UI (cargo xtask test)");
    let s = TestServer::start().await;
    let bob = s.verified_user(7, "bob_the_2nd").await;

    // Everything the app writes stays in a temp home; notifications are recorded on the bus.
    let home = tempfile::tempdir().unwrap();
    let recorded = Arc::new(Mutex::new(String::new()));
    let mut monitor = Owned(
        Command::new("dbus-monitor")
            .arg("interface='org.freedesktop.Notifications'")
            .stdout(Stdio::piped())
            .spawn()
            .expect("dbus-monitor (package dbus-bin)"),
    );
    let out = monitor.0.stdout.take().unwrap();
    let sink = recorded.clone();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let mut r = sink.lock().unwrap();
            r.push_str(&l);
            r.push('\n');
        }
    });
    let _driver = Owned(
        Command::new("tauri-driver")
            .args(["--port", "4444", "--native-port", "4445"])
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env("XDG_CACHE_HOME", home.path().join("cache"))
            .env("XDG_STATE_HOME", home.path().join("state"))
            .env("SWITCHBOARD_DATA_DIR", home.path().join("switchboard"))
            .env("SWITCHBOARD_SERVICE_URL", &s.base)
            .spawn()
            .expect("tauri-driver (cargo xtask setup installs it)"),
    );
    let mut caps = serde_json::Map::new();
    caps.insert(
        "tauri:options".into(),
        serde_json::json!({ "application": app }),
    );
    let mut client = None;
    for _ in 0..100 {
        match ClientBuilder::native()
            .capabilities(caps.clone())
            .connect("http://127.0.0.1:4444")
            .await
        {
            Ok(c) => {
                client = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let mut ui = Ui {
        c: client.expect("tauri-driver accepts a session"),
        step: 0,
    };
    ui.el("[data-testid=add-profile]").await;
    ui.shot("first-start").await;

    // Both accounts of one phone number, registered through the UI.
    let phone = "+8613700137000";
    ui.register("register", phone, "dana_work", "Work").await;
    s.clock.advance_secs(61); // the number's resend cooldown, on the service's clock
    ui.register("secondary", phone, "dana_home", "Home").await;
    ui.shot("two-profiles").await;

    // Home (in front) asks Bob to be a contact; Bob accepts through the API.
    ui.click("[data-testid=tab-contacts]").await;
    ui.fill("input[name=public_id]", "bob_the_2nd").await;
    ui.click("form.card button.primary").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let requests = s
        .get("/v1/contacts/requests", &bob.token)
        .await
        .expect(200)
        .body;
    let id = requests["incoming"][0]["id"]
        .as_str()
        .expect("Home's request reached Bob")
        .to_string();
    s.post_as(
        &bob,
        &format!("/v1/contacts/requests/{id}/accept"),
        serde_json::json!({}),
    )
    .await
    .expect(200);

    // Work goes in front (Ctrl+1); Bob messages Home, which is not.
    ui.key_chord("1").await;
    ui.wait_text("[data-testid=current-profile]", "Work").await;
    s.post_as(
        &bob,
        "/v1/messages",
        serde_json::json!({"client_id": "00000000-0000-4000-8000-0000000000a1", "to": "dana_home", "body": "lunch at noon?"}),
    )
    .await
    .expect(201);
    ui.wait_text("[data-testid=unread-Home]", "1").await;
    ui.shot("unread-badge").await;
    for _ in 0..100 {
        if recorded.lock().unwrap().contains("Home · ") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let calls = recorded.lock().unwrap().clone();
    assert!(
        calls.contains("string \"Home · Bob") || calls.contains("string \"Home · bob_the_2nd"),
        "one native notification, titled with the profile that got the message: {calls}"
    );
    assert!(calls.contains("lunch at noon?"), "{calls}");
    assert!(
        !calls.contains("string \"Work · "),
        "nothing for the profile that got nothing: {calls}"
    );

    // Clicking the notification (dunst invokes its default action) opens exactly that chat.
    let clicked = Command::new("dunstctl").args(["action", "0"]).status();
    assert!(clicked.is_ok_and(|s| s.success()), "dunstctl action");
    ui.wait_text("[data-testid=current-profile]", "Home").await;
    ui.wait_text("[data-testid=messages]", "lunch at noon?")
        .await;
    ui.shot("click-through").await;

    // A reply from the composer reaches Bob.
    ui.fill("[data-testid=composer]", "yes, see you there")
        .await;
    ui.click("[data-testid=send]").await;
    in_log(&s, &bob.token, "the reply reached Bob", |e| {
        e["data"]["body"] == "yes, see you there"
    })
    .await;
    ui.wait_text("[data-testid=messages]", "yes, see you there")
        .await;
    ui.shot("reply").await;

    // An image in the chat: picked, previewed, sent; Bob gets it with its media id; its
    // thumbnail shows in the chat and opens full size.
    ui.pick_image("[data-testid=chat-image]", &picture(960, 640, 3))
        .await;
    ui.el("[data-testid=chat-previews] img").await;
    ui.click("[data-testid=send]").await;
    in_log(&s, &bob.token, "Bob got a message with the image", |e| {
        e["data"]["media"][0].is_string()
    })
    .await;
    let sent_thumb =
        "[data-testid=messages] .msg:not(.pending) [data-testid=msg-thumb]:not(.loading) img[src]";
    ui.el(sent_thumb).await;
    ui.shot("chat-image").await;
    ui.click("[data-testid=messages] .msg:not(.pending) [data-testid=msg-thumb]")
        .await;
    ui.el("[data-testid=media-full][src]").await;
    ui.shot("image-full-size").await;
    ui.click("[data-testid=media-close]").await;

    // Moments: Home posts one with an image; Bob (a contact) sees it and likes it, which
    // Home is notified of; Bob's own post shows in Home's feed, and Home likes it.
    ui.click("[data-testid=moments-nav]").await;
    ui.shot("moments-empty").await;
    ui.fill("[data-testid=moment-text]", "Harbour at dusk")
        .await;
    ui.pick_image("[data-testid=moment-images]", &picture(800, 800, 9))
        .await;
    ui.el("[data-testid=moment-previews] img").await;
    ui.click("[data-testid=moment-post]").await;
    ui.wait_text("[data-testid=moments-feed]", "Harbour at dusk")
        .await;
    ui.el("[data-testid=moment] [data-testid=moment-thumb]")
        .await;
    ui.shot("moment-posted").await;
    let bobs_feed = s.get("/v1/moments/feed", &bob.token).await.expect(200).body;
    let danas = bobs_feed["posts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["text"] == "Harbour at dusk")
        .expect("Bob, Home's contact, sees the post")
        .clone();
    assert_eq!(danas["media"].as_array().unwrap().len(), 1);
    s.post_as(
        &bob,
        &format!("/v1/moments/{}/likes", danas["id"].as_str().unwrap()),
        serde_json::json!({}),
    )
    .await
    .expect(201);
    for _ in 0..100 {
        if recorded.lock().unwrap().contains("liked your moment") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        recorded.lock().unwrap().contains("liked your moment"),
        "Home is notified of Bob's like"
    );
    let bobs_post = s
        .post_as(
            &bob,
            "/v1/moments",
            serde_json::json!({"text": "Tomatoes are in", "visibility": "contacts", "idempotency_key": "garden-1"}),
        )
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let bobs_card = format!("[data-testid=moment][data-id=\"{bobs_post}\"]");
    ui.wait_text("[data-testid=moments-feed]", "Tomatoes are in")
        .await;
    ui.click(&format!("{bobs_card} [data-testid=moment-like]"))
        .await;
    ui.wait_text(&format!("{bobs_card} [data-testid=moment-likes]"), "Dana")
        .await;
    ui.shot("moment-liked").await;
    let liked = s.get("/v1/moments/feed", &bob.token).await.expect(200).body;
    assert!(
        liked.to_string().contains("dana_home"),
        "Bob's post carries Home's like at the service"
    );

    // The wallet: verify, top up, transfer to Bob, each in the dialog its button opens.
    ui.click("[data-testid=tab-wallet]").await;
    ui.click("[data-testid=open-verify]").await;
    ui.fill("[data-testid=verify] input[name=legal_name]", "张三")
        .await;
    ui.fill(
        "[data-testid=verify] input[name=id_number]",
        TEST_RESIDENT_ID,
    )
    .await;
    ui.click("[data-testid=verify] button[type=submit]").await;
    ui.el("[data-testid=balance-card][data-verified=true]")
        .await;
    ui.wait_text("[data-testid=balance]", "¥0.00").await;
    ui.click("[data-testid=open-top-up]").await;
    ui.fill("[data-testid=top-up] input[name=amount]", "100")
        .await;
    ui.click("[data-testid=top-up] button[type=submit]").await;
    ui.wait_text("[data-testid=balance]", "¥100.00").await;
    ui.click("[data-testid=open-transfer]").await;
    // Money goes to contacts only: Bob is picked from Home's contacts, not typed.
    ui.choose("[data-testid=transfer] select[name=to]", "bob_the_2nd")
        .await;
    ui.fill("[data-testid=transfer] input[name=amount]", "25.50")
        .await;
    ui.click("[data-testid=transfer] button[type=submit]").await;
    ui.wait_text("[data-testid=balance]", "¥74.50").await;
    ui.shot("wallet").await;
    let bobs = s.get("/v1/wallet", &bob.token).await.expect(200).body;
    assert_eq!(bobs["balance"], 2550, "Bob got the transfer");

    // Switching is instant: Ctrl+1 then Ctrl+2, no reconnect (both stay live).
    ui.key_chord("1").await;
    ui.wait_text("[data-testid=current-profile]", "Work").await;
    ui.key_chord("2").await;
    ui.wait_text("[data-testid=current-profile]", "Home").await;
    let states =
        ui.c.find_all(Locator::Css("[data-state=live]"))
            .await
            .unwrap();
    assert_eq!(states.len(), 2, "both profiles live after switching");
    ui.shot("switched").await;

    // The public platform: Bob (verified) runs Acme Coffee with Dana's two accounts as
    // operators; a customer writes; the window answers as Acme Coffee and publishes.
    let carol = s.user(8, "carol_c").await;
    let official = s
        .official(
            &bob,
            "Acme Coffee",
            &[("dana_work", "support"), ("dana_home", "admin")],
            &[&carol],
        )
        .await;
    s.post_as(
        &carol,
        "/v1/messages",
        serde_json::json!({"client_id": "00000000-0000-4000-8000-0000000000c1", "to": official, "body": "open on Sunday?"}),
    )
    .await
    .expect(201);
    ui.click("[data-testid=platform]").await;
    // (WebKit's driver leaves ellipsised text out of an element's text: the row itself says
    // the conversation arrived.)
    ui.el(&format!("[data-testid=customer-{official}-carol_c]"))
        .await;
    ui.shot("platform-inbox").await;
    ui.click(&format!("[data-testid=customer-{official}-carol_c]"))
        .await;
    ui.click("[data-testid=claim]").await;
    ui.wait_text("[data-testid=claimed-by]", "You").await;
    ui.fill("[data-testid=official-composer]", "from noon")
        .await;
    ui.click("[data-testid=official-send]").await;
    ui.wait_text("[data-testid=customer-messages]", "from noon")
        .await;
    ui.shot("platform-answered").await;
    let carols = s
        .get("/v1/sync?since=0&limit=100", &carol.token)
        .await
        .expect(200)
        .body;
    let answer = carols["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["data"]["body"] == "from noon")
        .expect("Carol got the answer");
    assert_eq!(answer["data"]["from_display_name"], "Acme Coffee");
    assert!(
        !carols.to_string().contains("dana_"),
        "Carol never sees the operator"
    );
    ui.click("[data-testid=open-publish]").await;
    ui.fill("[data-testid=article-title]", "Autumn menu").await;
    ui.fill("[data-testid=article-body]", "Chestnut latte.")
        .await;
    ui.click("[data-testid=publish]").await;
    ui.wait_text(
        &format!("[data-testid=publish-result-{official}]"),
        "Acme Coffee",
    )
    .await;
    ui.shot("platform-published").await;
    assert_eq!(
        ui.el(&format!("[data-testid=publish-result-{official}]"))
            .await
            .attr("data-ok")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    ui.click(".dialog button[type=button]").await;

    // The resource view: a row per profile (its database has data, its connection went
    // live) beside the app's memory.
    ui.click("[data-testid=resources]").await;
    for name in ["Work", "Home"] {
        ui.wait_text(&format!("[data-testid=resources-{name}]"), "KiB")
            .await;
        ui.wait_text(&format!("[data-testid=resources-{name}]"), "live")
            .await;
    }
    ui.wait_text("[data-testid=app-memory]", "MiB").await;
    ui.shot("resources").await;

    // Every view, light and dark, each audited by axe-core: no serious or critical violation.
    let mut violations = Vec::new();
    for (nav, name) in [
        // (A profile in front first: the views above leave the profile's tabs.)
        ("[data-testid=profile-Home]", "chats"),
        ("[data-testid=tab-contacts]", "contacts"),
        ("[data-testid=moments-nav]", "moments"),
        ("[data-testid=tab-wallet]", "wallet"),
        ("[data-testid=tab-settings]", "settings"),
        ("[data-testid=inbox]", "inbox"),
        ("[data-testid=platform]", "platform"),
        ("[data-testid=resources]", "resources"),
    ] {
        ui.click(nav).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        for theme in ["light", "dark"] {
            ui.theme(theme).await;
            ui.shot(&format!("view-{name}-{theme}")).await;
            violations.extend(
                ui.audit()
                    .await
                    .into_iter()
                    .map(|v| format!("{name}/{theme}: {v}")),
            );
        }
        ui.theme("light").await;
    }
    assert!(violations.is_empty(), "accessibility: {violations:#?}");
    let _ = ui.text("body").await;
    ui.c.close().await.unwrap();
}
