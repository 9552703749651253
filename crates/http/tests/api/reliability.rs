//! Proof under load: 64 tills at once against six cards, then the books are checked from
//! the database. Every till runs a bounded number of operations (not a time): top-ups,
//! checkouts (coupons, points as cash, stored value, other tenders), reversals and
//! refunds approved by a manager, coupon redemptions, a reversal sent to the wrong
//! endpoint, and retries of earlier requests with their idempotency keys. Refusals are
//! expected (balances, used coupons, reversed bills); a 5xx is a failure.
//!
//! `PATRON_RELIABILITY_OPS` sets the operations per till (default 6; 50 for a long run),
//! `PATRON_RELIABILITY_SEED` the seed of the tills' choices.

use crate::support::TestApp;
use patron_domain::ledger::{AccountKind, Normal, Unit};
use patron_store::coupons::CouponFilter;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

crate::both_backends!(concurrent_tills_keep_the_books);

const CLIENTS: usize = 64;
const CARDS: usize = 6;
const CASHIERS: usize = 4;
const MANAGER: &str = "mgr1";
const MANAGER_PASSWORD: &str = "manager password 1";
const CASHIER_PASSWORD: &str = "till password 1";

fn key() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// SplitMix64: the tills' choices, reproducible from the seed without another dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Clone>(&mut self, v: &[T]) -> Option<T> {
        (!v.is_empty()).then(|| v[self.below(v.len() as u64) as usize].clone())
    }
}

/// What the tills share: the cards, the coupons each card's holder has, and what was
/// taken so far (for reversals, refunds and retries).
struct Shared {
    base: String,
    client: reqwest::Client,
    tokens: Vec<String>,
    cards: Vec<String>,
    items: Vec<String>,
    /// Coupon codes known per card (issued to its holder, or triggered by its bills).
    coupons: Mutex<Vec<Vec<String>>>,
    checkouts: Mutex<Vec<String>>,
    top_ups: Mutex<Vec<String>>,
    /// Successful stand-alone redemptions: (code, replayed).
    redemptions: Mutex<Vec<(String, bool)>>,
    /// (operation, outcome) → count.
    tally: Mutex<BTreeMap<(&'static str, String), u64>>,
    /// Answers that must not happen (5xx, malformed requests, lost connections).
    failures: Mutex<Vec<String>>,
}

impl Shared {
    async fn send(
        &self,
        till: usize,
        path: &str,
        body: &Value,
    ) -> Result<(StatusCode, Value), String> {
        let res = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.tokens[till % self.tokens.len()])
            .json(body)
            .send()
            .await
            .map_err(|e| format!("POST {path}: {e}"))?;
        Ok(crate::support::decode(res).await)
    }

    /// Sends and tallies; returns the answer when it was a success.
    async fn op(&self, what: &'static str, till: usize, path: &str, body: &Value) -> Option<Value> {
        let outcome = match self.send(till, path, body).await {
            Err(e) => {
                self.failures.lock().unwrap().push(e);
                "transport_error".to_string()
            }
            Ok((s, v)) if s.is_success() => {
                let replayed = v["replayed"] == true || v["ledger"]["replayed"] == true;
                self.count(what, if replayed { "ok (replayed)" } else { "ok" });
                return Some(v);
            }
            Ok((s, v)) => {
                let code = v["error"]["code"].as_str().unwrap_or("?").to_string();
                // 409 and 422 are the till being told no; anything else is a fault.
                if !matches!(s, StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY) {
                    self.failures
                        .lock()
                        .unwrap()
                        .push(format!("{what}: POST {path} {body} → {s} {v}"));
                }
                // Generic codes are told apart by their field or message.
                let detail = match (code.as_str(), v["error"]["field"].as_str()) {
                    ("validation_failed", Some(f)) => format!(
                        " ({f}: {})",
                        v["error"]["fields"][0]["code"].as_str().unwrap_or("?")
                    ),
                    ("conflict", _) => {
                        format!(" ({})", v["error"]["message"].as_str().unwrap_or(""))
                    }
                    _ => String::new(),
                };
                format!("{} {code}{detail}", s.as_u16())
            }
        };
        self.count(what, &outcome);
        None
    }

    fn count(&self, what: &'static str, outcome: &str) {
        *self
            .tally
            .lock()
            .unwrap()
            .entry((what, outcome.to_string()))
            .or_default() += 1;
    }

    fn approval() -> Value {
        json!({"username": MANAGER, "password": MANAGER_PASSWORD})
    }

    fn checkout_body(&self, rng: &mut Rng) -> (usize, Value) {
        let card = rng.below(CARDS as u64) as usize;
        // Pork or fish on every bill (so ¥10 of stored value never exceeds it), then more.
        let mut lines = vec![
            json!({"item_id": self.items[rng.below(2) as usize], "quantity": 1 + rng.below(2)}),
        ];
        for _ in 0..rng.below(3) {
            lines.push(
                json!({"item_id": rng.pick(&self.items).unwrap(), "quantity": 1 + rng.below(3)}),
            );
        }
        let tenders = match rng.below(4) {
            0 | 1 => json!([{"method": "stored_value"}]),
            2 => json!([{"method": "stored_value", "amount": 1_000}, {"method": "wechat"}]),
            _ => json!([{"method": rng.pick(&["cash", "alipay", "bank_card"]).unwrap()}]),
        };
        let mut body = json!({"lines": lines, "card_id": self.cards[card], "tenders": tenders,
                              "idempotency_key": key()});
        if rng.below(3) == 0 {
            body["points"] = json!(100 * (1 + rng.below(15)));
        }
        if rng.below(2) == 0
            && let Some(code) = rng.pick(&self.coupons.lock().unwrap()[card])
        {
            body["coupons"] = json!([code]);
        }
        (card, body)
    }

    async fn till(self: Arc<Self>, till: usize, ops: u64, seed: u64) {
        let mut rng = Rng(seed ^ (till as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
        // The last successful money request of this till: path, body, and the id it got.
        let mut last: Option<(String, Value, String)> = None;
        for _ in 0..ops {
            match rng.below(100) {
                0..30 => {
                    let (card, body) = self.checkout_body(&mut rng);
                    if let Some(v) = self.op("checkout", till, "/checkouts", &body).await {
                        if let Some(wrong) = receipt_mismatch(&v["receipt"]) {
                            self.failures.lock().unwrap().push(wrong);
                        }
                        let id = v["checkout_id"].as_str().unwrap().to_string();
                        self.checkouts.lock().unwrap().push(id.clone());
                        for c in v["earned"]["coupons_issued"].as_array().unwrap_or(&vec![]) {
                            let code = c["code"].as_str().unwrap().to_string();
                            self.coupons.lock().unwrap()[card].push(code);
                        }
                        last = Some(("/checkouts".into(), body, id));
                    }
                }
                30..52 => {
                    let card = rng.pick(&self.cards).unwrap();
                    let path = format!("/cards/{card}/top-ups");
                    let body = json!({"amount": 10_000 * (1 + rng.below(5)),
                                      "tender": rng.pick(&["cash", "wechat", "alipay"]).unwrap(),
                                      "idempotency_key": key()});
                    if let Some(v) = self.op("top_up", till, &path, &body).await {
                        let id = v["txn_id"].as_str().unwrap().to_string();
                        self.top_ups.lock().unwrap().push(id.clone());
                        last = Some((path, body, id));
                    }
                }
                52..62 => {
                    let Some(id) = rng.pick(&self.checkouts.lock().unwrap()) else {
                        continue;
                    };
                    let path = format!("/checkouts/{id}/reversal");
                    let body = json!({"reason": "压力测试: 客人取消", "approval": Self::approval(),
                                      "idempotency_key": key()});
                    self.op("checkout_reversal", till, &path, &body).await;
                }
                62..70 => {
                    let Some(id) = rng.pick(&self.top_ups.lock().unwrap()) else {
                        continue;
                    };
                    let path = format!("/transactions/{id}/reversal");
                    let body = json!({"reason": "压力测试: 充错卡", "approval": Self::approval(),
                                      "idempotency_key": key()});
                    self.op("top_up_reversal", till, &path, &body).await;
                }
                70..76 => {
                    let Some(id) = rng.pick(&self.checkouts.lock().unwrap()) else {
                        continue;
                    };
                    let path = format!("/checkouts/{id}/refunds");
                    let body = json!({"amount": 500 * (1 + rng.below(4)), "reason": "压力测试: 少上一道菜",
                                      "approval": Self::approval(), "idempotency_key": key()});
                    self.op("refund", till, &path, &body).await;
                }
                76..88 => {
                    let card = rng.below(CARDS as u64) as usize;
                    let Some(code) = rng.pick(&self.coupons.lock().unwrap()[card]) else {
                        continue;
                    };
                    let path = format!("/coupons/{code}/redeem");
                    let body = json!({"subtotal": 20_000, "idempotency_key": key()});
                    if let Some(v) = self.op("coupon_redeem", till, &path, &body).await {
                        self.redemptions
                            .lock()
                            .unwrap()
                            .push((code, v["replayed"] == true));
                    }
                }
                88..92 => {
                    // A checkout's transaction sent to the card reversal endpoint: whatever
                    // the answer, the bill and the ledger must stay consistent.
                    let Some(id) = rng.pick(&self.checkouts.lock().unwrap()) else {
                        continue;
                    };
                    let path = format!("/transactions/{id}/reversal");
                    let body = json!({"reason": "压力测试: 走错入口", "approval": Self::approval(),
                                      "idempotency_key": key()});
                    self.op("checkout_via_txn_reversal", till, &path, &body)
                        .await;
                }
                _ => {
                    // A retry of this till's last success: the original answer, nothing twice.
                    let Some((path, body, id)) = last.clone() else {
                        continue;
                    };
                    let v = self.op("retry", till, &path, &body).await;
                    let again = v
                        .as_ref()
                        .and_then(|v| v["checkout_id"].as_str().or(v["txn_id"].as_str()));
                    let replayed = v
                        .as_ref()
                        .is_some_and(|v| v["replayed"] == true || v["ledger"]["replayed"] == true);
                    if again != Some(id.as_str()) || !replayed {
                        self.failures.lock().unwrap().push(format!(
                            "retry of {path} {body} with its key answered {v:?}, not the original {id}"
                        ));
                    }
                }
            }
        }
    }
}

/// A receipt's balances must add up: stored value before + this time = after, points
/// before − used + earned = after.
fn receipt_mismatch(r: &Value) -> Option<String> {
    let n = |v: &Value| v.as_i64().unwrap_or(0);
    let sv = &r["stored_value"];
    let p = &r["points"];
    let sv_ok = sv.is_null() || n(&sv["before"]) + n(&sv["this_time"]) == n(&sv["after"]);
    let points_ok =
        p.is_null() || n(&p["before"]) - n(&p["used"]) + n(&p["earned"]) == n(&p["after"]);
    (!(sv_ok && points_ok)).then(|| {
        format!(
            "receipt {} does not add up: stored value {sv}, points {p}",
            r["number"]
        )
    })
}

async fn setup(t: &TestApp) -> Shared {
    let (_, mut settings) = t.get("/settings").await;
    settings["pin_required"] = json!(false);
    let (s, r) = t
        .req(reqwest::Method::PUT, "/settings", Some(settings))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    // The menu: 红烧肉 ¥68 (member ¥60), 清蒸鲈鱼 ¥128 (member ¥118), 米饭 ¥3, 啤酒 ¥15.
    let (_, cat) = t.post("/menu/categories", json!({"name": "热菜"})).await;
    let mut items = Vec::new();
    for body in [
        json!({"name": "红烧肉", "price": 6_800, "member_prices": [{"card_kind": "member_price", "price": 6_000}]}),
        json!({"name": "清蒸鲈鱼", "price": 12_800, "member_prices": [{"card_kind": "member_price", "price": 11_800}]}),
        json!({"name": "米饭", "price": 300}),
        json!({"name": "啤酒", "price": 1_500, "joins_discounts": false}),
    ] {
        let mut body = body;
        body["category_id"] = cat["id"].clone();
        let (s, i) = t.post("/menu/items", body).await;
        assert_eq!(s, StatusCode::CREATED, "{i}");
        items.push(i["id"].as_str().unwrap().to_string());
    }
    // Six members with integrated cards: ¥1,000 (+¥150 bonus) and 3,000 points each.
    let mut customers = Vec::new();
    let mut cards = Vec::new();
    for i in 0..CARDS {
        let customer = t
            .customer(json!({"name": format!("压测会员{i}"), "phone": format!("1370000000{i}")}))
            .await;
        let (s, c) = t
            .post(
                "/cards",
                json!({"customer_id": customer,
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
        let (s, r) = t
            .post(
                &format!("/cards/{card}/adjustments"),
                json!({"balance": "points", "amount": 3_000, "reason": "开卡赠送", "idempotency_key": key()}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        customers.push(customer);
        cards.push(card);
    }
    // Coupons: 满100减10 and 88折 (cap ¥20), three of each per member; bills of ¥300 or
    // more earn a ¥15 voucher.
    let mut coupons = vec![Vec::new(); CARDS];
    for kind in [
        json!({"type": "cash", "value": 1_000, "min_spend": 10_000}),
        json!({"type": "discount", "percent_off_bp": 1_200, "cap": 2_000}),
    ] {
        let (s, tpl) = t
            .post(
                "/coupon-templates",
                json!({"name": "压测券", "kind": kind, "validity": {"type": "days_after_issue", "days": 30}}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{tpl}");
        for _ in 0..3 {
            let (s, issued) = t
                .post(
                    &format!("/coupon-templates/{}/issue", tpl["id"].as_str().unwrap()),
                    json!({"customer_ids": customers}),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{issued}");
            for c in issued.as_array().unwrap() {
                let owner = customers
                    .iter()
                    .position(|x| c["customer_id"] == x.as_str())
                    .unwrap();
                coupons[owner].push(c["code"].as_str().unwrap().to_string());
            }
        }
    }
    let (s, back) = t
        .post(
            "/coupon-templates",
            json!({"name": "满300返15", "kind": {"type": "cash", "value": 1_500},
                   "validity": {"type": "days_after_issue", "days": 30}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{back}");
    let (s, r) = t
        .post(
            "/coupon-rules",
            json!({"template_id": back["id"], "min_spend": 30_000}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    // A manager who approves, and cashiers at the tills.
    let store = t
        .app
        .storage
        .list_stores(t.tenant_id)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.code == "main")
        .unwrap();
    let staff = |username: &str, role, password: &str| patron_domain::org::Staff {
        tenant_id: t.tenant_id,
        id: patron_domain::ids::StaffId(uuid::Uuid::now_v7()),
        username: username.into(),
        display_name: username.into(),
        password_hash: patron_app::auth::hash_secret(password).unwrap(),
        role,
        store_id: Some(store.id),
        active: true,
        created_at: chrono::Utc::now(),
    };
    let s = &t.app.storage;
    s.create_staff(&staff(
        MANAGER,
        patron_domain::org::Role::Manager,
        MANAGER_PASSWORD,
    ))
    .await
    .unwrap();
    let mut tokens = Vec::new();
    for i in 0..CASHIERS {
        let name = format!("till{i}");
        s.create_staff(&staff(
            &name,
            patron_domain::org::Role::Cashier,
            CASHIER_PASSWORD,
        ))
        .await
        .unwrap();
        let (st, v) = crate::support::decode(
            t.client
                .post(format!("{}/auth/login", t.base))
                .json(&json!({"tenant": "t1", "username": name, "password": CASHIER_PASSWORD}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        tokens.push(v["token"].as_str().unwrap().to_string());
    }
    Shared {
        base: t.base.clone(),
        client: t.client.clone(),
        tokens,
        cards,
        items,
        coupons: Mutex::new(coupons),
        checkouts: Mutex::new(Vec::new()),
        top_ups: Mutex::new(Vec::new()),
        redemptions: Mutex::new(Vec::new()),
        tally: Mutex::new(BTreeMap::new()),
        failures: Mutex::new(Vec::new()),
    }
}

async fn concurrent_tills_keep_the_books(t: TestApp) {
    let ops = env_u64("PATRON_RELIABILITY_OPS", 6);
    let seed = env_u64("PATRON_RELIABILITY_SEED", 2026);
    let shared = Arc::new(setup(&t).await);
    let started = std::time::Instant::now();
    let tills: Vec<_> = (0..CLIENTS)
        .map(|i| tokio::spawn(shared.clone().till(i, ops, seed)))
        .collect();
    for h in tills {
        h.await.unwrap();
    }
    let elapsed = started.elapsed();

    // What ran.
    let tally = shared.tally.lock().unwrap().clone();
    let attempted: u64 = tally.values().sum();
    let ok: u64 = tally
        .iter()
        .filter(|((_, o), _)| o.starts_with("ok"))
        .map(|(_, n)| n)
        .sum();
    println!(
        "reliability ({:?}): {CLIENTS} tills × {ops} operations (seed {seed}): {attempted} attempted, \
         {ok} succeeded, {} refused, in {:.1}s",
        t.app.storage.backend(),
        attempted - ok,
        elapsed.as_secs_f64()
    );
    for ((what, outcome), n) in &tally {
        println!("  {what:<26} {outcome:<40} {n}");
    }
    let failures = shared.failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} faults:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(ok > 0, "nothing succeeded");

    check_books(&t, &shared).await;
}

/// The books after the load, read from the database.
async fn check_books(t: &TestApp, shared: &Shared) {
    let s = &t.app.storage;
    let tenant = t.tenant_id;
    // `patron verify`: cached balances = entries, every transaction balances per unit,
    // lots = points balances, the hash chain is intact.
    let report = t.app.verify_ledger().await.unwrap();
    assert!(report.is_clean(), "{:#?}", report.violations);
    assert!(report.transactions > 0);

    let accounts = s.all_accounts(tenant).await.unwrap();
    let kind_of: HashMap<uuid::Uuid, AccountKind> =
        accounts.iter().map(|a| (a.id, a.key.kind)).collect();
    let mut entries = Vec::new();
    loop {
        let after = entries
            .last()
            .map_or(0, |e: &patron_store::ledger::EntryRecord| e.seq);
        let page = s.entries_after(tenant, after, 10_000).await.unwrap();
        if page.is_empty() {
            break;
        }
        entries.extend(page);
    }
    let mut txn_ids = Vec::new();
    loop {
        let page = s
            .txn_ids_after(tenant, txn_ids.last().copied(), 10_000)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        txn_ids.extend(page);
    }
    let mut txns = HashMap::new();
    for chunk in txn_ids.chunks(500) {
        for x in s.txns(tenant, chunk).await.unwrap() {
            txns.insert(x.id, x);
        }
    }
    assert_eq!(txns.len(), txn_ids.len());

    // Recomputed here too, independently of `verify`: per transaction and unit, debits =
    // credits; each cached balance = the sum of its entries.
    let mut per_txn: HashMap<(uuid::Uuid, Unit), i64> = HashMap::new();
    let mut sums: HashMap<uuid::Uuid, i64> = HashMap::new();
    for e in &entries {
        let kind = kind_of[&e.account_id];
        let signed = match kind.normal() {
            Normal::Debit => e.amount,
            Normal::Credit => -e.amount,
        };
        *per_txn.entry((e.txn_id, kind.unit())).or_default() += signed;
        *sums.entry(e.account_id).or_default() += e.amount;
        assert!(
            txns.contains_key(&e.txn_id),
            "entry {} of an unknown transaction",
            e.seq
        );
    }
    for ((txn, unit), off) in &per_txn {
        assert_eq!(*off, 0, "transaction {txn} does not balance in {unit:?}");
    }
    for a in &accounts {
        assert_eq!(
            sums.get(&a.id).copied().unwrap_or(0),
            a.balance,
            "account {:?}",
            a.key
        );
    }
    let with_entries: std::collections::HashSet<uuid::Uuid> =
        entries.iter().map(|e| e.txn_id).collect();
    for x in txns.values() {
        if matches!(
            x.kind.as_str(),
            "checkout" | "checkout_refund" | "reversal" | "top_up"
        ) {
            assert!(
                with_entries.contains(&x.id),
                "{} {} has no entries",
                x.kind,
                x.id
            );
        }
    }
    // Points lots hold exactly the points balances.
    let lots: HashMap<uuid::Uuid, i64> = s.lot_sums(tenant).await.unwrap().into_iter().collect();
    for a in accounts
        .iter()
        .filter(|a| a.key.kind == AccountKind::CardPoints)
    {
        assert_eq!(
            lots.get(&a.id).copied().unwrap_or(0),
            a.balance,
            "lots of {:?}",
            a.key
        );
    }

    // Money is conserved: what came in through the tenders is the stored-value (and charge)
    // liability plus revenue less discounts; points granted are held, redeemed or expired.
    let total = |pred: &dyn Fn(AccountKind) -> bool| -> i64 {
        accounts
            .iter()
            .filter(|a| pred(a.key.kind))
            .map(|a| a.balance)
            .sum()
    };
    let tenders = total(&|k| k == AccountKind::Tender);
    let liabilities = total(&|k| k.customer_side() && k.unit() == Unit::Fen);
    let revenue = total(&|k| k == AccountKind::Revenue);
    let discounts = total(&|k| k == AccountKind::Discounts);
    assert_eq!(
        tenders,
        liabilities + revenue - discounts,
        "tenders {tenders} ≠ liabilities {liabilities} + revenue {revenue} − discounts {discounts}"
    );
    let granted = total(&|k| k == AccountKind::PointsGranted);
    let held = total(&|k| k.customer_side() && k.unit() == Unit::Points);
    let redeemed = total(&|k| k == AccountKind::PointsRedeemed);
    let expired = total(&|k| k == AccountKind::PointsExpired);
    assert_eq!(granted, held + redeemed + expired, "points");
    assert!(tenders > 0 && revenue > 0, "{tenders} {revenue}");

    // Each bill: what the customer paid for it (tenders in, stored value and charge out),
    // over the checkout, its reversal and its refunds, agrees with its status.
    let paid = |txn: uuid::Uuid| -> i64 {
        entries
            .iter()
            .filter(|e| e.txn_id == txn)
            .map(|e| match kind_of[&e.account_id] {
                AccountKind::Tender => e.amount,
                k if k.customer_side() && k.unit() == Unit::Fen => -e.amount,
                _ => 0,
            })
            .sum()
    };
    let bill_of = |mut id: uuid::Uuid| -> Option<uuid::Uuid> {
        loop {
            let x = txns.get(&id)?;
            match x.kind.as_str() {
                "checkout" => return Some(x.id),
                "checkout_refund" => {
                    return x.data["checkout_id"].as_str().and_then(|v| v.parse().ok());
                }
                _ => id = x.reverses?,
            }
        }
    };
    let mut related: HashMap<uuid::Uuid, Vec<uuid::Uuid>> = HashMap::new();
    for id in &txn_ids {
        if let Some(bill) = bill_of(*id) {
            related.entry(bill).or_default().push(*id);
        }
    }
    let mut checkouts = Vec::new();
    for id in txn_ids.iter().filter(|id| txns[id].kind == "checkout") {
        let c = s
            .checkout(tenant, *id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("checkout transaction {id} without its bill"));
        assert!(!c.lines.is_empty(), "bill {} without lines", c.number);
        checkouts.push(c);
    }
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    for c in &checkouts {
        *by_status.entry(c.status.clone()).or_default() += 1;
        let rel = &related[&c.id];
        assert_eq!(paid(c.id), c.amount_due, "bill {} as taken", c.number);
        let net: i64 = rel.iter().map(|x| paid(*x)).sum();
        let reversals = rel
            .iter()
            .filter(|x| txns[*x].kind == "reversal" && txns[*x].reverses == Some(c.id))
            .count();
        let refunded_ok = match c.status.as_str() {
            "completed" => c.refunded == 0,
            "partly_refunded" => c.refunded > 0 && c.refunded < c.amount_due,
            _ => c.refunded == c.amount_due,
        };
        assert!(
            refunded_ok,
            "bill {} is {} with {} of {} refunded",
            c.number, c.status, c.refunded, c.amount_due
        );
        match c.status.as_str() {
            "completed" | "partly_refunded" | "refunded" => {
                assert_eq!(
                    reversals, 0,
                    "bill {} is {} but was reversed",
                    c.number, c.status
                );
                assert_eq!(
                    net,
                    c.amount_due - c.refunded,
                    "bill {} ({}): paid {net}, due {} less refunded {}",
                    c.number,
                    c.status,
                    c.amount_due,
                    c.refunded
                );
            }
            "reversed" => {
                assert_eq!(reversals, 1, "bill {}", c.number);
                // Kept back only the value of a coupon it issued that was used meanwhile.
                assert!(net >= 0 && net <= c.amount_due, "bill {}: {net}", c.number);
            }
            other => panic!("bill {} has status {other}", c.number),
        }
    }
    // Every bill and top-up the tills were told about is there.
    for id in shared.checkouts.lock().unwrap().iter() {
        let id: uuid::Uuid = id.parse().unwrap();
        assert!(
            checkouts.iter().any(|c| c.id == id),
            "acknowledged bill {id} missing"
        );
    }
    for id in shared.top_ups.lock().unwrap().iter() {
        let id: uuid::Uuid = id.parse().unwrap();
        assert_eq!(txns.get(&id).map(|x| x.kind.as_str()), Some("top_up"));
    }

    // Coupons are used at most once: a redeemed coupon has exactly one live use (a bill
    // not reversed, or a stand-alone redemption), an issued or voided one none.
    let mut live_uses: HashMap<String, u64> = HashMap::new();
    for c in checkouts.iter().filter(|c| c.status != "reversed") {
        for code in c.breakdown["coupons_applied"].as_array().unwrap() {
            *live_uses.entry(code.as_str().unwrap().into()).or_default() += 1;
        }
    }
    for (code, replayed) in shared.redemptions.lock().unwrap().iter() {
        assert!(!replayed, "fresh keys never replay");
        *live_uses.entry(code.clone()).or_default() += 1;
    }
    let coupons = s
        .list_coupons(tenant, &CouponFilter::default(), 100_000)
        .await
        .unwrap();
    let mut by_coupon_status: BTreeMap<&str, u64> = BTreeMap::new();
    for c in &coupons {
        let uses = live_uses.get(&c.code).copied().unwrap_or(0);
        let status = c.status.as_str();
        *by_coupon_status.entry(status).or_default() += 1;
        let expected = if status == "redeemed" { 1 } else { 0 };
        assert_eq!(
            uses, expected,
            "coupon {} is {status} with {uses} live uses",
            c.code
        );
    }
    assert!(
        live_uses
            .keys()
            .all(|code| coupons.iter().any(|c| &c.code == code)),
        "a use of an unknown coupon"
    );
    println!(
        "books: {} transactions, {} entries, {} accounts; bills {by_status:?}; coupons {by_coupon_status:?}; \
         tenders {tenders} = liabilities {liabilities} + revenue {revenue} − discounts {discounts}; \
         points granted {granted} = held {held} + redeemed {redeemed} + expired {expired}",
        txn_ids.len(),
        entries.len(),
        accounts.len()
    );
}
