//! `contrib/` checked by the real tools an admin runs on it: promtool on the alerting rules and
//! their unit tests; the Grafana dashboard and the rules against the metrics a real
//! `maillog run` exports (scraped over HTTP on loopback); the syslog-ng snippet inside Debian's
//! own `syslog-ng.conf`; the logrotate file alone and beside Debian's; systemd-analyze on the
//! units; and promtool parsing every dashboard query. One test per check, each a real run of
//! the real tool.
//!
//! The metrics are those of one real run (families with labels appear once they have a label
//! set: the run waits for each), counted against the registrations in the pipeline's
//! `observe.rs` so that none goes unchecked.
//!
//! A missing tool makes a test say SKIPPED (a failure under CI: `maillog_testkit::tools`).
//! It never installs anything and never changes the machine's own configuration: whatever it
//! runs a tool on is a copy in a temp dir, or the shipped file read as it is.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{free_port, generated_log, get, metric};
use maillog_testkit::tools::have_all;

/// A file of the repository's `contrib/`.
fn contrib(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../contrib")
        .join(path)
}

/// Runs `command`: whether it succeeded, and its stdout then stderr.
fn run(command: &mut Command) -> (bool, String) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The names in a PromQL expression (or any text) that are maillog's: `maillog_…` words.
fn maillog_names(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|word| word.starts_with("maillog_"))
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------------------
// The metrics the service really exports.

/// `/metrics` of a real `maillog run` (loopback port, a temp log, spool and `file://`
/// archive), once it has archived something, scraped once for the whole test binary; the
/// service is then stopped with SIGTERM and must exit 0.
fn exposition() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(scrape_a_running_service)
}

fn scrape_a_running_service() -> String {
    let dir = tempfile::tempdir().unwrap();
    generated_log(&dir.path().join("mail.log"), 500);
    let port = free_port();
    let config = dir.path().join("pipeline.toml");
    fs::write(
        &config,
        format!(
            "inputs = [\"mail.log\"]\nspool = \"spool\"\narchive = \"file://archive\"\n\
             [window]\nlateness_seconds = 0\ncommit_seconds = 0.2\n[bzip2]\nlevel = 1\n\
             [metrics]\naddress = \"127.0.0.1:{port}\"\n"
        ),
    )
    .unwrap();
    let stderr = dir.path().join("stderr");
    let mut service = Command::new(env!("CARGO_BIN_EXE_maillog"))
        .args(["run", "--config"])
        .arg(&config)
        .stderr(fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let log = || fs::read_to_string(&stderr).unwrap_or_default();
    // A family with labels is exported only once it has a label set: wait for each. The log
    // is of the past, so every window is due at once and archived (the upload histogram).
    let labelled = [
        "maillog_lines_read_total",
        "maillog_records_total",
        "maillog_non_records_total",
        "maillog_upload_duration_seconds_count",
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    let text = loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let (status, text) = get(port, "/metrics");
            assert_eq!(status, 200, "{text}");
            if labelled.iter().all(|name| metric(&text, name) > 0) {
                break text;
            }
        }
        assert!(Instant::now() < deadline, "nothing archived: {}", log());
        std::thread::sleep(Duration::from_millis(100));
    };
    let killed = Command::new("kill")
        .args(["-TERM", &service.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = service.wait().unwrap();
    assert!(status.success(), "maillog run: {status}: {}", log());
    text
}

/// A metric family of the exposition: its name and type (`# TYPE NAME TYPE`).
struct Family {
    name: String,
    kind: String,
}

impl Family {
    /// The series name a query of this family uses: `NAME_total` for a counter, `NAME_bucket`
    /// for a histogram (quantiles), `NAME` otherwise.
    fn queried(&self) -> String {
        match self.kind.as_str() {
            "counter" => format!("{}_total", self.name),
            "histogram" => format!("{}_bucket", self.name),
            _ => self.name.clone(),
        }
    }

    /// Every series name it can have.
    fn series(&self) -> Vec<String> {
        let suffixes: &[&str] = match self.kind.as_str() {
            "counter" => &["_total", "_created"],
            "histogram" => &["_bucket", "_sum", "_count", "_created"],
            _ => &[""],
        };
        suffixes
            .iter()
            .map(|s| format!("{}{s}", self.name))
            .collect()
    }
}

/// The families the running service exports.
fn exported_families() -> Vec<Family> {
    let families: Vec<Family> = exposition()
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .map(|rest| {
            let (name, kind) = rest.split_once(' ').unwrap();
            Family {
                name: name.to_owned(),
                kind: kind.trim().to_owned(),
            }
        })
        .collect();
    // All of them: as many as the service registers (a family missing from this scrape
    // would go unchecked). The registrations are all in the pipeline's observe.rs.
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/../pipeline/src/observe.rs");
    let registered = fs::read_to_string(source)
        .unwrap()
        .matches("registry.register(")
        .count();
    assert!(
        registered >= 20
            && families.len() == registered
            && families.iter().all(|f| f.name.starts_with("maillog_")),
        "{} families scraped, {registered} registered in {source}:\n{}",
        families.len(),
        exposition()
    );
    families
}

/// Every series name the exposition can hold.
fn exported_series() -> BTreeSet<String> {
    exported_families()
        .iter()
        .flat_map(Family::series)
        .collect()
}

// ---------------------------------------------------------------------------------------
// Prometheus: promtool, and the names in the rules.

#[test]
fn promtool_accepts_the_alerting_rules() {
    if !have_all(&["promtool"]) {
        return;
    }
    let rules = contrib("prometheus/maillog-alerts.yml");
    let (ok, out) = run(Command::new("promtool")
        .arg("check")
        .arg("rules")
        .arg(&rules));
    assert!(ok && out.contains("SUCCESS"), "promtool check rules: {out}");
}

#[test]
fn the_alerts_unit_tests_pass_and_cover_every_alert() {
    if !have_all(&["promtool"]) {
        return;
    }
    let tests = contrib("prometheus/maillog-alerts.test.yml");
    let (ok, out) = run(Command::new("promtool")
        .arg("test")
        .arg("rules")
        .arg(&tests));
    assert!(ok && out.contains("SUCCESS"), "promtool test rules: {out}");
    // Every alert is tested (the file itself makes each one fire for some series and not for
    // others: its expected lists are exact).
    let rules = fs::read_to_string(contrib("prometheus/maillog-alerts.yml")).unwrap();
    let tests = fs::read_to_string(tests).unwrap();
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert!(alerts.len() >= 7, "{alerts:?}");
    for alert in alerts {
        assert!(
            tests.contains(&format!("alertname: {alert}\n")),
            "{alert} has no test in maillog-alerts.test.yml"
        );
    }
}

#[test]
fn every_metric_the_alerts_name_is_exported() {
    let rules = fs::read_to_string(contrib("prometheus/maillog-alerts.yml")).unwrap();
    let tests = fs::read_to_string(contrib("prometheus/maillog-alerts.test.yml")).unwrap();
    // The rules' expressions (one line each: a block scalar would hide its names here) and
    // the series the unit tests feed them.
    let exprs: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr:"))
        .collect();
    assert!(
        exprs.iter().all(|e| !e.trim().starts_with(['>', '|'])),
        "write each expr: on one line: {exprs:?}"
    );
    let mut named = maillog_names(&exprs.join("\n"));
    for line in tests.lines() {
        if let Some(series) = line.trim().strip_prefix("- series:") {
            named.extend(maillog_names(series));
        }
    }
    assert!(named.len() >= 8, "{named:?}");
    let exported = exported_series();
    let unknown: Vec<_> = named.difference(&exported).collect();
    assert!(
        unknown.is_empty(),
        "contrib/prometheus names metrics the service does not export: {unknown:?}\n\
         exported: {exported:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Grafana.

/// Every query of the dashboard (panels, rows' panels, templating).
fn dashboard_queries(dashboard: &serde_json::Value) -> Vec<String> {
    fn walk(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("expr" | "definition", serde_json::Value::String(q)) => {
                            out.push(q.clone())
                        }
                        _ => walk(value, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    walk(&dashboard["templating"], &mut out);
    out
}

#[test]
fn the_dashboard_shows_every_exported_metric_and_only_those() {
    let text = fs::read_to_string(contrib("grafana/maillog.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    // Importable: a datasource variable the panels use, no fixed data source.
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    assert!(
        variables
            .iter()
            .any(|v| v["type"] == "datasource" && v["query"] == "prometheus"),
        "no Prometheus datasource variable"
    );
    assert!(text.contains("\"uid\": \"${datasource}\""));
    let queries = dashboard_queries(&dashboard);
    let queried = maillog_names(&queries.join("\n"));
    // Every family, in the form a query uses (a rate of NAME_total, quantiles of NAME_bucket).
    let missing: Vec<String> = exported_families()
        .iter()
        .map(Family::queried)
        .filter(|name| !queried.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "contrib/grafana/maillog.json has no panel querying {missing:?}"
    );
    let exported = exported_series();
    let unknown: Vec<_> = queried.difference(&exported).collect();
    assert!(
        unknown.is_empty(),
        "contrib/grafana/maillog.json queries metrics the service does not export: {unknown:?}"
    );
}

#[test]
fn the_dashboards_queries_are_valid_promql() {
    if !have_all(&["promtool"]) {
        return;
    }
    // No Grafana here: promtool parses each panel query as a recording rule, Grafana's
    // variables replaced by what they expand to.
    let text = fs::read_to_string(contrib("grafana/maillog.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    let queries = dashboard_queries(&dashboard);
    for (i, query) in queries
        .iter()
        .filter(|q| !q.starts_with("label_values("))
        .enumerate()
    {
        let expr = query
            .replace("$__rate_interval", "5m")
            .replace("$instance", ".*");
        assert!(!expr.contains('$'), "a variable left in {expr}");
        // A JSON string is a YAML scalar.
        let expr = serde_json::Value::String(expr);
        rules.push_str(&format!(
            "      - record: dashboard:q{i}\n        expr: {expr}\n"
        ));
    }
    assert!(rules.matches("record:").count() >= 20, "{rules}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboard-queries.yml");
    fs::write(&file, &rules).unwrap();
    let (ok, out) = run(Command::new("promtool")
        .arg("check")
        .arg("rules")
        .arg(&file));
    assert!(ok && out.contains("SUCCESS"), "{out}\n{rules}");
}

// ---------------------------------------------------------------------------------------
// syslog-ng, logrotate, systemd.

#[test]
fn syslog_ng_accepts_the_snippet_inside_debians_config() {
    let debian = Path::new("/etc/syslog-ng/syslog-ng.conf");
    if !have_all(&["syslog-ng"]) {
        return;
    }
    assert!(
        debian.exists(),
        "{} missing: syslog-ng-core is installed without its config",
        debian.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let conf_d = dir.path().join("conf.d");
    fs::create_dir(&conf_d).unwrap();
    fs::copy(
        contrib("syslog-ng/maillog.conf"),
        conf_d.join("maillog.conf"),
    )
    .unwrap();
    // Debian's config, its conf.d include pointed at ours, and what contrib/README.md tells
    // the admin to do: comment out its own line writing /var/log/mail.log.
    let original = fs::read_to_string(debian).unwrap();
    let include = "@include \"/etc/syslog-ng/conf.d/*.conf\"";
    let mail_line = "log { source(s_src); filter(f_mail); destination(d_mail); };";
    assert_eq!(original.matches(include).count(), 1, "{original}");
    assert_eq!(
        original.lines().filter(|l| l.trim() == mail_line).count(),
        1,
        "Debian's syslog-ng.conf changed: {original}"
    );
    let edited: String = original
        .lines()
        .map(|line| match line.trim() {
            l if l == mail_line => format!("#{line}\n"),
            l if l == include => format!("@include \"{}/*.conf\"\n", conf_d.display()),
            _ => format!("{line}\n"),
        })
        .collect();
    let config = dir.path().join("syslog-ng.conf");
    fs::write(&config, edited).unwrap();
    let syntax = |extra: &[&str]| {
        run(Command::new("syslog-ng")
            .arg("--syntax-only")
            .arg(format!("--cfgfile={}", config.display()))
            .args(extra))
    };
    // --syntax-only parses (syntax, unknown options, a name defined twice) but does not
    // initialise: a reference to an undefined object or two destinations on one file (what
    // commenting out Debian's line avoids) pass it; they only fail at a real start, which
    // would bind ports 514 and 601 and /dev/log here.
    let (ok, out) = syntax(&[]);
    assert!(
        ok && out.trim().is_empty(),
        "syslog-ng --syntax-only: {out}"
    );
    // And the snippet was really part of it.
    let expanded = dir.path().join("expanded.conf");
    let (ok, out) = syntax(&[&format!("--preprocess-into={}", expanded.display())]);
    assert!(ok, "{out}");
    let expanded = fs::read_to_string(expanded).unwrap();
    assert!(
        expanded.contains("destination d_maillog_mail"),
        "the snippet was not included: {expanded}"
    );
}

/// `logrotate -d` on `config` with a state file of its own: its output, after checking that
/// it printed no error and no warning but the one debug mode always prints.
fn logrotate_debug(config: &Path, state: &Path) -> String {
    let (ok, out) = run(Command::new("logrotate")
        .arg("-d")
        .arg("-s")
        .arg(state)
        .arg(config));
    let complaints: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("error") || l.starts_with("warning"))
        // About the mode, not the config: "logrotate in debug mode does nothing except
        // printing debug messages!".
        .filter(|l| !l.contains("debug mode does nothing"))
        .collect();
    assert!(ok && complaints.is_empty(), "logrotate -d: {out}");
    out
}

#[test]
fn logrotate_accepts_the_mail_file() {
    if !have_all(&["logrotate"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = logrotate_debug(&contrib("logrotate/mail"), &dir.path().join("state"));
    assert!(out.contains("rotating pattern: /var/log/mail.log"), "{out}");
}

#[test]
fn logrotate_accepts_it_beside_debians_file_once_mail_log_is_taken_out() {
    let debian = Path::new("/etc/logrotate.d/syslog-ng");
    if !have_all(&["logrotate", "syslog-ng"]) {
        return;
    }
    assert!(debian.exists(), "{} missing", debian.display());
    // /etc/logrotate.d as the README leaves it: ours, and Debian's without mail.log (named
    // twice, logrotate would skip Debian's whole file: syslog, auth.log, …).
    let dir = tempfile::tempdir().unwrap();
    let logrotate_d = dir.path().join("logrotate.d");
    fs::create_dir(&logrotate_d).unwrap();
    fs::copy(contrib("logrotate/mail"), logrotate_d.join("mail")).unwrap();
    let original = fs::read_to_string(debian).unwrap();
    assert_eq!(
        original
            .lines()
            .filter(|l| l.trim() == "/var/log/mail.log")
            .count(),
        1,
        "Debian's logrotate file changed: {original}"
    );
    let edited: String = original
        .lines()
        .filter(|l| l.trim() != "/var/log/mail.log")
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(logrotate_d.join("syslog-ng"), edited).unwrap();
    let out = logrotate_debug(&logrotate_d, &dir.path().join("state"));
    assert!(out.contains("considering log /var/log/syslog"), "{out}");
}

#[test]
fn systemd_analyze_verifies_the_units() {
    if !have_all(&["systemd-analyze"]) {
        return;
    }
    // Copies of the units side by side (the timer needs its service). Their ExecStart= is
    // the Debian package's /usr/bin/maillog, which need not exist here and which the verifier
    // requires to be an executable: the copies run the binary just built instead. Nothing
    // else in them changes.
    let dir = tempfile::tempdir().unwrap();
    let built = Path::new(env!("CARGO_BIN_EXE_maillog"))
        .canonicalize()
        .unwrap();
    let units = [
        "maillog.service",
        "maillog-once.service",
        "maillog-once.timer",
    ];
    for unit in units {
        let text = fs::read_to_string(contrib(&format!("systemd/{unit}"))).unwrap();
        let exec = "ExecStart=/usr/bin/maillog ";
        let expected = usize::from(unit.ends_with(".service"));
        assert_eq!(text.matches(exec).count(), expected, "{unit}: {text}");
        let text = text.replace(exec, &format!("ExecStart={} ", built.display()));
        fs::write(dir.path().join(unit), text).unwrap();
    }
    for unit in units {
        // --man=no: the unit's Documentation=man:maillog(1) pages come with the installed
        // package; whether they are installed on this machine says nothing of the unit.
        // Nothing else is left out: this machine (no systemd as PID 1) prints nothing more
        // for a sound unit, and a wrong or unknown setting is only a warning with exit 0, so
        // any output fails.
        let (ok, out) = run(Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(dir.path().join(unit))
            .current_dir(dir.path())
            .stdin(Stdio::null()));
        assert!(
            ok && out.trim().is_empty(),
            "systemd-analyze verify {unit}:\n{out}"
        );
    }
}
