//! Checkout at the till through the API, on both backends.

use crate::support::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

crate::both_backends!(
    member_bill_in_one_transaction,
    reversal_restores_everything,
    concurrent_checkouts_never_overdraw,
    receipts_print_to_a_network_printer,
    partial_refunds_need_approval_and_add_up,
    menu_changes_reach_the_next_bill_at_once,
);

fn key() -> String {
    uuid::Uuid::now_v7().to_string()
}

struct Menu {
    pork: String,
    fish: String,
    rice: String,
    beer: String,
}

/// Four dishes: 红烧肉 ¥68 (member ¥60, gold ¥58), 清蒸鲈鱼 ¥128 (member ¥118),
/// 米饭 ¥3, 啤酒 ¥15 (joins no discounts).
async fn menu(t: &TestApp) -> Menu {
    let (s, c) = t
        .post(
            "/menu/categories",
            json!({"name": "热菜", "name_en": "Hot"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let cat = c["id"].as_str().unwrap().to_string();
    let mut ids = Vec::new();
    for body in [
        json!({"category_id": cat, "name": "红烧肉", "price": 6_800,
               "member_prices": [{"card_kind": "member_price", "price": 6_000}, {"level": "gold", "price": 5_800}]}),
        json!({"category_id": cat, "name": "清蒸鲈鱼", "price": 12_800,
               "member_prices": [{"card_kind": "member_price", "price": 11_800}]}),
        json!({"category_id": cat, "name": "米饭", "price": 300}),
        json!({"category_id": cat, "name": "啤酒", "price": 1_500, "joins_discounts": false}),
    ] {
        let (s, i) = t.post("/menu/items", body).await;
        assert_eq!(s, StatusCode::CREATED, "{i}");
        ids.push(i["id"].as_str().unwrap().to_string());
    }
    Menu {
        pork: ids[0].clone(),
        fish: ids[1].clone(),
        rice: ids[2].clone(),
        beer: ids[3].clone(),
    }
}

async fn settings(t: &TestApp, change: impl FnOnce(&mut Value)) {
    let (_, mut v) = t.get("/settings").await;
    change(&mut v);
    let (s, r) = t.req(Method::PUT, "/settings", Some(v)).await;
    assert_eq!(s, StatusCode::OK, "{r}");
}

/// A gold member with an integrated card holding ¥1,000 + ¥150 bonus; plain points rules.
async fn gold_member(t: &TestApp, phone: &str) -> (String, String) {
    settings(t, |v| {
        v["points"]["birthday"] = Value::Null;
        v["points"]["threshold_bonus"] = Value::Null;
        v["points"]["nth_visit_bonus"] = Value::Null;
    })
    .await;
    let customer = t.customer(json!({"name": "王金卡", "phone": phone})).await;
    let (s, c) = t
        .post(
            "/cards",
            json!({"customer_id": customer, "pin": "246810",
                   "kinds": {"stored_value": true, "points": true, "member_price": true}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let card = c["id"].as_str().unwrap().to_string();
    let (s, r) = t
        .post(
            &format!("/cards/{card}/top-ups"),
            json!({"amount": 100_000, "tender": "cash", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let (s, l) = t
        .req(
            Method::PUT,
            &format!("/customers/{customer}/level"),
            Some(json!({"level": "gold", "reason": "老客"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{l}");
    (customer, card)
}

fn check_breakdown(b: &Value) {
    let gross = b["gross"].as_i64().unwrap();
    let discount = b["total_discount"].as_i64().unwrap();
    let due = b["amount_due"].as_i64().unwrap();
    assert_eq!(gross - discount, due, "{b}");
    let nets: i64 = b["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["net"].as_i64().unwrap())
        .sum();
    assert_eq!(nets, due, "{b}");
    let listed: i64 = b["discounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["amount"].as_i64().unwrap())
        .sum();
    assert_eq!(listed, discount, "{b}");
}

async fn verify_clean(t: &TestApp) {
    let report = t.app.verify_ledger().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.violations);
}

fn bill(m: &Menu) -> Value {
    json!([
        {"item_id": m.pork, "quantity": 1},
        {"item_id": m.fish, "quantity": 1},
        {"item_id": m.rice, "quantity": 4},
        {"item_id": m.beer, "quantity": 2},
        {"name": "茶位费", "quantity": 4, "unit_price": 500},
    ])
}

async fn member_bill_in_one_transaction(t: TestApp) {
    let m = menu(&t).await;
    let (customer, card) = gold_member(&t, "13600000001").await;
    // A 满 200 减 20 voucher for the customer.
    let (s, tpl) = t
        .post(
            "/coupon-templates",
            json!({"name": "满200减20", "kind": {"type": "cash", "value": 2_000, "min_spend": 20_000},
                   "validity": {"type": "days_after_issue", "days": 30}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{tpl}");
    let (s, issued) = t
        .post(
            &format!("/coupon-templates/{}/issue", tpl["id"].as_str().unwrap()),
            json!({"customer_ids": [customer]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{issued}");
    let code = issued[0]["code"].as_str().unwrap().to_string();
    // Quote: recognised by phone, no card swiped.
    let body = json!({"lines": bill(&m), "customer": {"phone": "13600000001"}, "coupons": [code],
                      "tenders": [{"method": "stored_value"}], "pin": "246810", "idempotency_key": key()});
    let (s, q) = t.post("/checkouts/quote", body.clone()).await;
    assert_eq!(s, StatusCode::OK, "{q}");
    check_breakdown(&q["breakdown"]);
    assert_eq!(q["level"], "gold");
    let gross = 6_800 + 12_800 + 4 * 300 + 2 * 1_500 + 4 * 500;
    assert_eq!(q["breakdown"]["gross"], gross);
    let kinds: Vec<&str> = q["breakdown"]["discounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"member_price"), "{kinds:?}");
    assert!(kinds.contains(&"coupon"), "{kinds:?}");
    let due = q["breakdown"]["amount_due"].as_i64().unwrap();
    // Nothing changed by the quote.
    let (_, c) = t.get(&format!("/coupons/{code}")).await;
    assert_eq!(c["status"], "issued");
    // Take it.
    let (s, r) = t.post("/checkouts", body.clone()).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["receipt"]["amount_due"], due);
    assert!(
        r["number"].as_str().unwrap().starts_with("MAIN-"),
        "{}",
        r["number"]
    );
    let sv = &r["receipt"]["stored_value"];
    assert_eq!(sv["before"], 115_000);
    assert_eq!(sv["after"].as_i64().unwrap(), 115_000 - due);
    let points = &r["receipt"]["points"];
    assert!(points["earned"].as_i64().unwrap() > 0, "{r}");
    assert_eq!(points["after"], points["earned"]);
    let (_, c) = t.get(&format!("/coupons/{code}")).await;
    assert_eq!(c["status"], "redeemed");
    // The same request again: the same receipt, nothing taken twice.
    let (s, again) = t.post("/checkouts", body.clone()).await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["number"], r["number"]);
    assert_eq!(again["ledger"]["replayed"], true);
    let (_, cv) = t.get(&format!("/cards/{card}")).await;
    assert_eq!(
        cv["balances"]["principal"].as_i64().unwrap() + cv["balances"]["bonus"].as_i64().unwrap(),
        115_000 - due
    );
    // The same key with another bill: 409.
    let mut other = body.clone();
    other["lines"] = json!([{"item_id": m.rice, "quantity": 1}]);
    let (s, e) = t.post("/checkouts", other).await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    // Bad bills change nothing.
    let before = t.get(&format!("/cards/{card}")).await.1["balances"].clone();
    for bad in [
        json!({"lines": [], "tenders": [{"method": "cash"}], "idempotency_key": key()}),
        json!({"lines": [{"item_id": m.rice, "quantity": 0}], "tenders": [{"method": "cash"}], "idempotency_key": key()}),
        json!({"lines": [{"item_id": m.rice, "quantity": 1}], "tenders": [{"method": "cash", "amount": 100}], "idempotency_key": key()}),
        json!({"lines": [{"item_id": m.rice, "quantity": 1}], "customer": {"phone": "13600000001"},
               "tenders": [{"method": "stored_value"}], "pin": "000000", "idempotency_key": key()}),
    ] {
        let (s, e) = t.post("/checkouts", bad).await;
        assert!(s.is_client_error(), "{s} {e}");
    }
    assert_eq!(t.get(&format!("/cards/{card}")).await.1["balances"], before);
    // The visit counts: growth value and the customer's timeline.
    let (_, l) = t.get(&format!("/customers/{customer}/loyalty")).await;
    assert_eq!(l["growth"].as_i64().unwrap(), due, "{l}");
    // The timeline a page of one at a time: the bill and its coupon share a moment, and
    // the cursor (time and id of the last event shown) neither skips nor repeats one.
    let (_, all) = t
        .get(&format!("/customers/{customer}/timeline?limit=500"))
        .await;
    let all = all.as_array().unwrap().clone();
    let at = |e: &Value| e["occurred_at"].as_str().unwrap().to_string();
    assert!(
        all.windows(2).any(|w| at(&w[0]) == at(&w[1])),
        "two events at one moment: {all:?}"
    );
    let mut paged = Vec::new();
    let mut url = format!("/customers/{customer}/timeline?limit=1");
    loop {
        let (s, page) = t.get(&url).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let Some(e) = page.as_array().unwrap().first().cloned() else {
            break;
        };
        url = format!(
            "/customers/{customer}/timeline?limit=1&before={}&before_id={}",
            urlencoding(&at(&e)),
            e["id"].as_str().unwrap()
        );
        paged.push(e);
        assert!(paged.len() <= all.len(), "the pages repeat: {paged:?}");
    }
    assert_eq!(paged, all);
    verify_clean(&t).await;
}

/// An RFC 3339 time in a query string (its `+` would read as a space).
fn urlencoding(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

async fn reversal_restores_everything(t: TestApp) {
    let m = menu(&t).await;
    let (customer, card) = gold_member(&t, "13600000002").await;
    // Spend ¥100, get a ¥100 voucher to month end; and a voucher used on this bill.
    let (_, v100) = t
        .post(
            "/coupon-templates",
            json!({"name": "满100送100", "kind": {"type": "cash", "value": 10_000, "min_spend": 30_000},
                   "validity": {"type": "end_of_month"}}),
        )
        .await;
    t.post(
        "/coupon-rules",
        json!({"template_id": v100["id"], "min_spend": 10_000}),
    )
    .await;
    let (_, tpl) = t
        .post(
            "/coupon-templates",
            json!({"name": "10元券", "kind": {"type": "cash", "value": 1_000},
                   "validity": {"type": "days_after_issue", "days": 30}}),
        )
        .await;
    let (_, issued) = t
        .post(
            &format!("/coupon-templates/{}/issue", tpl["id"].as_str().unwrap()),
            json!({"customer_ids": [customer]}),
        )
        .await;
    let used = issued[0]["code"].as_str().unwrap().to_string();
    let before_card = t.get(&format!("/cards/{card}")).await.1["balances"].clone();
    let (s, r) = t
        .post(
            "/checkouts",
            json!({"lines": bill(&m), "card_id": card, "coupons": [used],
                   "tenders": [{"method": "stored_value", "amount": 5_000}, {"method": "wechat"}],
                   "pin": "246810", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let id = r["checkout_id"].as_str().unwrap().to_string();
    let triggered = r["earned"]["coupons_issued"][0]["code"]
        .as_str()
        .unwrap()
        .to_string();
    // Reverse (the owner approves by being the owner).
    let (s, rev) = t
        .post(
            &format!("/checkouts/{id}/reversal"),
            json!({"reason": "客人投诉菜品", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{rev}");
    assert_eq!(rev["receipt"]["kind"], "reversal");
    let after_card = t.get(&format!("/cards/{card}")).await.1["balances"].clone();
    assert_eq!(after_card, before_card, "money and points back exactly");
    let (_, c) = t.get(&format!("/coupons/{used}")).await;
    assert_eq!(c["status"], "issued", "the used coupon is usable again");
    let (_, c) = t.get(&format!("/coupons/{triggered}")).await;
    assert_eq!(c["status"], "voided", "the coupon it issued is void");
    let (_, l) = t.get(&format!("/customers/{customer}/loyalty")).await;
    assert_eq!(l["growth"], 0, "the visit no longer counts");
    // Once only.
    let (s, e) = t
        .post(
            &format!("/checkouts/{id}/reversal"),
            json!({"reason": "again", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    verify_clean(&t).await;
}

async fn concurrent_checkouts_never_overdraw(t: TestApp) {
    let m = menu(&t).await;
    settings(&t, |v| v["pin_required"] = json!(false)).await;
    let customer = t
        .customer(json!({"name": "并发", "phone": "13600000003"}))
        .await;
    let (_, c) = t.post("/cards", json!({"customer_id": customer})).await;
    let card = c["id"].as_str().unwrap().to_string();
    t.post(
        &format!("/cards/{card}/top-ups"),
        json!({"amount": 30_000, "tender": "cash", "idempotency_key": key()}),
    )
    .await;
    // ¥330 of stored value; 16 tills each take a ¥30 bill (10 × 米饭).
    let mut handles = Vec::new();
    for _ in 0..16 {
        let client = t.client.clone();
        let url = format!("{}/checkouts", t.base);
        let token = t.token.clone();
        let body = json!({"lines": [{"item_id": m.rice, "quantity": 10}], "card_id": card,
                          "tenders": [{"method": "stored_value"}], "idempotency_key": key()});
        handles.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut ok = 0;
    for h in handles {
        let s = h.await.unwrap();
        if s == StatusCode::OK {
            ok += 1;
        } else {
            assert_eq!(s, StatusCode::CONFLICT);
        }
    }
    assert_eq!(ok, 11);
    let (_, cv) = t.get(&format!("/cards/{card}")).await;
    assert_eq!(
        cv["balances"]["principal"].as_i64().unwrap() + cv["balances"]["bonus"].as_i64().unwrap(),
        0
    );
    verify_clean(&t).await;
}

async fn receipts_print_to_a_network_printer(t: TestApp) {
    let m = menu(&t).await;
    let (s, r) = t
        .post(
            "/checkouts",
            json!({"lines": [{"item_id": m.pork, "quantity": 2}], "tenders": [{"method": "cash"}],
                   "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(
        r["receipt"]["amount_due"], 13_600,
        "no member: regular price"
    );
    let id = r["checkout_id"].as_str().unwrap().to_string();
    let url = format!("{}/checkouts/{id}/receipt", t.base);
    let html = t
        .client
        .get(&url)
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap();
    assert_eq!(html.status(), StatusCode::OK);
    assert!(html.text().await.unwrap().contains("红烧肉"));
    let text = t
        .client
        .get(format!("{url}?format=text&paper=58"))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("136.00"), "{text}");
    // A printer on port 9100 is a TCP listener: capture what it gets.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let capture = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        sock.read_to_end(&mut buf).await.unwrap();
        buf
    });
    let (s, p) = t
        .post(
            &format!("/checkouts/{id}/print"),
            json!({"printer": addr.to_string(), "paper": 80}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    let bytes = capture.await.unwrap();
    assert_eq!(&bytes[..2], b"\x1b@", "ESC @ first");
    assert_eq!(bytes.len() as u64, p["bytes"].as_u64().unwrap());
    let (gb, _, _) = encoding_rs::GB18030.encode("红烧肉");
    assert!(
        bytes.windows(gb.len()).any(|w| w == &gb[..]),
        "GB18030 dish name"
    );
    // An unreachable printer is a clear 502.
    let (s, e) = t
        .post(
            &format!("/checkouts/{id}/print"),
            json!({"printer": "127.0.0.1:1"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_GATEWAY, "{e}");
}

/// A cashier account at the store "main", logged in.
async fn cashier(t: &TestApp) -> String {
    let store = t
        .app
        .storage
        .list_stores(t.tenant_id)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.code == "main")
        .unwrap();
    t.app
        .storage
        .create_staff(&patron_domain::org::Staff {
            tenant_id: t.tenant_id,
            id: patron_domain::ids::StaffId(uuid::Uuid::now_v7()),
            username: "cashier1".into(),
            display_name: "收银员小李".into(),
            password_hash: patron_app::auth::hash_secret("till password 1").unwrap(),
            role: patron_domain::org::Role::Cashier,
            store_id: Some(store.id),
            active: true,
            created_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    let res = t
        .client
        .post(format!("{}/auth/login", t.base))
        .json(&json!({"tenant": "t1", "username": "cashier1", "password": "till password 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn partial_refunds_need_approval_and_add_up(t: TestApp) {
    let m = menu(&t).await;
    let (customer, card) = gold_member(&t, "13600000004").await;
    let till = cashier(&t).await;
    let start = t.get(&format!("/cards/{card}")).await.1["balances"].clone();
    // Paid half by stored value, half by WeChat; the cashier takes it.
    let (s, r) = t
        .req_as(
            &till,
            Method::POST,
            "/checkouts",
            Some(json!({"lines": bill(&m), "card_id": card,
                   "tenders": [{"method": "stored_value", "amount": 10_000}, {"method": "wechat"}],
                   "pin": "246810", "idempotency_key": key()})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let id = r["checkout_id"].as_str().unwrap().to_string();
    let due = r["receipt"]["amount_due"].as_i64().unwrap();
    let earned = r["earned"]["points_earned"].as_i64().unwrap();
    // A cashier cannot refund alone; a wrong manager password is refused too.
    let body = json!({"lines": [{"line_no": 2, "quantity": 1}], "reason": "鱼不新鲜", "idempotency_key": key()});
    let (s, e) = t
        .req_as(
            &till,
            Method::POST,
            &format!("/checkouts/{id}/refunds"),
            Some(body.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    let mut wrong = body.clone();
    wrong["approval"] = json!({"username": "owner", "password": "nope"});
    let (s, _) = t
        .req_as(
            &till,
            Method::POST,
            &format!("/checkouts/{id}/refunds"),
            Some(wrong),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // With the owner's approval: the fish line comes back.
    let mut approved = body.clone();
    approved["approval"] = json!({"username": "owner", "password": "correct horse battery"});
    let (s, f) = t
        .req_as(
            &till,
            Method::POST,
            &format!("/checkouts/{id}/refunds"),
            Some(approved.clone()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{f}");
    assert_eq!(f["receipt"]["kind"], "refund");
    let fish = f["receipt"]["amount_due"].as_i64().unwrap();
    assert!(
        fish > 0 && fish < 12_800,
        "the fish's share, after discounts: {fish}"
    );
    let tender_sum: i64 = f["receipt"]["tenders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["amount"].as_i64().unwrap())
        .sum();
    assert_eq!(
        tender_sum, fish,
        "the refund goes back to the tenders exactly"
    );
    // Idempotent: the same request again changes nothing.
    let (s, again) = t
        .req_as(
            &till,
            Method::POST,
            &format!("/checkouts/{id}/refunds"),
            Some(approved),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["ledger"]["replayed"], true);
    // The fish cannot be refunded twice.
    let (s, e) = t
        .post(
            &format!("/checkouts/{id}/refunds"),
            json!({"lines": [{"line_no": 2, "quantity": 1}], "reason": "再退", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    // The rest by amount (the owner approves by being the owner): more than is left is refused.
    let left = due - fish;
    let (s, e) = t
        .post(
            &format!("/checkouts/{id}/refunds"),
            json!({"amount": left + 1, "reason": "整单退", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    let (s, rest) = t
        .post(
            &format!("/checkouts/{id}/refunds"),
            json!({"amount": left, "reason": "整单退", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{rest}");
    // Everything came back: the card's money, and the points it earned.
    let end = t.get(&format!("/cards/{card}")).await.1["balances"].clone();
    assert_eq!(end["principal"], start["principal"], "{end}");
    assert_eq!(end["bonus"], start["bonus"], "{end}");
    assert_eq!(
        end["points"], start["points"],
        "earned {earned}, all taken back: {end}"
    );
    let (_, l) = t.get(&format!("/customers/{customer}/loyalty")).await;
    assert_eq!(l["growth"], 0, "{l}");
    let (_, co) = t.get(&format!("/checkouts/{id}")).await;
    assert_eq!(co["receipt"]["kind"], "sale");
    verify_clean(&t).await;
}

/// Bills read dishes and coupon templates from a short-lived cache: a change made
/// through the app must reach the very next quote all the same.
async fn menu_changes_reach_the_next_bill_at_once(t: TestApp) {
    let m = menu(&t).await;
    let quote = |lines: Value| {
        let t = &t;
        async move {
            let (s, q) = t
                .post(
                    "/checkouts/quote",
                    json!({"lines": lines, "tenders": [{"method": "cash"}], "idempotency_key": key()}),
                )
                .await;
            (s, q)
        }
    };
    let pork = json!([{"item_id": m.pork, "quantity": 1}]);
    let (s, q) = quote(pork.clone()).await;
    assert_eq!(s, StatusCode::OK, "{q}");
    assert_eq!(q["breakdown"]["gross"], 6_800);
    // A new price.
    let (s, _) = t
        .patch(&format!("/menu/items/{}", m.pork), json!({"price": 7_200}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (_, q) = quote(pork.clone()).await;
    assert_eq!(q["breakdown"]["gross"], 7_200, "{q}");
    // Off the menu.
    let (s, _) = t
        .patch(&format!("/menu/items/{}", m.pork), json!({"active": false}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, q) = quote(pork).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{q}");
    assert_eq!(q["error"]["fields"][0]["code"], "item_inactive", "{q}");
    // A coupon whose template is narrowed to other levels after a first quote.
    let (customer, _) = gold_member(&t, "13600000077").await;
    let (s, tpl) = t
        .post(
            "/coupon-templates",
            json!({"name": "满100减10", "kind": {"type": "cash", "value": 1_000, "min_spend": 10_000},
                   "validity": {"type": "days_after_issue", "days": 30}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{tpl}");
    let tpl_id = tpl["id"].as_str().unwrap().to_string();
    let (_, issued) = t
        .post(
            &format!("/coupon-templates/{tpl_id}/issue"),
            json!({"customer_ids": [customer]}),
        )
        .await;
    let code = issued[0]["code"].as_str().unwrap().to_string();
    let bill = json!({"lines": [{"item_id": m.fish, "quantity": 1}], "customer": {"phone": "13600000077"},
                      "coupons": [code], "tenders": [{"method": "cash"}], "idempotency_key": key()});
    let (s, q) = t.post("/checkouts/quote", bill.clone()).await;
    assert_eq!(s, StatusCode::OK, "{q}");
    let (s, _) = t
        .patch(
            &format!("/coupon-templates/{tpl_id}"),
            json!({"level_codes": ["diamond"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, q) = t.post("/checkouts/quote", bill).await;
    assert!(s.is_client_error(), "a gold member is refused now: {s} {q}");
}
