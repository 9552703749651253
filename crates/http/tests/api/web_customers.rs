//! The customers pages of the web back office over both backends: search, the 360 page's
//! balances, the create form's errors and conflicts, the timeline's pages, merging.
//! (The browser tests in e2e/ drive the same pages through chromium on SQLite.)

use crate::support::TestApp;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use serde_json::json;

crate::both_backends!(
    customer_pages_search_show_and_create,
    timeline_pages_and_merge
);

struct Web<'a> {
    t: &'a TestApp,
    client: reqwest::Client,
    root: String,
}

impl<'a> Web<'a> {
    fn new(t: &'a TestApp) -> Web<'a> {
        Web {
            t,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            root: t.base.trim_end_matches("/api/v1").to_string(),
        }
    }

    async fn get(&self, path: &str, htmx: bool) -> (StatusCode, String, Option<String>) {
        let mut rb = self
            .client
            .get(format!("{}{path}", self.root))
            .bearer_auth(&self.t.token);
        if htmx {
            rb = rb.header("hx-request", "true");
        }
        read(rb.send().await.unwrap()).await
    }

    async fn post(
        &self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, String, Option<String>) {
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let res = self
            .client
            .post(format!("{}{path}", self.root))
            .bearer_auth(&self.t.token)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        read(res).await
    }
}

async fn read(res: reqwest::Response) -> (StatusCode, String, Option<String>) {
    let status = res.status();
    let location = res
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, res.text().await.unwrap(), location)
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn customer_pages_search_show_and_create(t: TestApp) {
    let web = Web::new(&t);
    let id = t
        .customer(json!({"name": "张伟", "phone": "13800138000", "allergies": ["花生"]}))
        .await;
    let (s, card) = t.post("/cards", json!({"customer_id": id})).await;
    assert_eq!(s, StatusCode::CREATED, "{card}");
    let card_id = card["id"].as_str().unwrap();
    let (s, v) = t
        .post(
            &format!("/cards/{card_id}/top-ups"),
            json!({"amount": 100000, "tender": "cash", "idempotency_key": "web-cust-1"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Found by phone, by pinyin initials and by part of the name.
    for q in ["13800138000", "zw", "%E4%BC%9F"] {
        let (s, html, _) = web.get(&format!("/customers?q={q}"), false).await;
        assert_eq!(s, StatusCode::OK);
        assert!(html.contains(&format!("href=\"/customers/{id}\"")), "{q}");
    }
    // Search as you type answers with the results alone.
    let rb = web
        .client
        .get(format!("{}/customers?q=zw", web.root))
        .bearer_auth(&t.token)
        .header("hx-request", "true")
        .header("hx-target", "cust-results");
    let (_, html, _) = read(rb.send().await.unwrap()).await;
    assert!(
        html.trim_start()
            .starts_with("<section id=\"cust-results\"")
    );

    // The 360 page: balances (¥1,000 + the ¥150 bonus tier), the card, allergies.
    let (s, html, _) = web.get(&format!("/customers/{id}"), false).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("id=\"cust-stored\">¥1,150.00<"), "{html}");
    assert!(html.contains(&format!("href=\"/cards/{card_id}\"")));
    assert!(html.contains("id=\"cust-allergies\""));
    // Not a customer id: a 404 page.
    let (s, _, _) = web.get("/customers/not-an-id", false).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Create: a bad phone is named beside the field; nothing is created.
    let (s, html, _) = web
        .post(
            "/customers/new",
            &[("name", "李娜"), ("phone", "12345"), ("form_key", "k1")],
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("id=\"e-phone\""));
    let (_, list) = t.get("/customers?name=李娜").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
    // Fixed: created, and the browser is sent to the new page; the same form again
    // lands there too instead of creating a second one.
    let form = [
        ("name", "李娜"),
        ("phone", "13900139000"),
        ("tags", "VIP、老顾客"),
        ("form_key", "k2"),
    ];
    let (s, _, to) = web.post("/customers/new", &form).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let to = to.unwrap();
    let new_id = to.trim_start_matches("/customers/").to_string();
    let (s, v) = t.get(&format!("/customers/{new_id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["tags"], json!(["VIP", "老顾客"]));
    let (s, _, again) = web.post("/customers/new", &form).await;
    assert_eq!(
        (s, again.as_deref()),
        (StatusCode::SEE_OTHER, Some(to.as_str()))
    );
    let (_, list) = t.get("/customers?name=李娜").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    // A phone in use: refused beside the field, with a link to its holder.
    let (s, html, _) = web
        .post(
            "/customers/new",
            &[
                ("name", "王芳"),
                ("phone", "13800138000"),
                ("form_key", "k3"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains(&format!(
        "href=\"/customers/{id}\" id=\"cust-conflict-link\""
    )));

    // Edit: the form's fields replace, an emptied one clears.
    let (s, _, to) = web
        .post(
            &format!("/customers/{new_id}/edit"),
            &[
                ("name", "李娜"),
                ("phone", "13900139000"),
                ("seat_preference", "靠窗"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(to.unwrap(), format!("/customers/{new_id}?saved=1"));
    let (_, v) = t.get(&format!("/customers/{new_id}")).await;
    assert_eq!(v["seat_preference"], "靠窗");
    assert_eq!(v["tags"], json!([]));
}

async fn timeline_pages_and_merge(t: TestApp) {
    let web = Web::new(&t);
    let id = t
        .customer(json!({"name": "赵敏", "birthday": "1990-01-02", "phone": "13700137000"}))
        .await;
    // 24 profile changes and the record's creation: two pages of 20.
    for i in 0..24 {
        let (s, v) = t
            .patch(
                &format!("/customers/{id}"),
                json!({"notes": format!("第 {i} 次")}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (_, html, _) = web.get(&format!("/customers/{id}"), false).await;
    assert_eq!(html.matches("<tr class=\"ev ").count(), 20);
    let start = html.find("hx-get=\"/customers/").unwrap() + "hx-get=\"".len();
    let next = html[start..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let (s, rows, _) = web.get(&next, true).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(rows.matches("<tr class=\"ev ").count(), 5);
    assert!(rows.contains("ev-customer_created"));
    assert!(!rows.contains("id=\"tl-more\""));

    // Merge a duplicate (same name and birthday) holding a card.
    let dup = t
        .customer(json!({"name": "赵敏", "birthday": "1990-01-02", "email": "zm@example.com"}))
        .await;
    let (s, card) = t.post("/cards", json!({"customer_id": dup})).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, html, _) = web.get("/customers/duplicates", false).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains(&format!("/customers/{id}/merge?duplicate={dup}")));
    let (s, html, _) = web
        .get(&format!("/customers/{id}/merge?duplicate={dup}"), false)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains(card["number"].as_str().unwrap()));
    let (s, _, to) = web
        .post(
            &format!("/customers/{id}/merge"),
            &[("duplicate_id", &dup), ("form_key", "m1")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(to.unwrap().contains("moved_cards=1"));
    let (_, v) = t.get(&format!("/customers/{id}")).await;
    assert_eq!(v["email"], "zm@example.com");
    let (_, v) = t.get(&format!("/customers/{dup}")).await;
    assert_eq!(v["merged_into"], json!(id));
    // The old record's page sends the browser to the survivor.
    let (s, _, to) = web.get(&format!("/customers/{dup}"), false).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(to.unwrap(), format!("/customers/{id}?merged_from={dup}"));
}
