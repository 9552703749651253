//! The store layer's conformance suite: every scenario is written once against
//! `&dyn Storage` and runs on both backends (`sqlite::<name>` and `postgres::<name>`).
//! The PostgreSQL runs are skipped, saying so on stderr, when no server answers (see
//! `patron_store::testing`); `PATRON_REQUIRE_POSTGRES=1` turns that into a failure.

use chrono::{DateTime, Duration, NaiveDate, SubsecRound, TimeZone, Utc};
use patron_domain::card::{Card, CardMedium, CardStatus};
use patron_domain::card_number;
use patron_domain::customer::{Customer, CustomerInput, ValidationContext};
use patron_domain::ids::{
    CardId, CustomerId, MenuItemId, StaffId, StoreId, TenantId, TimelineEventId,
};
use patron_domain::menu::{MenuCategory, MenuItem};
use patron_domain::money::Money;
use patron_domain::org::{Role, Staff, Store, Tenant};
use patron_domain::page::{Page, PageRequest};
use patron_domain::timeline::TimelineEvent;
use patron_store::{CustomerFilter, MergeCounts, Session, Storage, StoreError};
use serde_json::json;
use uuid::Uuid;

/// Generates `sqlite::<name>` and `postgres::<name>` tests for each scenario.
macro_rules! conformance {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let (storage, _dir) = patron_store::testing::fresh_sqlite().await;
                    super::$name(&*storage).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    // None: unreachable, and the helper has said "PostgreSQL tests SKIPPED".
                    let Some(storage) = patron_store::testing::fresh_postgres().await else {
                        return;
                    };
                    super::$name(&*storage).await;
                }
            )+
        }
    };
}

conformance!(
    org_round_trip_and_conflicts,
    sessions_round_trip,
    customer_full_profile_round_trip,
    customer_lookups_by_phone_id_and_card,
    name_prefix_lookup,
    list_filters,
    list_pagination,
    customers_after_keyset_and_count,
    uniqueness_of_phone_and_id,
    tenant_isolation,
    update_customer_is_atomic,
    merge_moves_everything,
    merge_frees_keys_the_survivor_does_not_take,
    duplicate_groups,
    timeline_ordering_and_cursor,
    menu_round_trip,
    like_wildcards_are_literal,
);

// ---------------------------------------------------------------------------------------
// Helpers

/// The databases keep microseconds; values compared after a round trip must too.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

fn ctx() -> ValidationContext<'static> {
    ValidationContext {
        id_hash_key: b"conformance-test-key",
        today: NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(),
    }
}

fn new_id() -> Uuid {
    Uuid::now_v7()
}

async fn tenant(s: &dyn Storage, code: &str) -> Tenant {
    let t = Tenant {
        id: TenantId(new_id()),
        code: code.into(),
        name: format!("Tenant {code}"),
        created_at: now(),
    };
    s.create_tenant(&t).await.expect("create tenant");
    t
}

async fn store(s: &dyn Storage, t: TenantId, code: &str) -> Store {
    let st = Store {
        tenant_id: t,
        id: StoreId(new_id()),
        code: code.into(),
        name: format!("门店 {code}"),
        address: Some("上海市黄浦区南京东路1号".into()),
        phone: Some("02162881234".into()),
        created_at: now(),
    };
    s.create_store(&st).await.expect("create store");
    st
}

fn staff_record(t: TenantId, username: &str, store: Option<StoreId>) -> Staff {
    Staff {
        tenant_id: t,
        id: StaffId(new_id()),
        username: username.into(),
        display_name: format!("Staff {username}"),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        role: Role::Cashier,
        store_id: store,
        active: true,
        created_at: now(),
    }
}

async fn staff(s: &dyn Storage, t: TenantId, username: &str) -> Staff {
    let st = staff_record(t, username, None);
    s.create_staff(&st).await.expect("create staff");
    st
}

/// A customer from a validated input, created at `created`.
fn build(t: TenantId, input: CustomerInput, created: DateTime<Utc>) -> Customer {
    let profile = input.validate(ctx(), None).expect("valid customer input");
    Customer {
        id: CustomerId(new_id()),
        tenant_id: t,
        profile,
        level: None,
        home_store_id: None,
        merged_into: None,
        marketing_consent_at: None,
        created_at: created,
        updated_at: created,
    }
}

fn named(name: &str, phone: Option<&str>) -> CustomerInput {
    CustomerInput {
        name: Some(name.into()),
        phone: phone.map(Into::into),
        ..Default::default()
    }
}

/// Inserts a customer with a name and an optional phone, created now.
async fn add(s: &dyn Storage, t: TenantId, name: &str, phone: Option<&str>) -> Customer {
    let c = build(t, named(name, phone), now());
    s.insert_customers(std::slice::from_ref(&c))
        .await
        .expect("insert customer");
    c
}

fn event(t: TenantId, c: CustomerId, occurred_at: DateTime<Utc>, kind: &str) -> TimelineEvent {
    TimelineEvent {
        tenant_id: t,
        id: TimelineEventId(new_id()),
        customer_id: c,
        occurred_at,
        kind: kind.into(),
        summary: format!("{kind} 摘要"),
        data: json!({"kind": kind, "n": [1, 2.5, null], "nested": {"ok": true, "文字": "值"}}),
        store_id: None,
        staff_id: None,
    }
}

fn card(t: TenantId, payload: &str, customer: Option<CustomerId>, issued: DateTime<Utc>) -> Card {
    Card::new(
        t,
        CardId(new_id()),
        card_number::with_check_digit(payload),
        customer,
        CardMedium::Physical,
        CardStatus::Active,
        issued,
    )
}

fn ids(list: &[Customer]) -> Vec<CustomerId> {
    list.iter().map(|c| c.id).collect()
}

fn sorted(mut v: Vec<CustomerId>) -> Vec<CustomerId> {
    v.sort();
    v
}

fn names(list: &[Customer]) -> Vec<&str> {
    list.iter().map(|c| c.profile.name.as_str()).collect()
}

fn sorted_names(list: &[Customer]) -> Vec<&str> {
    let mut v = names(list);
    v.sort_unstable();
    v
}

#[track_caller]
fn assert_conflict(r: patron_store::Result<()>, what: &str) {
    match r {
        Err(StoreError::Conflict { what: w }) => assert_eq!(w, what, "conflict subject"),
        other => panic!("expected Conflict {{ what: {what:?} }}, got {other:?}"),
    }
}

async fn list(s: &dyn Storage, t: TenantId, f: CustomerFilter) -> Vec<Customer> {
    s.list_customers(t, &f, PageRequest::new(1, 500))
        .await
        .expect("list customers")
}

// ---------------------------------------------------------------------------------------
// Scenarios

async fn org_round_trip_and_conflicts(s: &dyn Storage) {
    let a = tenant(s, "alpha").await;
    let b = tenant(s, "beta").await;
    assert_eq!(s.tenant(a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(s.tenant_by_code("beta").await.unwrap(), Some(b.clone()));
    assert_eq!(s.tenant_by_code("gamma").await.unwrap(), None);
    assert_eq!(s.tenant(TenantId(new_id())).await.unwrap(), None);
    assert_eq!(s.list_tenants().await.unwrap(), vec![a.clone(), b.clone()]);

    // Same code, different id.
    let clash = Tenant {
        id: TenantId(new_id()),
        ..a.clone()
    };
    assert_conflict(s.create_tenant(&clash).await, "code");
    assert_eq!(s.list_tenants().await.unwrap().len(), 2);

    // Stores: listed by code, per tenant; the code is unique within a tenant only.
    let s2 = store(s, a.id, "sh02").await;
    let s1 = store(s, a.id, "sh01").await;
    assert_eq!(
        s.list_stores(a.id).await.unwrap(),
        vec![s1.clone(), s2.clone()]
    );
    assert_eq!(s.list_stores(b.id).await.unwrap(), vec![]);
    let dup_store = Store {
        id: StoreId(new_id()),
        ..s1.clone()
    };
    assert_conflict(s.create_store(&dup_store).await, "code");
    let b_store = store(s, b.id, "sh01").await;
    assert_eq!(s.list_stores(b.id).await.unwrap(), vec![b_store]);

    // Staff.
    assert_eq!(s.count_all_staff().await.unwrap(), 0);
    let mut alice = staff_record(a.id, "alice", Some(s1.id));
    alice.role = Role::Owner;
    alice.active = false;
    s.create_staff(&alice).await.unwrap();
    assert_eq!(s.staff(a.id, alice.id).await.unwrap(), Some(alice.clone()));
    assert_eq!(
        s.staff_by_username(a.id, "alice").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(s.staff_by_username(a.id, "bob").await.unwrap(), None);
    assert_eq!(s.count_all_staff().await.unwrap(), 1);

    let alice_again = staff_record(a.id, "alice", None);
    assert_conflict(s.create_staff(&alice_again).await, "username");
    assert_eq!(s.count_all_staff().await.unwrap(), 1);

    // The same username in another tenant is another person.
    let alice_b = staff(s, b.id, "alice").await;
    assert_eq!(s.count_all_staff().await.unwrap(), 2);
    assert_eq!(
        s.staff_by_username(b.id, "alice").await.unwrap(),
        Some(alice_b.clone())
    );
    assert_eq!(
        s.staff_by_username(a.id, "alice").await.unwrap(),
        Some(alice)
    );
    assert_eq!(s.staff(a.id, alice_b.id).await.unwrap(), None);

    // A staff account cannot point at another tenant's store.
    let wrong_store = staff_record(b.id, "carol", Some(s1.id));
    assert!(
        matches!(
            s.create_staff(&wrong_store).await,
            Err(StoreError::MissingReference(_))
        ),
        "a store of another tenant must not be referenced"
    );
}

async fn sessions_round_trip(s: &dyn Storage) {
    let t = tenant(s, "sess").await;
    let other = tenant(s, "other").await;
    let who = staff(s, t.id, "cashier1").await;
    let created = now();
    let session = Session {
        tenant_id: t.id,
        token_hash: "a".repeat(64),
        staff_id: who.id,
        kind: "session".into(),
        created_at: created,
        expires_at: created + Duration::hours(8),
        store_id: None,
    };
    s.create_session(&session).await.unwrap();
    assert_eq!(
        s.session(t.id, &session.token_hash).await.unwrap(),
        Some(session.clone())
    );
    assert_eq!(s.session(t.id, &"b".repeat(64)).await.unwrap(), None);
    assert_eq!(
        s.session(other.id, &session.token_hash).await.unwrap(),
        None
    );

    let token = Session {
        token_hash: "c".repeat(64),
        kind: "api_token".into(),
        expires_at: created + Duration::days(365),
        ..session.clone()
    };
    s.create_session(&token).await.unwrap();
    assert_conflict(s.create_session(&token).await, "record");

    let later = (created + Duration::hours(20) + Duration::microseconds(123_456)).trunc_subsecs(6);
    s.extend_session(t.id, &session.token_hash, later)
        .await
        .unwrap();
    let extended = s.session(t.id, &session.token_hash).await.unwrap().unwrap();
    assert_eq!(extended.expires_at, later);
    assert_eq!(extended.created_at, created);
    // Another tenant's id extends nothing.
    s.extend_session(other.id, &session.token_hash, created)
        .await
        .unwrap();
    assert_eq!(
        s.session(t.id, &session.token_hash)
            .await
            .unwrap()
            .unwrap()
            .expires_at,
        later
    );

    s.delete_session(other.id, &session.token_hash)
        .await
        .unwrap();
    assert!(
        s.session(t.id, &session.token_hash)
            .await
            .unwrap()
            .is_some()
    );
    s.delete_session(t.id, &session.token_hash).await.unwrap();
    assert_eq!(s.session(t.id, &session.token_hash).await.unwrap(), None);
    // The other token is untouched.
    assert_eq!(
        s.session(t.id, &token.token_hash).await.unwrap(),
        Some(token)
    );

    // A session must belong to an existing staff account.
    let orphan = Session {
        token_hash: "d".repeat(64),
        staff_id: StaffId(new_id()),
        ..session
    };
    assert!(matches!(
        s.create_session(&orphan).await,
        Err(StoreError::MissingReference(_))
    ));
}

/// A customer with every field set, referring to an organization and a referrer.
async fn full_customer(s: &dyn Storage, t: TenantId) -> Customer {
    let home = store(s, t, "home").await;
    let org = build(
        t,
        CustomerInput {
            name: Some("上海某某科技有限公司".into()),
            customer_type: Some("organization".into()),
            ..Default::default()
        },
        now(),
    );
    let referrer = build(t, named("李娜", Some("13900139000")), now());
    s.insert_customers(&[org.clone(), referrer.clone()])
        .await
        .unwrap();
    let input = CustomerInput {
        name: Some("  张伟 ".into()),
        phone: Some("+86 138-0013-8000".into()),
        gender: Some("男".into()),
        birthday: Some("1988-05-17".into()),
        age_band: Some("35_44".into()),
        nationality: Some("中国".into()),
        customer_type: Some("individual".into()),
        industry: Some("餐饮".into()),
        title: Some("总经理".into()),
        company: Some("张记餐饮".into()),
        work_phone: Some("021-6288 1234 ext. 8".into()),
        credit_rating: Some("a".into()),
        id_document_kind: Some("resident_id".into()),
        id_number: Some("11010519491231002x".into()),
        email: Some("Zhang.Wei@Example.com".into()),
        address: Some("上海市静安区 \"南京西路\" 100号 'A' 座".into()),
        organization_id: Some(org.id.to_string()),
        acquisition_source: Some("转介绍".into()),
        referred_by: Some(referrer.id.to_string()),
        marketing_consent: Some(true),
        marketing_consent_source: Some("in_store".into()),
        favourite_dishes: vec!["红烧肉".into(), "蟹粉小笼".into()],
        tastes: vec!["微辣".into(), "不要香菜".into()],
        seat_preference: Some("靠窗".into()),
        allergies: vec!["花生".into(), "shellfish \"all\"".into()],
        tags: vec!["VIP".into(), "商务宴请".into()],
        notes: Some("第一行\n第二行\twith tab; emoji 🎉 and \\backslash".into()),
        lifecycle_stage: Some("lost".into()),
        churn_reason: Some("moved".into()),
        churn_note: Some("搬到北京".into()),
    };
    let created = now() - Duration::days(3);
    let mut c = build(t, input, created);
    c.level = Some("gold".into());
    c.home_store_id = Some(home.id);
    c.marketing_consent_at = Some(created + Duration::microseconds(1));
    c.updated_at = now();
    c
}

async fn customer_full_profile_round_trip(s: &dyn Storage) {
    let t = tenant(s, "full").await;
    let c = full_customer(s, t.id).await;
    // Every optional field is really set, so the round trip covers every column.
    let p = &c.profile;
    assert!(p.phone.is_some() && p.id_document.is_some() && p.organization_id.is_some());
    assert!(p.referred_by.is_some() && p.churn_reason.is_some() && p.credit_rating.is_some());
    assert_eq!(p.name, "张伟");
    assert_eq!(p.phone.as_ref().unwrap().as_str(), "13800138000");

    s.insert_customers(std::slice::from_ref(&c)).await.unwrap();
    assert_eq!(s.customer(t.id, c.id).await.unwrap(), Some(c.clone()));
    assert_eq!(s.customer(t.id, CustomerId(new_id())).await.unwrap(), None);
    assert_eq!(s.count_customers(t.id).await.unwrap(), 3);

    // The same record comes back from every read path.
    assert_eq!(
        s.customer_by_phone(t.id, "13800138000").await.unwrap(),
        Some(c.clone())
    );
    let listed = list(s, t.id, CustomerFilter::default()).await;
    assert!(listed.contains(&c));
    assert_eq!(
        s.customers_by_name_prefix(t.id, "张伟", 10).await.unwrap(),
        vec![c.clone()]
    );
    assert!(
        s.customers_after(t.id, None, 10)
            .await
            .unwrap()
            .contains(&c)
    );
}

async fn customer_lookups_by_phone_id_and_card(s: &dyn Storage) {
    let t = tenant(s, "look").await;
    let c = full_customer(s, t.id).await;
    let plain = build(t.id, named("王五", Some("13700137000")), now());
    s.insert_customers(&[c.clone(), plain.clone()])
        .await
        .unwrap();
    let hash = c.profile.id_document.as_ref().unwrap().hash.clone();

    assert_eq!(
        s.customer_by_phone(t.id, "13800138000")
            .await
            .unwrap()
            .map(|x| x.id),
        Some(c.id)
    );
    assert_eq!(
        s.customer_by_phone(t.id, "13700137000")
            .await
            .unwrap()
            .map(|x| x.id),
        Some(plain.id)
    );
    assert_eq!(
        s.customer_by_phone(t.id, "13600136000").await.unwrap(),
        None
    );
    assert_eq!(
        s.customer_by_id_hash(t.id, &hash).await.unwrap(),
        Some(c.clone())
    );
    assert_eq!(s.customer_by_id_hash(t.id, "00ff").await.unwrap(), None);

    let mut in_use = s
        .phones_in_use(
            t.id,
            &[
                "13800138000".into(),
                "13600136000".into(),
                "13700137000".into(),
            ],
        )
        .await
        .unwrap();
    in_use.sort();
    let mut expected = vec![
        ("13700137000".to_string(), plain.id),
        ("13800138000".to_string(), c.id),
    ];
    expected.sort();
    assert_eq!(in_use, expected);
    assert_eq!(s.phones_in_use(t.id, &[]).await.unwrap(), vec![]);
    assert_eq!(
        s.id_hashes_in_use(t.id, &[hash.clone(), "00ff".into()])
            .await
            .unwrap(),
        vec![(hash.clone(), c.id)]
    );

    // Cards: by number, and the holder's cards in issue order.
    let issued = now() - Duration::days(1);
    let c1 = card(t.id, "800000000000001", Some(c.id), issued);
    let mut c2 = card(
        t.id,
        "800000000000002",
        Some(c.id),
        issued + Duration::hours(1),
    );
    c2.medium = CardMedium::Electronic;
    c2.status = CardStatus::Frozen;
    let anonymous = card(t.id, "800000000000003", None, issued);
    s.insert_cards(&[c2.clone(), anonymous.clone(), c1.clone()])
        .await
        .unwrap();
    assert_eq!(
        s.customer_by_card_number(t.id, &c1.number).await.unwrap(),
        Some(c.clone())
    );
    assert_eq!(
        s.customer_by_card_number(t.id, &c2.number)
            .await
            .unwrap()
            .map(|x| x.id),
        Some(c.id)
    );
    assert_eq!(
        s.customer_by_card_number(t.id, &anonymous.number)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.customer_by_card_number(t.id, "8000000000000999")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.cards_of_customer(t.id, c.id).await.unwrap(),
        vec![c1.clone(), c2.clone()]
    );
    assert_eq!(s.cards_of_customer(t.id, plain.id).await.unwrap(), vec![]);

    // A card number is unique in the tenant; a batch with a clash inserts nothing.
    let fresh = card(t.id, "800000000000004", None, issued);
    let clash = Card {
        id: CardId(new_id()),
        ..c1.clone()
    };
    assert_conflict(s.insert_cards(&[fresh.clone(), clash]).await, "card_number");
    assert_eq!(
        s.customer_by_card_number(t.id, &fresh.number)
            .await
            .unwrap(),
        None
    );
    s.insert_cards(std::slice::from_ref(&fresh)).await.unwrap();
    // A card of a customer that does not exist is refused.
    let orphan = card(t.id, "800000000000005", Some(CustomerId(new_id())), issued);
    assert!(matches!(
        s.insert_cards(&[orphan]).await,
        Err(StoreError::MissingReference(_))
    ));
}

async fn name_prefix_lookup(s: &dyn Storage) {
    let t = tenant(s, "names").await;
    let zw = add(s, t.id, "张伟", None).await;
    let zs = add(s, t.id, "张三", None).await;
    let lw = add(s, t.id, "李伟", None).await;
    let anna = add(s, t.id, "Anna Li", None).await;
    let oy = add(s, t.id, "欧阳·娜娜", None).await;

    let find = |prefix: &'static str| async move {
        let found = s.customers_by_name_prefix(t.id, prefix, 10).await.unwrap();
        sorted(ids(&found))
    };
    assert_eq!(find("张").await, sorted(vec![zw.id, zs.id]));
    assert_eq!(find("张伟").await, vec![zw.id]);
    assert_eq!(find("zhang").await, sorted(vec![zw.id, zs.id]));
    assert_eq!(find("zhangwei").await, vec![zw.id]);
    assert_eq!(find("ZhangW").await, vec![zw.id]);
    assert_eq!(find("zw").await, vec![zw.id]);
    assert_eq!(find("ZW").await, vec![zw.id]);
    assert_eq!(find("z").await, sorted(vec![zw.id, zs.id]));
    assert_eq!(find("li").await, vec![lw.id]);
    assert_eq!(find("lw").await, vec![lw.id]);
    assert_eq!(find("Anna").await, vec![anna.id]);
    assert_eq!(find("annal").await, vec![anna.id]);
    assert_eq!(find("al").await, vec![anna.id]);
    assert_eq!(find("oynn").await, vec![oy.id]);
    assert_eq!(find("ouyangnana").await, vec![oy.id]);
    assert_eq!(find("欧阳").await, vec![oy.id]);
    assert_eq!(find("伟").await, vec![], "a prefix, not a substring");
    assert_eq!(find("wang").await, vec![]);

    // Ordered by name and limited.
    let limited = s.customers_by_name_prefix(t.id, "z", 1).await.unwrap();
    assert_eq!(limited.len(), 1);
    let all_z = s.customers_by_name_prefix(t.id, "z", 10).await.unwrap();
    let mut by_name = all_z.clone();
    by_name.sort_by(|a, b| a.profile.name.cmp(&b.profile.name));
    assert_eq!(all_z, by_name);
    assert_eq!(limited[0], all_z[0]);
}

/// Customers for the filter tests, created a minute apart (index order = age order).
async fn filter_fixture(s: &dyn Storage, t: TenantId) -> Vec<Customer> {
    let base = at(2025, 3, 1, 8, 0, 0);
    let inputs = vec![
        CustomerInput {
            name: Some("张伟".into()),
            phone: Some("13800000001".into()),
            birthday: Some("1990-05-03".into()),
            tags: vec!["VIP".into(), "生日宴".into()],
            lifecycle_stage: Some("loyal".into()),
            marketing_consent: Some(true),
            acquisition_source: Some("walk_in".into()),
            email: Some("zw@example.com".into()),
            ..Default::default()
        },
        CustomerInput {
            name: Some("李伟".into()),
            phone: Some("13900000002".into()),
            birthday: Some("1985-12-24".into()),
            tags: vec!["VIP2".into()],
            lifecycle_stage: Some("customer".into()),
            marketing_consent: Some(false),
            customer_type: Some("family".into()),
            ..Default::default()
        },
        CustomerInput {
            name: Some("Anna Li".into()),
            phone: Some("+85291234567".into()),
            birthday: Some("2000-05-30".into()),
            tags: vec!["vip".into()],
            lifecycle_stage: Some("prospect".into()),
            marketing_consent: Some(true),
            ..Default::default()
        },
        CustomerInput {
            name: Some("王芳".into()),
            phone: Some("13800000004".into()),
            birthday: Some("1979-01-09".into()),
            tags: vec!["商务".into(), "VIP".into()],
            lifecycle_stage: Some("loyal".into()),
            acquisition_source: Some("online".into()),
            ..Default::default()
        },
        CustomerInput {
            name: Some("赵六".into()),
            lifecycle_stage: Some("potential".into()),
            ..Default::default()
        },
    ];
    let list: Vec<Customer> = inputs
        .into_iter()
        .enumerate()
        .map(|(i, input)| {
            let mut c = build(t, input, base + Duration::minutes(i as i64));
            if i == 3 {
                c.level = Some("gold".into());
            }
            c
        })
        .collect();
    s.insert_customers(&list).await.unwrap();
    list
}

async fn list_filters(s: &dyn Storage) {
    let t = tenant(s, "filters").await;
    let c = filter_fixture(s, t.id).await;
    let (zw, lw, anna, wf, zl) = (&c[0], &c[1], &c[2], &c[3], &c[4]);
    let f = CustomerFilter::default;

    // No filter: everyone, newest first.
    assert_eq!(
        ids(&list(s, t.id, f()).await),
        vec![zl.id, wf.id, anna.id, lw.id, zw.id]
    );

    // Name: a substring of the characters, or the start of the pinyin or initials.
    let by_name = |n: &str| CustomerFilter {
        name: Some(n.into()),
        ..f()
    };
    assert_eq!(ids(&list(s, t.id, by_name("伟")).await), vec![lw.id, zw.id]);
    assert_eq!(ids(&list(s, t.id, by_name("zhang")).await), vec![zw.id]);
    assert_eq!(ids(&list(s, t.id, by_name("zw")).await), vec![zw.id]);
    assert_eq!(ids(&list(s, t.id, by_name(" wang ")).await), vec![wf.id]);
    assert_eq!(
        ids(&list(s, t.id, by_name("Li")).await),
        vec![anna.id, lw.id]
    );
    // Latin names match case-insensitively, also in the middle of the name.
    assert_eq!(ids(&list(s, t.id, by_name("NNA L")).await), vec![anna.id]);
    assert_eq!(ids(&list(s, t.id, by_name("刘")).await), vec![]);
    // A blank name filter is no filter.
    assert_eq!(list(s, t.id, by_name("  ")).await.len(), 5);

    // Phone prefix.
    let by_phone = |p: &str| CustomerFilter {
        phone_prefix: Some(p.into()),
        ..f()
    };
    assert_eq!(
        ids(&list(s, t.id, by_phone("138")).await),
        vec![wf.id, zw.id]
    );
    assert_eq!(ids(&list(s, t.id, by_phone("1390")).await), vec![lw.id]);
    assert_eq!(ids(&list(s, t.id, by_phone("+852")).await), vec![anna.id]);
    assert_eq!(ids(&list(s, t.id, by_phone("0000")).await), vec![]);

    // Tag: a whole tag, not a part of one ("VIP" is not "VIP2"), case-insensitively.
    let by_tag = |tag: &str| CustomerFilter {
        tag: Some(tag.into()),
        ..f()
    };
    assert_eq!(
        ids(&list(s, t.id, by_tag("VIP")).await),
        vec![wf.id, anna.id, zw.id]
    );
    assert_eq!(
        ids(&list(s, t.id, by_tag("vip")).await),
        vec![wf.id, anna.id, zw.id]
    );
    assert_eq!(ids(&list(s, t.id, by_tag("VIP2")).await), vec![lw.id]);
    assert_eq!(ids(&list(s, t.id, by_tag("商务")).await), vec![wf.id]);
    assert_eq!(ids(&list(s, t.id, by_tag("商")).await), vec![]);

    // Codes.
    let stage = |v: &str| CustomerFilter {
        lifecycle_stage: Some(v.into()),
        ..f()
    };
    assert_eq!(
        ids(&list(s, t.id, stage("loyal")).await),
        vec![wf.id, zw.id]
    );
    assert_eq!(ids(&list(s, t.id, stage("lost")).await), vec![]);
    let family = CustomerFilter {
        customer_type: Some("family".into()),
        ..f()
    };
    assert_eq!(ids(&list(s, t.id, family).await), vec![lw.id]);
    let online = CustomerFilter {
        acquisition_source: Some("online".into()),
        ..f()
    };
    assert_eq!(ids(&list(s, t.id, online).await), vec![wf.id]);
    let gold = CustomerFilter {
        level: Some("gold".into()),
        ..f()
    };
    assert_eq!(ids(&list(s, t.id, gold).await), vec![wf.id]);

    // Birthday month, including the two-digit months and January.
    let month = |m: u32| CustomerFilter {
        birthday_month: Some(m),
        ..f()
    };
    assert_eq!(ids(&list(s, t.id, month(5)).await), vec![anna.id, zw.id]);
    assert_eq!(ids(&list(s, t.id, month(12)).await), vec![lw.id]);
    assert_eq!(ids(&list(s, t.id, month(1)).await), vec![wf.id]);
    assert_eq!(ids(&list(s, t.id, month(2)).await), vec![]);

    // Marketing consent, both ways.
    let consent = |v: bool| CustomerFilter {
        marketing_consent: Some(v),
        ..f()
    };
    assert_eq!(
        ids(&list(s, t.id, consent(true)).await),
        vec![anna.id, zw.id]
    );
    assert_eq!(
        ids(&list(s, t.id, consent(false)).await),
        vec![zl.id, wf.id, lw.id]
    );

    // Created range: from inclusive, to exclusive.
    let range = CustomerFilter {
        created_from: Some(lw.created_at),
        created_to: Some(wf.created_at),
        ..f()
    };
    assert_eq!(ids(&list(s, t.id, range).await), vec![anna.id, lw.id]);
    let from = CustomerFilter {
        created_from: Some(wf.created_at + Duration::microseconds(1)),
        ..f()
    };
    assert_eq!(ids(&list(s, t.id, from).await), vec![zl.id]);
    let to = CustomerFilter {
        created_to: Some(lw.created_at),
        ..f()
    };
    assert_eq!(ids(&list(s, t.id, to).await), vec![zw.id]);

    // Filters combine with AND.
    let both = CustomerFilter {
        tag: Some("VIP".into()),
        birthday_month: Some(5),
        marketing_consent: Some(true),
        name: Some("张".into()),
        ..f()
    };
    assert_eq!(ids(&list(s, t.id, both).await), vec![zw.id]);
}

async fn list_pagination(s: &dyn Storage) {
    let t = tenant(s, "pages").await;
    let base = at(2025, 1, 1, 0, 0, 0);
    let all: Vec<Customer> = (0..5)
        .map(|i| {
            build(
                t.id,
                named(&format!("客户{i}"), None),
                base + Duration::seconds(i),
            )
        })
        .collect();
    s.insert_customers(&all).await.unwrap();
    let newest_first: Vec<CustomerId> = all.iter().rev().map(|c| c.id).collect();

    let page = |n: u32| async move {
        let req = PageRequest::new(n, 2);
        let rows = s
            .list_customers(t.id, &CustomerFilter::default(), req)
            .await
            .unwrap();
        (rows.len(), Page::from_overfetch(rows, req))
    };
    let (fetched, p1) = page(1).await;
    assert_eq!(fetched, 3, "per_page + 1 rows tell has_more");
    assert!(p1.has_more);
    assert_eq!(ids(&p1.items), newest_first[0..2]);
    let (_, p2) = page(2).await;
    assert!(p2.has_more);
    assert_eq!(ids(&p2.items), newest_first[2..4]);
    let (fetched, p3) = page(3).await;
    assert_eq!(fetched, 1);
    assert!(!p3.has_more);
    assert_eq!(ids(&p3.items), newest_first[4..5]);
    let (fetched, p4) = page(4).await;
    assert_eq!(fetched, 0);
    assert!(!p4.has_more && p4.items.is_empty());

    // Exactly a full page: no next page.
    let exact = PageRequest::new(1, 5);
    let rows = s
        .list_customers(t.id, &CustomerFilter::default(), exact)
        .await
        .unwrap();
    assert!(!Page::from_overfetch(rows, exact).has_more);

    // Same creation time: the id breaks the tie, so pages neither repeat nor skip.
    let tied: Vec<Customer> = (0..4)
        .map(|i| {
            build(
                t.id,
                named(&format!("同时{i}"), None),
                base + Duration::days(1),
            )
        })
        .collect();
    s.insert_customers(&tied).await.unwrap();
    let mut seen = Vec::new();
    for n in 1..=5 {
        let rows = s
            .list_customers(t.id, &CustomerFilter::default(), PageRequest::new(n, 2))
            .await
            .unwrap();
        seen.extend(Page::from_overfetch(rows, PageRequest::new(n, 2)).items);
    }
    assert_eq!(seen.len(), 9);
    let mut tied_ids = ids(&tied);
    tied_ids.sort();
    tied_ids.reverse();
    assert_eq!(ids(&seen[0..4]), tied_ids);
    assert_eq!(ids(&seen[4..9]), newest_first);
}

async fn customers_after_keyset_and_count(s: &dyn Storage) {
    let t = tenant(s, "keyset").await;
    assert_eq!(s.count_customers(t.id).await.unwrap(), 0);
    assert_eq!(s.customers_after(t.id, None, 10).await.unwrap(), vec![]);
    // Random (v4-like) order of ids: the keyset must follow id order, not insertion order.
    let mut all: Vec<Customer> = (0..7)
        .map(|i| build(t.id, named(&format!("导出{i}"), None), now()))
        .collect();
    for c in &mut all {
        let mut bytes = *new_id().as_bytes();
        bytes.reverse();
        c.id = CustomerId(Uuid::from_bytes(bytes));
    }
    s.insert_customers(&all).await.unwrap();
    let expected = sorted(ids(&all));

    let mut streamed = Vec::new();
    let mut after = None;
    loop {
        let chunk = s.customers_after(t.id, after, 3).await.unwrap();
        assert!(chunk.len() <= 3);
        if chunk.is_empty() {
            break;
        }
        after = Some(chunk.last().unwrap().id);
        streamed.extend(chunk);
    }
    assert_eq!(ids(&streamed), expected);
    // Full records, not just ids.
    for c in &all {
        assert!(streamed.contains(c));
    }
    assert_eq!(s.count_customers(t.id).await.unwrap(), 7);
    assert_eq!(
        ids(&s
            .customers_after(t.id, Some(expected[5]), 10)
            .await
            .unwrap()),
        vec![expected[6]]
    );
}

async fn uniqueness_of_phone_and_id(s: &dyn Storage) {
    let a = tenant(s, "uniq-a").await;
    let b = tenant(s, "uniq-b").await;
    let first = add(s, a.id, "甲", Some("13800138000")).await;

    let same_phone = build(a.id, named("乙", Some("138 0013 8000")), now());
    assert_conflict(
        s.insert_customers(std::slice::from_ref(&same_phone)).await,
        "phone",
    );
    assert_eq!(s.count_customers(a.id).await.unwrap(), 1);
    assert_eq!(s.customer(a.id, same_phone.id).await.unwrap(), None);

    // A batch with one clash inserts nothing.
    let ok = build(a.id, named("丙", Some("13900139000")), now());
    let batch = vec![ok.clone(), same_phone.clone()];
    assert_conflict(s.insert_customers(&batch).await, "phone");
    assert_eq!(s.customer(a.id, ok.id).await.unwrap(), None);
    assert_eq!(s.count_customers(a.id).await.unwrap(), 1);
    // Also when the clash is inside the batch itself.
    let twin1 = build(a.id, named("丁", Some("13700137000")), now());
    let twin2 = build(a.id, named("戊", Some("13700137000")), now());
    assert_conflict(s.insert_customers(&[twin1.clone(), twin2]).await, "phone");
    assert_eq!(s.customer(a.id, twin1.id).await.unwrap(), None);
    // Also in a batch larger than one multi-row INSERT.
    let mut big: Vec<Customer> = (0..600)
        .map(|i| {
            build(
                a.id,
                named(&format!("批量{i}"), Some(&format!("1360000{i:04}"))),
                now(),
            )
        })
        .collect();
    big.push(build(a.id, named("冲突", Some("13800138000")), now()));
    assert_conflict(s.insert_customers(&big).await, "phone");
    assert_eq!(s.count_customers(a.id).await.unwrap(), 1);
    big.pop();
    s.insert_customers(&big).await.unwrap();
    assert_eq!(s.count_customers(a.id).await.unwrap(), 601);

    // Customers without a phone do not clash with one another.
    add(s, a.id, "无电话1", None).await;
    add(s, a.id, "无电话2", None).await;

    // The same phone in another tenant is another customer.
    let other = add(s, b.id, "甲", Some("13800138000")).await;
    assert_eq!(
        s.customer_by_phone(b.id, "13800138000")
            .await
            .unwrap()
            .map(|c| c.id),
        Some(other.id)
    );
    assert_eq!(
        s.customer_by_phone(a.id, "13800138000")
            .await
            .unwrap()
            .map(|c| c.id),
        Some(first.id)
    );

    // The same ID document.
    let passport = |name: &str, phone: Option<&str>| CustomerInput {
        id_document_kind: Some("passport".into()),
        id_number: Some("E12345678".into()),
        ..named(name, phone)
    };
    let holder = build(a.id, passport("护照一", None), now());
    s.insert_customers(std::slice::from_ref(&holder))
        .await
        .unwrap();
    let again = build(a.id, passport("护照二", None), now());
    assert_conflict(
        s.insert_customers(std::slice::from_ref(&again)).await,
        "id_number",
    );
    assert_eq!(s.customer(a.id, again.id).await.unwrap(), None);
    let elsewhere = build(b.id, passport("护照二", None), now());
    s.insert_customers(&[elsewhere]).await.unwrap();

    // The same customer id twice is a conflict too, never an overwrite.
    let mut copy = build(a.id, named("副本", None), now());
    copy.id = first.id;
    assert_conflict(s.insert_customers(&[copy]).await, "record");
    assert_eq!(
        s.customer(a.id, first.id).await.unwrap(),
        Some(first.clone())
    );

    // An update cannot take another customer's phone: nothing changes, no event.
    let mut edited = ok.clone();
    s.insert_customers(std::slice::from_ref(&ok)).await.unwrap();
    edited.profile.phone = first.profile.phone.clone();
    let e = event(a.id, ok.id, now(), "profile_updated");
    assert_conflict(s.update_customer(&edited, &e).await, "phone");
    assert_eq!(s.customer(a.id, ok.id).await.unwrap(), Some(ok.clone()));
    assert_eq!(s.timeline(a.id, ok.id, None, 10).await.unwrap(), vec![]);
}

async fn tenant_isolation(s: &dyn Storage) {
    let a = tenant(s, "iso-a").await;
    let b = tenant(s, "iso-b").await;
    // Tenant A gets one of everything.
    let st = store(s, a.id, "main").await;
    let who = staff(s, a.id, "owner").await;
    let session = Session {
        tenant_id: a.id,
        token_hash: "e".repeat(64),
        staff_id: who.id,
        kind: "session".into(),
        created_at: now(),
        expires_at: now() + Duration::hours(1),
        store_id: None,
    };
    s.create_session(&session).await.unwrap();
    let full = full_customer(s, a.id).await;
    s.insert_customers(std::slice::from_ref(&full))
        .await
        .unwrap();
    let hash = full.profile.id_document.as_ref().unwrap().hash.clone();
    let twin = build(
        a.id,
        CustomerInput {
            name: Some("张伟".into()),
            birthday: Some("1988-05-17".into()),
            email: Some("zhang.wei@example.com".into()),
            ..Default::default()
        },
        now(),
    );
    s.insert_customers(std::slice::from_ref(&twin))
        .await
        .unwrap();
    let cd = card(a.id, "900000000000001", Some(full.id), now());
    s.insert_cards(std::slice::from_ref(&cd)).await.unwrap();
    s.add_timeline_event(&event(a.id, full.id, now(), "visit"))
        .await
        .unwrap();
    let cat = MenuCategory {
        tenant_id: a.id,
        id: new_id(),
        name: "热菜".into(),
        name_en: "Hot dishes".into(),
        sort_order: 1,
    };
    let item = MenuItem {
        tenant_id: a.id,
        id: MenuItemId(new_id()),
        category_id: cat.id,
        name: "宫保鸡丁".into(),
        name_en: "Kung Pao chicken".into(),
        price: Money::from_fen(4800),
        joins_discounts: true,
        active: true,
    };
    s.insert_menu(std::slice::from_ref(&cat), std::slice::from_ref(&item))
        .await
        .unwrap();

    // Sanity: tenant A sees its data.
    assert_eq!(s.count_customers(a.id).await.unwrap(), 4);
    assert_eq!(s.duplicate_groups(a.id, 10).await.unwrap().len(), 2);
    assert_eq!(s.timeline(a.id, full.id, None, 10).await.unwrap().len(), 1);

    // Tenant B, asking with A's keys, sees nothing.
    let t = b.id;
    assert_eq!(s.list_stores(t).await.unwrap(), vec![]);
    assert_eq!(s.staff(t, who.id).await.unwrap(), None);
    assert_eq!(s.staff_by_username(t, "owner").await.unwrap(), None);
    assert_eq!(s.session(t, &session.token_hash).await.unwrap(), None);
    assert_eq!(s.customer(t, full.id).await.unwrap(), None);
    assert_eq!(s.customer_by_phone(t, "13800138000").await.unwrap(), None);
    assert_eq!(s.customer_by_id_hash(t, &hash).await.unwrap(), None);
    assert_eq!(
        s.customer_by_card_number(t, &cd.number).await.unwrap(),
        None
    );
    assert_eq!(
        s.phones_in_use(t, &["13800138000".into()]).await.unwrap(),
        vec![]
    );
    assert_eq!(
        s.id_hashes_in_use(t, std::slice::from_ref(&hash))
            .await
            .unwrap(),
        vec![]
    );
    let everything = CustomerFilter {
        include_merged: true,
        ..Default::default()
    };
    assert_eq!(list(s, t, everything).await, vec![]);
    let by_name = CustomerFilter {
        name: Some("张".into()),
        ..Default::default()
    };
    assert_eq!(list(s, t, by_name).await, vec![]);
    assert_eq!(
        s.customers_by_name_prefix(t, "张", 10).await.unwrap(),
        vec![]
    );
    assert_eq!(
        s.customers_by_name_prefix(t, "zw", 10).await.unwrap(),
        vec![]
    );
    assert_eq!(s.customers_after(t, None, 10).await.unwrap(), vec![]);
    assert_eq!(s.count_customers(t).await.unwrap(), 0);
    assert!(s.duplicate_groups(t, 10).await.unwrap().is_empty());
    assert_eq!(s.timeline(t, full.id, None, 10).await.unwrap(), vec![]);
    assert_eq!(s.cards_of_customer(t, full.id).await.unwrap(), vec![]);
    assert_eq!(s.menu(t).await.unwrap(), (vec![], vec![]));

    // Nor can it write to A's records.
    let mut hijack = full.clone();
    hijack.tenant_id = t;
    hijack.profile.name = "篡改".into();
    assert!(matches!(
        s.update_customer(&hijack, &event(t, full.id, now(), "profile_updated"))
            .await,
        Err(StoreError::NotFound)
    ));
    let mut b_survivor = build(t, named("乙方", None), now());
    s.insert_customers(std::slice::from_ref(&b_survivor))
        .await
        .unwrap();
    b_survivor.updated_at = now();
    assert!(matches!(
        s.merge_customers(
            &b_survivor,
            twin.id,
            &event(t, b_survivor.id, now(), "merged"),
            &event(t, twin.id, now(), "merged_away"),
        )
        .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(s.customer(a.id, full.id).await.unwrap(), Some(full.clone()));
    assert_eq!(s.customer(a.id, twin.id).await.unwrap(), Some(twin.clone()));
    // B's data does not leak into A's reads either.
    assert_eq!(s.count_customers(a.id).await.unwrap(), 4);
    assert!(s.list_stores(a.id).await.unwrap().contains(&st));
    assert_eq!(s.list_stores(a.id).await.unwrap().len(), 2);
}

async fn update_customer_is_atomic(s: &dyn Storage) {
    let t = tenant(s, "upd").await;
    let original = add(s, t.id, "孙七", Some("13500135000")).await;

    let mut changed = original.clone();
    changed.profile.name = "孙七七".into();
    changed.profile.phone = None;
    changed.profile.tags = vec!["新标签".into()];
    changed.profile.email = Some("sun@example.com".into());
    changed.level = Some("silver".into());
    changed.updated_at = now() + Duration::seconds(1);
    let e = event(t.id, original.id, changed.updated_at, "profile_updated");
    s.update_customer(&changed, &e).await.unwrap();
    assert_eq!(
        s.customer(t.id, original.id).await.unwrap(),
        Some(changed.clone())
    );
    assert_eq!(
        s.timeline(t.id, original.id, None, 10).await.unwrap(),
        vec![e.clone()]
    );
    // New search keys: found by the new name, phone freed.
    assert_eq!(
        ids(&s
            .customers_by_name_prefix(t.id, "sunqiqi", 5)
            .await
            .unwrap()),
        vec![original.id]
    );
    assert_eq!(
        s.customer_by_phone(t.id, "13500135000").await.unwrap(),
        None
    );
    add(s, t.id, "新人", Some("13500135000")).await;

    // The creation time is not rewritten by an update.
    let mut older = changed.clone();
    older.created_at = at(2001, 1, 1, 0, 0, 0);
    older.profile.notes = Some("备注".into());
    let e2 = event(
        t.id,
        original.id,
        now() + Duration::seconds(2),
        "profile_updated",
    );
    s.update_customer(&older, &e2).await.unwrap();
    let stored = s.customer(t.id, original.id).await.unwrap().unwrap();
    assert_eq!(stored.created_at, original.created_at);
    assert_eq!(stored.profile.notes.as_deref(), Some("备注"));

    // If the event cannot be written, the profile change is rolled back.
    let mut doomed = stored.clone();
    doomed.profile.name = "不该保存".into();
    let reused = TimelineEvent {
        summary: "same id again".into(),
        ..e.clone()
    };
    assert!(s.update_customer(&doomed, &reused).await.is_err());
    assert_eq!(s.customer(t.id, original.id).await.unwrap(), Some(stored));
    assert_eq!(
        s.timeline(t.id, original.id, None, 10).await.unwrap().len(),
        2
    );

    // A missing customer.
    let ghost = build(t.id, named("不存在", None), now());
    assert!(matches!(
        s.update_customer(&ghost, &event(t.id, ghost.id, now(), "profile_updated"))
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(s.customer(t.id, ghost.id).await.unwrap(), None);
}

async fn merge_moves_everything(s: &dyn Storage) {
    let t = tenant(s, "merge").await;
    let base = now() - Duration::days(10);
    let survivor = build(t.id, named("周八", None), base);
    let dup = build(
        t.id,
        CustomerInput {
            customer_type: Some("organization".into()),
            email: Some("zhou@example.com".into()),
            tags: vec!["VIP".into()],
            id_document_kind: Some("passport".into()),
            id_number: Some("G99887766".into()),
            ..named("周八", Some("13300133000"))
        },
        base + Duration::seconds(1),
    );
    s.insert_customers(&[survivor.clone(), dup.clone()])
        .await
        .unwrap();
    // What the duplicate owns: events, cards, organization members, referrals, and a
    // record merged into it earlier.
    let member = |n: &str| {
        let mut input = named(n, None);
        input.organization_id = Some(dup.id.to_string());
        build(t.id, input, base + Duration::seconds(2))
    };
    let (m1, m2) = (member("员工一"), member("员工二"));
    let mut referred = named("被介绍人", None);
    referred.referred_by = Some(dup.id.to_string());
    let referred = build(t.id, referred, base + Duration::seconds(3));
    let mut earlier = build(t.id, named("更早的重复", None), base + Duration::seconds(4));
    earlier.merged_into = Some(dup.id);
    let bystander = build(t.id, named("旁观者", None), base + Duration::seconds(5));
    s.insert_customers(&[
        m1.clone(),
        m2.clone(),
        referred.clone(),
        earlier.clone(),
        bystander.clone(),
    ])
    .await
    .unwrap();
    let dup_events: Vec<TimelineEvent> = (0..3)
        .map(|i| event(t.id, dup.id, base + Duration::hours(i), "visit"))
        .collect();
    for e in &dup_events {
        s.add_timeline_event(e).await.unwrap();
    }
    let own_event = event(t.id, survivor.id, base + Duration::minutes(30), "visit");
    s.add_timeline_event(&own_event).await.unwrap();
    s.add_timeline_event(&event(t.id, bystander.id, base, "visit"))
        .await
        .unwrap();
    let cards = vec![
        card(t.id, "700000000000001", Some(dup.id), base),
        card(
            t.id,
            "700000000000002",
            Some(dup.id),
            base + Duration::seconds(1),
        ),
        card(
            t.id,
            "700000000000003",
            Some(survivor.id),
            base + Duration::seconds(2),
        ),
    ];
    s.insert_cards(&cards).await.unwrap();

    // The caller absorbs the duplicate's profile, taking over its phone and ID.
    let mut merged = survivor.clone();
    merged.profile.absorb(&dup.profile);
    merged.updated_at = now();
    assert_eq!(merged.profile.phone, dup.profile.phone);
    let e_survivor = event(t.id, survivor.id, now(), "merged");
    let e_dup = event(t.id, dup.id, now(), "merged_away");
    let counts = s
        .merge_customers(&merged, dup.id, &e_survivor, &e_dup)
        .await
        .unwrap();
    assert_eq!(
        counts,
        MergeCounts {
            timeline_events: 3,
            cards: 2,
            members: 2,
            referrals: 1,
        }
    );

    // The survivor: the absorbed profile, the phone and ID, the cards and events.
    assert_eq!(
        s.customer(t.id, survivor.id).await.unwrap(),
        Some(merged.clone())
    );
    assert_eq!(
        s.customer_by_phone(t.id, "13300133000")
            .await
            .unwrap()
            .map(|c| c.id),
        Some(survivor.id)
    );
    let hash = dup.profile.id_document.as_ref().unwrap().hash.clone();
    assert_eq!(
        s.customer_by_id_hash(t.id, &hash)
            .await
            .unwrap()
            .map(|c| c.id),
        Some(survivor.id)
    );
    let survivor_cards = s.cards_of_customer(t.id, survivor.id).await.unwrap();
    assert_eq!(survivor_cards.len(), 3);
    assert!(
        survivor_cards
            .iter()
            .all(|c| c.customer_id == Some(survivor.id))
    );
    assert_eq!(
        s.customer_by_card_number(t.id, &cards[0].number)
            .await
            .unwrap()
            .map(|c| c.id),
        Some(survivor.id)
    );
    let timeline = s.timeline(t.id, survivor.id, None, 50).await.unwrap();
    let mut expected: Vec<TimelineEvent> = dup_events
        .iter()
        .map(|e| TimelineEvent {
            customer_id: survivor.id,
            ..e.clone()
        })
        .collect();
    expected.push(own_event.clone());
    expected.push(e_survivor.clone());
    expected.sort_by(|a, b| b.occurred_at.cmp(&a.occurred_at).then(b.id.0.cmp(&a.id.0)));
    assert_eq!(timeline, expected);

    // The duplicate: redirects only, keys freed, one event left.
    let gone = s.customer(t.id, dup.id).await.unwrap().unwrap();
    assert_eq!(gone.merged_into, Some(survivor.id));
    assert_eq!(gone.profile.phone, None);
    assert_eq!(gone.profile.id_document, None);
    assert_eq!(gone.profile.name, dup.profile.name);
    assert_eq!(gone.updated_at, merged.updated_at);
    assert_eq!(s.cards_of_customer(t.id, dup.id).await.unwrap(), vec![]);
    assert_eq!(
        s.timeline(t.id, dup.id, None, 10).await.unwrap(),
        vec![e_dup.clone()]
    );

    // Members, referrals and earlier merges now point at the survivor.
    for m in [&m1, &m2] {
        let m = s.customer(t.id, m.id).await.unwrap().unwrap();
        assert_eq!(m.profile.organization_id, Some(survivor.id));
    }
    let r = s.customer(t.id, referred.id).await.unwrap().unwrap();
    assert_eq!(r.profile.referred_by, Some(survivor.id));
    let e = s.customer(t.id, earlier.id).await.unwrap().unwrap();
    assert_eq!(e.merged_into, Some(survivor.id));
    assert_eq!(
        s.customer(t.id, bystander.id).await.unwrap(),
        Some(bystander.clone())
    );
    assert_eq!(
        s.timeline(t.id, bystander.id, None, 10)
            .await
            .unwrap()
            .len(),
        1
    );

    // Merged records are hidden from lists, look-ups and counts unless asked for.
    assert_eq!(s.count_customers(t.id).await.unwrap(), 5);
    let visible = list(s, t.id, CustomerFilter::default()).await;
    assert!(!ids(&visible).contains(&dup.id) && !ids(&visible).contains(&earlier.id));
    assert_eq!(visible.len(), 5);
    let with_merged = list(
        s,
        t.id,
        CustomerFilter {
            include_merged: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(with_merged.len(), 7);
    assert_eq!(
        ids(&s.customers_by_name_prefix(t.id, "周八", 10).await.unwrap()),
        vec![survivor.id]
    );
    assert!(!ids(&s.customers_after(t.id, None, 100).await.unwrap()).contains(&dup.id));

    // Merging it again, or merging a customer that does not exist: NotFound, no change.
    let again = s
        .merge_customers(
            &merged,
            dup.id,
            &event(t.id, survivor.id, now(), "merged"),
            &event(t.id, dup.id, now(), "merged_away"),
        )
        .await;
    assert!(matches!(again, Err(StoreError::NotFound)), "{again:?}");
    let nobody = s
        .merge_customers(
            &merged,
            CustomerId(new_id()),
            &event(t.id, survivor.id, now(), "merged"),
            &event(t.id, survivor.id, now(), "merged_away"),
        )
        .await;
    assert!(matches!(nobody, Err(StoreError::NotFound)), "{nobody:?}");
    assert_eq!(
        s.timeline(t.id, survivor.id, None, 50).await.unwrap(),
        expected
    );
    assert_eq!(
        s.timeline(t.id, dup.id, None, 10).await.unwrap(),
        vec![e_dup]
    );
}

async fn merge_frees_keys_the_survivor_does_not_take(s: &dyn Storage) {
    let t = tenant(s, "merge2").await;
    let survivor = add(s, t.id, "吴九", Some("13100131000")).await;
    let dup = add(s, t.id, "吴九", Some("13200132000")).await;
    let mut merged = survivor.clone();
    merged.profile.absorb(&dup.profile);
    merged.updated_at = now();
    assert_eq!(merged.profile.phone, survivor.profile.phone);
    let counts = s
        .merge_customers(
            &merged,
            dup.id,
            &event(t.id, survivor.id, now(), "merged"),
            &event(t.id, dup.id, now(), "merged_away"),
        )
        .await
        .unwrap();
    assert_eq!(counts, MergeCounts::default());
    assert_eq!(
        s.customer_by_phone(t.id, "13200132000").await.unwrap(),
        None
    );
    assert_eq!(
        s.phones_in_use(t.id, &["13200132000".into()])
            .await
            .unwrap(),
        vec![]
    );
    // The freed phone can be given to someone new.
    let newcomer = add(s, t.id, "新客", Some("13200132000")).await;
    assert_eq!(
        s.customer_by_phone(t.id, "13200132000")
            .await
            .unwrap()
            .map(|c| c.id),
        Some(newcomer.id)
    );
    assert_eq!(
        s.customer(t.id, survivor.id).await.unwrap(),
        Some(merged.clone())
    );
}

async fn duplicate_groups(s: &dyn Storage) {
    let t = tenant(s, "dups").await;
    let person = |name: &str, birthday: Option<&str>, email: Option<&str>| CustomerInput {
        name: Some(name.into()),
        birthday: birthday.map(Into::into),
        email: email.map(Into::into),
        ..Default::default()
    };
    let list = vec![
        build(t.id, person("王芳", Some("1990-01-01"), None), now()),
        build(t.id, person("王芳", Some("1990-01-01"), None), now()),
        build(t.id, person("王芳", Some("1990-01-01"), None), now()),
        build(t.id, person("王芳", Some("1991-01-01"), None), now()),
        build(t.id, person("王芳", None, None), now()),
        build(t.id, person("王芳", None, None), now()),
        build(
            t.id,
            person("刘洋", Some("1990-01-01"), Some("Liu.Yang@Example.COM")),
            now(),
        ),
        build(
            t.id,
            person("Yang Liu", None, Some("liu.yang@example.com")),
            now(),
        ),
        build(
            t.id,
            person("陈晨", Some("1995-07-07"), Some("chen@example.com")),
            now(),
        ),
        build(
            t.id,
            person("陈晨", Some("1995-07-07"), Some("other@example.com")),
            now(),
        ),
        build(
            t.id,
            person("孤单", Some("1995-07-07"), Some("alone@example.com")),
            now(),
        ),
    ];
    s.insert_customers(&list).await.unwrap();
    let groups = s.duplicate_groups(t.id, 100).await.unwrap();
    let mut got: Vec<(String, Vec<CustomerId>)> = groups
        .iter()
        .map(|g| (g.reason.clone(), g.customer_ids.clone()))
        .collect();
    got.sort();
    // Each group lists its ids in order.
    for (_, group) in &got {
        assert_eq!(group, &sorted(group.clone()));
    }
    let mut expected = vec![
        ("same_name_birthday".to_string(), sorted(ids(&list[0..3]))),
        ("same_name_birthday".to_string(), sorted(ids(&list[8..10]))),
        ("same_email".to_string(), sorted(ids(&list[6..8]))),
    ];
    expected.sort();
    assert_eq!(got, expected);

    // The limit applies to groups of each kind.
    let limited = s.duplicate_groups(t.id, 1).await.unwrap();
    assert_eq!(
        limited
            .iter()
            .filter(|g| g.reason == "same_name_birthday")
            .count(),
        1
    );
    assert_eq!(
        limited.iter().filter(|g| g.reason == "same_email").count(),
        1
    );

    // Merged records are no longer duplicates.
    let mut keep = list[8].clone();
    keep.updated_at = now();
    s.merge_customers(
        &keep,
        list[9].id,
        &event(t.id, keep.id, now(), "merged"),
        &event(t.id, list[9].id, now(), "merged_away"),
    )
    .await
    .unwrap();
    let after = s.duplicate_groups(t.id, 100).await.unwrap();
    assert_eq!(after.len(), 2);
    assert!(after.iter().all(|g| !g.customer_ids.contains(&list[8].id)));
}

async fn timeline_ordering_and_cursor(s: &dyn Storage) {
    let t = tenant(s, "tl").await;
    let st = store(s, t.id, "tl01").await;
    let who = staff(s, t.id, "waiter").await;
    let c = add(s, t.id, "郑十", None).await;
    let other = add(s, t.id, "别人", None).await;
    let base = at(2025, 6, 1, 12, 0, 0);
    // Sub-second times, across a second, a day and a year boundary.
    let times = [
        base,
        base + Duration::microseconds(100),
        base + Duration::milliseconds(900),
        base + Duration::seconds(1),
        base + Duration::days(1) + Duration::microseconds(999_999),
        at(2026, 1, 1, 0, 0, 0),
    ];
    let mut events: Vec<TimelineEvent> = times
        .iter()
        .map(|&when| {
            let mut e = event(t.id, c.id, when, "visit");
            e.store_id = Some(st.id);
            e.staff_id = Some(who.id);
            e
        })
        .collect();
    // Two events at the same instant: the id decides.
    events.push(event(t.id, c.id, times[3], "top_up"));
    // Inserted out of order.
    for i in [3, 0, 5, 1, 6, 4, 2] {
        s.add_timeline_event(&events[i]).await.unwrap();
    }
    s.add_timeline_event(&event(t.id, other.id, times[2], "visit"))
        .await
        .unwrap();

    let mut newest_first = events.clone();
    newest_first.sort_by(|a, b| b.occurred_at.cmp(&a.occurred_at).then(b.id.0.cmp(&a.id.0)));
    assert_eq!(
        s.timeline(t.id, c.id, None, 100).await.unwrap(),
        newest_first
    );
    assert_eq!(
        s.timeline(t.id, c.id, None, 2).await.unwrap(),
        newest_first[0..2]
    );
    // Strictly before the cursor.
    let before = |when: DateTime<Utc>| -> Vec<TimelineEvent> {
        newest_first
            .iter()
            .filter(|e| e.occurred_at < when)
            .cloned()
            .collect()
    };
    for &cursor in &times {
        assert_eq!(
            s.timeline(t.id, c.id, Some((cursor, None)), 100)
                .await
                .unwrap(),
            before(cursor),
            "before {cursor}"
        );
    }
    assert_eq!(
        s.timeline(t.id, c.id, Some((times[4], None)), 2)
            .await
            .unwrap(),
        before(times[4])[0..2]
    );
    // After an event: the rest of its moment (by id, descending), then earlier ones.
    for (i, e) in newest_first.iter().enumerate() {
        assert_eq!(
            s.timeline(t.id, c.id, Some((e.occurred_at, Some(e.id.0))), 100)
                .await
                .unwrap(),
            newest_first[i + 1..],
            "after event {i}"
        );
    }
    assert_eq!(
        s.timeline(t.id, c.id, Some((base, None)), 10)
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(s.timeline(t.id, other.id, None, 10).await.unwrap().len(), 1);
    // An event for a customer that does not exist is refused.
    assert!(matches!(
        s.add_timeline_event(&event(t.id, CustomerId(new_id()), base, "visit"))
            .await,
        Err(StoreError::MissingReference(_))
    ));
}

async fn menu_round_trip(s: &dyn Storage) {
    let t = tenant(s, "menu").await;
    let cat = |name: &str, en: &str, order: i32| MenuCategory {
        tenant_id: t.id,
        id: new_id(),
        name: name.into(),
        name_en: en.into(),
        sort_order: order,
    };
    let cats = vec![
        cat("热菜", "Hot dishes", 2),
        cat("凉菜", "Cold dishes", 1),
        cat("主食", "Staples", 3),
    ];
    let item = |c: &MenuCategory, name: &str, fen: i64, joins: bool, active: bool| MenuItem {
        tenant_id: t.id,
        id: MenuItemId(new_id()),
        category_id: c.id,
        name: name.into(),
        name_en: format!("{name} (en)"),
        price: Money::from_fen(fen),
        joins_discounts: joins,
        active,
    };
    let items = vec![
        item(&cats[0], "宫保鸡丁", 4800, true, true),
        item(&cats[1], "拍黄瓜", 1800, false, true),
        item(&cats[2], "扬州炒饭", 2850, true, false),
        item(&cats[0], "东坡肉", 0, true, true),
        item(&cats[0], "龙虾", 99_999_900, false, true),
    ];
    s.insert_menu(&cats, &items).await.unwrap();
    let (got_cats, got_items) = s.menu(t.id).await.unwrap();
    assert_eq!(
        got_cats,
        vec![cats[1].clone(), cats[0].clone(), cats[2].clone()]
    );
    let mut by_name = items.clone();
    by_name.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(got_items, by_name);

    // An item in a category that does not exist: refused, and nothing of the call kept.
    let extra_cat = cat("饮品", "Drinks", 4);
    let ghost = MenuCategory {
        id: new_id(),
        ..extra_cat.clone()
    };
    let stray = item(&ghost, "可乐", 500, false, true);
    assert!(matches!(
        s.insert_menu(std::slice::from_ref(&extra_cat), &[stray])
            .await,
        Err(StoreError::MissingReference(_))
    ));
    assert_eq!(s.menu(t.id).await.unwrap().0.len(), 3);
    // A negative price is refused by the database.
    let negative = item(&cats[0], "倒贴", -1, false, true);
    assert!(s.insert_menu(&[], &[negative]).await.is_err());
    assert_eq!(s.menu(t.id).await.unwrap().1.len(), 5);
}

async fn like_wildcards_are_literal(s: &dyn Storage) {
    let t = tenant(s, "like").await;
    let pct = add(s, t.id, "100%满意", None).await;
    let hundred = add(s, t.id, "100分", None).await;
    let under = add(s, t.id, "a_b", None).await;
    let axb = add(s, t.id, "axb", None).await;
    let slash = add(s, t.id, "a\\b", None).await;
    let tagged = |name: &str, tag: &str| {
        let mut input = named(name, None);
        input.tags = vec![tag.into()];
        build(t.id, input, now())
    };
    let off = tagged("标签甲", "50%off");
    let xoff = tagged("标签乙", "50xoff");
    s.insert_customers(&[off.clone(), xoff.clone()])
        .await
        .unwrap();
    let p1 = add(s, t.id, "电话一", Some("13812345678")).await;

    let by_name = |n: &str| CustomerFilter {
        name: Some(n.into()),
        ..Default::default()
    };
    let found = |v: Vec<Customer>| sorted(ids(&v));
    assert_eq!(found(list(s, t.id, by_name("100%")).await), vec![pct.id]);
    assert_eq!(found(list(s, t.id, by_name("%")).await), vec![pct.id]);
    assert_eq!(found(list(s, t.id, by_name("a_b")).await), vec![under.id]);
    assert_eq!(found(list(s, t.id, by_name("_")).await), vec![under.id]);
    assert_eq!(found(list(s, t.id, by_name("a\\b")).await), vec![slash.id]);
    assert_eq!(found(list(s, t.id, by_name("\\")).await), vec![slash.id]);
    assert_eq!(
        found(list(s, t.id, by_name("100")).await),
        sorted(vec![pct.id, hundred.id])
    );
    assert_eq!(found(list(s, t.id, by_name("axb")).await), vec![axb.id]);

    let by_phone = |p: &str| CustomerFilter {
        phone_prefix: Some(p.into()),
        ..Default::default()
    };
    assert_eq!(found(list(s, t.id, by_phone("138")).await), vec![p1.id]);
    assert_eq!(found(list(s, t.id, by_phone("%")).await), vec![]);
    assert_eq!(found(list(s, t.id, by_phone("13_")).await), vec![]);
    assert_eq!(found(list(s, t.id, by_phone("_")).await), vec![]);

    let by_tag = |tag: &str| CustomerFilter {
        tag: Some(tag.into()),
        ..Default::default()
    };
    assert_eq!(found(list(s, t.id, by_tag("50%off")).await), vec![off.id]);
    assert_eq!(found(list(s, t.id, by_tag("50_off")).await), vec![]);
    assert_eq!(found(list(s, t.id, by_tag("%")).await), vec![]);

    // The till look-up by prefix.
    let prefix = |p: &'static str| async move {
        found(s.customers_by_name_prefix(t.id, p, 10).await.unwrap())
    };
    assert_eq!(prefix("100%").await, vec![pct.id]);
    assert_eq!(prefix("%").await, vec![]);
    assert_eq!(prefix("a_").await, vec![under.id]);
    assert_eq!(prefix("_").await, vec![]);
    // Names appear in results exactly as stored.
    assert_eq!(
        sorted_names(&list(s, t.id, by_name("a")).await),
        vec!["a\\b", "a_b", "axb"]
    );
}
