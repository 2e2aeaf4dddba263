//! The sources the front door reads, one line each in [`SOURCES`]: adding a source is adding its
//! line (and its reader to the workspace). `--from` takes their names, and `all`.

/// What names the input of a source's reader on the front door's command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takes {
    /// `--path P`: folders or files.
    Path,
    /// `--db D`: databases or data folders.
    Db,
}

impl Takes {
    pub fn flag(self) -> &'static str {
        match self {
            Takes::Path => "--path",
            Takes::Db => "--db",
        }
    }
}

/// A source: its `--from` name (also that of its last-run mark), its reader binary, the flag
/// that names what the reader reads, and the variable that moves the reader's default location.
#[derive(Debug, PartialEq, Eq)]
pub struct Source {
    pub name: &'static str,
    pub reader: &'static str,
    pub takes: Takes,
    pub home: &'static str,
}

impl Source {
    const fn new(
        name: &'static str,
        reader: &'static str,
        takes: Takes,
        home: &'static str,
    ) -> Self {
        Source {
            name,
            reader,
            takes,
            home,
        }
    }
}

#[rustfmt::skip]
pub const SOURCES: &[Source] = &[
    Source::new("claude-code", "claude-read",   Takes::Path, "CLAUDE_CONFIG_DIR"),
    Source::new("codex-cli",   "codex-read",    Takes::Path, "CODEX_HOME"),
    Source::new("opencode",    "opencode-read", Takes::Db,   "OPENCODE_DB"),
    Source::new("gemini-cli",  "gemini-read",   Takes::Path, "GEMINI_CLI_HOME"),
    Source::new("cline",       "cline-read",    Takes::Path, "VSCODE_PORTABLE"),
    Source::new("copilot-cli", "copilot-read",  Takes::Path, "COPILOT_HOME"),
    Source::new("goose",       "goose-read",    Takes::Db,   "GOOSE_PATH_ROOT"),
    Source::new("qwen-code",   "qwen-read",     Takes::Path, "QWEN_HOME"),
    Source::new("cursor",      "cursor-read",   Takes::Db,   "CURSOR_USER_DIR"),
];

/// The environment of a reader whose home is `root` (`--root`: a copied home directory, a
/// container's): HOME and the XDG base directories under it, and every source's own home
/// variable removed, so that each reader finds its agent's default locations under `root` and
/// nothing of this machine's.
pub fn home_under(root: &std::path::Path) -> Vec<(std::ffi::OsString, Option<std::ffi::OsString>)> {
    let under = |rel: &str| Some(root.join(rel).into_os_string());
    let mut env = vec![
        ("HOME".into(), Some(root.as_os_str().to_os_string())),
        ("XDG_CONFIG_HOME".into(), under(".config")),
        ("XDG_DATA_HOME".into(), under(".local/share")),
        ("XDG_STATE_HOME".into(), under(".local/state")),
        ("XDG_CACHE_HOME".into(), under(".cache")),
    ];
    for s in SOURCES {
        if !env.iter().any(|(name, _)| name == s.home) {
            env.push((s.home.into(), None));
        }
    }
    // The readers' other variables: Cline's own data folder, Qwen Code's runtime folder.
    for more in ["CLINE_DATA_DIR", "CLINE_DIR", "QWEN_RUNTIME_DIR"] {
        env.push((more.into(), None));
    }
    env
}

/// The `--from` value that reads every source.
pub const ALL: &str = "all";

/// The sources `--from NAME` reads, or `None` for a name that is none.
pub fn named(name: &str) -> Option<Vec<&'static Source>> {
    if name == ALL {
        return Some(SOURCES.iter().collect());
    }
    SOURCES.iter().find(|s| s.name == name).map(|s| vec![s])
}

/// `claude-code, codex-cli, opencode or all`, for messages.
pub fn choices() -> String {
    let names: Vec<&str> = SOURCES.iter().map(|s| s.name).collect();
    format!("{} or {ALL}", names.join(", "))
}

/// The names of the sources that take `takes`, joined by `sep`.
pub fn taking(takes: Takes, sep: &str) -> String {
    let names: Vec<&str> = SOURCES
        .iter()
        .filter(|s| s.takes == takes)
        .map(|s| s.name)
        .collect();
    names.join(sep)
}

/// `--from`'s values for clap: its `--help` and the shell completions list them.
pub fn from_values() -> clap::builder::PossibleValuesParser {
    let each = SOURCES.iter().map(|s| {
        clap::builder::PossibleValue::new(s.name).help(format!(
            "{} reads what {} names, else its own default locations (moved by {})",
            s.reader,
            s.takes.flag(),
            s.home
        ))
    });
    let all = clap::builder::PossibleValue::new(ALL)
        .help("every source, one after another (with --watch: all at once, into one tonbo-post)");
    clap::builder::PossibleValuesParser::new(each.chain([all]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_all_is_none_of_them() {
        for (i, s) in SOURCES.iter().enumerate() {
            assert_ne!(s.name, ALL);
            assert!(SOURCES[i + 1..].iter().all(|t| t.name != s.name));
        }
        assert_eq!(
            choices(),
            "claude-code, codex-cli, opencode, gemini-cli, cline, copilot-cli, goose, qwen-code, cursor or all"
        );
        assert_eq!(taking(Takes::Db, " or "), "opencode or goose or cursor");
        assert_eq!(named("all").map(|v| v.len()), Some(SOURCES.len()));
        assert_eq!(named("codex-cli").unwrap()[0].reader, "codex-read");
        assert!(named("nowhere").is_none());
    }
}
