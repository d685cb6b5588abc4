//! The traffic around the mail: rejected connections and the other programs that log into the
//! same file. None of it makes a record; it is here so that the parser meets it as it does on
//! the central host. Same rules as `crate::activity`: plan lines, never write them.

use rand::RngExt;

use crate::activity::{Plan, plain, relay_text};
use crate::line::{Address, Body, Relay, Value};
use crate::world::random_ip;

impl Plan<'_> {
    /// Spam and abuse turned away: relaying denied, DNSBL hits, silent connections.
    pub(crate) fn rejected(&mut self) {
        let server = self.world.pick_server(self.rng);
        let pid = self.world.new_pid(self.rng, server);
        let qid = self.queue_id(pid);
        let ip = random_ip(self.rng);
        let host = format!(
            "host-{}.dyn.{}",
            ip.replace('.', "-"),
            self.world.domains[self.world.pick_domain(self.rng)].name
        );
        let relay = Relay::HostIp {
            host,
            ip: ip.clone(),
            forged: self.rng.random_bool(0.5),
        };
        let relay_text = relay_text(&relay);
        match self.rng.random_range(0..4) {
            0 | 1 => {
                let (victim, _) = self.world.pick_correspondent(self.rng);
                let (spammer, _) = self.world.pick_correspondent(self.rng);
                self.text(0, server, "sm-mta", pid, format!("{qid}: ruleset=check_rcpt, arg1=<{victim}>, relay={relay_text}, reject=550 5.7.1 <{victim}>... Relaying denied"));
                let from = vec![
                    ("from", Value::Sender(Address::angle(spammer))),
                    ("size", plain(0)),
                    ("class", plain(0)),
                    ("nrcpts", plain(0)),
                    ("proto", plain("ESMTP")),
                    ("daemon", plain("MTA")),
                    ("relay", Value::Relay(relay)),
                ];
                self.record(700, server, "sm-mta", pid, &qid, from);
                self.text(
                    900,
                    server,
                    "sm-mta",
                    pid,
                    format!("{qid}: lost input channel from {relay_text} to MTA after rcpt"),
                );
            }
            2 => {
                let text = format!(
                    "ruleset=check_relay, arg1={}, arg2=127.0.0.4, relay={relay_text}, reject=550 5.7.1 Rejected: {ip} listed at zen.spamhaus.org",
                    match &relay {
                        Relay::HostIp { host, .. } => host.as_str(),
                        _ => "",
                    }
                );
                self.text(0, server, "sm-mta", pid, text);
            }
            _ => {
                self.text(0, server, "sm-mta", pid, format!("{qid}: {relay_text} did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA"));
            }
        }
    }

    /// Lines of the other programs that log to the same facility and file.
    pub(crate) fn other_program(&mut self) {
        let server = self.world.pick_server(self.rng);
        let pid = self.world.new_pid(self.rng, server);
        match self.rng.random_range(0..5) {
            0 => self.text(
                0,
                server,
                "CRON",
                pid,
                "(root) CMD (   cd / && run-parts --report /etc/cron.hourly)".into(),
            ),
            1 => {
                let uptime = self.rng.random_range(1000..9_000_000);
                let text = format!(
                    "[{uptime}.{:06}] TCP: request_sock_TCP: Possible SYN flooding on port 25. Sending cookies.",
                    self.rng.random_range(0..1_000_000)
                );
                self.text(0, server, "kernel", 0, text);
            }
            2 => {
                let (sender, _) = self.world.pick_correspondent(self.rng);
                let id = format!("{:X}", self.rng.random_range(0x1000_0000u64..0xFFFF_FFFF));
                let body = Body::Fields {
                    queue_id: Some(id),
                    fields: vec![
                        ("from", Value::Sender(Address::angle(sender))),
                        ("size", plain(self.size())),
                        ("nrcpt", plain("1 (queue active)")),
                    ],
                };
                self.line(0, server, "postfix/qmgr", pid, body);
            }
            3 => {
                let port = self.rng.random_range(30000..60000);
                self.text(
                    0,
                    server,
                    "postfix/smtpd",
                    pid,
                    format!("connect from localhost[127.0.0.1]:{port}"),
                );
            }
            _ => self.text(
                0,
                server,
                "sm-mta",
                pid,
                "starting daemon (8.17.1): SMTP+queueing@00:10:00".into(),
            ),
        }
    }
}
