//! Against Ursula, tonbo's distributed Durable Streams server: a single node, and a 3-node cluster
//! written through any node, with a leader killed mid-backfill, nodes restarted on their WALs,
//! and a followed pipeline that lives through a leader change. Streams live at
//! `/{bucket}/{stream}`, so `--url-template '{base}/sessions/{session_id}'`.
//!
//! These need an `ursula` binary on PATH (`make ursula` builds one, about 11 minutes on 2 cores);
//! without it they say they are skipped, unless `TONBO_REQUIRE_URSULA` is set, as in `.ci/run`.
//! Every test name starts with `ursula_`, so `cargo test -p tonbo-post ursula_` runs them all.

mod support;

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use support::*;

const TEMPLATE: [&str; 2] = ["--url-template", "{base}/sessions/{session_id}"];

fn post_through(base: &str, input: &Path, state: &Path, batch: &[&str], post: &[&str]) -> Child {
    let mut args = TEMPLATE.to_vec();
    args.extend_from_slice(post);
    start_pipeline_to(base, input, state, batch, &args)
}

#[track_caller]
fn assert_sessions(u: &Ursula, node: usize, sessions: &[(&str, usize)]) {
    for (s, n) in sessions {
        assert_keys(&u.keys(node, s), &expected_keys(s, *n), s);
    }
}

#[test]
fn ursula_single_node() {
    let Some(bin) = ursula_binary() else { return };
    let u = Ursula::start(&bin, 1);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    let state = dir.path().join("state.sqlite");
    write_records(&input, &[("u1", 0..250), ("u2", 0..30)]);
    let run = finish(&mut post_through(
        &u.url(0),
        &input,
        &state,
        &["--max-events", "20"],
        &[],
    ));
    assert!(run.status.success(), "{}", run.stderr);
    assert_sessions(&u, 0, &[("u1", 250), ("u2", 30)]);
    let verify = finish(&mut post_through(
        &u.url(0),
        &input,
        &state,
        &[],
        &["--verify"],
    ));
    assert!(verify.status.success(), "{}", verify.stdout);
    let again = finish(&mut post_through(&u.url(0), &input, &state, &[], &[]));
    assert!(again.stderr.contains(" 0 events sent"), "{}", again.stderr);
}

/// Written through one node, read back through another: followers answer writes with 307 to
/// the leader of the stream's Raft group, which tonbo-post follows with the same body and
/// producer headers, and then remembers.
#[test]
fn ursula_three_nodes_through_any_node() {
    let Some(bin) = ursula_binary() else { return };
    let u = Ursula::start(&bin, 3);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    let sessions: Vec<(String, usize)> = (0..12).map(|i| (format!("c{i}"), 40 + i)).collect();
    let runs: Vec<(&str, std::ops::Range<usize>)> =
        sessions.iter().map(|(s, n)| (s.as_str(), 0..*n)).collect();
    write_records(&input, &runs);
    let want: Vec<(&str, usize)> = sessions.iter().map(|(s, n)| (s.as_str(), *n)).collect();
    for entry in 0..3 {
        let state = dir.path().join(format!("state-{entry}.sqlite"));
        let run = finish(&mut post_through(
            &u.url(entry),
            &input,
            &state,
            &["--max-events", "7"],
            &[],
        ));
        assert!(
            run.status.success(),
            "through node {}: {}",
            entry + 1,
            run.stderr
        );
        for reader in 0..3 {
            assert_sessions(&u, reader, &want);
        }
        // The same through the next node, with a fresh checkpoint: nothing more is sent.
        if entry > 0 {
            assert!(run.stderr.contains(" 0 events sent"), "{}", run.stderr);
        }
    }
    let verify = finish(&mut post_through(
        &u.url(2),
        &input,
        &dir.path().join("state-0.sqlite"),
        &[],
        &["--verify"],
    ));
    assert!(
        verify.status.success(),
        "{}\n{}",
        verify.stdout,
        verify.stderr
    );
}

/// Waits until `stream` holds at least `n` events (through node `i`).
fn wait_until_holds(u: &Ursula, i: usize, stream: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while u.keys(i, stream).len() < n {
        assert!(
            Instant::now() < deadline,
            "{stream} never reached {n} events"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The node that leads some of the given streams' groups and is not `spare`.
fn a_leader_other_than(u: &Ursula, streams: &[String], spare: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(l) = streams
            .iter()
            .filter_map(|s| u.leader_of(s))
            .find(|l| *l != spare)
        {
            return l;
        }
        assert!(
            Instant::now() < deadline,
            "no leader found apart from node {}",
            spare + 1
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A backfill of a few thousand events through node 1; mid-run, a node that leads some of the
/// streams is killed (SIGKILL). The run goes on through elections (503) and new leaders, and the
/// surviving nodes hold every event exactly once, in order.
#[test]
fn ursula_a_leader_killed_mid_backfill_loses_and_doubles_nothing() {
    let Some(bin) = ursula_binary() else { return };
    let mut u = Ursula::start(&bin, 3);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    let state = dir.path().join("state.sqlite");
    let sessions: Vec<String> = (0..16).map(|i| format!("f{i}")).collect();
    let runs: Vec<(&str, std::ops::Range<usize>)> =
        sessions.iter().map(|s| (s.as_str(), 0..250)).collect();
    write_records(&input, &runs);
    let mut run = post_through(
        &u.url(0),
        &input,
        &state,
        &["--max-events", "10"],
        &["--concurrency", "4"],
    );
    wait_until_holds(&u, 0, &sessions[0], 20);
    let victim = a_leader_other_than(&u, &sessions, 0);
    u.kill(victim);
    let run = finish(&mut run);
    assert!(run.status.success(), "{}", run.stderr);
    let survivor = if victim == 1 { 2 } else { 1 };
    let want: Vec<(&str, usize)> = sessions.iter().map(|s| (s.as_str(), 250)).collect();
    assert_sessions(&u, survivor, &want);
    assert_sessions(&u, 0, &want);

    // The killed node comes back on its WAL and catches up; a re-run sends nothing.
    u.restart(victim);
    u.wait_ready();
    let again = finish(&mut post_through(&u.url(victim), &input, &state, &[], &[]));
    assert!(again.status.success(), "{}", again.stderr);
    assert!(again.stderr.contains(" 0 events sent"), "{}", again.stderr);
}

/// A node restarted on its WAL, then the whole cluster: what was written stays, growth is sent
/// exactly, and a re-run over unchanged input sends nothing.
#[test]
fn ursula_nodes_restarted_on_their_wal_keep_everything_and_a_rerun_sends_nothing() {
    let Some(bin) = ursula_binary() else { return };
    let mut u = Ursula::start(&bin, 3);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    let state = dir.path().join("state.sqlite");
    write_records(&input, &[("w1", 0..100), ("w2", 0..60), ("w3", 0..30)]);
    let first = finish(&mut post_through(
        &u.url(1),
        &input,
        &state,
        &["--max-events", "9"],
        &[],
    ));
    assert!(first.status.success(), "{}", first.stderr);

    u.restart(1);
    u.wait_ready();
    write_records(&input, &[("w1", 0..120), ("w2", 0..60), ("w3", 0..45)]);
    let grown = finish(&mut post_through(
        &u.url(1),
        &input,
        &state,
        &["--max-events", "4"],
        &[],
    ));
    assert!(grown.status.success(), "{}", grown.stderr);
    assert!(grown.stderr.contains(" 35 events sent"), "{}", grown.stderr);

    for i in 0..3 {
        u.kill(i);
    }
    for i in 0..3 {
        u.restart(i);
    }
    u.wait_ready();
    for node in 0..3 {
        assert_sessions(&u, node, &[("w1", 120), ("w2", 60), ("w3", 45)]);
    }
    let again = finish(&mut post_through(&u.url(2), &input, &state, &[], &[]));
    assert!(again.status.success(), "{}", again.stderr);
    assert!(again.stderr.contains(" 0 events sent"), "{}", again.stderr);
    // And with a fresh checkpoint too (read back through a follower).
    let fresh = dir.path().join("fresh.sqlite");
    let again = finish(&mut post_through(&u.url(0), &input, &fresh, &[], &[]));
    assert!(again.status.success(), "{}", again.stderr);
    assert!(again.stderr.contains(" 0 events sent"), "{}", again.stderr);
}

/// Ursula answers a stale producer epoch (a second checkpoint claimed the producer id) with
/// 403 or, in some builds, 409: either is "another writer holds this stream".
#[test]
fn ursula_a_stale_epoch_is_another_writer() {
    let Some(bin) = ursula_binary() else { return };
    let u = Ursula::start(&bin, 3);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.ndjson");
    let (ours, theirs) = (
        dir.path().join("ours.sqlite"),
        dir.path().join("theirs.sqlite"),
    );
    let shared = ["--producer-id", "shared"];
    write_records(&input, &[("e", 0..10)]);
    assert!(
        finish(&mut post_through(&u.url(1), &input, &ours, &[], &shared))
            .status
            .success()
    );
    write_records(&input, &[("e", 0..12)]);
    let them = finish(&mut post_through(&u.url(2), &input, &theirs, &[], &shared));
    assert!(them.status.success(), "{}", them.stderr);
    write_records(&input, &[("e", 0..14)]);
    // Through the same node as before: the checkpoint knows a stream by its URL.
    let us = finish(&mut post_through(&u.url(1), &input, &ours, &[], &shared));
    assert_eq!(us.status.code(), Some(1), "{}", us.stderr);
    assert!(
        us.stderr.contains("another writer holds this stream"),
        "{}",
        us.stderr
    );
    assert_keys(&u.keys(0, "e"), &expected_keys("e", 12), "e");
}
