//! Posting the input: batch lines are read in order and handed to `--concurrency` workers, each
//! a [`Poster`] over kept-alive connections. Sessions are spread over the workers by a hash of
//! their id, so all batches of a session go, in input order, to the same worker; the bounded
//! queues hold the reader back when the workers are busy, so memory stays flat whatever the
//! input size. Streams are created ahead of their workers ([`Creators`]) as the reader meets
//! their sessions.

use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, Result};
use tonbo_core::contract::{check_session_id, stable_hash};
use tonbo_core::progress::Counters;
use tonbo_core::{Exit, Input, Progress, Rejects};

use crate::buffers::Buffers;
use crate::checkpoint::Checkpoint;
use crate::client::{LostAnswer, StreamClient};
use crate::creators::{Creation, Creators};
use crate::health::{signal_name, watch_for_a_stuck_stop, Halt, Halted, Health};
use crate::input::{batch_to_post, session_of, BatchEvents, ReadBatch};
use crate::poster::{Batch, Poster, Rejected};
use crate::retry::RetryPolicy;
use crate::summary::{progress_line, Stats};
use crate::url_template::UrlTemplate;
use crate::{Run, STAGE};

/// Batches queued per worker. Input holds each session's batches together, so a session's worker
/// may be busy while the others could take the next sessions; a queue this deep lets the reader
/// run ahead that far (at most this many request bodies of 1 MiB per worker in memory). 12 put
/// peak RSS at 63-66 MB over the 1 GB Goose corpus (its batches are large), over the 64 MB
/// target; 8, at 58-60 MB, with the same throughput within the run-to-run spread.
const QUEUE_PER_WORKER: usize = 8;

/// How long a worker waits for its next batch before settling the batches it has in flight.
const SETTLE_WHEN_IDLE: Duration = Duration::from_millis(200);

/// How a run posts: its checkpoint, as whom, and how hard it tries.
pub struct PostOptions {
    /// The checkpoint file.
    pub state: PathBuf,
    /// The producer id to write as; the checkpoint's own when `None`.
    pub producer_id: Option<String>,
    pub api_key: Option<String>,
    pub retry: RetryPolicy,
    /// Timeout of one request.
    pub timeout: Duration,
    /// Workers, each posting its sessions.
    pub concurrency: usize,
    /// Batches each worker may have in flight at once.
    pub window: usize,
}

/// One batch line, handed to the worker that owns its session.
struct Job {
    input: Arc<str>,
    number: u64,
    line: Vec<u8>,
    /// The creation of the session's stream, started as the reader met the session.
    created: Option<Receiver<Creation>>,
}

/// How the reading of the input ended.
#[derive(Default)]
struct Fed {
    /// Reading an input failed.
    error: Option<anyhow::Error>,
    /// The run stopped before the end of its input.
    input_left: bool,
}

/// What the workers came to, together.
struct Joined {
    stats: Stats,
    error: Option<anyhow::Error>,
}

/// The workers, each with the queue it takes its batch lines from.
struct Workers {
    queues: Vec<SyncSender<Job>>,
    handles: Vec<JoinHandle<Result<Stats>>>,
    /// The lines' buffers, which come back from the workers as their batches are taken.
    buffers: Buffers,
}

/// Posts the input, and says how the run ended.
pub fn post(run: Run, opts: PostOptions, health: Arc<Health>) -> Result<Exit> {
    let cp = Checkpoint::open(&opts.state)?;
    let producer_id = match &opts.producer_id {
        Some(id) => id.clone(),
        None => cp.producer_id()?,
    };
    let mut client = StreamClient::new(
        opts.api_key.clone(),
        producer_id,
        opts.retry.clone(),
        opts.timeout,
        health.clone(),
    );
    watch_for_a_stuck_stop(&health);
    client.lost_answer = LostAnswer::Report;
    let rejects = Arc::new(Mutex::new(run.rejects));
    // Dropped on every way out of this function, which erases the line before the summary or
    // the error is printed.
    let progress = Progress::start(!run.quiet, progress_line);
    let counters = progress.active().then(|| progress.counters().clone());
    let workers = Workers::start(&opts, &cp, &client, &run.urls, &rejects, counters)?;
    let creators = Creators::new(workers.queues.len(), &cp, &client)?;
    let fed = workers.feed(run.inputs, &run.urls, &creators, &health);
    let input_left = fed.input_left;
    let Joined { stats, error } = workers.join(fed.error);
    progress.finish();
    let halt = health.halted();
    let stopping = halt.is_some() || health.signal().is_some();
    match error {
        // A stop makes requests fail with `Halted`; that is reported below, once.
        Some(e) if stopping && e.chain().any(|c| c.is::<Halted>()) => {}
        Some(e) => return Err(e),
        None => {}
    }
    drop(cp);
    let rejects = Arc::try_unwrap(rejects)
        .map_err(|_| anyhow!("rejects still shared"))?
        .into_inner()
        .map_err(|_| anyhow!("rejects poisoned"))?;
    let rejected = rejects.finish()?;
    if !run.quiet {
        tonbo_core::note!("{}", stats.summary(rejected));
    }
    if let Some(alarm) = stats.overfull_alarm() {
        tonbo_core::note!("{alarm}");
    }
    // A signal whose grace let the whole input go out (a sidecar's pipeline drained) is a
    // normal end; one that left something unsent is not.
    let signal = health
        .signal()
        .filter(|_| input_left || stats.events_failed > 0);
    Ok(match halt.or(signal.map(Halt::Signal)) {
        Some(halt) => stopped(halt, &health),
        None => {
            let overfull = stats.overfull.len() as u64;
            Exit::from_failures(rejected + stats.sessions_failed + overfull)
        }
    })
}

/// Says why the run stopped before the end of its input.
fn stopped(halt: Halt, health: &Health) -> Exit {
    match halt {
        Halt::ServerDown => {
            tonbo_core::note!(
                "{STAGE}: stopped: the server has answered nothing for {:.0}s (last failure: {}); the rest of the input was not sent; the checkpoint is saved, run again later to go on (--retry-for {:.0} sets how long to keep trying)",
                health.silent_for().as_secs_f64(),
                health.last_failure(),
                health.retry_for().as_secs_f64(),
            );
            Exit::Unavailable
        }
        Halt::Signal(sig) => {
            tonbo_core::note!(
                "{STAGE}: stopped by {} before the end of its input; the checkpoint is saved, run again to go on",
                signal_name(sig)
            );
            Exit::Signalled(sig)
        }
    }
}

impl Workers {
    fn start(
        opts: &PostOptions,
        cp: &Checkpoint,
        client: &StreamClient,
        urls: &UrlTemplate,
        rejects: &Arc<Mutex<Rejects>>,
        counters: Option<Arc<Counters>>,
    ) -> Result<Workers> {
        let n = opts.concurrency.max(1);
        let buffers = Buffers::default();
        let mut queues = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        for _ in 0..n {
            let (tx, rx) = sync_channel::<Job>(QUEUE_PER_WORKER);
            let mut poster = Poster::new(cp.another()?, client.clone(), urls.clone(), opts.window)?;
            poster.buffers = buffers.clone();
            let worker = Worker {
                poster,
                rejects: rejects.clone(),
                counters: counters.clone(),
                published: Stats::default(),
            };
            queues.push(tx);
            handles.push(std::thread::spawn(move || worker.work(rx)));
        }
        Ok(Workers {
            queues,
            handles,
            buffers,
        })
    }

    /// Reads every input to its end (or until the run stops), handing each line to the worker
    /// of its session.
    fn feed(
        &self,
        inputs: Vec<Input>,
        urls: &UrlTemplate,
        creators: &Creators,
        health: &Health,
    ) -> Fed {
        let n = self.queues.len();
        let mut last_session = vec![String::new(); n];
        for input in inputs {
            let mut lines = input.lines();
            let name: Arc<str> = lines.name.clone().into();
            loop {
                if health.halted().is_some() {
                    return Fed {
                        error: None,
                        input_left: true,
                    };
                }
                // Read into a buffer of its own, which goes to the worker as it is.
                let mut line = self.buffers.take();
                let number = match lines.next_line_into(&mut line) {
                    Ok(Some((number, _))) => number,
                    Ok(None) => break,
                    Err(e) => {
                        return Fed {
                            error: Some(e.into()),
                            input_left: false,
                        }
                    }
                };
                // The buffer grew by doubling as the line came in: what the line does not use goes
                // back (shrinking in place, no copy), or the dozens of queued lines hold up to
                // twice their size (79 MB where 53 were needed over the 1 GB benchmark corpus).
                if line.capacity() - line.len() > line.len() / 4 {
                    line.shrink_to_fit();
                }
                // Not even a session id: the full parse in the worker names the reason.
                let session = session_of(&line).unwrap_or_default();
                let worker = (stable_hash(session.as_bytes()) % n as u64) as usize;
                // A session's batches arrive together: a session new to its worker is (usually)
                // one not seen before in this run.
                let new = *last_session[worker] != *session && check_session_id(&session).is_ok();
                let created = new.then(|| {
                    last_session[worker] = session.to_string();
                    creators.create(urls.url(&session))
                });
                let job = Job {
                    input: name.clone(),
                    number,
                    line,
                    created,
                };
                if self.queues[worker].send(job).is_err() {
                    return Fed::default(); // that worker stopped on an error, reported after
                }
            }
        }
        Fed::default()
    }

    /// Ends the input of every worker and waits for them: their counters added up, and the
    /// first error (`first`, then the workers' in turn).
    fn join(self, first: Option<anyhow::Error>) -> Joined {
        drop(self.queues);
        let mut total = Stats::default();
        let mut first_error = first;
        for h in self.handles {
            match h.join() {
                Ok(Ok(s)) => total.add(&s),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert(anyhow!("a worker thread panicked"));
                }
            }
        }
        Joined {
            stats: total,
            error: first_error,
        }
    }
}

/// A worker: posts the batches of its sessions, in order.
struct Worker {
    poster: Poster,
    rejects: Arc<Mutex<Rejects>>,
    /// The progress line's counters, when it is drawn.
    counters: Option<Arc<Counters>>,
    /// What this worker has added to the progress counters so far: it adds only the
    /// difference, a few relaxed atomic adds per batch.
    published: Stats,
}

impl Worker {
    fn work(mut self, rx: Receiver<Job>) -> Result<Stats> {
        loop {
            // Input that goes quiet (a followed session) leaves batches answered but not yet
            // acknowledged; settle them after a short wait, so the checkpoint keeps up.
            let job = match rx.recv_timeout(SETTLE_WHEN_IDLE) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    self.poster.settle_in_flight()?;
                    self.publish();
                    self.report()?;
                    match rx.recv() {
                        Ok(job) => job,
                        Err(_) => break,
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            self.take(job)?;
        }
        self.poster.settle_in_flight()?;
        self.report()?;
        Ok(self.poster.stats())
    }

    /// Posts one batch line; what of it cannot be used is rejected by line.
    fn take(&mut self, job: Job) -> Result<()> {
        let mut to_rejects =
            |reason: &str, raw: &[u8]| reject(&self.rejects, &job.input, job.number, reason, raw);
        let batch = match batch_to_post(&job.line, &mut to_rejects)? {
            None => return Ok(()),
            Some(ReadBatch::Head {
                session_id,
                keys,
                array,
            }) => {
                // The line becomes the request body where it stands.
                let events = BatchEvents::Whole {
                    keys,
                    line: job.line,
                    array,
                };
                let batch = Batch {
                    session_id: &session_id,
                    events,
                    input: &job.input,
                    line: job.number,
                };
                return self.post(batch, job.created);
            }
            Some(ReadBatch::Each(batch)) => batch,
        };
        let batch = Batch {
            session_id: &batch.session_id,
            events: BatchEvents::Each(batch.events),
            input: &job.input,
            line: job.number,
        };
        self.post(batch, job.created)
    }

    fn post(&mut self, batch: Batch<'_>, created: Option<Receiver<Creation>>) -> Result<()> {
        self.poster.post_batch(batch, created)?;
        self.publish();
        self.report()
    }

    /// Adds what the poster counted since last time to the progress line.
    fn publish(&mut self) {
        let Some(counters) = &self.counters else {
            return;
        };
        let now = self.poster.stats();
        now.publish_since(&self.published, counters);
        self.published = now;
    }

    /// Writes the rejects the poster found.
    fn report(&mut self) -> Result<()> {
        for r in self.poster.take_rejects() {
            let Rejected {
                input,
                line,
                reason,
                raw,
            } = r;
            reject(&self.rejects, &input, line, &reason, &raw)?;
        }
        Ok(())
    }
}

fn reject(
    rejects: &Mutex<Rejects>,
    input: &str,
    line: u64,
    reason: &str,
    raw: &[u8],
) -> Result<()> {
    rejects
        .lock()
        .map_err(|_| anyhow!("rejects poisoned"))?
        .reject(input, line, reason, raw)
}
