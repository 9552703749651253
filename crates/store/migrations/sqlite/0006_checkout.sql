-- Checkouts at the till: the bill as priced and paid. The money and points are in the
-- ledger (the checkout's transaction has the same id); this keeps what a receipt, a
-- reversal, a settlement and the analytics need to know about the bill itself.
CREATE TABLE checkouts (
    tenant_id BLOB NOT NULL,
    -- The id of the checkout's ledger transaction.
    id BLOB NOT NULL,
    store_id BLOB NOT NULL,
    staff_id BLOB NOT NULL,
    customer_id BLOB,
    card_id BLOB,
    -- Receipt number, per store and business day: S01-20261123-0042.
    number TEXT NOT NULL,
    business_date TEXT NOT NULL,
    created_at TEXT NOT NULL,
    party_size INTEGER,
    table_label TEXT,
    -- Regular prices × quantities, total discounts, amount due (fen).
    gross INTEGER NOT NULL CHECK (gross >= 0),
    -- Negative only when rounding to the nearest unit rounded up.
    discount INTEGER NOT NULL,
    amount_due INTEGER NOT NULL CHECK (amount_due >= 0),
    -- The full pricing breakdown, the tenders and the receipt's balances (JSON).
    breakdown TEXT NOT NULL,
    tenders TEXT NOT NULL,
    receipt TEXT NOT NULL,
    -- completed, reversed, partly_refunded, refunded.
    status TEXT NOT NULL,
    refunded INTEGER NOT NULL DEFAULT 0 CHECK (refunded >= 0 AND refunded <= amount_due),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, id) REFERENCES ledger_txns (tenant_id, id),
    UNIQUE (tenant_id, store_id, number)
);
CREATE INDEX checkouts_store_day_idx ON checkouts (tenant_id, store_id, business_date);
CREATE INDEX checkouts_customer_idx ON checkouts (tenant_id, customer_id, created_at);
-- One row per bill line, for dish analytics (what sells, what goes together).
CREATE TABLE checkout_lines (
    tenant_id BLOB NOT NULL,
    checkout_id BLOB NOT NULL,
    line_no INTEGER NOT NULL,
    item_id BLOB,
    name TEXT NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    unit_price INTEGER NOT NULL,
    gross INTEGER NOT NULL,
    net INTEGER NOT NULL,
    refunded_quantity INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, checkout_id, line_no),
    FOREIGN KEY (tenant_id, checkout_id) REFERENCES checkouts (tenant_id, id)
);
CREATE INDEX checkout_lines_item_idx ON checkout_lines (tenant_id, item_id);
-- The last receipt number of each store's business day.
CREATE TABLE receipt_counters (
    tenant_id BLOB NOT NULL,
    store_id BLOB NOT NULL,
    business_date TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, store_id, business_date)
);
