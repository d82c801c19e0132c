//! The ledger in SQL. Every movement goes through [`post`], which writes one balanced journal
//! transaction and moves the cached balances with conditional updates, so a balance can never
//! go below zero whatever runs concurrently. Books are locked (by their update) in id order,
//! so A→B and B→A at once wait for each other instead of deadlocking; an envelope's row is
//! locked before a claim or a refund reads it.

use std::collections::HashMap;

use super::{Db, SqlStore, Tx, append, duplicate, in_tx};
use crate::Millis;
use crate::*;
/// seq, journal id, kind, amount, counterparty, note, at.
type HistoryTuple = (i64, String, String, i64, Option<String>, String, i64);

struct Leg<'a> {
    book: String,
    kind: &'a str,
    amount: i64,
    counterparty: Option<&'a str>,
}

/// Writes one journal transaction; fails with `InsufficientFunds` if a non-funding book would
/// go below zero. Returns the balances after.
async fn post(
    tx: &mut Tx,
    journal_id: &str,
    kind: &str,
    note: &str,
    now: Millis,
    legs: &[Leg<'_>],
) -> StoreResult<HashMap<String, i64>> {
    if legs.iter().map(|l| l.amount).sum::<i64>() != 0 || legs.iter().any(|l| l.amount == 0) {
        return Err(StoreError::Database(DbError::invariant(format!(
            "unbalanced journal transaction {journal_id}"
        ))));
    }
    // One global order of book locks, whatever the movement's direction.
    let mut legs: Vec<&Leg<'_>> = legs.iter().collect();
    legs.sort_by(|a, b| a.book.cmp(&b.book));
    let (seq,): (i64,) = sqlx::query_as(
        "INSERT INTO journal (id, kind, created_at, note) VALUES ($1, $2, $3, $4) RETURNING seq",
    )
    .bind(journal_id)
    .bind(kind)
    .bind(now)
    .bind(note)
    .fetch_one(&mut **tx)
    .await?;
    let mut balances = HashMap::new();
    for leg in legs {
        sqlx::query("INSERT INTO books (id, kind) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(&leg.book)
            .bind(leg.kind)
            .execute(&mut **tx)
            .await?;
        let row: Option<(i64,)> = sqlx::query_as(
            "UPDATE books SET balance = balance + $1 \
             WHERE id = $2 AND (kind = 'funding' OR balance + $3 >= 0) RETURNING balance",
        )
        .bind(leg.amount)
        .bind(&leg.book)
        .bind(leg.amount)
        .fetch_optional(&mut **tx)
        .await?;
        let Some((balance,)) = row else {
            return Err(StoreError::InsufficientFunds);
        };
        sqlx::query(
            "INSERT INTO entries (journal_seq, book, amount, counterparty) VALUES ($1, $2, $3, $4)",
        )
        .bind(seq)
        .bind(&leg.book)
        .bind(leg.amount)
        .bind(leg.counterparty)
        .execute(&mut **tx)
        .await?;
        balances.insert(leg.book.clone(), balance);
    }
    Ok(balances)
}

fn leg<'a>(book: String, kind: &'a str, amount: i64, counterparty: Option<&'a str>) -> Leg<'a> {
    Leg {
        book,
        kind,
        amount,
        counterparty,
    }
}

/// Reads the envelope and locks its row until the transaction ends: claims and the refund
/// of one envelope are decided one after the other.
async fn lock_envelope(tx: &mut Tx, id: &str) -> StoreResult<Option<EnvelopeRow>> {
    let row: Option<EnvelopeSql> = sqlx::query_as(concat!(
        "SELECT ",
        envelope_columns!(),
        " FROM red_envelopes WHERE id = $1",
        for_update!()
    ))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(Into::into))
}

/// Whether the envelope was sent to `account` (its audience, fixed as it was sent).
async fn sent_to<'e, E>(db: E, envelope_id: &str, account: &str) -> StoreResult<bool>
where
    E: sqlx::Executor<'e, Database = Db>,
{
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT account_id FROM red_envelope_audience WHERE envelope_id = $1 AND account_id = $2",
    )
    .bind(envelope_id)
    .bind(account)
    .fetch_optional(db)
    .await?;
    Ok(row.is_some())
}

/// Like `lock_envelope`, but `None` at once when another transaction holds the row.
async fn lock_envelope_for_sweep(tx: &mut Tx, id: &str) -> StoreResult<Option<EnvelopeRow>> {
    let row: Option<EnvelopeSql> = sqlx::query_as(concat!(
        "SELECT ",
        envelope_columns!(),
        " FROM red_envelopes WHERE id = $1",
        skip_locked!()
    ))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(Into::into))
}

macro_rules! envelope_columns {
    () => {
        "id, sender_id, target, group_id, total, count, mode, greeting, created_at, expires_at, \
         refunded_at, refunded, data"
    };
}
use envelope_columns;

#[derive(sqlx::FromRow)]
struct EnvelopeSql {
    id: String,
    sender_id: String,
    target: String,
    group_id: Option<String>,
    total: i64,
    count: i64,
    mode: String,
    greeting: String,
    created_at: i64,
    expires_at: i64,
    refunded_at: Option<i64>,
    refunded: i64,
    data: String,
}

impl From<EnvelopeSql> for EnvelopeRow {
    fn from(e: EnvelopeSql) -> Self {
        EnvelopeRow {
            id: e.id,
            sender_id: e.sender_id,
            target: e.target,
            group_id: e.group_id,
            total: e.total,
            count: e.count,
            mode: e.mode,
            greeting: e.greeting,
            created_at: e.created_at,
            expires_at: e.expires_at,
            refunded_at: e.refunded_at,
            refunded: e.refunded,
            data: e.data,
        }
    }
}

/// One movement inside `tx`: its journal transaction, idempotency record and events.
async fn apply(
    tx: &mut Tx,
    op: &LedgerOp,
    journal_id: &str,
    note: &str,
    now: Millis,
    idempotency: Option<&IdempotencyRecord>,
    finish: Finish<'_>,
) -> StoreResult<(String, Vec<EventRow>)> {
    let mut posted = Posted {
        journal_id: journal_id.to_string(),
        ..Posted::default()
    };
    match op {
        LedgerOp::TopUp { account_id, amount } => {
            posted.amount = *amount;
            posted.balances = post(
                tx,
                journal_id,
                "topup",
                note,
                now,
                &[
                    leg(FUNDING_BOOK.into(), "funding", -amount, None),
                    leg(wallet_book(account_id), "wallet", *amount, None),
                ],
            )
            .await?;
        }
        LedgerOp::Transfer {
            from,
            to,
            from_public_id,
            to_public_id,
            amount,
        } => {
            posted.amount = *amount;
            posted.balances = post(
                tx,
                journal_id,
                "transfer",
                note,
                now,
                &[
                    leg(wallet_book(from), "wallet", -amount, Some(to_public_id)),
                    leg(wallet_book(to), "wallet", *amount, Some(from_public_id)),
                ],
            )
            .await?;
        }
        LedgerOp::CreateEnvelope {
            envelope: e,
            shares,
            audience,
        } => {
            posted.amount = e.total;
            posted.balances = post(
                tx,
                journal_id,
                "red_envelope",
                note,
                now,
                &[
                    leg(
                        wallet_book(&e.sender_id),
                        "wallet",
                        -e.total,
                        Some(&e.target),
                    ),
                    leg(escrow_book(&e.id), "escrow", e.total, None),
                ],
            )
            .await?;
            sqlx::query(
                "INSERT INTO red_envelopes (id, sender_id, target, group_id, total, count, \
                     mode, greeting, created_at, expires_at, data) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(&e.id)
            .bind(&e.sender_id)
            .bind(&e.target)
            .bind(&e.group_id)
            .bind(e.total)
            .bind(e.count)
            .bind(&e.mode)
            .bind(&e.greeting)
            .bind(e.created_at)
            .bind(e.expires_at)
            .bind(&e.data)
            .execute(&mut **tx)
            .await?;
            for (idx, amount) in shares.iter().enumerate() {
                sqlx::query(
                        "INSERT INTO red_envelope_shares (envelope_id, idx, amount) VALUES ($1, $2, $3)",
                    )
                    .bind(&e.id)
                    .bind(idx as i64)
                    .bind(amount)
                    .execute(&mut **tx)
                    .await
                    ?;
            }
            for account in audience {
                sqlx::query(
                    "INSERT INTO red_envelope_audience (envelope_id, account_id) VALUES ($1, $2) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&e.id)
                .bind(account)
                .execute(&mut **tx)
                .await?;
            }
        }
        LedgerOp::Claim {
            envelope_id,
            claimer,
        } => {
            let e = lock_envelope(tx, envelope_id)
                .await?
                .ok_or(StoreError::NoEnvelope)?;
            // Decided here, in the claim's transaction, not by the caller's earlier look: only
            // those it was sent to, whoever has joined the group or taken a public ID since.
            if !sent_to(&mut **tx, envelope_id, claimer).await? {
                return Err(StoreError::NoEnvelope);
            }
            // Someone who claimed is told so, even once the envelope has expired or been
            // emptied: it answers their question ("did I get it?") where "empty" would not.
            let already: Option<(i64,)> = sqlx::query_as(
                "SELECT idx FROM red_envelope_shares WHERE envelope_id = $1 AND claimed_by = $2",
            )
            .bind(envelope_id)
            .bind(claimer)
            .fetch_optional(&mut **tx)
            .await?;
            if already.is_some() {
                return Err(StoreError::AlreadyClaimed);
            }
            // The refund and the last claim are both decided under the envelope's lock:
            // whichever commits first wins, and the other sees it.
            if e.refunded_at.is_some() || now >= e.expires_at {
                return Err(StoreError::EnvelopeEmpty);
            }
            let next: Option<(i64, i64)> = sqlx::query_as(
                "SELECT idx, amount FROM red_envelope_shares \
                     WHERE envelope_id = $1 AND claimed_by IS NULL ORDER BY idx LIMIT 1",
            )
            .bind(envelope_id)
            .fetch_optional(&mut **tx)
            .await?;
            let Some((idx, amount)) = next else {
                return Err(StoreError::EnvelopeEmpty);
            };
            sqlx::query(
                "UPDATE red_envelope_shares SET claimed_by = $1, claimed_at = $2 \
                     WHERE envelope_id = $3 AND idx = $4 AND claimed_by IS NULL",
            )
            .bind(claimer)
            .bind(now)
            .bind(envelope_id)
            .bind(idx)
            .execute(&mut **tx)
            .await?;
            posted.amount = amount;
            posted.envelope_sender = Some(e.sender_id.clone());
            posted.balances = post(
                tx,
                journal_id,
                "red_envelope_claim",
                note,
                now,
                &[
                    leg(escrow_book(envelope_id), "escrow", -amount, None),
                    leg(wallet_book(claimer), "wallet", amount, None),
                ],
            )
            .await?;
        }
        LedgerOp::Refund { envelope_id } => {
            // Every node sweeps; one that finds the envelope locked (another node refunding
            // it, or a claim in flight) moves on instead of queueing behind it. The next sweep
            // sees it refunded, or still due.
            let e = lock_envelope_for_sweep(tx, envelope_id)
                .await?
                .ok_or(StoreError::NoEnvelope)?;
            if e.refunded_at.is_some() || now < e.expires_at {
                return Err(StoreError::NoEnvelope);
            }
            let left: Option<(i64,)> = sqlx::query_as("SELECT balance FROM books WHERE id = $1")
                .bind(escrow_book(envelope_id))
                .fetch_optional(&mut **tx)
                .await?;
            let left = left.map_or(0, |(b,)| b);
            if left > 0 {
                posted.balances = post(
                    tx,
                    journal_id,
                    "red_envelope_refund",
                    note,
                    now,
                    &[
                        leg(escrow_book(envelope_id), "escrow", -left, None),
                        leg(wallet_book(&e.sender_id), "wallet", left, None),
                    ],
                )
                .await?;
            }
            posted.amount = left;
            posted.envelope_sender = Some(e.sender_id.clone());
            sqlx::query("UPDATE red_envelopes SET refunded_at = $1, refunded = $2 WHERE id = $3")
                .bind(now)
                .bind(left)
                .bind(envelope_id)
                .execute(&mut **tx)
                .await?;
        }
    }
    let (response, events) = finish(&posted)?;
    if let Some(rec) = idempotency {
        sqlx::query(
            "INSERT INTO idempotency (account_id, key, fingerprint, status, response, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&rec.account_id)
        .bind(&rec.key)
        .bind(&rec.fingerprint)
        .bind(i64::from(rec.status))
        .bind(&response)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(duplicate)?;
    }
    let appended = append(tx, &events, now).await?;
    Ok((response, appended))
}

impl SqlStore {
    pub(super) async fn idempotent_answer_impl(
        &self,
        account_id: &str,
        key: &str,
    ) -> StoreResult<Option<IdempotentAnswer>> {
        let row: Option<(String, i64, String)> = sqlx::query_as(
            "SELECT fingerprint, status, response FROM idempotency WHERE account_id = $1 AND key = $2",
        )
        .bind(account_id)
        .bind(key)
        .fetch_optional(&self.read)
        .await
        ?;
        Ok(row.map(|(fingerprint, status, response)| IdempotentAnswer {
            fingerprint,
            status: u16::try_from(status).unwrap_or(200),
            response,
        }))
    }

    pub(super) async fn ledger_apply_impl(
        &self,
        op: &LedgerOp,
        journal_id: &str,
        note: &str,
        now: Millis,
        idempotency: Option<&IdempotencyRecord>,
        finish: Finish<'_>,
    ) -> StoreResult<(String, Vec<EventRow>)> {
        in_tx!(self, |tx| {
            apply(&mut tx, op, journal_id, note, now, idempotency, finish).await
        })
    }

    pub(super) async fn book_balance_impl(&self, book: &str) -> StoreResult<i64> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT balance FROM books WHERE id = $1")
            .bind(book)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map_or(0, |(b,)| b))
    }

    pub(super) async fn wallet_history_impl(
        &self,
        account_id: &str,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<HistoryRow>> {
        let rows: Vec<HistoryTuple> = sqlx::query_as(
            "SELECT j.seq, j.id, j.kind, e.amount, e.counterparty, j.note, j.created_at \
             FROM entries e JOIN journal j ON j.seq = e.journal_seq \
             WHERE e.book = $1 AND e.journal_seq < $2 ORDER BY e.journal_seq DESC LIMIT $3",
        )
        .bind(wallet_book(account_id))
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(seq, journal_id, kind, amount, counterparty, note, at)| HistoryRow {
                    seq,
                    journal_id,
                    kind,
                    amount,
                    counterparty,
                    note,
                    at,
                },
            )
            .collect())
    }

    pub(super) async fn envelope_impl(
        &self,
        id: &str,
    ) -> StoreResult<Option<(EnvelopeRow, Vec<ShareRow>)>> {
        let row: Option<EnvelopeSql> = sqlx::query_as(concat!(
            "SELECT ",
            envelope_columns!(),
            " FROM red_envelopes WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let shares: Vec<(i64, i64, Option<String>, Option<i64>)> = sqlx::query_as(
            "SELECT idx, amount, claimed_by, claimed_at FROM red_envelope_shares \
             WHERE envelope_id = $1 ORDER BY idx",
        )
        .bind(id)
        .fetch_all(&self.read)
        .await?;
        Ok(Some((
            row.into(),
            shares
                .into_iter()
                .map(|(idx, amount, claimed_by, claimed_at)| ShareRow {
                    idx,
                    amount,
                    claimed_by,
                    claimed_at,
                })
                .collect(),
        )))
    }

    pub(super) async fn envelope_sent_to_impl(&self, id: &str, account: &str) -> StoreResult<bool> {
        sent_to(&self.read, id, account).await
    }

    pub(super) async fn envelopes_due_impl(
        &self,
        now: Millis,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM red_envelopes WHERE refunded_at IS NULL AND expires_at <= $1 \
             ORDER BY expires_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    pub(super) async fn ledger_check_impl(&self) -> StoreResult<Option<String>> {
        let checks: [(&str, &str); 6] = [
            (
                "SELECT 'journal transaction ' || j.id || ' does not balance (sum ' || SUM(e.amount) || ')' \
                 FROM journal j LEFT JOIN entries e ON e.journal_seq = j.seq \
                 GROUP BY j.seq HAVING COALESCE(SUM(e.amount), 0) <> 0 OR COUNT(e.book) < 2 LIMIT 1",
                "balanced journal",
            ),
            (
                "SELECT 'book ' || b.id || ' caches ' || b.balance || ' but its entries sum to ' || \
                 COALESCE((SELECT SUM(amount) FROM entries WHERE book = b.id), 0) FROM books b \
                 WHERE b.balance <> COALESCE((SELECT SUM(amount) FROM entries WHERE book = b.id), 0) LIMIT 1",
                "cached balances",
            ),
            (
                "SELECT 'the books sum to ' || SUM(balance) || ', not 0: money was made or lost' \
                 FROM books HAVING SUM(balance) <> 0",
                "conservation",
            ),
            (
                "SELECT 'book ' || id || ' is negative: ' || balance FROM books \
                 WHERE kind <> 'funding' AND balance < 0 LIMIT 1",
                "no negative balance",
            ),
            (
                "SELECT 'envelope ' || r.id || ' escrow holds ' || COALESCE(b.balance, 0) || \
                 ' but its unclaimed shares are ' || \
                 COALESCE((SELECT SUM(amount) FROM red_envelope_shares s WHERE s.envelope_id = r.id \
                 AND s.claimed_by IS NULL), 0) FROM red_envelopes r \
                 LEFT JOIN books b ON b.id = 'escrow:' || r.id WHERE r.refunded_at IS NULL AND \
                 COALESCE(b.balance, 0) <> COALESCE((SELECT SUM(amount) FROM red_envelope_shares s \
                 WHERE s.envelope_id = r.id AND s.claimed_by IS NULL), 0) LIMIT 1",
                "escrow matches unclaimed shares",
            ),
            (
                "SELECT 'envelope ' || r.id || ' was refunded but its escrow still holds ' || b.balance \
                 FROM red_envelopes r JOIN books b ON b.id = 'escrow:' || r.id \
                 WHERE r.refunded_at IS NOT NULL AND b.balance <> 0 LIMIT 1",
                "refunded escrow empty",
            ),
        ];
        for (sql, _what) in checks {
            let row: Option<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .fetch_optional(&self.read)
                .await?;
            if let Some((violation,)) = row {
                return Ok(Some(violation));
            }
        }
        Ok(None)
    }
}
