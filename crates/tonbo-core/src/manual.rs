//! What every stage's `--help` shows after its flags (examples, environment, signals, exit
//! status), its man page, and its shell completions, all from the one clap definition of its
//! flags, so that none of them can drift from what the binary accepts.
//!
//! `STAGE --generate KIND` prints one of them and exits, before the stage's own flags are parsed
//! (so it needs none of them): `man` (roff, section 1), or `complete-bash`, `complete-zsh`,
//! `complete-fish`, `complete-elvish`, `complete-powershell`. `make install` and packagers use
//! it; it is kept out of `--help` because nobody types it at a prompt (ripgrep does the same).

use std::ffi::OsString;
use std::io::{self, Write};

use clap::{CommandFactory, Parser};
use clap_complete::Shell;
use clap_mangen::roff::{bold, roman, Roff};

/// The flag that prints a man page or a completion script instead of running the stage.
pub const GENERATE: &str = "--generate";

/// What `--generate` can print.
pub const KINDS: &[&str] = &[
    "man",
    "complete-bash",
    "complete-zsh",
    "complete-fish",
    "complete-elvish",
    "complete-powershell",
];

/// How a stage answers SIGINT and SIGTERM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signals {
    /// A reader: stops at a record boundary (with `--follow`: stops watching), flushes, prints
    /// its summary and exits as if its input had ended there.
    Stop,
    /// A stage in the middle of a pipeline: reads its input to the end (the reader upstream
    /// stops on the same signal), then finishes; a second signal exits at once with 130.
    Drain,
    /// The stage that talks to the server: stops sending at once, gives requests in flight a
    /// few seconds, and exits 130/143; its checkpoint is always consistent.
    Halt,
    /// The front door, which runs the stages: passes the signal on to the readers, so that the
    /// pipeline drains; its exit status is its stages'.
    Forward,
}

/// The parts of a stage's manual that are not its flags.
pub struct Manual {
    /// `(what it does, command line)`, each checked against the stage's flags by [`check`].
    pub examples: &'static [(&'static str, &'static str)],
    /// `(variable, what it is for)` of the variables the stage reads besides its flags' own
    /// (`[env: ...]` in the option list).
    pub environment: &'static [(&'static str, &'static str)],
    pub signals: Signals,
    /// `(file or folder, what it holds)`.
    pub files: &'static [(&'static str, &'static str)],
    /// Whether the stage exits 3 for an input that holds something and gives nothing
    /// (`--allow-empty`, [`crate::empty`]).
    pub empty_exit: bool,
}

/// The exit statuses every stage shares (`cli::run_stage` maps outcomes to them).
const EXIT_STATUS: &[(&str, &str)] = &[
    (
        "0",
        "everything was processed (also when a stage downstream closed the pipe early)",
    ),
    (
        "1",
        "the stage ran to its end, but some input was rejected or failed (each reported on stderr)",
    ),
    (
        "2",
        "the stage could not run: bad flags, unreadable input, an unusable state file",
    ),
];

const EXIT_3: (&str, &str) = (
    "3",
    "an input that holds something gave nothing (warned about on stderr, naming it and why); --allow-empty makes this 0",
);

const EXIT_130: (&str, &str) = ("130", "a second SIGINT/SIGTERM stopped it without draining");

const EXIT_HALT: &[(&str, &str)] = &[
    (
        "75",
        "the server gave no answer for --retry-for seconds; nothing more was sent, the checkpoint is saved: run again later",
    ),
    ("130", "stopped by SIGINT before the end of its input (or by a second signal)"),
    ("143", "stopped by SIGTERM before the end of its input"),
];

/// The front door's: those of the stages it ran.
const EXIT_FORWARD: &[(&str, &str)] = &[
    ("0", "every stage exited 0"),
    (
        "1",
        "something was rejected or failed (also: a last-run mark that could not be written)",
    ),
    (
        "2",
        "bad flags, a stage not found, or a stage that could not run",
    ),
    (
        "3",
        "an input that holds something gave nothing (a reader found no transcript in a folder, tonbo-map made no event of its records); with --watch, and with --since-last-run after a first run, a tonbo-map that made no event is no failure: it warns and exits 0",
    ),
    (
        "other",
        "the status of the first stage that did not exit 0, in pipeline order (each such stage is named on stderr: \"tonbo-ingest: tonbo-map exited 1\"; 128+N for one killed by signal N). With --from all, the worst status of the runs: 2 (or any other), then 1, then 3",
    ),
];

/// The tools every pipeline runs, whatever its source (every man page names them under SEE
/// ALSO). The readers are the sources' own: the front door's table lists them.
pub const PIPELINE: &[&str] = &["tonbo-ingest", "tonbo-map", "tonbo-batch", "tonbo-post"];

impl Manual {
    fn signals_text(&self) -> &'static str {
        match self.signals {
            Signals::Stop => "SIGINT and SIGTERM stop the read at a record boundary (with --follow: stop watching); what was written is flushed, the summary printed, and the exit status is as if the input had ended there.",
            Signals::Drain => "The first SIGINT or SIGTERM lets the stage read its input to the end (the reader upstream stops on the same signal) and finish as usual, so nothing in the pipe is lost; a second one exits at once with status 130.",
            Signals::Forward => "The first SIGINT or SIGTERM is passed on to the readers (as SIGTERM): they stop (one that ends by that signal counts as stopped, not failed), and the stages after them finish what is in the pipe, so a --watch ends with status 0 and nothing lost; no further source is started. A second one is passed on to every stage, which stops at once.",
            Signals::Halt => "The first SIGINT or SIGTERM stops retrying: what is already in the pipe may still go out for 3 seconds (the readers upstream stop on the same signal, so a pipeline drains), then nothing more is sent, and requests in flight get 3 more seconds. The exit status is 0 if the whole input went out, else 130 (SIGINT) or 143 (SIGTERM). The checkpoint is written before every send and after every answer, so the next run sends nothing twice and leaves nothing out. A second signal exits at once with 130.",
        }
    }

    fn exit_status(&self) -> Vec<(&'static str, &'static str)> {
        if self.signals == Signals::Forward {
            return EXIT_FORWARD.to_vec();
        }
        let mut v = EXIT_STATUS.to_vec();
        if self.empty_exit {
            v.push(EXIT_3);
        }
        match self.signals {
            Signals::Drain => v.push(EXIT_130),
            Signals::Halt => v.extend_from_slice(EXIT_HALT),
            Signals::Stop | Signals::Forward => {}
        }
        v
    }

    /// The text `--help` shows after the flags.
    pub fn help(&self) -> String {
        let mut s = String::from("Examples:\n");
        for (what, cmd) in self.examples {
            s += &format!("  {what}\n    {cmd}\n");
        }
        if !self.environment.is_empty() {
            s += "\nEnvironment:\n";
            s += &table(self.environment);
        }
        if !self.files.is_empty() {
            s += "\nFiles:\n";
            s += &table(self.files);
        }
        s += "\nSignals:\n";
        s += &wrap(self.signals_text(), 2, 96);
        s += "\nExit status:\n";
        s += &table(&self.exit_status());
        s
    }

    /// The man page (roff, section 1): clap's name, synopsis, description and options, then the
    /// sections of this manual.
    pub fn man(&self, cmd: clap::Command, out: &mut dyn Write) -> io::Result<()> {
        let name = cmd.get_name().to_owned();
        // Without the after-help text: its sections are written below as man sections.
        let man = clap_mangen::Man::new(cmd.after_help(None::<&str>).after_long_help(None::<&str>));
        let mut page = Vec::new();
        man.render_title(&mut page)?;
        man.render_name_section(&mut page)?;
        man.render_synopsis_section(&mut page)?;
        man.render_description_section(&mut page)?;
        man.render_options_section(&mut page)?;

        let mut r = Roff::default();
        r.control("SH", ["EXAMPLES"]);
        for (what, line) in self.examples {
            r.control("TP", []);
            r.text([bold(*line)]);
            r.text([roman(*what)]);
        }
        for (title, rows) in [("ENVIRONMENT", self.environment), ("FILES", self.files)] {
            if rows.is_empty() {
                continue;
            }
            r.control("SH", [title]);
            for (k, v) in rows {
                r.control("TP", []);
                r.text([bold(*k)]);
                r.text([roman(*v)]);
            }
        }
        r.control("SH", ["SIGNALS"]);
        r.text([roman(self.signals_text())]);
        r.control("SH", ["EXIT STATUS"]);
        for (k, v) in self.exit_status() {
            r.control("TP", []);
            r.text([bold(k)]);
            r.text([roman(v)]);
        }
        r.control("SH", ["SEE ALSO"]);
        let see: Vec<String> = PIPELINE
            .iter()
            .filter(|s| **s != name)
            .map(|s| format!("{s}(1)"))
            .collect();
        r.text([roman(see.join(", "))]);
        r.to_writer(&mut page)?;
        man.render_version_section(&mut page)?;

        // Each piece starts with roff's preamble (the definition of the apostrophe string);
        // the page needs it once.
        let page = String::from_utf8_lossy(&page);
        let mut seen = std::collections::HashSet::new();
        for line in page.lines() {
            let preamble = line.starts_with(".ie \\n(.g .ds Aq") || line.starts_with(".el .ds Aq");
            if preamble && !seen.insert(line) {
                continue;
            }
            writeln!(out, "{line}")?;
        }
        Ok(())
    }

    /// Prints what `kind` names (see [`KINDS`]) for the stage `cmd`.
    pub fn generate(
        &self,
        mut cmd: clap::Command,
        kind: &str,
        out: &mut dyn Write,
    ) -> io::Result<()> {
        let shell = match kind {
            "man" => return self.man(cmd, out),
            "complete-bash" => Shell::Bash,
            "complete-zsh" => Shell::Zsh,
            "complete-fish" => Shell::Fish,
            "complete-elvish" => Shell::Elvish,
            "complete-powershell" => Shell::PowerShell,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{GENERATE} takes one of: {}", KINDS.join(", ")),
                ))
            }
        };
        let name = cmd.get_name().to_owned();
        clap_complete::generate(shell, &mut cmd, name, out);
        Ok(())
    }

    /// The examples whose part for this stage does not parse with its flags, with clap's
    /// reason: an example that drifted from the flags. Each example is a pipeline; the segment
    /// that starts with the stage's name is checked, split on whitespace (so a quoted word of
    /// it holds no space; its single quotes are taken off).
    pub fn check(&self, cmd: &clap::Command) -> Vec<String> {
        let name = cmd.get_name();
        let mut bad = Vec::new();
        for (_, line) in self.examples {
            // Each command of the pipeline, without its redirections.
            let line = line.replace("2>&1", "").replace("2>", ">");
            let segments: Vec<&str> = line
                .split(['|', ';', '&'])
                .map(|s| s.split(['>', '<']).next().unwrap_or("").trim())
                .filter(|s| s.split_whitespace().next() == Some(name))
                .collect();
            if segments.is_empty() {
                bad.push(format!("`{line}` does not run {name}"));
            }
            for seg in segments {
                if let Err(e) = cmd
                    .clone()
                    .try_get_matches_from(seg.split_whitespace().map(|w| w.trim_matches('\'')))
                {
                    bad.push(format!("`{seg}`: {}", e.render().to_string().trim()));
                }
            }
        }
        bad
    }
}

/// Fails when the stage's flags are inconsistent (clap's own checks) or an example of its
/// manual no longer parses with them ([`Manual::check`]).
pub fn assert_agrees<A: CommandFactory>(manual: &Manual) {
    A::command().debug_assert();
    let drifted = manual.check(&A::command());
    assert!(drifted.is_empty(), "{drifted:#?}");
}

/// The unit test every stage's main carries: `tonbo_core::manual_test!(Args, MANUAL);`.
#[macro_export]
macro_rules! manual_test {
    ($args:ty, $manual:expr) => {
        #[cfg(test)]
        #[test]
        fn flags_and_examples_agree() {
            $crate::manual::assert_agrees::<$args>(&$manual);
        }
    };
}

/// Parses the stage's flags, after answering `--generate KIND` (see the module doc).
pub fn parse<A: Parser + CommandFactory>(manual: &Manual) -> A {
    answer_generate::<A>(manual, &|_, _| Ok(()));
    A::parse()
}

/// A stage's `main`: its flags parsed ([`parse`]), then `run` with them, its result turned into
/// the exit code ([`crate::run_stage`]).
pub fn main<A: Parser + CommandFactory>(
    stage: &str,
    manual: &Manual,
    run: impl FnOnce(A) -> anyhow::Result<crate::Exit>,
) -> std::process::ExitCode {
    let args: A = parse(manual);
    crate::run_stage(stage, || run(args))
}

/// What a binary adds after what `--generate KIND` prints from its flags: `(KIND, out)`.
pub type Addition = dyn Fn(&str, &mut dyn Write) -> io::Result<()>;

/// Answers `--generate KIND` (see the module doc) and exits, if that is the command line: what
/// [`Manual::generate`] prints, then what `more` adds for KIND (the front door's completion hands
/// the words after `--` over to tonbo-post's). Returns otherwise.
pub fn answer_generate<A: CommandFactory>(manual: &Manual, more: &Addition) {
    let args: Vec<OsString> = std::env::args_os().take(4).collect();
    if args.get(1).is_none_or(|a| a != GENERATE) {
        return;
    }
    let cmd = A::command();
    let name = cmd.get_name().to_owned();
    let kind = match (args.get(2).and_then(|k| k.to_str()), args.len()) {
        (Some(k), 3) => k.to_owned(),
        _ => String::new(),
    };
    let mut out = io::stdout().lock();
    let done = manual
        .generate(cmd, &kind, &mut out)
        .and_then(|()| more(&kind, &mut out))
        .and_then(|()| out.flush());
    match done {
        Ok(()) => std::process::exit(0),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            crate::note!("{name}: {e}");
            std::process::exit(2);
        }
    }
}

fn table(rows: &[(&str, &str)]) -> String {
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut s = String::new();
    for (k, v) in rows {
        if w > 30 {
            // Long keys (paths): the text goes below each, not in a narrow column beside it.
            s += &format!("  {k}\n{}", wrap(v, 6, 96));
        } else {
            let text = wrap(v, w + 4, 96);
            // The first line carries the key in its indent.
            s += &format!("  {k:<w$}{}", &text[w + 2..]);
        }
    }
    s
}

/// `text` wrapped at `width` columns, each line indented by `indent` spaces.
fn wrap(text: &str, indent: usize, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent + line.len() + 1 + word.len() > width {
            out += &format!("{:indent$}{line}\n", "");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line += word;
    }
    out += &format!("{:indent$}{line}\n", "");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Parser)]
    #[command(name = "demo-stage", version)]
    struct Demo {
        #[arg(long)]
        follow: bool,
        files: Vec<String>,
    }

    const DEMO: Manual = Manual {
        examples: &[
            (
                "Follow a file:",
                "demo-stage --follow a.ndjson 2> log | tonbo-map",
            ),
            ("A flag that does not exist:", "cat x | demo-stage --folow"),
            ("Not this stage at all:", "tonbo-map x"),
        ],
        environment: &[("DEMO_HOME", "where it looks by default")],
        signals: Signals::Drain,
        empty_exit: false,
        files: &[],
    };

    #[test]
    fn examples_that_drifted_from_the_flags_are_found() {
        let bad = DEMO.check(&Demo::command());
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(bad[0].contains("--folow"), "{bad:?}");
        assert!(bad[1].contains("does not run demo-stage"), "{bad:?}");
    }

    #[test]
    fn help_has_every_section() {
        let h = DEMO.help();
        assert!(
            h.starts_with(
                "Examples:\n  Follow a file:\n    demo-stage --follow a.ndjson 2> log | tonbo-map\n"
            ),
            "{h}"
        );
        assert!(
            h.contains("\nEnvironment:\n  DEMO_HOME  where it looks by default\n"),
            "{h}"
        );
        assert!(h.contains("\nExit status:\n  0    everything"), "{h}");
        assert!(h.contains("\n  130  a second"), "{h}");
        for l in h.lines() {
            assert!(l.len() <= 96, "{l}");
        }
    }

    #[test]
    fn man_page_and_completions() {
        let mut man = Vec::new();
        DEMO.generate(Demo::command(), "man", &mut man).unwrap();
        let man = String::from_utf8(man).unwrap();
        assert!(man.contains("\n.TH demo-stage 1"), "{man}");
        assert_eq!(man.matches(".el .ds Aq").count(), 1, "{man}");
        for section in [
            "NAME",
            "SYNOPSIS",
            "OPTIONS",
            "EXAMPLES",
            "ENVIRONMENT",
            "SIGNALS",
            "\"EXIT STATUS\"",
            "\"SEE ALSO\"",
        ] {
            assert!(
                man.contains(&format!("\n.SH {section}\n")),
                "{section}: {man}"
            );
        }
        let mut bash = Vec::new();
        DEMO.generate(Demo::command(), "complete-bash", &mut bash)
            .unwrap();
        assert!(String::from_utf8(bash).unwrap().contains("--follow"));
        let mut none = Vec::new();
        assert!(DEMO
            .generate(Demo::command(), "complete-tcsh", &mut none)
            .is_err());
    }
}
