//! Official accounts in SQL (see `store/official.rs` for what each step promises).
//!
//! Every step that decides from the operator set, a role or a claim locks the official
//! account's row first (after any key lock, the global order of `sql.rs`), so those steps
//! run one after the other per official account on every backend, and a removal or a
//! revocation that commits first is seen by every step after it.

use async_trait::async_trait;

use super::{SqlStore, Tx, append, charge, count, duplicate, in_tx, lock_keys};
use crate::Millis;
use crate::*;
use switchboard_protocol::official::OfficialRole;

/// The lock that orders changes to the official accounts one account operates.
fn operator_key(account_id: &str) -> String {
    format!("official-operator:{account_id}")
}

/// A unique violation on creating or keying an official account: its name's key is taken.
fn name_taken(e: sqlx::Error) -> StoreError {
    match super::duplicate(e) {
        StoreError::Duplicate => StoreError::OfficialNameTaken,
        other => other,
    }
}

/// Locks the official account's row; false if there is none.
async fn lock_official(tx: &mut Tx, id: &str) -> StoreResult<bool> {
    let row: Option<(String,)> = sqlx::query_as(concat!(
        "SELECT id FROM official_accounts WHERE id = $1",
        for_update!()
    ))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.is_some())
}

/// The operators' account ids; with `serving`, only those whose role sees and answers
/// customers (the rule is `OfficialRole::serves`, the one place roles are defined).
async fn operator_ids(tx: &mut Tx, official_id: &str, serving: bool) -> StoreResult<Vec<String>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT account_id, role FROM official_operators WHERE official_id = $1 \
         ORDER BY account_id",
    )
    .bind(official_id)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .filter(|(_, role)| !serving || OfficialRole::parse(role).is_some_and(OfficialRole::serves))
        .map(|(a, _)| a)
        .collect())
}

/// The role `who` acts with on the official account right now, inside the step's
/// transaction: an operator's, or a live key's of this official account.
async fn acting_role(
    tx: &mut Tx,
    official_id: &str,
    who: Sender<'_>,
) -> StoreResult<Option<String>> {
    let row: Option<(String,)> =
        match who {
            Sender::Customer => return Ok(None),
            Sender::Operator(account) => sqlx::query_as(
                "SELECT role FROM official_operators WHERE official_id = $1 AND account_id = $2",
            )
            .bind(official_id)
            .bind(account)
            .fetch_optional(&mut **tx)
            .await?,
            Sender::Key(key) => {
                sqlx::query_as(
                    "SELECT role FROM official_api_keys WHERE official_id = $1 AND id = $2 \
                 AND revoked_at IS NULL",
                )
                .bind(official_id)
                .bind(key)
                .fetch_optional(&mut **tx)
                .await?
            }
        };
    Ok(row.map(|(r,)| r))
}

/// `NotAllowed` unless `role` is one that `may` lets do the step.
fn allowed(role: Option<String>, may: fn(OfficialRole) -> bool) -> StoreResult<()> {
    match role.as_deref().and_then(OfficialRole::parse) {
        Some(r) if may(r) => Ok(()),
        _ => Err(StoreError::NotAllowed),
    }
}

/// `NotAllowed` unless the operator `by` (an account) manages the official account now, inside
/// the step's transaction: the check every operator and key change makes again.
async fn must_manage(tx: &mut Tx, official_id: &str, by: &str) -> StoreResult<()> {
    allowed(
        acting_role(tx, official_id, Sender::Operator(by)).await?,
        OfficialRole::manages,
    )
}

/// id, name, description, color, owner, created, followers, the viewer's role, following.
type ViewTuple = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
    bool,
);

/// The columns of an [`OfficialView`] for the account bound as `$1`.
macro_rules! view_sql {
    ($where:literal) => {
        concat!(
            "SELECT o.id, o.name, o.description, o.color, o.owner_id, o.created_at, \
             (SELECT COUNT(*) FROM official_followers f WHERE f.official_id = o.id), \
             (SELECT p.role FROM official_operators p WHERE p.official_id = o.id AND p.account_id = $1), \
             EXISTS (SELECT 1 FROM official_followers f WHERE f.official_id = o.id AND f.account_id = $1) \
             FROM official_accounts o ",
            $where
        )
    };
}

fn view(
    (id, name, description, color, owner_id, created_at, followers, role, following): ViewTuple,
) -> OfficialView {
    OfficialView {
        official: OfficialRow {
            id,
            name,
            description,
            color,
            owner_id,
            created_at,
            followers,
        },
        role,
        following,
    }
}

macro_rules! article_sql {
    ($where:literal) => {
        concat!(
            "SELECT id, official_id, author, idempotency_key, title, body, published_at, data \
             FROM official_articles ",
            $where
        )
    };
}

/// official, customer, customer's public ID and name, last message, last at, unanswered,
/// holder, holder's public ID, claim expiry.
type ConversationTuple = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<i64>,
);

macro_rules! conversation_sql {
    ($where:literal) => {
        concat!(
            "SELECT c.official_id, c.customer_id, a.public_id, a.display_name, c.last_message, \
             c.last_at, c.unanswered, c.claimed_by, h.public_id, c.claim_expires_at \
             FROM official_conversations c JOIN accounts a ON a.id = c.customer_id \
             LEFT JOIN accounts h ON h.id = c.claimed_by ",
            $where
        )
    };
}

fn conversation(t: ConversationTuple, now: Millis) -> CustomerConversationRow {
    let (
        official_id,
        customer_id,
        public_id,
        display_name,
        last_message,
        last_at,
        unanswered,
        holder,
        holder_public,
        expires,
    ) = t;
    let claim = match (holder, holder_public, expires) {
        (Some(h), Some(p), Some(until)) if until > now => Some((h, p, until)),
        _ => None,
    };
    CustomerConversationRow {
        official_id,
        customer_id,
        customer_public_id: public_id,
        customer_display_name: display_name,
        last_message,
        last_at,
        unanswered,
        claim,
    }
}

macro_rules! key_sql {
    ($where:literal) => {
        concat!(
            "SELECT id, official_id, key_hash, name, role, created_by, created_at, revoked_at, \
             COALESCE((SELECT public_id FROM accounts WHERE accounts.id = created_by), '') \
             AS creator_public_id \
             FROM official_api_keys ",
            $where
        )
    };
}

async fn operated_by(tx: &mut Tx, account_id: &str) -> StoreResult<u32> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM official_operators WHERE account_id = $1")
            .bind(account_id)
            .fetch_one(&mut **tx)
            .await?;
    Ok(count(n))
}

#[async_trait]
impl OfficialStore for SqlStore {
    async fn official_create(
        &self,
        row: &OfficialRow,
        name_key: &str,
        max_per_operator: u32,
        events: &[NewEvent],
    ) -> StoreResult<Vec<EventRow>> {
        in_tx!(self, |tx| {
            // Two creations by one account racing for its last slot count one after the other.
            lock_keys(&mut tx, &[operator_key(&row.owner_id)]).await?;
            if operated_by(&mut tx, &row.owner_id).await? >= max_per_operator {
                return Err(StoreError::OfficialLimit(OfficialLimit::PerOperator));
            }
            sqlx::query(
                "INSERT INTO official_accounts \
                 (id, name, description, color, owner_id, created_at, name_key) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&row.id)
            .bind(&row.name)
            .bind(&row.description)
            .bind(&row.color)
            .bind(&row.owner_id)
            .bind(row.created_at)
            .bind(name_key)
            .execute(&mut *tx)
            .await
            .map_err(name_taken)?;
            sqlx::query(
                "INSERT INTO official_operators (official_id, account_id, role, added_at) \
                 VALUES ($1, $2, 'owner', $3)",
            )
            .bind(&row.id)
            .bind(&row.owner_id)
            .bind(row.created_at)
            .execute(&mut *tx)
            .await?;
            append(&mut tx, events, row.created_at).await
        })
    }

    async fn official_name_keys_backfill(
        &self,
        key: &(dyn for<'n> Fn(&'n str) -> String + Send + Sync),
    ) -> StoreResult<Vec<String>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, name FROM official_accounts WHERE name_key IS NULL \
             ORDER BY created_at, id",
        )
        .fetch_all(&self.read)
        .await?;
        let mut left = Vec::new();
        for (id, name) in rows {
            let set = sqlx::query(
                "UPDATE official_accounts SET name_key = $2 WHERE id = $1 AND name_key IS NULL",
            )
            .bind(&id)
            .bind(key(&name))
            .execute(&self.write)
            .await
            .map_err(name_taken);
            match set {
                Ok(_) => {}
                Err(StoreError::OfficialNameTaken) => left.push(id),
                Err(e) => return Err(e),
            }
        }
        Ok(left)
    }

    async fn official_by_id(&self, id: &str) -> StoreResult<Option<OfficialRow>> {
        // No viewer: `$1` matches no account.
        let row: Option<ViewTuple> = sqlx::query_as(view_sql!("WHERE o.id = $2"))
            .bind("")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|t| view(t).official))
    }

    async fn official_view(&self, id: &str, account_id: &str) -> StoreResult<Option<OfficialView>> {
        let row: Option<ViewTuple> = sqlx::query_as(view_sql!("WHERE o.id = $2"))
            .bind(account_id)
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(view))
    }

    async fn officials_of(
        &self,
        account_id: &str,
        followed: bool,
    ) -> StoreResult<Vec<OfficialView>> {
        let rows: Vec<ViewTuple> = sqlx::query_as(view_sql!(
            "WHERE o.id IN (SELECT official_id FROM official_operators WHERE account_id = $1) \
             OR ($2 AND o.id IN (SELECT official_id FROM official_followers WHERE account_id = $1)) \
             ORDER BY o.created_at, o.id"
        ))
        .bind(account_id)
        .bind(followed)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(view).collect())
    }

    async fn official_operators(&self, official_id: &str) -> StoreResult<Vec<OperatorRow>> {
        let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
            "SELECT p.account_id, a.public_id, a.display_name, p.role, p.added_at \
             FROM official_operators p JOIN accounts a ON a.id = p.account_id \
             WHERE p.official_id = $1 ORDER BY (p.role <> 'owner'), p.added_at, a.public_id_lower",
        )
        .bind(official_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(account_id, public_id, display_name, role, added_at)| OperatorRow {
                    account_id,
                    public_id,
                    display_name,
                    role,
                    added_at,
                },
            )
            .collect())
    }

    async fn official_operator_set(
        &self,
        official_id: &str,
        by: &str,
        account_id: &str,
        role: &str,
        now: Millis,
        limits: OperatorLimits,
        fanout: Fanout<'_>,
    ) -> StoreResult<Vec<EventRow>> {
        in_tx!(self, |tx| {
            lock_keys(&mut tx, &[operator_key(account_id)]).await?;
            if !lock_official(&mut tx, official_id).await? {
                return Err(StoreError::NotAllowed);
            }
            must_manage(&mut tx, official_id, by).await?;
            let existing: Option<(String,)> = sqlx::query_as(
                "SELECT role FROM official_operators WHERE official_id = $1 AND account_id = $2",
            )
            .bind(official_id)
            .bind(account_id)
            .fetch_optional(&mut *tx)
            .await?;
            match existing {
                Some((r,)) if r == "owner" => return Err(StoreError::NotAllowed),
                Some(_) => {
                    sqlx::query(
                        "UPDATE official_operators SET role = $3 \
                         WHERE official_id = $1 AND account_id = $2",
                    )
                    .bind(official_id)
                    .bind(account_id)
                    .bind(role)
                    .execute(&mut *tx)
                    .await?;
                }
                None => {
                    let (n,): (i64,) = sqlx::query_as(
                        "SELECT COUNT(*) FROM official_operators WHERE official_id = $1",
                    )
                    .bind(official_id)
                    .fetch_one(&mut *tx)
                    .await?;
                    if count(n) >= limits.max_operators {
                        return Err(StoreError::OfficialLimit(OfficialLimit::Operators));
                    }
                    if operated_by(&mut tx, account_id).await? >= limits.max_per_operator {
                        return Err(StoreError::OfficialLimit(OfficialLimit::PerOperator));
                    }
                    sqlx::query(
                        "INSERT INTO official_operators (official_id, account_id, role, added_at) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(official_id)
                    .bind(account_id)
                    .bind(role)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            let everyone = operator_ids(&mut tx, official_id, false).await?;
            let events = fanout(&everyone)?;
            append(&mut tx, &events, now).await
        })
    }

    async fn official_operator_remove(
        &self,
        official_id: &str,
        by: &str,
        account_id: &str,
        keep_keys: bool,
        now: Millis,
        fanout: Fanout<'_>,
    ) -> StoreResult<Option<Removed>> {
        in_tx!(self, |tx| {
            lock_keys(&mut tx, &[operator_key(account_id)]).await?;
            if !lock_official(&mut tx, official_id).await? {
                return Ok(None);
            }
            if by != account_id {
                must_manage(&mut tx, official_id, by).await?;
            }
            let before = operator_ids(&mut tx, official_id, false).await?;
            let gone = sqlx::query(
                "DELETE FROM official_operators \
                 WHERE official_id = $1 AND account_id = $2 AND role <> 'owner'",
            )
            .bind(official_id)
            .bind(account_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if gone == 0 {
                return Ok(None);
            }
            // What they held goes back to the others at once.
            sqlx::query(
                "UPDATE official_conversations SET claimed_by = NULL, claim_expires_at = NULL \
                 WHERE official_id = $1 AND claimed_by = $2",
            )
            .bind(official_id)
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
            // A key outlives no one's access: what they made stops with them, unless the
            // remover keeps it (a key the business's automation runs on).
            let keys_revoked = if keep_keys {
                0
            } else {
                sqlx::query(
                    "UPDATE official_api_keys SET revoked_at = $3 \
                     WHERE official_id = $1 AND created_by = $2 AND revoked_at IS NULL",
                )
                .bind(official_id)
                .bind(account_id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected()
            };
            let events = fanout(&before)?;
            let events = append(&mut tx, &events, now).await?;
            Ok(Some(Removed {
                events,
                keys_revoked,
            }))
        })
    }

    async fn official_follow(
        &self,
        official_id: &str,
        account_id: &str,
        now: Millis,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO official_followers (official_id, account_id, since) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(official_id)
        .bind(account_id)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn official_unfollow(&self, official_id: &str, account_id: &str) -> StoreResult<bool> {
        let n = sqlx::query(
            "DELETE FROM official_followers WHERE official_id = $1 AND account_id = $2",
        )
        .bind(official_id)
        .bind(account_id)
        .execute(&self.write)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    async fn official_is_follower(&self, official_id: &str, account_id: &str) -> StoreResult<bool> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT account_id FROM official_followers WHERE official_id = $1 AND account_id = $2",
        )
        .bind(official_id)
        .bind(account_id)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.is_some())
    }

    async fn article_publish(
        &self,
        row: &ArticleRow,
        author: Sender<'_>,
        fanout: Fanout<'_>,
    ) -> StoreResult<Vec<EventRow>> {
        in_tx!(self, |tx| {
            lock_official(&mut tx, &row.official_id).await?;
            allowed(
                acting_role(&mut tx, &row.official_id, author).await?,
                OfficialRole::publishes,
            )?;
            sqlx::query(
                "INSERT INTO official_articles \
                 (id, official_id, author, idempotency_key, title, body, published_at, data) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&row.id)
            .bind(&row.official_id)
            .bind(&row.author)
            .bind(&row.idempotency_key)
            .bind(&row.title)
            .bind(&row.body)
            .bind(row.published_at)
            .bind(&row.data)
            .execute(&mut *tx)
            .await
            .map_err(duplicate)?;
            let followers: Vec<(String,)> = sqlx::query_as(
                "SELECT account_id FROM official_followers WHERE official_id = $1 \
                 ORDER BY account_id",
            )
            .bind(&row.official_id)
            .fetch_all(&mut *tx)
            .await?;
            let followers: Vec<String> = followers.into_iter().map(|(a,)| a).collect();
            let events = fanout(&followers)?;
            append(&mut tx, &events, row.published_at).await
        })
    }

    async fn article_by_key(
        &self,
        official_id: &str,
        key: &str,
    ) -> StoreResult<Option<ArticleRow>> {
        let row: Option<ArticleRow> = sqlx::query_as(article_sql!(
            "WHERE official_id = $1 AND idempotency_key = $2"
        ))
        .bind(official_id)
        .bind(key)
        .fetch_optional(&self.read)
        .await?;
        Ok(row)
    }

    async fn articles(
        &self,
        official_id: &str,
        before: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<ArticleRow>> {
        let rows: Vec<ArticleRow> = match before {
            Some(before) => {
                sqlx::query_as(article_sql!(
                    "WHERE official_id = $1 AND (published_at, id) < \
                     (SELECT published_at, id FROM official_articles WHERE id = $2 AND official_id = $1) \
                     ORDER BY published_at DESC, id DESC LIMIT $3"
                ))
                .bind(official_id)
                .bind(before)
                .bind(limit)
                .fetch_all(&self.read)
                .await?
            }
            None => {
                sqlx::query_as(article_sql!(
                    "WHERE official_id = $1 ORDER BY published_at DESC, id DESC LIMIT $2"
                ))
                .bind(official_id)
                .bind(limit)
                .fetch_all(&self.read)
                .await?
            }
        };
        Ok(rows)
    }

    async fn official_message(&self, send: &OfficialSend<'_>) -> StoreResult<Vec<EventRow>> {
        let row = send.row;
        let now = row.sent_at;
        in_tx!(self, |tx| {
            lock_official(&mut tx, &row.official_id).await?;
            if send.sender != Sender::Customer {
                allowed(
                    acting_role(&mut tx, &row.official_id, send.sender).await?,
                    OfficialRole::serves,
                )?;
            }
            for (i, c) in send.charges.iter().enumerate() {
                let take = charge(&mut tx, c).await?;
                if !take.taken {
                    return Err(StoreError::OverBudget { charge: i, take });
                }
            }
            let unanswered = match send.sender {
                Sender::Customer => {
                    let (n,): (i64,) = sqlx::query_as(
                        "INSERT INTO official_conversations \
                         (official_id, customer_id, last_message, last_at, unanswered) \
                         VALUES ($1, $2, $3, $4, 1) \
                         ON CONFLICT (official_id, customer_id) DO UPDATE SET \
                         last_message = excluded.last_message, last_at = excluded.last_at, \
                         unanswered = official_conversations.unanswered + 1 \
                         RETURNING unanswered",
                    )
                    .bind(&row.official_id)
                    .bind(&row.customer_id)
                    .bind(&row.data)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                    n
                }
                Sender::Operator(_) | Sender::Key(_) => {
                    let held: Option<(Option<String>, Option<String>, Option<i64>)> =
                        sqlx::query_as(
                            "SELECT c.claimed_by, h.public_id, c.claim_expires_at \
                             FROM official_conversations c LEFT JOIN accounts h ON h.id = c.claimed_by \
                             WHERE c.official_id = $1 AND c.customer_id = $2",
                        )
                        .bind(&row.official_id)
                        .bind(&row.customer_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    let Some((holder, holder_public, expires)) = held else {
                        return Err(StoreError::NoConversation);
                    };
                    let me = match send.sender {
                        Sender::Operator(a) => Some(a),
                        _ => None,
                    };
                    if let (Some(h), Some(until)) = (&holder, expires)
                        && until > now
                        && Some(h.as_str()) != me
                    {
                        return Err(StoreError::ClaimHeld {
                            by: holder_public.unwrap_or_default(),
                            until,
                        });
                    }
                    // The holder's answer keeps the claim for another period.
                    sqlx::query(
                        "UPDATE official_conversations SET last_message = $3, last_at = $4, \
                         unanswered = 0, claim_expires_at = CASE WHEN claimed_by = $5 \
                         THEN $6 ELSE claim_expires_at END \
                         WHERE official_id = $1 AND customer_id = $2",
                    )
                    .bind(&row.official_id)
                    .bind(&row.customer_id)
                    .bind(&row.data)
                    .bind(now)
                    .bind(me.unwrap_or(""))
                    .bind(now.saturating_add(send.claim_ms))
                    .execute(&mut *tx)
                    .await?;
                    0
                }
            };
            sqlx::query(
                "INSERT INTO official_messages \
                 (id, official_id, customer_id, actor, client_id, body, sent_at, data) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&row.id)
            .bind(&row.official_id)
            .bind(&row.customer_id)
            .bind(&row.actor)
            .bind(&row.client_id)
            .bind(&row.body)
            .bind(now)
            .bind(&row.data)
            .execute(&mut *tx)
            .await
            .map_err(duplicate)?;
            let serving = operator_ids(&mut tx, &row.official_id, true).await?;
            let mut events = send.customer_events.to_vec();
            events.extend((send.fanout)(&serving, unanswered)?);
            append(&mut tx, &events, now).await
        })
    }

    async fn official_message_by_client_id(
        &self,
        actor: &str,
        client_id: &str,
    ) -> StoreResult<Option<OfficialMessageRow>> {
        Ok(sqlx::query_as(
            "SELECT id, official_id, customer_id, actor, client_id, body, sent_at, data \
             FROM official_messages WHERE actor = $1 AND client_id = $2",
        )
        .bind(actor)
        .bind(client_id)
        .fetch_optional(&self.read)
        .await?)
    }

    async fn official_conversations(
        &self,
        official_id: &str,
        now: Millis,
    ) -> StoreResult<Vec<CustomerConversationRow>> {
        let rows: Vec<ConversationTuple> = sqlx::query_as(conversation_sql!(
            "WHERE c.official_id = $1 ORDER BY c.last_at DESC, c.customer_id"
        ))
        .bind(official_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|t| conversation(t, now)).collect())
    }

    async fn official_conversation(
        &self,
        official_id: &str,
        customer_id: &str,
        now: Millis,
    ) -> StoreResult<Option<CustomerConversationRow>> {
        let row: Option<ConversationTuple> = sqlx::query_as(conversation_sql!(
            "WHERE c.official_id = $1 AND c.customer_id = $2"
        ))
        .bind(official_id)
        .bind(customer_id)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|t| conversation(t, now)))
    }

    async fn official_claim(
        &self,
        official_id: &str,
        customer_id: &str,
        operator_id: &str,
        now: Millis,
        claim_ms: i64,
        fanout: Fanout<'_>,
    ) -> StoreResult<Claim> {
        in_tx!(self, |tx| {
            lock_official(&mut tx, official_id).await?;
            allowed(
                acting_role(&mut tx, official_id, Sender::Operator(operator_id)).await?,
                OfficialRole::serves,
            )?;
            let held: Option<(Option<String>, Option<String>, Option<i64>)> = sqlx::query_as(
                "SELECT c.claimed_by, h.public_id, c.claim_expires_at \
                 FROM official_conversations c LEFT JOIN accounts h ON h.id = c.claimed_by \
                 WHERE c.official_id = $1 AND c.customer_id = $2",
            )
            .bind(official_id)
            .bind(customer_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((holder, holder_public, expires)) = held else {
                return Err(StoreError::NoConversation);
            };
            if let (Some(h), Some(until)) = (&holder, expires)
                && until > now
                && h != operator_id
            {
                return Ok(Claim::Held {
                    by: holder_public.unwrap_or_default(),
                    until,
                });
            }
            let expires_at = now.saturating_add(claim_ms);
            sqlx::query(
                "UPDATE official_conversations SET claimed_by = $3, claim_expires_at = $4 \
                 WHERE official_id = $1 AND customer_id = $2",
            )
            .bind(official_id)
            .bind(customer_id)
            .bind(operator_id)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
            let serving = operator_ids(&mut tx, official_id, true).await?;
            let events = fanout(&serving)?;
            let events = append(&mut tx, &events, now).await?;
            Ok(Claim::Claimed { expires_at, events })
        })
    }

    async fn api_key_create(&self, row: &ApiKeyRow) -> StoreResult<()> {
        in_tx!(self, |tx| {
            if !lock_official(&mut tx, &row.official_id).await? {
                return Err(StoreError::NotAllowed);
            }
            must_manage(&mut tx, &row.official_id, &row.created_by).await?;
            sqlx::query(
                "INSERT INTO official_api_keys \
                 (id, official_id, key_hash, name, role, created_by, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&row.id)
            .bind(&row.official_id)
            .bind(&row.key_hash)
            .bind(&row.name)
            .bind(&row.role)
            .bind(&row.created_by)
            .bind(row.created_at)
            .execute(&mut *tx)
            .await?;
            Ok(())
        })
    }

    async fn api_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKeyRow>> {
        let row: Option<ApiKeyRow> = sqlx::query_as(key_sql!("WHERE key_hash = $1"))
            .bind(key_hash)
            .fetch_optional(&self.read)
            .await?;
        Ok(row)
    }

    async fn api_keys(&self, official_id: &str) -> StoreResult<Vec<ApiKeyRow>> {
        let rows: Vec<ApiKeyRow> = sqlx::query_as(key_sql!(
            "WHERE official_id = $1 AND revoked_at IS NULL ORDER BY created_at, id"
        ))
        .bind(official_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows)
    }

    async fn api_key_revoke(
        &self,
        official_id: &str,
        by: &str,
        id: &str,
        now: Millis,
    ) -> StoreResult<bool> {
        in_tx!(self, |tx| {
            if !lock_official(&mut tx, official_id).await? {
                return Ok(false);
            }
            must_manage(&mut tx, official_id, by).await?;
            let n = sqlx::query(
                "UPDATE official_api_keys SET revoked_at = $3 \
                 WHERE official_id = $1 AND id = $2 AND revoked_at IS NULL",
            )
            .bind(official_id)
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            Ok(n > 0)
        })
    }
}
