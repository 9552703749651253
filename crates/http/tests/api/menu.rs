//! The menu through the API, on both backends: categories, dishes, member prices, price
//! history and quotes.

use crate::support::TestApp;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

crate::both_backends!(
    categories_items_and_price_history,
    member_prices_and_quotes,
    deactivate_and_filters,
    menu_tenant_isolation,
);

async fn category(t: &TestApp, name: &str) -> String {
    let (s, c) = t
        .post(
            "/menu/categories",
            json!({"name": name, "name_en": "Hot Dishes"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    c["id"].as_str().unwrap().to_string()
}

async fn item(t: &TestApp, body: Value) -> Value {
    let (s, i) = t.post("/menu/items", body).await;
    assert_eq!(s, StatusCode::CREATED, "{i}");
    i
}

async fn history(t: &TestApp, id: &str) -> Vec<Value> {
    let (s, h) = t.get(&format!("/menu/items/{id}/price-history")).await;
    assert_eq!(s, StatusCode::OK, "{h}");
    h.as_array().unwrap().clone()
}

/// A time for a query string: UTC with `Z`, so no `+` needs escaping.
fn q_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn time_of(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

async fn quote(t: &TestApp, id: &str, query: &str) -> Value {
    let (s, q) = t.get(&format!("/menu/items/{id}/quote?{query}")).await;
    assert_eq!(s, StatusCode::OK, "{query}: {q}");
    q
}

async fn categories_items_and_price_history(t: TestApp) {
    let hot = category(&t, "热菜").await;
    let (s, e) = t.post("/menu/categories", json!({"name": "热菜"})).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("name_taken"))
    );
    assert_eq!(e["error"]["existing_id"], hot.as_str());
    let (s, e) = t.post("/menu/categories", json!({"name": "  "})).await;
    assert_eq!(
        (s, e["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("name"))
    );
    let cold = category(&t, "凉菜").await;
    let (s, c) = t
        .patch(
            &format!("/menu/categories/{cold}"),
            json!({"sort_order": 5, "name_en": "Cold Dishes"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    let (_, cats) = t.get("/menu/categories").await;
    let names: Vec<&str> = cats
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["凉菜", "热菜"]);
    let (s, _) = t
        .patch(&format!("/menu/categories/{cold}"), json!({"name": "热菜"}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);

    // Bad dishes are refused and leave nothing behind.
    for (body, field) in [
        (
            json!({"category_id": hot, "name": "", "price": 100}),
            "name",
        ),
        (
            json!({"category_id": hot, "name": "红烧肉", "price": -1}),
            "price",
        ),
        (
            json!({"category_id": cold, "name": "红烧肉", "price": 100, "member_prices": [{"level": "gold", "price": 200}]}),
            "member_prices[0].price",
        ),
        (
            json!({"category_id": uuid::Uuid::now_v7(), "name": "红烧肉", "price": 100}),
            "category_id",
        ),
    ] {
        let (s, e) = t.post("/menu/items", body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(e["error"]["field"], field, "{e}");
    }
    let (_, all) = t.get("/menu/items").await;
    assert_eq!(all, json!([]));

    let pork = item(
        &t,
        json!({"category_id": hot, "name": "红烧肉", "name_en": "Braised Pork", "price": 6800}),
    )
    .await;
    assert_eq!(
        (pork["joins_discounts"].as_bool(), pork["active"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(pork["member_prices"], json!([]));
    let id = pork["id"].as_str().unwrap();
    let (s, e) = t
        .post(
            "/menu/items",
            json!({"category_id": hot, "name": "红烧肉", "price": 100}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("name_taken"))
    );
    // The same name in another category is another dish.
    item(
        &t,
        json!({"category_id": cold, "name": "红烧肉", "price": 100}),
    )
    .await;

    let h = history(&t, id).await;
    assert_eq!(h.len(), 1);
    assert_eq!(
        (
            h[0]["kind"].as_str(),
            h[0]["price"].as_i64(),
            h[0]["seq"].as_i64()
        ),
        (Some("created"), Some(6800), Some(1))
    );
    assert!(h[0]["staff_id"].is_string());
    let created_at = time_of(&h[0]["effective_from"]);

    // A new price: both rows kept, the old price still answers for the old moment.
    let (s, p) = t
        .patch(
            &format!("/menu/items/{id}"),
            json!({"price": 7200, "name_en": "Braised Pork Belly"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(
        (p["price"].as_i64(), p["name_en"].as_str()),
        (Some(7200), Some("Braised Pork Belly"))
    );
    let h = history(&t, id).await;
    let prices: Vec<(i64, &str)> = h
        .iter()
        .map(|r| (r["price"].as_i64().unwrap(), r["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(prices, [(6800, "created"), (7200, "price")]);
    assert!(time_of(&h[1]["effective_from"]) > created_at);
    // A change that leaves the price alone adds no row.
    let (s, _) = t
        .patch(
            &format!("/menu/items/{id}"),
            json!({"joins_discounts": false, "price": 7200}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(history(&t, id).await.len(), 2);

    let q = quote(&t, id, &format!("at={}", q_time(created_at))).await;
    assert_eq!(
        (q["unit_price"].as_i64(), q["regular"].as_i64()),
        (Some(6800), Some(6800))
    );
    assert_eq!(time_of(&q["prices_from"]), created_at);
    let q = quote(&t, id, "").await;
    assert_eq!(q["unit_price"], 7200);
    assert_eq!(q["basis"], json!({"kind": "regular"}));
    // Before the dish existed there is no price; a malformed time is a 400.
    let (s, e) = t
        .get(&format!(
            "/menu/items/{id}/quote?at={}",
            q_time(created_at - Duration::days(1))
        ))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    let (s, _) = t.get(&format!("/menu/items/{id}/quote?at=yesterday")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

async fn member_prices_and_quotes(t: TestApp) {
    let hot = category(&t, "热菜").await;
    let pork = item(
        &t,
        json!({"category_id": hot, "name": "红烧肉", "price": 6800, "member_prices": [{"level": "gold", "price": 5800}]}),
    )
    .await;
    let id = pork["id"].as_str().unwrap();
    assert_eq!(
        pork["member_prices"],
        json!([{"level": "gold", "price": 5800}])
    );
    let first = time_of(&history(&t, id).await[0]["effective_from"]);

    let path = format!("/menu/items/{id}/member-prices");
    let set = json!({"member_prices": [{"card_kind": "member_price", "price": 6200}, {"level": "gold", "price": 5800}]});
    let (s, p) = t.req(Method::PUT, &path, Some(set)).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(
        p["member_prices"],
        json!([{"level": "gold", "price": 5800}, {"card_kind": "member_price", "price": 6200}])
    );

    for (query, price, basis) in [
        ("level=gold", 5800, json!({"kind": "level", "code": "gold"})),
        (
            "card_kinds=member_price",
            6200,
            json!({"kind": "card_kind", "code": "member_price"}),
        ),
        (
            "level=gold&card_kinds=member_price,stored_value",
            5800,
            json!({"kind": "level", "code": "gold"}),
        ),
        (
            "level=gold&card_kinds=member_price&member_price_access=false",
            6200,
            json!({"kind": "card_kind", "code": "member_price"}),
        ),
        (
            "level=silver&card_kinds=stored_value,points",
            6800,
            json!({"kind": "regular"}),
        ),
        ("", 6800, json!({"kind": "regular"})),
    ] {
        let q = quote(&t, id, query).await;
        assert_eq!(
            (q["unit_price"].as_i64(), &q["basis"]),
            (Some(price), &basis),
            "{query}: {q}"
        );
        assert_eq!(q["regular"], 6800);
    }
    // When only the gold price existed, a member-price card paid the regular price.
    let q = quote(
        &t,
        id,
        &format!("card_kinds=member_price&at={}", q_time(first)),
    )
    .await;
    assert_eq!(q["unit_price"], 6800);
    for (query, field) in [
        ("card_kinds=diamond", "card_kinds"),
        ("level=Gold", "level"),
    ] {
        let (s, e) = t.get(&format!("/menu/items/{id}/quote?{query}")).await;
        assert_eq!(
            (s, e["error"]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{e}"
        );
    }

    // Refused changes change nothing: the item and its history stay as they were.
    let before = t.get(&format!("/menu/items/{id}")).await.1;
    let rows = history(&t, id).await.len();
    for (body, field, code) in [
        (
            json!({"member_prices": [{"level": "gold", "price": 6900}]}),
            "member_prices[0].price",
            "above_regular_price",
        ),
        (
            json!({"member_prices": [{"card_kind": "diamond", "price": 100}]}),
            "member_prices[0].card_kind",
            "unknown_card_kind",
        ),
        (
            json!({"member_prices": [{"level": "金卡", "price": 100}]}),
            "member_prices[0].level",
            "invalid_level_code",
        ),
        (
            json!({"member_prices": [{"level": "gold", "card_kind": "points", "price": 100}]}),
            "member_prices[0]",
            "one_target",
        ),
        (
            json!({"member_prices": [{"level": "gold", "price": 100}, {"level": "gold", "price": 200}]}),
            "member_prices[1]",
            "duplicate_target",
        ),
    ] {
        let (s, e) = t.req(Method::PUT, &path, Some(body)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
        assert_eq!(
            (
                e["error"]["field"].as_str(),
                e["error"]["fields"][0]["code"].as_str()
            ),
            (Some(field), Some(code)),
            "{e}"
        );
    }
    let (s, e) = t
        .patch(&format!("/menu/items/{id}"), json!({"price": 6000}))
        .await;
    assert_eq!(
        (s, e["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("below_member_price"))
    );
    assert_eq!(t.get(&format!("/menu/items/{id}")).await.1, before);
    assert_eq!(history(&t, id).await.len(), rows);

    // Every change is in the history with the complete set of prices.
    let h = history(&t, id).await;
    let kinds: Vec<&str> = h.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["created", "member_prices"]);
    assert_eq!(
        h[0]["member_prices"],
        json!([{"level": "gold", "price": 5800}])
    );
    assert_eq!(h[1]["member_prices"], before["member_prices"]);
    // Removing them all.
    let (s, p) = t
        .req(Method::PUT, &path, Some(json!({"member_prices": []})))
        .await;
    assert_eq!((s, &p["member_prices"]), (StatusCode::OK, &json!([])));
    assert_eq!(quote(&t, id, "level=gold").await["unit_price"], 6800);
    assert_eq!(history(&t, id).await.len(), 3);
}

async fn deactivate_and_filters(t: TestApp) {
    let hot = category(&t, "热菜").await;
    let (_, drinks) = t
        .post(
            "/menu/categories",
            json!({"name": "饮品", "name_en": "Drinks"}),
        )
        .await;
    let drinks = drinks["id"].as_str().unwrap();
    let pork = item(
        &t,
        json!({"category_id": hot, "name": "红烧肉", "name_en": "Braised Pork", "price": 6800}),
    )
    .await;
    item(&t, json!({"category_id": hot, "name": "宫保鸡丁", "name_en": "Kung Pao Chicken", "price": 4800})).await;
    let cola = item(&t, json!({"category_id": drinks, "name": "可口可乐", "name_en": "Coca-Cola", "price": 800, "joins_discounts": false})).await;
    assert_eq!(cola["joins_discounts"], false);
    let id = pork["id"].as_str().unwrap();

    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (s, e) = t
        .patch(&format!("/menu/items/{id}"), json!({"active": false}))
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    let (_, active) = t.get("/menu/items?active=true").await;
    assert!(!names(&active).contains(&"红烧肉".to_string()), "{active}");
    assert_eq!(active.as_array().unwrap().len(), 2);
    let (_, inactive) = t.get("/menu/items?active=false").await;
    assert_eq!(names(&inactive), ["红烧肉"]);
    // Still there for old receipts: by id, its history, its quote.
    assert_eq!(t.get(&format!("/menu/items/{id}")).await.1["active"], false);
    assert_eq!(quote(&t, id, "").await["unit_price"], 6800);

    let (_, found) = t.get("/menu/items?q=PORK").await;
    assert_eq!(names(&found), ["红烧肉"]);
    let (_, found) = t.get(&format!("/menu/items?q={}", "鸡")).await;
    assert_eq!(names(&found), ["宫保鸡丁"]);
    let (_, found) = t.get("/menu/items?q=100%25").await;
    assert_eq!(found, json!([]));
    let (_, found) = t.get(&format!("/menu/items?category_id={drinks}")).await;
    assert_eq!(names(&found), ["可口可乐"]);
    // Moving a dish to another category.
    let (s, moved) = t
        .patch(&format!("/menu/items/{id}"), json!({"category_id": drinks}))
        .await;
    assert_eq!(
        (s, moved["category_id"].as_str()),
        (StatusCode::OK, Some(drinks))
    );
    let (s, _) = t
        .patch(
            &format!("/menu/items/{id}"),
            json!({"category_id": uuid::Uuid::now_v7()}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = t
        .patch(
            &format!("/menu/items/{}", uuid::Uuid::now_v7()),
            json!({"active": true}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The older menu endpoint still lists everything.
    let (_, menu) = t.get("/menu").await;
    assert_eq!(menu["items"].as_array().unwrap().len(), 3);
}

async fn menu_tenant_isolation(t: TestApp) {
    let hot = category(&t, "热菜").await;
    let pork = item(
        &t,
        json!({"category_id": hot, "name": "红烧肉", "price": 6800}),
    )
    .await;
    let id = pork["id"].as_str().unwrap();
    let other = t.second_tenant().await;
    let as_other = |m: Method, p: String, b: Option<Value>| {
        let other = other.clone();
        let t = &t;
        async move { t.req_as(&other, m, &p, b).await }
    };
    for (m, p, b) in [
        (Method::GET, format!("/menu/items/{id}"), None),
        (
            Method::PATCH,
            format!("/menu/items/{id}"),
            Some(json!({"price": 1})),
        ),
        (
            Method::PUT,
            format!("/menu/items/{id}/member-prices"),
            Some(json!({"member_prices": []})),
        ),
        (Method::GET, format!("/menu/items/{id}/price-history"), None),
        (Method::GET, format!("/menu/items/{id}/quote"), None),
        (
            Method::PATCH,
            format!("/menu/categories/{hot}"),
            Some(json!({"name": "x"})),
        ),
    ] {
        let (s, e) = as_other(m.clone(), p.clone(), b).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{m} {p}: {e}");
    }
    assert_eq!(
        as_other(Method::GET, "/menu/items".into(), None).await.1,
        json!([])
    );
    assert_eq!(
        as_other(Method::GET, "/menu/categories".into(), None)
            .await
            .1,
        json!([])
    );
    let (s, e) = as_other(
        Method::POST,
        "/menu/items".into(),
        Some(json!({"category_id": hot, "name": "偷菜", "price": 1})),
    )
    .await;
    assert_eq!(
        (s, e["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("category_id"))
    );
    // Names are per tenant.
    let (s, _) = as_other(
        Method::POST,
        "/menu/categories".into(),
        Some(json!({"name": "热菜"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    // Tenant one's dish is untouched.
    let (_, again) = t.get(&format!("/menu/items/{id}")).await;
    assert_eq!(
        (again["price"].as_i64(), history(&t, id).await.len()),
        (Some(6800), 1)
    );
    let (_, doc) = t.get("/openapi.json").await;
    for p in [
        "/menu/categories",
        "/menu/items/{id}/member-prices",
        "/menu/items/{id}/quote",
    ] {
        assert!(
            doc["paths"].get(p).is_some(),
            "{p} missing from the OpenAPI document"
        );
    }
}
