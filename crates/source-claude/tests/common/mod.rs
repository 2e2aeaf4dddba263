//! What the claude-read tests share: running it away from the machine's own transcripts.

use std::path::Path;
use std::process::Command;

/// `claude-read` with HOME at `home` and no CLAUDE_CONFIG_DIR, so that the machine's own
/// transcripts are never read.
pub fn claude_read(home: &Path) -> Command {
    tonbo_testkit::reader::command(
        env!("CARGO_BIN_EXE_claude-read"),
        home,
        &["CLAUDE_CONFIG_DIR"],
    )
}
