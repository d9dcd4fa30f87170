//! [`LoginGuard`]: what keeps password checks from being a lever against the console.
//!
//! - Throttling: attempts are counted per username and per source address in a fixed window;
//!   past the limit a login gets 429 with `Retry-After` before any Argon2 work. An attempt
//!   counts from the moment it starts, so a burst of concurrent guesses cannot slip past the
//!   limit; a success takes its own attempt back and clears the user's count.
//! - A bound on concurrent Argon2 verifications (a semaphore): each holds `m_cost` KiB, so
//!   concurrency, not the request rate, sets the memory. A login that waits longer than
//!   `password_check_wait` for a slot gets 503 with `Retry-After`.
//! - A dummy hash with the configured parameters, verified for unknown users so that they take
//!   as long as known ones.
//! - A short memory of successful checks, keyed by a keyed SHA-256 of the credentials (never
//!   the password itself), so Basic auth on every request does not pay Argon2 each time.
//!
//! All of it is per instance: per local server process, per Lambda execution environment.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;
use crate::state::{Settings, CACHE_CAP};

/// Attempts in one window.
#[derive(Clone, Copy, Debug)]
struct Window {
    start: Instant,
    count: u32,
}

/// A successful check remembered.
#[derive(Clone, Debug)]
struct Verified {
    at: Instant,
    /// The PHC string the password matched: a changed password no longer matches it.
    phc: String,
}

/// Throttle, verification slots, dummy hash and remembered checks of one console instance.
pub(crate) struct LoginGuard {
    attempts: Mutex<HashMap<String, Window>>,
    slots: Arc<Semaphore>,
    /// Argon2 memory of finished checks, reused by the next ones (at most one per slot).
    buffers: Arc<Mutex<Vec<Vec<argon2::Block>>>>,
    dummy: OnceCell<String>,
    verified: Mutex<HashMap<[u8; 32], Verified>>,
    /// Random per instance: the cache key of a credential is not a plain hash of it.
    key: [u8; 32],
}

/// The right to run one Argon2 check, with its memory; dropping it frees the slot and keeps the
/// memory for the next check.
pub struct Slot {
    blocks: Option<Vec<argon2::Block>>,
    pool: Arc<Mutex<Vec<Vec<argon2::Block>>>>,
    _permit: OwnedSemaphorePermit,
}

impl Slot {
    /// The slot's Argon2 memory (empty at first; the check sizes it).
    pub fn blocks(&mut self) -> &mut Vec<argon2::Block> {
        self.blocks.get_or_insert_with(Vec::new)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let (Some(blocks), Ok(mut pool)) = (self.blocks.take(), self.pool.lock()) {
            pool.push(blocks);
        }
    }
}

/// The attempt counters one login touches.
pub(crate) struct Attempt {
    keys: Vec<(String, u32)>,
}

impl Attempt {
    /// The per-user key and, when the source address is known, the per-address key. A name
    /// longer than any valid username (64 bytes) is cut, so a key stays small.
    pub(crate) fn new(settings: &Settings, username: &str, client: Option<IpAddr>) -> Attempt {
        let cut = (0..=username.len().min(65))
            .rev()
            .find(|&i| username.is_char_boundary(i))
            .unwrap_or(0);
        let name = &username[..cut];
        let mut keys = vec![(format!("user:{name}"), settings.login_failures_per_user)];
        if let Some(ip) = client {
            keys.push((format!("addr:{ip}"), settings.login_failures_per_address));
        }
        Attempt { keys }
    }
}

fn retry_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl LoginGuard {
    pub(crate) fn new(password_checks: usize) -> LoginGuard {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        LoginGuard {
            attempts: Mutex::new(HashMap::new()),
            slots: Arc::new(Semaphore::new(password_checks.max(1))),
            buffers: Arc::new(Mutex::new(Vec::new())),
            dummy: OnceCell::new(),
            verified: Mutex::new(HashMap::new()),
            key,
        }
    }

    /// Starts an attempt: 429 if any of its counters is at its limit in the current window,
    /// else counts it.
    pub(crate) fn begin(&self, attempt: &Attempt, window: Duration) -> Result<(), ApiError> {
        let now = Instant::now();
        let mut map = self
            .attempts
            .lock()
            .map_err(|_| ApiError::Internal("login throttle lock poisoned".to_string()))?;
        let mut wait = None;
        for (key, limit) in &attempt.keys {
            if let Some(w) = map.get(key) {
                let elapsed = now.duration_since(w.start);
                if elapsed < window && w.count >= *limit {
                    let left = window - elapsed;
                    wait = Some(wait.map_or(left, |d: Duration| d.max(left)));
                }
            }
        }
        if let Some(left) = wait {
            return Err(ApiError::TooManyRequests {
                retry_after: retry_secs(left).max(1),
            });
        }
        if map.len() >= CACHE_CAP {
            map.retain(|_, w| now.duration_since(w.start) < window);
        }
        for (key, _) in &attempt.keys {
            let full = map.len() >= CACHE_CAP;
            match map.get_mut(key) {
                Some(w) if now.duration_since(w.start) < window => w.count += 1,
                Some(w) => {
                    *w = Window {
                        start: now,
                        count: 1,
                    }
                }
                // A full table after pruning: the key goes uncounted rather than evicting
                // live counters (the other key of the attempt still counts).
                None if full => {}
                None => {
                    map.insert(
                        key.clone(),
                        Window {
                            start: now,
                            count: 1,
                        },
                    );
                }
            }
        }
        Ok(())
    }

    /// A successful attempt: the user's count is cleared, the address's attempt taken back.
    pub(crate) fn succeeded(&self, attempt: &Attempt) {
        if let Ok(mut map) = self.attempts.lock() {
            for (i, (key, _)) in attempt.keys.iter().enumerate() {
                if i == 0 {
                    map.remove(key);
                } else if let Some(w) = map.get_mut(key) {
                    w.count = w.count.saturating_sub(1);
                }
            }
        }
    }

    /// Waits up to `wait` for an Argon2 slot; 503 when none frees up.
    pub(crate) async fn slot(&self, wait: Duration) -> Result<Slot, ApiError> {
        match tokio::time::timeout(wait, Arc::clone(&self.slots).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Slot {
                blocks: self.buffers.lock().ok().and_then(|mut b| b.pop()),
                pool: Arc::clone(&self.buffers),
                _permit: permit,
            }),
            Ok(Err(_)) => Err(ApiError::Internal(
                "password check slots closed".to_string(),
            )),
            Err(_) => Err(ApiError::Busy { retry_after: 1 }),
        }
    }

    /// The PHC string unknown users are checked against (made once, with `params`).
    pub(crate) async fn dummy_hash(&self, params: &argon2::Params) -> Result<String, ApiError> {
        let params = params.clone();
        self.dummy
            .get_or_try_init(|| async move {
                let mut bytes = [0u8; 24];
                OsRng.fill_bytes(&mut bytes);
                let password: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                crate::auth::hash_password_blocking(params, password).await
            })
            .await
            .cloned()
    }

    /// The cache key of a credential pair.
    pub(crate) fn credential_key(&self, username: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update((username.len() as u64).to_be_bytes());
        h.update(username.as_bytes());
        h.update(password.as_bytes());
        h.finalize().into()
    }

    /// The PHC string these credentials matched within `ttl`, if any.
    pub(crate) fn remembered(&self, key: &[u8; 32], ttl: Duration) -> Option<String> {
        let map = self.verified.lock().ok()?;
        map.get(key)
            .filter(|v| v.at.elapsed() < ttl)
            .map(|v| v.phc.clone())
    }

    /// Remembers a successful check.
    pub(crate) fn remember(&self, key: [u8; 32], phc: String, ttl: Duration) {
        if let Ok(mut map) = self.verified.lock() {
            if map.len() >= CACHE_CAP {
                map.retain(|_, v| v.at.elapsed() < ttl);
                if map.len() >= CACHE_CAP {
                    map.clear();
                }
            }
            map.insert(
                key,
                Verified {
                    at: Instant::now(),
                    phc,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            login_failures_per_user: 2,
            login_failures_per_address: 3,
            ..Settings::default()
        }
    }

    #[test]
    fn attempts_past_the_limit_are_throttled_until_the_window_ends() {
        let g = LoginGuard::new(1);
        let s = settings();
        let ip = Some(IpAddr::from([192, 0, 2, 1]));
        let a = Attempt::new(&s, "alice", ip);
        let window = Duration::from_secs(60);
        assert!(g.begin(&a, window).is_ok());
        assert!(g.begin(&a, window).is_ok());
        match g.begin(&a, window) {
            Err(ApiError::TooManyRequests { retry_after }) => {
                assert!((59..=60).contains(&retry_after), "{retry_after}")
            }
            other => panic!("expected 429, got {other:?}"),
        }
        // Another user from the same address: one more attempt, then the address is at 3.
        let b = Attempt::new(&s, "bob", ip);
        assert!(g.begin(&b, window).is_ok());
        assert!(matches!(
            g.begin(&b, window),
            Err(ApiError::TooManyRequests { .. })
        ));
        // A window of zero has always ended.
        assert!(g.begin(&a, Duration::ZERO).is_ok());
    }

    #[test]
    fn a_success_clears_the_users_count() {
        let g = LoginGuard::new(1);
        let s = settings();
        let a = Attempt::new(&s, "alice", None);
        let window = Duration::from_secs(60);
        assert!(g.begin(&a, window).is_ok());
        g.succeeded(&a);
        assert!(g.begin(&a, window).is_ok());
        assert!(g.begin(&a, window).is_ok());
        assert!(g.begin(&a, window).is_err());
    }

    #[test]
    fn credential_keys_depend_on_both_parts_and_the_instance() {
        let g = LoginGuard::new(1);
        assert_eq!(g.credential_key("a", "b:c"), g.credential_key("a", "b:c"));
        assert_ne!(g.credential_key("a", "b:c"), g.credential_key("a:b", "c"));
        assert_ne!(
            g.credential_key("a", "b"),
            LoginGuard::new(1).credential_key("a", "b")
        );
    }
}
