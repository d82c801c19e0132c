//! Media and Moments in SQL (see `store/moments.rs` for what each step promises).

use async_trait::async_trait;

use super::{SqlStore, append, duplicate, in_tx};
use crate::Millis;
use crate::*;

/// A post's columns with its author's public ID and name.
macro_rules! moment_sql {
    ($join:literal, $where:literal) => {
        concat!(
            "SELECT m.id, m.author_id, a.public_id AS author_public_id, \
             a.display_name AS author_display_name, m.idempotency_key, m.text, m.media, \
             m.created_at FROM ",
            $join,
            " JOIN accounts a ON a.id = m.author_id ",
            $where
        )
    };
}

#[async_trait]
impl MomentStore for SqlStore {
    async fn media_insert(&self, row: &MediaRow) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO media (id, owner_id, sha256, mime, size, width, height, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&row.id)
        .bind(&row.owner_id)
        .bind(&row.sha256)
        .bind(&row.mime)
        .bind(row.size)
        .bind(row.width)
        .bind(row.height)
        .bind(row.created_at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn media_by_id(&self, id: &str) -> StoreResult<Option<MediaRow>> {
        Ok(sqlx::query_as(
            "SELECT id, owner_id, sha256, mime, size, width, height, created_at \
             FROM media WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await?)
    }

    async fn media_visible_to(&self, media_id: &str, account: &str) -> StoreResult<bool> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM media WHERE id = $1 AND (owner_id = $2 OR EXISTS ( \
             SELECT 1 FROM moment_media u JOIN moments m ON m.id = u.moment_id \
             JOIN moment_audience v ON v.moment_id = m.id AND v.account_id = $2 \
             WHERE u.media_id = $1 AND m.deleted_at IS NULL) OR EXISTS ( \
             SELECT 1 FROM media_grants g WHERE g.media_id = $1 AND g.account_id = $2))",
        )
        .bind(media_id)
        .bind(account)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.is_some())
    }

    async fn moment_post(
        &self,
        row: &MomentRow,
        audience: &[String],
        events: &[NewEvent],
    ) -> StoreResult<Vec<EventRow>> {
        let media: Vec<String> = serde_json::from_str(&row.media)
            .map_err(|e| StoreError::Encoding(format!("a post's media list: {e}")))?;
        in_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO moments (id, author_id, idempotency_key, text, media, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&row.id)
            .bind(&row.author_id)
            .bind(&row.idempotency_key)
            .bind(&row.text)
            .bind(&row.media)
            .bind(row.created_at)
            .execute(&mut *tx)
            .await
            .map_err(duplicate)?;
            for chunk in audience.chunks(1_000) {
                let mut q = sqlx::QueryBuilder::<super::Db>::new(
                    "INSERT INTO moment_audience (account_id, created_at, moment_id, author_id) ",
                );
                q.push_values(chunk, |mut r, a| {
                    r.push_bind(a)
                        .push_bind(row.created_at)
                        .push_bind(&row.id)
                        .push_bind(&row.author_id);
                });
                q.push(" ON CONFLICT DO NOTHING");
                q.build().execute(&mut *tx).await?;
            }
            for m in &media {
                sqlx::query(
                    "INSERT INTO moment_media (media_id, moment_id) VALUES ($1, $2) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(m)
                .bind(&row.id)
                .execute(&mut *tx)
                .await?;
            }
            append(&mut tx, events, row.created_at).await
        })
    }

    async fn moment_by_key(&self, author_id: &str, key: &str) -> StoreResult<Option<MomentRow>> {
        Ok(sqlx::query_as(moment_sql!(
            "moments m",
            "WHERE m.author_id = $1 AND m.idempotency_key = $2"
        ))
        .bind(author_id)
        .bind(key)
        .fetch_optional(&self.read)
        .await?)
    }

    async fn moment_for(&self, id: &str, viewer: &str) -> StoreResult<Option<MomentRow>> {
        Ok(sqlx::query_as(moment_sql!(
            "moment_audience v JOIN moments m ON m.id = v.moment_id",
            "WHERE v.moment_id = $1 AND v.account_id = $2 AND m.deleted_at IS NULL"
        ))
        .bind(id)
        .bind(viewer)
        .fetch_optional(&self.read)
        .await?)
    }

    async fn moments_for(
        &self,
        viewer: &str,
        author_id: Option<&str>,
        before: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<MomentRow>> {
        // `before` is a post the viewer was shown; its time and id are where the page starts.
        Ok(sqlx::query_as(moment_sql!(
            "moment_audience v JOIN moments m ON m.id = v.moment_id",
            "WHERE v.account_id = $1 AND m.deleted_at IS NULL \
             AND ($2 = '' OR v.author_id = $2) \
             AND ($3 = '' OR (v.created_at, v.moment_id) < \
                 (SELECT b.created_at, b.id FROM moments b WHERE b.id = $3)) \
             ORDER BY v.created_at DESC, v.moment_id DESC LIMIT $4"
        ))
        .bind(viewer)
        .bind(author_id.unwrap_or(""))
        .bind(before.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    async fn reactions(&self, moment_ids: &[String]) -> StoreResult<Vec<ReactionRow>> {
        if moment_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = sqlx::QueryBuilder::<super::Db>::new(
            "SELECT r.moment_id, r.id, r.author_id, a.public_id AS author_public_id, \
             a.display_name AS author_display_name, r.text, r.reply_to, r.at FROM ( \
             SELECT moment_id, '' AS id, author_id, '' AS text, NULL AS reply_to, at \
             FROM moment_likes UNION ALL \
             SELECT moment_id, id, author_id, text, reply_to, at FROM moment_comments \
             ) r JOIN accounts a ON a.id = r.author_id WHERE r.moment_id IN (",
        );
        let mut list = q.separated(", ");
        for id in moment_ids {
            list.push_bind(id);
        }
        q.push(") ORDER BY r.at, r.id");
        Ok(q.build_query_as().fetch_all(&self.read).await?)
    }

    async fn moment_delete(&self, id: &str, author_id: &str, now: Millis) -> StoreResult<bool> {
        in_tx!(self, |tx| {
            let gone = sqlx::query(
                "UPDATE moments SET deleted_at = $3 \
                 WHERE id = $1 AND author_id = $2 AND deleted_at IS NULL",
            )
            .bind(id)
            .bind(author_id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if gone == 0 {
                return Ok(false);
            }
            // Its likes and comments go with it, from every feed.
            for table in [
                "DELETE FROM moment_likes WHERE moment_id = $1",
                "DELETE FROM moment_comments WHERE moment_id = $1",
            ] {
                sqlx::query(table).bind(id).execute(&mut *tx).await?;
            }
            Ok(true)
        })
    }

    async fn moment_react(
        &self,
        moment_id: &str,
        account: &str,
        reaction: &Reaction<'_>,
        at: Millis,
        fanout: ReactionFanout<'_>,
    ) -> StoreResult<Vec<EventRow>> {
        in_tx!(self, |tx| {
            // Locked: a delete that commits first wins, and reactions to one post queue.
            let post: Option<(String,)> = sqlx::query_as(concat!(
                "SELECT m.author_id FROM moments m JOIN moment_audience v \
                 ON v.moment_id = m.id AND v.account_id = $2 \
                 WHERE m.id = $1 AND m.deleted_at IS NULL",
                for_update!()
            ))
            .bind(moment_id)
            .bind(account)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((post_author,)) = post else {
                return Err(StoreError::NoMoment);
            };
            match reaction {
                Reaction::Like => {
                    sqlx::query(
                        "INSERT INTO moment_likes (moment_id, author_id, at) VALUES ($1, $2, $3)",
                    )
                    .bind(moment_id)
                    .bind(account)
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .map_err(duplicate)?;
                }
                Reaction::Comment { id, text, reply_to } => {
                    sqlx::query(
                        "INSERT INTO moment_comments (id, moment_id, author_id, text, reply_to, at) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(id)
                    .bind(moment_id)
                    .bind(account)
                    .bind(text)
                    .bind(reply_to)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            // The thread: the post's author and everyone who liked or commented; of them, those
            // who may see the post and may see this account's reaction (itself, or a contact).
            let readers: Vec<(String,)> = sqlx::query_as(
                "SELECT v.account_id FROM moment_audience v WHERE v.moment_id = $1 \
                 AND (v.account_id = $2 \
                      OR v.account_id IN (SELECT author_id FROM moment_likes WHERE moment_id = $1) \
                      OR v.account_id IN (SELECT author_id FROM moment_comments WHERE moment_id = $1)) \
                 AND (v.account_id = $3 OR EXISTS (SELECT 1 FROM contacts c \
                      WHERE c.account_id = v.account_id AND c.contact_id = $3)) \
                 ORDER BY v.account_id",
            )
            .bind(moment_id)
            .bind(&post_author)
            .bind(account)
            .fetch_all(&mut *tx)
            .await?;
            let readers: Vec<String> = readers.into_iter().map(|(a,)| a).collect();
            let events = fanout(&readers)?;
            append(&mut tx, &events, at).await
        })
    }
}
