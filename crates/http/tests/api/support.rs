//! Shared helpers: a real server on an ephemeral port over a fresh database.

use patron_app::App;
use patron_app::auth::InitRequest;
use patron_store::Storage;
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub token: String,
    pub app: App,
    pub tenant_id: patron_domain::ids::TenantId,
    _guard: Option<Box<dyn std::any::Any + Send>>,
}

pub enum Db {
    Sqlite,
    Postgres,
}

/// A fresh database of the given kind, or None (PostgreSQL unreachable: skipped).
pub async fn fresh(db: Db) -> Option<(Arc<dyn Storage>, Option<Box<dyn std::any::Any + Send>>)> {
    match db {
        Db::Sqlite => {
            let (s, guard) = patron_store::testing::fresh_sqlite().await;
            Some((s, Some(Box::new(guard))))
        }
        Db::Postgres => patron_store::testing::fresh_postgres()
            .await
            .map(|s| (s, None)),
    }
}

/// Starts the server with one tenant ("t1") and logs its owner in.
pub async fn spawn(db: Db) -> Option<TestApp> {
    let (storage, guard) = fresh(db).await?;
    let app = App::new(storage, b"test-key-test-key-test-key-test-key".to_vec());
    let init = app.init_tenant(init_request("t1")).await.expect("init");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(patron_http::serve(
        app.clone(),
        listener,
        std::future::pending(),
    ));
    let base = format!("http://{addr}/api/v1");
    let client = Client::new();
    let token = login(&client, &base, "t1").await;
    Some(TestApp {
        base,
        client,
        token,
        app,
        tenant_id: init.tenant.id,
        _guard: guard,
    })
}

pub fn init_request(code: &str) -> InitRequest {
    InitRequest {
        tenant_code: code.into(),
        tenant_name: format!("Tenant {code}"),
        store_code: "main".into(),
        store_name: "总店".into(),
        username: "owner".into(),
        display_name: "Owner".into(),
        password: "correct horse battery".into(),
    }
}

pub async fn login(client: &Client, base: &str, tenant: &str) -> String {
    let res = client
        .post(format!("{base}/auth/login"))
        .json(&json!({"tenant": tenant, "username": "owner", "password": "correct horse battery", "store": "main"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string()
}

impl TestApp {
    pub async fn req(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.req_as(&self.token, method, path, body).await
    }

    pub async fn req_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut rb = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        decode(rb.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.req(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.req(Method::POST, path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.req(Method::PATCH, path, Some(body)).await
    }

    /// Creates a customer and returns its id.
    pub async fn customer(&self, body: Value) -> String {
        let (s, v) = self.post("/customers", body).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    /// A second tenant on the same server, logged in.
    pub async fn second_tenant(&self) -> String {
        self.app.init_tenant(init_request("t2")).await.unwrap();
        login(&self.client, &self.base, "t2").await
    }
}

pub async fn decode(res: Response) -> (StatusCode, Value) {
    let status = res.status();
    let text = res.text().await.unwrap();
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, v)
}

/// Generates one test per backend from an async fn taking `TestApp`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let t = $crate::support::spawn($crate::support::Db::Sqlite).await.unwrap();
                super::$name(t).await;
            })+
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some(t) = $crate::support::spawn($crate::support::Db::Postgres).await else { return };
                super::$name(t).await;
            })+
        }
    };
}
