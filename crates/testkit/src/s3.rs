//! A real S3-compatible server for tests: the `s3s-fs` binary (installed by
//! `scripts/install-test-tools`) on a free loopback port, its objects plain files under a
//! directory, killed on drop.
#![allow(clippy::unwrap_used)] // test support: a failure is the test's failure

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The access key the server accepts.
pub const ACCESS_KEY: &str = "maillog-test-key";
/// Its secret.
pub const SECRET_KEY: &str = "maillog-test-secret";

/// A running `s3s-fs`.
pub struct S3Server {
    child: Option<Child>,
    /// Its loopback port.
    pub port: u16,
    /// Its data directory (a bucket is a directory in it).
    pub data: PathBuf,
}

/// Whether the server binary is there; without it a test says SKIPPED (a failure under CI).
pub fn have_s3s_fs() -> bool {
    crate::tools::have_all(&["s3s-fs"])
}

impl S3Server {
    /// Starts a server with one bucket.
    pub fn start(data: &Path, bucket: &str) -> S3Server {
        std::fs::create_dir_all(data.join(bucket)).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = S3Server {
            child: None,
            port,
            data: data.to_owned(),
        };
        server.resume();
        server
    }

    /// Starts it again on the same port and data (after [`S3Server::stop`]).
    pub fn resume(&mut self) {
        let child = Command::new("s3s-fs")
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(&self.data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it (the data stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `[s3]` section of a pipeline.toml for this server.
    pub fn config_section(&self) -> String {
        format!(
            "[s3]\nendpoint = \"{}\"\npath_style = true\nregion = \"us-east-1\"\n",
            self.endpoint()
        )
    }

    /// Every object under `bucket/prefix`, as paths of plain files.
    pub fn objects(&self, bucket: &str, prefix: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![self.data.join(bucket).join(prefix)];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if !path.file_name().unwrap().to_string_lossy().starts_with('.') {
                    out.push(path);
                }
            }
        }
        out.sort();
        out
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
