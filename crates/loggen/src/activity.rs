//! What happens in the cluster: the scripts of one mail transaction each, as sendmail logs them.
//!
//! This module owns the story of each kind of traffic — mail arriving from the internet, mail
//! leaving for it (grouped per destination domain as sendmail delivers it, with deferrals retried
//! hours later and bounces answered by a DSN from the null sender), local submissions through the
//! MSP (rejected connections and the other programs sharing the file are in `crate::noise`).
//! Each script only plans lines at offsets from now; `crate::Generator` orders and writes them.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::line::{Address, Body, Relay, Value};
use crate::world::{LOCAL_DOMAIN, World, random_ip};

/// A line planned by a script, before its time stamp is written.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    pub(crate) at_ms: i64,
    pub(crate) server: usize,
    pub(crate) program: &'static str,
    pub(crate) pid: u32,
    pub(crate) body: Body,
}

/// Where scripts plan their lines.
pub(crate) struct Plan<'g> {
    pub(crate) rng: &'g mut ChaCha8Rng,
    pub(crate) world: &'g mut World,
    /// Milliseconds since the start of the log.
    pub(crate) now_ms: i64,
    /// The wall clock of the start of the log, for queue ids and message ids.
    pub(crate) start: chrono::NaiveDateTime,
    pub(crate) out: &'g mut Vec<Planned>,
    pub(crate) serial: &'g mut u64,
}

/// About how many lines one activity writes (sets the clock's pace for a wanted line rate).
pub(crate) const LINES_PER_ACTIVITY: f64 = 3.4;

const MAILSTORE: (&str, &str) = ("mailstore.example.net.", "10.0.1.5");

impl Plan<'_> {
    /// Starts one activity, chosen by the traffic mix.
    pub(crate) fn activity(&mut self) {
        match self.rng.random_range(0..100) {
            0..=39 => self.inbound(),
            40..=64 => self.outbound(),
            65..=74 => self.local_submission(),
            75..=86 => self.rejected(),
            87..=89 => self.queue_run(),
            _ => self.other_program(),
        }
    }

    pub(crate) fn line(
        &mut self,
        after_ms: i64,
        server: usize,
        program: &'static str,
        pid: u32,
        body: Body,
    ) {
        self.out.push(Planned {
            at_ms: self.now_ms + after_ms,
            server,
            program,
            pid,
            body,
        });
    }

    pub(crate) fn record(
        &mut self,
        after_ms: i64,
        server: usize,
        program: &'static str,
        pid: u32,
        queue_id: &str,
        fields: Vec<(&'static str, Value)>,
    ) {
        let body = Body::Fields {
            queue_id: Some(queue_id.to_owned()),
            fields,
        };
        self.line(after_ms, server, program, pid, body);
    }

    pub(crate) fn text(
        &mut self,
        after_ms: i64,
        server: usize,
        program: &'static str,
        pid: u32,
        text: String,
    ) {
        self.line(after_ms, server, program, pid, Body::Text(text));
    }

    /// Mail from the internet to local users, delivered to the mail store.
    fn inbound(&mut self) {
        let server = self.world.pick_server(self.rng);
        let pid = self.world.new_pid(self.rng, server);
        let qid = self.queue_id(pid);
        let (sender, domain) = self.world.pick_correspondent(self.rng);
        let sender = if self.rng.random_bool(0.06) {
            String::new()
        } else {
            sender
        };
        let relay_host = format!(
            "mail{}.{}",
            self.rng.random_range(1..4),
            self.world.domains[domain].name
        );
        let relay = self.remote_relay(relay_host);
        if self.rng.random_bool(0.4) {
            let text = format!(
                "STARTTLS=server, relay={}, version=TLSv1.3, verify=NO, cipher=TLS_AES_256_GCM_SHA384, bits=256/256",
                relay_text(&relay)
            );
            self.text(0, server, "sm-mta", pid, text);
        }
        let recipients: Vec<Address> = (0..self.recipient_count(4))
            .map(|_| Address::angle(self.world.pick_user(self.rng)))
            .collect();
        let size = self.size();
        let mut from = vec![
            ("from", Value::Sender(Address::angle(sender))),
            ("size", plain(size)),
            ("class", plain(0)),
            ("nrcpts", plain(recipients.len())),
            (
                "msgid",
                Value::MsgId(format!(
                    "{:x}.{}@{}",
                    self.rng.random::<u64>(),
                    pid,
                    self.world.domains[domain].name
                )),
            ),
        ];
        if self.rng.random_bool(0.3) {
            from.push(("bodytype", plain("8BITMIME")));
        }
        from.push((
            "proto",
            plain(if self.rng.random_bool(0.6) {
                "ESMTPS"
            } else {
                "ESMTP"
            }),
        ));
        from.push(("daemon", plain("MTA")));
        from.push(("relay", Value::Relay(relay)));
        self.record(10, server, "sm-mta", pid, &qid, from);
        let delivery_pid = self.world.new_pid(self.rng, server);
        let took = self.rng.random_range(0..3);
        let pri = size + 30_000 * recipients.len();
        let to = self.store_delivery(recipients, (took, took.min(1)), pri, delivery_pid + 1);
        self.record(took * 1000 + 200, server, "sm-mta", delivery_pid, &qid, to);
    }

    /// Mail from local applications to the internet, one delivery per destination domain.
    fn outbound(&mut self) {
        let server = self.world.pick_server(self.rng);
        let pid = self.world.new_pid(self.rng, server);
        let qid = self.queue_id(pid);
        let sender = self.world.pick_user(self.rng);
        let app = self.rng.random_range(1..9);
        let relay = Relay::HostIp {
            host: format!("app{app:02}.{LOCAL_DOMAIN}"),
            ip: format!("10.1.2.{app}"),
            forged: false,
        };
        // Recipients grouped per domain, in first-seen order, as sendmail groups a delivery.
        let mut groups: Vec<(usize, Vec<Address>)> = Vec::new();
        for _ in 0..self.recipient_count(8) {
            let (address, domain) = if self.rng.random_bool(0.5) {
                let domain = self.world.pick_domain(self.rng);
                let (local, _) = self.world.pick_correspondent(self.rng);
                let local = local.split('@').next().unwrap_or_default().to_owned();
                (
                    format!("{local}@{}", self.world.domains[domain].name),
                    domain,
                )
            } else {
                self.world.pick_correspondent(self.rng)
            };
            let address = if self.rng.random_bool(0.01) {
                // A quoted local part with a comma: the hardest address sendmail logs.
                Address::angle(format!(
                    "\"{}, jr\"@{}",
                    address.split('@').next().unwrap_or_default(),
                    self.world.domains[domain].name
                ))
            } else {
                Address::angle(address)
            };
            match groups.iter_mut().find(|(d, _)| *d == domain) {
                Some((_, list)) if !list.contains(&address) => list.push(address),
                Some(_) => {}
                None => groups.push((domain, vec![address])),
            }
        }
        let nrcpts: usize = groups.iter().map(|(_, l)| l.len()).sum();
        let size = self.size();
        let msgid = format!("{}.{qid}@{LOCAL_DOMAIN}", self.stamp_digits());
        let from = vec![
            ("from", Value::Sender(Address::angle(sender.clone()))),
            ("size", plain(size)),
            ("class", plain(0)),
            ("nrcpts", plain(nrcpts)),
            ("msgid", Value::MsgId(msgid)),
            ("proto", plain("ESMTP")),
            ("daemon", plain("MTA")),
            ("relay", Value::Relay(relay)),
        ];
        self.record(0, server, "sm-mta", pid, &qid, from);
        let mut after = 300;
        for (domain, recipients) in groups {
            after += self.rng.random_range(100..2500);
            self.deliver(server, &qid, &sender, domain, recipients, size, after);
        }
    }

    /// One delivery attempt to a remote domain: sent, deferred (retried later) or bounced.
    #[allow(clippy::too_many_arguments)]
    fn deliver(
        &mut self,
        server: usize,
        qid: &str,
        sender: &str,
        domain: usize,
        recipients: Vec<Address>,
        size: usize,
        after_ms: i64,
    ) {
        let pid = self.world.new_pid(self.rng, server);
        let d = &self.world.domains[domain];
        let (mx, mx_ip) = (d.mx.clone(), d.mx_ip.clone());
        if self.rng.random_bool(0.5) {
            let text = format!(
                "STARTTLS=client, relay={mx}, version=TLSv1.3, verify=FAIL, cipher=TLS_AES_256_GCM_SHA384, bits=256/256"
            );
            self.text(after_ms - 50, server, "sm-mta", pid, text);
        }
        let took = self.rng.random_range(0..4);
        let pri = size + 30_000 * recipients.len();
        let roll = self.rng.random_range(0..100);
        let relay = if roll < 4 {
            Relay::Word(mx.clone())
        } else {
            Relay::HostIp {
                host: mx.clone(),
                ip: mx_ip,
                forged: false,
            }
        };
        let (dsn, stat) = match roll {
            0..=3 => ("4.0.0", format!("Deferred: Connection timed out with {mx}")),
            4..=6 => (
                "4.7.1",
                "Deferred: 451 4.7.1 Please try again later".to_owned(),
            ),
            7..=10 => ("5.1.1", "User unknown".to_owned()),
            _ => ("2.0.0", self.sent_reply()),
        };
        let to = vec![
            ("to", Value::Recipients(recipients.clone())),
            ("delay", plain(duration(took))),
            ("xdelay", plain(duration(took))),
            ("mailer", plain("esmtp")),
            ("pri", plain(pri)),
            ("relay", Value::Relay(relay.clone())),
            ("dsn", plain(dsn)),
            ("stat", plain(stat)),
        ];
        self.record(after_ms, server, "sm-mta", pid, qid, to);
        match dsn {
            "4.0.0" | "4.7.1" => {
                // Retried by a later queue run, sometimes more than a day later.
                let wait = match self.rng.random_range(0..10) {
                    0..=6 => self.rng.random_range(15 * 60..3600),
                    7..=8 => self.rng.random_range(3600..6 * 3600),
                    _ => self.rng.random_range(24 * 3600..32 * 3600),
                };
                let retry_pid = self.world.new_pid(self.rng, server);
                let reply = self.sent_reply();
                let to = vec![
                    ("to", Value::Recipients(recipients)),
                    ("delay", plain(duration(wait + took))),
                    ("xdelay", plain(duration(1))),
                    ("mailer", plain("esmtp")),
                    ("pri", plain(pri + 90_000)),
                    (
                        "relay",
                        Value::Relay(Relay::HostIp {
                            host: mx,
                            ip: self.world.domains[domain].mx_ip.clone(),
                            forged: false,
                        }),
                    ),
                    ("dsn", plain("2.0.0")),
                    ("stat", plain(reply)),
                ];
                self.record(after_ms + wait * 1000, server, "sm-mta", retry_pid, qid, to);
            }
            "5.1.1" => self.bounce(server, qid, sender, pid, after_ms + 100),
            _ => {}
        }
    }

    /// A queue run retrying a message accepted long before this log began: its `from=` line is
    /// not in the file, and its delay has a day prefix.
    fn queue_run(&mut self) {
        let server = self.world.pick_server(self.rng);
        let pid = self.world.new_pid(self.rng, server);
        let qid = self.queue_id(pid);
        let domain = self.world.pick_domain(self.rng);
        let (local, _) = self.world.pick_correspondent(self.rng);
        let local = local.split('@').next().unwrap_or_default().to_owned();
        let recipient = Address::angle(format!("{local}@{}", self.world.domains[domain].name));
        let d = &self.world.domains[domain];
        let relay = Relay::HostIp {
            host: d.mx.clone(),
            ip: d.mx_ip.clone(),
            forged: false,
        };
        let age = self.rng.random_range(86_400..5 * 86_400);
        let stat = if self.rng.random_bool(0.5) {
            "Deferred: 421 4.7.0 Try again later, closing connection.".to_owned()
        } else {
            self.sent_reply()
        };
        let to = vec![
            ("to", Value::Recipients(vec![recipient])),
            ("delay", plain(duration(age))),
            ("xdelay", plain(duration(self.rng.random_range(0..30)))),
            ("mailer", plain("esmtp")),
            ("pri", plain(self.rng.random_range(1_000_000..9_000_000))),
            ("relay", Value::Relay(relay)),
            (
                "dsn",
                plain(if stat.starts_with("Sent") {
                    "2.0.0"
                } else {
                    "4.7.0"
                }),
            ),
            ("stat", plain(stat)),
        ];
        self.record(0, server, "sm-mta", pid, &qid, to);
    }

    /// The DSN sendmail sends back from the null sender after a permanent failure.
    fn bounce(&mut self, server: usize, qid: &str, sender: &str, pid: u32, after_ms: i64) {
        let dsn_qid = self.queue_id(pid);
        let host = self.world.servers[server].name.clone();
        self.text(
            after_ms,
            server,
            "sm-mta",
            pid,
            format!("{qid}: {dsn_qid}: DSN: User unknown"),
        );
        let size = self.rng.random_range(2500..9000);
        let from = vec![
            ("from", Value::Sender(Address::angle(""))),
            ("size", plain(size)),
            ("class", plain(0)),
            ("nrcpts", plain(1)),
            (
                "msgid",
                Value::MsgId(format!(
                    "{}.{dsn_qid}@{host}.{LOCAL_DOMAIN}",
                    self.stamp_digits()
                )),
            ),
            ("bodytype", plain("8BITMIME")),
        ];
        self.record(after_ms + 10, server, "sm-mta", pid, &dsn_qid, from);
        let to = self.store_delivery(vec![Address::angle(sender)], (0, 0), size + 30_000, pid + 7);
        self.record(after_ms + 900, server, "sm-mta", pid, &dsn_qid, to);
    }

    /// A cron job's mail: the MSP (`sendmail`, `from=root`) hands it to the local MTA.
    fn local_submission(&mut self) {
        let server = self.world.pick_server(self.rng);
        let host = format!("{}.{LOCAL_DOMAIN}", self.world.servers[server].name);
        let msp_pid = self.world.new_pid(self.rng, server);
        let msp_qid = self.queue_id(msp_pid);
        let user = ["root", "root", "root", "www-data", "backup"][self.rng.random_range(0..5)];
        let uid = if user == "root" { "0/0" } else { "33/33" };
        let size = self.rng.random_range(400..20_000);
        let msgid = format!("{}.{msp_qid}@{host}", self.stamp_digits());
        let from = vec![
            ("from", Value::Sender(Address::bare(user))),
            ("size", plain(size)),
            ("class", plain(0)),
            ("nrcpts", plain(1)),
            ("msgid", Value::MsgId(msgid.clone())),
            (
                "relay",
                Value::Relay(Relay::Word(format!("{user}@localhost"))),
            ),
        ];
        self.record(0, server, "sendmail", msp_pid, &msp_qid, from);
        let mta_pid = self.world.new_pid(self.rng, server);
        let mta_qid = self.queue_id(mta_pid);
        let to = vec![
            (
                "to",
                Value::Recipients(vec![Address::bare(format!("admin@{LOCAL_DOMAIN}"))]),
            ),
            ("ctladdr", plain(format!("{user} ({uid})"))),
            ("delay", plain(duration(0))),
            ("xdelay", plain(duration(0))),
            ("mailer", plain("relay")),
            ("pri", plain(size + 30_000)),
            ("relay", Value::Relay(Relay::IpIp("127.0.0.1".into()))),
            ("dsn", plain("2.0.0")),
            (
                "stat",
                plain(format!("Sent ({mta_qid} Message accepted for delivery)")),
            ),
        ];
        self.record(400, server, "sendmail", msp_pid, &msp_qid, to);
        let from = vec![
            (
                "from",
                Value::Sender(Address::angle(format!("{user}@{host}"))),
            ),
            ("size", plain(size + 320)),
            ("class", plain(0)),
            ("nrcpts", plain(1)),
            ("msgid", Value::MsgId(msgid)),
            ("proto", plain("ESMTP")),
            ("daemon", plain("MTA")),
            (
                "relay",
                Value::Relay(Relay::HostIp {
                    host: "localhost".into(),
                    ip: "127.0.0.1".into(),
                    forged: false,
                }),
            ),
        ];
        self.record(300, server, "sm-mta", mta_pid, &mta_qid, from);
        let deliver_pid = self.world.new_pid(self.rng, server);
        let admin = vec![Address::angle(format!("admin@{LOCAL_DOMAIN}"))];
        let to = self.store_delivery(admin, (1, 0), size + 30_320, deliver_pid);
        self.record(1200, server, "sm-mta", deliver_pid, &mta_qid, to);
    }

    /// The fields of a delivery to the cluster's mail store (always accepted, with the store's
    /// own queue id for the message in its reply).
    fn store_delivery(
        &mut self,
        recipients: Vec<Address>,
        (delay, xdelay): (i64, i64),
        pri: usize,
        store_pid: u32,
    ) -> Vec<(&'static str, Value)> {
        let store = Relay::HostIp {
            host: MAILSTORE.0.into(),
            ip: MAILSTORE.1.into(),
            forged: false,
        };
        let reply = format!(
            "Sent ({} Message accepted for delivery)",
            self.queue_id(store_pid)
        );
        vec![
            ("to", Value::Recipients(recipients)),
            ("delay", plain(duration(delay))),
            ("xdelay", plain(duration(xdelay))),
            ("mailer", plain("esmtp")),
            ("pri", plain(pri)),
            ("relay", Value::Relay(store)),
            ("dsn", plain("2.0.0")),
            ("stat", plain(reply)),
        ]
    }

    /// 1 recipient most of the time, up to `max`.
    fn recipient_count(&mut self, max: usize) -> usize {
        if self.rng.random_bool(0.75) {
            1
        } else {
            self.rng.random_range(2..=max)
        }
    }

    /// A message size, spread over several orders of magnitude.
    pub(crate) fn size(&mut self) -> usize {
        let exponent: f64 = self.rng.random_range(2.9..6.4);
        10f64.powf(exponent) as usize
    }

    fn sent_reply(&mut self) -> String {
        let n = self.rng.random_range(100_000_000u64..2_000_000_000);
        match self.rng.random_range(0..4) {
            0 => format!("Sent (OK  {n} m12si{}ljp.306 - gsmtp)", n % 100_000_000),
            1 => format!("Sent (ok:  Message {n} accepted)"),
            2 => format!(
                "Sent (<{n:x}@mx> [InternalId={}] Queued mail for delivery)",
                n % 1_000_000
            ),
            _ => format!("Sent (Ok: queued as {:X})", n),
        }
    }

    fn remote_relay(&mut self, host: String) -> Relay {
        let ip = random_ip(self.rng);
        match self.rng.random_range(0..100) {
            0..=2 => Relay::IpIp(ip),
            3..=6 => Relay::HostIp {
                host,
                ip,
                forged: true,
            },
            _ => Relay::HostIp {
                host,
                ip,
                forged: false,
            },
        }
    }

    /// A sendmail 8.12+ queue id: date and time in base 60, a serial, the process id.
    pub(crate) fn queue_id(&mut self, pid: u32) -> String {
        const BASE60: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwx";
        use chrono::{Datelike, Timelike};
        let t = self.start + chrono::Duration::milliseconds(self.now_ms);
        *self.serial += 1;
        let serial = *self.serial;
        let digits = [
            t.year() as u32 % 60,
            t.month0(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            (serial / 60 % 60) as u32,
            (serial % 60) as u32,
        ];
        let mut id: String = digits
            .iter()
            .map(|d| BASE60[*d as usize % 60] as char)
            .collect();
        id.push_str(&format!("{pid:05}"));
        id
    }

    /// `YYYYMMDDhhmm` of now, as sendmail writes in its own message ids.
    fn stamp_digits(&self) -> String {
        (self.start + chrono::Duration::milliseconds(self.now_ms))
            .format("%Y%m%d%H%M")
            .to_string()
    }
}

pub(crate) fn plain(value: impl ToString) -> Value {
    Value::Plain(value.to_string())
}

/// `HH:MM:SS`, or `D+HH:MM:SS` from a day on, as sendmail writes delays.
fn duration(seconds: i64) -> String {
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let hms = format!(
        "{:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    );
    if days > 0 {
        format!("{days}+{hms}")
    } else {
        hms
    }
}

pub(crate) fn relay_text(relay: &Relay) -> String {
    let mut text = String::new();
    crate::line::render_value(&Value::Relay(relay.clone()), &mut text);
    text
}
