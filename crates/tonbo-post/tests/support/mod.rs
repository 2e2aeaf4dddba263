//! Test support: the reference Durable Streams server on a free port, the real stage binaries
//! wired with real pipes, and reading a stream back.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

/// A binary of the workspace. Integration tests run after `cargo build` built every binary into
/// the same target directory as this test.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (make test does)",
        path.display()
    );
    path
}

static INSTALL: Once = Once::new();

/// Installs the pinned reference server once (make test does this before; this covers a bare
/// `cargo test`).
fn install_server() {
    INSTALL.call_once(|| {
        let root = workspace_root();
        let status = Command::new(root.join("scripts/ds-server"))
            .arg("install")
            .status()
            .expect("scripts/ds-server runs");
        assert!(status.success(), "installing the reference server failed");
    });
}

/// The npm reference server, file-backed in a temporary directory, on a free port.
pub struct Server {
    pub url: String,
    child: Child,
    pub dir: tempfile::TempDir,
}

impl Server {
    pub fn start() -> Server {
        install_server();
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new("node")
            .arg(workspace_root().join("scripts/server/start.mjs"))
            .args(["--port", "0", "--data-dir"])
            .arg(dir.path().join("data"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("http"), "server did not start: {line:?}");
        Server {
            url: line.trim().to_string(),
            child,
            dir,
        }
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

    /// Asks the server to fail upcoming requests (the reference server's `/_test/inject-error`).
    pub fn inject(&self, fault: Value) {
        let resp = ureq::post(&format!("{}/_test/inject-error", self.url))
            .header("Content-Type", "application/json")
            .send(fault.to_string())
            .unwrap();
        assert!(resp.status().is_success());
    }

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

impl Server {
    /// Stops the server (SIGKILL, as a crash) and starts it again on the same port and data dir.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let port = self.url.rsplit(':').next().unwrap().to_string();
        let mut child = Command::new("node")
            .arg(workspace_root().join("scripts/server/start.mjs"))
            .args(["--port", &port, "--data-dir"])
            .arg(self.dir.path().join("data"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("http"), "server did not restart: {line:?}");
        self.child = child;
    }
}

/// A TCP proxy in front of the server that forwards each request and, for the appends chosen by
/// `drop_response`, reads the server's answer and then closes the client's connection without
/// passing it on: the server applied the append, the client never heard (the ambiguous case).
pub struct DroppingProxy {
    pub url: String,
    pub dropped: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl DroppingProxy {
    /// Drops the response of every `every`-th POST (1-based), up to `limit` times.
    pub fn start(upstream: &str, every: usize, limit: usize) -> DroppingProxy {
        use std::net::{TcpListener, TcpStream};
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let target = upstream.trim_start_matches("http://").to_string();
        let dropped = std::sync::Arc::new(AtomicUsize::new(0));
        let posts = std::sync::Arc::new(AtomicUsize::new(0));
        let d = dropped.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let target = target.clone();
                let (d, posts) = (d.clone(), posts.clone());
                std::thread::spawn(move || {
                    let _ = serve(client, &target, every, limit, &d, &posts);
                });
            }
        });
        fn serve(
            client: TcpStream,
            target: &str,
            every: usize,
            limit: usize,
            dropped: &AtomicUsize,
            posts: &AtomicUsize,
        ) -> std::io::Result<()> {
            let mut reader = BufReader::new(client.try_clone()?);
            let mut out = client;
            // One request per connection (the proxy answers `Connection: close`).
            // One request: head lines, then Content-Length bytes of body.
            let mut head = Vec::new();
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if line.to_ascii_lowercase().starts_with("connection:") {
                    continue;
                }
                if line == "\r\n" {
                    head.extend_from_slice(b"Connection: close\r\n\r\n");
                    break;
                }
                head.extend_from_slice(line.as_bytes());
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body)?;
            let mut up = TcpStream::connect(target)?;
            up.write_all(&head)?;
            up.write_all(&body)?;
            let mut answer = Vec::new();
            up.read_to_end(&mut answer)?;
            let is_post = head.starts_with(b"POST ");
            let n = if is_post {
                posts.fetch_add(1, Ordering::SeqCst) + 1
            } else {
                0
            };
            if is_post && n % every == 0 && dropped.load(Ordering::SeqCst) < limit {
                dropped.fetch_add(1, Ordering::SeqCst);
                return Ok(()); // applied upstream; the client hears nothing
            }
            out.write_all(&answer)?;
            Ok(())
        }
        DroppingProxy { url, dropped }
    }
}

/// Answers every request with `307 Temporary Redirect` to the same path on `upstream`, as a
/// follower of an Ursula cluster answers writes (the leader being `upstream`).
pub fn start_redirector(upstream: &str) -> String {
    use std::net::TcpListener;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let upstream = upstream.to_string();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { break };
            let upstream = upstream.clone();
            std::thread::spawn(move || -> std::io::Result<()> {
                let mut reader = BufReader::new(client.try_clone()?);
                let mut out = client;
                let mut first = String::new();
                reader.read_line(&mut first)?;
                let path = first.split_whitespace().nth(1).unwrap_or("/").to_string();
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line)? == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; len];
                reader.read_exact(&mut body)?;
                write!(
                    out,
                    "HTTP/1.1 307 Temporary Redirect\r\nLocation: {upstream}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
            });
        }
    });
    url
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One "anything else" source record: an event of `session` with key `key`.
pub fn record(session: &str, key: &str, text: &str) -> String {
    serde_json::json!({
        "v": 1, "source": "events", "session": session,
        "record": {
            "type": "user.message",
            "content": [{"type": "text", "text": text}],
            "metadata": {"source": "test", "source_key": key, "original_timestamp": "2026-11-24T00:00:00Z"}
        }
    })
    .to_string()
}

/// Source records of events with keys `<session>-<i>` for each (session, i range) in turn, so
/// runs of several sessions can be interleaved.
pub fn write_records(path: &Path, runs: &[(&str, std::ops::Range<usize>)]) {
    let mut f = std::fs::File::create(path).unwrap();
    for (s, range) in runs {
        for i in range.clone() {
            writeln!(
                f,
                "{}",
                record(s, &format!("{s}-{i}"), &format!("message {i} of {s}"))
            )
            .unwrap();
        }
    }
}

pub fn expected_keys(session: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{session}-{i}")).collect()
}

/// The outcome of one pipeline run.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stderr: String,
    pub stdout: String,
}

/// `tonbo-map INPUT | tonbo-batch BATCH_ARGS | tonbo-post --api URL --state STATE POST_ARGS`,
/// three real processes joined by real pipes. Returns tonbo-post's outcome.
pub fn pipeline(
    server: &Server,
    input: &Path,
    state: &Path,
    batch_args: &[&str],
    post_args: &[&str],
) -> Run {
    let mut post = start_pipeline(server, input, state, batch_args, post_args, &[]);
    finish(&mut post)
}

/// The pipeline into any base URL (a proxy in front of the server, say).
pub fn start_pipeline_to(
    base: &str,
    input: &Path,
    state: &Path,
    batch_args: &[&str],
    post_args: &[&str],
) -> Child {
    start_pipeline_base(base, input, state, batch_args, post_args, &[])
}

/// The pipeline into any base URL, with variables set for tonbo-post (`TONBO_API_KEY`, say).
pub fn start_pipeline_env(
    base: &str,
    input: &Path,
    state: &Path,
    batch_args: &[&str],
    post_args: &[&str],
    env: &[(&str, &str)],
) -> Child {
    start_pipeline_base(base, input, state, batch_args, post_args, env)
}

/// Starts the pipeline and returns the tonbo-post child (its stdin is the batch stage's output).
pub fn start_pipeline(
    server: &Server,
    input: &Path,
    state: &Path,
    batch_args: &[&str],
    post_args: &[&str],
    env: &[(&str, &str)],
) -> Child {
    start_pipeline_base(&server.url, input, state, batch_args, post_args, env)
}

fn start_pipeline_base(
    base: &str,
    input: &Path,
    state: &Path,
    batch_args: &[&str],
    post_args: &[&str],
    env: &[(&str, &str)],
) -> Child {
    let mut map = Command::new(bin("tonbo-map"))
        .arg("-q")
        .arg(input)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut batch = Command::new(bin("tonbo-batch"))
        .arg("-q")
        .args(batch_args)
        .stdin(map.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut cmd = Command::new(bin("tonbo-post"));
    cmd.args(["--api", base, "--state"])
        .arg(state)
        .args(post_args)
        .env_remove("TONBO_API_KEY")
        .env_remove("TONBO_URL_TEMPLATE")
        .env_remove("TONBO_STATE")
        .stdin(batch.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let post = cmd.spawn().unwrap();
    // The upstream stages end by themselves (input exhausted, or a closed pipe); reap them in
    // the background so they never linger as zombies.
    std::thread::spawn(move || {
        let _ = map.wait();
        let _ = batch.wait();
    });
    post
}

pub fn finish(child: &mut Child) -> Run {
    let mut err = child.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).unwrap();
        s
    });
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let stderr = stderr_reader.join().unwrap();
    let status = child.wait().unwrap();
    Run {
        status,
        stderr,
        stdout,
    }
}

/// Waits for the child up to `limit`; kills it (SIGKILL) if it is still running then.
pub fn wait_or_kill(child: &mut Child, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    true
}

/// Asserts two key lists are equal, reporting the first difference instead of both lists.
#[track_caller]
pub fn assert_keys(got: &[String], want: &[String], what: &str) {
    if got == want {
        return;
    }
    let first = got.iter().zip(want).position(|(g, w)| g != w);
    match first {
        Some(i) => panic!(
            "{what}: first difference at index {i}: got {:?}, want {:?} (got {} keys, want {})",
            got[i],
            want[i],
            got.len(),
            want.len()
        ),
        None => panic!(
            "{what}: got {} keys, want {}; the longer one goes on with {:?}",
            got.len(),
            want.len(),
            if got.len() > want.len() {
                &got[want.len()]
            } else {
                &want[got.len()]
            }
        ),
    }
}

/// `claude-read DIR | tonbo-map | tonbo-batch | tonbo-post`, four real processes.
pub fn claude_pipeline(server: &Server, dir: &Path, state: &Path) -> Run {
    let mut read = Command::new(bin("claude-read"))
        .arg("-q")
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut map = Command::new(bin("tonbo-map"))
        .arg("-q")
        .stdin(read.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut batch = Command::new(bin("tonbo-batch"))
        .arg("-q")
        .stdin(map.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut post = Command::new(bin("tonbo-post"))
        .args(["--api", &server.url, "--state"])
        .arg(state)
        .env_remove("TONBO_API_KEY")
        .stdin(batch.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run = finish(&mut post);
    for mut c in [read, map, batch] {
        let _ = c.wait();
    }
    run
}
