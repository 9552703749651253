//! Coupons: templates, spend-trigger rules, issuing (to one customer, to a list, by
//! rule), redemption at a store (also by a friend the coupon was given to), voiding and
//! expiry.
//!
//! The rules are `patron_domain::coupon`; the store makes redemption a single conditional
//! statement, so a coupon is used at most once however many tills try at the same time.
//! A checkout redeems and issues coupons inside its own ledger post: it calls
//! [`App::quote_coupon`] and [`App::spend_triggered_coupons`] here, then posts
//! `LedgerChange::CouponRedeem` / `LedgerChange::CouponIssue`.

use crate::audit;
use crate::{Actor, App, AppError, new_uuid, now};
use chrono::{DateTime, NaiveDate, Utc};
use patron_domain::coupon::{
    self, CODE_BYTES, Coupon, CouponKind, CouponRejection, CouponStatus, CouponTemplate, HourRange,
    IssueChannel, IssueRule, RedeemContext, Validity,
};
use patron_domain::ids::{CustomerId, StoreId, TenantId};
use patron_domain::money::Money;
use patron_domain::permissions::Permission;
use patron_domain::settings::TenantSettings;
use patron_domain::{FieldError, ValidationErrors};
use patron_store::StoreError;
use patron_store::audit::AuditEntry;
use patron_store::coupons::{CouponFilter, CouponRedemption};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;
use uuid::Uuid;

/// Most customers one bulk issue may name.
pub const MAX_BULK: usize = 10_000;
/// Most coupons one list returns.
pub const MAX_LIST: i64 = 500;

/// A coupon template as written by people (create, or the whole of it after a patch).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    pub name: String,
    #[serde(default)]
    pub name_en: String,
    /// `{"type": "cash", "value": 2000, "min_spend": 10000}`,
    /// `{"type": "discount", "percent_off_bp": 1200, "cap": 5000}`,
    /// `{"type": "item", "menu_item_id": "...", "name": "小笼包"}`.
    pub kind: CouponKind,
    /// `{"type": "fixed", "from": "2026-05-01", "to": "2026-05-31"}`,
    /// `{"type": "days_after_issue", "days": 30}`, `{"type": "end_of_month"}`.
    pub validity: Validity,
    /// 1 = Monday … 7 = Sunday.
    #[serde(default)]
    pub excluded_weekdays: Vec<u8>,
    /// `[{"from": "11:00", "to": "13:00"}]`, local time, end excluded.
    #[serde(default)]
    pub excluded_hours: Vec<HourRange>,
    /// Empty: every store.
    #[serde(default)]
    pub store_ids: Vec<StoreId>,
    /// Empty: every level.
    #[serde(default)]
    pub level_codes: Vec<String>,
    #[serde(default)]
    pub per_customer_limit: Option<u32>,
    #[serde(default)]
    pub stacks_with_coupons: bool,
    #[serde(default = "yes")]
    pub stacks_with_member_price: bool,
    #[serde(default)]
    pub transferable: bool,
    #[serde(default)]
    pub points_price: Option<i64>,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

impl TemplateInput {
    fn of(t: &CouponTemplate) -> TemplateInput {
        TemplateInput {
            name: t.name.clone(),
            name_en: t.name_en.clone(),
            kind: t.kind.clone(),
            validity: t.validity,
            excluded_weekdays: t.excluded_weekdays.clone(),
            excluded_hours: t.excluded_hours.clone(),
            store_ids: t.store_ids.clone(),
            level_codes: t.level_codes.clone(),
            per_customer_limit: t.per_customer_limit,
            stacks_with_coupons: t.stacks_with_coupons,
            stacks_with_member_price: t.stacks_with_member_price,
            transferable: t.transferable,
            points_price: t.points_price,
            active: t.active,
        }
    }
}

/// A spend-trigger rule as written by people.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueRuleInput {
    #[schema(value_type = String, format = Uuid)]
    pub template_id: Uuid,
    /// A bill of at least this (fen) earns one coupon.
    pub min_spend: Money,
    #[serde(default = "yes")]
    pub active: bool,
}

/// Changes to a rule; absent fields stay.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueRulePatch {
    #[schema(value_type = Option<String>, format = Uuid)]
    pub template_id: Option<Uuid>,
    pub min_spend: Option<Money>,
    pub active: Option<bool>,
}

/// Use a coupon at the actor's store.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemCoupon {
    /// Who uses it, when not (known to be) its owner: a friend it was given to.
    pub customer_id: Option<CustomerId>,
    /// The part of the bill the coupon applies to (fen); needed for a threshold and a
    /// percentage.
    pub subtotal: Option<Money>,
    /// Makes the call safe to retry: the same key answers with the first result.
    pub idempotency_key: Option<String>,
}

/// A coupon with what people need to read it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CouponView {
    #[serde(flatten)]
    pub coupon: Coupon,
    pub template_name: String,
    pub kind: CouponKind,
    /// E.g. "¥20.00 (满¥100.00)".
    pub label: String,
}

/// What a redemption did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Redemption {
    pub coupon: CouponView,
    /// The money the coupon takes off the subtotal; absent for a percentage without a
    /// subtotal.
    pub discount: Option<Money>,
    /// True when this answers a retry (same idempotency key): nothing new was done.
    pub replayed: bool,
    /// True when the redeemer was recorded as referred by the coupon's owner.
    pub referral_recorded: bool,
}

/// A coupon checked for use, not yet used: what a checkout needs before its post.
#[derive(Debug, Clone)]
pub struct CouponQuote {
    pub coupon: Coupon,
    pub template: CouponTemplate,
    /// As in [`Redemption::discount`].
    pub discount: Option<Money>,
}

/// One coupon code from 80 bits of the thread's CSPRNG (ChaCha, seeded from the OS).
pub fn new_coupon_code() -> String {
    let mut bytes = [0u8; CODE_BYTES];
    rand::fill(&mut bytes);
    coupon::code_from_bytes(bytes)
}

fn not_found() -> AppError {
    AppError::NotFound { entity: "coupon" }
}

/// A rejection as an error: a used coupon is a conflict (409), the others are refusals
/// of this use (422).
fn rejected(r: CouponRejection) -> AppError {
    match r {
        CouponRejection::AlreadyRedeemed => AppError::Conflict {
            code: "coupon_already_redeemed",
            field: Some("code"),
            message: r.to_string(),
            existing: None,
        },
        other => AppError::CouponRejected(other),
    }
}

/// The discount of a coupon on a subtotal (see [`Redemption::discount`]).
fn discount(
    kind: &CouponKind,
    subtotal: Option<Money>,
    item_price: Option<Money>,
) -> Option<Money> {
    match (subtotal, kind) {
        (Some(s), _) => Some(coupon::discount_for(kind, s, item_price)),
        (None, CouponKind::Cash { value, .. }) => Some(*value),
        (None, CouponKind::Item { .. }) => item_price,
        (None, CouponKind::Discount { .. }) => None,
    }
}

impl App {
    /// The tenant's settings without an actor (jobs).
    async fn tenant_settings(&self, tenant: TenantId) -> Result<TenantSettings, AppError> {
        Ok(match self.storage.settings(tenant).await? {
            Some(v) => serde_json::from_value(v)
                .map_err(|e| AppError::Internal(format!("stored settings unreadable: {e}")))?,
            None => TenantSettings::default(),
        })
    }

    /// Validates a template against the domain rules and the tenant's stores, menu and
    /// levels.
    async fn checked_template(&self, actor: &Actor, t: &CouponTemplate) -> Result<(), AppError> {
        let mut errors = coupon::validate_template(t).err().unwrap_or_default();
        let stores = self.storage.list_stores(actor.tenant_id).await?;
        if let Some(s) = t
            .store_ids
            .iter()
            .find(|s| !stores.iter().any(|x| x.id == **s))
        {
            errors.push(FieldError::new(
                "store_ids",
                "unknown_store",
                format!("no store {s}"),
            ));
        }
        if let CouponKind::Item { menu_item_id, .. } = &t.kind {
            let (_, items) = self.storage.menu(actor.tenant_id).await?;
            if !items.iter().any(|i| i.id == *menu_item_id) {
                errors.push(FieldError::new(
                    "kind.menu_item_id",
                    "unknown_menu_item",
                    format!("no dish {menu_item_id}"),
                ));
            }
        }
        let settings = self.settings(actor).await?;
        let known: Vec<&str> = settings
            .levels
            .levels
            .iter()
            .map(|l| l.code.as_str())
            .collect();
        if let Some(l) = t.level_codes.iter().find(|l| !known.contains(&l.as_str())) {
            errors.push(FieldError::new(
                "level_codes",
                "unknown_level",
                format!("“{l}” is not one of: {}", known.join(", ")),
            ));
        }
        Ok(errors.into_result(())?)
    }

    fn template_from(
        actor: &Actor,
        id: Uuid,
        input: &TemplateInput,
        created_at: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> CouponTemplate {
        let mut weekdays = input.excluded_weekdays.clone();
        weekdays.sort_unstable();
        weekdays.dedup();
        CouponTemplate {
            tenant_id: actor.tenant_id,
            id,
            name: input.name.trim().to_string(),
            name_en: input.name_en.trim().to_string(),
            kind: match &input.kind {
                CouponKind::Item { menu_item_id, name } => CouponKind::Item {
                    menu_item_id: *menu_item_id,
                    name: name.trim().to_string(),
                },
                k => k.clone(),
            },
            validity: input.validity,
            excluded_weekdays: weekdays,
            excluded_hours: input.excluded_hours.clone(),
            store_ids: input.store_ids.clone(),
            level_codes: input
                .level_codes
                .iter()
                .map(|l| l.trim().to_string())
                .collect(),
            per_customer_limit: input.per_customer_limit,
            stacks_with_coupons: input.stacks_with_coupons,
            stacks_with_member_price: input.stacks_with_member_price,
            transferable: input.transferable,
            points_price: input.points_price,
            active: input.active,
            created_at,
            updated_at: at,
        }
    }

    /// Creates a coupon template.
    pub async fn create_coupon_template(
        &self,
        actor: &Actor,
        input: &TemplateInput,
    ) -> Result<CouponTemplate, AppError> {
        actor.require(Permission::ManageCoupons)?;
        let at = now();
        let t = Self::template_from(actor, new_uuid(), input, at, at);
        self.checked_template(actor, &t).await?;
        self.storage.insert_coupon_template(&t).await?;
        self.audit(AuditEntry {
            after: audit::state(&t),
            ..self.audit_entry(
                actor,
                "coupon_template.create",
                "coupon_template",
                Some(t.id.to_string()),
                format!("新券模板 / coupon template created: {}", t.name),
            )
        })
        .await?;
        Ok(t)
    }

    /// Applies a JSON merge patch to a template. What a coupon is worth (`kind`) cannot
    /// change once coupons were issued from it: make a new template instead.
    pub async fn update_coupon_template(
        &self,
        actor: &Actor,
        id: Uuid,
        patch: &serde_json::Value,
    ) -> Result<CouponTemplate, AppError> {
        actor.require(Permission::ManageCoupons)?;
        let current = self.coupon_template(actor, id).await?;
        let serde_json::Value::Object(changes) = patch else {
            return Err(ValidationErrors::single(
                "body",
                "invalid_patch",
                "the body must be a JSON object",
            )
            .into());
        };
        let mut merged = serde_json::to_value(TemplateInput::of(&current)).expect("serialises");
        let obj = merged.as_object_mut().expect("an object");
        for (k, v) in changes {
            if v.is_null() {
                obj.remove(k);
            } else {
                obj.insert(k.clone(), v.clone());
            }
        }
        let input: TemplateInput = serde_json::from_value(merged).map_err(|e| {
            let msg = e.to_string();
            let field = changes
                .keys()
                .find(|k| msg.contains(k.as_str()))
                .cloned()
                .unwrap_or_else(|| "body".into());
            ValidationErrors::single(&field, "invalid_value", msg)
        })?;
        let t = Self::template_from(actor, id, &input, current.created_at, now());
        if t.kind != current.kind
            && self
                .storage
                .count_coupons_of_template(actor.tenant_id, id)
                .await?
                > 0
        {
            return Err(AppError::Conflict {
                code: "template_in_use",
                field: Some("kind"),
                message: "coupons were issued from this template: what they are worth cannot change; create a new template".into(),
                existing: None,
            });
        }
        self.checked_template(actor, &t).await?;
        self.storage.update_coupon_template(&t).await?;
        self.template_cache.forget(actor.tenant_id);
        self.audit(AuditEntry {
            before: audit::state(&current),
            after: audit::state(&t),
            ..self.audit_entry(
                actor,
                "coupon_template.update",
                "coupon_template",
                Some(id.to_string()),
                format!("券模板变更 / coupon template changed: {}", t.name),
            )
        })
        .await?;
        Ok(t)
    }

    /// Stops a template from issuing; coupons already issued stay usable.
    pub async fn deactivate_coupon_template(
        &self,
        actor: &Actor,
        id: Uuid,
    ) -> Result<CouponTemplate, AppError> {
        self.update_coupon_template(actor, id, &serde_json::json!({"active": false}))
            .await
    }

    /// A template, for a caller who may see the catalogue.
    pub async fn get_coupon_template(
        &self,
        actor: &Actor,
        id: Uuid,
    ) -> Result<CouponTemplate, AppError> {
        actor.require(Permission::ViewCatalog)?;
        self.coupon_template(actor, id).await
    }

    /// A template (a helper: callers check their permission).
    pub async fn coupon_template(
        &self,
        actor: &Actor,
        id: Uuid,
    ) -> Result<CouponTemplate, AppError> {
        self.storage
            .coupon_template(actor.tenant_id, id)
            .await?
            .ok_or(AppError::NotFound {
                entity: "coupon template",
            })
    }

    /// A template as bills read it: kept for a few seconds (`template_cache`), forgotten
    /// when this process changes one.
    pub(crate) async fn coupon_template_cached(
        &self,
        actor: &Actor,
        id: Uuid,
    ) -> Result<CouponTemplate, AppError> {
        if let Some(t) = self.template_cache.get_many(actor.tenant_id, &[id]).0.pop() {
            return Ok(t);
        }
        let t = self.coupon_template(actor, id).await?;
        self.template_cache
            .put_many(actor.tenant_id, [(id, t.clone())]);
        Ok(t)
    }

    /// Every template, newest first.
    pub async fn coupon_templates(&self, actor: &Actor) -> Result<Vec<CouponTemplate>, AppError> {
        actor.require(Permission::ViewCatalog)?;
        Ok(self.storage.coupon_templates(actor.tenant_id).await?)
    }

    async fn check_rule(&self, actor: &Actor, r: &IssueRule) -> Result<(), AppError> {
        let mut errors = ValidationErrors::default();
        if r.min_spend.fen() <= 0 || r.min_spend > coupon::MAX_COUPON_MONEY {
            errors.push(FieldError::new(
                "min_spend",
                "out_of_range",
                format!("more than zero, at most {}", coupon::MAX_COUPON_MONEY),
            ));
        }
        if self
            .storage
            .coupon_template(actor.tenant_id, r.template_id)
            .await?
            .is_none()
        {
            errors.push(FieldError::new(
                "template_id",
                "unknown_template",
                format!("no coupon template {}", r.template_id),
            ));
        }
        Ok(errors.into_result(())?)
    }

    /// Creates a spend-trigger rule.
    pub async fn create_issue_rule(
        &self,
        actor: &Actor,
        input: &IssueRuleInput,
    ) -> Result<IssueRule, AppError> {
        actor.require(Permission::ManageCoupons)?;
        let at = now();
        let r = IssueRule {
            tenant_id: actor.tenant_id,
            id: new_uuid(),
            template_id: input.template_id,
            min_spend: input.min_spend,
            active: input.active,
            created_at: at,
            updated_at: at,
        };
        self.check_rule(actor, &r).await?;
        self.storage.insert_issue_rule(&r).await?;
        self.issue_rules_cache.forget(actor.tenant_id);
        self.audit(AuditEntry {
            after: audit::state(&r),
            ..self.audit_entry(
                actor,
                "coupon_rule.create",
                "coupon_rule",
                Some(r.id.to_string()),
                "新发券规则 / coupon rule created",
            )
        })
        .await?;
        Ok(r)
    }

    /// Changes a spend-trigger rule.
    pub async fn update_issue_rule(
        &self,
        actor: &Actor,
        id: Uuid,
        patch: &IssueRulePatch,
    ) -> Result<IssueRule, AppError> {
        actor.require(Permission::ManageCoupons)?;
        let mut r =
            self.storage
                .issue_rule(actor.tenant_id, id)
                .await?
                .ok_or(AppError::NotFound {
                    entity: "coupon rule",
                })?;
        if let Some(t) = patch.template_id {
            r.template_id = t;
        }
        if let Some(m) = patch.min_spend {
            r.min_spend = m;
        }
        if let Some(a) = patch.active {
            r.active = a;
        }
        let before = audit::state(&r);
        r.updated_at = now();
        self.check_rule(actor, &r).await?;
        self.storage.update_issue_rule(&r).await?;
        self.issue_rules_cache.forget(actor.tenant_id);
        self.audit(AuditEntry {
            before,
            after: audit::state(&r),
            ..self.audit_entry(
                actor,
                "coupon_rule.update",
                "coupon_rule",
                Some(id.to_string()),
                "发券规则变更 / coupon rule changed",
            )
        })
        .await?;
        Ok(r)
    }

    /// Every spend-trigger rule, lowest threshold first.
    pub async fn issue_rules(&self, actor: &Actor) -> Result<Vec<IssueRule>, AppError> {
        actor.require(Permission::ViewCatalog)?;
        Ok(self.storage.issue_rules(actor.tenant_id).await?)
    }

    /// A coupon of `template` for `customer`, issued at `at` (its dates from the tenant's
    /// local day), not yet written; `None` when the template issues nothing any more
    /// (inactive, or a fixed window that has ended).
    fn coupon_of(
        actor: &Actor,
        settings: &TenantSettings,
        template: &CouponTemplate,
        customer: CustomerId,
        channel: IssueChannel,
        at: DateTime<Utc>,
    ) -> Option<Coupon> {
        if !template.active {
            return None;
        }
        let window = coupon::validity_window(template.validity, settings.local_date(at))?;
        Some(Coupon::new(
            actor.tenant_id,
            new_uuid(),
            template.id,
            new_coupon_code(),
            customer,
            window,
            at,
            channel,
            Some(actor.staff_id),
            actor.store_id,
        ))
    }

    /// Builds (does not write) a coupon of a template for one customer, refusing an
    /// inactive or ended template, an unknown or merged customer and a reached
    /// per-customer limit. For callers that write it in their own ledger post (a points
    /// exchange) as `LedgerChange::CouponIssue`; the post checks the limit again.
    pub async fn build_coupon(
        &self,
        actor: &Actor,
        template_id: Uuid,
        customer: CustomerId,
        channel: IssueChannel,
    ) -> Result<Coupon, AppError> {
        let template = self.coupon_template(actor, template_id).await?;
        let mut out = self
            .build_coupons(actor, &template, &[customer], channel)
            .await?;
        Ok(out.pop().expect("one coupon per customer"))
    }

    /// Coupons of `template` for each of `customers`, or every refusal, per customer.
    async fn build_coupons(
        &self,
        actor: &Actor,
        template: &CouponTemplate,
        customers: &[CustomerId],
        channel: IssueChannel,
    ) -> Result<Vec<Coupon>, AppError> {
        let settings = self.settings(actor).await?;
        let at = now();
        let refuse = |code: &'static str, msg: String| -> AppError {
            ValidationErrors::single("template", code, msg).into()
        };
        if !template.active {
            return Err(refuse(
                "template_inactive",
                "this coupon template is no longer active".into(),
            ));
        }
        if coupon::validity_window(template.validity, settings.local_date(at)).is_none() {
            return Err(refuse(
                "template_ended",
                "this coupon template's validity has ended".into(),
            ));
        }
        let mut held: HashMap<CustomerId, i64> = self
            .storage
            .coupon_holdings(actor.tenant_id, template.id, customers)
            .await?
            .into_iter()
            .collect();
        let mut errors = ValidationErrors::default();
        let mut out = Vec::with_capacity(customers.len());
        for (i, c) in customers.iter().enumerate() {
            let field = if customers.len() == 1 {
                "customer_id".to_string()
            } else {
                format!("customer_ids[{i}]")
            };
            match self.storage.customer(actor.tenant_id, *c).await? {
                None => {
                    errors.push(FieldError::new(
                        field,
                        "unknown_customer",
                        format!("no customer {c}"),
                    ));
                    continue;
                }
                Some(x) if x.merged_into.is_some() => {
                    errors.push(FieldError::new(
                        field,
                        "customer_merged",
                        format!("customer {c} was merged into another"),
                    ));
                    continue;
                }
                Some(_) => {}
            }
            let n = held.entry(*c).or_default();
            if let Some(limit) = template.per_customer_limit
                && *n >= i64::from(limit)
            {
                errors.push(FieldError::new(
                    field,
                    "limit_reached",
                    format!("customer {c} already holds {n} of at most {limit}"),
                ));
                continue;
            }
            *n += 1;
            out.extend(Self::coupon_of(actor, &settings, template, *c, channel, at));
        }
        errors.into_result(out).map_err(Into::into)
    }

    /// Issues coupons of a template: to one customer (manual) or to a list (bulk). All or
    /// nothing: any refusal (unknown customer, limit reached...) is reported per customer
    /// and nothing is issued.
    ///
    /// With an idempotency key, a retry answers with the coupons the first call issued
    /// (their ids derive from the key, so two calls racing cannot both issue), and the
    /// same key for other customers or another template is refused with 409.
    pub async fn issue_coupons(
        &self,
        actor: &Actor,
        template_id: Uuid,
        customers: &[CustomerId],
        key: Option<&str>,
    ) -> Result<Vec<CouponView>, AppError> {
        actor.require(Permission::IssueCoupons)?;
        if let Some(k) = key {
            crate::cards::check_key(k)?;
        }
        if customers.is_empty() || customers.len() > MAX_BULK {
            return Err(ValidationErrors::single(
                "customer_ids",
                "out_of_range",
                format!("1–{MAX_BULK} customers"),
            )
            .into());
        }
        let template = self.coupon_template(actor, template_id).await?;
        let ids: Option<Vec<Uuid>> = key.map(|k| {
            (0..customers.len())
                .map(|i| {
                    Uuid::new_v5(
                        &actor.tenant_id.0,
                        format!("coupon-issue/{k}/{i}").as_bytes(),
                    )
                })
                .collect()
        });
        if let Some(ids) = &ids
            && let Some(issued) = self.issued_before(actor, ids, &template, customers).await?
        {
            return Ok(issued);
        }
        let channel = if customers.len() == 1 {
            IssueChannel::Manual
        } else {
            IssueChannel::Bulk
        };
        let built = match self
            .build_coupons(actor, &template, customers, channel)
            .await
        {
            Ok(mut coupons) => {
                if let Some(ids) = &ids {
                    for (c, id) in coupons.iter_mut().zip(ids) {
                        c.id = *id;
                    }
                }
                match self.storage.issue_coupons(&coupons).await {
                    Ok(()) => Ok(coupons),
                    Err(e) => Err(AppError::from(e)),
                }
            }
            Err(e) => Err(e),
        };
        let coupons = match (built, &ids) {
            (Ok(coupons), _) => coupons,
            // A concurrent call with the same key issued them first (its ids conflict,
            // or its coupons now fill the per-customer limit): answer with them.
            (Err(e), Some(ids)) => {
                return match self.issued_before(actor, ids, &template, customers).await? {
                    Some(issued) => Ok(issued),
                    None => Err(e),
                };
            }
            (Err(e), None) => return Err(e),
        };
        self.audit(AuditEntry {
            customer_id: (customers.len() == 1).then(|| customers[0]),
            after: Some(serde_json::json!({
                "template_id": template.id,
                "coupon_ids": coupons.iter().map(|c| c.id).collect::<Vec<_>>(),
                "customer_ids": customers,
            })),
            ..self.audit_entry(
                actor,
                "coupon.issue",
                "coupon_template",
                Some(template.id.to_string()),
                format!(
                    "发券 / coupons issued: {} × {}",
                    coupons.len(),
                    template.name
                ),
            )
        })
        .await?;
        Ok(coupons.into_iter().map(|c| view(c, &template)).collect())
    }

    /// The coupons an earlier call with the same idempotency key issued (`ids` derive from
    /// the key), or `None` when there was none.
    async fn issued_before(
        &self,
        actor: &Actor,
        ids: &[Uuid],
        template: &CouponTemplate,
        customers: &[CustomerId],
    ) -> Result<Option<Vec<CouponView>>, AppError> {
        if self
            .storage
            .coupon(actor.tenant_id, ids[0])
            .await?
            .is_none()
        {
            return Ok(None);
        }
        let reused = || AppError::from(StoreError::IdempotencyMismatch);
        let mut out = Vec::with_capacity(ids.len());
        for (id, customer) in ids.iter().zip(customers) {
            let c = self
                .storage
                .coupon(actor.tenant_id, *id)
                .await?
                .ok_or_else(reused)?;
            if c.template_id != template.id || c.customer_id != *customer {
                return Err(reused());
            }
            out.push(view(c, template));
        }
        Ok(Some(out))
    }

    /// The coupons a spend of `spend` by `customer` at `at` triggers, built but not
    /// written: the caller (a card spend, a purchase, a checkout) adds them to its own
    /// ledger post as `LedgerChange::CouponIssue`. Rules whose template is inactive or
    /// ended, or whose per-customer limit is reached, give nothing.
    pub async fn spend_triggered_coupons(
        &self,
        actor: &Actor,
        customer: CustomerId,
        spend: Money,
        at: DateTime<Utc>,
    ) -> Result<Vec<Coupon>, AppError> {
        // Read by every bill, changed rarely: kept like the settings (tenant_cache.rs).
        let rules = self
            .issue_rules_cache
            .get_or_load(
                actor.tenant_id,
                |_| true,
                || async { self.storage.issue_rules(actor.tenant_id).await },
            )
            .await?;
        let templates = coupon::triggered(&rules, spend);
        if templates.is_empty() {
            return Ok(vec![]);
        }
        let settings = self.settings(actor).await?;
        let mut out = Vec::new();
        for id in templates {
            let Some(t) = self.storage.coupon_template(actor.tenant_id, id).await? else {
                continue;
            };
            if let Some(limit) = t.per_customer_limit {
                let held = self
                    .storage
                    .coupon_holdings(actor.tenant_id, id, &[customer])
                    .await?
                    .first()
                    .map_or(0, |(_, n)| *n);
                if held >= i64::from(limit) {
                    continue;
                }
            }
            out.extend(Self::coupon_of(
                actor,
                &settings,
                &t,
                customer,
                IssueChannel::Rule,
                at,
            ));
        }
        Ok(out)
    }

    /// A coupon by its code as typed, for a caller who may see coupons.
    pub async fn get_coupon_by_code(
        &self,
        actor: &Actor,
        code: &str,
    ) -> Result<CouponView, AppError> {
        actor.require(Permission::ViewCoupons)?;
        self.coupon_by_code(actor, code).await
    }

    /// A coupon by its code as typed (case, spaces, dashes and O/I/L are forgiven); a
    /// helper: callers check their permission.
    pub async fn coupon_by_code(&self, actor: &Actor, code: &str) -> Result<CouponView, AppError> {
        let c = self.find_coupon(actor, code).await?;
        let t = self.coupon_template(actor, c.template_id).await?;
        Ok(view(c, &t))
    }

    pub(crate) async fn find_coupon(&self, actor: &Actor, code: &str) -> Result<Coupon, AppError> {
        let code = coupon::normalize_code(code).ok_or_else(not_found)?;
        self.storage
            .coupon_by_code(actor.tenant_id, &code)
            .await?
            .ok_or_else(not_found)
    }

    /// Coupons, newest first: of one customer and/or one template and/or in one status.
    pub async fn list_coupons(
        &self,
        actor: &Actor,
        customer: Option<CustomerId>,
        template: Option<Uuid>,
        status: Option<CouponStatus>,
    ) -> Result<Vec<CouponView>, AppError> {
        actor.require(Permission::ViewCoupons)?;
        if let Some(c) = customer {
            self.customer(actor, c).await?;
        }
        let f = CouponFilter {
            customer,
            template,
            status,
        };
        let list = self
            .storage
            .list_coupons(actor.tenant_id, &f, MAX_LIST)
            .await?;
        let templates: HashMap<Uuid, CouponTemplate> = self
            .storage
            .coupon_templates(actor.tenant_id)
            .await?
            .into_iter()
            .map(|t| (t.id, t))
            .collect();
        list.into_iter()
            .map(|c| {
                let t = templates.get(&c.template_id).ok_or_else(|| {
                    AppError::Internal(format!("coupon {} without template", c.id))
                })?;
                Ok(view(c, t))
            })
            .collect()
    }

    /// A customer's coupons, newest first.
    pub async fn customer_coupons(
        &self,
        actor: &Actor,
        customer: CustomerId,
        status: Option<CouponStatus>,
    ) -> Result<Vec<CouponView>, AppError> {
        self.list_coupons(actor, Some(customer), None, status).await
    }

    /// Checks a coupon for use now at the actor's store by `redeemer` (the owner when
    /// `None`) on `subtotal`, and prices it. Writes nothing.
    pub async fn quote_coupon(
        &self,
        actor: &Actor,
        code: &str,
        redeemer: Option<CustomerId>,
        subtotal: Option<Money>,
        at: DateTime<Utc>,
    ) -> Result<CouponQuote, AppError> {
        actor.require(Permission::RedeemCoupons)?;
        let store = crate::cards::at_store(actor, "coupon redemptions")?;
        if let Some(s) = subtotal
            && (s.is_negative() || s > crate::cards::MAX_AMOUNT)
        {
            return Err(ValidationErrors::single(
                "subtotal",
                "out_of_range",
                format!("0 to {}", crate::cards::MAX_AMOUNT),
            )
            .into());
        }
        let coupon = self.find_coupon(actor, code).await?;
        let template = self.coupon_template(actor, coupon.template_id).await?;
        let buyer_id = redeemer.unwrap_or(coupon.customer_id);
        let buyer = self.customer(actor, buyer_id).await?;
        if buyer.merged_into.is_some() {
            return Err(ValidationErrors::single(
                "customer_id",
                "customer_merged",
                "this customer was merged into another",
            )
            .into());
        }
        let settings = self.settings(actor).await?;
        let ctx = RedeemContext {
            at: settings.local(at),
            store: Some(store),
            level: buyer.level.as_deref(),
            eligible_subtotal: subtotal,
            redeemer,
        };
        coupon::check_redeemable(&template, &coupon, &ctx).map_err(rejected)?;
        let item_price = match &template.kind {
            CouponKind::Item { menu_item_id, .. } => self
                .storage
                .menu(actor.tenant_id)
                .await?
                .1
                .into_iter()
                .find(|i| i.id == *menu_item_id)
                .map(|i| i.price),
            _ => None,
        };
        Ok(CouponQuote {
            discount: discount(&template.kind, subtotal, item_price),
            coupon,
            template,
        })
    }

    /// Uses a coupon at the actor's store. Exactly once: of concurrent attempts one wins,
    /// the others get `coupon_already_redeemed` (409). A retry with the same
    /// `idempotency_key` answers with the first result. When a friend uses a transferable
    /// coupon and has no referrer yet, the friend is recorded as referred by its owner.
    pub async fn redeem_coupon(
        &self,
        actor: &Actor,
        code: &str,
        req: &RedeemCoupon,
    ) -> Result<Redemption, AppError> {
        actor.require(Permission::RedeemCoupons)?;
        if let Some(k) = &req.idempotency_key
            && (k.trim().is_empty() || k.len() > 100)
        {
            return Err(ValidationErrors::single(
                "idempotency_key",
                "invalid_key",
                "1–100 characters, unique per request",
            )
            .into());
        }
        let at = now();
        let quote = match self
            .quote_coupon(actor, code, req.customer_id, req.subtotal, at)
            .await
        {
            Ok(q) => q,
            // Possibly a retry of a redemption that went through: the store tells.
            Err(AppError::Conflict {
                code: "coupon_already_redeemed",
                ..
            }) if req.idempotency_key.is_some() => {
                let coupon = self.find_coupon(actor, code).await?;
                let template = self.coupon_template(actor, coupon.template_id).await?;
                CouponQuote {
                    discount: None,
                    coupon,
                    template,
                }
            }
            Err(e) => return Err(e),
        };
        let r = CouponRedemption {
            tenant_id: actor.tenant_id,
            coupon: quote.coupon.id,
            at,
            customer: Some(req.customer_id.unwrap_or(quote.coupon.customer_id)),
            store: actor.store_id,
            staff: Some(actor.staff_id),
            key: req.idempotency_key.clone(),
        };
        let out = self.storage.redeem_coupon(&r).await.map_err(|e| match e {
            StoreError::Conflict { what } => AppError::Conflict {
                code: what,
                field: Some("code"),
                message: match what {
                    "coupon_voided" => "the coupon was voided",
                    "coupon_expired" => "the coupon has expired",
                    _ => "the coupon has already been used",
                }
                .into(),
                existing: None,
            },
            other => other.into(),
        })?;
        let discount = if out.replayed {
            // The same request again: the same price.
            let item_price = match &quote.template.kind {
                CouponKind::Item { menu_item_id, .. } => self
                    .storage
                    .menu(actor.tenant_id)
                    .await?
                    .1
                    .into_iter()
                    .find(|i| i.id == *menu_item_id)
                    .map(|i| i.price),
                _ => None,
            };
            discount(&quote.template.kind, req.subtotal, item_price)
        } else {
            quote.discount
        };
        Ok(Redemption {
            coupon: view(out.coupon, &quote.template),
            discount,
            replayed: out.replayed,
            referral_recorded: out.referral_recorded,
        })
    }

    /// Voids an issued coupon with a reason (it no longer counts against the
    /// per-customer limit).
    pub async fn void_coupon(
        &self,
        actor: &Actor,
        code: &str,
        reason: &str,
    ) -> Result<CouponView, AppError> {
        actor.require(Permission::VoidCoupons)?;
        let reason = crate::cards::required_reason(reason)?;
        let reason = reason.as_str();
        let c = self.find_coupon(actor, code).await?;
        let t = self.coupon_template(actor, c.template_id).await?;
        let voided = self
            .storage
            .void_coupon(
                actor.tenant_id,
                c.id,
                reason,
                Some(actor.staff_id),
                actor.store_id,
                now(),
            )
            .await
            .map_err(|e| match e {
                StoreError::Conflict { what } => AppError::Conflict {
                    code: "coupon_not_issued",
                    field: Some("code"),
                    message: format!(
                        "only an unused coupon can be voided ({})",
                        what.trim_start_matches("coupon_").replace('_', " ")
                    ),
                    existing: None,
                },
                other => other.into(),
            })?;
        self.audit(AuditEntry {
            customer_id: Some(c.customer_id),
            before: Some(serde_json::json!({"status": c.status})),
            after: Some(serde_json::json!({"status": voided.status, "reason": reason})),
            ..self.audit_entry(
                actor,
                "coupon.void",
                "coupon",
                Some(c.id.to_string()),
                format!("作废优惠券 / coupon voided: {}: {reason}", c.code),
            )
        })
        .await?;
        Ok(view(voided, &t))
    }

    /// The expiry job: marks the tenant's issued coupons whose last valid day is before
    /// `today` (the tenant's local date) as expired; returns how many.
    pub async fn expire_coupons(
        &self,
        tenant: TenantId,
        today: NaiveDate,
    ) -> Result<u64, AppError> {
        Ok(self.storage.expire_coupons(tenant, today, now()).await?)
    }

    /// Runs the expiry job now for the actor's tenant, as of its local today.
    pub async fn expire_coupons_now(&self, actor: &Actor) -> Result<u64, AppError> {
        actor.require(Permission::RunJobs)?;
        let today = self.settings(actor).await?.local_date(now());
        self.expire_coupons(actor.tenant_id, today).await
    }

    /// The expiry job for a tenant as of its local today (for the command line).
    pub async fn expire_coupons_today(
        &self,
        tenant: TenantId,
    ) -> Result<(NaiveDate, u64), AppError> {
        let today = self.tenant_settings(tenant).await?.local_date(now());
        Ok((today, self.expire_coupons(tenant, today).await?))
    }
}

fn view(coupon: Coupon, t: &CouponTemplate) -> CouponView {
    CouponView {
        coupon,
        template_name: t.name.clone(),
        kind: t.kind.clone(),
        label: t.kind.label(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_over_many_draws() {
        let n = 200_000;
        let codes: std::collections::HashSet<String> = (0..n).map(|_| new_coupon_code()).collect();
        assert_eq!(codes.len(), n);
        for c in codes.iter().take(1000) {
            assert_eq!(coupon::normalize_code(c).as_deref(), Some(c.as_str()));
        }
    }
}
