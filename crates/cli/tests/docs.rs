//! The generated documentation of `maillog`, checked with the real tools that read it: the
//! completion scripts sourced and driven in a real bash (and checked by zsh and fish), the man
//! pages rendered by groff and man, and every example of the long help run through the real
//! binary.
//!
//! It owns only these checks; it never checks what a command does beyond its exit status (the
//! other tests do). A tool that is missing skips its test with a message, except under
//! `CI=true`, where a missing tool is a failure (`scripts/install-test-tools` installs them).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The subcommands a user is offered (`manpages` is hidden: for packagers, not users).
const VISIBLE_SUBCOMMANDS: &[&str] = &[
    "parse",
    "run",
    "check",
    "top",
    "report",
    "compact",
    "verify",
    "completions",
];

/// The pages `maillog manpages DIR` must write.
const PAGES: &[&str] = &[
    "maillog.1",
    "maillog-run.1",
    "maillog-check.1",
    "maillog-parse.1",
    "maillog-top.1",
    "maillog-report.1",
    "maillog-compact.1",
    "maillog-verify.1",
    "maillog-completions.1",
];

fn maillog() -> Command {
    Command::new(env!("CARGO_BIN_EXE_maillog"))
}

/// Runs `maillog ARGS`, which must exit 0, and gives its stdout.
fn maillog_stdout(args: &[&str]) -> String {
    let output = maillog().args(args).output().expect("run maillog");
    assert!(
        output.status.success(),
        "maillog {args:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Whether `tool` is on the PATH. Missing: a skip with a message, or a failure under `CI=true`.
fn have_tool(tool: &str, test: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()));
    if found {
        return true;
    }
    if std::env::var("CI").is_ok_and(|value| value == "true") {
        panic!("{test}: `{tool}` is not installed (scripts/install-test-tools installs it)");
    }
    eprintln!("{test}: SKIPPED, `{tool}` is not installed (scripts/install-test-tools)");
    false
}

fn run(command: &mut Command) -> Output {
    command
        .stdin(Stdio::null())
        .output()
        .expect("start the tool")
}

/// Asserts a tool exited 0 and said nothing on stderr (groff's warnings go there).
fn assert_clean(what: &str, output: &Output) {
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "{what}: {}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

fn write_script(dir: &Path, shell: &str) -> PathBuf {
    let path = dir.join(format!("maillog.{shell}"));
    fs::write(&path, maillog_stdout(&["completions", shell])).expect("write the script");
    path
}

/// The bash script is valid, registers a completion for `maillog`, and that completion, called
/// the way bash calls it, offers the subcommands after `maillog ` and `--by` after `maillog top --`.
#[test]
fn bash_completion_offers_subcommands_and_flags() {
    if !have_tool("bash", "bash_completion_offers_subcommands_and_flags") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let script = write_script(dir.path(), "bash");
    assert_clean("bash -n", &run(Command::new("bash").arg("-n").arg(&script)));

    // Sourced in a non-interactive bash: `complete -p maillog` names the function, which is
    // then called as bash's programmable completion does (COMP_WORDS, COMP_CWORD; $1 the
    // command, $2 the word being completed, $3 the word before it), once per command line.
    let driver = r#"
        source "$1" || exit 3
        function=$(complete -p maillog | sed -n 's/.* -F \([^ ]*\) .*/\1/p')
        [ -n "$function" ] || { echo "no completion function for maillog" >&2; exit 4; }
        offer() {
            COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
            COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
            "$function" maillog "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
            printf '%s\n' "${COMPREPLY[@]}"
        }
        offer maillog ''
        echo ---
        offer maillog top --
    "#;
    let output = run(Command::new("bash")
        .args(["--norc", "--noprofile", "-c", driver, "driver"])
        .arg(&script));
    assert_clean("the bash completion driver", &output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let (after_maillog, after_top) = stdout.split_once("---\n").expect("two offers");
    let after_maillog: Vec<&str> = after_maillog.lines().collect();
    for subcommand in VISIBLE_SUBCOMMANDS {
        assert!(
            after_maillog.contains(subcommand),
            "`maillog <TAB>` does not offer {subcommand}: {after_maillog:?}"
        );
    }
    assert!(
        !after_maillog.contains(&"manpages"),
        "the hidden `manpages` is offered: {after_maillog:?}"
    );
    let after_top: Vec<&str> = after_top.lines().collect();
    for flag in ["--by", "--since", "--format"] {
        assert!(
            after_top.contains(&flag),
            "`maillog top --<TAB>` does not offer {flag}: {after_top:?}"
        );
    }
}

/// zsh's script parses (`zsh -n`) and names the subcommands and `--by`.
#[test]
fn zsh_completion_parses() {
    if !have_tool("zsh", "zsh_completion_parses") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let script = write_script(dir.path(), "zsh");
    assert_clean("zsh -n", &run(Command::new("zsh").arg("-n").arg(&script)));
    let text = fs::read_to_string(&script).expect("read the script");
    assert!(text.starts_with("#compdef maillog"), "not a zsh completion");
    assert!(text.contains("--by") && !text.contains("manpages"));
}

/// fish's script parses (`fish --no-execute`) and names the subcommands and `--by`.
#[test]
fn fish_completion_parses() {
    if !have_tool("fish", "fish_completion_parses") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let script = write_script(dir.path(), "fish");
    assert_clean(
        "fish --no-execute",
        &run(Command::new("fish").arg("--no-execute").arg(&script)),
    );
    let text = fs::read_to_string(&script).expect("read the script");
    assert!(
        text.contains("complete -c maillog"),
        "not a fish completion"
    );
    assert!(text.contains("-l by") && !text.contains("manpages"));
}

/// `maillog manpages DIR` writes exactly the pages above (creating DIR), each renders without a
/// warning, each has EXAMPLES and EXIT STATUS, `maillog.1` has FILES and ENVIRONMENT, and `man`
/// shows `maillog-top.1` with its `--by` and its examples.
#[test]
fn man_pages_are_written_and_render_cleanly() {
    if !have_tool("groff", "man_pages_are_written_and_render_cleanly")
        || !have_tool("man", "man_pages_are_written_and_render_cleanly")
    {
        return;
    }
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = temp.path().join("new/man1");
    maillog_stdout(&["manpages", dir.to_str().expect("UTF-8 path")]);

    let mut written: Vec<String> = fs::read_dir(&dir)
        .expect("the directory was created")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    written.sort();
    let mut expected: Vec<String> = PAGES.iter().map(|page| (*page).to_owned()).collect();
    expected.sort();
    assert_eq!(written, expected, "the pages written");

    for page in PAGES {
        let path = dir.join(page);
        // -ww: every warning; -z: no output, only the checking. Any stderr fails.
        assert_clean(
            &format!("groff -man -ww -z {page}"),
            &run(Command::new("groff").args(["-man", "-ww", "-z"]).arg(&path)),
        );
        let source = fs::read_to_string(&path).expect("read the page");
        for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "EXAMPLES", "EXIT STATUS"] {
            assert!(
                source.contains(&format!(".SH \"{section}\""))
                    || source.contains(&format!(".SH {section}\n")),
                "{page} has no {section} section"
            );
        }
    }

    let main_page = fs::read_to_string(dir.join("maillog.1")).expect("read maillog.1");
    for needle in [
        ".SH FILES",
        ".SH ENVIRONMENT",
        "MAILLOG_CONFIG",
        "MAILLOG_LOG",
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "/etc/maillog/pipeline.toml",
        "maillog\\-top",
    ] {
        assert!(main_page.contains(needle), "maillog.1 lacks {needle}");
    }
    assert!(
        !main_page.contains("manpages"),
        "maillog.1 lists the hidden manpages"
    );

    // As a user reads it: man formats the page (plain text, as into a pipe).
    let output = run(Command::new("man")
        .arg("-l")
        .arg(dir.join("maillog-top.1"))
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("MANWIDTH", "100")
        .env("LC_ALL", "C.UTF-8"));
    assert!(output.status.success(), "man -l: {}", output.status);
    let shown = String::from_utf8_lossy(&output.stdout);
    for needle in ["--by", "EXAMPLES", "maillog top --by dest", "EXIT STATUS"] {
        assert!(
            shown.contains(needle),
            "man -l maillog-top.1 does not show {needle}:\n{shown}"
        );
    }
}

/// The top-level long help has the config lookup order and the exit status; `manpages` is
/// hidden from it.
#[test]
fn top_level_long_help_has_config_order_and_exit_status() {
    let help = maillog_stdout(&["--help"]);
    for needle in [
        "--config FILE",
        "$MAILLOG_CONFIG",
        "./pipeline.toml",
        "/etc/maillog/pipeline.toml",
        "Exit status:",
        "  2  A usage or config error",
    ] {
        assert!(help.contains(needle), "maillog --help lacks {needle}");
    }
    assert!(!help.contains("manpages"), "maillog --help shows manpages");
    let short = maillog_stdout(&["-h"]);
    assert!(
        !short.contains("Examples:"),
        "the examples belong to --help, not -h"
    );
}

/// The example command lines of one `--help`: the lines indented by two under "Examples:".
fn examples_in(help: &str) -> Vec<String> {
    let Some((_, rest)) = help.split_once("\nExamples:\n") else {
        return Vec::new();
    };
    rest.lines()
        .take_while(|line| !line.is_empty())
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .map(|line| line.trim().to_owned())
        .collect()
}

/// The words of a command line as a POSIX shell splits them, enough for the examples: words
/// split on blanks; '…' and "…" quote (no expansion inside: the examples quote globs and jq
/// programs); an unquoted `|`, `>` or `<` ends the simple command. Returns the words of the
/// simple command that runs `maillog` (the one whose first word, after any NAME=VALUE
/// assignments, is `maillog`), without `maillog` itself.
fn maillog_words(line: &str) -> Vec<String> {
    let mut commands: Vec<Vec<String>> = vec![Vec::new()];
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    let mut skip_next_word = false; // the file after a redirection
    for character in line.chars() {
        match (quote, character) {
            (Some(open), c) if c == open => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(character);
                word.get_or_insert_with(String::new);
            }
            (None, ' ' | '\t') => end_word(&mut word, &mut commands, &mut skip_next_word),
            (None, '|') => {
                end_word(&mut word, &mut commands, &mut skip_next_word);
                commands.push(Vec::new());
            }
            (None, '>' | '<') => {
                end_word(&mut word, &mut commands, &mut skip_next_word);
                skip_next_word = true;
            }
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    assert!(quote.is_none(), "unbalanced quote in {line:?}");
    end_word(&mut word, &mut commands, &mut skip_next_word);
    commands
        .into_iter()
        .find_map(|words| {
            let mut words = words
                .into_iter()
                .skip_while(|w| w.contains('=') && !w.starts_with('-'));
            (words.next().as_deref() == Some("maillog")).then(|| words.collect())
        })
        .unwrap_or_else(|| panic!("no maillog command in {line:?}"))
}

/// Ends the word being read: into the current command, or dropped when it is the file of a
/// redirection.
fn end_word(word: &mut Option<String>, commands: &mut [Vec<String>], skip: &mut bool) {
    if let Some(done) = word.take() {
        if *skip {
            *skip = false;
        } else if let Some(command) = commands.last_mut() {
            command.push(done);
        }
    }
}

#[test]
fn the_shell_splitter_splits_like_a_shell() {
    assert_eq!(
        maillog_words("zcat a.gz | MAILLOG_LOG=debug maillog parse --tz 'Europe/Paris' - > x"),
        ["parse", "--tz", "Europe/Paris", "-"]
    );
    assert_eq!(
        maillog_words("maillog parse f | jq -r 'select(.kind == \"to\") | .stat'"),
        ["parse", "f"]
    );
    assert_eq!(
        maillog_words("maillog run --once=all --input '/var/log/mail.log*'"),
        ["run", "--once=all", "--input", "/var/log/mail.log*"]
    );
}

/// Whether an example may run for real in a scratch directory: it names no absolute or home
/// path (`/var/log/…`, `/etc/…`: not there, or not ours to write) and no S3 bucket (no
/// server), and it ends by itself (`maillog run` without `--once` is the service).
fn runs_here(words: &[String]) -> bool {
    let local = words
        .iter()
        .all(|w| !w.starts_with('/') && !w.starts_with('~') && !w.contains("s3://"));
    let ends = words.first().map(String::as_str) != Some("run")
        || words.iter().any(|w| w.starts_with("--once"));
    local && ends
}

/// Every example of every long help is a valid command line today, checked two ways:
///
/// - All of them: the real binary runs the example's words with `--help` appended. clap reads
///   the words in order and stops at `--help`, so every subcommand name, flag name and flag
///   value before it is checked by the real parser (an unknown flag or a value its parser
///   refuses exits 2, as the self-check below shows) — but nothing runs, so an example about
///   /var/log or S3 is safe. What this cannot see: a missing required argument or a conflict
///   (clap checks those at the end, after `--help` has answered).
/// - Those that can run here (see [`runs_here`]): run for real, in order, in a scratch copy of
///   the repo's `pipeline.toml` and `sample-logs/` (the README's default job), and must exit 0;
///   output redirections are dropped (stdout is captured), pipes are cut before the next
///   program. This catches what the first cannot.
#[test]
fn every_example_in_the_long_help_is_valid() {
    // The self-check of the method: a wrong flag or value before --help is still an error.
    for wrong in [
        &["top", "--by", "dest", "--bogus", "--help"][..],
        &["top", "--by", "dest", "--since", "the day before", "--help"],
        &["run", "--once=sometimes", "--help"],
    ] {
        let status = maillog().args(wrong).output().expect("run maillog").status;
        assert_eq!(status.code(), Some(2), "maillog {wrong:?} was accepted");
    }

    let scratch = tempfile::tempdir().expect("tempdir");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    fs::copy(
        repo.join("pipeline.toml"),
        scratch.path().join("pipeline.toml"),
    )
    .expect("copy pipeline.toml");
    fs::create_dir(scratch.path().join("sample-logs")).expect("mkdir");
    fs::copy(
        repo.join("sample-logs/mail.log"),
        scratch.path().join("sample-logs/mail.log"),
    )
    .expect("copy the sample log");

    let mut ran_for_real = 0;
    // The top level first: its `run --once` fills the archive the later queries read.
    for help_of in [
        None,
        Some("run"),
        Some("check"),
        Some("parse"),
        Some("top"),
        Some("report"),
        Some("completions"),
    ] {
        let help_args: Vec<&str> = help_of.into_iter().chain(["--help"]).collect();
        let help = maillog_stdout(&help_args);
        let examples = examples_in(&help);
        assert!(
            (3..=6).contains(&examples.len()),
            "maillog {help_args:?}: {} examples, want 3 to 6",
            examples.len()
        );
        for example in examples {
            let words = maillog_words(&example);
            let parsed = maillog()
                .args(&words)
                .arg("--help")
                .current_dir(scratch.path())
                .output()
                .expect("run maillog");
            assert!(
                parsed.status.success(),
                "example `{example}` does not parse: {}\n{}",
                parsed.status,
                String::from_utf8_lossy(&parsed.stderr)
            );
            if runs_here(&words) {
                let output = run(maillog()
                    .args(&words)
                    .current_dir(scratch.path())
                    .env_remove("MAILLOG_CONFIG"));
                assert!(
                    output.status.success(),
                    "example `{example}` failed: {}\n{}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                );
                ran_for_real += 1;
            }
        }
    }
    assert!(
        ran_for_real >= 10,
        "only {ran_for_real} examples ran for real"
    );
}
