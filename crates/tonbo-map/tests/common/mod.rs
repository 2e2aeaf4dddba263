//! Shared by the fixture tests: run a real reader and the real tonbo-map over a fixture folder.
#![allow(dead_code)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

pub use tonbo_testkit::{bin, workspace_root as root};

pub struct Run {
    pub events: Vec<Value>,
    pub stdout: String,
    pub read_stderr: String,
    pub map_stderr: String,
    pub read_code: Option<i32>,
    pub map_code: Option<i32>,
}

/// `READER DIR | tonbo-map`, two real processes and a real pipe.
pub fn read_and_map(reader: &str, dir: &Path) -> Run {
    read_and_map_paths(reader, &[dir.to_path_buf()])
}

/// `READER PATH... | tonbo-map`.
pub fn read_and_map_paths(reader: &str, paths: &[PathBuf]) -> Run {
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
        let mut de = serde_json::Deserializer::from_str(l);
        serde::Deserializer::deserialize_any(&mut de, NoDuplicateKeys)
            .unwrap_or_else(|e| panic!("{e}: {l}"));
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

/// Walks a JSON value and fails on an object that repeats a key (which `Value` would hide).
pub struct NoDuplicateKeys;

impl<'de> serde::de::Visitor<'de> for NoDuplicateKeys {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys = HashSet::new();
        while let Some(k) = map.next_key::<String>()? {
            if !keys.insert(k.clone()) {
                return Err(serde::de::Error::custom(format!("duplicate key `{k}`")));
            }
            map.next_value_seed(NoDuplicateKeys)?;
        }
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(NoDuplicateKeys)?.is_some() {}
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for NoDuplicateKeys {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
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

/// Copies a case into a temporary folder, turning every `X.sql` into a real SQLite `X.db`.
pub fn build(case: &Path, into: &Path) {
    for entry in walk(case) {
        let rel = entry.strip_prefix(case).unwrap();
        let dest = into.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        if entry.extension().is_some_and(|e| e == "sql") {
            source_opencode::fixture::sqlite_from_sql(&entry, &dest.with_extension("db"))
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

pub fn run_opencode_case(case: &Path) -> Run {
    let tmp = tempfile::tempdir().unwrap();
    build(case, tmp.path());
    let paths: Vec<PathBuf> = std::fs::read_to_string(case.join("paths"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| tmp.path().join(l.trim()))
        .collect();
    read_and_map_paths("opencode-read", &paths)
}

/// The fixture folders of one source (`testdata/<source>/<case>`), sorted.
pub fn fixture_cases(source: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("testdata").join(source))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

/// Every fixture of every source, read by its real reader and mapped by the real tonbo-map:
/// `(source, case name, run)`.
pub fn every_fixture() -> Vec<(&'static str, String, Run)> {
    let mut runs = Vec::new();
    for case in fixture_cases("claude") {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        runs.push((
            "claude",
            name,
            read_and_map("claude-read", &case.join("projects")),
        ));
    }
    for case in fixture_cases("codex") {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        runs.push((
            "codex",
            name,
            read_and_map("codex-read", &case.join("sessions")),
        ));
    }
    for case in fixture_cases("opencode") {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        runs.push(("opencode", name, run_opencode_case(&case)));
    }
    runs
}

/// The first text of every `user.message` whose `metadata.author` is `author`, in order.
pub fn prompts_by(run: &Run, author: &str) -> Vec<String> {
    run.events
        .iter()
        .map(|e| &e["event"])
        .filter(|ev| ev["type"] == "user.message" && ev["metadata"]["author"] == author)
        .map(|ev| ev["content"][0]["text"].as_str().unwrap_or("").to_string())
        .collect()
}

/// `(session, metadata.parent_session_id or "")` of every `user.message` an agent wrote.
pub fn agent_prompt_sessions(run: &Run) -> Vec<(String, String)> {
    run.events
        .iter()
        .filter(|e| {
            e["event"]["type"] == "user.message" && e["event"]["metadata"]["author"] == "agent"
        })
        .map(|e| {
            let s = |v: &Value| v.as_str().unwrap_or("").to_string();
            (
                s(&e["session_id"]),
                s(&e["event"]["metadata"]["parent_session_id"]),
            )
        })
        .collect()
}
