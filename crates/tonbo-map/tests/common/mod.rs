//! Shared by the fixture tests: run a real reader and the real tonbo-map over a fixture folder.
#![allow(dead_code)]

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe.parent().unwrap().parent().unwrap().join(name);
    assert!(
        p.exists(),
        "{} missing: run `cargo build --workspace --bins`",
        p.display()
    );
    p
}

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
