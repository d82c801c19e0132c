//! One profile's local database: its events, conversations, messages (with a full-text
//! index), outbox and cursor. Every event is applied, and the cursor advanced, in one
//! transaction, and only the event right after the cursor is applied: a crash or a
//! reconnect can neither lose nor repeat one.

use std::path::Path;

use serde::Serialize;
use sqlx::SqlitePool;
use switchboard_protocol::events::{Event, EventBody};
use switchboard_protocol::messaging::Target;

use crate::account::{Payment, PendingPayment};
use crate::error::{CoreError, Result};
use crate::ids::{ConversationId, PublicId};
use crate::vault::DatabaseKey;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/profile");

/// What applying an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Applied; the cursor is now this event's sequence.
    New,
    /// Already applied before (a replay after a reconnect).
    Duplicate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Conversation {
    pub id: ConversationId,
    pub kind: String,
    pub title: String,
    pub last_message_at: Option<String>,
    pub last_body: Option<String>,
    pub unread: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct StoredMessage {
    pub id: String,
    pub conversation_id: ConversationId,
    pub client_id: String,
    pub sender: PublicId,
    pub sender_name: String,
    pub body: String,
    /// Media ids of its images (`Engine::media` shows them).
    #[sqlx(json)]
    pub media: Vec<String>,
    pub sent_at: String,
    pub seq: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct OutboxEntry {
    pub position: i64,
    pub client_id: String,
    pub to_id: ConversationId,
    pub body: String,
    pub created_at: i64,
    /// Local keys of its images, uploaded when it is sent (`Engine::media` shows them).
    #[sqlx(json)]
    pub media: Vec<String>,
}

pub struct ProfileStore {
    pool: SqlitePool,
}

impl ProfileStore {
    /// Opens the profile's database, encrypted under `key` (a plain one is encrypted first).
    pub async fn open(path: &Path, key: &DatabaseKey) -> Result<Self> {
        Ok(Self {
            pool: crate::db::open(path, &MIGRATOR, Some(key)).await?,
        })
    }

    /// For the core's own modules that keep tables of their own in the profile's database.
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub async fn cursor(&self) -> Result<i64> {
        let (seq,): (i64,) = sqlx::query_as("SELECT seq FROM cursor WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(seq)
    }

    /// Applies `event` if it is the one after the cursor. `me` is this profile's public ID
    /// (a message it sent is not unread, and a direct chat is named after the other side).
    pub async fn apply(&self, event: &Event, me: &str) -> Result<Applied> {
        let mut applied = self.apply_all(std::slice::from_ref(event), me).await?;
        Ok(applied.pop().unwrap_or(Applied::Duplicate))
    }

    /// Applies events in order in one transaction (a backlog arrives many frames at a time;
    /// one commit per event would make catching up a week of messages crawl). A gap anywhere
    /// applies none of them: the task resyncs from the cursor.
    ///
    /// Set-wise: the batch is sorted out in memory first, then written with a handful of
    /// multi-row statements whatever its size (each statement is a round trip to SQLite's
    /// worker thread, and six per event were most of a backlog's time).
    pub async fn apply_all(&self, events: &[Event], me: &str) -> Result<Vec<Applied>> {
        let mut tx = self.pool.begin().await?;
        let (mut cursor,): (i64,) = sqlx::query_as("SELECT seq FROM cursor WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        let mut out = Vec::with_capacity(events.len());
        let mut batch = Batch::default();
        for event in events {
            if event.seq <= cursor {
                out.push(Applied::Duplicate);
                continue;
            }
            if event.seq != cursor + 1 {
                return Err(CoreError::Invalid(format!(
                    "event {} arrived while the cursor is at {cursor}: a gap, resync from the cursor",
                    event.seq
                )));
            }
            cursor = event.seq;
            batch.add(event, me)?;
            out.push(Applied::New);
        }
        if batch.events.is_empty() {
            return Ok(out);
        }
        batch.write(&mut tx).await?;
        sqlx::query("UPDATE cursor SET seq = ? WHERE id = 1")
            .bind(cursor)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(out)
    }

    pub async fn conversations(&self) -> Result<Vec<Conversation>> {
        Ok(
            sqlx::query_as("SELECT * FROM conversations ORDER BY last_message_at DESC, id")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn messages(&self, conversation: &ConversationId) -> Result<Vec<StoredMessage>> {
        Ok(
            sqlx::query_as("SELECT * FROM messages WHERE conversation_id = ? ORDER BY seq")
                .bind(conversation.as_str())
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Full-text search of message bodies (SQLite FTS5 query syntax, terms quoted).
    pub async fn search(&self, text: &str) -> Result<Vec<StoredMessage>> {
        let query: String = text
            .split_whitespace()
            .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" ");
        if query.is_empty() {
            return Ok(Vec::new());
        }
        Ok(sqlx::query_as(
            "SELECT m.* FROM messages_fts f JOIN messages m ON m.rowid = f.rowid \
             WHERE messages_fts MATCH ? ORDER BY m.seq",
        )
        .bind(query)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn unread_total(&self) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COALESCE(SUM(unread), 0) FROM conversations")
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    pub async fn mark_read(&self, conversation: &ConversationId) -> Result<()> {
        sqlx::query("UPDATE conversations SET unread = 0 WHERE id = ?")
            .bind(conversation.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Queues a message; it is sent (once, in order) by the profile's task.
    pub async fn enqueue(
        &self,
        client_id: &str,
        to: &ConversationId,
        body: &str,
        media: &[String],
        now: i64,
    ) -> Result<OutboxEntry> {
        Ok(sqlx::query_as(
            "INSERT INTO outbox (client_id, to_id, body, created_at, media) \
             VALUES (?, ?, ?, ?, ?) RETURNING *",
        )
        .bind(client_id)
        .bind(to.as_str())
        .bind(body)
        .bind(now)
        .bind(sqlx::types::Json(media))
        .fetch_one(&self.pool)
        .await?)
    }

    pub async fn outbox(&self) -> Result<Vec<OutboxEntry>> {
        Ok(sqlx::query_as("SELECT * FROM outbox ORDER BY position")
            .fetch_all(&self.pool)
            .await?)
    }

    /// Drops a message the service refused for good (e.g. not a contact).
    pub async fn drop_from_outbox(&self, client_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM outbox WHERE client_id = ?")
            .bind(client_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Keeps a payment before it is first sent, under the idempotency key it is sent with.
    pub async fn add_pending_payment(
        &self,
        key: &str,
        payment: &Payment,
        now: i64,
    ) -> Result<PendingPayment> {
        let json = serde_json::to_string(payment)
            .map_err(|e| CoreError::Invalid(format!("a payment would not serialise: {e}")))?;
        sqlx::query(
            "INSERT INTO pending_payments (idempotency_key, payment, created_at) VALUES (?, ?, ?)",
        )
        .bind(key)
        .bind(json)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(PendingPayment {
            id: key.to_string(),
            payment: payment.clone(),
            created_at: now,
            last_error: String::new(),
        })
    }

    /// Payments still waiting for the service's answer, oldest first.
    pub async fn pending_payments(&self) -> Result<Vec<PendingPayment>> {
        let rows: Vec<(String, String, i64, String)> = sqlx::query_as(
            "SELECT idempotency_key, payment, created_at, last_error FROM pending_payments \
             ORDER BY created_at, rowid",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, json, created_at, last_error)| {
                // A row this version cannot read is an error, never a payment silently lost.
                let payment = serde_json::from_str(&json).map_err(|e| {
                    CoreError::Storage(format!("pending payment {id} cannot be read: {e}"))
                })?;
                Ok(PendingPayment {
                    id,
                    payment,
                    created_at,
                    last_error,
                })
            })
            .collect()
    }

    /// Why the last attempt at a pending payment got no answer.
    pub async fn note_payment_error(&self, key: &str, error: &str) -> Result<()> {
        sqlx::query("UPDATE pending_payments SET last_error = ? WHERE idempotency_key = ?")
            .bind(error)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The service answered (or the user gave up): the payment is no longer pending. False if
    /// there was no such payment.
    pub async fn settle_payment(&self, key: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM pending_payments WHERE idempotency_key = ?")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

pub(crate) fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// What a batch of new events writes, gathered before any statement runs.
#[derive(Default)]
struct Batch<'a> {
    /// (seq, kind, at, data); an unknown kind is kept under its own name, with its data, so
    /// that a later version could still read it.
    events: Vec<(i64, &'a str, String, String)>,
    messages: Vec<StoredMessage>,
    /// Conversation id → its row after the batch, in first-seen order. The title is the
    /// first message's (as inserting one at a time would leave it); the last message and the
    /// unread count are the batch's last and sum.
    conversations: Vec<Conversation>,
    /// Client ids of our own messages that came back through the log: they left the outbox.
    sent: Vec<String>,
    /// Official accounts' changes, written one by one in log order (they are few beside
    /// messages, and each may depend on the one before).
    official: Vec<crate::official::OfficialOp<'a>>,
    /// Posts, likes and comments, in log order (a like may follow its post in one batch).
    moments: Vec<crate::moments::MomentOp<'a>>,
}

/// SQLite allows 32,766 bound values per statement; rows are written in chunks well below.
const ROWS_PER_STATEMENT: usize = 400;

impl<'a> Batch<'a> {
    fn add(&mut self, event: &'a Event, me: &str) -> Result<()> {
        let data = event.body.data_json().map_err(|e| {
            CoreError::Invalid(format!("event {} would not serialise: {e}", event.seq))
        })?;
        self.events
            .push((event.seq, event.body.name(), rfc3339(event.at), data));
        if let Some(op) = crate::official::OfficialOp::of(&event.body, event.seq, me) {
            self.official.push(op);
        }
        if let Some(op) = crate::moments::MomentOp::of(&event.body) {
            self.moments.push(op);
        }
        // An article from an official account the account follows: a message in that
        // account's chat, its title first.
        if let EventBody::ArticleNew(a) = &event.body {
            self.push(
                ConversationId::from_service(a.official_id.clone()),
                a.official_name.clone(),
                false,
                StoredMessage {
                    id: a.id.clone(),
                    conversation_id: ConversationId::from_service(a.official_id.clone()),
                    client_id: a.id.clone(),
                    sender: PublicId::from_service(a.official_id.clone()),
                    sender_name: a.official_name.clone(),
                    body: format!("{}\n\n{}", a.title, a.body),
                    media: Vec::new(),
                    sent_at: rfc3339(a.published_at),
                    seq: event.seq,
                },
            );
            return Ok(());
        }
        let EventBody::MessageNew(m) = &event.body else {
            return Ok(());
        };
        let mine = m.from.eq_ignore_ascii_case(me);
        let (conversation, title) = match m.target() {
            // Written to an official account: its chat, under its id until an answer or an
            // article names it.
            Target::Group(id) | Target::Official(id) => {
                (ConversationId::from_service(id.clone()), id)
            }
            Target::User(to) if mine => (ConversationId::from_service(to.clone()), to),
            Target::User(_) => (
                ConversationId::from_service(m.from.clone()),
                m.from_display_name.clone(),
            ),
        };
        if mine {
            self.sent.push(m.client_id.clone());
        }
        self.push(
            conversation.clone(),
            title,
            mine,
            StoredMessage {
                id: m.id.clone(),
                conversation_id: conversation,
                client_id: m.client_id.clone(),
                sender: PublicId::from_service(m.from.clone()),
                sender_name: m.from_display_name.clone(),
                body: m.body.clone(),
                media: m.media.clone(),
                sent_at: rfc3339(m.sent_at),
                seq: event.seq,
            },
        );
        Ok(())
    }

    /// A message for its conversation, which it creates (titled `title`) or moves on.
    fn push(
        &mut self,
        conversation: ConversationId,
        title: String,
        mine: bool,
        message: StoredMessage,
    ) {
        let group = conversation.is_group();
        match self.conversations.iter_mut().find(|c| c.id == conversation) {
            Some(c) => {
                c.last_message_at = Some(message.sent_at.clone());
                c.last_body = Some(message.body.clone());
                c.unread += i64::from(!mine);
            }
            None => self.conversations.push(Conversation {
                id: conversation,
                kind: if group { "group" } else { "direct" }.into(),
                title,
                last_message_at: Some(message.sent_at.clone()),
                last_body: Some(message.body.clone()),
                unread: i64::from(!mine),
            }),
        }
        self.messages.push(message);
    }

    async fn write(&self, tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>) -> Result<()> {
        insert_rows(
            tx,
            "INSERT INTO events (seq, kind, at, data) ",
            &self.events,
            "",
            |mut row, (seq, kind, at, data)| {
                row.push_bind(*seq)
                    .push_bind(*kind)
                    .push_bind(at)
                    .push_bind(data);
            },
        )
        .await?;
        // Conversations before their messages (the foreign key).
        insert_rows(
            tx,
            "INSERT INTO conversations (id, kind, title, last_message_at, last_body, unread) ",
            &self.conversations,
            // A chat titled by its id (one the account wrote to an official account before
            // it answered or published) takes the name the next message brings.
            " ON CONFLICT (id) DO UPDATE SET last_message_at = excluded.last_message_at, \
             last_body = excluded.last_body, unread = unread + excluded.unread, \
             title = CASE WHEN conversations.title = conversations.id THEN excluded.title \
             ELSE conversations.title END",
            |mut row, c| {
                row.push_bind(c.id.as_str())
                    .push_bind(&c.kind)
                    .push_bind(&c.title)
                    .push_bind(&c.last_message_at)
                    .push_bind(&c.last_body)
                    .push_bind(c.unread);
            },
        )
        .await?;
        insert_rows(
            tx,
            "INSERT INTO messages (id, conversation_id, client_id, sender, sender_name, body, \
             sent_at, seq, media) ",
            &self.messages,
            " ON CONFLICT (id) DO NOTHING",
            |mut row, m| {
                row.push_bind(&m.id)
                    .push_bind(m.conversation_id.as_str())
                    .push_bind(&m.client_id)
                    .push_bind(&m.sender)
                    .push_bind(&m.sender_name)
                    .push_bind(&m.body)
                    .push_bind(&m.sent_at)
                    .push_bind(m.seq)
                    .push_bind(sqlx::types::Json(&m.media));
            },
        )
        .await?;
        for chunk in self.sent.chunks(ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::new("DELETE FROM outbox WHERE client_id IN (");
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(id);
            }
            q.push(")");
            q.build().execute(&mut **tx).await?;
        }
        for op in &self.official {
            op.write(tx).await?;
        }
        for op in &self.moments {
            op.write(tx).await?;
        }
        Ok(())
    }
}

/// `head VALUES (…), (…) tail` for every row, in statements of at most `ROWS_PER_STATEMENT`.
async fn insert_rows<'a, T>(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    head: &str,
    rows: &'a [T],
    tail: &str,
    bind: impl Fn(sqlx::query_builder::Separated<'_, sqlx::Sqlite, &'static str>, &'a T),
) -> Result<()> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::new(head);
        q.push_values(chunk, &bind);
        q.push(tail);
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(s: &str) -> ConversationId {
        ConversationId::parse(s).expect("the tests' ids are well formed")
    }
    use switchboard_protocol::messaging::Message;

    fn message_event(seq: i64, from: &str, to: &str, body: &str) -> Event {
        Event {
            seq,
            at: time::OffsetDateTime::UNIX_EPOCH,
            body: EventBody::MessageNew(Message {
                id: format!("m_{seq}"),
                client_id: format!("c{seq}"),
                from: from.into(),
                from_display_name: from.into(),
                to: to.into(),
                body: body.into(),
                media: vec![],
                sent_at: time::macros::datetime!(2026-11-21 10:00 UTC),
            }),
        }
    }

    fn sender_named(mut event: Event, name: &str) -> Event {
        if let EventBody::MessageNew(m) = &mut event.body {
            m.from_display_name = name.into();
        }
        event
    }

    /// A pending payment outlives the database being closed (the app quitting), keeps its
    /// key, and one this version cannot read is an error rather than a payment forgotten.
    #[tokio::test]
    async fn pending_payments_keep_their_key_across_a_reopen() {
        use crate::account::Payment;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.db");
        let key = DatabaseKey::generate().unwrap();
        let s = ProfileStore::open(&path, &key).await.unwrap();
        let rent = Payment::Transfer {
            to: PublicId::parse("bob").unwrap(),
            amount: 2_500,
            note: "rent".into(),
        };
        s.add_pending_payment("key-1", &rent, 100).await.unwrap();
        s.add_pending_payment("key-2", &Payment::TopUp { amount: 1 }, 101)
            .await
            .unwrap();
        s.note_payment_error("key-1", "the stream ended")
            .await
            .unwrap();
        s.close().await;

        let s = ProfileStore::open(&path, &key).await.unwrap();
        let pending = s.pending_payments().await.unwrap();
        let kept: Vec<(&str, &Payment, &str)> = pending
            .iter()
            .map(|p| (p.id.as_str(), &p.payment, p.last_error.as_str()))
            .collect();
        assert_eq!(
            kept,
            [
                ("key-1", &rent, "the stream ended"),
                ("key-2", &Payment::TopUp { amount: 1 }, "")
            ],
            "oldest first, each with the key it was first sent with"
        );
        assert!(s.settle_payment("key-2").await.unwrap());
        assert!(!s.settle_payment("key-2").await.unwrap(), "settled once");

        sqlx::query("UPDATE pending_payments SET payment = '{\"kind\":\"barter\"}'")
            .execute(&s.pool)
            .await
            .unwrap();
        let err = s.pending_payments().await.unwrap_err();
        assert_eq!(err.code(), "storage", "{err}");
        assert!(
            err.to_string().contains("key-1"),
            "names the payment: {err}"
        );
        s.close().await;
        // Closed before the process ends: a SQLCipher connection a worker thread is still
        // closing while the process exits can crash it (sqlcipher_free after teardown).
        s.close().await;
    }

    #[tokio::test]
    async fn events_apply_once_in_order_and_build_conversations() {
        let dir = tempfile::tempdir().unwrap();
        let s = ProfileStore::open(
            &dir.path().join("profile.db"),
            &DatabaseKey::generate().unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(
            s.apply(&message_event(1, "bob", "alice", "hi alice"), "alice")
                .await
                .unwrap(),
            Applied::New
        );
        assert_eq!(
            s.apply(&message_event(1, "bob", "alice", "hi alice"), "alice")
                .await
                .unwrap(),
            Applied::Duplicate
        );
        assert!(
            s.apply(&message_event(3, "bob", "alice", "gap"), "alice")
                .await
                .is_err(),
            "a gap is refused"
        );
        s.apply(&message_event(2, "alice", "bob", "hello bob"), "alice")
            .await
            .unwrap();
        assert_eq!(s.cursor().await.unwrap(), 2);
        let convs = s.conversations().await.unwrap();
        assert_eq!(convs.len(), 1, "both directions are one conversation");
        assert_eq!(
            (convs[0].id.as_str(), convs[0].unread),
            ("bob", 1),
            "only the received one is unread"
        );
        assert_eq!(s.messages(&conv("bob")).await.unwrap().len(), 2);
        assert_eq!(s.search("alice").await.unwrap().len(), 1);
        assert_eq!(
            s.search("\"; DROP").await.unwrap().len(),
            0,
            "search input is quoted, not parsed"
        );
        s.close().await;
    }

    #[tokio::test]
    async fn a_batch_applies_in_one_go_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let s = ProfileStore::open(
            &dir.path().join("profile.db"),
            &DatabaseKey::generate().unwrap(),
        )
        .await
        .unwrap();
        let batch: Vec<Event> = (1..=3)
            .map(|i| message_event(i, "bob", "alice", &format!("m{i}")))
            .collect();
        assert_eq!(
            s.apply_all(&batch, "alice").await.unwrap(),
            [Applied::New, Applied::New, Applied::New]
        );
        // A replayed event, a new one, then a gap: nothing of this batch is kept.
        let bad = [
            message_event(3, "bob", "alice", "m3"),
            message_event(4, "bob", "alice", "m4"),
            message_event(6, "bob", "alice", "m6"),
        ];
        assert!(s.apply_all(&bad, "alice").await.is_err());
        assert_eq!(
            s.cursor().await.unwrap(),
            3,
            "the gap undid the whole batch"
        );
        assert_eq!(s.messages(&conv("bob")).await.unwrap().len(), 3);
        assert_eq!(s.unread_total().await.unwrap(), 3);
        s.close().await;
    }

    #[tokio::test]
    async fn a_batch_ends_exactly_where_applying_one_event_at_a_time_ends() {
        let dir = tempfile::tempdir().unwrap();
        let one = ProfileStore::open(
            &dir.path().join("one.db"),
            &DatabaseKey::generate().unwrap(),
        )
        .await
        .unwrap();
        let many = ProfileStore::open(
            &dir.path().join("many.db"),
            &DatabaseKey::generate().unwrap(),
        )
        .await
        .unwrap();
        for s in [&one, &many] {
            s.enqueue("c2", &conv("bob"), "mine", &[], 0).await.unwrap();
            s.enqueue("c9", &conv("carol"), "still queued", &[], 0)
                .await
                .unwrap();
        }
        let events = vec![
            sender_named(message_event(1, "bob", "alice", "from bob"), "Bob Smith"),
            message_event(2, "alice", "bob", "mine"),
            message_event(3, "carol", "g_team", "to the group"),
            sender_named(message_event(4, "bob", "alice", "bob again"), "Bobby"),
            message_event(5, "dave", "alice", "from dave"),
        ];
        for e in &events {
            one.apply(e, "alice").await.unwrap();
        }
        // In two batches that overlap (a replay after a reconnect): the overlap is skipped.
        let first = many.apply_all(&events[..3], "alice").await.unwrap();
        assert_eq!(first, [Applied::New, Applied::New, Applied::New]);
        let second = many.apply_all(&events[1..], "alice").await.unwrap();
        assert_eq!(
            second,
            [
                Applied::Duplicate,
                Applied::Duplicate,
                Applied::New,
                Applied::New
            ]
        );

        assert_eq!(many.cursor().await.unwrap(), 5);
        let convs = many.conversations().await.unwrap();
        assert_eq!(convs, one.conversations().await.unwrap());
        let bob = convs.iter().find(|c| c.id == "bob").unwrap();
        assert_eq!(
            (bob.title.as_str(), bob.last_body.as_deref(), bob.unread),
            ("Bob Smith", Some("bob again"), 2),
            "named by the first message, showing the last, counting only received ones"
        );
        assert_eq!(convs.len(), 3);
        for c in ["bob", "g_team", "dave"] {
            assert_eq!(
                many.messages(&conv(c)).await.unwrap(),
                one.messages(&conv(c)).await.unwrap()
            );
        }
        let left: Vec<_> = many
            .outbox()
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.client_id)
            .collect();
        assert_eq!(
            left,
            ["c9"],
            "the sent one left the outbox, the other stayed"
        );
        assert_eq!(many.search("again").await.unwrap().len(), 1);
        one.close().await;
        many.close().await;
    }

    #[tokio::test]
    async fn a_sent_message_leaves_the_outbox_when_it_comes_back_through_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let s = ProfileStore::open(
            &dir.path().join("profile.db"),
            &DatabaseKey::generate().unwrap(),
        )
        .await
        .unwrap();
        s.enqueue("c1", &conv("bob"), "queued", &[], 0)
            .await
            .unwrap();
        s.enqueue("c9", &conv("bob"), "later", &[], 0)
            .await
            .unwrap();
        assert_eq!(s.outbox().await.unwrap().len(), 2);
        s.apply(&message_event(1, "alice", "bob", "queued"), "alice")
            .await
            .unwrap();
        let left = s.outbox().await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].client_id, "c9");
        s.close().await;
    }

    #[tokio::test]
    async fn a_kind_this_version_does_not_know_is_kept_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let s = ProfileStore::open(
            &dir.path().join("profile.db"),
            &DatabaseKey::generate().unwrap(),
        )
        .await
        .unwrap();
        let sticker: Event = serde_json::from_str(
            r#"{"seq":1,"kind":"sticker.new","at":"2026-11-21T10:00:00Z","data":{"x":1}}"#,
        )
        .unwrap();
        assert_eq!(s.apply(&sticker, "alice").await.unwrap(), Applied::New);
        assert_eq!(
            s.cursor().await.unwrap(),
            1,
            "the log moves on past it: no gap"
        );
        let (kind, data): (String, String) =
            sqlx::query_as("SELECT kind, data FROM events WHERE seq = 1")
                .fetch_one(&s.pool)
                .await
                .unwrap();
        assert_eq!(
            (kind.as_str(), data.as_str()),
            ("sticker.new", r#"{"x":1}"#),
            "kept under its own name, whole, for a later version to read"
        );
        assert!(s.conversations().await.unwrap().is_empty());
        s.close().await;
    }
}
