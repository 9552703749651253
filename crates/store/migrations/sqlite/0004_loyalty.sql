-- Points lots, visits (growth value), member levels and the gift catalogue.

-- Points entries name the rule that produced them and explain it in both languages.
ALTER TABLE ledger_entries ADD COLUMN rule TEXT;
ALTER TABLE ledger_entries ADD COLUMN memo_en TEXT;

-- Points are held in lots so they can expire by age. A lot's `remaining` is a cached
-- value beside the ledger, changed only by the ledger's post: the lots of an account
-- always sum to its balance, and every change is logged in points_lot_moves.
CREATE TABLE points_lots (
    tenant_id BLOB NOT NULL,
    id BLOB NOT NULL,
    account_id BLOB NOT NULL,
    -- The transaction that created the lot (NULL for balances that predate lots).
    txn_id BLOB,
    earned_on TEXT NOT NULL,
    -- The last local day the points are valid; NULL = they never expire.
    expires_on TEXT,
    points INTEGER NOT NULL CHECK (points > 0),
    remaining INTEGER NOT NULL CHECK (remaining >= 0 AND remaining <= points),
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES ledger_accounts (tenant_id, id)
);
CREATE INDEX points_lots_account_idx ON points_lots (tenant_id, account_id, expires_on) WHERE remaining > 0;
CREATE INDEX points_lots_expiry_idx ON points_lots (tenant_id, expires_on) WHERE remaining > 0 AND expires_on IS NOT NULL;
CREATE INDEX points_lots_txn_idx ON points_lots (tenant_id, txn_id);
CREATE TABLE points_lot_moves (
    tenant_id BLOB NOT NULL,
    txn_id BLOB NOT NULL,
    lot_id BLOB NOT NULL,
    -- Negative: taken from the lot; positive: put (back) into it.
    points INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, txn_id, lot_id),
    FOREIGN KEY (tenant_id, lot_id) REFERENCES points_lots (tenant_id, id)
);
CREATE INDEX points_lot_moves_lot_idx ON points_lot_moves (tenant_id, lot_id);
-- Points balances from before lots existed become one never-expiring lot each.
INSERT INTO points_lots (tenant_id, id, account_id, txn_id, earned_on, expires_on, points, remaining, created_at)
SELECT tenant_id, id, id, NULL, substr(created_at, 1, 10), NULL, balance, balance, created_at
FROM ledger_accounts WHERE kind IN ('card_points', 'org_points') AND balance > 0;

-- Every spend of a known customer: the growth value levels are computed from, and the
-- visits the Nth-visit bonus and the analytics count.
CREATE TABLE visits (
    tenant_id BLOB NOT NULL,
    id BLOB NOT NULL,
    customer_id BLOB,
    card_id BLOB,
    store_id BLOB,
    staff_id BLOB,
    txn_id BLOB,
    -- purchase (recorded at the till), checkout.
    source TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    local_date TEXT NOT NULL,
    -- The whole bill and the part that counts as growth (paid, after discounts).
    amount INTEGER NOT NULL CHECK (amount >= 0),
    growth INTEGER NOT NULL CHECK (growth >= 0),
    reversed_at TEXT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id)
);
CREATE INDEX visits_customer_idx ON visits (tenant_id, customer_id, local_date);
CREATE INDEX visits_txn_idx ON visits (tenant_id, txn_id);
CREATE INDEX visits_date_idx ON visits (tenant_id, local_date);

-- Level history: every change with its reason, never edited.
CREATE TABLE level_changes (
    tenant_id BLOB NOT NULL,
    id BLOB NOT NULL,
    customer_id BLOB NOT NULL,
    from_level TEXT,
    to_level TEXT NOT NULL,
    reason TEXT NOT NULL,
    growth INTEGER NOT NULL,
    explanation TEXT NOT NULL,
    explanation_en TEXT NOT NULL,
    staff_id BLOB,
    occurred_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id)
);
CREATE INDEX level_changes_customer_idx ON level_changes (tenant_id, customer_id, occurred_at);

-- When each tenant's scheduled jobs (level review, points expiry, coupon expiry) last ran.
CREATE TABLE job_runs (
    tenant_id BLOB NOT NULL,
    job TEXT NOT NULL,
    last_run_on TEXT NOT NULL,
    last_run_at TEXT NOT NULL,
    summary TEXT NOT NULL,
    PRIMARY KEY (tenant_id, job)
);

-- Gifts customers can take for points.
CREATE TABLE gifts (
    tenant_id BLOB NOT NULL,
    id BLOB NOT NULL,
    name TEXT NOT NULL,
    name_en TEXT NOT NULL,
    points_price INTEGER NOT NULL CHECK (points_price > 0),
    -- NULL = unlimited.
    stock INTEGER CHECK (stock IS NULL OR stock >= 0),
    active INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
