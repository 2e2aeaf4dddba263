//! Line buffers used again: a batch line is read into one, which becomes the request body of
//! its batch and comes back once the server has taken it. A body of a megabyte in fresh memory
//! paid its page faults on every batch.

use std::sync::{Arc, Mutex};

/// Buffers kept for use again; few, so that memory stays flat.
const KEPT: usize = 8;

/// A buffer larger than this (a batch of one huge event) is not kept.
const LARGEST_KEPT: usize = 8 << 20;

/// The run's spare buffers, shared by the reader and the workers.
#[derive(Clone, Default)]
pub struct Buffers(Arc<Mutex<Vec<Vec<u8>>>>);

impl Buffers {
    /// An empty buffer: one given back, if any.
    pub fn take(&self) -> Vec<u8> {
        self.0
            .lock()
            .ok()
            .and_then(|mut b| b.pop())
            .unwrap_or_default()
    }

    /// Gives a buffer back for use again.
    pub fn give(&self, mut buf: Vec<u8>) {
        if buf.capacity() == 0 || buf.capacity() > LARGEST_KEPT {
            return;
        }
        buf.clear();
        if let Ok(mut kept) = self.0.lock() {
            if kept.len() < KEPT {
                kept.push(buf);
            }
        }
    }
}
