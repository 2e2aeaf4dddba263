//! Shared by the fixture tests: run a real reader and the real tonbo-map over a fixture folder,
//! and read what came out.
#![allow(dead_code, unused_imports)] // each test file uses some of it

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::value::RawValue;
use serde_json::Value;
use tonbo_core::SourceRecord;

pub use tonbo_testkit::events::assert_said;
pub use tonbo_testkit::{bin, workspace_root as root};

/// A source with fixtures (`testdata/<dir>/<case>`).
pub struct Source {
    /// Its folder under `testdata/`.
    pub dir: &'static str,
    /// Its reader.
    pub reader: &'static str,
    /// What its events name as their `metadata.source`.
    pub name: &'static str,
    /// How many fixtures it has at the least: one gone missing fails the tests that loop over
    /// them.
    pub at_least: usize,
}

pub const CLAUDE: Source = Source {
    dir: "claude",
    reader: "claude-read",
    name: "claude-code",
    at_least: 9,
};
pub const CODEX: Source = Source {
    dir: "codex",
    reader: "codex-read",
    name: "codex",
    at_least: 10,
};
pub const OPENCODE: Source = Source {
    dir: "opencode",
    reader: "opencode-read",
    name: "opencode",
    at_least: 7,
};
pub const GEMINI: Source = Source {
    dir: "gemini",
    reader: "gemini-read",
    name: "gemini-cli",
    at_least: 3,
};
pub const CLINE: Source = Source {
    dir: "cline",
    reader: "cline-read",
    name: "cline",
    at_least: 6,
};
pub const COPILOT: Source = Source {
    dir: "copilot-cli",
    reader: "copilot-read",
    name: "copilot-cli",
    at_least: 4,
};
pub const GOOSE: Source = Source {
    dir: "goose",
    reader: "goose-read",
    name: "goose",
    at_least: 3,
};
pub const QWEN: Source = Source {
    dir: "qwen",
    reader: "qwen-read",
    name: "qwen-code",
    at_least: 5,
};
pub const CURSOR: Source = Source {
    dir: "cursor",
    reader: "cursor-read",
    name: "cursor",
    at_least: 3,
};
pub static SOURCES: [Source; 9] = [
    CLAUDE, CODEX, OPENCODE, GEMINI, CLINE, COPILOT, GOOSE, QWEN, CURSOR,
];

impl Source {
    /// Its fixture folders, sorted.
    pub fn cases(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("testdata").join(self.dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        v.sort();
        assert!(v.len() >= self.at_least, "{} fixtures missing", self.dir);
        v
    }

    /// The paths its reader reads for the fixture `case`: Claude Code's `projects` folder,
    /// Codex CLI's `sessions` folder, or for OpenCode and Goose the paths its `paths` file names in a
    /// copy of it under `into` (built by [`build`]).
    pub fn paths(&self, case: &Path, into: &Path) -> Vec<PathBuf> {
        match self.dir {
            "claude" => vec![case.join("projects")],
            "codex" => vec![case.join("sessions")],
            "gemini" => vec![case.to_path_buf()],
            "cline" => vec![case.to_path_buf()],
            "copilot-cli" => vec![case.join("copilot")],
            "qwen" => vec![case.join("qwen")],
            _ => {
                build(case, into);
                std::fs::read_to_string(case.join("paths"))
                    .unwrap()
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| into.join(l.trim()))
                    .collect()
            }
        }
    }

    /// `READER CASE | tonbo-map` for the fixture folder `case`.
    pub fn run(&self, case: &Path) -> Run {
        let tmp = tempfile::tempdir().unwrap();
        read_and_map(self.reader, &self.paths(case, tmp.path()))
    }

    /// [`Source::run`] for the fixture named `case`.
    pub fn run_named(&self, case: &str) -> Run {
        self.run(&root().join("testdata").join(self.dir).join(case))
    }

    /// Every fixture maps to the events checked in beside it (`expected.ndjson`).
    pub fn check_every_expected(&self) {
        let mut failures = Vec::new();
        for case in self.cases() {
            failures.extend(check_expected(&case, &self.run(&case)));
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    /// The paths of every fixture, for one run of the reader over all of them (OpenCode's
    /// built under `into`).
    pub fn every_path(&self, into: &Path) -> Vec<PathBuf> {
        let mut paths = Vec::new();
        for case in self.cases() {
            paths.extend(self.paths(&case, &into.join(case.file_name().unwrap())));
        }
        paths
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(self.dir)
    }
}

/// What `READER | tonbo-map` gave.
pub struct Run {
    /// tonbo-map's event lines, parsed.
    pub events: Vec<Value>,
    pub stdout: String,
    pub read_stderr: String,
    pub map_stderr: String,
    pub read_code: Option<i32>,
    pub map_code: Option<i32>,
}

impl Run {
    /// The event lines whose event is of type `ty`, in order.
    pub fn of_type(&self, ty: &str) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| e["event"]["type"] == ty)
            .collect()
    }

    /// The first event line whose event is what `is` looks for.
    #[track_caller]
    pub fn find(&self, is: impl Fn(&Value) -> bool) -> &Value {
        self.events
            .iter()
            .find(|e| is(&e["event"]))
            .unwrap_or_else(|| panic!("no such event among {}", self.stdout))
    }

    /// The event line of the event whose `metadata.source_key` is `key`.
    #[track_caller]
    pub fn keyed(&self, key: &str) -> &Value {
        self.find(|ev| ev["metadata"]["source_key"] == key)
    }

    /// The `metadata.source_key` of every event, in order; of one session's only with `Some`.
    pub fn keys(&self, session: Option<&str>) -> Vec<&str> {
        self.events
            .iter()
            .filter(|e| session.is_none_or(|s| e["session_id"] == s))
            .map(|e| e["event"]["metadata"]["source_key"].as_str().unwrap())
            .collect()
    }

    /// The first text of every event whose content begins with one, in order.
    pub fn texts(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|e| e["event"]["content"][0]["text"].as_str())
            .collect()
    }

    /// The events (without their lines' `session_id`) of each session, in order.
    pub fn by_session(&self) -> BTreeMap<&str, Vec<&Value>> {
        let mut by: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
        for e in &self.events {
            by.entry(e["session_id"].as_str().unwrap())
                .or_default()
                .push(&e["event"]);
        }
        by
    }

    /// Some event is of the session `session`.
    #[track_caller]
    pub fn assert_has_session(&self, session: &str) {
        assert!(
            self.events.iter().any(|e| e["session_id"] == session),
            "no event of {session}"
        );
    }

    /// The first text of every `user.message` whose `metadata.author` is `author`, in order.
    pub fn prompts_by(&self, author: &str) -> Vec<&str> {
        self.of_type("user.message")
            .into_iter()
            .map(|e| &e["event"])
            .filter(|ev| ev["metadata"]["author"] == author)
            .map(|ev| ev["content"][0]["text"].as_str().unwrap_or(""))
            .collect()
    }

    /// `(session, metadata.parent_session_id or "")` of every `user.message` an agent wrote.
    pub fn agent_prompt_sessions(&self) -> Vec<(&str, &str)> {
        self.of_type("user.message")
            .into_iter()
            .filter(|e| e["event"]["metadata"]["author"] == "agent")
            .map(|e| {
                let parent = &e["event"]["metadata"]["parent_session_id"];
                (
                    e["session_id"].as_str().unwrap_or(""),
                    parent.as_str().unwrap_or(""),
                )
            })
            .collect()
    }
}

/// `NAME -q PATH`, a binary of the workspace run to its end.
pub fn run_quiet(name: &str, path: &Path) -> tonbo_testkit::Run {
    let mut cmd = Command::new(bin(name));
    cmd.arg("-q").arg(path);
    tonbo_testkit::run(cmd, None)
}

/// The lines of `text` (a reader's records, tonbo-map's events), each its own string.
pub fn owned_lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

/// `READER PATH... | tonbo-map`, two real processes and a real pipe; every event line is
/// checked for repeated keys.
pub fn read_and_map(reader: &str, paths: &[PathBuf]) -> Run {
    let mut read = Command::new(bin(reader))
        .args(paths)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let map = Command::new(bin("tonbo-map"))
        .stdin(read.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let map_out = map.wait_with_output().unwrap();
    let read_out = read.wait_with_output().unwrap();
    let stdout = String::from_utf8(map_out.stdout).unwrap();
    for l in stdout.lines() {
        assert_no_duplicate_keys(l);
    }
    let events = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Run {
        events,
        stdout,
        read_stderr: String::from_utf8_lossy(&read_out.stderr).into_owned(),
        map_stderr: String::from_utf8_lossy(&map_out.stderr).into_owned(),
        read_code: read_out.status.code(),
        map_code: map_out.status.code(),
    }
}

/// What runs between the reader and tonbo-map in [`read_between_map`].
pub enum Between {
    Nothing,
    /// Each record parsed with the contract's own type, changed, and written again: its other
    /// fields' bytes kept (its `record` above all, whose numbers jq would re-encode).
    Edit(fn(&mut SourceRecord)),
    /// `jq -c PROGRAM` (which rewrites the records' spacing and numbers).
    Jq(&'static str),
}

/// tonbo-map's stdout for `READER -q PATH... | BETWEEN | tonbo-map`: real binaries, real pipes.
pub fn read_between_map(reader: &str, paths: &[PathBuf], between: Between) -> String {
    let mut read = Command::new(bin(reader))
        .arg("-q")
        .args(paths)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let records = read.stdout.take().unwrap();
    let mut jq: Option<Child> = None;
    let mut editor = None;
    let input: Stdio = match between {
        Between::Nothing => records.into(),
        Between::Jq(program) => {
            let mut child = Command::new("jq")
                .args(["-c", program])
                .stdin(records)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("jq (on PATH): {e}"));
            let out = child.stdout.take().unwrap();
            jq = Some(child);
            out.into()
        }
        Between::Edit(edit) => {
            let (pipe_in, pipe_out) = std::io::pipe().unwrap();
            editor = Some(std::thread::spawn(move || {
                let mut to_map = std::io::BufWriter::new(pipe_out);
                for line in BufReader::new(records).lines() {
                    let line = line.unwrap();
                    let mut rec: SourceRecord = serde_json::from_str(&line).unwrap();
                    edit(&mut rec);
                    serde_json::to_writer(&mut to_map, &rec).unwrap();
                    to_map.write_all(b"\n").unwrap();
                }
            }));
            pipe_in.into()
        }
    };
    let map = Command::new(bin("tonbo-map"))
        .stdin(input)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = map.wait_with_output().unwrap();
    read.wait().unwrap();
    if let Some(mut jq) = jq {
        assert!(jq.wait().unwrap().success(), "jq failed");
    }
    if let Some(editor) = editor {
        editor.join().unwrap();
    }
    String::from_utf8(out.stdout).unwrap()
}

/// The members of a JSON object in order, each value as its text: a key it repeats, which
/// `Value` would hide, stays in view.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for Members<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Object;
        impl<'de> serde::de::Visitor<'de> for Object {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members<'de>, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(Object)
    }
}

/// Fails on an object anywhere in the JSON text `json` that repeats a key.
#[track_caller]
pub fn assert_no_duplicate_keys(json: &str) {
    match json.trim_start().as_bytes().first() {
        Some(b'{') => {
            let Members(members) =
                serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
            let mut keys = HashSet::new();
            for (key, value) in members {
                assert_no_duplicate_keys(value.get());
                assert!(keys.insert(key.clone()), "duplicate key `{key}`: {json}");
            }
        }
        Some(b'[') => {
            let items: Vec<&RawValue> =
                serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
            for item in items {
                assert_no_duplicate_keys(item.get());
            }
        }
        _ => {}
    }
}

/// Compares a case's events with its checked-in `expected.ndjson` (or, with
/// `TONBO_UPDATE_EXPECTED` set, rewrites that file); returns what differs.
pub fn check_expected(case: &Path, run: &Run) -> Vec<String> {
    let expected_path = case.join("expected.ndjson");
    if std::env::var_os("TONBO_UPDATE_EXPECTED").is_some() {
        std::fs::write(&expected_path, &run.stdout).unwrap();
        return Vec::new();
    }
    let expected: Vec<Value> = std::fs::read_to_string(&expected_path)
        .unwrap_or_else(|_| panic!("{} missing", expected_path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let name = case.file_name().unwrap().to_string_lossy().into_owned();
    let mut failures = Vec::new();
    if run.events.len() != expected.len() {
        failures.push(format!(
            "{name}: {} events, expected {}",
            run.events.len(),
            expected.len()
        ));
    }
    if let Some((i, (got, want))) = run
        .events
        .iter()
        .zip(&expected)
        .enumerate()
        .find(|(_, (g, w))| g != w)
    {
        failures.push(format!(
            "{name}: event {i} differs:\n  got  {got}\n  want {want}"
        ));
    }
    failures
}

/// Copies a case into a temporary folder, turning every `X.sql` into a real SQLite `X.db`
/// (`X.vscdb.sql` into `X.vscdb`, Cursor's name).
pub fn build(case: &Path, into: &Path) {
    for entry in walk(case) {
        let rel = entry.strip_prefix(case).unwrap();
        let dest = into.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        if entry.extension().is_some_and(|e| e == "sql") {
            let db = match dest
                .file_stem()
                .is_some_and(|s| s.to_string_lossy().contains('.'))
            {
                true => dest.with_extension(""),
                false => dest.with_extension("db"),
            };
            source_opencode::fixture::sqlite_from_sql(&entry, &db)
                .unwrap_or_else(|e| panic!("{e:#}"));
        } else {
            std::fs::copy(&entry, &dest).unwrap();
        }
    }
}

pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Every fixture of every source, read by its real reader and mapped by the real tonbo-map:
/// `(source, case name, run)`. Run once for all the tests of a file.
pub fn every_fixture() -> &'static [(&'static Source, String, Run)] {
    static RUNS: std::sync::OnceLock<Vec<(&'static Source, String, Run)>> =
        std::sync::OnceLock::new();
    RUNS.get_or_init(|| {
        let mut runs = Vec::new();
        for source in &SOURCES {
            for case in source.cases() {
                let name = case.file_name().unwrap().to_string_lossy().into_owned();
                runs.push((source, name, source.run(&case)));
            }
        }
        runs
    })
}
