//! `--verify`: each session named in the input is read back from the server, and one JSON line
//! per session on stdout says which of the input's events are missing there or stored more than
//! once (by `source_key`). Nothing is sent.

use std::collections::{HashMap, HashSet};

use anyhow::Result;
use serde::Serialize;
use tonbo_core::url::without_credentials;
use tonbo_core::{Exit, Output, Rejects};

use crate::client::StreamClient;
use crate::health::{signal_name, watch_for_a_stuck_stop, Halt};
use crate::input::{each_line, keyed_batch};
use crate::{Run, STAGE};

#[derive(Serialize)]
struct VerifyReport<'a> {
    session_id: &'a str,
    url: &'a str,
    expected: usize,
    on_server: u64,
    missing_count: usize,
    missing: Vec<&'a str>,
    duplicated_count: usize,
    duplicated: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl VerifyReport<'_> {
    fn broken(&self) -> bool {
        self.error.is_some() || self.missing_count > 0 || self.duplicated_count > 0
    }
}

/// The keys the input names, by session, sessions in order of first appearance. Memory grows
/// with the number of keys (one string each), which a check over a whole backfill has to hold
/// somewhere.
#[derive(Default)]
struct Expected {
    order: Vec<String>,
    keys: HashMap<String, Vec<String>>,
}

/// What the server holds of a session.
struct Held {
    /// How many times each key is there.
    keys: HashMap<String, u32>,
    events: u64,
    /// Why it could not be read (whole).
    error: Option<String>,
}

/// Runs `--verify` over the input, reading back through `client`. A stop ends the reading back
/// (each session left is reported as not read); the exit status says why.
pub fn run(run: Run, client: StreamClient) -> Result<Exit> {
    let health = client.health.clone();
    watch_for_a_stuck_stop(&health);
    let verified = verify(run, client);
    let halt = health.halted().or(health.signal().map(Halt::Signal));
    match halt {
        Some(Halt::Signal(sig)) => {
            tonbo_core::note!("{STAGE}: --verify stopped by {}", signal_name(sig));
            Ok(Exit::Signalled(sig))
        }
        Some(Halt::ServerDown) => {
            tonbo_core::note!(
                "{STAGE}: --verify stopped: the server has answered nothing for {:.0}s (last failure: {})",
                health.silent_for().as_secs_f64(),
                health.last_failure()
            );
            Ok(Exit::Unavailable)
        }
        None => verified,
    }
}

/// What the server holds against what the batches say it should.
fn verify(run: Run, mut client: StreamClient) -> Result<Exit> {
    let mut rejects = run.rejects;
    let expected = expected(run.inputs, &mut rejects)?;
    let mut out = Output::stdout();
    let mut bad = 0u64;
    for session in &expected.order {
        let url = run.urls.url(session);
        let keys = &expected.keys[session];
        let held = held(&mut client, &url);
        let shown = without_credentials(&url);
        let report = report(session, &shown, keys, held);
        if report.broken() {
            bad += 1;
        }
        out.json(&report)?;
    }
    out.flush()?;
    let rejected = rejects.finish()?;
    let sessions = expected.order.len() as u64;
    if !run.quiet {
        tonbo_core::note!(
            "{STAGE}: verify: {sessions} sessions, {} complete and without duplicates, {bad} not, {rejected} input lines rejected",
            sessions - bad
        );
    }
    Ok(Exit::from_failures(bad + rejected))
}

/// The keys of every batch of the input, by session; lines and events without them rejected.
fn expected(inputs: Vec<tonbo_core::Input>, rejects: &mut Rejects) -> Result<Expected> {
    let mut expected = Expected::default();
    each_line(inputs, |name, number, bytes| {
        let mut reject = |reason: &str, raw: &[u8]| rejects.reject(name, number, reason, raw);
        let Some(batch) = keyed_batch(bytes, &mut reject)? else {
            return Ok(());
        };
        let keys = expected
            .keys
            .entry(batch.session_id.to_string())
            .or_insert_with(|| {
                expected.order.push(batch.session_id.to_string());
                Vec::new()
            });
        keys.extend(batch.events.into_iter().map(|k| k.key));
        Ok(())
    })?;
    Ok(expected)
}

/// Reads the stream at `url` back, counting its keys.
fn held(client: &mut StreamClient, url: &str) -> Held {
    let mut keys: HashMap<String, u32> = HashMap::new();
    let read = client.read_keys(url, &mut |k| *keys.entry(k.to_string()).or_insert(0) += 1);
    let (events, error) = match read {
        Ok(Some(n)) => (n, None),
        Ok(None) => (0, Some("the stream does not exist".to_string())),
        Err(e) => (0, Some(format!("{e:#}"))),
    };
    Held {
        keys,
        events,
        error,
    }
}

/// The report of one session: the input's keys the stream lacks, and those it holds twice.
fn report<'a>(
    session_id: &'a str,
    url: &'a str,
    keys: &'a [String],
    held: Held,
) -> VerifyReport<'a> {
    let wanted: HashSet<&str> = keys.iter().map(String::as_str).collect();
    let missing: Vec<&str> = keys
        .iter()
        .map(String::as_str)
        .filter(|k| !held.keys.contains_key(*k))
        .collect();
    let mut duplicated: Vec<String> = held
        .keys
        .iter()
        .filter(|(k, n)| **n > 1 && wanted.contains(k.as_str()))
        .map(|(k, _)| k.clone())
        .collect();
    duplicated.sort();
    VerifyReport {
        session_id,
        url,
        expected: keys.len(),
        on_server: held.events,
        missing_count: missing.len(),
        missing: missing.into_iter().take(20).collect(),
        duplicated_count: duplicated.len(),
        duplicated: duplicated.into_iter().take(20).collect(),
        error: held.error,
    }
}
