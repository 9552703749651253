//! End-to-end tests of the JSON API: a real server on an ephemeral port, on SQLite and
//! on PostgreSQL.

mod analytics;
mod cards;
mod checkout;
mod coupons;
mod hostile;
mod loyalty;
mod menu;
mod permissions;
mod reliability;
mod settlement;
mod support;
mod till_web;
mod web_customers;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::TestApp;

const ID_NUMBER: &str = "11010519491231002X";

both_backends!(
    health_and_docs,
    authentication,
    create_get_and_conflicts,
    validation_errors_change_nothing,
    update_with_merge_patch,
    till_lookup,
    id_number_lookup_and_masking,
    list_filters_and_pages,
    duplicates_and_merge,
    tenant_isolation,
    hostile_requests,
);

async fn health_and_docs(t: TestApp) {
    let res = t
        .client
        .get(format!("{}/health", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["status"], "ok");
    let doc: Value = t
        .client
        .get(format!("{}/openapi.json", t.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for p in [
        "/customers",
        "/customers/{id}",
        "/customers/lookup",
        "/auth/login",
        "/customers/{id}/timeline",
    ] {
        assert!(
            doc["paths"].get(p).is_some(),
            "{p} missing from the OpenAPI document"
        );
    }
    let page = t
        .client
        .get(format!("{}/docs", t.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("swagger-ui-bundle.js"));
    let js = t
        .client
        .get(format!("{}/docs/swagger-ui-bundle.js", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    assert!(js.bytes().await.unwrap().len() > 100_000);
}

async fn authentication(t: TestApp) {
    // No token, a garbage token: 401 with a code.
    let res = t
        .client
        .get(format!("{}/customers", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let (s, v) = t.req_as("garbage", Method::GET, "/me", None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
    );
    // Wrong password and unknown tenant answer alike.
    for (tenant, pw) in [("t1", "wrong password"), ("nope", "correct horse battery")] {
        let res = t
            .client
            .post(format!("{}/auth/login", t.base))
            .json(&json!({"tenant": tenant, "username": "owner", "password": pw}))
            .send()
            .await
            .unwrap();
        let (s, v) = support::decode(res).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("bad_credentials"))
        );
    }
    // The login sets an HttpOnly cookie that also authenticates.
    let res = t
        .client
        .post(format!("{}/auth/login", t.base))
        .json(&json!({"tenant": "t1", "username": "owner", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let pair = cookie.split(';').next().unwrap().to_string();
    let me = t
        .client
        .get(format!("{}/me", t.base))
        .header("cookie", pair)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let (s, v) = t.get("/me").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["role"], "owner");
    // Logout ends the session.
    let (s, _) = t.req(Method::POST, "/auth/logout", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = t.get("/me").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

fn full_profile() -> Value {
    json!({
        "name": "张伟", "phone": "+86 138-0013-8000", "gender": "male", "birthday": "1988-05-17",
        "nationality": "中国", "industry": "金融", "title": "经理", "company": "浦江资本", "work_phone": "021-6288 1234",
        "credit_rating": "a", "id_number": ID_NUMBER, "email": "zw@example.com", "address": "上海市静安区南京西路 1 号",
        "acquisition_source": "referral", "marketing_consent": true, "marketing_consent_source": "in_store",
        "favourite_dishes": ["松鼠桂鱼", "腌笃鲜"], "tastes": ["微辣", "不要香菜"], "seat_preference": "靠窗",
        "allergies": ["花生"], "tags": ["VIP", "商务宴请"], "notes": "喜欢安静", "lifecycle_stage": "loyal"
    })
}

async fn create_get_and_conflicts(t: TestApp) {
    let id = t.customer(full_profile()).await;
    let (s, c) = t.get(&format!("/customers/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(c["name"], "张伟");
    assert_eq!(c["phone"], "13800138000");
    assert_eq!(c["age_band"], "35_44");
    assert_eq!(c["tastes"], json!(["微辣", "不要香菜"]));
    assert_eq!(c["lifecycle_stage"], "loyal");
    assert!(c["marketing_consent_at"].is_string());
    // Same phone in another form: 409 naming the holder.
    let (s, v) = t
        .post(
            "/customers",
            json!({"name": "李四", "phone": "13800138000"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(v["error"]["code"], "phone_in_use");
    assert_eq!(v["error"]["field"], "phone");
    assert_eq!(v["error"]["existing_id"], id.as_str());
    // Same ID number: 409.
    let (s, v) = t
        .post(
            "/customers",
            json!({"name": "王五", "id_number": ID_NUMBER.to_lowercase()}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("id_number_in_use"))
    );
    // Unknown id: 404.
    let (s, v) = t
        .get("/customers/0195f0a0-0000-7000-8000-000000000000")
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    // Timeline starts with the creation.
    let (_, tl) = t.get(&format!("/customers/{id}/timeline")).await;
    assert_eq!(tl[0]["kind"], "customer_created");
}

async fn validation_errors_change_nothing(t: TestApp) {
    let (s, v) = t
        .post("/customers", json!({"phone": "12345", "gender": "x", "birthday": "2999-01-01", "lifecycle_stage": "lost"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["code"], "validation_failed");
    let fields: Vec<&str> = v["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["name", "phone", "gender", "birthday", "churn_reason"]
    );
    assert!(
        v["error"]["fields"][1]["message"]
            .as_str()
            .unwrap()
            .contains("12345")
    );
    // Unknown field: 422 naming it.
    let (s, v) = t
        .post(
            "/customers",
            json!({"name": "甲", "favorite_colour": "red"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["field"], "favorite_colour");
    let (_, list) = t.get("/customers").await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        0,
        "nothing was created"
    );
}

async fn update_with_merge_patch(t: TestApp) {
    let id = t.customer(full_profile()).await;
    let (s, c) = t
        .patch(
            &format!("/customers/{id}"),
            json!({"email": null, "tags": ["VIP"], "phone": "13900139000"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["email"], Value::Null);
    assert_eq!(c["tags"], json!(["VIP"]));
    assert_eq!(c["phone"], "13900139000");
    assert_eq!(c["name"], "张伟", "untouched fields stay");
    assert_eq!(
        c["id_document"]["masked"], "110***********002X",
        "the ID survives an update that does not send it"
    );
    // A bad patch changes nothing.
    let (s, v) = t
        .patch(
            &format!("/customers/{id}"),
            json!({"birthday": "not a date", "name": "改名"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["field"], "birthday");
    let (_, c) = t.get(&format!("/customers/{id}")).await;
    assert_eq!(c["name"], "张伟");
    // Lost needs a reason; with one it is accepted.
    let (s, _) = t
        .patch(
            &format!("/customers/{id}"),
            json!({"lifecycle_stage": "lost"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, c) = t
        .patch(
            &format!("/customers/{id}"),
            json!({"lifecycle_stage": "lost", "churn_reason": "moved"}),
        )
        .await;
    assert_eq!(
        (s, c["churn_reason"].as_str()),
        (StatusCode::OK, Some("moved"))
    );
    // Clearing the ID number.
    let (_, c) = t
        .patch(&format!("/customers/{id}"), json!({"id_number": null}))
        .await;
    assert_eq!(c["id_document"], Value::Null);
    // The timeline records each change, newest first, without values.
    let (_, tl) = t.get(&format!("/customers/{id}/timeline")).await;
    let kinds: Vec<&str> = tl
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "profile_updated",
            "profile_updated",
            "profile_updated",
            "customer_created"
        ]
    );
    assert!(
        !tl.to_string().contains("13800138000"),
        "no phone numbers copied into the timeline"
    );
    // Phone freed by the change can be used by someone else.
    t.customer(json!({"name": "新客", "phone": "13800138000"}))
        .await;
}

async fn till_lookup(t: TestApp) {
    let id = t
        .customer(json!({"name": "张伟", "phone": "13800138000"}))
        .await;
    t.customer(json!({"name": "张小燕", "phone": "13800138001"}))
        .await;
    t.customer(json!({"name": "Anna Li", "phone": "+85291234567"}))
        .await;
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, v) = t.get("/customers/lookup?q=138%200013%208000").await;
    assert_eq!(names(&v), ["张伟"]);
    let (_, v) = t.get("/customers/lookup?q=%E5%BC%A0").await; // 张
    assert_eq!(names(&v), ["张伟", "张小燕"]);
    let (_, v) = t.get("/customers/lookup?q=zhangw").await;
    assert_eq!(names(&v), ["张伟"]);
    let (_, v) = t.get("/customers/lookup?q=zxy").await;
    assert_eq!(names(&v), ["张小燕"]);
    let (_, v) = t.get("/customers/lookup?q=anna").await;
    assert_eq!(names(&v), ["Anna Li"]);
    // By card number, once the customer holds a card.
    let card = patron_domain::card_number::with_check_digit("886000000001");
    t.app
        .storage
        .insert_cards(&[patron_domain::card::Card::new(
            t.tenant_id,
            patron_domain::ids::CardId(uuid::Uuid::now_v7()),
            card.clone(),
            Some(id.parse().unwrap()),
            patron_domain::card::CardMedium::Physical,
            patron_domain::card::CardStatus::Active,
            patron_app::now(),
        )])
        .await
        .unwrap();
    let (_, v) = t.get(&format!("/customers/lookup?q={card}")).await;
    assert_eq!(names(&v), ["张伟"]);
    let (_, cards) = t.get(&format!("/customers/{id}/cards")).await;
    assert_eq!(cards[0]["number"], card.as_str());
    let (_, v) = t.get("/customers/lookup?q=99999999999").await;
    assert_eq!(v, json!([]));
}

async fn id_number_lookup_and_masking(t: TestApp) {
    let id = t
        .customer(json!({"name": "张伟", "id_number": ID_NUMBER}))
        .await;
    let (s, v) = t
        .post(
            "/customers/lookup-by-id-number",
            json!({"id_number": "11010519491231002x"}),
        )
        .await;
    assert_eq!((s, v["id"].as_str()), (StatusCode::OK, Some(id.as_str())));
    assert_eq!(v["id_document"]["masked"], "110***********002X");
    assert!(
        !v.to_string().contains(ID_NUMBER),
        "the clear number never comes back"
    );
    let (s, _) = t
        .post(
            "/customers/lookup-by-id-number",
            json!({"id_number": "E12345678", "id_document_kind": "passport"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = t
        .post(
            "/customers/lookup-by-id-number",
            json!({"id_number": "110105194912310021"}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("id_number"))
    );
    // Not in the database in clear either.
    let stored = t
        .app
        .storage
        .customer(t.tenant_id, id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.profile.id_document.unwrap().hash.len(), 64);
}

async fn list_filters_and_pages(t: TestApp) {
    for i in 0..7 {
        let tags = if i % 2 == 0 {
            json!(["VIP"])
        } else {
            json!([])
        };
        t.customer(json!({"name": format!("客户{i}"), "phone": format!("1390000000{i}"), "tags": tags, "birthday": format!("1990-0{}-01", i + 1)}))
            .await;
    }
    let (_, p1) = t.get("/customers?per_page=3").await;
    assert_eq!(p1["items"].as_array().unwrap().len(), 3);
    assert_eq!(p1["has_more"], true);
    assert_eq!(p1["items"][0]["name"], "客户6", "newest first");
    let (_, p3) = t.get("/customers?per_page=3&page=3").await;
    assert_eq!(p3["items"].as_array().unwrap().len(), 1);
    assert_eq!(p3["has_more"], false);
    let (_, v) = t.get("/customers?tag=VIP").await;
    assert_eq!(v["items"].as_array().unwrap().len(), 4);
    let (_, v) = t.get("/customers?birthday_month=3").await;
    assert_eq!(v["items"][0]["name"], "客户2");
    let (_, v) = t.get("/customers?phone=1390000000").await;
    assert_eq!(v["items"].as_array().unwrap().len(), 7);
    let (_, v) = t.get("/customers?name=%E6%88%B73").await; // 户3
    assert_eq!(v["items"][0]["name"], "客户3");
    let (s, v) = t.get("/customers?page=abc").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_query"))
    );
}

async fn duplicates_and_merge(t: TestApp) {
    let keep = t
        .customer(json!({"name": "陈静", "phone": "13700000001", "birthday": "1985-03-03", "tags": ["VIP"]}))
        .await;
    let dup = t
        .customer(json!({"name": "陈静", "birthday": "1985-03-03", "email": "cj@example.com", "tags": ["家庭聚餐"], "id_number": ID_NUMBER}))
        .await;
    let friend = t
        .customer(json!({"name": "朋友", "referred_by": dup}))
        .await;
    let (_, groups) = t.get("/customers/duplicates").await;
    let g = &groups[0];
    assert_eq!(g["reason"], "same_name_birthday");
    assert_eq!(g["customer_ids"].as_array().unwrap().len(), 2);
    let (s, v) = t
        .post(
            &format!("/customers/{keep}/merge"),
            json!({"duplicate_id": dup}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["survivor"]["email"], "cj@example.com");
    assert_eq!(v["survivor"]["tags"], json!(["VIP", "家庭聚餐"]));
    assert_eq!(v["survivor"]["id_document"]["masked"], "110***********002X");
    assert_eq!(v["moved"]["referrals"], 1);
    let (_, d) = t.get(&format!("/customers/{dup}")).await;
    assert_eq!(d["merged_into"], keep.as_str());
    let (_, f) = t.get(&format!("/customers/{friend}")).await;
    assert_eq!(f["referred_by"], keep.as_str());
    // The duplicate disappears from lists and cannot be merged or edited again.
    let (_, groups) = t.get("/customers/duplicates").await;
    assert_eq!(groups, json!([]));
    let (s, _) = t
        .post(
            &format!("/customers/{keep}/merge"),
            json!({"duplicate_id": dup}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = t
        .patch(&format!("/customers/{dup}"), json!({"name": "x"}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = t
        .post(
            &format!("/customers/{keep}/merge"),
            json!({"duplicate_id": keep}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, tl) = t.get(&format!("/customers/{keep}/timeline")).await;
    assert_eq!(tl[0]["kind"], "merged");
}

async fn tenant_isolation(t: TestApp) {
    let a_id = t.customer(full_profile()).await;
    let b = t.second_tenant().await;
    let paths = [
        format!("/customers/{a_id}"),
        format!("/customers/{a_id}/timeline"),
        format!("/customers/{a_id}/cards"),
    ];
    for p in &paths {
        let (s, _) = t.req_as(&b, Method::GET, p, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{p}");
    }
    let (s, _) = t
        .req_as(
            &b,
            Method::PATCH,
            &format!("/customers/{a_id}"),
            Some(json!({"name": "hijack"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let b_id = {
        let (s, v) = t
            .req_as(
                &b,
                Method::POST,
                "/customers",
                Some(json!({"name": "B 客户", "phone": "13800138000"})),
            )
            .await;
        assert_eq!(
            s,
            StatusCode::CREATED,
            "the same phone is free in another tenant"
        );
        v["id"].as_str().unwrap().to_string()
    };
    let (s, _) = t
        .req_as(
            &b,
            Method::POST,
            &format!("/customers/{b_id}/merge"),
            Some(json!({"duplicate_id": a_id})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, v) = t
        .req_as(&b, Method::GET, "/customers/lookup?q=13800138000", None)
        .await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["id"], b_id.as_str());
    let (s, _) = t
        .req_as(
            &b,
            Method::POST,
            "/customers/lookup-by-id-number",
            Some(json!({"id_number": ID_NUMBER})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, v) = t.req_as(&b, Method::GET, "/customers", None).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let (_, a) = t.get(&format!("/customers/{a_id}")).await;
    assert_eq!(a["name"], "张伟", "tenant A's record is untouched");
}

async fn hostile_requests(t: TestApp) {
    let url = format!("{}/customers", t.base);
    let send = |body: Vec<u8>, ct: &'static str| {
        t.client
            .post(&url)
            .bearer_auth(&t.token)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let (s, v) = support::decode(
        send(b"{not json".to_vec(), "application/json")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_json"))
    );
    let (s, v) = support::decode(send(b"name=x".to_vec(), "text/plain").await.unwrap()).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_media_type")
        )
    );
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    // Its own client: the server answers 413 without reading the body and closes the
    // connection, which must not be reused by the next request.
    let big_req = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&t.token)
        .header("content-type", "application/json")
        .body(big.into_bytes())
        .send();
    let (s, v) = support::decode(big_req.await.unwrap()).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large"))
    );
    let (s, _) = support::decode(
        send(vec![b'{', b'"', 0xff, 0xfe, b'"', b'}'], "application/json")
            .await
            .unwrap(),
    )
    .await;
    assert!(s.is_client_error());
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let (s, _) = support::decode(send(deep.into_bytes(), "application/json").await.unwrap()).await;
    assert!(s.is_client_error());
    let (s, _) = t.post("/customers", json!({"name": 12})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = t.post("/customers", json!({"name": "a\u{0}b"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // Injection strings are data.
    let evil = "'); DROP TABLE customers; -- <script>alert(1)</script>";
    let id = t
        .customer(json!({"name": "x", "notes": evil, "tags": ["%", "_"]}))
        .await;
    let (_, c) = t.get(&format!("/customers/{id}")).await;
    assert_eq!(c["notes"], evil);
    let (_, v) = t.get("/customers?tag=%25").await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let (_, v) = t.get("/customers?name=%25").await;
    assert_eq!(
        v["items"].as_array().unwrap().len(),
        0,
        "% is matched literally"
    );
    let (s, v) = t.get("/customers/not-a-uuid").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (s, v) = t.get("/nowhere").await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}
