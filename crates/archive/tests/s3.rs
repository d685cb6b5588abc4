//! The S3 backend against a real S3-compatible server (the `s3s-fs` binary that
//! `scripts/install-test-tools` installs; SKIPPED without it, a failure under CI): a multipart
//! upload arrives whole, a key is found once it is there, and it is listed and read back.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use maillog_archive::{Backoff, Job, S3Options, UploadOptions, Uploader};
use maillog_testkit::s3::{ACCESS_KEY, S3Server, SECRET_KEY, have_s3s_fs};

#[test]
fn a_multipart_upload_arrives_whole() {
    let dir = tempfile::tempdir().unwrap();
    if !have_s3s_fs() {
        return;
    }
    let server = S3Server::start(&dir.path().join("s3"), "bucket");
    let options = S3Options {
        region: Some("us-east-1".into()),
        endpoint: Some(server.endpoint()),
        path_style: true,
        profile: None,
        checksum_when_required: false,
        upload: UploadOptions {
            multipart_threshold: 5 << 20,
            part_size: 5 << 20,
            ..UploadOptions::default()
        },
        static_credentials: Some((ACCESS_KEY.into(), SECRET_KEY.into())),
        ..S3Options::default()
    };
    let uploader = Uploader::start(
        &"s3://bucket/prefix".parse().unwrap(),
        &options,
        2,
        Backoff::default(),
    )
    .unwrap();
    let mut bytes = Vec::with_capacity(12 << 20);
    let mut x = 0x9E37_79B9_7F4A_7C15_u64;
    while bytes.len() < (12 << 20) + 12345 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    let file = dir.path().join("big.json.bz2");
    std::fs::write(&file, &bytes).unwrap();
    assert!(!uploader.has("a/big.json.bz2").unwrap());
    assert!(uploader.submit(Job {
        name: "big".into(),
        path: file,
        key: "a/big.json.bz2".into()
    }));
    let done = uploader.wait(Duration::from_secs(60)).unwrap();
    assert!(done.result.is_ok(), "{:?}", done.result);
    assert!(uploader.has("a/big.json.bz2").unwrap());
    let stored = std::fs::read(dir.path().join("s3/bucket/prefix/a/big.json.bz2")).unwrap();
    assert!(
        stored == bytes,
        "the object differs from the file ({} vs {} bytes)",
        stored.len(),
        bytes.len()
    );
}
