//! Images in an S3-compatible bucket (SPEC §1.6, `media.s3_*`), against a real S3 server on
//! loopback: moto's, which `cargo xtask setup` installs and `cargo xtask test` names in
//! `SWITCHBOARD_TEST_S3_SERVER`. The store itself (round trip, absence, concurrent puts of one
//! blob), then the service storing uploads there instead of on its disk.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use switchboard_server::testing::TestServer;
use switchboard_service::blobs::{BlobStore, S3BlobStore};
use switchboard_service::config::{Media, Secret};

/// A running moto server with one bucket; killed on drop.
struct S3 {
    child: Child,
    endpoint: String,
    _home: tempfile::TempDir,
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl S3 {
    async fn start(bucket: &str) -> Self {
        let server = std::env::var_os("SWITCHBOARD_TEST_S3_SERVER")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| {
                    std::path::PathBuf::from(h)
                        .join(".local/share/switchboard-dev/moto-5.2.5/bin/moto_server")
                })
            })
            .filter(|p| p.exists())
            .expect("an S3 server: run `cargo xtask setup` (it installs moto's), or name one in SWITCHBOARD_TEST_S3_SERVER");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Its own home and working directory: nothing of it lands anywhere else.
        let home = tempfile::tempdir().unwrap();
        let child = Command::new(server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(home.path())
            .env("HOME", home.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the S3 server starts");
        let endpoint = format!("http://127.0.0.1:{port}");
        let s3 = Self {
            child,
            endpoint,
            _home: home,
        };
        let http = reqwest::Client::new();
        for _ in 0..300 {
            if http.get(&s3.endpoint).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let made = http
            .put(format!("{}/{bucket}", s3.endpoint))
            .send()
            .await
            .expect("the S3 server answers");
        assert!(made.status().is_success(), "bucket made: {}", made.status());
        s3
    }

    fn media(&self, bucket: &str) -> Media {
        Media {
            s3_bucket: bucket.into(),
            s3_endpoint: self.endpoint.clone(),
            s3_region: "us-east-1".into(),
            s3_access_key_id: "switchboard-test".into(),
            s3_secret_access_key: Secret::new("switchboard-test-secret"),
            s3_allow_http: true,
            ..Media::default()
        }
    }
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_keeps_blobs_by_hash_and_concurrent_puts_of_one_blob_agree() {
    let s3 = S3::start("sb-blobs").await;
    let store = std::sync::Arc::new(S3BlobStore::new(&s3.media("sb-blobs")).unwrap());
    let image = vec![7u8; 300_000];
    let name = sha256(&image);
    assert_eq!(
        store.get(&name).await.unwrap(),
        None,
        "absent: None, not an error"
    );
    store.put(&name, &image).await.unwrap();
    assert_eq!(
        store.get(&name).await.unwrap().as_deref(),
        Some(image.as_slice())
    );
    // Eight nodes storing one image at once, beside eight others: every put succeeds and
    // every blob reads back whole.
    let mut tasks = tokio::task::JoinSet::new();
    let others: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 50_000 + usize::from(i)]).collect();
    for other in &others {
        let (store, image, name, other) =
            (store.clone(), image.clone(), name.clone(), other.clone());
        tasks.spawn(async move {
            store.put(&name, &image).await?;
            store.put(&sha256(&other), &other).await
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap().unwrap();
    }
    assert_eq!(
        store.get(&name).await.unwrap().as_deref(),
        Some(image.as_slice())
    );
    for other in &others {
        assert_eq!(
            store.get(&sha256(other)).await.unwrap().as_deref(),
            Some(other.as_slice())
        );
    }
    // A name that is no SHA-256 never reaches the bucket.
    assert!(store.get("../etc/passwd").await.is_err());
    assert!(store.put("ab", b"x").await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_keeps_uploads_in_the_bucket_when_one_is_configured() {
    let s3 = S3::start("sb-media").await;
    let media = s3.media("sb-media");
    let s = TestServer::start_with(|c| {
        let dir = std::mem::take(&mut c.media.dir);
        c.media = Media { dir, ..media };
    })
    .await;
    let ann = s.user(1, "ann_a1").await;
    let png = {
        let mut out = Vec::new();
        image_png(&mut out);
        out
    };
    let r = s
        .client()
        .post(s.url("/v1/media"))
        .bearer_auth(&ann.token)
        .header("content-type", "image/png")
        .body(png.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let uploaded: serde_json::Value = r.json().await.unwrap();
    // The bytes are in the bucket under their hash (read straight from it) …
    let bucket = S3BlobStore::new(&s3.media("sb-media")).unwrap();
    let sha = uploaded["sha256"].as_str().unwrap();
    assert_eq!(
        bucket.get(sha).await.unwrap().as_deref(),
        Some(png.as_slice())
    );
    // … and the service serves them from there.
    let got = s
        .client()
        .get(s.url(&format!(
            "/v1/media/{}",
            uploaded["media_id"].as_str().unwrap()
        )))
        .bearer_auth(&ann.token)
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().to_vec(), png);
}

/// A 1×1 PNG.
fn image_png(out: &mut Vec<u8>) {
    out.extend_from_slice(&[
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F,
        0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00,
        0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49,
        0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
    ]);
}
