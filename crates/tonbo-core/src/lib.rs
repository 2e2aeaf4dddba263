//! Shared core of the tonbo-ingest stages.
//!
//! Every stage is a small binary that reads newline-delimited JSON on stdin (or files), writes
//! newline-delimited JSON on stdout and diagnostics on stderr. This crate owns what they share:
//!
//! * [`contract`]: the three wire formats between stages (source record, event, batch);
//! * [`ndjson`]: a streaming line reader that counts lines and never slurps its input;
//! * [`output`]: a stdout writer that ends quietly when the reader downstream goes away;
//! * [`rejects`]: the bad-input policy (report, count, optionally write to `--rejects FILE`);
//! * [`mapping`], [`event`]: what every source's mapping shares (the trait `tonbo-map`
//!   dispatches through, the envelope of every event, the counts of what was passed over);
//! * [`redact`]: the secrets redacted from events, and the flags that control it;
//! * [`cli`]: flags every stage takes, and the `main` wrapper that turns results into exit codes;
//! * [`empty`]: the warning for an input that holds something and gives nothing (exit 3);
//! * [`jsonline`], [`time`]: what the readers share (line checks, `--modified-after TIME`);
//! * [`reader`]: the readers' flags besides PATH, and a reader run's setup, summary and exit;
//! * [`follow`]: what `--follow` shares (tailed files, the watcher, signals);
//! * [`progress`]: the live progress line on a terminal's stderr, and [`note!`] for messages;
//! * [`manual`]: `--help` examples, man pages and shell completions from each stage's flags;
//! * [`url`]: URLs as they may be printed and stored, without their credentials.

pub mod canonical;
pub mod cli;
pub mod contract;
pub mod empty;
pub mod event;
pub mod follow;
pub mod jsonline;
pub mod manual;
pub mod mapping;
pub mod ndjson;
pub mod output;
pub mod progress;
pub mod raw;
pub mod reader;
pub mod record_line;
pub mod redact;
pub mod rejects;
pub mod scan;
pub mod time;
pub mod url;

pub use cli::{parse_size, run_stage, AllowEmpty, CommonArgs, Exit};
pub use contract::{BatchLine, EventHead, EventLine, Provenance, SourceRecord, WIRE_VERSION};
pub use manual::{Manual, Signals};
pub use ndjson::{Input, LineReader};
pub use output::Output;
pub use progress::Progress;
pub use rejects::Rejects;
