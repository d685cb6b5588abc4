//! The simulated mail cluster: its servers, users, correspondents and remote mail hosts.
//!
//! This module owns who exists and how popular each one is (Zipf-like: a few senders,
//! recipients, servers and domains carry most of the traffic). It never decides what happens
//! when (that is `crate::activity`) and never formats a line (`crate::line`).

use rand::{Rng, RngExt};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Zipf};

/// The cluster's own mail domain.
pub const LOCAL_DOMAIN: &str = "example.net";

const SYLLABLES: &[&str] = &[
    "al", "an", "ar", "ba", "be", "bo", "ca", "ce", "da", "de", "di", "do", "el", "en", "er", "fa",
    "fi", "ga", "ha", "he", "in", "ja", "ka", "ki", "la", "le", "li", "lo", "ma", "me", "mi", "mo",
    "na", "ne", "ni", "no", "or", "pa", "pe", "ra", "re", "ri", "ro", "sa", "se", "si", "so", "ta",
    "te", "ti", "to", "va", "ve", "vi", "za", "zo",
];

const TLDS: &[&str] = &[
    "com", "net", "org", "de", "fr", "co.uk", "io", "nl", "it", "com.br",
];

/// A mail server of the cluster, as it appears in the aggregated log.
#[derive(Debug, Clone)]
pub struct Server {
    /// Its host name in the syslog header (`mail03`).
    pub name: String,
    /// The next process id it hands out.
    pub next_pid: u32,
    /// Where its process ids wrap (32768, or 4194304 on hosts with a raised `pid_max`).
    pub pid_max: u32,
    /// Its clock's offset from true time, in seconds (servers are never quite in sync).
    pub skew: i64,
}

/// A remote domain with its mail exchanger.
#[derive(Debug, Clone)]
pub struct Domain {
    /// `example.org`
    pub name: String,
    /// The MX host, with sendmail's trailing dot for canonical names.
    pub mx: String,
    /// The MX address as sendmail logs it in brackets.
    pub mx_ip: String,
}

/// Everyone and everything in the simulated cluster.
#[derive(Debug)]
pub struct World {
    /// The cluster's servers.
    pub servers: Vec<Server>,
    /// Remote domains.
    pub domains: Vec<Domain>,
    /// Local users (`name@example.net`).
    pub users: Vec<String>,
    /// Remote correspondents: (local part, domain index).
    pub correspondents: Vec<(String, usize)>,
    server_pick: Zipf<f64>,
    domain_pick: Zipf<f64>,
    user_pick: Zipf<f64>,
    correspondent_pick: Zipf<f64>,
}

impl World {
    /// A world of `servers` servers, built from `rng`.
    pub fn new(rng: &mut ChaCha8Rng, servers: usize) -> Self {
        let servers = servers.max(1);
        let servers: Vec<Server> = (0..servers)
            .map(|i| {
                let pid_max = if i % 4 == 3 { 4_194_304 } else { 32_768 };
                Server {
                    name: format!("mail{:02}", i + 1),
                    next_pid: rng.random_range(300..pid_max),
                    pid_max,
                    skew: rng.random_range(-2..=2),
                }
            })
            .collect();
        let domains: Vec<Domain> = (0..400).map(|i| domain(rng, i)).collect();
        let users: Vec<String> = (0..2000).map(|_| local_part(rng)).collect();
        let correspondents = (0..5000)
            .map(|_| (local_part(rng), rng.random_range(0..domains.len())))
            .collect();
        World {
            server_pick: zipf(servers.len(), 0.7),
            domain_pick: zipf(domains.len(), 1.1),
            user_pick: zipf(users.len(), 1.0),
            correspondent_pick: zipf(5000, 1.05),
            servers,
            domains,
            users,
            correspondents,
        }
    }

    /// A server, the popular ones more often.
    pub fn pick_server(&self, rng: &mut ChaCha8Rng) -> usize {
        rank(&self.server_pick, rng)
    }

    /// A local user's address.
    pub fn pick_user(&self, rng: &mut ChaCha8Rng) -> String {
        format!("{}@{LOCAL_DOMAIN}", self.users[rank(&self.user_pick, rng)])
    }

    /// A remote correspondent: their address and their domain's index.
    pub fn pick_correspondent(&self, rng: &mut ChaCha8Rng) -> (String, usize) {
        let (local, domain) = &self.correspondents[rank(&self.correspondent_pick, rng)];
        (format!("{local}@{}", self.domains[*domain].name), *domain)
    }

    /// A remote domain, the popular ones more often.
    pub fn pick_domain(&self, rng: &mut ChaCha8Rng) -> usize {
        rank(&self.domain_pick, rng)
    }

    /// A new process id on `server`.
    pub fn new_pid(&mut self, rng: &mut ChaCha8Rng, server: usize) -> u32 {
        let s = &mut self.servers[server];
        s.next_pid += rng.random_range(1..6);
        if s.next_pid >= s.pid_max {
            s.next_pid = 300 + s.next_pid % 100;
        }
        s.next_pid
    }
}

/// A public-looking IPv4 address.
pub fn random_ip(rng: &mut impl Rng) -> String {
    format!(
        "{}.{}.{}.{}",
        rng.random_range(11..223),
        rng.random_range(0..256),
        rng.random_range(0..256),
        rng.random_range(1..255)
    )
}

fn zipf(n: usize, exponent: f64) -> Zipf<f64> {
    // n ≥ 1 and a positive exponent are the only conditions Zipf::new checks.
    Zipf::new(n as f64, exponent).expect("n >= 1 and exponent > 0")
}

/// A 0-based rank drawn from a Zipf distribution over 1..=n.
fn rank(zipf: &Zipf<f64>, rng: &mut ChaCha8Rng) -> usize {
    zipf.sample(rng) as usize - 1
}

fn word(rng: &mut impl Rng, syllables: usize) -> String {
    (0..syllables)
        .map(|_| SYLLABLES[rng.random_range(0..SYLLABLES.len())])
        .collect()
}

fn local_part(rng: &mut ChaCha8Rng) -> String {
    match rng.random_range(0..10) {
        0..=5 => format!("{}.{}", word(rng, 2), word(rng, 3)),
        6..=7 => format!("{}{}", word(rng, 3), rng.random_range(1..100)),
        _ => word(rng, 2),
    }
}

fn domain(rng: &mut ChaCha8Rng, index: usize) -> Domain {
    let name = format!(
        "{}.{}",
        word(rng, 2 + index % 3),
        TLDS[rng.random_range(0..TLDS.len())]
    );
    let ip = random_ip(rng);
    let (mx, mx_ip) = match index % 23 {
        // A few remote exchangers speak IPv6.
        7 => (
            format!("mx.{name}."),
            format!("IPv6:2001:db8:{:x}::25", index),
        ),
        _ => (format!("mx{}.{name}.", index % 3 + 1), ip),
    };
    Domain { name, mx, mx_ip }
}
