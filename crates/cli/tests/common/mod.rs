//! What the pipeline's end-to-end tests share: [`maillog_testkit`] (a real S3-compatible
//! server, the archive's records as multisets) and the parser's records to compare with.
#![allow(dead_code, unused_imports, clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::Path;

pub use maillog_testkit::records::{archived_records, files, multiset};
pub use maillog_testkit::s3::{ACCESS_KEY, S3Server, SECRET_KEY, have_s3s_fs};

/// What `maillog parse` makes of `log`, as `"{kind} {json}"`.
pub fn parsed_records(log: &Path) -> HashMap<String, usize> {
    parsed_records_with(log, &[])
}

/// What `maillog parse ARGS` (`--tz`, `--year`, …) makes of `log`, as `"{kind} {json}"`.
pub fn parsed_records_with(log: &Path, args: &[&str]) -> HashMap<String, usize> {
    let mut lines = Vec::new();
    for kind in ["from", "to"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_maillog"))
            .args(["parse", "--kind", kind])
            .args(args)
            .env_remove("MAILLOG_CONFIG") // `parse` reads its zone and programs from it
            .arg(log)
            .output()
            .unwrap();
        assert!(out.status.success(), "maillog parse {args:?} failed");
        lines.extend(
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(|l| format!("{kind} {l}")),
        );
    }
    multiset(lines)
}

/// A generated cluster log of `lines` lines (20 a second, `maillog-loggen`'s defaults otherwise).
pub fn generated_log(path: &Path, lines: u64) {
    generated_log_at(path, lines, 20.0);
}

/// A generated cluster log of `lines` lines at `rate` a second, from 2025-12-31 23:15
/// (`maillog-loggen`'s defaults otherwise).
pub fn generated_log_at(path: &Path, lines: u64, rate: f64) {
    let config = maillog_loggen::Config {
        lines,
        rate,
        ..maillog_loggen::Config::default()
    };
    maillog_loggen::write_log(&config, &mut std::fs::File::create(path).unwrap()).unwrap();
}

/// `maillog ARGS` in `dir`, with no `MAILLOG_CONFIG` and the test S3 server's credentials.
pub fn maillog(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_maillog"))
        .args(args)
        .current_dir(dir)
        .env_remove("MAILLOG_CONFIG")
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env_remove("AWS_PROFILE")
        .output()
        .unwrap()
}

/// The same, which must succeed (else the test fails with its stderr): its stdout and stderr.
pub fn maillog_ok(dir: &Path, args: &[&str]) -> (String, String) {
    let out = maillog(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?}: {stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

/// `maillog run ARGS` in `dir`: its exit code and stderr.
pub fn run_in(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_maillog"))
        .current_dir(dir)
        .arg("run")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// A port free on loopback now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A GET on the service's HTTP endpoint: status and body.
pub fn get(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

/// A metric's value summed over its label sets (`name{` or `name `).
pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64)
        .sum()
}

/// Starts `command` with its stderr read by a thread: each line holding `needle` is sent on
/// the channel; the thread returns the whole stderr.
pub fn watched(
    mut command: std::process::Command,
    needle: &'static str,
) -> (
    std::process::Child,
    std::sync::mpsc::Receiver<String>,
    std::thread::JoinHandle<String>,
) {
    use std::io::BufRead;
    let mut child = command
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in stderr.lines() {
            let line = line.unwrap();
            if line.contains(needle) {
                let _ = tx.send(line.clone());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    (child, rx, reader)
}

/// SIGTERM, and the exit (at most 30 s).
pub fn stop(service: &mut std::process::Child) {
    use std::time::{Duration, Instant};
    let _ = std::process::Command::new("kill")
        .args(["-s", "TERM", &service.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while service.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = service.kill();
            panic!("the service did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
