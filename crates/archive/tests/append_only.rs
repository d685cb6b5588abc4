//! The archive is append-only, against a real S3-compatible server (`s3s-fs`; SKIPPED without
//! it, a failure under CI) and a local directory: the same bytes again are harmless, other
//! bytes under a taken key are a conflict that leaves the object as it is, single-part and
//! multipart, with conditional writes and without; a key that can never be written fails at
//! once; a multipart upload a stop cut off is aborted at the next start; the probe tests the
//! store's conditional writes for real; dropping the uploader abandons a put that retries.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use maillog_archive::{
    ArchiveError, Backoff, Done, Job, KeyError, S3Options, UploadOptions, Uploader,
};
use maillog_testkit::s3::{ACCESS_KEY, S3Server, SECRET_KEY, have_s3s_fs};

const KEY: &str = "mail_logs/2026-11-25/from-2026-11-25-10-05.json.bz2";

fn options(server: &S3Server) -> S3Options {
    S3Options {
        region: Some("us-east-1".into()),
        endpoint: Some(server.endpoint()),
        path_style: true,
        static_credentials: Some((ACCESS_KEY.into(), SECRET_KEY.into())),
        ..S3Options::default()
    }
}

fn multipart(mut options: S3Options) -> S3Options {
    options.upload = UploadOptions {
        multipart_threshold: 5 << 20,
        part_size: 5 << 20,
        ..UploadOptions::default()
    };
    options
}

/// `len` bytes of noise from `seed`.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let (mut bytes, mut x) = (Vec::with_capacity(len + 8), seed | 1);
    while bytes.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// Puts `bytes` under `key` and waits for the outcome.
fn put(uploader: &Uploader, dir: &Path, key: &str, bytes: &[u8]) -> Done {
    let path = dir.join(format!("file-{}", bytes.len()));
    std::fs::write(&path, bytes).unwrap();
    assert!(uploader.submit(Job {
        name: "job".into(),
        path,
        key: key.into()
    }));
    uploader.wait(Duration::from_secs(60)).unwrap()
}

/// The multipart uploads the server holds parts or state of.
fn open_uploads(server: &S3Server) -> Vec<String> {
    std::fs::read_dir(&server.data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".upload"))
        .collect()
}

/// Put, put the same bytes, put other bytes of the same length and of another: the object
/// keeps the first bytes, the others come back as a conflict, at once, never retried.
fn a_taken_key_keeps_its_bytes(url: &str, options: &S3Options, stored: &Path, size: usize) {
    let dir = tempfile::tempdir().unwrap();
    let uploader = Uploader::start(&url.parse().unwrap(), options, 2, Backoff::default()).unwrap();
    let first = noise(1, size);
    let mut same_length = first.clone();
    same_length[size / 2] ^= 1;
    let longer = noise(2, size + 1);
    assert!(put(&uploader, dir.path(), KEY, &first).result.is_ok());
    let again = put(&uploader, dir.path(), KEY, &first);
    assert!(again.result.is_ok(), "{:?}", again.result);
    for other in [same_length, longer] {
        let done = put(&uploader, dir.path(), KEY, &other);
        match &done.result {
            Err(ArchiveError::Conflict { key, .. }) => assert_eq!(key, KEY),
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert!(done.elapsed < Duration::from_secs(10), "{:?}", done.elapsed);
        let e = done.result.unwrap_err().to_string();
        assert!(e.contains("append-only"), "{e}");
        assert!(
            std::fs::read(stored).unwrap() == first,
            "the archived object changed"
        );
    }
    let stats = uploader.stats();
    let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(count(&stats.succeeded), 2);
    assert_eq!(count(&stats.already_there), 1);
    assert_eq!(count(&stats.conflicts), 2);
    assert_eq!(count(&stats.retries), 0, "a conflict is never retried");
}

#[test]
fn s3_single_part_is_append_only() {
    let dir = tempfile::tempdir().unwrap();
    if !have_s3s_fs() {
        return;
    }
    let server = S3Server::start(&dir.path().join("s3"), "bucket");
    let stored = dir.path().join("s3/bucket/p").join(KEY);
    a_taken_key_keeps_its_bytes("s3://bucket/p", &options(&server), &stored, 1000);
    // Big enough for the store to answer 412 while the body is still on its way.
    let stored = dir.path().join("s3/bucket/big").join(KEY);
    a_taken_key_keeps_its_bytes("s3://bucket/big", &options(&server), &stored, 4 << 20);
}

#[test]
fn s3_multipart_is_append_only() {
    let dir = tempfile::tempdir().unwrap();
    if !have_s3s_fs() {
        return;
    }
    let server = S3Server::start(&dir.path().join("s3"), "bucket");
    let stored = dir.path().join("s3/bucket/p").join(KEY);
    let options = multipart(options(&server));
    a_taken_key_keeps_its_bytes("s3://bucket/p", &options, &stored, (11 << 20) + 123);
    assert_eq!(open_uploads(&server), Vec::<String>::new(), "parts left");
}

#[test]
fn s3_without_conditional_writes_looks_first() {
    let dir = tempfile::tempdir().unwrap();
    if !have_s3s_fs() {
        return;
    }
    let server = S3Server::start(&dir.path().join("s3"), "bucket");
    let stored = dir.path().join("s3/bucket/p").join(KEY);
    let options = S3Options {
        conditional_writes: false,
        ..options(&server)
    };
    a_taken_key_keeps_its_bytes("s3://bucket/p", &options, &stored, 1000);
}

#[test]
fn local_is_append_only() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("archive");
    let url = format!("file://{}", root.display());
    a_taken_key_keeps_its_bytes(&url, &S3Options::default(), &root.join(KEY), 1000);
}

/// A key with an empty segment comes back at once as a key error, never retried.
fn a_bad_key_fails_at_once(url: &str, options: &S3Options) {
    let dir = tempfile::tempdir().unwrap();
    let uploader = Uploader::start(&url.parse().unwrap(), options, 1, Backoff::default()).unwrap();
    let started = Instant::now();
    let done = put(&uploader, dir.path(), "logs//2025-11-20/x", b"BZh9");
    assert!(started.elapsed() < Duration::from_secs(2), "retried");
    match &done.result {
        Err(ArchiveError::Key { source, key, .. }) => {
            assert_eq!(*source, KeyError::EmptySegment);
            assert_eq!(key, "logs//2025-11-20/x");
        }
        other => panic!("expected a key error, got {other:?}"),
    }
    let e = done.result.unwrap_err().to_string();
    assert!(e.contains("empty segment"), "{e}");
    let stats = uploader.stats();
    assert_eq!(stats.retries.load(std::sync::atomic::Ordering::Relaxed), 0);
    assert_eq!(uploader.list("").unwrap(), Vec::new(), "nothing stored");
}

#[test]
fn s3_a_key_that_can_never_be_written_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    if !have_s3s_fs() {
        return;
    }
    let server = S3Server::start(&dir.path().join("s3"), "bucket");
    a_bad_key_fails_at_once("s3://bucket/p", &options(&server));
}

#[test]
fn local_a_key_that_can_never_be_written_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("archive").display());
    a_bad_key_fails_at_once(&url, &S3Options::default());
}

#[test]
fn the_probe_tests_conditional_writes_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    if !have_s3s_fs() {
        return;
    }
    let server = S3Server::start(&dir.path().join("s3"), "bucket");
    for (conditional, says) in [
        (true, "conditional writes: honoured"),
        (false, "conditional writes: off"),
    ] {
        let options = S3Options {
            conditional_writes: conditional,
            ..options(&server)
        };
        let uploader = Uploader::start(
            &"s3://bucket/p".parse().unwrap(),
            &options,
            1,
            Backoff::default(),
        )
        .unwrap();
        let steps = uploader.probe(dir.path()).unwrap();
        assert!(steps.iter().any(|s| s.contains(says)), "{steps:#?}");
        assert_eq!(steps.last().unwrap(), "deleted it");
        assert_eq!(server.objects("bucket", ""), Vec::<PathBuf>::new());
    }
    let root = dir.path().join("archive");
    let url = format!("file://{}", root.display());
    let uploader = Uploader::start(
        &url.parse().unwrap(),
        &S3Options::default(),
        1,
        Backoff::default(),
    )
    .unwrap();
    let steps = uploader.probe(dir.path()).unwrap();
    assert!(
        steps.iter().any(|s| s.contains("append-only")),
        "{steps:#?}"
    );
    assert_eq!(
        uploader.list("").unwrap(),
        Vec::new(),
        "the probe's file stays"
    );
}

/// s3s-fs itself: `If-None-Match: *` on a taken key is 412 PreconditionFailed, for PutObject
/// and for CompleteMultipartUpload.
#[test]
fn s3s_fs_refuses_a_taken_key_with_412() {
    use aws_sdk_s3::error::ProvideErrorMetadata;
    use aws_sdk_s3::primitives::ByteStream;
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    let dir = tempfile::tempdir().unwrap();
    if !have_s3s_fs() {
        return;
    }
    let server = S3Server::start(&dir.path().join("s3"), "bucket");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let credentials =
            aws_sdk_s3::config::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test");
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(server.endpoint())
            .force_path_style(true)
            .credentials_provider(credentials)
            .build();
        let client = aws_sdk_s3::Client::from_conf(config);
        let put = |body: &'static [u8]| {
            client
                .put_object()
                .bucket("bucket")
                .key("k")
                .if_none_match("*")
                .body(ByteStream::from_static(body))
                .send()
        };
        put(b"first").await.unwrap();
        let e = put(b"second").await.unwrap_err();
        let e = e.as_service_error().unwrap();
        assert_eq!(e.code(), Some("PreconditionFailed"));
        let id = client
            .create_multipart_upload()
            .bucket("bucket")
            .key("k")
            .send()
            .await
            .unwrap()
            .upload_id()
            .unwrap()
            .to_owned();
        let part = client
            .upload_part()
            .bucket("bucket")
            .key("k")
            .upload_id(&id)
            .part_number(1)
            .body(ByteStream::from_static(b"third"))
            .send()
            .await
            .unwrap();
        let parts = CompletedMultipartUpload::builder()
            .parts(
                CompletedPart::builder()
                    .part_number(1)
                    .set_e_tag(part.e_tag().map(str::to_owned))
                    .build(),
            )
            .build();
        let e = client
            .complete_multipart_upload()
            .bucket("bucket")
            .key("k")
            .upload_id(&id)
            .if_none_match("*")
            .multipart_upload(parts)
            .send()
            .await
            .unwrap_err();
        let status = e.raw_response().map(|r| r.status().as_u16());
        let e = e.as_service_error().unwrap();
        assert_eq!((e.code(), status), (Some("PreconditionFailed"), Some(412)));
    });
    assert_eq!(
        std::fs::read(dir.path().join("s3/bucket/k")).unwrap(),
        b"first"
    );
}

/// A multipart upload the uploader's end cut off (as a kill does) stays recorded, and the next
/// start aborts it: no part stays on the server.
#[test]
fn a_multipart_upload_cut_off_is_aborted_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    if !have_s3s_fs() {
        return;
    }
    let server = S3Server::start(&dir.path().join("s3"), "bucket");
    let records = |state: &Path| -> usize {
        std::fs::read_dir(state).map_or(0, |d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".upload"))
            })
            .count()
        })
    };
    let file = dir.path().join("big");
    std::fs::write(&file, noise(3, 40 << 20)).unwrap();
    // The end must come after the upload is recorded and before it is complete: try again
    // (each time with a state directory of its own) should it come too late.
    let mut cut_off = None;
    for attempt in 0..5 {
        let state = dir.path().join(format!("state-{attempt}"));
        let options = S3Options {
            state_dir: Some(state.clone()),
            ..multipart(options(&server))
        };
        let uploader = Uploader::start(
            &"s3://bucket/p".parse().unwrap(),
            &options,
            1,
            Backoff::default(),
        )
        .unwrap();
        assert!(uploader.submit(Job {
            name: "big".into(),
            path: file.clone(),
            key: format!("big-{attempt}.json.bz2"),
        }));
        let deadline = Instant::now() + Duration::from_secs(30);
        while records(&state) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(uploader);
        if records(&state) > 0 && !open_uploads(&server).is_empty() {
            cut_off = Some(options);
            break;
        }
    }
    let options = cut_off.expect("never caught an upload in flight");
    let state = options.state_dir.clone().unwrap();
    let uploader = Uploader::start(
        &"s3://bucket/p".parse().unwrap(),
        &options,
        1,
        Backoff::default(),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while (records(&state) > 0 || !open_uploads(&server).is_empty()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(records(&state), 0, "records left");
    assert_eq!(open_uploads(&server), Vec::<String>::new(), "parts left");
    drop(uploader);
}

/// Dropping the uploader while a put waits to be tried again (the server is down) returns
/// at once: the put is abandoned, the file stays where it is.
#[test]
fn dropping_the_uploader_abandons_a_retrying_put() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = S3Options {
        region: Some("us-east-1".into()),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        path_style: true,
        static_credentials: Some((ACCESS_KEY.into(), SECRET_KEY.into())),
        ..S3Options::default()
    };
    let backoff = Backoff {
        first: Duration::from_secs(30),
        max: Duration::from_secs(60),
    };
    let uploader =
        Uploader::start(&"s3://bucket/p".parse().unwrap(), &options, 1, backoff).unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"BZh9").unwrap();
    assert!(uploader.submit(Job {
        name: "f".into(),
        path: file.clone(),
        key: KEY.into(),
    }));
    let stats = uploader.stats();
    let deadline = Instant::now() + Duration::from_secs(20);
    while stats
        .failed_tries
        .load(std::sync::atomic::Ordering::Relaxed)
        == 0
    {
        assert!(Instant::now() < deadline, "the put never failed");
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    drop(uploader);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(file.exists());
}
