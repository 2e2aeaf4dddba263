//! The batches of streams in step with the server, up to the window in flight at once, each over
//! a connection of its own. A 200 is acknowledged in sequence order; any other answer takes the
//! stream out of the pipeline and settles it one batch at a time ([`Poster::send`]).

use std::collections::VecDeque;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use anyhow::{bail, Result};

use crate::checkpoint::{Pending, StreamState, Tail};
use crate::client::{Appended, StreamClient};
use crate::threads::JobThreads;

use super::send::{JournaledBy, Look, Sending};
use super::{BatchOrigin, DeliveryError, Poster};

/// A batch sent and not yet settled.
pub(super) struct InFlight {
    url: String,
    stream: i64,
    /// The stream position it was written for.
    at: u64,
    /// Its body is with the sender thread until the answer comes back.
    pending: Pending,
    origin: Arc<BatchOrigin>,
    answer: Receiver<Answer>,
}

/// For a stream with batches in flight: where its next batch goes, and the keys in flight.
#[derive(Default)]
pub(super) struct Ahead {
    pub epoch: u64,
    pub next_seq: u64,
    /// The stream's position after the batches in flight.
    pub tail: u64,
    pub keys: foldhash::HashSet<String>,
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
pub(super) struct Senders {
    threads: JobThreads<SendJob>,
}

impl Senders {
    pub fn start(n: usize, client: &StreamClient) -> Result<Senders> {
        let threads = JobThreads::start(n, || {
            let mut client = client.clone();
            Ok(move |job: SendJob| {
                let before = client.retries;
                let outcome = client.append(&job.url, job.epoch, job.seq, job.at, &job.body);
                let _ = job.answer.send(Answer {
                    body: job.body,
                    outcome,
                    retries: client.retries - before,
                });
            })
        })?;
        Ok(Senders { threads })
    }
}

/// A batch in flight, with the answer it got.
struct Answered {
    batch: InFlight,
    outcome: Result<Appended>,
}

/// What the answers to a stream's batches in flight prove about one that was not taken.
enum Proof {
    /// It may be stored (204, or no answer): look at the stream before sending it again.
    MaybeStored,
    /// It was not stored (it, or a batch before it, was refused).
    NotStored,
    /// Not stored: refused as too large (HTTP 413, with the server's words).
    TooLarge(String),
}

/// A batch to send again one at a time, and what is known of it.
struct Resend {
    batch: InFlight,
    proof: Proof,
}

/// A batch ready to go out again, one at a time.
struct Ready {
    current: StreamState,
    p: Pending,
    /// `Some` for a batch to split at once (its 413's words), rather than send to be refused
    /// again.
    split: Option<String>,
    how: Sending,
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

impl Poster {
    /// Hands a journaled batch of a stream in step to a sender thread, then waits for the
    /// oldest batches in flight while the window is full.
    pub(super) fn pipeline(
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
        if !self.senders.as_ref().is_some_and(|s| s.threads.send(job)) {
            bail!("the sender threads stopped");
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

    fn wait(&mut self, mut batch: InFlight) -> Answered {
        let outcome = match batch.answer.recv() {
            Ok(a) => {
                batch.pending.body = a.body;
                self.client.retries += a.retries;
                a.outcome
            }
            Err(_) => Err(anyhow::anyhow!("the sender thread stopped")),
        };
        Answered { batch, outcome }
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

    /// Acknowledges a batch taken (200) at the position it named: it leaves the tail right
    /// after itself.
    fn acknowledge_taken(&mut self, f: &InFlight) -> Result<()> {
        let tail = Tail::At(f.at + f.pending.keys.len() as u64);
        self.cp.acknowledge(f.stream, &f.pending, tail)?;
        self.count_sent(&f.pending);
        Ok(())
    }

    /// Waits for the oldest batch in flight. A 200 is acknowledged (a stream's batches leave
    /// the queue in sequence order, so acknowledgements keep that order); anything else settles
    /// the whole stream one batch at a time ([`Self::settle_pipelined`]).
    pub(super) fn complete_oldest(&mut self) -> Result<()> {
        let Some(f) = self.inflight.pop_front() else {
            return Ok(());
        };
        let answered = self.wait(f);
        if matches!(answered.outcome, Ok(Appended::New)) {
            let f = answered.batch;
            self.release(&f.url, &f.pending.keys);
            self.acknowledge_taken(&f)?;
            self.buffers.give(f.pending.body);
            return Ok(());
        }
        self.settle_pipelined(answered)
    }

    /// A pipelined batch was answered other than 200. Its stream leaves the pipeline: every later
    /// batch of it in flight is waited for, the batches the server certainly stored (up to the
    /// last 200: the server takes a producer's batches only in sequence order) are acknowledged,
    /// and the rest go again one at a time through [`Self::send`], which knows every answer.
    fn settle_pipelined(&mut self, first: Answered) -> Result<()> {
        let url = first.batch.url.clone();
        let stream = first.batch.stream;
        let mut answered = vec![first];
        let (same, others): (VecDeque<InFlight>, VecDeque<InFlight>) =
            std::mem::take(&mut self.inflight)
                .into_iter()
                .partition(|f| f.url == url);
        self.inflight = others;
        for f in same {
            let a = self.wait(f);
            answered.push(a);
        }
        self.ahead.remove(&url);
        self.in_step.remove(&url);
        // Each batch up to the last 200 was taken at the position it named (a later 200 proves
        // it).
        let taken = answered
            .iter()
            .rposition(|a| matches!(a.outcome, Ok(Appended::New)))
            .map_or(0, |last| last + 1);
        let rest = answered.split_off(taken);
        for a in &answered {
            self.acknowledge_taken(&a.batch)?;
        }
        let Some(head) = rest.first() else {
            return Ok(());
        };
        let session = head.batch.origin.session_id.clone();
        let unsent: u64 = rest.iter().map(|a| a.batch.pending.keys.len() as u64).sum();
        if let Some(e) = rest.iter().find_map(|a| a.outcome.as_ref().err()) {
            // The network failed past every retry: as when sending one at a time, the session
            // stops here, and its journal rows are settled by the next run.
            let why = format!("{e:#}");
            self.fail(&url, &session, &why, unsent);
            return Ok(());
        }
        self.resend(&url, stream, &session, proofs(rest), unsent)
    }

    /// Sends a stream's batches that were not taken again, one at a time. A batch numbered
    /// after one the server certainly did not store was not stored either; the journal rows of
    /// all such batches are dropped at once, together, and each is written again, re-addressed to
    /// the stream's numbering then, just before it is sent.
    fn resend(
        &mut self,
        url: &str,
        stream: i64,
        session: &str,
        mut rest: Vec<Resend>,
        unsent: u64,
    ) -> Result<()> {
        let not_stored: Vec<&mut Resend> = rest
            .iter_mut()
            .skip(1)
            .filter(|r| !matches!(r.proof, Proof::MaybeStored))
            .collect();
        let jids: Vec<i64> = not_stored.iter().map(|r| r.batch.pending.jid).collect();
        self.cp.drop_journals(&jids)?;
        for r in not_stored {
            r.batch.pending.jid = 0;
        }
        let mut left = unsent;
        for r in rest {
            let n = r.batch.pending.keys.len() as u64;
            let origin = r.batch.origin.clone();
            let Some(ready) = self.ready_to_resend(url, stream, r)? else {
                left = left.saturating_sub(n);
                continue;
            };
            self.current = Some(origin);
            let before = self.stats.events_sent + self.stats.events_present;
            let sent = match ready.split {
                Some(detail) => self.split_too_large(url, &ready.current, ready.p, &detail),
                None => self.send(url, &ready.current, ready.p, ready.how),
            };
            if let Err(e) = sent {
                if let DeliveryError::Session(_) = e {
                    let done = self.stats.events_sent + self.stats.events_present - before;
                    left = left.saturating_sub(done);
                }
                return self.fail_or_stop(url, session, e, left);
            }
            left = left.saturating_sub(n);
        }
        Ok(())
    }

    /// A batch not taken, readied to go again: without the events the stream now holds, if it
    /// was not stored (batches settled before it may have read the stream back and found events
    /// of it there, another writer's), and renumbered if it is out of turn. `None` when nothing
    /// is left of it.
    fn ready_to_resend(&mut self, url: &str, stream: i64, r: Resend) -> Result<Option<Ready>> {
        let current = self.stream_state(url)?;
        let not_stored = !matches!(r.proof, Proof::MaybeStored);
        let mut p = r.batch.pending;
        let before_filter = p.keys.len();
        if not_stored {
            p = match self.drop_present(stream, p)? {
                Some(p) => p,
                None => return Ok(None),
            };
        }
        let in_turn = (p.epoch, p.seq) == (current.epoch, current.next_seq);
        if !in_turn && not_stored {
            p.epoch = current.epoch;
            p.seq = current.next_seq;
        }
        if p.jid == 0 || p.keys.len() != before_filter {
            self.cp.journal(stream, &mut p)?;
        }
        // A batch that may be stored is looked up on the stream before anything is sent. A batch
        // refused as too large, still numbered as sent, is split at once rather than sent again
        // to be refused again.
        let look = match r.proof {
            Proof::MaybeStored => Look::StreamFirst,
            Proof::NotStored | Proof::TooLarge(_) => Look::SendFirst,
        };
        let split = match r.proof {
            Proof::TooLarge(detail) if in_turn => Some(detail),
            _ => None,
        };
        Ok(Some(Ready {
            current,
            p,
            split,
            how: Sending {
                by: JournaledBy::ThisRun,
                look,
            },
        }))
    }
}

/// What each answer proves about its batch: from the first one certainly not stored on, none
/// was stored; before it, each was answered 204 or not at all (a 200 or a failed request never
/// gets here).
fn proofs(rest: Vec<Answered>) -> Vec<Resend> {
    let not_stored_from = rest.iter().position(|a| certainly_not_stored(&a.outcome));
    rest.into_iter()
        .enumerate()
        .map(|(j, a)| {
            let proof = match a.outcome {
                Ok(Appended::Refused {
                    status: 413,
                    detail,
                }) => Proof::TooLarge(detail),
                _ if not_stored_from.is_some_and(|d| j >= d) => Proof::NotStored,
                _ => Proof::MaybeStored,
            };
            Resend {
                batch: a.batch,
                proof,
            }
        })
        .collect()
}
