//! `gemini-read --scan`: the chats under a PATH, found by the same discovery as a read, each
//! with the session id and last update Gemini CLI itself would give it, read from the file's
//! head and tail only; and Gemini CLI's retention rule (FORMAT.md, "Retention"): at start-up in a
//! project it deletes that project's chats whose `lastUpdated` is older than
//! `general.sessionRetention.maxAge` (30 days unless the settings say otherwise).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Result;
use serde_json::Value;
use tonbo_core::scan::{size_and_mtime, FoundSession, Retention, ScanWriter};
use tonbo_core::time::parse_time;

use crate::files::{chat_format, discover, ChatFormat};
use crate::read::{file_key, Reader};

/// The default `general.sessionRetention.maxAge` (on by default since v0.33.0).
pub const DEFAULT_MAX_AGE: &str = "30d";

/// How much of a JSONL chat's end is read for its last `$set.lastUpdated`.
const TAIL_BYTES: u64 = 64 * 1024;

impl Reader<'_> {
    /// Lists the chats under one PATH, each a session (a subagent's chat is a session of its
    /// own, as a read maps it, whose last update is its parent's: Gemini CLI deletes the
    /// subagents' folder with the parent's chat).
    pub fn scan_path(&mut self, given: &Path, scan: &mut ScanWriter) -> Result<()> {
        let location = given.display().to_string();
        let mut rule_of: Option<(PathBuf, Option<Retention>)> = None;
        // Main chats' last updates: a subagent's chat is deleted with its parent's.
        let mut parents: HashMap<String, SystemTime> = HashMap::new();
        for path in discover(given) {
            let Some(mut session) = session_and_update(&path) else {
                continue;
            };
            let parent = path.parent().and_then(Path::file_name);
            match parent.and_then(|p| parents.get(p.to_string_lossy().as_ref())) {
                Some(when) if file_key(&path).contains('/') => session.updated = Some(*when),
                _ => {}
            }
            // Each `.gemini` home has its own settings: the rule of the one holding this chat.
            let home = gemini_home(&path);
            if rule_of.as_ref().map(|(h, _)| h) != Some(&home) {
                let rule = retention_of(&home);
                scan.at_location(rule.clone());
                rule_of = Some((home, rule));
            }
            let (bytes, mtime) = size_and_mtime(&path);
            let found = FoundSession {
                session: session.id.unwrap_or_else(|| id_from_name(&path)),
                location: location.clone(),
                bytes,
                updated: session.updated.or(mtime),
            };
            if let Some(when) = found.updated.filter(|_| !file_key(&path).contains('/')) {
                parents.insert(found.session.clone(), when);
            }
            scan.write(self.io.out, &found)?;
        }
        self.io.out.flush()?;
        Ok(())
    }
}

/// A chat's session id and its last update as Gemini CLI's loader reads them.
struct Head {
    id: Option<String>,
    updated: Option<SystemTime>,
}

fn time_of(v: Option<&Value>) -> Option<SystemTime> {
    parse_time(v?.as_str()?, SystemTime::now()).ok()
}

/// The session id and `lastUpdated` (else `startTime`) of a chat: a document's fields; a JSONL
/// chat's metadata line, its `lastUpdated` replaced by that of the last `$set` in its tail.
/// `None` for a file that cannot be read.
fn session_and_update(path: &Path) -> Option<Head> {
    match chat_format(path)? {
        ChatFormat::Document => {
            let doc: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
            let id = doc
                .get("sessionId")
                .and_then(Value::as_str)
                .map(str::to_string);
            let updated = time_of(doc.get("lastUpdated")).or(time_of(doc.get("startTime")));
            Some(Head { id, updated })
        }
        ChatFormat::Lines => {
            let mut file = File::open(path).ok()?;
            let mut head = String::new();
            (&mut file).take(TAIL_BYTES).read_to_string(&mut head).ok();
            let first: Value = head
                .lines()
                .next()
                .and_then(|l| serde_json::from_str(l).ok())
                .unwrap_or(Value::Null);
            let id = first
                .get("sessionId")
                .and_then(Value::as_str)
                .map(str::to_string);
            let updated = last_set_update(&mut file)
                .or(time_of(first.get("lastUpdated")))
                .or(time_of(first.get("startTime")));
            Some(Head { id, updated })
        }
    }
}

/// The `lastUpdated` of the last `{"$set":{...}}` line among the file's last [`TAIL_BYTES`].
fn last_set_update(file: &mut File) -> Option<SystemTime> {
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)))
        .ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    let tail = String::from_utf8_lossy(&tail);
    tail.lines()
        .rev()
        .filter(|line| line.starts_with("{\"$set\""))
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find_map(|set| time_of(set.pointer("/$set/lastUpdated")))
}

/// The session id a read falls back to without metadata: a subagent's file name is its id, a
/// main chat's ends in the first 8 characters of it.
fn id_from_name(path: &Path) -> String {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    if file_key(path).contains('/') {
        return stem.into_owned();
    }
    stem.rsplit('-').next().unwrap_or(&stem).to_string()
}

/// The `.gemini` home a chat is in: the folder holding the `tmp/` above its `chats/`.
fn gemini_home(chat: &Path) -> PathBuf {
    let abs = std::path::absolute(chat).unwrap_or_else(|_| chat.to_path_buf());
    abs.ancestors()
        .find(|dir| dir.file_name().is_some_and(|n| n == "tmp"))
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// A retention period as Gemini CLI writes it (`parseRetentionPeriod`: `<n>h|d|w|m`, `m` = 30
/// days, 0 invalid), in whole days (hours rounded down); `None` when it is not one.
pub fn max_age_days(period: &str) -> Option<u64> {
    let unit = period.chars().last()?;
    let n: u64 = period[..period.len() - unit.len_utf8()].parse().ok()?;
    let hours = match unit {
        'h' => n,
        'd' => n * 24,
        'w' => n * 24 * 7,
        'm' => n * 24 * 30,
        _ => return None,
    };
    (n > 0 && period.as_bytes()[0].is_ascii_digit()).then_some(hours / 24)
}

/// The rule Gemini CLI deletes the chats under `home` (a `.gemini` folder) by, from its
/// `settings.json`'s `general.sessionRetention` (`enabled` default true, `maxAge` default 30d);
/// `None` when it is disabled or its `maxAge` is none Gemini CLI accepts (then it deletes
/// nothing by age). `maxCount` and project or system settings are not read.
pub fn retention_of(home: &Path) -> Option<Retention> {
    let settings = home.join("settings.json");
    let retention = std::fs::read(&settings)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .and_then(|v| v.pointer("/general/sessionRetention").cloned());
    let field = |key: &str| retention.as_ref().and_then(|r| r.get(key));
    if field("enabled").and_then(Value::as_bool) == Some(false) {
        return None;
    }
    let (max_age, from) = match field("maxAge").and_then(Value::as_str) {
        Some(age) => (age.to_string(), format!("in {}", settings.display())),
        None => (
            DEFAULT_MAX_AGE.to_string(),
            format!(
                "(the default since Gemini CLI v0.33.0: {} does not set it)",
                settings.display()
            ),
        ),
    };
    let days = max_age_days(&max_age).filter(|d| *d >= 1)?;
    Some(Retention {
        days,
        rule: format!("general.sessionRetention.maxAge {max_age} {from}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_read_as_gemini_cli_reads_them() {
        assert_eq!(max_age_days("30d"), Some(30));
        assert_eq!(max_age_days("2w"), Some(14));
        assert_eq!(max_age_days("1m"), Some(30));
        assert_eq!(max_age_days("48h"), Some(2));
        for bad in ["0d", "30", "d", "-1d", "1y", "1.5d", ""] {
            assert_eq!(max_age_days(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_rule_comes_from_settings_or_the_default() -> std::io::Result<()> {
        let home = tempfile::tempdir()?;
        let rule = retention_of(home.path()).map(|r| r.days);
        assert_eq!(rule, Some(30));
        let settings = home.path().join("settings.json");
        std::fs::write(
            &settings,
            r#"{"general":{"sessionRetention":{"maxAge":"2w"}}}"#,
        )?;
        let r = retention_of(home.path());
        assert_eq!(r.as_ref().map(|r| r.days), Some(14));
        assert!(r.is_some_and(|r| r.rule.contains("maxAge 2w in")));
        std::fs::write(
            &settings,
            r#"{"general":{"sessionRetention":{"enabled":false}}}"#,
        )?;
        assert_eq!(retention_of(home.path()), None);
        Ok(())
    }
}
