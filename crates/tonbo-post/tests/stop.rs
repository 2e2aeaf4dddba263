//! A run that cannot go on stops soon and cleanly: a server that answers nothing ends the run
//! after `--retry-for` (exit 75), the first SIGINT/SIGTERM ends it at once (130/143), and in both
//! cases the checkpoint lets the next run finish the job with every event exactly once.

mod support;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use support::*;

/// Batch lines for `sessions` sessions of `per` events each, `s0`, `s1`..
fn batches(dir: &Path, sessions: usize, per: usize) -> std::path::PathBuf {
    let input = dir.join("in.ndjson");
    let names: Vec<String> = (0..sessions).map(|s| format!("s{s}")).collect();
    let runs: Vec<(&str, std::ops::Range<usize>)> =
        names.iter().map(|n| (n.as_str(), 0..per)).collect();
    write_records(&input, &runs);
    let path = dir.join("batches.ndjson");
    write_batches(&input, &["--max-events", "5"], &path);
    path
}

fn post(base: &str, batches: &Path, state: &Path, extra: &[&str]) -> Child {
    tonbo_post(base, state, extra)
        .arg(batches)
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits for the child (killing it after `limit`, which fails the test) and returns its status
/// code and stderr.
fn outcome(mut child: Child, limit: Duration) -> (Option<i32>, String) {
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).unwrap();
        s
    });
    let killed = wait_or_kill(&mut child, limit);
    let stderr = reader.join().unwrap();
    assert!(!killed, "still running after {limit:?}:\n{stderr}");
    (child.wait().unwrap().code(), stderr)
}

/// A run with the same checkpoint against a live server delivers every event of the `sessions`
/// sessions of `per` events once.
#[track_caller]
fn the_next_run_finishes(
    server: &Server,
    batches: &Path,
    state: &Path,
    sessions: usize,
    per: usize,
) {
    let again = post(&server.url, batches, state, &[]);
    let (code, stderr) = outcome(again, Duration::from_secs(120));
    assert_eq!(code, Some(0), "{stderr}");
    for s in 0..sessions {
        assert_holds(server, &format!("s{s}"), per);
    }
}

#[test]
fn a_dead_server_stops_the_whole_run_once_the_retry_budget_is_spent() {
    let dir = tempfile::tempdir().unwrap();
    let input = batches(dir.path(), 200, 3);
    let state = dir.path().join("state.sqlite");
    // Before, each of the 200 sessions was retried for about 25 s in turn.
    let run = post(&closed_port(), &input, &state, &["--retry-for", "2"]);
    let (code, stderr) = outcome(run, Duration::from_secs(60));
    assert_eq!(code, Some(75), "{stderr}");
    let stops: Vec<&str> = stderr.lines().filter(|l| l.contains("stopped:")).collect();
    assert_eq!(stops.len(), 1, "{stderr}");
    assert!(
        stops[0].contains("the server has answered nothing for 2s"),
        "{stderr}"
    );
    assert!(stops[0].contains("Connection refused"), "{stderr}");
    // No line per failed session, and retries noted at most about once a second.
    assert!(!stderr.contains("failed:"), "{stderr}");
    assert!(stderr.lines().count() < 10, "{stderr}");

    // The server is back (here: a live one): the next run with the same checkpoint delivers
    // every event once.
    let server = Server::start();
    the_next_run_finishes(&server, &input, &state, 200, 3);
}

#[test]
fn the_first_sigint_or_sigterm_stops_a_run_that_is_retrying() {
    for (sig, code) in [("-INT", 130), ("-TERM", 143)] {
        let dir = tempfile::tempdir().unwrap();
        let input = batches(dir.path(), 50, 3);
        let state = dir.path().join("state.sqlite");
        // Ten minutes of budget: only the signal can end this run soon.
        let run = post(&closed_port(), &input, &state, &["--retry-for", "600"]);
        std::thread::sleep(Duration::from_millis(800));
        signal(&run, sig);
        let (got, stderr) = outcome(run, Duration::from_secs(30));
        assert_eq!(got, Some(code), "{sig}: {stderr}");
        assert!(stderr.contains("stopped by SIG"), "{stderr}");
        assert!(!stderr.contains("failed:"), "{stderr}");
    }
}

#[test]
fn a_backfill_stopped_by_sigint_is_finished_by_the_next_run_exactly_once() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let input = batches(dir.path(), 60, 200);
    let state = dir.path().join("state.sqlite");
    let run = post(&server.url, &input, &state, &["--concurrency", "4"]);
    std::thread::sleep(Duration::from_millis(1500));
    signal(&run, "-INT");
    let (code, stderr) = outcome(run, Duration::from_secs(30));
    // It may have finished before the signal on a fast machine; otherwise it stopped.
    assert!(matches!(code, Some(0 | 130)), "{stderr}");
    the_next_run_finishes(&server, &input, &state, 60, 200);
}

#[test]
fn verify_against_a_dead_server_stops_once_the_retry_budget_is_spent() {
    let dir = tempfile::tempdir().unwrap();
    let input = batches(dir.path(), 20, 2);
    let state = dir.path().join("state.sqlite");
    let run = post(
        &closed_port(),
        &input,
        &state,
        &["--verify", "--retry-for", "1"],
    );
    let (code, stderr) = outcome(run, Duration::from_secs(60));
    assert_eq!(code, Some(75), "{stderr}");
    assert!(
        stderr.contains("--verify stopped: the server has answered nothing"),
        "{stderr}"
    );
}
