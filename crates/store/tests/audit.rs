//! The audit store on both backends: the append-only log and its search, failed-login
//! counting, staff records with limits, API tokens. PostgreSQL runs are skipped (saying
//! so) when no server answers, like the conformance suite.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use patron_domain::ids::{CardId, CustomerId, StaffId, StoreId, TenantId};
use patron_domain::org::{Role, Staff, Store, Tenant};
use patron_domain::page::PageRequest;
use patron_domain::permissions::{Permission, StaffLimits};
use patron_store::audit::{ApiTokenRecord, AuditEntry, AuditFilter, StaffRecord};
use patron_store::{Session, Storage};
use std::sync::Arc;
use uuid::Uuid;

/// Runs a raw statement (to prove the database itself refuses it).
enum Raw {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Raw {
    async fn execute(&self, sql: &'static str) -> Result<u64, sqlx::Error> {
        match self {
            Raw::Sqlite(p) => sqlx::query(sql).execute(p).await.map(|r| r.rows_affected()),
            Raw::Postgres(p) => sqlx::query(sql).execute(p).await.map(|r| r.rows_affected()),
        }
    }
}

macro_rules! both {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let (storage, dir) = patron_store::testing::fresh_sqlite().await;
                    let url = format!("sqlite://{}", dir.path().join("patron.db").display());
                    let raw = super::Raw::Sqlite(sqlx::SqlitePool::connect(&url).await.unwrap());
                    super::$name(storage, raw).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(url) = patron_store::testing::fresh_postgres_url().await else {
                        return;
                    };
                    let storage = patron_store::connect(&url).await.unwrap();
                    let raw = super::Raw::Postgres(sqlx::PgPool::connect(&url).await.unwrap());
                    super::$name(storage, raw).await;
                }
            )+
        }
    };
}

both!(
    the_log_is_append_only_and_searchable,
    failed_logins_count_since_the_last_success,
    staff_records_keep_limits_and_end_sessions,
    api_tokens_are_revoked_once,
);

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

struct World {
    tenant: TenantId,
    store: StoreId,
    owner: StaffId,
}

async fn world(s: &dyn Storage, code: &str) -> World {
    let tenant = Tenant {
        id: TenantId(Uuid::now_v7()),
        code: code.into(),
        name: code.into(),
        created_at: now(),
    };
    s.create_tenant(&tenant).await.unwrap();
    let store = Store {
        tenant_id: tenant.id,
        id: StoreId(Uuid::now_v7()),
        code: "main".into(),
        name: "总店".into(),
        address: None,
        phone: None,
        created_at: now(),
    };
    s.create_store(&store).await.unwrap();
    let owner = Staff {
        tenant_id: tenant.id,
        id: StaffId(Uuid::now_v7()),
        username: "owner".into(),
        display_name: "Owner".into(),
        password_hash: "x".into(),
        role: Role::Owner,
        store_id: None,
        active: true,
        created_at: now(),
    };
    s.create_staff(&owner).await.unwrap();
    World {
        tenant: tenant.id,
        store: store.id,
        owner: owner.id,
    }
}

fn entry(w: &World, action: &str, at: DateTime<Utc>) -> AuditEntry {
    AuditEntry {
        tenant_id: w.tenant,
        id: Uuid::now_v7(),
        at,
        action: action.into(),
        staff_id: Some(w.owner),
        approver_id: None,
        store_id: Some(w.store),
        entity_kind: "test".into(),
        entity_id: None,
        customer_id: None,
        card_id: None,
        summary: action.into(),
        before: None,
        after: None,
        ip: None,
    }
}

async fn the_log_is_append_only_and_searchable(s: Arc<dyn Storage>, raw: Raw) {
    let w = world(&*s, "t1").await;
    let other = world(&*s, "t2").await;
    let t0 = now() - Duration::hours(1);
    let card = CardId(Uuid::now_v7());
    let customer = CustomerId(Uuid::now_v7());
    let clerk = StaffId(Uuid::now_v7());
    let entries = [
        AuditEntry {
            card_id: Some(card),
            customer_id: Some(customer),
            before: Some(serde_json::json!({"status": "active"})),
            after: Some(serde_json::json!({"status": "frozen"})),
            ..entry(&w, "card.freeze", t0)
        },
        AuditEntry {
            card_id: Some(card),
            customer_id: Some(customer),
            ..entry(&w, "card.unfreeze", t0 + Duration::minutes(1))
        },
        AuditEntry {
            staff_id: Some(clerk),
            approver_id: Some(w.owner),
            ip: Some("10.0.0.1".into()),
            ..entry(&w, "login.failed", t0 + Duration::minutes(2))
        },
        entry(&w, "settings.update", t0 + Duration::minutes(3)),
    ];
    for e in &entries {
        s.append_audit(e).await.unwrap();
    }
    s.append_audit(&entry(&other, "card.freeze", t0))
        .await
        .unwrap();
    let search = |f: AuditFilter, page: PageRequest| {
        let s = s.clone();
        async move {
            s.search_audit(w.tenant, &f, page)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.action)
                .collect::<Vec<_>>()
        }
    };
    let all = PageRequest::new(1, 50);
    // Newest first, one tenant only.
    assert_eq!(
        search(AuditFilter::default(), all).await,
        vec![
            "settings.update",
            "login.failed",
            "card.unfreeze",
            "card.freeze"
        ]
    );
    let rows = s
        .search_audit(w.tenant, &AuditFilter::default(), all)
        .await
        .unwrap();
    let freeze = rows.iter().find(|r| r.action == "card.freeze").unwrap();
    assert_eq!(freeze.before, Some(serde_json::json!({"status": "active"})));
    assert_eq!(freeze.at, t0);
    assert_eq!(freeze.source, "audit");
    // Filters.
    let by = |f: AuditFilter| search(f, all);
    assert_eq!(
        by(AuditFilter {
            card: Some(card),
            ..Default::default()
        })
        .await,
        vec!["card.unfreeze", "card.freeze"]
    );
    assert_eq!(
        by(AuditFilter {
            action: Some("card".into()),
            ..Default::default()
        })
        .await,
        vec!["card.unfreeze", "card.freeze"]
    );
    assert_eq!(
        by(AuditFilter {
            action: Some("card.freeze".into()),
            ..Default::default()
        })
        .await,
        vec!["card.freeze"]
    );
    // The staff filter finds what someone did or approved.
    assert_eq!(
        by(AuditFilter {
            staff: Some(clerk),
            ..Default::default()
        })
        .await,
        vec!["login.failed"]
    );
    assert_eq!(
        by(AuditFilter {
            staff: Some(w.owner),
            ..Default::default()
        })
        .await
        .len(),
        4
    );
    assert_eq!(
        by(AuditFilter {
            from: Some(t0 + Duration::minutes(1)),
            to: Some(t0 + Duration::minutes(3)),
            ..Default::default()
        })
        .await,
        vec!["login.failed", "card.unfreeze"]
    );
    assert_eq!(
        by(AuditFilter {
            customer: Some(customer),
            store: Some(w.store),
            ..Default::default()
        })
        .await
        .len(),
        2
    );
    // Pages are fetched with one extra row.
    assert_eq!(
        search(AuditFilter::default(), PageRequest::new(1, 2)).await,
        vec!["settings.update", "login.failed", "card.unfreeze"]
    );
    assert_eq!(
        search(AuditFilter::default(), PageRequest::new(2, 2)).await,
        vec!["card.unfreeze", "card.freeze"]
    );
    // The database refuses edits and deletions.
    assert!(
        raw.execute("UPDATE audit_log SET summary = 'x'")
            .await
            .is_err()
    );
    assert!(raw.execute("DELETE FROM audit_log").await.is_err());
    assert_eq!(
        s.search_audit(w.tenant, &AuditFilter::default(), all)
            .await
            .unwrap()
            .len(),
        4
    );
}

async fn failed_logins_count_since_the_last_success(s: Arc<dyn Storage>, _raw: Raw) {
    let w = world(&*s, "t1").await;
    let t0 = now() - Duration::minutes(30);
    let login = |action: &str, name: &str, m: i64| AuditEntry {
        entity_kind: "login".into(),
        entity_id: Some(name.into()),
        ..entry(&w, action, t0 + Duration::minutes(m))
    };
    for (a, n, m) in [
        ("login.failed", "ann", 0),
        ("login.failed", "ann", 1),
        ("login", "ann", 2),
        ("login.failed", "ann", 3),
        ("approval.failed", "ann", 4),
        ("login.locked", "ann", 5),
        ("login.failed", "bob", 5),
    ] {
        s.append_audit(&login(a, n, m)).await.unwrap();
    }
    let f = s
        .login_failures(w.tenant, "ann", t0 - Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(
        f,
        vec![t0 + Duration::minutes(4), t0 + Duration::minutes(3)]
    );
    let f = s
        .login_failures(w.tenant, "ann", t0 + Duration::minutes(3))
        .await
        .unwrap();
    assert_eq!(f, vec![t0 + Duration::minutes(4)]);
    assert_eq!(
        s.login_failures(w.tenant, "bob", t0).await.unwrap().len(),
        1
    );
    let other = world(&*s, "t2").await;
    assert!(
        s.login_failures(other.tenant, "ann", t0)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn staff_records_keep_limits_and_end_sessions(s: Arc<dyn Storage>, _raw: Raw) {
    let w = world(&*s, "t1").await;
    let limits = StaffLimits {
        max_discount_bp: 500,
        max_adjustment_per_txn: Some(1_000),
        max_adjustment_per_day: None,
    };
    let mut r = StaffRecord {
        staff: Staff {
            tenant_id: w.tenant,
            id: StaffId(Uuid::now_v7()),
            username: "cashier".into(),
            display_name: "收银".into(),
            password_hash: "h".into(),
            role: Role::Cashier,
            store_id: Some(w.store),
            active: true,
            created_at: now(),
        },
        limits: Some(limits),
        approval_pin_hash: None,
    };
    s.create_staff_audited(&r, &entry(&w, "staff.create", now()))
        .await
        .unwrap();
    assert_eq!(
        s.staff_record(w.tenant, r.staff.id).await.unwrap(),
        Some(r.clone())
    );
    assert_eq!(r.effective_limits(), limits);
    let session = Session {
        tenant_id: w.tenant,
        token_hash: "abc".into(),
        staff_id: r.staff.id,
        kind: "session".into(),
        created_at: now(),
        expires_at: now() + Duration::hours(1),
        store_id: Some(w.store),
    };
    s.create_session(&session).await.unwrap();
    // A change without ending sessions keeps them; back to the role's limits.
    r.limits = None;
    r.approval_pin_hash = Some("pin".into());
    s.update_staff_audited(&r, false, &entry(&w, "staff.update", now()))
        .await
        .unwrap();
    let back = s
        .staff_record_by_username(w.tenant, "cashier")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, r);
    assert_eq!(
        back.effective_limits(),
        StaffLimits::default_for(Role::Cashier)
    );
    assert!(s.session(w.tenant, "abc").await.unwrap().is_some());
    r.staff.active = false;
    s.update_staff_audited(&r, true, &entry(&w, "staff.update", now()))
        .await
        .unwrap();
    assert!(s.session(w.tenant, "abc").await.unwrap().is_none());
    // Both changes are in the log; a missing account is NotFound and writes nothing.
    let n = |s: Arc<dyn Storage>| async move {
        s.search_audit(w.tenant, &AuditFilter::default(), PageRequest::new(1, 50))
            .await
            .unwrap()
            .len()
    };
    assert_eq!(n(s.clone()).await, 3);
    let mut ghost = r.clone();
    ghost.staff.id = StaffId(Uuid::now_v7());
    assert!(
        s.update_staff_audited(&ghost, true, &entry(&w, "staff.update", now()))
            .await
            .is_err()
    );
    assert_eq!(n(s.clone()).await, 3);
    // Other tenants see nothing of it.
    let other = world(&*s, "t2").await;
    assert!(
        s.staff_record(other.tenant, r.staff.id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(s.staff_records(w.tenant).await.unwrap().len(), 2);
}

async fn api_tokens_are_revoked_once(s: Arc<dyn Storage>, _raw: Raw) {
    let w = world(&*s, "t1").await;
    let t = ApiTokenRecord {
        tenant_id: w.tenant,
        id: Uuid::now_v7(),
        name: "POS".into(),
        token_hash: "f".repeat(64),
        staff_id: w.owner,
        store_id: Some(w.store),
        scope: vec![Permission::Checkout, Permission::ViewCustomers],
        created_at: now(),
        expires_at: Some(now() + Duration::days(30)),
        revoked_at: None,
        revoked_by: None,
    };
    s.create_api_token(&t, &entry(&w, "api_token.create", now()))
        .await
        .unwrap();
    assert_eq!(
        s.api_token_by_hash(w.tenant, &"f".repeat(64))
            .await
            .unwrap(),
        Some(t.clone())
    );
    let other = world(&*s, "t2").await;
    assert!(
        s.api_token_by_hash(other.tenant, &"f".repeat(64))
            .await
            .unwrap()
            .is_none()
    );
    let at = now();
    assert!(
        s.revoke_api_token(
            w.tenant,
            t.id,
            at,
            w.owner,
            &entry(&w, "api_token.revoke", at)
        )
        .await
        .unwrap()
    );
    assert!(
        !s.revoke_api_token(
            w.tenant,
            t.id,
            at,
            w.owner,
            &entry(&w, "api_token.revoke", at)
        )
        .await
        .unwrap()
    );
    let listed = s.api_tokens(w.tenant).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].revoked_at, Some(at));
    assert_eq!(listed[0].revoked_by, Some(w.owner));
    let actions: Vec<String> = s
        .search_audit(w.tenant, &AuditFilter::default(), PageRequest::new(1, 50))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.action)
        .collect();
    assert_eq!(actions, vec!["api_token.revoke", "api_token.create"]);
}
