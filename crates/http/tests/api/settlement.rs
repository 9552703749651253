//! Daily settlement, shifts, closing a day and the inter-store statement through the API,
//! on both backends.

use crate::support::TestApp;
use patron_domain::ids::{StaffId, StoreId};
use patron_domain::org::{Role, Staff, Store};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

crate::both_backends!(
    daily_figures_add_up,
    closing_locks_the_day,
    inter_store_statement_nets,
    closing_waits_for_postings_in_flight,
);

fn key() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn fen(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not an amount: {v}"))
}

async fn settings(t: &TestApp, change: impl FnOnce(&mut Value)) {
    let (_, mut v) = t.get("/settings").await;
    change(&mut v);
    let (s, r) = t.req(Method::PUT, "/settings", Some(v)).await;
    assert_eq!(s, StatusCode::OK, "{r}");
}

async fn store_id(t: &TestApp, code: &str) -> StoreId {
    let (_, stores) = t.get("/stores").await;
    let s = stores
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["code"] == code)
        .unwrap_or_else(|| panic!("no store {code}: {stores}"));
    s["id"].as_str().unwrap().parse().unwrap()
}

/// A second store of the tenant.
async fn add_store(t: &TestApp, code: &str) -> StoreId {
    let id = StoreId(uuid::Uuid::now_v7());
    t.app
        .storage
        .create_store(&Store {
            tenant_id: t.tenant_id,
            id,
            code: code.into(),
            name: format!("{code} 店"),
            address: None,
            phone: None,
            created_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    id
}

/// A staff account (there is no staff API yet: made through the store).
async fn add_staff(t: &TestApp, username: &str, role: Role, store: Option<StoreId>) {
    t.app
        .storage
        .create_staff(&Staff {
            tenant_id: t.tenant_id,
            id: StaffId(uuid::Uuid::now_v7()),
            username: username.into(),
            display_name: format!("{username} 名"),
            password_hash: patron_app::auth::hash_secret("staff password 1").unwrap(),
            role,
            store_id: store,
            active: true,
            created_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
}

async fn login(t: &TestApp, username: &str, password: &str, store: &str) -> String {
    let (s, v) = crate::support::decode(
        t.client
            .post(format!("{}/auth/login", t.base))
            .json(&json!({"tenant": "t1", "username": username, "password": password, "store": store}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["token"].as_str().unwrap().to_string()
}

async fn owner_at(t: &TestApp, store: &str) -> String {
    login(t, "owner", "correct horse battery", store).await
}

async fn card(t: &TestApp, phone: &str) -> String {
    let customer = t.customer(json!({"name": "结算客", "phone": phone})).await;
    let (s, c) = t
        .post("/cards", json!({"customer_id": customer, "pin": "246810"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    c["id"].as_str().unwrap().to_string()
}

async fn top_up_as(t: &TestApp, token: &str, card: &str, amount: i64, tender: &str) -> Value {
    let (s, r) = t
        .req_as(
            token,
            Method::POST,
            &format!("/cards/{card}/top-ups"),
            Some(json!({"amount": amount, "tender": tender, "idempotency_key": key()})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    r
}

async fn spend_as(t: &TestApp, token: &str, card: &str, amount: i64) -> Value {
    let (s, r) = t
        .req_as(
            token,
            Method::POST,
            &format!("/cards/{card}/spends"),
            Some(json!({"amount": amount, "pin": "246810", "idempotency_key": key()})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    r
}

async fn reverse_as(t: &TestApp, token: &str, txn: &Value, reason: &str) -> Value {
    let (s, r) = t
        .req_as(
            token,
            Method::POST,
            &format!("/transactions/{}/reversal", txn.as_str().unwrap()),
            Some(json!({"reason": reason, "idempotency_key": key()})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    r
}

async fn verify_clean(t: &TestApp) {
    let report = t.app.verify_ledger().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.violations);
}

/// Points rules without birthday, threshold or visit bonuses: 1 point per yuan.
async fn plain_points(t: &TestApp) {
    settings(t, |v| {
        v["points"]["birthday"] = Value::Null;
        v["points"]["threshold_bonus"] = Value::Null;
        v["points"]["nth_visit_bonus"] = Value::Null;
    })
    .await;
}

async fn daily_figures_add_up(t: TestApp) {
    plain_points(&t).await;
    let (s, shift) = t.post("/shifts", json!({"opening_float": 50_000})).await;
    assert_eq!(s, StatusCode::CREATED, "{shift}");
    let shift_id = shift["id"].as_str().unwrap().to_string();
    let (s, e) = t.post("/shifts", json!({"opening_float": 1})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"]["code"], "shift_open");
    let (s, e) = t.post("/shifts", json!({"opening_float": -1})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");

    let c = card(&t, "13500000001").await;
    // ¥1,000 cash (+¥150 bonus) and ¥300 by WeChat (+¥30).
    top_up_as(&t, &t.token, &c, 100_000, "cash").await;
    top_up_as(&t, &t.token, &c, 30_000, "wechat").await;
    let s1 = spend_as(&t, &t.token, &c, 28_600).await;
    let s2 = spend_as(&t, &t.token, &c, 10_000).await;
    reverse_as(&t, &t.token, &s2["txn_id"], "点错金额").await;
    // A purchase paid outside Patron (earns points), then a gift for points.
    let (s, p) = t
        .post(
            "/purchases",
            json!({"card_id": c, "amount": 20_000, "payments": [{"method": "wechat", "amount": 20_000}], "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    let (s, g) = t
        .post("/gifts", json!({"name": "酱料", "points_price": 100}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{g}");
    let (s, gift) = t
        .post(
            &format!("/cards/{c}/points/gifts"),
            json!({"gift_id": g["id"], "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{gift}");
    // A checkout paid in cash with a 满100减10 voucher, by a customer without a card.
    let guest = t
        .customer(json!({"name": "散客", "phone": "13500000002"}))
        .await;
    let (_, tpl) = t
        .post(
            "/coupon-templates",
            json!({"name": "满100减10", "kind": {"type": "cash", "value": 1_000, "min_spend": 10_000},
                   "validity": {"type": "days_after_issue", "days": 30}}),
        )
        .await;
    let (s, issued) = t
        .post(
            &format!("/coupon-templates/{}/issue", tpl["id"].as_str().unwrap()),
            json!({"customer_ids": [guest]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{issued}");
    let (s, co) = t
        .post(
            "/checkouts",
            json!({"lines": [{"name": "套餐", "quantity": 4, "unit_price": 3_000}],
                   "customer": {"phone": "13500000002"}, "coupons": [issued[0]["code"]],
                   "tenders": [{"method": "cash"}], "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{co}");
    let due = fen(&co["receipt"]["amount_due"]);
    let bill = &co["ledger"]["details"];
    assert_eq!(fen(&bill["amount_due"]), due);
    let discount = fen(&bill["discount"]);

    let (s, r) = t.get("/settlement/daily").await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["source"], "live");
    assert_eq!(r["day"]["status"], "open");
    assert_eq!(r["balanced"], true, "{r}");
    // Money by tender: the cash top-up and the checkout; WeChat only the top-up (the
    // purchase was paid outside Patron).
    let tender = |name: &str| {
        r["tenders"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["tender"] == name)
            .map(|x| fen(&x["net"]))
            .unwrap_or(0)
    };
    assert_eq!(tender("cash"), 100_000 + due);
    assert_eq!(tender("wechat"), 30_000);
    let sum: i64 = r["tenders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| fen(&x["net"]))
        .sum();
    assert_eq!(fen(&r["money_in"]), sum);
    assert_eq!(sum, 130_000 + due);
    // Top-ups: principal and bonus, by tender.
    let tu = &r["top_ups"];
    assert_eq!(
        (fen(&tu["count"]), fen(&tu["principal"]), fen(&tu["bonus"])),
        (2, 130_000, 18_000)
    );
    assert_eq!(tu["by_tender"], json!({"cash": 100_000, "wechat": 30_000}));
    assert_eq!(fen(&r["bonus_granted"]), 18_000);
    // Stored value consumed: the split of both spends; the reversed one put back.
    let sv = &r["stored_value"];
    let part = |x: &Value, k: &str| fen(&x["details"][k]);
    assert_eq!(
        fen(&sv["principal"]),
        part(&s1, "principal") + part(&s2, "principal")
    );
    assert_eq!(fen(&sv["bonus"]), part(&s1, "bonus") + part(&s2, "bonus"));
    assert_eq!(fen(&sv["total"]), 38_600);
    assert_eq!(fen(&sv["principal"]) + fen(&sv["bonus"]), fen(&sv["total"]));
    assert_eq!(
        (fen(&sv["returned_principal"]), fen(&sv["returned_bonus"])),
        (part(&s2, "principal"), part(&s2, "bonus"))
    );
    assert_eq!(fen(&sv["net_principal"]), part(&s1, "principal"));
    assert_eq!(fen(&sv["count"]), 2);
    assert_eq!(fen(&r["revenue"]["spend"]), 38_600);
    assert_eq!(fen(&r["revenue"]["reversal:spend"]), -10_000);
    assert_eq!(fen(&r["revenue"]["checkout"]), fen(&bill["gross"]));
    // The checkout and its discounts by kind (from the bill's breakdown).
    let ch = &r["checkouts"];
    assert_eq!(fen(&ch["count"]), 1);
    assert_eq!(
        (
            fen(&ch["gross"]),
            fen(&ch["discount"]),
            fen(&ch["amount_due"])
        ),
        (12_000, discount, due)
    );
    let listed: i64 = ch["discounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| fen(&d["amount"]))
        .sum();
    assert_eq!(listed, discount);
    let coupon = ch["discounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "coupon")
        .unwrap_or_else(|| panic!("{ch}"));
    assert_eq!((fen(&coupon["amount"]), fen(&coupon["bills"])), (1_000, 1));
    assert_eq!(fen(&r["coupons"]["redeemed"]), 1);
    assert_eq!(fen(&r["coupons"]["checkout_discount"]), 1_000);
    // Points: earned on both spends and the purchase, the reversed spend's taken back,
    // the gift's redeemed.
    let earned = |x: &Value| fen(&x["details"]["earn"]["points_earned"]);
    assert_eq!(
        fen(&r["points"]["issued"]),
        earned(&s1) + earned(&s2) + fen(&p["earned"]["points_earned"])
    );
    assert_eq!(fen(&r["points"]["taken_back"]), earned(&s2));
    assert_eq!(fen(&r["points"]["redeemed"]), 100);
    assert_eq!(
        (
            fen(&r["purchases"]["count"]),
            fen(&r["purchases"]["amount"])
        ),
        (1, 20_000)
    );
    // The reversal, with its reason and who did it.
    let corr = r["corrections"].as_array().unwrap();
    assert_eq!(corr.len(), 1, "{corr:?}");
    assert_eq!(corr[0]["kind"], "reversal");
    assert_eq!(corr[0]["original_kind"], "spend");
    assert_eq!(corr[0]["reason"], "点错金额");
    assert_eq!(corr[0]["staff_name"], "Owner");
    assert_eq!(fen(&corr[0]["stored_value_amount"]), 10_000);
    let n = &r["counts"];
    assert_eq!(
        (
            fen(&n["top_ups"]),
            fen(&n["spends"]),
            fen(&n["checkouts"]),
            fen(&n["purchases"])
        ),
        (2, 2, 1, 1)
    );
    // The spend kept, the purchase, the checkout; two customers.
    assert_eq!((fen(&n["visits"]), fen(&n["customers_served"])), (3, 2));
    // Cash: the float plus the cash taken in.
    assert_eq!(fen(&r["cash"]["opening_float"]), 50_000);
    assert_eq!(fen(&r["cash"]["expected"]), 50_000 + 100_000 + due);

    // Handover: counted ¥5 short.
    let (s, sr) = t.get(&format!("/shifts/{shift_id}/report")).await;
    assert_eq!(s, StatusCode::OK, "{sr}");
    assert_eq!(fen(&sr["cash"]["expected"]), 50_000 + 100_000 + due);
    assert_eq!(sr["top_ups"], r["top_ups"]);
    let counted = 50_000 + 100_000 + due - 500;
    let (s, e) = t
        .post(
            &format!("/shifts/{shift_id}/close"),
            json!({"counted_cash": -5}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let (s, closed) = t
        .post(
            &format!("/shifts/{shift_id}/close"),
            json!({"counted_cash": counted, "note": "少五元"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{closed}");
    assert_eq!(fen(&closed["shift"]["variance"]), -500);
    assert_eq!(
        fen(&closed["shift"]["expected_cash"]),
        50_000 + 100_000 + due
    );
    assert_eq!(fen(&closed["report"]["cash"]["variance"]), -500);
    let (s, e) = t
        .post(
            &format!("/shifts/{shift_id}/close"),
            json!({"counted_cash": counted}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"]["code"], "shift_closed");
    let (_, sr) = t.get(&format!("/shifts/{shift_id}/report")).await;
    assert_eq!(sr["source"], "snapshot");
    assert_eq!(fen(&sr["cash"]["variance"]), -500);
    let (_, shifts) = t.get("/shifts").await;
    assert_eq!(shifts.as_array().unwrap().len(), 1, "{shifts}");
    let (_, r) = t.get("/settlement/daily").await;
    assert_eq!(fen(&r["cash"]["counted"]), counted);
    assert_eq!(fen(&r["cash"]["variance"]), -500);
    // The printable page.
    let html = t
        .client
        .get(format!("{}/settlement/daily.html", t.base))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("日结单") && html.contains("1300.00"),
        "{html}"
    );
    verify_clean(&t).await;
}

async fn closing_locks_the_day(t: TestApp) {
    let main = store_id(&t, "main").await;
    add_store(&t, "east").await;
    let east = owner_at(&t, "east").await;
    add_staff(&t, "mgr", Role::Manager, Some(main)).await;
    add_staff(&t, "cashier", Role::Cashier, Some(main)).await;
    let mgr = login(&t, "mgr", "staff password 1", "main").await;
    let cashier = login(&t, "cashier", "staff password 1", "main").await;
    let c = card(&t, "13500000011").await;
    top_up_as(&t, &t.token, &c, 30_000, "cash").await;
    let (_, r) = t.get("/settlement/daily").await;
    let date = r["business_date"].as_str().unwrap().to_string();
    let close = format!("/settlement/days/main/{date}/close");
    let reopen = format!("/settlement/days/main/{date}/reopen");
    // Cashiers see no daily settlement and cannot close a day.
    let (s, _) = t
        .req_as(&cashier, Method::GET, "/settlement/daily", None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = t
        .req_as(&cashier, Method::POST, &close, Some(json!({})))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // A manager of main does not settle east.
    let (s, e) = t
        .req_as(&mgr, Method::GET, "/settlement/daily?store=east", None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    // An open shift holds the close back.
    let (s, shift) = t
        .req_as(
            &cashier,
            Method::POST,
            "/shifts",
            Some(json!({"opening_float": 20_000})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{shift}");
    // The cashier rings up a bill and reverses it (反结账) with the manager's approval.
    let (s, co) = t
        .req_as(
            &cashier,
            Method::POST,
            "/checkouts",
            Some(
                json!({"lines": [{"name": "小炒", "quantity": 1, "unit_price": 5_000}],
                        "tenders": [{"method": "cash"}], "idempotency_key": key()}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{co}");
    let (s, rev) = t
        .req_as(
            &cashier,
            Method::POST,
            &format!("/checkouts/{}/reversal", co["checkout_id"].as_str().unwrap()),
            Some(json!({"reason": "客人取消", "approval": {"username": "mgr", "password": "staff password 1"},
                        "idempotency_key": key()})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{rev}");
    let (s, e) = t.req_as(&mgr, Method::POST, &close, Some(json!({}))).await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"]["code"], "shifts_open");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("cashier 名"),
        "{e}"
    );
    // The cashier sees only their own shifts; the manager closes the cashier's.
    let (_, own) = t.req_as(&cashier, Method::GET, "/shifts", None).await;
    assert_eq!(own.as_array().unwrap().len(), 1);
    let (s, closed) = t
        .req_as(
            &mgr,
            Method::POST,
            &format!("/shifts/{}/close", shift["id"].as_str().unwrap()),
            Some(json!({"counted_cash": 20_000})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{closed}");
    assert_eq!(fen(&closed["shift"]["variance"]), 0);
    // The manager closes the day: the report is signed and kept.
    let (s, day) = t
        .req_as(
            &mgr,
            Method::POST,
            &close,
            Some(json!({"note": "店长 签字"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{day}");
    assert_eq!(day["day"]["status"], "closed");
    assert_eq!(day["day"]["note"], "店长 签字");
    assert_eq!(day["day"]["closed_by_name"], "mgr 名");
    assert_eq!(day["source"], "snapshot");
    assert_eq!(fen(&day["top_ups"]["principal"]), 30_000);
    assert_eq!(fen(&day["checkouts"]["count"]), 1);
    let corr = day["corrections"].as_array().unwrap();
    assert_eq!(corr.len(), 1, "{day}");
    assert_eq!(
        (
            &corr[0]["original_kind"],
            &corr[0]["reason"],
            &corr[0]["staff_name"],
            &corr[0]["approver_name"]
        ),
        (
            &json!("checkout"),
            &json!("客人取消"),
            &json!("cashier 名"),
            &json!("mgr 名")
        )
    );
    assert_eq!(fen(&corr[0]["tender_amount"]), -5_000);
    // The owner's cash top-up was taken outside any shift: the day misses it at handover.
    assert_eq!(fen(&day["cash"]["expected"]), 20_000 + 30_000);
    assert_eq!(fen(&day["cash"]["variance"]), -30_000);
    let (s, e) = t.req_as(&mgr, Method::POST, &close, Some(json!({}))).await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"]["code"], "day_already_closed");
    // Nothing can be posted into the closed day, and a refusal changes nothing.
    let before = t.get(&format!("/cards/{c}")).await.1["balances"].clone();
    let (s, e) = t
        .post(
            &format!("/cards/{c}/top-ups"),
            json!({"amount": 10_000, "tender": "cash", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"]["code"], "day_closed");
    assert!(e["error"]["message"].as_str().unwrap().contains("owner"));
    let (s, e) = t
        .post(
            &format!("/cards/{c}/spends"),
            json!({"amount": 1_000, "pin": "246810", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"]["code"], "day_closed");
    let (s, e) = t.post("/shifts", json!({"opening_float": 0})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"]["code"], "day_closed");
    assert_eq!(t.get(&format!("/cards/{c}")).await.1["balances"], before);
    let (_, snap) = t.get("/settlement/daily").await;
    assert_eq!(snap["source"], "snapshot");
    assert_eq!(fen(&snap["top_ups"]["count"]), 1);
    // Another store's day is not closed.
    top_up_as(&t, &east, &c, 10_000, "cash").await;
    // Reopening needs the owner, and a reason.
    let (s, e) = t
        .req_as(&mgr, Method::POST, &reopen, Some(json!({"reason": "补录"})))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    let (s, e) = t.post(&reopen, json!({"reason": " "})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let (s, d) = t.post(&reopen, json!({"reason": "补录一笔充值"})).await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(d["status"], "open");
    assert_eq!(d["reopen_reason"], "补录一笔充值");
    let (s, e) = t.post(&reopen, json!({"reason": "again"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"]["code"], "day_not_closed");
    top_up_as(&t, &t.token, &c, 10_000, "cash").await;
    let (_, live) = t.get("/settlement/daily").await;
    assert_eq!(live["source"], "live");
    assert_eq!(fen(&live["top_ups"]["count"]), 2);
    assert_eq!(live["day"]["status"], "open");
    let (s, day) = t.post(&close, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{day}");
    assert_eq!(fen(&day["day"]["closings"]), 2);
    assert_eq!(fen(&day["top_ups"]["principal"]), 40_000);
    // A day that has not started cannot be closed.
    let tomorrow =
        chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d").unwrap() + chrono::Duration::days(2);
    let (s, e) = t
        .post(
            &format!("/settlement/days/main/{tomorrow}/close"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    verify_clean(&t).await;
}

async fn inter_store_statement_nets(t: TestApp) {
    plain_points(&t).await;
    // Principal first, so each spend's principal is its amount.
    settings(&t, |v| v["split_rule"] = json!("principal_first")).await;
    add_store(&t, "east").await;
    let main = t.token.clone();
    let east = owner_at(&t, "east").await;
    let x = card(&t, "13500000021").await;
    let y = card(&t, "13500000022").await;
    let z = card(&t, "13500000023").await;
    top_up_as(&t, &main, &x, 100_000, "cash").await;
    top_up_as(&t, &east, &y, 50_000, "wechat").await;
    spend_as(&t, &east, &x, 30_000).await; // main owes east 30,000
    spend_as(&t, &main, &y, 20_000).await; // east owes main 20,000
    spend_as(&t, &main, &x, 10_000).await; // local
    // A checkout at east paid from X's stored value: main owes east 10,000 more.
    let (s, co) = t
        .req_as(
            &east,
            Method::POST,
            "/checkouts",
            Some(json!({"lines": [{"name": "套餐", "quantity": 1, "unit_price": 10_000}], "card_id": x,
                        "tenders": [{"method": "stored_value"}], "pin": "246810", "idempotency_key": key()})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{co}");
    assert_eq!(fen(&co["receipt"]["amount_due"]), 10_000, "{co}");
    let undone = spend_as(&t, &east, &x, 5_000).await;
    reverse_as(&t, &east, &undone["txn_id"], "重复刷卡").await; // nets to nothing
    // Oldest principal first: 30,000 sold at main, then 30,000 at east; 40,000 spent at
    // east takes main's 30,000 and 10,000 of east's own.
    top_up_as(&t, &main, &z, 30_000, "cash").await;
    top_up_as(&t, &east, &z, 30_000, "cash").await;
    spend_as(&t, &east, &z, 40_000).await;
    // Y closed at main: its remaining 30,000 (sold at east) paid back by main.
    let (s, r) = t
        .post(
            &format!("/cards/{y}/closure"),
            json!({"refund_tender": "cash", "reason": "顾客退卡", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");

    let (_, d) = t.get("/settlement/daily").await;
    let today = d["business_date"].as_str().unwrap().to_string();
    let (s, st) = t
        .get(&format!("/settlement/inter-store?from={today}&to={today}"))
        .await;
    assert_eq!(s, StatusCode::OK, "{st}");
    assert_eq!(st["method"], "fifo_by_selling_store");
    let flow = |sold: &str, used: &str, kind: &str| {
        st["flows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| {
                f["sold_at"]["code"] == sold && f["used_at"]["code"] == used && f["kind"] == kind
            })
            .map(|f| fen(&f["amount"]))
            .sum::<i64>()
    };
    assert_eq!(flow("main", "east", "consumption"), 70_000, "{st}");
    assert_eq!(flow("east", "main", "consumption"), 20_000, "{st}");
    assert_eq!(flow("east", "main", "refund"), 30_000, "{st}");
    assert_eq!(fen(&st["cross_store_total"]), 120_000);
    assert_eq!(fen(&st["local_total"]), 20_000);
    // Netted: main owes east 70,000, east owes main 50,000: main pays 20,000.
    let debts = st["settlements"].as_array().unwrap();
    assert_eq!(debts.len(), 1, "{st}");
    assert_eq!(debts[0]["payer"]["code"], "main");
    assert_eq!(debts[0]["payee"]["code"], "east");
    assert_eq!(fen(&debts[0]["amount"]), 20_000);
    assert_eq!(fen(&st["net_total"]), 20_000);
    let pos = |code: &str| {
        st["stores"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["store"]["code"] == code)
            .unwrap()
            .clone()
    };
    let (m, e) = (pos("main"), pos("east"));
    assert_eq!(
        (
            fen(&m["principal_used_here"]),
            fen(&m["owed_to_store"]),
            fen(&m["owed_by_store"]),
            fen(&m["net"])
        ),
        (60_000, 50_000, 70_000, -20_000)
    );
    assert_eq!(
        (
            fen(&e["principal_used_here"]),
            fen(&e["owed_to_store"]),
            fen(&e["owed_by_store"]),
            fen(&e["net"])
        ),
        (80_000, 70_000, 50_000, 20_000)
    );
    // East's day: stored value consumed by spends and the checkout, principal first.
    let (_, d) = t
        .req_as(&east, Method::GET, "/settlement/daily", None)
        .await;
    let sv = &d["stored_value"];
    assert_eq!(
        fen(&sv["principal"]),
        30_000 + 10_000 + 5_000 + 40_000,
        "{d}"
    );
    assert_eq!(fen(&sv["returned_principal"]), 5_000);
    assert_eq!(fen(&sv["count"]), 4);
    assert_eq!(fen(&d["revenue"]["checkout"]), 10_000);
    assert_eq!(d["balanced"], true);
    // A period before any of it: nothing to settle.
    let (_, empty) = t
        .get("/settlement/inter-store?from=2020-01-01&to=2020-01-31")
        .await;
    assert_eq!(fen(&empty["cross_store_total"]), 0, "{empty}");
    // Bad periods and other roles are refused.
    let (s, e) = t
        .get(&format!(
            "/settlement/inter-store?from={today}&to=2020-01-01"
        ))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    add_staff(&t, "mgr2", Role::Manager, None).await;
    let mgr = login(&t, "mgr2", "staff password 1", "main").await;
    let (s, _) = t
        .req_as(
            &mgr,
            Method::GET,
            &format!("/settlement/inter-store?from={today}&to={today}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    verify_clean(&t).await;
}

/// Top-ups race a close of their day: every top-up that was answered OK is in the signed
/// report, every other one was refused as `day_closed`, and recomputing the day after the
/// fact (reopened) finds exactly the signed figures: nothing committed into it after it.
async fn closing_waits_for_postings_in_flight(t: TestApp) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};
    let first = card(&t, "13500000020").await;
    top_up_as(&t, &t.token, &first, 1_000, "cash").await;
    let (_, r) = t.get("/settlement/daily").await;
    let date = r["business_date"].as_str().unwrap().to_string();
    let posted = Arc::new(AtomicI64::new(0));
    let mut tills = Vec::new();
    for i in 0..8 {
        let c = card(&t, &format!("135000001{i:02}")).await;
        let (client, base, auth, posted) = (
            t.client.clone(),
            t.base.clone(),
            t.token.clone(),
            posted.clone(),
        );
        tills.push(tokio::spawn(async move {
            // Until the close refuses them.
            loop {
                let (s, v) = crate::support::decode(
                    client
                        .post(format!("{base}/cards/{c}/top-ups"))
                        .bearer_auth(&auth)
                        .json(&json!({"amount": 100, "tender": "cash", "idempotency_key": key()}))
                        .send()
                        .await
                        .unwrap(),
                )
                .await;
                if s == StatusCode::OK {
                    posted.fetch_add(1, Ordering::SeqCst);
                } else {
                    assert_eq!(
                        (s, v["error"]["code"].as_str()),
                        (StatusCode::CONFLICT, Some("day_closed")),
                        "{v}"
                    );
                    return;
                }
            }
        }));
    }
    // The close lands while the tills are busy.
    while posted.load(Ordering::SeqCst) < 16 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let (s, snap) = t
        .post(&format!("/settlement/days/main/{date}/close"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{snap}");
    for till in tills {
        till.await.unwrap();
    }
    let n = posted.load(Ordering::SeqCst);
    assert_eq!(fen(&snap["top_ups"]["count"]), 1 + n, "{snap}");
    assert_eq!(fen(&snap["top_ups"]["principal"]), 1_000 + 100 * n);
    let (_, signed) = t.get("/settlement/daily").await;
    assert_eq!(signed["source"], "snapshot");
    assert_eq!(signed["top_ups"], snap["top_ups"]);
    // Recomputed from the ledger now: the same day, the same figures.
    let (s, d) = t
        .post(
            &format!("/settlement/days/main/{date}/reopen"),
            json!({"reason": "核对"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    let (_, live) = t.get("/settlement/daily").await;
    assert_eq!(live["source"], "live");
    for figure in ["top_ups", "tenders", "money_in", "cash", "ledger"] {
        assert_eq!(live[figure], snap[figure], "{figure}");
    }
    verify_clean(&t).await;
}
