//! Test support: the reference Durable Streams server on a free port, the real stage binaries
//! wired with real pipes, and reading a stream back.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub use tonbo_testkit::server::RefServer as Server;
#[allow(unused_imports)] // not every test file uses both
pub use tonbo_testkit::{bin, signal, workspace_root};

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

/// Asserts the server's stream of `session` holds exactly its first `n` events, in order.
#[track_caller]
pub fn assert_holds(server: &Server, session: &str, n: usize) {
    assert_keys(&server.keys(session), &expected_keys(session, n), session);
}

/// A temporary directory for one test, with the paths most tests use in it: `in.ndjson` for the
/// input and `state.sqlite` for the checkpoint.
pub struct Scratch {
    pub dir: tempfile::TempDir,
    pub input: PathBuf,
    pub state: PathBuf,
}

impl Scratch {
    pub fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        Scratch {
            input: dir.path().join("in.ndjson"),
            state: dir.path().join("state.sqlite"),
            dir,
        }
    }

    /// Another file of the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// The outcome of one pipeline run.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stderr: String,
    pub stdout: String,
}

impl Run {
    /// Asserts the run exited 0, showing its stderr if not.
    #[track_caller]
    pub fn assert_ok(&self) -> &Run {
        assert!(self.status.success(), "{}", self.stderr);
        self
    }

    /// Asserts the run exited with `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Run {
        assert_eq!(self.status.code(), Some(code), "{}", self.stderr);
        self
    }

    /// Asserts the run said `text` on stderr.
    #[track_caller]
    pub fn assert_says(&self, text: &str) -> &Run {
        assert!(self.stderr.contains(text), "{}", self.stderr);
        self
    }

    /// Its stdout, a JSON value a line.
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
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
    let mut post = start_pipeline(&server.url, input, state, batch_args, post_args);
    finish(&mut post)
}

/// Starts the pipeline into any base URL (the server's, or a proxy's in front of it) and
/// returns the tonbo-post child (its stdin is the batch stage's output).
pub fn start_pipeline(
    base: &str,
    input: &Path,
    state: &Path,
    batch_args: &[&str],
    post_args: &[&str],
) -> Child {
    start_pipeline_into(input, batch_args, tonbo_post(base, state, post_args))
}

/// `tonbo-map INPUT | tonbo-batch BATCH_ARGS | POST`, for a tonbo-post command of the caller's
/// making (variables set for it, say).
pub fn start_pipeline_into(input: &Path, batch_args: &[&str], post: Command) -> Child {
    let map = stage("tonbo-map", [input], Stdio::inherit());
    batch_and_post(vec![map], batch_args, post)
}

/// A stage of a pipeline, `NAME -q ARGS`, reading `stdin`; its stdout is piped on.
pub fn stage<S: AsRef<std::ffi::OsStr>>(
    name: &str,
    args: impl IntoIterator<Item = S>,
    stdin: Stdio,
) -> Child {
    Command::new(bin(name))
        .arg("-q")
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// No arguments, for a [`stage`] that reads its stdin.
pub const NO_ARGS: [&str; 0] = [];

/// A stage's stdout, as the next one's stdin.
pub fn piped(stage: &mut Child) -> Stdio {
    Stdio::from(stage.stdout.take().unwrap())
}

/// `tonbo-post --api BASE --state STATE ARGS`, taking none of its variables from this
/// environment; its stdout and stderr piped.
pub fn tonbo_post(base: &str, state: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin("tonbo-post"));
    cmd.args(["--api", base, "--state"])
        .arg(state)
        .args(args)
        .env_remove("TONBO_API_KEY")
        .env_remove("TONBO_URL_TEMPLATE")
        .env_remove("TONBO_STATE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// `UPSTREAM | tonbo-batch BATCH_ARGS | POST`: starts tonbo-post on the batches of the last
/// upstream stage's output and returns it. The other stages end by themselves (input exhausted,
/// or a closed pipe) and are reaped in the background, so they never linger as zombies.
fn batch_and_post(mut upstream: Vec<Child>, batch_args: &[&str], mut post: Command) -> Child {
    let last = upstream.last_mut().unwrap();
    let mut batch = stage("tonbo-batch", batch_args, piped(last));
    let post = post.stdin(piped(&mut batch)).spawn().unwrap();
    upstream.push(batch);
    std::thread::spawn(move || {
        for mut c in upstream {
            let _ = c.wait();
        }
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

/// Starts `claude-read DIR | tonbo-map | tonbo-batch BATCH_ARGS | tonbo-post --api BASE --state
/// STATE POST_ARGS`, four real processes; returns the tonbo-post child (the others are reaped in
/// the background).
pub fn start_claude_pipeline(
    base: &str,
    dir: &Path,
    state: &Path,
    batch_args: &[&str],
    post_args: &[&str],
) -> Child {
    let mut read = stage("claude-read", [dir], Stdio::inherit());
    let map = stage("tonbo-map", NO_ARGS, piped(&mut read));
    batch_and_post(
        vec![read, map],
        batch_args,
        tonbo_post(base, state, post_args),
    )
}

/// `claude-read DIR | tonbo-map | tonbo-batch | tonbo-post` into the server, with defaults.
pub fn claude_pipeline(server: &Server, dir: &Path, state: &Path) -> Run {
    finish(&mut start_claude_pipeline(
        &server.url,
        dir,
        state,
        &[],
        &[],
    ))
}

/// The `ursula` binary on PATH. `None` (the caller skips, saying so) when there is none, unless
/// `TONBO_REQUIRE_URSULA` is set, as `.ci/run` does after `make ursula`: then a missing binary
/// fails the test instead of skipping it.
pub fn ursula_binary() -> Option<PathBuf> {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("ursula"))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("TONBO_REQUIRE_URSULA").is_none(),
            "TONBO_REQUIRE_URSULA is set but no `ursula` is on PATH (make ursula installs it)"
        );
        eprintln!(
            "skipped: no `ursula` binary on PATH (`make ursula` installs it; .ci/run runs these)"
        );
    }
    found
}

/// Free loopback ports (bound, then released for the server to take).
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// A PUT (of a JSON stream with `json`), following a follower's 307 to the leader by hand, with
/// its body (empty here); true on 2xx.
fn put_following(url: &str, json: bool) -> bool {
    let mut url = url.to_string();
    for _ in 0..5 {
        let req = ureq::put(&url)
            .config()
            .http_status_as_error(false)
            .max_redirects(0)
            .build();
        let req = if json {
            req.header("Content-Type", "application/json")
        } else {
            req
        };
        let Ok(resp) = req.send_empty() else {
            return false;
        };
        if resp.status().is_success() {
            return true;
        }
        match resp.headers().get("location").and_then(|v| v.to_str().ok()) {
            Some(l) if resp.status().is_redirection() => url = l.to_string(),
            _ => return false,
        }
    }
    false
}

/// An Ursula cluster of 1 or 3 nodes on loopback, on free ports, each with its WAL in a
/// temporary directory; every node is killed when this is dropped (also when a test panics).
pub struct Ursula {
    binary: PathBuf,
    nodes: Vec<Option<Child>>,
    ports: Vec<u16>,
    pub dir: tempfile::TempDir,
}

impl Ursula {
    pub fn start(binary: &Path, n: usize) -> Ursula {
        let dir = tempfile::tempdir().unwrap();
        let ports = free_ports(2 * n);
        let mut u = Ursula {
            binary: binary.to_path_buf(),
            nodes: (0..n).map(|_| None).collect(),
            ports,
            dir,
        };
        for i in 0..n {
            let mut cfg = format!(
                "[server]\nlisten = \"127.0.0.1:{}\"\ncluster_id = \"tonbo-ingest-test\"\nadmin_listen = \"127.0.0.1:{}\"\n[runtime]\ncore_count = 1\n[raft]\ngroup_count = 4\n[raft.wal]\npath = \"{}\"\n[storage.cold]\nbackend = \"none\"\nmax_hot_size_per_group = 0\n",
                u.ports[i],
                u.ports[n + i],
                u.dir.path().join(format!("wal-{}", i + 1)).display()
            );
            for peer in 0..n {
                cfg += &format!(
                    "[[raft.peers]]\nnode_id = {}\nurl = \"http://127.0.0.1:{}\"\n",
                    peer + 1,
                    u.ports[peer]
                );
            }
            std::fs::write(u.config(i), cfg).unwrap();
        }
        for i in 0..n {
            u.spawn(i);
        }
        u.wait_ready();
        u
    }

    /// A cluster of `n` nodes, or `None` (the test skips, saying so) when there is no `ursula`
    /// binary on PATH (see [`ursula_binary`]).
    pub fn start_if_present(n: usize) -> Option<Ursula> {
        Some(Ursula::start(&ursula_binary()?, n))
    }

    fn config(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node{}.toml", i + 1))
    }

    fn spawn(&mut self, i: usize) {
        let log =
            std::fs::File::create(self.dir.path().join(format!("node{}.log", i + 1))).unwrap();
        let child = Command::new(&self.binary)
            .args(["server", "--config"])
            .arg(self.config(i))
            .args(["--node-id", &(i + 1).to_string()])
            .env("NO_COLOR", "1")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.nodes[i] = Some(child);
    }

    /// Node `i`'s base URL (0-based).
    pub fn url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[i])
    }

    /// Waits until every running node takes the bucket `sessions`, and then a write to every
    /// Raft group through every node (16 probe streams spread over the groups): elections take
    /// seconds, and a node killed before its groups have settled can leave one without a leader
    /// for longer than a test should wait.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        let live: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].is_some())
            .collect();
        for &i in &live {
            while !put_following(&format!("{}/sessions", self.url(i)), false) {
                assert!(
                    Instant::now() < deadline,
                    "ursula node {} did not come up",
                    i + 1
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        for &i in &live {
            for probe in 0..16 {
                while !put_following(&format!("{}/sessions/_ready-{probe}", self.url(i)), true) {
                    assert!(
                        Instant::now() < deadline,
                        "ursula node {} never took a write for probe {probe}",
                        i + 1
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    /// Creates the JSON stream `/sessions/{stream}` through node `i`.
    pub fn create(&self, i: usize, stream: &str) -> bool {
        put_following(&format!("{}/sessions/{stream}", self.url(i)), true)
    }

    /// Kills node `i` with SIGKILL.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts node `i` again on its WAL.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
    }

    /// The node (0-based) leading the Raft group of `/sessions/{stream}`, as a follower's
    /// redirect names it (`x-ursula-raft-leader-id`); the stream must exist.
    pub fn leader_of(&self, stream: &str) -> Option<usize> {
        for i in 0..self.nodes.len() {
            if self.nodes[i].is_none() {
                continue;
            }
            let resp = ureq::put(&format!("{}/sessions/{stream}", self.url(i)))
                .config()
                .http_status_as_error(false)
                .max_redirects(0)
                .build()
                .header("Content-Type", "application/json")
                .send_empty();
            let Ok(resp) = resp else { continue };
            match resp.status().as_u16() {
                200 | 201 | 204 => return Some(i),
                307 | 308 => {
                    let id = resp
                        .headers()
                        .get("x-ursula-raft-leader-id")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<usize>().ok());
                    if let Some(id) = id {
                        return Some(id - 1);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// The `metadata.source_key` of every event of `/sessions/{stream}`, read through node `i`
    /// (one event per line), page after page.
    pub fn keys(&self, i: usize, stream: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut offset = "-1".to_string();
        loop {
            // During an election nodes may send a read round in redirects: ask again.
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut resp = loop {
                let got = ureq::get(&format!(
                    "{}/sessions/{stream}?offset={offset}",
                    self.url(i)
                ))
                .config()
                .http_status_as_error(false)
                .build()
                .call();
                match got {
                    Ok(r) if r.status().as_u16() != 503 => break r,
                    other => {
                        assert!(Instant::now() < deadline, "reading {stream}: {other:?}");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            };
            if resp.status().as_u16() == 404 {
                return keys;
            }
            assert_eq!(
                resp.status().as_u16(),
                200,
                "reading {stream} through node {}",
                i + 1
            );
            let header = |name: &str| {
                resp.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let next = header("stream-next-offset");
            let done = header("stream-up-to-date").is_some_and(|v| v == "true");
            let body = resp
                .body_mut()
                .with_config()
                .limit(1 << 30)
                .read_to_string()
                .unwrap();
            let before = keys.len();
            for l in body.lines().filter(|l| !l.trim().is_empty()) {
                let v: Value = serde_json::from_str(l).unwrap();
                keys.push(v["metadata"]["source_key"].as_str().unwrap().to_string());
            }
            match next {
                Some(n) if !done && keys.len() > before && n != offset => offset = n,
                _ => return keys,
            }
        }
    }
}

impl Drop for Ursula {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        // A failed test shows what the nodes said last.
        if std::thread::panicking() {
            for i in 0..self.nodes.len() {
                let log = self.dir.path().join(format!("node{}.log", i + 1));
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(25).collect();
                eprintln!(
                    "--- ursula node {} (last lines, newest first)\n{}",
                    i + 1,
                    tail.join("\n")
                );
            }
        }
    }
}

/// `READER -q INPUT | tonbo-map -q`: the event lines a plain backfill maps the input to.
pub fn mapped_events(reader: &str, input: &Path) -> Vec<Value> {
    let mut read = stage(reader, [input], Stdio::inherit());
    let out = Command::new(bin("tonbo-map"))
        .arg("-q")
        .stdin(piped(&mut read))
        .output()
        .unwrap();
    assert!(read.wait().unwrap().success() && out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `tonbo-map -q RECORDS | tonbo-batch -q BATCH_ARGS`, written to `out`: batch lines for a
/// tonbo-post fed from a file.
pub fn write_batches(records: &Path, batch_args: &[&str], out: &Path) {
    let mut map = stage("tonbo-map", [records], Stdio::inherit());
    let batched = Command::new(bin("tonbo-batch"))
        .arg("-q")
        .args(batch_args)
        .stdin(piped(&mut map))
        .output()
        .unwrap();
    assert!(map.wait().unwrap().success() && batched.status.success());
    std::fs::write(out, batched.stdout).unwrap();
}

/// `http://127.0.0.1:PORT` where nothing listens.
pub fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    url
}

/// Where a Claude Code project of the test lives: `<dir>/projects/-w`, created. Its files are
/// read by pointing `claude-read` at `<dir>/projects`.
pub fn claude_project(dir: &Path) -> PathBuf {
    let project = dir.join("projects").join("-w");
    std::fs::create_dir_all(&project).unwrap();
    project
}
