//! The uploader: puts sealed files into the archive in the background, a bounded number at
//! once, so that reading and batching never wait for the network.
//!
//! What retrying can fix (throttling, 5xx, time-outs, a server that is down) is retried with
//! exponential back-off and jitter, without limit in time: the file waits in the spool. The
//! first failure of a file is logged as an error at once, later ones now and then. What
//! retrying cannot fix (credentials, access, a missing bucket, a key that can never be
//! written) comes back as a [`Done`] with the error, at once; the caller keeps the file and
//! decides when to try again. A key that holds other bytes comes back at once as
//! [`ArchiveError::Conflict`] and is never retried: the archive is append-only, the caller puts
//! the records under another key.
//!
//! Dropping the uploader drops its runtime: a put waiting between two tries, or waiting for the
//! network, is abandoned at once (a local copy in progress finishes first). A multipart upload
//! abandoned so stays recorded and is aborted at the next start
//! ([`S3Options::state_dir`](crate::S3Options::state_dir)).

mod probe;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::RngExt;
use tokio::runtime::Runtime;
use tokio::sync::{Semaphore, mpsc};

use crate::{Archive, ArchiveError, Outcome, PutError, S3Options};

/// A file to put.
#[derive(Clone, Debug)]
pub struct Job {
    /// The spool's name for it (handed back in [`Done`]).
    pub name: String,
    /// Where it is.
    pub path: PathBuf,
    /// Its key in the archive.
    pub key: String,
}

/// A put that is over.
#[derive(Debug)]
pub struct Done {
    /// The job's name.
    pub name: String,
    /// `Ok`: the archive has it. `Err`: an error retrying cannot fix.
    pub result: Result<(), ArchiveError>,
    /// From the first try to the end, retries included.
    pub elapsed: Duration,
}

/// What the uploads did so far, for metrics and health; read at any time, from any thread.
#[derive(Debug, Default)]
pub struct UploadStats {
    /// Files the archive confirmed.
    pub succeeded: AtomicU64,
    /// Tries that failed (each retry of a file counts).
    pub failed_tries: AtomicU64,
    /// Tries that were retries.
    pub retries: AtomicU64,
    /// Files refused for a reason retrying cannot fix (they wait in the spool).
    pub refused: AtomicU64,
    /// Files whose key held other bytes already ([`ArchiveError::Conflict`]; also counted in
    /// `refused`).
    pub conflicts: AtomicU64,
    /// Files whose key held the same bytes already (a put repeated after a crash; also
    /// counted in `succeeded`).
    pub already_there: AtomicU64,
    /// Since when every try failed (none since the last success), if one did.
    failing_since: Mutex<Option<Instant>>,
}

impl UploadStats {
    /// How long the uploads have failed without a success in between (`None`: they do not).
    pub fn failing_for(&self) -> Option<Duration> {
        self.failing_since
            .lock()
            .ok()
            .and_then(|since| since.map(|t| t.elapsed()))
    }

    fn failed(&self) {
        self.failed_tries.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut since) = self.failing_since.lock() {
            since.get_or_insert_with(Instant::now);
        }
    }

    fn succeeded(&self) {
        self.succeeded.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut since) = self.failing_since.lock() {
            *since = None;
        }
    }
}

/// Back-off between retries of one file: from `first` doubling up to `max`, with jitter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// The first wait.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: Duration::from_millis(500),
            max: Duration::from_secs(60),
        }
    }
}

/// Background puts into one archive.
pub struct Uploader {
    runtime: Runtime,
    archive: Arc<Archive>,
    jobs: mpsc::Sender<Job>,
    done: Mutex<Receiver<Done>>,
    stats: Arc<UploadStats>,
}

impl Uploader {
    /// Connects to the archive at `url` and starts `concurrency` upload slots. With
    /// [`S3Options::state_dir`] set, the multipart uploads recorded there (a kill cut them
    /// off) are aborted in the background, each logged.
    pub fn start(
        url: &crate::ArchiveUrl,
        s3: &S3Options,
        concurrency: usize,
        backoff: Backoff,
    ) -> Result<Uploader, ArchiveError> {
        let runtime = crate::runtime(&url.to_string(), 1, "maillog-archive")?;
        let archive = Arc::new(runtime.block_on(Archive::connect(url, s3))?);
        abort_recorded(&runtime, &archive, s3);
        let (jobs, queue) = mpsc::channel(4096);
        let (report, done) = channel();
        let slots = Arc::new(Semaphore::new(concurrency.max(1)));
        let stats = Arc::new(UploadStats::default());
        runtime.spawn(dispatch(
            Arc::clone(&archive),
            queue,
            report,
            slots,
            backoff,
            Arc::clone(&stats),
        ));
        Ok(Uploader {
            runtime,
            archive,
            jobs,
            done: Mutex::new(done),
            stats,
        })
    }

    /// What the uploads did so far.
    pub fn stats(&self) -> Arc<UploadStats> {
        Arc::clone(&self.stats)
    }

    /// The archive.
    pub fn archive(&self) -> &Archive {
        &self.archive
    }

    /// Queues a put. Returns false when the queue is full (try again later).
    pub fn submit(&self, job: Job) -> bool {
        self.jobs.try_send(job).is_ok()
    }

    /// The puts finished since the last call.
    pub fn finished(&self) -> Vec<Done> {
        self.done
            .lock()
            .map(|d| d.try_iter().collect())
            .unwrap_or_default()
    }

    /// Waits up to `timeout` for a put to finish.
    pub fn wait(&self, timeout: Duration) -> Option<Done> {
        self.done.lock().ok()?.recv_timeout(timeout).ok()
    }

    /// Whether `key` is in the archive, asking until the archive answers (retryable failures
    /// are retried with back-off). Call it from outside the uploader's runtime.
    pub fn has(&self, key: &str) -> Result<bool, ArchiveError> {
        self.has_unless(key, &|| false)
    }

    /// [`Uploader::has`], giving up (with an error) between two tries once `give_up` says so:
    /// a service being stopped must not wait for an archive that does not answer.
    pub fn has_unless(
        &self,
        key: &str,
        give_up: &(dyn Fn() -> bool + Sync),
    ) -> Result<bool, ArchiveError> {
        let archive = Arc::clone(&self.archive);
        self.runtime.block_on(async {
            let mut wait = Backoff::default().first;
            loop {
                match archive.has(key).await {
                    Ok(found) => return Ok(found),
                    Err(cause) if cause.retryable() => {
                        tracing::warn!(
                            "archive {archive}: cannot look up {key}: {cause}; trying again"
                        );
                        let until = tokio::time::Instant::now() + wait;
                        while tokio::time::Instant::now() < until {
                            if give_up() {
                                return Err(ArchiveError::Stopped {
                                    archive: archive.to_string(),
                                    key: key.to_owned(),
                                    source: cause,
                                });
                            }
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        wait = (wait * 2).min(Backoff::default().max);
                    }
                    Err(source) => {
                        return Err(ArchiveError::Lookup {
                            archive: archive.to_string(),
                            key: key.to_owned(),
                            source,
                        });
                    }
                }
            }
        })
    }
}

impl Uploader {
    /// Every key under `prefix` with its size, in key order (for reading the archive back).
    pub fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, ArchiveError> {
        let archive = Arc::clone(&self.archive);
        self.runtime
            .block_on(async move { archive.list(prefix).await })
            .map_err(|source| ArchiveError::List {
                archive: self.archive.to_string(),
                prefix: prefix.to_owned(),
                source,
            })
    }

    /// Streams the object `key` into `out`; returns its length.
    pub fn get(
        &self,
        key: &str,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<u64, ArchiveError> {
        let archive = Arc::clone(&self.archive);
        self.runtime
            .block_on(async move { archive.get(key, out).await })
            .map_err(|source| ArchiveError::Read {
                archive: self.archive.to_string(),
                key: key.to_owned(),
                source,
            })
    }
}

async fn dispatch(
    archive: Arc<Archive>,
    mut queue: mpsc::Receiver<Job>,
    report: Sender<Done>,
    slots: Arc<Semaphore>,
    backoff: Backoff,
    stats: Arc<UploadStats>,
) {
    while let Some(job) = queue.recv().await {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let (archive, report) = (Arc::clone(&archive), report.clone());
        let stats = Arc::clone(&stats);
        tokio::spawn(async move {
            let started = Instant::now();
            let result = put_until_done(&archive, &job, backoff, &stats).await;
            let _ = report.send(Done {
                name: job.name,
                result,
                elapsed: started.elapsed(),
            });
            drop(slot);
        });
    }
}

async fn put_until_done(
    archive: &Archive,
    job: &Job,
    backoff: Backoff,
    stats: &UploadStats,
) -> Result<(), ArchiveError> {
    let mut wait = backoff.first;
    for attempt in 0u64.. {
        if attempt > 0 {
            stats.retries.fetch_add(1, Ordering::Relaxed);
        }
        let cause = match archive.put(&job.path, &job.key).await {
            Ok(outcome @ (Outcome::Stored | Outcome::AlreadyThere)) => {
                stats.succeeded();
                if outcome == Outcome::AlreadyThere {
                    stats.already_there.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        "archive {archive}: {} was archived already, with the same bytes",
                        job.key
                    );
                }
                if attempt > 0 {
                    tracing::info!("archive {archive}: put {} after {attempt} retries", job.key);
                }
                return Ok(());
            }
            Ok(Outcome::Conflict) => {
                stats.refused.fetch_add(1, Ordering::Relaxed);
                stats.conflicts.fetch_add(1, Ordering::Relaxed);
                return Err(ArchiveError::Conflict {
                    archive: archive.to_string(),
                    key: job.key.clone(),
                });
            }
            Err(PutError::Key(source)) => {
                stats.failed();
                stats.refused.fetch_add(1, Ordering::Relaxed);
                return Err(ArchiveError::Key {
                    archive: archive.to_string(),
                    key: job.key.clone(),
                    source,
                });
            }
            Err(PutError::Failed(cause)) => cause,
        };
        stats.failed();
        if !cause.retryable() {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            return Err(ArchiveError::Put {
                archive: archive.to_string(),
                key: job.key.clone(),
                source: cause,
            });
        }
        if attempt == 0 {
            tracing::error!(
                "archive {archive}: cannot put {}: {cause}; retrying (the file waits in the spool)",
                job.key,
            );
        } else if attempt.is_power_of_two() {
            tracing::warn!(
                "archive {archive}: still cannot put {} ({attempt} tries): {cause}",
                job.key,
            );
        }
        let jitter = rand::rng().random_range(0.5..1.5);
        tokio::time::sleep(wait.mul_f64(jitter)).await;
        wait = (wait * 2).min(backoff.max);
    }
    Ok(())
}

/// Aborts, in the background, the multipart uploads recorded in `s3.state_dir` when this
/// uploader started (not those its own puts record from now on).
fn abort_recorded(runtime: &Runtime, archive: &Arc<Archive>, s3: &S3Options) {
    let (Archive::S3(_), Some(dir)) = (archive.as_ref(), &s3.state_dir) else {
        return;
    };
    let uploads = match crate::pending::Pending::new(dir.clone()).list() {
        Ok(uploads) => uploads,
        Err(e) => {
            tracing::warn!(
                "cannot read the multipart uploads recorded in {}: {e}; any a kill cut off \
                 stay until the bucket's AbortIncompleteMultipartUpload rule clears them",
                dir.display()
            );
            return;
        }
    };
    if uploads.is_empty() {
        return;
    }
    let archive = Arc::clone(archive);
    runtime.spawn(async move {
        if let Archive::S3(s3) = archive.as_ref() {
            s3.abort_recorded(uploads).await;
        }
    });
}
