//! tonbo-post: delivers batches to a Durable Streams server (tonbo Durable Sessions, Ursula, or
//! the reference server) exactly once, across re-runs, growth of the input, crashes and a lost
//! checkpoint.
//!
//! * [`checkpoint`]: the SQLite state (producer epoch and seq, acknowledged keys, journal);
//! * [`checkpoint_urls`]: its streams keyed by URL without credentials, and older files upgraded;
//! * [`client`]: the HTTP protocol, with retries of transient failures;
//! * [`health`]: the run's stop (a signal, or a server gone past `--retry-for`);
//! * [`read`]: reading a stream back for its `source_key`s, in flat memory;
//! * [`retry`]: backoff with full jitter and `Retry-After`;
//! * [`poster`]: the per-session delivery state machine that ties them together.

pub mod checkpoint;
pub mod checkpoint_urls;
pub mod client;
pub mod health;
pub mod poster;
pub mod read;
pub mod retry;
