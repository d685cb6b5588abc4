//! `maillog run` under systemd's notification protocol, without systemd: the test listens on a
//! `NOTIFY_SOCKET` of its own, as systemd would for `Type=notify` with `WatchdogSec=`, and
//! reads what the service says — `READY=1` once the first commit is durable, `STATUS=` lines,
//! `WATCHDOG=1` from the commit loop, `STOPPING=1` on SIGTERM — and that the pings stop when
//! the commit loop is stuck (a fault point wedges it), which is what lets systemd restart a
//! wedged pipeline.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// One datagram the service sent, and when it came.
struct Message {
    at: Instant,
    text: String,
}

/// Listens on `dir/notify.sock`; every datagram arrives on the receiver.
fn listen(dir: &Path) -> (std::path::PathBuf, Receiver<Message>) {
    let path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let mut buf = vec![0; 4096];
        while let Ok(n) = socket.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if tx
                .send(Message {
                    at: Instant::now(),
                    text,
                })
                .is_err()
            {
                break;
            }
        }
    });
    (path, rx)
}

/// A service on `dir/mail.log`, committing ten times a second, with a watchdog of 2 s (so
/// pinged about every 0.5 s).
fn start(dir: &Path, socket: &Path, crash_at: Option<&str>) -> Child {
    std::fs::write(dir.join("mail.log"), "").unwrap();
    let config = format!(
        "inputs = [\"{0}/mail.log\"]\nspool = \"{0}/spool\"\narchive = \"file://{0}/archive\"\n\
         [tail]\npoll_interval_ms = 50\n[window]\ncommit_seconds = 0.1\n",
        dir.display()
    );
    std::fs::write(dir.join("pipeline.toml"), config).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_maillog"));
    command
        .args(["run", "--config"])
        .arg(dir.join("pipeline.toml"))
        .env("NOTIFY_SOCKET", socket)
        .env("WATCHDOG_USEC", "2000000")
        .env_remove("WATCHDOG_PID")
        .env_remove("MAILLOG_CONFIG")
        .stderr(Stdio::piped());
    if let Some(point) = crash_at {
        command.env("MAILLOG_CRASH_AT", point);
    }
    command.spawn().unwrap()
}

/// Waits for a message containing `what`; the messages seen meanwhile are kept in `seen`.
fn wait_for(rx: &Receiver<Message>, what: &str, within: Duration, seen: &mut Vec<Message>) {
    let deadline = Instant::now() + within;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if let Ok(m) = rx.recv_timeout(left) {
            let found = m.text.contains(what);
            seen.push(m);
            if found {
                return;
            }
        }
    }
    let texts: Vec<&str> = seen.iter().map(|m| m.text.as_str()).collect();
    panic!("no {what:?} within {within:?}; got {texts:?}");
}

/// Every message for `period`.
fn gather(rx: &Receiver<Message>, period: Duration) -> Vec<Message> {
    let deadline = Instant::now() + period;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if let Ok(m) = rx.recv_timeout(left) {
            seen.push(m);
        }
    }
    seen
}

fn pings(messages: &[Message]) -> Vec<Instant> {
    messages
        .iter()
        .filter(|m| m.text.lines().any(|l| l == "WATCHDOG=1"))
        .map(|m| m.at)
        .collect()
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn the_service_says_ready_after_its_first_commit_then_pings_reports_and_says_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let (socket, rx) = listen(dir.path());
    let mut child = start(dir.path(), &socket, None);
    let mut seen = Vec::new();
    wait_for(&rx, "READY=1", Duration::from_secs(20), &mut seen);
    // Ready means committed: the checkpoint is on disk.
    let checkpoint = dir.path().join("spool/checkpoint");
    let slots = std::fs::read_dir(&checkpoint).map_or(0, |d| d.count());
    assert!(
        slots > 0,
        "READY=1 before a commit: {checkpoint:?} is empty"
    );
    assert_eq!(
        seen.iter().filter(|m| m.text.contains("READY=1")).count(),
        1
    );
    let ready = seen.last().unwrap();
    assert!(
        ready
            .text
            .contains("STATUS=0 records/s; 0 windows open; 0 files waiting"),
        "{}",
        ready.text
    );

    let during = gather(&rx, Duration::from_secs(3));
    let pinged = pings(&during);
    // About every 0.5 s (a quarter of the watchdog), never a whole watchdog period apart
    // (systemd would kill it then), however loaded the machine running the tests is.
    assert!(pinged.len() >= 3, "{} pings in 3 s", pinged.len());
    for pair in pinged.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap < Duration::from_secs(2), "{gap:?} without a ping");
    }
    assert!(
        !during.iter().any(|m| m.text.contains("READY=1")),
        "READY=1 said twice"
    );

    signal(&child, "TERM");
    let mut seen = Vec::new();
    wait_for(&rx, "STOPPING=1", Duration::from_secs(10), &mut seen);
    assert!(child.wait().unwrap().success());
}

#[test]
fn the_watchdog_stops_when_the_commit_loop_is_stuck() {
    let dir = tempfile::tempdir().unwrap();
    let (socket, rx) = listen(dir.path());
    // Wedged right after the first file is archived, inside the commit loop.
    let mut child = start(dir.path(), &socket, Some("after-archive"));
    let stderr = child.stderr.take().unwrap();
    let (stuck_tx, stuck) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            if line.contains("MAILLOG_CRASH_AT=after-archive") {
                let _ = stuck_tx.send(Instant::now());
            }
        }
    });
    let mut seen = Vec::new();
    wait_for(&rx, "READY=1", Duration::from_secs(20), &mut seen);
    let healthy = gather(&rx, Duration::from_secs(2));
    assert!(pings(&healthy).len() >= 2, "pinged while healthy");

    // A line of a long-past window: sealed at once, archived, and the loop wedges.
    let line = "2025-11-20T10:00:00+00:00 mx1 sendmail[1]: p6D0r0u1006229: to=<a@example.net>, \
                delay=00:00:01, mailer=esmtp, pri=1, relay=mx.example.net. [192.0.2.9], \
                dsn=2.0.0, stat=Sent (ok)\n";
    std::fs::write(dir.path().join("mail.log"), line).unwrap();
    let stuck_at = stuck.recv_timeout(Duration::from_secs(20)).unwrap();
    // Three watchdog periods' worth of waiting would see about twelve pings if it were alive.
    let after = gather(&rx, Duration::from_secs(3));
    let late: Vec<Duration> = pings(&after)
        .into_iter()
        .map(|at| at.saturating_duration_since(stuck_at))
        // A ping sent just before the loop wedged may be read a little after (a busy machine).
        .filter(|d| *d > Duration::from_millis(500))
        .collect();
    assert!(
        late.is_empty(),
        "the watchdog was pinged after the loop got stuck: {late:?}"
    );
    signal(&child, "KILL");
    let _ = child.wait();
}
