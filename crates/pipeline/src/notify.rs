//! What the service tells systemd (`Type=notify`, `WatchdogSec=`), and when:
//!
//! - `READY=1` after the first commit is durable — the spool and the positions agree on disk,
//!   so `systemctl start` returns once the service is really running (a replay of lost
//!   windows, a recovery of the spool, are done by then);
//! - `WATCHDOG=1` from the commit loop, at every turn that commits (or waits for room on a
//!   full disk, which is waiting for a known reason, not being stuck), at most four times per
//!   watchdog period: a loop wedged anywhere stops the pings, and systemd kills and restarts
//!   the service after `WatchdogSec=` — safe, like any crash;
//! - `STATUS=` every few seconds: records per second, open windows, files waiting for the
//!   archive (`systemctl status maillog` shows it);
//! - `STOPPING=1` when a stop signal came.
//!
//! Without `NOTIFY_SOCKET` (not under systemd, `--once`, a test) every call does nothing. A
//! message that cannot be sent is logged once and never stops the pipeline. It never decides
//! anything about the pipeline; it only says what the pipeline did.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// How often `STATUS=` is refreshed.
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// The service's side of systemd's notification protocol.
pub(crate) struct Notifier {
    /// `NOTIFY_SOCKET` is set: systemd (or a test) listens.
    enabled: bool,
    ready: bool,
    /// Pings at least this often (a quarter of `WATCHDOG_USEC`), when the watchdog is on.
    ping_every: Option<Duration>,
    last_ping: Option<Instant>,
    /// When `STATUS=` was last sent, and the records read by then.
    last_status: Option<(Instant, u64)>,
    /// `STOPPING=1` was sent: the status stays what it said.
    stopping: bool,
    failed_once: bool,
}

/// What `STATUS=` says.
pub(crate) struct Status {
    /// Records read so far (both kinds).
    pub records: u64,
    pub windows_open: usize,
    /// Sealed files waiting for the archive.
    pub waiting: usize,
}

impl Notifier {
    /// From this process's environment (`NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`).
    pub fn from_env() -> Self {
        let enabled = std::env::var_os("NOTIFY_SOCKET").is_some();
        let ping_every = sd_notify::watchdog_enabled().map(|period| period / 4);
        if let Some(every) = ping_every.filter(|_| enabled) {
            tracing::info!(
                ping_every = ?every,
                "systemd watchdog on: pinged from the commit loop"
            );
        }
        Notifier {
            enabled,
            ready: false,
            ping_every,
            last_ping: None,
            last_status: None,
            stopping: false,
            failed_once: false,
        }
    }

    /// A commit is durable: `READY=1` the first time, the watchdog, and now and then the
    /// status.
    pub fn committed(&mut self, status: Status) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        let status_due = !self.stopping
            && self
                .last_status
                .is_none_or(|(at, _)| now.duration_since(at) >= STATUS_EVERY);
        let text = status_due.then(|| self.status_text(now, &status));
        let mut states = Vec::new();
        if !self.ready {
            states.push(NotifyState::Ready);
        }
        if let Some(text) = &text {
            states.push(NotifyState::Status(text));
        }
        if self.ping_due(now) {
            states.push(NotifyState::Watchdog);
            self.last_ping = Some(now);
        }
        if states.is_empty() {
            return;
        }
        if self.send(&states) {
            self.ready = true;
            if text.is_some() {
                self.last_status = Some((now, status.records));
            }
        }
    }

    /// The loop turns but cannot commit yet (the spool's disk is full): alive, so the
    /// watchdog is pinged; not ready if it never committed.
    pub fn alive(&mut self) {
        let now = Instant::now();
        if self.enabled && self.ping_due(now) {
            self.last_ping = Some(now);
            self.send(&[
                NotifyState::Watchdog,
                NotifyState::Status(
                    "the spool's disk is full: reading stopped until there is room",
                ),
            ]);
        }
    }

    /// A stop signal came.
    pub fn stopping(&mut self) {
        self.stopping = true;
        if self.enabled {
            self.send(&[
                NotifyState::Stopping,
                NotifyState::Status("stopping: committing, finishing uploads"),
            ]);
        }
    }

    fn ping_due(&self, now: Instant) -> bool {
        self.ping_every.is_some_and(|every| {
            self.last_ping
                .is_none_or(|at| now.duration_since(at) >= every)
        })
    }

    fn status_text(&self, now: Instant, status: &Status) -> String {
        let rate = match self.last_status {
            Some((at, records)) => {
                let seconds = now.duration_since(at).as_secs_f64().max(0.001);
                status.records.saturating_sub(records) as f64 / seconds
            }
            None => 0.0,
        };
        format!(
            "{rate:.0} records/s; {} windows open; {} files waiting for the archive",
            status.windows_open, status.waiting
        )
    }

    /// Sends; a failure is logged once (systemd restarting, a socket gone) and otherwise
    /// ignored: the pipeline goes on.
    fn send(&mut self, states: &[NotifyState<'_>]) -> bool {
        match sd_notify::notify(states) {
            Ok(()) => true,
            Err(e) => {
                if !self.failed_once {
                    tracing::warn!("cannot notify systemd (NOTIFY_SOCKET): {e}");
                    self.failed_once = true;
                }
                false
            }
        }
    }
}
