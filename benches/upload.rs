//! Uploads to a local S3-compatible server (s3s-fs on loopback): maillog's uploader with 1, 4
//! and 16 uploads at once against the AWS CLI's `aws s3 cp --recursive` with the same
//! concurrency, on the same files, in one run. Objects per second and MB/s.
//!
//! usage: `benches/upload-vs-awscli.sh` (installs the AWS CLI into target/bench-venv and runs
//! this with `AWS_CLI` pointing at it and `UPLOAD_DIR` at a directory of window files).
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use maillog_archive::{Backoff, Job, S3Options, Uploader};
use maillog_testkit::records::files;
use maillog_testkit::s3::{ACCESS_KEY, S3Server, SECRET_KEY, have_s3s_fs};

fn main() {
    let source =
        PathBuf::from(std::env::var("UPLOAD_DIR").expect("UPLOAD_DIR: a directory of files"));
    let aws = std::env::var("AWS_CLI").expect("AWS_CLI: the aws command");
    let files = files(&source);
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    let data = tempfile::tempdir().unwrap();
    assert!(
        have_s3s_fs(),
        "s3s-fs (scripts/install-test-tools installs it)"
    );
    let server = S3Server::start(data.path(), "unused");
    let endpoint = server.endpoint();
    println!(
        "{} files, {:.1} MB (from {}); s3s-fs on loopback",
        files.len(),
        bytes as f64 / 1e6,
        source.display()
    );
    let report = |what: &str, t: Duration| {
        let s = t.as_secs_f64();
        println!(
            "  {what:<44} {s:>7.3} s  {:>7.1} objects/s  {:>6.1} MB/s",
            files.len() as f64 / s,
            bytes as f64 / 1e6 / s
        );
    };
    for concurrency in [1, 4, 16] {
        let bucket = format!("maillog-{concurrency}");
        std::fs::create_dir_all(data.path().join(&bucket)).unwrap();
        let options = S3Options {
            region: Some("us-east-1".into()),
            endpoint: Some(endpoint.clone()),
            path_style: true,
            static_credentials: Some((ACCESS_KEY.into(), SECRET_KEY.into())),
            ..S3Options::default()
        };
        let uploader = Uploader::start(
            &format!("s3://{bucket}").parse().unwrap(),
            &options,
            concurrency,
            Backoff::default(),
        )
        .unwrap();
        let start = Instant::now();
        for (i, file) in files.iter().enumerate() {
            let key = file
                .strip_prefix(&source)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            assert!(uploader.submit(Job {
                name: i.to_string(),
                path: file.clone(),
                key
            }));
        }
        for _ in &files {
            let done = uploader.wait(Duration::from_secs(120)).unwrap();
            assert!(done.result.is_ok(), "{:?}", done.result);
        }
        report(
            &format!("maillog uploader, {concurrency} at once"),
            start.elapsed(),
        );

        let bucket = format!("awscli-{concurrency}");
        std::fs::create_dir_all(data.path().join(&bucket)).unwrap();
        let config = data.path().join(format!("aws-config-{concurrency}"));
        std::fs::write(
            &config,
            format!("[default]\ns3 =\n    max_concurrent_requests = {concurrency}\n"),
        )
        .unwrap();
        let start = Instant::now();
        let status = Command::new(&aws)
            .args(["s3", "cp", "--recursive", "--only-show-errors"])
            .arg(&source)
            .arg(format!("s3://{bucket}/"))
            .args(["--endpoint-url", &endpoint])
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", &config)
            .status()
            .unwrap();
        assert!(status.success());
        report(
            &format!("aws s3 cp --recursive, {concurrency} at once"),
            start.elapsed(),
        );
    }
    drop(server);
}
