//! When the server and the checkpoint disagree: the stream is read back, and a batch keeps only
//! the events the stream still lacks (in a fresh epoch when the server's numbering cannot be
//! trusted); a batch too large is split.

use anyhow::Result;
use serde_json::value::RawValue;
use tonbo_core::url::without_credentials;

use crate::checkpoint::{KeyState, Pending, StreamState, Tail};

use super::send::{JournaledBy, Sending};
use super::{DeliveryError, EventArray, Poster, Rejected};

/// How often one batch may lose the race for its stream position before its session stops:
/// each loss means another writer appended, so this bounds only a stream written without end.
const MAX_POSITION_CONFLICTS: u32 = 1000;

impl Poster {
    /// Reads a stream known to the checkpoint back, recording every key it holds as present and
    /// its tail.
    pub(super) fn read_back(&mut self, url: &str) -> Result<(), DeliveryError> {
        let read = self.read_into_checkpoint(url, None)?;
        self.note_overfull(&read);
        Ok(())
    }

    /// A batch written for position `at` lost it to another writer (409 to its `Stream-Seq`):
    /// read the stream back, and keep the batch's events it still lacks, under the same
    /// `(epoch, seq)` (the server used neither). `None` when it holds them all.
    pub(super) fn after_conflict(
        &mut self,
        url: &str,
        state: &StreamState,
        p: Pending,
        at: u64,
        last: Option<String>,
        conflicts: u32,
    ) -> Result<Option<Pending>, DeliveryError> {
        if conflicts > MAX_POSITION_CONFLICTS {
            return Err(DeliveryError::Session(format!(
                "batch seq {} lost its stream position to other writers {MAX_POSITION_CONFLICTS} times in a row; stopped this session",
                p.seq
            )));
        }
        self.read_back(url)?;
        let tail = self.cp.stream(url)?.and_then(|s| s.tail);
        if tail == Some(at) {
            // The stream is where this checkpoint thought, yet the position was refused: its last
            // Stream-Seq was set by a writer numbering appends another way.
            return Err(DeliveryError::Session(format!(
                "the server refuses stream position {at} (HTTP 409 to Stream-Seq {}; its last is {}) although the stream holds exactly {at} events: another kind of writer numbers its appends on this stream. Nothing was written, so nothing is doubled; stopped this session",
                crate::client::stream_seq(at),
                last.as_deref().unwrap_or("not given")
            )));
        }
        let Some(mut p) = self.drop_present(state.id, p)? else {
            return Ok(None);
        };
        self.cp.journal(state.id, &mut p)?;
        Ok(Some(p))
    }

    /// A batch the server did not store, without the events the checkpoint now knows the stream
    /// holds (counted as present); `None`, its journal row dropped (the seq stays unused), when
    /// that is all of them. The caller journals a changed batch.
    pub(super) fn drop_present(&mut self, stream: i64, p: Pending) -> Result<Option<Pending>> {
        let states = self
            .cp
            .key_states(stream, p.keys.iter().map(String::as_str))?;
        if states.iter().all(|s| *s == KeyState::New) {
            return Ok(Some(p));
        }
        let kept = self.keep_events(&p, states, |s| s == KeyState::New)?;
        if kept.is_empty() {
            if p.jid != 0 {
                self.cp.drop_journal(p.jid)?;
            }
            return Ok(None);
        }
        Ok(Some(kept.into_pending(p)))
    }

    /// The events of `p` whose key state (`states`, in order) `keep` accepts; the others are
    /// counted as present.
    fn keep_events(
        &mut self,
        p: &Pending,
        states: Vec<KeyState>,
        keep: fn(KeyState) -> bool,
    ) -> Result<EventArray> {
        let events: Vec<&RawValue> = serde_json::from_slice(&p.body)?;
        let mut kept = EventArray::with_capacity(p.body.len());
        for ((key, ev), state) in p.keys.iter().zip(events).zip(states) {
            if keep(state) {
                kept.push(key.clone(), ev.get().as_bytes());
            } else {
                self.stats.events_present += 1;
            }
        }
        Ok(kept)
    }

    /// Looks at the stream before (re)sending a batch it may hold already: if it holds all of
    /// the batch's events, the batch is acknowledged without sending; if it holds none, the batch
    /// goes as it is (same epoch and seq, so the server's own dedupe covers a copy still on its
    /// way); if some, the rest go in a fresh epoch ([`Self::recut_against_server`]).
    pub(super) fn check_stream(
        &mut self,
        url: &str,
        state: &StreamState,
        mut p: Pending,
        by: JournaledBy,
    ) -> Result<Option<Pending>, DeliveryError> {
        self.read_back(url)?;
        let states = self
            .cp
            .key_states(state.id, p.keys.iter().map(String::as_str))?;
        let held = states.iter().filter(|s| **s == KeyState::Present).count();
        let n = p.keys.len() as u64;
        if held == p.keys.len() {
            self.cp.acknowledge(state.id, &p, Tail::Keep)?;
            self.stats.events_present += n;
            if by == JournaledBy::InterruptedRun {
                self.stats.events_recovered += n;
            }
            return Ok(None);
        }
        if held == 0 {
            let cur = self.stream_state(url)?;
            if (p.epoch, p.seq) != (cur.epoch, cur.next_seq) {
                // Numbered before the stream moved on (a batch after it was re-cut): take the
                // stream's next number.
                p.epoch = cur.epoch;
                p.seq = cur.next_seq;
                self.cp.journal(state.id, &mut p)?;
            }
            return Ok(Some(p));
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
    pub(super) fn split_too_large(
        &mut self,
        url: &str,
        state: &StreamState,
        p: Pending,
        detail: &str,
    ) -> Result<(), DeliveryError> {
        let events: Vec<&RawValue> = serde_json::from_slice(&p.body)?;
        if events.len() <= 1 {
            self.reject_too_large(&p, events.first().copied(), detail)?;
            return Ok(());
        }
        let mid = events.len() / 2;
        // The first half takes the batch's journal row, the second gets one of its own.
        let mut jid = p.jid;
        for range in [0..mid, mid..events.len()] {
            let current = self.stream_state(url)?;
            let mut half = EventArray::with_capacity(p.body.len());
            for (key, ev) in p.keys[range.clone()].iter().zip(&events[range]) {
                half.push(key.clone(), ev.get().as_bytes());
            }
            let mut half = half.into_pending(Pending {
                jid,
                epoch: current.epoch,
                seq: current.next_seq,
                run: p.run,
                keys: Vec::new(),
                body: Vec::new(),
            });
            jid = 0;
            self.cp.journal(state.id, &mut half)?;
            self.send(url, &current, half, Sending::NEW)?;
        }
        Ok(())
    }

    /// A batch of one event the server refuses as too large: the event is rejected by its key.
    fn reject_too_large(
        &mut self,
        p: &Pending,
        event: Option<&RawValue>,
        detail: &str,
    ) -> Result<()> {
        let key = p.keys.first().cloned().unwrap_or_default();
        let reason = format!(
            "the server refuses event source_key `{key}` as too large even alone (HTTP 413, {} bytes): {detail}",
            p.body.len()
        );
        // The server stored nothing under this (epoch, seq): drop the journal, keep the seq.
        self.cp.drop_journal(p.jid)?;
        if let Some(o) = &self.current {
            let index = o.index_of(&key).unwrap_or(0);
            self.rejects.push(Rejected {
                input: o.input.clone(),
                line: o.line,
                reason: format!("event {index} of the batch: {reason}"),
                raw: event.map_or(Vec::new(), |e| e.get().as_bytes().to_vec()),
            });
        }
        Ok(())
    }

    /// After an unexpected 204 or 409 gap: record what the server holds, keep only the events it
    /// lacks, and move to a fresh epoch for them. `None` when the server has them all.
    pub(super) fn recut_against_server(
        &mut self,
        url: &str,
        state: &StreamState,
        p: Pending,
        why: &str,
    ) -> Result<Option<Pending>, DeliveryError> {
        self.read_back(url)?;
        let states = self
            .cp
            .key_states(state.id, p.keys.iter().map(String::as_str))?;
        let kept = self.keep_events(&p, states, |s| s != KeyState::Present)?;
        if kept.is_empty() {
            // Settle the journal and move past the seq the server already has.
            let settled = Pending {
                keys: Vec::new(),
                ..p
            };
            self.cp.acknowledge(state.id, &settled, Tail::Keep)?;
            return Ok(None);
        }
        let current = self.cp.stream(url)?.map_or(p.epoch, |c| c.epoch);
        let epoch = p.epoch.max(current) + 1;
        tonbo_core::note!(
            "tonbo-post: {}: {why}; {} of the batch's events are missing there and go out in epoch {epoch}",
            without_credentials(url),
            kept.keys.len()
        );
        self.cp.set_epoch(state.id, epoch, p.jid)?;
        let mut p = kept.into_pending(Pending { epoch, seq: 0, ..p });
        self.cp.journal(state.id, &mut p)?;
        Ok(Some(p))
    }
}
