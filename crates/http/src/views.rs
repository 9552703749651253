//! What the API returns: domain records shaped for clients. The ID number appears only
//! masked; the keyed hash never leaves the server.

use chrono::{DateTime, NaiveDate, Utc};
use patron_domain::customer::Customer;
use patron_domain::id_document::IdDocumentKind;
use patron_domain::ids::{CustomerId, StoreId};
use serde::Serialize;
use utoipa::ToSchema;

/// The protected form of an ID document.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdDocumentView {
    pub kind: IdDocumentKind,
    /// e.g. "110***********002X".
    pub masked: String,
}

/// A customer as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerView {
    pub id: CustomerId,
    pub name: String,
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
    pub id_document: Option<IdDocumentView>,
    pub email: Option<String>,
    pub address: Option<String>,
    pub organization_id: Option<CustomerId>,
    pub acquisition_source: Option<String>,
    pub referred_by: Option<CustomerId>,
    pub marketing_consent: bool,
    pub marketing_consent_source: Option<String>,
    pub marketing_consent_at: Option<DateTime<Utc>>,
    pub favourite_dishes: Vec<String>,
    pub tastes: Vec<String>,
    pub seat_preference: Option<String>,
    pub allergies: Vec<String>,
    pub tags: Vec<String>,
    pub notes: Option<String>,
    pub lifecycle_stage: String,
    pub churn_reason: Option<String>,
    pub churn_note: Option<String>,
    pub level: Option<String>,
    pub home_store_id: Option<StoreId>,
    /// Set when this record was merged into another customer.
    pub merged_into: Option<CustomerId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Customer> for CustomerView {
    fn from(c: Customer) -> Self {
        let p = c.profile;
        CustomerView {
            id: c.id,
            name: p.name,
            phone: p.phone.map(|x| x.as_str().to_string()),
            gender: p.gender.as_str().into(),
            birthday: p.birthday,
            age_band: p.age_band.map(|x| x.as_str().into()),
            nationality: p.nationality,
            customer_type: p.customer_type.as_str().into(),
            industry: p.industry,
            title: p.title,
            company: p.company,
            work_phone: p.work_phone,
            credit_rating: p.credit_rating.map(|x| x.as_str().into()),
            id_document: p.id_document.map(|d| IdDocumentView {
                kind: d.kind,
                masked: d.masked,
            }),
            email: p.email,
            address: p.address,
            organization_id: p.organization_id,
            acquisition_source: p.acquisition_source.map(|x| x.as_str().into()),
            referred_by: p.referred_by,
            marketing_consent: p.marketing_consent,
            marketing_consent_source: p.marketing_consent_source,
            marketing_consent_at: c.marketing_consent_at,
            favourite_dishes: p.favourite_dishes,
            tastes: p.tastes,
            seat_preference: p.seat_preference,
            allergies: p.allergies,
            tags: p.tags,
            notes: p.notes,
            lifecycle_stage: p.lifecycle_stage.as_str().into(),
            churn_reason: p.churn_reason.map(|x| x.as_str().into()),
            churn_note: p.churn_note,
            level: c.level,
            home_store_id: c.home_store_id,
            merged_into: c.merged_into,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// One page of customers.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerPage {
    pub items: Vec<CustomerView>,
    pub page: u32,
    pub per_page: u32,
    pub has_more: bool,
}
