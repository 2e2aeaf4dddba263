//! What every request of a run shares: whether to stop, and how long the server may stay away.
//!
//! A failure that is the server's, not one stream's (connection refused, a name that does not
//! resolve, TLS, 5xx, timeouts), is retried within one budget for the whole run: once no request
//! has had an answer from the server for `--retry-for`, the run stops, instead of trying each of
//! its sessions in turn for as long. A signal stops it too, after a short grace in which what is
//! already in the pipe may still go out (the readers upstream stop on the same signal, so a
//! sidecar's pipeline drains) but nothing is retried. Either way the checkpoint (written before
//! every send and after every answer) is left consistent, ready for the next run.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::STAGE;

/// Why a run stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Halt {
    /// The signal with this number (SIGINT, SIGTERM).
    Signal(i32),
    /// The server gave no answer for the whole retry budget.
    ServerDown,
}

#[derive(Debug)]
pub struct Health {
    started: Instant,
    /// Milliseconds after `started` of the last answer from the server (any status that is not
    /// a server failure).
    last_answer_ms: AtomicU64,
    retry_for: Duration,
    /// The signal number set by the handler (0: none).
    signal: Arc<AtomicUsize>,
    /// The grace after a signal is over: nothing more is sent.
    grace_over: AtomicBool,
    down: AtomicBool,
    /// The last server failure, for the message the run stops with.
    last_failure: std::sync::Mutex<String>,
    /// Milliseconds after `started` (plus one second) of the last retry line written.
    last_note_ms: AtomicU64,
}

/// The stop that a request gave up on: returned as its error, so callers tell it from a failure.
#[derive(Debug)]
pub struct Halted(pub Halt);

impl std::fmt::Display for Halted {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self.0 {
            Halt::Signal(_) => f.write_str("stopped by a signal"),
            Halt::ServerDown => f.write_str("the server is not answering"),
        }
    }
}

impl std::error::Error for Halted {}

impl Health {
    pub fn new(retry_for: Duration) -> Arc<Health> {
        Arc::new(Health {
            started: Instant::now(),
            last_answer_ms: AtomicU64::new(0),
            retry_for,
            signal: Arc::new(AtomicUsize::new(0)),
            grace_over: AtomicBool::new(false),
            down: AtomicBool::new(false),
            last_failure: std::sync::Mutex::new(String::new()),
            last_note_ms: AtomicU64::new(0),
        })
    }

    /// SIGINT and SIGTERM set this run's stop; a second one exits at once (130), as a stuck
    /// request must not keep a user waiting.
    pub fn stop_on_signals(&self) -> std::io::Result<()> {
        let again = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register_conditional_shutdown(sig, 130, again.clone())?;
            signal_hook::flag::register(sig, again.clone())?;
            signal_hook::flag::register_usize(sig, self.signal.clone(), sig as usize)?;
        }
        Ok(())
    }

    /// Why the run has stopped sending, if it has: the server is down, or a signal's grace is
    /// over.
    pub fn halted(&self) -> Option<Halt> {
        if self.down.load(Ordering::Relaxed) {
            return Some(Halt::ServerDown);
        }
        match self.signal() {
            Some(sig) if self.grace_over.load(Ordering::Relaxed) => Some(Halt::Signal(sig)),
            _ => None,
        }
    }

    /// The signal received, if any (from then on nothing is retried).
    pub fn signal(&self) -> Option<i32> {
        match self.signal.load(Ordering::Relaxed) {
            0 => None,
            sig => Some(sig as i32),
        }
    }

    /// Ends the grace after a signal: nothing more is sent.
    pub fn end_grace(&self) {
        self.grace_over.store(true, Ordering::Relaxed);
    }

    /// The server answered.
    pub fn answered(&self) {
        let ms = self.started.elapsed().as_millis() as u64;
        self.last_answer_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// A server failure: the wait before retrying, `wait` cut to what is left of the budget;
    /// `None` once the budget is spent, and the run is marked down (every other request stops
    /// too).
    pub fn may_retry(&self, why: &str, wait: Duration) -> Option<Duration> {
        if let Ok(mut last) = self.last_failure.lock() {
            *last = why.to_string();
        }
        let silent = self.silent_for();
        if silent >= self.retry_for {
            self.down.store(true, Ordering::Relaxed);
            return None;
        }
        Some(wait.min(self.retry_for - silent))
    }

    /// Whether a retry is worth a line on stderr: at most one a second for the whole run, so a
    /// server that is down does not flood a log with one line per worker and retry.
    pub fn worth_noting(&self) -> bool {
        let now = self.started.elapsed().as_millis() as u64 + 1000;
        let last = self.last_note_ms.load(Ordering::Relaxed);
        now >= last + 1000
            && self
                .last_note_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// How long the server has not answered any request.
    pub fn silent_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_answer_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }

    pub fn retry_for(&self) -> Duration {
        self.retry_for
    }

    pub fn last_failure(&self) -> String {
        self.last_failure
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Sleeps for `d` before a retry, waking early when the run stops or a signal comes; false
    /// if one did.
    pub fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        loop {
            if self.halted().is_some() || self.signal().is_some() {
                return false;
            }
            let now = Instant::now();
            if now >= end {
                return true;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(50)));
        }
    }
}

/// The name of a stopping signal, for messages.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        signal_hook::consts::SIGINT => "SIGINT",
        signal_hook::consts::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// After a signal, what is already in the pipe may still go out for this long (nothing is
/// retried); then nothing more is sent.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// Requests still in flight then get this long; then the process exits as it is (the checkpoint
/// is consistent at every moment: a batch is journaled before it is sent).
const IN_FLIGHT_GRACE: Duration = Duration::from_secs(3);

/// Watches for a signal: once it comes, ends the grace after `STOP_GRACE`, and exits the
/// process (`IN_FLIGHT_GRACE` later) if the run has not ended by then.
pub fn watch_for_a_stuck_stop(health: &Arc<Health>) {
    let health = health.clone();
    std::thread::spawn(move || loop {
        if let Some(sig) = health.signal() {
            std::thread::sleep(STOP_GRACE);
            health.end_grace();
            std::thread::sleep(IN_FLIGHT_GRACE);
            tonbo_core::note!(
                "{STAGE}: stopped by {} with requests still in flight after {}s; they are journaled and settled by the next run",
                signal_name(sig),
                (STOP_GRACE + IN_FLIGHT_GRACE).as_secs()
            );
            std::process::exit(128 + sig);
        }
        std::thread::sleep(Duration::from_millis(50));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_the_time_since_the_last_answer() {
        let h = Health::new(Duration::from_millis(300));
        // A wait is cut to what is left of the budget.
        let wait = h.may_retry("refused", Duration::from_secs(5)).unwrap();
        assert!(wait <= Duration::from_millis(300), "{wait:?}");
        assert_eq!(h.halted(), None);
        std::thread::sleep(Duration::from_millis(320));
        assert_eq!(h.may_retry("refused", Duration::from_millis(1)), None);
        assert_eq!(h.halted(), Some(Halt::ServerDown));
        assert_eq!(h.last_failure(), "refused");
        assert!(
            !h.sleep(Duration::from_secs(5)),
            "a stopped run does not sleep"
        );
        // An answer renews the budget.
        let h = Health::new(Duration::from_millis(300));
        std::thread::sleep(Duration::from_millis(320));
        h.answered();
        assert!(h.may_retry("refused", Duration::from_millis(200)).is_some());
        assert!(h.worth_noting());
        assert!(!h.worth_noting());
    }
}
