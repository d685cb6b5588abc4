//! The `pipeline.toml` a case runs with and how `maillog run` is invoked on it — the input
//! named in the config as a path or a glob, or by a relative `--input` run from the config's
//! directory — and the edits an operator makes to it between runs (`time_zone`,
//! `key_template`, `host`). Every setting ever in force is remembered: an archived key must be
//! one of those templates rendered for its window, and a window's name its start in one of
//! those zones.

use std::fs;
use std::path::{Path, PathBuf};

use super::lines::Zone;
use super::ops::Edit;

/// The key templates an edit may set; the first is the default (the original layout).
pub const TEMPLATES: [&str; 4] = [
    "mail_logs/{date}/{name}",
    "logs/{host}/{date}/{hour}/{name}",
    "{kind}/{date}/{name}",
    "mail_logs/dt={date}/{hour}/{name}",
];

/// The `host` tags an edit may set.
pub const HOSTS: [&str; 2] = ["relay1", "mx-central.example.org"];

/// `[window] lateness_seconds` of the config.
pub const LATENESS: i64 = 5;

/// How the case names its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inputs {
    /// `inputs = ["…/logs/mail.log"]`.
    Path,
    /// `inputs = ["…/logs/*.log"]`: matches `mail.log`, never its rotations.
    Glob,
    /// No `inputs` in the config: `--input logs/mail.log`, run from the config's directory.
    Flag,
}

/// How a `maillog run` is started: the config, the working directory, the flags before the
/// test's own.
#[derive(Clone, Debug)]
pub struct Invocation {
    pub config: PathBuf,
    pub cwd: PathBuf,
    pub flags: Vec<String>,
}

/// The config of a case: the fixed part, the settings an edit changes, what was in force.
#[derive(Clone, Debug)]
pub struct Config {
    path: PathBuf,
    inputs: Inputs,
    /// `inputs`, `spool`, `archive` and `year` lines, as they stay.
    head: String,
    /// `[tail]` and the sections after it, as they stay.
    tail: String,
    pub zone: Zone,
    template: usize,
    host: Option<usize>,
    /// Every (template, host) that was in force.
    keyings: Vec<(usize, Option<usize>)>,
    /// Every zone that was in force.
    pub zones: Vec<Zone>,
}

impl Config {
    /// `dir/pipeline.toml` naming the log (`input`: the log's path as the config writes it,
    /// relative or absolute), `spool` and `archive` (written as given), `zone`, a fixed
    /// `year` or none, and the S3 section; written at once.
    pub fn new(dir: &Path, input: &str, inputs: Inputs, zone: Zone, settings: [&str; 4]) -> Self {
        let [spool, archive, year, s3_section] = settings;
        let input = match inputs {
            Inputs::Path => format!("inputs = [\"{input}\"]\n"),
            Inputs::Glob => format!("inputs = [\"{}\"]\n", input.replace("mail.log", "*.log")),
            Inputs::Flag => String::new(),
        };
        let config = Config {
            path: dir.join("pipeline.toml"),
            inputs,
            head: format!("{input}spool = \"{spool}\"\narchive = \"{archive}\"\n{year}"),
            tail: format!(
                "[tail]\npoll_interval_ms = 50\n\
                 [window]\nlateness_seconds = {LATENESS}\ncommit_seconds = 0.1\n\
                 [bzip2]\nlevel = 1\n\
                 [upload]\nretry_first_seconds = 0.1\nretry_max_seconds = 1\n\
                 [service]\nshutdown_seconds = 3\n\
                 [mirror]\nenabled = true\nsettle_minutes = 0\nevery_seconds = 0.5\n{s3_section}"
            ),
            zone,
            template: 0,
            host: None,
            keyings: vec![(0, None)],
            zones: vec![zone],
        };
        config.write();
        config
    }

    /// How `maillog run` is started on it.
    pub fn invocation(&self) -> Invocation {
        let dir = self.path.parent().unwrap().to_owned();
        let flags = match self.inputs {
            Inputs::Flag => vec!["--input".into(), "logs/mail.log".into()],
            Inputs::Path | Inputs::Glob => Vec::new(),
        };
        Invocation {
            config: self.path.clone(),
            cwd: dir,
            flags,
        }
    }

    /// Writes the file as the settings are now.
    pub fn write(&self) {
        let host = self
            .host
            .map(|h| format!("host = \"{}\"\n", HOSTS[h]))
            .unwrap_or_default();
        let text = format!(
            "{}time_zone = \"{}\"\nkey_template = \"{}\"\n{host}{}",
            self.head,
            self.zone.name(),
            TEMPLATES[self.template],
            self.tail
        );
        fs::write(&self.path, text).unwrap();
    }

    /// The config with `edit` made (not yet written).
    pub fn edited(&self, edit: Edit) -> Config {
        let mut new = self.clone();
        match edit {
            Edit::TimeZone(zone) => new.zone = zone,
            Edit::KeyTemplate(t) => new.template = t,
            Edit::Host(h) => new.host = h,
        }
        new
    }

    /// Whether `maillog run` must take it: a `{host}` in the template needs a host.
    pub fn valid(&self) -> bool {
        self.host.is_some() || !TEMPLATES[self.template].contains("{host}")
    }

    /// From now on in force: written, and remembered.
    pub fn adopt(&mut self) {
        self.write();
        if !self.keyings.contains(&(self.template, self.host)) {
            self.keyings.push((self.template, self.host));
        }
        if !self.zones.contains(&self.zone) {
            self.zones.push(self.zone);
        }
    }

    /// Every archived key (below the archive's prefix) has no empty, `.` or `..` segment and
    /// is one of the templates in force rendered for its file name — `{date}` and `{hour}`
    /// those of the name's start, as the product renders both in the window's zone.
    pub fn check_keys<'a>(&self, keys: impl Iterator<Item = &'a String>) -> Result<(), String> {
        for key in keys {
            if key
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == "..")
            {
                return Err(format!(
                    "archived key {key:?} has an empty, . or .. segment"
                ));
            }
            let name = key.rsplit('/').next().unwrap();
            // `from-2025-11-25-10-05…`: the kind, then the local start.
            let (kind, stamp) = name.split_once('-').unwrap_or_default();
            let (date, hour) = (stamp.get(..10), stamp.get(11..13));
            let (Some(date), Some(hour)) = (date, hour) else {
                return Err(format!("archived key {key:?}: not a window file's name"));
            };
            let rendered = |(t, h): &(usize, Option<usize>)| {
                TEMPLATES[*t]
                    .replace("{date}", date)
                    .replace("{hour}", hour)
                    .replace("{kind}", kind)
                    .replace("{host}", h.map_or("", |h| HOSTS[h]))
                    .replace("{name}", name)
            };
            if !self.keyings.iter().any(|k| rendered(k) == *key) {
                let tried: Vec<String> = self.keyings.iter().map(rendered).collect();
                return Err(format!(
                    "archived key {key:?} is none of the key templates in force rendered for \
                     its name: {tried:?}"
                ));
            }
        }
        Ok(())
    }
}
