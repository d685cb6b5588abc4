//! Fault points for the crash tests: named places where a test can have the process stop and
//! be killed. Nothing here runs unless `MAILLOG_CRASH_AT` names the point.

/// Fault injection for the crash test: with `MAILLOG_CRASH_AT=after-seal|after-archive|after-release`
/// the process stops there, the first time it gets there, and says so: the test kills it.
pub fn crash_point(name: &str) {
    if std::env::var_os("MAILLOG_CRASH_AT").is_some_and(|v| v == name) {
        eprintln!("maillog: MAILLOG_CRASH_AT={name}: stopped here for a SIGKILL");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}
