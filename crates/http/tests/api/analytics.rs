//! Customer value analytics through the API, on both backends, over small data sets whose
//! quadrants, scores, risks, cohorts and pairs are worked out by hand below.

use crate::support::TestApp;
use chrono::{Duration, NaiveDate, Utc};
use patron_app::Actor;
use patron_app::loyalty::RecordPurchase;
use patron_domain::ids::{StaffId, StoreId};
use patron_domain::org::{Role, Staff, Store};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

crate::both_backends!(
    value_of_a_half_year_by_hand,
    dishes_levels_liability_and_cards,
    customer_value_and_who_may_see_it,
);

fn key() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A customer with a points card: (customer id, card id).
async fn member(t: &TestApp, name: &str, phone: &str) -> (String, String) {
    let customer = t.customer(json!({"name": name, "phone": phone})).await;
    let (s, c) = t
        .post("/cards", json!({"customer_id": customer, "pin": "246810"}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    (customer, c["id"].as_str().unwrap().to_string())
}

/// A purchase paid by WeChat at 12:00 local time (UTC+8) on a past day, through the use
/// case with the clock set back. Returns the ledger transaction's id.
async fn purchase_at(
    t: &TestApp,
    actor: &Actor,
    card: &str,
    at: chrono::DateTime<Utc>,
    fen: i64,
) -> String {
    let req: RecordPurchase = serde_json::from_value(json!({
        "card_id": card, "amount": fen, "payments": [{"method": "wechat", "amount": fen}], "idempotency_key": key()
    }))
    .unwrap();
    let (receipt, _) = patron_app::at(at, t.app.record_purchase(actor, &req))
        .await
        .unwrap();
    receipt.txn_id.to_string()
}

fn noon(date: &str) -> chrono::DateTime<Utc> {
    let d: NaiveDate = date.parse().unwrap();
    d.and_hms_opt(4, 0, 0).unwrap().and_utc()
}

async fn get_ok(t: &TestApp, path: &str) -> Value {
    let (s, v) = t.get(path).await;
    assert_eq!(s, StatusCode::OK, "{path}: {v}");
    v
}

async fn refused(t: &TestApp, path: &str, status: StatusCode, code: &str) {
    let (s, v) = t.get(path).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (status, Some(code)),
        "{path}: {v}"
    );
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x["customer_id"].as_str().unwrap().to_string())
        .collect()
}

const H1: &str = "from=2025-01-01&to=2025-06-30";

/// Six customers over the first half of 2025 (all at the store "main"):
///
/// | | visits (local dates, 2025) | each | visits | spend | average |
/// |---|---|---|---|---|---|
/// | c1 | 01-05 01-20 02-10 03-01 03-20 04-10 | ¥300 | 6 | 180000 | 30000 |
/// | c2 | 03-15 06-01 06-05 | ¥500 | 3 | 150000 | 50000 |
/// | c3 | 05-01 05-08 05-15 05-22 06-26 | ¥50 | 5 | 25000 | 5000 |
/// | c4 | 02-01 06-20 | ¥40 | 2 | 8000 | 4000 |
/// | c5 | 06-15 (and 06-16 ¥999, reversed) | ¥100 | 1 | 10000 | 10000 |
/// | c6 | 01-10 01-10 01-30 02-09 | ¥200 | 4 | 80000 | 20000 |
///
/// Medians: frequency (1,2,3,4,5,6) → 3.5; average (4000…50000) → (10000+20000)/2 =
/// 15000. Strictly above is high: B = c1, c6; A = c2; D = c3; C = c4, c5.
async fn value_of_a_half_year_by_hand(t: TestApp) {
    let actor = t.app.authenticate(&t.token).await.unwrap();
    let plan: [(&str, &[&str], i64); 6] = [
        (
            "客一",
            &["01-05", "01-20", "02-10", "03-01", "03-20", "04-10"],
            30_000,
        ),
        ("客二", &["03-15", "06-01", "06-05"], 50_000),
        (
            "客三",
            &["05-01", "05-08", "05-15", "05-22", "06-26"],
            5_000,
        ),
        ("客四", &["02-01", "06-20"], 4_000),
        ("客五", &["06-15"], 10_000),
        ("客六", &["01-10", "01-10", "01-30", "02-09"], 20_000),
    ];
    let mut c = Vec::new();
    let mut cards = Vec::new();
    for (i, (name, days, fen)) in plan.iter().enumerate() {
        let (customer, card) = member(&t, name, &format!("1390000000{}", i + 1)).await;
        for d in *days {
            purchase_at(&t, &actor, &card, noon(&format!("2025-{d}")), *fen).await;
        }
        c.push(customer);
        cards.push(card);
    }
    // A visit that was reversed does not count.
    let txn = purchase_at(&t, &actor, &cards[4], noon("2025-06-16"), 99_900).await;
    let (s, r) = t
        .post(
            &format!("/transactions/{txn}/reversal"),
            json!({"reason": "录错金额", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");

    // Quadrants.
    let q = get_ok(&t, &format!("/analytics/quadrants?{H1}")).await;
    assert_eq!(
        q["period"],
        json!({"from": "2025-01-01", "to": "2025-06-30", "days": 181})
    );
    assert_eq!(
        (
            q["active_customers"].as_i64(),
            q["visits"].as_i64(),
            q["revenue"].as_i64()
        ),
        (Some(6), Some(21), Some(453_000))
    );
    assert_eq!(q["thresholds"]["frequency"], 3.5);
    assert_eq!(q["thresholds"]["average_spend"], 15_000);
    assert_eq!(q["thresholds"]["frequency_source"], "median");
    let quads: Vec<(String, i64, i64, i64, i64, i64, i64)> = q["quadrants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["quadrant"].as_str().unwrap().to_string(),
                x["customers"].as_i64().unwrap(),
                x["customer_share_bp"].as_i64().unwrap(),
                x["visits"].as_i64().unwrap(),
                x["revenue"].as_i64().unwrap(),
                x["revenue_share_bp"].as_i64().unwrap(),
                x["average_spend"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        quads,
        [
            ("B".into(), 2, 3333, 10, 260_000, 5740, 26_000),
            ("A".into(), 1, 1667, 3, 150_000, 3311, 50_000),
            ("D".into(), 1, 1667, 5, 25_000, 552, 5_000),
            ("C".into(), 2, 3333, 3, 18_000, 397, 6_000),
        ]
    );
    assert_eq!(q["quadrants"][0]["label_zh"], "高频高额");
    assert_eq!(q["points"]["total"], 6);
    assert_eq!(q["points"]["sampled"], false);
    assert_eq!(q["points"]["items"].as_array().unwrap().len(), 6);
    let sampled = get_ok(&t, &format!("/analytics/quadrants?{H1}&points=4")).await;
    assert_eq!(
        (
            sampled["points"]["sampled"].as_bool(),
            sampled["points"]["items"].as_array().unwrap().len()
        ),
        (Some(true), 4)
    );
    // The same for the store, by code; an unknown store is 404.
    let by_store = get_ok(&t, &format!("/analytics/quadrants?{H1}&store=main")).await;
    assert_eq!(by_store["quadrants"], q["quadrants"]);
    assert_eq!(by_store["store"]["code"], "main");
    refused(
        &t,
        &format!("/analytics/quadrants?{H1}&store=nope"),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // Given thresholds: ties at a threshold are low (c5 has exactly 1 visit and ¥100).
    let g = get_ok(
        &t,
        &format!("/analytics/quadrants?{H1}&freq_threshold=1&spend_threshold=10000"),
    )
    .await;
    let counts: Vec<i64> = g["quadrants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["customers"].as_i64().unwrap())
        .collect();
    assert_eq!(counts, [3, 0, 2, 1], "B = c1 c2 c6, D = c3 c4, C = c5");
    assert_eq!(g["thresholds"]["frequency_source"], "given");
    // Bad input: 422 naming the field.
    for (path, field) in [
        (
            format!("/analytics/quadrants?{H1}&freq_threshold=abc"),
            "freq_threshold",
        ),
        (
            format!("/analytics/quadrants?{H1}&spend_threshold=-5"),
            "spend_threshold",
        ),
        (
            "/analytics/quadrants?from=2025-07-01&to=2025-06-30".to_string(),
            "from",
        ),
        (format!("/analytics/quadrants/E/customers?{H1}"), "quadrant"),
        (
            format!("/analytics/quadrants/B/customers?{H1}&format=pdf"),
            "format",
        ),
    ] {
        let (s, v) = t.get(&path).await;
        assert_eq!(
            (s, v["error"]["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{path}: {v}"
        );
    }

    // The list behind a quadrant, by spend, with scores, tier and lifetime value.
    let b = get_ok(&t, &format!("/analytics/quadrants/b/customers?{H1}")).await;
    assert_eq!(b["total"], 2);
    assert_eq!(ids(&b["items"]), [c[0].clone(), c[5].clone()]);
    let c1 = &b["items"][0];
    assert_eq!(c1["name"], "客一");
    assert_eq!(c1["phone"], "13900000001", "the owner sees phone numbers");
    assert_eq!(
        (
            c1["visits"].as_i64(),
            c1["spend"].as_i64(),
            c1["average_spend"].as_i64()
        ),
        (Some(6), Some(180_000), Some(30_000))
    );
    assert_eq!(
        (c1["first_visit"].as_str(), c1["last_visit"].as_str()),
        (Some("2025-01-05"), Some("2025-04-10"))
    );
    assert_eq!(c1["quadrant"], "B");
    assert_eq!(c1["rfm"], json!({"r": 1, "f": 5, "m": 5}));
    assert_eq!(c1["tier"], "platinum");
    // ¥1,800 in 181 days × 365 × 3 years = 1,088,950.27 fen, rounded down.
    assert_eq!(c1["lifetime_value"], 1_088_950);
    let p2 = get_ok(
        &t,
        &format!("/analytics/quadrants/B/customers?{H1}&per_page=1&page=2"),
    )
    .await;
    assert_eq!(
        (
            ids(&p2["items"]),
            p2["has_more"].as_bool(),
            p2["total"].as_i64()
        ),
        (vec![c[5].clone()], Some(false), Some(2))
    );
    // As files.
    let res = t
        .client
        .get(format!(
            "{}/analytics/quadrants/B/customers?{H1}&format=csv",
            t.base
        ))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("quadrant-B-2025-01-01-2025-06-30.csv")
    );
    let body = res.bytes().await.unwrap();
    assert!(body.starts_with("\u{feff}".as_bytes()), "UTF-8 with a BOM");
    let text = String::from_utf8(body[3..].to_vec()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("customer_id,name,phone,level,visits,spend"),
        "{text}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "{},客一,13900000001,member,6,1800.00,300.00,2025-01-05,2025-04-10,B,155,platinum,10889.50",
            c[0]
        )),
        "{text}"
    );
    let res = t
        .client
        .get(format!(
            "{}/analytics/quadrants/C/customers?{H1}&format=xlsx",
            t.base
        ))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("spreadsheetml")
    );
    assert_eq!(&res.bytes().await.unwrap()[..2], b"PK");
    // Both files are in the audit log as customer exports.
    let (s, audit) = t.get("/audit?action=export.analytics").await;
    assert_eq!(s, StatusCode::OK, "{audit}");
    assert_eq!(audit["items"].as_array().unwrap().len(), 2, "{audit}");

    // RFM: recency by last visit (c6 02-09 < c1 04-10 < c2 06-05 < c5 06-15 < c4 06-20 <
    // c3 06-26), frequency by visits, monetary by spend; score = 1 + ⌊5 × lower ÷ 6⌋.
    let r = get_ok(&t, &format!("/analytics/rfm?{H1}")).await;
    assert_eq!(r["customers"], 6);
    for dim in ["recency", "frequency", "monetary"] {
        assert_eq!(r[dim], json!([2, 1, 1, 1, 1]), "{dim}");
    }
    assert_eq!(
        r["recency_frequency"][0],
        json!([0, 0, 1, 0, 1]),
        "r=1: c6 (f 3) and c1 (f 5)"
    );
    let codes: Vec<&str> = r["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["542", "411", "311", "224", "155", "133"]);
    let r1 = get_ok(&t, &format!("/analytics/rfm/customers?{H1}&r=1")).await;
    assert_eq!(ids(&r1["items"]), [c[0].clone(), c[5].clone()]);
    refused(
        &t,
        &format!("/analytics/rfm/customers?{H1}&m=6"),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;

    // The pyramid: top 1% of 6 is whoever nobody outspends (c1); gold needs fewer than
    // 0.3 customers above; iron fewer than 1.2 (c2); the rest is lead.
    let p = get_ok(&t, &format!("/analytics/pyramid?{H1}")).await;
    let tiers: Vec<(String, i64, i64, i64)> = p["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["tier"].as_str().unwrap().to_string(),
                x["customers"].as_i64().unwrap(),
                x["spend"].as_i64().unwrap(),
                x["spend_share_bp"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        tiers,
        [
            ("platinum".into(), 1, 180_000, 3974),
            ("gold".into(), 0, 0, 0),
            ("iron".into(), 1, 150_000, 3311),
            ("lead".into(), 4, 123_000, 2715),
        ]
    );
    assert_eq!(p["tiers"][0]["lifetime_value"], 1_088_950);
    assert_eq!(p["tiers"][1]["min_spend"], Value::Null);
    assert_eq!(p["tiers"][3]["min_spend"], 8_000);
    let p = get_ok(
        &t,
        &format!("/analytics/pyramid?{H1}&tiers=2000,2000,2000&ltv_years=1"),
    )
    .await;
    let counts: Vec<i64> = p["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["customers"].as_i64().unwrap())
        .collect();
    assert_eq!(counts, [2, 1, 1, 2]);
    // ¥3,300 × 365 ÷ 181 = 665,469.6 fen (c1 and c2, each rounded down: 362983 + 302486).
    assert_eq!(p["tiers"][0]["lifetime_value"], 362_983 + 302_486);
    let iron = get_ok(&t, &format!("/analytics/pyramid/iron/customers?{H1}")).await;
    assert_eq!(ids(&iron["items"]), [c[1].clone()]);
    refused(
        &t,
        &format!("/analytics/pyramid?{H1}&tiers=5000,5000,100"),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    refused(
        &t,
        &format!("/analytics/pyramid/tin/customers?{H1}"),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;

    // Migration, January–March → April–June, each period by its own medians.
    // A: c1 (5, ¥300) B; c2 (1, ¥500) A; c6 (4, ¥200) D; c4 (1, ¥40) C (medians 2.5, 25000).
    // B: c2 (2, ¥500) B; c1 (1, ¥300) A; c3 (5, ¥50) D; c4, c5 C (medians 1, 10000).
    let mq = "a_from=2025-01-01&a_to=2025-03-31&b_from=2025-04-01&b_to=2025-06-30";
    let m = get_ok(&t, &format!("/analytics/migration?{mq}")).await;
    assert_eq!(m["states"], json!(["B", "A", "D", "C", "none"]));
    let rows: Vec<Value> = m["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["to"].clone())
        .collect();
    assert_eq!(
        rows,
        [
            json!([0, 1, 0, 0, 0]),
            json!([1, 0, 0, 0, 0]),
            json!([0, 0, 0, 0, 1]),
            json!([0, 0, 0, 1, 0]),
            json!([0, 0, 1, 1, 0]),
        ]
    );
    assert_eq!(
        (
            m["a_to_b"].as_i64(),
            m["d_to_b"].as_i64(),
            m["b_lost"].as_i64()
        ),
        (Some(1), Some(0), Some(1))
    );
    let a_counts: Vec<i64> = m["a"]["quadrants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["customers"].as_i64().unwrap())
        .collect();
    assert_eq!(a_counts, [1, 1, 1, 1]);
    assert_eq!(m["a"]["thresholds"]["frequency"], 2.5);
    let cell = get_ok(&t, &format!("/analytics/migration/A/B/customers?{mq}")).await;
    assert_eq!(cell["total"], 1);
    let x = &cell["items"][0];
    assert_eq!(x["customer_id"], c[1].as_str());
    assert_eq!(
        (
            x["a_quadrant"].as_str(),
            x["a_visits"].as_i64(),
            x["a_spend"].as_i64(),
            x["b_quadrant"].as_str(),
            x["b_visits"].as_i64(),
            x["b_spend"].as_i64()
        ),
        (
            Some("A"),
            Some(1),
            Some(50_000),
            Some("B"),
            Some(2),
            Some(100_000)
        )
    );
    let gone = get_ok(&t, &format!("/analytics/migration/D/none/customers?{mq}")).await;
    assert_eq!(ids(&gone["items"]), [c[5].clone()]);
    refused(
        &t,
        &format!("/analytics/migration/none/none/customers?{mq}"),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;

    // Churn watch as of 30 June. c1: gaps 15 21 19 19 21 → median 19, 81 days since →
    // at risk, ¥300 × 365 ÷ 19 = 576,315 fen a year. c6: distinct days 01-10 01-30 02-09 →
    // gaps 20 10 → median 15, 141 days → at risk, ¥200 × 365 ÷ 15 = 486,666. c2 (median
    // 41, 25 days) and c3 (median 7, 4 days) are fine; c4 has two visit days, c5 one.
    let ch = get_ok(&t, "/analytics/churn?as_of=2025-06-30").await;
    assert_eq!(
        (
            ch["considered"].as_i64(),
            ch["at_risk"].as_i64(),
            ch["value_at_risk"].as_i64()
        ),
        (Some(4), Some(2), Some(1_062_981))
    );
    assert_eq!(ids(&ch["items"]), [c[0].clone(), c[5].clone()]);
    let x = &ch["items"][0];
    assert_eq!(
        (
            x["days_since_last"].as_i64(),
            x["median_interval_days"].as_f64(),
            x["overdue_bp"].as_i64(),
            x["value_at_risk"].as_i64()
        ),
        (Some(81), Some(19.0), Some(42_631), Some(576_315))
    );
    let x = &ch["items"][1];
    assert_eq!(
        (
            x["visits"].as_i64(),
            x["visit_days"].as_i64(),
            x["days_since_last"].as_i64(),
            x["median_interval_days"].as_f64(),
            x["overdue_bp"].as_i64()
        ),
        (Some(4), Some(3), Some(141), Some(15.0), Some(94_000))
    );
    let ch5 = get_ok(&t, "/analytics/churn?as_of=2025-06-30&k=5").await;
    assert_eq!(ids(&ch5["items"]), [c[5].clone()]);
    refused(
        &t,
        "/analytics/churn?as_of=2025-06-30&k=0.5",
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let (s, csv) = t.get("/analytics/churn?as_of=2025-06-30&format=csv").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(csv.as_str().unwrap().lines().count(), 3, "{csv}");

    // Cohorts by month of first visit.
    let co = get_ok(&t, "/analytics/cohorts?from=2025-01&to=2025-06").await;
    let cohorts: Vec<(String, Value)> = co["cohorts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["month"].as_str().unwrap().to_string(),
                x["retained"].clone(),
            )
        })
        .collect();
    assert_eq!(
        cohorts,
        [
            ("2025-01".into(), json!([2, 2, 1, 1, 0, 0])),
            ("2025-02".into(), json!([1, 0, 0, 0, 1])),
            ("2025-03".into(), json!([1, 0, 0, 1])),
            ("2025-05".into(), json!([1, 1])),
            ("2025-06".into(), json!([1])),
        ]
    );
    assert_eq!(
        co["cohorts"][0]["retained_bp"],
        json!([10_000, 10_000, 5_000, 5_000, 0, 0])
    );
    refused(
        &t,
        "/analytics/cohorts?from=2025-13",
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;

    // The overview agrees with the separate reports.
    let o = get_ok(&t, &format!("/analytics/overview?{H1}")).await;
    assert_eq!(o["quadrants"]["quadrants"], q["quadrants"]);
    assert_eq!(o["rfm"]["cells"], r["cells"]);
    assert_eq!(
        (
            o["churn"]["considered"].as_i64(),
            o["churn"]["at_risk"].as_i64()
        ),
        (Some(4), Some(2))
    );

    // Another tenant sees none of it.
    let other = t.second_tenant().await;
    let (s, v) = t
        .req_as(
            &other,
            Method::GET,
            &format!("/analytics/quadrants?{H1}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (v["active_customers"].as_i64(), &v["thresholds"]),
        (Some(0), &Value::Null)
    );
    let (_, v) = t
        .req_as(
            &other,
            Method::GET,
            "/analytics/churn?as_of=2025-06-30",
            None,
        )
        .await;
    assert_eq!(v["considered"], 0);
}

/// Five bills today: 红烧肉+米饭, 红烧肉+米饭+啤酒, 鲈鱼+米饭, 红烧肉+鲈鱼, 啤酒 (and a sixth,
/// 鲈鱼+啤酒, reversed). 红烧肉 is on 3, 米饭 on 3, 鲈鱼 on 2, 啤酒 on 2; 红烧肉+米饭 on 2:
/// support 2/5, confidence 2/3 both ways, lift 2 × 5 ÷ (3 × 3) = 1.1111.
async fn dishes_levels_liability_and_cards(t: TestApp) {
    let (s, cat) = t
        .post(
            "/menu/categories",
            json!({"name": "热菜", "name_en": "Hot"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{cat}");
    let mut dish = Vec::new();
    for (name, price) in [
        ("红烧肉", 6_800),
        ("清蒸鲈鱼", 12_800),
        ("米饭", 300),
        ("啤酒", 1_500),
    ] {
        let (s, i) = t
            .post(
                "/menu/items",
                json!({"category_id": cat["id"], "name": name, "price": price}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{i}");
        dish.push(i["id"].as_str().unwrap().to_string());
    }
    let (pork, fish, rice, beer) = (&dish[0], &dish[1], &dish[2], &dish[3]);
    let bill = |items: &[&String]| {
        json!({"lines": items.iter().map(|i| json!({"item_id": i, "quantity": 1})).collect::<Vec<_>>(),
               "tenders": [{"method": "cash"}], "idempotency_key": key()})
    };
    for items in [
        vec![pork, rice],
        vec![pork, rice, beer],
        vec![fish, rice],
        vec![pork, fish],
        vec![beer],
    ] {
        let (s, r) = t.post("/checkouts", bill(&items)).await;
        assert_eq!(s, StatusCode::OK, "{r}");
    }
    let (s, r) = t.post("/checkouts", bill(&[fish, beer])).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let id = r["checkout_id"].as_str().unwrap();
    let (s, rev) = t
        .post(
            &format!("/checkouts/{id}/reversal"),
            json!({"reason": "点错", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{rev}");

    let a = get_ok(&t, "/analytics/affinity?min_together=1").await;
    assert_eq!(a["baskets"], 5);
    assert_eq!(a["pairs"].as_array().unwrap().len(), 5);
    let top = &a["pairs"][0];
    assert_eq!(
        (top["a"]["name"].as_str(), top["b"]["name"].as_str()),
        (Some("红烧肉"), Some("米饭"))
    );
    assert_eq!(
        (
            top["together"].as_i64(),
            top["a_bills"].as_i64(),
            top["b_bills"].as_i64(),
            top["support_bp"].as_i64(),
            top["confidence_ab_bp"].as_i64(),
            top["confidence_ba_bp"].as_i64(),
            top["lift_bp"].as_i64()
        ),
        (
            Some(2),
            Some(3),
            Some(3),
            Some(4000),
            Some(6667),
            Some(6667),
            Some(11_111)
        )
    );
    // The others are on one bill each: lift 1 × 5 ÷ (3 × 2) or (2 × 3) = 0.8333.
    for p in &a["pairs"].as_array().unwrap()[1..] {
        assert_eq!(
            (p["together"].as_i64(), p["lift_bp"].as_i64()),
            (Some(1), Some(8333)),
            "{p}"
        );
    }
    let a2 = get_ok(&t, "/analytics/affinity").await;
    assert_eq!(
        a2["pairs"].as_array().unwrap().len(),
        1,
        "by default a pair needs two bills"
    );
    let (s, csv) = t.get("/analytics/affinity?min_together=1&format=csv").await;
    assert_eq!(s, StatusCode::OK);
    assert!(csv.as_str().unwrap().contains("红烧肉"), "{csv}");
    refused(
        &t,
        "/analytics/affinity?limit=0",
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;

    // Two members: one gold with ¥1,000 topped up today (¥150 bonus) and a ¥100 purchase
    // (100 points), one without level whose card is never used.
    let (c1, card1) = member(&t, "金卡客", "13700000001").await;
    member(&t, "睡卡客", "13700000002").await;
    let (s, l) = t
        .req(
            Method::PUT,
            &format!("/customers/{c1}/level"),
            Some(json!({"level": "gold", "reason": "老客"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{l}");
    let (s, r) = t
        .post(
            &format!("/cards/{card1}/top-ups"),
            json!({"amount": 100_000, "tender": "cash", "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let (s, r) = t
        .post(
            "/purchases",
            json!({"card_id": card1, "amount": 10_000, "payments": [{"method": "wechat", "amount": 10_000}], "idempotency_key": key()}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let earned = r["earned"]["points_earned"].as_i64().unwrap();

    let lv = get_ok(&t, "/analytics/levels").await;
    assert_eq!(lv["customers"], 2);
    let gold = lv["levels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["level"] == "gold")
        .unwrap();
    assert_eq!(
        (gold["customers"].as_i64(), gold["share_bp"].as_i64()),
        (Some(1), Some(5000))
    );
    let none = lv["levels"].as_array().unwrap().last().unwrap();
    assert_eq!(
        (none["level"].clone(), none["customers"].as_i64()),
        (Value::Null, Some(1))
    );

    // Liability over the last 30 days, weekly: nothing until today, then what was loaded.
    let today = t
        .app
        .settings(&t.app.authenticate(&t.token).await.unwrap())
        .await
        .unwrap()
        .local_date(patron_app::now());
    let from = today - Duration::days(29);
    let li = get_ok(
        &t,
        &format!("/analytics/liability?from={from}&to={today}&step=week"),
    )
    .await;
    let points = li["points"].as_array().unwrap();
    assert_eq!(points.len(), 5, "{li}");
    assert_eq!(points[0]["date"], (from + Duration::days(6)).to_string());
    assert_eq!(
        (
            points[0]["stored_value"].as_i64(),
            points[0]["points"].as_i64()
        ),
        (Some(0), Some(0))
    );
    let last = points.last().unwrap();
    assert_eq!(last["date"], today.to_string());
    assert_eq!(
        (
            last["principal"].as_i64(),
            last["bonus"].as_i64(),
            last["stored_value"].as_i64(),
            last["points"].as_i64()
        ),
        (Some(100_000), Some(15_000), Some(115_000), Some(earned))
    );
    assert!(earned > 0);
    refused(
        &t,
        &format!("/analytics/liability?from=2020-01-01&to={today}&step=day"),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let (s, csv) = t
        .get(&format!(
            "/analytics/liability?from={from}&to={today}&step=week&format=csv"
        ))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        csv.as_str().unwrap().contains("1000.00,150.00,1150.00"),
        "{csv}"
    );

    // Card liveness: two cards, one used (top-up and purchase) in the last 90 days.
    let cl = get_ok(&t, "/analytics/card-liveness").await;
    assert_eq!(
        (
            cl["issued"].as_i64(),
            cl["open"].as_i64(),
            cl["used"].as_i64(),
            cl["liveness_bp"].as_i64()
        ),
        (Some(2), Some(2), Some(1), Some(5000))
    );
    refused(
        &t,
        "/analytics/card-liveness?days=0",
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
}

async fn add_staff(t: &TestApp, username: &str, role: Role, store: Option<StoreId>) -> String {
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
            created_at: Utc::now(),
        })
        .await
        .unwrap();
    let (s, v) = t
        .post("/auth/login", json!({"tenant": "t1", "username": username, "password": "staff password 1", "store": "main"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["token"].as_str().unwrap().to_string()
}

/// Three customers over the last 365 days, relative to today:
/// ca ¥100 on days −100, −60, −20; cb ¥50 on days −200, −190, −180; cc ¥1,000 on day −5.
/// Medians: frequency (1, 3, 3) → 3; average (5000, 10000, 100000) → 10000: ca and cb
/// are C, cc is A. cb's median interval is 10 days and 180 have passed: at risk.
async fn customer_value_and_who_may_see_it(t: TestApp) {
    let actor = t.app.authenticate(&t.token).await.unwrap();
    let now = patron_app::now();
    let today = t.app.settings(&actor).await.unwrap().local_date(now);
    let mut c = Vec::new();
    for (i, (days, fen)) in [
        (vec![100, 60, 20], 10_000),
        (vec![200, 190, 180], 5_000),
        (vec![5], 100_000),
    ]
    .into_iter()
    .enumerate()
    {
        let (customer, card) = member(&t, &format!("值{i}"), &format!("1360000000{i}")).await;
        for d in days {
            purchase_at(&t, &actor, &card, now - Duration::days(d), fen).await;
        }
        c.push(customer);
    }
    let v = get_ok(&t, &format!("/customers/{}/value", c[0])).await;
    assert_eq!(v["period"]["to"], today.to_string());
    assert_eq!(
        (
            v["visits"].as_i64(),
            v["spend"].as_i64(),
            v["average_spend"].as_i64()
        ),
        (Some(3), Some(30_000), Some(10_000))
    );
    assert_eq!(
        (v["quadrant"].as_str(), v["quadrant_label_zh"].as_str()),
        (Some("C"), Some("低频低额"))
    );
    assert_eq!(v["rfm"], json!({"r": 2, "f": 2, "m": 2}));
    assert_eq!(v["tier"], "lead");
    assert_eq!(v["lifetime_value"], 90_000, "¥300 a year × 3 years");
    assert_eq!(v["population"]["customers"], 3);
    assert_eq!(v["population"]["thresholds"]["frequency"], 3.0);
    assert_eq!(
        (
            v["churn"]["applies"].as_bool(),
            v["churn"]["median_interval_days"].as_f64(),
            v["churn"]["days_since_last"].as_i64(),
            v["churn"]["at_risk"].as_bool()
        ),
        (Some(true), Some(40.0), Some(20), Some(false))
    );
    let v = get_ok(&t, &format!("/customers/{}/value", c[1])).await;
    assert_eq!(
        (
            v["churn"]["at_risk"].as_bool(),
            v["churn"]["days_since_last"].as_i64(),
            v["churn"]["overdue_bp"].as_i64(),
            v["churn"]["value_at_risk"].as_i64()
        ),
        (Some(true), Some(180), Some(180_000), Some(182_500))
    );
    let v = get_ok(&t, &format!("/customers/{}/value", c[2])).await;
    assert_eq!(
        (v["quadrant"].as_str(), v["tier"].as_str()),
        (Some("A"), Some("platinum"))
    );
    assert_eq!(v["rfm"], json!({"r": 4, "f": 1, "m": 4}));
    assert_eq!(v["churn"]["applies"], false);
    // A customer without visits has no quadrant; an unknown one is 404.
    let quiet = t.customer(json!({"name": "新客"})).await;
    let v = get_ok(&t, &format!("/customers/{quiet}/value")).await;
    assert_eq!(
        (v["visits"].as_i64(), &v["quadrant"]),
        (Some(0), &Value::Null)
    );
    refused(
        &t,
        "/customers/0195f0a0-0000-7000-8000-000000000000/value",
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // Who may see what: a cashier reads a customer's value but no reports; a store
    // manager sees the store's reports only.
    let east = StoreId(uuid::Uuid::now_v7());
    t.app
        .storage
        .create_store(&Store {
            tenant_id: t.tenant_id,
            id: east,
            code: "east".into(),
            name: "东店".into(),
            address: None,
            phone: None,
            created_at: Utc::now(),
        })
        .await
        .unwrap();
    let main = actor.store_id.unwrap();
    let cashier = add_staff(&t, "cashier", Role::Cashier, Some(main)).await;
    let (s, v) = t
        .req_as(&cashier, Method::GET, "/analytics/quadrants", None)
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "{v}"
    );
    let (s, _) = t
        .req_as(
            &cashier,
            Method::GET,
            &format!("/customers/{}/value", c[0]),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let manager = add_staff(&t, "manager", Role::Manager, Some(main)).await;
    let (s, v) = t
        .req_as(&manager, Method::GET, "/analytics/quadrants", None)
        .await;
    assert_eq!(
        (
            s,
            v["store"]["code"].as_str(),
            v["active_customers"].as_i64()
        ),
        (StatusCode::OK, Some("main"), Some(3)),
        "{v}"
    );
    let (s, v) = t
        .req_as(
            &manager,
            Method::GET,
            "/analytics/quadrants?store=east",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = t
        .req_as(&manager, Method::GET, "/analytics/churn", None)
        .await;
    assert_eq!(
        (s, v["store"]["code"].as_str(), v["at_risk"].as_i64()),
        (StatusCode::OK, Some("main"), Some(1)),
        "{v}"
    );
    // The owner sees the chain, and any store.
    let v = get_ok(&t, "/analytics/quadrants?store=east").await;
    assert_eq!(v["active_customers"], 0);
}
