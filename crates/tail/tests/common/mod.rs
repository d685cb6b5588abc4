//! What the tailer's end-to-end tests share: a configuration, a writer, and receivers for
//! the thread's channel and for [`TailCore::pass`] driven with time as an argument.
#![allow(clippy::unwrap_used, dead_code)]

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use maillog_tail::{Ack, Chunk, Tail, TailConfig, TailCore};

pub fn config(dir: &Path, inputs: &[&str]) -> TailConfig {
    let inputs = inputs.iter().map(|i| dir.join(i)).collect();
    let mut config = TailConfig::new(inputs, dir.join("state"));
    config.rotate_wait = Duration::from_millis(300);
    config
}

pub fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Receives until `n` lines arrived (or 10 s passed); returns them and their acks.
pub fn receive(tail: &mut Tail, n: usize) -> (Vec<String>, Vec<Ack>) {
    receive_within(tail, n, Duration::from_secs(10))
}

/// What arrives within 2 s (where nothing should).
pub fn anything_more(tail: &mut Tail) -> (Vec<String>, Vec<Ack>) {
    receive_within(tail, 1, Duration::from_secs(2))
}

/// Receives until `n` lines arrived (or `wait` passed).
pub fn receive_within(tail: &mut Tail, n: usize, wait: Duration) -> (Vec<String>, Vec<Ack>) {
    let deadline = Instant::now() + wait;
    let (mut lines, mut acks) = (Vec::new(), Vec::new());
    while lines.len() < n && Instant::now() < deadline {
        match tail.chunks.try_recv() {
            Ok(chunk) => {
                lines.extend(
                    chunk
                        .lines()
                        .map(|l| String::from_utf8_lossy(l).into_owned()),
                );
                acks.push(chunk.ack);
            }
            Err(std::sync::mpsc::TryRecvError::Disconnected) => break,
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    (lines, acks)
}

pub fn numbered(from: usize, to: usize) -> Vec<String> {
    (from..to).map(|i| format!("line {i}")).collect()
}

pub fn write_numbered(path: &Path, from: usize, to: usize) {
    let text: String = numbered(from, to)
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    append(path, &text);
}

pub fn stop(tail: Tail) {
    tail.handle.stop();
    drop(tail.chunks);
    tail.handle.join().unwrap();
}

pub fn gzip(lines: &[String], path: &Path) {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for l in lines {
        writeln!(enc, "{l}").unwrap();
    }
    fs::write(path, enc.finish().unwrap()).unwrap();
}

/// The lines `pass` hands out, and their acks.
#[derive(Default)]
pub struct Collected {
    pub lines: Vec<String>,
    pub acks: Vec<Ack>,
}

impl Collected {
    pub fn pass(&mut self, core: &mut TailCore, now: Instant) {
        let mut send = |chunk: Chunk| {
            let lines = chunk
                .lines()
                .map(|l| String::from_utf8_lossy(l).into_owned());
            self.lines.extend(lines);
            self.acks.push(chunk.ack);
            true
        };
        while core.pass(now, true, &mut send).unwrap().more {}
    }
}

/// Receives until the tailer is done (a run that does not follow).
pub fn receive_all(tail: &mut Tail) -> (Vec<String>, Vec<Ack>) {
    receive(tail, usize::MAX)
}

pub fn gzip_file(plain: &Path, gz: &Path) {
    let lines: Vec<String> = fs::read_to_string(plain)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    gzip(&lines, gz);
    fs::remove_file(plain).unwrap();
}

/// logrotate `daily`, `compress`, `delaycompress`, rename + create: the numbered files move
/// up one, mail.log becomes mail.log.1, a new mail.log is created, and mail.log.2 is
/// compressed (now: its modification time is the compression's).
pub fn logrotate(dir: &Path, keep: usize) {
    let name =
        |n: usize, gz: bool| dir.join(format!("mail.log.{n}{}", if gz { ".gz" } else { "" }));
    for n in (1..=keep).rev() {
        for gz in [true, false] {
            if name(n, gz).exists() {
                if n == keep {
                    fs::remove_file(name(n, gz)).unwrap(); // `rotate N` ran out
                } else {
                    fs::rename(name(n, gz), name(n + 1, gz)).unwrap();
                }
            }
        }
    }
    fs::rename(dir.join("mail.log"), name(1, false)).unwrap();
    append(&dir.join("mail.log"), "");
    if name(2, false).exists() {
        gzip_file(&name(2, false), &name(2, true));
    }
}
