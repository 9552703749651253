//! Corporate accounts: an organization customer's pooled stored value (its employees'
//! cards with `pool_to_org` spend from it) and its charge account (挂账) with a credit
//! limit, repayments and a monthly statement.

use crate::cards::{Balances, LedgerReceipt};
use crate::{Actor, App, AppError, now};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use patron_domain::ValidationErrors;
use patron_domain::customer::CustomerType;
use patron_domain::ids::CustomerId;
use patron_domain::ledger::{AccountKey, AccountKind, Posting, Tender};
use patron_domain::money::Money;
use patron_domain::permissions::Permission;
use patron_store::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Set the credit limit of an organization's charge account.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditLimit {
    /// Fen; 0 closes the account to new charges.
    pub credit_limit: Money,
}

/// Charge a bill to the organization's account.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Charge {
    pub amount: Money,
    pub memo: Option<String>,
    pub idempotency_key: String,
}

/// A repayment of the charge account.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Repayment {
    pub amount: Money,
    pub tender: Tender,
    pub idempotency_key: String,
}

/// The charge account: what is owed and how much more may be charged.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChargeAccount {
    pub customer_id: CustomerId,
    pub credit_limit: Money,
    /// What the organization owes (positive).
    pub owed: Money,
    pub available: Money,
}

/// One month of a charge account.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChargeStatement {
    pub account: ChargeAccount,
    /// YYYY-MM.
    pub month: String,
    pub opening_owed: Money,
    pub charged: Money,
    pub repaid: Money,
    pub closing_owed: Money,
    pub lines: Vec<crate::cards::StatementLine>,
}

fn charge_key(org: CustomerId) -> AccountKey {
    AccountKey::customer(AccountKind::Charge, org)
}

impl App {
    async fn organization(&self, actor: &Actor, id: CustomerId) -> Result<(), AppError> {
        let c = self.customer(actor, id).await?;
        if c.profile.customer_type != CustomerType::Organization || c.merged_into.is_some() {
            return Err(AppError::Conflict {
                code: "not_an_organization",
                field: None,
                message: "corporate accounts belong to organization customers".into(),
                existing: None,
            });
        }
        Ok(())
    }

    /// The organization's charge account, for a caller who may see corporate accounts.
    pub async fn get_charge_account(
        &self,
        actor: &Actor,
        org: CustomerId,
    ) -> Result<ChargeAccount, AppError> {
        actor.require(Permission::ViewCorporate)?;
        self.charge_account(actor, org).await
    }

    /// The organization's charge account (a helper: callers check their permission).
    pub async fn charge_account(
        &self,
        actor: &Actor,
        org: CustomerId,
    ) -> Result<ChargeAccount, AppError> {
        self.organization(actor, org).await?;
        let id = charge_key(org).account_id(actor.tenant_id);
        let acc = self.storage.accounts(actor.tenant_id, &[id]).await?.pop();
        let (balance, floor) = acc.map_or((0, Some(0)), |a| (a.balance, a.floor));
        let limit = -floor.unwrap_or(0);
        Ok(ChargeAccount {
            customer_id: org,
            credit_limit: Money::from_fen(limit),
            owed: Money::from_fen(-balance),
            available: Money::from_fen(limit + balance),
        })
    }

    /// Sets the credit limit; refused below what is already owed.
    pub async fn set_credit_limit(
        &self,
        actor: &Actor,
        org: CustomerId,
        req: &CreditLimit,
    ) -> Result<ChargeAccount, AppError> {
        actor.require(Permission::ManageCorporate)?;
        let before = self.charge_account(actor, org).await?;
        if req.credit_limit.is_negative() || req.credit_limit > crate::cards::MAX_AMOUNT {
            return Err(ValidationErrors::single(
                "credit_limit",
                "invalid_amount",
                "zero or more, within limits",
            )
            .into());
        }
        self.storage
            .set_account_floor(
                actor.tenant_id,
                &charge_key(org),
                Some(-req.credit_limit.fen()),
                now(),
            )
            .await
            .map_err(|e| match e {
                StoreError::Insufficient { .. } => AppError::Conflict {
                    code: "limit_below_debt",
                    field: Some("credit_limit"),
                    message: "the organization already owes more than this limit".into(),
                    existing: None,
                },
                other => other.into(),
            })?;
        let after = self.charge_account(actor, org).await?;
        // The limit is an account floor, outside the ledger's transactions: audited here.
        self.audit(patron_store::audit::AuditEntry {
            customer_id: Some(org),
            before: crate::audit::state(&before),
            after: crate::audit::state(&after),
            ..self.audit_entry(
                actor,
                "charge_account.credit_limit",
                "charge_account",
                Some(org.0.to_string()),
                format!("挂账额度 / credit limit set: {}", req.credit_limit),
            )
        })
        .await?;
        Ok(after)
    }

    /// Charges a bill to the account, within its credit limit.
    pub async fn charge(
        &self,
        actor: &Actor,
        org: CustomerId,
        req: &Charge,
    ) -> Result<LedgerReceipt, AppError> {
        actor.require(Permission::ChargeToAccount)?;
        self.organization(actor, org).await?;
        crate::cards::check_request(&req.idempotency_key, "amount", req.amount)?;
        let store = crate::cards::at_store(actor, "charges")?;
        let postings = vec![
            Posting::new(charge_key(org), -req.amount.fen()),
            Posting::new(
                AccountKey::store(AccountKind::Revenue, store),
                req.amount.fen(),
            ),
        ];
        let memo = req
            .memo
            .clone()
            .unwrap_or_else(|| format!("挂账 / charged {}", req.amount));
        let hash = crate::cards::request_hash("charge", org, req);
        let r = self
            .post_corporate(
                actor,
                "charge",
                &req.idempotency_key,
                hash,
                org,
                postings,
                memo,
                serde_json::json!({"amount": req.amount}),
            )
            .await;
        match r {
            Err(AppError::Conflict {
                code: "insufficient_balance",
                ..
            }) => Err(AppError::Conflict {
                code: "credit_limit_exceeded",
                field: Some("amount"),
                message: format!(
                    "over the credit limit: {} available",
                    self.charge_account(actor, org).await?.available
                ),
                existing: None,
            }),
            other => other,
        }
    }

    /// Records a repayment; at most what is owed.
    pub async fn repay(
        &self,
        actor: &Actor,
        org: CustomerId,
        req: &Repayment,
    ) -> Result<LedgerReceipt, AppError> {
        actor.require(Permission::ChargeToAccount)?;
        crate::cards::check_request(&req.idempotency_key, "amount", req.amount)?;
        let account = self.charge_account(actor, org).await?;
        let hash = crate::cards::request_hash("repayment", org, req);
        if let Some(t) = self
            .storage
            .txn_by_key(actor.tenant_id, &req.idempotency_key)
            .await?
            && t.request_hash == hash
        {
            // A retried repayment answers with the original, whatever is owed now.
        } else if req.amount > account.owed {
            return Err(ValidationErrors::single(
                "amount",
                "more_than_owed",
                format!("only {} is owed", account.owed),
            )
            .into());
        }
        let store = crate::cards::at_store(actor, "repayments")?;
        let postings = vec![
            Posting::new(AccountKey::tender(store, req.tender), req.amount.fen()),
            Posting::new(charge_key(org), req.amount.fen()),
        ];
        let memo = format!(
            "挂账还款 / repayment {} ({})",
            req.amount,
            req.tender.as_str()
        );
        self.post_corporate(
            actor,
            "repayment",
            &req.idempotency_key,
            hash,
            org,
            postings,
            memo,
            serde_json::json!({"amount": req.amount, "tender": req.tender}),
        )
        .await
    }

    /// The organization's pooled stored value.
    pub async fn org_pool(&self, actor: &Actor, org: CustomerId) -> Result<Balances, AppError> {
        actor.require(Permission::ViewCorporate)?;
        self.organization(actor, org).await?;
        let keys = [
            AccountKey::customer(AccountKind::OrgPrincipal, org),
            AccountKey::customer(AccountKind::OrgBonus, org),
            AccountKey::customer(AccountKind::OrgPoints, org),
        ];
        self.balances_of(actor, &keys).await
    }

    /// One calendar month (UTC) of the charge account: opening, charges, repayments, closing.
    pub async fn charge_statement(
        &self,
        actor: &Actor,
        org: CustomerId,
        month: &str,
    ) -> Result<ChargeStatement, AppError> {
        actor.require(Permission::ViewCorporate)?;
        let start = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
            .map_err(|_| ValidationErrors::single("month", "invalid_month", "YYYY-MM"))?;
        let next = if start.month() == 12 {
            NaiveDate::from_ymd_opt(start.year() + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(start.year(), start.month() + 1, 1)
        }
        .expect("valid month");
        let at = |d: NaiveDate| -> DateTime<Utc> {
            Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"))
        };
        let account = self.charge_account(actor, org).await?;
        let id = charge_key(org).account_id(actor.tenant_id);
        let before = self
            .storage
            .account_entries(actor.tenant_id, &[id], None, Some(at(start)))
            .await?;
        let during = self
            .storage
            .account_entries(actor.tenant_id, &[id], Some(at(start)), Some(at(next)))
            .await?;
        let opening = -before.last().map_or(0, |e| e.balance_after);
        let charged: i64 = during
            .iter()
            .filter(|e| e.amount < 0)
            .map(|e| -e.amount)
            .sum();
        let repaid: i64 = during
            .iter()
            .filter(|e| e.amount > 0)
            .map(|e| e.amount)
            .sum();
        let closing = -during.last().map_or(-opening, |e| e.balance_after);
        let lines = during
            .into_iter()
            .map(|e| crate::cards::StatementLine {
                at: e.created_at,
                txn_id: e.txn_id,
                kind: if e.amount < 0 {
                    "charge".into()
                } else {
                    "repayment".into()
                },
                balance: "charge".into(),
                amount: e.amount,
                balance_after: e.balance_after,
                memo: e.memo,
                seq: e.seq,
            })
            .collect();
        Ok(ChargeStatement {
            account,
            month: month.to_string(),
            opening_owed: Money::from_fen(opening),
            charged: Money::from_fen(charged),
            repaid: Money::from_fen(repaid),
            closing_owed: Money::from_fen(closing),
            lines,
        })
    }
}
