//! The `summary` lines older Claude Code writes at the head of a session file, held until the
//! line they sum up is read (FORMAT.md, "Titles and summaries"): that line, their leaf, is most
//! often in another file of the project, and the summary titles the leaf's session.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use std::fs::File;

use tonbo_core::Input;

/// Read buffer for the head of a session file.
const HEAD_BUFFER: usize = 8 * 1024;

use crate::files::{Found, FoundKind};
use crate::record::LineHead;

/// A `summary` line held back from its own file's read until the session holding its leaf is
/// read.
#[derive(Debug, Clone)]
pub(crate) struct HeldSummary {
    pub file: String,
    pub line: u64,
    /// The session of the file it sits in.
    pub session: String,
    pub bytes: Vec<u8>,
}

/// The `summary` lines at the head of a project's session files, by the uuid of their leaf. A
/// line whose uuid is a leaf brings its summaries out as records of that line's session
/// (`kind: "summary-title"`). What no file read holds comes out at the end of the project, in
/// its own file's session and without that kind.
#[derive(Debug, Default)]
pub(crate) struct Summaries {
    pending: HashMap<String, Vec<HeldSummary>>,
    /// `(file, line)` of every held line, skipped when its file is read.
    held: HashSet<(PathBuf, u64)>,
}

impl Summaries {
    /// Reads the leading `summary` lines of each main session file of one project.
    pub(crate) fn scan(project: &[Found]) -> Summaries {
        let mut s = Summaries::default();
        for found in project {
            let FoundKind::Main { session } = &found.kind else {
                continue;
            };
            // A small buffer: only the head of the file is looked at, and most files hold no
            // summary (a full-size buffer read every small session file twice).
            let Ok(file) = File::open(&found.path) else {
                continue;
            };
            let input =
                Input::from_reader_buffered(&found.path.display().to_string(), file, HEAD_BUFFER);
            let mut lines = input.lines();
            while let Ok(Some(line)) = lines.next_line() {
                // Not a summary line: no need to parse it.
                if memchr::memmem::find(line.bytes, b"summary").is_none() {
                    break;
                }
                let Some(head) = LineHead::of(line.bytes) else {
                    break;
                };
                let (Some("summary"), Some(leaf)) = (head.kind.as_deref(), head.leaf_uuid) else {
                    break;
                };
                if !line.terminated {
                    break;
                }
                s.held.insert((found.path.clone(), line.number));
                s.pending
                    .entry(leaf.to_string())
                    .or_default()
                    .push(HeldSummary {
                        file: found.path.display().to_string(),
                        line: line.number,
                        session: session.clone(),
                        bytes: line.bytes.to_vec(),
                    });
            }
        }
        s
    }

    /// Whether line `number` of `path` is a held summary.
    pub(crate) fn holds(&self, path: &Path, number: u64) -> bool {
        !self.held.is_empty() && self.held.contains(&(path.to_path_buf(), number))
    }

    /// The summaries whose leaf is this line (the mapping keeps one of each text); `None` when
    /// there are none.
    pub(crate) fn leaf(&mut self, line: &[u8]) -> Option<Vec<HeldSummary>> {
        if self.pending.is_empty() {
            return None;
        }
        let uuid = LineHead::of(line)?.uuid?;
        self.pending.remove(uuid.as_ref())
    }

    /// What no line read was the leaf of, in file order.
    pub(crate) fn unresolved(self) -> Vec<HeldSummary> {
        let mut all: Vec<HeldSummary> = self.pending.into_values().flatten().collect();
        all.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        all
    }
}
