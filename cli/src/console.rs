//! The console, as `deploy-protected` reaches it: where it is and the operator's credentials
//! (`--console-url`, `CONSOLE_URL`, `CONSOLE_USER` + `CONSOLE_PASSWORD` or `CONSOLE_TOKEN`),
//! and the three calls the CLI makes: the default defender image, the task's CNAF rule, and a
//! fresh defender credential.

use std::io::Read as _;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use protect::api::{
    CredentialInfo, CredentialList, DefenderDefaults, ErrorBody, InstallBundle,
    InstallBundleRequest, CNAF_POLICY_PATH, CREDENTIALS_PATH, DEFENDER_DEFAULTS_PATH,
    INSTALL_BUNDLE_PATH,
};
use protect::cnaf_policy::{CnafPolicy, CnafRule};

/// How long one console call may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Largest console answer read.
const MAX_ANSWER_BYTES: u64 = 4 << 20;

/// The operator's credentials for the console.
#[derive(Clone)]
pub enum Login {
    /// `CONSOLE_USER` + `CONSOLE_PASSWORD` (HTTP Basic).
    Password { user: String, password: String },
    /// `CONSOLE_TOKEN` (a Bearer token from `POST /api/v1/authenticate`).
    Token(String),
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Login::Password { user, .. } => write!(f, "Password {{ user: {user:?}, .. }}"),
            Login::Token(_) => f.write_str("Token(..)"),
        }
    }
}

impl Login {
    /// From the values of `CONSOLE_USER`, `CONSOLE_PASSWORD` and `CONSOLE_TOKEN` (flags may
    /// stand in for the first and last). `None` when none is set; an error for half a pair.
    pub fn from_values(
        user: Option<&str>,
        password: Option<&str>,
        token: Option<&str>,
    ) -> Result<Option<Login>, ConsoleError> {
        let set = |v: Option<&str>| v.map(str::trim).filter(|v| !v.is_empty()).map(String::from);
        match (set(user), set(password), set(token)) {
            (_, _, Some(token)) => Ok(Some(Login::Token(token))),
            (Some(user), Some(password), None) => Ok(Some(Login::Password { user, password })),
            (Some(_), None, None) => Err(ConsoleError::Settings(
                "CONSOLE_USER is set but CONSOLE_PASSWORD is not; set both (or CONSOLE_TOKEN)"
                    .into(),
            )),
            (None, Some(_), None) => Err(ConsoleError::Settings(
                "CONSOLE_PASSWORD is set but CONSOLE_USER is not (--console-user); set both (or \
                 CONSOLE_TOKEN)"
                    .into(),
            )),
            (None, None, None) => Ok(None),
        }
    }

    fn authorization(&self) -> String {
        match self {
            Login::Password { user, password } => {
                format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
            }
            Login::Token(t) => format!("Bearer {t}"),
        }
    }
}

/// A console call failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The settings are incomplete or contradictory.
    #[error("{0}")]
    Settings(String),
    /// The console answered with an error.
    #[error("console {url}: {status}: {message}{hint}")]
    Refused {
        url: String,
        status: u16,
        message: String,
        hint: &'static str,
    },
    /// The console could not be reached or its answer read.
    #[error("console {url}: {message} (check --console-url / CONSOLE_URL and the network)")]
    Unreachable { url: String, message: String },
}

impl ConsoleError {
    /// A usage problem (exit 2) rather than a runtime failure (exit 1).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            ConsoleError::Settings(_)
                | ConsoleError::Refused {
                    status: 401 | 403,
                    ..
                }
        )
    }
}

/// The console and the operator's login.
#[derive(Clone, Debug)]
pub struct Console {
    base: String,
    login: Login,
    agent: ureq::Agent,
}

impl Console {
    /// A client for the console at `url` (`http(s)://HOST[:PORT][/PATH]`).
    pub fn new(url: &str, login: Login) -> Console {
        let agent = ureq::AgentBuilder::new()
            .timeout(TIMEOUT)
            .redirects(0)
            .user_agent(concat!("deploy-protected/", env!("CARGO_PKG_VERSION")))
            .build();
        Console {
            base: url.trim_end_matches('/').to_string(),
            login,
            agent,
        }
    }

    /// The console's default defender image (and version).
    pub fn defaults(&self) -> Result<DefenderDefaults, ConsoleError> {
        let req = self.request("GET", DEFENDER_DEFAULTS_PATH);
        self.json(DEFENDER_DEFAULTS_PATH, req.call())
    }

    /// The first enabled CNAF rule whose scope matches `family`, if any.
    pub fn cnaf_rule(&self, family: &str) -> Result<Option<CnafRule>, ConsoleError> {
        let req = self.request("GET", CNAF_POLICY_PATH);
        let policy: CnafPolicy = self.json(CNAF_POLICY_PATH, req.call())?;
        Ok(policy.rule_for_task(family).cloned())
    }

    /// A new defender credential named `name` (shown once; the console keeps its hash).
    /// A new defender credential named `name`, which speaks only for task family `family`
    /// (an unusable family name falls back to the console's default scope).
    pub fn install_bundle(&self, name: &str, family: &str) -> Result<InstallBundle, ConsoleError> {
        let body = InstallBundleRequest {
            name: Some(name.to_string()),
            scope: protect::credential::CredentialScope::task_family(family).ok(),
        };
        let text = serde_json::to_string(&body).unwrap_or_default();
        let req = self
            .request("POST", INSTALL_BUNDLE_PATH)
            .set("Content-Type", "application/json");
        self.json(INSTALL_BUNDLE_PATH, req.send_string(&text))
    }

    /// The defender credential `id` as the console lists it (`None`: the console has no such
    /// credential). Pages through the list, 1000 at a time.
    pub fn credential(&self, id: &str) -> Result<Option<CredentialInfo>, ConsoleError> {
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("{CREDENTIALS_PATH}?limit=1000");
            if let Some(c) = &cursor {
                path.push_str("&cursor=");
                path.push_str(
                    &percent_encoding::utf8_percent_encode(c, percent_encoding::NON_ALPHANUMERIC)
                        .to_string(),
                );
            }
            let page: CredentialList =
                self.json(CREDENTIALS_PATH, self.request("GET", &path).call())?;
            if let Some(found) = page.credentials.into_iter().find(|c| c.id == id) {
                return Ok(Some(found));
            }
            match page.next_cursor {
                Some(next) if cursor.as_deref() != Some(next.as_str()) => cursor = Some(next),
                _ => return Ok(None),
            }
        }
    }

    fn request(&self, method: &str, path: &str) -> ureq::Request {
        self.agent
            .request(method, &format!("{}{path}", self.base))
            .set("Authorization", &self.login.authorization())
            .set("Accept", "application/json")
    }

    fn json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        answer: Result<ureq::Response, ureq::Error>,
    ) -> Result<T, ConsoleError> {
        let url = format!("{}{path}", self.base);
        let unreachable = |message: String| ConsoleError::Unreachable {
            url: url.clone(),
            message,
        };
        match answer {
            Ok(resp) => {
                let mut text = String::new();
                std::io::Read::read_to_string(
                    &mut resp.into_reader().take(MAX_ANSWER_BYTES),
                    &mut text,
                )
                .map_err(|e| unreachable(format!("reading the answer: {e}")))?;
                serde_json::from_str(&text).map_err(|e| {
                    unreachable(format!("unexpected answer ({e}); is this the console?"))
                })
            }
            Err(ureq::Error::Status(status, resp)) => {
                let body = resp.into_string().unwrap_or_default();
                let message = serde_json::from_str::<ErrorBody>(&body)
                    .map(|e| e.error)
                    .unwrap_or_else(|_| body.chars().take(200).collect());
                let hint = match status {
                    401 => " (check CONSOLE_USER and CONSOLE_PASSWORD, or CONSOLE_TOKEN)",
                    403 => " (the console user needs the admin or defender-manager role)",
                    _ => "",
                };
                Err(ConsoleError::Refused {
                    url,
                    status,
                    message,
                    hint,
                })
            }
            Err(e) => Err(unreachable(e.to_string())),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn login_from_values() {
        assert!(Login::from_values(None, None, None).unwrap().is_none());
        assert!(matches!(
            Login::from_values(Some("u"), Some("p"), None).unwrap(),
            Some(Login::Password { .. })
        ));
        assert!(matches!(
            Login::from_values(Some("u"), Some("p"), Some("t")).unwrap(),
            Some(Login::Token(_))
        ));
        let e = Login::from_values(Some("u"), None, None).unwrap_err();
        assert!(e.to_string().contains("CONSOLE_PASSWORD"), "{e}");
        let e = Login::from_values(None, Some(" p"), None).unwrap_err();
        assert!(e.to_string().contains("CONSOLE_USER"), "{e}");
        let shown = format!(
            "{:?}",
            Login::Password {
                user: "ops".into(),
                password: "hunter2".into()
            }
        );
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
