//! Worker threads for the calls that may block (a blocking `connect`, a send on a full buffer):
//! the supervisor's loop never waits on them. The pool grows while every worker is busy (a
//! connect to a silent host can take minutes), up to a bound, and each job answers its own
//! notification.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use super::emulate::Work;
use super::NetError;
use crate::sys::notify::{Listener, Reply};

/// Workers started up front.
const INITIAL: usize = 2;
/// Most workers at once; beyond, jobs wait in the queue.
const MAX: usize = 64;

type Job = (u64, Work);

/// The pool; cheap to share behind an `Arc`.
pub struct Pool {
    tx: mpsc::Sender<Job>,
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    replies: Arc<Listener>,
    idle: Arc<AtomicUsize>,
    total: AtomicUsize,
}

impl Pool {
    pub fn start(replies: Listener) -> Result<Pool, NetError> {
        let (tx, rx) = mpsc::channel();
        let pool = Pool {
            tx,
            rx: Arc::new(Mutex::new(rx)),
            replies: Arc::new(replies),
            idle: Arc::new(AtomicUsize::new(0)),
            total: AtomicUsize::new(0),
        };
        for _ in 0..INITIAL {
            pool.grow(true)?;
        }
        Ok(pool)
    }

    /// The listener handle jobs answer through (also used for `id_valid`).
    pub fn replies(&self) -> &Listener {
        &self.replies
    }

    /// Starts a worker; a `spare` one counts as idle at once, others start for a job already
    /// queued for them.
    fn grow(&self, spare: bool) -> Result<(), NetError> {
        let n = self.total.fetch_add(1, Ordering::AcqRel);
        if spare {
            self.idle.fetch_add(1, Ordering::AcqRel);
        }
        let (rx, replies, idle) = (
            Arc::clone(&self.rx),
            Arc::clone(&self.replies),
            Arc::clone(&self.idle),
        );
        std::thread::Builder::new()
            .name(format!("net-worker-{n}"))
            .spawn(move || worker(&rx, &replies, &idle))
            .map(drop)
            .map_err(|source| {
                self.total.fetch_sub(1, Ordering::AcqRel);
                if spare {
                    self.idle.fetch_sub(1, Ordering::AcqRel);
                }
                NetError::Thread { source }
            })
    }

    /// Queues `work` for notification `id`. When it cannot be queued, runs it here and returns
    /// the reply for the caller to send.
    pub fn submit(&self, id: u64, work: Work) -> Option<Reply> {
        // Claim an idle worker for this job, or start one (up to MAX; beyond, the job waits).
        let claimed = self
            .idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if !claimed && self.total.load(Ordering::Acquire) < MAX {
            let _ = self.grow(false);
        }
        match self.tx.send((id, work)) {
            Ok(()) => None,
            Err(mpsc::SendError((_, work))) => Some(work()),
        }
    }

    /// Workers alive (for tests).
    pub fn workers(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }
}

/// Takes jobs until the pool is dropped. `idle` counts workers free for an unclaimed job: a
/// worker adds itself back after each job; `submit` takes one off when it queues a job.
fn worker(rx: &Mutex<mpsc::Receiver<Job>>, replies: &Listener, idle: &AtomicUsize) {
    loop {
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok((id, work)) = job else { return };
        let _ = replies.send(id, work());
        idle.fetch_add(1, Ordering::AcqRel);
    }
}
