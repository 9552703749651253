-- Cards, stored value and the double-entry ledger.

CREATE TABLE tenant_settings (
    tenant_id UUID PRIMARY KEY REFERENCES tenants (id),
    settings TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Chain-wide staff choose the store they work at when they log in.
ALTER TABLE sessions ADD COLUMN store_id UUID;

ALTER TABLE cards ADD COLUMN kinds TEXT NOT NULL DEFAULT 'stored_value,points';
ALTER TABLE cards ADD COLUMN store_id UUID;
ALTER TABLE cards ADD COLUMN pin_hash TEXT;
ALTER TABLE cards ADD COLUMN pin_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cards ADD COLUMN pin_locked_until TIMESTAMPTZ;
ALTER TABLE cards ADD COLUMN pool_to_org BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE cards ADD COLUMN replaced_by UUID;
ALTER TABLE cards ADD COLUMN status_changed_at TIMESTAMPTZ;

-- Balances are cached here and changed only together with their entries.
CREATE TABLE ledger_accounts (
    tenant_id UUID NOT NULL,
    id UUID NOT NULL,
    kind TEXT NOT NULL,
    unit TEXT NOT NULL,
    card_id UUID,
    customer_id UUID,
    store_id UUID,
    tender TEXT,
    balance BIGINT NOT NULL,
    -- The lowest balance allowed; NULL for merchant accounts, which have none.
    floor BIGINT,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CHECK (floor IS NULL OR balance >= floor)
);
CREATE INDEX ledger_accounts_card_idx ON ledger_accounts (tenant_id, card_id) WHERE card_id IS NOT NULL;
CREATE INDEX ledger_accounts_customer_idx ON ledger_accounts (tenant_id, customer_id) WHERE customer_id IS NOT NULL;

CREATE TABLE ledger_txns (
    tenant_id UUID NOT NULL,
    id UUID NOT NULL,
    kind TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    card_id UUID,
    customer_id UUID,
    store_id UUID,
    staff_id UUID,
    approver_id UUID,
    reverses_txn_id UUID,
    reason TEXT,
    memo TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, idempotency_key),
    FOREIGN KEY (tenant_id, reverses_txn_id) REFERENCES ledger_txns (tenant_id, id)
);
-- A transaction is reversed at most once.
CREATE UNIQUE INDEX ledger_txns_reverses_key ON ledger_txns (tenant_id, reverses_txn_id) WHERE reverses_txn_id IS NOT NULL;
CREATE INDEX ledger_txns_card_idx ON ledger_txns (tenant_id, card_id, created_at);
CREATE INDEX ledger_txns_customer_idx ON ledger_txns (tenant_id, customer_id, created_at);

CREATE TABLE ledger_entries (
    tenant_id UUID NOT NULL,
    seq BIGINT NOT NULL,
    txn_id UUID NOT NULL,
    account_id UUID NOT NULL,
    unit TEXT NOT NULL,
    amount BIGINT NOT NULL,
    balance_after BIGINT NOT NULL,
    staff_id UUID,
    store_id UUID,
    created_at TIMESTAMPTZ NOT NULL,
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
    tenant_id UUID PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);

CREATE TABLE card_pin_attempts (
    tenant_id UUID NOT NULL,
    id UUID NOT NULL,
    card_id UUID NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    success BOOLEAN NOT NULL,
    staff_id UUID,
    store_id UUID,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, card_id) REFERENCES cards (tenant_id, id)
);
CREATE INDEX card_pin_attempts_card_idx ON card_pin_attempts (tenant_id, card_id, at);

-- Append-only: the database itself refuses edits and deletions of the ledger.
CREATE FUNCTION patron_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only (% on %)', TG_OP, TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION patron_ledger_append_only();
CREATE TRIGGER ledger_txns_append_only BEFORE UPDATE OR DELETE ON ledger_txns
    FOR EACH ROW EXECUTE FUNCTION patron_ledger_append_only();
