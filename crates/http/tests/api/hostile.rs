//! Hostile input through the API, on both backends (extends `hostile_requests` in
//! main.rs, which covers the customer routes):
//!
//! - `malformed_bodies_on_every_route`: every route of the OpenAPI document that takes a
//!   body gets an oversized body (413), invalid UTF-8, nesting far past the parser's
//!   limit, a wrong content type (415), no body, and JSON of the wrong shape: each a 4xx
//!   with a machine-readable code, and nothing changed. Settings refuse unknown keys and a
//!   day start outside the day.
//! - `hostile_amounts_are_refused`: negative, zero, huge (i64::MAX, i64::MIN, 1e30),
//!   fractional and string amounts on top-ups, spends, transfers, adjustments, checkouts,
//!   purchases, menu and member prices, coupon templates, gifts, charge accounts and
//!   shifts: a 4xx with a code, never a 5xx, and nothing changed. A card replacement
//!   retried with another request's idempotency key is a 409.
//! - `injection_and_markup_are_data`: SQL and HTML/script strings in every free-text field
//!   of customers (create and update), menu categories and items, coupon templates,
//!   gifts, staff and API tokens are stored verbatim and come back unchanged; in fields
//!   with a format (phone, email, dates, codes, usernames) and in searches they are a 4xx
//!   with a code or find nothing, and change nothing (a hostile PIN is a wrong PIN).
//! - `control_characters_and_overlong_text_are_refused`: NUL, escape sequences, DEL and
//!   C1 characters in every text field of those and of money movements (memos, reasons,
//!   open line names, idempotency keys): 422 `invalid_characters`, nothing changed
//!   (PostgreSQL cannot store NUL, so one unchecked field was a 500 there); 100,000
//!   characters: a 4xx with a code or stored, never a 5xx.

use crate::both_backends;
use crate::support::{TestApp, decode};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

both_backends!(
    malformed_bodies_on_every_route,
    hostile_amounts_are_refused,
    injection_and_markup_are_data,
    control_characters_and_overlong_text_are_refused,
);

const PIN: &str = "246810";

fn key() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Records the hostile requests will aim at.
struct Fx {
    customer: String,
    card: String,
    card2: String,
    org: String,
    category: String,
    item: String,
    template: String,
    gift: String,
    staff: String,
}

async fn ok(t: &TestApp, method: Method, path: &str, body: Value) -> Value {
    let (s, v) = t.req(method, path, Some(body)).await;
    assert!(s.is_success(), "{path}: {s} {v}");
    v
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

async fn fixtures(t: &TestApp) -> Fx {
    let customer = t
        .customer(json!({"name": "储值客", "phone": "13800000001"}))
        .await;
    let card = id(&ok(
        t,
        Method::POST,
        "/cards",
        json!({"customer_id": customer, "pin": PIN}),
    )
    .await);
    let card2 = id(&ok(
        t,
        Method::POST,
        "/cards",
        json!({"customer_id": customer, "pin": PIN}),
    )
    .await);
    ok(
        t,
        Method::POST,
        &format!("/cards/{card}/top-ups"),
        json!({"amount": 100_000, "tender": "cash", "idempotency_key": key()}),
    )
    .await;
    let org = t
        .customer(json!({"name": "浦江资本", "customer_type": "organization"}))
        .await;
    ok(
        t,
        Method::PUT,
        &format!("/customers/{org}/charge-account"),
        json!({"credit_limit": 100_000}),
    )
    .await;
    let category = id(&ok(t, Method::POST, "/menu/categories", json!({"name": "热菜"})).await);
    let item = id(&ok(
        t,
        Method::POST,
        "/menu/items",
        json!({"category_id": category, "name": "红烧肉", "price": 6_800}),
    )
    .await);
    let template = id(&ok(
        t,
        Method::POST,
        "/coupon-templates",
        json!({"name": "满200减20", "kind": {"type": "cash", "value": 2_000, "min_spend": 20_000},
               "validity": {"type": "days_after_issue", "days": 30}}),
    )
    .await);
    let gift = id(&ok(
        t,
        Method::POST,
        "/gifts",
        json!({"name": "桌游券", "points_price": 10}),
    )
    .await);
    let staff = id(&ok(
        t,
        Method::POST,
        "/staff",
        json!({"username": "cashier1", "display_name": "收银员", "password": "staff password 1",
               "role": "cashier"}),
    )
    .await);
    Fx {
        customer,
        card,
        card2,
        org,
        category,
        item,
        template,
        gift,
        staff,
    }
}

/// Everything a hostile request could have changed, as the API shows it, and the ledger.
async fn fingerprint(t: &TestApp, fx: &Fx) -> String {
    let mut parts = Vec::new();
    for path in [
        format!("/cards/{}", fx.card),
        format!("/cards/{}", fx.card2),
        format!("/customers/{}", fx.customer),
        format!("/customers/{}/charge-account", fx.org),
        format!("/menu/items/{}", fx.item),
        format!("/menu/items/{}/price-history", fx.item),
        format!("/coupon-templates/{}", fx.template),
        format!("/staff/{}", fx.staff),
        "/customers?per_page=500".into(),
        "/menu/categories".into(),
        "/menu/items".into(),
        "/coupon-templates".into(),
        "/coupons".into(),
        "/gifts".into(),
        "/staff".into(),
        "/api-tokens".into(),
        "/settings".into(),
        "/shifts".into(),
        "/audit?per_page=3".into(),
    ] {
        let (s, v) = t.get(&path).await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
        parts.push(format!("{path}: {v}"));
    }
    let report = t.app.verify_ledger().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.violations);
    parts.push(format!("ledger entries: {}", report.entries));
    parts.join("\n")
}

/// The fingerprints' differing lines, if any.
#[track_caller]
fn unchanged(before: &str, after: &str, what: &str) {
    let diff: Vec<String> = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("before: {a}\nafter:  {b}"))
        .collect();
    assert!(diff.is_empty(), "{what}:\n{}", diff.join("\n"));
}

/// A refusal: a 4xx with a machine-readable code (never a 5xx).
#[track_caller]
fn refused(what: &str, s: StatusCode, v: &Value) {
    assert!(s.is_client_error(), "{what}: expected a 4xx, got {s} {v}");
    let code = v["error"]["code"].as_str().unwrap_or("");
    assert!(
        !code.is_empty() && code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
        "{what}: {s} without a code: {v}"
    );
}

async fn send_raw(
    client: &reqwest::Client,
    t: &TestApp,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut rb = client
        .request(method, format!("{}{path}", t.base))
        .bearer_auth(&t.token)
        .body(body);
    if let Some(ct) = content_type {
        rb = rb.header("content-type", ct);
    }
    decode(rb.send().await.unwrap()).await
}

/// Every route with a request body, from the OpenAPI document: (method, path with fresh
/// ids for its parameters).
async fn body_routes(t: &TestApp) -> Vec<(Method, String)> {
    let (_, doc) = t.get("/openapi.json").await;
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op.get("requestBody").is_none() {
                continue;
            }
            let mut concrete = String::new();
            for part in path.split('/').skip(1) {
                concrete.push('/');
                if part == "{date}" {
                    concrete.push_str("2026-01-01");
                } else if part.starts_with('{') {
                    concrete.push_str(&key());
                } else {
                    concrete.push_str(part);
                }
            }
            routes.push((method.to_uppercase().parse().unwrap(), concrete));
        }
    }
    assert!(routes.len() > 40, "{} routes with a body", routes.len());
    routes
}

async fn malformed_bodies_on_every_route(t: TestApp) {
    let fx = fixtures(&t).await;
    let before = fingerprint(&t, &fx).await;
    let big = {
        let mut b = br#"{"name": ""#.to_vec();
        b.extend(std::iter::repeat_n(b'x', 1024 * 1024 + 1));
        b.extend(br#""}"#);
        b
    };
    let deep_arrays = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_objects = format!("{}1{}", r#"{"a":"#.repeat(100_000), "}".repeat(100_000));
    let bodies: Vec<(&str, Option<&str>, Vec<u8>)> =
        vec![
        ("invalid UTF-8", Some("application/json"), {
            // In the first key, so that no handler's shape check comes first.
            let mut b = br#"{""#.to_vec();
            b.extend([0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80]);
            b.extend(br#"": 1}"#);
            b
        }),
        (
            "lone surrogate escape",
            Some("application/json"),
            br#"{"name": "\ud800", "reason": "\udfff"}"#.to_vec(),
        ),
        (
            "deep arrays",
            Some("application/json"),
            deep_arrays.into_bytes(),
        ),
        (
            "deep objects",
            Some("application/json"),
            deep_objects.into_bytes(),
        ),
        ("empty", Some("application/json"), Vec::new()),
        ("truncated", Some("application/json"), br#"{"amou"#.to_vec()),
        ("text/plain", Some("text/plain"), br#"{"name": "x"}"#.to_vec()),
        ("no content type", None, br#"{"name": "x"}"#.to_vec()),
        (
            "form",
            Some("application/x-www-form-urlencoded"),
            b"name=x&amount=1".to_vec(),
        ),
        ("a number", Some("application/json"), b"1e999".to_vec()),
        ("an array", Some("application/json"), b"[1, 2, 3]".to_vec()),
        (
            "wrong types",
            Some("application/json"),
            br#"{"name": {"$ne": null}, "amount": [1], "idempotency_key": 7, "price": "0 OR 1=1"}"#
                .to_vec(),
        ),
        (
            "duplicate keys",
            Some("application/json"),
            br#"{"amount": 1, "amount": -1, "name": "a", "name": "b"}"#.to_vec(),
        ),
    ];
    let mut checked = 0;
    for (method, path) in body_routes(&t).await {
        // Its own client: the server answers 413 without reading the whole body and
        // closes the connection, which must not be reused.
        let fresh = reqwest::Client::new();
        let (s, v) = send_raw(
            &fresh,
            &t,
            method.clone(),
            &path,
            Some("application/json"),
            big.clone(),
        )
        .await;
        let what = format!("{method} {path} (over 1 MiB)");
        refused(&what, s, &v);
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large")),
            "{what}"
        );
        for (name, ct, body) in &bodies {
            let (s, v) = send_raw(&t.client, &t, method.clone(), &path, *ct, body.clone()).await;
            let what = format!("{method} {path} ({name})");
            refused(&what, s, &v);
            match *name {
                "text/plain" | "no content type" | "form" => assert_eq!(
                    (s, v["error"]["code"].as_str()),
                    (
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        Some("unsupported_media_type")
                    ),
                    "{what}"
                ),
                "invalid UTF-8" | "empty" | "truncated" => {
                    assert_eq!(s, StatusCode::BAD_REQUEST, "{what}: {v}")
                }
                _ => {}
            }
            checked += 1;
        }
    }
    assert!(checked > 400, "{checked}");
    // Settings take defaults for keys left out: a misspelt key must not reset one.
    let (s, v) = t
        .req(
            Method::PUT,
            "/settings",
            Some(json!({"pin_required": true, "points": {"redemption": {"enabeld": false}}})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str(), v["error"]["field"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("unknown_setting"),
            Some("points.redemption.enabeld")
        ),
        "{v}"
    );
    // The business day starts within the day (minutes after midnight).
    let (_, mut settings) = t.get("/settings").await;
    for minutes in [1440, 100_000, u32::MAX as i64] {
        settings["day_starts_at_minutes"] = json!(minutes);
        let (s, v) = t
            .req(Method::PUT, "/settings", Some(settings.clone()))
            .await;
        refused(&format!("day_starts_at_minutes {minutes}"), s, &v);
    }
    unchanged(
        &before,
        &fingerprint(&t, &fx).await,
        "a malformed body changed something",
    );
}

async fn hostile_amounts_are_refused(t: TestApp) {
    let fx = fixtures(&t).await;
    let before = fingerprint(&t, &fx).await;
    // Out of range or not an amount at all, wherever an amount is taken.
    let bad_money = [
        json!(-1),
        json!(i64::MIN),
        json!(i64::MAX),
        json!(u64::MAX),
        json!(1e30),
        json!(-1e30),
        json!(1.5),
        json!("100"),
        json!(true),
        json!([1]),
    ];
    let (card, card2, org, item, category) = (&fx.card, &fx.card2, &fx.org, &fx.item, &fx.category);
    type Build<'a> = Box<dyn Fn(&Value) -> Value + 'a>;
    let mut targets: Vec<(Method, String, Build<'_>)> = vec![
        (
            Method::POST,
            format!("/cards/{card}/top-ups"),
            Box::new(|a| json!({"amount": a, "tender": "cash", "idempotency_key": key()})),
        ),
        (
            Method::POST,
            format!("/cards/{card}/spends"),
            Box::new(|a| json!({"amount": a, "pin": PIN, "idempotency_key": key()})),
        ),
        (
            Method::POST,
            format!("/cards/{card}/transfers"),
            Box::new(
                move |a| json!({"to_card_id": card2, "amount": a, "pin": PIN, "idempotency_key": key()}),
            ),
        ),
        (
            Method::POST,
            format!("/customers/{org}/charges"),
            Box::new(|a| json!({"amount": a, "idempotency_key": key()})),
        ),
        (
            Method::POST,
            format!("/customers/{org}/repayments"),
            Box::new(|a| json!({"amount": a, "tender": "cash", "idempotency_key": key()})),
        ),
        (
            Method::PUT,
            format!("/customers/{org}/charge-account"),
            Box::new(|a| json!({"credit_limit": a})),
        ),
        (
            Method::POST,
            "/purchases".into(),
            Box::new(move |a| {
                json!({"card_id": card, "amount": a, "payments": [{"method": "wechat", "amount": a}],
                       "idempotency_key": key()})
            }),
        ),
        (
            Method::POST,
            "/menu/items".into(),
            Box::new(move |a| json!({"category_id": category, "name": "毒菜", "price": a})),
        ),
        (
            Method::PATCH,
            format!("/menu/items/{item}"),
            Box::new(|a| json!({"price": a})),
        ),
        (
            Method::PUT,
            format!("/menu/items/{item}/member-prices"),
            Box::new(|a| json!({"member_prices": [{"level": "gold", "price": a}]})),
        ),
        (
            Method::POST,
            "/coupon-templates".into(),
            Box::new(|a| {
                json!({"name": "毒券", "kind": {"type": "cash", "value": a},
                       "validity": {"type": "days_after_issue", "days": 30}})
            }),
        ),
        (
            Method::POST,
            "/coupon-templates".into(),
            Box::new(|a| {
                json!({"name": "毒券", "kind": {"type": "cash", "value": 100, "min_spend": a},
                       "validity": {"type": "days_after_issue", "days": 30}})
            }),
        ),
        (
            Method::POST,
            "/coupon-templates".into(),
            Box::new(|a| {
                json!({"name": "毒券", "kind": {"type": "discount", "percent_off_bp": 1000, "cap": a},
                       "validity": {"type": "days_after_issue", "days": 30}})
            }),
        ),
        (
            Method::POST,
            "/gifts".into(),
            Box::new(|a| json!({"name": "毒礼", "points_price": a})),
        ),
        (
            Method::POST,
            "/shifts".into(),
            Box::new(|a| json!({"opening_float": a})),
        ),
    ];
    // A checkout's every number: open prices, quantities, tender amounts, points.
    for path in ["/checkouts/quote", "/checkouts"] {
        targets.push((
            Method::POST,
            path.into(),
            Box::new(|a| {
                json!({"lines": [{"name": "茶位费", "quantity": 1, "unit_price": a}],
                       "tenders": [{"method": "cash"}], "idempotency_key": key()})
            }),
        ));
        targets.push((
            Method::POST,
            path.into(),
            Box::new(move |a| {
                json!({"lines": [{"item_id": item, "quantity": a}],
                       "tenders": [{"method": "cash"}], "idempotency_key": key()})
            }),
        ));
        targets.push((
            Method::POST,
            path.into(),
            Box::new(move |a| {
                json!({"lines": [{"item_id": item, "quantity": 1}],
                       "tenders": [{"method": "cash", "amount": a}], "idempotency_key": key()})
            }),
        ));
        targets.push((
            Method::POST,
            path.into(),
            Box::new(move |a| {
                json!({"lines": [{"item_id": item, "quantity": 1}], "customer": {"card_id": card},
                       "points": a, "tenders": [{"method": "stored_value"}], "pin": PIN,
                       "idempotency_key": key()})
            }),
        ));
    }
    let mut checked = 0;
    for (method, path, build) in &targets {
        for a in &bad_money {
            let body = build(a);
            let (s, v) = t.req(method.clone(), path, Some(body.clone())).await;
            refused(&format!("{method} {path} {body}"), s, &v);
            checked += 1;
        }
    }
    // Zero is no amount where money moves.
    for (method, path, build) in &targets[..5] {
        let body = build(&json!(0));
        let (s, v) = t.req(method.clone(), path, Some(body.clone())).await;
        refused(&format!("{method} {path} {body}"), s, &v);
    }
    // An adjustment may be negative (a correction), but not past the balance, not by
    // i64::MIN (which has no positive twin) and not by zero.
    for amount in [
        json!(-100_001),
        json!(i64::MIN),
        json!(i64::MAX),
        json!(0),
        json!(1e30),
        json!(1.5),
    ] {
        for balance in ["principal", "bonus", "points", "nonsense"] {
            let body = json!({"balance": balance, "amount": amount, "reason": "hostile",
                              "idempotency_key": key()});
            let (s, v) = t
                .post(&format!("/cards/{card}/adjustments"), body.clone())
                .await;
            refused(&format!("adjustment {body}"), s, &v);
        }
    }
    // Previews and quotes in query strings: a 4xx or an answer, never a 5xx.
    for a in [
        "-1",
        "0",
        "9223372036854775807",
        "-9223372036854775808",
        "99999999999999999999",
        "1e30",
        "1.5",
        "abc",
        "",
    ] {
        for path in [
            format!("/top-up-preview?amount={a}"),
            format!("/cards/{card}/points/cash-quote?bill={a}"),
            format!("/cards/{card}/points/cash-quote?bill=10000&points={a}"),
            format!("/customers?page={a}&per_page={a}"),
            format!("/customers/lookup?q=138&limit={a}"),
            format!("/customers/{}/timeline?limit={a}", fx.customer),
            format!("/audit?page={a}&per_page={a}"),
            format!("/analytics/churn?k={a}&min_visits={a}"),
            format!("/analytics/quadrants?freq_threshold={a}&spend_threshold={a}&points={a}"),
            format!("/analytics/affinity?min_together={a}&limit={a}"),
            format!("/analytics/card-liveness?days={a}"),
        ] {
            let (s, v) = t.get(&path).await;
            assert!(s.is_success() || s.is_client_error(), "{path}: {s} {v}");
            if !s.is_success() {
                refused(&path, s, &v);
            }
        }
    }
    let (_, p) = t.get("/top-up-preview?amount=9223372036854775807").await;
    assert!(p["bonus"].as_i64().unwrap_or(0) >= 0, "{p}");
    assert!(checked > 200, "{checked}");
    unchanged(
        &before,
        &fingerprint(&t, &fx).await,
        "a hostile amount changed something",
    );
    // A replacement retried with the key of another request: 409, not a 500.
    let reused = key();
    let (s, v) = t
        .post(
            &format!("/cards/{card2}/replacement"),
            json!({"idempotency_key": reused}),
        )
        .await;
    assert!(s.is_success(), "{v}");
    let (s, v) = t
        .post(
            &format!("/cards/{card}/replacement"),
            json!({"idempotency_key": reused}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("idempotency_key_reused")),
        "{v}"
    );
}

/// SQL, markup, template and format-string payloads; none has surrounding spaces, so
/// trimming leaves them as they are.
const HOSTILE: [&str; 9] = [
    "'; DROP TABLE customers; --",
    "x'); DELETE FROM ledger_entries WHERE ('1'='1",
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(1)>",
    "{{7*7}} ${7*7} %s%n%x",
    "% _ \\ ' \" ` ;",
    "😀 \u{202e}RTL 𠀀 é",
    "1 OR 1=1 UNION SELECT password_hash FROM staff",
    "</textarea><svg/onload=alert(1)>",
];

async fn injection_and_markup_are_data(t: TestApp) {
    let fx = fixtures(&t).await;
    // Free text is stored verbatim and returned unchanged.
    let free_text = [
        "name",
        "notes",
        "address",
        "company",
        "title",
        "industry",
        "nationality",
        "seat_preference",
        "churn_note",
        "marketing_consent_source",
    ];
    let lists = ["tags", "tastes", "allergies", "favourite_dishes"];
    for evil in HOSTILE {
        let mut body = json!({});
        for f in free_text {
            // Names and short fields have their own limits; every payload fits them.
            body[f] = json!(evil);
        }
        for f in lists {
            body[f] = json!([evil]);
        }
        let (s, c) = t.post("/customers", body.clone()).await;
        assert_eq!(s, StatusCode::CREATED, "{body}: {c}");
        let created = id(&c);
        let (_, got) = t.get(&format!("/customers/{created}")).await;
        for f in free_text {
            assert_eq!(got[f], evil, "{f}: {got}");
        }
        for f in lists {
            assert_eq!(got[f], json!([evil]), "{f}: {got}");
        }
        // And through a merge patch.
        let (s, u) = t
            .patch(
                &format!("/customers/{}", fx.customer),
                json!({"notes": evil, "tags": [evil, "常客"]}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{u}");
        assert_eq!(
            (u["notes"].as_str(), &u["tags"]),
            (Some(evil), &json!([evil, "常客"]))
        );
        // Searches treat them as text: an answer, never an error.
        for q in [
            format!("/customers?name={}", urlencode(evil)),
            format!("/customers?tag={}", urlencode(evil)),
            format!("/customers/lookup?q={}", urlencode(evil)),
            format!("/audit?action={}", urlencode(evil)),
        ] {
            let (s, v) = t.get(&q).await;
            assert_eq!(s, StatusCode::OK, "{q}: {v}");
        }
        let (_, v) = t.get(&format!("/customers?tag={}", urlencode(evil))).await;
        assert!(
            v["items"].as_array().unwrap().len() >= 2,
            "the tag is found as text: {v}"
        );
        // Menu, coupons, gifts, staff, tokens: the same.
        let (s, c) = t
            .post(
                "/menu/categories",
                json!({"name": format!("{evil} 类"), "name_en": evil}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{c}");
        assert_eq!(
            (c["name"].as_str(), c["name_en"].as_str()),
            (Some(format!("{evil} 类").as_str()), Some(evil))
        );
        let (s, i) = t
            .post(
                "/menu/items",
                json!({"category_id": fx.category, "name": format!("{evil} 菜"), "name_en": evil,
                       "price": 100}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{i}");
        let (_, i) = t.get(&format!("/menu/items/{}", id(&i))).await;
        assert_eq!(i["name_en"], evil, "{i}");
        let (s, tpl) = t
            .post(
                "/coupon-templates",
                json!({"name": format!("{evil} 券"), "name_en": evil,
                       "kind": {"type": "cash", "value": 100},
                       "validity": {"type": "days_after_issue", "days": 30}}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{tpl}");
        let (_, tpl) = t.get(&format!("/coupon-templates/{}", id(&tpl))).await;
        assert_eq!(tpl["name_en"], evil, "{tpl}");
        let (s, g) = t
            .post(
                "/gifts",
                json!({"name": format!("{evil} 礼"), "name_en": evil, "points_price": 1}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{g}");
        assert_eq!(g["name_en"], evil, "{g}");
        let (s, st) = t
            .patch(
                &format!("/staff/{}", fx.staff),
                json!({"display_name": evil}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{st}");
        assert_eq!(st["display_name"], evil, "{st}");
        let (s, tok) = t
            .post(
                "/api-tokens",
                json!({"name": evil, "scope": ["view_customers"]}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{tok}");
        assert_eq!(tok["api_token"]["name"], evil, "{tok}");
        // A memo and a reason on money movements are text too.
        let (s, r) = t
            .post(
                &format!("/customers/{}/charges", fx.org),
                json!({"amount": 1, "memo": evil, "idempotency_key": key()}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{r}");
    }

    // Fields with a format: a 4xx with a code and the field, nothing changed.
    let before = fingerprint(&t, &fx).await;
    let formatted = [
        "phone",
        "email",
        "birthday",
        "gender",
        "age_band",
        "customer_type",
        "credit_rating",
        "id_number",
        "id_document_kind",
        "lifecycle_stage",
        "churn_reason",
        "acquisition_source",
        "organization_id",
        "referred_by",
    ];
    for evil in HOSTILE {
        for f in formatted {
            // The kind of an ID document is read only with its number.
            let mut body = json!({"name": "客人", f: evil});
            let mut patch = json!({f: evil});
            if f == "id_document_kind" {
                body["id_number"] = json!("11010519491231002X");
                patch["id_number"] = json!("11010519491231002X");
            }
            let (s, v) = t.post("/customers", body).await;
            refused(&format!("customer {f} = {evil}"), s, &v);
            assert_eq!(v["error"]["field"], f, "{v}");
            let (s, v) = t.patch(&format!("/customers/{}", fx.customer), patch).await;
            refused(&format!("customer patch {f} = {evil}"), s, &v);
        }
        let (s, v) = t
            .post(
                "/staff",
                json!({"username": evil, "display_name": "x", "password": "staff password 1",
                       "role": "cashier"}),
            )
            .await;
        refused(&format!("staff username {evil}"), s, &v);
        for (method, path, body) in [
            (
                Method::POST,
                "/staff".to_string(),
                json!({"username": "okname", "display_name": "x", "password": "staff password 1",
                       "role": evil}),
            ),
            (
                Method::POST,
                "/api-tokens".to_string(),
                json!({"name": "t", "scope": [evil]}),
            ),
            (
                Method::POST,
                format!("/cards/{}/top-ups", fx.card),
                json!({"amount": 100, "tender": evil, "idempotency_key": key()}),
            ),
            (
                Method::POST,
                format!("/cards/{}/adjustments", fx.card),
                json!({"balance": evil, "amount": 1, "reason": "x", "idempotency_key": key()}),
            ),
            (
                Method::PUT,
                format!("/customers/{}/level", fx.customer),
                json!({"level": evil, "reason": "x"}),
            ),
            (
                Method::PUT,
                format!("/menu/items/{}/member-prices", fx.item),
                json!({"member_prices": [{"level": evil, "price": 1}]}),
            ),
            (
                Method::POST,
                "/checkouts/quote".to_string(),
                json!({"lines": [{"item_id": fx.item, "quantity": 1}], "coupons": [evil],
                       "tenders": [{"method": "cash"}]}),
            ),
            (
                Method::POST,
                "/checkouts/quote".to_string(),
                json!({"lines": [{"item_id": fx.item, "quantity": 1}],
                       "tenders": [{"method": evil}]}),
            ),
            (
                Method::POST,
                format!("/coupon-templates/{}/issue", fx.template),
                json!({"customer_ids": [evil]}),
            ),
        ] {
            let (s, v) = t.req(method.clone(), &path, Some(body.clone())).await;
            refused(&format!("{method} {path} {body}"), s, &v);
        }
        // Look-ups by a hostile key find nothing.
        for path in [
            format!("/cards/by-number?number={}", urlencode(evil)),
            format!("/coupons/{}", urlencode(evil)),
            format!("/customers/{}", urlencode(evil)),
        ] {
            let (s, v) = t.get(&path).await;
            refused(&path, s, &v);
        }
        let (s, v) = t
            .post("/customers/lookup-by-id-number", json!({"id_number": evil}))
            .await;
        refused("lookup-by-id-number", s, &v);
        let (s, v) = t
            .client
            .post(format!("{}/auth/login", t.base))
            .json(&json!({"tenant": evil, "username": evil, "password": evil}))
            .send()
            .await
            .map(|r| r.status())
            .map(|s| (s, Value::Null))
            .unwrap();
        assert!(s.is_client_error(), "login: {s} {v}");
    }
    unchanged(
        &before,
        &fingerprint(&t, &fx).await,
        "a refused value changed something",
    );
    // A hostile PIN is a wrong PIN: refused, counted, and the card locks after five.
    for evil in HOSTILE {
        let (s, v) = t
            .post(
                &format!("/cards/{}/spends", fx.card),
                json!({"amount": 100, "pin": evil, "idempotency_key": key()}),
            )
            .await;
        refused(&format!("spend with PIN {evil}"), s, &v);
        assert!(
            matches!(
                v["error"]["code"].as_str(),
                Some("wrong_pin" | "card_locked")
            ),
            "{v}"
        );
    }
}

async fn control_characters_and_overlong_text_are_refused(t: TestApp) {
    let fx = fixtures(&t).await;
    let before = fingerprint(&t, &fx).await;
    for v in [
        "nul\u{0}byte",
        "bell\u{7}",
        "\u{1b}[31mred\u{1b}[0m",
        "back\u{8}space",
        "del\u{7f}",
        "c1\u{85}next-line",
        "\u{0}",
    ] {
        for (method, path, body, field) in text_requests(&fx, v) {
            let (s, r) = t.req(method.clone(), &path, Some(body)).await;
            let what = format!("{method} {path} {field} = {v:?}");
            refused(&what, s, &r);
            assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {r}");
            let named = r["error"]["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .chain([&r["error"]])
                .any(|e| e["code"] == "invalid_characters");
            assert!(named, "{what}: {r}");
        }
    }
    unchanged(
        &before,
        &fingerprint(&t, &fx).await,
        "a refused value changed something",
    );
    // 100,000 characters: a 4xx with a code where the field has a limit; free text
    // without one is stored. Never a 5xx (nor a column too narrow on PostgreSQL).
    let long = "长".repeat(100_000);
    for (method, path, body, field) in text_requests(&fx, &long) {
        let (s, r) = t.req(method.clone(), &path, Some(body)).await;
        let what = format!("{method} {path} {field} (100,000 characters)");
        assert!(s.is_success() || s.is_client_error(), "{what}: {s} {r}");
        if s.is_client_error() {
            refused(&what, s, &r);
        }
    }
}

/// A request per text field, the text in it.
fn text_requests(fx: &Fx, v: &str) -> Vec<(Method, String, Value, &'static str)> {
    let (c, i, tpl, g, st, org) = (
        &fx.category,
        &fx.item,
        &fx.template,
        &fx.gift,
        &fx.staff,
        &fx.org,
    );
    vec![
        (
            Method::POST,
            "/customers".into(),
            json!({"name": v}),
            "customer name",
        ),
        (
            Method::POST,
            "/customers".into(),
            json!({"name": "x", "notes": v}),
            "customer notes",
        ),
        (
            Method::POST,
            "/customers".into(),
            json!({"name": "x", "tags": [v]}),
            "customer tags",
        ),
        (
            Method::PATCH,
            format!("/customers/{}", fx.customer),
            json!({"address": v}),
            "customer address",
        ),
        (
            Method::POST,
            "/menu/categories".into(),
            json!({"name": v}),
            "category name",
        ),
        (
            Method::PATCH,
            format!("/menu/categories/{c}"),
            json!({"name_en": v}),
            "category name_en",
        ),
        (
            Method::POST,
            "/menu/items".into(),
            json!({"category_id": c, "name": v, "price": 100}),
            "item name",
        ),
        (
            Method::PATCH,
            format!("/menu/items/{i}"),
            json!({"name_en": v}),
            "item name_en",
        ),
        (
            Method::POST,
            "/coupon-templates".into(),
            json!({"name": v, "kind": {"type": "cash", "value": 100},
                   "validity": {"type": "days_after_issue", "days": 30}}),
            "template name",
        ),
        (
            Method::PATCH,
            format!("/coupon-templates/{tpl}"),
            json!({"name_en": v}),
            "template name_en",
        ),
        (
            Method::POST,
            "/gifts".into(),
            json!({"name": v, "points_price": 1}),
            "gift name",
        ),
        (
            Method::PUT,
            format!("/gifts/{g}"),
            json!({"name": "桌游券", "name_en": v, "points_price": 10}),
            "gift name_en",
        ),
        (
            Method::POST,
            "/staff".into(),
            json!({"username": "newbie", "display_name": v, "password": "staff password 1",
                   "role": "cashier"}),
            "staff display_name",
        ),
        (
            Method::PATCH,
            format!("/staff/{st}"),
            json!({"display_name": v}),
            "staff display_name (patch)",
        ),
        (
            Method::POST,
            "/api-tokens".into(),
            json!({"name": v, "scope": ["view_customers"]}),
            "token name",
        ),
        (
            Method::POST,
            format!("/customers/{org}/charges"),
            json!({"amount": 1, "memo": v, "idempotency_key": key()}),
            "charge memo",
        ),
        (
            Method::POST,
            format!("/cards/{}/spends", fx.card),
            json!({"amount": 1, "pin": PIN, "memo": v, "idempotency_key": key()}),
            "spend memo",
        ),
        (
            Method::POST,
            format!("/cards/{}/adjustments", fx.card),
            json!({"balance": "principal", "amount": 1, "reason": v, "idempotency_key": key()}),
            "adjustment reason",
        ),
        (
            Method::POST,
            format!("/cards/{}/top-ups", fx.card),
            json!({"amount": 100, "tender": "cash", "idempotency_key": v}),
            "idempotency key",
        ),
        (
            Method::POST,
            "/checkouts".into(),
            json!({"lines": [{"name": v, "quantity": 1, "unit_price": 100}],
                   "tenders": [{"method": "cash"}], "idempotency_key": key()}),
            "open line name",
        ),
        (
            Method::POST,
            "/shifts".into(),
            json!({"opening_float": 100, "note": v}),
            "shift note",
        ),
    ]
}

/// Percent-encodes everything but unreserved characters, for query strings and paths.
fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
