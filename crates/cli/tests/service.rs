//! `maillog run` as the service on a central syslog host, end to end with the real parts: a
//! syslog-ng of the test's own receives sendmail lines from `logger` for four fake mail servers
//! (two over UDP, two over TCP), writes its file; the service follows it while a real
//! logrotate rotates it; a real S3-compatible server (s3s-fs) receives the windows.
//!
//! Checked: `/metrics`, `/health` and `/top` against the known input; a second instance on the
//! same spool refused; SIGTERM stops within the bound with exit 0, open windows staying in the
//! spool; more lines (and a rotation) while it is down; a restart reads exactly those; and the
//! bucket's records equal what was sent as a multiset, with no extra parts.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use common::{ACCESS_KEY, S3Server, SECRET_KEY, free_port, get, have_s3s_fs, metric};
use maillog_testkit::records::archived_records;
use maillog_testkit::syslog::{SyslogNg, have_programs};

const SERVERS: [(&str, &str); 4] = [
    ("udp", "mx1"),
    ("tcp", "mx2"),
    ("udp", "mx3"),
    ("tcp", "mx4"),
];

/// The sendmail messages of one phase, per server: `(server index, message)`. Message `i`
/// of a phase is a `from` line, a `to` line with two recipients and a line that makes no
/// record; servers get different shares so that `/top` has an order to check.
fn messages(phase: &str, count: usize) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for i in 0..count {
        let server = [0, 0, 0, 1, 1, 2, 3, 0, 1, 2][i % 10];
        let qid = format!("{phase}{i:07}");
        out.push((
            server,
            format!(
                "{qid}: from=<user{}@Sender{}.example>, size={}, class=0, nrcpts=2, msgid=<{qid}@mx>, proto=ESMTP, daemon=MTA, relay=client{}.example.net [10.0.0.{}]",
                i % 13,
                i % 3,
                1000 + i,
                i % 5,
                i % 250
            ),
        ));
        out.push((
            server,
            format!(
                "{qid}: to=<a{}@dest{}.org>,<b{}@dest{}.org>, delay=00:00:01, xdelay=00:00:01, mailer=esmtp, pri=120, relay=mx.dest.org. [10.1.0.1], dsn=2.0.0, stat=Sent ({qid} ok)",
                i % 17,
                i % 2,
                i % 11,
                i % 4
            ),
        ));
        out.push((server, format!("{qid}: done")));
    }
    out
}

/// Sends the messages through syslog-ng, one `logger` per source, paced so UDP loses nothing;
/// rotates the file with logrotate half way when asked.
fn send(syslog: &SyslogNg, messages: &[(usize, String)], rotate_half_way: bool) {
    let mut loggers: Vec<_> = (0..SERVERS.len()).map(|i| syslog.logger_to(i)).collect();
    for (n, (server, message)) in messages.iter().enumerate() {
        writeln!(loggers[*server].1, "{message}").unwrap();
        if n % 100 == 99 {
            std::thread::sleep(Duration::from_millis(5));
        }
        if rotate_half_way && n == messages.len() / 2 {
            std::thread::sleep(Duration::from_millis(200));
            syslog.logrotate("create");
        }
    }
    for (mut child, stdin) in loggers {
        drop(stdin);
        assert!(child.wait().unwrap().success());
    }
}

/// The records the messages make, without the fields the header's time gives (syslog-ng
/// stamps them), as `"{kind} {json}"`: what `maillog parse` makes of the lines as sent.
fn expected_records(messages: &[(usize, String)], dir: &Path) -> HashMap<String, usize> {
    let log = dir.join("sent.log");
    let mut text = String::new();
    for (server, message) in messages {
        text += &format!(
            "Nov 25 12:00:00 {} sendmail[4242]: {message}\n",
            SERVERS[*server].1
        );
    }
    std::fs::write(&log, text).unwrap();
    let parsed = common::parsed_records(&log);
    untimed(parsed)
}

/// Records without `month`, `day`, `time` and `ts`.
fn untimed(records: HashMap<String, usize>) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for (line, n) in records {
        let (kind, json) = line.split_once(' ').unwrap();
        let mut value: serde_json::Value = serde_json::from_str(json).unwrap();
        let object = value.as_object_mut().unwrap();
        for key in ["month", "day", "time", "ts"] {
            object.remove(key);
        }
        *out.entry(format!("{kind} {value}")).or_default() += n;
    }
    out
}

/// `maillog run [ARGS] --config CONFIG` with the test server's credentials.
fn maillog_run(config: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_maillog"));
    command
        .arg("run")
        .args(args)
        .arg("--config")
        .arg(config)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    command
}

/// `maillog run --once`: seals and archives everything; fails the test if it fails.
fn run_once(config: &Path) {
    let once = maillog_run(config, &["--once=all"]).output().unwrap();
    assert!(
        once.status.success(),
        "{}",
        String::from_utf8_lossy(&once.stderr)
    );
}

struct Service {
    child: Child,
    port: u16,
}

impl Service {
    fn start(config: &Path, port: u16, log: &Path) -> Service {
        let child = maillog_run(config, &[])
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the service did not start: {}",
                read(log)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Service { child, port }
    }

    /// Waits until the service has read `records` records.
    fn wait_for_records(&self, records: u64, log: &Path) -> String {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let (_, text) = get(self.port, "/metrics");
            let got = metric(&text, "maillog_records_total");
            if got == records {
                // The gauges are published at the next commit (every second).
                std::thread::sleep(Duration::from_millis(1500));
                return get(self.port, "/metrics").1;
            }
            assert!(got < records, "more records than sent: {got} > {records}");
            assert!(
                Instant::now() < deadline,
                "only {got} of {records} records read: {}",
                read(log)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGTERM; the exit status and how long it took.
    fn terminate(mut self) -> (ExitStatus, Duration) {
        let started = Instant::now();
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = self.child.wait().unwrap();
        (status, started.elapsed())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// How many `from` records each server sent, as `/top?by=mailserver` lists them.
fn top_mailservers(messages: &[(usize, String)]) -> Vec<(String, u64)> {
    let mut counts: HashMap<&str, u64> = HashMap::new();
    for (server, message) in messages {
        if message.contains(": from=") {
            *counts.entry(SERVERS[*server].1).or_default() += 1;
        }
    }
    let mut list: Vec<_> = counts.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    list.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    list
}

fn check_top(port: u16, messages: &[(usize, String)]) {
    let (status, body) = get(port, "/top?by=mailserver&n=10&window=1h");
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["approximate"], false, "{body}");
    let keys: Vec<(String, u64)> = answer["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["key"].as_str().unwrap().to_owned(),
                e["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(keys, top_mailservers(messages), "{body}");
    let (status, body) = get(port, "/top?by=dest_domain&n=2&window=24h");
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["keys"].as_array().unwrap().len(), 2, "{body}");
    let (status, body) = get(port, "/top?by=sender&n=2");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("unknown dimension"), "{body}");
}

fn check_metrics(text: &str, messages: &[(usize, String)], records: u64) {
    let froms = messages
        .iter()
        .filter(|(_, m)| m.contains(": from="))
        .count() as u64;
    assert_eq!(metric(text, "maillog_records_total"), records, "{text}");
    assert!(
        text.contains(&format!("maillog_records_total{{kind=\"from\"}} {froms}\n")),
        "{text}"
    );
    assert_eq!(
        metric(text, "maillog_non_records_total"),
        messages.len() as u64 / 3,
        "{text}"
    );
    assert_eq!(
        metric(text, "maillog_lines_read_total"),
        messages.len() as u64,
        "{text}"
    );
    assert!(metric(text, "maillog_windows_open") >= 2, "{text}");
    assert_eq!(metric(text, "maillog_upload_failures_total"), 0, "{text}");
}

#[test]
fn the_service_archives_what_syslog_ng_received_once_across_rotation_stop_and_restart() {
    if !have_programs() || !have_s3s_fs() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (syslog_dir, s3_dir) = (dir.path().join("syslog"), dir.path().join("s3"));
    std::fs::create_dir_all(&syslog_dir).unwrap();
    let sources: Vec<_> = SERVERS.iter().map(|(t, h)| (*t, Some(*h))).collect();
    let syslog = SyslogNg::start_with(&syslog_dir, &sources);
    let s3 = S3Server::start(&s3_dir, "archive");
    let port = free_port();
    let config = dir.path().join("pipeline.toml");
    std::fs::write(
        &config,
        format!(
            "inputs = [\"{log}\"]\nspool = \"spool\"\narchive = \"s3://archive/mail\"\n\
             [metrics]\naddress = \"127.0.0.1:{port}\"\n[service]\nshutdown_seconds = 10\n{s3}",
            log = syslog.log().display(),
            s3 = s3.config_section(),
        ),
    )
    .unwrap();
    let log = dir.path().join("service.log");

    // Phase A: the service follows while the lines come and the file is rotated.
    let phase_a = messages("A", 900);
    let service = Service::start(&config, port, &log);
    send(&syslog, &phase_a, true);
    let records_a = 900 * 3;
    let text = service.wait_for_records(records_a, &log);
    check_metrics(&text, &phase_a, records_a);
    check_top(port, &phase_a);
    let (status, body) = get(port, "/health");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"status\": \"ok\""), "{body}");

    // One instance per spool.
    let second = maillog_run(&config, &[]).output().unwrap();
    assert!(!second.status.success());
    let message = String::from_utf8_lossy(&second.stderr);
    assert!(message.contains("another maillog (pid "), "{message}");
    assert!(message.contains("one instance per spool"), "{message}");

    // SIGTERM: exit 0 within the bound; the open windows stay in the spool.
    let (status, took) = service.terminate();
    assert!(status.success(), "{status}: {}", read(&log));
    assert!(took < Duration::from_secs(12), "stopping took {took:?}");
    let open = std::fs::read_dir(dir.path().join("spool/windows/open"))
        .unwrap()
        .count();
    assert!(open >= 2, "open windows left in the spool: {open}");
    assert!(read(&log).contains("stopped: open windows stay in the spool"));

    // Phase B while it is down, with a rotation; then a restart reads exactly those.
    let phase_b = messages("B", 600);
    send(&syslog, &phase_b, true);
    let log_b = dir.path().join("service-b.log");
    let service = Service::start(&config, port, &log_b);
    let text = service.wait_for_records(600 * 3, &log_b);
    check_metrics(&text, &phase_b, 600 * 3);
    check_top(port, &phase_b);
    let (status, _) = service.terminate();
    assert!(status.success(), "{status}: {}", read(&log_b));

    for rotated in ["mail.log.1", "mail.log.2"] {
        assert!(
            syslog_dir.join(rotated).is_file(),
            "logrotate made no {rotated}"
        );
    }

    // Seal and archive everything, then compare the bucket with what was sent.
    run_once(&config);
    let objects = s3.objects("archive", "mail");
    assert!(!objects.is_empty());
    for object in &objects {
        let name = object.file_name().unwrap().to_string_lossy();
        assert!(!name.contains(".part-"), "a restart added a part: {name}");
    }
    let archive = untimed(archived_records(&s3_dir.join("archive/mail")));
    let sent: Vec<_> = phase_a.iter().chain(&phase_b).cloned().collect();
    let expected = expected_records(&sent, dir.path());
    assert_eq!(
        archive.values().sum::<usize>(),
        expected.values().sum::<usize>(),
        "records in the bucket vs sent"
    );
    assert!(
        archive == expected,
        "the bucket's records differ from what was sent"
    );
}

/// SIGHUP re-reads the config: a new input is followed from then on, a new log level applies,
/// a key that needs a restart is named; SIGTERM then exits 0. A second SIGTERM, while the first
/// cannot be served (the process is held at a fault-injection point), exits at once with 143 —
/// and nothing committed is lost: the next `--once` archives every record once.
#[test]
fn sighup_rereads_the_config_and_a_second_sigterm_exits_at_once() {
    if !have_s3s_fs() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<&str> = include_str!("../../../sample-logs/mail.log")
        .lines()
        .collect();
    let third = lines.len() / 3;
    for (name, part) in [
        ("a.log", &lines[..third]),
        ("b.log", &lines[third..2 * third]),
        ("c.log", &lines[2 * third..]),
    ] {
        std::fs::write(dir.path().join(name), part.join("\n") + "\n").unwrap();
    }
    let s3_dir = dir.path().join("s3");
    let s3 = S3Server::start(&s3_dir, "archive");
    let port = free_port();
    let config = dir.path().join("pipeline.toml");
    let write_config = |inputs: &str, level: &str, lateness: u32| {
        std::fs::write(
            &config,
            format!(
                "inputs = [{inputs}]\nspool = \"spool\"\narchive = \"s3://archive/mail\"\n\
                 [window]\nlateness_seconds = {lateness}\n[log]\nlevel = \"{level}\"\n\
                 [metrics]\naddress = \"127.0.0.1:{port}\"\n{s3}",
                s3 = s3.config_section()
            ),
        )
        .unwrap();
    };
    write_config("\"a.log\"", "info", 120);
    let log = dir.path().join("service.log");
    let service = Service::start(&config, port, &log);
    write_config("\"a.log\", \"b.log\"", "debug", 60);
    let hup = Command::new("kill")
        .args(["-HUP", &service.child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let two_thirds = 2 * third as u64;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, text) = get(port, "/metrics");
        if metric(&text, "maillog_lines_read_total") == two_thirds {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "b.log not followed after SIGHUP: {}",
            read(&log)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let said = read(&log);
    assert!(said.contains("SIGHUP: log level now \"debug\""), "{said}");
    assert!(said.contains("SIGHUP: following the new inputs"), "{said}");
    assert!(
        said.contains("SIGHUP: time_zone, [window], [bzip2] or fields changed; that takes effect at the next start"),
        "{said}"
    );
    let (status, _) = service.terminate();
    assert!(status.success(), "{status}: {}", read(&log));

    // Held at the first seal, the first SIGTERM cannot be served; the second exits at once.
    write_config("\"a.log\", \"b.log\", \"c.log\"", "info", 120);
    let log_c = dir.path().join("service-c.log");
    let mut held = maillog_run(&config, &[])
        .env("MAILLOG_CRASH_AT", "after-seal")
        .stderr(std::fs::File::create(&log_c).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !read(&log_c).contains("stopped here for a SIGKILL") {
        assert!(Instant::now() < deadline, "never held: {}", read(&log_c));
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = held.id().to_string();
    let kill = |signal: &str| {
        assert!(
            Command::new("kill")
                .args([signal, &pid])
                .status()
                .unwrap()
                .success()
        );
    };
    kill("-TERM");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        held.try_wait().unwrap().is_none(),
        "the first SIGTERM was served while held"
    );
    let started = Instant::now();
    kill("-TERM");
    let status = held.wait().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status.code(), Some(143), "{}", read(&log_c));

    run_once(&config);
    let archive = archived_records(&s3_dir.join("archive/mail"));
    let mut expected = HashMap::new();
    for name in ["a.log", "b.log", "c.log"] {
        for (record, n) in common::parsed_records(&dir.path().join(name)) {
            *expected.entry(record).or_default() += n;
        }
    }
    let missing: Vec<_> = expected
        .iter()
        .filter(|(r, n)| archive.get(*r) != Some(n))
        .map(|(r, n)| (r.clone(), *n, archive.get(r).copied().unwrap_or(0)))
        .take(3)
        .collect();
    let extra = archive
        .keys()
        .filter(|r| !expected.contains_key(*r))
        .count();
    assert!(
        archive == expected,
        "the archive differs from the inputs' records: {} archived, {} expected, {extra} extra; first differences: {missing:?}",
        archive.len(),
        expected.len()
    );
}
