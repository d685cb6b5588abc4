//! A `maillog run` process of the model: started with a config and flags, its stderr collected
//! on a thread (and watched for a crash point's "stopped here"), stopped by a signal or waited
//! for with a time limit — never left behind (killed on drop).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use maillog_testkit::s3::{ACCESS_KEY, SECRET_KEY};

use super::config::Invocation;

/// A running `maillog run`.
pub struct Proc {
    /// When it was started (unix seconds, and as an instant).
    pub started: (i64, Instant),
    child: Child,
    reader: Option<JoinHandle<String>>,
    stopped_here: Receiver<()>,
    said_something: Receiver<()>,
}

/// How a process ended: its exit code (`None`: killed by a signal) and its stderr.
pub struct Ended {
    pub code: Option<i32>,
    pub stderr: String,
}

impl Ended {
    /// The last `n` lines of stderr, for a failure message.
    pub fn tail(&self, n: usize) -> String {
        let lines: Vec<&str> = self.stderr.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Proc {
    /// `maillog run --config CONFIG [--input …] FLAGS…` in the invocation's directory, with
    /// `MAILLOG_CRASH_AT` when given.
    pub fn start(run: &Invocation, flags: &[&str], crash_at: Option<&str>) -> Proc {
        let started = (chrono::Utc::now().timestamp(), Instant::now());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_maillog"));
        cmd.current_dir(&run.cwd)
            .arg("run")
            .arg("--config")
            .arg(&run.config)
            .args(&run.flags)
            .args(flags);
        if let Some(point) = crash_at {
            cmd.env("MAILLOG_CRASH_AT", point);
        }
        let mut child = cmd
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env_remove("AWS_PROFILE")
            .env_remove("MAILLOG_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, stopped_here) = mpsc::channel();
        let (first, said_something) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut all = String::new();
            for line in stderr.lines() {
                let Ok(line) = line else { break };
                let _ = first.send(());
                if line.contains("stopped here for a SIGKILL") {
                    let _ = tx.send(());
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        Proc {
            started,
            child,
            reader: Some(reader),
            stopped_here,
            said_something,
        }
    }

    /// Waits (at most `timeout`) for its first log line: by then it handles signals.
    pub fn wait_started(&self, timeout: Duration) {
        let _ = self.said_something.recv_timeout(timeout);
    }

    /// Whether it stopped at its crash point within `timeout`.
    pub fn stopped_at_point(&self, timeout: Duration) -> bool {
        self.stopped_here.recv_timeout(timeout).is_ok()
    }

    /// Whether it has exited.
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }

    /// SIGTERM.
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-s", "TERM", &self.child.id().to_string()])
            .status();
    }

    /// Waits for the end, at most `limit`; past it the process is killed and `Err` says so.
    pub fn wait(mut self, limit: Duration) -> Result<Ended, Ended> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return Ok(self.collect());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(self.kill())
    }

    /// SIGKILL, wherever it is.
    pub fn kill(mut self) -> Ended {
        let _ = self.child.kill();
        self.collect()
    }

    fn collect(&mut self) -> Ended {
        let status = self.child.wait().unwrap();
        let stderr = self
            .reader
            .take()
            .map(|r| r.join().unwrap_or_default())
            .unwrap_or_default();
        Ended {
            code: status.code(),
            stderr,
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.reader.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
