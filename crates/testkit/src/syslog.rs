//! A real syslog-ng of the test's own: loopback ports, config, pid, persist and control files
//! in a directory, the mail facility written to `DIR/mail.log`; `logger` to send to it and a
//! real `logrotate` to rotate its file. Killed on drop.
//!
//! Each source is one port: either keeping the host the message names, or standing for one
//! mail server (`host-override`), since `logger` cannot name another host.
#![allow(clippy::unwrap_used)] // test support: a failure is the test's failure

use std::fmt::Write as _;
use std::fs;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// The programs the syslog tests need.
pub const PROGRAMS: [&str; 4] = ["syslog-ng", "syslog-ng-ctl", "logrotate", "logger"];

/// Whether syslog-ng, logrotate and logger are there; without them a test says SKIPPED (a
/// failure under CI).
pub fn have_programs() -> bool {
    crate::tools::have_all(&PROGRAMS)
}

/// One network source of the syslog-ng.
#[derive(Debug, Clone)]
pub struct Source {
    /// `"udp"` or `"tcp"`.
    pub transport: &'static str,
    /// The host every message of this source gets (`None`: the one the message names).
    pub host: Option<String>,
    /// The port it listens on.
    pub port: u16,
}

/// A running syslog-ng.
pub struct SyslogNg {
    child: Child,
    /// Its directory: config, state, `mail.log`.
    pub dir: PathBuf,
    /// Its sources, in the order asked for.
    pub sources: Vec<Source>,
}

fn free_port(transport: &str) -> u16 {
    if transport == "udp" {
        UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    } else {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }
}

impl SyslogNg {
    /// One UDP and one TCP source, keeping the hosts the messages name.
    pub fn start(dir: &Path) -> SyslogNg {
        SyslogNg::start_with(dir, &[("udp", None), ("tcp", None)])
    }

    /// Sources as asked: `(transport, host)`.
    pub fn start_with(dir: &Path, sources: &[(&'static str, Option<&str>)]) -> SyslogNg {
        let sources: Vec<Source> = sources
            .iter()
            .map(|(transport, host)| Source {
                transport,
                host: host.map(str::to_owned),
                port: free_port(transport),
            })
            .collect();
        let mut networks = String::new();
        for s in &sources {
            let extra = match (s.transport, &s.host) {
                ("udp", _) => " so_rcvbuf(4194304)",
                _ => "",
            };
            let host = s
                .host
                .as_ref()
                .map(|h| format!(" host-override(\"{h}\")"))
                .unwrap_or_default();
            writeln!(
                networks,
                "    network(ip(127.0.0.1) port({}) transport(\"{}\") flags(syslog-protocol){extra}{host});",
                s.port, s.transport
            )
            .unwrap();
        }
        let log = dir.join("mail.log");
        let conf = format!(
            r#"@version: 3.38
options {{ keep_hostname(yes); flush_lines(0); stats_freq(0); }};
source s_net {{
{networks}}};
filter f_mail {{ facility(mail); }};
destination d_mail {{ file("{log}" perm(0644)); }};
log {{ source(s_net); filter(f_mail); destination(d_mail); }};
"#,
            log = log.display()
        );
        fs::write(dir.join("syslog-ng.conf"), conf).unwrap();
        let child = Command::new("syslog-ng")
            .args(["-F", "-e", "--no-caps", "-f"])
            .arg(dir.join("syslog-ng.conf"))
            .arg("-p")
            .arg(dir.join("syslog-ng.pid"))
            .arg("-R")
            .arg(dir.join("syslog-ng.persist"))
            .arg("-c")
            .arg(dir.join("syslog-ng.ctl"))
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("syslog-ng.out")).unwrap())
            .spawn()
            .unwrap();
        let server = SyslogNg {
            child,
            dir: dir.to_owned(),
            sources,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        for s in server.sources.iter().filter(|s| s.transport == "tcp") {
            while TcpStream::connect(("127.0.0.1", s.port)).is_err() {
                let out = fs::read_to_string(dir.join("syslog-ng.out")).unwrap_or_default();
                assert!(
                    Instant::now() < deadline,
                    "syslog-ng did not start listening:\n{out}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        server
    }

    /// The file it writes.
    pub fn log(&self) -> PathBuf {
        self.dir.join("mail.log")
    }

    /// A `logger` process sending each line written to its stdin as one sendmail message to
    /// the first source of `transport` (`"--udp"` or `"--tcp"`).
    pub fn logger(&self, transport: &str) -> (Child, ChildStdin) {
        let index = self
            .sources
            .iter()
            .position(|s| format!("--{}", s.transport) == transport)
            .unwrap();
        self.logger_to(index)
    }

    /// A `logger` process sending each line of its stdin to source `index`.
    pub fn logger_to(&self, index: usize) -> (Child, ChildStdin) {
        let source = &self.sources[index];
        let mut child = Command::new("logger")
            .args(["--server", "127.0.0.1", "--port", &source.port.to_string()])
            .arg(format!("--{}", source.transport))
            .args(["-p", "mail.info", "-t", "sendmail", "--id=4242"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        (child, stdin)
    }

    /// Rotates `mail.log` with a real logrotate run (`create` or `copytruncate`), then has
    /// syslog-ng reopen its file.
    pub fn logrotate(&self, mode: &str) {
        let conf = format!(
            "{log} {{\n    rotate 1000\n    {mode}\n    missingok\n    nocompress\n    \
             postrotate\n        syslog-ng-ctl reopen -c {ctl}\n    endscript\n}}\n",
            log = self.log().display(),
            ctl = self.dir.join("syslog-ng.ctl").display(),
        );
        fs::write(self.dir.join("logrotate.conf"), conf).unwrap();
        let out = Command::new("logrotate")
            .args(["-f", "-s"])
            .arg(self.dir.join("logrotate.state"))
            .arg(self.dir.join("logrotate.conf"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "logrotate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for SyslogNg {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
