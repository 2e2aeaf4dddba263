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

/// Starts the pipeline into the node at `base`.
fn start_through(base: &str, input: &Path, state: &Path, batch: &[&str], post: &[&str]) -> Child {
    let mut args = TEMPLATE.to_vec();
    args.extend_from_slice(post);
    start_pipeline(base, input, state, batch, &args)
}

/// The pipeline into the node at `base`, to its end.
fn post_through(base: &str, input: &Path, state: &Path, batch: &[&str], post: &[&str]) -> Run {
    finish(&mut start_through(base, input, state, batch, post))
}

/// A run over input the checkpoint at `state` holds all of, through the node at `base`, sends
/// nothing.
#[track_caller]
fn sends_nothing(base: &str, input: &Path, state: &Path, post: &[&str]) {
    post_through(base, input, state, &[], post)
        .assert_ok()
        .assert_says(" 0 events sent");
}

#[track_caller]
fn assert_sessions(u: &Ursula, node: usize, sessions: &[(&str, usize)]) {
    for (s, n) in sessions {
        assert_keys(&u.keys(node, s), &expected_keys(s, *n), s);
    }
}

#[test]
fn ursula_single_node() {
    let Some(u) = Ursula::start_if_present(1) else {
        return;
    };
    let t = Scratch::new();
    write_records(&t.input, &[("u1", 0..250), ("u2", 0..30)]);
    post_through(&u.url(0), &t.input, &t.state, &["--max-events", "20"], &[]).assert_ok();
    assert_sessions(&u, 0, &[("u1", 250), ("u2", 30)]);
    let verify = post_through(&u.url(0), &t.input, &t.state, &[], &["--verify"]);
    assert!(verify.status.success(), "{}", verify.stdout);
    let again = post_through(&u.url(0), &t.input, &t.state, &[], &[]);
    assert!(again.stderr.contains(" 0 events sent"), "{}", again.stderr);
}

/// Written through one node, read back through another: followers answer writes with 307 to
/// the leader of the stream's Raft group, which tonbo-post follows with the same body and
/// producer headers, and then remembers.
#[test]
fn ursula_three_nodes_through_any_node() {
    let Some(u) = Ursula::start_if_present(3) else {
        return;
    };
    let t = Scratch::new();
    let sessions: Vec<(String, usize)> = (0..12).map(|i| (format!("c{i}"), 40 + i)).collect();
    let runs: Vec<(&str, std::ops::Range<usize>)> =
        sessions.iter().map(|(s, n)| (s.as_str(), 0..*n)).collect();
    write_records(&t.input, &runs);
    let want: Vec<(&str, usize)> = sessions.iter().map(|(s, n)| (s.as_str(), *n)).collect();
    for entry in 0..3 {
        let state = t.path(&format!("state-{entry}.sqlite"));
        let run = post_through(&u.url(entry), &t.input, &state, &["--max-events", "7"], &[]);
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
            run.assert_says(" 0 events sent");
        }
    }
    let verify = post_through(
        &u.url(2),
        &t.input,
        &t.path("state-0.sqlite"),
        &[],
        &["--verify"],
    );
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
    let Some(mut u) = Ursula::start_if_present(3) else {
        return;
    };
    let t = Scratch::new();
    let sessions: Vec<String> = (0..16).map(|i| format!("f{i}")).collect();
    let runs: Vec<(&str, std::ops::Range<usize>)> =
        sessions.iter().map(|s| (s.as_str(), 0..250)).collect();
    write_records(&t.input, &runs);
    let mut run = start_through(
        &u.url(0),
        &t.input,
        &t.state,
        &["--max-events", "10"],
        &["--concurrency", "4"],
    );
    wait_until_holds(&u, 0, &sessions[0], 20);
    let victim = a_leader_other_than(&u, &sessions, 0);
    u.kill(victim);
    finish(&mut run).assert_ok();
    let survivor = if victim == 1 { 2 } else { 1 };
    let want: Vec<(&str, usize)> = sessions.iter().map(|s| (s.as_str(), 250)).collect();
    assert_sessions(&u, survivor, &want);
    assert_sessions(&u, 0, &want);

    // The killed node comes back on its WAL and catches up; a re-run sends nothing.
    u.restart(victim);
    u.wait_ready();
    sends_nothing(&u.url(victim), &t.input, &t.state, &[]);
}

/// A node restarted on its WAL, then the whole cluster: what was written stays, growth is sent
/// exactly, and a re-run over unchanged input sends nothing.
#[test]
fn ursula_nodes_restarted_on_their_wal_keep_everything_and_a_rerun_sends_nothing() {
    let Some(mut u) = Ursula::start_if_present(3) else {
        return;
    };
    let t = Scratch::new();
    write_records(&t.input, &[("w1", 0..100), ("w2", 0..60), ("w3", 0..30)]);
    post_through(&u.url(1), &t.input, &t.state, &["--max-events", "9"], &[]).assert_ok();

    u.restart(1);
    u.wait_ready();
    write_records(&t.input, &[("w1", 0..120), ("w2", 0..60), ("w3", 0..45)]);
    post_through(&u.url(1), &t.input, &t.state, &["--max-events", "4"], &[])
        .assert_ok()
        .assert_says(" 35 events sent");

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
    sends_nothing(&u.url(2), &t.input, &t.state, &[]);
    // And with a fresh checkpoint too (read back through a follower).
    sends_nothing(&u.url(0), &t.input, &t.path("fresh.sqlite"), &[]);
}

/// Ursula answers a stale producer epoch (a second checkpoint claimed the producer id) with
/// 403 or, in some builds, 409: either is "another writer holds this stream".
#[test]
fn ursula_a_stale_epoch_is_another_writer() {
    let Some(u) = Ursula::start_if_present(3) else {
        return;
    };
    let t = Scratch::new();
    let (ours, theirs) = (t.path("ours.sqlite"), t.path("theirs.sqlite"));
    let shared = ["--producer-id", "shared"];
    write_records(&t.input, &[("e", 0..10)]);
    assert!(post_through(&u.url(1), &t.input, &ours, &[], &shared)
        .status
        .success());
    write_records(&t.input, &[("e", 0..12)]);
    post_through(&u.url(2), &t.input, &theirs, &[], &shared).assert_ok();
    write_records(&t.input, &[("e", 0..14)]);
    // Through the same node as before: the checkpoint knows a stream by its URL.
    post_through(&u.url(1), &t.input, &ours, &[], &shared)
        .assert_code(1)
        .assert_says("another writer holds this stream");
    assert_keys(&u.keys(0, "e"), &expected_keys("e", 12), "e");
}
