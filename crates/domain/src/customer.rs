//! Customer profiles (PRODUCT.md §1): the input as people type it, its validation into a
//! typed profile, and the stored record.

use crate::error::{FieldError, ValidationErrors};
use crate::id_document::{IdDocument, IdDocumentKind, ProtectedIdDocument};
use crate::ids::{CustomerId, StoreId, TenantId};
use crate::phone::Phone;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Declares a closed set of codes stored as text, parsed from English codes or Chinese
/// labels (CSV files typed by staff use both).
macro_rules! code_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $code:literal $(| $alias:literal)*),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The stable code stored in the database and used by the API.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }
            /// Accepts the code or one of its Chinese labels.
            pub fn parse(s: &str) -> Option<$name> {
                let t = s.trim();
                $(if t.eq_ignore_ascii_case($code) $(|| t == $alias)* { return Some($name::$variant); })+
                None
            }
            /// The codes, for error messages.
            pub fn codes() -> String {
                [$($code),+].join(", ")
            }
        }
    };
}

code_enum!(
    /// Gender as the customer gave it.
    Gender { Male = "male" | "男", Female = "female" | "女", Unknown = "unknown" | "未知" }
);
code_enum!(
    /// Age band, given directly or derived from the birthday.
    AgeBand {
        Under18 = "under_18" | "18岁以下",
        From18To24 = "18_24" | "18-24",
        From25To34 = "25_34" | "25-34",
        From35To44 = "35_44" | "35-44",
        From45To54 = "45_54" | "45-54",
        From55To64 = "55_64" | "55-64",
        From65 = "65_plus" | "65岁以上",
    }
);
code_enum!(
    /// Individual, family or organization (an organization owns employees' cards).
    CustomerType { Individual = "individual" | "个人", Family = "family" | "家庭", Organization = "organization" | "单位" | "企业" }
);
code_enum!(
    /// Credit rating, for charge accounts and banquet deposits.
    CreditRating { A = "a", B = "b", C = "c", D = "d" }
);
code_enum!(
    /// How the customer first came to us.
    AcquisitionSource {
        WalkIn = "walk_in" | "到店" | "自然到店",
        Referral = "referral" | "介绍" | "转介绍",
        Conference = "conference" | "会议",
        Phone = "phone" | "电话",
        DirectMail = "direct_mail" | "直邮",
        Online = "online" | "网络" | "线上",
        Campaign = "campaign" | "活动",
        FriendCoupon = "friend_coupon" | "朋友转赠券",
        Other = "other" | "其他",
    }
);
code_enum!(
    /// Lifecycle stage: potential → prospect → customer → loyal → lost.
    LifecycleStage { Potential = "potential" | "潜在客户", Prospect = "prospect" | "准顾客", Customer = "customer" | "顾客", Loyal = "loyal" | "忠诚顾客", Lost = "lost" | "流失" }
);
code_enum!(
    /// Why a customer was lost.
    ChurnReason {
        Price = "price" | "价格",
        Inconvenience = "inconvenience" | "不方便",
        FoundBetter = "found_better" | "找到更好的",
        ServiceFailure = "service_failure" | "服务失误",
        Moved = "moved" | "搬迁",
        Other = "other" | "其他",
    }
);

impl AgeBand {
    /// The band of someone born on `birthday`, on `today`.
    pub fn from_birthday(birthday: NaiveDate, today: NaiveDate) -> AgeBand {
        let mut age = today.year() - birthday.year();
        if (today.month(), today.day()) < (birthday.month(), birthday.day()) {
            age -= 1;
        }
        match age {
            i32::MIN..=17 => AgeBand::Under18,
            18..=24 => AgeBand::From18To24,
            25..=34 => AgeBand::From25To34,
            35..=44 => AgeBand::From35To44,
            45..=54 => AgeBand::From45To54,
            55..=64 => AgeBand::From55To64,
            _ => AgeBand::From65,
        }
    }
}

/// A customer profile as people type it (API body, CSV row, web form). Everything is
/// text or lists so that every problem is reported against its field, never as a
/// parse failure of the whole body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CustomerInput {
    /// Required, 1–50 characters.
    pub name: Option<String>,
    /// Unique per tenant among active customers; normalised (e.g. "+86 138-0013-8000" → "13800138000").
    pub phone: Option<String>,
    /// male, female, unknown (or 男/女).
    pub gender: Option<String>,
    /// YYYY-MM-DD.
    pub birthday: Option<String>,
    /// under_18, 18_24, 25_34, 35_44, 45_54, 55_64, 65_plus; derived from the birthday when absent.
    pub age_band: Option<String>,
    pub nationality: Option<String>,
    /// individual (default), family, organization.
    pub customer_type: Option<String>,
    pub industry: Option<String>,
    /// Title or position.
    pub title: Option<String>,
    /// Business-card fields.
    pub company: Option<String>,
    pub work_phone: Option<String>,
    /// a, b, c, d.
    pub credit_rating: Option<String>,
    /// resident_id (default), passport, hk_macao_permit, taiwan_permit, other.
    pub id_document_kind: Option<String>,
    /// Stored only as a keyed hash and a masked form.
    pub id_number: Option<String>,
    pub email: Option<String>,
    pub address: Option<String>,
    /// The organization customer this person belongs to.
    pub organization_id: Option<String>,
    /// walk_in, referral, conference, phone, direct_mail, online, campaign, friend_coupon, other.
    pub acquisition_source: Option<String>,
    /// The customer who referred this one.
    pub referred_by: Option<String>,
    pub marketing_consent: Option<bool>,
    /// Where consent was given or withdrawn (in_store, online, phone, import...).
    pub marketing_consent_source: Option<String>,
    pub favourite_dishes: Vec<String>,
    /// Taste preferences: spicy, no coriander...
    pub tastes: Vec<String>,
    pub seat_preference: Option<String>,
    pub allergies: Vec<String>,
    pub tags: Vec<String>,
    pub notes: Option<String>,
    /// potential, prospect, customer (default), loyal, lost.
    pub lifecycle_stage: Option<String>,
    /// Required when the stage is lost: price, inconvenience, found_better, service_failure, moved, other.
    pub churn_reason: Option<String>,
    pub churn_note: Option<String>,
}

/// A validated profile: what the store writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerProfile {
    pub name: String,
    pub phone: Option<Phone>,
    pub gender: Gender,
    pub birthday: Option<NaiveDate>,
    pub age_band: Option<AgeBand>,
    pub nationality: Option<String>,
    pub customer_type: CustomerType,
    pub industry: Option<String>,
    pub title: Option<String>,
    pub company: Option<String>,
    pub work_phone: Option<String>,
    pub credit_rating: Option<CreditRating>,
    pub id_document: Option<ProtectedIdDocument>,
    pub email: Option<String>,
    pub address: Option<String>,
    pub organization_id: Option<CustomerId>,
    pub acquisition_source: Option<AcquisitionSource>,
    pub referred_by: Option<CustomerId>,
    pub marketing_consent: bool,
    pub marketing_consent_source: Option<String>,
    pub favourite_dishes: Vec<String>,
    pub tastes: Vec<String>,
    pub seat_preference: Option<String>,
    pub allergies: Vec<String>,
    pub tags: Vec<String>,
    pub notes: Option<String>,
    pub lifecycle_stage: LifecycleStage,
    pub churn_reason: Option<ChurnReason>,
    pub churn_note: Option<String>,
}

/// A stored customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub id: CustomerId,
    pub tenant_id: TenantId,
    pub profile: CustomerProfile,
    /// Member level code; set by the loyalty rules, not by profile edits.
    pub level: Option<String>,
    pub home_store_id: Option<StoreId>,
    /// Set when this record was merged into another; it then only redirects.
    pub merged_into: Option<CustomerId>,
    pub marketing_consent_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What validation needs from outside: the ID-hash secret and today's date.
#[derive(Clone, Copy)]
pub struct ValidationContext<'a> {
    pub id_hash_key: &'a [u8],
    pub today: NaiveDate,
}

const MAX_TEXT: usize = 200;
const MAX_NOTES: usize = 2000;
const MAX_LIST: usize = 30;

/// Trims; empty means absent; refuses control characters and over-long text.
fn text(
    errors: &mut ValidationErrors,
    field: &str,
    v: &Option<String>,
    max: usize,
) -> Option<String> {
    let t = v.as_deref().map(str::trim).filter(|s| !s.is_empty())?;
    if t.chars().count() > max {
        errors.push(FieldError::new(
            field,
            "too_long",
            format!("at most {max} characters"),
        ));
        return None;
    }
    if t.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        errors.push(FieldError::new(
            field,
            "invalid_characters",
            "control characters are not allowed",
        ));
        return None;
    }
    Some(t.to_string())
}

fn list(errors: &mut ValidationErrors, field: &str, v: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(v.len());
    for item in v {
        if let Some(t) = text(errors, field, &Some(item.clone()), 50)
            && !out.contains(&t)
        {
            out.push(t);
        }
    }
    if out.len() > MAX_LIST {
        errors.push(FieldError::new(
            field,
            "too_many",
            format!("at most {MAX_LIST} entries"),
        ));
        out.truncate(MAX_LIST);
    }
    out
}

fn code<T: Copy>(
    errors: &mut ValidationErrors,
    field: &str,
    v: &Option<String>,
    parse: fn(&str) -> Option<T>,
    codes: fn() -> String,
) -> Option<T> {
    let t = v.as_deref().map(str::trim).filter(|s| !s.is_empty())?;
    let parsed = parse(t);
    if parsed.is_none() {
        errors.push(FieldError::new(
            field,
            "invalid_choice",
            format!("“{t}” is not one of: {}", codes()),
        ));
    }
    parsed
}

fn reference(errors: &mut ValidationErrors, field: &str, v: &Option<String>) -> Option<CustomerId> {
    let t = v.as_deref().map(str::trim).filter(|s| !s.is_empty())?;
    match t.parse() {
        Ok(id) => Some(id),
        Err(_) => {
            errors.push(FieldError::new(
                field,
                "invalid_id",
                format!("“{t}” is not a customer id"),
            ));
            None
        }
    }
}

/// Parses YYYY-MM-DD (also YYYY/MM/DD and YYYYMMDD, common in spreadsheets).
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let t = s.trim();
    ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(t, f).ok())
}

impl CustomerInput {
    /// Validates every field, collecting all problems. `existing_id` is kept when the
    /// input carries no ID number (an update that does not touch it).
    pub fn validate(
        &self,
        ctx: ValidationContext<'_>,
        existing_id: Option<ProtectedIdDocument>,
    ) -> Result<CustomerProfile, ValidationErrors> {
        let mut e = ValidationErrors::default();
        let name = text(&mut e, "name", &self.name, 50);
        if name.is_none() && !e.0.iter().any(|x| x.field == "name") {
            e.push(FieldError::new("name", "required", "a name is required"));
        }
        let phone = self
            .phone
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .and_then(|p| Phone::parse(p, "phone").map_err(|x| e.push(x)).ok());
        let gender = code(&mut e, "gender", &self.gender, Gender::parse, Gender::codes)
            .unwrap_or(Gender::Unknown);
        let birthday = self
            .birthday
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .and_then(|b| match parse_date(b) {
                Some(d) if d > ctx.today => {
                    e.push(FieldError::new(
                        "birthday",
                        "in_future",
                        "the birthday is in the future",
                    ));
                    None
                }
                Some(d) if d.year() < 1900 => {
                    e.push(FieldError::new(
                        "birthday",
                        "too_early",
                        "the birthday is before 1900",
                    ));
                    None
                }
                Some(d) => Some(d),
                None => {
                    e.push(FieldError::new(
                        "birthday",
                        "invalid_date",
                        format!("“{b}” is not a date (YYYY-MM-DD)"),
                    ));
                    None
                }
            });
        let age_band = code(
            &mut e,
            "age_band",
            &self.age_band,
            AgeBand::parse,
            AgeBand::codes,
        )
        .or_else(|| birthday.map(|b| AgeBand::from_birthday(b, ctx.today)));
        let customer_type = code(
            &mut e,
            "customer_type",
            &self.customer_type,
            CustomerType::parse,
            CustomerType::codes,
        )
        .unwrap_or(CustomerType::Individual);
        let credit_rating = code(
            &mut e,
            "credit_rating",
            &self.credit_rating,
            CreditRating::parse,
            CreditRating::codes,
        );
        let id_document = match self
            .id_number
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(number) => {
                let kind = match self.id_document_kind.as_deref() {
                    None => Some(IdDocumentKind::ResidentId),
                    Some(k) => {
                        let parsed = IdDocumentKind::parse(k);
                        if parsed.is_none() {
                            e.push(FieldError::new(
                                "id_document_kind",
                                "invalid_choice",
                                format!("“{k}” is not one of: resident_id, passport, hk_macao_permit, taiwan_permit, other"),
                            ));
                        }
                        parsed
                    }
                };
                kind.and_then(|k| {
                    IdDocument::parse(k, number, "id_number")
                        .map_err(|x| e.push(x))
                        .ok()
                })
                .map(|d| d.protect(ctx.id_hash_key))
            }
            None => existing_id,
        };
        let email = text(&mut e, "email", &self.email, 100);
        if let Some(m) = &email {
            let ok = m.split_once('@').is_some_and(|(l, d)| {
                !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.')
            }) && !m.contains(char::is_whitespace);
            if !ok {
                e.push(FieldError::new(
                    "email",
                    "invalid_email",
                    format!("“{m}” is not an email address"),
                ));
            }
        }
        let work_phone = text(&mut e, "work_phone", &self.work_phone, 30);
        let lifecycle_stage = code(
            &mut e,
            "lifecycle_stage",
            &self.lifecycle_stage,
            LifecycleStage::parse,
            LifecycleStage::codes,
        )
        .unwrap_or(LifecycleStage::Customer);
        let churn_reason = code(
            &mut e,
            "churn_reason",
            &self.churn_reason,
            ChurnReason::parse,
            ChurnReason::codes,
        );
        match (lifecycle_stage, churn_reason) {
            (LifecycleStage::Lost, None) if !e.0.iter().any(|x| x.field == "churn_reason") => e
                .push(FieldError::new(
                    "churn_reason",
                    "required",
                    "a lost customer needs a churn reason",
                )),
            (stage, Some(_)) if stage != LifecycleStage::Lost => e.push(FieldError::new(
                "churn_reason",
                "not_lost",
                "a churn reason is only recorded for a lost customer",
            )),
            _ => {}
        }
        let profile = CustomerProfile {
            name: name.unwrap_or_default(),
            phone,
            gender,
            birthday,
            age_band,
            nationality: text(&mut e, "nationality", &self.nationality, 50),
            customer_type,
            industry: text(&mut e, "industry", &self.industry, 50),
            title: text(&mut e, "title", &self.title, 50),
            company: text(&mut e, "company", &self.company, 100),
            work_phone,
            credit_rating,
            id_document,
            email,
            address: text(&mut e, "address", &self.address, MAX_TEXT),
            organization_id: reference(&mut e, "organization_id", &self.organization_id),
            acquisition_source: code(
                &mut e,
                "acquisition_source",
                &self.acquisition_source,
                AcquisitionSource::parse,
                AcquisitionSource::codes,
            ),
            referred_by: reference(&mut e, "referred_by", &self.referred_by),
            marketing_consent: self.marketing_consent.unwrap_or(false),
            marketing_consent_source: text(
                &mut e,
                "marketing_consent_source",
                &self.marketing_consent_source,
                50,
            ),
            favourite_dishes: list(&mut e, "favourite_dishes", &self.favourite_dishes),
            tastes: list(&mut e, "tastes", &self.tastes),
            seat_preference: text(&mut e, "seat_preference", &self.seat_preference, 100),
            allergies: list(&mut e, "allergies", &self.allergies),
            tags: list(&mut e, "tags", &self.tags),
            notes: text(&mut e, "notes", &self.notes, MAX_NOTES),
            lifecycle_stage,
            churn_reason,
            churn_note: text(&mut e, "churn_note", &self.churn_note, MAX_TEXT),
        };
        e.into_result(profile)
    }
}

impl CustomerProfile {
    /// The profile back as input (ID number omitted: it is not kept in clear), so an
    /// update can overlay a JSON merge patch and re-validate the whole.
    pub fn to_input(&self) -> CustomerInput {
        let s = |v: &Option<String>| v.clone();
        CustomerInput {
            name: Some(self.name.clone()),
            phone: self.phone.as_ref().map(|p| p.as_str().to_string()),
            gender: Some(self.gender.as_str().into()),
            birthday: self.birthday.map(|d| d.to_string()),
            age_band: self.age_band.map(|a| a.as_str().into()),
            nationality: s(&self.nationality),
            customer_type: Some(self.customer_type.as_str().into()),
            industry: s(&self.industry),
            title: s(&self.title),
            company: s(&self.company),
            work_phone: s(&self.work_phone),
            credit_rating: self.credit_rating.map(|c| c.as_str().into()),
            id_document_kind: None,
            id_number: None,
            email: s(&self.email),
            address: s(&self.address),
            organization_id: self.organization_id.map(|i| i.to_string()),
            acquisition_source: self.acquisition_source.map(|a| a.as_str().into()),
            referred_by: self.referred_by.map(|i| i.to_string()),
            marketing_consent: Some(self.marketing_consent),
            marketing_consent_source: s(&self.marketing_consent_source),
            favourite_dishes: self.favourite_dishes.clone(),
            tastes: self.tastes.clone(),
            seat_preference: s(&self.seat_preference),
            allergies: self.allergies.clone(),
            tags: self.tags.clone(),
            notes: s(&self.notes),
            lifecycle_stage: Some(self.lifecycle_stage.as_str().into()),
            churn_reason: self.churn_reason.map(|c| c.as_str().into()),
            churn_note: s(&self.churn_note),
        }
    }

    /// Fills this (surviving) profile's blanks from a duplicate being merged into it, and
    /// unions the lists. The survivor's own values always win.
    pub fn absorb(&mut self, dup: &CustomerProfile) {
        fn fill<T: Clone>(mine: &mut Option<T>, theirs: &Option<T>) {
            if mine.is_none() {
                mine.clone_from(theirs);
            }
        }
        fn union(mine: &mut Vec<String>, theirs: &[String]) {
            for t in theirs {
                if !mine.contains(t) {
                    mine.push(t.clone());
                }
            }
        }
        fill(&mut self.phone, &dup.phone);
        if self.gender == Gender::Unknown {
            self.gender = dup.gender;
        }
        fill(&mut self.birthday, &dup.birthday);
        fill(&mut self.age_band, &dup.age_band);
        fill(&mut self.nationality, &dup.nationality);
        fill(&mut self.industry, &dup.industry);
        fill(&mut self.title, &dup.title);
        fill(&mut self.company, &dup.company);
        fill(&mut self.work_phone, &dup.work_phone);
        fill(&mut self.credit_rating, &dup.credit_rating);
        fill(&mut self.id_document, &dup.id_document);
        fill(&mut self.email, &dup.email);
        fill(&mut self.address, &dup.address);
        fill(&mut self.organization_id, &dup.organization_id);
        fill(&mut self.acquisition_source, &dup.acquisition_source);
        fill(&mut self.referred_by, &dup.referred_by);
        fill(&mut self.seat_preference, &dup.seat_preference);
        union(&mut self.favourite_dishes, &dup.favourite_dishes);
        union(&mut self.tastes, &dup.tastes);
        union(&mut self.allergies, &dup.allergies);
        union(&mut self.tags, &dup.tags);
        self.notes = match (self.notes.take(), &dup.notes) {
            (Some(a), Some(b)) if a != *b => Some(format!("{a}\n{b}")),
            (a, b) => a.or_else(|| b.clone()),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ValidationContext<'static> {
        ValidationContext {
            id_hash_key: b"k",
            today: NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
        }
    }

    fn valid() -> CustomerInput {
        CustomerInput {
            name: Some(" 张伟 ".into()),
            phone: Some("+86 138 0013 8000".into()),
            gender: Some("男".into()),
            birthday: Some("1988-05-17".into()),
            id_number: Some("11010519491231002X".into()),
            tastes: vec!["不要香菜".into(), "微辣".into(), "微辣".into()],
            ..Default::default()
        }
    }

    #[test]
    fn validates_and_normalises() {
        let p = valid().validate(ctx(), None).unwrap();
        assert_eq!(p.name, "张伟");
        assert_eq!(p.phone.unwrap().as_str(), "13800138000");
        assert_eq!(p.gender, Gender::Male);
        assert_eq!(p.age_band, Some(AgeBand::From35To44));
        assert_eq!(p.tastes, vec!["不要香菜", "微辣"]);
        assert_eq!(p.lifecycle_stage, LifecycleStage::Customer);
        assert_eq!(p.id_document.unwrap().masked, "110***********002X");
    }

    #[test]
    fn reports_every_bad_field() {
        let input = CustomerInput {
            name: None,
            phone: Some("123".into()),
            gender: Some("x".into()),
            birthday: Some("2030-01-01".into()),
            email: Some("nope".into()),
            lifecycle_stage: Some("lost".into()),
            ..Default::default()
        };
        let errs = input.validate(ctx(), None).unwrap_err();
        let fields: Vec<_> = errs.0.iter().map(|e| (e.field.as_str(), e.code)).collect();
        assert_eq!(
            fields,
            vec![
                ("name", "required"),
                ("phone", "invalid_phone"),
                ("gender", "invalid_choice"),
                ("birthday", "in_future"),
                ("email", "invalid_email"),
                ("churn_reason", "required")
            ]
        );
    }

    #[test]
    fn round_trips_through_input() {
        let p = valid().validate(ctx(), None).unwrap();
        let again = p.to_input().validate(ctx(), p.id_document.clone()).unwrap();
        assert_eq!(p, again);
    }

    #[test]
    fn absorb_fills_blanks_and_unions() {
        let mut a = valid().validate(ctx(), None).unwrap();
        a.email = None;
        let b = CustomerInput {
            name: Some("张伟".into()),
            email: Some("zw@example.com".into()),
            tags: vec!["VIP".into()],
            tastes: vec!["微辣".into()],
            ..Default::default()
        }
        .validate(ctx(), None)
        .unwrap();
        a.absorb(&b);
        assert_eq!(a.email.as_deref(), Some("zw@example.com"));
        assert_eq!(a.tags, vec!["VIP"]);
        assert_eq!(a.tastes, vec!["不要香菜", "微辣"]);
    }
}
