//! The console's two defender routes over HTTP(S): a blocking `ureq` agent (rustls with the
//! bundled Mozilla roots, so no system OpenSSL or certificate store) whose name resolution is
//! [`super::resolve`] — never `getaddrinfo`.

use std::time::Duration;

use protect::api::{
    AuditBatch, AuditBatchAck, DefenderIdentity, PolicyBundle, DEFENDER_AUDITS_PATH,
    DEFENDER_POLICY_PATH,
};

use super::resolve::{resolve, ResolverConfig};
use super::ConsoleError;

/// What a policy fetch returned.
#[derive(Debug)]
pub enum Fetched {
    /// A new policy with its ETag.
    New {
        bundle: PolicyBundle,
        etag: Option<String>,
    },
    /// `304 Not Modified`.
    Unchanged,
}

/// A console endpoint with its credential.
#[derive(Clone)]
pub struct ConsoleHttp {
    agent: ureq::Agent,
    base: String,
    authorization: String,
}

/// Largest policy response accepted.
const MAX_POLICY_BYTES: u64 = 4 << 20;

impl ConsoleHttp {
    /// An agent for `base` (e.g. `https://console.example.com`), with `token`.
    pub fn new(base: &str, token: &str, timeout: Duration) -> Result<ConsoleHttp, ConsoleError> {
        let base = base.trim_end_matches('/').to_string();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(ConsoleError::Config(format!(
                "DEFENDER_CONSOLE_URL {base:?}: must start with https:// or http://"
            )));
        }
        let resolver = ResolverConfig::default();
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(timeout)
            .timeout(timeout)
            .redirects(0)
            .user_agent(concat!("defender/", env!("CARGO_PKG_VERSION")))
            .resolver(move |addr: &str| resolve(&resolver, addr))
            .build();
        Ok(ConsoleHttp {
            agent,
            base,
            authorization: format!("Bearer {token}"),
        })
    }

    /// `GET /api/v1/defender/policy` for `identity`, conditional on `etag`.
    pub fn fetch_policy(
        &self,
        identity: &DefenderIdentity,
        etag: Option<&str>,
    ) -> Result<Fetched, ConsoleError> {
        let mut req = self
            .agent
            .get(&format!("{}{DEFENDER_POLICY_PATH}", self.base))
            .set("Authorization", &self.authorization)
            .query("task", &identity.task)
            .query("container", &identity.container)
            .query("image", &identity.image)
            .query("version", &identity.version);
        if let Some(i) = &identity.instance {
            req = req.query("instance", i);
        }
        if let Some(e) = etag {
            req = req.set("If-None-Match", e);
        }
        let resp = req.call().map_err(http_error)?;
        if resp.status() == 304 {
            return Ok(Fetched::Unchanged);
        }
        if resp.status() != 200 {
            return Err(ConsoleError::Status {
                status: resp.status(),
                message: String::new(),
            });
        }
        let etag = resp.header("ETag").map(str::to_string);
        let mut body = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(resp.into_reader(), MAX_POLICY_BYTES),
            &mut body,
        )
        .map_err(|e| ConsoleError::Transport(format!("reading the policy: {e}")))?;
        let bundle: PolicyBundle =
            serde_json::from_slice(&body).map_err(|e| ConsoleError::BadPolicy(e.to_string()))?;
        bundle
            .runtime
            .validate()
            .map_err(|e| ConsoleError::BadPolicy(e.to_string()))?;
        Ok(Fetched::New { bundle, etag })
    }

    /// `POST /api/v1/defender/audits`.
    pub fn post_batch(&self, batch_json: &str) -> Result<AuditBatchAck, ConsoleError> {
        let resp = self
            .agent
            .post(&format!("{}{DEFENDER_AUDITS_PATH}", self.base))
            .set("Authorization", &self.authorization)
            .set("Content-Type", "application/json")
            .send_string(batch_json)
            .map_err(http_error)?;
        let text = resp
            .into_string()
            .map_err(|e| ConsoleError::Transport(format!("reading the answer: {e}")))?;
        serde_json::from_str(&text).map_err(|e| ConsoleError::Transport(format!("bad answer: {e}")))
    }
}

/// Serializes a batch (the spool keeps exactly these bytes, so a retry is the same batch).
pub fn batch_json(batch: &AuditBatch) -> Result<String, ConsoleError> {
    serde_json::to_string(batch)
        .map_err(|e| ConsoleError::Transport(format!("serialize batch: {e}")))
}

fn http_error(e: ureq::Error) -> ConsoleError {
    match e {
        ureq::Error::Status(status, resp) => {
            let message = resp
                .into_string()
                .ok()
                .and_then(|t| serde_json::from_str::<protect::api::ErrorBody>(&t).ok())
                .map(|b| b.error)
                .unwrap_or_default();
            ConsoleError::Status { status, message }
        }
        ureq::Error::Transport(t) => ConsoleError::Transport(t.to_string()),
    }
}
