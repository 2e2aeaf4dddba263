//! tonbo-ingest, the front door: runs `READER | tonbo-map | tonbo-batch | tonbo-post` for one
//! source or each in turn (`--from all`), names each stage that failed and returns the status of
//! the first, and remembers the start of each run whose every stage exited 0 (`--since-last-run`).
//! With `--from all --watch` the readers run at once into one `tonbo-map --merge`, because a
//! checkpoint takes one tonbo-post at a time. `scan` tabulates what each reader finds
//! (`READER --scan`) and warns about sessions their agents will delete ([`scan`]); `--root`
//! gives the readers a home of their own ([`sources::home_under`]).
//!
//! The stages stay usable on their own: this only assembles them, as a shell pipeline would,
//! and passes signals on so that the pipeline drains ([`pipeline`]).

pub mod bins;
pub mod cli;
pub mod completion;
pub mod marks;
pub mod pipeline;
pub mod scan;
pub mod sources;

use std::ffi::OsString;
use std::time::SystemTime;

use cli::{Config, PROG};
use marks::Marks;
use pipeline::{Input, Output, Stage, Supervisor};
use sources::Source;

/// Runs what `config` asks for; the exit status.
pub fn run(config: &Config) -> i32 {
    let stages = match bins::Lookup::from_env().stages(&config.sources) {
        Ok(stages) => stages,
        Err(message) => return fail(&message),
    };
    // Only --since-last-run needs the folder of the marks (and HOME, to find it).
    let marks = if config.since_last_run {
        match Marks::locate(config.state_dir.as_deref()) {
            Ok(marks) => Some(marks),
            Err(message) => return fail(&message),
        }
    } else {
        None
    };
    let supervisor = match Supervisor::new() {
        Ok(s) => s,
        Err(e) => return fail(&format!("cannot take SIGINT and SIGTERM: {e}")),
    };
    let door = Door {
        config,
        stages,
        marks,
        supervisor,
    };
    if config.all && config.watch {
        return door.run_all_watch();
    }
    let mut worst = 0;
    for (i, source) in config.sources.iter().enumerate() {
        if door.supervisor.signals() > 0 {
            break;
        }
        let status = door.run_source(i, source);
        if rank(status) > rank(worst) {
            worst = status;
        }
    }
    worst
}

fn fail(message: &str) -> i32 {
    tonbo_core::note!("{PROG}: {message}");
    2
}

/// How bad an exit status is, for the worst of several runs: a stage that could not run (2, or
/// killed), then one that rejected or failed something (1), then an input that gave nothing (3).
fn rank(status: i32) -> u8 {
    match status {
        0 => 0,
        3 => 1,
        1 => 2,
        _ => 3,
    }
}

struct Door<'a> {
    config: &'a Config,
    stages: bins::Stages,
    /// With `--since-last-run`.
    marks: Option<Marks>,
    supervisor: Supervisor,
}

impl Door<'_> {
    /// One pipeline for the `i`th source; its mark moves only if every stage exited 0.
    fn run_source(&self, i: usize, source: &Source) -> i32 {
        let started = tonbo_core::time::rfc3339_of(SystemTime::now());
        let since = match self.mark_of(source) {
            Ok(since) => since,
            Err(message) => return fail(&message),
        };
        let mut stages = vec![self.reader(i, source, since.as_deref())];
        stages.extend(self.tail(since.is_some(), Input::Previous, Vec::new()));
        let mut status = self.supervisor.run(&stages, self.config.watch);
        if let (0, Some(marks), false) = (status, &self.marks, self.config.dry_run) {
            if let Err(e) = marks.write(source.name, &started) {
                let mark = marks.path(source.name);
                tonbo_core::note!("{PROG}: cannot write {}: {e}", mark.display());
                status = 1;
            }
        }
        status
    }

    /// `--from all --watch`: every reader at once into one `tonbo-map --merge`, which reads
    /// their outputs all at once, so that a quiet reader holds none of the others back.
    fn run_all_watch(&self) -> i32 {
        let sources = &self.config.sources;
        let mut stages: Vec<Stage> = sources
            .iter()
            .enumerate()
            .map(|(i, s)| self.reader(i, s, None))
            .collect();
        let merge = vec![OsString::from("--merge")];
        stages.extend(self.tail(false, Input::Files((0..sources.len()).collect()), merge));
        self.supervisor.run(&stages, true)
    }

    /// The `--modified-after` of `source` with `--since-last-run`: its mark, if it has one.
    fn mark_of(&self, source: &Source) -> Result<Option<String>, String> {
        let Some(marks) = &self.marks else {
            return Ok(None);
        };
        marks.read(source.name).map_err(|e| {
            let mark = marks.path(source.name);
            format!("cannot read {}: {e}", mark.display())
        })
    }

    /// The reader of the `i`th source, reading from `since` on if given.
    fn reader(&self, i: usize, source: &Source, since: Option<&str>) -> Stage {
        let config = self.config;
        let mut args: Vec<OsString> = Vec::new();
        if config.watch {
            args.push("--follow".into());
        }
        if config.poll {
            args.push("--poll".into());
        }
        if let Some(since) = since {
            args.extend(["--modified-after".into(), since.into()]);
        }
        args.extend(config.inputs_of(source).iter().cloned());
        Stage {
            name: source.reader,
            program: self.stages.readers[i].clone(),
            args,
            input: Input::Null,
            output: Output::Pipe,
            reader: true,
            env: config
                .root
                .as_deref()
                .map(sources::home_under)
                .unwrap_or_default(),
        }
    }

    /// `tonbo-map MAP_ARGS | tonbo-batch | tonbo-post`, tonbo-map reading `input`. tonbo-map
    /// takes `--allow-empty` where no event is a normal outcome: a followed transcript, or one
    /// changed since the last run (`incremental`), may have gained only bookkeeping lines.
    fn tail(&self, incremental: bool, input: Input, map_args: Vec<OsString>) -> [Stage; 3] {
        let config = self.config;
        let mut map = Vec::new();
        if config.watch || incremental {
            map.push("--allow-empty".into());
        }
        map.extend(map_args);
        let mut post: Vec<OsString> = Vec::new();
        if config.dry_run {
            post.push("--dry-run".into());
        }
        post.extend(config.post_args.iter().cloned());
        // A dry run's summary (on stderr) says it all; the batch lines it would send are for
        // `tonbo-post --dry-run` in a pipeline of one's own.
        let post_output = if config.dry_run {
            Output::Null
        } else {
            Output::Inherit
        };
        let s = &self.stages;
        [
            Stage::after_readers("tonbo-map", &s.map, map, input, Output::Pipe),
            Stage::after_readers(
                "tonbo-batch",
                &s.batch,
                vec![],
                Input::Previous,
                Output::Pipe,
            ),
            Stage::after_readers("tonbo-post", &s.post, post, Input::Previous, post_output),
        ]
    }
}
