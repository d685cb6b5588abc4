//! Broken configs: `maillog check --config FILE` refuses each with the exact message an
//! operator gets — the file, the line (and column), the key, what is wrong, and for an unknown
//! key the known key it most resembles. `maillog run` reads the same way, so it refuses the
//! same files before it touches the spool.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

/// `(config text, the message expected on stderr)`.
const BROKEN: &[(&str, &str)] = &[
    (
        "spoool = \"x\"\n",
        "p.toml:1:1: unknown key `spoool`; did you mean `spool`?",
    ),
    (
        "inputs = [\"a\"]\n\n[upload]\nconcurency = 4\n",
        "p.toml:4:1: unknown key `concurency` in [upload]; did you mean `concurrency`?",
    ),
    (
        "[uplod]\nconcurrency = 4\n",
        "p.toml:1:2: unknown key `uplod`; did you mean `upload`?",
    ),
    (
        "[s3]\nregoin = \"eu-west-1\"\n",
        "p.toml:2:1: unknown key `regoin` in [s3]; did you mean `region`?",
    ),
    (
        "zzzz = 1\n",
        "p.toml:1:1: unknown key `zzzz`; expected one of: inputs, spool, state, archive, \
         key_template, host, time_zone, year, sendmail_programs, fields, start_at, tail, window, \
         bzip2, s3, upload, service, log, metrics, health, top, mirror",
    ),
    (
        "[window]\nlateness_seconds = \"2m\"\n",
        "p.toml:2:20: key `window.lateness_seconds`: invalid type: string \"2m\", expected u32",
    ),
    (
        "inputs = \"a.log\"\n",
        "p.toml:1:10: key `inputs`: invalid type: string \"a.log\", expected a sequence",
    ),
    (
        "[top]\nmax_keys = -1\n",
        "p.toml:2:12: key `top.max_keys`: invalid value: integer `-1`, expected usize",
    ),
    (
        "[mirror]\nsettle_minutes = -5\n",
        "p.toml:2:1: key `mirror.settle_minutes`: -5: expected 0 to 10080",
    ),
    (
        "[upload]\ntags = { team = 1 }\n",
        "p.toml:2:17: key `upload.tags.team`: invalid type: integer `1`, expected a string",
    ),
    (
        "spool = \n",
        "p.toml:1:9: string values must be quoted, expected literal string",
    ),
    (
        "time_zone = \"Mars/Olympus\"\n",
        "p.toml:1:1: key `time_zone`: \"Mars/Olympus\": unknown time zone \"Mars/Olympus\": \
         expected UTC, an offset such as +02:00, or an IANA name such as Europe/Berlin",
    ),
    (
        "archive = \"ftp://x\"\n",
        "p.toml:1:1: key `archive`: archive URL \"ftp://x\": unknown scheme \"ftp\"; expected \
         file:// or s3://",
    ),
    (
        "key_template = \"x/{date}\"\n",
        "p.toml:1:1: key `key_template`: \"x/{date}\" must contain {name} (placeholders: \
         [\"{date}\", \"{hour}\", \"{kind}\", \"{name}\", \"{host}\"])",
    ),
    (
        "key_template = \"logs/{host}/{date}/{name}\"\n",
        "p.toml:1:1: key `key_template`: \"logs/{host}/{date}/{name}\" renders \
         \"logs//2025-12-02/from-2025-12-02-12-00.part-001.json.bz2\" for a sample window: empty \
         segment (two '/' in a row, or a '/' at the end) (`{host}` renders empty: set `host`)",
    ),
    (
        "key_template = \"../{name}\"\n",
        "p.toml:1:1: key `key_template`: \"../{name}\" renders \
         \"../from-2025-12-02-12-00.part-001.json.bz2\" for a sample window: a \"..\" segment",
    ),
    (
        "[upload]\nsse = \"aes\"\n",
        "p.toml:2:7: key `upload.sse`: unknown variant `aes`, expected `AES256` or `aws:kms`",
    ),
    (
        "[upload]\npart_size_mib = 1\n",
        "p.toml:2:1: key `upload.part_size_mib`: S3 parts are at least 5 MiB",
    ),
    (
        "[s3]\nchecksum = \"always\"\n",
        "p.toml:2:12: key `s3.checksum`: unknown variant `always`, expected `when_supported` or \
         `when_required`",
    ),
    (
        "[bzip2]\nlevel = 12\n",
        "p.toml:2:1: key `bzip2.level`: 12: expected 1 to 9",
    ),
    (
        "fields = \"some\"\n",
        "p.toml:1:10: key `fields`: unknown variant `some`, expected `all` or `original`",
    ),
    (
        "start_at = \"middle\"\n",
        "p.toml:1:12: key `start_at`: unknown variant `middle`, expected `beginning` or `end`",
    ),
    (
        "[metrics]\naddress = \"localhost\"\n",
        "p.toml:2:1: key `metrics.address`: \"localhost\": invalid socket address syntax \
         (expected host:port)",
    ),
    (
        "[log]\nformat = \"xml\"\n",
        "p.toml:2:10: key `log.format`: unknown variant `xml`, expected `text` or `json`",
    ),
    (
        "[log]\nlevel = \"loud==\"\n",
        "p.toml:2:1: key `log.level`: \"loud==\": error parsing level filter: expected one of \
         \"off\", \"error\", \"warn\", \"info\", \"debug\", \"trace\", or a number 0-5",
    ),
    (
        "[health]\nupload_failing_seconds = 0\n",
        "p.toml:2:1: key `health.upload_failing_seconds`: 0: expected 1 to 604800",
    ),
    (
        "[service]\nshutdown_seconds = -1.0\n",
        "p.toml:2:1: key `service.shutdown_seconds`: -1: expected 0 to 3600",
    ),
    (
        "[upload]\nretry_max_seconds = 0\n",
        "p.toml:2:1: key `upload.retry_max_seconds`: 0: expected 0.01 to 86400",
    ),
    (
        "[tail]\nwatch = \"inotify\"\n",
        "p.toml:2:9: key `tail.watch`: unknown variant `inotify`, expected `poll` or `events`",
    ),
    (
        "[window]\ncommit_seconds = 0.0\n",
        "p.toml:2:1: key `window.commit_seconds`: 0: expected 0.01 to 3600",
    ),
];

/// `maillog check --config CONFIG`, run in `dir`.
fn check(dir: &Path, config: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_maillog"))
        .args(["check", "--config", config])
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn each_broken_config_gets_its_exact_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut wrong = Vec::new();
    for (text, expected) in BROKEN {
        std::fs::write(dir.path().join("p.toml"), text).unwrap();
        let out = check(dir.path(), "p.toml");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let got = stderr
            .trim_end()
            .strip_prefix("maillog: ")
            .unwrap_or(&stderr);
        // A config that cannot be used exits 2, as a wrong argument does.
        if out.status.code() != Some(2) || got != *expected {
            wrong.push(format!(
                "{text:?}\n  expected: {expected} (exit 2)\n  got:      {got} ({})",
                out.status
            ));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

#[test]
fn the_shipped_config_and_an_empty_one_are_valid() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../pipeline.toml");
    let out = check(Path::new("."), root);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("config OK\n"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.toml"), "").unwrap();
    let out = check(dir.path(), "p.toml");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn run_refuses_what_check_refuses_before_it_writes_anything() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mail.log"), "").unwrap();
    let host_unset = "inputs = [\"mail.log\"]\nkey_template = \"logs/{host}/{date}/{name}\"\n";
    let cases: &[(&str, &[&str], &str)] = &[
        // Issue 19's key that could never be put: refused at the start, not retried forever.
        (host_unset, &[], "key `key_template`"),
        ("", &[], "nothing to follow"),
        (
            "inputs = [\"mail.log\"]\n",
            &["--archive", "ftp://x/y"],
            "--archive: ",
        ),
    ];
    for (config, flags, expected) in cases {
        std::fs::write(dir.path().join("p.toml"), config).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_maillog"))
            .args(["run", "--once", "--config", "p.toml"])
            .args(*flags)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{config:?} {flags:?}: {stderr}");
        assert!(stderr.contains(expected), "{config:?}: {stderr}");
        for made in ["spool", "archive", "state"] {
            assert!(!dir.path().join(made).exists(), "{config:?} made {made}");
        }
    }
}
