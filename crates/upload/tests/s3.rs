//! The S3 backend against a real S3-compatible server (the `s3s-fs` binary that
//! `scripts/install-test-tools` installs; SKIPPED without it, a failure under CI): a multipart
//! upload arrives whole, a key is found once it is there, and it is listed and read back.
#![allow(clippy::unwrap_used)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use maillog_upload::{Backoff, Job, S3Options, UploadOptions, Uploader};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(data: &std::path::Path) -> Option<(Server, u16)> {
    let found = Command::new("sh")
        .args(["-c", "command -v s3s-fs"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(std::env::var_os("CI").is_none(), "s3s-fs not installed");
        eprintln!("SKIPPED: s3s-fs not installed (run scripts/install-test-tools)");
        return None;
    }
    std::fs::create_dir_all(data.join("bucket")).unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("s3s-fs")
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--access-key",
            "AK",
            "--secret-key",
            "SK",
        ])
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    Some((Server(child), port))
}

#[test]
fn a_multipart_upload_arrives_whole() {
    let dir = tempfile::tempdir().unwrap();
    let Some((_server, port)) = start(&dir.path().join("s3")) else {
        return;
    };
    let options = S3Options {
        region: Some("us-east-1".into()),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        path_style: true,
        profile: None,
        checksum_when_required: false,
        upload: UploadOptions {
            multipart_threshold: 5 << 20,
            part_size: 5 << 20,
            ..UploadOptions::default()
        },
        static_credentials: Some(("AK".into(), "SK".into())),
    };
    let uploader = Uploader::start("s3://bucket/prefix", &options, 2, Backoff::default()).unwrap();
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
