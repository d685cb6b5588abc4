//! The bzip2 workers: blocks of records in, independent bzip2 streams out, on every core.
//!
//! A window's records are cut into blocks of at most one bzip2 block (900 kB) by the spool; each
//! block becomes its own bzip2 stream, compressed by whichever worker is free, and the streams
//! are appended to the window's file in block order: a multistream file, which the contract
//! allows and every reader it names reads whole. Blocks are cut by size alone, so the same
//! records always give the same bytes. The queue is bounded: a producer faster than the
//! workers waits.
//!
//! A [`StreamTap`] is told of every stream made, with the records it holds, on the worker that
//! made it: the columnar mirror keeps them so that it need not decode the archive's files
//! again ([`stream_starts`] finds the streams of a file).

use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

/// Uncompressed bytes per block: bzip2 -9 holds 900,000 bytes minus a little per block.
pub const BLOCK_BYTES: usize = 899_000;

/// Told of every bzip2 stream a worker makes, with the records (JSON lines) it holds. Called on
/// the worker, after the stream is made; it must not block for long.
pub trait StreamTap: Send + Sync {
    /// `stream` is the bzip2 stream of `raw`.
    fn compressed(&self, raw: &[u8], stream: &[u8]);
}

/// A shared [`StreamTap`], in a [`crate::BatchConfig`]: equal when it is the same tap.
#[derive(Clone)]
pub struct Tap(pub Arc<dyn StreamTap>);

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tap")
    }
}

impl PartialEq for Tap {
    fn eq(&self, other: &Tap) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Where each bzip2 stream of a multistream file starts: `BZh`, a level digit and the block
/// magic `1AY&SY`, byte-aligned (a stream ends padded to a byte). Ten bytes that occur inside
/// compressed data once in 2^80 positions, so a caller that must be sure checks what it finds
/// (a stream it does not know, it decodes). Empty if the bytes are not bzip2.
pub fn stream_starts(bytes: &[u8]) -> Vec<usize> {
    if !bytes.starts_with(b"BZh") {
        return Vec::new();
    }
    memchr::memmem::find_iter(bytes, b"1AY&SY")
        .filter(|at| *at >= 4)
        .filter(|at| {
            let head = &bytes[at - 4..*at];
            head.starts_with(b"BZh") && (b'1'..=b'9').contains(&head[3])
        })
        .map(|at| at - 4)
        .collect()
}

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
    /// `threads` workers compressing at bzip2 `level` (1–9), telling `tap` of each stream.
    pub fn new(threads: usize, level: u32, tap: Option<Tap>) -> io::Result<Self> {
        let threads = threads.max(1);
        let (jobs, queue) = sync_channel::<Job>(threads * 2);
        let queue = Arc::new(Mutex::new(queue));
        let workers = (0..threads)
            .map(|i| {
                let queue = Arc::clone(&queue);
                let tap = tap.clone();
                thread::Builder::new()
                    .name(format!("maillog-bzip2-{i}"))
                    .spawn(move || work(&queue, level, tap.as_ref()))
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

fn work(queue: &Mutex<Receiver<Job>>, level: u32, tap: Option<&Tap>) {
    loop {
        // A poisoned lock only means another worker panicked while waiting: keep going.
        let job = match queue.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        let stream = compress(&job.raw, level);
        if let (Some(tap), Ok(stream)) = (tap, &stream) {
            tap.0.compressed(&job.raw, stream);
        }
        let _ = job.done.send(stream);
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
        struct Seen(Mutex<Vec<(Vec<u8>, Vec<u8>)>>);
        impl StreamTap for Seen {
            fn compressed(&self, raw: &[u8], stream: &[u8]) {
                self.0.lock().unwrap().push((raw.to_vec(), stream.to_vec()));
            }
        }
        let seen = Arc::new(Seen(Mutex::new(Vec::new())));
        let pool = Compressor::new(2, 9, Some(Tap(seen.clone()))).unwrap();
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
        // The tap saw each stream with its records, and the file's streams are found again.
        let seen = seen.0.lock().unwrap();
        assert_eq!(seen.len(), 5);
        let starts = stream_starts(&file);
        assert_eq!(starts.len(), 5);
        for (i, start) in starts.iter().enumerate() {
            let end = starts.get(i + 1).copied().unwrap_or(file.len());
            let (raw, _) = seen
                .iter()
                .find(|(_, stream)| stream[..] == file[*start..end])
                .expect("a stream the tap saw");
            assert_eq!(raw, &blocks[i]);
        }
        assert!(stream_starts(b"not bzip2").is_empty());
    }
}
