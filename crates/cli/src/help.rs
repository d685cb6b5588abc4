//! The prose of `maillog`'s long help and man pages that is not a flag's own doc comment: each
//! subcommand's examples, the exit status, the config lookup order and the environment.
//!
//! It owns only these texts, kept once here so that `--help` (via `after_long_help` on the
//! `Command` variants in `main.rs`) and the man pages of [`crate::cmd::docs`] say the same
//! thing. It never parses arguments, reads a config or decides an exit code: the texts describe
//! what the commands do, they do not make them do it.

/// One example of a command line: what to type, and what it does.
pub struct Example {
    /// The command line, as a shell would take it (quotes included; a `|` or `>` may follow).
    pub command: &'static str,
    /// What it does, in one sentence.
    pub what: &'static str,
}

/// Examples of `maillog` as a whole (the top-level page).
pub const MAILLOG_EXAMPLES: &[Example] = &[
    Example {
        command: "maillog check",
        what: "Show the settings `run` would take (from the config found as above), and exit.",
    },
    Example {
        command: "maillog run --once",
        what: "Archive what is due from the configured inputs and exit (the job of a timer).",
    },
    Example {
        command: "maillog top --by src_domain",
        what: "The ten sender domains with the most messages in the configured archive.",
    },
];

/// Examples of `maillog run`.
pub const RUN_EXAMPLES: &[Example] = &[
    Example {
        command: "maillog run",
        what: "Follow the configured inputs as the service: batch, archive, keep going until SIGTERM.",
    },
    Example {
        command: "maillog run --once",
        what: "Read every input to its end, archive the windows that are due, and exit (a job every few minutes).",
    },
    Example {
        command: "maillog run --once=all --input '/var/log/mail.log*'",
        what: "Backfill: read the log and all its rotations (the quotes keep the glob from the shell), seal every window.",
    },
    Example {
        command: "maillog run --config /etc/maillog/pipeline.toml --archive s3://mail-archive/mail_logs --once",
        what: "Archive into S3 instead of the config's archive (credentials from the AWS chain).",
    },
    Example {
        command: "MAILLOG_LOG=debug maillog run --once --spool /tmp/maillog-spool --archive file:///tmp/maillog-archive",
        what: "A trial run with debug logs, leaving the real spool and archive alone.",
    },
];

/// Examples of `maillog check`.
pub const CHECK_EXAMPLES: &[Example] = &[
    Example {
        command: "maillog check",
        what: "Read and check the config that `run` would use, print the settings, run nothing.",
    },
    Example {
        command: "maillog check --config /etc/maillog/pipeline.toml",
        what: "Check a given config file (exit 2 when a key is unknown or a value unusable).",
    },
    Example {
        command: "maillog check --probe-archive",
        what: "Also put, find, read back and delete a small object in the configured archive.",
    },
    Example {
        command: "maillog check --archive s3://mail-archive/mail_logs --probe-archive",
        what: "Probe an S3 bucket before pointing the service at it (also tells whether it honours If-None-Match).",
    },
];

/// Examples of `maillog parse`.
pub const PARSE_EXAMPLES: &[Example] = &[
    Example {
        command: "maillog parse /var/log/mail.log.1 | jq -r 'select(.kind == \"to\") | .stat'",
        what: "The delivery status of every recipient in yesterday's log.",
    },
    Example {
        command: "maillog parse --kind from --original-fields /var/log/mail.log > from.ndjson",
        what: "Only the `from` records, with only the original pipeline's fields.",
    },
    Example {
        command: "maillog parse /var/log/mail.log.2.gz /var/log/mail.log.3.bz2 > old.ndjson",
        what: "Compressed rotations, gzip or bzip2 (told from their bytes), read whole.",
    },
    Example {
        command: "zcat /var/log/mail.log.2.gz | maillog parse --year 2025 --tz Europe/Paris -",
        what: "Parse stdin (plain, gzip or bzip2), stamps read as Paris time in 2025.",
    },
    Example {
        command: "maillog parse --config /etc/maillog/pipeline.toml --tz UTC /var/log/mail.log",
        what: "The config's year and sendmail programs, but stamps read as UTC.",
    },
    Example {
        command: "maillog parse --sendmail-program sm-mta-out --threads 2 /var/log/mail.log",
        what: "Also take the lines of a second sendmail instance, on two threads.",
    },
];

/// Examples of `maillog top`.
pub const TOP_EXAMPLES: &[Example] = &[
    Example {
        command: "maillog top --by dest",
        what: "The ten recipients with the most deliveries in the configured archive.",
    },
    Example {
        command: "maillog top --by src --metric bytes -n 20 --day 2025-12-31",
        what: "The twenty senders that sent the most bytes on 31 December 2025 (in the configured time zone).",
    },
    Example {
        command: "maillog top --by dest_domain --where status=Deferred --since 2h",
        what: "Who deferred our mail in the last two hours.",
    },
    Example {
        command: "maillog top --by dest --since 2025-12-01T00:00 s3://mail-archive/mail_logs",
        what: "Recipients since 1 December, straight from the S3 archive.",
    },
    Example {
        command: "maillog top --by relay --where mailserver=mx1 --format csv /var/log/mail.log",
        what: "The relays one server talked to, from a raw syslog file, as CSV.",
    },
    Example {
        command: "maillog top --by status --kind to --source bzip2 --format json archive/",
        what: "Delivery statuses over an archive directory from its bzip2 files (not its Parquet mirror), as JSON.",
    },
];

/// Examples of `maillog report`.
pub const REPORT_EXAMPLES: &[Example] = &[
    Example {
        command: "maillog report",
        what: "The summary of the whole configured archive.",
    },
    Example {
        command: "maillog report --day 2025-12-31 -n 5",
        what: "One day's summary, five entries per list.",
    },
    Example {
        command: "maillog report --day yesterday --format html > yesterday.html",
        what: "Yesterday as one self-contained page with charts (opens offline, as a mail attachment too).",
    },
    Example {
        command: "maillog report --format json 's3://mail-archive/mail_logs/2025-12-*/*'",
        what: "December from S3, as JSON (a `*` matches within one path segment; the quotes keep it from the shell).",
    },
    Example {
        command: "maillog report --keep-going /var/log/mail.log /var/log/mail.log.1",
        what: "A report of two raw logs; exit 0 even if one cannot be read whole.",
    },
];

/// Examples of `maillog compact`.
pub const COMPACT_EXAMPLES: &[Example] = &[
    Example {
        command: "maillog compact",
        what: "Mirror the configured archive's settled hours as Parquet, under its mirror/ (a second run writes nothing).",
    },
    Example {
        command: "maillog compact --settle 2h /srv/maillog/archive",
        what: "The same for an archive directory, hours mirrored two hours after they end.",
    },
    Example {
        command: "maillog compact s3://mail-archive",
        what: "Mirror an S3 archive beside it (mirror/ under the prefix); each file put with If-None-Match.",
    },
];

/// Examples of `maillog verify`.
pub const VERIFY_EXAMPLES: &[Example] = &[Example {
    command: "maillog verify",
    what: "Compare the mirror with the configured archive, record for record; exit 1 on a difference.",
}];

/// Examples of `maillog completions`.
pub const COMPLETIONS_EXAMPLES: &[Example] = &[
    Example {
        command: "maillog completions bash > /etc/bash_completion.d/maillog",
        what: "Install bash completion for every user (the Debian package ships it).",
    },
    Example {
        command: "maillog completions zsh > /usr/local/share/zsh/site-functions/_maillog",
        what: "Install zsh completion (a directory of $fpath).",
    },
    Example {
        command: "maillog completions fish > ~/.config/fish/completions/maillog.fish",
        what: "Install fish completion for one user.",
    },
];

/// The exit status, one line per code (the same for every subcommand).
pub const EXIT_STATUS: &[(&str, &str)] = &[
    ("0", "Fine."),
    (
        "1",
        "A problem was found or the work failed: `check` found a problem, an input could not be \
         read whole, an upload gave up.",
    ),
    (
        "2",
        "A usage or config error: a wrong flag or value, an unknown config key, a config that \
         cannot be read or used.",
    ),
];

/// Where the configuration comes from: the first of these that is given or exists.
pub const CONFIG_LOOKUP: &[(&str, &str)] = &[
    ("--config FILE", "The file named on the command line."),
    (
        "$MAILLOG_CONFIG",
        "Else the file named by this environment variable.",
    ),
    (
        "./pipeline.toml",
        "Else this file in the working directory.",
    ),
    ("/etc/maillog/pipeline.toml", "Else the system's config."),
    (
        "(built in)",
        "Else the built-in defaults (those of the pipeline.toml shipped with maillog).",
    ),
];

/// The environment variables maillog reads (directly, or through the AWS SDK).
pub const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "MAILLOG_CONFIG",
        "The config file when --config is not given (see FILES).",
    ),
    (
        "MAILLOG_LOG",
        "The log level of `maillog run` (over the config's [log] level) and of the other \
         commands' messages: error, warn, info, debug, trace, or per module such as \
         maillog_tail=debug,info.",
    ),
    (
        "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY",
        "Credentials for an s3:// archive or input, read by the AWS SDK (its usual chain: these \
         variables, then the shared config files, then the instance's role).",
    ),
    (
        "AWS_PROFILE",
        "The profile of the shared AWS config files the AWS SDK reads (unless the config's [s3] \
         names one).",
    ),
];

/// The examples of a subcommand by its name (`None`: the top-level command).
pub fn examples_of(subcommand: Option<&str>) -> &'static [Example] {
    match subcommand {
        None => MAILLOG_EXAMPLES,
        Some("run") => RUN_EXAMPLES,
        Some("check") => CHECK_EXAMPLES,
        Some("parse") => PARSE_EXAMPLES,
        Some("top") => TOP_EXAMPLES,
        Some("report") => REPORT_EXAMPLES,
        Some("compact") => COMPACT_EXAMPLES,
        Some("verify") => VERIFY_EXAMPLES,
        Some("completions") => COMPLETIONS_EXAMPLES,
        Some(_) => &[],
    }
}

/// The text after a subcommand's `--help`: its examples and the exit status.
pub fn subcommand_long_help(examples: &[Example]) -> String {
    let mut text = examples_text(examples);
    text.push('\n');
    text.push_str(&exit_status_text());
    text
}

/// The text after `maillog --help`: the config lookup order, the exit status, the examples.
pub fn top_level_long_help() -> String {
    let mut text = String::from("Configuration (the first that is given or exists):\n");
    for (place, what) in CONFIG_LOOKUP {
        text.push_str(&format!("  {place:<28} {what}\n"));
    }
    text.push('\n');
    text.push_str(&exit_status_text());
    text.push('\n');
    text.push_str(&examples_text(MAILLOG_EXAMPLES));
    text.push_str("\nEach command's --help has its own examples; `man maillog` has the rest.\n");
    text
}

/// "Examples:", then each command line indented by two and what it does by six.
fn examples_text(examples: &[Example]) -> String {
    let mut text = String::from("Examples:\n");
    for example in examples {
        text.push_str(&format!("  {}\n      {}\n", example.command, example.what));
    }
    text
}

fn exit_status_text() -> String {
    let mut text = String::from("Exit status:\n");
    for (code, what) in EXIT_STATUS {
        text.push_str(&format!("  {code}  {what}\n"));
    }
    text
}
