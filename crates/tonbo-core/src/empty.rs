//! Never a silent zero: what a stage says when an input that holds something gives nothing.
//!
//! A reader pointed at a folder that holds files but no transcript it knows, or tonbo-map given
//! records of which none became an event, must not look like a run that had nothing to do. Each
//! such input is warned about on stderr, naming it and why, and the stage exits 3
//! ([`crate::Exit::Empty`]) unless `--allow-empty` ([`crate::cli::AllowEmpty`]).

use std::path::Path;

use walkdir::WalkDir;

/// Whether `path` holds anything: a file with at least one byte, itself or anywhere under it
/// (links followed; what cannot be read counts as nothing, the reader reports it on its own).
pub fn holds_content(path: &Path) -> bool {
    WalkDir::new(path)
        .follow_links(true)
        .into_iter()
        .filter_map(Result::ok)
        .any(|e| e.file_type().is_file() && e.metadata().is_ok_and(|m| m.len() > 0))
}

/// Warns that `input` gave nothing, and why.
pub fn warn(stage: &str, input: &str, reason: &str) {
    crate::note!("{stage}: warning: {input}: nothing read: {reason}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_a_file_with_bytes_somewhere_below() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        assert!(!holds_content(d));
        std::fs::create_dir_all(d.join("a/b")).unwrap();
        std::fs::write(d.join("a/b/empty"), "").unwrap();
        assert!(!holds_content(d));
        assert!(!holds_content(&d.join("missing")));
        std::fs::write(d.join("a/b/x"), "1").unwrap();
        assert!(holds_content(d));
        assert!(holds_content(&d.join("a/b/x")));
    }
}
