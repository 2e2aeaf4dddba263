//! `--dry-run`: what would be sent given the checkpoint, as batch lines with their URL on
//! stdout, and a summary by event type. Nothing is sent, and the server is not asked.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use anyhow::Result;
use serde::Serialize;
use serde_json::value::RawValue;
use tonbo_core::url::without_credentials;
use tonbo_core::{EventHead, Exit, Output, Rejects};

use crate::checkpoint::{Checkpoint, KeyState};
use crate::input::{each_line, parse_batch};
use crate::url_template::UrlTemplate;
use crate::{Run, STAGE};

#[derive(Serialize)]
struct WouldSend<'a> {
    v: u64,
    session_id: &'a str,
    url: &'a str,
    events: Vec<&'a RawValue>,
}

/// What a person deciding whether to send wants to know: how many sessions, and what kind of
/// events. Session ids are kept once each (a backfill has thousands, not millions).
#[derive(Default)]
struct Tally {
    would_send: u64,
    present: u64,
    batches: u64,
    sessions: HashSet<String>,
    types: HashMap<String, u64>,
}

struct DryRun<'a> {
    /// The checkpoint, read only; `None` if there is none yet.
    cp: Option<Checkpoint>,
    urls: &'a UrlTemplate,
    out: Output,
    rejects: Rejects,
    tally: Tally,
}

/// Runs `--dry-run` over the input, given the checkpoint at `state`.
pub fn run(run: Run, state: &Path) -> Result<Exit> {
    let mut dry = DryRun {
        cp: Checkpoint::open_read_only(state)?,
        urls: &run.urls,
        out: Output::stdout(),
        rejects: run.rejects,
        tally: Tally::default(),
    };
    each_line(run.inputs, |name, number, bytes| {
        dry.line(name, number, bytes)
    })?;
    dry.out.flush()?;
    let rejected = dry.rejects.finish()?;
    let t = &dry.tally;
    if !run.quiet {
        tonbo_core::note!(
            "{STAGE}: dry run: would send {} events to {} sessions in {} batches, {} already present per the checkpoint, {rejected} rejected{}",
            t.would_send,
            t.sessions.len(),
            t.batches,
            t.present,
            by_type(&t.types)
        );
    }
    Ok(Exit::from_failures(rejected))
}

impl DryRun<'_> {
    /// One batch line: prints what of it would be sent.
    fn line(&mut self, name: &str, number: u64, bytes: &[u8]) -> Result<()> {
        let batch = match parse_batch(bytes) {
            Ok(b) => b,
            Err(reason) => return self.rejects.reject(name, number, &reason, bytes),
        };
        let url = self.urls.url(&batch.session_id);
        let stream = match &self.cp {
            Some(cp) => cp.stream(&url)?,
            None => None,
        };
        let mut events = Vec::new();
        for (i, ev) in batch.events.iter().enumerate() {
            let head = match EventHead::parse(ev) {
                Ok(h) => h,
                Err(r) => {
                    let reason = format!("event {i} of the batch: {r}");
                    self.rejects
                        .reject(name, number, &reason, ev.get().as_bytes())?;
                    continue;
                }
            };
            let known = match (&self.cp, &stream) {
                (Some(cp), Some(st)) => {
                    cp.key_state(st.id, &head.metadata.source_key)? != KeyState::New
                }
                _ => false,
            };
            if known {
                self.tally.present += 1;
            } else {
                *self.tally.types.entry(head.kind.into_owned()).or_default() += 1;
                events.push(*ev);
            }
        }
        if events.is_empty() {
            return Ok(());
        }
        self.tally.would_send += events.len() as u64;
        self.tally.batches += 1;
        if !self.tally.sessions.contains(batch.session_id.as_ref()) {
            self.tally.sessions.insert(batch.session_id.to_string());
        }
        self.out.json(&WouldSend {
            v: tonbo_core::WIRE_VERSION,
            session_id: &batch.session_id,
            url: &without_credentials(&url),
            events,
        })?;
        Ok(())
    }
}

/// `; by type: agent.message 120, user.message 14` (most first), or nothing when there are none.
fn by_type(types: &HashMap<String, u64>) -> String {
    let mut types: Vec<(&String, &u64)> = types.iter().collect();
    types.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let parts: Vec<String> = types.iter().map(|(t, n)| format!("{t} {n}")).collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("; by type: {}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn types_most_first_then_by_name() {
        let t = [
            ("user.message", 2),
            ("agent.message", 5),
            ("agent.tool_use", 2),
        ]
        .map(|(k, v)| (k.to_string(), v))
        .into_iter()
        .collect();
        assert_eq!(
            super::by_type(&t),
            "; by type: agent.message 5, agent.tool_use 2, user.message 2"
        );
        assert_eq!(super::by_type(&Default::default()), "");
    }
}
