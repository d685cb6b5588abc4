//! `maillog completions SHELL` and the hidden `maillog manpages DIR`: the shell completion
//! scripts (`clap_complete`) and the man pages (`clap_mangen`), both generated from the clap
//! definitions of `main.rs`, so they cannot drift from the real flags.
//!
//! This module owns only turning those definitions into text: a completion script on stdout,
//! `maillog.1` and one `maillog-SUBCOMMAND.1` per visible subcommand in a directory, with the
//! sections clap_mangen leaves out (EXAMPLES, EXIT STATUS, FILES, ENVIRONMENT, SEE ALSO) taken
//! from [`crate::help`]. It never reads a config, a log or the archive, never installs anything
//! (the Debian package puts the files where they belong) and writes nowhere but stdout and the
//! directory it is given.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, CommandFactory};
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};

use crate::help::{self, CONFIG_LOOKUP, ENVIRONMENT, EXIT_STATUS};

/// Arguments of `maillog completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell whose completion script to print.
    #[arg(value_enum, value_name = "SHELL")]
    shell: Shell,
}

/// Arguments of `maillog manpages`.
#[derive(Debug, Args)]
pub struct ManpagesArgs {
    /// The directory to write the pages into (created if missing; pages there are replaced).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
}

/// `maillog completions SHELL`: the completion script on stdout.
pub fn completions(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut command = visible_command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "maillog", &mut script);
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(&script)
        .and_then(|()| stdout.flush())
        .context("writing the completion script to stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// `maillog` without its hidden subcommands, for the completion scripts: clap_complete offers
/// hidden subcommands too, and clap cannot remove one, so the root is rebuilt around the visible
/// ones. The root has no arguments of its own besides `--help` and `--version` (clap's), which
/// the rebuilt root gets again; a global argument added to `Cli` would have to be copied here.
fn visible_command() -> clap::Command {
    let full = crate::Cli::command();
    let visible: Vec<clap::Command> = full
        .get_subcommands()
        .filter(|subcommand| !subcommand.is_hide_set())
        .cloned()
        .collect();
    clap::Command::new("maillog")
        .version(env!("CARGO_PKG_VERSION"))
        .about(full.get_about().cloned().unwrap_or_default())
        .propagate_version(true)
        .subcommand_required(full.is_subcommand_required_set())
        .subcommands(visible)
}

/// `maillog manpages DIR`: `maillog.1` and `maillog-SUBCOMMAND.1` for every visible
/// subcommand, written into DIR; each written path is printed on stderr.
pub fn manpages(args: ManpagesArgs) -> anyhow::Result<ExitCode> {
    fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating the directory {}", args.dir.display()))?;
    let mut command = crate::Cli::command().disable_help_subcommand(true);
    command.build(); // gives each subcommand its display name, `maillog-run`, and its usage
    let subcommands: Vec<clap::Command> = command
        .get_subcommands()
        .filter(|subcommand| !subcommand.is_hide_set())
        .cloned()
        .collect();
    let siblings: Vec<String> = subcommands.iter().map(page_name).collect();
    write_page(&args.dir, command.clone(), None, &siblings)?;
    for subcommand in subcommands {
        let name = subcommand.get_name().to_owned();
        write_page(&args.dir, subcommand, Some(&name), &siblings)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `maillog-run` for `run`: the name clap gave the subcommand when the parent was built.
fn page_name(command: &clap::Command) -> String {
    command
        .get_display_name()
        .unwrap_or_else(|| command.get_name())
        .to_owned()
}

/// Renders one page (`subcommand`: `None` for `maillog.1`) and writes it into `dir`.
fn write_page(
    dir: &Path,
    command: clap::Command,
    subcommand: Option<&str>,
    siblings: &[String],
) -> anyhow::Result<()> {
    let this_page = page_name(&command);
    let man = Man::new(command.clone()).manual("maillog manual");
    let path = dir.join(man.get_filename());
    let mut page = Vec::new();
    render_page(&man, &command, subcommand, &this_page, siblings, &mut page)
        .with_context(|| format!("rendering {}", path.display()))?;
    let page = ascii_roff(&String::from_utf8_lossy(&page));
    fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("maillog: wrote {}", path.display());
    Ok(())
}

/// The page with every character beyond ASCII written as groff's `\[uXXXX]` escape (the doc
/// comments have `…` and `—`): troff reads its input as Latin-1 unless a preprocessor converts
/// it, and warns about the UTF-8 bytes; the escape renders the same character everywhere.
fn ascii_roff(page: &str) -> String {
    let mut ascii = String::with_capacity(page.len());
    for character in page.chars() {
        if character.is_ascii() {
            ascii.push(character);
        } else {
            ascii.push_str(&format!("\\[u{:04X}]", u32::from(character)));
        }
    }
    ascii
}

/// clap_mangen's own sections (the EXTRA section of `after_long_help` left out: its examples
/// are rendered from the same list as EXAMPLES), then ours.
fn render_page(
    man: &Man,
    command: &clap::Command,
    subcommand: Option<&str>,
    this_page: &str,
    siblings: &[String],
    out: &mut dyn Write,
) -> io::Result<()> {
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    if command.get_arguments().any(|arg| !arg.is_hide_set()) {
        man.render_options_section(out)?;
    }
    if command.get_subcommands().any(|sub| !sub.is_hide_set()) {
        man.render_subcommands_section(out)?;
    }

    let mut roff = Roff::default();
    let examples = help::examples_of(subcommand);
    if !examples.is_empty() {
        roff.control("SH", ["EXAMPLES"]);
        for example in examples {
            roff.control("TP", []);
            roff.text([bold(example.command)]);
            roff.text([roman(example.what)]);
        }
    }
    roff.control("SH", ["EXIT STATUS"]);
    for (code, what) in EXIT_STATUS {
        roff.control("TP", []);
        roff.text([bold(*code)]);
        roff.text([roman(*what)]);
    }
    // Every command but `parse` and `completions` reads the config (and may reach S3).
    let reads_config = !matches!(subcommand, Some("parse") | Some("completions"));
    if reads_config {
        roff.control("SH", ["FILES"]);
        roff.text([roman(
            "The configuration is the first of these that is given or exists:",
        )]);
        for (place, what) in CONFIG_LOOKUP {
            roff.control("TP", []);
            roff.text([italic(*place)]);
            roff.text([roman(*what)]);
        }
        roff.control("SH", ["ENVIRONMENT"]);
        for (name, what) in ENVIRONMENT {
            roff.control("TP", []);
            roff.text([bold(*name)]);
            roff.text([roman(*what)]);
        }
    }
    roff.control("SH", ["SEE ALSO"]);
    let mut see_also: Vec<&str> = std::iter::once("maillog")
        .chain(siblings.iter().map(String::as_str))
        .filter(|name| *name != this_page)
        .collect();
    see_also.dedup();
    let last = see_also.len().saturating_sub(1);
    let references: Vec<_> = see_also
        .iter()
        .enumerate()
        .flat_map(|(index, name)| {
            let separator = if index == last { "" } else { ", " };
            [bold(*name), roman(format!("(1){separator}"))]
        })
        .collect();
    roff.text(references);
    roff.to_writer(out)?;

    man.render_version_section(out)
}
