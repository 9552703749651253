//! The till's web pages over HTTP, on both backends: a bill taken once however often it
//! is confirmed, today's bills newest first and paged, a reversal from the receipt.

use crate::support::TestApp;
use patron_domain::page::PageRequest;
use reqwest::StatusCode;
use serde_json::json;

crate::both_backends!(till_takes_a_bill_once_and_lists_and_reverses_it);

fn key() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// `application/x-www-form-urlencoded`, as the page's htmx sends it.
fn form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A page request with the session (as htmx makes it when `htmx` is set).
async fn web(
    t: &TestApp,
    path: &str,
    body: Option<String>,
    htmx: bool,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let root = t.base.trim_end_matches("/api/v1");
    let mut rb = match &body {
        Some(_) => t.client.post(format!("{root}{path}")),
        None => t.client.get(format!("{root}{path}")),
    }
    .bearer_auth(&t.token)
    .header("accept-language", "en");
    if htmx {
        rb = rb.header("hx-request", "true");
    }
    if let Some(b) = body {
        rb = rb
            .header("content-type", "application/x-www-form-urlencoded")
            .body(b);
    }
    let res = rb.send().await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    (status, headers, res.text().await.unwrap())
}

async fn till_takes_a_bill_once_and_lists_and_reverses_it(t: TestApp) {
    // A dish, a member with ¥500 on a card.
    let (s, cat) = t
        .post(
            "/menu/categories",
            json!({"name": "热菜", "name_en": "Hot"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{cat}");
    let (s, dish) = t
        .post(
            "/menu/items",
            json!({"category_id": cat["id"], "name": "红烧肉", "name_en": "Braised Pork", "price": 6_800}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{dish}");
    let dish = dish["id"].as_str().unwrap().to_string();
    let customer = t
        .customer(json!({"name": "王收银", "phone": "13600000009"}))
        .await;
    let (s, card) = t
        .post(
            "/cards",
            json!({"customer_id": customer, "pin": "246810", "kinds": {"stored_value": true, "points": true, "member_price": false}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{card}");
    let card = card["id"].as_str().unwrap().to_string();
    let (s, r) = t
        .post(
            &format!("/cards/{card}/top-ups"),
            json!({"amount": 50_000, "tender": "cash", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    // ¥500 earns the ¥30 bonus of the default tiers.
    let money = |v: &serde_json::Value| {
        v["balances"]["principal"].as_i64().unwrap() + v["balances"]["bonus"].as_i64().unwrap()
    };
    let start = money(&t.get(&format!("/cards/{card}")).await.1);
    assert_eq!(start, 53_000);

    // The till page lists the dish; finding the member by phone shows the card's balance.
    let (s, _, page) = web(&t, "/till", None, false).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains("Braised Pork") && page.contains(&dish),
        "{page}"
    );
    let (s, _, bill) = web(
        &t,
        "/till/bill",
        Some(form(&[("key", "k"), ("op", "find"), ("q", "13600000009")])),
        true,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        bill.contains("王收银") && bill.contains("¥500.00"),
        "{bill}"
    );
    assert!(
        bill.contains(&format!("value=\"{card}\"")),
        "the card is chosen"
    );

    // Confirm twice with the same bill key: one checkout, one receipt.
    let lines = format!("{dish}*2");
    let bill_key = key();
    let confirm = form(&[
        ("key", &bill_key),
        ("customer_id", &customer),
        ("card_id", &card),
        ("lines", &lines),
        ("method", "stored_value"),
        ("pin", "246810"),
    ]);
    let mut receipts = Vec::new();
    for _ in 0..2 {
        let (s, h, body) = web(&t, "/till/checkout", Some(confirm.clone()), true).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
        receipts.push(h["hx-redirect"].to_str().unwrap().to_string());
    }
    assert_eq!(receipts[0], receipts[1]);
    let id = receipts[0]
        .strip_prefix("/till/receipts/")
        .unwrap()
        .to_string();
    assert_eq!(
        money(&t.get(&format!("/cards/{card}")).await.1),
        start - 13_600,
        "taken once"
    );
    let (s, _, receipt) = web(&t, &receipts[0], None, false).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        receipt.contains("¥136.00") && receipt.contains("¥530.00") && receipt.contains("¥394.00")
    );

    // Two more bills: today's list is newest first and paged.
    for _ in 0..2 {
        let once = form(&[
            ("key", &key()),
            ("lines", &format!("{dish}*1")),
            ("method", "cash"),
        ]);
        let (s, _, body) = web(&t, "/till/checkout", Some(once), true).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    }
    let owner = t
        .app
        .authenticate(&t.token)
        .await
        .expect("the owner's session");
    let p1 = t
        .app
        .store_checkouts(&owner, None, PageRequest::new(1, 2))
        .await
        .unwrap();
    let p2 = t
        .app
        .store_checkouts(&owner, None, PageRequest::new(2, 2))
        .await
        .unwrap();
    assert_eq!((p1.items.len(), p1.has_more), (2, true));
    assert_eq!((p2.items.len(), p2.has_more), (1, false));
    assert_eq!(p2.items[0].id.to_string(), id, "the first bill comes last");
    assert!(p1.items[0].created_at >= p1.items[1].created_at);
    assert_eq!(p1.items[0].tenders[0].method, "cash");
    let yesterday = chrono::Utc::now().date_naive() - chrono::Duration::days(2);
    let none = t
        .app
        .store_checkouts(&owner, Some(yesterday), PageRequest::default())
        .await
        .unwrap();
    assert!(none.items.is_empty(), "another day's list is its own");
    let (s, _, list) = web(&t, "/till/bills", None, false).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list.matches("/till/receipts/").count(), 3, "{list}");

    // A bad id is a 404 page, not a 400.
    let (s, _, _) = web(&t, "/till/receipts/not-a-bill", None, false).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Reverse from the receipt (the owner approves it herself): the card is whole again.
    let (s, _, body) = web(
        &t,
        &format!("/till/receipts/{id}/reversal"),
        Some(form(&[("key", &key()), ("reason", "")])),
        true,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "a reason is required");
    assert!(body.contains("e-reason"), "{body}");
    let (s, h, body) = web(
        &t,
        &format!("/till/receipts/{id}/reversal"),
        Some(form(&[("key", &key()), ("reason", "上错菜")])),
        true,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    let reversal = h["hx-redirect"].to_str().unwrap().to_string();
    assert_ne!(reversal, receipts[0]);
    assert_eq!(money(&t.get(&format!("/cards/{card}")).await.1), start);
    let summary = t
        .app
        .checkout_summary(&owner, id.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(summary.status, "reversed");
    assert_eq!(
        format!("/till/receipts/{}", summary.reversal_id.unwrap()),
        reversal
    );
    let (_, _, list) = web(&t, "/till/bills", None, false).await;
    assert!(list.contains("data-status=\"reversed\""), "{list}");
}
