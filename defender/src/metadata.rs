//! The ECS task metadata endpoint (version 4): which task and container this defender runs in.
//!
//! Fargate (platform 1.4.0+) sets `ECS_CONTAINER_METADATA_URI_V4` in every container. `GET $URI`
//! describes this container (`Name`, `Image`, `DockerId`); `GET $URI/task` the task (`TaskARN`,
//! `Family`, `Containers`). The defender reads both at start-up within a short budget
//! ([`STARTUP_BUDGET`]) so the app is never held up by a slow or broken endpoint; when that
//! fails, a background thread keeps trying (with backoff) and the values fill the audits as
//! soon as they arrive. The endpoint is plain HTTP on a link-local address; names are resolved
//! like the console's ([`crate::console::resolve`]), never through `getaddrinfo`.
//!
//! ```text
//! let lookup = Lookup::from_env();                 // None outside ECS
//! let known = lookup.as_ref().and_then(|l| l.wait(STARTUP_BUDGET));
//! ... fill empty scope fields from `known` ...
//! lookup.then(move |m| auditor.learn(&m));         // when `known` was None: late arrival
//! ```

use std::io::Read;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::console::resolve::{resolve, ResolverConfig};

/// The environment variable Fargate sets to the endpoint's base URL.
pub const ENV_URI: &str = "ECS_CONTAINER_METADATA_URI_V4";

/// How long the app may wait for the endpoint at start-up.
pub const STARTUP_BUDGET: Duration = Duration::from_millis(800);

/// Largest response accepted (a task document lists every container: a few KiB each).
const MAX_BODY_BYTES: u64 = 1 << 20;

/// Background retries: first after this long, doubling up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// Per-request timeout of the background retries.
const RETRY_TIMEOUT: Duration = Duration::from_secs(5);

/// What the endpoint says about this container's task.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskMetadata {
    pub task_arn: String,
    pub family: String,
    /// This container's name in the task definition.
    pub container: String,
    pub image: String,
}

/// Why the metadata could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("{ENV_URI} {uri:?}: not an http:// URL")]
    BadUri { uri: String },
    #[error("GET {url}: {reason}")]
    Transport { url: String, reason: String },
    #[error("GET {url}: the endpoint answered {status}")]
    Status { url: String, status: u16 },
    #[error("GET {url}: not ECS task metadata v4 JSON ({reason})")]
    BadBody { url: String, reason: String },
}

/// `GET $URI/task` (only the fields the defender uses; the rest is ignored).
#[derive(Debug, Deserialize)]
struct TaskDoc {
    #[serde(rename = "TaskARN")]
    task_arn: String,
    #[serde(rename = "Family", default)]
    family: String,
    #[serde(rename = "Containers", default)]
    containers: Vec<ContainerDoc>,
}

/// `GET $URI`, and each entry of the task's `Containers`.
#[derive(Debug, Deserialize)]
struct ContainerDoc {
    #[serde(rename = "DockerId", default)]
    docker_id: String,
    #[serde(rename = "Name", default)]
    name: String,
    #[serde(rename = "Image", default)]
    image: String,
}

/// Reads both documents from the endpoint at `base`, both requests together within `timeout`.
pub fn fetch(base: &str, timeout: Duration) -> Result<TaskMetadata, MetadataError> {
    let base = base.trim().trim_end_matches('/');
    if !base.starts_with("http://") {
        return Err(MetadataError::BadUri {
            uri: base.to_string(),
        });
    }
    let deadline = Instant::now() + timeout;
    let resolver = ResolverConfig {
        timeout: timeout.min(Duration::from_secs(2)),
        ..ResolverConfig::default()
    };
    let agent = ureq::AgentBuilder::new()
        // ureq's own connect timeout (30 s) would win over the per-request deadline.
        .timeout_connect(timeout)
        .redirects(0)
        .user_agent(concat!("defender/", env!("CARGO_PKG_VERSION")))
        .resolver(move |addr: &str| resolve(&resolver, addr))
        .build();
    let container: ContainerDoc = get_json(&agent, base, deadline)?;
    let task_url = format!("{base}/task");
    let task: TaskDoc = get_json(&agent, &task_url, deadline)?;
    if task.task_arn.trim().is_empty() {
        return Err(MetadataError::BadBody {
            url: task_url,
            reason: "TaskARN is empty".into(),
        });
    }
    Ok(merge(container, task))
}

/// This container's entry of the task document (by Docker id) fills what the container
/// document lacks.
fn merge(container: ContainerDoc, task: TaskDoc) -> TaskMetadata {
    let listed = task
        .containers
        .into_iter()
        .find(|c| !container.docker_id.is_empty() && c.docker_id == container.docker_id);
    let pick = |own: String, from_task: Option<String>| {
        if own.is_empty() {
            from_task.unwrap_or_default()
        } else {
            own
        }
    };
    let (listed_name, listed_image) = match listed {
        Some(c) => (Some(c.name), Some(c.image)),
        None => (None, None),
    };
    TaskMetadata {
        task_arn: task.task_arn,
        family: task.family,
        container: pick(container.name, listed_name),
        image: pick(container.image, listed_image),
    }
}

fn get_json<T: serde::de::DeserializeOwned>(
    agent: &ureq::Agent,
    url: &str,
    deadline: Instant,
) -> Result<T, MetadataError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(MetadataError::Transport {
            url: url.to_string(),
            reason: "no time left".into(),
        });
    }
    let transport = |reason: String| MetadataError::Transport {
        url: url.to_string(),
        reason,
    };
    let resp = match agent.get(url).timeout(left).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(status, _)) => {
            return Err(MetadataError::Status {
                url: url.to_string(),
                status,
            })
        }
        Err(ureq::Error::Transport(t)) => {
            // ureq's text starts with the URL, which the error names already.
            let text = t.to_string();
            let prefix = format!("{url}: ");
            return Err(transport(
                text.strip_prefix(&prefix).unwrap_or(&text).to_string(),
            ));
        }
    };
    let mut body = Vec::new();
    resp.into_reader()
        .take(MAX_BODY_BYTES)
        .read_to_end(&mut body)
        .map_err(|e| transport(format!("reading the answer: {e}")))?;
    serde_json::from_slice(&body).map_err(|e| MetadataError::BadBody {
        url: url.to_string(),
        reason: e.to_string(),
    })
}

type LateHook = Box<dyn FnOnce(TaskMetadata) + Send>;

#[derive(Default)]
struct LookupState {
    found: Option<TaskMetadata>,
    /// The first attempt is over (found or failed): waiting longer gains nothing.
    first_done: bool,
    hook: Option<LateHook>,
}

/// A lookup running on its own thread until it succeeds.
pub struct Lookup {
    shared: Arc<(Mutex<LookupState>, Condvar)>,
}

impl Lookup {
    /// Starts reading the endpoint named by [`ENV_URI`]; `None` when it is not set (not on
    /// ECS, or a platform version without it).
    pub fn from_env() -> Option<Lookup> {
        let uri = std::env::var(ENV_URI)
            .ok()
            .filter(|u| !u.trim().is_empty())?;
        Some(Lookup::start(uri))
    }

    /// Starts reading the endpoint at `uri`: a first attempt within [`STARTUP_BUDGET`], then
    /// retries with backoff until one succeeds. Failures are logged on stderr (each distinct
    /// error once).
    pub fn start(uri: String) -> Lookup {
        let shared: Arc<(Mutex<LookupState>, Condvar)> = Arc::default();
        let worker = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("ecs-metadata".into())
            .spawn(move || retry_until_found(&uri, &worker));
        if let Err(e) = spawned {
            crate::say!("defender: ECS task metadata: cannot start the lookup thread: {e}");
        }
        Lookup { shared }
    }

    /// Waits at most `timeout` for the first attempt's answer.
    pub fn wait(&self, timeout: Duration) -> Option<TaskMetadata> {
        let (lock, cond) = &*self.shared;
        let state = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let (state, _) = cond
            .wait_timeout_while(state, timeout, |s| !s.first_done)
            .unwrap_or_else(PoisonError::into_inner);
        state.found.clone()
    }

    /// Runs `hook` with the metadata once it is known: at once if it is already, else on the
    /// lookup thread when it arrives.
    pub fn then(&self, hook: impl FnOnce(TaskMetadata) + Send + 'static) {
        let (lock, _) = &*self.shared;
        let mut state = lock.lock().unwrap_or_else(PoisonError::into_inner);
        match state.found.clone() {
            Some(found) => {
                drop(state);
                hook(found);
            }
            None => state.hook = Some(Box::new(hook)),
        }
    }
}

fn retry_until_found(uri: &str, shared: &(Mutex<LookupState>, Condvar)) {
    let started = Instant::now();
    let mut timeout = STARTUP_BUDGET;
    let mut pause = RETRY_FIRST;
    let mut last_error = String::new();
    let mut attempts = 0u32;
    let found = loop {
        attempts += 1;
        let result = fetch(uri, timeout);
        if attempts == 1 && result.is_err() {
            let (lock, cond) = shared;
            lock.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .first_done = true;
            cond.notify_all();
        }
        match result {
            Ok(found) => break found,
            Err(e) => {
                let text = e.to_string();
                if text != last_error {
                    crate::say!(
                        "defender: ECS task metadata: {text}; audits go without the task ARN \
                         until it answers (retrying in the background)"
                    );
                    last_error = text;
                }
                if matches!(e, MetadataError::BadUri { .. }) {
                    return;
                }
            }
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(RETRY_MAX);
        timeout = RETRY_TIMEOUT;
    };
    if attempts > 1 {
        crate::say!(
            "defender: ECS task metadata: task {} (after {attempts} attempts, {:.1} s)",
            found.task_arn,
            started.elapsed().as_secs_f64()
        );
    }
    let (lock, cond) = shared;
    let mut state = lock.lock().unwrap_or_else(PoisonError::into_inner);
    state.found = Some(found.clone());
    state.first_done = true;
    let hook = state.hook.take();
    drop(state);
    cond.notify_all();
    if let Some(hook) = hook {
        hook(found);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_containers_entry_fills_what_its_own_document_lacks() {
        let container: ContainerDoc =
            serde_json::from_str(r#"{"DockerId":"abc-1","Name":"","Image":"","Labels":{"x":"y"}}"#)
                .expect("container");
        let task: TaskDoc = serde_json::from_str(
            r#"{"TaskARN":"arn:aws:ecs:eu-west-1:210987654321:task/c/1f2e","Family":"web",
                "Containers":[{"DockerId":"zzz","Name":"other","Image":"o:1"},
                              {"DockerId":"abc-1","Name":"app","Image":"app:2"}]}"#,
        )
        .expect("task");
        let m = merge(container, task);
        assert_eq!(
            m,
            TaskMetadata {
                task_arn: "arn:aws:ecs:eu-west-1:210987654321:task/c/1f2e".into(),
                family: "web".into(),
                container: "app".into(),
                image: "app:2".into(),
            }
        );
    }

    #[test]
    fn a_task_document_without_an_arn_is_refused() {
        let e = serde_json::from_str::<TaskDoc>(r#"{"Family":"web"}"#).expect_err("refused");
        assert!(e.to_string().contains("missing field `TaskARN`"), "{e}");
    }

    #[test]
    fn an_endpoint_that_never_completes_the_connect_costs_the_budget_only() {
        // A loopback listener whose accept queue is full drops further SYNs: connects hang.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        let addr = listener.local_addr().expect("addr");
        let mut queued = Vec::new();
        for _ in 0..4096 {
            match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(s) => queued.push(s),
                Err(_) => break,
            }
        }
        let start = Instant::now();
        let e = fetch(&format!("http://{addr}/v4/x"), Duration::from_millis(300))
            .expect_err("no answer");
        assert!(matches!(e, MetadataError::Transport { .. }), "{e}");
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}: {e}",
            start.elapsed()
        );
        drop(queued);
    }

    #[test]
    fn only_http_urls_are_used() {
        let e =
            fetch("https://169.254.170.2/v4/x", Duration::from_millis(50)).expect_err("refused");
        assert_eq!(
            e.to_string(),
            "ECS_CONTAINER_METADATA_URI_V4 \"https://169.254.170.2/v4/x\": not an http:// URL"
        );
    }
}
