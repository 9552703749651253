//! Row types shared by both backends, and their conversion to and from domain types.
//! Decoding is strict: an unknown code in a column is reported as corrupt data.

use crate::StoreError;
use chrono::{DateTime, NaiveDate, Utc};
use patron_domain::card::{Card, CardKinds, CardMedium, CardStatus};
use patron_domain::customer::{
    AcquisitionSource, AgeBand, ChurnReason, CreditRating, Customer, CustomerProfile, CustomerType,
    Gender, LifecycleStage,
};
use patron_domain::id_document::{IdDocumentKind, ProtectedIdDocument};
use patron_domain::ids::*;
use patron_domain::menu::{MenuCategory, MenuItem};
use patron_domain::money::Money;
use patron_domain::org::{Role, Staff, Store, Tenant};
use patron_domain::phone::Phone;
use patron_domain::search;
use patron_domain::timeline::TimelineEvent;
use uuid::Uuid;

fn corrupt(what: &str, v: &str) -> StoreError {
    StoreError::Corrupt(format!("{what}: {v:?}"))
}

fn code<T>(what: &str, v: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T, StoreError> {
    parse(v).ok_or_else(|| corrupt(what, v))
}

fn opt_code<T>(
    what: &str,
    v: Option<String>,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, StoreError> {
    v.map(|s| code(what, &s, &parse)).transpose()
}

fn json_list(what: &str, v: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(v).map_err(|_| corrupt(what, v))
}

pub(crate) fn to_json_list(v: &[String]) -> String {
    serde_json::to_string(v).expect("a list of strings serialises")
}

#[derive(sqlx::FromRow)]
pub(crate) struct TenantRow {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}
impl From<TenantRow> for Tenant {
    fn from(r: TenantRow) -> Self {
        Tenant {
            id: TenantId(r.id),
            code: r.code,
            name: r.name,
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct StoreRow {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub address: Option<String>,
    pub phone: Option<String>,
    pub created_at: DateTime<Utc>,
}
impl From<StoreRow> for Store {
    fn from(r: StoreRow) -> Self {
        Store {
            tenant_id: TenantId(r.tenant_id),
            id: StoreId(r.id),
            code: r.code,
            name: r.name,
            address: r.address,
            phone: r.phone,
            created_at: r.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct StaffRow {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub role: String,
    pub store_id: Option<Uuid>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}
impl TryFrom<StaffRow> for Staff {
    type Error = StoreError;
    fn try_from(r: StaffRow) -> Result<Self, StoreError> {
        Ok(Staff {
            tenant_id: TenantId(r.tenant_id),
            id: StaffId(r.id),
            username: r.username,
            display_name: r.display_name,
            password_hash: r.password_hash,
            role: code("staff.role", &r.role, Role::parse)?,
            store_id: r.store_id.map(StoreId),
            active: r.active,
            created_at: r.created_at,
        })
    }
}

/// A customer as stored: the validated profile flattened into columns, plus search keys.
#[derive(sqlx::FromRow)]
pub(crate) struct CustomerRow {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub name: String,
    pub name_pinyin: String,
    pub name_initials: String,
    pub phone: Option<String>,
    pub gender: String,
    pub birthday: Option<NaiveDate>,
    pub age_band: Option<String>,
    pub nationality: Option<String>,
    pub customer_type: String,
    pub industry: Option<String>,
    pub title: Option<String>,
    pub company: Option<String>,
    pub work_phone: Option<String>,
    pub credit_rating: Option<String>,
    pub id_doc_kind: Option<String>,
    pub id_doc_hash: Option<String>,
    pub id_doc_masked: Option<String>,
    pub email: Option<String>,
    pub address: Option<String>,
    pub organization_id: Option<Uuid>,
    pub acquisition_source: Option<String>,
    pub referred_by: Option<Uuid>,
    pub marketing_consent: bool,
    pub marketing_consent_source: Option<String>,
    pub marketing_consent_at: Option<DateTime<Utc>>,
    pub favourite_dishes: String,
    pub tastes: String,
    pub seat_preference: Option<String>,
    pub allergies: String,
    pub tags: String,
    pub notes: Option<String>,
    pub lifecycle_stage: String,
    pub churn_reason: Option<String>,
    pub churn_note: Option<String>,
    pub level: Option<String>,
    pub home_store_id: Option<Uuid>,
    pub merged_into: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl CustomerRow {
    pub(crate) fn from_domain(c: &Customer) -> CustomerRow {
        let p = &c.profile;
        let id_doc = p.id_document.as_ref();
        CustomerRow {
            tenant_id: c.tenant_id.0,
            id: c.id.0,
            name: p.name.clone(),
            name_pinyin: search::pinyin_full(&p.name),
            name_initials: search::pinyin_initials(&p.name),
            phone: p.phone.as_ref().map(|x| x.as_str().to_string()),
            gender: p.gender.as_str().into(),
            birthday: p.birthday,
            age_band: p.age_band.map(|x| x.as_str().into()),
            nationality: p.nationality.clone(),
            customer_type: p.customer_type.as_str().into(),
            industry: p.industry.clone(),
            title: p.title.clone(),
            company: p.company.clone(),
            work_phone: p.work_phone.clone(),
            credit_rating: p.credit_rating.map(|x| x.as_str().into()),
            id_doc_kind: id_doc.map(|d| d.kind.as_str().into()),
            id_doc_hash: id_doc.map(|d| d.hash.clone()),
            id_doc_masked: id_doc.map(|d| d.masked.clone()),
            email: p.email.clone(),
            address: p.address.clone(),
            organization_id: p.organization_id.map(|x| x.0),
            acquisition_source: p.acquisition_source.map(|x| x.as_str().into()),
            referred_by: p.referred_by.map(|x| x.0),
            marketing_consent: p.marketing_consent,
            marketing_consent_source: p.marketing_consent_source.clone(),
            marketing_consent_at: c.marketing_consent_at,
            favourite_dishes: to_json_list(&p.favourite_dishes),
            tastes: to_json_list(&p.tastes),
            seat_preference: p.seat_preference.clone(),
            allergies: to_json_list(&p.allergies),
            tags: to_json_list(&p.tags),
            notes: p.notes.clone(),
            lifecycle_stage: p.lifecycle_stage.as_str().into(),
            churn_reason: p.churn_reason.map(|x| x.as_str().into()),
            churn_note: p.churn_note.clone(),
            level: c.level.clone(),
            home_store_id: c.home_store_id.map(|x| x.0),
            merged_into: c.merged_into.map(|x| x.0),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }

    pub(crate) fn into_domain(self) -> Result<Customer, StoreError> {
        let id_document = match (self.id_doc_kind, self.id_doc_hash, self.id_doc_masked) {
            (Some(k), Some(hash), Some(masked)) => Some(ProtectedIdDocument {
                kind: code("id_doc_kind", &k, IdDocumentKind::parse)?,
                hash,
                masked,
            }),
            _ => None,
        };
        let profile = CustomerProfile {
            name: self.name,
            phone: self.phone.map(Phone::from_stored),
            gender: code("gender", &self.gender, Gender::parse)?,
            birthday: self.birthday,
            age_band: opt_code("age_band", self.age_band, AgeBand::parse)?,
            nationality: self.nationality,
            customer_type: code("customer_type", &self.customer_type, CustomerType::parse)?,
            industry: self.industry,
            title: self.title,
            company: self.company,
            work_phone: self.work_phone,
            credit_rating: opt_code("credit_rating", self.credit_rating, CreditRating::parse)?,
            id_document,
            email: self.email,
            address: self.address,
            organization_id: self.organization_id.map(CustomerId),
            acquisition_source: opt_code(
                "acquisition_source",
                self.acquisition_source,
                AcquisitionSource::parse,
            )?,
            referred_by: self.referred_by.map(CustomerId),
            marketing_consent: self.marketing_consent,
            marketing_consent_source: self.marketing_consent_source,
            favourite_dishes: json_list("favourite_dishes", &self.favourite_dishes)?,
            tastes: json_list("tastes", &self.tastes)?,
            seat_preference: self.seat_preference,
            allergies: json_list("allergies", &self.allergies)?,
            tags: json_list("tags", &self.tags)?,
            notes: self.notes,
            lifecycle_stage: code(
                "lifecycle_stage",
                &self.lifecycle_stage,
                LifecycleStage::parse,
            )?,
            churn_reason: opt_code("churn_reason", self.churn_reason, ChurnReason::parse)?,
            churn_note: self.churn_note,
        };
        Ok(Customer {
            id: CustomerId(self.id),
            tenant_id: TenantId(self.tenant_id),
            profile,
            level: self.level,
            home_store_id: self.home_store_id.map(StoreId),
            merged_into: self.merged_into.map(CustomerId),
            marketing_consent_at: self.marketing_consent_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct TimelineRow {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub customer_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub kind: String,
    pub summary: String,
    pub data: String,
    pub store_id: Option<Uuid>,
    pub staff_id: Option<Uuid>,
}
impl TryFrom<TimelineRow> for TimelineEvent {
    type Error = StoreError;
    fn try_from(r: TimelineRow) -> Result<Self, StoreError> {
        Ok(TimelineEvent {
            tenant_id: TenantId(r.tenant_id),
            id: TimelineEventId(r.id),
            customer_id: CustomerId(r.customer_id),
            occurred_at: r.occurred_at,
            kind: r.kind,
            summary: r.summary,
            data: serde_json::from_str(&r.data).map_err(|_| corrupt("timeline.data", &r.data))?,
            store_id: r.store_id.map(StoreId),
            staff_id: r.staff_id.map(StaffId),
        })
    }
}

/// Card columns, in `CardRow` order.
pub(crate) const CARD_COLS: &str = "tenant_id, id, number, customer_id, medium, status, issued_at, kinds, store_id, pin_hash, \
    pin_failures, pin_locked_until, pool_to_org, replaced_by";

#[derive(sqlx::FromRow)]
pub(crate) struct CardRow {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub number: String,
    pub customer_id: Option<Uuid>,
    pub medium: String,
    pub status: String,
    pub issued_at: DateTime<Utc>,
    pub kinds: String,
    pub store_id: Option<Uuid>,
    pub pin_hash: Option<String>,
    pub pin_failures: i32,
    pub pin_locked_until: Option<DateTime<Utc>>,
    pub pool_to_org: bool,
    pub replaced_by: Option<Uuid>,
}
impl TryFrom<CardRow> for Card {
    type Error = StoreError;
    fn try_from(r: CardRow) -> Result<Self, StoreError> {
        Ok(Card {
            tenant_id: TenantId(r.tenant_id),
            id: CardId(r.id),
            number: r.number,
            customer_id: r.customer_id.map(CustomerId),
            medium: code("card.medium", &r.medium, CardMedium::parse)?,
            status: code("card.status", &r.status, CardStatus::parse)?,
            issued_at: r.issued_at,
            kinds: CardKinds::from_db(&r.kinds),
            store_id: r.store_id.map(StoreId),
            pin_hash: r.pin_hash,
            pin_failures: r.pin_failures,
            pin_locked_until: r.pin_locked_until,
            pool_to_org: r.pool_to_org,
            replaced_by: r.replaced_by.map(CardId),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct MenuCategoryRow {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub name: String,
    pub name_en: String,
    pub sort_order: i32,
}
impl From<MenuCategoryRow> for MenuCategory {
    fn from(r: MenuCategoryRow) -> Self {
        MenuCategory {
            tenant_id: TenantId(r.tenant_id),
            id: r.id,
            name: r.name,
            name_en: r.name_en,
            sort_order: r.sort_order,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct MenuItemRow {
    pub tenant_id: Uuid,
    pub id: Uuid,
    pub category_id: Uuid,
    pub name: String,
    pub name_en: String,
    pub price: i64,
    pub joins_discounts: bool,
    pub active: bool,
}
impl From<MenuItemRow> for MenuItem {
    fn from(r: MenuItemRow) -> Self {
        MenuItem {
            tenant_id: TenantId(r.tenant_id),
            id: MenuItemId(r.id),
            category_id: r.category_id,
            name: r.name,
            name_en: r.name_en,
            price: Money::from_fen(r.price),
            joins_discounts: r.joins_discounts,
            active: r.active,
        }
    }
}
