//! The bzip2 workers: blocks of records in, independent bzip2 streams out, on every core.
//!
//! A window's records are cut into blocks of at most one bzip2 block (900 kB) by the spool; each
//! block becomes its own bzip2 stream, compressed by whichever worker is free, and the streams
//! are appended to the window's file in block order: a multistream file, which the contract
//! allows and every reader it names reads whole. Blocks are cut by size alone, so the same
//! records always give the same bytes. The queue is bounded: a producer faster than the
//! workers waits.

use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

/// Uncompressed bytes per block: bzip2 -9 holds 900,000 bytes minus a little per block.
pub const BLOCK_BYTES: usize = 899_000;

struct Job {
    raw: Arc<Vec<u8>>,
    done: SyncSender<io::Result<Vec<u8>>>,
}

/// A pool of compressing threads.
pub struct Compressor {
    jobs: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

/// A block being compressed: [`Pending::wait`] gives its stream.
pub struct Pending(Receiver<io::Result<Vec<u8>>>);

impl Pending {
    /// The compressed stream, once done.
    pub fn wait(&self) -> io::Result<Vec<u8>> {
        self.0
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("a compression worker stopped")))
    }

    /// The compressed stream if it is done, without waiting.
    pub fn try_wait(&self) -> Option<io::Result<Vec<u8>>> {
        match self.0.try_recv() {
            Ok(result) => Some(result),
            Err(std::sync::mpsc::TryRecvError::Empty) => None,
            Err(_) => Some(Err(io::Error::other("a compression worker stopped"))),
        }
    }
}

impl Compressor {
    /// `threads` workers compressing at bzip2 `level` (1–9).
    pub fn new(threads: usize, level: u32) -> io::Result<Self> {
        let threads = threads.max(1);
        let (jobs, queue) = sync_channel::<Job>(threads * 2);
        let queue = Arc::new(Mutex::new(queue));
        let workers = (0..threads)
            .map(|i| {
                let queue = Arc::clone(&queue);
                thread::Builder::new()
                    .name(format!("maillog-bzip2-{i}"))
                    .spawn(move || work(&queue, level))
            })
            .collect::<io::Result<_>>()?;
        Ok(Compressor {
            jobs: Some(jobs),
            workers,
        })
    }

    /// Queues a block (waiting while the queue is full).
    pub fn submit(&self, raw: Arc<Vec<u8>>) -> Pending {
        let (done, result) = sync_channel(1);
        if let Some(jobs) = &self.jobs
            && jobs.send(Job { raw, done }).is_ok()
        {
            return Pending(result);
        }
        let (failed, result) = sync_channel(1);
        let _ = failed.send(Err(io::Error::other("the compression workers are gone")));
        Pending(result)
    }
}

impl Drop for Compressor {
    fn drop(&mut self) {
        self.jobs = None; // workers see the queue close and stop
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

fn work(queue: &Mutex<Receiver<Job>>, level: u32) {
    loop {
        // A poisoned lock only means another worker panicked while waiting: keep going.
        let job = match queue.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        let _ = job.done.send(compress(&job.raw, level));
    }
}

/// One complete bzip2 stream of `raw`.
pub fn compress(raw: &[u8], level: u32) -> io::Result<Vec<u8>> {
    let out = Vec::with_capacity(raw.len() / 6 + 64);
    let mut encoder = bzip2::write::BzEncoder::new(out, bzip2::Compression::new(level));
    encoder.write_all(raw)?;
    encoder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn streams_concatenate_into_one_readable_file() {
        let pool = Compressor::new(2, 9).unwrap();
        let blocks: Vec<Vec<u8>> = (0..5)
            .map(|i| format!("{{\"n\":\"{i}\"}}\n").repeat(1000).into_bytes())
            .collect();
        let pending: Vec<Pending> = blocks
            .iter()
            .map(|b| pool.submit(Arc::new(b.clone())))
            .collect();
        let file: Vec<u8> = pending
            .into_iter()
            .flat_map(|p| p.wait().unwrap())
            .collect();
        let mut whole = Vec::new();
        bzip2::read::MultiBzDecoder::new(&file[..])
            .read_to_end(&mut whole)
            .unwrap();
        assert_eq!(whole, blocks.concat());
    }
}
