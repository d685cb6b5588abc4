//! The uploader: puts sealed files into the archive in the background, a bounded number at
//! once, so that reading and batching never wait for the network.
//!
//! What retrying can fix (throttling, 5xx, time-outs, a server that is down) is retried with
//! exponential back-off and jitter, without limit in time: the file waits in the spool. The
//! first failure of a file is logged as an error at once, later ones now and then. What
//! retrying cannot fix (credentials, access, a missing bucket) comes back as a [`Done`] with
//! the error, at once; the caller keeps the file and decides when to try again.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::RngExt;
use tokio::runtime::Runtime;
use tokio::sync::{Semaphore, mpsc};

use crate::{Archive, ArchiveError, S3Options};

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
}

/// Back-off between retries of one file: from `first` doubling up to `max`, with jitter.
#[derive(Clone, Copy, Debug)]
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
}

impl Uploader {
    /// Connects to the archive at `url` and starts `concurrency` upload slots.
    pub fn start(
        url: &str,
        s3: &S3Options,
        concurrency: usize,
        backoff: Backoff,
    ) -> Result<Uploader, ArchiveError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("maillog-upload")
            .enable_all()
            .build()
            .map_err(|e| ArchiveError::Url {
                url: url.to_owned(),
                why: e.to_string(),
            })?;
        let archive = Arc::new(runtime.block_on(Archive::connect(url, s3))?);
        let (jobs, queue) = mpsc::channel(4096);
        let (report, done) = channel();
        let slots = Arc::new(Semaphore::new(concurrency.max(1)));
        runtime.spawn(dispatch(
            Arc::clone(&archive),
            queue,
            report,
            slots,
            backoff,
        ));
        Ok(Uploader {
            runtime,
            archive,
            jobs,
            done: Mutex::new(done),
        })
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
        let archive = Arc::clone(&self.archive);
        self.runtime.block_on(async move {
            let mut wait = Backoff::default().first;
            loop {
                match archive.has(key).await {
                    Ok(found) => return Ok(found),
                    Err(f) if f.retryable => {
                        tracing::warn!(
                            "archive {archive}: cannot look up {key}: {}; trying again",
                            f.message
                        );
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Backoff::default().max);
                    }
                    Err(f) => {
                        return Err(ArchiveError::Lookup {
                            archive: archive.to_string(),
                            key: key.to_owned(),
                            why: f.message,
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
            .map_err(|f| ArchiveError::Lookup {
                archive: self.archive.to_string(),
                key: prefix.to_owned(),
                why: f.message,
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
            .map_err(|f| ArchiveError::Lookup {
                archive: self.archive.to_string(),
                key: key.to_owned(),
                why: f.message,
            })
    }

    /// A real round trip through the archive: a small object is put, found, read back,
    /// compared and deleted. Returns what was done, step by step; the first failure is the error.
    pub fn probe(&self, dir: &std::path::Path) -> Result<Vec<String>, ArchiveError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let key = format!(".maillog-probe/probe-{}-{nanos}", std::process::id());
        let content = format!("maillog archive probe {nanos}\n").into_bytes();
        let file = dir.join(format!(".maillog-probe-{nanos}"));
        let fail = |step: &str, why: String| ArchiveError::Put {
            archive: self.archive.to_string(),
            key: key.clone(),
            why: format!("{step}: {why}"),
        };
        std::fs::write(&file, &content)
            .map_err(|e| fail("write a local probe file", e.to_string()))?;
        let archive = Arc::clone(&self.archive);
        let steps = self.runtime.block_on(async {
            let mut steps = Vec::new();
            archive
                .put(&file, &key)
                .await
                .map_err(|f| fail("put", f.message))?;
            steps.push(format!(
                "put {key} ({} bytes, checksum verified by the server)",
                content.len()
            ));
            if !archive
                .has(&key)
                .await
                .map_err(|f| fail("look up", f.message))?
            {
                return Err(fail(
                    "look up",
                    "the object is not there after the put".into(),
                ));
            }
            steps.push("found it".to_owned());
            let mut back = Vec::new();
            archive
                .get(&key, &mut back)
                .await
                .map_err(|f| fail("read back", f.message))?;
            if back != content {
                return Err(fail("read back", "the content differs".into()));
            }
            steps.push("read it back: same bytes".to_owned());
            archive
                .delete(&key)
                .await
                .map_err(|f| fail("delete", f.message))?;
            steps.push("deleted it".to_owned());
            Ok(steps)
        });
        let _ = std::fs::remove_file(&file);
        steps
    }
}

async fn dispatch(
    archive: Arc<Archive>,
    mut queue: mpsc::Receiver<Job>,
    report: Sender<Done>,
    slots: Arc<Semaphore>,
    backoff: Backoff,
) {
    while let Some(job) = queue.recv().await {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let (archive, report) = (Arc::clone(&archive), report.clone());
        tokio::spawn(async move {
            let result = put_until_done(&archive, &job, backoff).await;
            let _ = report.send(Done {
                name: job.name,
                result,
            });
            drop(slot);
        });
    }
}

async fn put_until_done(
    archive: &Archive,
    job: &Job,
    backoff: Backoff,
) -> Result<(), ArchiveError> {
    let mut wait = backoff.first;
    for attempt in 0u64.. {
        match archive.put(&job.path, &job.key).await {
            Ok(()) => {
                if attempt > 0 {
                    tracing::info!("archive {archive}: put {} after {attempt} retries", job.key);
                }
                return Ok(());
            }
            Err(f) if f.retryable => {
                if attempt == 0 {
                    tracing::error!(
                        "archive {archive}: cannot put {}: {}; retrying (the file waits in the spool)",
                        job.key,
                        f.message
                    );
                } else if attempt.is_power_of_two() {
                    tracing::warn!(
                        "archive {archive}: still cannot put {} ({attempt} tries): {}",
                        job.key,
                        f.message
                    );
                }
                let jitter = rand::rng().random_range(0.5..1.5);
                tokio::time::sleep(wait.mul_f64(jitter)).await;
                wait = (wait * 2).min(backoff.max);
            }
            Err(f) => {
                return Err(ArchiveError::Put {
                    archive: archive.to_string(),
                    key: job.key.clone(),
                    why: f.message,
                });
            }
        }
    }
    Ok(())
}
