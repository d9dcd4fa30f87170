//! Audit shipping: a bounded in-memory queue that never blocks the caller, batches written to
//! a spool directory before they are sent (so an outage or a restart loses nothing), retries
//! with exponential backoff, and a count of what had to be dropped, reported to the console in
//! the next batch.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use protect::api::{AuditBatch, DefenderIdentity, MAX_BATCH_BYTES, MAX_BATCH_RECORDS};
use protect::audit::AuditRecord;

use super::http::{batch_json, ConsoleHttp};
use super::seal::SealKey;
use super::ConsoleError;

/// Bounds and timings of the shipper.
#[derive(Clone, Debug)]
pub struct ShipperLimits {
    /// Records held in memory; beyond, new records are dropped and counted.
    pub memory_records: usize,
    /// Records per batch (at most the console's 1000).
    pub batch_records: usize,
    /// How long a record may wait for others before its batch is cut.
    pub linger: Duration,
    /// Bytes the spool directory may hold; beyond, new batches are dropped and counted.
    pub spool_bytes: u64,
    /// First retry delay; doubles up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl Default for ShipperLimits {
    fn default() -> ShipperLimits {
        ShipperLimits {
            memory_records: 10_000,
            batch_records: 500,
            linger: Duration::from_millis(500),
            spool_bytes: 64 << 20,
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// Counters, readable at any time.
#[derive(Debug, Default)]
pub struct ShipperStats {
    /// Records the console acknowledged.
    pub shipped: AtomicU64,
    /// Records dropped (memory queue or spool full, or refused by the console as invalid).
    pub dropped: AtomicU64,
    /// Batches currently waiting in the spool.
    pub spooled: AtomicU64,
    /// Failed sends.
    pub failures: AtomicU64,
    /// Spool files discarded because their seal did not verify (written by the app or another
    /// process, not by this defender).
    pub forged: AtomicU64,
}

struct Queue {
    records: VecDeque<AuditRecord>,
    /// Dropped since the last batch that carried the count.
    unreported_drops: u64,
    stopping: bool,
}

pub(crate) struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    limits: ShipperLimits,
    pub(crate) stats: ShipperStats,
}

/// The sending side: hand it records from any thread; it never blocks on the console.
#[derive(Clone)]
pub struct AuditShipper {
    shared: Arc<Shared>,
}

impl AuditShipper {
    /// Queues one record (drops and counts it when the memory queue is full).
    pub fn send(&self, record: AuditRecord) {
        let Ok(mut q) = self.shared.queue.lock() else {
            return;
        };
        if q.records.len() >= self.shared.limits.memory_records {
            q.unreported_drops += 1;
            self.shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        q.records.push_back(record);
        if q.records.len() >= self.shared.limits.batch_records {
            self.shared.wake.notify_one();
        }
    }

    /// The counters.
    pub fn stats(&self) -> &ShipperStats {
        &self.shared.stats
    }
}

impl crate::audit::AuditSink for AuditShipper {
    fn record(&self, record: &AuditRecord) {
        self.send(record.clone());
    }
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_ok();
    if !ok {
        bytes = now_ms().to_le_bytes()[..n.min(16)].to_vec();
    }
    super::seal::hex(&bytes)
}

/// A spooled batch: `<created ms>-<seq>-<records>.json`, oldest first by name.
fn spool_files(dir: &Path) -> Vec<(PathBuf, u64, u64)> {
    let mut files: Vec<(PathBuf, u64, u64)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().to_string();
                    let stem = name.strip_suffix(".json")?;
                    let records: u64 = stem.rsplit('-').next()?.parse().ok()?;
                    let size = e.metadata().ok()?.len();
                    Some((e.path(), records, size))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// The shipper thread's state.
pub(crate) struct Worker {
    shared: Arc<Shared>,
    http: ConsoleHttp,
    identity: DefenderIdentity,
    dir: PathBuf,
    key: SealKey,
    prefix: String,
    seq: u64,
    backoff: Duration,
    next_try: Instant,
    last_error: Option<String>,
}

pub(crate) fn new(
    limits: ShipperLimits,
    http: ConsoleHttp,
    identity: DefenderIdentity,
    dir: PathBuf,
    key: SealKey,
) -> Result<(AuditShipper, Worker), ConsoleError> {
    std::fs::create_dir_all(&dir)
        .map_err(|e| ConsoleError::Config(format!("spool directory {}: {e}", dir.display())))?;
    let mut limits = limits;
    limits.batch_records = limits.batch_records.clamp(1, MAX_BATCH_RECORDS);
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue {
            records: VecDeque::new(),
            unreported_drops: 0,
            stopping: false,
        }),
        wake: Condvar::new(),
        stats: ShipperStats::default(),
        limits,
    });
    let spooled = spool_files(&dir).len() as u64;
    shared.stats.spooled.store(spooled, Ordering::Relaxed);
    let worker = Worker {
        backoff: shared.limits.backoff_min,
        shared: Arc::clone(&shared),
        http,
        identity,
        dir,
        key,
        prefix: random_hex(8),
        seq: 0,
        next_try: Instant::now(),
        last_error: None,
    };
    Ok((AuditShipper { shared }, worker))
}

/// Asks the worker to flush and stop.
pub(crate) fn stop(shared: &AuditShipper) {
    if let Ok(mut q) = shared.shared.queue.lock() {
        q.stopping = true;
    }
    shared.shared.wake.notify_all();
}

impl Worker {
    /// Runs until stopped; on stop, keeps sending until `flush_deadline` passes.
    pub(crate) fn run(mut self, flush: Arc<Mutex<Duration>>) {
        let mut deadline: Option<Instant> = None;
        loop {
            let (records, drops, stopping) = self.take();
            if !records.is_empty() || drops > 0 {
                self.spool(records, drops);
            }
            if stopping && deadline.is_none() {
                let flush = flush.lock().map(|d| *d).unwrap_or_default();
                deadline = Some(Instant::now() + flush);
            }
            if Instant::now() >= self.next_try {
                self.send_spool(deadline);
            }
            if let Some(d) = deadline {
                let empty = spool_files(&self.dir).is_empty();
                if empty || Instant::now() >= d {
                    return;
                }
                std::thread::sleep(
                    Duration::from_millis(50).min(d.saturating_duration_since(Instant::now())),
                );
            }
        }
    }

    /// Waits for a full batch, the linger time, a retry time or stop; takes up to a batch.
    fn take(&mut self) -> (Vec<AuditRecord>, u64, bool) {
        let limits = &self.shared.limits;
        let Ok(mut q) = self.shared.queue.lock() else {
            return (Vec::new(), 0, true);
        };
        let start = Instant::now();
        loop {
            if q.stopping || q.records.len() >= limits.batch_records {
                break;
            }
            let waited = start.elapsed();
            if !q.records.is_empty() && waited >= limits.linger {
                break;
            }
            let mut wait = limits.linger.saturating_sub(waited);
            if q.records.is_empty() {
                wait = Duration::from_secs(1);
            }
            let pending_spool = self.shared.stats.spooled.load(Ordering::Relaxed) > 0;
            if pending_spool {
                let until_retry = self.next_try.saturating_duration_since(Instant::now());
                if until_retry.is_zero() {
                    break;
                }
                wait = wait.min(until_retry);
            }
            q = match self.shared.wake.wait_timeout(q, wait) {
                Ok((g, _)) => g,
                Err(_) => return (Vec::new(), 0, true),
            };
            if q.records.is_empty()
                && !q.stopping
                && pending_spool
                && Instant::now() >= self.next_try
            {
                break;
            }
        }
        let n = q.records.len().min(limits.batch_records);
        let records: Vec<AuditRecord> = q.records.drain(..n).collect();
        let drops = std::mem::take(&mut q.unreported_drops);
        (records, drops, q.stopping)
    }

    /// Writes records to the spool as batches under the console's byte bound (or drops and
    /// counts them when the spool is full).
    fn spool(&mut self, records: Vec<AuditRecord>, drops: u64) {
        let limit = MAX_BATCH_BYTES - 1024;
        let mut rest = &records[..];
        let mut drops = drops;
        while !rest.is_empty() || drops > 0 {
            let mut take = rest.len();
            let json = loop {
                self.seq += 1;
                let batch = AuditBatch {
                    batch_id: format!("{}-{}", self.prefix, self.seq),
                    defender: self.identity.clone(),
                    records: rest[..take].to_vec(),
                    dropped: drops,
                };
                match batch_json(&batch) {
                    Ok(j) if j.len() > limit && take > 1 => take = take.div_ceil(2),
                    Ok(j) => break Some(j),
                    Err(_) => break None,
                }
            };
            let n = take as u64;
            match json {
                Some(json) if json.len() <= limit => {
                    let used: u64 = spool_files(&self.dir).iter().map(|f| f.2).sum();
                    if used + json.len() as u64 > self.shared.limits.spool_bytes {
                        self.count_dropped(n, drops, "the spool is full");
                    } else if let Err(e) = self.write_spool(&json, n) {
                        self.count_dropped(n, drops, &format!("cannot write the spool: {e}"));
                    }
                }
                _ => self.count_dropped(n.max(1), drops, "a record larger than a batch"),
            }
            rest = &rest[take.max(1).min(rest.len())..];
            drops = 0;
        }
    }

    fn write_spool(&self, json: &str, records: u64) -> std::io::Result<()> {
        let name = format!("{:013}-{:08}-{records}.json", now_ms(), self.seq);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, self.key.seal(json))?;
        std::fs::rename(&tmp, self.dir.join(&name))?;
        self.shared.stats.spooled.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Counts `n` dropped records; `carried` earlier drops that the lost batch was to report
    /// go back to be reported by the next one.
    fn count_dropped(&self, n: u64, carried: u64, why: &str) {
        self.shared.stats.dropped.fetch_add(n, Ordering::Relaxed);
        if let Ok(mut q) = self.shared.queue.lock() {
            q.unreported_drops += n + carried;
        }
        crate::say!("defender: dropped {n} audit record(s): {why}");
    }

    /// Sends spooled batches oldest first until one fails (then backs off).
    fn send_spool(&mut self, deadline: Option<Instant>) {
        for (path, records, _) in spool_files(&self.dir) {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                let _ = std::fs::remove_file(&path);
                continue;
            };
            let Ok(json) = self.key.open(&text) else {
                // Not written by this defender: never shipped under its credential.
                let _ = std::fs::remove_file(&path);
                self.shared.stats.spooled.fetch_sub(1, Ordering::Relaxed);
                self.shared.stats.forged.fetch_add(1, Ordering::Relaxed);
                crate::say!(
                    "defender: discarded spool file {}: its seal does not verify (not written \
                     by this defender)",
                    path.display()
                );
                continue;
            };
            match self.http.post_batch(&json) {
                Ok(_) => {
                    let _ = std::fs::remove_file(&path);
                    self.shared.stats.spooled.fetch_sub(1, Ordering::Relaxed);
                    self.shared
                        .stats
                        .shipped
                        .fetch_add(records, Ordering::Relaxed);
                    self.backoff = self.shared.limits.backoff_min;
                    if self.last_error.take().is_some() {
                        crate::say!("defender: the console takes audits again");
                    }
                }
                Err(e) if e.is_permanent() => {
                    let _ = std::fs::remove_file(&path);
                    self.shared.stats.spooled.fetch_sub(1, Ordering::Relaxed);
                    self.count_dropped(records, 0, &format!("the console refused the batch: {e}"));
                }
                Err(e) => {
                    self.shared.stats.failures.fetch_add(1, Ordering::Relaxed);
                    let text = e.to_string();
                    if self.last_error.as_deref() != Some(&text) {
                        crate::say!(
                            "defender: cannot ship audits (kept on disk, retrying): {text}"
                        );
                        self.last_error = Some(text);
                    }
                    self.next_try = Instant::now() + self.backoff;
                    self.backoff = (self.backoff * 2).min(self.shared.limits.backoff_max);
                    return;
                }
            }
        }
    }
}
