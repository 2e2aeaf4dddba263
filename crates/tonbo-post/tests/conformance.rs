//! The conformance adapter (`ds-conformance-adapter`) driven as the upstream runner drives it
//! (one JSON command per line in, one result per line out), against the reference server:
//! the producer and lifecycle scenarios restated in our own words.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{json, Value};
use support::*;

/// The adapter, talking to a reference server of its own.
struct Adapter {
    server: Server,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Adapter {
    fn start() -> Adapter {
        let server = Server::start();
        let mut child = Command::new(env!("CARGO_BIN_EXE_ds-conformance-adapter"))
            .env_remove("TONBO_API_KEY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut a = Adapter {
            server,
            child,
            stdin,
            stdout,
        };
        let init = a.send(json!({"type": "init", "serverUrl": a.server.url}));
        assert_eq!(init["success"], true, "{init}");
        assert_eq!(init["features"]["batching"], true);
        assert_eq!(init["features"]["sse"], false);
        a
    }

    /// Creates the stream at `path`, its content of type `content_type`.
    fn create(&mut self, path: &str, content_type: &str) {
        let r = self.send(json!({"type": "create", "path": path, "contentType": content_type}));
        assert_eq!(r["success"], true, "{r}");
    }

    fn send(&mut self, cmd: Value) -> Value {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }
}

fn read_values(a: &mut Adapter, path: &str) -> Vec<Value> {
    let r = a.send(json!({"type": "read", "path": path}));
    assert_eq!(r["success"], true, "{r}");
    assert_eq!(r["upToDate"], true, "{r}");
    r["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| serde_json::from_str::<Vec<Value>>(c["data"].as_str().unwrap()).unwrap())
        .collect()
}

#[test]
fn lifecycle_create_head_append_read_close_delete() {
    let mut a = Adapter::start();
    let p = "/v1/stream/lifecycle";
    assert_eq!(
        a.send(json!({"type": "create", "path": p, "contentType": "application/json"}))["status"],
        201
    );
    assert_eq!(
        a.send(json!({"type": "create", "path": p, "contentType": "application/json"}))["status"],
        200
    );
    let conflict = a.send(json!({"type": "create", "path": p, "contentType": "text/plain"}));
    assert_eq!(
        (conflict["success"].clone(), conflict["errorCode"].clone()),
        (json!(false), json!("CONFLICT"))
    );
    let head = a.send(json!({"type": "head", "path": p}));
    assert_eq!(
        (head["status"].clone(), head["streamClosed"].clone()),
        (json!(200), json!(false))
    );
    assert!(head["contentType"]
        .as_str()
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(
        a.send(json!({"type": "append", "path": p, "data": "[{\"n\":1}]"}))["status"],
        200
    );
    assert_eq!(read_values(&mut a, p), vec![json!({"n": 1})]);
    let closed = a.send(json!({"type": "close", "path": p}));
    assert_eq!(closed["success"], true, "{closed}");
    let after = a.send(json!({"type": "append", "path": p, "data": "[{\"n\":2}]"}));
    assert_eq!(after["errorCode"], "STREAM_CLOSED", "{after}");
    assert_eq!(
        a.send(json!({"type": "head", "path": p}))["streamClosed"],
        true
    );
    assert_eq!(a.send(json!({"type": "delete", "path": p}))["status"], 200);
    assert_eq!(
        a.send(json!({"type": "head", "path": p}))["errorCode"],
        "NOT_FOUND"
    );
    assert_eq!(
        a.send(json!({"type": "delete", "path": p}))["errorCode"],
        "NOT_FOUND"
    );
    assert_eq!(
        a.send(json!({"type": "connect", "path": p}))["errorCode"],
        "NOT_FOUND"
    );
    let bye = a.send(json!({"type": "shutdown"}));
    assert_eq!(bye["success"], true);
    assert!(a.child.wait().unwrap().success());
}

#[test]
fn producers_append_once_claim_epochs_and_report_conflicts() {
    let mut a = Adapter::start();
    let p = "/v1/stream/producer";
    a.create(p, "application/json");
    for n in 1..=2 {
        let r = a.send(json!({"type": "idempotent-append", "path": p, "data": format!("{{\"n\":{n}}}"), "producerId": "p1", "epoch": 0, "autoClaim": false}));
        assert_eq!(r["status"], 200, "{r}");
    }
    let batch = a.send(json!({"type": "idempotent-append-batch", "path": p, "items": ["{\"n\":3}", "{\"n\":4}"], "producerId": "p2", "epoch": 0, "autoClaim": false}));
    assert_eq!(batch["status"], 200, "{batch}");
    assert_eq!(
        read_values(&mut a, p),
        (1..=4).map(|n| json!({"n": n})).collect::<Vec<_>>()
    );

    // Another writer holds producer p3 at epoch 3: without auto-claim that is a conflict, with it
    // the adapter moves to epoch 4 and the append lands.
    let stream = format!("{}{p}", a.server.url);
    let claim = ureq::post(&stream)
        .header("Content-Type", "application/json")
        .header("Producer-Id", "p3")
        .header("Producer-Epoch", "3")
        .header("Producer-Seq", "0")
        .send("[{\"n\":5}]")
        .unwrap();
    assert_eq!(claim.status().as_u16(), 200);
    let stale = a.send(json!({"type": "idempotent-append", "path": p, "data": "{\"n\":6}", "producerId": "p3", "epoch": 0, "autoClaim": false}));
    assert_eq!(
        (stale["status"].clone(), stale["errorCode"].clone()),
        (json!(403), json!("CONFLICT")),
        "{stale}"
    );
    let claimed = a.send(json!({"type": "idempotent-append", "path": p, "data": "{\"n\":6}", "producerId": "p3", "epoch": 0, "autoClaim": true}));
    assert_eq!(claimed["status"], 200, "{claimed}");
    assert_eq!(read_values(&mut a, p).len(), 6);

    let closing = a.send(json!({"type": "idempotent-close", "path": p, "producerId": "p1", "epoch": 0, "autoClaim": false}));
    assert_eq!(closing["success"], true, "{closing}");
    let late = a.send(json!({"type": "idempotent-append", "path": p, "data": "{\"n\":7}", "producerId": "p2", "epoch": 0, "autoClaim": false}));
    assert_eq!(late["errorCode"], "STREAM_CLOSED", "{late}");
    assert_eq!(
        a.send(json!({"type": "idempotent-detach", "path": p, "producerId": "p1", "epoch": 0}))
            ["status"],
        200
    );
}

#[test]
fn plain_appends_with_stream_seq_binary_data_and_validation() {
    let mut a = Adapter::start();
    let t = "/v1/stream/text";
    a.create(t, "text/plain");
    assert_eq!(
        a.send(json!({"type": "append", "path": t, "data": "a", "seq": "0001"}))["status"],
        200
    );
    assert_eq!(
        a.send(json!({"type": "append", "path": t, "data": "b", "seq": "0002"}))["status"],
        200
    );
    let regress = a.send(json!({"type": "append", "path": t, "data": "c", "seq": "0001"}));
    assert_eq!(
        (regress["success"].clone(), regress["status"].clone()),
        (json!(false), json!(409)),
        "{regress}"
    );
    let text = a.send(json!({"type": "read", "path": t}));
    assert_eq!(text["chunks"][0]["data"], "ab", "{text}");

    let b = "/v1/stream/bin";
    a.create(b, "application/octet-stream");
    // 0x00 0xff 0x10 'z' as base64.
    assert_eq!(
        a.send(json!({"type": "append", "path": b, "data": "AP8Qeg==", "binary": true}))["status"],
        200
    );
    let bin = a.send(json!({"type": "read", "path": b}));
    assert_eq!(
        (
            bin["chunks"][0]["binary"].clone(),
            bin["chunks"][0]["data"].clone()
        ),
        (json!(true), json!("AP8Qeg==")),
        "{bin}"
    );

    let bad = a.send(
        json!({"type": "validate", "target": {"target": "idempotent-producer", "epoch": -1}}),
    );
    assert_eq!(bad["errorCode"], "INVALID_ARGUMENT");
    assert!(bad["message"].as_str().unwrap().contains("epoch"));
    assert_eq!(a.send(json!({"type": "validate", "target": {"target": "idempotent-producer", "epoch": 0, "maxBatchBytes": 1024}}))["success"], true);
    assert_eq!(
        a.send(json!({"type": "read", "path": b, "live": "sse"}))["errorCode"],
        "NOT_SUPPORTED"
    );
}
