//! Delivers batches exactly once: the per-session state machine over [`Checkpoint`] and
//! [`StreamClient`].
//!
//! For each batch: drop the events the stream already holds (by `source_key`), journal what is
//! left with the next `(epoch, seq)`, POST it, and advance only on 200 or 204. A session met for
//! the first time in this checkpoint is reconciled first: its stream is read back and the keys it
//! holds are recorded, and it is written in a fresh epoch, so neither a deleted checkpoint nor an
//! old producer state on the server can make the server drop new events as "duplicates".
//!
//! Once a stream has answered a batch of this run with 200, its next batches are pipelined (up to
//! the window, each over a connection of its own): they are numbered in input order and the
//! server takes them only in that order. Any other answer settles the stream one batch at a time
//! again. A batch whose answer was lost is never re-sent blindly: the stream is read back first.
//!
//! Other writers of the same stream (another checkpoint: a second machine, a second cron entry)
//! are kept from doubling events by the server itself: every batch names, in `Stream-Seq`, the
//! stream position it was written for (the number of events the stream held before it, as this
//! checkpoint knows it), and the server takes a `Stream-Seq` only if it is greater than every
//! one before. Of two batches written for the same position, the second is refused (409) and
//! stores nothing; its writer reads the stream back, drops the events that are there now, and
//! sends the rest for the new position. A checkpoint that does not know a stream's position
//! reads the stream back before its first batch.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use serde_json::value::RawValue;
use tonbo_core::url::without_credentials;
use tonbo_core::EventHead;

use crate::checkpoint::{Checkpoint, KeyState, Pending, ServerRead, StreamState, Tail};
use crate::client::{Appended, StreamClient};

/// Counters for the summary line.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub sessions: u64,
    pub batches_sent: u64,
    pub events_sent: u64,
    /// Request bodies of the batches sent and acknowledged (for the progress line's rate).
    pub bytes_sent: u64,
    /// Events the stream already held (earlier runs, or found on the server).
    pub events_present: u64,
    /// Events of a batch journaled by an interrupted run, delivered (or found delivered) now.
    pub events_recovered: u64,
    pub events_failed: u64,
    pub sessions_failed: u64,
    /// Streams read back that hold more events than distinct keys.
    pub overfull: Vec<Overfull>,
}

/// A stream found holding more events than distinct `source_key`s: an event stored twice (by
/// an older writer, or one that is not tonbo-post), or events without a key.
#[derive(Debug, Clone)]
pub struct Overfull {
    pub session_id: String,
    pub events: u64,
    pub keys: u64,
}

/// One event of a batch, with its `metadata.source_key` already read (see [`key_events`]).
#[derive(Debug, Clone)]
pub struct KeyedEvent<'a> {
    /// Its position in the batch line, for messages.
    pub index: usize,
    pub key: String,
    /// The event's JSON text, sent byte for byte.
    pub raw: &'a str,
}

/// Reads the `source_key` of every event of a batch; events without one are rejects.
pub fn key_events<'a>(events: &[&'a RawValue]) -> (Vec<KeyedEvent<'a>>, Vec<EventReject>) {
    let mut keyed = Vec::with_capacity(events.len());
    let mut rejects = Vec::new();
    for (index, ev) in events.iter().enumerate() {
        match EventHead::parse(ev) {
            Ok(head) => keyed.push(KeyedEvent {
                index,
                key: head.metadata.source_key.into_owned(),
                raw: ev.get(),
            }),
            Err(reason) => rejects.push(EventReject { index, reason }),
        }
    }
    (keyed, rejects)
}

impl Stats {
    /// Adds another worker's counters.
    pub fn add(&mut self, o: &Stats) {
        self.sessions += o.sessions;
        self.batches_sent += o.batches_sent;
        self.events_sent += o.events_sent;
        self.bytes_sent += o.bytes_sent;
        self.events_present += o.events_present;
        self.events_recovered += o.events_recovered;
        self.events_failed += o.events_failed;
        self.sessions_failed += o.sessions_failed;
        self.overfull.extend(o.overfull.iter().cloned());
    }
}

/// An event of a batch that was not used, and why.
#[derive(Debug)]
pub struct EventReject {
    pub index: usize,
    pub reason: String,
}

/// Builds stream URLs from `--url-template`, with `{base}` and `{session_id}` (percent-encoded).
#[derive(Debug, Clone)]
pub struct UrlTemplate {
    template: String,
    base: String,
}

impl UrlTemplate {
    pub fn new(template: &str, base: &str) -> Result<UrlTemplate, String> {
        if !template.contains("{session_id}") {
            return Err(format!(
                "--url-template `{}` has no {{session_id}}",
                without_credentials(template)
            ));
        }
        Ok(UrlTemplate {
            template: template.to_string(),
            base: base.trim_end_matches('/').to_string(),
        })
    }

    pub fn url(&self, session_id: &str) -> String {
        self.template
            .replace("{base}", &self.base)
            .replace("{session_id}", &encode_segment(session_id))
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so a session id is exactly one
/// path segment whatever it holds.
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// How one attempt to deliver ended for its session.
enum Delivery {
    Done,
    Failed(String),
}

macro_rules! net {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Ok(Delivery::Failed(format!("{e:#}"))),
        }
    };
}

pub struct Poster {
    cp: Checkpoint,
    client: StreamClient,
    urls: UrlTemplate,
    pub stats: Stats,
    /// Streams touched in this run (their interrupted batches, if any, were settled first).
    touched: HashSet<String>,
    /// Streams that failed in this run; their later batches are counted, not sent.
    failed: HashSet<String>,
    /// Streams whose batches may be pipelined: one of this run's POSTs was answered 200, so the
    /// server's producer state and the checkpoint agree.
    in_step: HashSet<String>,
    /// Batches sent and not yet answered, oldest first (at most `window`).
    inflight: VecDeque<InFlight>,
    /// For a stream with batches in flight: the next (epoch, seq) and the keys in flight.
    ahead: HashMap<String, Ahead>,
    window: usize,
    senders: Option<Senders>,
    /// The batch being handled now, for naming its events in rejects.
    current: Option<Arc<BatchOrigin>>,
    rejects: Vec<Rejected>,
}

/// Where a batch came from: its input line, and the position of each event by key.
#[derive(Debug)]
pub struct BatchOrigin {
    pub session_id: String,
    pub input: Arc<str>,
    pub line: u64,
    pub index_of: HashMap<String, usize>,
}

/// An event that was not delivered and will not be: named by its input line and position.
#[derive(Debug)]
pub struct Rejected {
    pub input: Arc<str>,
    pub line: u64,
    pub reason: String,
    pub raw: Vec<u8>,
}

struct InFlight {
    url: String,
    stream: i64,
    /// The stream position it was written for.
    at: u64,
    pending: Pending,
    origin: Arc<BatchOrigin>,
    answer: Receiver<Answer>,
}

#[derive(Default)]
struct Ahead {
    epoch: u64,
    next_seq: u64,
    /// The stream's position after the batches in flight.
    tail: u64,
    keys: HashSet<String>,
    count: usize,
}

/// What a sender thread hands back: the body (moved there and back), the outcome and the
/// retries it took.
struct Answer {
    body: Vec<u8>,
    outcome: Result<Appended>,
    retries: u64,
}

struct SendJob {
    url: String,
    epoch: u64,
    seq: u64,
    at: u64,
    body: Vec<u8>,
    answer: SyncSender<Answer>,
}

/// The threads that POST a worker's pipelined batches, each over its own connection.
struct Senders {
    jobs: Option<SyncSender<SendJob>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Senders {
    fn new(n: usize, client: &StreamClient) -> Senders {
        let (tx, rx) = sync_channel::<SendJob>(n);
        let rx = Arc::new(Mutex::new(rx));
        let threads = (0..n)
            .map(|_| {
                let rx = rx.clone();
                let mut client = client.clone();
                std::thread::spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    let before = client.retries;
                    let outcome = client.append(&job.url, job.epoch, job.seq, job.at, &job.body);
                    let _ = job.answer.send(Answer {
                        body: job.body,
                        outcome,
                        retries: client.retries - before,
                    });
                })
            })
            .collect();
        Senders {
            jobs: Some(tx),
            threads,
        }
    }
}

impl Drop for Senders {
    fn drop(&mut self) {
        self.jobs.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A stream's creation, done ahead of its worker by [`Creators`]: `Some(Ok(true))` created now
/// (new and empty), `Some(Ok(false))` it existed, `Some(Err)` the create failed; `None` nothing
/// was done (the checkpoint knew the stream, or could not be read), so the worker decides.
pub type Creation = Option<std::result::Result<bool, String>>;

/// Threads that create the streams of sessions about to be posted, ahead of their workers. Under
/// load a create waits behind the server's queue of appends (tens of milliseconds); a worker
/// doing it itself would stall its pipeline and, its input queue filling, the reader that feeds
/// every worker.
pub struct Creators {
    jobs: Option<SyncSender<(String, SyncSender<Creation>)>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Creators {
    pub fn new(n: usize, cp: &Checkpoint, client: &StreamClient) -> Result<Creators> {
        let (tx, rx) = sync_channel::<(String, SyncSender<Creation>)>(n);
        let rx = Arc::new(Mutex::new(rx));
        let mut threads = Vec::with_capacity(n);
        for _ in 0..n {
            let rx = rx.clone();
            let cp = cp.another()?;
            let mut client = client.clone();
            threads.push(std::thread::spawn(move || loop {
                let job = match rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                let Ok((url, answer)) = job else { return };
                let creation = match cp.stream(&url) {
                    Ok(None) => Some(client.create(&url).map_err(|e| format!("{e:#}"))),
                    Ok(Some(_)) | Err(_) => None,
                };
                let _ = answer.send(creation);
            }));
        }
        Ok(Creators {
            jobs: Some(tx),
            threads,
        })
    }

    /// Starts creating the stream at `url` (waiting while every creator is busy); the answer
    /// arrives on the returned channel.
    pub fn create(&self, url: String) -> Receiver<Creation> {
        let (tx, rx) = sync_channel(1);
        if let Some(jobs) = &self.jobs {
            // A stopped creator drops `tx`, and the worker creates the stream itself.
            let _ = jobs.send((url, tx));
        }
        rx
    }
}

impl Drop for Creators {
    fn drop(&mut self) {
        self.jobs.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Whether an answer proves the server did not store the batch (and so, within its epoch,
/// nothing numbered after it either).
fn certainly_not_stored(outcome: &Result<Appended>) -> bool {
    matches!(
        outcome,
        Ok(Appended::Gap { .. }
            | Appended::NotFound
            | Appended::StaleEpoch { .. }
            | Appended::Closed
            | Appended::SeqConflict { .. }
            | Appended::Refused { .. })
    )
}

/// How often one batch may lose the race for its stream position before its session stops:
/// each loss means another writer appended, so this bounds only a stream written without end.
const MAX_POSITION_CONFLICTS: u32 = 1000;

impl Poster {
    /// A poster sending up to `window` batches at once (pipelined, for streams in step with
    /// the server), each over its own connection; 1 sends one batch at a time.
    pub fn new(cp: Checkpoint, client: StreamClient, urls: UrlTemplate, window: usize) -> Poster {
        let window = window.max(1);
        Poster {
            senders: (window > 1).then(|| Senders::new(window, &client)),
            cp,
            client,
            urls,
            stats: Stats::default(),
            touched: HashSet::new(),
            failed: HashSet::new(),
            in_step: HashSet::new(),
            inflight: VecDeque::new(),
            ahead: HashMap::new(),
            window,
            current: None,
            rejects: Vec::new(),
        }
    }

    pub fn retries(&self) -> u64 {
        self.client.retries
    }

    /// Settles every batch still in flight and ends this poster, returning its counters and
    /// retries.
    pub fn finish(mut self) -> Result<(Stats, u64, Vec<Rejected>)> {
        self.settle_in_flight()?;
        Ok((
            std::mem::take(&mut self.stats),
            self.client.retries,
            std::mem::take(&mut self.rejects),
        ))
    }

    /// Waits for every batch in flight and settles it (acknowledged, or sent again one at a
    /// time); the poster stays usable.
    pub fn settle_in_flight(&mut self) -> Result<()> {
        while !self.inflight.is_empty() {
            self.complete_oldest()?;
        }
        Ok(())
    }

    /// The rejects found so far (events of this batch or of earlier ones still in flight then).
    pub fn take_rejects(&mut self) -> Vec<Rejected> {
        std::mem::take(&mut self.rejects)
    }

    pub fn checkpoint(&self) -> &Checkpoint {
        &self.cp
    }

    /// Delivers one batch of `session_id` (its events keyed by [`key_events`]), or starts to:
    /// a batch of a stream in step with the server may still be in flight on return. Events
    /// repeating a key earlier in this run become rejects ([`Self::take_rejects`]); the rest are
    /// sent unless the stream holds them already. A session that fails is reported on stderr
    /// and skipped from then on; only checkpoint failures are errors.
    pub fn post_batch(
        &mut self,
        session_id: &str,
        keyed: Vec<KeyedEvent<'_>>,
        input: &Arc<str>,
        line: u64,
        created: Option<Receiver<Creation>>,
    ) -> Result<()> {
        let url = self.urls.url(session_id);
        if self.failed.contains(&url) || self.client.health.halted().is_some() {
            self.stats.events_failed += keyed.len() as u64;
            return Ok(());
        }
        let origin = Arc::new(BatchOrigin {
            session_id: session_id.to_string(),
            input: input.clone(),
            line,
            index_of: keyed.iter().map(|k| (k.key.clone(), k.index)).collect(),
        });
        self.current = Some(origin.clone());
        let n = keyed.len() as u64;
        let state = match self.settle_stream(&url, created)? {
            Ok(state) => state,
            Err(why) => {
                self.fail(&url, session_id, &why, n);
                return Ok(());
            }
        };
        // The stream's numbering and position continue after its batches in flight, if any.
        let (epoch, seq, at) = match self.ahead.get(&url) {
            Some(a) => (a.epoch, a.next_seq, Some(a.tail)),
            None => (state.epoch, state.next_seq, state.tail),
        };
        let states = self
            .cp
            .key_states(state.id, keyed.iter().map(|k| k.key.as_str()))?;
        let mut in_batch = HashSet::new();
        let mut keys = Vec::with_capacity(keyed.len());
        let mut body = Vec::with_capacity(keyed.iter().map(|e| e.raw.len() + 1).sum());
        body.push(b'[');
        for (KeyedEvent { index, key, raw }, known) in keyed.into_iter().zip(states) {
            let in_flight = self.ahead.get(&url).is_some_and(|a| a.keys.contains(&key));
            let known = if in_batch.contains(&key) || in_flight {
                KeyState::SentThisRun
            } else {
                known
            };
            match known {
                KeyState::Present => self.stats.events_present += 1,
                KeyState::SentThisRun => self.rejects.push(Rejected {
                    input: input.clone(),
                    line,
                    reason: format!(
                        "event {index} of the batch: source_key `{key}` repeats an event earlier in this input; not sent again"
                    ),
                    raw: raw.as_bytes().to_vec(),
                }),
                KeyState::New => {
                    if !keys.is_empty() {
                        body.push(b',');
                    }
                    body.extend_from_slice(raw.as_bytes());
                    in_batch.insert(key.clone());
                    keys.push(key);
                }
            }
        }
        body.push(b']');
        if keys.is_empty() {
            return Ok(());
        }
        let mut pending = Pending {
            jid: 0,
            epoch,
            seq,
            run: self.cp.run,
            keys,
            body,
        };
        self.cp.journal(state.id, &mut pending)?;
        if let Some(at) = at.filter(|_| self.senders.is_some() && self.in_step.contains(&url)) {
            self.pipeline(url, state.id, at, pending, origin)?;
            return Ok(());
        }
        let sent_before = self.stats.events_sent + self.stats.events_present;
        if let Delivery::Failed(why) = self.send(&url, &state, pending, false, false)? {
            let done = self.stats.events_sent + self.stats.events_present - sent_before;
            self.fail(&url, session_id, &why, n.saturating_sub(done));
        }
        Ok(())
    }

    fn fail(&mut self, url: &str, session_id: &str, why: &str, events: u64) {
        // A stopping run is reported once, by main, not once per session.
        let health = &self.client.health;
        if health.halted().is_none() && health.signal().is_none() {
            tonbo_core::note!("tonbo-post: session {session_id}: failed: {why}");
        }
        self.failed.insert(url.to_string());
        self.in_step.remove(url);
        self.stats.sessions_failed += 1;
        self.stats.events_failed += events;
    }

    /// Hands a journaled batch of a stream in step to a sender thread, then waits for the
    /// oldest batches in flight while the window is full.
    fn pipeline(
        &mut self,
        url: String,
        stream: i64,
        at: u64,
        pending: Pending,
        origin: Arc<BatchOrigin>,
    ) -> Result<()> {
        let (answer_tx, answer) = sync_channel(1);
        let ahead = self.ahead.entry(url.clone()).or_default();
        ahead.epoch = pending.epoch;
        ahead.next_seq = pending.seq + 1;
        ahead.tail = at + pending.keys.len() as u64;
        ahead.keys.extend(pending.keys.iter().cloned());
        ahead.count += 1;
        let job = SendJob {
            url: url.clone(),
            epoch: pending.epoch,
            seq: pending.seq,
            at,
            body: pending.body,
            answer: answer_tx,
        };
        let jobs = self.senders.as_ref().and_then(|s| s.jobs.as_ref());
        if jobs.is_none_or(|j| j.send(job).is_err()) {
            anyhow::bail!("the sender threads stopped");
        }
        self.inflight.push_back(InFlight {
            url,
            stream,
            at,
            pending: Pending {
                body: Vec::new(),
                ..pending
            },
            origin,
            answer,
        });
        while self.inflight.len() >= self.window {
            self.complete_oldest()?;
        }
        Ok(())
    }

    fn wait(&mut self, f: InFlight) -> (InFlight, Result<Appended>) {
        let mut f = f;
        let outcome = match f.answer.recv() {
            Ok(a) => {
                f.pending.body = a.body;
                self.client.retries += a.retries;
                a.outcome
            }
            Err(_) => Err(anyhow::anyhow!("the sender thread stopped")),
        };
        (f, outcome)
    }

    fn release(&mut self, url: &str, keys: &[String]) {
        if let Some(a) = self.ahead.get_mut(url) {
            a.count -= 1;
            for k in keys {
                a.keys.remove(k);
            }
            if a.count == 0 {
                self.ahead.remove(url);
            }
        }
    }

    /// Waits for the oldest batch in flight. A 200 is acknowledged (a stream's batches leave
    /// the queue in sequence order, so acknowledgements keep that order); anything else settles
    /// the whole stream one batch at a time ([`Self::settle_pipelined`]).
    fn complete_oldest(&mut self) -> Result<()> {
        let Some(f) = self.inflight.pop_front() else {
            return Ok(());
        };
        let (f, outcome) = self.wait(f);
        if matches!(outcome, Ok(Appended::New)) {
            self.release(&f.url, &f.pending.keys);
            let tail = Tail::At(f.at + f.pending.keys.len() as u64);
            self.cp.acknowledge(f.stream, &f.pending, tail)?;
            self.stats.batches_sent += 1;
            self.stats.events_sent += f.pending.keys.len() as u64;
            self.stats.bytes_sent += f.pending.body.len() as u64;
            return Ok(());
        }
        self.settle_pipelined(f, outcome)
    }

    /// A pipelined batch was answered other than 200. Its stream leaves the pipeline: every later
    /// batch of it in flight is waited for, the batches the server certainly stored (up to the
    /// last 200: the server takes a producer's batches only in sequence order) are acknowledged,
    /// and the rest go again one at a time through [`Self::send`], which knows every answer. A
    /// batch numbered after one the server certainly did not store was not stored either; its
    /// journal row is dropped at once and written again, re-addressed to the stream's numbering
    /// then, just before it is sent.
    fn settle_pipelined(&mut self, first: InFlight, outcome: Result<Appended>) -> Result<()> {
        let url = first.url.clone();
        let mut batch = vec![(first, outcome)];
        let mut i = 0;
        while i < self.inflight.len() {
            if self.inflight[i].url == url {
                let f = self.inflight.remove(i).expect("index in range");
                let answered = self.wait(f);
                batch.push(answered);
            } else {
                i += 1;
            }
        }
        self.ahead.remove(&url);
        self.in_step.remove(&url);
        let stream = batch[0].0.stream;
        let last_new = batch
            .iter()
            .rposition(|(_, o)| matches!(o, Ok(Appended::New)));
        let rest = match last_new {
            Some(k) => batch.split_off(k + 1),
            None => std::mem::take(&mut batch),
        };
        // Each was taken at the position it named (a later 200 proves it), so each leaves the
        // tail right after itself.
        for (f, _) in batch {
            let tail = Tail::At(f.at + f.pending.keys.len() as u64);
            self.cp.acknowledge(stream, &f.pending, tail)?;
            self.stats.batches_sent += 1;
            self.stats.events_sent += f.pending.keys.len() as u64;
            self.stats.bytes_sent += f.pending.body.len() as u64;
        }
        let Some((head, _)) = rest.first() else {
            return Ok(());
        };
        let session = head.origin.session_id.clone();
        let unsent: u64 = rest.iter().map(|(f, _)| f.pending.keys.len() as u64).sum();
        if let Some((_, Err(e))) = rest.iter().find(|(_, o)| o.is_err()) {
            // The network failed past every retry: as when sending one at a time, the session
            // stops here, and its journal rows are settled by the next run.
            let why = format!("{e:#}");
            self.fail(&url, &session, &why, unsent);
            return Ok(());
        }
        let not_stored_from = rest.iter().position(|(_, o)| certainly_not_stored(o));
        let rest: Vec<(InFlight, bool, bool, Option<String>)> = rest
            .into_iter()
            .enumerate()
            .map(|(j, (f, o))| {
                let not_stored = not_stored_from.is_some_and(|d| j >= d);
                let maybe_stored =
                    !not_stored && matches!(o, Ok(Appended::Duplicate | Appended::Unknown { .. }));
                let too_large = match o {
                    Ok(Appended::Refused {
                        status: 413,
                        detail,
                    }) => Some(detail),
                    _ => None,
                };
                (f, not_stored, maybe_stored, too_large)
            })
            .collect();
        let mut rest = rest;
        for (f, not_stored, _, _) in rest.iter_mut().skip(1) {
            if *not_stored {
                self.cp.drop_journal(f.pending.jid)?;
                f.pending.jid = 0;
            }
        }
        let mut left = unsent;
        for (f, not_stored, maybe_stored, too_large) in rest {
            let n = f.pending.keys.len() as u64;
            let Some(cur) = self.cp.stream(&url)? else {
                anyhow::bail!("stream {} left the checkpoint", without_credentials(&url));
            };
            let mut p = f.pending;
            let before_filter = p.keys.len();
            if not_stored {
                // Batches settled before this one may have read the stream back and found
                // events of this one there (another writer's): those are not sent again.
                p = match self.drop_present(stream, p)? {
                    Some(p) => p,
                    None => {
                        left = left.saturating_sub(n);
                        continue;
                    }
                };
            }
            let in_turn = (p.epoch, p.seq) == (cur.epoch, cur.next_seq);
            if !in_turn && not_stored {
                p.epoch = cur.epoch;
                p.seq = cur.next_seq;
            }
            if p.jid == 0 || p.keys.len() != before_filter {
                self.cp.journal(stream, &mut p)?;
            }
            // A batch that may be stored, or that is out of turn without being certainly not
            // stored, is looked up on the stream before anything is sent.
            let check = maybe_stored || (!in_turn && !not_stored);
            self.current = Some(f.origin.clone());
            let before = self.stats.events_sent + self.stats.events_present;
            // A batch refused as too large, still numbered as sent, is split at once rather
            // than sent again to be refused again.
            let delivery = match too_large {
                Some(detail) if in_turn => self.split_too_large(&url, &cur, p, &detail)?,
                _ => self.send(&url, &cur, p, false, check)?,
            };
            if let Delivery::Failed(why) = delivery {
                let done = self.stats.events_sent + self.stats.events_present - before;
                self.fail(&url, &session, &why, left.saturating_sub(done));
                return Ok(());
            }
            left = left.saturating_sub(n);
        }
        Ok(())
    }

    /// Makes the stream ready for new batches in this run: reconciles a stream new to the
    /// checkpoint, and settles the batches an interrupted run left in the journal.
    fn settle_stream(
        &mut self,
        url: &str,
        created: Option<Receiver<Creation>>,
    ) -> Result<Result<StreamState, String>> {
        let first_touch = self.touched.insert(url.to_string());
        if first_touch {
            self.stats.sessions += 1;
        }
        if let Some(state) = self.cp.stream(url)? {
            if first_touch {
                let pending = self.cp.pending(state.id)?;
                let interrupted = !pending.is_empty();
                for p in pending {
                    let state = self.cp.stream(url)?.expect("stream row exists");
                    if let Delivery::Failed(why) = self.send(url, &state, p, true, true)? {
                        return Ok(Err(format!(
                            "resending the batch of an interrupted run: {why}"
                        )));
                    }
                }
                if interrupted {
                    return Ok(Ok(self.cp.stream(url)?.expect("stream row exists")));
                }
            }
            return Ok(Ok(state));
        }
        // New to this checkpoint. Create it first (or take the creation done ahead): a stream
        // created now (201) is empty and has no producer state, so there is nothing to read
        // back and its first batch (epoch 0, seq 0) may be pipelined like any batch of a
        // stream in step.
        let creation = match created.and_then(|c| c.recv().ok().flatten()) {
            Some(c) => c,
            None => self.client.create(url).map_err(|e| format!("{e:#}")),
        };
        match creation {
            Ok(true) => {
                let state = self.cp.add_stream(url, 0)?;
                self.in_step.insert(url.to_string());
                return Ok(Ok(state));
            }
            Ok(false) => {}
            Err(e) => return Ok(Err(e)),
        }
        // It existed: learn what it holds. It is written in a fresh epoch (1, or the server's + 1
        // on a 403), so a producer state left by a deleted checkpoint cannot swallow new batches
        // as duplicates of old sequence numbers.
        let client = &mut self.client;
        let read = self.cp.add_server_keys(url, Some(0), |add| {
            client.read_keys(url, add).map(|n| n.unwrap_or(0))
        })?;
        match read {
            Ok(read) => {
                if read.added > 0 {
                    tonbo_core::note!(
                        "tonbo-post: {}: not in the checkpoint; the stream already holds {} events, which will not be sent again",
                        without_credentials(url),
                        read.added
                    );
                }
                self.note_overfull(&read);
                self.cp.set_epoch(read.state.id, 1, 0)?;
                Ok(Ok(self.cp.stream(url)?.expect("stream row exists")))
            }
            Err(e) => Ok(Err(format!("reading the stream back failed: {e:#}"))),
        }
    }

    /// Keeps a stream read back holding more events than keys for the summary.
    fn note_overfull(&mut self, read: &ServerRead) {
        if read.events > read.keys {
            let session_id = self
                .current
                .as_ref()
                .map_or_else(String::new, |o| o.session_id.clone());
            // A stream read back more than once in a run (lost races) is named once.
            if let Some(o) = self
                .stats
                .overfull
                .iter_mut()
                .find(|o| o.session_id == session_id)
            {
                (o.events, o.keys) = (read.events, read.keys);
                return;
            }
            self.stats.overfull.push(Overfull {
                session_id,
                events: read.events,
                keys: read.keys,
            });
        }
    }

    /// Sends a journaled batch until the server has it, claiming a fresh epoch where allowed.
    /// `check` first looks at the stream: for a batch the server may have stored already (an
    /// interrupted run's, or one whose answer was lost), whatever the server's producer state
    /// says. The batch is written for the stream's tail as the checkpoint knows it then; a
    /// stream whose tail is unknown is looked at first the same way.
    fn send(
        &mut self,
        url: &str,
        state: &StreamState,
        mut p: Pending,
        replay: bool,
        mut check: bool,
    ) -> Result<Delivery> {
        let mut created = false;
        let mut claimed = false;
        let mut verified = false;
        let mut unanswered = 0u32;
        let mut conflicts = 0u32;
        loop {
            let n = p.keys.len() as u64;
            if check {
                check = false;
                p = match self.check_stream(url, state, p, replay)? {
                    Ok(Some(p)) => p,
                    Ok(None) => return Ok(Delivery::Done),
                    Err(why) => return Ok(Delivery::Failed(why)),
                };
                continue;
            }
            let Some(at) = self.cp.stream(url)?.and_then(|s| s.tail) else {
                check = true;
                continue;
            };
            match net!(self.client.append(url, p.epoch, p.seq, at, &p.body)) {
                Appended::New => {
                    self.cp.acknowledge(state.id, &p, Tail::At(at + n))?;
                    self.in_step.insert(url.to_string());
                    self.stats.batches_sent += 1;
                    if replay {
                        self.stats.events_recovered += n;
                    }
                    self.stats.events_sent += n;
                    self.stats.bytes_sent += p.body.len() as u64;
                    return Ok(Delivery::Done);
                }
                Appended::Duplicate if replay => {
                    // Sent by the interrupted run, and the server has it; where it stands in
                    // the stream is not known from here.
                    self.cp.acknowledge(state.id, &p, Tail::Unknown)?;
                    self.stats.events_recovered += n;
                    self.stats.events_present += n;
                    return Ok(Delivery::Done);
                }
                Appended::Unknown { why } => {
                    unanswered += 1;
                    if unanswered > self.client.retry.max_retries {
                        return Ok(Delivery::Failed(format!(
                            "no answer to batch seq {} after {} attempts: {why}",
                            p.seq, unanswered
                        )));
                    }
                    if !self.client.health.sleep(self.client.retry.delay(unanswered - 1, None)) {
                        return Ok(Delivery::Failed("stopped".into()));
                    }
                    check = true;
                }
                outcome @ (Appended::Duplicate | Appended::Gap { .. }) if !verified => {
                    // 204: this checkpoint never sent (epoch, seq), yet the server has it (the
                    // checkpoint is behind the server: restored, or a second one). 409 gap: the
                    // server expects another seq (the checkpoint is ahead: a stream recreated, or
                    // a server that lost its producer state). The server dedupes by seq, not
                    // content, so look at the content, and go on in a fresh epoch.
                    verified = true;
                    let why = match outcome {
                        Appended::Gap { expected, received } => format!(
                            "sequence gap (HTTP 409): the server expects seq {}, this checkpoint sent {} in epoch {}",
                            expected.map_or("?".into(), |e| e.to_string()),
                            received.map_or(p.seq.to_string(), |r| r.to_string()),
                            p.epoch
                        ),
                        _ => format!(
                            "the server already had epoch {} seq {} (from another checkpoint, or this one restored from a copy)",
                            p.epoch, p.seq
                        ),
                    };
                    p = match self.recut_against_server(url, state, p, &why)? {
                        Ok(Some(p)) => p,
                        Ok(None) => return Ok(Delivery::Done),
                        Err(why) => return Ok(Delivery::Failed(why)),
                    };
                }
                Appended::Duplicate => {
                    return Ok(Delivery::Failed(format!(
                        "the server answers 204 (duplicate) to epoch {} seq {} after a fresh claim",
                        p.epoch, p.seq
                    )));
                }
                Appended::NotFound if !created => {
                    net!(self.client.create(url));
                    created = true;
                }
                Appended::NotFound => {
                    return Ok(Delivery::Failed(
                        "the stream is still missing after it was created".into(),
                    ))
                }
                Appended::StaleEpoch { server_epoch } if !state.claimed && !claimed => {
                    let epoch = server_epoch.unwrap_or(p.epoch).max(p.epoch) + 1;
                    self.cp.set_epoch(state.id, epoch, p.jid)?;
                    p.epoch = epoch;
                    p.seq = 0;
                    claimed = true;
                }
                Appended::StaleEpoch { server_epoch } => {
                    return Ok(Delivery::Failed(format!(
                        "another writer holds this stream (HTTP 403: the server is at producer epoch {}, this checkpoint at {}); stopped this session",
                        server_epoch.map_or("?".into(), |e| e.to_string()),
                        p.epoch
                    )))
                }
                Appended::Gap { expected, received } => {
                    return Ok(Delivery::Failed(format!(
                        "sequence gap (HTTP 409): the server expects seq {}, this checkpoint sent {} in epoch {}, even after a fresh claim",
                        expected.map_or("?".into(), |e| e.to_string()),
                        received.map_or(p.seq.to_string(), |r| r.to_string()),
                        p.epoch
                    )))
                }
                Appended::SeqConflict { last } => {
                    // Another writer appended at this position first; nothing was stored and the
                    // producer seq is unused. Keep what the stream still lacks, for its new tail.
                    conflicts += 1;
                    p = match self.after_conflict(url, state, p, at, last, conflicts)? {
                        Ok(Some(p)) => p,
                        Ok(None) => return Ok(Delivery::Done),
                        Err(why) => return Ok(Delivery::Failed(why)),
                    };
                }
                Appended::Closed => {
                    return Ok(Delivery::Failed(
                        "the stream is closed (HTTP 409, Stream-Closed); nothing more can be appended".into(),
                    ))
                }
                Appended::Refused { status: 413, detail } => {
                    return self.split_too_large(url, state, p, &detail);
                }
                Appended::Refused { status, detail } => {
                    return Ok(Delivery::Failed(format!(
                        "HTTP {status} for batch seq {} of {} events (source_key {} .. {}): {detail}",
                        p.seq,
                        n,
                        p.keys.first().map_or("", String::as_str),
                        p.keys.last().map_or("", String::as_str),
                    )))
                }
            }
        }
    }

    /// Reads a stream known to the checkpoint back, recording every key it holds as present and
    /// its tail.
    fn read_back(&mut self, url: &str) -> Result<Result<(), String>> {
        let client = &mut self.client;
        let read = self.cp.add_server_keys(url, None, |add| {
            client.read_keys(url, add).map(|n| n.unwrap_or(0))
        })?;
        match read {
            Ok(read) => {
                self.note_overfull(&read);
                Ok(Ok(()))
            }
            Err(e) => Ok(Err(format!("reading the stream back failed: {e:#}"))),
        }
    }

    /// A batch written for position `at` lost it to another writer (409 to its `Stream-Seq`):
    /// read the stream back, and keep the batch's events it still lacks, under the same
    /// `(epoch, seq)` (the server used neither). `None` when it holds them all.
    fn after_conflict(
        &mut self,
        url: &str,
        state: &StreamState,
        p: Pending,
        at: u64,
        last: Option<String>,
        conflicts: u32,
    ) -> Result<Result<Option<Pending>, String>> {
        if conflicts > MAX_POSITION_CONFLICTS {
            return Ok(Err(format!(
                "batch seq {} lost its stream position to other writers {MAX_POSITION_CONFLICTS} times in a row; stopped this session",
                p.seq
            )));
        }
        if let Err(why) = self.read_back(url)? {
            return Ok(Err(why));
        }
        let tail = self.cp.stream(url)?.and_then(|s| s.tail);
        if tail == Some(at) {
            // The stream is where this checkpoint thought, yet the position was refused: its last
            // Stream-Seq was set by a writer numbering appends another way.
            return Ok(Err(format!(
                "the server refuses stream position {at} (HTTP 409 to Stream-Seq {}; its last is {}) although the stream holds exactly {at} events: another kind of writer numbers its appends on this stream. Nothing was written, so nothing is doubled; stopped this session",
                crate::client::stream_seq(at),
                last.as_deref().unwrap_or("not given")
            )));
        }
        let Some(mut p) = self.drop_present(state.id, p)? else {
            return Ok(Ok(None));
        };
        self.cp.journal(state.id, &mut p)?;
        Ok(Ok(Some(p)))
    }

    /// A batch the server did not store, without the events the checkpoint now knows the stream
    /// holds (counted as present); `None`, its journal row dropped (the seq stays unused), when
    /// that is all of them. The caller journals a changed batch.
    fn drop_present(&mut self, stream: i64, p: Pending) -> Result<Option<Pending>> {
        let states = self
            .cp
            .key_states(stream, p.keys.iter().map(String::as_str))?;
        if states.iter().all(|s| *s == KeyState::New) {
            return Ok(Some(p));
        }
        let events: Vec<&RawValue> = serde_json::from_slice(&p.body)?;
        let mut keys = Vec::new();
        let mut body = vec![b'['];
        for ((key, ev), st) in p.keys.iter().zip(events).zip(states) {
            if st != KeyState::New {
                self.stats.events_present += 1;
                continue;
            }
            if !keys.is_empty() {
                body.push(b',');
            }
            body.extend_from_slice(ev.get().as_bytes());
            keys.push(key.clone());
        }
        body.push(b']');
        if keys.is_empty() {
            if p.jid != 0 {
                self.cp.drop_journal(p.jid)?;
            }
            return Ok(None);
        }
        Ok(Some(Pending { keys, body, ..p }))
    }

    /// Looks at the stream before (re)sending a batch it may hold already: if it holds all of
    /// the batch's events, the batch is acknowledged without sending; if it holds none, the batch
    /// goes as it is (same epoch and seq, so the server's own dedupe covers a copy still on its
    /// way); if some, the rest go in a fresh epoch ([`Self::recut_against_server`]).
    fn check_stream(
        &mut self,
        url: &str,
        state: &StreamState,
        p: Pending,
        replay: bool,
    ) -> Result<Result<Option<Pending>, String>> {
        if let Err(why) = self.read_back(url)? {
            return Ok(Err(why));
        }
        let states = self
            .cp
            .key_states(state.id, p.keys.iter().map(String::as_str))?;
        let held = states.iter().filter(|s| **s == KeyState::Present).count();
        let n = p.keys.len() as u64;
        if held == p.keys.len() {
            self.cp.acknowledge(state.id, &p, Tail::Keep)?;
            self.stats.events_present += n;
            if replay {
                self.stats.events_recovered += n;
            }
            return Ok(Ok(None));
        }
        if held == 0 {
            let cur = self.cp.stream(url)?.expect("stream row exists");
            let mut p = p;
            if (p.epoch, p.seq) != (cur.epoch, cur.next_seq) {
                // Numbered before the stream moved on (a batch after it was re-cut): take the
                // stream's next number.
                p.epoch = cur.epoch;
                p.seq = cur.next_seq;
                self.cp.journal(state.id, &mut p)?;
            }
            return Ok(Ok(Some(p)));
        }
        self.recut_against_server(
            url,
            state,
            p,
            "the stream holds some of a batch whose answer was lost",
        )
    }

    /// The server refused a batch as too large (HTTP 413): send it again as two halves, the
    /// journal following the split (the first half takes the batch's place, the second the next
    /// sequence number); an event too large alone is rejected by its key and the session goes on.
    fn split_too_large(
        &mut self,
        url: &str,
        state: &StreamState,
        p: Pending,
        detail: &str,
    ) -> Result<Delivery> {
        let events: Vec<&RawValue> = serde_json::from_slice(&p.body)?;
        if events.len() <= 1 {
            let key = p.keys.first().cloned().unwrap_or_default();
            let reason = format!(
                "the server refuses event source_key `{key}` as too large even alone (HTTP 413, {} bytes): {detail}",
                p.body.len()
            );
            // The server stored nothing under this (epoch, seq): drop the journal, keep the seq.
            self.cp.drop_journal(p.jid)?;
            if let Some(o) = &self.current {
                let index = o.index_of.get(&key).copied().unwrap_or(0);
                self.rejects.push(Rejected {
                    input: o.input.clone(),
                    line: o.line,
                    reason: format!("event {index} of the batch: {reason}"),
                    raw: events
                        .first()
                        .map_or(Vec::new(), |e| e.get().as_bytes().to_vec()),
                });
            }
            return Ok(Delivery::Done);
        }
        let mid = events.len() / 2;
        let halves = [(0, mid), (mid, events.len())];
        // The first half takes the batch's journal row, the second gets one of its own.
        let mut jid = p.jid;
        for (a, b) in halves {
            let current = self.cp.stream(url)?.expect("stream row exists");
            let mut body = vec![b'['];
            for (i, ev) in events[a..b].iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(ev.get().as_bytes());
            }
            body.push(b']');
            let mut half = Pending {
                jid,
                epoch: current.epoch,
                seq: current.next_seq,
                run: p.run,
                keys: p.keys[a..b].to_vec(),
                body,
            };
            jid = 0;
            self.cp.journal(state.id, &mut half)?;
            if let Delivery::Failed(why) = self.send(url, &current, half, false, false)? {
                return Ok(Delivery::Failed(why));
            }
        }
        Ok(Delivery::Done)
    }

    /// After an unexpected 204 or 409 gap: record what the server holds, keep only the events it lacks, and
    /// move to a fresh epoch for them. `None` when the server has them all.
    fn recut_against_server(
        &mut self,
        url: &str,
        state: &StreamState,
        p: Pending,
        why: &str,
    ) -> Result<Result<Option<Pending>, String>> {
        if let Err(why) = self.read_back(url)? {
            return Ok(Err(why));
        }
        let events: Vec<&RawValue> = serde_json::from_slice(&p.body)?;
        let mut keys = Vec::new();
        let mut body = vec![b'['];
        let mut present = 0;
        for (key, ev) in p.keys.iter().zip(events) {
            if self.cp.key_state(state.id, key)? == KeyState::Present {
                present += 1;
                continue;
            }
            if !keys.is_empty() {
                body.push(b',');
            }
            body.extend_from_slice(ev.get().as_bytes());
            keys.push(key.clone());
        }
        body.push(b']');
        self.stats.events_present += present;
        if keys.is_empty() {
            // Settle the journal and move past the seq the server already has.
            self.cp.acknowledge(
                state.id,
                &Pending {
                    keys: Vec::new(),
                    ..p
                },
                Tail::Keep,
            )?;
            return Ok(Ok(None));
        }
        let current = self.cp.stream(url)?.map_or(p.epoch, |c| c.epoch);
        let epoch = p.epoch.max(current) + 1;
        tonbo_core::note!(
            "tonbo-post: {}: {why}; {} of the batch's events are missing there and go out in epoch {epoch}",
            without_credentials(url),
            keys.len()
        );
        self.cp.set_epoch(state.id, epoch, p.jid)?;
        let mut p = Pending {
            jid: p.jid,
            epoch,
            seq: 0,
            run: p.run,
            keys,
            body,
        };
        self.cp.journal(state.id, &mut p)?;
        Ok(Ok(Some(p)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_template_encodes_the_session_id() {
        let t = UrlTemplate::new("{base}/v1/sessions/{session_id}/events", "http://h:1/").unwrap();
        assert_eq!(
            t.url("codex-ab_c.1~"),
            "http://h:1/v1/sessions/codex-ab_c.1~/events"
        );
        assert_eq!(
            t.url("a/b c?é"),
            "http://h:1/v1/sessions/a%2Fb%20c%3F%C3%A9/events"
        );
        assert!(UrlTemplate::new("{base}/x", "b").is_err());
    }
}
