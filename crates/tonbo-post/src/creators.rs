//! Streams created ahead of their workers. Under load a create waits behind the server's queue
//! of appends (tens of milliseconds); a worker doing it itself would stall its pipeline and, its
//! input queue filling, the reader that feeds every worker.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use anyhow::Result;

use crate::checkpoint::Checkpoint;
use crate::client::{Created, StreamClient};
use crate::threads::JobThreads;

/// What a creator did for a stream.
#[derive(Debug)]
pub enum Creation {
    Done(Created),
    /// The create failed (past its retries), as the session's failure says it.
    Failed(String),
    /// Nothing: the checkpoint knew the stream, or could not be read; the worker decides.
    Skipped,
}

struct CreateJob {
    url: String,
    answer: SyncSender<Creation>,
}

/// The threads that create the streams of sessions about to be posted.
pub struct Creators {
    threads: JobThreads<CreateJob>,
}

impl Creators {
    pub fn new(n: usize, cp: &Checkpoint, client: &StreamClient) -> Result<Creators> {
        let threads = JobThreads::start(n, || {
            let cp = cp.another()?;
            let mut client = client.clone();
            Ok(move |job: CreateJob| {
                let creation = match cp.stream(&job.url) {
                    Ok(None) => match client.create(&job.url) {
                        Ok(created) => Creation::Done(created),
                        Err(e) => Creation::Failed(format!("{e:#}")),
                    },
                    Ok(Some(_)) | Err(_) => Creation::Skipped,
                };
                let _ = job.answer.send(creation);
            })
        })?;
        Ok(Creators { threads })
    }

    /// Starts creating the stream at `url` (waiting while every creator is busy); the answer
    /// arrives on the returned channel. A stopped creator drops its end, and the worker creates
    /// the stream itself.
    pub fn create(&self, url: String) -> Receiver<Creation> {
        let (answer, rx) = sync_channel(1);
        self.threads.send(CreateJob { url, answer });
        rx
    }
}
