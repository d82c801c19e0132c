-- Payments the user made whose answer has not come (a timeout, a cut connection, a crash):
-- each with the idempotency key it was first sent under, written before it was sent. Trying
-- it again reuses the key, so the service answers "paid" once more instead of paying twice,
-- even after a restart. A row goes when the service answers (paid or refused) or the user
-- abandons the payment.
CREATE TABLE pending_payments (
    idempotency_key TEXT PRIMARY KEY,
    payment         TEXT NOT NULL,               -- core's `Payment`, as JSON
    created_at      INTEGER NOT NULL,            -- unix seconds
    last_error      TEXT NOT NULL DEFAULT ''     -- why the last attempt got no answer
);
