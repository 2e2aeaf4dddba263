//! `tonbo-ingest scan`: every source's reader lists its sessions (`READER --scan`, which knows
//! where its agent keeps them and when the agent deletes them); this tabulates them per agent
//! and location and warns about the sessions an agent will delete soon.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tonbo_core::scan::ScanLine;
use tonbo_core::time::parse_time;

use crate::bins::Lookup;
use crate::cli::{ScanConfig, PROG};
use crate::sources::{home_under, Source};

/// What one agent holds in one location.
#[derive(Debug, Default, Serialize)]
pub struct Holding {
    pub source: String,
    pub location: String,
    pub sessions: u64,
    pub bytes: u64,
    /// The earliest and latest last update of its sessions (RFC 3339 UTC).
    pub oldest: Option<String>,
    pub newest: Option<String>,
    /// Sessions past their retention: deleted at the agent's next start.
    pub expired: u64,
    /// Sessions deleted within the scan's `--within` days (the expired ones included).
    pub expiring: u64,
    /// The rule they follow, as the reader read it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<String>,
}

impl Holding {
    fn add(&mut self, line: &ScanLine, now: SystemTime, horizon: SystemTime) {
        self.sessions += 1;
        self.bytes += line.bytes;
        if let Some(updated) = &line.updated {
            if self.oldest.as_ref().is_none_or(|o| updated < o) {
                self.oldest = Some(updated.clone());
            }
            if self.newest.as_ref().is_none_or(|n| updated > n) {
                self.newest = Some(updated.clone());
            }
        }
        let expires = line
            .expires
            .as_deref()
            .and_then(|e| parse_time(e, now).ok());
        if let Some(t) = expires {
            self.expired += u64::from(t <= now);
            self.expiring += u64::from(t <= horizon);
            if self.retention.is_none() {
                self.retention = line.retention.clone();
            }
        }
    }
}

/// What a scan found for one source: its holdings, or why it found none.
struct Found {
    source: &'static Source,
    holdings: Vec<Holding>,
    failed: bool,
}

/// Runs the scan; the exit status (0, 1 when a reader failed, 3 when nothing was found).
pub fn run(config: &ScanConfig) -> i32 {
    let lookup = Lookup::from_env();
    let now = SystemTime::now();
    let horizon = now + Duration::from_secs(config.within_days.saturating_mul(86_400));
    let mut found = Vec::new();
    for &source in &config.sources {
        let program = match lookup.find(source.reader) {
            Ok(p) => p,
            Err(message) => {
                tonbo_core::note!("{PROG}: {message}");
                return 2;
            }
        };
        found.push(scan_source(source, &program, config, now, horizon));
    }
    let written = if config.json {
        write_json(&found)
    } else {
        write_table(&found, config)
    };
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return 0;
        }
        tonbo_core::note!("{PROG}: cannot write the table: {e}");
        return 1;
    }
    warn_expiring(&found, config);
    if found.iter().any(|f| f.failed) {
        1
    } else if found.iter().all(|f| f.holdings.is_empty()) {
        let under = config
            .root
            .as_ref()
            .map_or("this user's home".to_string(), |r| r.display().to_string());
        tonbo_core::note!("{PROG}: scan: no session of any agent found under {under}");
        3
    } else {
        0
    }
}

/// Runs `READER --scan -q` and gathers its lines by location, in the order they come.
fn scan_source(
    source: &'static Source,
    program: &std::path::Path,
    config: &ScanConfig,
    now: SystemTime,
    horizon: SystemTime,
) -> Found {
    let mut cmd = Command::new(program);
    cmd.args(["--scan", "-q"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in config.root.as_deref().map(home_under).unwrap_or_default() {
        match value {
            Some(v) => cmd.env(name, v),
            None => cmd.env_remove(name),
        };
    }
    let mut out = Found {
        source,
        holdings: Vec::new(),
        failed: false,
    };
    let output = match cmd.output() {
        Ok(o) => o,
        Err(e) => {
            tonbo_core::note!("{PROG}: cannot run {}: {e}", source.reader);
            out.failed = true;
            return out;
        }
    };
    let mut by_location: BTreeMap<String, usize> = BTreeMap::new();
    for line in output
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
    {
        let Ok(line) = serde_json::from_slice::<ScanLine>(line) else {
            tonbo_core::note!(
                "{PROG}: {} --scan wrote a line that is not a scan line",
                source.reader
            );
            out.failed = true;
            continue;
        };
        let i = *by_location.entry(line.location.clone()).or_insert_with(|| {
            out.holdings.push(Holding {
                source: source.name.to_string(),
                location: line.location.clone(),
                ..Holding::default()
            });
            out.holdings.len() - 1
        });
        out.holdings[i].add(&line, now, horizon);
    }
    // A reader that found nothing says where it looked: worth showing only when it failed.
    if !output.status.success() {
        let _ = std::io::stderr().write_all(&output.stderr);
        tonbo_core::note!("{PROG}: {} --scan exited {}", source.reader, output.status);
        out.failed = true;
    }
    out
}

fn write_json(found: &[Found]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for h in found.iter().flat_map(|f| &f.holdings) {
        serde_json::to_writer(&mut out, h)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

fn write_table(found: &[Found], config: &ScanConfig) -> std::io::Result<()> {
    let mut rows = vec![[
        "AGENT".to_string(),
        "SESSIONS".into(),
        "SIZE".into(),
        "OLDEST".into(),
        "NEWEST".into(),
        format!("DELETED IN {}D", config.within_days),
        "LOCATION".into(),
    ]];
    for f in found {
        if f.holdings.is_empty() {
            let why = if f.failed { "(failed)" } else { "(none found)" };
            let dash = || "-".to_string();
            rows.push([
                f.source.name.into(),
                "0".into(),
                dash(),
                dash(),
                dash(),
                dash(),
                why.into(),
            ]);
        }
        for h in &f.holdings {
            let day = |t: &Option<String>| {
                t.as_deref()
                    .map_or("-", |t| &t[..t.len().min(10)])
                    .to_string()
            };
            let soon = if h.retention.is_some() {
                h.expiring.to_string()
            } else {
                "-".into()
            };
            rows.push([
                h.source.clone(),
                h.sessions.to_string(),
                human_bytes(h.bytes),
                day(&h.oldest),
                day(&h.newest),
                soon,
                h.location.clone(),
            ]);
        }
    }
    let widths: Vec<usize> = (0..7)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = std::io::stdout().lock();
    for r in &rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            match c {
                6 => line.push_str(cell),
                1 | 2 | 5 => line.push_str(&format!("{}{cell}  ", " ".repeat(pad))),
                _ => line.push_str(&format!("{cell}{}  ", " ".repeat(pad))),
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    out.flush()
}

/// One warning per holding with sessions its agent deletes within the horizon.
fn warn_expiring(found: &[Found], config: &ScanConfig) {
    let within_days = config.within_days;
    let root = match &config.root {
        Some(r) => format!(" --root {}", r.display()),
        None => String::new(),
    };
    for h in found.iter().flat_map(|f| &f.holdings) {
        if h.expiring == 0 {
            continue;
        }
        let next_start = match h.expired {
            0 => String::new(),
            n => format!(" ({n} at its next start)"),
        };
        tonbo_core::note!(
            "{PROG}: warning: {}: {} sessions in {} will be deleted by the agent within {within_days} days{next_start}, by {}; ingest them first: {PROG} --from {}{root}",
            h.source,
            h.expiring,
            h.location,
            h.retention.as_deref().unwrap_or("its retention"),
            h.source
        );
    }
}

/// `1.2 GB`, `340 KB`, `12 B` (powers of 1000).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_du_h() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(340_000), "340.0 KB");
        assert_eq!(human_bytes(1_200_000_000), "1.2 GB");
    }
}
