//! Cards, stored value and the ledger through the API, on both backends.

use crate::support::TestApp;
use reqwest::StatusCode;
use serde_json::{Value, json};

crate::both_backends!(
    top_up_spend_and_exact_split,
    pin_lockout,
    idempotency_and_insufficient_funds,
    reversal_transfer_replace_close,
    prepaid_policy_and_self_top_up,
    concurrent_spends_never_overdraw,
    corporate_pool_and_charge_account,
    merging_organizations_moves_their_money,
    concurrent_adjustments_keep_the_daily_limit,
);

async fn member_card(t: &TestApp, phone: &str) -> (String, String) {
    let customer = t.customer(json!({"name": "储值客", "phone": phone})).await;
    let (s, c) = t
        .post("/cards", json!({"customer_id": customer, "pin": "246810"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    assert_eq!(c["balances"]["principal"], 0);
    (customer, c["id"].as_str().unwrap().to_string())
}

fn key() -> String {
    uuid::Uuid::now_v7().to_string()
}

async fn top_up(t: &TestApp, card: &str, fen: i64) -> Value {
    let (s, r) = t
        .post(
            &format!("/cards/{card}/top-ups"),
            json!({"amount": fen, "tender": "cash", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    r
}

async fn verify_clean(t: &TestApp) {
    let report = t.app.verify_ledger().await.unwrap();
    assert!(report.is_clean(), "{:?}", report.violations);
    assert!(report.entries > 0);
}

async fn top_up_spend_and_exact_split(t: TestApp) {
    let (customer, card) = member_card(&t, "13800000001").await;
    let (_, p) = t.get("/top-up-preview?amount=100000").await;
    assert_eq!(p["bonus"], 15000, "1,000 yuan earns the 150 tier");
    let r = top_up(&t, &card, 100_000).await;
    assert_eq!(
        (
            r["after"]["principal"].as_i64(),
            r["after"]["bonus"].as_i64()
        ),
        (Some(100_000), Some(15_000))
    );
    assert_eq!(r["before"]["principal"], 0);
    let (s, r) = t
        .post(
            &format!("/cards/{card}/spends"),
            json!({"amount": 28_600, "pin": "246810", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    // Proportional: bonus = floor(28600 × 15000 / 115000) = 3730, principal the rest.
    assert_eq!(
        (
            r["details"]["principal"].as_i64(),
            r["details"]["bonus"].as_i64()
        ),
        (Some(24_870), Some(3_730))
    );
    assert_eq!(
        (
            r["after"]["principal"].as_i64(),
            r["after"]["bonus"].as_i64()
        ),
        (Some(75_130), Some(11_270))
    );
    // Statement in three forms.
    let (_, st) = t.get(&format!("/cards/{card}/statement")).await;
    // Top-up: principal and bonus; spend: principal, bonus and the points it earned
    // (stored-value spending earns by default: 1 point per yuan).
    assert_eq!(st["lines"].as_array().unwrap().len(), 5, "{st}");
    let last = |which: &str| {
        st["lines"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|l| l["balance"] == which)
            .unwrap()["balance_after"]
            .clone()
    };
    assert_eq!(
        (last("principal"), last("bonus"), last("points")),
        (json!(75_130), json!(11_270), json!(286))
    );
    let csv = t
        .client
        .get(format!("{}/cards/{card}/statement?format=csv", t.base))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        csv.starts_with('\u{feff}') && csv.contains("751.30"),
        "{csv}"
    );
    let html = t
        .client
        .get(format!("{}/cards/{card}/statement?format=html", t.base))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("751.30") && html.contains("对账单"));
    // Liability: 751.30 principal + 112.70 bonus outstanding.
    let (_, l) = t.get("/reports/liability").await;
    let sum = |kind: &str| {
        l.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["kind"] == kind)
            .map(|r| r["amount"].as_i64().unwrap())
            .sum::<i64>()
    };
    assert_eq!((sum("card_principal"), sum("card_bonus")), (75_130, 11_270));
    // The timeline shows the money.
    let (_, tl) = t.get(&format!("/customers/{customer}/timeline")).await;
    let kinds: Vec<&str> = tl
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    // The first spend also makes the customer a member (level "member", growth ¥286).
    assert!(kinds.contains(&"level_changed"), "{kinds:?}");
    let money: Vec<&str> = kinds
        .into_iter()
        .filter(|k| *k != "level_changed")
        .collect();
    assert_eq!(&money[..3], ["spend", "top_up", "card_issued"]);
    // Card look-up by number at the till.
    let number = st["card"]["number"].as_str().unwrap();
    let (s, c) = t.get(&format!("/cards/by-number?number={number}")).await;
    assert_eq!((s, c["id"].as_str()), (StatusCode::OK, Some(card.as_str())));
    verify_clean(&t).await;
}

async fn pin_lockout(t: TestApp) {
    let (_, card) = member_card(&t, "13800000002").await;
    top_up(&t, &card, 30_000).await;
    for i in 0..4 {
        let (s, e) = t
            .post(
                &format!("/cards/{card}/spends"),
                json!({"amount": 100, "pin": "000000", "idempotency_key": key()}),
            )
            .await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("wrong_pin")),
            "try {i}"
        );
    }
    let (s, e) = t
        .post(
            &format!("/cards/{card}/spends"),
            json!({"amount": 100, "pin": "000000", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::LOCKED, Some("card_locked"))
    );
    // Even the right PIN is refused while locked.
    let (s, _) = t
        .post(
            &format!("/cards/{card}/spends"),
            json!({"amount": 100, "pin": "246810", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::LOCKED);
    let (_, c) = t.get(&format!("/cards/{card}")).await;
    assert_eq!(c["balances"]["principal"], 30_000, "nothing was spent");
    // Every attempt is on record, newest first, with the store it was made at.
    let (s, attempts) = t.get(&format!("/cards/{card}/pin-attempts")).await;
    assert_eq!(s, StatusCode::OK, "{attempts}");
    let wrong = attempts
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["success"] == false)
        .count();
    assert!(wrong >= 5, "{attempts}");
    assert!(attempts[0]["store_id"].is_string(), "{attempts}");
    // Without a PIN at all: 422.
    let (_, card2) = member_card(&t, "13800000003").await;
    top_up(&t, &card2, 30_000).await;
    let (s, e) = t
        .post(
            &format!("/cards/{card2}/spends"),
            json!({"amount": 100, "idempotency_key": key()}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed"))
    );
    // A verified-PIN token stands for the PIN.
    let (s, tok) = t
        .post(
            &format!("/cards/{card2}/pin-verification"),
            json!({"pin": "246810"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = t
        .post(
            &format!("/cards/{card2}/spends"),
            json!({"amount": 100, "pin_token": tok["pin_token"], "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // The token is bound to its card.
    let (s, _) = t
        .post(
            &format!("/cards/{card}/spends"),
            json!({"amount": 100, "pin_token": tok["pin_token"], "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::LOCKED);
}

async fn idempotency_and_insufficient_funds(t: TestApp) {
    let (_, card) = member_card(&t, "13800000004").await;
    let k = key();
    let body = json!({"amount": 50_000, "tender": "wechat", "idempotency_key": k});
    let (_, first) = t
        .post(&format!("/cards/{card}/top-ups"), body.clone())
        .await;
    let (s, again) = t.post(&format!("/cards/{card}/top-ups"), body).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(again["txn_id"], first["txn_id"]);
    assert_eq!(again["replayed"], true);
    assert_eq!(again["after"], first["after"]);
    let (_, c) = t.get(&format!("/cards/{card}")).await;
    assert_eq!(c["balances"]["principal"], 50_000, "charged once");
    let (s, e) = t
        .post(
            &format!("/cards/{card}/top-ups"),
            json!({"amount": 60_000, "tender": "wechat", "idempotency_key": k}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("idempotency_key_reused"))
    );
    // Spending more than the card holds: refused, nothing changes.
    let (s, e) = t
        .post(
            &format!("/cards/{card}/spends"),
            json!({"amount": 6_000_000, "pin": "246810", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("insufficient_balance"))
    );
    // Negative, zero and absurd amounts are refused.
    for amount in [-1, 0, 100_000_000_001_i64] {
        let (s, _) = t
            .post(
                &format!("/cards/{card}/spends"),
                json!({"amount": amount, "pin": "246810", "idempotency_key": key()}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{amount}");
    }
    let (_, c) = t.get(&format!("/cards/{card}")).await;
    assert_eq!(c["balances"]["principal"], 50_000);
    assert_eq!(c["balances"]["bonus"], 3_000);
    verify_clean(&t).await;
}

async fn reversal_transfer_replace_close(t: TestApp) {
    let (_, card) = member_card(&t, "13800000005").await;
    let (customer, _) = (
        t.get(&format!("/cards/{card}")).await.1["customer_id"].clone(),
        (),
    );
    top_up(&t, &card, 100_000).await;
    let (_, spend) = t
        .post(
            &format!("/cards/{card}/spends"),
            json!({"amount": 10_000, "pin": "246810", "idempotency_key": key()}),
        )
        .await;
    let txn = spend["txn_id"].as_str().unwrap();
    let (s, r) = t
        .post(
            &format!("/transactions/{txn}/reversal"),
            json!({"reason": "点错了", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(
        (
            r["after"]["principal"].as_i64(),
            r["after"]["bonus"].as_i64()
        ),
        (Some(100_000), Some(15_000))
    );
    let (s, e) = t
        .post(
            &format!("/transactions/{txn}/reversal"),
            json!({"reason": "again", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_reversed"))
    );
    let (s, _) = t
        .post(
            &format!("/transactions/{txn}/reversal"),
            json!({"reason": "", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "a reason is required");
    // A second card of the same holder; transfer 200 yuan to it.
    let (s, c2) = t
        .post("/cards", json!({"customer_id": customer, "pin": "135790"}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let card2 = c2["id"].as_str().unwrap().to_string();
    let (s, r) = t
        .post(&format!("/cards/{card}/transfers"), json!({"to_card_id": card2, "amount": 23_000, "pin": "246810", "idempotency_key": key()}))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let (_, c2) = t.get(&format!("/cards/{card2}")).await;
    assert_eq!(
        c2["balances"]["principal"].as_i64().unwrap() + c2["balances"]["bonus"].as_i64().unwrap(),
        23_000
    );
    // Report lost and replace: the balances move; the old card is refused.
    let (s, rep) = t
        .post(
            &format!("/cards/{card}/replacement"),
            json!({"idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{rep}");
    let new_card = rep["new_card"]["card"]["id"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| rep["new_card"]["id"].as_str().unwrap().to_string());
    assert_eq!(
        rep["new_card"]["balances"]["principal"].as_i64().unwrap()
            + rep["new_card"]["balances"]["bonus"].as_i64().unwrap(),
        92_000
    );
    let (s, e) = t
        .post(
            &format!("/cards/{card}/spends"),
            json!({"amount": 100, "pin": "246810", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("card_lost"))
    );
    // Close with refund: only the principal comes back.
    let (_, before) = t.get(&format!("/cards/{new_card}")).await;
    let principal = before["balances"]["principal"].as_i64().unwrap();
    let (s, r) = t
        .post(
            &format!("/cards/{new_card}/closure"),
            json!({"refund_tender": "cash", "reason": "客户退卡", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["details"]["refunded_principal"].as_i64(), Some(principal));
    assert_eq!(
        (
            r["after"]["principal"].as_i64(),
            r["after"]["bonus"].as_i64()
        ),
        (Some(0), Some(0))
    );
    let (_, c) = t.get(&format!("/cards/{new_card}")).await;
    assert_eq!(c["status"], "closed");
    // Freeze / unfreeze.
    let (s, c) = t.post(&format!("/cards/{card2}/freeze"), json!({})).await;
    assert_eq!((s, c["status"].as_str()), (StatusCode::OK, Some("frozen")));
    let (s, e) = t
        .post(
            &format!("/cards/{card2}/spends"),
            json!({"amount": 100, "pin": "135790", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("card_frozen"))
    );
    let (s, _) = t.post(&format!("/cards/{card2}/unfreeze"), json!({})).await;
    assert_eq!(s, StatusCode::OK);
    verify_clean(&t).await;
}

async fn prepaid_policy_and_self_top_up(t: TestApp) {
    // Anonymous card: at most 1,000 yuan including the bonus.
    let (s, anon) = t.post("/cards", json!({"pin": "111111"})).await;
    assert_eq!(s, StatusCode::CREATED);
    let anon = anon["id"].as_str().unwrap();
    let (s, e) = t
        .post(
            &format!("/cards/{anon}/top-ups"),
            json!({"amount": 100_000, "tender": "cash", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("anonymous_card_cap"))
    );
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("anonymous")
    );
    let (_, c) = t.get(&format!("/cards/{anon}")).await;
    assert_eq!(c["balances"]["principal"], 0);
    // A card cannot be topped up with stored value (its own or another's).
    let (s, _) = t
        .post(
            &format!("/cards/{anon}/top-ups"),
            json!({"amount": 100, "tender": "stored_value", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // Registered cards: at most 5,000 yuan; a tenant can lift the cap.
    let (_, card) = member_card(&t, "13800000006").await;
    let (s, e) = t
        .post(
            &format!("/cards/{card}/top-ups"),
            json!({"amount": 1_000_000, "tender": "bank_card", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("registered_card_cap"))
    );
    let (_, mut settings) = t.get("/settings").await;
    settings["prepaid"] = json!({"anonymous_cap": null, "registered_cap": null, "real_name_from": null, "retention_years": 5});
    let (s, _) = t
        .req(reqwest::Method::PUT, "/settings", Some(settings))
        .await;
    assert_eq!(s, StatusCode::OK);
    let r = top_up(&t, &card, 1_000_000).await;
    assert_eq!(r["details"]["bonus"], 200_000, "deposit 10,000 get 2,000");
}

async fn concurrent_spends_never_overdraw(t: TestApp) {
    let (_, card) = member_card(&t, "13800000007").await;
    top_up(&t, &card, 30_000).await; // 300 yuan + 30 bonus = 33,000 fen
    let (_, tok) = t
        .post(
            &format!("/cards/{card}/pin-verification"),
            json!({"pin": "246810"}),
        )
        .await;
    let token = tok["pin_token"].as_str().unwrap().to_string();
    // 32 simultaneous spends of 15 yuan: exactly 22 fit in 330 yuan.
    let mut handles = Vec::new();
    for _ in 0..32 {
        let (client, base, auth, card, token) = (
            t.client.clone(),
            t.base.clone(),
            t.token.clone(),
            card.clone(),
            token.clone(),
        );
        handles.push(tokio::spawn(async move {
            client
                .post(format!("{base}/cards/{card}/spends"))
                .bearer_auth(auth)
                .json(&json!({"amount": 1_500, "pin_token": token, "idempotency_key": uuid::Uuid::now_v7().to_string()}))
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
    assert_eq!(ok, 22);
    let (_, c) = t.get(&format!("/cards/{card}")).await;
    assert_eq!(
        c["balances"]["principal"].as_i64().unwrap() + c["balances"]["bonus"].as_i64().unwrap(),
        0
    );
    verify_clean(&t).await;
}

async fn corporate_pool_and_charge_account(t: TestApp) {
    let org = t
        .customer(json!({"name": "浦江资本", "customer_type": "organization"}))
        .await;
    let a = t
        .customer(json!({"name": "员工甲", "phone": "13900000001", "organization_id": org}))
        .await;
    let b = t
        .customer(json!({"name": "员工乙", "phone": "13900000002", "organization_id": org}))
        .await;
    let (_, ca) = t
        .post(
            "/cards",
            json!({"customer_id": a, "pin": "111111", "pool_to_org": true}),
        )
        .await;
    let (_, cb) = t
        .post(
            "/cards",
            json!({"customer_id": b, "pin": "222222", "pool_to_org": true}),
        )
        .await;
    let (ca, cb) = (
        ca["id"].as_str().unwrap().to_string(),
        cb["id"].as_str().unwrap().to_string(),
    );
    // Funding the pool through one employee's card; the other spends from it.
    top_up(&t, &ca, 100_000).await;
    let (_, pool) = t.get(&format!("/customers/{org}/pool")).await;
    assert_eq!(
        (pool["principal"].as_i64(), pool["bonus"].as_i64()),
        (Some(100_000), Some(15_000))
    );
    let (s, r) = t
        .post(
            &format!("/cards/{cb}/spends"),
            json!({"amount": 11_500, "pin": "222222", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let (_, pool) = t.get(&format!("/customers/{org}/pool")).await;
    assert_eq!(
        pool["principal"].as_i64().unwrap() + pool["bonus"].as_i64().unwrap(),
        103_500
    );
    // Charge account with a 5,000 yuan limit.
    let (s, acc) = t
        .req(
            reqwest::Method::PUT,
            &format!("/customers/{org}/charge-account"),
            Some(json!({"credit_limit": 500_000})),
        )
        .await;
    assert_eq!(
        (s, acc["available"].as_i64()),
        (StatusCode::OK, Some(500_000))
    );
    let (s, _) = t
        .post(
            &format!("/customers/{org}/charges"),
            json!({"amount": 300_000, "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = t
        .post(
            &format!("/customers/{org}/charges"),
            json!({"amount": 250_000, "idempotency_key": key()}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("credit_limit_exceeded"))
    );
    let (s, _) = t
        .post(
            &format!("/customers/{org}/repayments"),
            json!({"amount": 100_000, "tender": "bank_card", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, e) = t
        .post(
            &format!("/customers/{org}/repayments"),
            json!({"amount": 300_000, "tender": "cash", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["fields"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("more_than_owed"))
    );
    let (s, e) = t
        .req(
            reqwest::Method::PUT,
            &format!("/customers/{org}/charge-account"),
            Some(json!({"credit_limit": 100_000})),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("limit_below_debt"))
    );
    let month = patron_app::now().format("%Y-%m").to_string();
    let (_, st) = t
        .get(&format!("/customers/{org}/charge-statement?month={month}"))
        .await;
    assert_eq!(
        (
            st["charged"].as_i64(),
            st["repaid"].as_i64(),
            st["closing_owed"].as_i64()
        ),
        (Some(300_000), Some(100_000), Some(200_000))
    );
    assert_eq!(st["opening_owed"], 0);
    // A member-price card bought for a fee: the card and the sale in one transaction.
    let k = key();
    let body = json!({"customer_id": a, "kinds": {"stored_value": false, "points": true, "member_price": true},
        "fee": 9_900, "fee_tender": "wechat", "idempotency_key": k});
    let (s, paid) = t.post("/cards", body.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{paid}");
    assert_eq!(paid["kinds"]["member_price"], true);
    let (_, again) = t.post("/cards", body).await;
    assert_eq!(
        again["id"], paid["id"],
        "a retried sale returns the same card"
    );
    let (s, e) = t
        .post(
            "/cards",
            json!({"customer_id": a, "fee": 9_900, "idempotency_key": key()}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("fee_tender"))
    );
    // Merging an organization that owes: see merging_organizations_moves_their_money.
    // A person is not an organization.
    let (s, _) = t.get(&format!("/customers/{a}/charge-account")).await;
    assert_eq!(s, StatusCode::CONFLICT);
    verify_clean(&t).await;
}

async fn credit_limit(t: &TestApp, org: &str, fen: i64) {
    let (s, v) = t
        .req(
            reqwest::Method::PUT,
            &format!("/customers/{org}/charge-account"),
            Some(json!({"credit_limit": fen})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

async fn charge(t: &TestApp, org: &str, fen: i64) {
    let (s, v) = t
        .post(
            &format!("/customers/{org}/charges"),
            json!({"amount": fen, "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

/// (principal, bonus, points) of an organization's pool.
async fn pool(t: &TestApp, org: &str) -> (i64, i64, i64) {
    let (s, p) = t.get(&format!("/customers/{org}/pool")).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    (
        p["principal"].as_i64().unwrap(),
        p["bonus"].as_i64().unwrap(),
        p["points"].as_i64().unwrap(),
    )
}

/// (credit limit, owed) of an organization's charge account.
async fn charge_account(t: &TestApp, org: &str) -> (i64, i64) {
    let (s, a) = t.get(&format!("/customers/{org}/charge-account")).await;
    assert_eq!(s, StatusCode::OK, "{a}");
    (
        a["credit_limit"].as_i64().unwrap(),
        a["owed"].as_i64().unwrap(),
    )
}

/// The lots of a card's points as (earned_on, expires_on, remaining), sorted.
async fn lots(t: &TestApp, card: &str) -> Vec<(Value, Value, Value)> {
    let (s, v) = t.get(&format!("/cards/{card}/points")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut l: Vec<(Value, Value, Value)> = v["lots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["remaining"].as_i64() != Some(0))
        .map(|l| {
            (
                l["earned_on"].clone(),
                l["expires_on"].clone(),
                l["remaining"].clone(),
            )
        })
        .collect();
    l.sort_by_key(|x| x.0.to_string() + &x.1.to_string());
    l
}

async fn merging_organizations_moves_their_money(t: TestApp) {
    let keep = t
        .customer(json!({"name": "浦江资本", "customer_type": "organization"}))
        .await;
    let dup = t
        .customer(json!({"name": "浦江资本有限公司", "customer_type": "organization"}))
        .await;
    let staff = t
        .customer(json!({"name": "员工丙", "phone": "13900000003", "organization_id": dup}))
        .await;
    let (s, c) = t
        .post(
            "/cards",
            json!({"customer_id": staff, "pin": "333333", "pool_to_org": true}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let card = c["id"].as_str().unwrap().to_string();
    // The duplicate's pool: money through the employee's card, points by hand (a lot).
    top_up(&t, &card, 100_000).await;
    let (s, v) = t
        .post(
            &format!("/cards/{card}/adjustments"),
            json!({"balance": "points", "amount": 300, "reason": "开户赠送", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(pool(&t, &dup).await, (100_000, 15_000, 300));
    let dup_lots = lots(&t, &card).await;
    assert_eq!(dup_lots.len(), 1, "{dup_lots:?}");
    assert!(!dup_lots[0].1.is_null(), "the lot expires: {dup_lots:?}");
    // Both owe on their charge accounts; the survivor's limit has too little room.
    credit_limit(&t, &dup, 500_000).await;
    charge(&t, &dup, 300_000).await;
    credit_limit(&t, &keep, 250_000).await;
    charge(&t, &keep, 100_000).await;
    let merge_path = format!("/customers/{keep}/merge");
    let merge = || t.post(&merge_path, json!({"duplicate_id": dup}));
    let (s, e) = merge().await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("survivor_credit_limit_exceeded")),
        "{e}"
    );
    let message = e["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("2500.00") && message.contains("浦江资本"),
        "names the limit: {message}"
    );
    assert_eq!(
        pool(&t, &dup).await,
        (100_000, 15_000, 300),
        "nothing moved"
    );
    assert_eq!(charge_account(&t, &dup).await, (500_000, 300_000));
    // With room: the pool and the debt move; the survivor keeps its own limit. Two
    // submissions at once move the money once.
    credit_limit(&t, &keep, 600_000).await;
    let ((s1, v1), (s2, v2)) = tokio::join!(merge(), merge());
    assert!(
        (s1 == StatusCode::OK) != (s2 == StatusCode::OK),
        "one merge wins: {s1} {v1} / {s2} {v2}"
    );
    assert_eq!(pool(&t, &keep).await, (100_000, 15_000, 300));
    assert_eq!(charge_account(&t, &keep).await, (600_000, 400_000));
    let (_, d) = t.get(&format!("/customers/{dup}")).await;
    assert_eq!(d["merged_into"], keep.as_str());
    let dup_ids: Vec<uuid::Uuid> = [
        patron_domain::ledger::AccountKind::OrgPrincipal,
        patron_domain::ledger::AccountKind::OrgBonus,
        patron_domain::ledger::AccountKind::OrgPoints,
        patron_domain::ledger::AccountKind::Charge,
    ]
    .into_iter()
    .map(|k| {
        patron_domain::ledger::AccountKey::customer(k, dup.parse().unwrap()).account_id(t.tenant_id)
    })
    .collect();
    let left = t.app.storage.accounts(t.tenant_id, &dup_ids).await.unwrap();
    assert!(left.iter().all(|a| a.balance == 0), "{left:?}");
    // The employee moved to the survivor, and the card spends from its pool; the points
    // came over in their lot, with its dates.
    let (_, e) = t.get(&format!("/customers/{staff}")).await;
    assert_eq!(e["organization_id"], keep.as_str());
    assert_eq!(lots(&t, &card).await, dup_lots);
    let (s, v) = t
        .post(
            &format!("/cards/{card}/spends"),
            json!({"amount": 1_000, "pin": "333333", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let kept = pool(&t, &keep).await;
    assert_eq!(kept.0 + kept.1, 114_000);
    // The move is one ledger transaction on the survivor's timeline, and not reversible.
    let (_, tl) = t.get(&format!("/customers/{keep}/timeline?limit=50")).await;
    let moved = tl
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "customer_merge")
        .unwrap_or_else(|| panic!("{tl}"));
    let txn = moved["data"]["txn_id"].as_str().unwrap();
    let (s, e) = t
        .post(
            &format!("/transactions/{txn}/reversal"),
            json!({"reason": "撤销", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_reversible")),
        "{e}"
    );
    // A survivor without a charge account takes the duplicate's, limit included.
    let third = t
        .customer(json!({"name": "浦江控股", "customer_type": "organization"}))
        .await;
    let (s, v) = t
        .post(
            &format!("/customers/{third}/merge"),
            json!({"duplicate_id": keep}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(charge_account(&t, &third).await, (600_000, 400_000));
    assert_eq!(pool(&t, &third).await, kept);
    // A duplicate that holds only a limit hands it over too.
    let fourth = t
        .customer(json!({"name": "浦江控股集团", "customer_type": "organization"}))
        .await;
    let fifth = t
        .customer(json!({"name": "浦江集团", "customer_type": "organization"}))
        .await;
    credit_limit(&t, &fifth, 70_000).await;
    let (s, v) = t
        .post(
            &format!("/customers/{fourth}/merge"),
            json!({"duplicate_id": fifth}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(charge_account(&t, &fourth).await, (70_000, 0));
    // Money of an organization does not go to a person.
    let person = t
        .customer(json!({"name": "浦江", "phone": "13900000004"}))
        .await;
    let (s, e) = t
        .post(
            &format!("/customers/{person}/merge"),
            json!({"duplicate_id": third}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("survivor_not_an_organization")),
        "{e}"
    );
    verify_clean(&t).await;
}

async fn concurrent_adjustments_keep_the_daily_limit(t: TestApp) {
    // A manager: ¥500 at a time, ¥2,000 a day without approval.
    let (_, stores) = t.get("/stores").await;
    let main = stores
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["code"] == "main")
        .unwrap()["id"]
        .clone();
    let (s, v) = t
        .post(
            "/staff",
            json!({"username": "mgr", "display_name": "店长", "password": "staff password 1",
                   "role": "manager", "store_id": main}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = t
        .post(
            "/auth/login",
            json!({"tenant": "t1", "username": "mgr", "password": "staff password 1", "store": "main"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mgr = v["token"].as_str().unwrap().to_string();
    let (_, card) = member_card(&t, "13800000099").await;
    // Ten at once, each within the per-adjustment limit: only four fit in the day.
    let mut handles = Vec::new();
    for _ in 0..10 {
        let (client, base, auth, card) =
            (t.client.clone(), t.base.clone(), mgr.clone(), card.clone());
        handles.push(tokio::spawn(async move {
            crate::support::decode(
                client
                    .post(format!("{base}/cards/{card}/adjustments"))
                    .bearer_auth(auth)
                    .json(&json!({"balance": "bonus", "amount": 50_000, "reason": "补偿", "idempotency_key": key()}))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }));
    }
    let mut ok = 0;
    for h in handles {
        let (s, v) = h.await.unwrap();
        if s == StatusCode::OK {
            ok += 1;
        } else {
            assert_eq!(
                (s, v["error"]["code"].as_str()),
                (StatusCode::FORBIDDEN, Some("approval_required")),
                "{v}"
            );
        }
    }
    assert_eq!(ok, 4);
    let (_, c) = t.get(&format!("/cards/{card}")).await;
    assert_eq!(c["balances"]["bonus"], 200_000);
    verify_clean(&t).await;
}
