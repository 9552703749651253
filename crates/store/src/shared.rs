//! The SQL both backends share. `impl_storage!` instantiates the [`Storage`] methods for
//! a backend type that provides `reader()` and `writer()` pools and `run_migrations()`;
//! the only dialect differences (the month of a date) are passed in as SQL fragments.
//!
//! Why a macro rather than generic functions: sqlx's generic executor bounds for "any
//! database whose types include Uuid, chrono and bool" run to dozens of lines per
//! function; a macro keeps each query written once and each backend fully typed.

macro_rules! customer_cols {
    () => {
        "tenant_id, id, name, name_pinyin, name_initials, phone, gender, birthday, age_band, nationality, \
         customer_type, industry, title, company, work_phone, credit_rating, id_doc_kind, id_doc_hash, \
         id_doc_masked, email, address, organization_id, acquisition_source, referred_by, marketing_consent, \
         marketing_consent_source, marketing_consent_at, favourite_dishes, tastes, seat_preference, allergies, \
         tags, notes, lifecycle_stage, churn_reason, churn_note, level, home_store_id, merged_into, created_at, \
         updated_at"
    };
}
pub(crate) use customer_cols;

/// Rows per multi-row INSERT: under SQLite's and PostgreSQL's bind-parameter limits
/// (41 columns × 500 = 20,500 < 32,766).
pub(crate) const BATCH: usize = 500;

/// Escapes LIKE wildcards in user text (used with `ESCAPE '\'`).
pub(crate) fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The `ON CONFLICT ... DO UPDATE` clause that turns the customer INSERT into an update
/// of every column but the keys and the creation time.
pub(crate) fn customer_update_clause() -> String {
    let sets: Vec<String> = customer_cols!()
        .split(',')
        .map(str::trim)
        .filter(|c| !matches!(*c, "tenant_id" | "id" | "created_at"))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    format!(
        " ON CONFLICT (tenant_id, id) DO UPDATE SET {}",
        sets.join(", ")
    )
}

macro_rules! push_customer {
    ($b:expr, $c:expr) => {{
        let r = $crate::rows::CustomerRow::from_domain($c);
        $b.push_bind(r.tenant_id)
            .push_bind(r.id)
            .push_bind(r.name)
            .push_bind(r.name_pinyin)
            .push_bind(r.name_initials)
            .push_bind(r.phone)
            .push_bind(r.gender)
            .push_bind(r.birthday)
            .push_bind(r.age_band)
            .push_bind(r.nationality)
            .push_bind(r.customer_type)
            .push_bind(r.industry)
            .push_bind(r.title)
            .push_bind(r.company)
            .push_bind(r.work_phone)
            .push_bind(r.credit_rating)
            .push_bind(r.id_doc_kind)
            .push_bind(r.id_doc_hash)
            .push_bind(r.id_doc_masked)
            .push_bind(r.email)
            .push_bind(r.address)
            .push_bind(r.organization_id)
            .push_bind(r.acquisition_source)
            .push_bind(r.referred_by)
            .push_bind(r.marketing_consent)
            .push_bind(r.marketing_consent_source)
            .push_bind(r.marketing_consent_at)
            .push_bind(r.favourite_dishes)
            .push_bind(r.tastes)
            .push_bind(r.seat_preference)
            .push_bind(r.allergies)
            .push_bind(r.tags)
            .push_bind(r.notes)
            .push_bind(r.lifecycle_stage)
            .push_bind(r.churn_reason)
            .push_bind(r.churn_note)
            .push_bind(r.level)
            .push_bind(r.home_store_id)
            .push_bind(r.merged_into)
            .push_bind(r.created_at)
            .push_bind(r.updated_at);
    }};
}
pub(crate) use push_customer;

macro_rules! impl_storage {
    ($ty:ty, $db:ty, $backend:expr, month_of_birthday = $month:literal) => {
        use $crate::rows::*;
        use $crate::shared::{customer_cols, like_escape, push_customer, BATCH};
        use $crate::{Backend, CustomerFilter, CustomerImport, DuplicateGroup, MergeCounts, Result, Session, Storage, StoreError};
        use chrono::{DateTime, Utc};
        use patron_domain::card::Card;
        use patron_domain::customer::Customer;
        use patron_domain::ids::{CustomerId, StaffId, TenantId};
        use patron_domain::menu::{MenuCategory, MenuItem};
        use patron_domain::org::{Staff, Store, Tenant};
        use patron_domain::page::PageRequest;
        use patron_domain::timeline::TimelineEvent;
        use sqlx::QueryBuilder;

        const INSERT_EVENT: &str = "INSERT INTO timeline_events (tenant_id, id, customer_id, occurred_at, kind, summary, data, store_id, staff_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

        async fn insert_event(conn: &mut <$db as sqlx::Database>::Connection, e: &TimelineEvent) -> Result<()> {
            sqlx::query(INSERT_EVENT)
                .bind(e.tenant_id.0)
                .bind(e.id.0)
                .bind(e.customer_id.0)
                .bind(e.occurred_at)
                .bind(&e.kind)
                .bind(&e.summary)
                .bind(e.data.to_string())
                .bind(e.store_id.map(|s| s.0))
                .bind(e.staff_id.map(|s| s.0))
                .execute(&mut *conn)
                .await?;
            Ok(())
        }

        /// `insert_event` queued on a writer (see writer.rs).
        async fn insert_event_w<'c>(w: &mut $crate::writer::Writer<'c, $db>, e: &TimelineEvent) -> Result<()> {
            w.stmt(INSERT_EVENT)
                .bind(e.tenant_id.0)
                .bind(e.id.0)
                .bind(e.customer_id.0)
                .bind(e.occurred_at)
                .bind(e.kind.clone())
                .bind(e.summary.clone())
                .bind(e.data.to_string())
                .bind(e.store_id.map(|s| s.0))
                .bind(e.staff_id.map(|s| s.0))
                .exec($crate::writer::Expect::Any)
                .await
        }

        async fn upsert_customer<'c>(tx: &mut sqlx::Transaction<'c, $db>, c: &Customer) -> Result<()> {
            let mut b = QueryBuilder::<$db>::new(concat!("INSERT INTO customers (", customer_cols!(), ") "));
            b.push_values(std::iter::once(c), |mut row, c| push_customer!(row, c));
            b.push($crate::shared::customer_update_clause());
            b.build().execute(&mut **tx).await?;
            Ok(())
        }

        /// The transaction of a bulk import ([`Storage::begin_customer_import`]); rolled
        /// back by sqlx when dropped uncommitted.
        ///
        /// On SQLite the import runs on a writer connection of its own settings: foreign-key
        /// enforcement off, `INSERT OR FAIL`, a 512 MB page cache and in-memory temporary
        /// storage. Enforced foreign keys force a statement journal on every multi-row
        /// INSERT and a parent look-up per row (together ~40% of the insert time); instead
        /// the references written are collected and checked in the transaction before the
        /// commit, which is what a deferred foreign key does. The connection is closed when
        /// the import ends, so these settings never reach another write.
        struct BulkCustomerImport {
            tx: sqlx::Transaction<'static, $db>,
            /// SQLite: the references to check before the commit.
            refs: Option<ImportRefs>,
        }

        #[derive(Default)]
        struct ImportRefs {
            tenants: std::collections::HashSet<uuid::Uuid>,
            /// (tenant, store).
            stores: std::collections::HashSet<(uuid::Uuid, uuid::Uuid)>,
            /// (tenant, customer): organizations, referrers, merge targets.
            customers: std::collections::HashSet<(uuid::Uuid, uuid::Uuid)>,
        }

        impl ImportRefs {
            fn add(&mut self, c: &Customer) {
                let t = c.tenant_id.0;
                self.tenants.insert(t);
                if let Some(s) = c.home_store_id {
                    self.stores.insert((t, s.0));
                }
                for r in [c.profile.organization_id, c.profile.referred_by, c.merged_into].into_iter().flatten() {
                    self.customers.insert((t, r.0));
                }
            }

            /// Fails with [`StoreError::MissingReference`] if a referenced row is missing.
            async fn check(self, tx: &mut sqlx::Transaction<'static, $db>) -> Result<()> {
                let missing = |what: &str, id: uuid::Uuid| StoreError::MissingReference(format!("{what} {id}"));
                for t in self.tenants {
                    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tenants WHERE id = $1").bind(t).fetch_one(&mut **tx).await?;
                    if n == 0 {
                        return Err(missing("tenant", t));
                    }
                }
                for (t, s) in self.stores {
                    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM stores WHERE tenant_id = $1 AND id = $2")
                        .bind(t)
                        .bind(s)
                        .fetch_one(&mut **tx)
                        .await?;
                    if n == 0 {
                        return Err(missing("store", s));
                    }
                }
                let wanted: Vec<(uuid::Uuid, uuid::Uuid)> = self.customers.into_iter().collect();
                for chunk in wanted.chunks(BATCH) {
                    let mut b = QueryBuilder::<$db>::new("SELECT tenant_id, id FROM customers WHERE (tenant_id, id) IN (VALUES ");
                    let mut sep = b.separated(", ");
                    for (t, c) in chunk {
                        sep.push("(").push_bind_unseparated(*t).push_unseparated(", ").push_bind_unseparated(*c).push_unseparated(")");
                    }
                    b.push(")");
                    let found: std::collections::HashSet<(uuid::Uuid, uuid::Uuid)> =
                        b.build_query_as::<(uuid::Uuid, uuid::Uuid)>().fetch_all(&mut **tx).await?.into_iter().collect();
                    if let Some((_, c)) = chunk.iter().find(|k| !found.contains(k)) {
                        return Err(missing("customer", *c));
                    }
                }
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl CustomerImport for BulkCustomerImport {
            async fn write(&mut self, list: &[Customer]) -> Result<()> {
                if let Some(refs) = &mut self.refs {
                    list.iter().for_each(|c| refs.add(c));
                }
                // OR FAIL: no statement journal; a failed statement fails the import, whose
                // transaction is then rolled back whole.
                let verb = if self.refs.is_some() { "INSERT OR FAIL" } else { "INSERT" };
                for chunk in list.chunks(BATCH) {
                    let mut b = QueryBuilder::<$db>::new(verb);
                    b.push(concat!(" INTO customers (", customer_cols!(), ") "));
                    b.push_values(chunk, |mut row, c| push_customer!(row, c));
                    b.build().execute(&mut *self.tx).await?;
                }
                Ok(())
            }

            async fn commit(mut self: Box<Self>) -> Result<()> {
                if let Some(refs) = self.refs.take() {
                    refs.check(&mut self.tx).await?;
                }
                self.tx.commit().await?;
                Ok(())
            }
        }

        fn customers(rows: Vec<CustomerRow>) -> Result<Vec<Customer>> {
            rows.into_iter().map(CustomerRow::into_domain).collect()
        }

        #[async_trait::async_trait]
        impl Storage for $ty {
            fn backend(&self) -> Backend {
                $backend
            }

            async fn migrate(&self) -> Result<()> {
                self.run_migrations().await
            }

            async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1").execute(self.reader()).await?;
                Ok(())
            }

            async fn create_tenant(&self, t: &Tenant) -> Result<()> {
                sqlx::query("INSERT INTO tenants (id, code, name, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(t.id.0)
                    .bind(&t.code)
                    .bind(&t.name)
                    .bind(t.created_at)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>> {
                let row: Option<TenantRow> = sqlx::query_as("SELECT id, code, name, created_at FROM tenants WHERE id = $1")
                    .bind(id.0)
                    .fetch_optional(self.reader())
                    .await?;
                Ok(row.map(Into::into))
            }

            async fn tenant_by_code(&self, code: &str) -> Result<Option<Tenant>> {
                let row: Option<TenantRow> = sqlx::query_as("SELECT id, code, name, created_at FROM tenants WHERE code = $1")
                    .bind(code)
                    .fetch_optional(self.reader())
                    .await?;
                Ok(row.map(Into::into))
            }

            async fn list_tenants(&self) -> Result<Vec<Tenant>> {
                let rows: Vec<TenantRow> = sqlx::query_as("SELECT id, code, name, created_at FROM tenants ORDER BY code")
                    .fetch_all(self.reader())
                    .await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn create_store(&self, s: &Store) -> Result<()> {
                sqlx::query(
                    "INSERT INTO stores (tenant_id, id, code, name, address, phone, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(s.tenant_id.0)
                .bind(s.id.0)
                .bind(&s.code)
                .bind(&s.name)
                .bind(&s.address)
                .bind(&s.phone)
                .bind(s.created_at)
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn list_stores(&self, tenant: TenantId) -> Result<Vec<Store>> {
                let rows: Vec<StoreRow> = sqlx::query_as(
                    "SELECT tenant_id, id, code, name, address, phone, created_at FROM stores WHERE tenant_id = $1 ORDER BY code",
                )
                .bind(tenant.0)
                .fetch_all(self.reader())
                .await?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn create_staff(&self, s: &Staff) -> Result<()> {
                sqlx::query(
                    "INSERT INTO staff (tenant_id, id, username, display_name, password_hash, role, store_id, active, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(s.tenant_id.0)
                .bind(s.id.0)
                .bind(&s.username)
                .bind(&s.display_name)
                .bind(&s.password_hash)
                .bind(s.role.as_str())
                .bind(s.store_id.map(|x| x.0))
                .bind(s.active)
                .bind(s.created_at)
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn staff(&self, tenant: TenantId, id: StaffId) -> Result<Option<Staff>> {
                let row: Option<StaffRow> = sqlx::query_as(
                    "SELECT tenant_id, id, username, display_name, password_hash, role, store_id, active, created_at \
                     FROM staff WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant.0)
                .bind(id.0)
                .fetch_optional(self.reader())
                .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn staff_by_username(&self, tenant: TenantId, username: &str) -> Result<Option<Staff>> {
                let row: Option<StaffRow> = sqlx::query_as(
                    "SELECT tenant_id, id, username, display_name, password_hash, role, store_id, active, created_at \
                     FROM staff WHERE tenant_id = $1 AND username = $2",
                )
                .bind(tenant.0)
                .bind(username)
                .fetch_optional(self.reader())
                .await?;
                row.map(TryInto::try_into).transpose()
            }

            async fn count_all_staff(&self) -> Result<i64> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM staff").fetch_one(self.reader()).await?;
                Ok(n)
            }

            async fn create_session(&self, s: &Session) -> Result<()> {
                sqlx::query(
                    "INSERT INTO sessions (tenant_id, token_hash, staff_id, kind, created_at, expires_at, store_id) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(s.tenant_id.0)
                .bind(&s.token_hash)
                .bind(s.staff_id.0)
                .bind(&s.kind)
                .bind(s.created_at)
                .bind(s.expires_at)
                .bind(s.store_id.map(|x| x.0))
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn session(&self, tenant: TenantId, token_hash: &str) -> Result<Option<Session>> {
                #[allow(clippy::type_complexity)]
                let row: Option<(uuid::Uuid, String, uuid::Uuid, String, DateTime<Utc>, DateTime<Utc>, Option<uuid::Uuid>)> =
                    sqlx::query_as(
                        "SELECT tenant_id, token_hash, staff_id, kind, created_at, expires_at, store_id FROM sessions \
                         WHERE tenant_id = $1 AND token_hash = $2",
                    )
                    .bind(tenant.0)
                    .bind(token_hash)
                    .fetch_optional(self.reader())
                    .await?;
                Ok(row.map(|(t, h, s, k, c, e, st)| Session {
                    tenant_id: TenantId(t),
                    token_hash: h,
                    staff_id: StaffId(s),
                    kind: k,
                    created_at: c,
                    expires_at: e,
                    store_id: st.map(patron_domain::ids::StoreId),
                }))
            }

            async fn extend_session(&self, tenant: TenantId, token_hash: &str, expires_at: DateTime<Utc>) -> Result<()> {
                sqlx::query("UPDATE sessions SET expires_at = $3 WHERE tenant_id = $1 AND token_hash = $2")
                    .bind(tenant.0)
                    .bind(token_hash)
                    .bind(expires_at)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn delete_session(&self, tenant: TenantId, token_hash: &str) -> Result<()> {
                sqlx::query("DELETE FROM sessions WHERE tenant_id = $1 AND token_hash = $2")
                    .bind(tenant.0)
                    .bind(token_hash)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn insert_customers(&self, list: &[Customer]) -> Result<()> {
                let mut tx = self.writer().begin().await?;
                for chunk in list.chunks(BATCH) {
                    let mut b = QueryBuilder::<$db>::new(concat!("INSERT INTO customers (", customer_cols!(), ") "));
                    b.push_values(chunk, |mut row, c| push_customer!(row, c));
                    b.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn begin_customer_import(&self) -> Result<Box<dyn CustomerImport>> {
                let mut conn = self.writer().acquire().await?;
                let mut refs = None;
                if $backend == Backend::Sqlite {
                    // See BulkCustomerImport. PRAGMA foreign_keys only works outside a transaction.
                    conn.close_on_drop();
                    for pragma in ["PRAGMA foreign_keys = OFF", "PRAGMA cache_size = -524288", "PRAGMA temp_store = MEMORY"] {
                        sqlx::query(pragma).execute(&mut *conn).await?;
                    }
                    refs = Some(ImportRefs::default());
                }
                let tx = sqlx::Transaction::begin(conn, None).await?;
                Ok(Box::new(BulkCustomerImport { tx, refs }))
            }

            async fn update_customer(&self, c: &Customer, event: &TimelineEvent) -> Result<()> {
                let mut tx = self.writer().begin().await?;
                let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM customers WHERE tenant_id = $1 AND id = $2")
                    .bind(c.tenant_id.0)
                    .bind(c.id.0)
                    .fetch_optional(&mut *tx)
                    .await?;
                if exists.is_none() {
                    return Err(StoreError::NotFound);
                }
                upsert_customer(&mut tx, c).await?;
                insert_event(&mut tx, event).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn customer(&self, tenant: TenantId, id: CustomerId) -> Result<Option<Customer>> {
                let row: Option<CustomerRow> =
                    sqlx::query_as(concat!("SELECT ", customer_cols!(), " FROM customers WHERE tenant_id = $1 AND id = $2"))
                        .bind(tenant.0)
                        .bind(id.0)
                        .fetch_optional(self.reader())
                        .await?;
                row.map(CustomerRow::into_domain).transpose()
            }

            async fn customer_by_phone(&self, tenant: TenantId, phone: &str) -> Result<Option<Customer>> {
                let row: Option<CustomerRow> =
                    sqlx::query_as(concat!("SELECT ", customer_cols!(), " FROM customers WHERE tenant_id = $1 AND phone = $2"))
                        .bind(tenant.0)
                        .bind(phone)
                        .fetch_optional(self.reader())
                        .await?;
                row.map(CustomerRow::into_domain).transpose()
            }

            async fn customer_by_id_hash(&self, tenant: TenantId, hash: &str) -> Result<Option<Customer>> {
                let row: Option<CustomerRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    customer_cols!(),
                    " FROM customers WHERE tenant_id = $1 AND id_doc_hash = $2"
                ))
                .bind(tenant.0)
                .bind(hash)
                .fetch_optional(self.reader())
                .await?;
                row.map(CustomerRow::into_domain).transpose()
            }

            async fn customer_by_card_number(&self, tenant: TenantId, number: &str) -> Result<Option<Customer>> {
                let row: Option<CustomerRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    customer_cols!(),
                    " FROM customers WHERE tenant_id = $1 AND id = \
                     (SELECT customer_id FROM cards WHERE tenant_id = $1 AND number = $2)"
                ))
                .bind(tenant.0)
                .bind(number)
                .fetch_optional(self.reader())
                .await?;
                row.map(CustomerRow::into_domain).transpose()
            }

            async fn phones_in_use(&self, tenant: TenantId, phones: &[String]) -> Result<Vec<(String, CustomerId)>> {
                let mut out = Vec::new();
                for chunk in phones.chunks(BATCH) {
                    let mut b = QueryBuilder::<$db>::new("SELECT phone, id FROM customers WHERE tenant_id = ");
                    b.push_bind(tenant.0).push(" AND phone IN (");
                    let mut sep = b.separated(", ");
                    for p in chunk {
                        sep.push_bind(p.clone());
                    }
                    b.push(")");
                    let rows: Vec<(String, uuid::Uuid)> = b.build_query_as().fetch_all(self.reader()).await?;
                    out.extend(rows.into_iter().map(|(p, id)| (p, CustomerId(id))));
                }
                Ok(out)
            }

            async fn id_hashes_in_use(&self, tenant: TenantId, hashes: &[String]) -> Result<Vec<(String, CustomerId)>> {
                let mut out = Vec::new();
                for chunk in hashes.chunks(BATCH) {
                    let mut b = QueryBuilder::<$db>::new("SELECT id_doc_hash, id FROM customers WHERE tenant_id = ");
                    b.push_bind(tenant.0).push(" AND id_doc_hash IN (");
                    let mut sep = b.separated(", ");
                    for h in chunk {
                        sep.push_bind(h.clone());
                    }
                    b.push(")");
                    let rows: Vec<(String, uuid::Uuid)> = b.build_query_as().fetch_all(self.reader()).await?;
                    out.extend(rows.into_iter().map(|(h, id)| (h, CustomerId(id))));
                }
                Ok(out)
            }

            async fn list_customers(&self, tenant: TenantId, f: &CustomerFilter, page: PageRequest) -> Result<Vec<Customer>> {
                let mut b = QueryBuilder::<$db>::new(concat!("SELECT ", customer_cols!(), " FROM customers WHERE tenant_id = "));
                b.push_bind(tenant.0);
                if !f.include_merged {
                    b.push(" AND merged_into IS NULL");
                }
                if let Some(name) = f.name.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                    let esc = like_escape(name);
                    let lower = like_escape(&name.to_lowercase());
                    // LOWER on both sides: PostgreSQL's LIKE is case-sensitive, SQLite's is not.
                    b.push(" AND (LOWER(name) LIKE LOWER(").push_bind(format!("%{esc}%")).push(") ESCAPE '\\'");
                    b.push(" OR name_pinyin LIKE ").push_bind(format!("{lower}%")).push(" ESCAPE '\\'");
                    b.push(" OR name_initials LIKE ").push_bind(format!("{lower}%")).push(" ESCAPE '\\')");
                }
                if let Some(p) = &f.phone_prefix {
                    b.push(" AND phone LIKE ").push_bind(format!("{}%", like_escape(p))).push(" ESCAPE '\\'");
                }
                if let Some(tag) = &f.tag {
                    let quoted = serde_json::to_string(tag).expect("string serialises");
                    b.push(" AND LOWER(tags) LIKE LOWER(")
                        .push_bind(format!("%{}%", like_escape(&quoted)))
                        .push(") ESCAPE '\\'");
                }
                if let Some(v) = &f.lifecycle_stage {
                    b.push(" AND lifecycle_stage = ").push_bind(v.clone());
                }
                if let Some(v) = &f.customer_type {
                    b.push(" AND customer_type = ").push_bind(v.clone());
                }
                if let Some(v) = &f.acquisition_source {
                    b.push(" AND acquisition_source = ").push_bind(v.clone());
                }
                if let Some(v) = &f.level {
                    b.push(" AND level = ").push_bind(v.clone());
                }
                if let Some(v) = f.marketing_consent {
                    b.push(" AND marketing_consent = ").push_bind(v);
                }
                if let Some(m) = f.birthday_month {
                    b.push(concat!(" AND ", $month, " = ")).push_bind(m as i32);
                }
                if let Some(t) = f.created_from {
                    b.push(" AND created_at >= ").push_bind(t);
                }
                if let Some(t) = f.created_to {
                    b.push(" AND created_at < ").push_bind(t);
                }
                b.push(" ORDER BY created_at DESC, id DESC LIMIT ").push_bind(page.limit() + 1);
                b.push(" OFFSET ").push_bind(page.offset());
                let rows: Vec<CustomerRow> = b.build_query_as().fetch_all(self.reader()).await?;
                customers(rows)
            }

            async fn customers_by_name_prefix(&self, tenant: TenantId, prefix: &str, limit: i64) -> Result<Vec<Customer>> {
                let lower = prefix.to_lowercase();
                // Upper bound of a prefix range: works with the plain b-tree indexes on both databases.
                let end = |p: &str| format!("{p}\u{10FFFF}");
                let rows: Vec<CustomerRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    customer_cols!(),
                    " FROM customers WHERE tenant_id = $1 AND merged_into IS NULL AND \
                     ((name >= $2 AND name < $3) OR (name_pinyin >= $4 AND name_pinyin < $5) \
                      OR (name_initials >= $4 AND name_initials < $5)) \
                     ORDER BY name LIMIT $6"
                ))
                .bind(tenant.0)
                .bind(prefix)
                .bind(end(prefix))
                .bind(&lower)
                .bind(end(&lower))
                .bind(limit)
                .fetch_all(self.reader())
                .await?;
                customers(rows)
            }

            async fn customers_after(&self, tenant: TenantId, after: Option<CustomerId>, limit: i64) -> Result<Vec<Customer>> {
                let mut b = QueryBuilder::<$db>::new(concat!("SELECT ", customer_cols!(), " FROM customers WHERE tenant_id = "));
                b.push_bind(tenant.0).push(" AND merged_into IS NULL");
                if let Some(a) = after {
                    b.push(" AND id > ").push_bind(a.0);
                }
                b.push(" ORDER BY id LIMIT ").push_bind(limit);
                let rows: Vec<CustomerRow> = b.build_query_as().fetch_all(self.reader()).await?;
                customers(rows)
            }

            async fn count_customers(&self, tenant: TenantId) -> Result<i64> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM customers WHERE tenant_id = $1 AND merged_into IS NULL")
                    .bind(tenant.0)
                    .fetch_one(self.reader())
                    .await?;
                Ok(n)
            }

            async fn duplicate_groups(&self, tenant: TenantId, limit: i64) -> Result<Vec<DuplicateGroup>> {
                let mut groups = Vec::new();
                let queries = [
                    (
                        "same_name_birthday",
                        "SELECT c.name || '|' || CAST(c.birthday AS TEXT), c.id FROM customers c JOIN \
                         (SELECT name, birthday FROM customers WHERE tenant_id = $1 AND merged_into IS NULL AND birthday IS NOT NULL \
                          GROUP BY name, birthday HAVING COUNT(*) > 1 LIMIT $2) d ON c.name = d.name AND c.birthday = d.birthday \
                         WHERE c.tenant_id = $1 AND c.merged_into IS NULL ORDER BY 1, c.id",
                    ),
                    (
                        "same_email",
                        "SELECT LOWER(c.email), c.id FROM customers c JOIN \
                         (SELECT LOWER(email) AS e FROM customers WHERE tenant_id = $1 AND merged_into IS NULL AND email IS NOT NULL \
                          GROUP BY LOWER(email) HAVING COUNT(*) > 1 LIMIT $2) d ON LOWER(c.email) = d.e \
                         WHERE c.tenant_id = $1 AND c.merged_into IS NULL ORDER BY 1, c.id",
                    ),
                ];
                for (reason, sql) in queries {
                    let rows: Vec<(String, uuid::Uuid)> =
                        sqlx::query_as(sql).bind(tenant.0).bind(limit).fetch_all(self.reader()).await?;
                    let mut current: Option<(String, Vec<CustomerId>)> = None;
                    for (key, id) in rows {
                        match &mut current {
                            Some((k, ids)) if *k == key => ids.push(CustomerId(id)),
                            _ => {
                                if let Some((_, ids)) = current.take() {
                                    groups.push(DuplicateGroup { reason: reason.into(), customer_ids: ids });
                                }
                                current = Some((key, vec![CustomerId(id)]));
                            }
                        }
                    }
                    if let Some((_, ids)) = current {
                        groups.push(DuplicateGroup { reason: reason.into(), customer_ids: ids });
                    }
                }
                Ok(groups)
            }

            async fn merge_customers(
                &self,
                survivor: &Customer,
                duplicate: CustomerId,
                survivor_event: &TimelineEvent,
                duplicate_event: &TimelineEvent,
            ) -> Result<MergeCounts> {
                let t = survivor.tenant_id.0;
                let (s, d) = (survivor.id.0, duplicate.0);
                let mut tx = self.writer().begin().await?;
                // Free the duplicate's unique keys first: the survivor may take them over.
                let freed = sqlx::query(
                    "UPDATE customers SET merged_into = $3, phone = NULL, id_doc_kind = NULL, id_doc_hash = NULL, \
                     id_doc_masked = NULL, updated_at = $4 WHERE tenant_id = $1 AND id = $2 AND merged_into IS NULL",
                )
                .bind(t)
                .bind(d)
                .bind(s)
                .bind(survivor.updated_at)
                .execute(&mut *tx)
                .await?;
                if freed.rows_affected() != 1 {
                    return Err(StoreError::NotFound);
                }
                upsert_customer(&mut tx, survivor).await?;
                let mut counts = MergeCounts::default();
                let moves: [(&str, &mut u64); 9] = [
                    ("UPDATE timeline_events SET customer_id = $3 WHERE tenant_id = $1 AND customer_id = $2", &mut counts.timeline_events),
                    ("UPDATE cards SET customer_id = $3 WHERE tenant_id = $1 AND customer_id = $2", &mut counts.cards),
                    // The duplicate's spend keeps counting as growth value and visits.
                    ("UPDATE visits SET customer_id = $3 WHERE tenant_id = $1 AND customer_id = $2", &mut 0u64),
                    // Coupons follow their owner; per-customer limits count both records' coupons.
                    ("UPDATE coupons SET customer_id = $3 WHERE tenant_id = $1 AND customer_id = $2", &mut 0u64),
                    ("INSERT INTO coupon_holdings (tenant_id, template_id, customer_id, held) \
                      SELECT tenant_id, template_id, $3, held FROM coupon_holdings WHERE tenant_id = $1 AND customer_id = $2 \
                      ON CONFLICT (tenant_id, template_id, customer_id) DO UPDATE SET held = coupon_holdings.held + excluded.held", &mut 0u64),
                    ("DELETE FROM coupon_holdings WHERE tenant_id = $1 AND customer_id = $2", &mut 0u64),
                    ("UPDATE customers SET organization_id = $3 WHERE tenant_id = $1 AND organization_id = $2", &mut counts.members),
                    ("UPDATE customers SET referred_by = $3 WHERE tenant_id = $1 AND referred_by = $2", &mut counts.referrals),
                    ("UPDATE customers SET merged_into = $3 WHERE tenant_id = $1 AND merged_into = $2", &mut 0u64),
                ];
                for (sql, count) in moves {
                    *count = sqlx::query(sql).bind(t).bind(d).bind(s).execute(&mut *tx).await?.rows_affected();
                }
                insert_event(&mut tx, survivor_event).await?;
                insert_event(&mut tx, duplicate_event).await?;
                tx.commit().await?;
                Ok(counts)
            }

            async fn add_timeline_event(&self, e: &TimelineEvent) -> Result<()> {
                let mut tx = self.writer().begin().await?;
                insert_event(&mut tx, e).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn timeline(
                &self,
                tenant: TenantId,
                customer: CustomerId,
                before: Option<(DateTime<Utc>, Option<uuid::Uuid>)>,
                limit: i64,
            ) -> Result<Vec<TimelineEvent>> {
                let mut b = QueryBuilder::<$db>::new(
                    "SELECT tenant_id, id, customer_id, occurred_at, kind, summary, data, store_id, staff_id \
                     FROM timeline_events WHERE tenant_id = ",
                );
                b.push_bind(tenant.0).push(" AND customer_id = ").push_bind(customer.0);
                match before {
                    // After the last event shown: earlier, or at the same moment and
                    // before it in the list's order.
                    Some((t, Some(id))) => {
                        b.push(" AND (occurred_at < ").push_bind(t);
                        b.push(" OR (occurred_at = ").push_bind(t);
                        b.push(" AND id < ").push_bind(id).push("))");
                    }
                    Some((t, None)) => {
                        b.push(" AND occurred_at < ").push_bind(t);
                    }
                    None => {}
                }
                b.push(" ORDER BY occurred_at DESC, id DESC LIMIT ").push_bind(limit);
                let rows: Vec<TimelineRow> = b.build_query_as().fetch_all(self.reader()).await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn insert_cards(&self, cards: &[Card]) -> Result<()> {
                let mut tx = self.writer().begin().await?;
                for chunk in cards.chunks(BATCH) {
                    let mut b = QueryBuilder::<$db>::new(
                        "INSERT INTO cards (tenant_id, id, number, customer_id, medium, status, issued_at, kinds, store_id, pin_hash, \
                         pool_to_org, status_changed_at) ",
                    );
                    b.push_values(chunk, |mut row, c| {
                        row.push_bind(c.tenant_id.0)
                            .push_bind(c.id.0)
                            .push_bind(c.number.clone())
                            .push_bind(c.customer_id.map(|x| x.0))
                            .push_bind(c.medium.as_str())
                            .push_bind(c.status.as_str())
                            .push_bind(c.issued_at)
                            .push_bind(c.kinds.to_db())
                            .push_bind(c.store_id.map(|x| x.0))
                            .push_bind(c.pin_hash.clone())
                            .push_bind(c.pool_to_org)
                            .push_bind(c.issued_at);
                    });
                    b.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn cards_of_customer(&self, tenant: TenantId, customer: CustomerId) -> Result<Vec<Card>> {
                let sql = format!(
                    "SELECT {} FROM cards WHERE tenant_id = $1 AND customer_id = $2 ORDER BY issued_at",
                    $crate::rows::CARD_COLS
                );
                let rows: Vec<CardRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(tenant.0)
                .bind(customer.0)
                .fetch_all(self.reader())
                .await?;
                rows.into_iter().map(TryInto::try_into).collect()
            }

            async fn insert_menu(&self, categories: &[MenuCategory], items: &[MenuItem]) -> Result<()> {
                let mut tx = self.writer().begin().await?;
                for c in categories {
                    sqlx::query("INSERT INTO menu_categories (tenant_id, id, name, name_en, sort_order) VALUES ($1, $2, $3, $4, $5)")
                        .bind(c.tenant_id.0)
                        .bind(c.id)
                        .bind(&c.name)
                        .bind(&c.name_en)
                        .bind(c.sort_order)
                        .execute(&mut *tx)
                        .await?;
                }
                for i in items {
                    sqlx::query(
                        "INSERT INTO menu_items (tenant_id, id, category_id, name, name_en, price, joins_discounts, active) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(i.tenant_id.0)
                    .bind(i.id.0)
                    .bind(i.category_id)
                    .bind(&i.name)
                    .bind(&i.name_en)
                    .bind(i.price.fen())
                    .bind(i.joins_discounts)
                    .bind(i.active)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn menu(&self, tenant: TenantId) -> Result<(Vec<MenuCategory>, Vec<MenuItem>)> {
                let cats: Vec<MenuCategoryRow> = sqlx::query_as(
                    "SELECT tenant_id, id, name, name_en, sort_order FROM menu_categories WHERE tenant_id = $1 ORDER BY sort_order",
                )
                .bind(tenant.0)
                .fetch_all(self.reader())
                .await?;
                let items: Vec<MenuItemRow> = sqlx::query_as(
                    "SELECT tenant_id, id, category_id, name, name_en, price, joins_discounts, active FROM menu_items \
                     WHERE tenant_id = $1 ORDER BY name",
                )
                .bind(tenant.0)
                .fetch_all(self.reader())
                .await?;
                Ok((cats.into_iter().map(Into::into).collect(), items.into_iter().map(Into::into).collect()))
            }
        }
    };
}
pub(crate) use impl_storage;
