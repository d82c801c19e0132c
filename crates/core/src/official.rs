//! The public platform from the operators' side (SPEC §2.6): every official account that any
//! profile operates, live at once, with one customer inbox across all of them.
//!
//! What an operator's account is told through its event log (`official.operator_added` /
//! `_removed`, `official.message`, `official.claimed`) is kept in that profile's own database,
//! inside its sandbox, so the list and the inbox read locally and offline; claiming, answering
//! and publishing go to the service through the profile that operates the official account.

use serde::{Deserialize, Serialize};
use switchboard_protocol::events::EventBody;
use switchboard_protocol::messaging::{Message, SendMessage};
pub use switchboard_protocol::official::OfficialRole;
use switchboard_protocol::official::{
    AddOperator, Article, ArticleList, ConversationClaimed, CustomerConversation, NewArticle,
    NewOfficialAccount, OfficialAccount, OfficialMessage, Operator, Responder,
};

use crate::account::path_segment;
use crate::error::{CoreError, Result};
use crate::store::rfc3339;
use crate::{Engine, ProfileId};

/// A change an event makes to the profile's official accounts, read in a batch and written
/// with it.
pub(crate) enum OfficialOp<'a> {
    /// This account became an operator (or its role changed).
    Joined {
        id: &'a str,
        name: &'a str,
        role: OfficialRole,
    },
    /// This account no longer operates it: what the profile kept of it goes.
    Left {
        id: &'a str,
    },
    Message {
        m: &'a OfficialMessage,
        seq: i64,
    },
    Claimed(&'a ConversationClaimed),
}

impl<'a> OfficialOp<'a> {
    /// The change `body` makes for the account `me` (its public ID), if any.
    pub(crate) fn of(body: &'a EventBody, seq: i64, me: &str) -> Option<Self> {
        Some(match body {
            EventBody::OfficialOperatorAdded(c) if c.public_id.eq_ignore_ascii_case(me) => {
                OfficialOp::Joined {
                    id: &c.official_id,
                    name: &c.official_name,
                    role: c.role,
                }
            }
            EventBody::OfficialOperatorRemoved(c) if c.public_id.eq_ignore_ascii_case(me) => {
                OfficialOp::Left { id: &c.official_id }
            }
            EventBody::OfficialMessage(m) => OfficialOp::Message { m, seq },
            EventBody::OfficialClaimed(c) => OfficialOp::Claimed(c),
            _ => return None,
        })
    }

    pub(crate) async fn write(&self, tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>) -> Result<()> {
        match self {
            OfficialOp::Joined { id, name, role } => {
                sqlx::query(
                    "INSERT INTO official_accounts (id, name, role) VALUES (?, ?, ?) \
                     ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role",
                )
                .bind(id)
                .bind(name)
                .bind(role.as_str())
                .execute(&mut **tx)
                .await?;
            }
            OfficialOp::Left { id } => {
                // Conversations and messages go with it (ON DELETE CASCADE).
                sqlx::query("DELETE FROM official_accounts WHERE id = ?")
                    .bind(id)
                    .execute(&mut **tx)
                    .await?;
            }
            OfficialOp::Message { m, seq } => {
                if !known(tx, &m.official_id).await? {
                    return Ok(());
                }
                let from_customer = m.responder.is_none();
                let customer_name = if from_customer {
                    m.message.from_display_name.clone()
                } else {
                    m.customer.clone()
                };
                sqlx::query(
                    "INSERT INTO official_conversations \
                     (official_id, customer, customer_name, last_body, last_at, unanswered) \
                     VALUES (?, ?, ?, ?, ?, ?) \
                     ON CONFLICT (official_id, customer) DO UPDATE SET \
                     customer_name = CASE WHEN ? THEN excluded.customer_name ELSE customer_name END, \
                     last_body = excluded.last_body, last_at = excluded.last_at, \
                     unanswered = excluded.unanswered",
                )
                .bind(&m.official_id)
                .bind(&m.customer)
                .bind(&customer_name)
                .bind(&m.message.body)
                .bind(rfc3339(m.message.sent_at))
                .bind(m.unanswered)
                .bind(from_customer)
                .execute(&mut **tx)
                .await?;
                let responder = m.responder.as_ref().map(|r| match r {
                    Responder::Operator { display_name, .. } => display_name.clone(),
                    Responder::ApiKey { name, .. } => name.clone(),
                });
                sqlx::query(
                    "INSERT INTO official_messages (id, official_id, customer, sender, \
                     sender_name, responder, body, sent_at, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(&m.message.id)
                .bind(&m.official_id)
                .bind(&m.customer)
                .bind(&m.message.from)
                .bind(&m.message.from_display_name)
                .bind(responder)
                .bind(&m.message.body)
                .bind(rfc3339(m.message.sent_at))
                .bind(seq)
                .execute(&mut **tx)
                .await?;
            }
            OfficialOp::Claimed(c) => {
                sqlx::query(
                    "UPDATE official_conversations SET claimed_by = ?, claim_expires_ms = ? \
                     WHERE official_id = ? AND customer = ?",
                )
                .bind(&c.claimed_by)
                .bind(unix_ms(c.expires_at))
                .bind(&c.official_id)
                .bind(&c.customer)
                .execute(&mut **tx)
                .await?;
            }
        }
        Ok(())
    }
}

async fn known(tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>, id: &str) -> Result<bool> {
    let row: Option<(String,)> = sqlx::query_as("SELECT id FROM official_accounts WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.is_some())
}

fn unix_ms(t: time::OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn now_ms() -> i64 {
    unix_ms(time::OffsetDateTime::now_utc())
}

/// An official account one profile operates, as the public platform view lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct OperatedOfficial {
    pub profile: ProfileId,
    pub id: String,
    pub name: String,
    pub role: OfficialRole,
    /// What the role lets the profile do here: publish articles, and see and answer customers.
    pub publishes: bool,
    pub serves: bool,
    /// Customer conversations waiting for an answer that nobody else holds (a claim by
    /// another operator takes a conversation out of this count).
    pub unanswered: i64,
}

/// Which customer conversations the inbox shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct InboxFilter {
    /// Only this official account's.
    #[serde(default)]
    pub official: Option<String>,
    /// Only those the profile's own account holds.
    #[serde(default)]
    pub mine: bool,
    /// Only those nobody holds.
    #[serde(default)]
    pub unclaimed: bool,
}

/// One customer conversation in the merged inbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct InboxEntry {
    /// The profile that operates the official account (the one to answer from).
    pub profile: ProfileId,
    pub official_id: String,
    pub official_name: String,
    pub customer: String,
    pub customer_name: String,
    pub last_body: String,
    pub last_at: String,
    pub unanswered: i64,
    /// Who holds it, while the claim lasts.
    pub claimed_by: Option<String>,
    /// Whether the profile's own account holds it.
    pub mine: bool,
}

/// A message of a customer conversation, as the operator's profile keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CustomerMessage {
    pub id: String,
    /// The customer's public ID, or the official account's id for an answer.
    pub sender: String,
    pub sender_name: String,
    /// Who answered (an operator's name or a key's), for an answer.
    pub responder: Option<String>,
    pub body: String,
    pub sent_at: String,
}

/// One official account to publish to, through the profile that operates it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PublishTarget {
    pub profile: ProfileId,
    pub official_id: String,
}

/// What publishing did for one official account.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PublishOutcome {
    pub profile: ProfileId,
    pub official_id: String,
    /// The article, when published (or published before under the same key).
    pub article: Option<Article>,
    /// Why not: an error code and its message.
    pub error: Option<(String, String)>,
}

impl Engine {
    /// Every official account that any running profile operates, in sidebar order.
    pub async fn official_accounts(&self) -> Result<Vec<OperatedOfficial>> {
        let now = now_ms();
        let mut out = Vec::new();
        for (profile, me, rt) in self.running_stores().await? {
            let store = &rt.store;
            let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
                "SELECT o.id, o.name, o.role, (SELECT COUNT(*) FROM official_conversations c \
                 WHERE c.official_id = o.id AND c.unanswered > 0 AND (c.claimed_by IS NULL \
                 OR c.claimed_by = ? COLLATE NOCASE OR c.claim_expires_ms <= ?)) \
                 FROM official_accounts o ORDER BY o.name, o.id",
            )
            .bind(&me)
            .bind(now)
            .fetch_all(store.pool())
            .await?;
            for (id, name, role, unanswered) in rows {
                let role = OfficialRole::parse(&role)
                    .ok_or_else(|| CoreError::Storage(format!("unknown role {role:?} for {id}")))?;
                out.push(OperatedOfficial {
                    profile: profile.clone(),
                    id,
                    name,
                    role,
                    publishes: role.publishes(),
                    serves: role.serves(),
                    unanswered,
                });
            }
        }
        Ok(out)
    }

    /// The customer conversations of every official account any running profile serves,
    /// newest first.
    pub async fn customer_inbox(&self, filter: &InboxFilter) -> Result<Vec<InboxEntry>> {
        let now = now_ms();
        let mut out = Vec::new();
        for (profile, me, rt) in self.running_stores().await? {
            let store = &rt.store;
            type Row = (
                String,
                String,
                String,
                String,
                String,
                String,
                String,
                i64,
                Option<String>,
                Option<i64>,
            );
            let rows: Vec<Row> = sqlx::query_as(
                "SELECT c.official_id, o.name, o.role, c.customer, c.customer_name, \
                 c.last_body, c.last_at, c.unanswered, c.claimed_by, c.claim_expires_ms \
                 FROM official_conversations c JOIN official_accounts o ON o.id = c.official_id",
            )
            .fetch_all(store.pool())
            .await?;
            for (
                official_id,
                official_name,
                role,
                customer,
                customer_name,
                last_body,
                last_at,
                unanswered,
                holder,
                until,
            ) in rows
            {
                // Only what the account's role lets it answer (an editor's copy is kept, unshown).
                if !OfficialRole::parse(&role).is_some_and(OfficialRole::serves) {
                    continue;
                }
                let claimed_by = holder.filter(|_| until.is_some_and(|u| u > now));
                let mine = claimed_by
                    .as_deref()
                    .is_some_and(|h| h.eq_ignore_ascii_case(&me));
                let entry = InboxEntry {
                    profile: profile.clone(),
                    official_id,
                    official_name,
                    customer,
                    customer_name,
                    last_body,
                    last_at,
                    unanswered,
                    claimed_by,
                    mine,
                };
                let keep = filter
                    .official
                    .as_deref()
                    .is_none_or(|o| o == entry.official_id)
                    && (!filter.mine || entry.mine)
                    && (!filter.unclaimed || entry.claimed_by.is_none());
                if keep {
                    out.push(entry);
                }
            }
        }
        // RFC 3339 in UTC from one formatter: the text orders as the time does.
        out.sort_by(|a, b| b.last_at.cmp(&a.last_at));
        Ok(out)
    }

    /// One customer conversation's messages, oldest first, as the profile keeps them.
    pub async fn customer_messages(
        &self,
        profile: &ProfileId,
        official_id: &str,
        customer: &str,
    ) -> Result<Vec<CustomerMessage>> {
        let store = &self.runtime(profile).await?.store;
        Ok(sqlx::query_as(
            "SELECT id, sender, sender_name, responder, body, sent_at FROM official_messages \
             WHERE official_id = ? AND customer = ? COLLATE NOCASE ORDER BY seq",
        )
        .bind(official_id)
        .bind(customer)
        .fetch_all(store.pool())
        .await?)
    }

    /// Creates an official account owned by the profile's account (which needs a verified
    /// real name).
    pub async fn create_official(
        &self,
        profile: &ProfileId,
        name: &str,
        description: &str,
    ) -> Result<OfficialAccount> {
        let body = NewOfficialAccount {
            name: name.to_string(),
            description: description.to_string(),
        };
        self.online(profile, |c, t| async move {
            c.post_as(&t, "/v1/official-accounts", &body).await
        })
        .await
    }

    pub async fn add_operator(
        &self,
        profile: &ProfileId,
        official_id: &str,
        public_id: &str,
        role: OfficialRole,
    ) -> Result<Operator> {
        let path = format!(
            "/v1/official-accounts/{}/operators",
            path_segment(official_id)?
        );
        let body = AddOperator {
            public_id: public_id.to_string(),
            role,
        };
        self.online(
            profile,
            |c, t| async move { c.post_as(&t, &path, &body).await },
        )
        .await
    }

    pub async fn follow_official(
        &self,
        profile: &ProfileId,
        official_id: &str,
    ) -> Result<OfficialAccount> {
        let path = format!(
            "/v1/official-accounts/{}/follow",
            path_segment(official_id)?
        );
        self.online(profile, |c, t| async move {
            c.post_as(&t, &path, &serde_json::json!({})).await
        })
        .await
    }

    /// An official account's articles, newest first (a follower's reading).
    pub async fn articles(&self, profile: &ProfileId, official_id: &str) -> Result<Vec<Article>> {
        let path = format!(
            "/v1/official-accounts/{}/articles?limit=50",
            path_segment(official_id)?
        );
        let list: ArticleList = self
            .online(profile, |c, t| async move { c.get_as(&t, &path).await })
            .await?;
        Ok(list.articles)
    }

    /// Claims a customer conversation for the profile's account.
    pub async fn claim_conversation(
        &self,
        profile: &ProfileId,
        official_id: &str,
        customer: &str,
    ) -> Result<CustomerConversation> {
        let path = format!(
            "/v1/official-accounts/{}/conversations/{}/claim",
            path_segment(official_id)?,
            path_segment(customer)?
        );
        self.online(profile, |c, t| async move {
            c.post_as(&t, &path, &serde_json::json!({})).await
        })
        .await
    }

    /// Answers a customer as the official account, from the profile that operates it.
    pub async fn reply_as(
        &self,
        profile: &ProfileId,
        official_id: &str,
        customer: &str,
        body: &str,
    ) -> Result<Message> {
        if body.trim().is_empty() || body.chars().count() > 4096 {
            return Err(CoreError::Invalid(
                "a message has 1 to 4096 characters".into(),
            ));
        }
        let req = SendMessage {
            client_id: uuid::Uuid::new_v4().to_string(),
            to: customer.to_string(),
            body: body.to_string(),
            media: Vec::new(),
            from_official: Some(path_segment(official_id)?.to_string()),
        };
        self.online(profile, |c, t| async move {
            c.post_as(&t, "/v1/messages", &req).await
        })
        .await
    }

    /// Publishes one article to several official accounts at once, each through the profile
    /// that operates it, with one outcome per account. `key` makes it idempotent: publishing
    /// again with the same key (after a lost answer) publishes nothing twice.
    pub async fn publish(
        &self,
        targets: &[PublishTarget],
        title: &str,
        body: &str,
        key: &str,
    ) -> Vec<PublishOutcome> {
        let calls = targets.iter().map(|target| async move {
            let article = NewArticle {
                title: title.to_string(),
                body: body.to_string(),
                idempotency_key: key.to_string(),
            };
            let result = match path_segment(&target.official_id) {
                Ok(id) => {
                    let path = format!("/v1/official-accounts/{id}/articles");
                    self.online(&target.profile, |c, t| async move {
                        c.post_as::<_, Article>(&t, &path, &article).await
                    })
                    .await
                }
                Err(e) => Err(e),
            };
            let (article, error) = match result {
                Ok(a) => (Some(a), None),
                Err(e) => (None, Some((e.code().to_string(), e.to_string()))),
            };
            PublishOutcome {
                profile: target.profile.clone(),
                official_id: target.official_id.clone(),
                article,
                error,
            }
        });
        futures_util::future::join_all(calls).await
    }

    /// Starts the profile if it is not running and waits until it has applied every event its
    /// account holds right now (a command-line call reads what is current, not what the last
    /// run left).
    pub async fn catch_up(&self, profile: &ProfileId, limit: std::time::Duration) -> Result<()> {
        self.start_profile(profile).await?;
        let rt = self.runtime(profile).await?;
        let head = rt.client.head(&rt.token).await?;
        let deadline = tokio::time::Instant::now() + limit;
        while rt.store.cursor().await? < head {
            if tokio::time::Instant::now() >= deadline {
                return Err(CoreError::Network(
                    "the profile did not catch up with its service in time".into(),
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Ok(())
    }
}
