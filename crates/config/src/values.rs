//! The closed sets of values a config key takes, as the file spells them: each an enum that
//! serde reads (a value outside the set is an error naming the file, line, column and key, and
//! the values it could be), and that says what it means to the crate it configures. Nothing
//! here reads a file or checks a range.

use maillog_parse::FieldsMode;
use maillog_tail::{StartAt, WatchMode};
use serde::Deserialize;

/// `fields`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fields {
    /// Every field the parser knows.
    #[default]
    All,
    /// The fields of the original record format only.
    Original,
}

impl From<Fields> for FieldsMode {
    fn from(fields: Fields) -> Self {
        match fields {
            Fields::All => FieldsMode::All,
            Fields::Original => FieldsMode::Original,
        }
    }
}

/// `start_at`: where files found at the first start begin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    /// At their first line.
    #[default]
    Beginning,
    /// After their last complete line.
    End,
}

impl From<Start> for StartAt {
    fn from(start: Start) -> Self {
        match start {
            Start::Beginning => StartAt::Beginning,
            Start::End => StartAt::End,
        }
    }
}

/// `[tail] watch`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Watch {
    /// The timer alone, every `poll_interval_ms`. The default: on a file written all the time
    /// it costs less than inotify (an event per write), and when idle next to nothing
    /// (BENCHMARKS.md, "The service").
    #[default]
    Poll,
    /// inotify, with a timer recheck every second.
    Events,
}

impl From<Watch> for WatchMode {
    fn from(watch: Watch) -> Self {
        match watch {
            Watch::Poll => WatchMode::Poll,
            Watch::Events => WatchMode::Auto,
        }
    }
}

/// `[log] format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line (for a log shipper).
    Json,
}

/// `[s3] checksum`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Checksum {
    /// The SDK adds CRC32 checksums.
    #[default]
    WhenSupported,
    /// Only where the API requires one (stores that reject them; Content-MD5 is sent either
    /// way).
    WhenRequired,
}

/// `[upload] sse`: S3 server-side encryption.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum Sse {
    /// S3-managed keys.
    #[serde(rename = "AES256")]
    Aes256,
    /// KMS keys (`sse_kms_key_id`).
    #[serde(rename = "aws:kms")]
    AwsKms,
}

impl Sse {
    /// As the S3 API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Sse::Aes256 => "AES256",
            Sse::AwsKms => "aws:kms",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct One<T> {
        value: T,
    }

    fn read<T: serde::de::DeserializeOwned>(value: &str) -> Result<T, String> {
        toml::from_str::<One<T>>(&format!("value = {value:?}"))
            .map(|one| one.value)
            .map_err(|e| e.message().to_owned())
    }

    #[test]
    fn each_value_reads_as_the_file_spells_it() {
        assert_eq!(read::<Fields>("original"), Ok(Fields::Original));
        assert_eq!(read::<Start>("end"), Ok(Start::End));
        assert_eq!(read::<Watch>("events"), Ok(Watch::Events));
        assert_eq!(read::<LogFormat>("json"), Ok(LogFormat::Json));
        assert_eq!(
            read::<Checksum>("when_required"),
            Ok(Checksum::WhenRequired)
        );
        assert_eq!(read::<Sse>("aws:kms").map(Sse::as_str), Ok("aws:kms"));
        let wrong = read::<Sse>("aes").unwrap_err();
        assert!(
            wrong.contains("`AES256`") && wrong.contains("`aws:kms`"),
            "{wrong}"
        );
    }
}
