//! `patron verify`: recompute every balance from the entries, check that every
//! transaction balances, and that each tenant's hash chain is intact; also that points
//! lots and the monthly growth totals agree with what they summarise.

use crate::{App, AppError};
use patron_domain::ids::TenantId;
use patron_domain::ledger::{AccountKind, EntryFields, GENESIS_HASH, Normal, Unit, entry_hash};
use serde::Serialize;
use std::collections::HashMap;

/// What was checked and what was wrong.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub tenants: u64,
    pub accounts: u64,
    pub entries: u64,
    pub transactions: u64,
    pub violations: Vec<String>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }
}

const PAGE: i64 = 10_000;

impl App {
    /// Verifies the whole database (every tenant).
    pub async fn verify_ledger(&self) -> Result<VerifyReport, AppError> {
        let mut report = VerifyReport::default();
        for tenant in self.storage.list_tenants().await? {
            report.tenants += 1;
            self.verify_tenant(tenant.id, &mut report).await?;
        }
        Ok(report)
    }

    async fn verify_tenant(
        &self,
        tenant: TenantId,
        report: &mut VerifyReport,
    ) -> Result<(), AppError> {
        let s = &self.storage;
        let accounts = s.all_accounts(tenant).await?;
        report.accounts += accounts.len() as u64;
        let by_id: HashMap<uuid::Uuid, &patron_store::ledger::AccountRecord> =
            accounts.iter().map(|a| (a.id, a)).collect();
        let mut running: HashMap<uuid::Uuid, i64> = HashMap::new();
        // Per transaction and unit: debits minus credits must be zero.
        let mut txn_sums: HashMap<(uuid::Uuid, Unit), i128> = HashMap::new();
        let mut prev_hash = GENESIS_HASH.to_string();
        let mut expected_seq = 0i64;
        let mut after = 0i64;
        loop {
            let page = s.entries_after(tenant, after, PAGE).await?;
            if page.is_empty() {
                break;
            }
            for e in &page {
                report.entries += 1;
                expected_seq += 1;
                if e.seq != expected_seq {
                    report.violations.push(format!(
                        "tenant {}: entry seq {} where {} was expected (an entry is missing)",
                        tenant, e.seq, expected_seq
                    ));
                    expected_seq = e.seq;
                }
                if e.prev_hash != prev_hash {
                    report.violations.push(format!(
                        "tenant {}: entry {} does not chain to the entry before it",
                        tenant, e.seq
                    ));
                }
                let fields = EntryFields {
                    tenant,
                    seq: e.seq,
                    txn_id: e.txn_id,
                    account_id: e.account_id,
                    amount: e.amount,
                    balance_after: e.balance_after,
                    staff: e.staff_id.map(|x| x.0),
                    store: e.store_id.map(|x| x.0),
                    at_micros: e.created_at.timestamp_micros(),
                    memo: &e.memo,
                    rule: e.rule.as_deref(),
                    memo_en: e.memo_en.as_deref(),
                };
                let h = entry_hash(&e.prev_hash, &fields);
                if h != e.hash {
                    report.violations.push(format!(
                        "tenant {}: entry {} was altered (its hash does not match its contents)",
                        tenant, e.seq
                    ));
                }
                prev_hash = e.hash.clone();
                let bal = running.entry(e.account_id).or_insert(0);
                *bal += e.amount;
                if *bal != e.balance_after {
                    report.violations.push(format!(
                        "tenant {}: entry {} says balance after {} but the entries sum to {}",
                        tenant, e.seq, e.balance_after, bal
                    ));
                }
                match by_id.get(&e.account_id) {
                    Some(a) => {
                        if let Some(floor) = a.floor
                            && *bal < floor
                        {
                            report.violations.push(format!(
                                "tenant {}: account {} went to {} below its floor {}",
                                tenant, a.id, bal, floor
                            ));
                        }
                        let kind: AccountKind = a.key.kind;
                        let signed = match kind.normal() {
                            Normal::Debit => i128::from(e.amount),
                            Normal::Credit => -i128::from(e.amount),
                        };
                        *txn_sums.entry((e.txn_id, kind.unit())).or_insert(0) += signed;
                    }
                    None => report.violations.push(format!(
                        "tenant {}: entry {} names an unknown account",
                        tenant, e.seq
                    )),
                }
            }
            after = page.last().map(|e| e.seq).unwrap_or(after);
        }
        for a in &accounts {
            let sum = running.get(&a.id).copied().unwrap_or(0);
            if sum != a.balance {
                report.violations.push(format!(
                    "tenant {}: account {} ({}) caches {} but its entries sum to {}",
                    tenant,
                    a.id,
                    a.key.kind.as_str(),
                    a.balance,
                    sum
                ));
            }
        }
        // Points lots must hold exactly the points balance of their account.
        let lot_sums: HashMap<uuid::Uuid, i64> = s.lot_sums(tenant).await?.into_iter().collect();
        for a in accounts
            .iter()
            .filter(|a| matches!(a.key.kind, AccountKind::CardPoints | AccountKind::OrgPoints))
        {
            let lots = lot_sums.get(&a.id).copied().unwrap_or(0);
            if lots != a.balance {
                report.violations.push(format!(
                    "tenant {}: points account {} holds {} but its lots hold {}",
                    tenant, a.id, a.balance, lots
                ));
            }
        }
        // The monthly growth totals the level checks read must be their visits' sums.
        for (customer, month, kept, actual) in s.growth_months_off(tenant).await? {
            report.violations.push(format!(
                "tenant {tenant}: customer {} keeps a growth of {kept} for {} but its visits sum to {actual}",
                customer.0,
                month.format("%Y-%m")
            ));
        }
        let mut unbalanced: Vec<_> = txn_sums.iter().filter(|(_, v)| **v != 0).collect();
        unbalanced.sort_by_key(|((id, _), _)| *id);
        for ((id, unit), v) in unbalanced {
            report.violations.push(format!(
                "tenant {}: transaction {} does not balance in {}: off by {}",
                tenant,
                id,
                unit.as_str(),
                v
            ));
        }
        let mut txn_after = None;
        loop {
            let ids = s.txn_ids_after(tenant, txn_after, PAGE).await?;
            report.transactions += ids.len() as u64;
            match ids.last() {
                Some(l) => txn_after = Some(*l),
                None => break,
            }
        }
        let head = s.ledger_head(tenant).await?;
        let head_ok = match &head {
            Some((seq, hash)) => *seq == expected_seq && *hash == prev_hash,
            None => expected_seq == 0,
        };
        if !head_ok {
            report.violations.push(format!(
                "tenant {tenant}: the chain head ({head:?}) does not match the last entry (seq {expected_seq}): \
                 entries were removed or added behind the system's back"
            ));
        }
        Ok(())
    }
}
