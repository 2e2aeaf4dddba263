//! Threads that take jobs from one bounded queue: the senders of a worker's pipelined batches,
//! and the creators of streams ahead of the workers.

use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::Result;

/// `n` threads, each handling the jobs it takes in turn. Dropped, they end once the jobs queued
/// are done.
pub struct JobThreads<J> {
    jobs: Option<SyncSender<J>>,
    threads: Vec<JoinHandle<()>>,
}

impl<J: Send + 'static> JobThreads<J> {
    /// Starts `n` threads, each with a handler of its own made by `handler`. The queue holds `n`
    /// jobs.
    pub fn start<H>(n: usize, mut handler: impl FnMut() -> Result<H>) -> Result<JobThreads<J>>
    where
        H: FnMut(J) + Send + 'static,
    {
        let (tx, rx) = sync_channel::<J>(n);
        let rx = Arc::new(Mutex::new(rx));
        let mut threads = Vec::with_capacity(n);
        for _ in 0..n {
            let rx = rx.clone();
            let mut handle = handler()?;
            threads.push(std::thread::spawn(move || loop {
                let job = match rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                let Ok(job) = job else { return };
                handle(job);
            }));
        }
        Ok(JobThreads {
            jobs: Some(tx),
            threads,
        })
    }

    /// Queues a job, waiting while the queue is full; false if the threads have stopped.
    pub fn send(&self, job: J) -> bool {
        self.jobs.as_ref().is_some_and(|j| j.send(job).is_ok())
    }
}

impl<J> Drop for JobThreads<J> {
    fn drop(&mut self) {
        self.jobs.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
