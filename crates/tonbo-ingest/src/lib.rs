//! tonbo-ingest, the front door: runs `READER | tonbo-map | tonbo-batch | tonbo-post` for one
//! source or each in turn (`--from all`), names each stage that failed and returns the status of
//! the first, and remembers each run whose every stage exited 0: its start (`--since-last-run`),
//! and the files it found ([`manifest`]), so that a plain re-run over unchanged files reads
//! nothing.
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
pub mod manifest;
pub mod marks;
pub mod pipeline;
pub mod scan;
pub mod sources;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use cli::{Config, PROG};
use manifest::{Manifest, Plan};
use marks::Marks;
use pipeline::{Input, Output, Stage, Supervisor};
use sources::{Source, Takes};
use tonbo_core::url::without_credentials;

/// Runs what `config` asks for; the exit status.
pub fn run(config: &Config) -> i32 {
    let stages = match bins::Lookup::from_env().stages(&config.sources) {
        Ok(stages) => stages,
        Err(message) => return fail(&message),
    };
    // --since-last-run needs the folder of the marks (and HOME, to find it); a plain run
    // without it reads everything.
    let state = if config.since_last_run || config.plain() {
        match Marks::locate(config.state_dir.as_deref()) {
            Ok(marks) => Some(marks),
            Err(message) if config.since_last_run => return fail(&message),
            Err(message) => {
                tonbo_core::note!(
                    "{PROG}: note: {message}: no manifest is kept, and every run reads everything"
                );
                None
            }
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
        state,
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

/// `path` made absolute against the working folder, links left as they are.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
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
    /// The state folder: with `--since-last-run` (its marks), and on a plain run (its
    /// manifests) unless it cannot be found.
    state: Option<Marks>,
    supervisor: Supervisor,
}

impl Door<'_> {
    /// One pipeline for the `i`th source, unless a plain run finds nothing to read; its mark
    /// (`--since-last-run`) and its manifest (a plain run) move only if every stage exited 0.
    fn run_source(&self, i: usize, source: &Source) -> i32 {
        let now = SystemTime::now();
        let started = tonbo_core::time::rfc3339_of(now);
        let mut since = match self.mark_of(source) {
            Ok(since) => since,
            Err(message) => return fail(&message),
        };
        // A plain run: what its files say since the last good one.
        let mut found = None;
        if let (true, Some(state)) = (self.config.plain(), &self.state) {
            match self.look(i, source, state, now) {
                Ok((plan, files)) => {
                    match plan {
                        Plan::Skip { files } => {
                            let name = source.name;
                            let what = manifest::files(files);
                            tonbo_core::note!("{PROG}: {name}: unchanged since the last good run ({files} {what}), nothing to read");
                            return 0;
                        }
                        Plan::Since { after, changed } => {
                            let after = manifest::rfc3339_nanos(after);
                            let what = manifest::files(changed);
                            tonbo_core::note!("{PROG}: {}: {changed} {what} changed since the last good run, reading what was modified after {after}", source.name);
                            since = Some(after);
                        }
                        Plan::Full(_) if self.config.full => {}
                        Plan::Full(why) => {
                            tonbo_core::note!("{PROG}: {}: reading everything: {why}", source.name);
                        }
                    }
                    found = Some(files);
                }
                Err(why) => tonbo_core::note!(
                    "{PROG}: {}: reading everything, keeping no manifest: {why}",
                    source.name
                ),
            }
        }
        // Stopped while looking: as if the reader had been stopped at once.
        if self.supervisor.signals() > 0 {
            return 0;
        }
        let mut stages = vec![self.reader(i, source, since.as_deref())];
        stages.extend(self.tail(since.is_some(), Input::Previous, Vec::new()));
        let mut status = self.supervisor.run(&stages, self.config.watch);
        // A run stopped by a signal exits 0 having read only part: it records nothing.
        if status != 0 || self.config.dry_run || self.supervisor.signals() > 0 {
            return status;
        }
        let Some(state) = &self.state else {
            return status;
        };
        if self.config.since_last_run {
            if let Err(e) = state.write(source.name, &started) {
                let mark = state.path(source.name);
                tonbo_core::note!("{PROG}: cannot write {}: {e}", mark.display());
                status = 1;
            }
        }
        // Not a failure of the run: the next one reads everything.
        if let Some(files) = found {
            if let Err(e) = state.write_manifest(source.name, &files.to_bytes()) {
                let path = state.manifest_path(source.name);
                tonbo_core::note!(
                    "{PROG}: warning: cannot write {}: {e}; the next run reads everything",
                    path.display()
                );
            }
        }
        status
    }

    /// What a plain run of the `i`th source does, and the files it finds (with the context and
    /// start of this run), or why it cannot tell. Only `--full` forces a full read.
    fn look(
        &self,
        i: usize,
        source: &Source,
        state: &Marks,
        started: SystemTime,
    ) -> Result<(Plan, Manifest), String> {
        let roots = self.roots_of(i, source)?;
        let now = Manifest {
            start: manifest::nanos_of(started),
            context: self.context(i, source),
            files: manifest::walk(&roots),
        };
        if self.config.full {
            return Ok((Plan::Full("--full".into()), now));
        }
        let last = match state.read_manifest(source.name) {
            Ok(None) => None,
            Ok(Some(bytes)) => match Manifest::from_bytes(&bytes) {
                Some(last) => Some(last),
                None => {
                    let why = "the manifest of its last good run is not one this front door reads";
                    return Ok((Plan::Full(why.into()), now));
                }
            },
            Err(e) => {
                let path = state.manifest_path(source.name);
                return Err(format!("cannot read {}: {e}", path.display()));
            }
        };
        let by_file_times = source.takes == Takes::Path;
        Ok((manifest::plan(last.as_ref(), &now, by_file_times), now))
    }

    /// Where the reader of the `i`th source reads: the `--path`/`--db` values, else the
    /// locations of the sessions its `READER --scan` finds (the reader alone knows its agent's
    /// default places; a place with no session yet shows up once it has one).
    fn roots_of(&self, i: usize, source: &Source) -> Result<Vec<PathBuf>, String> {
        let given = self.config.inputs_of(source);
        if !given.is_empty() {
            return Ok(given.iter().map(|p| absolute(Path::new(p))).collect());
        }
        let mut scan = Command::new(&self.stages.readers[i]);
        scan.args(["--scan", "-q"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (name, value) in self.reader_env() {
            match value {
                Some(v) => scan.env(name, v),
                None => scan.env_remove(name),
            };
        }
        let reader = source.reader;
        let out = scan
            .output()
            .map_err(|e| format!("cannot run {reader} --scan: {e}"))?;
        // 3: nothing found, which is a place list of its own (none).
        if !matches!(out.status.code(), Some(0 | 3)) {
            return Err(format!("{reader} --scan exited {}", out.status));
        }
        let mut locations = BTreeSet::new();
        for line in out.stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let line: tonbo_core::scan::ScanLine = serde_json::from_slice(line).map_err(|e| {
                format!("{reader} --scan wrote a line that is not a scan line: {e}")
            })?;
            locations.insert(absolute(Path::new(&line.location)));
        }
        Ok(locations.into_iter().collect())
    }

    /// What makes two runs of the `i`th source the same run: its inputs, the stages' binaries
    /// (a new build may map more), tonbo-post's options and the variables that choose its server
    /// and checkpoint, less their credentials. The API key is left out: it is a secret, and the
    /// checkpoint, not the key, says what was sent.
    fn context(&self, i: usize, source: &Source) -> Vec<String> {
        let config = self.config;
        let mut context = vec![format!("source {}", source.name)];
        for input in config.inputs_of(source) {
            context.push(format!("input {:?}", absolute(Path::new(input))));
        }
        if let Some(root) = &config.root {
            context.push(format!("root {:?}", absolute(root)));
        }
        let s = &self.stages;
        let stages = [
            (source.reader, &s.readers[i]),
            ("tonbo-map", &s.map),
            ("tonbo-batch", &s.batch),
            ("tonbo-post", &s.post),
        ];
        for (name, path) in stages {
            let (size, mtime) = std::fs::metadata(path)
                .map(|m| {
                    (
                        m.len(),
                        i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
                    )
                })
                .unwrap_or_default();
            context.push(format!("stage {name} {path:?} {size} {mtime}"));
        }
        // Credentials in a URL stay out of the state folder, as they stay out of the checkpoint,
        // where a stream is the same whatever the password that reaches it.
        let clean = |v: &std::ffi::OsStr| without_credentials(&v.to_string_lossy());
        for arg in &config.post_args {
            context.push(format!("tonbo-post {:?}", clean(arg)));
        }
        for var in [
            "TONBO_API",
            "TONBO_URL_TEMPLATE",
            "TONBO_STATE",
            "XDG_STATE_HOME",
            "HOME",
        ] {
            let value = std::env::var_os(var).map(|v| clean(&v));
            context.push(format!("env {var}={value:?}"));
        }
        // tonbo-post's options may name a checkpoint relative to here.
        context.push(format!("env cwd={:?}", std::env::current_dir().ok()));
        context
    }

    /// The variables of a reader's environment: its home under `--root`.
    fn reader_env(&self) -> Vec<(OsString, Option<OsString>)> {
        self.config
            .root
            .as_deref()
            .map(sources::home_under)
            .unwrap_or_default()
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
        let (true, Some(marks)) = (self.config.since_last_run, &self.state) else {
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
            env: self.reader_env(),
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
