//! The reader: every database, then every JSON store, into source records on stdout, each session
//! and message once ([`Reader::read`]). The per-layout reading is in [`crate::db`] and
//! [`crate::store`]; `--follow` drives the same reader ([`crate::follow`]).

use std::collections::HashSet;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use tonbo_core::reader::{left_out_by_modified_after, ReaderIo};

use crate::sources::{JsonStore, Sources};

pub use tonbo_core::time::{parse_modified_after, parse_time};

pub const STAGE: &str = "opencode-read";

/// How long a locked database is waited for (FORMAT.md, "Reading a live database": 5 s or
/// more).
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Overrides [`DEFAULT_BUSY_TIMEOUT`], in milliseconds (for tests).
pub const BUSY_TIMEOUT_ENV: &str = "OPENCODE_READ_BUSY_TIMEOUT_MS";

/// The busy timeout from [`BUSY_TIMEOUT_ENV`], else the default.
pub fn busy_timeout_from_env() -> Result<Duration> {
    match std::env::var(BUSY_TIMEOUT_ENV) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| {
                anyhow::anyhow!("{BUSY_TIMEOUT_ENV}={v:?} is not a number of milliseconds")
            }),
        _ => Ok(DEFAULT_BUSY_TIMEOUT),
    }
}

/// A problem with one source (a database that cannot be opened, is locked or corrupt) that stops
/// reading that source but not the run: reported, counted as failed, and the next source is read.
#[derive(Debug)]
pub struct SourceFailure(pub String);

impl fmt::Display for SourceFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SourceFailure {}

/// A time stored as a number: milliseconds in the TypeScript lineage, seconds in the Go lineage
/// (told apart by magnitude: 10^11 or more can only be milliseconds).
pub fn stored_time(v: i64) -> SystemTime {
    let (secs, millis) = if v.unsigned_abs() >= 100_000_000_000 {
        (v.div_euclid(1000), v.rem_euclid(1000) as u64)
    } else {
        (v, 0)
    };
    let base = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs as u64))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    };
    base.and_then(|t| t.checked_add(Duration::from_millis(millis)))
        .unwrap_or(UNIX_EPOCH)
}

/// What a run read, for the summary line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Database files tried, and JSON stores.
    pub databases: u64,
    pub stores: u64,
    /// Sources by layout (a database with T2 and T3 tables counts for both).
    pub g1: u64,
    pub g2: u64,
    pub t1: u64,
    pub t2: u64,
    pub t3: u64,
    /// Records written.
    pub sessions: u64,
    pub messages: u64,
    /// Parts inside the message records.
    pub parts: u64,
    /// Sources, tables and files that could not be read, or not to their end.
    pub failed: u64,
    /// Sessions passed over because an earlier source already held them.
    pub duplicates: u64,
    /// Go-lineage title sessions (`title-<parent>`), passed over.
    pub title_sessions: u64,
    /// Sessions not updated after `--modified-after`.
    pub skipped_old: u64,
}

impl Stats {
    /// The summary line (without the newline).
    pub fn summary(&self, rejected: u64, modified_after: bool) -> String {
        let mut s = format!(
            "{STAGE}: {} databases, {} JSON stores ({} g1, {} g2, {} t1, {} t2, {} t3), {} sessions, {} messages, {} parts, {} rejected, {} failed",
            self.databases,
            self.stores,
            self.g1,
            self.g2,
            self.t1,
            self.t2,
            self.t3,
            self.sessions,
            self.messages,
            self.parts,
            rejected,
            self.failed,
        );
        if self.duplicates > 0 {
            s.push_str(&format!(
                ", skipped {} sessions already read from another source",
                self.duplicates
            ));
        }
        if self.title_sessions > 0 {
            s.push_str(&format!(", skipped {} title sessions", self.title_sessions));
        }
        if modified_after {
            let not_updated = "sessions not updated";
            s.push_str(&left_out_by_modified_after(self.skipped_old, not_updated));
        }
        s
    }
}

/// Reads databases and JSON stores into source records on its run's stdout.
pub struct Reader<'a> {
    /// Its run's stdout and rejects file, the stop flag that ends a plain run at the next record
    /// boundary, and the progress counters (sessions, records, record bytes written), updated
    /// with each record.
    pub(crate) io: ReaderIo<'a>,
    pub(crate) modified_after: Option<SystemTime>,
    pub(crate) busy: Duration,
    /// The JSON stores of the run: read after every database, and looked into for the messages a
    /// database session lacks.
    pub(crate) stores: Vec<JsonStore>,
    /// Sessions read (or passed over as not modified) from a source that wins over later ones.
    pub(crate) claimed: HashSet<String>,
    /// The record being assembled.
    pub(crate) buf: String,
    pub stats: Stats,
    /// Whether the stop flag ends the read (a plain run, and the first pass of `--follow`).
    pub(crate) interruptible: bool,
    /// `--follow`: what went out and what is held ([`follow::Gate`]); `None` in a plain run.
    pub(crate) gate: Option<crate::follow::Gate>,
}

/// How often (in messages) a long session's read looks at the stop flag.
const STOP_CHECK_MESSAGES: u64 = 256;

impl<'a> Reader<'a> {
    pub fn new(io: ReaderIo<'a>, modified_after: Option<SystemTime>, busy: Duration) -> Self {
        Reader {
            io,
            modified_after,
            busy,
            stores: Vec::new(),
            claimed: HashSet::new(),
            buf: String::new(),
            stats: Stats::default(),
            interruptible: true,
            gate: None,
        }
    }

    /// Whether a signal asked the read to stop (and the read may stop now).
    pub fn stopped(&self) -> bool {
        self.interruptible && self.io.stop_set()
    }

    /// Whether to look at the stop flag after `n` messages of a session.
    pub(crate) fn stop_due(&self, n: u64) -> bool {
        n.is_multiple_of(STOP_CHECK_MESSAGES) && self.stopped()
    }

    /// Reads every database, then every JSON store (the database wins, so its sessions must
    /// be known first).
    ///
    /// Errors are fatal (writing stdout or the rejects file); unreadable input is reported,
    /// counted in [`Stats::failed`] or rejected, and passed over.
    pub fn read(&mut self, sources: &Sources) -> Result<()> {
        self.stats.failed += sources.failed;
        self.stores = sources.stores.clone();
        for path in &sources.dbs {
            if self.stopped() {
                break;
            }
            self.read_db(path)?;
        }
        for i in 0..self.stores.len() {
            if self.stopped() {
                break;
            }
            self.read_store(i)?;
        }
        self.io.out.flush()?;
        Ok(())
    }

    /// Writes the record assembled in `buf` as one line.
    pub(crate) fn write_record(&mut self, buf: &str) -> Result<()> {
        self.io.out.line(buf.as_bytes())?;
        if let Some(p) = &self.io.progress {
            use tonbo_core::progress::{R_BYTES, R_RECORDS, R_SCANNED};
            // A database gives no per-session byte count worth showing (pages, WAL, indexes);
            // what goes out is what a person waits for.
            p.set(R_SCANNED, self.stats.sessions);
            p.add(R_RECORDS, 1);
            p.add(R_BYTES, buf.len() as u64 + 1);
        }
        Ok(())
    }

    /// Whether a stored update time is after `--modified-after` (always true without it).
    pub(crate) fn is_after(&self, t: i64) -> bool {
        self.modified_after
            .is_none_or(|after| stored_time(t) > after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_times_in_seconds_or_milliseconds() {
        assert_eq!(
            stored_time(1_751_360_000),
            UNIX_EPOCH + Duration::from_secs(1_751_360_000)
        );
        assert_eq!(
            stored_time(1_771_000_000_123),
            UNIX_EPOCH + Duration::from_millis(1_771_000_000_123)
        );
        assert_eq!(stored_time(0), UNIX_EPOCH);
    }

    #[test]
    fn summary_names_every_count() {
        let s = Stats {
            databases: 3,
            stores: 1,
            g1: 1,
            g2: 1,
            t1: 1,
            t2: 1,
            t3: 1,
            sessions: 4,
            messages: 20,
            parts: 31,
            failed: 1,
            duplicates: 2,
            title_sessions: 1,
            skipped_old: 5,
        };
        assert_eq!(
            s.summary(2, true),
            "opencode-read: 3 databases, 1 JSON stores (1 g1, 1 g2, 1 t1, 1 t2, 1 t3), 4 sessions, 20 messages, 31 parts, 2 rejected, 1 failed, skipped 2 sessions already read from another source, skipped 1 title sessions, skipped 5 sessions not updated after --modified-after"
        );
        let s = Stats {
            duplicates: 0,
            title_sessions: 0,
            ..s
        };
        assert!(s.summary(0, false).ends_with("0 rejected, 1 failed"));
    }
}
