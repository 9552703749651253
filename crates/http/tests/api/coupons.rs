//! Coupons through the API, on both backends: templates, issue, redemption (once, also
//! under concurrency), the rules that refuse a redemption, voiding, expiry, friends.

use crate::support::TestApp;
use chrono::{Datelike, Duration, NaiveDate, Timelike, Utc};
use patron_app::Actor;
use patron_domain::coupon::{CouponStatus, IssueChannel, last_day_of_month};
use patron_domain::ids::CustomerId;
use patron_domain::money::Money;
use patron_store::StoreError;
use patron_store::ledger::{CouponSeen, LedgerChange, TxnRecord};
use reqwest::StatusCode;
use serde_json::{Value, json};

crate::both_backends!(
    issue_and_redeem_once,
    concurrent_redemptions_one_winner,
    threshold_store_and_level_scope,
    excluded_day_and_hour,
    per_customer_limit_and_bulk_all_or_nothing,
    a_retried_issue_issues_nothing_twice,
    void_and_expire,
    friend_redemption_records_referral,
    spend_triggered_coupons_in_a_ledger_post,
    a_post_redeems_what_the_checkout_read,
);

/// The tenant's local now (the tests' tenants keep the default UTC+8).
fn local_now() -> chrono::NaiveDateTime {
    (Utc::now() + Duration::hours(8)).naive_utc()
}

async fn template(t: &TestApp, body: Value) -> String {
    let (s, v) = t.post("/coupon-templates", body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_string()
}

fn cash(name: &str, value: i64, min_spend: Option<i64>) -> Value {
    json!({
        "name": name,
        "kind": {"type": "cash", "value": value, "min_spend": min_spend},
        "validity": {"type": "days_after_issue", "days": 30},
    })
}

async fn issue(t: &TestApp, template: &str, customers: &[&str]) -> (StatusCode, Value) {
    t.post(
        &format!("/coupon-templates/{template}/issue"),
        json!({"customer_ids": customers}),
    )
    .await
}

async fn issue_one(t: &TestApp, template: &str, customer: &str) -> String {
    let (s, v) = issue(t, template, &[customer]).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v[0]["code"].as_str().unwrap().to_string()
}

async fn redeem(t: &TestApp, code: &str, body: Value) -> (StatusCode, Value) {
    t.post(&format!("/coupons/{code}/redeem"), body).await
}

async fn actor(t: &TestApp) -> Actor {
    t.app.authenticate(&t.token).await.unwrap()
}

fn kinds(timeline: &Value) -> Vec<String> {
    timeline
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

async fn issue_and_redeem_once(t: TestApp) {
    let c = t
        .customer(json!({"name": "券客", "phone": "13700000001"}))
        .await;
    let tpl = template(&t, cash("满100减20", 2_000, Some(10_000))).await;
    let (s, list) = t.get("/coupon-templates").await;
    assert_eq!((s, list.as_array().unwrap().len()), (StatusCode::OK, 1));
    assert_eq!(list[0]["kind"]["type"], "cash");
    let code = issue_one(&t, &tpl, &c).await;
    assert_eq!(code.len(), 19);
    assert_eq!(code.matches('-').count(), 3);
    // Looked up as typed by a person: lower case, spaces for dashes.
    let typed = code.to_lowercase().replace('-', " ");
    let (s, v) = t.get(&format!("/coupons/{typed}")).await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("issued")));
    assert_eq!(v["label"], "¥20.00 (满¥100.00)");
    assert_eq!(v["channel"], "manual");
    let (s, v) = t.get("/coupons/ZZZZ-ZZZZ-ZZZZ-ZZZZ").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (s, _) = t.get("/coupons/not-a-code").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Redeemed once, with a key; the same key again replays; any other attempt is 409.
    let (s, r) = redeem(
        &t,
        &code,
        json!({"subtotal": 15_000, "idempotency_key": "k1"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(
        (r["discount"].as_i64(), r["replayed"].as_bool()),
        (Some(2_000), Some(false))
    );
    assert_eq!(r["coupon"]["status"], "redeemed");
    assert_eq!(r["coupon"]["redeemed_by"].as_str(), Some(c.as_str()));
    let (s, r) = redeem(
        &t,
        &code,
        json!({"subtotal": 15_000, "idempotency_key": "k1"}),
    )
    .await;
    assert_eq!(
        (s, r["replayed"].as_bool()),
        (StatusCode::OK, Some(true)),
        "{r}"
    );
    assert_eq!(r["discount"], 2_000);
    let (s, r) = redeem(
        &t,
        &code,
        json!({"subtotal": 15_000, "idempotency_key": "k2"}),
    )
    .await;
    assert_eq!(
        (s, r["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("coupon_already_redeemed"))
    );
    let (s, r) = redeem(&t, &code, json!({"subtotal": 15_000})).await;
    assert_eq!(
        (s, r["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("coupon_already_redeemed"))
    );
    // The customer's coupons and timeline.
    let (_, mine) = t
        .get(&format!("/coupons?customer_id={c}&status=redeemed"))
        .await;
    assert_eq!(mine.as_array().unwrap().len(), 1);
    let (_, none) = t
        .get(&format!("/coupons?customer_id={c}&status=issued"))
        .await;
    assert_eq!(none.as_array().unwrap().len(), 0);
    let (_, tl) = t.get(&format!("/customers/{c}/timeline")).await;
    assert_eq!(&kinds(&tl)[..2], ["coupon_redeemed", "coupon_issued"]);
    // A discount coupon: 88折 on 123.45 → 14.81 (half up), capped at 10.
    let pct = template(
        &t,
        json!({"name": "88折", "kind": {"type": "discount", "percent_off_bp": 1200},
               "validity": {"type": "end_of_month"}}),
    )
    .await;
    let code = issue_one(&t, &pct, &c).await;
    let (s, r) = redeem(&t, &code, json!({"subtotal": 12_345})).await;
    assert_eq!(
        (s, r["discount"].as_i64()),
        (StatusCode::OK, Some(1_481)),
        "{r}"
    );
    let capped = template(
        &t,
        json!({"name": "8折封顶10元", "kind": {"type": "discount", "percent_off_bp": 2000, "cap": 1000},
               "validity": {"type": "end_of_month"}}),
    )
    .await;
    let code = issue_one(&t, &capped, &c).await;
    let (_, r) = redeem(&t, &code, json!({"subtotal": 12_345})).await;
    assert_eq!(r["discount"], 1_000);
    // Bad templates are refused field by field.
    let (s, v) = t
        .post(
            "/coupon-templates",
            json!({"name": "", "kind": {"type": "discount", "percent_off_bp": 0},
                   "validity": {"type": "days_after_issue", "days": 0}, "excluded_weekdays": [8]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = v["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "name",
            "kind.percent_off_bp",
            "validity.days",
            "excluded_weekdays"
        ]
    );
    // What a template gives cannot change once issued; its name can.
    let (s, v) = t
        .patch(
            &format!("/coupon-templates/{tpl}"),
            json!({"kind": {"type": "cash", "value": 9_000}}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("template_in_use"))
    );
    let (s, v) = t
        .patch(
            &format!("/coupon-templates/{tpl}"),
            json!({"name": "满100减20(新)", "active": false}),
        )
        .await;
    assert_eq!(
        (s, v["name"].as_str(), v["active"].as_bool()),
        (StatusCode::OK, Some("满100减20(新)"), Some(false))
    );
    // An inactive template issues nothing.
    let (s, v) = issue(&t, &tpl, &[&c]).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("template_inactive"))
    );
}

async fn concurrent_redemptions_one_winner(t: TestApp) {
    let c = t
        .customer(json!({"name": "抢券客", "phone": "13700000002"}))
        .await;
    let tpl = template(&t, cash("立减50", 5_000, None)).await;
    let code = issue_one(&t, &tpl, &c).await;
    let mut handles = Vec::new();
    for i in 0..16 {
        let (client, base, auth, code) = (
            t.client.clone(),
            t.base.clone(),
            t.token.clone(),
            code.clone(),
        );
        handles.push(tokio::spawn(async move {
            let res = client
                .post(format!("{base}/coupons/{code}/redeem"))
                .bearer_auth(auth)
                .json(&json!({"subtotal": 20_000, "idempotency_key": format!("till-{i}")}))
                .send()
                .await
                .unwrap();
            let status = res.status();
            let body: Value = res.json().await.unwrap();
            (status, body)
        }));
    }
    let mut wins = 0;
    for h in handles {
        let (s, body) = h.await.unwrap();
        if s == StatusCode::OK {
            wins += 1;
        } else {
            assert_eq!(s, StatusCode::CONFLICT, "{body}");
            assert_eq!(body["error"]["code"], "coupon_already_redeemed");
        }
    }
    assert_eq!(wins, 1);
    let (_, v) = t.get(&format!("/coupons/{code}")).await;
    assert_eq!(v["status"], "redeemed");
    // Exactly one redemption on the timeline.
    let (_, tl) = t.get(&format!("/customers/{c}/timeline")).await;
    assert_eq!(
        kinds(&tl)
            .iter()
            .filter(|k| *k == "coupon_redeemed")
            .count(),
        1
    );
}

async fn threshold_store_and_level_scope(t: TestApp) {
    let c = t
        .customer(json!({"name": "门槛客", "phone": "13700000003"}))
        .await;
    // Below the threshold: 422 and nothing changed.
    let tpl = template(&t, cash("满100减20", 2_000, Some(10_000))).await;
    let code = issue_one(&t, &tpl, &c).await;
    let (s, v) = redeem(&t, &code, json!({"subtotal": 9_999})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("below_threshold")),
        "{v}"
    );
    let (s, v) = redeem(&t, &code, json!({})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("below_threshold"))
    );
    let (_, v) = t.get(&format!("/coupons/{code}")).await;
    assert_eq!(v["status"], "issued");
    assert!(v["redeemed_at"].is_null());
    let (_, tl) = t.get(&format!("/customers/{c}/timeline")).await;
    assert!(!kinds(&tl).contains(&"coupon_redeemed".to_string()));
    let (s, _) = redeem(&t, &code, json!({"subtotal": 10_000})).await;
    assert_eq!(s, StatusCode::OK);
    // Store scope: a template for another store.
    let other = patron_domain::org::Store {
        tenant_id: t.tenant_id,
        id: patron_domain::ids::StoreId(uuid::Uuid::now_v7()),
        code: "branch".into(),
        name: "分店".into(),
        address: None,
        phone: None,
        created_at: patron_app::now(),
    };
    t.app.storage.create_store(&other).await.unwrap();
    let mut body = cash("分店专享", 1_000, None);
    body["store_ids"] = json!([other.id]);
    let tpl = template(&t, body).await;
    let code = issue_one(&t, &tpl, &c).await;
    let (s, v) = redeem(&t, &code, json!({"subtotal": 5_000})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("wrong_store"))
    );
    let (_, stores) = t.get("/stores").await;
    let main = stores
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["code"] == "main")
        .unwrap()["id"]
        .clone();
    let (s, _) = t
        .patch(
            &format!("/coupon-templates/{tpl}"),
            json!({"store_ids": [other.id, main]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = redeem(&t, &code, json!({"subtotal": 5_000})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Unknown stores and levels are refused in templates.
    let mut body = cash("x", 1_000, None);
    body["store_ids"] = json!([uuid::Uuid::now_v7()]);
    body["level_codes"] = json!(["platinum-nope"]);
    let (s, v) = t.post("/coupon-templates", body).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["fields"].as_array().unwrap().len(), 2);
    // Level scope: gold only; the buyer's level is the customer's.
    let mut body = cash("金卡专享", 3_000, None);
    body["level_codes"] = json!(["gold"]);
    let tpl = template(&t, body).await;
    let code = issue_one(&t, &tpl, &c).await;
    let (s, v) = redeem(&t, &code, json!({"subtotal": 5_000})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("wrong_level"))
    );
    let id: CustomerId = c.parse().unwrap();
    let mut cust = t
        .app
        .storage
        .customer(t.tenant_id, id)
        .await
        .unwrap()
        .unwrap();
    cust.level = Some("gold".into());
    let event = patron_domain::timeline::TimelineEvent {
        tenant_id: t.tenant_id,
        id: patron_domain::ids::TimelineEventId(uuid::Uuid::now_v7()),
        customer_id: id,
        occurred_at: patron_app::now(),
        kind: "level_changed".into(),
        summary: "test".into(),
        data: json!({}),
        store_id: None,
        staff_id: None,
    };
    t.app.storage.update_customer(&cust, &event).await.unwrap();
    let (s, v) = redeem(&t, &code, json!({"subtotal": 5_000})).await;
    assert_eq!(
        (s, v["discount"].as_i64()),
        (StatusCode::OK, Some(3_000)),
        "{v}"
    );
}

async fn excluded_day_and_hour(t: TestApp) {
    let c = t
        .customer(json!({"name": "时段客", "phone": "13700000004"}))
        .await;
    let now = local_now();
    // Today and tomorrow excluded (a run across midnight stays excluded).
    let today = now.date().weekday().number_from_monday();
    let tomorrow = today % 7 + 1;
    let mut body = cash("工作日券", 1_000, None);
    body["excluded_weekdays"] = json!([today, tomorrow]);
    let tpl = template(&t, body).await;
    let code = issue_one(&t, &tpl, &c).await;
    let (s, v) = redeem(&t, &code, json!({"subtotal": 5_000})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("excluded_day"))
    );
    // The hours around now excluded (wrapping past midnight when it is late).
    let from = format!("{:02}:00", (now.hour() + 23) % 24);
    let to = format!("{:02}:00", (now.hour() + 2) % 24);
    let mut body = cash("错峰券", 1_000, None);
    body["excluded_hours"] = json!([{"from": from, "to": to}]);
    let tpl = template(&t, body).await;
    let code = issue_one(&t, &tpl, &c).await;
    let (s, v) = redeem(&t, &code, json!({"subtotal": 5_000})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("excluded_hour")),
        "{from}-{to}"
    );
    // Lifting the exclusion makes it usable.
    let (s, _) = t
        .patch(
            &format!("/coupon-templates/{tpl}"),
            json!({"excluded_hours": []}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = redeem(&t, &code, json!({"subtotal": 5_000})).await;
    assert_eq!(s, StatusCode::OK);
    // A fixed window that has not begun.
    let start = now.date() + Duration::days(10);
    let tpl = template(
        &t,
        json!({"name": "下月券", "kind": {"type": "cash", "value": 1000},
               "validity": {"type": "fixed", "from": start, "to": start + Duration::days(5)}}),
    )
    .await;
    let code = issue_one(&t, &tpl, &c).await;
    let (s, v) = redeem(&t, &code, json!({"subtotal": 5_000})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("not_yet_valid"))
    );
}

async fn per_customer_limit_and_bulk_all_or_nothing(t: TestApp) {
    let a = t
        .customer(json!({"name": "甲", "phone": "13700000005"}))
        .await;
    let b = t
        .customer(json!({"name": "乙", "phone": "13700000006"}))
        .await;
    let c = t
        .customer(json!({"name": "丙", "phone": "13700000007"}))
        .await;
    let mut body = cash("每人限一张", 1_000, None);
    body["per_customer_limit"] = json!(1);
    let tpl = template(&t, body).await;
    issue_one(&t, &tpl, &a).await;
    let (s, v) = issue(&t, &tpl, &[&a]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["fields"][0]["code"], "limit_reached");
    // Bulk: one refusal (a at its limit), one unknown customer → nothing issued, each named.
    let ghost = uuid::Uuid::now_v7().to_string();
    let (s, v) = issue(&t, &tpl, &[&b, &a, &c, &ghost]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let refused: Vec<(&str, &str)> = v["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["field"].as_str().unwrap(), f["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        refused,
        [
            ("customer_ids[1]", "limit_reached"),
            ("customer_ids[3]", "unknown_customer")
        ]
    );
    for who in [&b, &c] {
        let (_, list) = t.get(&format!("/coupons?customer_id={who}")).await;
        assert_eq!(list.as_array().unwrap().len(), 0);
    }
    // The same customer twice in one list is over a limit of one.
    let (s, v) = issue(&t, &tpl, &[&b, &b]).await;
    assert_eq!(
        (s, v["error"]["fields"][0]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("customer_ids[1]"))
    );
    // Without refusals, everyone gets one.
    let (s, v) = issue(&t, &tpl, &[&b, &c]).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0]["channel"], "bulk");
    assert_ne!(v[0]["code"], v[1]["code"]);
    // The limit also holds against concurrent issues (the store counts in the insert's
    // transaction): of 8 simultaneous issues to a new customer, one succeeds.
    let d = t
        .customer(json!({"name": "丁", "phone": "13700000008"}))
        .await;
    let mut handles = Vec::new();
    for _ in 0..8 {
        let (client, base, auth, tpl, d) = (
            t.client.clone(),
            t.base.clone(),
            t.token.clone(),
            tpl.clone(),
            d.clone(),
        );
        handles.push(tokio::spawn(async move {
            client
                .post(format!("{base}/coupon-templates/{tpl}/issue"))
                .bearer_auth(auth)
                .json(&json!({"customer_ids": [d]}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut ok = 0;
    for h in handles {
        let s = h.await.unwrap();
        if s == StatusCode::CREATED {
            ok += 1;
        } else {
            assert!(
                s == StatusCode::UNPROCESSABLE_ENTITY || s == StatusCode::CONFLICT,
                "{s}"
            );
        }
    }
    assert_eq!(ok, 1);
    let (_, list) = t.get(&format!("/coupons?customer_id={d}")).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

async fn a_retried_issue_issues_nothing_twice(t: TestApp) {
    let a = t
        .customer(json!({"name": "重试甲", "phone": "13700000015"}))
        .await;
    let b = t
        .customer(json!({"name": "重试乙", "phone": "13700000016"}))
        .await;
    let tpl = template(&t, cash("重试券", 1_000, None)).await;
    let k = uuid::Uuid::now_v7().to_string();
    let url = format!("/coupon-templates/{tpl}/issue");
    let body = json!({"customer_ids": [a, b], "idempotency_key": k});
    let (s, first) = t.post(&url, body.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    // The retry answers with the same coupons; nobody holds a second one.
    let (s, again) = t.post(&url, body.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{again}");
    assert_eq!(again, first);
    for who in [&a, &b] {
        let (_, list) = t.get(&format!("/coupons?customer_id={who}")).await;
        assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    }
    // The same key for other customers is refused and issues nothing.
    let (s, v) = t
        .post(&url, json!({"customer_ids": [b, a], "idempotency_key": k}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("idempotency_key_reused")),
        "{v}"
    );
    // Eight simultaneous calls with one new key: one set of coupons, every answer the same.
    let k = uuid::Uuid::now_v7().to_string();
    let mut handles = Vec::new();
    for _ in 0..8 {
        let (client, base, auth, url, a) = (
            t.client.clone(),
            t.base.clone(),
            t.token.clone(),
            url.clone(),
            a.clone(),
        );
        let k = k.clone();
        handles.push(tokio::spawn(async move {
            let r = client
                .post(format!("{base}{url}"))
                .bearer_auth(auth)
                .json(&json!({"customer_ids": [a], "idempotency_key": k}))
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }));
    }
    let mut answers = Vec::new();
    for h in handles {
        let (s, v) = h.await.unwrap();
        assert_eq!(s, StatusCode::CREATED, "{v}");
        answers.push(v);
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    let (_, list) = t.get(&format!("/coupons?customer_id={a}")).await;
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
}

async fn void_and_expire(t: TestApp) {
    let c = t
        .customer(json!({"name": "作废客", "phone": "13700000009"}))
        .await;
    let mut body = cash("限一张", 1_000, None);
    body["per_customer_limit"] = json!(1);
    let tpl = template(&t, body).await;
    let code = issue_one(&t, &tpl, &c).await;
    let (s, v) = t
        .post(&format!("/coupons/{code}/void"), json!({"reason": " "}))
        .await;
    assert_eq!(
        (s, v["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("reason_required"))
    );
    let (s, v) = t
        .post(
            &format!("/coupons/{code}/void"),
            json!({"reason": "发错了"}),
        )
        .await;
    assert_eq!(
        (s, v["status"].as_str(), v["void_reason"].as_str()),
        (StatusCode::OK, Some("voided"), Some("发错了"))
    );
    let (s, v) = redeem(&t, &code, json!({"subtotal": 5_000})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("voided"))
    );
    let (s, v) = t
        .post(&format!("/coupons/{code}/void"), json!({"reason": "again"}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("coupon_not_issued"))
    );
    let (_, tl) = t.get(&format!("/customers/{c}/timeline")).await;
    assert_eq!(kinds(&tl)[0], "coupon_voided");
    // A voided coupon gives its place back under the limit.
    let code = issue_one(&t, &tpl, &c).await;
    // Expiry: nothing is past its last day yet; two days after a one-day coupon, it is.
    let (s, v) = t.post("/coupons/expire", json!({})).await;
    assert_eq!((s, v["expired"].as_u64()), (StatusCode::OK, Some(0)));
    let one_day = template(
        &t,
        json!({"name": "当日券", "kind": {"type": "cash", "value": 500}, "validity": {"type": "days_after_issue", "days": 1}}),
    )
    .await;
    let short = issue_one(&t, &one_day, &c).await;
    let (_, v) = t.get(&format!("/coupons/{short}")).await;
    let valid_to: NaiveDate = v["valid_to"].as_str().unwrap().parse().unwrap();
    assert_eq!(valid_to, local_now().date());
    let n = t.app.expire_coupons(t.tenant_id, valid_to).await.unwrap();
    assert_eq!(n, 0, "still valid on its last day");
    let n = t
        .app
        .expire_coupons(t.tenant_id, valid_to + Duration::days(1))
        .await
        .unwrap();
    assert_eq!(n, 1, "only the one-day coupon (the other is valid 30 days)");
    let (_, v) = t.get(&format!("/coupons/{short}")).await;
    assert_eq!(v["status"], "expired");
    let (s, v) = redeem(&t, &short, json!({"subtotal": 5_000})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("expired"))
    );
    let (_, v) = t.get(&format!("/coupons/{code}")).await;
    assert_eq!(v["status"], "issued");
    // Expired coupons cannot be voided either.
    let (s, _) = t
        .post(&format!("/coupons/{short}/void"), json!({"reason": "x"}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
}

async fn friend_redemption_records_referral(t: TestApp) {
    let owner = t
        .customer(json!({"name": "老客", "phone": "13700000010"}))
        .await;
    let friend = t
        .customer(
            json!({"name": "新朋友", "phone": "13700000011", "acquisition_source": "walk_in"}),
        )
        .await;
    let referred = t
        .customer(json!({"name": "已有介绍人", "phone": "13700000012", "referred_by": owner}))
        .await;
    // Not transferable: only the owner may use it.
    let own = template(&t, cash("本人券", 1_000, None)).await;
    let code = issue_one(&t, &own, &owner).await;
    let (s, v) = redeem(&t, &code, json!({"customer_id": friend, "subtotal": 5_000})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("not_transferable"))
    );
    let (_, f) = t.get(&format!("/customers/{friend}")).await;
    assert!(f["referred_by"].is_null());
    // Transferable: the friend uses it and is recorded as referred by the owner.
    let mut body = cash("好友转赠券", 2_000, None);
    body["transferable"] = json!(true);
    let gift = template(&t, body).await;
    let code = issue_one(&t, &gift, &owner).await;
    let (s, r) = redeem(&t, &code, json!({"customer_id": friend, "subtotal": 5_000})).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["referral_recorded"], true);
    assert_eq!(r["coupon"]["redeemed_by"].as_str(), Some(friend.as_str()));
    assert_eq!(r["coupon"]["customer_id"].as_str(), Some(owner.as_str()));
    let (_, f) = t.get(&format!("/customers/{friend}")).await;
    assert_eq!(f["referred_by"].as_str(), Some(owner.as_str()));
    assert_eq!(f["acquisition_source"], "friend_coupon");
    let (_, tl) = t.get(&format!("/customers/{friend}/timeline")).await;
    let fk = kinds(&tl);
    assert!(
        fk.contains(&"referred_by_friend".into()) && fk.contains(&"coupon_redeemed".into()),
        "{fk:?}"
    );
    let referred_event = tl
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "referred_by_friend")
        .unwrap();
    assert_eq!(
        referred_event["data"]["previous_acquisition_source"],
        "walk_in"
    );
    let (_, tl) = t.get(&format!("/customers/{owner}/timeline")).await;
    let ok = kinds(&tl);
    assert!(
        ok.contains(&"referred_friend".into()) && ok.contains(&"coupon_redeemed".into()),
        "{ok:?}"
    );
    // A customer who already has a referrer keeps it.
    let code = issue_one(&t, &gift, &friend).await;
    let (s, r) = redeem(
        &t,
        &code,
        json!({"customer_id": referred, "subtotal": 5_000}),
    )
    .await;
    assert_eq!(
        (s, r["referral_recorded"].as_bool()),
        (StatusCode::OK, Some(false))
    );
    let (_, x) = t.get(&format!("/customers/{referred}")).await;
    assert_eq!(x["referred_by"].as_str(), Some(owner.as_str()));
    // The owner using a friend's coupon is not referred back by that friend (no cycles).
    let code = issue_one(&t, &gift, &friend).await;
    let (s, r) = redeem(&t, &code, json!({"customer_id": owner, "subtotal": 5_000})).await;
    assert_eq!(
        (s, r["referral_recorded"].as_bool()),
        (StatusCode::OK, Some(false))
    );
    let (_, o) = t.get(&format!("/customers/{owner}")).await;
    assert!(o["referred_by"].is_null());
}

async fn spend_triggered_coupons_in_a_ledger_post(t: TestApp) {
    let c = t
        .customer(json!({"name": "消费客", "phone": "13700000013"}))
        .await;
    let id: CustomerId = c.parse().unwrap();
    let a = actor(&t).await;
    let tpl = template(
        &t,
        json!({"name": "满100送100", "kind": {"type": "cash", "value": 10_000},
               "validity": {"type": "end_of_month"}, "per_customer_limit": 1}),
    )
    .await;
    let (s, rule) = t
        .post(
            "/coupon-rules",
            json!({"template_id": tpl, "min_spend": 10_000}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{rule}");
    let (s, v) = t
        .post(
            "/coupon-rules",
            json!({"template_id": uuid::Uuid::now_v7(), "min_spend": 0}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["fields"].as_array().unwrap().len(), 2);
    let (_, rules) = t.get("/coupon-rules").await;
    assert_eq!(rules.as_array().unwrap().len(), 1);
    let at = patron_app::now();
    let none = t
        .app
        .spend_triggered_coupons(&a, id, Money::from_fen(9_999), at)
        .await
        .unwrap();
    assert!(none.is_empty());
    let built = t
        .app
        .spend_triggered_coupons(&a, id, Money::from_fen(10_000), at)
        .await
        .unwrap();
    assert_eq!(built.len(), 1);
    let coupon = &built[0];
    let today = local_now().date();
    assert_eq!(
        (coupon.valid_from, coupon.valid_to),
        (today, last_day_of_month(today))
    );
    assert_eq!(
        (coupon.channel, coupon.status),
        (IssueChannel::Rule, CouponStatus::Issued)
    );
    // Built, not written.
    let (_, list) = t.get(&format!("/coupons?customer_id={c}")).await;
    assert_eq!(list.as_array().unwrap().len(), 0);
    // Issued in a ledger post (as a checkout does), then redeemed in another: once.
    let txn = |kind: &str| ledger_txn(&t, &a, id, kind);
    let s = &t.app.storage;
    s.post(
        &txn("purchase"),
        &[LedgerChange::CouponIssue(coupon.clone())],
        &[],
        None,
    )
    .await
    .unwrap();
    let (_, list) = t.get(&format!("/coupons?customer_id={c}")).await;
    assert_eq!(list[0]["code"].as_str(), Some(coupon.code.as_str()));
    assert_eq!(list[0]["channel"], "rule");
    // The limit (1) now holds: the next spend triggers nothing, and a post is refused.
    let more = t
        .app
        .spend_triggered_coupons(&a, id, Money::from_fen(50_000), at)
        .await
        .unwrap();
    assert!(more.is_empty());
    let mut again = coupon.clone();
    again.id = uuid::Uuid::now_v7();
    again.code = patron_app::coupons::new_coupon_code();
    let e = s
        .post(
            &txn("purchase"),
            &[LedgerChange::CouponIssue(again)],
            &[],
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Conflict {
                what: "coupon_limit_reached"
            }
        ),
        "{e:?}"
    );
    let redeem = LedgerChange::CouponRedeem {
        coupon: coupon.id,
        customer: Some(id),
        store: a.store_id,
        staff: Some(a.staff_id),
        seen: None,
    };
    s.post(&txn("checkout"), std::slice::from_ref(&redeem), &[], None)
        .await
        .unwrap();
    let e = s
        .post(&txn("checkout"), &[redeem], &[], None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Conflict {
                what: "coupon_already_redeemed"
            }
        ),
        "{e:?}"
    );
    let (_, v) = t.get(&format!("/coupons/{}", coupon.code)).await;
    assert_eq!(v["status"], "redeemed");
    // Rules can be switched off.
    let rule_id = rule["id"].as_str().unwrap();
    let (s2, r) = t
        .patch(
            &format!("/coupon-rules/{rule_id}"),
            json!({"active": false}),
        )
        .await;
    assert_eq!((s2, r["active"].as_bool()), (StatusCode::OK, Some(false)));
    let report = t.app.verify_ledger().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.violations);
}

/// A checkout prices with the coupon it read and its post redeems it without reading
/// it back (`CouponSeen`): what the statement checks must catch every change made in
/// between, and say which.
async fn a_post_redeems_what_the_checkout_read(t: TestApp) {
    let c = t
        .customer(json!({"name": "读后用", "phone": "13700000031"}))
        .await;
    let other = t
        .customer(json!({"name": "别人", "phone": "13700000032"}))
        .await;
    let tpl = template(&t, cash("读后减10", 1_000, None)).await;
    let a = actor(&t).await;
    let id = CustomerId(c.parse().unwrap());
    let s = &t.app.storage;
    let txn = || ledger_txn(&t, &a, id, "checkout");
    let redeem = |seen: CouponSeen| LedgerChange::CouponRedeem {
        coupon: seen.coupon.id,
        customer: Some(id),
        store: a.store_id,
        staff: Some(a.staff_id),
        seen: Some(Box::new(seen)),
    };
    let refusal = |e: StoreError| match e {
        StoreError::Conflict { what } => what,
        other => panic!("{other:?}"),
    };
    // Unchanged: redeemed, and the timeline names the template as read.
    let first = read_seen(&t, issue_one(&t, &tpl, &c).await).await;
    s.post(&txn(), &[redeem(first.clone())], &[], None)
        .await
        .unwrap();
    let (_, v) = t.get(&format!("/coupons/{}", first.coupon.code)).await;
    assert_eq!(
        (v["status"].as_str(), v["redeemed_by"].as_str()),
        (Some("redeemed"), Some(c.as_str()))
    );
    let (_, tl) = t.get(&format!("/customers/{c}/timeline")).await;
    let used = tl
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "coupon_redeemed")
        .expect("a coupon_redeemed event");
    assert!(
        used["summary"].as_str().unwrap().contains("读后减10"),
        "{used}"
    );
    // Redeemed meanwhile (the same read again): refused as used, nothing posted.
    let e = s
        .post(&txn(), &[redeem(first)], &[], None)
        .await
        .unwrap_err();
    assert_eq!(refusal(e), "coupon_already_redeemed");
    // Voided meanwhile.
    let second = read_seen(&t, issue_one(&t, &tpl, &c).await).await;
    let (st, _) = t
        .post(
            &format!("/coupons/{}/void", second.coupon.code),
            json!({"reason": "发错了"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let e = s
        .post(&txn(), &[redeem(second)], &[], None)
        .await
        .unwrap_err();
    assert_eq!(refusal(e), "coupon_voided");
    // Still issued, but not as read (another owner, as after a merge): refused as
    // changed, and the coupon stays issued.
    let mut third = read_seen(&t, issue_one(&t, &tpl, &c).await).await;
    third.coupon.customer_id = CustomerId(other.parse().unwrap());
    let code = third.coupon.code.clone();
    let e = s
        .post(&txn(), &[redeem(third)], &[], None)
        .await
        .unwrap_err();
    assert_eq!(refusal(e), "coupon_changed");
    let (_, v) = t.get(&format!("/coupons/{code}")).await;
    assert_eq!(v["status"], "issued");
    let report = t.app.verify_ledger().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.violations);
}

/// The coupon as a checkout reads it before posting.
async fn read_seen(t: &TestApp, code: String) -> CouponSeen {
    let coupon = t
        .app
        .storage
        .coupon_by_code(t.tenant_id, &code)
        .await
        .unwrap()
        .unwrap();
    CouponSeen {
        coupon,
        template_name: "读后减10".into(),
    }
}

/// A ledger transaction of the tests' own, made by `a` for `customer`.
fn ledger_txn(t: &TestApp, a: &Actor, customer: CustomerId, kind: &str) -> TxnRecord {
    TxnRecord {
        tenant_id: t.tenant_id,
        id: uuid::Uuid::now_v7(),
        kind: kind.into(),
        idempotency_key: uuid::Uuid::now_v7().to_string(),
        request_hash: "h".into(),
        card_id: None,
        customer_id: Some(customer),
        store_id: a.store_id,
        staff_id: Some(a.staff_id),
        approver_id: None,
        reverses: None,
        reason: None,
        memo: kind.into(),
        data: json!({}),
        created_at: patron_app::now(),
    }
}
