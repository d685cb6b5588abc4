//! `sample-logs/mail.log` is exactly what the generator writes with its default config, so the
//! README's sample and the tests' logs never drift apart. Regenerate it with
//! `cargo run -p maillog-loggen -- -o sample-logs/mail.log`.

// A test that cannot read its fixture should fail loudly: unwrap is the point here.
#![allow(clippy::unwrap_used)]

use maillog_loggen::{Config, write_log};

#[test]
fn sample_log_is_the_default_generated_log() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../sample-logs/mail.log");
    let committed = std::fs::read(path).unwrap();
    let mut generated = Vec::new();
    write_log(&Config::default(), &mut generated).unwrap();
    assert!(
        committed == generated,
        "sample-logs/mail.log differs from the generator's output; regenerate it"
    );
}
