//! Which config file a command reads: the first of `--config FILE`, the `MAILLOG_CONFIG`
//! environment variable, `./pipeline.toml` in the working directory, and
//! `/etc/maillog/pipeline.toml` (the Debian package's conffile); else the built-in defaults.
//!
//! So `maillog top` on the central host finds the service's archive with no flags, and a
//! checkout's `pipeline.toml` still wins where one is. A file named explicitly (the flag or
//! the variable) must exist: a typo there is an error, never a silent fall-back to the
//! defaults. It only says where; reading the file is [`super::load`]'s.

use std::fmt;
use std::path::{Path, PathBuf};

/// The environment variable naming the config file when `--config` is not given.
pub const CONFIG_VAR: &str = "MAILLOG_CONFIG";

/// The system-wide config file (the Debian package installs it).
pub const SYSTEM_CONFIG: &str = "/etc/maillog/pipeline.toml";

/// The file looked for in the working directory.
pub const LOCAL_CONFIG: &str = "pipeline.toml";

/// Where the config came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOrigin {
    /// `--config FILE`.
    Flag(PathBuf),
    /// `MAILLOG_CONFIG=FILE`.
    Environment(PathBuf),
    /// `./pipeline.toml`.
    WorkingDirectory(PathBuf),
    /// `/etc/maillog/pipeline.toml`.
    System(PathBuf),
    /// No file: every key at its default.
    Defaults,
}

impl ConfigOrigin {
    /// The file to read, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            ConfigOrigin::Flag(p)
            | ConfigOrigin::Environment(p)
            | ConfigOrigin::WorkingDirectory(p)
            | ConfigOrigin::System(p) => Some(p),
            ConfigOrigin::Defaults => None,
        }
    }

    /// A short word for machine-readable output: `flag`, `environment`, `working-directory`,
    /// `system`, `defaults`.
    pub fn kind(&self) -> &'static str {
        match self {
            ConfigOrigin::Flag(_) => "flag",
            ConfigOrigin::Environment(_) => "environment",
            ConfigOrigin::WorkingDirectory(_) => "working-directory",
            ConfigOrigin::System(_) => "system",
            ConfigOrigin::Defaults => "defaults",
        }
    }
}

impl fmt::Display for ConfigOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigOrigin::Flag(p) => write!(f, "{} (--config)", p.display()),
            ConfigOrigin::Environment(p) => write!(f, "{} ({CONFIG_VAR})", p.display()),
            ConfigOrigin::WorkingDirectory(p) => {
                write!(f, "{} (in the working directory)", p.display())
            }
            ConfigOrigin::System(p) => write!(f, "{} (the system's)", p.display()),
            ConfigOrigin::Defaults => write!(
                f,
                "the built-in defaults (no --config, no {CONFIG_VAR}, no ./{LOCAL_CONFIG}, \
                 no {SYSTEM_CONFIG})"
            ),
        }
    }
}

/// What the lookup looks at: the flag, the variable's value, and whether a file exists.
/// The process's own are [`Candidates::of_process`]; a test passes its own.
pub struct Candidates<'a> {
    /// `--config`.
    pub flag: Option<&'a Path>,
    /// `MAILLOG_CONFIG` (an empty value counts as unset).
    pub environment: Option<PathBuf>,
    /// The working directory's `pipeline.toml`.
    pub local: PathBuf,
    /// `/etc/maillog/pipeline.toml`.
    pub system: PathBuf,
}

impl<'a> Candidates<'a> {
    /// This process's flag, environment and file system.
    pub fn of_process(flag: Option<&'a Path>) -> Self {
        Candidates {
            flag,
            environment: std::env::var_os(CONFIG_VAR)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            // Absolute, so that every message names the file wherever it is read from.
            local: std::path::absolute(LOCAL_CONFIG).unwrap_or_else(|_| LOCAL_CONFIG.into()),
            system: PathBuf::from(SYSTEM_CONFIG),
        }
    }

    /// The first that applies. A file named by the flag or the variable is taken whether it
    /// exists or not (reading it says what is wrong); the others only when they exist.
    pub fn choose(self) -> ConfigOrigin {
        if let Some(path) = self.flag {
            return ConfigOrigin::Flag(path.to_owned());
        }
        if let Some(path) = self.environment {
            return ConfigOrigin::Environment(path);
        }
        if self.local.is_file() {
            return ConfigOrigin::WorkingDirectory(self.local);
        }
        if self.system.is_file() {
            return ConfigOrigin::System(self.system);
        }
        ConfigOrigin::Defaults
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn candidates<'a>(
        dir: &Path,
        flag: Option<&'a Path>,
        environment: Option<&str>,
    ) -> Candidates<'a> {
        Candidates {
            flag,
            environment: environment.map(|e| dir.join(e)),
            local: dir.join("cwd/pipeline.toml"),
            system: dir.join("etc/pipeline.toml"),
        }
    }

    #[test]
    fn the_flag_then_the_variable_then_the_working_directory_then_the_system() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let flag = d.join("flag.toml");
        // Nothing exists: the defaults.
        assert_eq!(candidates(d, None, None).choose(), ConfigOrigin::Defaults);
        std::fs::create_dir_all(d.join("etc")).unwrap();
        std::fs::write(d.join("etc/pipeline.toml"), "").unwrap();
        assert_eq!(
            candidates(d, None, None).choose(),
            ConfigOrigin::System(d.join("etc/pipeline.toml"))
        );
        std::fs::create_dir_all(d.join("cwd")).unwrap();
        std::fs::write(d.join("cwd/pipeline.toml"), "").unwrap();
        assert_eq!(
            candidates(d, None, None).choose(),
            ConfigOrigin::WorkingDirectory(d.join("cwd/pipeline.toml"))
        );
        // Named files win even when they do not exist: reading them says so.
        assert_eq!(
            candidates(d, None, Some("env.toml")).choose(),
            ConfigOrigin::Environment(d.join("env.toml"))
        );
        assert_eq!(
            candidates(d, Some(&flag), Some("env.toml")).choose(),
            ConfigOrigin::Flag(flag.clone())
        );
    }

    #[test]
    fn each_origin_says_where_it_came_from() {
        let system = ConfigOrigin::System(PathBuf::from(SYSTEM_CONFIG));
        assert_eq!(
            system.to_string(),
            "/etc/maillog/pipeline.toml (the system's)"
        );
        assert!(
            ConfigOrigin::Defaults
                .to_string()
                .contains("MAILLOG_CONFIG")
        );
        assert_eq!(
            ConfigOrigin::Environment(PathBuf::from("/x.toml")).to_string(),
            "/x.toml (MAILLOG_CONFIG)"
        );
    }
}
