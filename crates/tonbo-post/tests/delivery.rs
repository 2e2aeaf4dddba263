//! How tonbo-post meets server answers other than 200: transient faults are retried, permanent
//! ones stop only their session, bad input is rejected by line, and secrets stay secret.
//! Every test runs the real pipeline against the reference server started for it.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Stdio;

use serde_json::json;
use support::*;

#[test]
fn transient_503_with_retry_after_is_retried_and_nothing_is_doubled() {
    let server = Server::start();
    let t = Scratch::new();
    write_records(&t.input, &[("r", 0..250)]);
    // The first two appends answer 503 with Retry-After: 1.
    server.inject(json!({"path": "/v1/sessions/r/events", "method": "POST", "status": 503, "count": 2, "retryAfter": 1}));
    pipeline(&server, &t.input, &t.state, &[], &[])
        .assert_ok()
        .assert_says("HTTP 503; retry 1/8")
        .assert_says("2 retries");
    assert_holds(&server, "r", 250);
}

#[test]
fn a_session_that_keeps_failing_stops_alone_and_is_delivered_by_a_later_run() {
    let server = Server::start();
    let t = Scratch::new();
    write_records(&t.input, &[("bad", 0..450), ("good", 0..40)]);
    server.inject(
        json!({"path": "/v1/sessions/bad/events", "method": "POST", "status": 500, "count": 50}),
    );
    let retries = ["--max-retries", "1", "--max-retry-delay", "0.05"];
    pipeline(&server, &t.input, &t.state, &[], &retries)
        .assert_code(1)
        .assert_says("session bad: failed:")
        .assert_says("still failing after 1 retries")
        .assert_says("450 failed (1 sessions)");
    assert_holds(&server, "good", 40);
    assert!(server.keys("bad").is_empty());

    // The fault clears; the next run delivers the failed session, the journaled batch first.
    let clear = ureq::delete(&format!("{}/_test/inject-error", server.url)).call();
    assert!(clear.is_ok());
    pipeline(&server, &t.input, &t.state, &[], &[]).assert_ok();
    assert_holds(&server, "bad", 450);
    assert_holds(&server, "good", 40);
}

#[test]
fn a_second_checkpoint_writing_the_same_streams_doubles_nothing() {
    let server = Server::start();
    let t = Scratch::new();
    let (ours, theirs) = (t.path("ours.sqlite"), t.path("theirs.sqlite"));
    write_records(&t.input, &[("w", 0..10), ("other", 0..5)]);
    pipeline(&server, &t.input, &ours, &[], &[]).assert_ok();
    // A second checkpoint (another machine) writes the same streams further.
    write_records(&t.input, &[("w", 0..12), ("other", 0..5)]);
    pipeline(&server, &t.input, &theirs, &[], &[]).assert_ok();
    // Our checkpoint still thinks "w" holds 10 events: its batch written for position 10 is
    // refused, the stream read back, and only w-12 and w-13 go out.
    write_records(&t.input, &[("w", 0..14), ("other", 0..7)]);
    pipeline(&server, &t.input, &ours, &[], &[])
        .assert_ok()
        .assert_says(" 4 events sent");
    assert_holds(&server, "w", 14);
    assert_holds(&server, "other", 7);
}

#[test]
fn two_checkpoints_sharing_a_producer_id_fence_each_other_with_a_clear_error() {
    let server = Server::start();
    let t = Scratch::new();
    let (ours, theirs) = (t.path("ours.sqlite"), t.path("theirs.sqlite"));
    let shared = ["--producer-id", "shared"];
    write_records(&t.input, &[("w", 0..10), ("other", 0..5)]);
    pipeline(&server, &t.input, &ours, &[], &shared).assert_ok();
    // A second checkpoint under the same producer id claims it with a newer epoch.
    write_records(&t.input, &[("w", 0..12), ("other", 0..5)]);
    pipeline(&server, &t.input, &theirs, &[], &shared).assert_ok();
    // Our old checkpoint now meets a 403 on "w", and goes on with "other".
    write_records(&t.input, &[("w", 0..14), ("other", 0..7)]);
    pipeline(&server, &t.input, &ours, &[], &shared)
        .assert_code(1)
        .assert_says("session w: failed: another writer holds this stream (HTTP 403");
    assert_holds(&server, "w", 12);
    assert_holds(&server, "other", 7);
}

#[test]
fn a_closed_stream_is_reported_as_closed() {
    let server = Server::start();
    let t = Scratch::new();
    write_records(&t.input, &[("c", 0..3)]);
    pipeline(&server, &t.input, &t.state, &[], &[]).assert_ok();
    // Close the stream (in the protocol, an append with Stream-Closed: true).
    let status = server.post_raw("c", &[("Stream-Closed", "true")], "");
    assert!(status < 300, "closing answered {status}");
    write_records(&t.input, &[("c", 0..5)]);
    pipeline(&server, &t.input, &t.state, &[], &[])
        .assert_code(1)
        .assert_says("session c: failed: the stream is closed");
    assert_holds(&server, "c", 3);
}

/// tonbo-post alone, fed `lines` on its stdin.
fn post_lines(base: &str, state: &std::path::Path, args: &[&str], lines: &[String]) -> Run {
    let mut post = tonbo_post(base, state, args)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = post.stdin.take().unwrap();
        for l in lines {
            writeln!(stdin, "{l}").unwrap();
        }
    }
    finish(&mut post)
}

#[test]
fn bad_batches_and_events_are_rejected_by_line_and_the_rest_is_delivered() {
    let server = Server::start();
    let t = Scratch::new();
    let rejects = t.path("rejects.ndjson");
    let ev = |k: &str| {
        format!(
            r#"{{"type":"user.message","metadata":{{"source":"t","source_key":"{k}","original_timestamp":null}}}}"#
        )
    };
    let lines = [
        format!(
            r#"{{"v":1,"session_id":"x","events":[{},{}]}}"#,
            ev("1"),
            ev("2")
        ),
        "this is not json".to_string(),
        r#"{"v":1,"session_id":"x","events":[]}"#.to_string(),
        format!(
            r#"{{"v":1,"session_id":"x","events":[{},{{"type":"no.key","metadata":{{}}}},{}]}}"#,
            ev("3"),
            ev("4")
        ),
        format!(r#"{{"v":1,"session_id":"x","events":[{}]}}"#, ev("2")),
        format!(r#"{{"v":9,"session_id":"x","events":[{}]}}"#, ev("5")),
    ];
    let rejects_arg = rejects.to_str().unwrap();
    let run = post_lines(&server.url, &t.state, &["--rejects", rejects_arg], &lines);
    run.assert_code(1);
    for needle in [
        "tonbo-post: -:2: rejected: not a batch line",
        "tonbo-post: -:3: rejected: batch has no events",
        "tonbo-post: -:4: rejected: event 1 of the batch: event has no metadata.source_key",
        "tonbo-post: -:5: rejected: event 0 of the batch: source_key `2` repeats an event earlier in this input",
        "tonbo-post: -:6: rejected: unsupported wire version 9",
    ] {
        assert!(run.stderr.contains(needle), "missing {needle:?} in\n{}", run.stderr);
    }
    run.assert_says("5 rejected");
    assert_eq!(server.keys("x"), ["1", "2", "3", "4"]);
    let recorded: Vec<serde_json::Value> = std::fs::read_to_string(&rejects)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let lines_rejected: Vec<u64> = recorded
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines_rejected, [2, 3, 4, 5, 6]);
    assert_eq!(recorded[0]["raw"], "this is not json");
    assert_eq!(recorded[2]["raw"], r#"{"type":"no.key","metadata":{}}"#);
}

#[test]
fn dry_run_prints_what_it_would_send_and_sends_nothing() {
    let server = Server::start();
    let t = Scratch::new();
    write_records(&t.input, &[("dry", 0..5)]);
    pipeline(&server, &t.input, &t.state, &[], &[]).assert_ok();
    write_records(&t.input, &[("dry", 0..8), ("fresh", 0..2)]);
    let run = pipeline(&server, &t.input, &t.state, &[], &["--dry-run"]);
    run.assert_ok();
    let out = run.json_lines();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0]["url"], server.stream_url("dry"));
    let keys: Vec<&str> = out[0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["metadata"]["source_key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["dry-5", "dry-6", "dry-7"]);
    run.assert_says("would send 5 events to 2 sessions in 2 batches, 5 already present per the checkpoint, 0 rejected; by type: user.message 5\n");
    assert_eq!(server.keys("dry").len(), 5);
    assert!(server.read("fresh").is_none());
}

/// The key goes out as `Authorization: Bearer`, and never into any output. The reference
/// server ignores auth, so a one-shot listener stands in for it just to see the request.
#[test]
fn the_api_key_is_sent_as_bearer_and_never_printed() {
    let secret = "sk-test-4f1d9c0e7b2a";
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    // Two runs, one request each: the read-back of the new session, answered 401.
    let seen = std::thread::spawn(move || {
        let mut heads = Vec::new();
        for _ in 0..2 {
            let (mut sock, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut r = BufReader::new(sock.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
                head.push(line.trim_end().to_ascii_lowercase());
            }
            sock.write_all(
                b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 12\r\nconnection: close\r\n\r\nbad api key!",
            )
            .unwrap();
            heads.push(head);
        }
        heads
    });
    let t = Scratch::new();
    let key_file = t.path("key");
    std::fs::write(&key_file, format!("{secret}\n")).unwrap();
    let batch = r#"{"v":1,"session_id":"s","events":[{"type":"t","metadata":{"source_key":"k"}}]}"#;
    for use_file in [false, true] {
        let mut cmd = tonbo_post(&base, &t.path(&format!("state-{use_file}.sqlite")), &[]);
        cmd.stdin(Stdio::piped());
        if use_file {
            cmd.arg("--api-key-file").arg(&key_file);
        } else {
            cmd.env("TONBO_API_KEY", secret);
        }
        let mut child = cmd.spawn().unwrap();
        writeln!(child.stdin.take().unwrap(), "{batch}").unwrap();
        let run = finish(&mut child);
        run.assert_code(1).assert_says("HTTP 401");
        assert!(!run.stderr.contains(secret) && !run.stdout.contains(secret));
    }
    let heads = seen.join().unwrap();
    let bearer = format!("authorization: bearer {}", secret.to_ascii_lowercase());
    for head in heads {
        assert!(head.contains(&bearer), "{head:?}");
    }
}

#[test]
fn a_checkpoint_ahead_of_the_server_is_named_read_back_and_healed() {
    let server = Server::start();
    let t = Scratch::new();
    write_records(&t.input, &[("g", 0..5), ("h", 0..5)]);
    pipeline(&server, &t.input, &t.state, &[], &[]).assert_ok();
    // Pretend the checkpoint saw batches the server never got (e.g. a stream recreated).
    {
        let db = rusqlite::Connection::open(&t.state).unwrap();
        let n = db
            .execute(
                "UPDATE stream SET next_seq = 7 WHERE url LIKE '%/g/events'",
                [],
            )
            .unwrap();
        assert_eq!(n, 1);
    }
    write_records(&t.input, &[("g", 0..6), ("h", 0..6)]);
    // The gap is named, the stream read back, and only the missing event sent, in a fresh epoch.
    pipeline(&server, &t.input, &t.state, &[], &[])
        .assert_ok()
        .assert_says(
            "g/events: sequence gap (HTTP 409): the server expects seq 1, this checkpoint sent 7",
        )
        .assert_says("1 of the batch's events are missing there and go out in epoch 1");
    assert_holds(&server, "g", 6);
    assert_holds(&server, "h", 6);
}

#[test]
fn a_batch_refused_as_too_large_is_split_and_sent_exactly_once() {
    let server = Server::start();
    let t = Scratch::new();
    write_records(&t.input, &[("big", 0..40)]);
    // The first append answers 413: the batch of 40 goes out again as 20 + 20.
    server.inject(
        json!({"path": "/v1/sessions/big/events", "method": "POST", "status": 413, "count": 1}),
    );
    pipeline(&server, &t.input, &t.state, &[], &[])
        .assert_ok()
        .assert_says("40 events sent in 2 batches");
    assert_holds(&server, "big", 40);
    pipeline(&server, &t.input, &t.state, &["--max-events", "7"], &[])
        .assert_says(" 0 events sent");
}

#[test]
fn an_event_too_large_alone_is_rejected_by_key_and_the_session_goes_on() {
    let server = Server::start();
    let t = Scratch::new();
    let rejects = t.path("rejects.ndjson");
    write_records(&t.input, &[("one", 0..3)]);
    server.inject(
        json!({"path": "/v1/sessions/one/events", "method": "POST", "status": 413, "count": 1}),
    );
    let rejects_arg = rejects.to_str().unwrap().to_string();
    // One batch at a time, so the injected 413 meets the first event's batch.
    pipeline(
        &server,
        &t.input,
        &t.state,
        &["--max-events", "1"],
        &["--rejects", &rejects_arg, "--window", "1"],
    )
    .assert_code(1)
    .assert_says("refuses event source_key `one-0` as too large even alone (HTTP 413");
    assert_keys(
        &server.keys("one"),
        &["one-1".to_string(), "one-2".to_string()],
        "one",
    );
    let recorded = std::fs::read_to_string(&rejects).unwrap();
    assert_eq!(recorded.lines().count(), 1, "{recorded}");
    assert!(recorded.contains("\"line\":1"), "{recorded}");
}

#[test]
fn a_key_is_never_sent_in_clear_text_to_another_host() {
    let t = Scratch::new();
    let mut child = tonbo_post("http://192.0.2.10:4437", &t.path("s.sqlite"), &[])
        .env("TONBO_API_KEY", "sk-secret-value")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdin.take());
    let run = finish(&mut child);
    run.assert_code(2)
        .assert_says("refusing to send the API key in clear text over http:// to 192.0.2.10");
    assert!(!run.stderr.contains("sk-secret-value"));
}

#[test]
fn too_many_requests_and_dropped_connections_are_retried_without_doubling() {
    let server = Server::start();
    let t = Scratch::new();
    write_records(&t.input, &[("limited", 0..60), ("flaky", 0..60)]);
    server.inject(json!({"path": "/v1/sessions/limited/events", "method": "POST", "status": 429, "count": 2, "retryAfter": 1}));
    server.inject(json!({"path": "/v1/sessions/flaky/events", "method": "POST", "dropConnection": true, "count": 2}));
    pipeline(
        &server,
        &t.input,
        &t.state,
        &["--max-events", "20"],
        &["--max-retry-delay", "0.2"],
    )
    .assert_ok()
    .assert_says("HTTP 429; retry 1/8")
    .assert_says("4 retries");
    assert_holds(&server, "limited", 60);
    assert_holds(&server, "flaky", 60);
}

/// The pipeline into `base` (a stand-in in front of the server), to its end.
fn post_through(base: &str, t: &Scratch, batch_args: &[&str], post_args: &[&str]) -> Run {
    let mut post = start_pipeline(base, &t.input, &t.state, batch_args, post_args);
    finish(&mut post)
}

#[test]
fn an_append_applied_but_unanswered_is_resent_and_stored_once() {
    let server = Server::start();
    // Every 3rd append's answer is lost on the way back, five times.
    let proxy = DroppingProxy::start(&server.url, 3, 5);
    let t = Scratch::new();
    write_records(&t.input, &[("amb", 0..200)]);
    let run = post_through(
        &proxy.url,
        &t,
        &["--max-events", "10"],
        &["--max-retry-delay", "0.05"],
    );
    run.assert_ok();
    assert_eq!(proxy.dropped.load(std::sync::atomic::Ordering::SeqCst), 5);
    assert_holds(&server, "amb", 200);
    // Each lost answer is followed by a look at the stream, not a blind re-send; its batch then
    // counts as already present, or as sent when a later batch's 200 proved it stored (the server
    // takes a producer's batches only in order). Either way every event is counted once.
    assert_eq!(
        run.stderr
            .matches("the server may have stored it, checking the stream before sending again")
            .count(),
        5,
        "{}",
        run.stderr
    );
    let summary = run.stderr.lines().last().unwrap_or("");
    let number = |after: &str| -> u64 {
        let i = summary.find(after).unwrap_or_else(|| panic!("{summary}"));
        summary[..i]
            .split_whitespace()
            .last()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(
        number(" events sent") + number(" already present"),
        200,
        "{summary}"
    );
}

#[test]
fn the_server_restarting_mid_run_loses_and_doubles_nothing() {
    let mut server = Server::start();
    let t = Scratch::new();
    write_records(&t.input, &[("rs", 0..3000), ("rt", 0..500)]);
    let mut post = start_pipeline(
        &server.url,
        &t.input,
        &t.state,
        &["--max-events", "5"],
        &["--max-retry-delay", "0.5"],
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    server.restart();
    finish(&mut post).assert_ok();
    assert_holds(&server, "rs", 3000);
    assert_holds(&server, "rt", 500);
}

#[test]
fn verify_reports_what_is_missing_or_doubled_per_session() {
    let server = Server::start();
    let t = Scratch::new();
    write_records(&t.input, &[("v1", 0..30), ("v2", 0..10)]);
    pipeline(&server, &t.input, &t.state, &[], &[]).assert_ok();
    pipeline(&server, &t.input, &t.state, &[], &["--verify"])
        .assert_ok()
        .assert_says("verify: 2 sessions, 2 complete and without duplicates, 0 not");

    // Someone appends a copy of v1-3 by hand, and the input gains an event never sent.
    let copy = server.read("v1").unwrap()[3].clone();
    assert!(server.post_raw("v1", &[], &format!("[{copy}]")) < 300);
    write_records(&t.input, &[("v1", 0..30), ("v2", 0..11)]);
    let bad = pipeline(&server, &t.input, &t.state, &[], &["--verify"]);
    bad.assert_code(1);
    let reports = bad.json_lines();
    assert_eq!(reports[0]["session_id"], "v1");
    assert_eq!(reports[0]["duplicated"], json!(["v1-3"]));
    assert_eq!(reports[0]["on_server"], 31);
    assert_eq!(reports[1]["missing"], json!(["v2-10"]));
    assert_eq!(reports[1]["duplicated_count"], 0);
    // Nothing was sent by --verify.
    assert_eq!(server.keys("v2").len(), 10);
}

#[test]
fn writes_redirected_to_a_leader_are_followed_with_their_body() {
    let server = Server::start();
    let follower = start_redirector(&server.url);
    let t = Scratch::new();
    write_records(&t.input, &[("led", 0..45)]);
    post_through(&follower, &t, &["--max-events", "10"], &[])
        .assert_ok()
        .assert_says("45 events sent in 5 batches");
    assert_holds(&server, "led", 45);
    post_through(&follower, &t, &["--max-events", "10"], &["--verify"]).assert_ok();
}

#[test]
fn a_batch_line_edited_after_tonbo_batch_is_read_event_by_event() {
    let server = Server::start();
    let t = Scratch::new();
    write_records(&t.input, &[("h", 0..6)]);
    let batches = t.path("batches.ndjson");
    write_batches(&t.input, &["--max-events", "3"], &batches);
    let lines: Vec<String> = std::fs::read_to_string(&batches)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 2);
    let head = |l: &str| tonbo_core::contract::BatchHead::read(l.as_bytes()).map(|h| h.keys.len());
    assert_eq!(
        head(&lines[0]),
        Some(3),
        "tonbo-batch names the keys: {}",
        lines[0]
    );
    // Edited in place, as a hand or a script might, head left as it was: the first line loses
    // its second event, the second line's head names another key for its first event.
    let array = tonbo_core::contract::BatchHead::read(lines[0].as_bytes())
        .unwrap()
        .events;
    let events: Vec<&serde_json::value::RawValue> = serde_json::from_str(&lines[0][array]).unwrap();
    let dropped = events[1].get();
    let edited = [
        lines[0].replacen(&format!(",{dropped}"), "", 1),
        lines[1].replacen(r#""keys":["h-3""#, r#""keys":["h-9""#, 1),
    ];
    for l in &edited {
        assert!(head(l).is_none(), "the head still matches: {l}");
    }
    post_lines(&server.url, &t.state, &[], &edited)
        .assert_ok()
        .assert_says("5 events sent");
    // Each event is known by its own key, not by the head's.
    assert_eq!(server.keys("h"), ["h-0", "h-2", "h-3", "h-4", "h-5"]);
    // The lines as tonbo-batch wrote them: only the event left out goes.
    post_lines(&server.url, &t.state, &[], &lines)
        .assert_ok()
        .assert_says("1 events sent")
        .assert_says("5 already present");
    assert_eq!(server.keys("h"), ["h-0", "h-2", "h-3", "h-4", "h-5", "h-1"]);
}
