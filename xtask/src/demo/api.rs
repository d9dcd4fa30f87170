//! The few console API calls the demo makes, over real HTTP.

use anyhow::{anyhow, bail, Context, Result};
use protect::api::{AuditPage, InstallBundle, TokenResponse};
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

    pub fn install_bundle(&self, name: &str) -> Result<InstallBundle> {
        let v = self.post(
            "/api/v1/defenders/install-bundle",
            &json!({"name": name}),
            "creating a defender credential",
        )?;
        serde_json::from_value(v).context("reading the install bundle")
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

/// The Jenkins-style transform call: Basic auth, the task definition as the body.
pub fn transform_basic(base: &str, user: &str, password: &str, task: &Value) -> Result<Value> {
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    ureq::post(&format!("{base}/api/v1/defenders/fargate.json"))
        .query("consoleaddr", base)
        .set("Authorization", &format!("Basic {basic}"))
        .send_json(task)
        .map_err(|e| failed("transforming the task definition", e))?
        .into_json()
        .context("reading the protected task definition")
}
