-- Staff limits and approval PINs, API tokens, and the append-only audit log.

-- Per-staff limits; NULL means the role's default (see domain/src/permissions.rs).
-- A limit column itself NULL with limits_set means "no limit".
ALTER TABLE staff ADD COLUMN limits_set BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE staff ADD COLUMN max_discount_bp INTEGER;
ALTER TABLE staff ADD COLUMN max_adjustment_per_txn BIGINT;
ALTER TABLE staff ADD COLUMN max_adjustment_per_day BIGINT;
-- A short secret a manager types at the till to approve (argon2id), besides the password.
ALTER TABLE staff ADD COLUMN approval_pin_hash TEXT;

-- Tokens for POS and other systems. Only the SHA-256 of the secret is kept; the scope is
-- a JSON list of permission names. Revoked tokens stay, for the audit trail.
CREATE TABLE api_tokens (
    tenant_id UUID NOT NULL,
    id UUID NOT NULL,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    staff_id UUID NOT NULL,
    store_id UUID,
    scope TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ,
    revoked_by UUID,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, staff_id) REFERENCES staff (tenant_id, id),
    FOREIGN KEY (tenant_id, store_id) REFERENCES stores (tenant_id, id)
);

-- Who did what, when, where, with the state before and after (JSON). Money and points
-- changes are ledger transactions and are searched from ledger_txns, not copied here.
CREATE TABLE audit_log (
    tenant_id UUID NOT NULL,
    id UUID NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    action TEXT NOT NULL,
    staff_id UUID,
    approver_id UUID,
    store_id UUID,
    entity_kind TEXT NOT NULL,
    entity_id TEXT,
    customer_id UUID,
    card_id UUID,
    summary TEXT NOT NULL,
    before_state TEXT,
    after_state TEXT,
    ip TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX audit_log_at_idx ON audit_log (tenant_id, at);
CREATE INDEX audit_log_staff_idx ON audit_log (tenant_id, staff_id, at);
CREATE INDEX audit_log_customer_idx ON audit_log (tenant_id, customer_id, at) WHERE customer_id IS NOT NULL;
CREATE INDEX audit_log_card_idx ON audit_log (tenant_id, card_id, at) WHERE card_id IS NOT NULL;
-- Failed logins per username (the lockout counts them).
CREATE INDEX audit_log_entity_idx ON audit_log (tenant_id, entity_kind, entity_id, at);
CREATE INDEX ledger_txns_staff_idx ON ledger_txns (tenant_id, staff_id, created_at);
CREATE INDEX ledger_txns_created_idx ON ledger_txns (tenant_id, created_at);

-- Append-only, like the ledger.
CREATE FUNCTION patron_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only (% on %)', TG_OP, TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION patron_audit_append_only();
