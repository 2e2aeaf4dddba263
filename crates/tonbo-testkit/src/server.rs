//! The npm reference Durable Streams server, file-backed in a temporary folder, on a free port:
//! what every test that sends to a server starts. It is killed when dropped, also when a test
//! panics.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::workspace_root;

static INSTALL: Once = Once::new();

/// Installs the pinned reference server once (`make test` does it before; this covers a bare
/// `cargo test`).
fn install() {
    INSTALL.call_once(|| {
        let status = Command::new(workspace_root().join("scripts/ds-server"))
            .arg("install")
            .status()
            .expect("scripts/ds-server runs");
        assert!(status.success(), "installing the reference server failed");
    });
}

/// A running reference server.
pub struct RefServer {
    /// Its base URL (`http://127.0.0.1:PORT`).
    pub url: String,
    child: Child,
    /// Its data folder is `dir/data`.
    pub dir: tempfile::TempDir,
}

/// Starts the server on `port` (0: a free one) with its data in `dir/data`.
fn spawn(port: &str, dir: &tempfile::TempDir) -> (Child, String) {
    let mut child = Command::new("node")
        .arg(workspace_root().join("scripts/server/start.mjs"))
        .args(["--port", port, "--data-dir"])
        .arg(dir.path().join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node starts");
    // It prints its URL once it listens.
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("http"), "server did not start: {line:?}");
    (child, line.trim().to_string())
}

impl RefServer {
    pub fn start() -> RefServer {
        install();
        let dir = tempfile::tempdir().unwrap();
        let (child, url) = spawn("0", &dir);
        RefServer { url, child, dir }
    }

    /// Stops the server (SIGKILL, as a crash) and starts it again on the same port and data.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let port = self.url.rsplit(':').next().unwrap().to_string();
        self.child = spawn(&port, &self.dir).0;
    }

    pub fn stream_url(&self, session_id: &str) -> String {
        format!("{}/v1/sessions/{}/events", self.url, session_id)
    }

    /// Everything the stream holds, as the server returns it (`None` if it does not exist).
    pub fn read(&self, session_id: &str) -> Option<Vec<Value>> {
        let mut resp = ureq::get(&format!("{}?offset=-1", self.stream_url(session_id)))
            .config()
            .http_status_as_error(false)
            .build()
            .call()
            .unwrap();
        match resp.status().as_u16() {
            404 => None,
            200 => Some(serde_json::from_reader(resp.body_mut().as_reader()).unwrap()),
            s => panic!("reading {session_id}: HTTP {s}"),
        }
    }

    /// The `metadata.source_key` of every event the stream holds, in order.
    pub fn keys(&self, session_id: &str) -> Vec<String> {
        self.read(session_id)
            .unwrap_or_default()
            .iter()
            .map(|e| e["metadata"]["source_key"].as_str().unwrap().to_string())
            .collect()
    }

    /// The keys each of `want`'s streams holds, each stream's sorted: to compare with
    /// [`crate::events::mapped_keys_sorted`].
    pub fn keys_sorted_of(
        &self,
        want: &BTreeMap<String, Vec<String>>,
    ) -> BTreeMap<String, Vec<String>> {
        want.keys()
            .map(|stream| {
                let mut keys = self.keys(stream);
                keys.sort();
                (stream.clone(), keys)
            })
            .collect()
    }

    /// Fails unless each of `want`'s streams holds exactly its keys, in that order.
    #[track_caller]
    pub fn assert_holds(&self, want: &BTreeMap<String, Vec<String>>) {
        for (sid, keys) in want {
            assert_eq!(&self.keys(sid), keys, "{sid}");
        }
    }

    /// Waits (up to 30 s) until `stream` holds `key`, failing if the front door `door` ends
    /// first.
    #[track_caller]
    pub fn wait_for_key(&self, stream: &str, key: &str, door: &mut Child) {
        let start = Instant::now();
        while !self.keys(stream).iter().any(|k| k == key) {
            assert!(
                door.try_wait().unwrap().is_none(),
                "the front door ended waiting for {key}"
            );
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "timed out waiting for {key}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Asks the server to fail upcoming requests (the reference server's `/_test/inject-error`).
    pub fn inject(&self, fault: Value) {
        let resp = ureq::post(&format!("{}/_test/inject-error", self.url))
            .header("Content-Type", "application/json")
            .send(fault.to_string())
            .unwrap();
        assert!(resp.status().is_success());
    }

    /// POSTs `body` to the stream with `headers`; the HTTP status.
    pub fn post_raw(&self, session_id: &str, headers: &[(&str, &str)], body: &str) -> u16 {
        let mut req = ureq::post(&self.stream_url(session_id))
            .config()
            .http_status_as_error(false)
            .build()
            .header("Content-Type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send(body).unwrap().status().as_u16()
    }
}

impl Drop for RefServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
