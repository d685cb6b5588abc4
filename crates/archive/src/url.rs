//! Where the archive is, parsed once: a local directory (`file://DIR`, or a plain path) or an
//! S3 bucket and prefix (`s3://bucket/prefix`). Everything after the config and the flags
//! takes an [`ArchiveUrl`], never a string to look into again. It never touches the archive.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::UrlError;

/// An archive's location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArchiveUrl {
    /// A directory (`file://DIR` or a plain path).
    Local(PathBuf),
    /// An S3 (or S3-compatible) bucket, and the prefix of every key (empty, or without a
    /// leading or trailing `/`).
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix.
        prefix: String,
    },
}

impl ArchiveUrl {
    /// A relative local directory taken against `base` (the config file's directory, or the
    /// working directory for a flag); an absolute one and an S3 location as they are.
    pub fn under(self, base: &Path) -> ArchiveUrl {
        match self {
            ArchiveUrl::Local(dir) if dir.is_relative() => ArchiveUrl::Local(base.join(dir)),
            other => other,
        }
    }

    /// The local directory, if it is one.
    pub fn local_dir(&self) -> Option<&Path> {
        match self {
            ArchiveUrl::Local(dir) => Some(dir),
            ArchiveUrl::S3 { .. } => None,
        }
    }
}

impl FromStr for ArchiveUrl {
    type Err = UrlError;

    fn from_str(text: &str) -> Result<ArchiveUrl, UrlError> {
        if let Some(path) = text.strip_prefix("file://") {
            if path.is_empty() {
                return Err(UrlError::NoDirectory);
            }
            return Ok(ArchiveUrl::Local(PathBuf::from(path)));
        }
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(UrlError::NoBucket);
            }
            return Ok(ArchiveUrl::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_matches('/').to_owned(),
            });
        }
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(UrlError::UnknownScheme {
                scheme: scheme.to_owned(),
            });
        }
        if text.is_empty() {
            return Err(UrlError::Empty);
        }
        Ok(ArchiveUrl::Local(PathBuf::from(text)))
    }
}

impl fmt::Display for ArchiveUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArchiveUrl::Local(dir) => write!(f, "file://{}", dir.display()),
            ArchiveUrl::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            ArchiveUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_form_parses_once_and_prints_back() {
        let local: ArchiveUrl = "file:///var/archive".parse().unwrap();
        assert_eq!(local, ArchiveUrl::Local("/var/archive".into()));
        assert_eq!(local.to_string(), "file:///var/archive");
        let s3: ArchiveUrl = "s3://logs/mail_logs/".parse().unwrap();
        let expected = ArchiveUrl::S3 {
            bucket: "logs".into(),
            prefix: "mail_logs".into(),
        };
        assert_eq!(s3, expected);
        assert_eq!(s3.to_string(), "s3://logs/mail_logs");
        assert_eq!(
            "s3://logs".parse::<ArchiveUrl>().unwrap().to_string(),
            "s3://logs"
        );
        let plain: ArchiveUrl = "archive".parse().unwrap();
        let base = Path::new("/etc/maillog");
        assert_eq!(
            plain.under(base),
            ArchiveUrl::Local("/etc/maillog/archive".into())
        );
        for (bad, why) in [
            ("file://", UrlError::NoDirectory),
            ("s3://", UrlError::NoBucket),
            ("", UrlError::Empty),
        ] {
            assert_eq!(bad.parse::<ArchiveUrl>(), Err(why), "{bad:?}");
        }
        assert!(matches!(
            "ftp://x".parse::<ArchiveUrl>(),
            Err(UrlError::UnknownScheme { .. })
        ));
    }
}
