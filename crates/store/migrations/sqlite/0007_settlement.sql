-- Daily settlement (日结) and shift handover (交班).

-- A store's business day once it has been closed (or reopened). The instants are fixed
-- at close from the tenant's day start, so a later change of the setting cannot move a
-- closed day. While a closed row covers an instant, the ledger refuses to post at it.
CREATE TABLE business_days (
    tenant_id BLOB NOT NULL,
    store_id BLOB NOT NULL,
    business_date TEXT NOT NULL,
    -- [starts_at, ends_at), UTC.
    starts_at TEXT NOT NULL,
    ends_at TEXT NOT NULL,
    -- open, closed.
    status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    closed_by BLOB,
    closed_at TEXT,
    reopened_by BLOB,
    reopened_at TEXT,
    reopen_reason TEXT,
    -- The settlement report as it was when the day was closed (JSON).
    report TEXT,
    -- Who signed and what they wrote when closing.
    note TEXT,
    -- How many times the day has been closed.
    closings INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, store_id, business_date),
    FOREIGN KEY (tenant_id, store_id) REFERENCES stores (tenant_id, id)
);
-- The ledger's check: is there a closed day of this store around this instant?
CREATE INDEX business_days_closed_idx ON business_days (tenant_id, store_id, starts_at) WHERE status = 'closed';

-- A cashier's shift at a store: the float at the start, the counted cash at the end.
CREATE TABLE shifts (
    tenant_id BLOB NOT NULL,
    id BLOB NOT NULL,
    store_id BLOB NOT NULL,
    staff_id BLOB NOT NULL,
    opened_at TEXT NOT NULL,
    opening_float INTEGER NOT NULL CHECK (opening_float >= 0),
    closed_at TEXT,
    closed_by BLOB,
    counted_cash INTEGER,
    expected_cash INTEGER,
    -- counted − expected: negative is a shortage.
    variance INTEGER,
    note TEXT,
    -- The staff member the drawer was handed to.
    handed_to BLOB,
    -- The shift's report when it was closed (JSON).
    report TEXT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, store_id) REFERENCES stores (tenant_id, id),
    FOREIGN KEY (tenant_id, staff_id) REFERENCES staff (tenant_id, id)
);
-- One open shift per cashier and store.
CREATE UNIQUE INDEX shifts_open_key ON shifts (tenant_id, store_id, staff_id) WHERE closed_at IS NULL;
CREATE INDEX shifts_store_idx ON shifts (tenant_id, store_id, opened_at);

-- The settlement's aggregates read a store's rows of one day.
CREATE INDEX ledger_entries_store_time_idx ON ledger_entries (tenant_id, store_id, created_at);
CREATE INDEX ledger_txns_store_time_idx ON ledger_txns (tenant_id, store_id, created_at);
CREATE INDEX checkouts_store_time_idx ON checkouts (tenant_id, store_id, created_at);
CREATE INDEX visits_store_time_idx ON visits (tenant_id, store_id, occurred_at);
CREATE INDEX coupons_redeemed_store_idx ON coupons (tenant_id, redeemed_store_id, redeemed_at) WHERE redeemed_at IS NOT NULL;
CREATE INDEX coupons_issued_store_idx ON coupons (tenant_id, issued_store_id, issued_at);
