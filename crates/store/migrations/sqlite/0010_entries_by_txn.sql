-- A transaction's entries in order without scanning the tenant's whole ledger: with only
-- (tenant_id, txn_id), SQLite preferred the primary key to avoid the sort.
DROP INDEX ledger_entries_txn_idx;
CREATE INDEX ledger_entries_txn_idx ON ledger_entries (tenant_id, txn_id, seq);
