//! What a plain run read: after a run of a source whose every stage exited 0, the front door
//! keeps `STATE_DIR/manifest-SOURCE`, the files under what that source's reader was given, as
//! they stood when the run started (size, modification and change times to the nanosecond,
//! device and inode), with that start and what the run was ([`Manifest::context`]: its inputs,
//! stages, tonbo-post options and server). The next plain run walks the same places (a stat per
//! file, nothing read) and compares ([`plan`]): nothing changed, and the source's pipeline is
//! not started; only files written since changed, and the reader gets `--modified-after`;
//! anything else, and everything is read, as if there were no manifest.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// How close before a run's start a change must be to be distrusted: a file changed again right
/// after the walk, within the filesystem's timestamp granularity (a second on some), could keep
/// the stat the walk saw. Such files count as changed at the next run.
pub const MARGIN_NS: i128 = 1_000_000_000;

const HEADER: &str = "tonbo-ingest manifest 1";

/// Nanoseconds since the Unix epoch.
pub type Nanos = i128;

/// What a stat says of a file; any difference means it may have changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub size: u64,
    pub mtime: Nanos,
    /// The change time, which no program sets (a write, a restored modification time, a rename
    /// all move it); `None` for a SQLite `-wal` file, whose owner SQLite resets (moving its change
    /// time) whenever a process running as root opens the database, readers too.
    pub ctime: Option<Nanos>,
    pub dev: u64,
    pub ino: u64,
}

/// One path of a walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    File(Stat),
    /// A place that could not be looked into (a root that does not exist, a folder that cannot
    /// be listed, a dangling link): the kind of error.
    Unseen(String),
}

/// The files of a source at the start of a run, and what the run was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// When the run started.
    pub start: Nanos,
    /// One line per thing that makes two runs the same run: the source, its inputs, the stages'
    /// binaries, tonbo-post's options and server. A difference means a full read.
    pub context: Vec<String>,
    /// By path (its bytes).
    pub files: BTreeMap<Vec<u8>, Entry>,
}

/// What a plain run does with a source.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Nothing to read: every file is as the last good run found it (some may be gone).
    Skip { files: usize },
    /// Only files changed, each modified after `after`: the reader reads what was modified after
    /// it.
    Since { after: Nanos, changed: usize },
    /// Everything is read, for this reason.
    Full(String),
}

/// `t` in nanoseconds since the epoch.
pub fn nanos_of(t: SystemTime) -> Nanos {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as Nanos,
        Err(e) => -(e.duration().as_nanos() as Nanos),
    }
}

/// `t` as RFC 3339 UTC to the nanosecond (`2026-11-01T00:00:00.000000001Z`), which every reader's
/// `--modified-after` reads back exactly; 1970-01-01 for an earlier time.
pub fn rfc3339_nanos(t: Nanos) -> String {
    let t = t.max(0);
    let secs = u64::try_from(t / 1_000_000_000).unwrap_or(0);
    let whole = tonbo_core::time::rfc3339_of(UNIX_EPOCH + std::time::Duration::from_secs(secs));
    let frac = t % 1_000_000_000;
    format!("{}.{frac:09}Z", whole.trim_end_matches('Z'))
}

/// Walks `roots` (folders, files, databases), following links: every file with its stat. A file
/// named as a root brings its SQLite companions (`-wal`, `-journal`) where they exist; `-shm`
/// files and empty `-wal` files are left out everywhere, since a reader of a database writes
/// them.
pub fn walk(roots: &[PathBuf]) -> BTreeMap<Vec<u8>, Entry> {
    let mut files = BTreeMap::new();
    let mut seen_dirs = HashSet::new();
    for root in roots {
        match std::fs::metadata(root) {
            Err(e) => {
                files.insert(key(root), unseen(&e));
            }
            Ok(m) if m.is_dir() => walk_dir(root, &m, &mut files, &mut seen_dirs),
            Ok(m) => {
                files.insert(key(root), Entry::File(stat_of(root, &m)));
                for companion in ["-wal", "-journal"] {
                    let mut path = root.clone().into_os_string();
                    path.push(companion);
                    let path = PathBuf::from(path);
                    match std::fs::metadata(&path) {
                        Ok(m) if holds_something(&path, &m) => {
                            files.insert(key(&path), Entry::File(stat_of(&path, &m)));
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    files
}

fn walk_dir(
    dir: &Path,
    meta: &std::fs::Metadata,
    files: &mut BTreeMap<Vec<u8>, Entry>,
    seen_dirs: &mut HashSet<(u64, u64)>,
) {
    // A link back up the tree would walk for ever.
    if !seen_dirs.insert((meta.dev(), meta.ino())) {
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            files.insert(key(dir), unseen(&e));
            return;
        }
    };
    for entry in entries {
        let path = match entry {
            Ok(entry) => entry.path(),
            Err(e) => {
                files.insert(key(dir), unseen(&e));
                continue;
            }
        };
        if path.as_os_str().as_bytes().ends_with(b"-shm") {
            continue;
        }
        match std::fs::metadata(&path) {
            Err(e) => {
                files.insert(key(&path), unseen(&e));
            }
            Ok(m) if m.is_dir() => walk_dir(&path, &m, files, seen_dirs),
            Ok(m) if !holds_something(&path, &m) => {}
            Ok(m) => {
                files.insert(key(&path), Entry::File(stat_of(&path, &m)));
            }
        }
    }
}

/// All but an empty SQLite `-wal`, which holds nothing, and which a reader of a database in WAL
/// mode creates where there was none.
fn holds_something(path: &Path, m: &std::fs::Metadata) -> bool {
    m.len() > 0 || !path.as_os_str().as_bytes().ends_with(b"-wal")
}

fn key(path: &Path) -> Vec<u8> {
    path.as_os_str().as_bytes().to_vec()
}

fn unseen(e: &io::Error) -> Entry {
    Entry::Unseen(format!("{:?}", e.kind()))
}

fn stat_of(path: &Path, m: &std::fs::Metadata) -> Stat {
    let time = |secs: i64, nsec: i64| Nanos::from(secs) * 1_000_000_000 + Nanos::from(nsec);
    let wal = path.as_os_str().as_bytes().ends_with(b"-wal");
    Stat {
        size: m.len(),
        mtime: time(m.mtime(), m.mtime_nsec()),
        ctime: (!wal).then(|| time(m.ctime(), m.ctime_nsec())),
        dev: m.dev(),
        ino: m.ino(),
    }
}

/// What a plain run does, given the manifest of the last good run (`None`: there is none) and
/// what it finds now (`now`, with this run's context). `incremental` says whether the source's
/// reader reads by file times: a database's reader reads by its rows' own times instead, so a
/// changed database is read whole.
pub fn plan(last: Option<&Manifest>, now: &Manifest, incremental: bool) -> Plan {
    let Some(last) = last else {
        return Plan::Full("no good run of it is recorded yet".into());
    };
    if let Some(why) = context_change(&last.context, &now.context) {
        return Plan::Full(why);
    }
    let after = last.start - MARGIN_NS;
    let mut changed = 0;
    let mut unsafe_change = None;
    for (path, entry) in &now.files {
        let before = last.files.get(path);
        if before.is_some_and(|b| b == entry && trusted(b, after)) {
            continue;
        }
        changed += 1;
        if unsafe_change.is_none() {
            unsafe_change = why_read_all(path, before, entry, after, incremental);
        }
    }
    match (changed, unsafe_change) {
        (0, _) => Plan::Skip {
            files: now.files.len(),
        },
        (n, Some(why)) => Plan::Full(format!(
            "{n} {} changed since its last good run, and {why}",
            files(n)
        )),
        (n, None) => Plan::Since { after, changed: n },
    }
}

/// "file" or "files".
pub fn files(n: usize) -> &'static str {
    if n == 1 {
        "file"
    } else {
        "files"
    }
}

/// Whether an unchanged entry can be taken as it stands: its last change was well before the
/// walk that recorded it (`after` is that walk's start less [`MARGIN_NS`]).
fn trusted(entry: &Entry, after: Nanos) -> bool {
    match entry {
        Entry::File(s) => s.ctime.unwrap_or(s.mtime) <= after,
        Entry::Unseen(_) => true,
    }
}

/// Why a changed file makes the reader read everything, if it does.
fn why_read_all(
    path: &[u8],
    before: Option<&Entry>,
    now: &Entry,
    after: Nanos,
    incremental: bool,
) -> Option<String> {
    let name = Path::new(OsStr::from_bytes(path)).display();
    if !incremental {
        return Some(format!(
            "{name} is a database's, whose reader reads by the rows' own times"
        ));
    }
    let Entry::File(now) = now else {
        return Some(format!("{name} cannot be looked at"));
    };
    if now.mtime <= after {
        return Some(format!(
            "{name} was modified without its modification time moving past that run's start"
        ));
    }
    match before {
        Some(Entry::File(b)) if (b.dev, b.ino) != (now.dev, now.ino) => {
            Some(format!("{name} was replaced by another file"))
        }
        Some(Entry::File(b)) if now.size < b.size => Some(format!("{name} shrank")),
        _ => None,
    }
}

/// Why two contexts are not the same run, naming what differs.
fn context_change(last: &[String], now: &[String]) -> Option<String> {
    if last == now {
        return None;
    }
    let kind = |line: &str| line.split(' ').next().unwrap_or("").to_string();
    let differs = last
        .iter()
        .zip(now)
        .find(|(a, b)| a != b)
        .map(|(a, _)| kind(a))
        .or_else(|| last.get(now.len()).or(now.get(last.len())).map(|l| kind(l)))
        .unwrap_or_default();
    let what = match differs.as_str() {
        "input" | "root" => "other inputs",
        "stage" => "other stage binaries (rebuilt or reinstalled)",
        "tonbo-post" => "other tonbo-post options",
        "env" => "another server, checkpoint or home",
        _ => "another source",
    };
    Some(format!("its last good run had {what}"))
}

impl Manifest {
    /// The manifest as written to its file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{HEADER}\nstart {}\n", self.start).into_bytes();
        for line in &self.context {
            out.extend_from_slice(format!("context {}\n", escape(line.as_bytes())).as_bytes());
        }
        for (path, entry) in &self.files {
            let line = match entry {
                Entry::File(s) => format!(
                    "file {} {} {} {} {} ",
                    s.size,
                    s.mtime,
                    s.ctime.map_or("-".to_string(), |c| c.to_string()),
                    s.dev,
                    s.ino
                ),
                Entry::Unseen(kind) => format!("unseen {} ", escape(kind.as_bytes())),
            };
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(escape(path).as_bytes());
            out.push(b'\n');
        }
        out
    }

    /// A manifest read back, or `None` for bytes that are not one (another version, cut short).
    pub fn from_bytes(bytes: &[u8]) -> Option<Manifest> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut lines = text.split_terminator('\n');
        if lines.next()? != HEADER {
            return None;
        }
        let start = lines.next()?.strip_prefix("start ")?.parse().ok()?;
        let mut m = Manifest {
            start,
            context: Vec::new(),
            files: BTreeMap::new(),
        };
        for line in lines {
            let (kind, rest) = line.split_once(' ')?;
            match kind {
                "context" => m.context.push(String::from_utf8(unescape(rest)?).ok()?),
                "file" => {
                    let mut f = rest.splitn(6, ' ');
                    let mut num = || f.next();
                    let size = num()?.parse().ok()?;
                    let mtime = num()?.parse().ok()?;
                    let ctime = match num()? {
                        "-" => None,
                        c => Some(c.parse().ok()?),
                    };
                    let dev = num()?.parse().ok()?;
                    let ino = num()?.parse().ok()?;
                    let path = unescape(num()?)?;
                    let stat = Stat {
                        size,
                        mtime,
                        ctime,
                        dev,
                        ino,
                    };
                    m.files.insert(path, Entry::File(stat));
                }
                "unseen" => {
                    let (error, path) = rest.split_once(' ')?;
                    let error = String::from_utf8(unescape(error)?).ok()?;
                    m.files.insert(unescape(path)?, Entry::Unseen(error));
                }
                _ => return None,
            }
        }
        Some(m)
    }
}

/// Bytes as one line of ASCII: printable ASCII and space but `\` as is, the rest as `\xNN`.
fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        if (b.is_ascii_graphic() || b == b' ') && b != b'\\' {
            s.push(b as char);
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s
}

fn unescape(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            let hex = std::str::from_utf8(b.get(i + 2..i + 4)?).ok()?;
            if b.get(i + 1) != Some(&b'x') {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Nanos = 1_000_000_000;

    fn file(size: u64, mtime: Nanos, ino: u64) -> Entry {
        Entry::File(Stat {
            size,
            mtime,
            ctime: Some(mtime),
            dev: 1,
            ino,
        })
    }

    fn manifest(start: Nanos, files: &[(&str, Entry)]) -> Manifest {
        Manifest {
            start,
            context: vec!["source claude-code".into(), "input \"/x\"".into()],
            files: files
                .iter()
                .map(|(p, e)| (p.as_bytes().to_vec(), e.clone()))
                .collect(),
        }
    }

    #[test]
    fn reads_back_what_it_writes_whatever_the_names() {
        let mut m = manifest(
            1_700_000_000 * S + 5,
            &[
                ("/a b/\\odd\nname\u{e9}", file(3, 10 * S + 1, 7)),
                ("/gone", Entry::Unseen("NotFound".into())),
            ],
        );
        m.files.insert(
            b"/x/db-wal\xff".to_vec(),
            Entry::File(Stat {
                size: 1,
                mtime: -5,
                ctime: None,
                dev: 2,
                ino: 3,
            }),
        );
        let bytes = m.to_bytes();
        assert_eq!(Manifest::from_bytes(&bytes), Some(m));
        assert!(Manifest::from_bytes(&bytes[..bytes.len() - 3]).is_none());
        assert!(Manifest::from_bytes(b"tonbo-ingest manifest 0\nstart 1\n").is_none());
    }

    #[test]
    fn writes_times_the_readers_read_back_exactly() {
        let t = 1_793_491_200 * S + 42;
        assert_eq!(rfc3339_nanos(t), "2026-11-01T00:00:00.000000042Z");
        let back = tonbo_core::time::parse_time(&rfc3339_nanos(t), SystemTime::now()).unwrap();
        assert_eq!(nanos_of(back), t);
    }

    #[test]
    fn plans_a_skip_a_read_of_what_changed_or_a_full_read() {
        let start = 1000 * S;
        let old = 10 * S;
        let last = manifest(start, &[("/a", file(5, old, 1)), ("/b", file(5, old, 2))]);
        let now = |files: &[(&str, Entry)]| manifest(2000 * S, files);
        let unchanged = now(&[("/a", file(5, old, 1)), ("/b", file(5, old, 2))]);
        assert_eq!(plan(Some(&last), &unchanged, true), Plan::Skip { files: 2 });
        // A file gone needs no read.
        let gone = now(&[("/a", file(5, old, 1))]);
        assert_eq!(plan(Some(&last), &gone, true), Plan::Skip { files: 1 });
        // Appended to, or new, after the start: read what was modified after it.
        let later = start + 5 * S;
        let grown = now(&[
            ("/a", file(9, later, 1)),
            ("/b", file(5, old, 2)),
            ("/c", file(1, later, 3)),
        ]);
        let after = start - MARGIN_NS;
        assert_eq!(
            plan(Some(&last), &grown, true),
            Plan::Since { after, changed: 2 }
        );
        // Not for a database.
        assert!(matches!(plan(Some(&last), &grown, false), Plan::Full(_)));
        // Rewritten with its old modification time (a new change time), shrunk, replaced, new
        // with an old time: everything.
        let mut rewritten = unchanged.clone();
        rewritten.files.insert(
            b"/a".to_vec(),
            Entry::File(Stat {
                size: 5,
                mtime: old,
                ctime: Some(later),
                dev: 1,
                ino: 1,
            }),
        );
        for (case, why) in [
            (rewritten, "/a was modified without"),
            (now(&[("/a", file(4, later, 1))]), "/a shrank"),
            (now(&[("/a", file(5, later, 9))]), "/a was replaced"),
            (now(&[("/z", file(5, old, 9))]), "/z was modified without"),
        ] {
            match plan(Some(&last), &case, true) {
                Plan::Full(reason) => assert!(reason.contains(why), "{reason}"),
                other => panic!("{other:?} for {why}"),
            }
        }
        // A file changed within a second of the walk that recorded it is not trusted.
        let racy = manifest(start, &[("/a", file(5, start - S / 2, 1))]);
        let same = now(&[("/a", file(5, start - S / 2, 1))]);
        assert_eq!(
            plan(Some(&racy), &same, true),
            Plan::Since { after, changed: 1 }
        );
        // No manifest, or another run's: everything.
        assert!(matches!(plan(None, &unchanged, true), Plan::Full(_)));
        let mut other = unchanged.clone();
        other.context[1] = "input \"/y\"".into();
        assert_eq!(
            plan(Some(&last), &other, true),
            Plan::Full("its last good run had other inputs".into())
        );
    }

    #[test]
    fn walks_files_links_and_database_companions() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("p/q")).unwrap();
        std::fs::write(root.join("p/q/s.jsonl"), "x\n").unwrap();
        std::fs::write(root.join("db"), "d").unwrap();
        std::fs::write(root.join("db-wal"), "w").unwrap();
        std::fs::write(root.join("db-shm"), "s").unwrap();
        std::fs::write(root.join("empty-wal"), "").unwrap();
        // A link back up the tree, and one to nowhere.
        std::os::unix::fs::symlink(&root, root.join("p/up")).unwrap();
        std::os::unix::fs::symlink(root.join("none"), root.join("dangling")).unwrap();
        let walked = walk(&[root.clone(), root.join("db"), tmp.path().join("missing")]);
        let names: Vec<String> = walked
            .keys()
            .map(|k| String::from_utf8_lossy(k).replace(&*tmp.path().to_string_lossy(), ""))
            .collect();
        assert_eq!(
            names,
            [
                "/missing",
                "/root/dangling",
                "/root/db",
                "/root/db-wal",
                "/root/p/q/s.jsonl"
            ]
        );
        let wal = &walked[root.join("db-wal").as_os_str().as_bytes()];
        assert!(
            matches!(wal, Entry::File(Stat { ctime: None, .. })),
            "{wal:?}"
        );
    }
}
