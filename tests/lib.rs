//! End-to-end tests live in `tests/`; what several of them share is here.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test support: a panic is the failure report

use std::io::Cursor;
use std::time::Duration;

/// Waits (up to 5 s) until `check` holds.
pub async fn wait_until<F: AsyncFn() -> bool>(what: &str, check: F) {
    for _ in 0..500 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

/// Signs in `login` (password `TEST_PASSWORD`) at `server` as a profile named `name`.
pub fn sign_in(server: &str, login: &str, name: &str) -> switchboard_core::SignIn {
    switchboard_core::SignIn {
        server: server.to_string(),
        login: login.into(),
        password: switchboard_server::testing::TEST_PASSWORD.into(),
        name: Some(name.into()),
        color: None,
        totp_code: None,
        allow_insecure_http: false,
    }
}

/// A PNG of `w` × `h` pixels whose colours depend on `seed`: different seeds, different bytes.
pub fn picture(w: u32, h: u32, seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x as u8).wrapping_add(seed),
            (y as u8).wrapping_mul(3),
            seed,
        ])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

/// An image as the app's page hands it over (base64).
pub fn upload(bytes: &[u8]) -> switchboard_core::media::ImageUpload {
    switchboard_core::media::ImageUpload {
        data: data_encoding::BASE64.encode(bytes),
    }
}
