//! Points, levels, gifts and expiry through the API, on both backends.

use crate::support::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

crate::both_backends!(
    purchase_earns_explained_points,
    level_follows_growth_not_points,
    gifts_take_points_and_stock_once,
    lots_expire_soonest_first,
    stored_value_spend_earns_and_reversal_takes_back,
    review_downgrades_at_most_every_six_months,
    points_buy_coupons_and_spends_trigger_them,
);

fn key() -> String {
    uuid::Uuid::now_v7().to_string()
}

async fn member(t: &TestApp, phone: &str) -> (String, String) {
    let customer = t.customer(json!({"name": "积分客", "phone": phone})).await;
    let (s, c) = t
        .post("/cards", json!({"customer_id": customer, "pin": "246810"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    (customer, c["id"].as_str().unwrap().to_string())
}

async fn settings(t: &TestApp, change: impl FnOnce(&mut Value)) {
    let (s, mut v) = t.get("/settings").await;
    assert_eq!(s, StatusCode::OK);
    change(&mut v);
    let (s, r) = t.req(Method::PUT, "/settings", Some(v)).await;
    assert_eq!(s, StatusCode::OK, "{r}");
}

/// Plain rules: 1 point per yuan, no bonuses, no birthday, no expiry.
async fn plain_rules(t: &TestApp) {
    settings(t, |v| {
        v["points"]["threshold_bonus"] = Value::Null;
        v["points"]["nth_visit_bonus"] = Value::Null;
        v["points"]["birthday"] = Value::Null;
        v["points"]["expiry"] = json!("never");
    })
    .await;
}

async fn purchase(t: &TestApp, card: &str, fen: i64) -> Value {
    let (s, r) = t
        .post(
            "/purchases",
            json!({"card_id": card, "amount": fen, "payments": [{"method": "wechat", "amount": fen}], "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    r
}

async fn points_of(t: &TestApp, card: &str) -> Value {
    let (s, p) = t.get(&format!("/cards/{card}/points")).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    p
}

async fn verify_clean(t: &TestApp) {
    let report = t.app.verify_ledger().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.violations);
}

async fn purchase_earns_explained_points(t: TestApp) {
    plain_rules(&t).await;
    let (customer, card) = member(&t, "13900000001").await;
    let (s, l) = t
        .req(
            Method::PUT,
            &format!("/customers/{customer}/level"),
            Some(json!({"level": "gold", "reason": "开业老客"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{l}");
    let r = purchase(&t, &card, 28_600).await;
    assert_eq!(r["earned"]["points_earned"], 429);
    assert_eq!(r["receipt"]["after"]["points"], 429);
    let p = points_of(&t, &card).await;
    assert_eq!(p["balance"], 429);
    let e = &p["entries"][0];
    assert_eq!(e["rule"], "earn");
    assert_eq!(e["points"], 429);
    assert_eq!(
        e["explanation"],
        "消费 286 元 × 1 分/元 × 金卡 1.5 倍 = 429 分"
    );
    assert!(
        e["explanation_en"].as_str().unwrap().ends_with("429 pts"),
        "{e}"
    );
    // Every points entry explains its own amount.
    for e in p["entries"].as_array().unwrap() {
        let n = e["points"].as_i64().unwrap();
        assert!(
            e["explanation"]
                .as_str()
                .unwrap()
                .contains(&n.abs().to_string()),
            "{e}"
        );
    }
    // Bad input changes nothing.
    let (s, err) = t
        .post(
            "/purchases",
            json!({"card_id": card, "amount": 10_000, "payments": [{"method": "cash", "amount": 9_000}], "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        err["error"]["fields"][0]["code"], "payments_do_not_add_up",
        "{err}"
    );
    let (s, _) = t
        .post(
            "/purchases",
            json!({"card_id": card, "amount": 10_000, "payments": [{"method": "stored_value", "amount": 10_000}], "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(points_of(&t, &card).await["balance"], 429);
    // A retry with the same key answers the same and earns nothing more.
    let k = key();
    let body = json!({"card_id": card, "amount": 10_000, "payments": [{"method": "cash", "amount": 10_000}], "idempotency_key": k});
    let (_, first) = t.post("/purchases", body.clone()).await;
    let (s, again) = t.post("/purchases", body).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(again["receipt"]["replayed"], true);
    assert_eq!(
        again["earned"]["points_earned"],
        first["earned"]["points_earned"]
    );
    assert_eq!(points_of(&t, &card).await["balance"], 429 + 150);
    verify_clean(&t).await;
}

async fn level_follows_growth_not_points(t: TestApp) {
    plain_rules(&t).await;
    let (customer, card) = member(&t, "13900000002").await;
    // A huge points balance (a manual adjustment) is not growth value.
    let (s, r) = t
        .post(
            &format!("/cards/{card}/adjustments"),
            json!({"balance": "points", "amount": 5_000_000, "reason": "迁移旧系统积分", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let r = purchase(&t, &card, 150_000).await;
    assert_eq!(r["earned"]["level_after"], "member", "{r}");
    let r = purchase(&t, &card, 60_000).await;
    assert_eq!(r["earned"]["level_before"], "member");
    assert_eq!(
        r["earned"]["level_after"], "silver",
        "¥2,100 of growth reaches silver at once"
    );
    let (_, l) = t.get(&format!("/customers/{customer}/loyalty")).await;
    assert_eq!(l["level"], "silver", "{l}");
    assert_eq!(l["growth"], 210_000);
    assert_eq!(l["next_level"], "gold");
    assert_eq!(l["to_next_level"], 1_000_000 - 210_000);
    let changes = l["level_changes"].as_array().unwrap();
    assert_eq!(changes.last().unwrap()["reason"], "upgrade");
    assert_eq!(changes.last().unwrap()["from_level"], "member");
    let (_, tl) = t.get(&format!("/customers/{customer}/timeline")).await;
    assert!(
        tl.as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "level_changed"),
        "{tl}"
    );
    // A duplicate's spend joins the survivor's growth value when the two are merged.
    let (dup, dup_card) = member(&t, "13900000012").await;
    purchase(&t, &dup_card, 50_000).await;
    let (s, m) = t
        .post(
            &format!("/customers/{customer}/merge"),
            json!({"duplicate_id": dup}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{m}");
    let (_, l) = t.get(&format!("/customers/{customer}/loyalty")).await;
    assert_eq!(l["growth"], 260_000, "{l}");
    verify_clean(&t).await;
}

async fn gifts_take_points_and_stock_once(t: TestApp) {
    plain_rules(&t).await;
    let (_, card) = member(&t, "13900000003").await;
    let (_, other) = member(&t, "13900000004").await;
    purchase(&t, &card, 60_000).await;
    purchase(&t, &other, 60_000).await;
    let (s, g) = t
        .post(
            "/gifts",
            json!({"name": "招牌酱料礼盒", "name_en": "Signature sauce box", "points_price": 500, "stock": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    let gift = g["id"].as_str().unwrap().to_string();
    let (s, bad) = t
        .post("/gifts", json!({"name": "", "points_price": 0}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    let (s, r) = t
        .post(
            &format!("/cards/{card}/points/gifts"),
            json!({"gift_id": gift, "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["after"]["points"], 100);
    let p = points_of(&t, &card).await;
    assert_eq!(p["entries"][0]["rule"], "redeem_gift");
    assert_eq!(p["entries"][0]["points"], -500);
    // Out of stock now: the other card is refused and keeps its points.
    let (s, e) = t
        .post(
            &format!("/cards/{other}/points/gifts"),
            json!({"gift_id": gift, "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"]["code"], "gift_out_of_stock");
    assert_eq!(points_of(&t, &other).await["balance"], 600);
    // Not enough points: refused, nothing taken.
    let (_, g2) = t
        .post("/gifts", json!({"name": "包间券", "points_price": 5_000}))
        .await;
    let (s, e) = t
        .post(
            &format!("/cards/{other}/points/gifts"),
            json!({"gift_id": g2["id"], "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"]["code"], "insufficient_points");
    // Reversing the redemption gives the points and the gift back.
    let (s, rev) = t
        .post(
            &format!("/transactions/{}/reversal", r["txn_id"].as_str().unwrap()),
            json!({"reason": "顾客改主意", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{rev}");
    let p = points_of(&t, &card).await;
    assert_eq!(p["balance"], 600);
    assert_eq!(p["entries"][0]["rule"], "reversal", "{p}");
    assert_eq!(p["entries"][0]["explanation"], "冲正 +500 分：顾客改主意");
    let (_, gifts) = t.get("/gifts").await;
    let back = gifts
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == gift.as_str())
        .unwrap()
        .clone();
    assert_eq!(back["stock"], 1);
    verify_clean(&t).await;
}

async fn lots_expire_soonest_first(t: TestApp) {
    plain_rules(&t).await;
    let (customer, card) = member(&t, "13900000005").await;
    settings(&t, |v| {
        v["points"]["expiry"] = json!({"rolling": {"months": 1}})
    })
    .await;
    purchase(&t, &card, 10_000).await; // 100 points, valid one month
    settings(&t, |v| {
        v["points"]["expiry"] = json!({"rolling": {"months": 12}})
    })
    .await;
    purchase(&t, &card, 20_000).await; // 200 points, valid a year
    let (_, g) = t
        .post("/gifts", json!({"name": "饮料", "points_price": 50}))
        .await;
    let (s, r) = t
        .post(
            &format!("/cards/{card}/points/gifts"),
            json!({"gift_id": g["id"], "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let lots = points_of(&t, &card).await["lots"].clone();
    let remaining: Vec<i64> = lots
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["remaining"].as_i64().unwrap())
        .collect();
    assert_eq!(
        remaining,
        vec![50, 200],
        "the soonest-expiring lot is used first: {lots}"
    );
    let (_, l) = t.get(&format!("/customers/{customer}/loyalty")).await;
    assert_eq!(l["points_expiring_soon"], 50, "{l}");
    // Six weeks on, the first lot has expired.
    let later = (chrono::Utc::now() + chrono::Duration::days(45)).date_naive();
    let (s, job) = t.post("/loyalty/jobs", json!({"today": later})).await;
    assert_eq!(s, StatusCode::OK, "{job}");
    assert_eq!(job["points_expired"], 50, "{job}");
    let p = points_of(&t, &card).await;
    assert_eq!(p["balance"], 200);
    assert_eq!(p["entries"][0]["rule"], "expiry");
    assert_eq!(p["entries"][0]["points"], -50);
    // Running again the same day expires nothing more.
    let (_, again) = t.post("/loyalty/jobs", json!({"today": later})).await;
    assert_eq!(again["points_expired"], 0);
    assert_eq!(points_of(&t, &card).await["balance"], 200);
    let (_, tl) = t.get(&format!("/customers/{customer}/timeline")).await;
    assert!(
        tl.as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "points_expiry"),
        "{tl}"
    );
    verify_clean(&t).await;
}

async fn stored_value_spend_earns_and_reversal_takes_back(t: TestApp) {
    plain_rules(&t).await;
    settings(&t, |v| {
        v["pin_required"] = json!(false);
        v["points"]["earning"]["stored_value"] = json!(true);
    })
    .await;
    let (customer, card) = member(&t, "13900000006").await;
    let (s, _) = t
        .post(
            &format!("/cards/{card}/top-ups"),
            json!({"amount": 100_000, "tender": "cash", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, r) = t
        .post(
            &format!("/cards/{card}/spends"),
            json!({"amount": 28_600, "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["after"]["points"], 286, "{r}");
    let (_, l) = t.get(&format!("/customers/{customer}/loyalty")).await;
    assert_eq!(l["growth"], 28_600);
    let (s, rev) = t
        .post(
            &format!("/transactions/{}/reversal", r["txn_id"].as_str().unwrap()),
            json!({"reason": "结错账", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{rev}");
    assert_eq!(rev["after"]["points"], 0);
    let (_, l) = t.get(&format!("/customers/{customer}/loyalty")).await;
    assert_eq!(l["growth"], 0, "a reversed spend stops counting");
    // Stored value that does not earn: no points.
    settings(&t, |v| {
        v["points"]["earning"]["stored_value"] = json!(false)
    })
    .await;
    let (_, r) = t
        .post(
            &format!("/cards/{card}/spends"),
            json!({"amount": 10_000, "idempotency_key": key()}),
        )
        .await;
    assert_eq!(r["after"]["points"], 0, "{r}");
    verify_clean(&t).await;
}

async fn review_downgrades_at_most_every_six_months(t: TestApp) {
    plain_rules(&t).await;
    let (customer, _card) = member(&t, "13900000007").await;
    let (s, _) = t
        .req(
            Method::PUT,
            &format!("/customers/{customer}/level"),
            Some(json!({"level": "gold", "reason": "试用"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let today = chrono::Utc::now().date_naive();
    let (s, job) = t.post("/loyalty/jobs", json!({"today": today})).await;
    assert_eq!(s, StatusCode::OK, "{job}");
    assert_eq!(job["levels_changed"], 1, "{job}");
    let (_, l) = t.get(&format!("/customers/{customer}/loyalty")).await;
    assert_eq!(l["level"], "member");
    assert_eq!(
        l["level_changes"].as_array().unwrap().last().unwrap()["reason"],
        "review_downgrade"
    );
    // Gold again by hand; two months later the review keeps it (last downgrade too recent).
    t.req(
        Method::PUT,
        &format!("/customers/{customer}/level"),
        Some(json!({"level": "gold", "reason": "老板朋友"})),
    )
    .await;
    let (_, job) = t
        .post(
            "/loyalty/jobs",
            json!({"today": today + chrono::Duration::days(61)}),
        )
        .await;
    assert_eq!(job["levels_changed"], 0, "{job}");
    let (_, job) = t
        .post(
            "/loyalty/jobs",
            json!({"today": today + chrono::Duration::days(200)}),
        )
        .await;
    assert_eq!(job["levels_changed"], 1, "{job}");
    let (s, _) = t
        .req(
            Method::PUT,
            &format!("/customers/{customer}/level"),
            Some(json!({"level": "platinum-x", "reason": "typo"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn points_buy_coupons_and_spends_trigger_them(t: TestApp) {
    plain_rules(&t).await;
    let (customer, card) = member(&t, "13900000008").await;
    purchase(&t, &card, 80_000).await; // 800 points
    let (s, tpl) = t
        .post(
            "/coupon-templates",
            json!({"name": "20 元代金券", "kind": {"type": "cash", "value": 2_000},
                   "validity": {"type": "days_after_issue", "days": 30}, "points_price": 500}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{tpl}");
    let (s, r) = t
        .post(
            &format!("/cards/{card}/points/coupons"),
            json!({"template_id": tpl["id"], "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["after"]["points"], 300);
    let code = r["details"]["code"].as_str().unwrap().to_string();
    let (s, c) = t.get(&format!("/coupons/{code}")).await;
    assert_eq!(s, StatusCode::OK, "{c}");
    let p = points_of(&t, &card).await;
    assert_eq!(p["entries"][0]["rule"], "redeem_coupon");
    // Not enough points left for a second one: refused, nothing issued.
    let (s, e) = t
        .post(
            &format!("/cards/{card}/points/coupons"),
            json!({"template_id": tpl["id"], "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"]["code"], "insufficient_points");
    let (_, mine) = t.get(&format!("/coupons?customer_id={customer}")).await;
    assert_eq!(mine.as_array().map(Vec::len), Some(1), "{mine}");
    // "Spend 100, get a 100 voucher valid to month end."
    let (_, v100) = t
        .post(
            "/coupon-templates",
            json!({"name": "满 100 送 100", "kind": {"type": "cash", "value": 10_000, "min_spend": 20_000},
                   "validity": {"type": "end_of_month"}}),
        )
        .await;
    let (s, rule) = t
        .post(
            "/coupon-rules",
            json!({"template_id": v100["id"], "min_spend": 10_000}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{rule}");
    let r = purchase(&t, &card, 12_000).await;
    let issued = r["earned"]["coupons_issued"].as_array().unwrap();
    assert_eq!(issued.len(), 1, "{r}");
    let (_, mine) = t.get(&format!("/coupons?customer_id={customer}")).await;
    assert_eq!(mine.as_array().map(Vec::len), Some(2), "{mine}");
    // A smaller spend triggers nothing.
    let r = purchase(&t, &card, 5_000).await;
    assert_eq!(r["earned"]["coupons_issued"], json!([]));
    // Merging a duplicate brings its coupons along.
    let (dup, dup_card) = member(&t, "13900000018").await;
    purchase(&t, &dup_card, 15_000).await;
    let (s, m) = t
        .post(
            &format!("/customers/{customer}/merge"),
            json!({"duplicate_id": dup}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{m}");
    let (_, mine) = t.get(&format!("/coupons?customer_id={customer}")).await;
    assert_eq!(mine.as_array().map(Vec::len), Some(3), "{mine}");
    verify_clean(&t).await;
}
