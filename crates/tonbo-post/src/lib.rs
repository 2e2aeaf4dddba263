//! tonbo-post: delivers batches to a Durable Streams server (tonbo Durable Sessions, Ursula, or
//! the reference server) exactly once, across re-runs, growth of the input, crashes and a lost
//! checkpoint.
//!
//! The three things a run does, each a module the binary wires up:
//!
//! * [`pool`]: post the input, sessions spread over workers, each a [`poster::Poster`];
//! * [`dry_run`]: say what would be sent, given the checkpoint, and send nothing;
//! * [`verify`]: read each session back and say what is missing or doubled.
//!
//! What they stand on:
//!
//! * [`poster`]: the per-session delivery state machine;
//! * [`checkpoint`]: the SQLite state (producer epoch and seq, acknowledged keys, journal);
//! * [`checkpoint_urls`]: its streams keyed by URL without credentials, and older files upgraded;
//! * [`client`]: the HTTP protocol, with retries of transient failures;
//! * [`creators`]: streams created ahead of the workers that post to them;
//! * [`health`]: the run's stop (a signal, or a server gone past `--retry-for`);
//! * [`read`]: reading a stream back for its `source_key`s, in flat memory;
//! * [`retry`]: backoff with full jitter and `Retry-After`;
//! * [`input`], [`url_template`], [`auth`], [`summary`], [`threads`]: batch lines, stream URLs,
//!   the API key, the counters and summary, and the job threads;
//! * [`buffers`]: line buffers used again as request bodies.

pub mod auth;
pub mod buffers;
pub mod checkpoint;
pub mod checkpoint_urls;
pub mod client;
pub mod creators;
pub mod dry_run;
pub mod health;
pub mod input;
pub mod pool;
pub mod poster;
pub mod read;
pub mod retry;
pub mod summary;
pub mod threads;
pub mod url_template;
pub mod verify;

use tonbo_core::{Input, Rejects};

use crate::url_template::UrlTemplate;

/// The stage's name, which starts each of its messages.
pub const STAGE: &str = "tonbo-post";

/// What every mode of a run works on: its input, where rejects go, the streams' URLs, and
/// whether the summary line is left out (`-q`).
pub struct Run {
    pub inputs: Vec<Input>,
    pub rejects: Rejects,
    pub urls: UrlTemplate,
    pub quiet: bool,
}
