//! One journaled batch sent until the server has it, whatever it answers: claiming a fresh epoch
//! where allowed, creating a stream that went missing, and looking at the stream instead of
//! sending blindly when the answer leaves open what it holds.

use crate::checkpoint::{Pending, StreamState, Tail};
use crate::client::Appended;

use super::{DeliveryError, Poster};

/// Which run journaled a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum JournaledBy {
    ThisRun,
    /// An interrupted run: the server may hold it already, and its events count as recovered.
    InterruptedRun,
}

/// Whether to look at the stream before sending a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Look {
    /// Send it: nothing says the server holds it.
    SendFirst,
    /// The server may hold it already (an interrupted run's, or one whose answer was lost):
    /// read the stream back first, whatever the server's producer state says.
    StreamFirst,
}

/// How a batch goes to [`Poster::send`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Sending {
    pub by: JournaledBy,
    pub look: Look,
}

impl Sending {
    /// A batch of this run's input, journaled and not sent yet.
    pub const NEW: Sending = Sending {
        by: JournaledBy::ThisRun,
        look: Look::SendFirst,
    };
    /// A batch an interrupted run journaled.
    pub const REPLAY: Sending = Sending {
        by: JournaledBy::InterruptedRun,
        look: Look::StreamFirst,
    };
}

/// Where a batch stands in [`Poster::send`].
enum Next {
    Delivered,
    Send(Pending),
    Look(Pending),
}

impl From<Option<Pending>> for Next {
    /// What is left of a batch after a look at the stream: nothing, or a batch to send.
    fn from(left: Option<Pending>) -> Next {
        left.map_or(Next::Delivered, Next::Send)
    }
}

/// One batch's delivery under way in [`Poster::send`]: its stream, which run journaled it, and
/// what was tried so far (each way out is taken once).
struct Underway<'a> {
    url: &'a str,
    state: &'a StreamState,
    by: JournaledBy,
    /// The stream was created after a 404.
    created: bool,
    /// A fresh epoch was claimed after a 403.
    claimed: bool,
    /// The stream was read back after a 204 or a gap this checkpoint did not expect.
    read_back: bool,
    /// Attempts whose answer was lost.
    unanswered: u32,
    /// Stream positions lost to other writers.
    conflicts: u32,
}

impl Poster {
    /// Sends a journaled batch until the server has it, claiming a fresh epoch where allowed.
    /// The batch is written for the stream's tail as the checkpoint knows it then; a stream
    /// whose tail is unknown is looked at first ([`Look::StreamFirst`]).
    pub(super) fn send(
        &mut self,
        url: &str,
        state: &StreamState,
        p: Pending,
        how: Sending,
    ) -> Result<(), DeliveryError> {
        let mut d = Underway {
            url,
            state,
            by: how.by,
            created: false,
            claimed: false,
            read_back: false,
            unanswered: 0,
            conflicts: 0,
        };
        let mut next = match how.look {
            Look::SendFirst => Next::Send(p),
            Look::StreamFirst => Next::Look(p),
        };
        loop {
            next = match next {
                Next::Delivered => return Ok(()),
                Next::Look(p) => self.check_stream(url, state, p, how.by)?.into(),
                Next::Send(p) => match self.cp.stream(url)?.and_then(|s| s.tail) {
                    None => Next::Look(p),
                    Some(at) => {
                        let answer = self
                            .client
                            .append(url, p.epoch, p.seq, at, &p.body)
                            .map_err(DeliveryError::network)?;
                        self.on_answer(&mut d, p, at, answer)?
                    }
                },
            };
        }
    }

    /// What follows the server's answer to batch `p`, written for position `at`.
    fn on_answer(
        &mut self,
        d: &mut Underway<'_>,
        p: Pending,
        at: u64,
        answer: Appended,
    ) -> Result<Next, DeliveryError> {
        let (url, state) = (d.url, d.state);
        let n = p.keys.len() as u64;
        match answer {
            Appended::New => {
                self.cp.acknowledge(state.id, &p, Tail::At(at + n))?;
                self.in_step.insert(url.to_string());
                self.count_sent(&p);
                if d.by == JournaledBy::InterruptedRun {
                    self.stats.events_recovered += n;
                }
                self.buffers.give(p.body);
                Ok(Next::Delivered)
            }
            Appended::Duplicate if d.by == JournaledBy::InterruptedRun => {
                // Sent by the interrupted run, and the server has it; where it stands in the
                // stream is not known from here.
                self.cp.acknowledge(state.id, &p, Tail::Unknown)?;
                self.stats.events_recovered += n;
                self.stats.events_present += n;
                Ok(Next::Delivered)
            }
            Appended::Unknown { why } => self.after_lost_answer(d, p, &why),
            answer @ (Appended::Duplicate | Appended::Gap { .. }) if !d.read_back => {
                // 204: this checkpoint never sent (epoch, seq), yet the server has it (the
                // checkpoint is behind the server: restored, or a second one). 409 gap: the
                // server expects another seq (the checkpoint is ahead: a stream recreated, or a
                // server that lost its producer state). The server dedupes by seq, not content,
                // so look at the content, and go on in a fresh epoch.
                d.read_back = true;
                let why = unexpected(&answer, &p);
                Ok(self.recut_against_server(url, state, p, &why)?.into())
            }
            Appended::NotFound if !d.created => {
                self.client.create(url).map_err(DeliveryError::network)?;
                d.created = true;
                Ok(Next::Send(p))
            }
            Appended::StaleEpoch { server_epoch } if !state.claimed && !d.claimed => {
                let epoch = server_epoch.unwrap_or(p.epoch).max(p.epoch) + 1;
                self.cp.set_epoch(state.id, epoch, p.jid)?;
                d.claimed = true;
                Ok(Next::Send(Pending { epoch, seq: 0, ..p }))
            }
            Appended::SeqConflict { last } => {
                // Another writer appended at this position first; nothing was stored and the
                // producer seq is unused. Keep what the stream still lacks, for its new tail.
                d.conflicts += 1;
                let left = self.after_conflict(url, state, p, at, last, d.conflicts)?;
                Ok(left.into())
            }
            Appended::Refused {
                status: 413,
                detail,
            } => {
                self.split_too_large(url, state, p, &detail)?;
                Ok(Next::Delivered)
            }
            refused => Err(DeliveryError::Session(refusal(&refused, &p))),
        }
    }

    /// An attempt got no answer: wait, then look at the stream before sending again, at most as
    /// often as a request is retried.
    fn after_lost_answer(
        &mut self,
        d: &mut Underway<'_>,
        p: Pending,
        why: &str,
    ) -> Result<Next, DeliveryError> {
        d.unanswered += 1;
        if d.unanswered > self.client.retry.max_retries {
            return Err(DeliveryError::Session(format!(
                "no answer to batch seq {} after {} attempts: {why}",
                p.seq, d.unanswered
            )));
        }
        let wait = self.client.retry.delay(d.unanswered - 1, None);
        if !self.client.health.sleep(wait) {
            return Err(DeliveryError::Session("stopped".into()));
        }
        Ok(Next::Look(p))
    }
}

/// Why a 204 or a 409 gap to batch `p` was not expected (the checkpoint and the server
/// disagree), as the notes say it.
fn unexpected(answer: &Appended, p: &Pending) -> String {
    match answer {
        Appended::Gap { expected, received } => format!(
            "sequence gap (HTTP 409): the server expects seq {}, this checkpoint sent {} in epoch {}",
            shown(*expected),
            received.map_or(p.seq.to_string(), |r| r.to_string()),
            p.epoch
        ),
        _ => format!(
            "the server already had epoch {} seq {} (from another checkpoint, or this one restored from a copy)",
            p.epoch, p.seq
        ),
    }
}

/// Why the session stops on an answer to batch `p` that no other way out is left for.
fn refusal(answer: &Appended, p: &Pending) -> String {
    match answer {
        Appended::Duplicate => format!(
            "the server answers 204 (duplicate) to epoch {} seq {} after a fresh claim",
            p.epoch, p.seq
        ),
        Appended::NotFound => "the stream is still missing after it was created".into(),
        Appended::StaleEpoch { server_epoch } => format!(
            "another writer holds this stream (HTTP 403: the server is at producer epoch {}, this checkpoint at {}); stopped this session",
            shown(*server_epoch),
            p.epoch
        ),
        Appended::Gap { expected, received } => format!(
            "sequence gap (HTTP 409): the server expects seq {}, this checkpoint sent {} in epoch {}, even after a fresh claim",
            shown(*expected),
            received.map_or(p.seq.to_string(), |r| r.to_string()),
            p.epoch
        ),
        Appended::Closed => {
            "the stream is closed (HTTP 409, Stream-Closed); nothing more can be appended".into()
        }
        Appended::Refused { status, detail } => format!(
            "HTTP {status} for batch seq {} of {} events (source_key {} .. {}): {detail}",
            p.seq,
            p.keys.len(),
            p.keys.first().map_or("", String::as_str),
            p.keys.last().map_or("", String::as_str),
        ),
        other => format!("unexpected answer {other:?} to batch seq {}", p.seq),
    }
}

/// A number the server may leave out of its answer.
fn shown(n: Option<u64>) -> String {
    n.map_or("?".into(), |n| n.to_string())
}
