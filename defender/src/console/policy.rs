//! Policy sync: fetch at start, then every poll interval with `If-None-Match`; every new policy
//! is saved to disk (the last good copy, used at the next start) and handed to the caller.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use protect::api::{DefenderIdentity, PolicyBundle};
use serde::{Deserialize, Serialize};

use super::http::{ConsoleHttp, Fetched};
use super::seal::SealKey;

/// The on-disk copy.
#[derive(Serialize, Deserialize)]
struct Cached {
    etag: Option<String>,
    bundle: PolicyBundle,
}

/// Why a cached copy was not used.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CacheMiss {
    /// No file (a fresh container).
    Absent,
    /// The file is there but its seal does not verify: written by someone without the key.
    Forged,
    /// Unreadable or not a valid policy.
    Invalid,
}

/// Loads the last good policy saved at `path`, if its seal verifies under `key`.
pub(crate) fn load_cache(
    path: &Path,
    key: &SealKey,
) -> Result<(PolicyBundle, Option<String>), CacheMiss> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(CacheMiss::Absent),
        Err(_) => return Err(CacheMiss::Invalid),
    };
    let body = key.open(&text).map_err(|_| CacheMiss::Forged)?;
    let cached: Cached = serde_json::from_str(&body).map_err(|_| CacheMiss::Invalid)?;
    cached
        .bundle
        .runtime
        .validate()
        .map_err(|_| CacheMiss::Invalid)?;
    Ok((cached.bundle, cached.etag))
}

pub(crate) fn save_cache(
    path: &Path,
    key: &SealKey,
    bundle: &PolicyBundle,
    etag: Option<&str>,
) -> std::io::Result<()> {
    let body = serde_json::to_string(&Cached {
        etag: etag.map(str::to_string),
        bundle: bundle.clone(),
    })
    .map_err(std::io::Error::other)?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, key.seal(&body))?;
    std::fs::rename(&tmp, path)
}

/// What the poller knows, shared with [`super::Console`].
#[derive(Default)]
pub(crate) struct PolicyState {
    pub(crate) current: Option<PolicyBundle>,
    pub(crate) etag: Option<String>,
    /// The console answered (200 or 304) at least once since start.
    pub(crate) confirmed: bool,
    pub(crate) stopping: bool,
}

pub(crate) type Shared = Arc<(Mutex<PolicyState>, Condvar)>;

pub(crate) struct Poller {
    pub(crate) http: ConsoleHttp,
    pub(crate) identity: DefenderIdentity,
    pub(crate) interval: Duration,
    pub(crate) cache: PathBuf,
    pub(crate) cache_key: SealKey,
    pub(crate) shared: Shared,
    pub(crate) on_policy: Box<dyn Fn(&PolicyBundle) + Send>,
}

impl Poller {
    pub(crate) fn run(self) {
        let mut last_error: Option<String> = None;
        loop {
            let etag = self.shared.0.lock().ok().and_then(|s| s.etag.clone());
            let ok = match self.http.fetch_policy(&self.identity, etag.as_deref()) {
                Ok(Fetched::Unchanged) => {
                    self.confirm(None);
                    true
                }
                Ok(Fetched::New { bundle, etag }) => {
                    if let Err(e) =
                        save_cache(&self.cache, &self.cache_key, &bundle, etag.as_deref())
                    {
                        crate::say!(
                            "defender: cannot keep the policy in {}: {e}",
                            self.cache.display()
                        );
                    }
                    (self.on_policy)(&bundle);
                    crate::say!(
                        "defender: policy from the console: runtime revision {}, {} rule(s); CNAF revision {}",
                        bundle.runtime.revision,
                        bundle.runtime.rules.len(),
                        bundle.cnaf.revision
                    );
                    self.confirm(Some((bundle, etag)));
                    true
                }
                Err(e) => {
                    let text = e.to_string();
                    if last_error.as_deref() != Some(&text) {
                        crate::say!(
                            "defender: cannot fetch the policy (keeping the last good one): {text}"
                        );
                        last_error = Some(text);
                    }
                    false
                }
            };
            if ok {
                last_error = None;
            }
            // Until the console has answered once, retry sooner than the poll interval.
            let confirmed = self.shared.0.lock().map(|s| s.confirmed).unwrap_or(true);
            let wait = if confirmed {
                self.interval
            } else {
                self.interval.min(Duration::from_secs(1))
            };
            if self.sleep(wait) {
                return;
            }
        }
    }

    fn confirm(&self, new: Option<(PolicyBundle, Option<String>)>) {
        let (lock, cond) = &*self.shared;
        if let Ok(mut s) = lock.lock() {
            if let Some((bundle, etag)) = new {
                s.current = Some(bundle);
                s.etag = etag;
            }
            s.confirmed = true;
            cond.notify_all();
        }
    }

    /// Sleeps up to `d`; true when asked to stop.
    fn sleep(&self, d: Duration) -> bool {
        let (lock, cond) = &*self.shared;
        let deadline = Instant::now() + d;
        let Ok(mut s) = lock.lock() else {
            return true;
        };
        loop {
            if s.stopping {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            s = match cond.wait_timeout(s, left) {
                Ok((g, _)) => g,
                Err(_) => return true,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle() -> PolicyBundle {
        serde_json::from_value(serde_json::json!({
            "runtime": {"revision": 3, "rules": []},
            "cnaf": {"revision": 1, "rules": []}
        }))
        .unwrap_or_else(|e| panic!("bundle: {e}"))
    }

    #[test]
    fn a_sealed_copy_reads_back_only_under_its_key() {
        let dir = std::env::temp_dir().join(format!("defender-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let path = dir.join("policy.json");
        let key = SealKey::from_token("cdt_one");
        assert_eq!(load_cache(&path, &key).err(), Some(CacheMiss::Absent));
        save_cache(&path, &key, &bundle(), Some("\"r3\"")).unwrap_or_else(|e| panic!("{e}"));
        let (b, etag) = load_cache(&path, &key).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(b.runtime.revision, 3);
        assert_eq!(etag.as_deref(), Some("\"r3\""));
        let other = SealKey::from_token("cdt_two");
        assert_eq!(load_cache(&path, &other).err(), Some(CacheMiss::Forged));
        std::fs::write(&path, "{\"etag\":null,\"bundle\":{}}").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(load_cache(&path, &key).err(), Some(CacheMiss::Forged));
        std::fs::write(&path, key.seal("{}")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(load_cache(&path, &key).err(), Some(CacheMiss::Invalid));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
