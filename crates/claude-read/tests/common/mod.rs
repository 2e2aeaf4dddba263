//! What the claude-read tests share: running it away from the machine's own transcripts, and
//! building Claude Code trees on disk.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::SystemTime;

/// `claude-read` with HOME at `home` and no CLAUDE_CONFIG_DIR, so that the machine's own
/// transcripts are never read.
pub fn claude_read(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_claude-read"));
    cmd.env_remove("CLAUDE_CONFIG_DIR").env("HOME", home);
    cmd
}

/// [`claude_read`] started with `args`, its stdout and stderr piped.
pub fn spawn_piped<S: AsRef<OsStr>>(home: &Path, args: impl IntoIterator<Item = S>) -> Child {
    claude_read(home)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn claude-read")
}

/// Writes `bytes` to `path`, making its folders.
pub fn put(path: &Path, bytes: impl AsRef<[u8]>) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

/// Sets a file's modification time (for `--modified-after`).
pub fn set_mtime(path: &Path, t: SystemTime) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}
