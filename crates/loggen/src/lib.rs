//! A deterministic generator of the aggregated syslog file of a sendmail cluster.
//!
//! The tests, the benchmarks and `sample-logs/` need logs that look like the central host's file
//! — ten servers interleaved, popular senders and recipients, deliveries grouped per domain,
//! deferrals retried hours later, bounces, local submissions, rejects, TLS lines, other programs,
//! time running across midnight and a year end — at any size, and the same bytes for the same
//! seed. This crate owns that: [`Generator`] yields [`LogLine`]s in file order; each renders its
//! text and the records the contract says the text makes, so tests can check a parser against
//! what was meant.
//!
//! It never reads the clock or the environment: a [`Config`] fixes everything.

mod activity;
pub mod line;
mod noise;
mod world;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use chrono::{Duration, NaiveDate, NaiveDateTime};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use line::{Address, Body, ExpectedRecord, HeaderStyle, LogLine, Relay, Value};

use activity::{LINES_PER_ACTIVITY, Plan, Planned};
use world::World;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The seed: the same config gives the same lines.
    pub seed: u64,
    /// How many lines.
    pub lines: u64,
    /// Wall-clock time (UTC) of the first line.
    pub start: NaiveDateTime,
    /// How many mail servers log into the file.
    pub servers: usize,
    /// Mean lines per second over the file.
    pub rate: f64,
    /// How headers are written.
    pub style: HeaderStyle,
}

impl Default for Config {
    /// The `sample-logs/` setup: 10 servers, starting 45 minutes before a new year.
    fn default() -> Self {
        Config {
            seed: 1,
            lines: 10_000,
            start: NaiveDate::from_ymd_opt(2025, 12, 31)
                .and_then(|d| d.and_hms_opt(23, 15, 0))
                .expect("a valid date"),
            servers: 10,
            rate: 2.0,
            style: HeaderStyle::Bsd,
        }
    }
}

/// Yields the lines of a generated log, in file order.
pub struct Generator {
    config: Config,
    rng: ChaCha8Rng,
    world: World,
    /// Lines planned but not yet due, earliest first (ties in planning order).
    queue: BinaryHeap<Reverse<Queued>>,
    clock_ms: i64,
    order: u64,
    serial: u64,
    emitted: u64,
    scratch: Vec<Planned>,
}

impl Generator {
    /// A generator for `config`.
    pub fn new(config: Config) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let world = World::new(&mut rng, config.servers);
        Generator {
            config,
            rng,
            world,
            queue: BinaryHeap::new(),
            clock_ms: 0,
            order: 0,
            serial: 0,
            emitted: 0,
            scratch: Vec::new(),
        }
    }

    /// The config this generator runs.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Plans one more activity at the current clock and moves the clock on.
    fn plan_activity(&mut self) {
        let mut plan = Plan {
            rng: &mut self.rng,
            world: &mut self.world,
            now_ms: self.clock_ms,
            start: self.config.start,
            out: &mut self.scratch,
            serial: &mut self.serial,
        };
        plan.activity();
        for planned in self.scratch.drain(..) {
            let order = self.order;
            self.queue.push(Reverse(Queued { order, planned }));
            self.order += 1;
        }
        // Exponential gaps between activities, paced for the wanted mean line rate.
        let mean_gap_ms = 1000.0 * LINES_PER_ACTIVITY / self.config.rate.max(1e-6);
        let uniform: f64 = self.rng.random_range(f64::EPSILON..1.0);
        self.clock_ms += (-uniform.ln() * mean_gap_ms) as i64;
    }
}

impl Iterator for Generator {
    type Item = LogLine;

    fn next(&mut self) -> Option<LogLine> {
        if self.emitted >= self.config.lines {
            return None;
        }
        loop {
            if self
                .queue
                .peek()
                .is_some_and(|next| next.0.planned.at_ms <= self.clock_ms)
            {
                let Reverse(Queued { planned, .. }) = self.queue.pop()?;
                self.emitted += 1;
                let server = &self.world.servers[planned.server];
                let at = self.config.start
                    + Duration::milliseconds(planned.at_ms)
                    + Duration::seconds(server.skew);
                return Some(LogLine {
                    at,
                    host: server.name.clone(),
                    program: planned.program,
                    pid: planned.pid,
                    body: planned.body,
                });
            }
            self.plan_activity();
        }
    }
}

/// A planned line in the queue, ordered by due time, then by planning order.
struct Queued {
    order: u64,
    planned: Planned,
}

impl Queued {
    fn key(&self) -> (i64, u64) {
        (self.planned.at_ms, self.order)
    }
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Queued {}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

/// Writes `config`'s log as text (one `\n`-terminated line each) into `out`.
pub fn write_log(config: &Config, out: &mut impl std::io::Write) -> std::io::Result<()> {
    let style = config.style;
    let mut text = String::with_capacity(1 << 16);
    for line in Generator::new(config.clone()) {
        line.render_into(style, &mut text);
        text.push('\n');
        if text.len() >= 1 << 15 {
            out.write_all(text.as_bytes())?;
            text.clear();
        }
    }
    out.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(config: &Config) -> String {
        let mut out = Vec::new();
        write_log(config, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let config = Config {
            lines: 2000,
            ..Config::default()
        };
        assert_eq!(log(&config), log(&config));
        assert_ne!(
            log(&config),
            log(&Config {
                seed: 2,
                ..config.clone()
            })
        );
        assert_eq!(log(&config).lines().count(), 2000);
    }

    #[test]
    fn time_runs_forward_across_midnight_and_the_year_end() {
        let lines: Vec<LogLine> = Generator::new(Config::default()).collect();
        let first = lines.first().unwrap().at;
        let last = lines.last().unwrap().at;
        assert_eq!(first.format("%Y").to_string(), "2025");
        assert_eq!(last.format("%Y").to_string(), "2026");
        // Ordered by true time; only the servers' clock skew (±2 s) shows as small steps back.
        for pair in lines.windows(2) {
            assert!(pair[1].at >= pair[0].at - Duration::seconds(4), "{pair:?}");
        }
    }

    #[test]
    fn the_mix_has_every_kind_of_line() {
        let text = log(&Config {
            lines: 20_000,
            ..Config::default()
        });
        for needle in [
            " from=<>,",
            "from=root,",
            "relay=root@localhost",
            "stat=Deferred",
            "dsn=5.1.1",
            "reject=550",
            "STARTTLS=server",
            "STARTTLS=client",
            "postfix/qmgr",
            "CRON[",
            "kernel[0]",
            ">,<",
            "(may be forged)",
            "[IPv6:",
            "delay=1+",
            ", jr\"@",
            ": DSN: ",
            "relay=[127.0.0.1] [127.0.0.1]",
            "Jan  1 00:",
        ] {
            assert!(text.contains(needle), "no {needle:?} in the generated log");
        }
    }
}
