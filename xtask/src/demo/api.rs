//! The few console API calls the demo makes, over real HTTP.

use anyhow::{anyhow, bail, Context, Result};
use protect::api::{AuditPage, DefenderInfo, DefenderList, TokenResponse};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A console reached at `base` (e.g. `http://127.0.0.1:8083`) as one user.
pub struct Console {
    pub base: String,
    bearer: String,
}

fn failed(what: &str, err: ureq::Error) -> anyhow::Error {
    match err {
        ureq::Error::Status(code, resp) => {
            let body = resp.into_string().unwrap_or_default();
            anyhow!("{what}: the console answered {code}: {body}")
        }
        other => anyhow!("{what}: {other}"),
    }
}

/// Waits until `GET /api/v1/_ping` answers.
pub fn wait_ready(base: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if ureq::get(&format!("{base}/api/v1/_ping")).call().is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the console at {base} did not answer /api/v1/_ping within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Console {
    /// `POST /api/v1/authenticate`.
    pub fn login(base: &str, user: &str, password: &str) -> Result<Console> {
        let token: TokenResponse = ureq::post(&format!("{base}/api/v1/authenticate"))
            .send_json(json!({"username": user, "password": password}))
            .map_err(|e| failed("authenticate", e))?
            .into_json()
            .context("reading the token")?;
        Ok(Console {
            base: base.to_string(),
            bearer: format!("Bearer {}", token.token),
        })
    }

    fn put(&self, path: &str, body: &Value, what: &str) -> Result<Value> {
        ureq::put(&format!("{}{path}", self.base))
            .set("Authorization", &self.bearer)
            .send_json(body)
            .map_err(|e| failed(what, e))?
            .into_json()
            .with_context(|| format!("{what}: reading the answer"))
    }

    fn post(&self, path: &str, body: &Value, what: &str) -> Result<Value> {
        ureq::post(&format!("{}{path}", self.base))
            .set("Authorization", &self.bearer)
            .send_json(body)
            .map_err(|e| failed(what, e))?
            .into_json()
            .with_context(|| format!("{what}: reading the answer"))
    }

    pub fn put_runtime_policy(&self, policy: &Value) -> Result<Value> {
        self.put(
            "/api/v1/policies/runtime/app-embedded",
            policy,
            "saving the runtime policy",
        )
    }

    pub fn put_cnaf_policy(&self, policy: &Value) -> Result<Value> {
        self.put(
            "/api/v1/policies/firewall/app/app-embedded",
            policy,
            "saving the CNAF policy",
        )
    }

    pub fn add_user(&self, user: &str, password: &str, role: &str) -> Result<Value> {
        self.post(
            "/api/v1/users",
            &json!({"username": user, "password": password, "role": role}),
            "creating a user",
        )
    }

    /// `GET /api/v1/defenders`: the defenders that have contacted the console.
    pub fn defenders(&self) -> Result<Vec<DefenderInfo>> {
        let list: DefenderList = ureq::get(&format!("{}/api/v1/defenders", self.base))
            .set("Authorization", &self.bearer)
            .call()
            .map_err(|e| failed("listing defenders", e))?
            .into_json()
            .context("reading the defender list")?;
        Ok(list.defenders)
    }

    /// All audits of one family (`runtime` or `firewall`), oldest first.
    pub fn audits(&self, firewall: bool) -> Result<Vec<protect::audit::AuditRecord>> {
        let path = if firewall {
            "/api/v1/audits/firewall/app/app-embedded"
        } else {
            "/api/v1/audits/runtime/app-embedded"
        };
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut req = ureq::get(&format!("{}{path}", self.base))
                .set("Authorization", &self.bearer)
                .query("limit", "500");
            if let Some(c) = &cursor {
                req = req.query("cursor", c);
            }
            let page: AuditPage = req
                .call()
                .map_err(|e| failed("reading audits", e))?
                .into_json()
                .context("reading audits")?;
            all.extend(page.audits);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        all.reverse();
        Ok(all)
    }
}

/// What the transform answered: the protected task definition and its `Warning` headers.
pub struct Protected {
    pub task: Value,
    pub warnings: Vec<String>,
}

/// The seed's Jenkins call, as written: `POST /api/v1/defenders/fargate.json?consoleaddr=ADDR`
/// with Basic auth and the task definition as the body, nothing else.
pub fn transform_basic(
    base: &str,
    consoleaddr: &str,
    user: &str,
    password: &str,
    task: &Value,
) -> Result<Protected> {
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let resp = ureq::post(&format!("{base}/api/v1/defenders/fargate.json"))
        .query("consoleaddr", consoleaddr)
        .set("Authorization", &format!("Basic {basic}"))
        .send_json(task)
        .map_err(|e| failed("transforming the task definition", e))?;
    let warnings = resp.all("Warning").into_iter().map(String::from).collect();
    let task = resp
        .into_json()
        .context("reading the protected task definition")?;
    Ok(Protected { task, warnings })
}
