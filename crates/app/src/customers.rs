//! Customer use cases: create, update (JSON merge patch), get, list, till look-up,
//! ID-number look-up, duplicate detection, merge, timeline.

use crate::{Actor, App, AppError, new_uuid, now};
use patron_domain::card_number;
use patron_domain::customer::CustomerType;
use patron_domain::customer::{Customer, CustomerInput, CustomerProfile, ValidationContext};
use patron_domain::id_document::{IdDocument, IdDocumentKind};
use patron_domain::ids::{CustomerId, TimelineEventId};
use patron_domain::ledger::{AccountKey, AccountKind, Posting};
use patron_domain::money::Money;
use patron_domain::page::{Page, PageRequest};
use patron_domain::permissions::Permission;
use patron_domain::phone::Phone;
use patron_domain::search::{self, LookupQuery};
use patron_domain::timeline::TimelineEvent;
use patron_domain::{FieldError, ValidationErrors};
use patron_store::ledger::AccountRecord;
use patron_store::{CustomerFilter, DuplicateGroup, MergeCounts};

impl App {
    /// The validation context for today.
    pub fn validation_context(&self) -> ValidationContext<'_> {
        ValidationContext {
            id_hash_key: &self.id_hash_key,
            today: now().date_naive(),
        }
    }

    fn event(
        &self,
        actor: &Actor,
        customer: CustomerId,
        kind: &str,
        summary: String,
        data: serde_json::Value,
    ) -> TimelineEvent {
        TimelineEvent {
            tenant_id: actor.tenant_id,
            id: TimelineEventId(new_uuid()),
            customer_id: customer,
            occurred_at: now(),
            kind: kind.into(),
            summary,
            data,
            store_id: actor.store_id,
            staff_id: Some(actor.staff_id),
        }
    }

    /// Refuses a profile whose phone or ID number belongs to another active customer, and
    /// references to customers that do not exist.
    async fn check_profile(
        &self,
        actor: &Actor,
        p: &CustomerProfile,
        myself: Option<CustomerId>,
    ) -> Result<(), AppError> {
        let s = &self.storage;
        if let Some(phone) = &p.phone
            && let Some(other) = s.customer_by_phone(actor.tenant_id, phone.as_str()).await?
            && Some(other.id) != myself
        {
            return Err(AppError::Conflict {
                code: "phone_in_use",
                field: Some("phone"),
                message: format!(
                    "phone {} already belongs to {} ({})",
                    phone, other.profile.name, other.id
                ),
                existing: Some(other.id.0),
            });
        }
        if let Some(doc) = &p.id_document
            && let Some(other) = s.customer_by_id_hash(actor.tenant_id, &doc.hash).await?
            && Some(other.id) != myself
        {
            return Err(AppError::Conflict {
                code: "id_number_in_use",
                field: Some("id_number"),
                message: format!(
                    "this ID number already belongs to {} ({})",
                    other.profile.name, other.id
                ),
                existing: Some(other.id.0),
            });
        }
        let mut errors = ValidationErrors::default();
        for (field, r) in [
            ("organization_id", p.organization_id),
            ("referred_by", p.referred_by),
        ] {
            if let Some(id) = r {
                if Some(id) == myself {
                    errors.push(FieldError::new(
                        field,
                        "self_reference",
                        "a customer cannot refer to itself",
                    ));
                } else if s
                    .customer(actor.tenant_id, id)
                    .await?
                    .filter(|c| c.merged_into.is_none())
                    .is_none()
                {
                    errors.push(FieldError::new(
                        field,
                        "unknown_customer",
                        format!("no customer {id}"),
                    ));
                }
            }
        }
        Ok(errors.into_result(())?)
    }

    /// Creates a customer from a profile as typed.
    pub async fn create_customer(
        &self,
        actor: &Actor,
        input: &CustomerInput,
    ) -> Result<Customer, AppError> {
        actor.require(Permission::EditCustomers)?;
        let profile = input.validate(self.validation_context(), None)?;
        self.check_profile(actor, &profile, None).await?;
        let at = now();
        let customer = Customer {
            id: CustomerId(new_uuid()),
            tenant_id: actor.tenant_id,
            marketing_consent_at: profile.marketing_consent.then_some(at),
            profile,
            level: None,
            home_store_id: actor.store_id,
            merged_into: None,
            created_at: at,
            updated_at: at,
        };
        self.storage
            .insert_customers(std::slice::from_ref(&customer))
            .await?;
        Ok(crate::staff::masked_for(actor, customer))
    }

    /// A customer as the actor may see it (phone and e-mail masked without
    /// `ViewPersonalData`).
    pub async fn get_customer(&self, actor: &Actor, id: CustomerId) -> Result<Customer, AppError> {
        actor.require(Permission::ViewCustomers)?;
        let c = self.customer(actor, id).await?;
        Ok(crate::staff::masked_for(actor, c))
    }

    /// A customer by id (also a merged one, whose `merged_into` says where it went),
    /// unmasked: a helper for other use cases, which check their own permission.
    pub async fn customer(&self, actor: &Actor, id: CustomerId) -> Result<Customer, AppError> {
        self.storage
            .customer(actor.tenant_id, id)
            .await?
            .ok_or(AppError::NotFound { entity: "customer" })
    }

    /// Applies a JSON merge patch (RFC 7386) to the profile: absent keys stay, `null`
    /// clears, values replace. The whole result is validated again.
    pub async fn update_customer(
        &self,
        actor: &Actor,
        id: CustomerId,
        patch: &serde_json::Value,
    ) -> Result<Customer, AppError> {
        actor.require(Permission::EditCustomers)?;
        let current = self.customer(actor, id).await?;
        if current.merged_into.is_some() {
            return Err(AppError::Conflict {
                code: "customer_merged",
                field: None,
                message: "this customer was merged into another and can no longer be edited".into(),
                existing: current.merged_into.map(|m| m.0),
            });
        }
        let serde_json::Value::Object(changes) = patch else {
            return Err(ValidationErrors::single(
                "body",
                "invalid_patch",
                "the body must be a JSON object",
            )
            .into());
        };
        let mut merged =
            serde_json::to_value(current.profile.to_input()).expect("input serialises");
        let obj = merged.as_object_mut().expect("input is an object");
        for (k, v) in changes {
            obj.insert(k.clone(), v.clone());
        }
        let input: CustomerInput = serde_json::from_value(merged).map_err(|e| {
            let msg = e.to_string();
            let field = changes
                .keys()
                .find(|k| msg.contains(k.as_str()))
                .cloned()
                .unwrap_or_else(|| "body".into());
            ValidationErrors::single(&field, "invalid_value", msg)
        })?;
        // An explicit null or empty id_number clears the document; absent keeps it.
        let keep_id = if changes.contains_key("id_number") {
            None
        } else {
            current.profile.id_document.clone()
        };
        let profile = input.validate(self.validation_context(), keep_id)?;
        self.check_profile(actor, &profile, Some(id)).await?;
        let changed = changed_fields(&current.profile, &profile);
        let at = now();
        let consent_at = if profile.marketing_consent != current.profile.marketing_consent {
            Some(at)
        } else {
            current.marketing_consent_at
        };
        let updated = Customer {
            profile,
            marketing_consent_at: consent_at,
            updated_at: at,
            ..current
        };
        if changed.is_empty() {
            return Ok(crate::staff::masked_for(actor, updated));
        }
        let event = self.event(
            actor,
            id,
            "profile_updated",
            format!("资料更新 / profile updated: {}", changed.join(", ")),
            serde_json::json!({ "fields": changed }),
        );
        self.storage.update_customer(&updated, &event).await?;
        Ok(crate::staff::masked_for(actor, updated))
    }

    /// A filtered page of customers, newest first.
    pub async fn list_customers(
        &self,
        actor: &Actor,
        filter: &CustomerFilter,
        page: PageRequest,
    ) -> Result<Page<Customer>, AppError> {
        actor.require(Permission::ViewCustomers)?;
        // A phone-prefix search would reveal masked numbers digit by digit.
        if filter.phone_prefix.is_some() {
            actor.require(Permission::ViewPersonalData)?;
        }
        let page = page.clamped();
        let rows = self
            .storage
            .list_customers(actor.tenant_id, filter, page)
            .await?;
        Ok(Page::from_overfetch(rows, page).map(|c| crate::staff::masked_for(actor, c)))
    }

    /// The till's one search box: a phone number, a card number, or the start of a name,
    /// its pinyin or its initials. At most `limit` customers.
    pub async fn lookup_customers(
        &self,
        actor: &Actor,
        query: &str,
        limit: i64,
    ) -> Result<Vec<Customer>, AppError> {
        actor.require(Permission::ViewCustomers)?;
        let t = actor.tenant_id;
        let found = match search::classify(query) {
            LookupQuery::Number(digits) => {
                let mut found = Vec::new();
                if let Ok(phone) = Phone::parse(query, "q")
                    && let Some(c) = self.storage.customer_by_phone(t, phone.as_str()).await?
                {
                    found.push(c);
                }
                if found.is_empty()
                    && let Ok(number) = card_number::parse(&digits, "q")
                    && let Some(c) = self.storage.customer_by_card_number(t, &number).await?
                {
                    found.push(c);
                }
                found
            }
            LookupQuery::Name(name) if name.is_empty() => Vec::new(),
            LookupQuery::Name(_) => {
                self.storage
                    .customers_by_name_prefix(t, query.trim(), limit.clamp(1, 100))
                    .await?
            }
        };
        Ok(found
            .into_iter()
            .map(|c| crate::staff::masked_for(actor, c))
            .collect())
    }

    /// Finds the customer holding an ID document (typed by a phone agent). The number is
    /// hashed with the same key and never stored or logged.
    pub async fn customer_by_id_number(
        &self,
        actor: &Actor,
        kind: Option<&str>,
        number: &str,
    ) -> Result<Option<Customer>, AppError> {
        actor.require(Permission::ViewCustomers)?;
        let kind = match kind {
            None => IdDocumentKind::ResidentId,
            Some(k) => IdDocumentKind::parse(k).ok_or_else(|| {
                ValidationErrors::single(
                    "id_document_kind",
                    "invalid_choice",
                    format!("“{k}” is not a document kind"),
                )
            })?,
        };
        let doc = IdDocument::parse(kind, number, "id_number").map_err(ValidationErrors::from)?;
        let hash = doc.protect(&self.id_hash_key).hash;
        Ok(self
            .storage
            .customer_by_id_hash(actor.tenant_id, &hash)
            .await?
            .map(|c| crate::staff::masked_for(actor, c)))
    }

    /// Groups of customers that look like one person (same name and birthday, or same email).
    pub async fn duplicate_groups(&self, actor: &Actor) -> Result<Vec<DuplicateGroup>, AppError> {
        actor.require(Permission::MergeCustomers)?;
        Ok(self.storage.duplicate_groups(actor.tenant_id, 500).await?)
    }

    /// Merges `duplicate` into `survivor`: the survivor keeps its own values and takes the
    /// duplicate's where it has none; timeline, cards, members and referrals move over;
    /// the duplicate stays as a record pointing to the survivor.
    pub async fn merge_customers(
        &self,
        actor: &Actor,
        survivor: CustomerId,
        duplicate: CustomerId,
    ) -> Result<(Customer, MergeCounts), AppError> {
        actor.require(Permission::MergeCustomers)?;
        if survivor == duplicate {
            return Err(ValidationErrors::single(
                "duplicate_id",
                "same_customer",
                "cannot merge a customer into itself",
            )
            .into());
        }
        let keep = self.customer(actor, survivor).await?;
        let dup = self.customer(actor, duplicate).await?;
        if keep.merged_into.is_some() || dup.merged_into.is_some() {
            return Err(AppError::Conflict {
                code: "customer_merged",
                field: None,
                message: "one of these customers has already been merged".into(),
                existing: None,
            });
        }
        // Cards (and their balances) move with the merge; so do an organization's own
        // accounts (pool, charge account), through the ledger, before the customer rows.
        self.merge_org_accounts(actor, &keep, &dup).await?;
        let mut profile = keep.profile.clone();
        profile.absorb(&dup.profile);
        if profile.organization_id == Some(duplicate) {
            profile.organization_id = None;
        }
        if profile.referred_by == Some(duplicate) {
            profile.referred_by = None;
        }
        let at = now();
        let merged = Customer {
            profile,
            marketing_consent_at: keep.marketing_consent_at.or(dup.marketing_consent_at),
            level: keep.level.clone().or(dup.level.clone()),
            home_store_id: keep.home_store_id.or(dup.home_store_id),
            created_at: keep.created_at.min(dup.created_at),
            updated_at: at,
            ..keep.clone()
        };
        let data = serde_json::json!({
            "survivor": survivor, "duplicate": duplicate,
            "duplicate_name": dup.profile.name,
            "duplicate_phone": dup.profile.phone.as_ref().map(|p| p.masked()),
        });
        let e1 = self.event(
            actor,
            survivor,
            "merged",
            format!("合并了重复客户 / merged duplicate {}", dup.profile.name),
            data.clone(),
        );
        let e2 = self.event(
            actor,
            duplicate,
            "merged_away",
            format!("已合并到 / merged into {}", keep.profile.name),
            data,
        );
        let counts = self
            .storage
            .merge_customers(&merged, duplicate, &e1, &e2)
            .await
            .map_err(|e| match e {
                // The same merge submitted twice at once: the other one merged it.
                patron_store::StoreError::NotFound => AppError::Conflict {
                    code: "customer_merged",
                    field: None,
                    message: "one of these customers has already been merged".into(),
                    existing: None,
                },
                other => other.into(),
            })?;
        Ok((crate::staff::masked_for(actor, merged), counts))
    }

    /// Moves the duplicate's organization pool (principal, bonus, points with their lots)
    /// and charge-account balance to the survivor's accounts in one ledger transaction.
    /// The survivor keeps its credit limit, and must have room for the debt moved in; a
    /// survivor without a charge account takes the duplicate's limit with its debt.
    ///
    /// The customer rows are merged by another store call after this one, so this posts
    /// first under an idempotency key derived from the two customer ids and the balances
    /// moved: two submissions of the same merge at once move once (the second replays),
    /// and a merge retried after the move but before the rows were merged finds nothing
    /// left to move.
    async fn merge_org_accounts(
        &self,
        actor: &Actor,
        keep: &Customer,
        dup: &Customer,
    ) -> Result<(), AppError> {
        let t = actor.tenant_id;
        let kinds = [
            AccountKind::OrgPrincipal,
            AccountKind::OrgBonus,
            AccountKind::OrgPoints,
            AccountKind::Charge,
        ];
        let key_of = |kind: AccountKind, c: CustomerId| AccountKey::customer(kind, c);
        let read = |c: CustomerId| {
            let ids: Vec<uuid::Uuid> = kinds.iter().map(|k| key_of(*k, c).account_id(t)).collect();
            async move { self.storage.accounts(t, &ids).await }
        };
        let balance_of = |accounts: &[AccountRecord], kind: AccountKind, c: CustomerId| {
            let id = key_of(kind, c).account_id(t);
            accounts.iter().find(|a| a.id == id).cloned()
        };
        let dup_accounts = read(dup.id).await?;
        let held: Vec<(AccountKind, i64)> = kinds
            .iter()
            .filter_map(|k| {
                balance_of(&dup_accounts, *k, dup.id)
                    .filter(|a| a.balance != 0)
                    .map(|a| (*k, a.balance))
            })
            .collect();
        let dup_charge = balance_of(&dup_accounts, AccountKind::Charge, dup.id);
        let keep_charge = balance_of(&read(keep.id).await?, AccountKind::Charge, keep.id);
        // A survivor without a charge account takes over the duplicate's credit limit.
        let carried_floor = dup_charge
            .as_ref()
            .and_then(|a| a.floor)
            .filter(|f| *f != 0 && keep_charge.is_none());
        if held.is_empty() && carried_floor.is_none() {
            return Ok(());
        }
        if keep.profile.customer_type != CustomerType::Organization {
            return Err(AppError::Conflict {
                code: "survivor_not_an_organization",
                field: Some("duplicate_id"),
                message: format!(
                    "{} holds an organization pool or charge account: merge it into an organization",
                    dup.profile.name
                ),
                existing: None,
            });
        }
        let moved_debt = held
            .iter()
            .find(|(k, _)| *k == AccountKind::Charge)
            .map_or(0, |(_, b)| *b);
        if let Some(k) = &keep_charge
            && moved_debt < 0
            && k.floor.is_some_and(|f| k.balance + moved_debt < f)
        {
            let limit = Money::from_fen(-k.floor.unwrap_or(0));
            return Err(AppError::Conflict {
                code: "survivor_credit_limit_exceeded",
                field: Some("duplicate_id"),
                message: format!(
                    "{} owes {} on its charge account: the credit limit of {}, {} ({} owed, {} \
                     available), cannot take it over; raise that limit first",
                    dup.profile.name,
                    Money::from_fen(-moved_debt),
                    keep.profile.name,
                    limit,
                    Money::from_fen(-k.balance),
                    Money::from_fen(k.balance - k.floor.unwrap_or(0)),
                ),
                existing: None,
            });
        }
        if !held.is_empty() {
            let mut specs = Vec::with_capacity(held.len() * 2);
            for (kind, balance) in &held {
                specs.push(crate::cards::spec(Posting::new(
                    key_of(*kind, dup.id),
                    -balance,
                )));
                let mut to = crate::cards::spec(Posting::new(key_of(*kind, keep.id), *balance));
                if *kind == AccountKind::Charge && keep_charge.is_none() {
                    // Created by this posting: with the duplicate's limit.
                    to.floor = dup_charge.as_ref().and_then(|a| a.floor);
                }
                specs.push(to);
            }
            let moved: serde_json::Map<String, serde_json::Value> = held
                .iter()
                .map(|(k, b)| (k.as_str().to_string(), (*b).into()))
                .collect();
            let details = serde_json::json!({"duplicate_id": dup.id, "moved": moved});
            let hash = crate::cards::request_hash("customer_merge", keep.id, &details);
            let key = format!("merge:{}:{}:{}", keep.id, dup.id, &hash[..12]);
            let memo = format!(
                "合并客户转入 / moved in from merged duplicate {}",
                dup.profile.name
            );
            self.post_specs(
                actor,
                "customer_merge",
                &key,
                hash,
                None,
                Some(keep.id),
                None,
                None,
                specs,
                vec![],
                None,
                None,
                memo,
                details,
                None,
            )
            .await
            .map_err(|e| match e {
                AppError::Conflict {
                    code: "insufficient_balance",
                    ..
                } => balances_changed(),
                other => other,
            })?;
            // Money that reached the duplicate meanwhile would stay behind: refused, and a
            // retry moves it under a key of its own.
            if read(dup.id).await?.iter().any(|a| a.balance != 0) {
                return Err(balances_changed());
            }
        }
        if let Some(floor) = carried_floor {
            let key = key_of(AccountKind::Charge, keep.id);
            // Unless the move above already created it (with this limit).
            if self
                .storage
                .accounts(t, &[key.account_id(t)])
                .await?
                .is_empty()
            {
                self.storage
                    .set_account_floor(t, &key, Some(floor), now())
                    .await?;
            }
            // The limit is an account floor, outside the ledger's transactions: audited here.
            self.audit(patron_store::audit::AuditEntry {
                customer_id: Some(keep.id),
                after: Some(serde_json::json!({"credit_limit": -floor, "from": dup.id})),
                ..self.audit_entry(
                    actor,
                    "charge_account.credit_limit",
                    "charge_account",
                    Some(keep.id.0.to_string()),
                    format!(
                        "挂账额度随合并转入 / credit limit {} taken over from merged duplicate {}",
                        Money::from_fen(-floor),
                        dup.profile.name
                    ),
                )
            })
            .await?;
        }
        Ok(())
    }

    /// Newest first (then by id, descending). The next page starts after the last event
    /// of the previous one: `before` is its time and `before_id` its id (without the id,
    /// events sharing that moment are skipped). When the end is reached, the customer's
    /// creation closes the list.
    pub async fn timeline(
        &self,
        actor: &Actor,
        id: CustomerId,
        before: Option<chrono::DateTime<chrono::Utc>>,
        before_id: Option<uuid::Uuid>,
        limit: i64,
    ) -> Result<Vec<TimelineEvent>, AppError> {
        actor.require(Permission::ViewCustomers)?;
        let customer = self.customer(actor, id).await?;
        let limit = limit.clamp(1, 500);
        let mut events = self
            .storage
            .timeline(actor.tenant_id, id, before.map(|b| (b, before_id)), limit)
            .await?;
        let closes = match (before, before_id) {
            (None, _) => true,
            (Some(b), None) => customer.created_at < b,
            (Some(b), Some(after)) => {
                customer.created_at < b || (customer.created_at == b && customer.id.0 < after)
            }
        };
        if (events.len() as i64) < limit && closes {
            events.push(TimelineEvent {
                tenant_id: actor.tenant_id,
                id: TimelineEventId(customer.id.0),
                customer_id: id,
                occurred_at: customer.created_at,
                kind: "customer_created".into(),
                summary: format!("建档 / customer record created: {}", customer.profile.name),
                data: serde_json::json!({ "acquisition_source": customer.profile.acquisition_source }),
                store_id: customer.home_store_id,
                staff_id: None,
            });
        }
        Ok(events)
    }
}

fn balances_changed() -> AppError {
    AppError::Conflict {
        code: "balances_changed",
        field: Some("duplicate_id"),
        message: "the duplicate's balances changed while merging: try again".into(),
        existing: None,
    }
}

/// Names of the profile fields that differ (for the timeline; values are not copied
/// there so that the timeline never holds an ID number or a removed phone).
fn changed_fields(a: &CustomerProfile, b: &CustomerProfile) -> Vec<String> {
    let (va, vb) = (
        serde_json::to_value(a).expect("profile"),
        serde_json::to_value(b).expect("profile"),
    );
    let (oa, ob) = (
        va.as_object().expect("object"),
        vb.as_object().expect("object"),
    );
    oa.iter()
        .filter(|(k, v)| ob.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .collect()
}

impl App {
    /// Inserts many already-validated profiles in one transaction (import, demo data).
    /// Uniqueness of phones and ID numbers is the caller's check; the database's unique
    /// indexes refuse the whole batch if one slipped through.
    pub async fn create_customers_bulk(
        &self,
        actor: &Actor,
        profiles: Vec<CustomerProfile>,
        home_store: Option<patron_domain::ids::StoreId>,
    ) -> Result<Vec<Customer>, AppError> {
        actor.require(Permission::ImportCustomers)?;
        let at = now();
        let customers: Vec<Customer> = profiles
            .into_iter()
            .map(|profile| Customer {
                id: CustomerId(new_uuid()),
                tenant_id: actor.tenant_id,
                marketing_consent_at: profile.marketing_consent.then_some(at),
                profile,
                level: None,
                home_store_id: home_store.or(actor.store_id),
                merged_into: None,
                created_at: at,
                updated_at: at,
            })
            .collect();
        self.storage.insert_customers(&customers).await?;
        Ok(customers)
    }
}

impl App {
    /// The cards a customer holds.
    pub async fn customer_cards(
        &self,
        actor: &Actor,
        id: CustomerId,
    ) -> Result<Vec<patron_domain::card::Card>, AppError> {
        actor.require(Permission::ViewCards)?;
        self.customer(actor, id).await?;
        Ok(self.storage.cards_of_customer(actor.tenant_id, id).await?)
    }
}
