//! Images, cached per profile (SPEC §2.6): inside the profile's own encrypted database, so the
//! cache is part of its sandbox (unreadable without the keyring, erased with the profile).
//! Each image is kept by the SHA-256 of its bytes, with a thumbnail made once when it first
//! arrives; the full bytes stay while the profile's cache has room, least recently used out
//! first, except those of a queued message (they have yet to be uploaded).

use std::io::Cursor;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use switchboard_protocol::moments::{
    MEDIA_MAX_BYTES, MEDIA_MAX_EDGE, MEDIA_MAX_PIXELS, MEDIA_PER_ITEM,
};

use crate::error::{CoreError, Result};
use crate::store::ProfileStore;
use crate::{Engine, ProfileId};

/// The longest edge of a thumbnail, in pixels.
pub const THUMB_EDGE: u32 = 320;
/// What one profile's cache may hold (thumbnails and full images), in bytes.
pub const CACHE_BYTES: i64 = 64 * 1024 * 1024;
/// What decoding one image may allocate: the largest picture allowed as 8-bit RGBA, and room
/// for the decoder's own buffers. (The `image` crate's default is 512 MiB, per image: nine of
/// them in one message would cost a desktop gigabytes.)
const MAX_DECODE_BYTES: u64 = MEDIA_MAX_PIXELS * 4 + 16 * 1024 * 1024;

/// An image to send, as the page read it from a file, a drop or the clipboard.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ImageUpload {
    /// The file's bytes, base64.
    pub data: String,
}

impl ImageUpload {
    pub fn bytes(&self) -> Result<Vec<u8>> {
        data_encoding::BASE64
            .decode(self.data.trim().as_bytes())
            .map_err(|_| CoreError::Invalid("an image's data is not base64".into()))
    }
}

/// An image (or its thumbnail) for the page to show.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct MediaData {
    pub mime: String,
    /// The bytes, base64.
    pub data: String,
    /// Of the full image.
    pub width: u32,
    pub height: u32,
}

/// An image read and judged once: its key, type, size and thumbnail.
pub(crate) struct Prepared {
    pub key: String,
    pub mime: &'static str,
    pub width: u32,
    pub height: u32,
    pub thumb: Vec<u8>,
    pub thumb_mime: &'static str,
    pub full: Vec<u8>,
}

/// Reads an image (JPEG, PNG, GIF or WebP, by its bytes) and makes its thumbnail: JPEG for
/// an opaque picture, PNG where it has transparency. CPU work: call it off the async workers.
pub(crate) fn prepare(full: Vec<u8>) -> Result<Prepared> {
    if full.len() > MEDIA_MAX_BYTES {
        return Err(CoreError::Invalid("an image has at most 10 MiB".into()));
    }
    let not_an_image = || CoreError::Invalid("not an image (JPEG, PNG, GIF or WebP)".into());
    let reader = || {
        image::ImageReader::new(Cursor::new(&full))
            .with_guessed_format()
            .map_err(|_| not_an_image())
    };
    // Judged from the header first: a few KiB of PNG can claim a 60,000 × 60,000 canvas, and
    // nothing of it is decoded then.
    let (w, h) = reader()?.into_dimensions().map_err(|_| not_an_image())?;
    if w > MEDIA_MAX_EDGE || h > MEDIA_MAX_EDGE || u64::from(w) * u64::from(h) > MEDIA_MAX_PIXELS {
        return Err(CoreError::Invalid(format!(
            "an image has at most {} megapixels and {MEDIA_MAX_EDGE} pixels a side ({w} × {h})",
            MEDIA_MAX_PIXELS / 1_000_000
        )));
    }
    let mut reader = reader()?;
    let mime = match reader.format() {
        Some(image::ImageFormat::Jpeg) => "image/jpeg",
        Some(image::ImageFormat::Png) => "image/png",
        Some(image::ImageFormat::Gif) => "image/gif",
        Some(image::ImageFormat::WebP) => "image/webp",
        _ => return Err(not_an_image()),
    };
    // And the decoder held to it, whatever the header said.
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MEDIA_MAX_EDGE);
    limits.max_image_height = Some(MEDIA_MAX_EDGE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let picture = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => CoreError::Invalid(format!(
            "an image has at most {} megapixels and {MEDIA_MAX_EDGE} pixels a side",
            MEDIA_MAX_PIXELS / 1_000_000
        )),
        _ => not_an_image(),
    })?;
    let (width, height) = (picture.width(), picture.height());
    let small = picture.thumbnail(THUMB_EDGE, THUMB_EDGE);
    let mut thumb = Vec::new();
    let thumb_mime = if small.color().has_alpha() {
        small
            .write_to(&mut Cursor::new(&mut thumb), image::ImageFormat::Png)
            .map_err(|e| CoreError::Storage(format!("making a thumbnail: {e}")))?;
        "image/png"
    } else {
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut thumb, 80)
            .encode_image(&small.to_rgb8())
            .map_err(|e| CoreError::Storage(format!("making a thumbnail: {e}")))?;
        "image/jpeg"
    };
    Ok(Prepared {
        key: data_encoding::HEXLOWER.encode(&Sha256::digest(&full)),
        mime,
        width,
        height,
        thumb,
        thumb_mime,
        full,
    })
}

/// [`prepare`] on the blocking pool.
pub(crate) async fn prepare_off_thread(full: Vec<u8>) -> Result<Prepared> {
    tokio::task::spawn_blocking(move || prepare(full))
        .await
        .map_err(|e| CoreError::Storage(format!("making a thumbnail: {e}")))?
}

/// Whether `key` is a local key (a SHA-256) rather than a service's media id.
fn is_local_key(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit())
}

impl ProfileStore {
    /// Keeps an image (known under `media_id` at the service, if it has been uploaded), then
    /// trims the cache to `cap` bytes.
    pub(crate) async fn cache_put(
        &self,
        p: &Prepared,
        media_id: Option<&str>,
        cap: i64,
    ) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO media_cache (key, mime, width, height, thumb, thumb_mime, full, used) \
             VALUES (?, ?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(used), 0) + 1 FROM media_cache)) \
             ON CONFLICT (key) DO UPDATE SET \
             full = COALESCE(media_cache.full, excluded.full), used = excluded.used",
        )
        .bind(&p.key)
        .bind(p.mime)
        .bind(i64::from(p.width))
        .bind(i64::from(p.height))
        .bind(&p.thumb)
        .bind(p.thumb_mime)
        .bind(&p.full)
        .execute(&mut *tx)
        .await?;
        if let Some(id) = media_id {
            link(&mut tx, &p.key, id).await?;
        }
        tx.commit().await?;
        self.cache_trim(cap).await
    }

    /// Notes that the image `key` is `media_id` at the service (it was just uploaded).
    pub(crate) async fn cache_link(&self, key: &str, media_id: &str) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        link(&mut tx, key, media_id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A media id the image `key` has at the service, if it was uploaded.
    pub(crate) async fn uploaded_as(&self, key: &str) -> Result<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT media_id FROM media_ids WHERE key = ? LIMIT 1")
                .bind(key)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|(id,)| id))
    }

    /// The full bytes and type of a cached image, if the cache still has them.
    pub(crate) async fn cache_full(&self, key: &str) -> Result<Option<(String, Vec<u8>)>> {
        let row: Option<(String, Option<Vec<u8>>)> =
            sqlx::query_as("SELECT mime, full FROM media_cache WHERE key = ?")
                .bind(key)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.and_then(|(mime, full)| full.map(|f| (mime, f))))
    }

    /// An image by its local key or media id: its thumbnail, or its full bytes (`None` when
    /// the cache has no such image, or not its full bytes any more).
    pub(crate) async fn cache_get(&self, key: &str, full: bool) -> Result<Option<MediaData>> {
        let column = if full {
            "full, mime"
        } else {
            "thumb, thumb_mime"
        };
        let by = if is_local_key(key) {
            "c.key = ?"
        } else {
            "c.key = (SELECT key FROM media_ids WHERE media_id = ?)"
        };
        /// The bytes asked for (none once evicted), their type, the image's size, its key.
        type Cached = (Option<Vec<u8>>, String, i64, i64, String);
        let row: Option<Cached> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {column}, width, height, c.key FROM media_cache c WHERE {by}"
        )))
        .bind(key)
        .fetch_optional(self.pool())
        .await?;
        let Some((Some(bytes), mime, width, height, found)) = row else {
            return Ok(None);
        };
        sqlx::query(
            "UPDATE media_cache SET used = (SELECT MAX(used) + 1 FROM media_cache) WHERE key = ?",
        )
        .bind(&found)
        .execute(self.pool())
        .await?;
        Ok(Some(MediaData {
            mime,
            data: data_encoding::BASE64.encode(&bytes),
            width: u32::try_from(width).unwrap_or(0),
            height: u32::try_from(height).unwrap_or(0),
        }))
    }

    /// The bytes the cache holds.
    pub async fn cache_size(&self) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COALESCE(SUM(length(thumb) + COALESCE(length(full), 0)), 0) FROM media_cache",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(n)
    }

    /// Frees the least recently used full images, then whole entries, until the cache holds
    /// at most `cap` bytes; what a queued message carries stays.
    pub(crate) async fn cache_trim(&self, cap: i64) -> Result<()> {
        let mut size = self.cache_size().await?;
        if size <= cap {
            return Ok(());
        }
        const QUEUED: &str = "key NOT IN (SELECT j.value FROM outbox o, json_each(o.media) j)";
        let fulls: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT key, length(full) FROM media_cache WHERE full IS NOT NULL AND {QUEUED} \
             ORDER BY used"
        )))
        .fetch_all(self.pool())
        .await?;
        let mut tx = self.pool().begin().await?;
        for (key, bytes) in fulls {
            if size <= cap {
                break;
            }
            sqlx::query("UPDATE media_cache SET full = NULL WHERE key = ?")
                .bind(&key)
                .execute(&mut *tx)
                .await?;
            size -= bytes;
        }
        if size > cap {
            let thumbs: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT key, length(thumb) FROM media_cache WHERE {QUEUED} ORDER BY used"
            )))
            .fetch_all(&mut *tx)
            .await?;
            for (key, bytes) in thumbs {
                if size <= cap {
                    break;
                }
                sqlx::query("DELETE FROM media_cache WHERE key = ?")
                    .bind(&key)
                    .execute(&mut *tx)
                    .await?;
                size -= bytes;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

async fn link(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>, key: &str, id: &str) -> Result<()> {
    sqlx::query("INSERT INTO media_ids (media_id, key) VALUES (?, ?) ON CONFLICT DO NOTHING")
        .bind(id)
        .bind(key)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Reads the images a message or a post is to carry, each judged and thumbnailed.
pub(crate) async fn prepare_all(images: &[ImageUpload]) -> Result<Vec<Prepared>> {
    if images.len() > MEDIA_PER_ITEM {
        return Err(CoreError::Invalid(format!(
            "at most {MEDIA_PER_ITEM} images at a time"
        )));
    }
    let mut out = Vec::with_capacity(images.len());
    for image in images {
        out.push(prepare_off_thread(image.bytes()?).await?);
    }
    Ok(out)
}

impl Engine {
    /// An image of `profile` by its media id (or the local key of one waiting to be sent):
    /// the thumbnail, or the full image. From the profile's cache when it has it, else
    /// fetched once from the service (which shows it only if this account may see it).
    pub async fn media(&self, profile: &ProfileId, key: &str, full: bool) -> Result<MediaData> {
        let rt = self.runtime(profile).await?;
        let key = key.trim();
        if let Some(found) = rt.store.cache_get(key, full).await? {
            return Ok(found);
        }
        if is_local_key(key) || key.is_empty() {
            return Err(CoreError::Invalid("no such image in this profile".into()));
        }
        let id = crate::account::path_segment(key)?;
        let bytes = rt.client.fetch_media(&rt.token, id).await?;
        let prepared = prepare_off_thread(bytes).await?;
        rt.store
            .cache_put(&prepared, Some(id), self.media_cache_bytes())
            .await?;
        rt.store
            .cache_get(key, full)
            .await?
            .ok_or_else(|| CoreError::Storage("an image left the cache as it arrived".into()))
    }

    /// How many bytes each profile's image cache may hold.
    pub fn media_cache_bytes(&self) -> i64 {
        self.media_cache_bytes
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sets how many bytes each profile's image cache may hold (from the next image on).
    pub fn set_media_cache_bytes(&self, bytes: i64) {
        self.media_cache_bytes
            .store(bytes.max(0), std::sync::atomic::Ordering::Relaxed);
    }

    /// The bytes `profile`'s image cache holds.
    pub async fn media_cache_size(&self, profile: &ProfileId) -> Result<i64> {
        self.runtime(profile).await?.store.cache_size().await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn png(w: u32, h: u32, alpha: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let picture = if alpha {
            image::DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
                w,
                h,
                image::Rgba([10, 20, 30, 128]),
            ))
        } else {
            image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
                image::Rgb([(x % 256) as u8, (y % 256) as u8, 99])
            }))
        };
        picture
            .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn a_thumbnail_keeps_the_shape_and_transparency_and_names_the_full_size() {
        let wide = prepare(png(1200, 600, false)).unwrap();
        assert_eq!(
            (wide.width, wide.height, wide.mime),
            (1200, 600, "image/png")
        );
        assert_eq!(wide.thumb_mime, "image/jpeg");
        let t = image::load_from_memory(&wide.thumb).unwrap();
        assert_eq!((t.width(), t.height()), (320, 160));
        let clear = prepare(png(40, 40, true)).unwrap();
        assert_eq!(clear.thumb_mime, "image/png", "transparency is kept");
        assert_eq!(clear.key.len(), 64);
        assert_ne!(clear.key, wide.key);
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn what_is_not_an_image_or_claims_a_huge_canvas_is_refused_plainly() {
        let html = [b"\x89PNG\r\n\x1a\n".as_slice(), b"<html>".as_slice()].concat();
        for bad in [b"hello".to_vec(), html] {
            assert!(matches!(prepare(bad), Err(CoreError::Invalid(_))));
        }
        // PNG headers claiming 60,000 × 60,000 pixels, and 8,000 × 8,000 (each side allowed,
        // 64 megapixels not), their checksums redone, no data behind: refused from the header
        // alone.
        for (w, h) in [(60_000u32, 60_000u32), (8_000, 8_000), (16_384, 2_442)] {
            let mut bomb = png(1, 1, false);
            bomb[16..20].copy_from_slice(&w.to_be_bytes());
            bomb[20..24].copy_from_slice(&h.to_be_bytes());
            let crc = crc32(&bomb[12..29]);
            bomb[29..33].copy_from_slice(&crc.to_be_bytes());
            let refused = prepare(bomb);
            assert!(
                matches!(&refused, Err(CoreError::Invalid(m)) if m.contains("megapixels")),
                "{w} × {h}: {:?}",
                refused.err()
            );
        }
    }

    #[tokio::test]
    async fn the_cache_stays_under_its_size_keeping_thumbnails_and_queued_images() {
        let dir = tempfile::tempdir().unwrap();
        let store = ProfileStore::open(
            &dir.path().join("p.db"),
            &crate::vault::DatabaseKey::generate().unwrap(),
        )
        .await
        .unwrap();
        let images: Vec<Prepared> = (0..6)
            .map(|i| prepare(png(300 + i, 300, false)).unwrap())
            .collect();
        let queued = &images[0];
        store
            .enqueue(
                "c1",
                &crate::ids::ConversationId::from_service("bob_01".to_string()),
                "",
                std::slice::from_ref(&queued.key),
                0,
            )
            .await
            .unwrap();
        let full: i64 = images.iter().map(|p| p.full.len() as i64).sum();
        let thumbs: i64 = images.iter().map(|p| p.thumb.len() as i64).sum();
        // Room for every thumbnail, the queued image and one more full image.
        let cap = thumbs + (queued.full.len() + images[5].full.len()) as i64 + 10;
        assert!(cap < full + thumbs);
        for (i, p) in images.iter().enumerate() {
            store
                .cache_put(p, Some(&format!("med_{i}")), cap)
                .await
                .unwrap();
        }
        assert!(store.cache_size().await.unwrap() <= cap);
        // The queued one (put first, so least recently used) kept its bytes; the newest too.
        assert!(store.cache_full(&queued.key).await.unwrap().is_some());
        assert!(store.cache_get("med_5", true).await.unwrap().is_some());
        assert!(store.cache_get("med_1", true).await.unwrap().is_none());
        // Every thumbnail is still there, by media id and by key.
        for i in 0..6 {
            assert!(
                store
                    .cache_get(&format!("med_{i}"), false)
                    .await
                    .unwrap()
                    .is_some()
            );
        }
        assert!(
            store
                .cache_get(&images[2].key, false)
                .await
                .unwrap()
                .is_some()
        );
        store.close().await;
    }
}
