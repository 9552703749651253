-- Cards, stored value and the double-entry ledger.

CREATE TABLE tenant_settings (
    tenant_id BLOB PRIMARY KEY REFERENCES tenants (id),
    settings TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Chain-wide staff choose the store they work at when they log in.
ALTER TABLE sessions ADD COLUMN store_id BLOB;

ALTER TABLE cards ADD COLUMN kinds TEXT NOT NULL DEFAULT 'stored_value,points';
ALTER TABLE cards ADD COLUMN store_id BLOB;
ALTER TABLE cards ADD COLUMN pin_hash TEXT;
ALTER TABLE cards ADD COLUMN pin_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cards ADD COLUMN pin_locked_until TEXT;
ALTER TABLE cards ADD COLUMN pool_to_org INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cards ADD COLUMN replaced_by BLOB;
ALTER TABLE cards ADD COLUMN status_changed_at TEXT;

-- Balances are cached here and changed only together with their entries.
CREATE TABLE ledger_accounts (
    tenant_id BLOB NOT NULL,
    id BLOB NOT NULL,
    kind TEXT NOT NULL,
    unit TEXT NOT NULL,
    card_id BLOB,
    customer_id BLOB,
    store_id BLOB,
    tender TEXT,
    balance INTEGER NOT NULL,
    -- The lowest balance allowed; NULL for merchant accounts, which have none.
    floor INTEGER,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CHECK (floor IS NULL OR balance >= floor)
);
CREATE INDEX ledger_accounts_card_idx ON ledger_accounts (tenant_id, card_id) WHERE card_id IS NOT NULL;
CREATE INDEX ledger_accounts_customer_idx ON ledger_accounts (tenant_id, customer_id) WHERE customer_id IS NOT NULL;

CREATE TABLE ledger_txns (
    tenant_id BLOB NOT NULL,
    id BLOB NOT NULL,
    kind TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    card_id BLOB,
    customer_id BLOB,
    store_id BLOB,
    staff_id BLOB,
    approver_id BLOB,
    reverses_txn_id BLOB,
    reason TEXT,
    memo TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, idempotency_key),
    FOREIGN KEY (tenant_id, reverses_txn_id) REFERENCES ledger_txns (tenant_id, id)
);
-- A transaction is reversed at most once.
CREATE UNIQUE INDEX ledger_txns_reverses_key ON ledger_txns (tenant_id, reverses_txn_id) WHERE reverses_txn_id IS NOT NULL;
CREATE INDEX ledger_txns_card_idx ON ledger_txns (tenant_id, card_id, created_at);
CREATE INDEX ledger_txns_customer_idx ON ledger_txns (tenant_id, customer_id, created_at);

CREATE TABLE ledger_entries (
    tenant_id BLOB NOT NULL,
    seq INTEGER NOT NULL,
    txn_id BLOB NOT NULL,
    account_id BLOB NOT NULL,
    unit TEXT NOT NULL,
    amount INTEGER NOT NULL,
    balance_after INTEGER NOT NULL,
    staff_id BLOB,
    store_id BLOB,
    created_at TEXT NOT NULL,
    memo TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq),
    FOREIGN KEY (tenant_id, txn_id) REFERENCES ledger_txns (tenant_id, id),
    FOREIGN KEY (tenant_id, account_id) REFERENCES ledger_accounts (tenant_id, id)
);
CREATE INDEX ledger_entries_account_idx ON ledger_entries (tenant_id, account_id, seq);
CREATE INDEX ledger_entries_txn_idx ON ledger_entries (tenant_id, txn_id);

-- The end of each tenant's hash chain.
CREATE TABLE ledger_heads (
    tenant_id BLOB PRIMARY KEY,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL
);

CREATE TABLE card_pin_attempts (
    tenant_id BLOB NOT NULL,
    id BLOB NOT NULL,
    card_id BLOB NOT NULL,
    at TEXT NOT NULL,
    success INTEGER NOT NULL,
    staff_id BLOB,
    store_id BLOB,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, card_id) REFERENCES cards (tenant_id, id)
);
CREATE INDEX card_pin_attempts_card_idx ON card_pin_attempts (tenant_id, card_id, at);

-- Append-only: the database itself refuses edits and deletions of the ledger.
CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
CREATE TRIGGER ledger_txns_no_update BEFORE UPDATE ON ledger_txns
BEGIN SELECT RAISE(ABORT, 'ledger transactions are append-only'); END;
CREATE TRIGGER ledger_txns_no_delete BEFORE DELETE ON ledger_txns
BEGIN SELECT RAISE(ABORT, 'ledger transactions are append-only'); END;
