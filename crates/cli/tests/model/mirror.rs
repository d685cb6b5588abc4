//! What the model checks of the Parquet mirror after the final drain: the mirror the runs
//! wrote as they went (`[mirror]`, settling at once), completed by `maillog compact`, holds
//! exactly the archive's records (`maillog verify`), with no archive file left out but those of
//! an hour that has not ended yet.

use std::process::Command;

use maillog_testkit::s3::{ACCESS_KEY, SECRET_KEY};

use super::config::Invocation;

/// `maillog compact --settle 0s`, then `maillog verify`, on the case's config; `stderr`: what
/// the runs said. Returns verify's summary.
pub fn holds_the_archive(invocation: &Invocation, stderr: &str) -> Result<String, String> {
    let run = |command: &str, args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_maillog"))
            .arg(command)
            .args(args)
            .arg("--config")
            .arg(&invocation.config)
            .current_dir(&invocation.cwd)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env_remove("AWS_PROFILE")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let written = stderr.matches("mirror: settled hours written").count();
    let (code, compacted) = run("compact", &["--settle", "0s"]);
    if code != Some(0) {
        return Err(format!("maillog compact failed ({code:?}):\n{compacted}"));
    }
    // Files of an hour that has not ended yet (records stamped now) wait; none else.
    let waiting = number_before(&compacted, " archive files wait");
    let (code, verified) = run("verify", &[]);
    let last = verified.lines().last().unwrap_or_default().to_owned();
    let not_mirrored = number_before(&last, " archive files not mirrored");
    if code != Some(0) || !last.contains(" 0 differences;") || waiting != not_mirrored {
        return Err(format!(
            "maillog verify ({code:?}):\n{verified}after maillog compact --settle 0s:\n{compacted}"
        ));
    }
    Ok(format!(
        "mirror: {written} service passes wrote files; {last}"
    ))
}

/// The number just before `what` in `text` (`"; 3 archive files wait"`).
fn number_before(text: &str, what: &str) -> Option<u64> {
    let head = &text[..text.find(what)?];
    head.rsplit(' ').next()?.parse().ok()
}
