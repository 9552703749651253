//! The coupons' SQL, shared by both backends like `shared.rs` (see there for why a macro).
//!
//! `impl_coupon_storage!` is invoked in a module of each backend file; besides the
//! [`CouponStore`](crate::coupons::CouponStore) methods it defines `issue_coupon_tx` and
//! `redeem_coupon_tx`, which `LedgerStore::post` calls for its coupon changes.

use crate::StoreError;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use patron_domain::coupon::{
    Coupon, CouponKind, CouponStatus, CouponTemplate, HourRange, IssueChannel, IssueRule, Validity,
};
use patron_domain::ids::{CustomerId, MenuItemId, StaffId, StoreId, TenantId};
use patron_domain::money::Money;
use uuid::Uuid;

pub(crate) const TEMPLATE_COLS: &str = "tenant_id, id, name, name_en, kind, value, min_spend, percent_off_bp, cap, menu_item_id, \
    item_name, validity, valid_from, valid_to, valid_days, excluded_weekdays, excluded_hours, store_ids, level_codes, \
    per_customer_limit, stacks_with_coupons, stacks_with_member_price, transferable, points_price, active, created_at, updated_at";
pub(crate) const RULE_COLS: &str =
    "tenant_id, id, template_id, min_spend, active, created_at, updated_at";
pub(crate) const COUPON_COLS: &str = "tenant_id, id, template_id, code, customer_id, status, valid_from, valid_to, issued_at, \
    channel, issued_by, issued_store_id, redeemed_at, redeemed_by, redeemed_store_id, redeemed_staff_id, redeem_key, \
    voided_at, voided_by, void_reason";

fn corrupt(what: &str, v: &str) -> StoreError {
    StoreError::Corrupt(format!("{what}: {v:?}"))
}

fn json<T: serde::de::DeserializeOwned>(what: &str, v: &str) -> Result<T, StoreError> {
    serde_json::from_str(v).map_err(|_| corrupt(what, v))
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("a list serialises")
}

/// A coupon template as stored: the kind and validity spread over nullable columns, the
/// lists as JSON.
#[derive(sqlx::FromRow)]
pub(crate) struct TemplateRow {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub name: String,
    pub name_en: String,
    pub kind: String,
    pub value: Option<i64>,
    pub min_spend: Option<i64>,
    pub percent_off_bp: Option<i32>,
    pub cap: Option<i64>,
    pub menu_item_id: Option<Uuid>,
    pub item_name: Option<String>,
    pub validity: String,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
    pub valid_days: Option<i32>,
    pub excluded_weekdays: String,
    pub excluded_hours: String,
    pub store_ids: String,
    pub level_codes: String,
    pub per_customer_limit: Option<i32>,
    pub stacks_with_coupons: bool,
    pub stacks_with_member_price: bool,
    pub transferable: bool,
    pub points_price: Option<i64>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Excluded hours as stored: `[["11:00", "13:00"], ...]`.
type StoredHours = Vec<(String, String)>;

impl TemplateRow {
    pub(crate) fn from_domain(t: &CouponTemplate) -> TemplateRow {
        let (
            mut value,
            mut min_spend,
            mut percent_off_bp,
            mut cap,
            mut menu_item_id,
            mut item_name,
        ) = (None, None, None, None, None, None);
        match &t.kind {
            CouponKind::Cash {
                value: v,
                min_spend: m,
            } => {
                value = Some(v.fen());
                min_spend = m.map(Money::fen);
            }
            CouponKind::Discount {
                percent_off_bp: p,
                cap: c,
                min_spend: m,
            } => {
                percent_off_bp = Some(*p as i32);
                cap = c.map(Money::fen);
                min_spend = m.map(Money::fen);
            }
            CouponKind::Item {
                menu_item_id: i,
                name,
            } => {
                menu_item_id = Some(i.0);
                item_name = Some(name.clone());
            }
        }
        let (validity, valid_from, valid_to, valid_days) = match t.validity {
            Validity::Fixed { from, to } => ("fixed", Some(from), Some(to), None),
            Validity::DaysAfterIssue { days } => {
                ("days_after_issue", None, None, Some(days as i32))
            }
            Validity::EndOfMonth => ("end_of_month", None, None, None),
        };
        let hours: StoredHours = t
            .excluded_hours
            .iter()
            .map(|h| {
                (
                    h.from.format("%H:%M:%S").to_string(),
                    h.to.format("%H:%M:%S").to_string(),
                )
            })
            .collect();
        let stores: Vec<Uuid> = t.store_ids.iter().map(|s| s.0).collect();
        TemplateRow {
            tenant_id: t.tenant_id.0,
            id: t.id,
            name: t.name.clone(),
            name_en: t.name_en.clone(),
            kind: t.kind.code().into(),
            value,
            min_spend,
            percent_off_bp,
            cap,
            menu_item_id,
            item_name,
            validity: validity.into(),
            valid_from,
            valid_to,
            valid_days,
            excluded_weekdays: to_json(&t.excluded_weekdays),
            excluded_hours: to_json(&hours),
            store_ids: to_json(&stores),
            level_codes: to_json(&t.level_codes),
            per_customer_limit: t.per_customer_limit.map(|n| n as i32),
            stacks_with_coupons: t.stacks_with_coupons,
            stacks_with_member_price: t.stacks_with_member_price,
            transferable: t.transferable,
            points_price: t.points_price,
            active: t.active,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

impl TryFrom<TemplateRow> for CouponTemplate {
    type Error = StoreError;
    fn try_from(r: TemplateRow) -> Result<Self, StoreError> {
        let missing = |col: &str| corrupt("coupon_templates", &format!("{} without {col}", r.kind));
        let kind = match r.kind.as_str() {
            "cash" => CouponKind::Cash {
                value: Money::from_fen(r.value.ok_or_else(|| missing("value"))?),
                min_spend: r.min_spend.map(Money::from_fen),
            },
            "discount" => CouponKind::Discount {
                percent_off_bp: r.percent_off_bp.ok_or_else(|| missing("percent_off_bp"))? as u32,
                cap: r.cap.map(Money::from_fen),
                min_spend: r.min_spend.map(Money::from_fen),
            },
            "item" => CouponKind::Item {
                menu_item_id: MenuItemId(r.menu_item_id.ok_or_else(|| missing("menu_item_id"))?),
                name: r.item_name.clone().unwrap_or_default(),
            },
            other => return Err(corrupt("coupon_templates.kind", other)),
        };
        let validity = match (r.validity.as_str(), r.valid_from, r.valid_to, r.valid_days) {
            ("fixed", Some(from), Some(to), _) => Validity::Fixed { from, to },
            ("days_after_issue", _, _, Some(days)) => {
                Validity::DaysAfterIssue { days: days as u32 }
            }
            ("end_of_month", _, _, _) => Validity::EndOfMonth,
            (other, ..) => return Err(corrupt("coupon_templates.validity", other)),
        };
        let hours: StoredHours = json("coupon_templates.excluded_hours", &r.excluded_hours)?;
        let time = |s: &str| {
            NaiveTime::parse_from_str(s, "%H:%M:%S")
                .map_err(|_| corrupt("coupon_templates.excluded_hours", s))
        };
        let excluded_hours = hours
            .iter()
            .map(|(f, t)| {
                Ok(HourRange {
                    from: time(f)?,
                    to: time(t)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let stores: Vec<Uuid> = json("coupon_templates.store_ids", &r.store_ids)?;
        Ok(CouponTemplate {
            tenant_id: TenantId(r.tenant_id),
            id: r.id,
            name: r.name,
            name_en: r.name_en,
            kind,
            validity,
            excluded_weekdays: json("coupon_templates.excluded_weekdays", &r.excluded_weekdays)?,
            excluded_hours,
            store_ids: stores.into_iter().map(StoreId).collect(),
            level_codes: json("coupon_templates.level_codes", &r.level_codes)?,
            per_customer_limit: r.per_customer_limit.map(|n| n as u32),
            stacks_with_coupons: r.stacks_with_coupons,
            stacks_with_member_price: r.stacks_with_member_price,
            transferable: r.transferable,
            points_price: r.points_price,
            active: r.active,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct RuleRow {
    tenant_id: Uuid,
    id: Uuid,
    template_id: Uuid,
    min_spend: i64,
    active: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<RuleRow> for IssueRule {
    fn from(r: RuleRow) -> Self {
        IssueRule {
            tenant_id: TenantId(r.tenant_id),
            id: r.id,
            template_id: r.template_id,
            min_spend: Money::from_fen(r.min_spend),
            active: r.active,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct CouponRow {
    tenant_id: Uuid,
    id: Uuid,
    template_id: Uuid,
    code: String,
    customer_id: Uuid,
    status: String,
    valid_from: NaiveDate,
    valid_to: NaiveDate,
    issued_at: DateTime<Utc>,
    channel: String,
    issued_by: Option<Uuid>,
    issued_store_id: Option<Uuid>,
    redeemed_at: Option<DateTime<Utc>>,
    redeemed_by: Option<Uuid>,
    redeemed_store_id: Option<Uuid>,
    redeemed_staff_id: Option<Uuid>,
    pub redeem_key: Option<String>,
    voided_at: Option<DateTime<Utc>>,
    voided_by: Option<Uuid>,
    void_reason: Option<String>,
}

impl TryFrom<CouponRow> for Coupon {
    type Error = StoreError;
    fn try_from(r: CouponRow) -> Result<Self, StoreError> {
        Ok(Coupon {
            tenant_id: TenantId(r.tenant_id),
            id: r.id,
            template_id: r.template_id,
            code: r.code,
            customer_id: CustomerId(r.customer_id),
            status: CouponStatus::parse(&r.status)
                .ok_or_else(|| corrupt("coupons.status", &r.status))?,
            valid_from: r.valid_from,
            valid_to: r.valid_to,
            issued_at: r.issued_at,
            channel: IssueChannel::parse(&r.channel)
                .ok_or_else(|| corrupt("coupons.channel", &r.channel))?,
            issued_by: r.issued_by.map(StaffId),
            issued_store_id: r.issued_store_id.map(StoreId),
            redeemed_at: r.redeemed_at,
            redeemed_by: r.redeemed_by.map(CustomerId),
            redeemed_store_id: r.redeemed_store_id.map(StoreId),
            redeemed_staff_id: r.redeemed_staff_id.map(StaffId),
            voided_at: r.voided_at,
            voided_by: r.voided_by.map(StaffId),
            void_reason: r.void_reason,
        })
    }
}

/// A redemption that read the coupon back (`redeem_read_back`): redeemed now, with
/// its template's name, or redeemed before by a retry of the same request.
pub(crate) enum ReadBack {
    Redeemed(Coupon, String),
    Replayed(Coupon),
}

/// The conflict of a checkout's coupon that changed between its read and the post;
/// the post answers with the coupon's state instead where it is no longer issued
/// (`LedgerStore::post`).
pub(crate) const COUPON_CHANGED: &str = "coupon_changed";

/// The conflict that names why an `issued`-only change did not apply.
pub(crate) fn not_issued(status: &str) -> StoreError {
    StoreError::Conflict {
        what: match status {
            "voided" => "coupon_voided",
            "expired" => "coupon_expired",
            _ => "coupon_already_redeemed",
        },
    }
}

/// Binds a [`TemplateRow`] in `TEMPLATE_COLS` order.
macro_rules! bind_template {
    ($q:expr, $r:expr) => {
        $q.bind($r.tenant_id)
            .bind($r.id)
            .bind(&$r.name)
            .bind(&$r.name_en)
            .bind(&$r.kind)
            .bind($r.value)
            .bind($r.min_spend)
            .bind($r.percent_off_bp)
            .bind($r.cap)
            .bind($r.menu_item_id)
            .bind(&$r.item_name)
            .bind(&$r.validity)
            .bind($r.valid_from)
            .bind($r.valid_to)
            .bind($r.valid_days)
            .bind(&$r.excluded_weekdays)
            .bind(&$r.excluded_hours)
            .bind(&$r.store_ids)
            .bind(&$r.level_codes)
            .bind($r.per_customer_limit)
            .bind($r.stacks_with_coupons)
            .bind($r.stacks_with_member_price)
            .bind($r.transferable)
            .bind($r.points_price)
            .bind($r.active)
            .bind($r.created_at)
            .bind($r.updated_at)
    };
}
pub(crate) use bind_template;

macro_rules! impl_coupon_storage {
    ($ty:ty, $db:ty) => {
        use $crate::coupons::{CouponFilter, CouponRedemption, CouponStore, RedeemOutcome};
        use $crate::coupons_shared::{bind_template, not_issued, CouponRow, RuleRow, TemplateRow, COUPON_COLS, RULE_COLS, TEMPLATE_COLS};
        use chrono::NaiveDate;
        use patron_domain::coupon::{Coupon, CouponTemplate, IssueRule};
        use patron_domain::ids::{CustomerId, StaffId, StoreId};

        /// The template's name for timeline summaries.
        async fn template_name<'c>(tx: &mut sqlx::Transaction<'c, $db>, tenant: uuid::Uuid, template: uuid::Uuid) -> Result<String> {
            let name: Option<String> = sqlx::query_scalar("SELECT name FROM coupon_templates WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(template)
                .fetch_optional(&mut **tx)
                .await?;
            name.ok_or_else(|| StoreError::MissingReference(format!("coupon template {template}")))
        }

        /// Inserts one coupon within its template's per-customer limit, with the owner's
        /// `coupon_issued` event. Used by `issue_coupons` and by the ledger's post.
        pub(crate) async fn issue_coupon_tx(conn: &mut <$db as sqlx::Database>::Connection, c: &Coupon) -> Result<()> {
            let t = c.tenant_id.0;
            let tpl: Option<(String, Option<i32>)> =
                sqlx::query_as("SELECT name, per_customer_limit FROM coupon_templates WHERE tenant_id = $1 AND id = $2")
                    .bind(t)
                    .bind(c.template_id)
                    .fetch_optional(&mut *conn)
                    .await?;
            let Some((name, limit)) = tpl else {
                return Err(StoreError::MissingReference(format!("coupon template {}", c.template_id)));
            };
            // One conditional upsert counts and checks: concurrent issues to the same
            // customer queue on this row, so the limit holds on both backends.
            let held: Option<i32> = sqlx::query_scalar(
                "INSERT INTO coupon_holdings (tenant_id, template_id, customer_id, held) VALUES ($1, $2, $3, 1) \
                 ON CONFLICT (tenant_id, template_id, customer_id) DO UPDATE SET held = coupon_holdings.held + 1 \
                 WHERE $4 IS NULL OR coupon_holdings.held < $4 RETURNING held",
            )
            .bind(t)
            .bind(c.template_id)
            .bind(c.customer_id.0)
            .bind(limit)
            .fetch_optional(&mut *conn)
            .await?;
            if held.is_none() {
                return Err(StoreError::Conflict { what: "coupon_limit_reached" });
            }
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO coupons ({COUPON_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
            )))
            .bind(t)
            .bind(c.id)
            .bind(c.template_id)
            .bind(&c.code)
            .bind(c.customer_id.0)
            .bind(c.status.as_str())
            .bind(c.valid_from)
            .bind(c.valid_to)
            .bind(c.issued_at)
            .bind(c.channel.as_str())
            .bind(c.issued_by.map(|x| x.0))
            .bind(c.issued_store_id.map(|x| x.0))
            .bind(c.redeemed_at)
            .bind(c.redeemed_by.map(|x| x.0))
            .bind(c.redeemed_store_id.map(|x| x.0))
            .bind(c.redeemed_staff_id.map(|x| x.0))
            .bind(None::<String>)
            .bind(c.voided_at)
            .bind(c.voided_by.map(|x| x.0))
            .bind(&c.void_reason)
            .execute(&mut *conn)
            .await?;
            super::insert_event(conn, &c.issued_event(uuid::Uuid::now_v7(), &name)).await?;
            Ok(())
        }

        /// Redeems an issued coupon with one conditional statement (a lost race is
        /// `Conflict { what: "coupon_already_redeemed" }`), records the friend referral and
        /// the timeline events. Used by `redeem_coupon` and by the ledger's post; the
        /// redemption and its template's name travel in one batch, the events with the
        /// posting's next (writer.rs).
        pub(crate) async fn redeem_coupon_w<'c>(
            w: &mut $crate::writer::Writer<'c, $db>,
            r: &CouponRedemption,
            seen: Option<&$crate::ledger::CouponSeen>,
        ) -> Result<RedeemOutcome> {
            let t = r.tenant_id.0;
            let (coupon, name) = match seen {
                Some(seen) => {
                    // Queued, not read back: the statement checks that what the caller
                    // read still holds (issued, same owner, template and code), so the
                    // redeemed coupon is the one read with the redemption's fields set.
                    let c = &seen.coupon;
                    redemption(w, r, "AND customer_id = $8 AND template_id = $9 AND code = $10")
                    .bind(c.customer_id.0)
                    .bind(c.template_id)
                    .bind(c.code.clone())
                    .exec($crate::writer::Expect::Rows(1, StoreError::Conflict { what: $crate::coupons_shared::COUPON_CHANGED }))
                    .await?;
                    let mut coupon = c.clone();
                    coupon.status = patron_domain::coupon::CouponStatus::Redeemed;
                    coupon.redeemed_at = Some(r.at);
                    coupon.redeemed_by = r.customer;
                    coupon.redeemed_store_id = r.store;
                    coupon.redeemed_staff_id = r.staff;
                    (coupon, seen.template_name.clone())
                }
                None => match redeem_read_back(w, r).await? {
                    $crate::coupons_shared::ReadBack::Redeemed(coupon, name) => (coupon, name),
                    $crate::coupons_shared::ReadBack::Replayed(coupon) => {
                        return Ok(RedeemOutcome { coupon, replayed: true, referral_recorded: false });
                    }
                },
            };
            super::insert_event_w(w, &coupon.redeemed_event(uuid::Uuid::now_v7(), &name, coupon.customer_id)).await?;
            let mut referral_recorded = false;
            if let Some(friend) = r.customer.filter(|c| *c != coupon.customer_id) {
                super::insert_event_w(w, &coupon.redeemed_event(uuid::Uuid::now_v7(), &name, friend)).await?;
                // Referred by the owner, unless referred by someone already (the
                // condition is in the statement) or the owner was referred by this friend.
                let previous: Option<(Option<String>,)> = w
                    .stmt("SELECT acquisition_source FROM customers WHERE tenant_id = $1 AND id = $2")
                    .bind(t)
                    .bind(friend.0)
                    .fetch_optional()
                    .await?;
                let updated: Option<(i32,)> = w
                    .stmt(
                        "UPDATE customers SET referred_by = $3, acquisition_source = 'friend_coupon', updated_at = $4 \
                         WHERE tenant_id = $1 AND id = $2 AND referred_by IS NULL AND merged_into IS NULL \
                         AND NOT EXISTS (SELECT 1 FROM customers o WHERE o.tenant_id = $1 AND o.id = $3 AND o.referred_by = $2) \
                         RETURNING 1",
                    )
                    .bind(t)
                    .bind(friend.0)
                    .bind(coupon.customer_id.0)
                    .bind(r.at)
                    .fetch_optional()
                    .await?;
                if updated.is_some() {
                    referral_recorded = true;
                    let ids = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
                    if let Some((on_friend, on_owner)) = coupon.referral_events(ids, previous.and_then(|p| p.0).as_deref()) {
                        super::insert_event_w(w, &on_friend).await?;
                        super::insert_event_w(w, &on_owner).await?;
                    }
                }
            }
            Ok(RedeemOutcome { coupon, replayed: false, referral_recorded })
        }

        /// The redemption's `UPDATE` of an issued coupon, its fields bound as `$1`–`$7`;
        /// `tail` adds conditions or a `RETURNING`.
        fn redemption<'w, 'c>(
            w: &'w mut $crate::writer::Writer<'c, $db>,
            r: &CouponRedemption,
            tail: &str,
        ) -> $crate::writer::Stmt<'w, 'c, $db> {
            w.stmt(&format!(
                "UPDATE coupons SET status = 'redeemed', redeemed_at = $3, redeemed_by = $4, redeemed_store_id = $5, \
                 redeemed_staff_id = $6, redeem_key = $7 WHERE tenant_id = $1 AND id = $2 AND status = 'issued' {tail}"
            ))
            .bind(r.tenant_id.0)
            .bind(r.coupon)
            .bind(r.at)
            .bind(r.customer.map(|x| x.0))
            .bind(r.store.map(|x| x.0))
            .bind(r.staff.map(|x| x.0))
            .bind(r.key.clone())
        }

        /// `redeem_coupon_w` without what the caller read: the update returns the
        /// coupon, and the template's name is read with it (one flush).
        async fn redeem_read_back<'c>(
            w: &mut $crate::writer::Writer<'c, $db>,
            r: &CouponRedemption,
        ) -> Result<$crate::coupons_shared::ReadBack> {
            let t = r.tenant_id.0;
            let redeemed = redemption(w, r, &format!("RETURNING {COUPON_COLS}")).rows().await?;
            let template_name = w
                .stmt(
                    "SELECT name FROM coupon_templates WHERE tenant_id = $1 \
                     AND id = (SELECT template_id FROM coupons WHERE tenant_id = $1 AND id = $2)",
                )
                .bind(t)
                .bind(r.coupon)
                .rows()
                .await?;
            w.flush().await?;
            let row: Option<CouponRow> = w.take(redeemed)?.into_iter().next();
            let Some(row) = row else {
                let current: Option<CouponRow> = w
                    .stmt(&format!("SELECT {COUPON_COLS} FROM coupons WHERE tenant_id = $1 AND id = $2"))
                    .bind(t)
                    .bind(r.coupon)
                    .fetch_optional()
                    .await?;
                let Some(current) = current else { return Err(StoreError::NotFound) };
                // A retry of a redemption that already succeeded answers with it.
                if r.key.is_some() && current.redeem_key == r.key {
                    let coupon = Coupon::try_from(current)?;
                    if coupon.redeemed_by == r.customer {
                        return Ok($crate::coupons_shared::ReadBack::Replayed(coupon));
                    }
                    return Err(StoreError::Conflict { what: "coupon_already_redeemed" });
                }
                let coupon = Coupon::try_from(current)?;
                return Err(not_issued(coupon.status.as_str()));
            };
            let coupon = Coupon::try_from(row)?;
            let (name,): (String,) = w
                .take(template_name)?
                .into_iter()
                .next()
                .ok_or_else(|| StoreError::MissingReference(format!("coupon template {}", coupon.template_id)))?;
            Ok($crate::coupons_shared::ReadBack::Redeemed(coupon, name))
        }

        const TEMPLATE_VALUES: &str = "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, \
            $21, $22, $23, $24, $25, $26, $27)";

        #[async_trait::async_trait]
        impl CouponStore for $ty {
            async fn insert_coupon_template(&self, t: &CouponTemplate) -> Result<()> {
                let r = TemplateRow::from_domain(t);
                let sql = format!("INSERT INTO coupon_templates ({TEMPLATE_COLS}) {TEMPLATE_VALUES}");
                bind_template!(sqlx::query(sqlx::AssertSqlSafe(sql)), r).execute(self.writer()).await?;
                Ok(())
            }

            async fn update_coupon_template(&self, t: &CouponTemplate) -> Result<()> {
                let r = TemplateRow::from_domain(t);
                let sets: Vec<String> = TEMPLATE_COLS
                    .split(',')
                    .map(str::trim)
                    .filter(|c| !matches!(*c, "tenant_id" | "id" | "created_at"))
                    .map(|c| format!("{c} = excluded.{c}"))
                    .collect();
                let sql = format!(
                    "INSERT INTO coupon_templates ({TEMPLATE_COLS}) {TEMPLATE_VALUES} ON CONFLICT (tenant_id, id) DO UPDATE SET {}",
                    sets.join(", ")
                );
                let mut tx = self.writer().begin().await?;
                let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM coupon_templates WHERE tenant_id = $1 AND id = $2")
                    .bind(r.tenant_id)
                    .bind(r.id)
                    .fetch_one(&mut *tx)
                    .await?;
                if exists == 0 {
                    return Err(StoreError::NotFound);
                }
                bind_template!(sqlx::query(sqlx::AssertSqlSafe(sql)), r).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn coupon_template(&self, tenant: TenantId, id: uuid::Uuid) -> Result<Option<CouponTemplate>> {
                let sql = format!("SELECT {TEMPLATE_COLS} FROM coupon_templates WHERE tenant_id = $1 AND id = $2");
                let row: Option<TemplateRow> =
                    sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant.0).bind(id).fetch_optional(self.reader()).await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn coupon_templates(&self, tenant: TenantId) -> Result<Vec<CouponTemplate>> {
                let sql = format!("SELECT {TEMPLATE_COLS} FROM coupon_templates WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC");
                let rows: Vec<TemplateRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant.0).fetch_all(self.reader()).await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn count_coupons_of_template(&self, tenant: TenantId, template: uuid::Uuid) -> Result<i64> {
                Ok(sqlx::query_scalar("SELECT COUNT(*) FROM coupons WHERE tenant_id = $1 AND template_id = $2")
                    .bind(tenant.0)
                    .bind(template)
                    .fetch_one(self.reader())
                    .await?)
            }

            async fn insert_issue_rule(&self, r: &IssueRule) -> Result<()> {
                sqlx::query(sqlx::AssertSqlSafe(format!("INSERT INTO coupon_issue_rules ({RULE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)")))
                    .bind(r.tenant_id.0)
                    .bind(r.id)
                    .bind(r.template_id)
                    .bind(r.min_spend.fen())
                    .bind(r.active)
                    .bind(r.created_at)
                    .bind(r.updated_at)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn update_issue_rule(&self, r: &IssueRule) -> Result<()> {
                let done = sqlx::query(
                    "UPDATE coupon_issue_rules SET template_id = $3, min_spend = $4, active = $5, updated_at = $6 \
                     WHERE tenant_id = $1 AND id = $2",
                )
                .bind(r.tenant_id.0)
                .bind(r.id)
                .bind(r.template_id)
                .bind(r.min_spend.fen())
                .bind(r.active)
                .bind(r.updated_at)
                .execute(self.writer())
                .await?;
                if done.rows_affected() == 1 { Ok(()) } else { Err(StoreError::NotFound) }
            }

            async fn issue_rule(&self, tenant: TenantId, id: uuid::Uuid) -> Result<Option<IssueRule>> {
                let sql = format!("SELECT {RULE_COLS} FROM coupon_issue_rules WHERE tenant_id = $1 AND id = $2");
                let row: Option<RuleRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant.0).bind(id).fetch_optional(self.reader()).await?;
                Ok(row.map(Into::into))
            }

            async fn issue_rules(&self, tenant: TenantId) -> Result<Vec<IssueRule>> {
                let sql = format!("SELECT {RULE_COLS} FROM coupon_issue_rules WHERE tenant_id = $1 ORDER BY min_spend, id");
                let rows: Vec<RuleRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant.0).fetch_all(self.reader()).await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn issue_coupons(&self, coupons: &[Coupon]) -> Result<()> {
                let mut tx = self.writer().begin().await?;
                for c in coupons {
                    issue_coupon_tx(&mut tx, c).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn coupon(&self, tenant: TenantId, id: uuid::Uuid) -> Result<Option<Coupon>> {
                let sql = format!("SELECT {COUPON_COLS} FROM coupons WHERE tenant_id = $1 AND id = $2");
                let row: Option<CouponRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant.0).bind(id).fetch_optional(self.reader()).await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn coupon_by_code(&self, tenant: TenantId, code: &str) -> Result<Option<Coupon>> {
                let sql = format!("SELECT {COUPON_COLS} FROM coupons WHERE tenant_id = $1 AND code = $2");
                let row: Option<CouponRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(tenant.0).bind(code).fetch_optional(self.reader()).await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn list_coupons(&self, tenant: TenantId, f: &CouponFilter, limit: i64) -> Result<Vec<Coupon>> {
                let mut b = sqlx::QueryBuilder::<$db>::new(format!("SELECT {COUPON_COLS} FROM coupons WHERE tenant_id = "));
                b.push_bind(tenant.0);
                if let Some(c) = f.customer {
                    b.push(" AND customer_id = ").push_bind(c.0);
                }
                if let Some(t) = f.template {
                    b.push(" AND template_id = ").push_bind(t);
                }
                if let Some(s) = f.status {
                    b.push(" AND status = ").push_bind(s.as_str());
                }
                b.push(" ORDER BY issued_at DESC, id DESC LIMIT ").push_bind(limit);
                let rows: Vec<CouponRow> = b.build_query_as().fetch_all(self.reader()).await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn coupon_holdings(&self, tenant: TenantId, template: uuid::Uuid, customers: &[CustomerId]) -> Result<Vec<(CustomerId, i64)>> {
                let mut out = Vec::new();
                for chunk in customers.chunks($crate::shared::BATCH) {
                    let mut b = sqlx::QueryBuilder::<$db>::new("SELECT customer_id, CAST(held AS BIGINT) FROM coupon_holdings WHERE tenant_id = ");
                    b.push_bind(tenant.0).push(" AND template_id = ").push_bind(template).push(" AND held > 0 AND customer_id IN (");
                    let mut sep = b.separated(", ");
                    for c in chunk {
                        sep.push_bind(c.0);
                    }
                    b.push(")");
                    let rows: Vec<(uuid::Uuid, i64)> = b.build_query_as().fetch_all(self.reader()).await?;
                    out.extend(rows.into_iter().map(|(c, n)| (CustomerId(c), n)));
                }
                Ok(out)
            }

            async fn redeem_coupon(&self, r: &CouponRedemption) -> Result<RedeemOutcome> {
                let mut w = $crate::writer::Writer::<$db>::begin(self.writer()).await?;
                match redeem_coupon_w(&mut w, r, None).await {
                    Ok(out) if !out.replayed => {
                        w.commit().await?;
                        Ok(out)
                    }
                    other => {
                        // Alone, not grouped: the rollback has nothing to add.
                        let _ = w.rollback().await;
                        other
                    }
                }
            }

            async fn void_coupon(
                &self,
                tenant: TenantId,
                id: uuid::Uuid,
                reason: &str,
                staff: Option<StaffId>,
                store: Option<StoreId>,
                at: DateTime<Utc>,
            ) -> Result<Coupon> {
                let t = tenant.0;
                let mut tx = self.writer().begin().await?;
                let row: Option<CouponRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "UPDATE coupons SET status = 'voided', voided_at = $3, voided_by = $4, void_reason = $5 \
                     WHERE tenant_id = $1 AND id = $2 AND status = 'issued' RETURNING {COUPON_COLS}"
                )))
                .bind(t)
                .bind(id)
                .bind(at)
                .bind(staff.map(|x| x.0))
                .bind(reason)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else {
                    let status: Option<String> = sqlx::query_scalar("SELECT status FROM coupons WHERE tenant_id = $1 AND id = $2")
                        .bind(t)
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    return Err(status.map_or(StoreError::NotFound, |s| not_issued(&s)));
                };
                let coupon = Coupon::try_from(row)?;
                // A voided coupon no longer counts against the per-customer limit.
                sqlx::query(
                    "UPDATE coupon_holdings SET held = held - 1 WHERE tenant_id = $1 AND template_id = $2 AND customer_id = $3 AND held > 0",
                )
                .bind(t)
                .bind(coupon.template_id)
                .bind(coupon.customer_id.0)
                .execute(&mut *tx)
                .await?;
                let name = template_name(&mut tx, t, coupon.template_id).await?;
                super::insert_event(&mut tx, &coupon.voided_event(uuid::Uuid::now_v7(), &name, store)).await?;
                tx.commit().await?;
                Ok(coupon)
            }

            async fn expire_coupons(&self, tenant: TenantId, today: NaiveDate, at: DateTime<Utc>) -> Result<u64> {
                let r = sqlx::query(
                    "UPDATE coupons SET status = 'expired', expired_at = $3 WHERE tenant_id = $1 AND status = 'issued' AND valid_to < $2",
                )
                .bind(tenant.0)
                .bind(today)
                .bind(at)
                .execute(self.writer())
                .await?;
                Ok(r.rows_affected())
            }
        }
    };
}
pub(crate) use impl_coupon_storage;
