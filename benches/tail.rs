//! The tailer's costs, side by side with what they are compared to, in one run:
//!
//! - `throughput`: lines/s from a 1 GiB log through the tailer to a consumer that counts lines,
//!   against `cat FILE > /dev/null` on the same (cached) file, best of 3 rounds each.
//! - `idle`: CPU time of the whole process while the tailer follows an idle file for 60 s
//!   (inotify, then the polling fallback).
//! - `rss`: resident memory while following 100 files, against the process before.
//! - `busy`: CPU of the tailer's threads following one file written at a high rate (lesson 8:
//!   inotify is not automatically cheaper than a read loop): inotify against polling.
//!
//! usage: `cargo bench --bench tail [-- throughput|idle|rss]`
//! (`TAIL_BENCH_IDLE_SECS`, `TAIL_BENCH_MIB` change the 60 s and the 1024 MiB).
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use maillog_loggen::{Config, write_log};
use maillog_tail::{TailConfig, WatchMode, spawn};

fn main() {
    let what: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let all = what.is_empty();
    let want = |name: &str| all || what.iter().any(|w| w == name);
    if want("throughput") {
        throughput();
    }
    if want("idle") {
        idle();
    }
    if want("rss") {
        rss();
    }
    if want("busy") {
        busy();
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn data_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A generated log of at least `mib` MiB (made once, kept in target/bench-data); its lines.
fn big_log(mib: u64) -> (PathBuf, u64) {
    let path = data_dir().join(format!("tail-{mib}mib.log"));
    if fs::metadata(&path).map_or(true, |m| m.len() < mib << 20) {
        eprintln!("generating {} ...", path.display());
        let lines = (mib << 20) / 200; // generated lines average ~230 bytes
        let config = Config {
            lines,
            rate: 20.0,
            ..Config::default()
        };
        let mut out = BufWriter::new(fs::File::create(&path).unwrap());
        write_log(&config, &mut out).unwrap();
        out.flush().unwrap();
    }
    let mut file = fs::File::open(&path).unwrap();
    let (mut buf, mut lines) = (vec![0; 1 << 20], 0);
    loop {
        let n = std::io::Read::read(&mut file, &mut buf).unwrap();
        if n == 0 {
            break (path, lines);
        }
        lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
    }
}

fn tail_once(path: &Path) -> u64 {
    let state = tempfile::tempdir().unwrap();
    let mut config = TailConfig::new(vec![path.to_owned()], state.path().to_owned());
    config.follow = false;
    if let Ok(read) = std::env::var("TAIL_BENCH_READ") {
        config.read_bytes = read.parse().unwrap();
    }
    let tail = spawn(config).unwrap();
    let mut lines = 0;
    while let Ok(chunk) = tail.chunks.recv() {
        lines += chunk.line_count() as u64;
    }
    tail.handle.join().unwrap();
    lines
}

fn cat(path: &Path) {
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("cat '{}' > /dev/null", path.display()))
        .status()
        .unwrap();
    assert!(status.success());
}

fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn throughput() {
    let (path, lines) = big_log(env_number("TAIL_BENCH_MIB", 1024));
    let mib = fs::metadata(&path).unwrap().len() as f64 / (1 << 20) as f64;
    cat(&path); // into the page cache
    let (mut best_cat, mut best_tail) = (Duration::MAX, Duration::MAX);
    for _ in 0..3 {
        best_cat = best_cat.min(timed(|| cat(&path)));
        best_tail = best_tail.min(timed(|| assert_eq!(tail_once(&path), lines)));
    }
    let rate = |d: Duration| lines as f64 / d.as_secs_f64();
    println!(
        "throughput: {} ({mib:.0} MiB, {lines} lines), page cache warm, best of 3",
        path.display()
    );
    println!(
        "  cat FILE > /dev/null        {:>7.3} s  {:>6.0} MiB/s  {:>11.0} lines/s",
        best_cat.as_secs_f64(),
        mib / best_cat.as_secs_f64(),
        rate(best_cat)
    );
    println!(
        "  tailer -> counting consumer {:>7.3} s  {:>6.0} MiB/s  {:>11.0} lines/s",
        best_tail.as_secs_f64(),
        mib / best_tail.as_secs_f64(),
        rate(best_tail)
    );
    println!(
        "  ratio tailer / cat: {:.2}",
        best_cat.as_secs_f64() / best_tail.as_secs_f64()
    );
}

/// CPU time of every thread of this process so far (ns resolution, from schedstat).
fn process_cpu() -> Duration {
    let mut ns = 0u64;
    for task in fs::read_dir("/proc/self/task").unwrap() {
        let stat = fs::read_to_string(task.unwrap().path().join("schedstat")).unwrap_or_default();
        ns += stat
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
    }
    Duration::from_nanos(ns)
}

fn idle() {
    let secs = env_number("TAIL_BENCH_IDLE_SECS", 60);
    for watch in [WatchMode::Auto, WatchMode::Poll] {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mail.log");
        let config = Config {
            lines: 1000,
            ..Config::default()
        };
        write_log(&config, &mut fs::File::create(&log).unwrap()).unwrap();
        let mut tail_config = TailConfig::new(vec![log.clone()], dir.path().join("state"));
        tail_config.watch = watch;
        let tail = spawn(tail_config).unwrap();
        let mut lines = 0;
        while lines < 1000 {
            lines += tail.chunks.recv().ok().unwrap().line_count();
        }
        std::thread::sleep(Duration::from_secs(1));
        let before = process_cpu();
        std::thread::sleep(Duration::from_secs(secs));
        let used = process_cpu().saturating_sub(before);
        println!(
            "idle ({watch:?}): CPU of the whole process while following an idle file for {secs} s: {:.4} s",
            used.as_secs_f64()
        );
        tail.handle.stop();
        drop(tail.chunks);
        tail.handle.join().unwrap();
    }
}

fn status_kib(field: &str) -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn rss() {
    let dir = tempfile::tempdir().unwrap();
    let files = 100;
    for i in 0..files {
        let config = Config {
            seed: i,
            lines: 1000,
            ..Config::default()
        };
        let path = dir.path().join(format!("mail-{i:03}.log"));
        write_log(&config, &mut fs::File::create(path).unwrap()).unwrap();
    }
    let before = status_kib("VmRSS:");
    let glob = dir.path().join("*.log");
    let tail = spawn(TailConfig::new(vec![glob], dir.path().join("state"))).unwrap();
    let mut lines = 0;
    while lines < files * 1000 {
        lines += tail.chunks.recv().ok().unwrap().line_count() as u64;
    }
    std::thread::sleep(Duration::from_secs(3)); // following, idle
    let after = status_kib("VmRSS:");
    println!(
        "rss: following {files} files: VmRSS {after} KiB (process before the tailer: {before} KiB; \
         the tailer's share {} KiB); peak VmHWM {} KiB",
        after.saturating_sub(before),
        status_kib("VmHWM:")
    );
    tail.handle.stop();
    drop(tail.chunks);
    tail.handle.join().unwrap();
}

/// CPU time so far of each of this process's threads other than `exclude` (by thread name).
fn threads_cpu(exclude: &[&str]) -> std::collections::HashMap<String, u64> {
    let mut cpu = std::collections::HashMap::new();
    for task in fs::read_dir("/proc/self/task").unwrap() {
        let task = task.unwrap().path();
        let name = fs::read_to_string(task.join("comm")).unwrap_or_default();
        if exclude.contains(&name.trim()) {
            continue;
        }
        let stat = fs::read_to_string(task.join("schedstat")).unwrap_or_default();
        let ns = stat
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        cpu.insert(task.display().to_string(), ns);
    }
    cpu
}

/// CPU used since `before` by the threads alive now.
fn cpu_since(before: &std::collections::HashMap<String, u64>, exclude: &[&str]) -> Duration {
    let now = threads_cpu(exclude);
    let ns = now
        .iter()
        .map(|(t, ns)| ns - before.get(t).copied().unwrap_or(0).min(*ns))
        .sum();
    Duration::from_nanos(ns)
}

fn busy() {
    let secs = env_number("TAIL_BENCH_BUSY_SECS", 10);
    let rate = env_number("TAIL_BENCH_BUSY_RATE", 50_000); // lines/s, written 100 at a time
    let main_name = fs::read_to_string("/proc/thread-self/comm").unwrap();
    for watch in [WatchMode::Auto, WatchMode::Poll] {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mail.log");
        fs::File::create(&log).unwrap();
        let mut tail_config = TailConfig::new(vec![log.clone()], dir.path().join("state"));
        tail_config.watch = watch;
        let tail = spawn(tail_config).unwrap();
        let line = b"Nov 25 11:44:29 mx1 sendmail[12544]: 4AP5iTqx012544: to=<someone@example.org>, delay=00:00:01, mailer=esmtp, relay=mx.example.org. [192.0.2.7], stat=Sent (ok)\n";
        let writer = std::thread::Builder::new()
            .name("bench-writer".into())
            .spawn(move || {
                let mut file = fs::OpenOptions::new().append(true).open(&log).unwrap();
                let batch: Vec<u8> = line.repeat(100);
                let start = Instant::now();
                let mut written = 0u64;
                while start.elapsed() < Duration::from_secs(secs) {
                    file.write_all(&batch).unwrap();
                    written += 100;
                    let due = Duration::from_secs_f64(written as f64 / rate as f64);
                    if let Some(wait) = due.checked_sub(start.elapsed()) {
                        std::thread::sleep(wait);
                    }
                }
                written
            })
            .unwrap();
        let before = threads_cpu(&[main_name.trim(), "bench-writer"]);
        let mut lines = 0u64;
        while !writer.is_finished() {
            while let Ok(chunk) = tail.chunks.try_recv() {
                lines += chunk.line_count() as u64;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let written = writer.join().unwrap();
        while lines < written {
            lines += tail.chunks.recv().ok().unwrap().line_count() as u64;
        }
        let used = cpu_since(&before, &[main_name.trim(), "bench-writer"]);
        println!(
            "busy ({watch:?}): {written} lines written in {secs} s ({rate}/s, 100 per write); \
             tailer threads' CPU {:.3} s ({:.1}% of one core)",
            used.as_secs_f64(),
            100.0 * used.as_secs_f64() / secs as f64
        );
        tail.handle.stop();
        drop(tail.chunks);
        tail.handle.join().unwrap();
    }
}
