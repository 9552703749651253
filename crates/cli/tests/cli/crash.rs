//! Crash safety: `patron serve` is killed with SIGKILL at random moments while tills send
//! checkouts and top-ups, and restarted on the same database. Afterwards every request the
//! tills were answered 2xx is there, every request retried with its idempotency key gives
//! the original result or is performed exactly once, no transaction is half written, and
//! `patron verify` is clean. On a SQLite file, and on PostgreSQL when it answers.
//!
//! `PATRON_CRASH_KILLS` sets the number of kills (default 3; 20 for the full run),
//! `PATRON_CRASH_SEED` the seed of the kill moments and the tills' choices.

use super::{init, patron, serve, sqlite, text};
use patron_domain::ledger::{AccountKind, Unit};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

const TILLS: usize = 6;
const CARDS: usize = 8;
const PASSWORD: &str = "correct horse battery";

#[test]
fn sigkill_loses_and_doubles_nothing_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(dir.path());
    crash_run(dir.path(), &db);
}

#[test]
fn sigkill_loses_and_doubles_nothing_on_postgres() {
    let rt = runtime();
    let Some(url) = rt.block_on(patron_store::testing::fresh_postgres_url()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    crash_run(dir.path(), &url);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// How a request ended for the till that sent it.
#[derive(Debug, Clone)]
enum Outcome {
    /// A 2xx came back: the checkout or transaction id, and the receipt number.
    Acked { id: String, number: Option<String> },
    /// Refused (4xx): status and code.
    Refused(u16, String),
    /// No answer: the server was down, or died with the request in flight.
    Lost(NoAnswer),
}

/// Why no answer came.
#[derive(Debug, Clone, Copy, PartialEq)]
enum NoAnswer {
    /// No connection: nothing was sent.
    ServerDown,
    /// Sent; the connection died before the whole answer came back.
    InFlight,
}

#[derive(Debug, Clone)]
struct Request {
    kind: &'static str,
    path: String,
    body: Value,
    key: String,
    outcome: Outcome,
}

struct Till {
    client: reqwest::Client,
    base: Arc<RwLock<String>>,
    token: String,
}

impl Till {
    async fn send(&self, path: &str, body: &Value) -> Result<(StatusCode, Value), NoAnswer> {
        let base = self.base.read().unwrap().clone();
        let res = self
            .client
            .post(format!("{base}/api/v1{path}"))
            .bearer_auth(&self.token)
            .json(body)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    NoAnswer::ServerDown
                } else {
                    NoAnswer::InFlight
                }
            })?;
        let status = res.status();
        // A 2xx whose body never arrived is no answer: the till cannot know the receipt.
        let text = res.text().await.map_err(|_| NoAnswer::InFlight)?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }
}

fn outcome(kind: &str, r: &Result<(StatusCode, Value), NoAnswer>) -> Outcome {
    match r {
        Err(e) => Outcome::Lost(*e),
        Ok((s, v)) if s.is_success() => acked(kind, v),
        Ok((s, v)) => Outcome::Refused(
            s.as_u16(),
            v["error"]["code"].as_str().unwrap_or("?").to_string(),
        ),
    }
}

fn acked(kind: &str, v: &Value) -> Outcome {
    if kind == "checkout" {
        Outcome::Acked {
            id: v["checkout_id"].as_str().unwrap().to_string(),
            number: Some(v["number"].as_str().unwrap().to_string()),
        }
    } else {
        Outcome::Acked {
            id: v["txn_id"].as_str().unwrap().to_string(),
            number: None,
        }
    }
}

fn replayed(v: &Value) -> bool {
    v["replayed"] == true || v["ledger"]["replayed"] == true
}

/// The shop: pay by card without a PIN, three dishes, eight members with ¥2,000 (+ bonus)
/// and 2,000 points each. Returns the owner's token, the cards and the dishes.
async fn seed_shop(base: &str) -> (String, Vec<String>, Vec<String>) {
    let client = reqwest::Client::new();
    let api = format!("{base}/api/v1");
    let login: Value = client
        .post(format!("{api}/auth/login"))
        .json(
            &json!({"tenant": "shop", "username": "owner", "password": PASSWORD, "store": "main"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap().to_string();
    let call = |method: reqwest::Method, path: &str, body: Value| {
        let rb = client
            .request(method, format!("{api}{path}"))
            .bearer_auth(&token)
            .json(&body);
        async move {
            let res = rb.send().await.unwrap();
            let s = res.status();
            let v: Value = res.json().await.unwrap();
            assert!(s.is_success(), "{s} {v}");
            v
        }
    };
    let mut settings = call(reqwest::Method::GET, "/settings", Value::Null).await;
    settings["pin_required"] = json!(false);
    call(reqwest::Method::PUT, "/settings", settings).await;
    let cat = call(
        reqwest::Method::POST,
        "/menu/categories",
        json!({"name": "热菜"}),
    )
    .await;
    let mut items = Vec::new();
    for (name, price) in [("红烧肉", 6_800), ("清蒸鲈鱼", 12_800), ("米饭", 300)] {
        let i = call(
            reqwest::Method::POST,
            "/menu/items",
            json!({"category_id": cat["id"], "name": name, "price": price}),
        )
        .await;
        items.push(i["id"].as_str().unwrap().to_string());
    }
    let mut cards = Vec::new();
    for i in 0..CARDS {
        let c = call(
            reqwest::Method::POST,
            "/customers",
            json!({"name": format!("会员{i}"), "phone": format!("1390000000{i}")}),
        )
        .await;
        let card = call(
            reqwest::Method::POST,
            "/cards",
            json!({"customer_id": c["id"]}),
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_string();
        call(
            reqwest::Method::POST,
            &format!("/cards/{card}/top-ups"),
            json!({"amount": 200_000, "tender": "cash", "idempotency_key": format!("seed-top-up-{i}")}),
        )
        .await;
        call(
            reqwest::Method::POST,
            &format!("/cards/{card}/adjustments"),
            json!({"balance": "points", "amount": 2_000, "reason": "开卡赠送",
                   "idempotency_key": format!("seed-points-{i}")}),
        )
        .await;
        cards.push(card);
    }
    (token, cards, items)
}

/// One request of a till: a checkout (stored value, or cash and WeChat with the card for
/// points; sometimes points as cash) or a top-up, each with its own idempotency key.
fn next_request(
    rng: &mut StdRng,
    cards: &[String],
    items: &[String],
) -> (&'static str, String, Value) {
    let card = &cards[rng.random_range(0..cards.len())];
    let key = uuid::Uuid::now_v7().to_string();
    if rng.random_range(0..10) < 7 {
        let mut lines = vec![json!({"item_id": items[rng.random_range(0..2)], "quantity": 1})];
        if rng.random_bool(0.5) {
            lines.push(json!({"item_id": items[2], "quantity": rng.random_range(1..5)}));
        }
        let method = ["stored_value", "stored_value", "cash", "wechat"][rng.random_range(0..4)];
        let mut body = json!({"lines": lines, "card_id": card, "tenders": [{"method": method}],
                              "idempotency_key": key});
        if rng.random_range(0..4) == 0 {
            body["points"] = json!(100 * rng.random_range(1..10));
        }
        ("checkout", "/checkouts".into(), body)
    } else {
        let tender = ["cash", "wechat", "alipay"][rng.random_range(0..3)];
        let body = json!({"amount": 5_000 * rng.random_range(1..4), "tender": tender,
                          "idempotency_key": key});
        ("top_up", format!("/cards/{card}/top-ups"), body)
    }
}

fn crash_run(dir: &Path, db: &str) {
    let kills = env_u64("PATRON_CRASH_KILLS").unwrap_or(3);
    let seed = env_u64("PATRON_CRASH_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    let backend = if db.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "crash test on {backend}: {kills} kills, seed {seed} (PATRON_CRASH_SEED={seed} repeats the choices)"
    );
    let mut rng = StdRng::seed_from_u64(seed);
    init(dir, db, "shop");
    let rt = runtime();
    let server = |dir: &Path| -> (Child, String) {
        let (child, url, _) = serve(dir, db, &["--jobs-interval", "0"]);
        (child, url)
    };
    let (mut child, url) = server(dir);
    let (token, cards, items) = rt.block_on(seed_shop(&url));

    // The load: tills send until told to stop, whatever happens to the server.
    let base = Arc::new(RwLock::new(url));
    let stop = Arc::new(AtomicBool::new(false));
    let log: Arc<Mutex<Vec<Request>>> = Arc::default();
    let faults: Arc<Mutex<Vec<String>>> = Arc::default();
    // Answers received (2xx or refusals): kills wait for traffic, not for a time.
    let answered = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::new();
    let tills: Vec<_> = (0..TILLS)
        .map(|i| {
            let till = Till {
                client: client.clone(),
                base: base.clone(),
                token: token.clone(),
            };
            let (stop, log, faults) = (stop.clone(), log.clone(), faults.clone());
            let answered = answered.clone();
            let (cards, items) = (cards.clone(), items.clone());
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(1 + i as u64));
            rt.spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let (kind, path, body) = next_request(&mut rng, &cards, &items);
                    let r = till.send(&path, &body).await;
                    if let Ok((s, v)) = &r
                        && s.is_server_error()
                    {
                        faults
                            .lock()
                            .unwrap()
                            .push(format!("{kind} {path} {body} → {s} {v}"));
                    }
                    let outcome = outcome(kind, &r);
                    let lost = matches!(outcome, Outcome::Lost(_));
                    if !lost {
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    log.lock().unwrap().push(Request {
                        kind,
                        path,
                        key: body["idempotency_key"].as_str().unwrap().to_string(),
                        body,
                        outcome,
                    });
                    if lost {
                        // The server is down: wait for it rather than spin.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            })
        })
        .collect();
    // Kill at random moments under load: after a random number of answers since the start
    // (so each server life sees traffic however slow the machine), then a random delay.
    // Restart on the same database, except after the last kill (the books are read with
    // the server down, then it is started for the retries).
    for k in 1..=kills {
        let until = answered.load(Ordering::SeqCst) + rng.random_range(5..40);
        let waited = std::time::Instant::now();
        while answered.load(Ordering::SeqCst) < until {
            assert!(
                waited.elapsed() < Duration::from_secs(300),
                "the server answers nothing"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(0..200)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if k < kills {
            let (c, url) = server(dir);
            child = c;
            *base.write().unwrap() = url;
        }
    }
    stop.store(true, Ordering::SeqCst);
    for t in tills {
        rt.block_on(t).unwrap();
    }
    let log = log.lock().unwrap().clone();
    let faults = faults.lock().unwrap().clone();
    assert!(faults.is_empty(), "server errors:\n{}", faults.join("\n"));

    // With the server down: what is in the database for each key.
    let (tenant, before) = rt.block_on(async {
        let s = patron_store::connect(db).await.unwrap();
        let tenant = s.tenant_by_code("shop").await.unwrap().unwrap().id;
        let mut found = Vec::new();
        for r in &log {
            found.push(
                s.txn_by_key(tenant, &r.key)
                    .await
                    .unwrap()
                    .map(|t| t.id.to_string()),
            );
        }
        (tenant, found)
    });
    for (r, found) in log.iter().zip(&before) {
        match &r.outcome {
            Outcome::Acked { id, .. } => assert_eq!(
                found.as_ref(),
                Some(id),
                "{} {} was answered 2xx but is not in the database under its key",
                r.kind,
                r.key
            ),
            Outcome::Refused(s, code) => assert!(
                found.is_none(),
                "{} {} was refused ({s} {code}) but is in the database",
                r.kind,
                r.key
            ),
            Outcome::Lost(NoAnswer::ServerDown) => assert!(
                found.is_none(),
                "{} {} was never sent but is in the database",
                r.kind,
                r.key
            ),
            Outcome::Lost(NoAnswer::InFlight) => {}
        }
    }

    // Restart; every acknowledged bill is there; every request again with its key.
    let (mut child, url) = server(dir);
    let till = Till {
        client,
        base: Arc::new(RwLock::new(url)),
        token,
    };
    let mut after_retry: Vec<Option<String>> = Vec::new();
    let mut summary: BTreeMap<String, u64> = BTreeMap::new();
    rt.block_on(async {
        for r in &log {
            if let (
                "checkout",
                Outcome::Acked {
                    id,
                    number: Some(n),
                },
            ) = (r.kind, &r.outcome)
            {
                let base = till.base.read().unwrap().clone();
                let v: Value = till
                    .client
                    .get(format!("{base}/api/v1/checkouts/{id}"))
                    .bearer_auth(&till.token)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(v["number"].as_str(), Some(n.as_str()), "{v}");
            }
        }
        for (r, found) in log.iter().zip(&before) {
            let first = till.send(&r.path, &r.body).await;
            let (s, v) = first.unwrap_or_else(|e| panic!("retry of {} {}: {e:?}", r.kind, r.key));
            assert!(
                !s.is_server_error(),
                "retry of {} {} → {s} {v}",
                r.kind,
                r.key
            );
            let class = match (&r.outcome, found) {
                (Outcome::Acked { .. }, _) => "acked",
                (Outcome::Refused(..), _) => "refused",
                (Outcome::Lost(NoAnswer::ServerDown), _) => "sent while the server was down",
                (Outcome::Lost(NoAnswer::InFlight), Some(_)) => "in flight at the kill, committed",
                (Outcome::Lost(NoAnswer::InFlight), None) => "in flight at the kill, not committed",
            };
            *summary.entry(format!("{} {class}", r.kind)).or_default() += 1;
            match (&r.outcome, found) {
                // Done before: the same result, replayed.
                (Outcome::Acked { id, number }, _) => {
                    assert!(
                        s.is_success() && replayed(&v),
                        "retry of acked {} → {s} {v}",
                        r.key
                    );
                    let Outcome::Acked {
                        id: again,
                        number: n2,
                    } = acked(r.kind, &v)
                    else {
                        unreachable!()
                    };
                    assert_eq!((&again, &n2), (id, number), "retry of {} {}", r.kind, r.key);
                    after_retry.push(Some(again));
                }
                (Outcome::Lost(_) | Outcome::Refused(..), Some(txn)) => {
                    assert!(
                        s.is_success() && replayed(&v),
                        "retry of committed {} → {s} {v}",
                        r.key
                    );
                    let Outcome::Acked { id: again, .. } = acked(r.kind, &v) else {
                        unreachable!()
                    };
                    assert_eq!(&again, txn, "retry of {} {}", r.kind, r.key);
                    after_retry.push(Some(again));
                }
                // Never done: done now (once: a second retry replays it), or refused.
                (_, None) => {
                    if s.is_success() {
                        assert!(!replayed(&v), "nothing to replay for {}: {v}", r.key);
                        let Outcome::Acked { id, .. } = acked(r.kind, &v) else {
                            unreachable!()
                        };
                        let (s2, v2) = till.send(&r.path, &r.body).await.unwrap();
                        assert!(s2.is_success() && replayed(&v2), "{s2} {v2}");
                        assert_eq!(acked(r.kind, &v2).id(), Some(&id));
                        *summary
                            .entry(format!("{} performed on retry", r.kind))
                            .or_default() += 1;
                        after_retry.push(Some(id));
                    } else {
                        assert!(
                            matches!(s, StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY),
                            "retry of {} {} → {s} {v}",
                            r.kind,
                            r.key
                        );
                        *summary
                            .entry(format!("{} refused on retry", r.kind))
                            .or_default() += 1;
                        after_retry.push(None);
                    }
                }
            }
        }
    });
    assert!(
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap()
            .success()
    );
    assert!(child.wait().unwrap().success());

    // The books, with the server down again.
    rt.block_on(check_books(db, tenant, &log, &after_retry));
    let o = patron(dir, db, &["verify"]);
    assert!(
        o.status.success() && text(&o).contains("OK: no violations"),
        "{}",
        text(&o)
    );

    let acked = log
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Acked { .. }))
        .count();
    let lost = log
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Lost(_)))
        .count();
    let mut refusals: BTreeMap<String, u64> = BTreeMap::new();
    for r in &log {
        if let Outcome::Refused(s, code) = &r.outcome {
            *refusals.entry(format!("{s} {code}")).or_default() += 1;
        }
    }
    println!(
        "{backend}: {kills} SIGKILLs, {} requests: {acked} answered 2xx, {lost} without an answer, \
         refused {refusals:?}",
        log.len()
    );
    for (what, n) in &summary {
        println!("  {what:<48} {n}");
    }
    println!("  patron verify: OK");
}

impl Outcome {
    fn id(&self) -> Option<&String> {
        match self {
            Outcome::Acked { id, .. } => Some(id),
            _ => None,
        }
    }
}

/// Nothing lost, nothing doubled, nothing half written.
async fn check_books(
    db: &str,
    tenant: patron_domain::ids::TenantId,
    log: &[Request],
    after_retry: &[Option<String>],
) {
    let s = patron_store::connect(db).await.unwrap();
    // Each key: exactly the transaction the retries reported, or none.
    for (r, id) in log.iter().zip(after_retry) {
        let found = s
            .txn_by_key(tenant, &r.key)
            .await
            .unwrap()
            .map(|t| t.id.to_string());
        assert_eq!(&found, id, "{} {}", r.kind, r.key);
    }
    // Every checkout transaction has its bill, lines and visit, and its tenders add up to
    // the amount due; every top-up and checkout has entries.
    let accounts = s.all_accounts(tenant).await.unwrap();
    let kind_of: HashMap<uuid::Uuid, AccountKind> =
        accounts.iter().map(|a| (a.id, a.key.kind)).collect();
    let mut ids = Vec::new();
    loop {
        let page = s
            .txn_ids_after(tenant, ids.last().copied(), 10_000)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        ids.extend(page);
    }
    let mut checkouts = 0;
    for chunk in ids.chunks(500) {
        for t in s.txns(tenant, chunk).await.unwrap() {
            let entries = s.txn_entries(tenant, t.id).await.unwrap();
            if t.kind == "checkout" || t.kind == "top_up" {
                assert!(!entries.is_empty(), "{} {} has no entries", t.kind, t.id);
            }
            if t.kind == "checkout" {
                checkouts += 1;
                let c = s
                    .checkout(tenant, t.id)
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("checkout {} without its bill", t.id));
                assert!(!c.lines.is_empty(), "bill {} without lines", c.number);
                let paid: i64 = entries
                    .iter()
                    .map(|e| match kind_of[&e.account_id] {
                        AccountKind::Tender => e.amount,
                        k if k.customer_side() && k.unit() == Unit::Fen => -e.amount,
                        _ => 0,
                    })
                    .sum();
                assert_eq!(paid, c.amount_due, "bill {}", c.number);
            }
        }
    }
    // And the other way round, in SQL: no bill, line or visit without its transaction.
    let count = |sql: &'static str| sql_count(db, sql);
    assert_eq!(
        count("SELECT count(*) FROM checkouts").await,
        checkouts,
        "bills = checkout transactions"
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM checkouts c WHERE c.customer_id IS NOT NULL AND NOT EXISTS \
             (SELECT 1 FROM visits v WHERE v.tenant_id = c.tenant_id AND v.txn_id = c.id)"
        )
        .await,
        0,
        "a member's bill without its visit"
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM visits v WHERE v.txn_id IS NOT NULL AND NOT EXISTS \
             (SELECT 1 FROM ledger_txns t WHERE t.tenant_id = v.tenant_id AND t.id = v.txn_id)"
        )
        .await,
        0,
        "a visit without its transaction"
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM checkout_lines l WHERE NOT EXISTS \
             (SELECT 1 FROM checkouts c WHERE c.tenant_id = l.tenant_id AND c.id = l.checkout_id)"
        )
        .await,
        0,
        "a bill line without its bill"
    );
}

async fn sql_count(db: &str, sql: &'static str) -> i64 {
    use sqlx::Connection;
    if db.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(db).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::SqliteConnection::connect(db).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
    }
}
