//! The front door's state folder: the last-run marks of `--since-last-run`
//! (`STATE_DIR/last-run-SOURCE` holds the start, RFC 3339 UTC to the second, of the last run of
//! SOURCE whose every stage exited 0, which the next run passes to the reader as
//! `--modified-after`), and the plain runs' manifests ([`crate::manifest`],
//! `STATE_DIR/manifest-SOURCE`).

use std::io;
use std::path::{Path, PathBuf};

/// The folder of the marks.
#[derive(Debug)]
pub struct Marks {
    pub dir: PathBuf,
}

impl Marks {
    /// `--state-dir`, else `$TONBO_STATE_DIR`, else `$XDG_STATE_HOME/tonbo-ingest`, else
    /// `~/.local/state/tonbo-ingest` (empty values count as unset).
    pub fn locate(state_dir: Option<&Path>) -> Result<Marks, String> {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        let dir = match state_dir {
            Some(d) => d.to_path_buf(),
            None => match (var("TONBO_STATE_DIR"), var("XDG_STATE_HOME"), var("HOME")) {
                (Some(d), _, _) => d.into(),
                (None, Some(x), _) => Path::new(&x).join("tonbo-ingest"),
                (None, None, Some(h)) => Path::new(&h).join(".local/state/tonbo-ingest"),
                (None, None, None) => return Err("HOME is not set".into()),
            },
        };
        Ok(Marks { dir })
    }

    pub fn path(&self, source: &str) -> PathBuf {
        self.dir.join(format!("last-run-{source}"))
    }

    /// The mark of `source`: its first line, or `None` when there is none (or it is empty).
    pub fn read(&self, source: &str) -> io::Result<Option<String>> {
        match std::fs::read_to_string(self.path(source)) {
            Ok(text) if text.is_empty() => Ok(None),
            Ok(text) => Ok(Some(text.lines().next().unwrap_or("").to_string())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sets the mark of `source` to `started`, whole or not at all.
    pub fn write(&self, source: &str, started: &str) -> io::Result<()> {
        write_whole(
            &self.dir,
            &self.path(source),
            format!("{started}\n").as_bytes(),
        )
    }

    /// Where the manifest of `source` is kept.
    pub fn manifest_path(&self, source: &str) -> PathBuf {
        self.dir.join(format!("manifest-{source}"))
    }

    /// The manifest of `source`'s last good run, as written; `None` when there is none.
    pub fn read_manifest(&self, source: &str) -> io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.manifest_path(source)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sets the manifest of `source`, whole or not at all.
    pub fn write_manifest(&self, source: &str, bytes: &[u8]) -> io::Result<()> {
        write_whole(&self.dir, &self.manifest_path(source), bytes)
    }
}

/// Writes `bytes` to `path` in `dir` whole or not at all: aside, then renamed over it.
fn write_whole(dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut aside = path.to_path_buf().into_os_string();
    aside.push(format!(".tmp.{}", std::process::id()));
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&aside, bytes))
        .and_then(|()| std::fs::rename(&aside, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&aside);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_is_written_whole_and_read_back() {
        let tmp = tempfile::tempdir().unwrap();
        let marks = Marks {
            dir: tmp.path().join("deep/state"),
        };
        assert_eq!(marks.read("codex-cli").unwrap(), None);
        marks.write("codex-cli", "2026-11-01T00:00:00Z").unwrap();
        assert_eq!(
            std::fs::read_to_string(marks.path("codex-cli")).unwrap(),
            "2026-11-01T00:00:00Z\n"
        );
        assert_eq!(
            marks.read("codex-cli").unwrap().as_deref(),
            Some("2026-11-01T00:00:00Z")
        );
        std::fs::write(marks.path("opencode"), "").unwrap();
        assert_eq!(marks.read("opencode").unwrap(), None);
        // A folder where the marks should go that is a file: an error, and nothing left aside.
        let blocked = Marks {
            dir: marks.path("codex-cli"),
        };
        assert!(blocked.write("x", "t").is_err());
        assert_eq!(std::fs::read_dir(&marks.dir).unwrap().count(), 2);
    }
}
