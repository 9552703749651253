//! Roles, permissions and the audit log, end to end.
//!
//! - `route_matrix`: every route of the OpenAPI document, called by a staff member of
//!   every role, against the permission matrix (`patron_domain::permissions::allows`):
//!   allowed → not refused for lack of a permission; refused → 403 naming the permission
//!   and nothing changed. A route missing from the expectation table fails the test.
//! - `tenant_isolation_walk`: every route with tenant A's owner against tenant B's ids:
//!   404/403/422, nothing of B changed, nothing of B in any answer.
//! - Login lockout, CSRF, API tokens (scope, intersection with the role, revocation),
//!   approvals (required, recorded, limits) and audit entries for each kind of change.

use crate::both_backends;
use crate::support::{TestApp, decode};
use patron_domain::ids::{StaffId, StoreId};
use patron_domain::org::{Role, Store};
use patron_domain::page::PageRequest;
use patron_domain::permissions::{Permission, allows};
use patron_store::audit::AuditFilter;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};

both_backends!(
    route_matrix,
    tenant_isolation_walk,
    login_lockout_is_audited,
    csrf_protects_cookie_sessions,
    api_tokens_scope_and_revocation,
    approvals_are_required_and_recorded,
    audit_entries_for_each_kind,
    masking_and_staff_admin,
);

const ROLES: [Role; 6] = [
    Role::Salesperson,
    Role::ServiceAgent,
    Role::Marketer,
    Role::Cashier,
    Role::Manager,
    Role::Owner,
];
const STAFF_PASSWORD: &str = "staff password 1";

fn key() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Today in the tenants' default time zone (UTC+8).
fn today() -> String {
    (chrono::Utc::now() + chrono::Duration::hours(8))
        .date_naive()
        .to_string()
}

async fn call(
    t: &TestApp,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut rb = t.client.request(method, format!("{}{path}", t.base));
    if let Some(tok) = token {
        rb = rb.bearer_auth(tok);
    }
    if let Some(b) = body {
        rb = rb.json(b);
    }
    decode(rb.send().await.unwrap()).await
}

async fn ok(t: &TestApp, token: &str, method: Method, path: &str, body: Value) -> Value {
    let (s, v) = call(t, Some(token), method, path, Some(&body)).await;
    assert!(s.is_success(), "{path}: {s} {v}");
    v
}

fn id(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_string()
}

async fn login_as(
    t: &TestApp,
    tenant: &str,
    username: &str,
    password: &str,
) -> (StatusCode, Value) {
    call(
        t,
        None,
        Method::POST,
        "/auth/login",
        Some(
            &json!({"tenant": tenant, "username": username, "password": password, "store": "main"}),
        ),
    )
    .await
}

async fn token_of(t: &TestApp, tenant: &str, username: &str, password: &str) -> String {
    let (s, v) = login_as(t, tenant, username, password).await;
    assert_eq!(s, StatusCode::OK, "login {username}: {v}");
    v["token"].as_str().unwrap().to_string()
}

/// Creates a staff member through the API (as `owner`), at the tenant's main store.
async fn add_staff(t: &TestApp, owner: &str, username: &str, role: Role) -> String {
    let (_, stores) = call(t, Some(owner), Method::GET, "/stores", None).await;
    let main = stores
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["code"] == "main")
        .unwrap()["id"]
        .clone();
    let v = ok(
        t,
        owner,
        Method::POST,
        "/staff",
        json!({"username": username, "display_name": format!("{username} 名"), "password": STAFF_PASSWORD,
               "role": role, "store_id": main}),
    )
    .await;
    id(&v)
}

/// Records every route may need, made by the tenant's owner.
#[derive(Debug, Clone)]
struct Fx {
    store: String,
    customer: String,
    phone: String,
    survivor: String,
    duplicate: String,
    org: String,
    card: String,
    card2: String,
    card_freeze: String,
    card_close: String,
    card_replace: String,
    card_number: String,
    txn: String,
    category: String,
    item: String,
    template: String,
    rule: String,
    coupon: String,
    gift: String,
    checkout: String,
    shift: String,
    dummy_staff: String,
    api_token: String,
    settings: Value,
}

impl Fx {
    /// Strings that identify this tenant's records: none may show up in another
    /// tenant's answers.
    fn markers(&self) -> Vec<String> {
        vec![
            self.customer.clone(),
            self.phone.clone(),
            self.org.clone(),
            self.card.clone(),
            self.card_number.clone(),
            self.txn.clone(),
            self.item.clone(),
            self.template.clone(),
            self.coupon.clone(),
            self.gift.clone(),
            self.checkout.clone(),
            self.shift.clone(),
            self.dummy_staff.clone(),
        ]
    }
}

async fn fixture(t: &TestApp, tenant: &str, owner: &str, tag: u32) -> Fx {
    let phone = format!("1390000{tag:04}");
    let person =
        |name: &str, phone: &str| json!({"name": name, "phone": phone, "email": "fx@example.com"});
    let customer = id(&ok(
        t,
        owner,
        Method::POST,
        "/customers",
        person("权限客", &phone),
    )
    .await);
    let survivor = id(&ok(
        t,
        owner,
        Method::POST,
        "/customers",
        person("合并甲", &format!("1370000{tag:04}")),
    )
    .await);
    let duplicate = id(&ok(
        t,
        owner,
        Method::POST,
        "/customers",
        person("合并乙", &format!("1360000{tag:04}")),
    )
    .await);
    let org = id(&ok(
        t,
        owner,
        Method::POST,
        "/customers",
        json!({"name": "权限公司", "customer_type": "organization"}),
    )
    .await);
    let mut cards = Vec::new();
    for _ in 0..5 {
        let c = ok(
            t,
            owner,
            Method::POST,
            "/cards",
            json!({"customer_id": customer, "pin": "246810"}),
        )
        .await;
        cards.push(c);
    }
    let card = id(&cards[0]);
    let card_number = cards[0]["number"].as_str().unwrap().to_string();
    let top = ok(
        t,
        owner,
        Method::POST,
        &format!("/cards/{card}/top-ups"),
        json!({"amount": 100_000, "tender": "cash", "idempotency_key": key()}),
    )
    .await;
    let txn = top["txn_id"].as_str().unwrap().to_string();
    let category = id(&ok(
        t,
        owner,
        Method::POST,
        "/menu/categories",
        json!({"name": "热菜", "name_en": "Hot"}),
    )
    .await);
    let item = id(&ok(
        t,
        owner,
        Method::POST,
        "/menu/items",
        json!({"category_id": category, "name": "红烧肉", "price": 6_800}),
    )
    .await);
    let template = id(&ok(
        t,
        owner,
        Method::POST,
        "/coupon-templates",
        json!({"name": "满100减20", "kind": {"type": "cash", "value": 2_000, "min_spend": 10_000},
               "validity": {"type": "days_after_issue", "days": 30}, "points_price": 10}),
    )
    .await);
    let rule = id(&ok(
        t,
        owner,
        Method::POST,
        "/coupon-rules",
        json!({"template_id": template, "min_spend": 1_000_000}),
    )
    .await);
    let issued = ok(
        t,
        owner,
        Method::POST,
        &format!("/coupon-templates/{template}/issue"),
        json!({"customer_ids": [customer]}),
    )
    .await;
    let coupon = issued[0]["code"].as_str().unwrap().to_string();
    let gift = id(&ok(
        t,
        owner,
        Method::POST,
        "/gifts",
        json!({"name": "桌游券", "points_price": 10}),
    )
    .await);
    let checkout = ok(
        t,
        owner,
        Method::POST,
        "/checkouts",
        json!({"lines": [{"item_id": item, "quantity": 2}], "tenders": [{"method": "cash"}],
               "idempotency_key": key()}),
    )
    .await;
    let checkout = checkout["checkout_id"].as_str().unwrap().to_string();
    let shift = id(&ok(
        t,
        owner,
        Method::POST,
        "/shifts",
        json!({"opening_float": 10_000}),
    )
    .await);
    let dummy_staff = add_staff(t, owner, &format!("dummy{tag}"), Role::Cashier).await;
    let api_token = ok(
        t,
        owner,
        Method::POST,
        "/api-tokens",
        json!({"name": "POS", "scope": ["view_customers"]}),
    )
    .await;
    let api_token = api_token["api_token"]["id"].as_str().unwrap().to_string();
    let (_, stores) = call(t, Some(owner), Method::GET, "/stores", None).await;
    let store = stores[0]["id"].as_str().unwrap().to_string();
    let (_, settings) = call(t, Some(owner), Method::GET, "/settings", None).await;
    let _ = tenant;
    Fx {
        store,
        customer,
        phone,
        survivor,
        duplicate,
        org,
        card,
        card2: id(&cards[1]),
        card_freeze: id(&cards[2]),
        card_close: id(&cards[3]),
        card_replace: id(&cards[4]),
        card_number,
        txn,
        category,
        item,
        template,
        rule,
        coupon,
        gift,
        checkout,
        shift,
        dummy_staff,
        api_token,
        settings,
    }
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Need {
    /// No login.
    Public,
    /// Any logged-in staff member.
    Any,
    /// This permission.
    P(Permission),
}

/// One route: its OpenAPI key, what it needs, and a call with a valid request.
struct Route {
    method: Method,
    /// As in the OpenAPI document, e.g. `/cards/{id}`.
    template: &'static str,
    need: Need,
    /// The concrete path with query.
    path: String,
    body: Option<Value>,
    /// Calls end the session used (logout): use a fresh login.
    fresh_login: bool,
}

fn r(
    method: Method,
    template: &'static str,
    need: Need,
    path: String,
    body: Option<Value>,
) -> Route {
    Route {
        method,
        template,
        need,
        path,
        body,
        fresh_login: false,
    }
}

/// The expectation table: every route of the API with what it needs. A route the
/// OpenAPI document lists and this table does not (or the reverse) fails the tests.
fn routes(fx: &Fx, tenant: &str) -> Vec<Route> {
    use Method as M;
    use Need::*;
    use Permission::*;
    let Fx {
        store,
        customer,
        survivor,
        duplicate,
        org,
        card,
        card2,
        card_freeze,
        card_close,
        card_replace,
        card_number,
        txn,
        category,
        item,
        template,
        rule,
        coupon,
        gift,
        checkout,
        shift,
        dummy_staff,
        api_token,
        settings,
        ..
    } = fx;
    let day = today();
    let month = &day[..7];
    let approval = json!({"username": "nobody", "password": "wrong"});
    let range = "from=2025-01-01&to=2025-01-31";
    let mut v = vec![
        r(M::GET, "/health", Public, "/health".into(), None),
        r(
            M::POST,
            "/auth/login",
            Public,
            "/auth/login".into(),
            Some(
                json!({"tenant": tenant, "username": "owner", "password": "correct horse battery"}),
            ),
        ),
        Route {
            fresh_login: true,
            ..r(M::POST, "/auth/logout", Any, "/auth/logout".into(), None)
        },
        r(M::GET, "/me", Any, "/me".into(), None),
        // Staff, tokens, audit.
        r(M::GET, "/staff", P(ViewStaff), "/staff".into(), None),
        r(
            M::POST,
            "/staff",
            P(ManageStaff),
            "/staff".into(),
            Some(
                json!({"username": format!("new{}", &key()[30..]), "display_name": "新人",
                        "password": STAFF_PASSWORD, "role": "cashier"}),
            ),
        ),
        r(
            M::GET,
            "/staff/{id}",
            P(ViewStaff),
            format!("/staff/{dummy_staff}"),
            None,
        ),
        r(
            M::PATCH,
            "/staff/{id}",
            P(ManageStaff),
            format!("/staff/{dummy_staff}"),
            Some(json!({"display_name": "改名"})),
        ),
        r(
            M::POST,
            "/staff/{id}/password",
            P(ManageStaff),
            format!("/staff/{dummy_staff}/password"),
            Some(json!({"password": "another password"})),
        ),
        r(
            M::GET,
            "/api-tokens",
            P(ManageApiTokens),
            "/api-tokens".into(),
            None,
        ),
        r(
            M::POST,
            "/api-tokens",
            P(ManageApiTokens),
            "/api-tokens".into(),
            Some(json!({"name": "till", "scope": ["view_customers"]})),
        ),
        r(
            M::DELETE,
            "/api-tokens/{id}",
            P(ManageApiTokens),
            format!("/api-tokens/{api_token}"),
            None,
        ),
        r(
            M::GET,
            "/audit",
            P(ViewAudit),
            format!("/audit?customer={customer}"),
            None,
        ),
        // Organisation and settings.
        r(M::GET, "/stores", P(ViewCatalog), "/stores".into(), None),
        r(M::GET, "/menu", P(ViewCatalog), "/menu".into(), None),
        r(M::GET, "/settings", Any, "/settings".into(), None),
        r(
            M::PUT,
            "/settings",
            P(ManageSettings),
            "/settings".into(),
            Some(settings.clone()),
        ),
        r(
            M::GET,
            "/top-up-preview",
            Any,
            "/top-up-preview?amount=10000".into(),
            None,
        ),
        // Menu.
        r(
            M::GET,
            "/menu/categories",
            P(ViewCatalog),
            "/menu/categories".into(),
            None,
        ),
        r(
            M::POST,
            "/menu/categories",
            P(ManageMenu),
            "/menu/categories".into(),
            Some(json!({"name": format!("类{}", &key()[30..])})),
        ),
        r(
            M::PATCH,
            "/menu/categories/{id}",
            P(ManageMenu),
            format!("/menu/categories/{category}"),
            Some(json!({"sort_order": 5})),
        ),
        r(
            M::GET,
            "/menu/items",
            P(ViewCatalog),
            "/menu/items".into(),
            None,
        ),
        r(
            M::POST,
            "/menu/items",
            P(ManageMenu),
            "/menu/items".into(),
            Some(
                json!({"category_id": category, "name": format!("菜{}", &key()[30..]), "price": 1_000}),
            ),
        ),
        r(
            M::GET,
            "/menu/items/{id}",
            P(ViewCatalog),
            format!("/menu/items/{item}"),
            None,
        ),
        r(
            M::PATCH,
            "/menu/items/{id}",
            P(ManageMenu),
            format!("/menu/items/{item}"),
            Some(json!({"price": 7_000})),
        ),
        r(
            M::PUT,
            "/menu/items/{id}/member-prices",
            P(ManageMenu),
            format!("/menu/items/{item}/member-prices"),
            Some(json!({"member_prices": []})),
        ),
        r(
            M::GET,
            "/menu/items/{id}/price-history",
            P(ViewCatalog),
            format!("/menu/items/{item}/price-history"),
            None,
        ),
        r(
            M::GET,
            "/menu/items/{id}/quote",
            P(ViewCatalog),
            format!("/menu/items/{item}/quote"),
            None,
        ),
        // Customers.
        r(
            M::GET,
            "/customers",
            P(ViewCustomers),
            "/customers".into(),
            None,
        ),
        r(
            M::POST,
            "/customers",
            P(EditCustomers),
            "/customers".into(),
            Some(json!({"name": "新客"})),
        ),
        r(
            M::GET,
            "/customers/lookup",
            P(ViewCustomers),
            "/customers/lookup?q=权限".into(),
            None,
        ),
        r(
            M::POST,
            "/customers/lookup-by-id-number",
            P(ViewCustomers),
            "/customers/lookup-by-id-number".into(),
            Some(json!({"id_number": "11010519491231002X"})),
        ),
        r(
            M::GET,
            "/customers/duplicates",
            P(MergeCustomers),
            "/customers/duplicates".into(),
            None,
        ),
        r(
            M::GET,
            "/customers/{id}",
            P(ViewCustomers),
            format!("/customers/{customer}"),
            None,
        ),
        r(
            M::PATCH,
            "/customers/{id}",
            P(EditCustomers),
            format!("/customers/{customer}"),
            Some(json!({"tags": ["权限"]})),
        ),
        r(
            M::POST,
            "/customers/{id}/merge",
            P(MergeCustomers),
            format!("/customers/{survivor}/merge"),
            Some(json!({"duplicate_id": duplicate})),
        ),
        r(
            M::GET,
            "/customers/{id}/timeline",
            P(ViewCustomers),
            format!("/customers/{customer}/timeline"),
            None,
        ),
        r(
            M::GET,
            "/customers/{id}/cards",
            P(ViewCards),
            format!("/customers/{customer}/cards"),
            None,
        ),
        r(
            M::GET,
            "/customers/{id}/loyalty",
            P(ViewCustomers),
            format!("/customers/{customer}/loyalty"),
            None,
        ),
        r(
            M::PUT,
            "/customers/{id}/level",
            P(SetLevel),
            format!("/customers/{customer}/level"),
            Some(json!({"level": "silver", "reason": "测试"})),
        ),
        r(
            M::GET,
            "/customers/{id}/value",
            P(ViewCustomers),
            format!("/customers/{customer}/value"),
            None,
        ),
        // Corporate.
        r(
            M::GET,
            "/customers/{id}/charge-account",
            P(ViewCorporate),
            format!("/customers/{org}/charge-account"),
            None,
        ),
        r(
            M::PUT,
            "/customers/{id}/charge-account",
            P(ManageCorporate),
            format!("/customers/{org}/charge-account"),
            Some(json!({"credit_limit": 100_000})),
        ),
        r(
            M::POST,
            "/customers/{id}/charges",
            P(ChargeToAccount),
            format!("/customers/{org}/charges"),
            Some(json!({"amount": 100, "idempotency_key": key()})),
        ),
        r(
            M::POST,
            "/customers/{id}/repayments",
            P(ChargeToAccount),
            format!("/customers/{org}/repayments"),
            Some(json!({"amount": 100, "tender": "cash", "idempotency_key": key()})),
        ),
        r(
            M::GET,
            "/customers/{id}/charge-statement",
            P(ViewCorporate),
            format!("/customers/{org}/charge-statement?month={month}"),
            None,
        ),
        r(
            M::GET,
            "/customers/{id}/pool",
            P(ViewCorporate),
            format!("/customers/{org}/pool"),
            None,
        ),
        // Cards.
        r(
            M::POST,
            "/cards",
            P(IssueCards),
            "/cards".into(),
            Some(json!({"customer_id": customer})),
        ),
        r(
            M::GET,
            "/cards/by-number",
            P(ViewCards),
            format!("/cards/by-number?number={card_number}"),
            None,
        ),
        r(
            M::GET,
            "/cards/{id}",
            P(ViewCards),
            format!("/cards/{card}"),
            None,
        ),
        r(
            M::POST,
            "/cards/{id}/top-ups",
            P(TopUp),
            format!("/cards/{card}/top-ups"),
            Some(json!({"amount": 100, "tender": "cash", "idempotency_key": key()})),
        ),
        r(
            M::POST,
            "/cards/{id}/spends",
            P(Spend),
            format!("/cards/{card}/spends"),
            Some(json!({"amount": 100, "pin": "246810", "idempotency_key": key()})),
        ),
        r(
            M::POST,
            "/cards/{id}/transfers",
            P(TransferBalances),
            format!("/cards/{card}/transfers"),
            Some(
                json!({"to_card_id": card2, "amount": 100, "pin": "246810", "idempotency_key": key()}),
            ),
        ),
        r(
            M::POST,
            "/cards/{id}/adjustments",
            P(AdjustBalances),
            format!("/cards/{card}/adjustments"),
            Some(
                json!({"balance": "points", "amount": 1, "reason": "测试", "idempotency_key": key()}),
            ),
        ),
        r(
            M::POST,
            "/transactions/{id}/reversal",
            P(ReverseOrRefund),
            format!("/transactions/{txn}/reversal"),
            Some(json!({"reason": "测试", "idempotency_key": key(), "approval": approval})),
        ),
        r(
            M::PUT,
            "/cards/{id}/pin",
            P(IssueCards),
            format!("/cards/{card}/pin"),
            Some(json!({"pin": "246810"})),
        ),
        r(
            M::GET,
            "/cards/{id}/pin-attempts",
            P(ViewCards),
            format!("/cards/{card}/pin-attempts"),
            None,
        ),
        r(
            M::POST,
            "/cards/{id}/pin-verification",
            P(Spend),
            format!("/cards/{card}/pin-verification"),
            Some(json!({"pin": "246810"})),
        ),
        r(
            M::POST,
            "/cards/{id}/freeze",
            P(ManageCards),
            format!("/cards/{card_freeze}/freeze"),
            None,
        ),
        r(
            M::POST,
            "/cards/{id}/unfreeze",
            P(ManageCards),
            format!("/cards/{card_freeze}/unfreeze"),
            None,
        ),
        r(
            M::POST,
            "/cards/{id}/replacement",
            P(ManageCards),
            format!("/cards/{card_replace}/replacement"),
            Some(json!({"idempotency_key": key()})),
        ),
        r(
            M::POST,
            "/cards/{id}/closure",
            P(ManageCards),
            format!("/cards/{card_close}/closure"),
            Some(json!({"refund_tender": "cash", "reason": "测试", "idempotency_key": key()})),
        ),
        r(
            M::GET,
            "/cards/{id}/statement",
            P(ViewCards),
            format!("/cards/{card}/statement"),
            None,
        ),
        r(
            M::GET,
            "/reports/liability",
            P(ViewFinance),
            "/reports/liability".into(),
            None,
        ),
        // Loyalty.
        r(
            M::POST,
            "/purchases",
            P(Checkout),
            "/purchases".into(),
            Some(
                json!({"card_id": card, "amount": 100, "payments": [{"method": "cash", "amount": 100}],
                        "idempotency_key": key()}),
            ),
        ),
        r(
            M::GET,
            "/cards/{id}/points",
            P(ViewCards),
            format!("/cards/{card}/points"),
            None,
        ),
        r(
            M::GET,
            "/cards/{id}/points/cash-quote",
            P(Checkout),
            format!("/cards/{card}/points/cash-quote?bill=10000"),
            None,
        ),
        r(
            M::POST,
            "/cards/{id}/points/gifts",
            P(RedeemPoints),
            format!("/cards/{card}/points/gifts"),
            Some(json!({"gift_id": gift, "idempotency_key": key()})),
        ),
        r(
            M::POST,
            "/cards/{id}/points/coupons",
            P(RedeemPoints),
            format!("/cards/{card}/points/coupons"),
            Some(json!({"template_id": template, "idempotency_key": key()})),
        ),
        r(M::GET, "/gifts", P(ViewCatalog), "/gifts".into(), None),
        r(
            M::POST,
            "/gifts",
            P(ManageGifts),
            "/gifts".into(),
            Some(json!({"name": format!("礼{}", &key()[30..]), "points_price": 5})),
        ),
        r(
            M::PUT,
            "/gifts/{id}",
            P(ManageGifts),
            format!("/gifts/{gift}"),
            Some(json!({"name": "桌游券", "points_price": 10})),
        ),
        r(
            M::POST,
            "/loyalty/jobs",
            P(RunJobs),
            "/loyalty/jobs".into(),
            Some(json!({})),
        ),
        // Coupons.
        r(
            M::GET,
            "/coupon-templates",
            P(ViewCatalog),
            "/coupon-templates".into(),
            None,
        ),
        r(
            M::POST,
            "/coupon-templates",
            P(ManageCoupons),
            "/coupon-templates".into(),
            Some(
                json!({"name": "新券", "kind": {"type": "cash", "value": 500},
                        "validity": {"type": "days_after_issue", "days": 7}}),
            ),
        ),
        r(
            M::GET,
            "/coupon-templates/{id}",
            P(ViewCatalog),
            format!("/coupon-templates/{template}"),
            None,
        ),
        r(
            M::PATCH,
            "/coupon-templates/{id}",
            P(ManageCoupons),
            format!("/coupon-templates/{template}"),
            Some(json!({"name": "满100减20元"})),
        ),
        r(
            M::POST,
            "/coupon-templates/{id}/issue",
            P(IssueCoupons),
            format!("/coupon-templates/{template}/issue"),
            Some(json!({"customer_ids": [customer]})),
        ),
        r(
            M::GET,
            "/coupon-rules",
            P(ViewCatalog),
            "/coupon-rules".into(),
            None,
        ),
        r(
            M::POST,
            "/coupon-rules",
            P(ManageCoupons),
            "/coupon-rules".into(),
            Some(json!({"template_id": template, "min_spend": 2_000_000})),
        ),
        r(
            M::PATCH,
            "/coupon-rules/{id}",
            P(ManageCoupons),
            format!("/coupon-rules/{rule}"),
            Some(json!({"active": true})),
        ),
        r(
            M::GET,
            "/coupons",
            P(ViewCoupons),
            format!("/coupons?customer_id={customer}"),
            None,
        ),
        r(
            M::GET,
            "/coupons/{code}",
            P(ViewCoupons),
            format!("/coupons/{coupon}"),
            None,
        ),
        r(
            M::POST,
            "/coupons/{code}/redeem",
            P(RedeemCoupons),
            format!("/coupons/{coupon}/redeem"),
            Some(json!({"subtotal": 20_000, "idempotency_key": key()})),
        ),
        r(
            M::POST,
            "/coupons/{code}/void",
            P(VoidCoupons),
            format!("/coupons/{coupon}/void"),
            Some(json!({"reason": "测试"})),
        ),
        r(
            M::POST,
            "/coupons/expire",
            P(RunJobs),
            "/coupons/expire".into(),
            None,
        ),
        // Checkout.
        r(
            M::POST,
            "/checkouts/quote",
            P(Checkout),
            "/checkouts/quote".into(),
            Some(json!({"lines": [{"item_id": item, "quantity": 1}]})),
        ),
        r(
            M::POST,
            "/checkouts",
            P(Checkout),
            "/checkouts".into(),
            Some(
                json!({"lines": [{"item_id": item, "quantity": 1}], "tenders": [{"method": "cash"}],
                        "idempotency_key": key()}),
            ),
        ),
        r(
            M::GET,
            "/checkouts/{id}",
            P(Checkout),
            format!("/checkouts/{checkout}"),
            None,
        ),
        r(
            M::GET,
            "/checkouts/{id}/receipt",
            P(Checkout),
            format!("/checkouts/{checkout}/receipt"),
            None,
        ),
        r(
            M::POST,
            "/checkouts/{id}/print",
            P(Checkout),
            format!("/checkouts/{checkout}/print"),
            Some(json!({"printer": "127.0.0.1:1"})),
        ),
        r(
            M::POST,
            "/checkouts/{id}/refunds",
            P(ReverseOrRefund),
            format!("/checkouts/{checkout}/refunds"),
            Some(
                json!({"amount": 100, "reason": "测试", "idempotency_key": key(), "approval": approval}),
            ),
        ),
        r(
            M::POST,
            "/checkouts/{id}/reversal",
            P(ReverseOrRefund),
            format!("/checkouts/{checkout}/reversal"),
            Some(json!({"reason": "测试", "idempotency_key": key(), "approval": approval})),
        ),
        // Settlement. A day long past, so that closing it blocks nothing else.
        r(
            M::GET,
            "/settlement/daily",
            P(ViewFinance),
            "/settlement/daily".into(),
            None,
        ),
        r(
            M::GET,
            "/settlement/daily.html",
            P(ViewFinance),
            "/settlement/daily.html".into(),
            None,
        ),
        r(
            M::POST,
            "/settlement/days/{store}/{date}/close",
            P(CloseDay),
            format!("/settlement/days/{store}/2021-03-01/close"),
            Some(json!({})),
        ),
        r(
            M::POST,
            "/settlement/days/{store}/{date}/reopen",
            P(ReopenDay),
            format!("/settlement/days/{store}/2021-03-01/reopen"),
            Some(json!({"reason": "测试"})),
        ),
        r(M::GET, "/shifts", P(Shifts), "/shifts".into(), None),
        r(
            M::POST,
            "/shifts",
            P(Shifts),
            "/shifts".into(),
            Some(json!({"opening_float": 5_000})),
        ),
        r(
            M::POST,
            "/shifts/{id}/close",
            P(Shifts),
            format!("/shifts/{shift}/close"),
            Some(json!({"counted_cash": 10_000})),
        ),
        r(
            M::GET,
            "/shifts/{id}/report",
            P(Shifts),
            format!("/shifts/{shift}/report"),
            None,
        ),
        r(
            M::GET,
            "/settlement/inter-store",
            P(ChainReports),
            format!("/settlement/inter-store?{range}"),
            None,
        ),
    ];
    // Analytics: every report needs ViewReports.
    for (template, path) in [
        ("/analytics/affinity", "/analytics/affinity".to_string()),
        (
            "/analytics/card-liveness",
            "/analytics/card-liveness".into(),
        ),
        ("/analytics/churn", "/analytics/churn".into()),
        ("/analytics/cohorts", "/analytics/cohorts".into()),
        ("/analytics/levels", "/analytics/levels".into()),
        ("/analytics/liability", "/analytics/liability".into()),
        ("/analytics/migration", "/analytics/migration".into()),
        (
            "/analytics/migration/{from}/{to}/customers",
            "/analytics/migration/A/B/customers".into(),
        ),
        ("/analytics/overview", "/analytics/overview".into()),
        ("/analytics/pyramid", "/analytics/pyramid".into()),
        (
            "/analytics/pyramid/{tier}/customers",
            "/analytics/pyramid/gold/customers".into(),
        ),
        ("/analytics/quadrants", "/analytics/quadrants".into()),
        (
            "/analytics/quadrants/{quadrant}/customers",
            "/analytics/quadrants/A/customers".into(),
        ),
        ("/analytics/rfm", "/analytics/rfm".into()),
        (
            "/analytics/rfm/customers",
            "/analytics/rfm/customers".into(),
        ),
    ] {
        v.push(r(M::GET, template, P(ViewReports), path, None));
    }
    v
}

/// The OpenAPI document's operations, as (METHOD, path template).
async fn documented(t: &TestApp) -> BTreeSet<(String, String)> {
    let (s, doc) = call(t, None, Method::GET, "/openapi.json", None).await;
    assert_eq!(s, StatusCode::OK);
    let mut out = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// The table and the OpenAPI document list the same routes.
async fn check_table_is_complete(t: &TestApp, table: &[Route]) {
    let docs = documented(t).await;
    let listed: BTreeSet<(String, String)> = table
        .iter()
        .map(|r| (r.method.to_string(), r.template.to_string()))
        .collect();
    let missing: Vec<_> = docs.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "routes without an entry in the permission table (tests/api/permissions.rs): {missing:?}"
    );
    let stale: Vec<_> = listed.difference(&docs).collect();
    assert!(
        stale.is_empty(),
        "entries for routes that do not exist: {stale:?}"
    );
    assert_eq!(listed.len(), table.len(), "a route is listed twice");
}

/// A cheap picture of everything a request could change in a tenant: the newest audit
/// or ledger row, and every table a route writes outside the ledger.
async fn fingerprint(t: &TestApp, tenant: patron_domain::ids::TenantId, fx: &Fx) -> String {
    let s = &t.app.storage;
    let audit = s
        .search_audit(tenant, &AuditFilter::default(), PageRequest::new(1, 5))
        .await
        .unwrap();
    let mut cards = Vec::new();
    for c in [&fx.customer, &fx.survivor, &fx.duplicate] {
        let id = patron_domain::ids::CustomerId(c.parse().unwrap());
        cards.push(format!(
            "{:?}",
            s.cards_of_customer(tenant, id).await.unwrap()
        ));
        cards.push(format!("{:?}", s.customer(tenant, id).await.unwrap()));
    }
    format!(
        "{:?}",
        (
            audit.first().map(|a| a.id),
            s.count_customers(tenant).await.unwrap(),
            s.list_coupons(tenant, &Default::default(), 10_000)
                .await
                .unwrap(),
            s.coupon_templates(tenant).await.unwrap(),
            s.issue_rules(tenant).await.unwrap(),
            s.staff_records(tenant).await.unwrap(),
            s.api_tokens(tenant).await.unwrap(),
            s.menu_items(tenant, &Default::default()).await.unwrap(),
            s.menu_categories(tenant).await.unwrap(),
            s.gifts(tenant, false).await.unwrap(),
            s.settings(tenant).await.unwrap(),
            cards,
        )
    )
}

/// A 403 for lack of a permission (not a business refusal such as a missing approval).
fn refused_for_permission(s: StatusCode, v: &Value) -> bool {
    s == StatusCode::FORBIDDEN
        && v["error"]["code"] == "forbidden"
        && v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("(permission "))
}

fn may(role: Role, need: Need) -> bool {
    match need {
        Need::Public | Need::Any => true,
        Need::P(p) => allows(role, p),
    }
}

async fn route_matrix(t: TestApp) {
    let owner = t.token.clone();
    let fx = fixture(&t, "t1", &owner, 1).await;
    check_table_is_complete(&t, &routes(&fx, "t1")).await;
    let mut tokens: HashMap<Role, String> = HashMap::new();
    let mut usernames: HashMap<Role, (String, String)> = HashMap::new();
    for role in ROLES {
        if role == Role::Owner {
            tokens.insert(role, owner.clone());
            usernames.insert(role, ("owner".into(), "correct horse battery".into()));
            continue;
        }
        let name = format!("as_{}", role.as_str());
        add_staff(&t, &owner, &name, role).await;
        tokens.insert(role, token_of(&t, "t1", &name, STAFF_PASSWORD).await);
        usernames.insert(role, (name, STAFF_PASSWORD.into()));
    }
    let n = routes(&fx, "t1").len();
    let (mut allowed, mut refused) = (0, 0);
    for i in 0..n {
        let head = &routes(&fx, "t1")[i];
        if head.need == Need::Public {
            let (s, v) = call(
                &t,
                None,
                head.method.clone(),
                &head.path,
                head.body.as_ref(),
            )
            .await;
            assert!(
                s != StatusCode::UNAUTHORIZED && s != StatusCode::FORBIDDEN,
                "{} {}: {s} {v}",
                head.method,
                head.path
            );
            continue;
        }
        for role in ROLES {
            // A fresh request (new idempotency keys) for every call.
            let route = routes(&fx, "t1").swap_remove(i);
            let token = if route.fresh_login {
                let (u, p) = &usernames[&role];
                token_of(&t, "t1", u, p).await
            } else {
                tokens[&role].clone()
            };
            let expected = may(role, route.need);
            let before = if expected {
                None
            } else {
                Some(fingerprint(&t, t.tenant_id, &fx).await)
            };
            let (s, v) = call(
                &t,
                Some(&token),
                route.method.clone(),
                &route.path,
                route.body.as_ref(),
            )
            .await;
            let what = format!("{:?} {} {}", role, route.method, route.path);
            assert_ne!(s, StatusCode::UNAUTHORIZED, "{what}: {v}");
            if expected {
                allowed += 1;
                assert!(
                    !refused_for_permission(s, &v),
                    "{what} should be allowed: {s} {v}"
                );
                // The printer is unreachable on purpose (a gateway error); nothing else fails.
                assert!(
                    s.as_u16() < 500 || route.template == "/checkouts/{id}/print",
                    "{what}: {s} {v}"
                );
                if std::env::var("PATRON_TEST_TRACE").is_ok() {
                    eprintln!("ALLOWED {what}: {s} {}", v["error"]["code"]);
                }
            } else {
                refused += 1;
                let Need::P(p) = route.need else {
                    unreachable!()
                };
                assert!(
                    refused_for_permission(s, &v),
                    "{what} should be refused: {s} {v}"
                );
                assert!(
                    v["error"]["message"].as_str().unwrap().contains(p.as_str()),
                    "{what}: the refusal names {p}: {v}"
                );
                assert_eq!(
                    fingerprint(&t, t.tenant_id, &fx).await,
                    before.unwrap(),
                    "{what} was refused but changed something"
                );
            }
        }
    }
    assert!(
        allowed > 200 && refused > 150,
        "allowed {allowed}, refused {refused}"
    );
}

async fn tenant_isolation_walk(t: TestApp) {
    let owner_a = t.token.clone();
    let owner_b = t.second_tenant().await;
    let tenant_b = t
        .app
        .storage
        .tenant_by_code("t2")
        .await
        .unwrap()
        .unwrap()
        .id;
    let fx_b = fixture(&t, "t2", &owner_b, 2).await;
    let table = routes(&fx_b, "t2");
    check_table_is_complete(&t, &table).await;
    let markers = fx_b.markers();
    let mut ids = markers.clone();
    ids.extend([
        fx_b.store.clone(),
        fx_b.survivor.clone(),
        fx_b.duplicate.clone(),
        fx_b.card2.clone(),
        fx_b.card_freeze.clone(),
        fx_b.card_close.clone(),
        fx_b.card_replace.clone(),
        fx_b.category.clone(),
        fx_b.rule.clone(),
        fx_b.api_token.clone(),
    ]);
    let before = fingerprint(&t, tenant_b, &fx_b).await;
    for route in table {
        if route.need == Need::Public {
            continue;
        }
        let token = if route.fresh_login {
            token_of(&t, "t1", "owner", "correct horse battery").await
        } else {
            owner_a.clone()
        };
        let (s, v) = call(
            &t,
            Some(&token),
            route.method.clone(),
            &route.path,
            route.body.as_ref(),
        )
        .await;
        let what = format!("{} {}", route.method, route.path);
        let path = route.path.split('?').next().unwrap();
        if std::env::var("PATRON_TEST_TRACE").is_ok() {
            eprintln!("FOREIGN {what}: {s} {}", v["error"]["code"]);
        }
        if ids.iter().any(|i| path.contains(i.as_str())) {
            assert!(
                [
                    StatusCode::FORBIDDEN,
                    StatusCode::NOT_FOUND,
                    StatusCode::UNPROCESSABLE_ENTITY
                ]
                .contains(&s),
                "{what} with tenant B's ids: {s} {v}"
            );
        }
        let body = route
            .body
            .as_ref()
            .map(|b| b.to_string())
            .unwrap_or_default();
        if ids.iter().any(|i| body.contains(i.as_str())) {
            assert!(
                !s.is_success(),
                "{what} with tenant B's ids in the body: {s} {v}"
            );
        }
        if s.is_success() {
            let text = v.to_string();
            for m in &markers {
                assert!(
                    !text.contains(m.as_str()),
                    "{what} shows tenant B's {m}: {text}"
                );
            }
        }
        assert_eq!(
            fingerprint(&t, tenant_b, &fx_b).await,
            before,
            "{what} changed tenant B"
        );
    }
    // Tenant B's manager cannot approve at tenant A's till.
    add_staff(&t, &owner_b, "bmgr", Role::Manager).await;
    add_staff(&t, &owner_a, "acash", Role::Cashier).await;
    let cashier = token_of(&t, "t1", "acash", STAFF_PASSWORD).await;
    let c = id(&ok(
        &t,
        &owner_a,
        Method::POST,
        "/customers",
        json!({"name": "甲客"}),
    )
    .await);
    let card = id(&ok(
        &t,
        &owner_a,
        Method::POST,
        "/cards",
        json!({"customer_id": c}),
    )
    .await);
    let (s, v) = call(
        &t,
        Some(&cashier),
        Method::POST,
        &format!("/cards/{card}/adjustments"),
        Some(
            &json!({"balance": "points", "amount": 5, "reason": "测试", "idempotency_key": key(),
                     "approval": {"username": "bmgr", "password": STAFF_PASSWORD}}),
        ),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("approval_required")),
        "{v}"
    );
}

async fn login_lockout_is_audited(t: TestApp) {
    add_staff(&t, &t.token, "cashier1", Role::Cashier).await;
    for _ in 0..5 {
        let (s, v) = login_as(&t, "t1", "cashier1", "wrong password").await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("bad_credentials"))
        );
    }
    // Locked: even the right password is refused, with a Retry-After.
    let res = t
        .client
        .post(format!("{}/auth/login", t.base))
        .json(&json!({"tenant": "t1", "username": "cashier1", "password": STAFF_PASSWORD}))
        .send()
        .await
        .unwrap();
    let retry: i64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 800 && retry <= 900, "{retry}");
    let (s, v) = decode(res).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_attempts")),
        "{v}"
    );
    // Other accounts are not locked.
    token_of(&t, "t1", "owner", "correct horse battery").await;
    // Every failure is in the audit log, with the username typed and the address.
    let (_, a) = t.get("/audit?action=login.failed").await;
    let items = a["items"].as_array().unwrap();
    assert_eq!(items.len(), 5, "{a}");
    assert!(
        items
            .iter()
            .all(|e| e["entity_id"] == "cashier1" && e["ip"] == "127.0.0.1")
    );
    assert!(items.iter().all(|e| e["staff_id"].is_string()));
    let (_, a) = t.get("/audit?action=login.locked").await;
    assert_eq!(a["items"].as_array().unwrap().len(), 1, "{a}");
    let (_, a) = t.get("/audit?action=login").await;
    assert!(
        a["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "login")
    );
    // Twenty failures from one address lock the address, whatever the tenant.
    for _ in 0..15 {
        let (s, _) = login_as(&t, "nope", "x", "y").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, v) = login_as(&t, "t1", "owner", "correct horse battery").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_attempts")),
        "{v}"
    );
}

/// The `name=value` of each Set-Cookie header.
fn set_cookies(res: &reqwest::Response) -> HashMap<String, String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|h| h.to_str().ok())
        .filter_map(|c| c.split(';').next())
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn csrf_protects_cookie_sessions(t: TestApp) {
    let res = t
        .client
        .post(format!("{}/auth/login", t.base))
        .json(&json!({"tenant": "t1", "username": "owner", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    let raw: Vec<String> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|h| h.to_str().unwrap().to_string())
        .collect();
    assert!(raw[0].starts_with("patron_session=") && raw[0].contains("HttpOnly"));
    assert!(raw[1].starts_with("patron_csrf=") && !raw[1].contains("HttpOnly"));
    assert!(raw.iter().all(|c| c.contains("SameSite=Strict")));
    let cookies = set_cookies(&res);
    let (_, body) = decode(res).await;
    let csrf = cookies["patron_csrf"].clone();
    assert_eq!(body["csrf_token"], csrf.as_str());
    let cookie = format!(
        "patron_session={}; patron_csrf={csrf}",
        cookies["patron_session"]
    );
    let send = |method: Method, path: &str, header: Option<&str>, body: Option<Value>| {
        let mut rb = t
            .client
            .request(method, format!("{}{path}", t.base))
            .header("cookie", cookie.clone());
        if let Some(h) = header {
            rb = rb.header("x-csrf-token", h);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        rb.send()
    };
    // Reading needs no token.
    let (s, _) = decode(send(Method::GET, "/me", None, None).await.unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    let count = || async { t.app.storage.count_customers(t.tenant_id).await.unwrap() };
    let n = count().await;
    // A change with the cookie alone (what another site can make a browser send): refused.
    for header in [
        None,
        Some("0123456789abcdef0123456789abcdef0123456789abcdef"),
    ] {
        let (s, v) = decode(
            send(
                Method::POST,
                "/customers",
                header,
                Some(json!({"name": "跨站"})),
            )
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("csrf_failed")),
            "{v}"
        );
    }
    assert_eq!(count().await, n, "nothing created");
    // With the token echoed: done.
    let (s, v) = decode(
        send(
            Method::POST,
            "/customers",
            Some(&csrf),
            Some(json!({"name": "本站"})),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // Bearer requests are exempt (a browser never adds the header by itself).
    let (s, _) = t.post("/customers", json!({"name": "接口"})).await;
    assert_eq!(s, StatusCode::CREATED);
    // Logging out is a change too.
    let (s, _) = decode(
        send(Method::POST, "/auth/logout", None, None)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = decode(
        send(Method::POST, "/auth/logout", Some(&csrf), None)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = decode(send(Method::GET, "/me", None, None).await.unwrap()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Idle expiry: a session unused for 30 minutes ends; use extends it.
    let token = token_of(&t, "t1", "owner", "correct horse battery").await;
    let t0 = chrono::Utc::now();
    let at = |mins: i64| t0 + chrono::Duration::minutes(mins);
    assert!(
        patron_app::at(at(20), t.app.authenticate(&token))
            .await
            .is_ok()
    );
    assert!(
        patron_app::at(at(45), t.app.authenticate(&token))
            .await
            .is_ok()
    );
    assert!(
        patron_app::at(at(81), t.app.authenticate(&token))
            .await
            .is_err()
    );
    // And at most 12 hours after the login, used or not.
    let token = token_of(&t, "t1", "owner", "correct horse battery").await;
    for m in (20..=700).step_by(20) {
        assert!(
            patron_app::at(at(m), t.app.authenticate(&token))
                .await
                .is_ok(),
            "{m}"
        );
    }
    assert!(
        patron_app::at(at(721), t.app.authenticate(&token))
            .await
            .is_err()
    );
}

async fn api_tokens_scope_and_revocation(t: TestApp) {
    let owner = t.token.clone();
    let customer = t
        .customer(json!({"name": "令牌客", "phone": "13800000009"}))
        .await;
    let card = id(&ok(
        &t,
        &owner,
        Method::POST,
        "/cards",
        json!({"customer_id": customer}),
    )
    .await);
    let created = ok(
        &t,
        &owner,
        Method::POST,
        "/api-tokens",
        json!({"name": "POS 1", "scope": ["view_customers", "top_up"], "expires_in_days": 30}),
    )
    .await;
    let token = created["token"].as_str().unwrap().to_string();
    let token_id = created["api_token"]["id"].as_str().unwrap().to_string();
    assert!(token.starts_with("pk_"));
    assert!(created["api_token"]["expires_at"].is_string());
    // Shown once: listed without its secret, stored only as a hash.
    let (_, list) = t.get("/api-tokens").await;
    assert!(!list.to_string().contains(&token[10..]), "{list}");
    assert_eq!(list[0]["active"], true);
    let stored = t.app.storage.api_tokens(t.tenant_id).await.unwrap();
    assert!(
        stored
            .iter()
            .all(|r| r.token_hash.len() == 64 && !token.contains(&r.token_hash))
    );
    // The token does what its scope says, no more.
    let (s, me) = t.req_as(&token, Method::GET, "/me", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(me["permissions"], json!(["view_customers", "top_up"]));
    let (s, _) = t.req_as(&token, Method::GET, "/customers", None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = t
        .req_as(
            &token,
            Method::POST,
            "/customers",
            Some(json!({"name": "越权"})),
        )
        .await;
    assert!(
        refused_for_permission(s, &v) || v["error"]["message"].as_str().unwrap().contains("scope"),
        "{v}"
    );
    assert_eq!(s, StatusCode::FORBIDDEN);
    let top_up = json!({"amount": 1_000, "tender": "cash", "idempotency_key": key()});
    let (s, v) = t
        .req_as(
            &token,
            Method::POST,
            &format!("/cards/{card}/top-ups"),
            Some(top_up),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Tokens cannot make tokens.
    let (s, _) = t
        .req_as(
            &token,
            Method::POST,
            "/api-tokens",
            Some(json!({"name": "x", "scope": ["view_customers"]})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // A manager grants only what a manager may do.
    let mgr = add_staff(&t, &owner, "mgr", Role::Manager).await;
    let mgr_login = token_of(&t, "t1", "mgr", STAFF_PASSWORD).await;
    let (s, v) = t
        .req_as(
            &mgr_login,
            Method::POST,
            "/api-tokens",
            Some(json!({"name": "x", "scope": ["manage_staff"]})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, m) = t
        .req_as(
            &mgr_login,
            Method::POST,
            "/api-tokens",
            Some(json!({"name": "店长 POS", "scope": ["view_customers", "top_up"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{m}");
    let mgr_token = m["token"].as_str().unwrap().to_string();
    // The manager sees their own tokens only.
    let (_, list) = t.req_as(&mgr_login, Method::GET, "/api-tokens", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    // Demoted to marketer: the token keeps only what both the scope and the role allow.
    ok(
        &t,
        &owner,
        Method::PATCH,
        &format!("/staff/{mgr}"),
        json!({"role": "marketer"}),
    )
    .await;
    let top_up = json!({"amount": 1_000, "tender": "cash", "idempotency_key": key()});
    let (s, v) = t
        .req_as(
            &mgr_token,
            Method::POST,
            &format!("/cards/{card}/top-ups"),
            Some(top_up),
        )
        .await;
    assert!(refused_for_permission(s, &v), "{v}");
    let (s, _) = t.req_as(&mgr_token, Method::GET, "/customers", None).await;
    assert_eq!(s, StatusCode::OK);
    // The role change ended the manager's login session.
    let (s, _) = t.req_as(&mgr_login, Method::GET, "/me", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // A deactivated creator's tokens stop.
    ok(
        &t,
        &owner,
        Method::PATCH,
        &format!("/staff/{mgr}"),
        json!({"active": false}),
    )
    .await;
    let (s, _) = t.req_as(&mgr_token, Method::GET, "/customers", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Revoked: refused at once.
    let (s, v) = t
        .req(Method::DELETE, &format!("/api-tokens/{token_id}"), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["revoked_at"].is_string() && v["active"] == false);
    let (s, _) = t.req_as(&token, Method::GET, "/customers", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = t
        .req(
            Method::DELETE,
            &format!("/api-tokens/{}", uuid::Uuid::now_v7()),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, a) = t.get("/audit?action=api_token").await;
    let actions: Vec<&str> = a["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec!["api_token.revoke", "api_token.create", "api_token.create"],
        "{a}"
    );
}

async fn approvals_are_required_and_recorded(t: TestApp) {
    let owner = t.token.clone();
    let (s, mgr) = call(
        &t,
        Some(&owner),
        Method::POST,
        "/staff",
        Some(&json!({"username": "mgr", "display_name": "店长", "password": STAFF_PASSWORD, "role": "manager",
                     "approval_pin": "135790"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{mgr}");
    assert_eq!(mgr["has_approval_pin"], true);
    let mgr_id = id(&mgr);
    let cashier_id = add_staff(&t, &owner, "cashier1", Role::Cashier).await;
    let cashier = token_of(&t, "t1", "cashier1", STAFF_PASSWORD).await;
    let manager = token_of(&t, "t1", "mgr", STAFF_PASSWORD).await;
    let customer = t.customer(json!({"name": "调整客"})).await;
    let card = id(&ok(
        &t,
        &owner,
        Method::POST,
        "/cards",
        json!({"customer_id": customer}),
    )
    .await);
    let adjust = |token: String, amount: i64, approval: Option<Value>| {
        let t = &t;
        let card = card.clone();
        async move {
            let mut body = json!({"balance": "bonus", "amount": amount, "reason": "补偿", "idempotency_key": key()});
            if let Some(a) = approval {
                body["approval"] = a;
            }
            call(
                t,
                Some(&token),
                Method::POST,
                &format!("/cards/{card}/adjustments"),
                Some(&body),
            )
            .await
        }
    };
    let adjustments = || async {
        let (_, a) = t.get("/audit?action=ledger.adjustment").await;
        a["items"].as_array().unwrap().clone()
    };
    // A cashier's limits are zero: every adjustment needs a manager.
    let (s, v) = adjust(cashier.clone(), 500, None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("approval_required")),
        "{v}"
    );
    assert!(adjustments().await.is_empty(), "nothing posted");
    // A wrong password: refused, audited, nothing posted.
    let (s, v) = adjust(
        cashier.clone(),
        500,
        Some(json!({"username": "mgr", "password": "nope"})),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("approval_required")),
        "{v}"
    );
    let (_, a) = t.get("/audit?action=approval.failed").await;
    assert_eq!(a["items"][0]["entity_id"], "mgr");
    assert_eq!(a["items"][0]["staff_id"], cashier_id.as_str());
    // A cashier cannot approve.
    let (s, _) = adjust(
        cashier.clone(),
        500,
        Some(json!({"username": "cashier1", "password": STAFF_PASSWORD})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(adjustments().await.is_empty());
    // The manager's password, then their approval PIN: done, and the approver is recorded.
    let (s, v) = adjust(
        cashier.clone(),
        500,
        Some(json!({"username": "mgr", "password": STAFF_PASSWORD})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = adjust(
        cashier.clone(),
        300,
        Some(json!({"username": "mgr", "password": "135790"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let rows = adjustments().await;
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|r| r["approver_id"] == mgr_id.as_str() && r["staff_id"] == cashier_id.as_str())
    );
    assert!(rows.iter().all(|r| r["reason"] == "补偿"));
    // Per-staff limits: ¥10 at a time, ¥15 a day without approval.
    ok(
        &t,
        &owner,
        Method::PATCH,
        &format!("/staff/{cashier_id}"),
        json!({"limits": {"max_discount_bp": 0, "max_adjustment_per_txn": 1_000, "max_adjustment_per_day": 1_500}}),
    )
    .await;
    let cashier = token_of(&t, "t1", "cashier1", STAFF_PASSWORD).await;
    let (s, v) = adjust(cashier.clone(), 1_000, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = adjust(cashier.clone(), 1_000, None).await;
    assert_eq!(
        v["error"]["code"], "approval_required",
        "over the day's limit: {s} {v}"
    );
    let last =
        json!({"balance": "bonus", "amount": -500, "reason": "补偿", "idempotency_key": key()});
    let (s, v) = call(
        &t,
        Some(&cashier),
        Method::POST,
        &format!("/cards/{card}/adjustments"),
        Some(&last),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "a take-away counts too, and fits: {v}");
    let (s, _) = adjust(cashier.clone(), 1, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "the day's ¥15 are used up");
    // A retry of the adjustment that used the limit up answers with it, not with the limit.
    let (s, again) = call(
        &t,
        Some(&cashier),
        Method::POST,
        &format!("/cards/{card}/adjustments"),
        Some(&last),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["replayed"], true, "{again}");
    assert_eq!(again["txn_id"], v["txn_id"], "{again}");
    let rows = adjustments().await;
    assert_eq!(
        rows.iter().filter(|r| r["approver_id"].is_null()).count(),
        2
    );
    // A manager adjusts within their own limit alone; beyond it the owner approves.
    let (s, v) = adjust(manager.clone(), 50_000, None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = adjust(manager.clone(), 50_001, None).await;
    assert_eq!(v["error"]["code"], "approval_required", "{s} {v}");
    let (s, v) = adjust(
        manager.clone(),
        50_001,
        Some(json!({"username": "mgr", "password": STAFF_PASSWORD})),
    )
    .await;
    assert_eq!(
        v["error"]["code"], "approval_required",
        "no approving oneself: {s} {v}"
    );
    let (s, v) = adjust(
        manager.clone(),
        50_001,
        Some(json!({"username": "owner", "password": "correct horse battery"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let owner_id = t.get("/me").await.1["staff_id"].clone();
    assert_eq!(adjustments().await[0]["approver_id"], owner_id);
    // Reversing a transaction at the till needs a manager too, who is recorded.
    let top = ok(
        &t,
        &cashier,
        Method::POST,
        &format!("/cards/{card}/top-ups"),
        json!({"amount": 10_000, "tender": "cash", "idempotency_key": key()}),
    )
    .await;
    let txn = top["txn_id"].as_str().unwrap().to_string();
    let reverse = |approval: Option<Value>| {
        let mut body = json!({"reason": "收错", "idempotency_key": key()});
        if let Some(a) = approval {
            body["approval"] = a;
        }
        body
    };
    let (s, v) = call(
        &t,
        Some(&cashier),
        Method::POST,
        &format!("/transactions/{txn}/reversal"),
        Some(&reverse(None)),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("approval_required")),
        "{v}"
    );
    let body = reverse(Some(json!({"username": "mgr", "password": "135790"})));
    let (s, v) = call(
        &t,
        Some(&cashier),
        Method::POST,
        &format!("/transactions/{txn}/reversal"),
        Some(&body),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, a) = t.get("/audit?action=ledger.reversal").await;
    assert_eq!(a["items"][0]["approver_id"], mgr_id.as_str());
    assert_eq!(a["items"][0]["staff_id"], cashier_id.as_str());
}

async fn audit_entries_for_each_kind(t: TestApp) {
    let owner = t.token.clone();
    let cashier_id = add_staff(&t, &owner, "cashier1", Role::Cashier).await;
    let (s, _) = login_as(&t, "t1", "cashier1", "wrong").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let cashier = token_of(&t, "t1", "cashier1", STAFF_PASSWORD).await;
    ok(
        &t,
        &owner,
        Method::PATCH,
        &format!("/staff/{cashier_id}"),
        json!({"display_name": "小李"}),
    )
    .await;
    ok(
        &t,
        &owner,
        Method::POST,
        &format!("/staff/{cashier_id}/password"),
        json!({"password": "new password 1"}),
    )
    .await;
    let (_, settings) = t.get("/settings").await;
    ok(&t, &owner, Method::PUT, "/settings", settings).await;
    let customer = t
        .customer(json!({"name": "审计客", "phone": "13800000077"}))
        .await;
    let card = id(&ok(
        &t,
        &owner,
        Method::POST,
        "/cards",
        json!({"customer_id": customer}),
    )
    .await);
    ok(
        &t,
        &owner,
        Method::POST,
        &format!("/cards/{card}/top-ups"),
        json!({"amount": 10_000, "tender": "cash", "idempotency_key": key()}),
    )
    .await;
    ok(
        &t,
        &owner,
        Method::POST,
        &format!("/cards/{card}/freeze"),
        json!(null),
    )
    .await;
    ok(
        &t,
        &owner,
        Method::POST,
        &format!("/cards/{card}/unfreeze"),
        json!(null),
    )
    .await;
    let org = t
        .customer(json!({"name": "审计公司", "customer_type": "organization"}))
        .await;
    ok(
        &t,
        &owner,
        Method::PUT,
        &format!("/customers/{org}/charge-account"),
        json!({"credit_limit": 50_000}),
    )
    .await;
    let tpl = id(&ok(
        &t,
        &owner,
        Method::POST,
        "/coupon-templates",
        json!({"name": "审计券", "kind": {"type": "cash", "value": 500}, "validity": {"type": "days_after_issue", "days": 7}}),
    )
    .await);
    ok(
        &t,
        &owner,
        Method::PATCH,
        &format!("/coupon-templates/{tpl}"),
        json!({"name": "审计券2"}),
    )
    .await;
    ok(
        &t,
        &owner,
        Method::POST,
        "/coupon-rules",
        json!({"template_id": tpl, "min_spend": 100_000}),
    )
    .await;
    let issued = ok(
        &t,
        &owner,
        Method::POST,
        &format!("/coupon-templates/{tpl}/issue"),
        json!({"customer_ids": [customer]}),
    )
    .await;
    let code = issued[0]["code"].as_str().unwrap().to_string();
    ok(
        &t,
        &owner,
        Method::POST,
        &format!("/coupons/{code}/void"),
        json!({"reason": "发错"}),
    )
    .await;
    let cat = id(&ok(
        &t,
        &owner,
        Method::POST,
        "/menu/categories",
        json!({"name": "凉菜"}),
    )
    .await);
    let item = id(&ok(
        &t,
        &owner,
        Method::POST,
        "/menu/items",
        json!({"category_id": cat, "name": "拍黄瓜", "price": 1_800}),
    )
    .await);
    ok(
        &t,
        &owner,
        Method::PATCH,
        &format!("/menu/items/{item}"),
        json!({"price": 2_000}),
    )
    .await;
    ok(
        &t,
        &owner,
        Method::PUT,
        &format!("/menu/items/{item}/member-prices"),
        json!({"member_prices": [{"card_kind": "member_price", "price": 1_600}]}),
    )
    .await;
    let (_, stores) = t.get("/stores").await;
    let store = stores[0]["id"].as_str().unwrap().to_string();
    ok(
        &t,
        &owner,
        Method::POST,
        &format!("/settlement/days/{store}/2021-03-01/close"),
        json!({}),
    )
    .await;
    ok(
        &t,
        &owner,
        Method::POST,
        &format!("/settlement/days/{store}/2021-03-01/reopen"),
        json!({"reason": "补录"}),
    )
    .await;
    // Exports and imports (command line) go through the same use cases.
    let actor = t.app.authenticate(&owner).await.unwrap();
    let dir = std::env::temp_dir().join(format!("patron-audit-{}", key()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("customers.csv");
    let n = t
        .app
        .export_customers(
            &actor,
            &file,
            patron_app::export::ExportFormat::Csv,
            &|_| {},
        )
        .await
        .unwrap();
    assert!(n >= 2);
    t.app
        .import_customers(&actor, &file, Default::default(), &|_| {})
        .await
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let cashier_actor = t.app.authenticate(&cashier).await;
    assert!(
        cashier_actor.is_err(),
        "the password reset ended the cashier's session"
    );

    let (_, all) = t.get("/audit?per_page=500").await;
    let items = all["items"].as_array().unwrap();
    let actions: BTreeSet<&str> = items
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "login",
        "login.failed",
        "staff.create",
        "staff.update",
        "staff.password_reset",
        "settings.update",
        "card.freeze",
        "card.unfreeze",
        "charge_account.credit_limit",
        "coupon_template.create",
        "coupon_template.update",
        "coupon_rule.create",
        "coupon.issue",
        "coupon.void",
        "menu_category.create",
        "menu_item.create",
        "menu_item.update",
        "menu_item.member_prices",
        "day.close",
        "day.reopen",
        "export.customers",
        "import.customers",
        "ledger.top_up",
        "api_token.create",
    ]
    .iter()
    .filter(|a| **a != "api_token.create")
    {
        assert!(actions.contains(a), "no {a} in {actions:?}");
    }
    // Newest first.
    let times: Vec<&str> = items.iter().map(|e| e["at"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| {
        let p = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap();
        p(b).cmp(&p(a))
    });
    assert_eq!(times, sorted);
    // Before and after.
    let update = items
        .iter()
        .find(|e| e["action"] == "menu_item.update")
        .unwrap();
    assert_eq!(update["before"]["price"], 1_800);
    assert_eq!(update["after"]["price"], 2_000);
    let staff = items
        .iter()
        .find(|e| e["action"] == "staff.update")
        .unwrap();
    assert_eq!(
        (
            staff["before"]["display_name"].as_str(),
            staff["after"]["display_name"].as_str()
        ),
        (Some("cashier1 名"), Some("小李"))
    );
    assert!(!all.to_string().contains("argon2"), "no password hashes");
    let export = items
        .iter()
        .find(|e| e["action"] == "export.customers")
        .unwrap();
    assert_eq!(export["after"]["file"], "customers.csv");
    // Filters: by card (its status changes and its ledger transactions), by customer, by
    // staff, by time, by action family; paging.
    let (_, by_card) = t.get(&format!("/audit?card={card}")).await;
    let card_actions: BTreeSet<&str> = by_card["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        ["card.freeze", "card.unfreeze", "ledger.top_up"]
            .iter()
            .all(|a| card_actions.contains(a)),
        "{card_actions:?}"
    );
    assert!(
        by_card["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["card_id"] == card.as_str())
    );
    let (_, by_customer) = t
        .get(&format!("/audit?customer={customer}&action=coupon"))
        .await;
    let c_actions: BTreeSet<&str> = by_customer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(c_actions, BTreeSet::from(["coupon.issue", "coupon.void"]));
    let (_, by_staff) = t.get(&format!("/audit?staff={cashier_id}")).await;
    let s_items = by_staff["items"].as_array().unwrap();
    assert!(
        !s_items.is_empty()
            && s_items
                .iter()
                .all(|e| e["staff_id"] == cashier_id.as_str()
                    || e["approver_id"] == cashier_id.as_str())
    );
    let (_, none) = t.get("/audit?to=2000-01-01T00:00:00Z").await;
    assert_eq!(none["items"], json!([]));
    let (_, ledger) = t.get("/audit?action=ledger").await;
    assert!(
        ledger["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["source"] == "ledger")
    );
    let (_, p1) = t.get("/audit?per_page=2").await;
    let (_, p2) = t.get("/audit?per_page=2&page=2").await;
    assert_eq!(p1["has_more"], true);
    assert_ne!(p1["items"][0]["id"], p2["items"][0]["id"]);
    // Only those allowed search it.
    add_staff(&t, &owner, "marketer1", Role::Marketer).await;
    let marketer = token_of(&t, "t1", "marketer1", STAFF_PASSWORD).await;
    let (s, v) = t.req_as(&marketer, Method::GET, "/audit", None).await;
    assert!(refused_for_permission(s, &v), "{v}");
}

async fn masking_and_staff_admin(t: TestApp) {
    let owner = t.token.clone();
    let c = t
        .customer(json!({"name": "隐私客", "phone": "13800000001", "email": "zhang@example.com", "work_phone": "021-68881234"}))
        .await;
    add_staff(&t, &owner, "marketer1", Role::Marketer).await;
    add_staff(&t, &owner, "agent1", Role::ServiceAgent).await;
    let cashier_id = add_staff(&t, &owner, "cashier1", Role::Cashier).await;
    let marketer = token_of(&t, "t1", "marketer1", STAFF_PASSWORD).await;
    let agent = token_of(&t, "t1", "agent1", STAFF_PASSWORD).await;
    let cashier = token_of(&t, "t1", "cashier1", STAFF_PASSWORD).await;
    // Roles without personal data see masks, in every view of the customer.
    for token in [&marketer, &cashier] {
        let (_, v) = t
            .req_as(token, Method::GET, &format!("/customers/{c}"), None)
            .await;
        assert_eq!(v["phone"], "138****0001");
        assert_eq!(v["email"], "z***@example.com");
        assert_eq!(v["work_phone"], "021-****1234");
        let (_, l) = t.req_as(token, Method::GET, "/customers", None).await;
        assert!(!l.to_string().contains("13800000001"), "{l}");
        let (_, l) = t
            .req_as(token, Method::GET, "/customers/lookup?q=13800000001", None)
            .await;
        assert_eq!(l[0]["phone"], "138****0001", "{l}");
        // Searching by phone prefix would reveal the digits: not for them.
        let (s, _) = t
            .req_as(token, Method::GET, "/customers?phone=138", None)
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    let (_, v) = t
        .req_as(
            &cashier,
            Method::PATCH,
            &format!("/customers/{c}"),
            Some(json!({"tags": ["常客"]})),
        )
        .await;
    assert_eq!(v["phone"], "138****0001", "{v}");
    // The profile itself is untouched by masked views and edits.
    for token in [&agent, &owner] {
        let (_, v) = t
            .req_as(token, Method::GET, &format!("/customers/{c}"), None)
            .await;
        assert_eq!(
            (v["phone"].as_str(), v["email"].as_str()),
            (Some("13800000001"), Some("zhang@example.com"))
        );
    }

    // Staff administration.
    let (_, list) = t.get("/staff").await;
    assert_eq!(list.as_array().unwrap().len(), 4);
    assert!(!list.to_string().contains("argon2"));
    let cashier_view = list
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["username"] == "cashier1")
        .unwrap();
    assert_eq!(cashier_view["limits"]["max_adjustment_per_txn"], 0);
    assert_eq!(cashier_view["own_limits"], false);
    assert!(
        cashier_view["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("checkout"))
    );
    let (s, v) = t
        .post("/staff", json!({"username": "cashier1", "display_name": "重名", "password": STAFF_PASSWORD, "role": "cashier"}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("username_in_use"))
    );
    let (s, v) = t
        .post(
            "/staff",
            json!({"username": "x", "display_name": "", "password": "short", "role": "cashier"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["fields"].as_array().unwrap().len(), 3, "{v}");
    let (s, _) = t
        .patch(
            &format!("/staff/{cashier_id}"),
            json!({"store_id": uuid::Uuid::now_v7()}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let owner_id = t.get("/me").await.1["staff_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v) = t
        .patch(&format!("/staff/{owner_id}"), json!({"role": "manager"}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("last_owner"))
    );
    // Others may not manage staff.
    add_staff(&t, &owner, "mgr", Role::Manager).await;
    let mgr = token_of(&t, "t1", "mgr", STAFF_PASSWORD).await;
    let (s, _) = t.req_as(&mgr, Method::GET, "/staff", None).await;
    assert_eq!(s, StatusCode::OK, "managers see the staff list");
    let (s, v) = t
        .req_as(
            &mgr,
            Method::PATCH,
            &format!("/staff/{cashier_id}"),
            Some(json!({"role": "owner"})),
        )
        .await;
    assert!(refused_for_permission(s, &v), "{v}");
    // A password reset ends the sessions; the new password works, the old does not.
    ok(
        &t,
        &owner,
        Method::POST,
        &format!("/staff/{cashier_id}/password"),
        json!({"password": "brand new pw"}),
    )
    .await;
    let (s, _) = t.req_as(&cashier, Method::GET, "/me", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = login_as(&t, "t1", "cashier1", STAFF_PASSWORD).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let cashier = token_of(&t, "t1", "cashier1", "brand new pw").await;
    // Deactivated: sessions end, logins fail.
    ok(
        &t,
        &owner,
        Method::PATCH,
        &format!("/staff/{cashier_id}"),
        json!({"active": false}),
    )
    .await;
    let (s, _) = t.req_as(&cashier, Method::GET, "/me", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = login_as(&t, "t1", "cashier1", "brand new pw").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Store scope: staff of one store act there only.
    let second = Store {
        tenant_id: t.tenant_id,
        id: StoreId(uuid::Uuid::now_v7()),
        code: "second".into(),
        name: "分店".into(),
        address: None,
        phone: None,
        created_at: chrono::Utc::now(),
    };
    t.app.storage.create_store(&second).await.unwrap();
    let (s, _) = call(
        &t,
        None,
        Method::POST,
        "/auth/login",
        Some(&json!({"tenant": "t1", "username": "mgr", "password": STAFF_PASSWORD, "store": "second"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "assigned to another store");
    let (s, v) = t
        .req_as(
            &mgr,
            Method::POST,
            &format!("/settlement/days/{}/2021-03-01/close", second.id.0),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    // An API token of a store-bound manager works at their store only.
    let (s, v) = t
        .req_as(
            &mgr,
            Method::POST,
            "/api-tokens",
            Some(json!({"name": "x", "scope": ["view_customers"], "store_id": second.id})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let _ = StaffId(uuid::Uuid::nil());
}
