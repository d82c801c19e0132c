//! Where uploaded images live: by the hex SHA-256 of their bytes, behind [`BlobStore`], so one
//! image uploaded twice is stored once and a blob can never change under its name. The
//! default is a directory on disk (one node); several nodes share a bucket instead (see the
//! README's "Running at scale").

use std::path::PathBuf;

use async_trait::async_trait;
use switchboard_protocol::moments::MEDIA_MAX_EDGE;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob store: {0}")]
    Io(String),
}

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `bytes` under `sha256` (their hash, checked by the caller); storing the same
    /// blob again is a no-op.
    async fn put(&self, sha256: &str, bytes: &[u8]) -> Result<(), BlobError>;
    async fn get(&self, sha256: &str) -> Result<Option<Vec<u8>>, BlobError>;
}

/// A directory: `<dir>/<first two hex digits>/<the rest>`, each blob written to a temporary
/// file, synced and renamed into place, so a reader never sees half an image and a crash
/// leaves none.
pub struct DirBlobStore {
    dir: PathBuf,
}

impl DirBlobStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path(&self, sha256: &str) -> Result<PathBuf, BlobError> {
        let (fan, rest) = split(sha256)?;
        Ok(self.dir.join(fan).join(rest))
    }
}

/// A blob's name in either store: its first two hex digits (a directory, or a key prefix that
/// spreads the keys), then the rest. Anything but a SHA-256 is refused before any I/O.
fn split(sha256: &str) -> Result<(&str, &str), BlobError> {
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(BlobError::Io(format!("{sha256:?} is not a SHA-256")));
    }
    Ok(sha256.split_at(2))
}

/// An S3-compatible bucket (`media.s3_bucket`), through the `object_store` crate: what several
/// nodes share. Objects are named like the directory's files (`ab/cdef…`). A put of a blob
/// already there writes the same bytes again under the same name, which S3 makes atomic, so
/// two nodes storing one image at once is no race.
pub struct S3BlobStore {
    bucket: object_store::aws::AmazonS3,
}

impl S3BlobStore {
    pub fn new(c: &crate::config::Media) -> Result<Self, BlobError> {
        use object_store::aws::AmazonS3Builder;
        // The environment first (AWS_* variables, an instance's role); the configuration wins.
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(&c.s3_bucket)
            .with_allow_http(c.s3_allow_http);
        if !c.s3_region.is_empty() {
            b = b.with_region(&c.s3_region);
        }
        if !c.s3_endpoint.is_empty() {
            b = b.with_endpoint(&c.s3_endpoint);
        }
        if !c.s3_access_key_id.is_empty() {
            b = b
                .with_access_key_id(&c.s3_access_key_id)
                .with_secret_access_key(c.s3_secret_access_key.expose());
        }
        let bucket = b
            .build()
            .map_err(|e| BlobError::Io(format!("media.s3_*: {e}")))?;
        Ok(Self { bucket })
    }

    fn key(sha256: &str) -> Result<object_store::path::Path, BlobError> {
        let (fan, rest) = split(sha256)?;
        Ok(object_store::path::Path::from(format!("{fan}/{rest}")))
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, sha256: &str, bytes: &[u8]) -> Result<(), BlobError> {
        use object_store::ObjectStore;
        let key = Self::key(sha256)?;
        self.bucket
            .put(&key, object_store::PutPayload::from(bytes.to_vec()))
            .await
            .map(|_| ())
            .map_err(|e| BlobError::Io(e.to_string()))
    }

    async fn get(&self, sha256: &str) -> Result<Option<Vec<u8>>, BlobError> {
        use object_store::ObjectStore;
        let key = Self::key(sha256)?;
        match self.bucket.get(&key).await {
            Ok(found) => found
                .bytes()
                .await
                .map(|b| Some(b.to_vec()))
                .map_err(|e| BlobError::Io(e.to_string())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(BlobError::Io(e.to_string())),
        }
    }
}

#[async_trait]
impl BlobStore for DirBlobStore {
    async fn put(&self, sha256: &str, bytes: &[u8]) -> Result<(), BlobError> {
        let path = self.path(sha256)?;
        let bytes = bytes.to_vec();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            if path.exists() {
                return Ok(());
            }
            let parent = path.parent().unwrap_or(&path);
            std::fs::create_dir_all(parent)?;
            let mut tmp = tempfile::NamedTempFile::new_in(parent)?;
            std::io::Write::write_all(&mut tmp, &bytes)?;
            tmp.as_file().sync_all()?;
            tmp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        })
        .await
        .map_err(|e| BlobError::Io(e.to_string()))?
        .map_err(|e| BlobError::Io(e.to_string()))
    }

    async fn get(&self, sha256: &str) -> Result<Option<Vec<u8>>, BlobError> {
        match tokio::fs::read(self.path(sha256)?).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BlobError::Io(e.to_string())),
        }
    }
}

/// What an upload is, read from its bytes (never from the `Content-Type` it came with), or why
/// it is no image this service keeps. The whole container is checked, not only its first bytes:
/// a PNG signature in front of an HTML page is refused. Its size is read from the header and
/// held to `max_pixels` and [`MEDIA_MAX_EDGE`] a side: nothing is decoded here, and every
/// device that shows it would decode it.
pub fn sniff(bytes: &[u8], max_pixels: u64) -> Result<(&'static str, u32, u32), String> {
    let kind = imagesize::image_type(bytes).map_err(|_| "not an image".to_string())?;
    let mime = match kind {
        imagesize::ImageType::Png => {
            // Signature, then the IHDR chunk first, and the IEND chunk last.
            if bytes.get(12..16) != Some(b"IHDR") || !bytes.ends_with(b"IEND\xAE\x42\x60\x82") {
                return Err("a PNG header on something that is not a whole PNG".into());
            }
            "image/png"
        }
        imagesize::ImageType::Jpeg => {
            if !bytes.ends_with(&[0xFF, 0xD9]) {
                return Err("a JPEG header on something that is not a whole JPEG".into());
            }
            "image/jpeg"
        }
        imagesize::ImageType::Gif => {
            if bytes.last() != Some(&0x3B) {
                return Err("a GIF header on something that is not a whole GIF".into());
            }
            "image/gif"
        }
        imagesize::ImageType::Webp => {
            let declared = bytes
                .get(4..8)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
            if declared != Some(bytes.len().saturating_sub(8)) {
                return Err("a WebP header on something that is not a whole WebP".into());
            }
            "image/webp"
        }
        _ => return Err("only JPEG, PNG, WebP and GIF images are kept".into()),
    };
    let size =
        imagesize::blob_size(bytes).map_err(|_| "the image's size cannot be read".to_string())?;
    let (w, h) = (
        u32::try_from(size.width).unwrap_or(0),
        u32::try_from(size.height).unwrap_or(0),
    );
    if w == 0 || h == 0 {
        return Err("the image has no pixels".into());
    }
    if w > MEDIA_MAX_EDGE || h > MEDIA_MAX_EDGE || u64::from(w) * u64::from(h) > max_pixels {
        return Err(format!(
            "an image has at most {max_pixels} pixels and {MEDIA_MAX_EDGE} a side; this one \
             declares {w} × {h}"
        ));
    }
    Ok((mime, w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 1×1 PNG.
    pub const PNG: &[u8] = &[
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F,
        0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00,
        0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49,
        0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
    ];

    const ANY: u64 = u64::MAX;

    #[test]
    fn an_image_is_known_by_its_bytes_and_a_borrowed_header_is_not_enough() {
        assert_eq!(sniff(PNG, ANY).unwrap(), ("image/png", 1, 1));
        let mut html = PNG[..8].to_vec();
        html.extend_from_slice(b"<html><script>alert(1)</script></html>");
        assert!(sniff(&html, ANY).is_err());
        assert!(sniff(b"GIF89a<html>", ANY).is_err());
        assert!(sniff(b"plain text", ANY).is_err());
        let mut cut = PNG.to_vec();
        cut.truncate(PNG.len() - 4);
        assert!(sniff(&cut, ANY).is_err(), "a truncated PNG");
    }

    /// The 1×1 PNG above, declaring `w` × `h` instead.
    pub fn declaring(w: u32, h: u32) -> Vec<u8> {
        let mut png = PNG.to_vec();
        png[16..20].copy_from_slice(&w.to_be_bytes());
        png[20..24].copy_from_slice(&h.to_be_bytes());
        png
    }

    #[test]
    fn a_small_file_declaring_a_huge_canvas_is_refused_from_its_header() {
        let limit = 40_000_000;
        assert!(
            sniff(&declaring(60_000, 60_000), limit).is_err(),
            "over a side"
        );
        assert!(
            sniff(&declaring(8_000, 8_000), limit).is_err(),
            "64 megapixels"
        );
        assert!(
            sniff(&declaring(16_384, 2_442), limit).is_err(),
            "just over"
        );
        assert_eq!(
            sniff(&declaring(16_384, 2_441), limit).unwrap(),
            ("image/png", 16_384, 2_441),
            "just under: a panorama is fine"
        );
        assert!(
            sniff(&declaring(11, 10), 100).is_err(),
            "the configured limit"
        );
        assert!(sniff(&declaring(10, 10), 100).is_ok());
    }

    #[tokio::test]
    async fn a_blob_is_stored_once_under_its_hash_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirBlobStore::new(dir.path());
        let sha = "a".repeat(64);
        store.put(&sha, b"one").await.unwrap();
        store.put(&sha, b"one").await.unwrap();
        assert_eq!(store.get(&sha).await.unwrap().as_deref(), Some(&b"one"[..]));
        assert_eq!(store.get(&"b".repeat(64)).await.unwrap(), None);
        assert!(store.get("../../etc/passwd").await.is_err(), "never a path");
    }
}
